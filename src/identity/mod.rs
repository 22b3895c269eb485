//! From a validated assertion to the app's view of the person. Per app, in this order:
//! the school must have activated the app; then (1) a stored link for (app, federated id),
//! (2) the rule `person.attribute` + `pattern`, (3) first-time account linking when
//! `linking = true`, (4) otherwise the "no account yet" page. The rule applies when a
//! pattern is set, or when the app does not link (then the attribute value is the code).

mod activation;
pub mod affiliation;
pub mod import;
pub mod linking;
mod policy;
mod pseudonyms;
pub mod resolve;

pub use activation::{parse_brin, school_activation, ActivatedBy, SchoolActivations};
pub use policy::{Linking, Policy};
pub use pseudonyms::Pseudonyms;

use crate::saml::response::ValidatedAssertion;

pub const SCHOOL_ATTRIBUTE: &str = "nlEduPersonHomeOrganizationId";
pub const BRANCH_ATTRIBUTE: &str = "nlEduPersonHomeOrganizationBranchId";
pub const AFFILIATION_ATTRIBUTE: &str = "eduPersonAffiliation";
pub const GIVEN_NAME_ATTRIBUTE: &str = "givenName";

/// What the assertion says about the person, apart from the person code.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Facts {
    /// The value of `[apps.X.person] attribute`: the key of stored links.
    pub federated_id: String,
    pub school: Option<String>,
    pub affiliation: Vec<String>,
    pub tenant: Option<String>,
    pub given_name: Option<String>,
    /// `[apps.X.claims]`: claim name and the values of its attribute.
    pub extra: Vec<(String, Vec<String>)>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    pub person_code: String,
    pub facts: Facts,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    /// The page shows the BRIN and `apps.X.activation_contact`: what the school sends, and where.
    #[error("school {brin} has not activated this app")]
    SchoolNotActivated { brin: String, contact: Option<String> },
    #[error("the assertion names no school (nlEduPersonHomeOrganizationId)")]
    SchoolMissing,
    #[error("the assertion has no {0} attribute, which this app uses as the person code")]
    PersonAttributeMissing(String),
    #[error("the {attribute} value does not match the app's person code pattern")]
    PersonPatternNoMatch { attribute: String },
    /// A value the app would receive (person code, school, tenant, affiliation) or the
    /// federated id it comes from is not clean: two such values could reach the app as one.
    #[error("the {field} is not a clean value: {reason}")]
    ValueNotClean { field: &'static str, reason: &'static str },
}

impl IdentityError {
    pub fn code(&self) -> &'static str {
        match self {
            IdentityError::SchoolNotActivated { .. } => "school_not_activated",
            IdentityError::SchoolMissing => "school_missing",
            IdentityError::PersonAttributeMissing(_) => "person_attribute_missing",
            IdentityError::PersonPatternNoMatch { .. } => "person_pattern_no_match",
            IdentityError::ValueNotClean { .. } => "identity_value_invalid",
        }
    }
}

/// The longest person code, school, tenant or affiliation value an app is handed.
pub const MAX_VALUE_LEN: usize = 256;
/// The longest federated id (an eckId is a URL of some 100 characters).
pub const MAX_FEDERATED_ID_LEN: usize = 1024;

/// Whether `value` can be handed to an app as it is, in a header or a claim: not empty, at
/// most `max` bytes, no control characters (CR, LF, NUL, TAB, DEL, C1) and no leading or
/// trailing white space. A value that fails is refused, never replaced or trimmed: upstreams
/// that trim or reject such values would otherwise give two students the same identity.
pub fn check_clean(field: &'static str, value: &str, max: usize) -> Result<(), IdentityError> {
    let refuse = |reason| Err(IdentityError::ValueNotClean { field, reason });
    if value.is_empty() {
        return refuse("it is empty");
    }
    if value.len() > max {
        return refuse("it is too long");
    }
    if value.chars().any(char::is_control) {
        return refuse("it contains control characters");
    }
    if value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace) {
        return refuse("it has leading or trailing white space");
    }
    Ok(())
}

/// School activation first (nothing happens for a school that has not activated the app:
/// `activated` is the app's activations kept as data, on top of the config's `schools`),
/// then the facts the hand-off needs. Every value the app would receive is checked here, so
/// that a refused login stores nothing (not even its assertion ID): the school, the tenant,
/// the affiliations, the federated id, and the person code the rule makes of it.
pub fn facts(
    policy: &Policy,
    activated: &std::collections::BTreeSet<String>,
    assertion: &ValidatedAssertion,
) -> Result<Facts, IdentityError> {
    let attrs = assertion.attributes();
    let (school, branch) = school_of(assertion);
    school_activation(policy, activated, school.as_deref(), branch.as_deref())?;
    let federated_id = attrs
        .first(&policy.person_attribute)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| IdentityError::PersonAttributeMissing(policy.person_attribute.clone()))?
        .to_string();
    let tenant = branch
        .as_deref()
        .and_then(|b| policy.tenants.get(b))
        .or_else(|| school.as_deref().and_then(|s| policy.tenants.get(s)))
        .cloned();
    let extra = policy
        .claims
        .iter()
        .map(|(claim, attribute)| (claim.clone(), attrs.get(attribute).to_vec()))
        .filter(|(_, values)| !values.is_empty())
        .collect();
    let facts = Facts {
        federated_id,
        school: school.or(branch),
        affiliation: attrs.get(AFFILIATION_ATTRIBUTE).to_vec(),
        tenant,
        given_name: attrs.first(GIVEN_NAME_ATTRIBUTE).map(str::to_string),
        extra,
    };
    check_facts(policy, &facts)?;
    Ok(facts)
}

