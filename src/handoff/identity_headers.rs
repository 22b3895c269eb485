//! headers mode: the identity headers of each app session, `X-Bridge-Token` among them.
//!
//! Signing a JWT costs tens of microseconds, more than everything else the proxy does for a
//! request. So a session's token is signed once and sent again for the first half of its
//! lifetime: an app always receives a token with at least half of `token_lifetime` left, and
//! `jti` identifies the token, not the request (`token_reuse = false` signs one per request).
//! The other identity headers never change within a session, so they are made along with the
//! token and sent as they are (no copies per request). Cached headers are only ever used
//! after the session itself was found valid, so a logout or an expired session ends their
//! use at once.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};

use super::settings::HeaderNames;
use crate::identity::{check_clean, Identity, IdentityError, MAX_VALUE_LEN};

/// The values of one session's identity headers, ready to send.
#[derive(Debug, Clone)]
pub struct IdentityHeaderValues {
    pub person_code: HeaderValue,
    pub school: Option<HeaderValue>,
    pub affiliation: HeaderValue,
    pub tenant: Option<HeaderValue>,
    pub token: HeaderValue,
}

impl IdentityHeaderValues {
    /// The headers of `identity`, with `token` (its claims, signed) as the token header.
    /// Values were checked at login (`identity::facts`, `identity::rule`, the link stores);
    /// one that still is no header value (a session from before that check, a bad stored
    /// link) is refused. Never a substitute: two students would share it.
    pub fn of(identity: &Identity, token: HeaderValue) -> Result<Self, IdentityError> {
        let facts = &identity.facts;
        let value = |field: &'static str, v: &str| {
            check_clean(field, v, MAX_VALUE_LEN)?;
            HeaderValue::from_str(v).map_err(|_| IdentityError::ValueNotClean {
                field,
                reason: "it is not a header value",
            })
        };
        // Each affiliation was checked at login; joined they may be longer than one value.
        let affiliation =
            HeaderValue::from_str(&facts.affiliation.join(",")).map_err(|_| IdentityError::ValueNotClean {
                field: "affiliation",
                reason: "it is not a header value",
            })?;
        Ok(IdentityHeaderValues {
            person_code: value("person code", &identity.person_code)?,
            school: facts.school.as_deref().map(|v| value("school", v)).transpose()?,
            affiliation,
            tenant: facts.tenant.as_deref().map(|v| value("tenant", v)).transpose()?,
            token,
        })
    }

    /// Each header under its name in `names`, in the order they are sent; `None` where the
    /// identity has no such value (no school, no tenant) and the header is left out. An
    /// array, not a `Vec`: the proxy asks for it on every request.
    pub fn named<'a>(&'a self, names: &'a HeaderNames) -> [(&'a HeaderName, Option<&'a HeaderValue>); 5] {
        [
            (&names.person_code, Some(&self.person_code)),
            (&names.school, self.school.as_ref()),
            (&names.affiliation, Some(&self.affiliation)),
            (&names.tenant, self.tenant.as_ref()),
            (&names.token, Some(&self.token)),
        ]
    }
}

/// Bounds the cache by bytes: a session's headers are some 600-1,000 bytes, so this holds
/// those of tens of thousands of active sessions.
const MAX_BYTES: u64 = 32 * 1024 * 1024;
/// Entries older than this are dropped whatever their token says (a backstop for memory).
const MAX_AGE: Duration = Duration::from_secs(600);

#[derive(Clone)]
struct Reusable {
    values: Arc<IdentityHeaderValues>,
    /// Unix seconds from which the token is signed anew.
    reuse_until: i64,
}

/// The reusable identity headers, by session id. Lives with one config: a reload (new keys,
/// new claims, new header names) starts with an empty cache.
pub struct IdentityHeaders {
    cache: moka::sync::Cache<String, Reusable>,
}

impl Default for IdentityHeaders {
    fn default() -> Self {
        let weigh = |key: &String, v: &Reusable| {
            let v = &v.values;
            let bytes = key.len()
                + v.person_code.len()
                + v.school.as_ref().map_or(0, HeaderValue::len)
                + v.affiliation.len()
                + v.tenant.as_ref().map_or(0, HeaderValue::len)
                + v.token.len()
                + 256;
            u32::try_from(bytes).unwrap_or(u32::MAX)
        };
        IdentityHeaders {
            cache: moka::sync::Cache::builder()
                .max_capacity(MAX_BYTES)
                .weigher(weigh)
                .time_to_live(MAX_AGE)
                .build(),
        }
    }
}

impl IdentityHeaders {
    /// The headers made for this session, while their token is in its first half of life.
    /// The caller must have found the session itself valid.
    pub fn fresh(&self, session_id: &str, now: i64) -> Option<Arc<IdentityHeaderValues>> {
        self.cache
            .get(session_id)
            .filter(|r| now < r.reuse_until)
            .map(|r| r.values)
    }

