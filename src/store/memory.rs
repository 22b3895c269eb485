//! In-process state store on moka caches with a per-entry expiry. Bounded in size, so a
//! flood of started-but-never-finished logins cannot exhaust memory.

use std::time::{Duration, Instant, SystemTime};

use moka::sync::Cache;
use moka::Expiry;

use super::session_bytes;
use super::{
    AccessGrant, AppSession, CodeGrant, EndedSession, LoginStateStore, PendingLink, PendingLogin, StoreFuture,
};

/// A value that knows when it stops being valid.
trait Deadline {
    fn deadline(&self) -> SystemTime;
}

impl Deadline for PendingLogin {
    fn deadline(&self) -> SystemTime {
        self.expires_at
    }
}

impl Deadline for PendingLink {
    fn deadline(&self) -> SystemTime {
        self.expires_at
    }
}

impl Deadline for CodeGrant {
    fn deadline(&self) -> SystemTime {
        self.expires_at
    }
}

impl Deadline for AccessGrant {
    fn deadline(&self) -> SystemTime {
        self.expires_at
    }
}

/// A replay-cache entry is nothing but its deadline.
impl Deadline for SystemTime {
    fn deadline(&self) -> SystemTime {
        *self
    }
}

/// Each entry expires at its own deadline.
struct UntilDeadline;

impl<K, V: Deadline> Expiry<K, V> for UntilDeadline {
    fn expire_after_create(&self, _key: &K, value: &V, _now: Instant) -> Option<Duration> {
        Some(
            value
                .deadline()
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO),
        )
    }
}

/// Removes and returns an entry that is still valid (moka evicts lazily, so check).
fn take_live<V: Deadline + Clone + Send + Sync + 'static>(cache: &Cache<String, V>, key: &str) -> Option<V> {
    cache.remove(key).filter(|v| v.deadline() > SystemTime::now())
}

/// A session as the memory store keeps it: packed into one allocation (most of the memory a
/// session costs was the headers and rounding of its dozen strings), with the two times its
/// expiry needs kept beside it.
#[derive(Clone)]
struct StoredSession {
    packed: std::sync::Arc<[u8]>,
    expires_at: SystemTime,
    idle: Duration,
}

/// Sessions end at their absolute deadline or after `idle` without use, whichever is first;
/// every read starts the idle period again.
struct SessionExpiry;

fn session_ttl(stored: &StoredSession) -> Duration {
    let absolute = stored
        .expires_at
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    absolute.min(stored.idle)
}

impl Expiry<String, StoredSession> for SessionExpiry {
    fn expire_after_create(&self, _key: &String, value: &StoredSession, _now: Instant) -> Option<Duration> {
        Some(session_ttl(value))
    }

    fn expire_after_read(
        &self,
        _key: &String,
        value: &StoredSession,
        _read_at: Instant,
        _remaining: Option<Duration>,
        _last_modified_at: Instant,
    ) -> Option<Duration> {
        Some(session_ttl(value))
    }
}

pub struct MemoryStore {
    sessions: Cache<String, StoredSession>,
    pending: Cache<String, PendingLogin>,
    links: Cache<String, PendingLink>,
    replay: Cache<String, SystemTime>,
    codes: Cache<String, CodeGrant>,
    access_tokens: Cache<String, AccessGrant>,
}

/// Default bound on pending logins, in bytes. Anyone can start a login, so this is what a
/// flood of `/login` requests can cost at most (a normal entry is about 250 bytes, so this
/// holds some 250,000 logins in their 10 minutes).
pub const DEFAULT_PENDING_BYTES: u64 = super::DEFAULT_PENDING_BUDGET;
/// Replay entries are only made for validly signed assertions, so a count bound is enough.
pub const DEFAULT_REPLAY_ENTRIES: u64 = 1_000_000;

