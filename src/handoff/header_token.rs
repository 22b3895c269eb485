//! headers mode: the `X-Bridge-Token` of each app session.
//!
//! Signing a JWT costs tens of microseconds, more than everything else the proxy does for a
//! request. So a session's token is signed once and sent again for the first half of its
//! lifetime: an app always receives a token with at least half of `token_lifetime` left, and
//! `jti` identifies the token, not the request (`token_reuse = false` signs one per request).
//! A cached token is only ever used after the session itself was found valid, so a logout
//! or an expired session ends its token's use at once.

use std::time::Duration;

use axum::http::HeaderValue;

/// Bounds the cache by bytes: a token is some 500-900 bytes, so this holds the tokens of
/// tens of thousands of active sessions.
const MAX_BYTES: u64 = 32 * 1024 * 1024;
/// Entries older than this are dropped whatever their token says (a backstop for memory).
const MAX_AGE: Duration = Duration::from_secs(600);

#[derive(Clone)]
struct Reusable {
    value: HeaderValue,
    /// Unix seconds from which the token is signed anew.
    reuse_until: i64,
}

/// The reusable tokens, by session id. Lives with one config: a reload (new keys, new
/// claims) starts with an empty cache.
pub struct HeaderTokens {
    cache: moka::sync::Cache<String, Reusable>,
}

impl Default for HeaderTokens {
    fn default() -> Self {
        HeaderTokens {
            cache: moka::sync::Cache::builder()
                .max_capacity(MAX_BYTES)
                .weigher(|key: &String, v: &Reusable| (key.len() + v.value.len() + 64).try_into().unwrap_or(u32::MAX))
                .time_to_live(MAX_AGE)
                .build(),
        }
    }
}

impl HeaderTokens {
    /// The session's token: the one signed earlier while it is still in its first half of
    /// `lifetime`, else a new one from `sign` (called with `now`).
    pub fn get_or_sign<E>(
        &self,
        session_id: &str,
        now: i64,
        lifetime: Duration,
        sign: impl FnOnce(i64) -> Result<HeaderValue, E>,
    ) -> Result<HeaderValue, E> {
        if let Some(hit) = self.cache.get(session_id).filter(|r| now < r.reuse_until) {
            return Ok(hit.value);
        }
        let value = sign(now)?;
        let half = i64::try_from(lifetime.as_secs() / 2).unwrap_or(i64::MAX);
        if half > 0 {
            let reuse_until = now.saturating_add(half);
            self.cache.insert(
                session_id.to_string(),
                Reusable {
                    value: value.clone(),
                    reuse_until,
                },
            );
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(calls: &std::cell::Cell<u32>) -> impl Fn(i64) -> Result<HeaderValue, ()> + '_ {
        move |now| {
            calls.set(calls.get() + 1);
            Ok(HeaderValue::from_str(&format!("token-{now}")).unwrap())
        }
    }

    #[test]
    fn a_token_is_reused_for_the_first_half_of_its_lifetime_only() {
        let tokens = HeaderTokens::default();
        let calls = std::cell::Cell::new(0);
        let life = Duration::from_secs(60);
        assert_eq!(
            tokens.get_or_sign("s1", 1000, life, signer(&calls)).unwrap(),
            "token-1000"
        );
        assert_eq!(
            tokens.get_or_sign("s1", 1029, life, signer(&calls)).unwrap(),
            "token-1000"
        );
        assert_eq!(calls.get(), 1);
        // Half its lifetime gone: a new one, reused from then on.
        assert_eq!(
            tokens.get_or_sign("s1", 1030, life, signer(&calls)).unwrap(),
            "token-1030"
        );
        assert_eq!(
            tokens.get_or_sign("s1", 1031, life, signer(&calls)).unwrap(),
            "token-1030"
        );
        assert_eq!(calls.get(), 2);
        // Another session never gets this one's token.
        assert_eq!(
            tokens.get_or_sign("s2", 1031, life, signer(&calls)).unwrap(),
            "token-1031"
        );
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn a_lifetime_under_two_seconds_is_never_reused() {
        let tokens = HeaderTokens::default();
        let calls = std::cell::Cell::new(0);
        for _ in 0..3 {
            tokens
                .get_or_sign("s", 5, Duration::from_secs(1), signer(&calls))
                .unwrap();
        }
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn a_failed_signature_is_not_cached() {
        let tokens = HeaderTokens::default();
        let failed: Result<HeaderValue, &str> = tokens.get_or_sign("s", 5, Duration::from_secs(60), |_| Err("no key"));
        assert!(failed.is_err());
        let calls = std::cell::Cell::new(0);
        tokens
            .get_or_sign("s", 6, Duration::from_secs(60), signer(&calls))
            .unwrap();
        assert_eq!(calls.get(), 1);
    }
}
