//! From a validated assertion to the app's view of the person. Per app, in this order:
//! the school must have activated the app; then (1) a stored link for (app, federated id),
//! (2) the rule `person.attribute` + `pattern`, (3) first-time account linking when
//! `linking = true`, (4) otherwise the "no account yet" page. The rule applies when a
//! pattern is set, or when the app does not link (then the attribute value is the code).

pub mod import;
pub mod linking;

use crate::config::App;
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
    #[error("school {0} has not activated this app")]
    SchoolNotActivated(String),
    #[error("the assertion names no school (nlEduPersonHomeOrganizationId)")]
    SchoolMissing,
    #[error("the assertion has no {0} attribute, which this app uses as the person code")]
    PersonAttributeMissing(String),
    #[error("the {attribute} value does not match the app's person code pattern")]
    PersonPatternNoMatch { attribute: String },
}

impl IdentityError {
    pub fn code(&self) -> &'static str {
        match self {
            IdentityError::SchoolNotActivated(_) => "school_not_activated",
            IdentityError::SchoolMissing => "school_missing",
            IdentityError::PersonAttributeMissing(_) => "person_attribute_missing",
            IdentityError::PersonPatternNoMatch { .. } => "person_pattern_no_match",
        }
    }
}

/// School activation first (nothing happens for a school that has not activated the app),
/// then the facts the hand-off needs.
pub fn facts(app: &App, assertion: &ValidatedAssertion) -> Result<Facts, IdentityError> {
    let attrs = &assertion.attributes;
    let school = attrs.first(SCHOOL_ATTRIBUTE).map(|s| s.trim().to_ascii_uppercase());
    let branch = attrs.first(BRANCH_ATTRIBUTE).map(|s| s.trim().to_ascii_uppercase());
    check_school(app, school.as_deref(), branch.as_deref())?;
    let federated_id = attrs
        .first(&app.person_attribute)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| IdentityError::PersonAttributeMissing(app.person_attribute.clone()))?
        .to_string();
    let tenant = branch
        .as_deref()
        .and_then(|b| app.tenants.get(b))
        .or_else(|| school.as_deref().and_then(|s| app.tenants.get(s)))
        .cloned();
    let extra = app
        .claims
        .iter()
        .map(|(claim, attribute)| (claim.clone(), attrs.get(attribute).to_vec()))
        .filter(|(_, values)| !values.is_empty())
        .collect();
    Ok(Facts {
        federated_id,
        school: school.or(branch),
        affiliation: attrs.get(AFFILIATION_ATTRIBUTE).to_vec(),
        tenant,
        given_name: attrs.first(GIVEN_NAME_ATTRIBUTE).map(str::to_string),
        extra,
    })
}

/// The rule `attribute` + `pattern`: `None` when it does not apply to this app.
pub fn rule(app: &App, facts: &Facts) -> Option<Result<String, IdentityError>> {
    match &app.person_pattern {
        None if app.linking.is_some() => None,
        None => Some(Ok(facts.federated_id.clone())),
        Some(re) => Some(
            re.captures(&facts.federated_id)
                .and_then(|c| c.name("code"))
                .map(|m| m.as_str().to_string())
                .filter(|c| !c.is_empty())
                .ok_or_else(|| IdentityError::PersonPatternNoMatch {
                    attribute: app.person_attribute.clone(),
                }),
        ),
    }
}

/// `schools` lists 4-character BRINs, 6-character branch BRINs, or `*`.
fn check_school(app: &App, school: Option<&str>, branch: Option<&str>) -> Result<(), IdentityError> {
    if app.schools.iter().any(|s| s == "*") {
        return Ok(());
    }
    let listed = |v: Option<&str>| v.is_some_and(|v| app.schools.iter().any(|s| s.eq_ignore_ascii_case(v)));
    if listed(school) || listed(branch) {
        return Ok(());
    }
    match branch.or(school) {
        Some(brin) => Err(IdentityError::SchoolNotActivated(brin.to_string())),
        None => Err(IdentityError::SchoolMissing),
    }
}

/// Logs name people only by a keyed hash: the same id always gives the same pseudonym (so
/// an admin can follow one student through the log), but the id cannot be read back or
/// guessed from it without the key. The key derives from the JWT signing key, so it is
/// secret and stable across restarts (a JWT key rollover starts new pseudonyms).
#[derive(Debug, Clone)]
pub struct Pseudonyms {
    key: [u8; 32],
}

impl Pseudonyms {
    pub fn new(secret: &[u8]) -> Self {
        let mut material = b"entree-bridge log pseudonyms\0".to_vec();
        material.extend_from_slice(secret);
        Pseudonyms {
            key: openssl::sha::sha256(&material),
        }
    }

    /// `p:` and 12 hex characters (48 bits) of HMAC-SHA256(key, id).
    pub fn of(&self, id: &str) -> String {
        let mac = openssl::pkey::PKey::hmac(&self.key)
            .and_then(|k| {
                let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &k)?;
                signer.update(id.as_bytes())?;
                signer.sign_to_vec()
            })
            .unwrap_or_default();
        let hex: String = mac.iter().take(6).map(|b| format!("{b:02x}")).collect();
        format!("p:{hex}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_keyed_and_hide_the_id() {
        let a = Pseudonyms::new(b"key one");
        let short = a.of("109999");
        assert_eq!(short, a.of("109999"));
        assert_eq!(short.len(), 14);
        assert!(!short.contains("9999"), "a short id does not show through");
        assert_ne!(short, Pseudonyms::new(b"key two").of("109999"));
        assert_ne!(a.of("100231@school-a.nl"), a.of("100232@school-a.nl"));
    }
}
