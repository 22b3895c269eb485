//! The Redis store on the other topologies the config offers: `rediss://` (TLS, with the
//! bridge's own CA file) and Redis Cluster (keys spread over three masters). Each runs on
//! private redis-server processes the test starts.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::services::*;
use entree_bridge::config::{RedisNodes, RedisSettings, SessionBackend};
use entree_bridge::identity::{Facts, Identity};
use entree_bridge::store::{self, AppSession, LoginStateStore, PendingLogin, Subject};

fn settings(nodes: RedisNodes, ca_pem: Option<Vec<u8>>) -> RedisSettings {
    RedisSettings {
        nodes,
        prefix: unique_prefix(),
        ca_pem,
        timeout: Duration::from_secs(2),
        local_cache: Duration::ZERO,
        pending_budget: entree_bridge::config::DEFAULT_PENDING_BUDGET,
    }
}

fn session(n: usize, name_id: &str) -> AppSession {
    AppSession {
        app: "portal".into(),
        identity: Identity {
            person_code: format!("p{n}"),
            facts: Facts {
                federated_id: format!("p{n}@school-a.nl"),
                school: Some("99XX".into()),
                affiliation: vec!["student".into()],
                tenant: None,
                given_name: None,
                extra: Vec::new(),
            },
        },
        subject: Subject {
            name_id: name_id.into(),
            name_id_format: None,
            session_index: None,
        },
        expires_at: SystemTime::now() + Duration::from_secs(3600),
        authenticated_at: SystemTime::now(),
    }
}

/// What every topology must do: pending logins once, replays refused, sessions (spread over
/// many hash slots) found, and Single Logout reaching all of one subject's sessions.
async fn the_contract_holds(store: Arc<dyn LoginStateStore>) {
    store.ping().await.expect("ping");
    let login = PendingLogin {
        request_id: "_r".into(),
        app: "numo".into(),
        target: None,
        browser_nonce: "n".into(),
        expires_at: SystemTime::now() + Duration::from_secs(60),
        oidc: None,
        force_authn: false,
    };
    store.put_pending("rs", login.clone()).await.expect("put");
    assert_eq!(store.take_pending("rs").await.expect("take"), Some(login));
    assert_eq!(store.take_pending("rs").await.expect("take"), None);

    let until = SystemTime::now() + Duration::from_secs(60);
    assert!(store.remember_assertion("idp|_a", until).await.expect("replay"));
    assert!(!store.remember_assertion("idp|_a", until).await.expect("replay"));

    let idle = Duration::from_secs(600);
    for n in 0..40 {
        let name_id = if n % 4 == 0 { "nid-shared" } else { "nid-other" };
        store
            .put_session(&format!("sid-{n}"), session(n, name_id), idle)
            .await
            .expect("put session");
    }
    for n in 0..40 {
        let got = store.get_session(&format!("sid-{n}")).await.expect("get");
        assert_eq!(got.map(|s| s.identity.person_code), Some(format!("p{n}")));
    }
    assert_eq!(store.remove_sessions_of("portal", "nid-shared").await.expect("slo"), 10);
    for n in 0..40 {
        let present = store.get_session(&format!("sid-{n}")).await.expect("get").is_some();
        assert_eq!(present, n % 4 != 0, "sid-{n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_a_private_ca_works_and_an_unknown_ca_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let (ca, cert, key) = ca_and_server_certificate("127.0.0.1");
    let write = |name: &str, pem: Vec<u8>| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).expect("write");
        path.display().to_string()
    };
    let ca_pem = ca.to_pem().expect("pem");
    let ca_path = write("ca.pem", ca_pem.clone());
    let cert_path = write("server.pem", cert.to_pem().expect("pem"));
    let key_path = write("server.key", key.private_key_to_pem_pkcs8().expect("pem"));
    let port = free_port();
    let mut server = RedisServer::stopped_with(
        port,
        [
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            &cert_path,
            "--tls-key-file",
            &key_path,
            "--tls-ca-cert-file",
            &ca_path,
            "--tls-auth-clients",
            "no",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    );
    server.start();
    let url = format!("rediss://127.0.0.1:{port}");

    let store = store::open(&SessionBackend::Redis(settings(
        RedisNodes::Single(url.clone()),
        Some(ca_pem),
    )))
    .expect("store");
    the_contract_holds(store).await;

    // Without the CA (system roots only) the server's certificate is not trusted.
    let untrusting =
        store::open(&SessionBackend::Redis(settings(RedisNodes::Single(url.clone()), None))).expect("store");
    let e = untrusting
        .ping()
        .await
        .expect_err("an untrusted certificate is refused");
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
    // Plain redis:// to a TLS port gets no answer either.
    let plain = store::open(&SessionBackend::Redis(settings(
        RedisNodes::Single(format!("redis://127.0.0.1:{port}")),
        None,
    )))
    .expect("store");
    assert!(plain.ping().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_spreads_keys_over_its_masters() {
    let dir = tempfile::tempdir().expect("dir");
    let mut servers: Vec<RedisServer> = (0..3)
        .map(|_| {
            let port = free_port();
            let d = dir.path().display().to_string();
            RedisServer::stopped_with(
                port,
                [
                    "--port".to_string(),
                    port.to_string(),
                    "--cluster-enabled".into(),
                    "yes".into(),
                    "--cluster-config-file".into(),
                    format!("nodes-{port}.conf"),
                    "--dir".into(),
                    d,
                ]
                .to_vec(),
            )
        })
        .collect();
    for s in &mut servers {
        s.start();
    }
    let nodes: Vec<String> = servers.iter().map(|s| format!("127.0.0.1:{}", s.port)).collect();
    let created = std::process::Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&nodes)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("redis-cli runs (scripts/system-deps.sh installs it)");
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stdout));
    // Wait until every node agrees the cluster is up.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    for s in &servers {
        loop {
            let info = std::process::Command::new("redis-cli")
                .args(["-p", &s.port.to_string(), "cluster", "info"])
                .output()
                .expect("redis-cli");
            if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "cluster did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let urls: Vec<String> = nodes.iter().map(|n| format!("redis://{n}")).collect();
    let cluster = settings(RedisNodes::Cluster(urls), None);
    let prefix = cluster.prefix.clone();
    let store = store::open(&SessionBackend::Redis(cluster)).expect("store");
    the_contract_holds(store).await;

    // The session keys really are on more than one master.
    let mut holders = 0;
    for s in &servers {
        let mut conn = redis_connection(&format!("redis://127.0.0.1:{}", s.port)).await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}session:*"))
            .query_async(&mut conn)
            .await
            .expect("keys");
        holders += usize::from(!keys.is_empty());
    }
    assert!(holders >= 2, "sessions on {holders} master(s)");
}
