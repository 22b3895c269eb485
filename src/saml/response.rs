//! Validation of a SAML Response at the ACS: fail closed, one error code per failure.
//!
//! The same function serves the ACS and `verify-response`, which records every check in a
//! [`Report`]. Order matters for the error an admin sees: structure first, then signatures,
//! then what the signed assertion says.

use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use openssl::pkey::{PKey, Private, Public};
use roxmltree::{Document, Node};

use super::attributes::Attributes;
use super::decrypt;
use super::error::ValidationError;
use super::signature;
use super::xml::{self, XmlLimits, NS_SAML, NS_SAMLP};

const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
/// Bounds on what one assertion may carry (attributes and values counted together).
pub const MAX_ATTRIBUTE_VALUES: usize = 512;
pub const MAX_VALUE_CHARS: usize = 4096;

/// What the response must match: the IdP it comes from, this SP and ACS, and the login that
/// this browser started (if any).
pub struct Expectations<'a> {
    pub idp_entity_id: &'a str,
    /// The IdP metadata's signing keys (loaded with the metadata).
    pub idp_keys: &'a [PKey<Public>],
    pub sp_entity_id: &'a str,
    pub acs_url: &'a str,
    /// The ID of the AuthnRequest this browser's pending login sent; `None` when there is none.
    pub request_id: Option<&'a str>,
    /// Only `verify-response` without `--request-id` sets this: InResponseTo (on the Response
    /// and in SubjectConfirmationData, plaintext or encrypted) is then not checked at all, as
    /// its contract says. The ACS never sets it.
    pub in_response_to_unchecked: bool,
    pub allow_unsolicited: bool,
    pub allow_sha1: bool,
    /// AES-CBC assertions in an unsigned Response (`federations.X.allow_cbc`): a padding
    /// oracle risk, see [`decrypt::decrypt_assertion`].
    pub allow_cbc: bool,
    pub clock_skew: Duration,
    pub now: DateTime<Utc>,
    pub decryption_keys: &'a [PKey<Private>],
    pub limits: XmlLimits,
}

/// The identity an accepted response carries, every value read from signed content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedAssertion {
    pub issuer: String,
    pub assertion_id: String,
    pub name_id: String,
    pub name_id_format: Option<String>,
    pub attributes: Attributes,
    pub in_response_to: Option<String>,
    /// Until when the assertion could be replayed: the replay cache keeps its ID this long.
    pub replay_until: DateTime<Utc>,
    pub session_index: Option<String>,
    pub encrypted: bool,
}

/// One check as `verify-response` explains it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckRecord {
    pub check: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// Records checks when enabled; costs nothing on the ACS hot path when disabled.
#[derive(Debug, Default)]
pub struct Report {
    enabled: bool,
    pub checks: Vec<CheckRecord>,
}

impl Report {
    pub fn recording() -> Self {
        Report {
            enabled: true,
            checks: Vec::new(),
        }
    }

    pub fn disabled() -> Self {
        Report::default()
    }

    /// Records the outcome of `check` and passes the result on.
    fn check<T>(
        &mut self,
        check: &'static str,
        result: Result<T, ValidationError>,
        detail: impl FnOnce() -> String,
    ) -> Result<T, ValidationError> {
        if self.enabled {
            let (ok, detail) = match &result {
                Ok(_) => (true, detail()),
                Err(e) => (false, format!("{}: {e}", e.code())),
            };
            self.checks.push(CheckRecord { check, ok, detail });
        }
        result
    }
}

/// Decodes the HTTP-POST binding's `SAMLResponse` value (base64, line breaks tolerated).
pub fn decode_post_binding(value: &str, limits: XmlLimits) -> Result<String, ValidationError> {
    // base64 is 4/3 of the XML; refuse before decoding anything larger than the XML limit allows.
    let encoded_limit = limits.max_bytes / 3 * 4 + 4096;
    if value.len() > encoded_limit {
        return Err(ValidationError::TooLarge {
            size: value.len(),
            limit: encoded_limit,
        });
    }
    let compact: Vec<u8> = value.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .map_err(|_| ValidationError::NotBase64)?;
    let text = String::from_utf8(bytes).map_err(|_| ValidationError::NotUtf8)?;
    Ok(strip_bom(&text).to_string())
}

