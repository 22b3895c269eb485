//! Login state in Redis, shared by every instance of the bridge.
//!
//! Keys (all under `sessions.redis_prefix`, every one with a TTL):
//! - `login:{relay_state}`  pending AuthnRequest, string, taken with GETDEL (once)
//! - `link:{jti}`           pending first-time link, string, taken with GETDEL (once)
//! - `replay:{sha256}`      assertion seen, SET NX PX (atomic across instances)
//! - `session:{id}`         app session, hash {v: document, a: absolute end ms, i: idle ms};
//!   a read moves its TTL to min(idle, time left) in the same script
//! - `subject:{app}:{sha256}` set of session ids of one IdP NameID (Single Logout)
//! - `code:{sha256}`        oidc authorization code's grant, taken with GETDEL (once, atomic)
//! - `token:{sha256}`       oidc access token's grant, read with GET
//! - `pending-bytes:{window}` bytes of pending logins started in a 10-minute window: anyone can
//!   start a login, so their total is bounded as in the memory store
//!
//! Values are `{"v":1,"d":...}`: a later version adds `2` and keeps reading `1`, so instances
//! of both versions can run side by side during a rolling upgrade. A value of an unknown version
//! is treated as absent (fail closed: the student logs in again).
//!
//! The connection is made lazily and remade by itself: the bridge starts while Redis is down,
//! answers 503 while it is away, and carries on when it is back. Every operation is bounded by
//! `sessions.timeout`. A keepalive pings every second; after three failed pings in a row the
//! connection is replaced by a new one, so that a connection that died silently (a host gone
//! without a reset) or that failed for a reason other than the network (a wrong password,
//! since fixed) does not linger. Scripts go as EVAL (they are tiny; Redis caches them by
//! hash), so a cluster never needs SCRIPT LOAD on every node.

mod connection;
mod encoding;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{
    AccessGrant, AppSession, CodeGrant, EndedSession, LoginStateStore, PendingLink, PendingLogin, RedisSettings,
    StoreError, StoreFuture,
};
use connection::{unavailable, Conn, Nodes};
use encoding::{
    decode, encode, eval, hex_sha256, ttl_ms, unix_ms, COUNT_PENDING, END_SESSION, INDEX_SESSION, PUT_SESSION,
    TOUCH_SESSION,
};

/// Ids the bridge hands out are far shorter; anything longer cannot be ours and is not looked up.
const MAX_ID_LEN: usize = 128;

/// How often an idle instance checks its connection, so that it notices a restarted Redis
/// before a student does.
const KEEPALIVE: Duration = Duration::from_secs(1);

/// Failed keepalive pings in a row after which the connection is replaced.
const REPLACE_AFTER_FAILED_PINGS: u32 = 3;

/// Pending logins are counted in fixed windows of this length, each with its own budget
/// (`RedisSettings::pending_budget`), so at most twice the budget is held at a boundary.
const PENDING_WINDOW_SECS: u64 = 600;

struct Inner {
    nodes: Nodes,
    prefix: String,
    timeout: Duration,
    pending_budget: u64,
    /// Sessions read lately, reused for `sessions.local_cache` without asking Redis.
    local: Option<moka::sync::Cache<String, AppSession>>,
    /// Sessions ended on this instance within `local_cache`: a read that was under way while
    /// one ended must not put it back into `local`.
    ended: Option<moka::sync::Cache<String, ()>>,
}

#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

impl RedisStore {
    /// A store on the configured Redis. Does not connect yet (the bridge must start while
    /// Redis is down); fails only on a config that cannot work (bad URL or CA).
    pub fn new(settings: &RedisSettings) -> Result<Self, StoreError> {
        let nodes = Nodes::open(settings)?;
        let with_cache = !settings.local_cache.is_zero();
        let local = with_cache.then(|| {
            moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(settings.local_cache)
                .build()
        });
        let ended = with_cache.then(|| {
            moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(settings.local_cache)
                .build()
        });
        Ok(RedisStore {
            inner: Arc::new(Inner {
                nodes,
                prefix: settings.prefix.clone(),
                timeout: settings.timeout,
                pending_budget: settings.pending_budget,
                local,
                ended,
            }),
        })
    }

