//! The assertion's own checks, the same for a plaintext and a decrypted assertion: Version
//! and IssueInstant, Issuer, the Subject's NameID and bearer SubjectConfirmation (Recipient,
//! NotOnOrAfter, InResponseTo), Conditions (times, audience), the AuthnStatement, the
//! attributes. Their result is a [`ValidatedAssertion`].
//!
//! [`check`] takes a [`SignedDocument`] as proof that the assertion it reads is signed content,
//! and it is the only place a [`ValidatedAssertion`] is made (its fields are private to this
//! module): so a `ValidatedAssertion` proves that its values come from an assertion whose
//! signature verified against the IdP metadata's keys and that passed every check here.

use chrono::{DateTime, Utc};
use roxmltree::Node;

use super::envelope::check_version_and_instant;
use super::time::parse_time;
use super::{Expectations, Report};
use crate::saml::attributes::Attributes;
use crate::saml::error::ValidationError;
use crate::saml::signature::SignedDocument;
use crate::saml::xml::{self, NS_SAML};

const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
/// Bounds on what one assertion may carry (attributes and values counted together).
pub const MAX_ATTRIBUTE_VALUES: usize = 512;
pub const MAX_VALUE_CHARS: usize = 4096;

/// The identity an accepted response carries, every value read from signed content. Only
/// [`check`] makes one (see the module documentation); the fields are read through the
/// accessors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedAssertion {
    issuer: String,
    assertion_id: String,
    name_id: String,
    name_id_format: Option<String>,
    attributes: Attributes,
    in_response_to: Option<String>,
    replay_until: DateTime<Utc>,
    session_index: Option<String>,
    authn_instant: Option<DateTime<Utc>>,
    encrypted: bool,
}

impl ValidatedAssertion {
    /// The assertion's Issuer: the IdP's entity ID.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The assertion's ID, the replay cache's key (with the issuer).
    pub fn assertion_id(&self) -> &str {
        &self.assertion_id
    }

    /// The Subject's NameID, never empty.
    pub fn name_id(&self) -> &str {
        &self.name_id
    }

    pub fn name_id_format(&self) -> Option<&str> {
        self.name_id_format.as_deref()
    }

    /// The attribute values, by canonical name.
    pub fn attributes(&self) -> &Attributes {
        &self.attributes
    }

    /// The InResponseTo of the bearer SubjectConfirmationData (the AuthnRequest's ID), when
    /// the login was not unsolicited.
    pub fn in_response_to(&self) -> Option<&str> {
        self.in_response_to.as_deref()
    }

    /// Until when the assertion could be replayed: the replay cache keeps its ID this long.
    pub fn replay_until(&self) -> DateTime<Utc> {
        self.replay_until
    }

    /// The AuthnStatement's SessionIndex, for single logout.
    pub fn session_index(&self) -> Option<&str> {
        self.session_index.as_deref()
    }

    /// The AuthnStatement's AuthnInstant: when the IdP authenticated the person (OIDC's
    /// `auth_time`; a forced login must be newer than its request). `None` when absent or
    /// not a valid time (it serves only those two uses, so it refuses nothing itself).
    pub fn authn_instant(&self) -> Option<DateTime<Utc>> {
        self.authn_instant
    }

    /// Whether the assertion came as an EncryptedAssertion.
    pub fn encrypted(&self) -> bool {
        self.encrypted
    }

    /// The same assertion, marked as having been decrypted.
    pub(super) fn decrypted(self) -> Self {
        ValidatedAssertion {
            encrypted: true,
            ..self
        }
    }
}

