//! The login-state contract, run against both backends: the memory store and a real Redis
//! (the shared server, under a prefix of this test's own). What one does, the other must do.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::services::*;
use entree_bridge::config::{RedisNodes, RedisSettings, SessionBackend};
use entree_bridge::identity::{Facts, Identity};
use entree_bridge::store::{self, AppSession, LoginStateStore, PendingLink, PendingLogin, Subject};

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
        pending_budget: entree_bridge::config::DEFAULT_PENDING_BUDGET,
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
        oidc: None,
        force_authn: false,
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
        authenticated_at: SystemTime::now(),
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
        let past = SystemTime::now() - Duration::from_secs(1);
        assert!(
            !b.store
                .remember_assertion("https://idp|_a3", past)
                .await
                .expect("store"),
            "{:?}: an assertion past its window is refused",
            b.prefix
        );
    }
}

/// The proxy's check (is this id a live session of this app?) agrees with `get_session`,
/// keeps an idle session alive like a read does, and says no for another app, a removed
/// session and one past its end.
#[tokio::test]
async fn the_proxys_session_check_agrees_with_a_full_read() {
    for b in backends() {
        let s = &b.store;
        let idle = Duration::from_millis(700);
        s.put_session("check", session("portal", "nid-1", "p1", Duration::from_secs(60)), idle)
            .await
            .expect("put");
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            assert!(
                s.session_is_of("check", "portal").await.expect("check"),
                "{:?}",
                b.prefix
            );
        }
        assert!(
            !s.session_is_of("check", "other").await.expect("check"),
            "{:?}: another app",
            b.prefix
        );
        assert!(!s.session_is_of("nope", "portal").await.expect("check"));
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert!(
            !s.session_is_of("check", "portal").await.expect("check"),
            "{:?}: idle",
            b.prefix
        );

        s.put_session(
            "short",
            session("portal", "nid-1", "p1", Duration::from_millis(400)),
            Duration::from_secs(60),
        )
        .await
        .expect("put");
        assert!(s.session_is_of("short", "portal").await.expect("check"));
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(
            !s.session_is_of("short", "portal").await.expect("check"),
            "{:?}: past its end",
            b.prefix
        );

        s.put_session("ended", session("portal", "nid-1", "p1", Duration::from_secs(60)), idle)
            .await
            .expect("put");
        s.remove_session("ended").await.expect("remove");
        assert!(!s.session_is_of("ended", "portal").await.expect("check"));
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
        ["login", "pending-bytes", "replay", "session", "subject"],
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
    // A session whose lifetime is shorter than its idle time gets the lifetime as TTL.
    s.put_session("brief", session("portal", "nid", "p", Duration::from_secs(90)), hour)
        .await
        .expect("put");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}session:brief"))
        .query_async(&mut conn)
        .await
        .expect("pttl");
    assert!(
        ttl > 80_000 && ttl <= 90_000,
        "TTL is the time left of the lifetime: {ttl}"
    );
    assert!(s.get_session("brief").await.expect("get").is_some());
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}session:brief"))
        .query_async(&mut conn)
        .await
        .expect("pttl");
    assert!(ttl <= 90_000, "a read never moves the TTL past the absolute end: {ttl}");

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
    assert!(
        cached.get_session("sid").await.expect("get").is_some(),
        "within local_cache the cached copy is served (this is the cache at work)"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        cached.get_session("sid").await.expect("get").is_none(),
        "after local_cache the logout elsewhere is seen"
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
            pending_budget: entree_bridge::config::DEFAULT_PENDING_BUDGET,
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

/// The Redis memory each kind of key takes (MEMORY USAGE), for the sizing in
/// docs/deployment.md: printed, and bounded so that a format change that bloats them fails.
#[tokio::test]
async fn redis_state_per_login_stays_small() {
    let prefix = unique_prefix();
    let url = shared_redis_url();
    let s = store::open(&SessionBackend::Redis(redis_settings(&prefix, Duration::ZERO))).expect("redis");
    let hour = Duration::from_secs(3600);
    // Realistic ids: what the bridge generates and what Entree sends.
    let token = entree_bridge::keys::random_token();
    let mut login = pending(Duration::from_secs(600));
    login.request_id = entree_bridge::keys::random_saml_id();
    login.browser_nonce = entree_bridge::keys::random_token();
    s.put_pending(&token, login).await.expect("put");
    let mut sess = session(
        "portal",
        "_f8d1c0a5e7b94b6d8e2c4a1f3b5d7e9f0a2c4e6b",
        "100231",
        hour * 8,
    );
    sess.identity.facts.federated_id = "100231@school-a.nl".into();
    s.put_session(&entree_bridge::keys::random_token(), sess, hour)
        .await
        .expect("put");
    let assertion = format!("https://aselect.entree.kennisnet.nl|_{}", "a1b2c3d4".repeat(5));
    assert!(s
        .remember_assertion(&assertion, SystemTime::now() + hour)
        .await
        .expect("replay"));
    let mut conn = redis_connection(&url).await;
    let mut sizes = std::collections::BTreeMap::new();
    for key in keys_under(&url, &prefix).await {
        let bytes: i64 = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .expect("memory usage");
        let kind = key[prefix.len()..].split(':').next().unwrap_or("").to_string();
        sizes.insert(kind, bytes);
    }
    eprintln!("redis bytes per key: {sizes:?}");
    for (kind, limit) in [
        ("login", 512),
        ("session", 1024),
        ("subject", 384),
        ("replay", 160),
        ("pending-bytes", 128),
    ] {
        let bytes = sizes.get(kind).copied().unwrap_or_else(|| panic!("no {kind} key"));
        assert!(bytes <= limit, "{kind}: {bytes} bytes > {limit}");
    }
}

#[tokio::test]
async fn pending_links_are_answered_once() {
    for b in backends() {
        let link = PendingLink {
            app: "portal".into(),
            facts: session("portal", "nid", "p", Duration::from_secs(60)).identity.facts,
            target: None,
            subject: Subject::default(),
            browser_nonce: "nonce".into(),
            expires_at: SystemTime::now() + Duration::from_secs(60),
            oidc: None,
            authenticated_at: SystemTime::now(),
        };
        b.store.put_pending_link("jti-1", link.clone()).await.expect("put");
        assert_eq!(
            b.store.take_pending_link("jti-1").await.expect("take"),
            Some(link),
            "{:?}",
            b.prefix
        );
        assert_eq!(b.store.take_pending_link("jti-1").await.expect("take"), None);
    }
}

#[tokio::test]
async fn a_flood_of_started_logins_is_refused_once_the_budget_is_spent() {
    let prefix = unique_prefix();
    let url = shared_redis_url();
    let mut settings = redis_settings(&prefix, Duration::ZERO);
    settings.pending_budget = 100_000;
    let s = store::open(&SessionBackend::Redis(settings)).expect("redis");
    let mut refused = 0;
    for i in 0..200 {
        let mut l = pending(Duration::from_secs(600));
        l.target = Some(format!("https://numo.example.nl/{}", "x".repeat(1500)));
        match s.put_pending(&format!("rs{i}"), l).await {
            Ok(()) => {}
            Err(entree_bridge::store::StoreError::Full(why)) => {
                refused += 1;
                assert!(why.contains("budget 100000"), "{why}");
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(refused > 100, "most of the flood is refused: {refused}");
    let kept = keys_under(&url, &format!("{prefix}login:")).await.len();
    assert!(kept > 0 && kept * 1600 <= 100_000 + 1600, "{kept} pending logins kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_dies_silently_is_replaced_within_seconds() {
    let target: std::net::SocketAddr = shared_redis_url()
        .trim_start_matches("redis://")
        .parse()
        .expect("host:port of the shared Redis");
    let gate = TcpGate::start(target, true).await;
    let mut settings = redis_settings(&unique_prefix(), Duration::ZERO);
    settings.nodes = RedisNodes::Single(format!("redis://{}", gate.addr));
    settings.timeout = Duration::from_millis(500);
    let s = store::open(&SessionBackend::Redis(settings)).expect("redis");
    s.ping().await.expect("up");
    // The host goes silent: no FIN, no RST, the connection just stops answering.
    gate.freeze_open_connections();
    let started = std::time::Instant::now();
    assert!(s.ping().await.is_err(), "a silent connection times out");
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if s.take_pending("rs").await.is_ok() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not replaced within 10s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("replaced after {:?}", started.elapsed());
}