/// The values of `facts` an app is handed, each clean (see [`check_clean`]).
fn check_facts(policy: &Policy, facts: &Facts) -> Result<(), IdentityError> {
    // The federated id is trimmed already; inner control characters would survive into a
    // person code made by the rule, or into the link store's key.
    check_clean("federated id", &facts.federated_id, MAX_FEDERATED_ID_LEN)?;
    if let Some(school) = &facts.school {
        check_clean("school", school, MAX_VALUE_LEN)?;
    }
    if let Some(tenant) = &facts.tenant {
        check_clean("tenant", tenant, MAX_VALUE_LEN)?;
    }
    for affiliation in &facts.affiliation {
        check_clean("affiliation", affiliation, MAX_VALUE_LEN)?;
        // The affiliations are handed over joined by commas.
        if affiliation.contains(',') {
            return Err(IdentityError::ValueNotClean {
                field: "affiliation",
                reason: "it contains a comma",
            });
        }
    }
    // The code the rule would make, checked now rather than after the assertion ID is
    // recorded. A pattern that does not match is not an error here: linking may follow.
    match rule(policy, facts) {
        Some(Err(e @ IdentityError::ValueNotClean { .. })) => Err(e),
        _ => Ok(()),
    }
}

/// The rule `attribute` + `pattern`: `None` when it does not apply to this policy.
/// The code it makes is clean (see [`check_clean`]) or the rule fails with `ValueNotClean`.
pub fn rule(policy: &Policy, facts: &Facts) -> Option<Result<String, IdentityError>> {
    let code = match &policy.person_pattern {
        None if policy.linking.is_some() => return None,
        None => Ok(facts.federated_id.clone()),
        Some(re) => re
            .captures(&facts.federated_id)
            .and_then(|c| c.name("code"))
            .map(|m| m.as_str().to_string())
            .filter(|c| !c.is_empty())
            .ok_or_else(|| IdentityError::PersonPatternNoMatch {
                attribute: policy.person_attribute.clone(),
            }),
    };
    Some(code.and_then(|c| check_clean("person code", &c, MAX_VALUE_LEN).map(|()| c)))
}

/// The school and branch BRINs the assertion names (upper case), as activation reads them.
pub fn school_of(assertion: &ValidatedAssertion) -> (Option<String>, Option<String>) {
    let attrs = assertion.attributes();
    let school = attrs.first(SCHOOL_ATTRIBUTE).map(|s| s.trim().to_ascii_uppercase());
    let branch = attrs.first(BRANCH_ATTRIBUTE).map(|s| s.trim().to_ascii_uppercase());
    (school, branch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clean_values_pass_and_each_bad_kind_is_named() {
        for good in ["100231", "99XX", "ingang-a", "100231@school-a.nl", "één code", "a"] {
            assert_eq!(check_clean("person code", good, MAX_VALUE_LEN), Ok(()), "{good:?}");
        }
        for (bad, reason) in [
            ("", "it is empty"),
            ("100\n231", "it contains control characters"),
            ("999\r\n888", "it contains control characters"),
            ("a\tb", "it contains control characters"),
            ("nul\0", "it contains control characters"),
            ("del\u{7f}", "it contains control characters"),
            ("c1\u{85}x", "it contains control characters"),
            ("100231 ", "it has leading or trailing white space"),
            (" 100231", "it has leading or trailing white space"),
            ("100231\u{a0}", "it has leading or trailing white space"),
        ] {
            assert_eq!(
                check_clean("person code", bad, MAX_VALUE_LEN),
                Err(IdentityError::ValueNotClean {
                    field: "person code",
                    reason
                }),
                "{bad:?}"
            );
        }
        let long = "x".repeat(MAX_VALUE_LEN + 1);
        assert!(check_clean("school", &long, MAX_VALUE_LEN).is_err());
        assert!(check_clean("school", &long[1..], MAX_VALUE_LEN).is_ok());
        assert_eq!(
            IdentityError::ValueNotClean {
                field: "school",
                reason: "it is empty"
            }
            .code(),
            "identity_value_invalid"
        );
    }
}
