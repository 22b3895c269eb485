//! The login-state contract, run against both backends: the memory store and a real Redis
//! (the shared server, under a prefix of this test's own). What one does, the other must do.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::services::*;
use entree_bridge::config::{RedisNodes, RedisSettings, SessionBackend};
use entree_bridge::identity::{Facts, Identity};
use entree_bridge::store::{self, AppSession, LoginStateStore, PendingLogin, Subject};

struct Backend {
    store: Arc<dyn LoginStateStore>,
    /// The Redis prefix, when the backend is Redis.
    prefix: Option<String>,
}

fn redis_settings(prefix: &str, local_cache: Duration) -> RedisSettings {
    RedisSettings {
        nodes: RedisNodes::Single(shared_redis_url()),
        prefix: prefix.to_string(),
        ca_pem: None,
        timeout: Duration::from_secs(2),
        local_cache,
    }
}

fn backends() -> Vec<Backend> {
    let prefix = unique_prefix();
    vec![
        Backend {
            store: store::open(&SessionBackend::Memory).expect("memory"),
            prefix: None,
        },
        Backend {
            store: store::open(&SessionBackend::Redis(redis_settings(&prefix, Duration::ZERO))).expect("redis"),
            prefix: Some(prefix),
        },
    ]
}

fn pending(expires_in: Duration) -> PendingLogin {
    PendingLogin {
        request_id: "_req".into(),
        app: "numo".into(),
        target: Some("https://numo.example.nl/les/3".into()),
        browser_nonce: "nonce".into(),
        expires_at: SystemTime::now() + expires_in,
    }
}

fn session(app: &str, name_id: &str, person: &str, lifetime: Duration) -> AppSession {
    AppSession {
        app: app.into(),
        identity: Identity {
            person_code: person.into(),
            facts: Facts {
                federated_id: format!("{person}@school-a.nl"),
                school: Some("99XX".into()),
                affiliation: vec!["student".into()],
                tenant: None,
                given_name: Some("Anna".into()),
                extra: Vec::new(),
            },
        },
        subject: Subject {
            name_id: name_id.into(),
            name_id_format: Some("urn:oasis:names:tc:SAML:2.0:nameid-format:transient".into()),
            session_index: Some("_si".into()),
        },
        expires_at: SystemTime::now() + lifetime,
    }
}

#[tokio::test]
async fn pending_logins_are_answered_once_and_not_after_they_expire() {
    for b in backends() {
        let s = &b.store;
        s.put_pending("rs-1", pending(Duration::from_secs(60)))
            .await
            .expect("put");
        let taken = s.take_pending("rs-1").await.expect("take");
        assert_eq!(taken, Some(pending_like(&taken)), "{:?}", b.prefix);
        assert_eq!(
            taken.as_ref().map(|p| p.target.clone()),
            Some(Some("https://numo.example.nl/les/3".into()))
        );
        assert!(
            s.take_pending("rs-1").await.expect("take").is_none(),
            "{:?}: taken twice",
            b.prefix
        );

        s.put_pending("rs-2", pending(Duration::from_millis(150)))
            .await
            .expect("put");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            s.take_pending("rs-2").await.expect("take").is_none(),
            "{:?}: expired entry served",
            b.prefix
        );
        assert!(s.take_pending("never-stored").await.expect("take").is_none());
        assert!(s.take_pending(&"x".repeat(10_000)).await.expect("take").is_none());
    }
}

/// The stored value itself (expires_at is compared as stored).
fn pending_like(taken: &Option<PendingLogin>) -> PendingLogin {
    let t = taken.clone().expect("the pending login is there");
    assert_eq!(t.request_id, "_req");
    assert_eq!(t.browser_nonce, "nonce");
    t
}

#[tokio::test]
async fn the_replay_cache_admits_an_assertion_once_even_when_raced() {
    for b in backends() {
        let until = SystemTime::now() + Duration::from_secs(60);
        let tries = (0..16).map(|_| {
            let s = b.store.clone();
            tokio::spawn(async move { s.remember_assertion("https://idp|_a1", until).await.expect("store") })
        });
        let mut fresh = 0;
        for t in tries {
            fresh += usize::from(t.await.expect("task"));
        }
        assert_eq!(fresh, 1, "{:?}: exactly one of 16 racing calls is first", b.prefix);
        assert!(b
            .store
            .remember_assertion("https://idp|_a2", until)
            .await
            .expect("store"));
    }
}

#[tokio::test]
async fn sessions_end_when_idle_or_at_their_absolute_end_and_reads_keep_them_alive() {
    for b in backends() {
        let s = &b.store;
        let idle = Duration::from_millis(700);
        s.put_session("idle", session("portal", "nid-1", "p1", Duration::from_secs(60)), idle)
            .await
            .expect("put");
        // Used every 400 ms for 1.2 s: longer than the idle time, but never idle that long.
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            let got = s.get_session("idle").await.expect("get");
            assert_eq!(got.map(|g| g.identity.person_code), Some("p1".into()), "{:?}", b.prefix);
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert!(
            s.get_session("idle").await.expect("get").is_none(),
            "{:?}: idle session served",
            b.prefix
        );

        s.put_session(
            "short",
            session("portal", "nid-1", "p1", Duration::from_millis(500)),
            Duration::from_secs(60),
        )
        .await
        .expect("put");
        assert!(s.get_session("short").await.expect("get").is_some());
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(
            s.get_session("short").await.expect("get").is_none(),
            "{:?}: past its end",
            b.prefix
        );

        s.put_session(
            "gone",
            session("portal", "nid-1", "p1", Duration::from_secs(60)),
            Duration::from_secs(60),
        )
        .await
        .expect("put");
        s.remove_session("gone").await.expect("remove");
        assert!(s.get_session("gone").await.expect("get").is_none());
    }
}