impl MemoryStore {
    /// A store holding at most `pending_bytes` of pending logins and `replay_entries` IDs.
    pub fn with_bounds(pending_bytes: u64, replay_entries: u64) -> Self {
        MemoryStore {
            // Sessions exist only after a validated login, so a count bound suffices.
            sessions: Cache::builder()
                .max_capacity(replay_entries)
                .expire_after(SessionExpiry)
                .build(),
            pending: Cache::builder()
                .max_capacity(pending_bytes)
                .weigher(|key: &String, login: &PendingLogin| {
                    let bytes = key.len()
                        + login.request_id.len()
                        + login.app.len()
                        + login.browser_nonce.len()
                        + login.target.as_ref().map_or(0, String::len)
                        + login.oidc.as_ref().map_or(0, |a| a.stored_len())
                        + 96;
                    u32::try_from(bytes).unwrap_or(u32::MAX)
                })
                .expire_after(UntilDeadline)
                .build(),
            // Pending links exist only after a validated login, so a count bound suffices.
            links: Cache::builder()
                .max_capacity(replay_entries)
                .expire_after(UntilDeadline)
                .build(),
            replay: Cache::builder()
                .max_capacity(replay_entries)
                .expire_after(UntilDeadline)
                .build(),
            // Codes and access tokens exist only after a validated login, as sessions do.
            codes: Cache::builder()
                .max_capacity(replay_entries)
                .expire_after(UntilDeadline)
                .build(),
            access_tokens: Cache::builder()
                .max_capacity(replay_entries)
                .expire_after(UntilDeadline)
                .build(),
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_bounds(DEFAULT_PENDING_BYTES, DEFAULT_REPLAY_ENTRIES)
    }
}

impl LoginStateStore for MemoryStore {
    fn put_pending(&self, relay_state: &str, login: PendingLogin) -> StoreFuture<'_, ()> {
        self.pending.insert(relay_state.to_string(), login);
        Box::pin(async { Ok(()) })
    }

