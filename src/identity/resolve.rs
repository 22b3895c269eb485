//! The resolution order of a login's person code, as data: (1) a stored link for (app,
//! federated id), (2) the rule `person.attribute` + `pattern`, (3) first-time account
//! linking when the app links, (4) otherwise a refusal ("no account yet"). School activation
//! and clean values have been checked before ([`facts`](super::facts)).
//!
//! The stored link is looked up by the caller and handed in: looking it up is I/O on the
//! link store, and the stores build on `identity`'s types (a pending link holds [`Facts`]),
//! so `identity` does not call them. What to do with the answer is decided here, in one place.

use super::Policy;
use super::{rule, Facts, IdentityError};

/// How the person code of a login is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// (1) A stored link names the person code (it wins over the rule).
    StoredLink(String),
    /// (2) The rule made the person code.
    Rule(String),
    /// (3) Nothing names the person yet and the app links: first-time linking starts.
    StartLinking,
    /// (4) The rule refused and the app does not link ("no account yet", or a value that
    /// cannot be used).
    Refused(IdentityError),
    /// No rule and no linking: a config the loader refuses, so not met in practice.
    Unconfigured,
}

/// The resolution for `facts` under an app's identity `policy`, given the person code a stored link names, if any.
pub fn resolve(policy: &Policy, facts: &Facts, stored_link: Option<String>) -> Resolution {
    if let Some(code) = stored_link {
        return Resolution::StoredLink(code);
    }
    match rule(policy, facts) {
        Some(Ok(code)) => Resolution::Rule(code),
        Some(Err(_)) | None if policy.linking.is_some() => Resolution::StartLinking,
        Some(Err(e)) => Resolution::Refused(e),
        None => Resolution::Unconfigured,
    }
}
