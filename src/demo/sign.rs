//! Signing XML documents with xmlsec (through samael's `xmlsec` feature): what the
//! development IdP and the tests need to play an IdP. The bridge itself never signs a
//! document (it only signs AuthnRequests with the Redirect binding's query signature,
//! `saml::redirect`) and verifies with its own code (`saml::signature`), so nothing here is
//! part of the production bridge.
//!
//! xmlsec reports every failed check by printing to stderr, outside the structured log and
//! without a correlation id; those reports are routed into `tracing` (target `xmlsec`, debug).

use std::ffi::{c_char, c_int, CStr};
use std::sync::Once;

use samael::crypto::CryptoProvider;

use crate::saml::signature::{SignatureError, ALG_RSA_SHA1, DIGEST_SHA1};
use crate::saml::xml;

/// RSA-SHA1 with a SHA-1 digest, for responses that a federation with `allow_sha1` accepts.
pub const SHA1_PAIR: (&str, &str) = (ALG_RSA_SHA1, DIGEST_SHA1);

/// Signs the first `ds:Signature` template in `xml_text` (enveloped, exc-c14n) with a private
/// key in DER form.
pub fn sign_first_template(xml_text: &str, private_key_der: &[u8]) -> Result<String, SignatureError> {
    route_xmlsec_errors_to_tracing();
    samael::crypto::Crypto::sign_xml(xml_text, private_key_der).map_err(|_| SignatureError::Invalid)
}

/// A signature template for an element with `id`, as [`sign_first_template`] expects it.
pub fn template(id: &str, signature_alg: &str, digest_alg: &str, cert_b64: &str) -> String {
    format!(
        concat!(
            r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>"#,
            r#"<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
            r##"<ds:SignatureMethod Algorithm="{alg}"/><ds:Reference URI="#{id}"><ds:Transforms>"##,
            r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>"#,
            r#"<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>"#,
            r#"<ds:DigestMethod Algorithm="{digest}"/><ds:DigestValue></ds:DigestValue></ds:Reference>"#,
            r#"</ds:SignedInfo><ds:SignatureValue></ds:SignatureValue><ds:KeyInfo><ds:X509Data>"#,
            r#"<ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>"#
        ),
        alg = signature_alg,
        id = xml::escape(id),
        digest = digest_alg,
        cert = cert_b64
    )
}

type ErrorsCallback =
    unsafe extern "C" fn(*const c_char, c_int, *const c_char, *const c_char, *const c_char, c_int, *const c_char);

unsafe extern "C" {
    // libxmlsec1, linked through samael's xmlsec feature.
    fn xmlSecErrorsSetCallback(callback: Option<ErrorsCallback>);
}

/// # Safety
/// Called by xmlsec with NUL-terminated strings or null pointers.
unsafe extern "C" fn forward(
    _file: *const c_char,
    _line: c_int,
    func: *const c_char,
    object: *const c_char,
    _subject: *const c_char,
    reason: c_int,
    msg: *const c_char,
) {
    let text = |p: *const c_char| {
        if p.is_null() {
            String::new()
        } else {
            // SAFETY: xmlsec passes valid NUL-terminated strings when not null.
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
    };
    let (func, object, msg) = (text(func), text(object), text(msg));
    // Never unwind into C.
    let _ = std::panic::catch_unwind(|| tracing::debug!(target: "xmlsec", func, object, reason, "{msg}"));
}

/// Installs the callback once; safe to call before every signing.
fn route_xmlsec_errors_to_tracing() {
    static ONCE: Once = Once::new();
    // SAFETY: `forward` matches xmlsec's xmlSecErrorsCallback signature and never unwinds.
    ONCE.call_once(|| unsafe { xmlSecErrorsSetCallback(Some(forward)) });
}