#[tokio::test]
async fn single_logout_ends_every_session_of_one_subject_in_one_app_only() {
    for b in backends() {
        let s = &b.store;
        let day = Duration::from_secs(86_400);
        for id in ["s1", "s2"] {
            s.put_session(id, session("portal", "nid-anna", "anna", day), day)
                .await
                .expect("put");
        }
        s.put_session("s3", session("portal", "nid-bram", "bram", day), day)
            .await
            .expect("put");
        s.put_session("s4", session("other", "nid-anna", "anna", day), day)
            .await
            .expect("put");
        s.remove_session("s2").await.expect("remove");
        assert_eq!(
            s.remove_sessions_of("portal", "nid-anna").await.expect("slo"),
            1,
            "{:?}",
            b.prefix
        );
        assert!(s.get_session("s1").await.expect("get").is_none());
        assert!(
            s.get_session("s3").await.expect("get").is_some(),
            "another subject's session stays"
        );
        assert!(
            s.get_session("s4").await.expect("get").is_some(),
            "another app's session stays"
        );
        assert_eq!(s.remove_sessions_of("portal", "nid-anna").await.expect("slo"), 0);
    }
}

#[tokio::test]
async fn every_redis_key_has_a_ttl_and_values_carry_their_version() {
    let prefix = unique_prefix();
    let url = shared_redis_url();
    let s = store::open(&SessionBackend::Redis(redis_settings(&prefix, Duration::ZERO))).expect("redis");
    let hour = Duration::from_secs(3600);
    s.put_pending("rs", pending(Duration::from_secs(600)))
        .await
        .expect("put");
    s.put_session("sid", session("portal", "nid", "p", hour * 8), hour)
        .await
        .expect("put");
    assert!(s
        .remember_assertion("issuer|_id", SystemTime::now() + hour)
        .await
        .expect("replay"));
    let keys = keys_under(&url, &prefix).await;
    let kinds: std::collections::BTreeSet<&str> = keys
        .iter()
        .map(|k| k[prefix.len()..].split(':').next().unwrap_or(""))
        .collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["login", "replay", "session", "subject"],
        "{keys:?}"
    );
    let mut conn = redis_connection(&url).await;
    for key in &keys {
        let ttl: i64 = redis::cmd("PTTL").arg(key).query_async(&mut conn).await.expect("pttl");
        assert!(ttl > 0, "{key} has no TTL ({ttl})");
        if key.contains(":session:") {
            assert!(
                ttl <= 3_600_000,
                "a session's TTL is its idle time, not its lifetime: {ttl}"
            );
        }
    }
    let login: String = redis::cmd("GET")
        .arg(format!("{prefix}login:rs"))
        .query_async(&mut conn)
        .await
        .expect("get");
    assert!(login.starts_with(r#"{"v":1,"d":{"#), "{login}");

    // A value written by a (hypothetical) newer version is not misread: it is absent.
    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}login:future"))
        .arg(r#"{"v":2,"d":{"whatever":true}}"#)
        .arg("PX")
        .arg(60_000)
        .query_async(&mut conn)
        .await
        .expect("set");
    assert!(s.take_pending("future").await.expect("take").is_none());
}

#[tokio::test]
async fn the_local_session_cache_serves_reads_but_local_logout_is_immediate() {
    let prefix = unique_prefix();
    let url = shared_redis_url();
    let cached = store::open(&SessionBackend::Redis(redis_settings(
        &prefix,
        Duration::from_millis(800),
    )))
    .expect("redis");
    let other = store::open(&SessionBackend::Redis(redis_settings(&prefix, Duration::ZERO))).expect("redis");
    let hour = Duration::from_secs(3600);
    cached
        .put_session("sid", session("portal", "nid", "p", hour), hour)
        .await
        .expect("put");
    assert!(cached.get_session("sid").await.expect("get").is_some());

    // Ended on another instance: this one may serve it from its cache, at most local_cache long.
    other.remove_session("sid").await.expect("remove");
    assert!(keys_under(&url, &format!("{prefix}session:")).await.is_empty());
    let still = cached.get_session("sid").await.expect("get").is_some();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        cached.get_session("sid").await.expect("get").is_none(),
        "after local_cache the logout elsewhere is seen (was cached: {still})"
    );

    // Ended on this instance: gone at once.
    cached
        .put_session("sid2", session("portal", "nid", "p", hour), hour)
        .await
        .expect("put");
    assert!(cached.get_session("sid2").await.expect("get").is_some());
    cached.remove_session("sid2").await.expect("remove");
    assert!(cached.get_session("sid2").await.expect("get").is_none());
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error_within_the_timeout_not_a_hang() {
    // A port nothing listens on, and a blackhole address that never answers a SYN.
    for url in [
        format!("redis://127.0.0.1:{}", free_port()),
        "redis://10.255.255.1:6379".to_string(),
    ] {
        let settings = RedisSettings {
            nodes: RedisNodes::Single(url.clone()),
            prefix: unique_prefix(),
            ca_pem: None,
            timeout: Duration::from_millis(500),
            local_cache: Duration::ZERO,
        };
        let s = store::open(&SessionBackend::Redis(settings)).expect("a store is made without connecting");
        let started = std::time::Instant::now();
        let e = s.take_pending("rs").await.expect_err("no Redis, no answer");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{url}: took {:?}",
            started.elapsed()
        );
        assert!(e.to_string().contains("Redis"), "{e}");
        assert!(s.ping().await.is_err());
    }
}
