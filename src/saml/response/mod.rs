//! Validation of a SAML Response at the ACS: fail closed, one error code per failure.
//!
//! The same function serves the ACS and `verify-response`, which records every check in a
//! [`Report`]. Order matters for the error an admin sees: structure first, then signatures,
//! then what the signed assertion says.
//!
//! By concern: [`envelope`] checks the Response around the assertion, `saml::signature` checks
//! the signature layout and verifies it, [`encrypted`] decrypts an EncryptedAssertion and reads
//! it in context, and both a plaintext and a decrypted assertion end in the same checks
//! ([`assertion`]), which take the signature module's [`SignedDocument`] as proof that what
//! they read was signed. A [`ValidatedAssertion`] is the result, and only those checks make one.

mod assertion;
mod encrypted;
mod envelope;
mod time;

use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use openssl::pkey::{PKey, Private, Public};

pub use assertion::{ValidatedAssertion, MAX_ATTRIBUTE_VALUES, MAX_VALUE_CHARS};
pub use time::parse_time;

use super::error::ValidationError;
use super::signature::{self, CheckedLayout, SignatureError, SignedDocument};
use super::xml::{self, XmlLimits, NS_SAML};

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
    /// oracle risk, see [`crate::saml::decrypt::decrypt_assertion`].
    pub allow_cbc: bool,
    pub clock_skew: Duration,
    pub now: DateTime<Utc>,
    pub decryption_keys: &'a [PKey<Private>],
    pub limits: XmlLimits,
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

    /// Records the decoding of the HTTP-POST binding's value (before [`validate`] starts).
    pub fn decoded<T>(&mut self, result: Result<T, ValidationError>) -> Result<T, ValidationError> {
        self.check("decoded", result, || "base64 of the HTTP-POST binding".into())
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
    envelope::check(root, exp, report)?;

    // Signatures may sit on the Response and on its direct-child Assertion, nowhere else.
    let mut allowed_parents = vec![root];
    allowed_parents.extend(xml::children(root, NS_SAML, "Assertion"));
    let layout = report.check(
        "signature_layout",
        signature::check_layout(&doc, &allowed_parents, exp.allow_sha1).map_err(Into::into),
        || "every Signature is enveloped in the Response or its Assertion, one Reference to its parent's ID, allowed algorithms".into(),
    )?;
    let assertion = report.check("single_assertion", envelope::single_assertion(&doc), || {
        "exactly one Assertion or EncryptedAssertion".into()
    })?;
    report.check("no_comments_in_values", envelope::check_no_comments(root), || {
        "NameID and attribute values are plain text".into()
    })?;

    if xml::is(&assertion, NS_SAML, "EncryptedAssertion") {
        encrypted::read(&layout, assertion, exp, report)
    } else {
        read_plaintext(&layout, assertion, exp, report)
    }
}

/// A plaintext Assertion: the Response, the Assertion or both are signed, and the assertion is
/// read from the text the outermost signature covers.
fn read_plaintext(
    layout: &CheckedLayout<'_, '_>,
    assertion: roxmltree::Node<'_, '_>,
    exp: &Expectations<'_>,
    report: &mut Report,
) -> Result<ValidatedAssertion, ValidationError> {
    let root = layout.document().root_element();
    let (response_signed, assertion_signed) = (layout.has_signature(root), layout.has_signature(assertion));
    if !response_signed && !assertion_signed {
        return report.check("signed", Err(ValidationError::Unsigned), String::new);
    }
    let signed = verify(layout, exp, report, "signature_valid", || {
        format!(
            "verified against {} IdP certificate(s); {} signed",
            exp.idp_keys.len(),
            envelope::signed_what(response_signed, assertion_signed)
        )
    })?;
    read_signed(&signed, exp, report, root.attribute("InResponseTo"))
}

/// Verifies the signatures of `layout` against the IdP metadata's keys, recorded as `check`.
fn verify<'d, 'i>(
    layout: &CheckedLayout<'d, 'i>,
    exp: &Expectations<'_>,
    report: &mut Report,
    check: &'static str,
    detail: impl FnOnce() -> String,
) -> Result<SignedDocument<'d, 'i>, ValidationError> {
    report.check(
        check,
        signature::verify_signatures(layout, exp.idp_keys, exp.allow_sha1, exp.limits.max_bytes).map_err(Into::into),
        detail,
    )
}