/// Every check of the assertion itself, and the [`ValidatedAssertion`] it yields. `_signed` is
/// the proof that `assertion` was read from content a verified signature covers: the canonical
/// text of a [`SignedDocument`], or an assertion decrypted from one. Without a
/// `SignedDocument`, which only `saml::signature` can make, no assertion is read.
pub(super) fn check(
    assertion: Node<'_, '_>,
    _signed: &SignedDocument<'_, '_>,
    exp: &Expectations<'_>,
    report: &mut Report,
    in_response_to_outer: Option<&str>,
) -> Result<ValidatedAssertion, ValidationError> {
    let assertion_id = assertion
        .attribute("ID")
        .filter(|id| !id.is_empty())
        .ok_or(ValidationError::MissingElement("ID"))?
        .to_string();
    report.check(
        "assertion_version_instant",
        check_version_and_instant(assertion, "Assertion", Some(exp)),
        || {
            format!(
                "Version 2.0, IssueInstant {} not after now + skew",
                assertion.attribute("IssueInstant").unwrap_or("-")
            )
        },
    )?;
    let issuer = xml::child(assertion, NS_SAML, "Issuer")
        .map(xml::full_text)
        .ok_or(ValidationError::MissingElement("Issuer"))?;
    report.check(
        "issuer",
        if issuer.trim() == exp.idp_entity_id {
            Ok(())
        } else {
            Err(ValidationError::IssuerMismatch {
                found: issuer.clone(),
                expected: exp.idp_entity_id.to_string(),
            })
        },
        || issuer.clone(),
    )?;
    let subject = xml::child(assertion, NS_SAML, "Subject").ok_or(ValidationError::MissingElement("Subject"))?;
    // A Subject without a NameID (or with an empty one) names nobody: refused, never read
    // as "".
    let name_id_node = report.check(
        "name_id",
        xml::child(subject, NS_SAML, "NameID")
            .filter(|n| !xml::full_text(*n).trim().is_empty())
            .ok_or(ValidationError::NameIdMissing),
        || "present".into(),
    )?;
    let name_id = xml::full_text(name_id_node);
    let name_id_format = name_id_node.attribute("Format").map(str::to_string);

    let confirmation = report.check(
        "subject_confirmation",
        check_confirmation(subject, exp, in_response_to_outer),
        || format!("bearer, Recipient {}, in time", exp.acs_url),
    )?;
    let conditions =
        xml::child(assertion, NS_SAML, "Conditions").ok_or(ValidationError::MissingElement("Conditions"))?;
    let conditions_until = report.check("conditions_time", check_condition_times(conditions, exp), || {
        format!(
            "NotBefore {} / NotOnOrAfter {} within {}s skew",
            conditions.attribute("NotBefore").unwrap_or("-"),
            conditions.attribute("NotOnOrAfter").unwrap_or("-"),
            exp.clock_skew.as_secs()
        )
    })?;
    report.check("audience", check_audience(conditions, exp), || {
        exp.sp_entity_id.to_string()
    })?;
    // The Web SSO profile (4.1.4.2): an assertion that authenticates says so.
    let authn = report.check(
        "authn_statement",
        xml::child(assertion, NS_SAML, "AuthnStatement").ok_or(ValidationError::AuthnStatementMissing),
        || "present".into(),
    )?;
    let session_index = authn.attribute("SessionIndex").map(str::to_string);
    let authn_instant = authn
        .attribute("AuthnInstant")
        .and_then(|t| super::time::parse_time(t).ok());
    let attributes = report.check("attributes", read_attributes(assertion), || {
        "read by canonical name".into()
    })?;

    let skew = chrono::Duration::from_std(exp.clock_skew).unwrap_or_default();
    let until = match conditions_until {
        Some(c) => c.min(confirmation.not_on_or_after),
        None => confirmation.not_on_or_after,
    };
    Ok(ValidatedAssertion {
        issuer: issuer.trim().to_string(),
        assertion_id,
        name_id: name_id.trim().to_string(),
        name_id_format,
        attributes,
        in_response_to: confirmation.in_response_to,
        replay_until: until + skew,
        session_index,
        authn_instant,
        encrypted: false,
    })
}

struct Confirmation {
    not_on_or_after: DateTime<Utc>,
    in_response_to: Option<String>,
}