    /// Pings Redis every second while the store lives, so that a lost connection is remade
    /// before the next login needs it. Call from within the runtime.
    pub fn start_keepalive(&self) {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut failed_in_a_row = 0u32;
            loop {
                tokio::time::sleep(KEEPALIVE).await;
                let Some(inner) = weak.upgrade() else { return };
                let store = RedisStore { inner };
                match store.ping().await {
                    Ok(()) if failed_in_a_row > 0 => {
                        tracing::info!("Redis is reachable again");
                        failed_in_a_row = 0;
                    }
                    Ok(()) => {}
                    Err(e) => {
                        if failed_in_a_row == 0 {
                            tracing::error!("Redis is unreachable; logins answer 503 until it is back: {e}");
                        }
                        failed_in_a_row += 1;
                        if failed_in_a_row.is_multiple_of(REPLACE_AFTER_FAILED_PINGS) {
                            tracing::warn!("replacing the Redis connection after {failed_in_a_row} failed pings");
                            store.replace_connection();
                        }
                    }
                }
            }
        });
    }

    /// Drops the current connection; the next operation makes a new one.
    fn replace_connection(&self) {
        self.inner.nodes.replace_connection();
    }

    fn key(&self, kind: &str, id: &str) -> String {
        let mut key = String::with_capacity(self.inner.prefix.len() + kind.len() + id.len() + 1);
        key.push_str(&self.inner.prefix);
        key.push_str(kind);
        key.push(':');
        key.push_str(id);
        key
    }

    async fn conn(&self) -> Result<Conn, StoreError> {
        self.inner.nodes.conn().await
    }

    /// Runs `op` on a connection, within `sessions.timeout` (connecting included).
    async fn run<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let timeout = self.inner.timeout;
        let work = async {
            let conn = self.conn().await?;
            op(conn).await.map_err(unavailable)
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable(format!(
                "Redis did not answer within {}",
                humantime::format_duration(timeout)
            ))),
        }
    }

    async fn put_value<T: Serialize>(
        &self,
        kind: &str,
        id: &str,
        value: &T,
        until: SystemTime,
    ) -> Result<(), StoreError> {
        let Some(ttl) = ttl_ms(until) else { return Ok(()) };
        let key = self.key(kind, id);
        let doc = encode(value)?;
        self.run(|mut c| async move {
            redis::cmd("SET")
                .arg(&key)
                .arg(doc)
                .arg("PX")
                .arg(ttl)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    async fn take_value<T: DeserializeOwned>(&self, kind: &str, id: &str) -> Result<Option<T>, StoreError> {
        if id.is_empty() || id.len() > MAX_ID_LEN {
            return Ok(None);
        }
        let key = self.key(kind, id);
        let bytes: Option<Vec<u8>> = self
            .run(|mut c| async move { redis::cmd("GETDEL").arg(&key).query_async(&mut c).await })
            .await?;
        Ok(bytes.and_then(|b| decode(kind, &b)))
    }

    fn subject_key(&self, app: &str, name_id: &str) -> String {
        self.key("subject", &format!("{app}:{}", hex_sha256(name_id)))
    }

    async fn session_from_redis(&self, id: &str) -> Result<Option<AppSession>, StoreError> {
        let key = self.key("session", id);
        let bytes: Option<Vec<u8>> = self
            .run(|mut c| async move { eval(TOUCH_SESSION, &key).query_async(&mut c).await })
            .await?;
        Ok(bytes
            .and_then(|b| decode::<AppSession>("session", &b))
            .filter(|s| s.expires_at > SystemTime::now()))
    }

    /// Keeps a session read from (or written to) Redis for `local_cache`, unless it ended here
    /// in the meantime.
    fn cache_session(&self, id: String, session: &AppSession) {
        if let (Some(local), Some(ended)) = (&self.inner.local, &self.inner.ended) {
            if !ended.contains_key(&id) {
                local.insert(id, session.clone());
            }
        }
    }

    fn forget_session(&self, id: &str) {
        if let (Some(local), Some(ended)) = (&self.inner.local, &self.inner.ended) {
            ended.insert(id.to_string(), ());
            local.invalidate(id);
        }
    }
}

impl LoginStateStore for RedisStore {
    fn put_pending(&self, relay_state: &str, login: PendingLogin) -> StoreFuture<'_, ()> {
        let key = self.key("login", relay_state);
        Box::pin(async move {
            let Some(ttl) = ttl_ms(login.expires_at) else {
                return Ok(());
            };
            let doc = encode(&login)?;
            let bytes = key.len() + doc.len();
            let window = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() / PENDING_WINDOW_SECS);
            let counter = self.key("pending-bytes", &window.to_string());
            let key_ref = &key;
            // The entry and its count go together (two keys, one round trip).
            let total: u64 = self
                .run(|mut c| async move {
                    let mut c2 = c.clone();
                    let mut set = redis::cmd("SET");
                    set.arg(key_ref).arg(doc).arg("PX").arg(ttl);
                    let mut count = eval(COUNT_PENDING, &counter);
                    count.arg(bytes).arg(PENDING_WINDOW_SECS * 2);
                    let (stored, total) =
                        tokio::join!(set.query_async::<()>(&mut c), count.query_async::<u64>(&mut c2));
                    stored?;
                    total
                })
                .await?;
            let budget = self.inner.pending_budget;
            if total > budget {
                // Over budget: this login is not kept (best effort; it expires anyway).
                let _ = self
                    .run(|mut c| async move { redis::cmd("DEL").arg(key_ref).query_async::<()>(&mut c).await })
                    .await;
                return Err(StoreError::Full(format!(
                    "{total} bytes of pending logins started in this 10-minute window (budget {budget}): a flood of /login requests?"
                )));
            }
            Ok(())
        })
    }

    fn take_pending(&self, relay_state: &str) -> StoreFuture<'_, Option<PendingLogin>> {
        let id = relay_state.to_string();
        Box::pin(async move {
            let found: Option<PendingLogin> = self.take_value("login", &id).await?;
            Ok(found.filter(|l| l.expires_at > SystemTime::now()))
        })
    }

    fn put_pending_link(&self, jti: &str, link: PendingLink) -> StoreFuture<'_, ()> {
        let id = jti.to_string();
        Box::pin(async move { self.put_value("link", &id, &link, link.expires_at).await })
    }

    fn take_pending_link(&self, jti: &str) -> StoreFuture<'_, Option<PendingLink>> {
        let id = jti.to_string();
        Box::pin(async move {
            let found: Option<PendingLink> = self.take_value("link", &id).await?;
            Ok(found.filter(|l| l.expires_at > SystemTime::now()))
        })
    }

    fn put_session(&self, id: &str, session: AppSession, idle: Duration) -> StoreFuture<'_, ()> {
        let key = self.key("session", id);
        let index = self.subject_key(&session.app, &session.subject.name_id);
        let id = id.to_string();
        Box::pin(async move {
            let doc = encode(&session)?;
            let end = unix_ms(session.expires_at);
            let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX).max(1);
            let Some(index_ttl) = ttl_ms(session.expires_at) else {
                return Ok(());
            };
            // Two keys in (possibly) two cluster slots: sent together, one round trip on the
            // multiplexed connection. An index entry without its session is harmless (Single
            // Logout deletes nothing); both are needed for the login to succeed.
            let (id_ref, index_ref, key_ref) = (&id, &index, &key);
            self.run(|mut c| async move {
                let mut c2 = c.clone();
                let mut add_index = eval(INDEX_SESSION, index_ref);
                add_index.arg(id_ref).arg(index_ttl);
                let mut put = eval(PUT_SESSION, key_ref);
                put.arg(&doc).arg(end).arg(idle_ms);
                let (indexed, stored) =
                    tokio::join!(add_index.query_async::<i64>(&mut c2), put.query_async::<i64>(&mut c));
                indexed?;
                stored.map(|_| ())
            })
            .await?;
            self.cache_session(id, &session);
            Ok(())
        })
    }

    fn get_session(&self, id: &str) -> StoreFuture<'_, Option<AppSession>> {
        let id = id.to_string();
        Box::pin(async move {
            if id.is_empty() || id.len() > MAX_ID_LEN {
                return Ok(None);
            }
            if let Some(local) = &self.inner.local {
                if let Some(s) = local.get(&id).filter(|s| s.expires_at > SystemTime::now()) {
                    return Ok(Some(s));
                }
            }
            let found = self.session_from_redis(&id).await?;
            if let Some(s) = &found {
                self.cache_session(id, s);
            }
            Ok(found)
        })
    }

    fn remove_session(&self, id: &str) -> StoreFuture<'_, ()> {
        let key = self.key("session", id);
        self.forget_session(id);
        Box::pin(async move {
            self.run(|mut c| async move { redis::cmd("DEL").arg(&key).query_async::<()>(&mut c).await })
                .await
        })
    }

    fn end_sessions_of(&self, app: &str, name_id: &str) -> StoreFuture<'_, Vec<EndedSession>> {
        let index = self.subject_key(app, name_id);
        Box::pin(async move {
            let index_ref = &index;
            // One timeout for the whole: a Single Logout is bounded like any other request.
            self.run(|mut c| async move {
                let ids: Vec<String> = redis::cmd("SMEMBERS").arg(index_ref).query_async(&mut c).await?;
                let mut ended = Vec::new();
                // One script per session: in a cluster they live in different slots.
                for id in &ids {
                    self.forget_session(id);
                    let doc: Option<Vec<u8>> = eval(END_SESSION, &self.key("session", id)).query_async(&mut c).await?;
                    if let Some(doc) = doc {
                        // A document of another version still ended; it just names no person.
                        let person_code = decode::<AppSession>("session", &doc)
                            .map(|s| s.identity.person_code)
                            .unwrap_or_default();
                        ended.push(EndedSession {
                            id: id.clone(),
                            person_code,
                        });
                    }
                }
                // Only the ids handled here: a session that joined meanwhile keeps its entry.
                if !ids.is_empty() {
                    redis::cmd("SREM")
                        .arg(index_ref)
                        .arg(&ids)
                        .query_async::<()>(&mut c)
                        .await?;
                }
                Ok(ended)
            })
            .await
        })
    }

    fn put_code(&self, key: &str, grant: CodeGrant) -> StoreFuture<'_, ()> {
        let id = key.to_string();
        Box::pin(async move { self.put_value("code", &id, &grant, grant.expires_at).await })
    }

    fn take_code(&self, key: &str) -> StoreFuture<'_, Option<CodeGrant>> {
        let id = key.to_string();
        Box::pin(async move {
            // GETDEL: of two instances redeeming the same code at once, one gets it.
            let found: Option<CodeGrant> = self.take_value("code", &id).await?;
            Ok(found.filter(|g| g.expires_at > SystemTime::now()))
        })
    }

    fn put_access_token(&self, key: &str, grant: AccessGrant) -> StoreFuture<'_, ()> {
        let id = key.to_string();
        Box::pin(async move { self.put_value("token", &id, &grant, grant.expires_at).await })
    }

    fn get_access_token(&self, key: &str) -> StoreFuture<'_, Option<AccessGrant>> {
        let id = key.to_string();
        Box::pin(async move {
            if id.is_empty() || id.len() > MAX_ID_LEN {
                return Ok(None);
            }
            let key = self.key("token", &id);
            let bytes: Option<Vec<u8>> = self
                .run(|mut c| async move { redis::cmd("GET").arg(&key).query_async(&mut c).await })
                .await?;
            Ok(bytes
                .and_then(|b| decode::<AccessGrant>("token", &b))
                .filter(|g| g.expires_at > SystemTime::now()))
        })
    }

    fn remember_assertion(&self, key: &str, until: SystemTime) -> StoreFuture<'_, bool> {
        // Hashed: the ID comes from the IdP and may be long; the key stays 64 hex digits.
        let key = self.key("replay", &hex_sha256(key));
        Box::pin(async move {
            // Already past its end: nothing can replay it in a valid window; refuse to be safe.
            let Some(ttl) = ttl_ms(until) else { return Ok(false) };
            let set: Option<String> = self
                .run(|mut c| async move {
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(1)
                        .arg("NX")
                        .arg("PX")
                        .arg(ttl)
                        .query_async(&mut c)
                        .await
                })
                .await?;
            Ok(set.is_some())
        })
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.run(|mut c| async move { redis::cmd("PING").query_async::<()>(&mut c).await })
                .await
        })
    }
}