    /// Keeps `values`, made at `now` with a token of `lifetime`, for the first half of it.
    pub fn remember(
        &self,
        session_id: &str,
        now: i64,
        lifetime: Duration,
        values: IdentityHeaderValues,
    ) -> Arc<IdentityHeaderValues> {
        let values = Arc::new(values);
        let half = i64::try_from(lifetime.as_secs() / 2).unwrap_or(i64::MAX);
        if half > 0 {
            self.cache.insert(
                session_id.to_string(),
                Reusable {
                    values: values.clone(),
                    reuse_until: now.saturating_add(half),
                },
            );
        }
        values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl IdentityHeaders {
        /// What the proxy does: the fresh headers, else new ones from `make`, kept.
        fn get_or_make<E>(
            &self,
            session_id: &str,
            now: i64,
            lifetime: Duration,
            make: impl FnOnce(i64) -> Result<IdentityHeaderValues, E>,
        ) -> Result<Arc<IdentityHeaderValues>, E> {
            match self.fresh(session_id, now) {
                Some(hit) => Ok(hit),
                None => Ok(self.remember(session_id, now, lifetime, make(now)?)),
            }
        }
    }

    fn signer(calls: &std::cell::Cell<u32>) -> impl Fn(i64) -> Result<IdentityHeaderValues, ()> + '_ {
        move |now| {
            calls.set(calls.get() + 1);
            Ok(IdentityHeaderValues {
                person_code: HeaderValue::from_static("100231"),
                school: None,
                affiliation: HeaderValue::from_static("student"),
                tenant: None,
                token: HeaderValue::from_str(&format!("token-{now}")).unwrap(),
            })
        }
    }

    #[test]
    fn a_token_is_reused_for_the_first_half_of_its_lifetime_only() {
        let tokens = IdentityHeaders::default();
        let calls = std::cell::Cell::new(0);
        let life = Duration::from_secs(60);
        assert_eq!(
            tokens.get_or_make("s1", 1000, life, signer(&calls)).unwrap().token,
            "token-1000"
        );
        assert_eq!(
            tokens.get_or_make("s1", 1029, life, signer(&calls)).unwrap().token,
            "token-1000"
        );
        assert_eq!(calls.get(), 1);
        // Half its lifetime gone: a new one, reused from then on.
        assert_eq!(
            tokens.get_or_make("s1", 1030, life, signer(&calls)).unwrap().token,
            "token-1030"
        );
        assert_eq!(
            tokens.get_or_make("s1", 1031, life, signer(&calls)).unwrap().token,
            "token-1030"
        );
        assert_eq!(calls.get(), 2);
        // Another session never gets this one's token.
        assert_eq!(
            tokens.get_or_make("s2", 1031, life, signer(&calls)).unwrap().token,
            "token-1031"
        );
        assert_eq!(calls.get(), 3);
    }

    fn identity(person_code: &str, tenant: Option<&str>) -> Identity {
        Identity {
            person_code: person_code.into(),
            facts: crate::identity::Facts {
                federated_id: "100231@school-a.nl".into(),
                school: Some("99XX".into()),
                affiliation: vec!["student".into(), "member".into()],
                tenant: tenant.map(str::to_string),
                given_name: None,
                extra: vec![],
            },
        }
    }

    #[test]
    fn each_value_goes_under_its_name_and_an_unclean_one_is_refused() {
        let names = HeaderNames::parse("X-Code", "X-School", "X-Aff", "X-Tenant", "X-Token").unwrap();
        let values = IdentityHeaderValues::of(&identity("100231", None), HeaderValue::from_static("t")).unwrap();
        let sent: Vec<(String, Option<String>)> = values
            .named(&names)
            .iter()
            .map(|(n, v)| (n.to_string(), v.map(|v| v.to_str().unwrap().to_string())))
            .collect();
        let some = |v: &str| Some(v.to_string());
        assert_eq!(
            sent,
            vec![
                ("x-code".into(), some("100231")),
                ("x-school".into(), some("99XX")),
                ("x-aff".into(), some("student,member")),
                // No tenant for the school: the header is left out, not sent empty.
                ("x-tenant".into(), None),
                ("x-token".into(), some("t")),
            ]
        );
        let refused = IdentityHeaderValues::of(&identity("100\n231", Some("a")), HeaderValue::from_static("t"));
        assert!(matches!(
            refused,
            Err(IdentityError::ValueNotClean {
                field: "person code",
                ..
            })
        ));
    }

    #[test]
    fn a_lifetime_under_two_seconds_is_never_reused() {
        let tokens = IdentityHeaders::default();
        let calls = std::cell::Cell::new(0);
        for _ in 0..3 {
            tokens
                .get_or_make("s", 5, Duration::from_secs(1), signer(&calls))
                .unwrap();
        }
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn a_failed_signature_is_not_cached() {
        let tokens = IdentityHeaders::default();
        let failed: Result<_, &str> = tokens.get_or_make("s", 5, Duration::from_secs(60), |_| Err("no key"));
        assert!(failed.is_err());
        let calls = std::cell::Cell::new(0);
        tokens
            .get_or_make("s", 6, Duration::from_secs(60), signer(&calls))
            .unwrap();
        assert_eq!(calls.get(), 1);
    }
}
