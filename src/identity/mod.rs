//! From a validated assertion to the app's view of the person: school activation, person
//! code, affiliation, tenant and extra claims.

use crate::config::App;
use crate::saml::response::ValidatedAssertion;

pub const SCHOOL_ATTRIBUTE: &str = "nlEduPersonHomeOrganizationId";
pub const BRANCH_ATTRIBUTE: &str = "nlEduPersonHomeOrganizationBranchId";
pub const AFFILIATION_ATTRIBUTE: &str = "eduPersonAffiliation";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub person_code: String,
    pub school: Option<String>,
    pub affiliation: Vec<String>,
    pub tenant: Option<String>,
    /// `[apps.X.claims]`: claim name and the values of its attribute.
    pub extra: Vec<(String, Vec<String>)>,
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

/// Applies the app's rules. Nothing is guessed: a missing attribute or a pattern that does
/// not match is an error, never a fallback to another value.
pub fn resolve(app: &App, assertion: &ValidatedAssertion) -> Result<Identity, IdentityError> {
    let attrs = &assertion.attributes;
    let school = attrs.first(SCHOOL_ATTRIBUTE).map(|s| s.trim().to_ascii_uppercase());
    let branch = attrs.first(BRANCH_ATTRIBUTE).map(|s| s.trim().to_ascii_uppercase());
    check_school(app, school.as_deref(), branch.as_deref())?;

    let raw = attrs
        .first(&app.person_attribute)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| IdentityError::PersonAttributeMissing(app.person_attribute.clone()))?;
    let person_code = match &app.person_pattern {
        None => raw.to_string(),
        Some(re) => re
            .captures(raw)
            .and_then(|c| c.name("code"))
            .map(|m| m.as_str().to_string())
            .filter(|c| !c.is_empty())
            .ok_or_else(|| IdentityError::PersonPatternNoMatch {
                attribute: app.person_attribute.clone(),
            })?,
    };
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
    Ok(Identity {
        person_code,
        school: branch.clone().filter(|_| school.is_none()).or(school),
        affiliation: attrs.get(AFFILIATION_ATTRIBUTE).to_vec(),
        tenant,
        extra,
    })
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