/// A UTF-8 byte-order mark is how some Windows tooling starts a UTF-8 file; it says nothing
/// but "UTF-8", so it is dropped rather than refused. Only one, only at the very start.
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// Validates a Response document. On success every field of the result comes from content
/// covered by a signature that verified against the IdP metadata's certificates.
pub fn validate(
    xml_text: &str,
    exp: &Expectations<'_>,
    report: &mut Report,
) -> Result<ValidatedAssertion, ValidationError> {
    let doc = report.check(
        "xml_well_formed",
        xml::parse_bounded(xml_text, exp.limits).map_err(Into::into),
        || format!("{} bytes, no DTD, within depth and node limits", xml_text.len()),
    )?;
    let root = doc.root_element();
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
    report.check("status", check_status(root), || "Success".into())?;

    // Signatures may sit on the Response and on its direct-child Assertion, nowhere else.
    let direct_assertions: Vec<Node> = xml::children(root, NS_SAML, "Assertion").collect();
    let mut allowed_parents = vec![root];
    allowed_parents.extend(direct_assertions.iter().copied());
    let signed_ids = report.check(
        "signature_layout",
        signature::check_layout(&doc, &allowed_parents, exp.allow_sha1).map_err(Into::into),
        || "every Signature is enveloped in the Response or its Assertion, one Reference to its parent's ID, allowed algorithms".into(),
    )?;
    let assertion = report.check("single_assertion", single_assertion(&doc), || {
        "exactly one Assertion or EncryptedAssertion".into()
    })?;
    report.check("no_comments_in_values", check_no_comments(root), || {
        "NameID and attribute values are plain text".into()
    })?;

    let response_signed = signed_ids.contains(&root.id());
    let assertion_signed = signed_ids.contains(&assertion.id());
    let encrypted = xml::is(&assertion, NS_SAML, "EncryptedAssertion");
    let in_response_to_outer = root.attribute("InResponseTo");

    let validated = if !encrypted {
        if !response_signed && !assertion_signed {
            return report.check("signed", Err(ValidationError::Unsigned), String::new);
        }
        let signed = report.check(
            "signature_valid",
            signature::verify_signatures(&doc, exp.idp_keys, exp.allow_sha1, exp.limits.max_bytes).map_err(Into::into),
            || {
                format!(
                    "verified against {} IdP certificate(s); {} signed",
                    exp.idp_keys.len(),
                    signed_what(response_signed, assertion_signed)
                )
            },
        )?;
        read_signed_assertion(&signed, response_signed, exp, report, in_response_to_outer)?
    } else {
        // The EncryptedAssertion to decrypt is taken from signed content when the Response is signed.
        let signed_response = if response_signed {
            Some(
                report.check(
                    "signature_valid",
                    signature::verify_signatures(&doc, exp.idp_keys, exp.allow_sha1, exp.limits.max_bytes)
                        .map_err(Into::into),
                    || "Response signature verified".into(),
                )?,
            )
        } else {
            None
        };
        let plaintext = match &signed_response {
            Some(text) => {
                let signed_doc = xml::parse_bounded(text, exp.limits)?;
                let enc = xml::child(signed_doc.root_element(), NS_SAML, "EncryptedAssertion")
                    .ok_or(ValidationError::AssertionMisplaced)?;
                report.check(
                    "decrypt",
                    decrypt::decrypt_assertion(enc, exp.decryption_keys, true),
                    || "EncryptedAssertion decrypted".into(),
                )?
            }
            None => report.check(
                "decrypt",
                decrypt::decrypt_assertion(assertion, exp.decryption_keys, exp.allow_cbc),
                || "EncryptedAssertion decrypted".into(),
            )?,
        };
        // Decrypted where the EncryptedAssertion sits: the declarations in scope there are the
        // context the plaintext was written in (the raw document's; for a signed Response the
        // same element the signature covered).
        let in_context = report.check(
            "decrypted_in_context",
            plaintext_in_context(&plaintext, assertion),
            || "parsed with the namespaces in scope at the EncryptedAssertion".into(),
        )?;
        let mut v = read_decrypted_assertion(&in_context, response_signed, exp, report, in_response_to_outer)?;
        v.encrypted = true;
        v
    };
    Ok(validated)
}

