//! The Response around the assertion: what the Response element itself says (Version,
//! IssueInstant, Destination, Issuer, Status, InResponseTo) and the document's shape (exactly
//! one Assertion or EncryptedAssertion, as a direct child; no comments inside values).
//!
//! These checks run on the raw document first, so that an admin sees the error a Response
//! earns before any signature is looked at. When the Response is signed they run again on the
//! text its signature covered ([`check_signed`]), which is where the Response's InResponseTo
//! is then taken from.

use roxmltree::{Document, Node};

use super::time::parse_time;
use super::{Expectations, Report};
use crate::saml::error::ValidationError;
use crate::saml::signature::SignatureError;
use crate::saml::xml::{self, NS_SAML, NS_SAMLP};

const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";

/// The Response-level checks on the raw document, each recorded in `report`.
pub(super) fn check(root: Node<'_, '_>, exp: &Expectations<'_>, report: &mut Report) -> Result<(), ValidationError> {
    report.check("is_response", check_root(root), || "samlp:Response, Version 2.0".into())?;
    report.check(
        "response_issue_instant",
        check_version_and_instant(root, "Response", Some(exp)),
        || {
            format!(
                "IssueInstant {} not after now + skew",
                root.attribute("IssueInstant").unwrap_or("-")
            )
        },
    )?;
    report.check("destination", check_destination(root, exp), || {
        format!("Destination {}", root.attribute("Destination").unwrap_or("(absent)"))
    })?;
    report.check("response_issuer", check_optional_issuer(root, exp), || {
        "Response Issuer matches or is absent".into()
    })?;
    report.check("status", check_status(root), || "Success".into())
}

/// The same checks on the canonical text a verified Response signature covered (not recorded
/// again: they passed on the raw document already). Returns the signed InResponseTo.
pub(super) fn check_signed<'a>(
    signed_root: Node<'a, '_>,
    exp: &Expectations<'_>,
) -> Result<Option<&'a str>, ValidationError> {
    if !xml::is(&signed_root, NS_SAMLP, "Response") {
        return Err(SignatureError::Invalid.into());
    }
    check_version_and_instant(signed_root, "Response", Some(exp))?;
    check_destination(signed_root, exp)?;
    check_optional_issuer(signed_root, exp)?;
    check_status(signed_root)?;
    Ok(signed_root.attribute("InResponseTo"))
}

/// What a `signature_valid` record says was signed.
pub(super) fn signed_what(response: bool, assertion: bool) -> &'static str {
    match (response, assertion) {
        (true, true) => "Response and Assertion",
        (true, false) => "Response",
        _ => "Assertion",
    }
}

fn check_root(root: Node<'_, '_>) -> Result<(), ValidationError> {
    if !xml::is(&root, NS_SAMLP, "Response") {
        return Err(ValidationError::NotAResponse(root.tag_name().name().to_string()));
    }
    check_version_and_instant(root, "Response", None)
}

/// `Version="2.0"` and an `IssueInstant` that is a valid time; with `exp`, not in the future
/// beyond the clock skew (an IdP's clock that runs ahead, or a message made for later use).
pub(super) fn check_version_and_instant(
    node: Node<'_, '_>,
    what: &'static str,
    exp: Option<&Expectations<'_>>,
) -> Result<(), ValidationError> {
    match node.attribute("Version") {
        Some("2.0") => {}
        other => {
            return Err(ValidationError::VersionUnsupported(
                what,
                other.unwrap_or("(none)").chars().take(16).collect(),
            ))
        }
    }
    let instant = parse_time(
        node.attribute("IssueInstant")
            .ok_or(ValidationError::MissingElement("IssueInstant"))?,
    )?;
    if let Some(exp) = exp {
        let skew = chrono::Duration::from_std(exp.clock_skew).unwrap_or_default();
        if instant > exp.now + skew {
            return Err(ValidationError::IssuedInFuture(what, instant.to_rfc3339()));
        }
    }
    Ok(())
}

fn check_destination(root: Node<'_, '_>, exp: &Expectations<'_>) -> Result<(), ValidationError> {
    match root.attribute("Destination") {
        Some(d) if d != exp.acs_url => Err(ValidationError::DestinationMismatch {
            found: d.to_string(),
            expected: exp.acs_url.to_string(),
        }),
        _ => Ok(()),
    }
}

fn check_optional_issuer(node: Node<'_, '_>, exp: &Expectations<'_>) -> Result<(), ValidationError> {
    match xml::child(node, NS_SAML, "Issuer").map(xml::full_text) {
        Some(found) if found.trim() != exp.idp_entity_id => Err(ValidationError::IssuerMismatch {
            found,
            expected: exp.idp_entity_id.to_string(),
        }),
        _ => Ok(()),
    }
}

fn check_status(root: Node<'_, '_>) -> Result<(), ValidationError> {
    let status = xml::child(root, NS_SAMLP, "Status").ok_or(ValidationError::MissingElement("Status"))?;
    let top = xml::child(status, NS_SAMLP, "StatusCode").ok_or(ValidationError::MissingElement("StatusCode"))?;
    let code = top.attribute("Value").unwrap_or("");
    if code == STATUS_SUCCESS {
        return Ok(());
    }
    // Show the most specific code: the nested second-level one says what actually went wrong.
    let second = xml::child(top, NS_SAMLP, "StatusCode").and_then(|s| s.attribute("Value"));
    let short = |c: &str| c.rsplit(':').next().unwrap_or(c).to_string();
    let code = match second {
        Some(s) => format!("{}/{}", short(code), short(s)),
        None => short(code),
    };
    let message = xml::child(status, NS_SAMLP, "StatusMessage")
        .map(xml::full_text)
        .map(|m| m.chars().take(300).collect::<String>())
        .filter(|m| !m.trim().is_empty());
    Err(ValidationError::IdpStatus { code, message })
}

/// Exactly one Assertion or EncryptedAssertion in the WHOLE document (not just among the
/// Response's children: XSW layouts hide the signed one elsewhere), as a direct child.
pub(super) fn single_assertion<'a, 'i>(doc: &'a Document<'i>) -> Result<Node<'a, 'i>, ValidationError> {
    let root = doc.root_element();
    let all: Vec<Node> = root
        .descendants()
        .filter(|n| xml::is(n, NS_SAML, "Assertion") || xml::is(n, NS_SAML, "EncryptedAssertion"))
        .collect();
    match all.as_slice() {
        [one] if one.parent_element().map(|p| p.id()) == Some(root.id()) => Ok(*one),
        [_] => Err(ValidationError::AssertionMisplaced),
        many => Err(ValidationError::AssertionCount(many.len())),
    }
}

/// NameID, AttributeValue and Issuer are plain text: a comment inside one is where the
/// canonical form (which drops it) and a reader of the text can disagree on the value.
pub(super) fn check_no_comments(scope: Node<'_, '_>) -> Result<(), ValidationError> {
    let suspicious = scope
        .descendants()
        .filter(|n| {
            xml::is(n, NS_SAML, "NameID") || xml::is(n, NS_SAML, "AttributeValue") || xml::is(n, NS_SAML, "Issuer")
        })
        .any(xml::has_comment_inside);
    if suspicious {
        Err(ValidationError::CommentInValue)
    } else {
        Ok(())
    }
}