/// Reads the assertion out of the canonical text that the signature covered: a signed Response
/// (its envelope checked again on that text, and its InResponseTo taken from it) or a signed
/// Assertion (`in_response_to_outer` is then the unsigned Response's, which may only make the
/// checks stricter).
fn read_signed(
    signed: &SignedDocument<'_, '_>,
    exp: &Expectations<'_>,
    report: &mut Report,
    in_response_to_outer: Option<&str>,
) -> Result<ValidatedAssertion, ValidationError> {
    let signed_doc = xml::parse_bounded(signed.canonical_text(), exp.limits)?;
    let signed_root = signed_doc.root_element();
    if !signed.signs_root() {
        if !xml::is(&signed_root, NS_SAML, "Assertion") {
            return Err(SignatureError::Invalid.into());
        }
        return assertion::check(signed_root, signed, exp, report, in_response_to_outer);
    }
    let in_response_to_signed = envelope::check_signed(signed_root, exp)?;
    let mut found = xml::children(signed_root, NS_SAML, "Assertion");
    let (Some(assertion), None) = (found.next(), found.next()) else {
        return Err(ValidationError::AssertionCount(
            signed_root
                .descendants()
                .filter(|n| xml::is(n, NS_SAML, "Assertion"))
                .count(),
        ));
    };
    assertion::check(assertion, signed, exp, report, in_response_to_signed)
}

#[cfg(test)]
#[cfg(feature = "demo")] // the dev IdP signs the documents these tests read
pub(super) mod tests {
    use super::*;
    use crate::demo::idp::{DevIdp, ResponseSpec};

    const SP: &str = "https://sp.example.nl/metadata";
    const ACS: &str = "https://sp.example.nl/acs";

    pub(super) fn expectations<'a>(idp: &'a DevIdp, keys: &'a [PKey<Public>], now: DateTime<Utc>) -> Expectations<'a> {
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
            &crate::demo::sign::sign_first_template(&template, &idp.key_der).unwrap(),
        );
        let xml = idp.response_around(&spec, &signed).unwrap();
        assert_eq!(check(&idp, &xml, Utc::now()).unwrap_err().code(), "audience_mismatch");
    }

    #[test]
    fn values_come_from_the_signed_assertion() {
        let idp = idp();
        let spec = ResponseSpec::new(SP, ACS, Some("_req")).attribute("urn:oid:2.5.4.42", &["Sanne"]);
        let v = check(&idp, &idp.response(&spec).unwrap(), Utc::now()).unwrap();
        assert_eq!(v.attributes().first("givenName"), Some("Sanne"));
        assert_eq!(v.name_id(), spec.name_id);
        assert_eq!(v.assertion_id(), spec.assertion_id);
        assert_eq!(v.in_response_to(), Some("_req"));
        assert!(!v.encrypted());
    }

    /// Plaintext and encrypted, whichever element is signed: the same assertion checks run and
    /// give the same result, apart from the `encrypted` mark; nothing signed is refused.
    #[test]
    fn plaintext_and_encrypted_assertions_end_in_the_same_checks() {
        use crate::demo::idp::SignMode;
        use crate::saml::decrypt::{AES128_CBC, AES128_GCM};
        let idp = idp();
        let keys = [idp.cert.public_key().unwrap()];
        let sp_key = crate::keys::generate_key(crate::keys::KeyKind::Rsa2048).unwrap();
        let sp_cert = crate::keys::self_signed_certificate(&sp_key, "sp", 1).unwrap();
        let sp_keys = [sp_key];
        let mut exp = expectations(&idp, &keys, Utc::now());
        exp.decryption_keys = &sp_keys;
        let validate = |xml: &str| validate(xml, &exp, &mut Report::disabled());
        for mode in [SignMode::Assertion, SignMode::Response, SignMode::Both] {
            let mut spec = ResponseSpec::new(SP, ACS, Some("_req")).attribute("urn:oid:2.5.4.42", &["Sanne"]);
            spec.sign = mode;
            let plain = validate(&idp.response(&spec).unwrap()).unwrap();
            assert!(!plain.encrypted());
            let encrypted = validate(&idp.encrypted_response(&spec, &sp_cert, AES128_GCM).unwrap()).unwrap();
            assert!(encrypted.encrypted(), "{mode:?}");
            assert_eq!(encrypted.clone(), plain.clone().decrypted(), "{mode:?}");
            // CBC only where the Response's signature covers the ciphertext.
            let cbc = validate(&idp.encrypted_response(&spec, &sp_cert, AES128_CBC).unwrap());
            assert_eq!(cbc.is_ok(), mode != SignMode::Assertion, "{mode:?}");
        }
        let mut unsigned = ResponseSpec::new(SP, ACS, Some("_req"));
        unsigned.sign = SignMode::Nothing;
        for xml in [
            idp.response(&unsigned).unwrap(),
            idp.encrypted_response(&unsigned, &sp_cert, AES128_GCM).unwrap(),
        ] {
            assert_eq!(validate(&xml).unwrap_err().code(), "signature_missing");
        }
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
