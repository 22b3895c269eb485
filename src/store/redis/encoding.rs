//! How values and scripts look in Redis: every value in a versioned envelope
//! (`{"v":1,"d":...}`), the Lua scripts that keep a session and its TTL in one step, and the
//! time and key helpers they share.

use std::time::{SystemTime, UNIX_EPOCH};

use redis::Cmd;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::MAX_ID_LEN;
use crate::store::StoreError;

/// The format version this build writes.
const VERSION: u32 = 1;

#[derive(Serialize)]
struct EnvelopeOut<'a, T> {
    v: u32,
    d: &'a T,
}

#[derive(serde::Deserialize)]
struct EnvelopeIn<'a> {
    v: u32,
    #[serde(borrow)]
    d: &'a serde_json::value::RawValue,
}

pub(super) fn encode<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(&EnvelopeOut { v: VERSION, d: value })
        .map_err(|e| StoreError::Unavailable(format!("cannot encode a value: {e}")))
}

/// The value, or `None` (with a warning) when it is of a version this build cannot read.
pub(super) fn decode<T: DeserializeOwned>(key_kind: &str, bytes: &[u8]) -> Option<T> {
    let parsed = serde_json::from_slice::<EnvelopeIn>(bytes)
        .map_err(|e| e.to_string())
        .and_then(|env| match env.v {
            1 => serde_json::from_str::<T>(env.d.get()).map_err(|e| e.to_string()),
            other => Err(format!("format version {other} is not known to this build")),
        });
    match parsed {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(key_kind, "ignoring an unreadable value in Redis: {e}");
            None
        }
    }
}

pub(super) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Milliseconds from now until `t`, at least 1 (PX 0 is an error), or `None` when `t` has passed.
pub(super) fn ttl_ms(t: SystemTime) -> Option<u64> {
    let left = t.duration_since(SystemTime::now()).ok()?;
    Some(u64::try_from(left.as_millis()).unwrap_or(u64::MAX).max(1))
}

pub(super) fn hex_sha256(s: &str) -> String {
    match openssl::hash::hash(openssl::hash::MessageDigest::sha256(), s.as_bytes()) {
        Ok(digest) => digest.iter().map(|b| format!("{b:02x}")).collect(),
        // Hashing in memory does not fail; keep the key usable (and bounded) if it ever does.
        Err(_) => s.chars().take(MAX_ID_LEN).collect(),
    }
}

/// Stores a session and sets its TTL to min(idle, time left), atomically. Time is Redis's
/// own clock, so that instances with slightly different clocks agree on every TTL.
/// ARGV: document, absolute end (unix ms), idle (ms).
pub(super) const PUT_SESSION: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local left = tonumber(ARGV[2]) - now
if left <= 0 then return 0 end
local idle = tonumber(ARGV[3])
if idle < left then left = idle end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'a', ARGV[2], 'i', ARGV[3])
redis.call('PEXPIRE', KEYS[1], left)
return 1
";

/// Reads a session and starts its idle period again (never past its absolute end). A hash
/// missing a field (not written by this version) counts as absent.
pub(super) const TOUCH_SESSION: &str = r"
local f = redis.call('HMGET', KEYS[1], 'v', 'a', 'i')
if not f[1] or not f[2] or not f[3] then return false end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local left = tonumber(f[2]) - now
local idle = tonumber(f[3])
if not left or not idle or left <= 0 then redis.call('DEL', KEYS[1]) return false end
if idle < left then left = idle end
redis.call('PEXPIRE', KEYS[1], left)
return f[1]
";

/// Ends a session and returns its document (false when there was none), in one step.
pub(super) const END_SESSION: &str = r"
local v = redis.call('HGET', KEYS[1], 'v')
redis.call('DEL', KEYS[1])
return v
";

/// Adds a session id to a subject's set; the set lives as long as its longest session.
/// ARGV: session id, TTL (ms).
pub(super) const INDEX_SESSION: &str = r"
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
";

/// Counts bytes into a window's budget; the counter expires with its window. ARGV: bytes, TTL (s).
pub(super) const COUNT_PENDING: &str = r"
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if n == tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return n
";

/// EVAL of a one-key script.
pub(super) fn eval(script: &str, key: &str) -> Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(script).arg(1).arg(key);
    cmd
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn values_carry_their_version_and_unknown_versions_read_as_absent() {
        let doc = encode(&vec!["a".to_string()]).unwrap();
        assert_eq!(doc, r#"{"v":1,"d":["a"]}"#);
        assert_eq!(decode::<Vec<String>>("t", doc.as_bytes()), Some(vec!["a".to_string()]));
        assert_eq!(decode::<Vec<String>>("t", br#"{"v":2,"d":["a"]}"#), None);
        assert_eq!(decode::<Vec<String>>("t", b"not json"), None);
        assert_eq!(decode::<Vec<String>>("t", br#"{"v":1,"d":{"x":1}}"#), None);
    }

    #[test]
    fn ttls_are_at_least_a_millisecond_and_none_once_passed() {
        assert_eq!(ttl_ms(SystemTime::now() - Duration::from_secs(1)), None);
        let ttl = ttl_ms(SystemTime::now() + Duration::from_secs(10)).unwrap();
        assert!((9_000..=10_000).contains(&ttl), "{ttl}");
    }
}