fn signed_what(response: bool, assertion: bool) -> &'static str {
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
fn check_version_and_instant(
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
fn single_assertion<'a, 'i>(doc: &'a Document<'i>) -> Result<Node<'a, 'i>, ValidationError> {
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

fn check_no_comments(scope: Node<'_, '_>) -> Result<(), ValidationError> {
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

/// Reads the assertion out of the canonical text that the signature covered.
fn read_signed_assertion(
    signed_text: &str,
    response_signed: bool,
    exp: &Expectations<'_>,
    report: &mut Report,
    in_response_to_outer: Option<&str>,
) -> Result<ValidatedAssertion, ValidationError> {
    let signed_doc = xml::parse_bounded(signed_text, exp.limits)?;
    let signed_root = signed_doc.root_element();
    let mut in_response_to_outer = in_response_to_outer;
    let assertion = if response_signed {
        if !xml::is(&signed_root, NS_SAMLP, "Response") {
            return Err(signature::SignatureError::Invalid.into());
        }
        // The Response-level checks ran on the raw text; run them again on what was signed,
        // and take the signed InResponseTo.
        check_version_and_instant(signed_root, "Response", Some(exp))?;
        check_destination(signed_root, exp)?;
        check_optional_issuer(signed_root, exp)?;
        check_status(signed_root)?;
        in_response_to_outer = signed_root.attribute("InResponseTo");
        let mut found = xml::children(signed_root, NS_SAML, "Assertion");
        let (Some(a), None) = (found.next(), found.next()) else {
            return Err(ValidationError::AssertionCount(
                signed_root
                    .descendants()
                    .filter(|n| xml::is(n, NS_SAML, "Assertion"))
                    .count(),
            ));
        };
        a
    } else {
        if !xml::is(&signed_root, NS_SAML, "Assertion") {
            return Err(signature::SignatureError::Invalid.into());
        }
        signed_root
    };
    check_assertion(assertion, exp, report, in_response_to_outer)
}

/// The synthetic element around a decrypted plaintext (no SAML document can name it: it is
/// never part of one, and the plaintext cannot close it without making two roots).
const DECRYPTION_CONTEXT: &str = "entree-bridge-decryption-context";

/// XML Encryption decrypts in context (XML Encryption 1.1, 4.5): the plaintext of an
/// `EncryptedAssertion` may use prefixes declared on the enclosing Response (xmlsec-based IdPs
/// serialize the Assertion without them). The plaintext is wrapped in one synthetic element
/// carrying every declaration in scope at `encrypted`, and the result is parsed with the same
/// bounds as any XML input. A leading XML declaration (UTF-8 only) and BOM are dropped, as a
/// declaration may only start a document.
fn plaintext_in_context(plaintext: &str, encrypted: Node<'_, '_>) -> Result<String, ValidationError> {
    let mut body = strip_bom(plaintext);
    if body.starts_with("<?xml") {
        let end = body
            .find("?>")
            .map(|i| i + 2)
            .ok_or_else(|| xml::XmlError::Malformed("an unterminated XML declaration in the plaintext".into()))?;
        // The declaration's own checks (UTF-8 only) are those of any document.
        xml::parse_bounded(&format!("{}<r/>", &body[..end]), XmlLimits::default())?;
        body = &body[end..];
    }
    let mut wrapped = String::with_capacity(body.len() + 64 + 96 * encrypted.namespaces().len());
    wrapped.push('<');
    wrapped.push_str(DECRYPTION_CONTEXT);
    for ns in encrypted.namespaces() {
        match ns.name() {
            Some("xml") => continue,
            Some(prefix) => {
                wrapped.push_str(" xmlns:");
                wrapped.push_str(prefix);
            }
            None => wrapped.push_str(" xmlns"),
        }
        wrapped.push_str("=\"");
        wrapped.push_str(&xml::escape(ns.uri()));
        wrapped.push('"');
    }
    wrapped.push('>');
    wrapped.push_str(body);
    wrapped.push_str("</");
    wrapped.push_str(DECRYPTION_CONTEXT);
    wrapped.push('>');
    Ok(wrapped)
}

/// The decrypted assertion, read inside its context element (see [`plaintext_in_context`]);
/// when the Response was not signed, the assertion must carry its own valid signature.
fn read_decrypted_assertion(
    wrapped: &str,
    response_signed: bool,
    exp: &Expectations<'_>,
    report: &mut Report,
    in_response_to_outer: Option<&str>,
) -> Result<ValidatedAssertion, ValidationError> {
    let doc = xml::parse_bounded(wrapped, exp.limits)?;
    let context = doc.root_element();
    // The plaintext is one element and nothing else (whitespace aside).
    let mut elements = context.children().filter(Node::is_element);
    let (Some(root), None) = (elements.next(), elements.next()) else {
        return Err(ValidationError::AssertionCount(
            context.children().filter(Node::is_element).count(),
        ));
    };
    let stray = context
        .children()
        .any(|c| !(c.is_element() || (c.is_text() && c.text().is_some_and(|t| t.trim().is_empty()))));
    if stray {
        return Err(ValidationError::NotAResponse(
            "decrypted text beside the Assertion".into(),
        ));
    }
    if !xml::is(&root, NS_SAML, "Assertion") {
        return Err(ValidationError::NotAResponse(format!(
            "decrypted {}",
            root.tag_name().name()
        )));
    }
    let nested = root
        .descendants()
        .filter(|n| xml::is(n, NS_SAML, "Assertion") || xml::is(n, NS_SAML, "EncryptedAssertion"))
        .count();
    if nested != 1 {
        return Err(ValidationError::AssertionCount(nested));
    }
    check_no_comments(root)?;
    let signed_ids = signature::check_layout(&doc, &[root], exp.allow_sha1)?;
    if signed_ids.contains(&root.id()) {
        let signed = report.check(
            "decrypted_assertion_signature",
            signature::verify_signatures(&doc, exp.idp_keys, exp.allow_sha1, exp.limits.max_bytes).map_err(Into::into),
            || "decrypted Assertion's signature verified".into(),
        )?;
        read_signed_assertion(&signed, false, exp, report, in_response_to_outer)
    } else if response_signed {
        check_assertion(root, exp, report, in_response_to_outer)
    } else {
        report.check("signed", Err(ValidationError::Unsigned), String::new)
    }
}

fn check_assertion(
    assertion: Node<'_, '_>,
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

/// Parses a SAML `xs:dateTime` into UTC. SAML core 1.3.3 asks for UTC (`Z`), but XML Schema
/// allows a zone offset (`+01:00`, `+00:00`) for the same instant, and Shibboleth and other
/// peers read those: an offset is converted, not refused. The lexical form is checked strictly
/// (`T` separator, seconds present, offset at most 14:00) before chrono reads it, because
/// chrono's RFC 3339 reader also takes forms XML Schema does not (a space, a lower-case `t`).
/// A time without any zone is still refused: XML Schema calls it local time, whose instant
/// depends on where it is read.
pub fn parse_time(value: &str) -> Result<DateTime<Utc>, ValidationError> {
    let value = value.trim();
    let invalid = || ValidationError::TimeInvalid(value.chars().take(64).collect());
    if !is_xs_datetime_with_zone(value) {
        return Err(invalid());
    }
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| invalid())
}

/// `YYYY-MM-DDThh:mm:ss(.fraction)?(Z|(+|-)hh:mm)`, the offset at most 14:00 (XML Schema 1.0
/// 3.2.7.3). Digits only where digits belong; the ranges of the fields are chrono's to check.
fn is_xs_datetime_with_zone(value: &str) -> bool {
    let b = value.as_bytes();
    let digits = |range: std::ops::Range<usize>| b.get(range).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let shape = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !shape {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    match rest {
        b"Z" => true,
        [sign, h1, h2, b':', m1, m2] if (*sign == b'+' || *sign == b'-') => {
            let two = |a: u8, b: u8| a.is_ascii_digit() && b.is_ascii_digit();
            if !two(*h1, *h2) || !two(*m1, *m2) {
                return false;
            }
            let hours = (h1 - b'0') * 10 + (h2 - b'0');
            let minutes = (m1 - b'0') * 10 + (m2 - b'0');
            minutes < 60 && (hours < 14 || (hours == 14 && minutes == 0))
        }
        _ => false,
    }
}

#[cfg(test)]
#[cfg(feature = "demo")]
mod tests {
    use super::*;
    use crate::demo::idp::{DevIdp, ResponseSpec};

    const SP: &str = "https://sp.example.nl/metadata";
    const ACS: &str = "https://sp.example.nl/acs";

    fn expectations<'a>(idp: &'a DevIdp, keys: &'a [PKey<Public>], now: DateTime<Utc>) -> Expectations<'a> {
        Expectations {
            idp_entity_id: &idp.entity_id,
            idp_keys: keys,
            sp_entity_id: SP,
            acs_url: ACS,
            request_id: Some("_req"),
            in_response_to_unchecked: false,
            allow_unsolicited: false,
            allow_sha1: false,
            allow_cbc: false,
            clock_skew: Duration::from_secs(120),
            now,
            decryption_keys: &[],
            limits: XmlLimits::default(),
        }
    }

    fn check(idp: &DevIdp, xml: &str, now: DateTime<Utc>) -> Result<ValidatedAssertion, ValidationError> {
        let keys = [idp.cert.public_key().unwrap()];
        validate(xml, &expectations(idp, &keys, now), &mut Report::disabled())
    }

    fn idp() -> DevIdp {
        DevIdp::generate("https://idp.example.nl").unwrap()
    }

    #[test]
    fn clock_skew_is_honoured_on_both_sides_and_no_further() {
        let idp = idp();
        let spec = ResponseSpec::new(SP, ACS, Some("_req"));
        let xml = idp.response(&spec).unwrap();
        let issued = spec.issue_instant;
        // IssueInstant = issued; Conditions: NotBefore = issued - 30s, NotOnOrAfter = issued + 5m.
        assert!(
            check(&idp, &xml, issued - chrono::Duration::seconds(110)).is_ok(),
            "a clock 110s behind is within 2m skew of IssueInstant"
        );
        let early = check(&idp, &xml, issued - chrono::Duration::seconds(130)).unwrap_err();
        assert_eq!(early.code(), "issue_instant_in_future");
        // A NotBefore later than the IssueInstant is held to the same skew.
        let mut later = ResponseSpec::new(SP, ACS, Some("_req"));
        later.not_before = later.issue_instant + chrono::Duration::seconds(60);
        let xml_later = idp.response(&later).unwrap();
        let at = later.issue_instant - chrono::Duration::seconds(50);
        assert!(check(&idp, &xml_later, at + chrono::Duration::seconds(5)).is_ok());
        assert_eq!(
            check(&idp, &xml_later, at - chrono::Duration::seconds(20))
                .unwrap_err()
                .code(),
            "assertion_not_yet_valid"
        );
        assert!(
            check(&idp, &xml, issued + chrono::Duration::seconds(400)).is_ok(),
            "6m40s after issue is within 5m + 2m"
        );
        let late = check(&idp, &xml, issued + chrono::Duration::seconds(421)).unwrap_err();
        assert_eq!(late.code(), "subject_confirmation_expired");
    }

    #[test]
    fn every_audience_restriction_must_name_us() {
        let idp = idp();
        let spec = ResponseSpec::new(SP, ACS, Some("_req"));
        let template = idp.assertion_xml(&spec, true).replacen(
            "</saml:AudienceRestriction>",
            "</saml:AudienceRestriction><saml:AudienceRestriction><saml:Audience>https://other</saml:Audience></saml:AudienceRestriction>",
            1,
        );
        let signed = crate::demo::idp::strip_declaration(
            &crate::saml::signature::sign_first_template(&template, &idp.key_der).unwrap(),
        );
        let xml = idp.response_around(&spec, &signed).unwrap();
        assert_eq!(check(&idp, &xml, Utc::now()).unwrap_err().code(), "audience_mismatch");
    }

    #[test]
    fn times_with_a_zone_offset_are_read_as_the_same_instant_in_utc() {
        let utc = parse_time("2026-11-23T10:00:00Z").unwrap();
        assert_eq!(
            parse_time("2026-11-23T10:00:00.123Z").unwrap().timestamp(),
            utc.timestamp()
        );
        for same in [
            "2026-11-23T10:00:00+00:00",
            "2026-11-23T10:00:00-00:00",
            "2026-11-23T11:00:00+01:00",
            "2026-11-23T05:30:00-04:30",
            "2026-11-24T00:00:00+14:00",
            " 2026-11-23T12:00:00.000+02:00 ",
        ] {
            assert_eq!(parse_time(same).unwrap(), utc, "{same}");
        }
        for bad in [
            "yesterday",
            "2026-11-23T10:00:00",
            "2026-11-23 10:00:00Z",
            "2026-11-23t10:00:00Z",
            "2026-11-23T10:00Z",
            "2026-11-23T10:00:00.Z",
            "2026-11-23T10:00:00+0100",
            "2026-11-23T10:00:00+14:30",
            "2026-11-23T10:00:00+15:00",
            "2026-11-23T10:00:00+01:60",
            "2026-13-23T10:00:00Z",
            "2026-11-23T10:00:00+01:00Z",
        ] {
            assert_eq!(parse_time(bad).map_err(|e| e.code()), Err("time_invalid"), "{bad}");
        }
    }

    #[test]
    fn values_come_from_the_signed_assertion() {
        let idp = idp();
        let spec = ResponseSpec::new(SP, ACS, Some("_req")).attribute("urn:oid:2.5.4.42", &["Sanne"]);
        let v = check(&idp, &idp.response(&spec).unwrap(), Utc::now()).unwrap();
        assert_eq!(v.attributes.first("givenName"), Some("Sanne"));
        assert_eq!(v.name_id, spec.name_id);
        assert_eq!(v.assertion_id, spec.assertion_id);
        assert_eq!(v.in_response_to.as_deref(), Some("_req"));
    }

    #[test]
    fn the_report_records_each_check_only_when_asked() {
        let idp = idp();
        let xml = idp.response(&ResponseSpec::new(SP, ACS, Some("_req"))).unwrap();
        let keys = [idp.cert.public_key().unwrap()];
        let exp = expectations(&idp, &keys, Utc::now());
        let mut report = Report::recording();
        validate(&xml, &exp, &mut report).unwrap();
        let names: Vec<_> = report.checks.iter().map(|c| c.check).collect();
        for expected in [
            "xml_well_formed",
            "destination",
            "status",
            "signature_layout",
            "signature_valid",
            "audience",
            "subject_confirmation",
        ] {
            assert!(names.contains(&expected), "{expected} in {names:?}");
        }
        let mut quiet = Report::disabled();
        validate(&xml, &exp, &mut quiet).unwrap();
        assert!(quiet.checks.is_empty());
    }

    #[test]
    fn a_plaintext_cannot_leave_its_context_element() {
        let outer = r#"<r xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:x="urn:x&amp;y"><saml:EncryptedAssertion/></r>"#;
        let doc = roxmltree::Document::parse(outer).unwrap();
        let enc = doc.root_element().first_element_child().unwrap();
        let wrapped = plaintext_in_context(r#"<?xml version="1.0"?><saml:Assertion ID="a"/>"#, enc).unwrap();
        let parsed = roxmltree::Document::parse(&wrapped).unwrap();
        let assertion = parsed.root_element().first_element_child().unwrap();
        assert!(xml::is(&assertion, NS_SAML, "Assertion"));
        assert_eq!(assertion.lookup_namespace_uri(Some("x")), Some("urn:x&y"));
        assert!(plaintext_in_context(r#"<?xml version="1.0" encoding="UTF-7"?><a/>"#, enc).is_err());
        let idp = idp();
        let keys = [idp.cert.public_key().unwrap()];
        let exp = expectations(&idp, &keys, Utc::now());
        for (escape, code) in [
            (
                format!("<saml:Assertion ID=\"a\"/></{DECRYPTION_CONTEXT}><{DECRYPTION_CONTEXT}>"),
                "xml_malformed",
            ),
            (
                r#"<saml:Assertion ID="a"/><saml:Assertion ID="b"/>"#.to_string(),
                "assertion_count",
            ),
            (r#"<saml:Assertion ID="a"/>text"#.to_string(), "not_a_response"),
        ] {
            let wrapped = plaintext_in_context(&escape, enc).unwrap();
            let err = read_decrypted_assertion(&wrapped, true, &exp, &mut Report::disabled(), None).unwrap_err();
            assert_eq!(err.code(), code, "{escape}");
        }
    }

    #[test]
    fn no_trusted_certificate_means_no_verification_at_all() {
        let idp = idp();
        let xml = idp.response(&ResponseSpec::new(SP, ACS, Some("_req"))).unwrap();
        let exp = expectations(&idp, &[], Utc::now());
        assert_eq!(
            validate(&xml, &exp, &mut Report::disabled()).unwrap_err().code(),
            "idp_no_signing_certificate"
        );
    }
}
