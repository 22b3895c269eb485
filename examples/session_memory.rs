//! Memory per session in the memory store: the process's resident size before and after
//! 100,000 realistic headers-mode sessions (Linux, /proc/self/status).
//!
//!     cargo run --release --example session_memory [count]

use std::time::{Duration, SystemTime};

use entree_bridge::identity::{Facts, Identity};
use entree_bridge::store::memory::MemoryStore;
use entree_bridge::store::{AppSession, LoginStateStore, Subject};

fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn session(n: usize) -> AppSession {
    AppSession {
        app: "rooster".into(),
        identity: Identity {
            person_code: format!("{}", 100_000 + n),
            facts: Facts {
                federated_id: format!("{}@school-a.nl", 100_000 + n),
                school: Some("99XX".into()),
                affiliation: vec!["student".into(), "member".into()],
                tenant: Some("schoolingang-a".into()),
                given_name: Some("Sanne".into()),
                extra: Vec::new(),
            },
        },
        subject: Subject {
            name_id: format!("_{:040x}", n),
            name_id_format: Some("urn:oasis:names:tc:SAML:2.0:nameid-format:transient".into()),
            session_index: Some(format!("_{:032x}", n)),
        },
        expires_at: SystemTime::now() + Duration::from_secs(8 * 3600),
        authenticated_at: SystemTime::now(),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let count: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let store = MemoryStore::default();
    // Warm the allocator and the cache's structures with a first session.
    store
        .put_session("warm", session(0), Duration::from_secs(3600))
        .await
        .expect("put");
    let before = resident_bytes();
    for n in 0..count {
        let id = entree_bridge::keys::random_token();
        store
            .put_session(&id, session(n), Duration::from_secs(3600))
            .await
            .expect("put");
    }
    // moka applies inserts in batches; let it finish before measuring.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let probe = store.get_session("warm").await.expect("get");
    let after = resident_bytes();
    let per = after.saturating_sub(before) as f64 / count as f64;
    println!(
        "{count} sessions: resident {} -> {} bytes, {per:.0} bytes per session (warm session still there: {})",
        before,
        after,
        probe.is_some()
    );
}
