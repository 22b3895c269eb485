//! An EncryptedAssertion: which ciphertext is decrypted, and how its plaintext is read.
//!
//! When the Response is signed, its envelope is checked again on the text its signature covered
//! and the EncryptedAssertion is taken from that text, so the plaintext is covered by that
//! signature (AES-CBC is then allowed: the ciphertext cannot have been altered). Otherwise the
//! decrypted Assertion must carry its own signature that verifies (and CBC only with
//! `allow_cbc`). Either way the plaintext is read in
//! its context ([`plaintext_in_context`]), and the assertion ends in the same checks as a
//! plaintext one ([`super::assertion::check`]).

use roxmltree::Node;

use super::assertion::{self, ValidatedAssertion};
use super::envelope::{self, check_no_comments};
use super::{read_signed, strip_bom, verify, Expectations, Report};
use crate::saml::decrypt;
use crate::saml::error::ValidationError;
use crate::saml::signature::{self, CheckedLayout, SignedDocument};
use crate::saml::xml::{self, XmlLimits, NS_SAML};

/// Decrypts `encrypted` (the document's one EncryptedAssertion, a direct child of the Response
/// whose signature layout `layout` checked) and validates the assertion it holds.
pub(super) fn read(
    layout: &CheckedLayout<'_, '_>,
    encrypted: Node<'_, '_>,
    exp: &Expectations<'_>,
    report: &mut Report,
) -> Result<ValidatedAssertion, ValidationError> {
    let root = layout.document().root_element();
    let signed_response = if layout.has_signature(root) {
        Some(verify(layout, exp, report, "signature_valid", || {
            "Response signature verified".into()
        })?)
    } else {
        None
    };
    // With a signed Response, its envelope is checked again on the signed text (as for a
    // plaintext assertion) and the ciphertext is read from there; AES-CBC is then safe, as
    // the ciphertext cannot have been altered.
    let signed_doc = match &signed_response {
        Some(signed) => Some(xml::parse_bounded(signed.canonical_text(), exp.limits)?),
        None => None,
    };
    let (ciphertext, allow_cbc, in_response_to_outer) = match &signed_doc {
        Some(signed_doc) => {
            let signed_root = signed_doc.root_element();
            let in_response_to = envelope::check_signed(signed_root, exp)?;
            let enc =
                xml::child(signed_root, NS_SAML, "EncryptedAssertion").ok_or(ValidationError::AssertionMisplaced)?;
            (enc, true, in_response_to)
        }
        None => (encrypted, exp.allow_cbc, root.attribute("InResponseTo")),
    };
    let plaintext = report.check(
        "decrypt",
        decrypt::decrypt_assertion(ciphertext, exp.decryption_keys, allow_cbc),
        || "EncryptedAssertion decrypted".into(),
    )?;
    // Decrypted where the EncryptedAssertion sits: the declarations in scope there are the
    // context the plaintext was written in (the raw document's; for a signed Response the
    // same element the signature covered).
    let in_context = report.check(
        "decrypted_in_context",
        plaintext_in_context(&plaintext, encrypted),
        || "parsed with the namespaces in scope at the EncryptedAssertion".into(),
    )?;
    read_decrypted(&in_context, signed_response.as_ref(), exp, report, in_response_to_outer)
        .map(ValidatedAssertion::decrypted)
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

/// The decrypted assertion, read inside its context element (see [`plaintext_in_context`]).
/// Its own signature, when it has one, must verify, and the assertion is then read from the
/// text that signature covers; without one, the Response's verified signature
/// (`signed_response`) must cover it, else it is refused as unsigned.
fn read_decrypted(
    wrapped: &str,
    signed_response: Option<&SignedDocument<'_, '_>>,
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
    let layout = signature::check_layout(&doc, &[root], exp.allow_sha1)?;
    if layout.has_signature(root) {
        let signed = verify(&layout, exp, report, "decrypted_assertion_signature", || {
            "decrypted Assertion's signature verified".into()
        })?;
        read_signed(&signed, exp, report, in_response_to_outer)
    } else if let Some(signed_response) = signed_response {
        // The ciphertext was read from the text the Response's signature covers.
        assertion::check(root, signed_response, exp, report, in_response_to_outer)
    } else {
        report.check("signed", Err(ValidationError::Unsigned), String::new)
    }
}

#[cfg(test)]
#[cfg(feature = "demo")] // the dev IdP signs the documents these tests read
mod tests {
    use super::*;
    use crate::demo::idp::DevIdp;
    use crate::saml::response::tests::expectations;

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
        let idp = DevIdp::generate("https://idp.example.nl").unwrap();
        let keys = [idp.cert.public_key().unwrap()];
        let exp = expectations(&idp, &keys, chrono::Utc::now());
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
            let err = read_decrypted(&wrapped, None, &exp, &mut Report::disabled(), None).unwrap_err();
            assert_eq!(err.code(), code, "{escape}");
        }
    }
}