/// At least one bearer SubjectConfirmation must pass every check; the first failure is
/// reported when none does.
fn check_confirmation(
    subject: Node<'_, '_>,
    exp: &Expectations<'_>,
    in_response_to_outer: Option<&str>,
) -> Result<Confirmation, ValidationError> {
    let mut first_error = None;
    for sc in xml::children(subject, NS_SAML, "SubjectConfirmation").filter(|sc| sc.attribute("Method") == Some(BEARER))
    {
        match check_one_confirmation(sc, exp, in_response_to_outer) {
            Ok(c) => return Ok(c),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(ValidationError::BearerMissing))
}

fn check_one_confirmation(
    sc: Node<'_, '_>,
    exp: &Expectations<'_>,
    in_response_to_outer: Option<&str>,
) -> Result<Confirmation, ValidationError> {
    let data = xml::child(sc, NS_SAML, "SubjectConfirmationData")
        .ok_or(ValidationError::MissingElement("SubjectConfirmationData"))?;
    let recipient = data.attribute("Recipient").unwrap_or("");
    if recipient != exp.acs_url {
        return Err(ValidationError::RecipientMismatch {
            found: recipient.to_string(),
            expected: exp.acs_url.to_string(),
        });
    }
    let skew = chrono::Duration::from_std(exp.clock_skew).unwrap_or_default();
    let not_on_or_after = parse_time(
        data.attribute("NotOnOrAfter")
            .ok_or(ValidationError::MissingElement("SubjectConfirmationData NotOnOrAfter"))?,
    )?;
    if exp.now >= not_on_or_after + skew {
        return Err(ValidationError::ConfirmationExpired(not_on_or_after.to_rfc3339()));
    }
    // Web SSO profile 4.1.4.2: a bearer SubjectConfirmationData MUST NOT carry NotBefore.
    if data.attribute("NotBefore").is_some() {
        return Err(ValidationError::ConfirmationNotBefore);
    }
    let in_response_to = data.attribute("InResponseTo").map(str::to_string);
    if exp.in_response_to_unchecked {
        return Ok(Confirmation {
            not_on_or_after,
            in_response_to,
        });
    }
    match (exp.request_id, in_response_to.as_deref()) {
        (Some(expected), Some(found)) if expected == found => {}
        (Some(_), Some(found)) => {
            return Err(ValidationError::InResponseToMismatch {
                found: found.to_string(),
            })
        }
        (Some(_), None) => return Err(ValidationError::InResponseToMismatch { found: String::new() }),
        (None, Some(found)) => return Err(ValidationError::InResponseToUnknown(found.to_string())),
        (None, None) if exp.allow_unsolicited => {}
        (None, None) => return Err(ValidationError::Unsolicited),
    }
    // The Response's own InResponseTo (unsigned when only the assertion is signed) may only
    // make things stricter: when present it must agree.
    if let Some(outer) = in_response_to_outer {
        if in_response_to.as_deref() != Some(outer) {
            return Err(ValidationError::InResponseToMismatch {
                found: outer.to_string(),
            });
        }
    }
    Ok(Confirmation {
        not_on_or_after,
        in_response_to,
    })
}

fn check_condition_times(
    conditions: Node<'_, '_>,
    exp: &Expectations<'_>,
) -> Result<Option<DateTime<Utc>>, ValidationError> {
    let skew = chrono::Duration::from_std(exp.clock_skew).unwrap_or_default();
    if let Some(nb) = conditions.attribute("NotBefore") {
        let nb = parse_time(nb)?;
        if exp.now + skew < nb {
            return Err(ValidationError::NotYetValid(nb.to_rfc3339()));
        }
    }
    match conditions.attribute("NotOnOrAfter") {
        Some(na) => {
            let na = parse_time(na)?;
            if exp.now >= na + skew {
                return Err(ValidationError::Expired(na.to_rfc3339()));
            }
            Ok(Some(na))
        }
        None => Ok(None),
    }
}

/// Every AudienceRestriction must name this SP (SAML core 2.5.1.4), and there must be one.
fn check_audience(conditions: Node<'_, '_>, exp: &Expectations<'_>) -> Result<(), ValidationError> {
    let restrictions: Vec<Node> = xml::children(conditions, NS_SAML, "AudienceRestriction").collect();
    let all_name_us = !restrictions.is_empty()
        && restrictions
            .iter()
            .all(|r| xml::children(*r, NS_SAML, "Audience").any(|a| xml::full_text(a).trim() == exp.sp_entity_id));
    if all_name_us {
        Ok(())
    } else {
        let found: Vec<String> = restrictions
            .iter()
            .flat_map(|r| xml::children(*r, NS_SAML, "Audience").map(xml::full_text))
            .collect();
        Err(ValidationError::AudienceMismatch(if found.is_empty() {
            "none".into()
        } else {
            found.join(", ")
        }))
    }
}

/// The attribute values by name, within [`MAX_ATTRIBUTE_VALUES`] and [`MAX_VALUE_CHARS`].
fn read_attributes(assertion: Node<'_, '_>) -> Result<Attributes, ValidationError> {
    let mut attributes = Attributes::default();
    let mut count = 0usize;
    for statement in xml::children(assertion, NS_SAML, "AttributeStatement") {
        for attribute in xml::children(statement, NS_SAML, "Attribute") {
            let Some(name) = attribute.attribute("Name") else {
                continue;
            };
            for value in xml::children(attribute, NS_SAML, "AttributeValue") {
                count += 1;
                if count > MAX_ATTRIBUTE_VALUES {
                    return Err(ValidationError::TooManyAttributes(MAX_ATTRIBUTE_VALUES));
                }
                let text = xml::full_text(value);
                if text.chars().count() > MAX_VALUE_CHARS {
                    return Err(ValidationError::ValueTooLong(MAX_VALUE_CHARS));
                }
                attributes.push(name, text.trim().to_string());
            }
        }
    }
    Ok(attributes)
}