    fn take_pending(&self, relay_state: &str) -> StoreFuture<'_, Option<PendingLogin>> {
        let found = take_live(&self.pending, relay_state);
        Box::pin(async move { Ok(found) })
    }

    fn put_pending_link(&self, jti: &str, link: PendingLink) -> StoreFuture<'_, ()> {
        self.links.insert(jti.to_string(), link);
        Box::pin(async { Ok(()) })
    }

    fn take_pending_link(&self, jti: &str) -> StoreFuture<'_, Option<PendingLink>> {
        let found = take_live(&self.links, jti);
        Box::pin(async move { Ok(found) })
    }

    fn put_session(&self, id: &str, session: AppSession, idle: Duration) -> StoreFuture<'_, ()> {
        let stored = StoredSession {
            packed: session_bytes::pack(&session).into(),
            expires_at: session.expires_at,
            idle,
        };
        self.sessions.insert(id.to_string(), stored);
        Box::pin(async { Ok(()) })
    }

    fn get_session(&self, id: &str) -> StoreFuture<'_, Option<AppSession>> {
        let found = self
            .sessions
            .get(id)
            .filter(|s| s.expires_at > SystemTime::now())
            .and_then(|s| session_bytes::unpack(&s.packed));
        Box::pin(async move { Ok(found) })
    }

    fn session_is_of(&self, id: &str, app: &str) -> StoreFuture<'_, bool> {
        let alive = self
            .sessions
            .get(id)
            .filter(|s| s.expires_at > SystemTime::now())
            .is_some_and(|s| session_bytes::app_of(&s.packed) == Some(app));
        Box::pin(async move { Ok(alive) })
    }

    fn remove_session(&self, id: &str) -> StoreFuture<'_, ()> {
        self.sessions.invalidate(id);
        Box::pin(async { Ok(()) })
    }

    fn end_sessions_of(&self, app: &str, name_id: &str) -> StoreFuture<'_, Vec<EndedSession>> {
        let ended: Vec<EndedSession> = self
            .sessions
            .iter()
            .filter_map(|(id, stored)| {
                let s = session_bytes::unpack(&stored.packed)?;
                (s.app == app && s.subject.name_id == name_id).then(|| EndedSession {
                    id: (*id).clone(),
                    person_code: s.identity.person_code,
                })
            })
            .collect();
        for e in &ended {
            self.sessions.invalidate(&e.id);
        }
        Box::pin(async move { Ok(ended) })
    }

    fn put_code(&self, key: &str, grant: CodeGrant) -> StoreFuture<'_, ()> {
        self.codes.insert(key.to_string(), grant);
        Box::pin(async { Ok(()) })
    }

    fn take_code(&self, key: &str) -> StoreFuture<'_, Option<CodeGrant>> {
        // Cache::remove is atomic per key: of two concurrent redemptions one gets the grant.
        let found = take_live(&self.codes, key);
        Box::pin(async move { Ok(found) })
    }

    fn put_access_token(&self, key: &str, grant: AccessGrant) -> StoreFuture<'_, ()> {
        self.access_tokens.insert(key.to_string(), grant);
        Box::pin(async { Ok(()) })
    }

    fn get_access_token(&self, key: &str) -> StoreFuture<'_, Option<AccessGrant>> {
        let found = self.access_tokens.get(key).filter(|g| g.expires_at > SystemTime::now());
        Box::pin(async move { Ok(found) })
    }

    fn remember_assertion(&self, key: &str, until: SystemTime) -> StoreFuture<'_, bool> {
        if until <= SystemTime::now() {
            // Nothing valid can still be presented; refuse rather than record nothing.
            return Box::pin(async { Ok(false) });
        }
        // entry().or_insert_with is atomic per key: exactly one caller sees a fresh entry.
        let entry = self.replay.entry(key.to_string()).or_insert_with(|| until);
        let fresh = entry.is_fresh();
        Box::pin(async move { Ok(fresh) })
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn login(expires_in: Duration) -> PendingLogin {
        PendingLogin {
            request_id: "_r".into(),
            app: "numo".into(),
            target: None,
            browser_nonce: "n".into(),
            expires_at: SystemTime::now() + expires_in,
            oidc: None,
            force_authn: false,
        }
    }

    #[tokio::test]
    async fn pending_logins_are_taken_once() {
        let store = MemoryStore::default();
        store.put_pending("rs", login(Duration::from_secs(60))).await.unwrap();
        assert!(store.take_pending("rs").await.unwrap().is_some());
        assert!(store.take_pending("rs").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn expired_pending_logins_are_gone() {
        let store = MemoryStore::default();
        store.put_pending("rs", login(Duration::from_millis(1))).await.unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert!(store.take_pending("rs").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn replay_cache_admits_each_id_once_even_concurrently() {
        let store = Arc::new(MemoryStore::default());
        let until = SystemTime::now() + Duration::from_secs(60);
        let mut handles = Vec::new();
        for _ in 0..8 {
            let s = store.clone();
            handles.push(std::thread::spawn(move || {
                futures_lite(s.remember_assertion("id", until))
            }));
        }
        let fresh: usize = handles.into_iter().map(|h| usize::from(h.join().unwrap())).sum();
        assert_eq!(fresh, 1);
    }

    #[tokio::test]
    async fn a_flood_of_started_logins_stays_within_the_byte_budget() {
        let store = MemoryStore::with_bounds(100_000, 10);
        for i in 0..5_000 {
            let mut l = login(Duration::from_secs(600));
            l.target = Some("x".repeat(500));
            store.put_pending(&format!("rs{i}"), l).await.unwrap();
        }
        store.pending.run_pending_tasks();
        assert!(
            store.pending.weighted_size() <= 100_000,
            "{}",
            store.pending.weighted_size()
        );
    }

    fn futures_lite(f: StoreFuture<'_, bool>) -> bool {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
            .unwrap()
    }
}
