//! XML-DSig: the ONE place in the bridge that touches XML signatures.
//!
//! Verification happens in two layers. First [`check_layout`] reads the signature elements
//! and refuses anything but the one shape a SAML IdP legitimately produces: an enveloped
//! signature that is a direct child of the Response or of its single Assertion, with exactly
//! one Reference naming its parent's ID, and algorithms from an allowlist. That closes XML
//! Signature Wrapping (XSW1-8), empty-URI references and algorithm games before any
//! cryptography runs. Then [`verify_signatures`] checks each signature on that same parsed
//! document: the canonical form of the referenced element (our own C14N, [`super::c14n`]),
//! its digest, and the SignatureValue over the canonical SignedInfo against the IdP
//! metadata's keys ONLY (KeyInfo is never read). There is no second parser: the bytes that
//! are verified are the tree every other check reads, and the canonical text returned is
//! what the bridge takes its values from.
//!
//! The keys are loaded once per metadata load ([`public_keys`]); verifying costs two
//! canonicalizations, two digests and one public-key operation.

use base64::Engine;
use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, Public};
use openssl::sign::Verifier;
use roxmltree::{Document, Node};
#[cfg_attr(not(feature = "demo"), allow(unused_imports))]
use samael::crypto::{CertificateDer, CryptoProvider};

use super::c14n::{self, C14nError, Method, Options, Scope};
use super::xml::{self, NS_DS};

pub const ALG_RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
pub const ALG_RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const ALG_RSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384";
const ALG_RSA_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512";
const ALG_ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
const ALG_ECDSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384";
const DIGEST_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
pub const DIGEST_SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
const DIGEST_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#sha384";
const DIGEST_SHA512: &str = "http://www.w3.org/2001/04/xmlenc#sha512";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const C14N_10: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
const C14N_11: &str = "http://www.w3.org/2006/12/xml-c14n11";
const C14N_11_COMMENTS: &str = "http://www.w3.org/2006/12/xml-c14n11#WithComments";
/// The canonicalizations accepted as CanonicalizationMethod and as a Reference transform.
const CANONICALIZATIONS: &[&str] = &[EXC_C14N, C14N_10, C14N_11, C14N_11_COMMENTS];
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

const SIGNATURE_ALGORITHMS: &[&str] = &[
    ALG_RSA_SHA256,
    ALG_RSA_SHA384,
    ALG_RSA_SHA512,
    ALG_ECDSA_SHA256,
    ALG_ECDSA_SHA384,
];
const DIGEST_ALGORITHMS: &[&str] = &[DIGEST_SHA256, DIGEST_SHA384, DIGEST_SHA512];
/// A SignedInfo is a few hundred bytes; its canonical form may not pass this.
const SIGNED_INFO_MAX: usize = 64 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("a Signature is not a direct child of the Response or of its Assertion")]
    Misplaced,
    #[error("the document is not signed")]
    Unsigned,
    #[error("the signature's Reference has an empty URI (it would sign the whole document)")]
    EmptyReference,
    #[error("the signature's Reference does not name the ID of the element it sits in: {0}")]
    ReferenceMismatch(String),
    #[error("the signature algorithm or digest {0} is not allowed")]
    AlgorithmForbidden(String),
    #[error("the signature transform or canonicalization {0} is not allowed")]
    TransformForbidden(String),
    #[error("the signature does not verify against the IdP's signing certificates")]
    Invalid,
    #[error("the IdP metadata holds no signing certificate, so nothing can be verified")]
    NoTrustedCertificates,
    #[error("a signing certificate holds no usable public key")]
    BadCertificate,
    #[error("the signed document cannot be read: {0}")]
    Malformed(String),
    #[error("a Signature holds {0} SignedInfo elements; exactly one is allowed")]
    SignedInfoCount(usize),
    #[error("the canonical form of the signed part is longer than {0} bytes")]
    CanonicalTooLarge(usize),
}

/// Which of the two legitimate places carry a signature.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignedParts {
    pub response: bool,
    pub assertion: bool,
}

/// Checks every `ds:Signature` in the document. `allowed_parents` are the elements that may
/// carry one (the Response root and its single Assertion); any other place is refused.
pub fn check_layout(
    doc: &roxmltree::Document<'_>,
    allowed_parents: &[Node<'_, '_>],
    allow_sha1: bool,
) -> Result<Vec<roxmltree::NodeId>, SignatureError> {
    let mut signed = Vec::new();
    for sig in xml::descendants(doc.root_element(), NS_DS, "Signature") {
        let parent = sig.parent_element().ok_or(SignatureError::Misplaced)?;
        if !allowed_parents.iter().any(|p| p.id() == parent.id()) {
            return Err(SignatureError::Misplaced);
        }
        check_signed_info(sig, parent, allow_sha1, Reference::IdOnly)?;
        signed.push(parent.id());
    }
    Ok(signed)
}

/// Which References a signature may use.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reference {
    /// `#ID` of the element the signature sits in (SAML messages: an empty URI is refused).
    IdOnly,
    /// That, or `""` for the whole document (metadata; the signature is the root's own).
    IdOrDocument,
}

fn check_signed_info(
    sig: Node<'_, '_>,
    parent: Node<'_, '_>,
    allow_sha1: bool,
    allowed: Reference,
) -> Result<(), SignatureError> {
    // Exactly one SignedInfo: with two, a verifier that reads the first and a reader that
    // reads the last would disagree on what was signed.
    let signed_infos: Vec<Node> = xml::children(sig, NS_DS, "SignedInfo").collect();
    let signed_info = match signed_infos.as_slice() {
        [one] => *one,
        [] => return Err(SignatureError::ReferenceMismatch("no SignedInfo".into())),
        many => return Err(SignatureError::SignedInfoCount(many.len())),
    };
    let c14n = algorithm_of(xml::child(signed_info, NS_DS, "CanonicalizationMethod"));
    if !CANONICALIZATIONS.contains(&c14n) {
        return Err(SignatureError::TransformForbidden(c14n.to_string()));
    }
    let method = algorithm_of(xml::child(signed_info, NS_DS, "SignatureMethod"));
    let method_ok = SIGNATURE_ALGORITHMS.contains(&method) || (allow_sha1 && method == ALG_RSA_SHA1);
    if !method_ok {
        return Err(SignatureError::AlgorithmForbidden(method.to_string()));
    }
    let references: Vec<_> = xml::children(signed_info, NS_DS, "Reference").collect();
    let [reference] = references.as_slice() else {
        return Err(SignatureError::ReferenceMismatch(format!(
            "{} References, exactly one expected",
            references.len()
        )));
    };
    let uri = reference.attribute("URI").unwrap_or("");
    if uri.is_empty() {
        if allowed == Reference::IdOnly {
            return Err(SignatureError::EmptyReference);
        }
    } else {
        let parent_id = parent.attribute("ID").unwrap_or("");
        if parent_id.is_empty() || uri.strip_prefix('#') != Some(parent_id) {
            return Err(SignatureError::ReferenceMismatch(uri.to_string()));
        }
    }
    let digest = algorithm_of(xml::child(*reference, NS_DS, "DigestMethod"));
    let digest_ok = DIGEST_ALGORITHMS.contains(&digest) || (allow_sha1 && digest == DIGEST_SHA1);
    if !digest_ok {
        return Err(SignatureError::AlgorithmForbidden(digest.to_string()));
    }
    check_transforms(*reference)
}

/// Only the enveloped-signature transform and canonicalization: no XPath or XSLT that could
/// make the digested bytes a subset of the element.
fn check_transforms(reference: Node<'_, '_>) -> Result<(), SignatureError> {
    if let Some(transforms) = xml::child(reference, NS_DS, "Transforms") {
        for transform in transforms.children().filter(Node::is_element) {
            let alg = transform.attribute("Algorithm").unwrap_or("");
            if !xml::is(&transform, NS_DS, "Transform") || (alg != ENVELOPED && !CANONICALIZATIONS.contains(&alg)) {
                return Err(SignatureError::TransformForbidden(alg.to_string()));
            }
        }
    }
    Ok(())
}

fn algorithm_of<'a>(node: Option<Node<'a, '_>>) -> &'a str {
    node.and_then(|n| n.attribute("Algorithm")).unwrap_or("")
}

/// The public keys of `certs` (the IdP metadata's signing certificates), loaded once so that
/// no login pays for decoding a certificate.
pub fn public_keys(certs: &[CertificateDer]) -> Result<Vec<PKey<Public>>, SignatureError> {
    certs
        .iter()
        .map(|cert| {
            openssl::x509::X509::from_der(cert.der_data())
                .and_then(|x509| x509.public_key())
                .map_err(|_| SignatureError::BadCertificate)
        })
        .collect()
}

/// Verifies every signature in `doc` against `trusted` (the IdP metadata's signing keys) and
/// returns the canonical text of the signed element: the Response when it is signed (it then
/// covers the Assertion too), else the Assertion. Call [`check_layout`] first; this function
/// trusts that the layout has been checked (it still refuses what it cannot verify).
pub fn verify_signatures(
    doc: &Document<'_>,
    trusted: &[PKey<Public>],
    allow_sha1: bool,
    max_bytes: usize,
) -> Result<String, SignatureError> {
    // Nothing to verify against must never mean "nothing to check".
    if trusted.is_empty() {
        return Err(SignatureError::NoTrustedCertificates);
    }
    let root = doc.root_element();
    let mut outermost: Option<String> = None;
    for sig in xml::descendants(root, NS_DS, "Signature") {
        let parent = sig.parent_element().ok_or(SignatureError::Misplaced)?;
        let signed = verify_one(doc, sig, parent, trusted, allow_sha1, max_bytes)?;
        if parent.id() == root.id() || outermost.is_none() {
            outermost = Some(signed);
        }
    }
    outermost.ok_or(SignatureError::Unsigned)
}

/// One enveloped signature: digest of the referenced element, then the SignatureValue.
fn verify_one(
    doc: &Document<'_>,
    sig: Node<'_, '_>,
    parent: Node<'_, '_>,
    trusted: &[PKey<Public>],
    allow_sha1: bool,
    max_bytes: usize,
) -> Result<String, SignatureError> {
    // check_layout refused a second SignedInfo already; refused here too, as the layout may
    // not have been checked on this document.
    let signed_infos = xml::children(sig, NS_DS, "SignedInfo").count();
    if signed_infos != 1 {
        return Err(SignatureError::SignedInfoCount(signed_infos));
    }
    let signed_info = xml::child(sig, NS_DS, "SignedInfo").ok_or(SignatureError::Invalid)?;
    let mut references = xml::children(signed_info, NS_DS, "Reference");
    let (Some(reference), None) = (references.next(), references.next()) else {
        return Err(SignatureError::ReferenceMismatch(
            "exactly one Reference expected".into(),
        ));
    };
    let scope = match reference.attribute("URI").unwrap_or("") {
        "" if parent.id() == doc.root_element().id() => Scope::Document,
        "" => return Err(SignatureError::EmptyReference),
        uri if uri
            .strip_prefix('#')
            .is_some_and(|id| parent.attribute("ID") == Some(id)) =>
        {
            Scope::Element(parent)
        }
        other => return Err(SignatureError::ReferenceMismatch(other.to_string())),
    };
    let (enveloped, (reference_c14n, _)) = reference_transforms(reference)?;
    let digest_method = digest_algorithm(algorithm_of(xml::child(reference, NS_DS, "DigestMethod")), allow_sha1)?;
    let expected_digest = base64_content(xml::child(reference, NS_DS, "DigestValue"))?;
    let digest_matches = |text: &str| {
        openssl::hash::hash(digest_method, text.as_bytes())
            .is_ok_and(|d| d.len() == expected_digest.len() && openssl::memcmp::eq(&d, &expected_digest))
    };
    // A same-document Reference (`#ID` or `""`) leaves comments out whatever its transform
    // says (XML-DSig 4.3.3.3), so `#WithComments` changes nothing here.
    let canonicalize = |scope, exclude, method: &Method, options, max| {
        c14n::canonicalize_with(doc, scope, exclude, method, options, max).map_err(SignatureError::from)
    };
    let exclude = enveloped.then(|| sig.id());
    let mut canonical = canonicalize(scope, exclude, &reference_c14n, Options::default(), max_bytes)?;
    if !digest_matches(&canonical.text) {
        // libxml2-based signers write `&` in a namespace URI as `&#38;`: their digest is of
        // that text. Tried only when such a URI was written; the bytes are the same tree.
        let libxml2 = Options {
            libxml2_namespace_ampersand: true,
            ..Options::default()
        };
        canonical = match canonical.ampersand_in_namespace {
            true => canonicalize(scope, exclude, &reference_c14n, libxml2, max_bytes)?,
            false => return Err(SignatureError::Invalid),
        };
        if !digest_matches(&canonical.text) {
            return Err(SignatureError::Invalid);
        }
    }

    let (signed_info_c14n, comments) = c14n_method(xml::child(signed_info, NS_DS, "CanonicalizationMethod"))?;
    let (md, ecdsa) = signature_algorithm(
        algorithm_of(xml::child(signed_info, NS_DS, "SignatureMethod")),
        allow_sha1,
    )?;
    let value = base64_content(xml::child(sig, NS_DS, "SignatureValue"))?;
    let signature_verifies = |options: Options| -> Result<(bool, bool), SignatureError> {
        let text = canonicalize(
            Scope::Element(signed_info),
            None,
            &signed_info_c14n,
            options,
            SIGNED_INFO_MAX,
        )?;
        let ok = trusted
            .iter()
            .any(|key| verifies(key, md, ecdsa, text.text.as_bytes(), &value));
        Ok((ok, text.ampersand_in_namespace))
    };
    let plain = Options {
        comments,
        ..Options::default()
    };
    let (ok, ampersand) = signature_verifies(plain)?;
    let ok = ok
        || (ampersand
            && signature_verifies(Options {
                libxml2_namespace_ampersand: true,
                ..plain
            })?
            .0);
    if ok {
        Ok(canonical.text)
    } else {
        Err(SignatureError::Invalid)
    }
}

impl From<C14nError> for SignatureError {
    fn from(e: C14nError) -> Self {
        match e {
            C14nError::TooLarge(limit) => SignatureError::CanonicalTooLarge(limit),
            C14nError::XmlBase => SignatureError::TransformForbidden(e.to_string()),
        }
    }
}

/// The Reference's transform chain, of which only one shape exists in SAML: the enveloped
/// signature transform, then at most one canonicalization (without one, the node set is
/// serialized with C14N 1.0, as XML-DSig says).
fn reference_transforms(reference: Node<'_, '_>) -> Result<(bool, (Method, bool)), SignatureError> {
    let mut enveloped = false;
    let mut method: Option<(Method, bool)> = None;
    if let Some(transforms) = xml::child(reference, NS_DS, "Transforms") {
        for transform in transforms.children().filter(Node::is_element) {
            let alg = algorithm_of(Some(transform));
            if alg == ENVELOPED && method.is_none() && !enveloped {
                enveloped = true;
            } else if method.is_none() && CANONICALIZATIONS.contains(&alg) {
                method = Some(c14n_method(Some(transform))?);
            } else {
                return Err(SignatureError::TransformForbidden(alg.to_string()));
            }
        }
    }
    Ok((enveloped, method.unwrap_or((Method::Inclusive, false))))
}

/// The canonicalization a `CanonicalizationMethod` or `Transform` names, with its
/// `InclusiveNamespaces PrefixList` for the exclusive kind (at most as many prefixes as an
/// element may have namespaces in scope: the list is the sender's to write, and its length
/// multiplies the work), and whether it keeps comments.
fn c14n_method(node: Option<Node<'_, '_>>) -> Result<(Method, bool), SignatureError> {
    match algorithm_of(node) {
        C14N_10 => Ok((Method::Inclusive, false)),
        C14N_11 => Ok((Method::Inclusive11, false)),
        C14N_11_COMMENTS => Ok((Method::Inclusive11, true)),
        EXC_C14N => {
            let inclusive_prefixes: Vec<String> = node
                .and_then(|n| n.children().find(|c| xml::is(c, EXC_C14N, "InclusiveNamespaces")))
                .and_then(|n| n.attribute("PrefixList"))
                .map(|list| list.split_ascii_whitespace().map(str::to_string).collect())
                .unwrap_or_default();
            if inclusive_prefixes.len() > xml::MAX_NAMESPACES_IN_SCOPE {
                return Err(SignatureError::TransformForbidden(format!(
                    "an InclusiveNamespaces PrefixList of {} prefixes",
                    inclusive_prefixes.len()
                )));
            }
            Ok((Method::Exclusive { inclusive_prefixes }, false))
        }
        other => Err(SignatureError::TransformForbidden(other.to_string())),
    }
}

fn digest_algorithm(alg: &str, allow_sha1: bool) -> Result<MessageDigest, SignatureError> {
    match alg {
        DIGEST_SHA256 => Ok(MessageDigest::sha256()),
        DIGEST_SHA384 => Ok(MessageDigest::sha384()),
        DIGEST_SHA512 => Ok(MessageDigest::sha512()),
        DIGEST_SHA1 if allow_sha1 => Ok(MessageDigest::sha1()),
        other => Err(SignatureError::AlgorithmForbidden(other.to_string())),
    }
}

/// The digest of a SignatureMethod, and whether it is ECDSA (whose XML-DSig SignatureValue is
/// r and s side by side, not DER).
fn signature_algorithm(alg: &str, allow_sha1: bool) -> Result<(MessageDigest, bool), SignatureError> {
    match alg {
        ALG_RSA_SHA256 => Ok((MessageDigest::sha256(), false)),
        ALG_RSA_SHA384 => Ok((MessageDigest::sha384(), false)),
        ALG_RSA_SHA512 => Ok((MessageDigest::sha512(), false)),
        ALG_ECDSA_SHA256 => Ok((MessageDigest::sha256(), true)),
        ALG_ECDSA_SHA384 => Ok((MessageDigest::sha384(), true)),
        ALG_RSA_SHA1 if allow_sha1 => Ok((MessageDigest::sha1(), false)),
        other => Err(SignatureError::AlgorithmForbidden(other.to_string())),
    }
}

/// One public-key check; a key of the wrong kind simply does not verify.
fn verifies(key: &PKey<Public>, md: MessageDigest, ecdsa: bool, data: &[u8], value: &[u8]) -> bool {
    let der;
    let signature = if ecdsa {
        if key.id() != Id::EC || value.is_empty() || value.len() % 2 != 0 {
            return false;
        }
        let (r, s) = value.split_at(value.len() / 2);
        let parsed = BigNum::from_slice(r)
            .and_then(|r| BigNum::from_slice(s).map(|s| (r, s)))
            .and_then(|(r, s)| EcdsaSig::from_private_components(r, s))
            .and_then(|sig| sig.to_der());
        match parsed {
            Ok(bytes) => {
                der = bytes;
                der.as_slice()
            }
            Err(_) => return false,
        }
    } else {
        if key.id() != Id::RSA {
            return false;
        }
        value
    };
    Verifier::new(md, key)
        .and_then(|mut v| v.verify_oneshot(signature, data))
        .unwrap_or(false)
}

/// The base64 text of a DigestValue or SignatureValue (line breaks allowed, as signers wrap).
fn base64_content(node: Option<Node<'_, '_>>) -> Result<Vec<u8>, SignatureError> {
    let text = node.map(xml::full_text).ok_or(SignatureError::Invalid)?;
    let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| SignatureError::Invalid)
}

/// Limits for federation metadata: larger than a response (an aggregate lists thousands of
/// entities, each declaring its own handful of namespaces), still bounded. The namespace
/// declarations scale with the size bound (one per 64 bytes: real aggregates have about one
/// per 2 KiB); the distinct bindings stay few whatever the size (an aggregate reuses the
/// same dozen or two namespaces in every entity).
pub const METADATA_LIMITS: xml::XmlLimits = xml::XmlLimits {
    max_bytes: 16 * 1024 * 1024,
    max_depth: 32,
    max_nodes: 2_000_000,
    shape: xml::ShapeLimits {
        max_namespace_declarations: 16 * 1024 * 1024 / 64,
        max_distinct_namespaces: 4_096,
    },
};

/// Verifies signed metadata against the certificate(s) configured for it
/// (`metadata_signing_cert`) and returns the canonical text of what the signature covers: the
/// whole root element. The signature must be the root's own (a direct child, referencing the
/// root's ID, or the whole document with an empty URI), alone, with allowlisted algorithms;
/// anything else in the document that claims to be signed is refused.
pub fn verify_metadata(xml_text: &str, trusted: &[CertificateDer]) -> Result<String, SignatureError> {
    let doc = xml::parse_bounded(xml_text, METADATA_LIMITS).map_err(|e| SignatureError::Malformed(e.to_string()))?;
    let root = doc.root_element();
    let signatures: Vec<Node<'_, '_>> = xml::descendants(root, NS_DS, "Signature").collect();
    let [sig] = signatures.as_slice() else {
        return Err(if signatures.is_empty() {
            SignatureError::Unsigned
        } else {
            SignatureError::Misplaced
        });
    };
    if sig.parent_element().map(|p| p.id()) != Some(root.id()) {
        return Err(SignatureError::Misplaced);
    }
    // `URI=""` is the whole document: with the signature a child of the root, the root is
    // what is signed.
    check_signed_info(*sig, root, false, Reference::IdOrDocument)?;
    verify_signatures(&doc, &public_keys(trusted)?, false, METADATA_LIMITS.max_bytes)
}

/// Signs the first `ds:Signature` template in `xml_text` (enveloped, exc-c14n) with a private
/// key in DER form. Used by the development IdP and the test IdP; the bridge itself only signs
/// AuthnRequests with the Redirect binding's query signature.
#[cfg(feature = "demo")]
pub fn sign_first_template(xml_text: &str, private_key_der: &[u8]) -> Result<String, SignatureError> {
    super::xmlsec_log::route_to_tracing();
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

pub const SHA1_PAIR: (&str, &str) = (ALG_RSA_SHA1, DIGEST_SHA1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_refuses_foreign_transforms_and_multiple_references() {
        let signed = |transforms: &str, references: usize| {
            let reference = format!(
                r##"<ds:Reference URI="#a"><ds:Transforms>{transforms}</ds:Transforms><ds:DigestMethod Algorithm="{DIGEST_SHA256}"/><ds:DigestValue/></ds:Reference>"##
            );
            format!(
                r#"<r xmlns:ds="{NS_DS}" ID="a"><ds:Signature><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="{EXC_C14N}"/><ds:SignatureMethod Algorithm="{ALG_RSA_SHA256}"/>{}</ds:SignedInfo></ds:Signature></r>"#,
                reference.repeat(references)
            )
        };
        let check = |xml: &str| {
            let doc = roxmltree::Document::parse(xml).unwrap();
            check_layout(&doc, &[doc.root_element()], false)
        };
        let enveloped = format!(r#"<ds:Transform Algorithm="{ENVELOPED}"/>"#);
        assert!(check(&signed(&enveloped, 1)).is_ok());
        let xslt = r#"<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116"/>"#;
        assert!(matches!(
            check(&signed(xslt, 1)),
            Err(SignatureError::TransformForbidden(_))
        ));
        assert!(matches!(
            check(&signed(&enveloped, 2)),
            Err(SignatureError::ReferenceMismatch(_))
        ));
    }

    /// xmlsec (through samael) signs; the bridge verifies. For documents that exercise every
    /// C14N rule (namespace rendering and undeclaring, prefix lists, attribute order and
    /// escaping, text escaping, CDATA, comments, PIs, inherited xml:lang), our canonical
    /// bytes must be exactly the bytes xmlsec digested, for each canonicalization choice.
    #[cfg(feature = "demo")]
    #[test]
    fn canonical_bytes_match_xmlsec_for_every_c14n_rule() {
        use samael::crypto::ReduceMode;
        let idp = crate::demo::idp::DevIdp::generate("https://idp.example.nl").unwrap();
        let cert_der = CertificateDer::from(idp.cert.to_der().unwrap());
        let keys = public_keys(std::slice::from_ref(&cert_der)).unwrap();
        let cert_b64 = base64::engine::general_purpose::STANDARD.encode(idp.cert.to_der().unwrap());

        let nested = concat!(
            r#"<root xmlns="urn:default" xmlns:a="urn:a" xmlns:unused="urn:unused" xml:lang="nl" xml:space="preserve" xml:id="r0">"#,
            r#"<a:item  z='1' ID="x1" a:attr="v" b="&lt;&amp;&quot;&#9;&#10;&#13;>'" xmlns:b="urn:b">"#,
            "<!-- a comment -->\n  <b:child xmlns:a=\"urn:a2\" a:k=\"1\" xml:lang=\"en\">text &amp; &lt; &gt; &#13; ]]&gt;",
            r#"<![CDATA[<cdata & >]]>é ∑</b:child><empty/><x xmlns="">undeclared<y xmlns="urn:default"/></x>"#,
            r#"<?pi some data?><?bare?><c xmlns:xs="http://www.w3.org/2001/XMLSchema" "#,
            r#"xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">v</c>"#,
            r#"<a:same xmlns:a="urn:a">re-declared, same value</a:same>{sig}</a:item></root>"#
        );
        let at_root =
            r#"<r:root xmlns:r="urn:r" xmlns="urn:d" ID="x1" b="2" a="1"><child r:x="1">t</child>{sig}</r:root>"#;
        let exc = EXC_C14N;
        let incl = C14N_10;
        // (SignedInfo canonicalization, its prefix list, the Reference's c14n transform).
        type PrefixList<'a> = Option<&'a str>;
        type Choice<'a> = (&'a str, PrefixList<'a>, Option<(&'a str, PrefixList<'a>)>);
        let choices: &[Choice] = &[
            (exc, None, Some((exc, None))),
            (exc, Some("ds"), Some((exc, Some("xs #default b")))),
            (incl, None, Some((incl, None))),
            (exc, None, None),
            (C14N_11, None, Some((C14N_11, None))),
            (C14N_11_COMMENTS, None, Some((C14N_11_COMMENTS, None))),
            (exc, None, Some((C14N_11, None))),
            (C14N_11_COMMENTS, None, Some((exc, None))),
        ];
        // `#default` in a PrefixList where a prefixed element undeclares the default.
        let undeclared =
            r#"<r xmlns="urn:d" ID="x1"><p:c xmlns:p="urn:p" xmlns=""><q:d xmlns:q="urn:q">t</q:d></p:c>{sig}</r>"#;
        // `&` in a namespace URI, which libxml2 renders as `&#38;` (tried when `&amp;` fails),
        // used by the apex, by a child, and only declared (inclusive methods render it).
        let ampersand = concat!(
            r#"<o xmlns:u="urn:x?a=1&amp;b=2" xml:lang="nl"><m:r xmlns:m="urn:m&amp;n" xmlns:v="urn:v&#38;w" ID="x1">"#,
            r#"<u:child m:k="1&amp;2">t</u:child>{sig}</m:r></o>"#
        );
        for doc in [nested, at_root, undeclared, ampersand] {
            for (si_c14n, si_prefixes, transform) in choices {
                let prefix_list = |list: &Option<&str>| {
                    list.map(|l| format!(r#"<ec:InclusiveNamespaces xmlns:ec="{EXC_C14N}" PrefixList="{l}"/>"#))
                        .unwrap_or_default()
                };
                let c14n_transform = transform
                    .map(|(alg, list)| {
                        format!(
                            r#"<ds:Transform Algorithm="{alg}">{}</ds:Transform>"#,
                            prefix_list(&list)
                        )
                    })
                    .unwrap_or_default();
                let sig = format!(
                    concat!(
                        r#"<ds:Signature xmlns:ds="{ds}"><ds:SignedInfo><!-- kept only #WithComments --><ds:CanonicalizationMethod Algorithm="{si}">{sip}</ds:CanonicalizationMethod>"#,
                        r##"<ds:SignatureMethod Algorithm="{alg}"/><ds:Reference URI="#x1"><ds:Transforms>"##,
                        r#"<ds:Transform Algorithm="{env}"/>{t}</ds:Transforms><ds:DigestMethod Algorithm="{dig}"/>"#,
                        r#"<ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue>"#,
                        r#"<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>"#
                    ),
                    ds = NS_DS,
                    si = si_c14n,
                    sip = prefix_list(si_prefixes),
                    alg = ALG_RSA_SHA256,
                    env = ENVELOPED,
                    t = c14n_transform,
                    dig = DIGEST_SHA256,
                    cert = cert_b64
                );
                let unsigned = doc.replace("{sig}", &sig);
                let signed = sign_first_template(&unsigned, &idp.key_der).unwrap();
                let signed = crate::demo::idp::strip_declaration(&signed);
                let theirs = samael::crypto::Crypto::reduce_xml_to_signed_with_allowed_algorithms(
                    &signed,
                    std::slice::from_ref(&cert_der),
                    ReduceMode::PreDigest,
                    None,
                )
                .expect("xmlsec verifies its own signature");
                let parsed = roxmltree::Document::parse(&signed).unwrap();
                let ours = verify_signatures(&parsed, &keys, false, 1 << 20)
                    .unwrap_or_else(|e| panic!("{e} for {si_c14n} {transform:?} on {signed}"));
                assert_eq!(ours, theirs, "{si_c14n} {transform:?}");
                if doc == ampersand {
                    // libxml2's rendering, so the fallback is what verified here.
                    assert!(theirs.contains("&#38;"), "{theirs}");
                }

                // A change the canonical form keeps (a comment) still verifies; one it does
                // not keep (a value) does not.
                let commented =
                    signed
                        .replacen("<child", "<!--x--><child", 1)
                        .replacen("<b:child", "<!--x--><b:child", 1);
                let parsed = roxmltree::Document::parse(&commented).unwrap();
                assert_eq!(
                    verify_signatures(&parsed, &keys, false, 1 << 20).as_deref(),
                    Ok(theirs.as_str())
                );
                // With comments, the one in SignedInfo is signed: changing it breaks the signature.
                let comment_changed = signed.replacen("kept only", "changed", 1);
                let parsed = roxmltree::Document::parse(&comment_changed).unwrap();
                assert_eq!(
                    verify_signatures(&parsed, &keys, false, 1 << 20).is_ok(),
                    *si_c14n != C14N_11_COMMENTS,
                    "{si_c14n}"
                );
                let tampered = signed.replacen(">t<", ">T<", 1).replacen("undeclared", "Undeclared", 1);
                let parsed = roxmltree::Document::parse(&tampered).unwrap();
                assert_eq!(
                    verify_signatures(&parsed, &keys, false, 1 << 20),
                    Err(SignatureError::Invalid)
                );
            }
        }
    }

    #[cfg(feature = "demo")]
    #[test]
    fn a_second_signed_info_is_refused_by_layout_and_by_verification() {
        let idp = crate::demo::idp::DevIdp::generate("https://idp.example.nl").unwrap();
        let keys = [idp.cert.public_key().unwrap()];
        let spec = crate::demo::idp::ResponseSpec::new("https://sp", "https://sp/acs", Some("_r"));
        let signed = idp.assertion(&spec).unwrap();
        let (start, end) = (
            signed.find("<ds:SignedInfo>").unwrap(),
            signed.find("</ds:SignedInfo>").unwrap() + "</ds:SignedInfo>".len(),
        );
        let doubled = format!("{}{}{}", &signed[..end], &signed[start..end], &signed[end..]);
        let doc = roxmltree::Document::parse(&doubled).unwrap();
        assert_eq!(
            check_layout(&doc, &[doc.root_element()], false),
            Err(SignatureError::SignedInfoCount(2))
        );
        assert_eq!(
            verify_signatures(&doc, &keys, false, 1 << 20),
            Err(SignatureError::SignedInfoCount(2))
        );
        let doc = roxmltree::Document::parse(&signed).unwrap();
        assert!(verify_signatures(&doc, &keys, false, 1 << 20).is_ok());
    }

    #[cfg(feature = "demo")]
    #[test]
    fn c14n_11_below_an_xml_base_is_refused_not_guessed() {
        let idp = crate::demo::idp::DevIdp::generate("https://idp.example.nl").unwrap();
        let cert_b64 = base64::engine::general_purpose::STANDARD.encode(idp.cert.to_der().unwrap());
        let template = template("x1", ALG_RSA_SHA256, DIGEST_SHA256, &cert_b64).replace(EXC_C14N, C14N_11);
        let xml = format!(r#"<o xml:base="http://a.example/b/"><r ID="x1"><c/>{template}</r></o>"#);
        let signed = crate::demo::idp::strip_declaration(&sign_first_template(&xml, &idp.key_der).unwrap());
        let doc = roxmltree::Document::parse(&signed).unwrap();
        assert!(matches!(
            verify_signatures(&doc, &[idp.cert.public_key().unwrap()], false, 1 << 20),
            Err(SignatureError::TransformForbidden(_))
        ));
    }

    #[cfg(feature = "demo")]
    #[test]
    fn a_dev_idp_response_verifies_with_the_bytes_xmlsec_digests() {
        use crate::demo::idp::{DevIdp, ResponseSpec, SignMode};
        use samael::crypto::ReduceMode;
        let idp = DevIdp::generate("https://idp.example.nl").unwrap();
        let cert_der = CertificateDer::from(idp.cert.to_der().unwrap());
        let keys = public_keys(std::slice::from_ref(&cert_der)).unwrap();
        for mode in [SignMode::Assertion, SignMode::Response, SignMode::Both] {
            let mut spec = ResponseSpec::new("https://sp.example.nl", "https://sp.example.nl/acs", Some("_r"));
            spec.sign = mode;
            let xml = idp.response(&spec).unwrap();
            let theirs = samael::crypto::Crypto::reduce_xml_to_signed_with_allowed_algorithms(
                &xml,
                std::slice::from_ref(&cert_der),
                ReduceMode::PreDigest,
                None,
            )
            .unwrap();
            let doc = roxmltree::Document::parse(&xml).unwrap();
            assert_eq!(verify_signatures(&doc, &keys, false, 1 << 20), Ok(theirs), "{mode:?}");
            // Another key verifies nothing.
            let other = DevIdp::generate("https://other.example.nl").unwrap();
            assert_eq!(
                verify_signatures(&doc, &[other.cert.public_key().unwrap()], false, 1 << 20),
                Err(SignatureError::Invalid)
            );
        }
    }

    #[test]
    fn ecdsa_signature_values_are_read_as_r_and_s() {
        use openssl::ec::{EcGroup, EcKey};
        use openssl::nid::Nid;
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        let public = PKey::public_key_from_der(&key.public_key_to_der().unwrap()).unwrap();
        let data = b"<ds:SignedInfo/>";
        let mut signer = openssl::sign::Signer::new(MessageDigest::sha256(), &key).unwrap();
        let der = signer.sign_oneshot_to_vec(data).unwrap();
        let sig = EcdsaSig::from_der(&der).unwrap();
        let mut raw = sig.r().to_vec_padded(32).unwrap();
        raw.extend(sig.s().to_vec_padded(32).unwrap());
        assert!(verifies(&public, MessageDigest::sha256(), true, data, &raw));
        assert!(!verifies(&public, MessageDigest::sha256(), true, b"<other/>", &raw));
        // DER is not what XML-DSig carries, and an RSA reading of it fails too.
        assert!(!verifies(&public, MessageDigest::sha256(), true, data, &der));
        assert!(!verifies(&public, MessageDigest::sha256(), false, data, &raw));
    }

    #[test]
    fn transform_chains_other_than_enveloped_then_c14n_are_refused() {
        let reference = |transforms: &str| {
            format!(
                r##"<ds:Reference xmlns:ds="{NS_DS}" URI="#a"><ds:Transforms>{transforms}</ds:Transforms></ds:Reference>"##
            )
        };
        let t = |alg: &str| format!(r#"<ds:Transform Algorithm="{alg}"/>"#);
        let check = |xml: String| {
            let doc = roxmltree::Document::parse(&xml).unwrap();
            reference_transforms(doc.root_element()).map(|(enveloped, _)| enveloped)
        };
        assert_eq!(check(reference(&(t(ENVELOPED) + &t(EXC_C14N)))), Ok(true));
        assert_eq!(check(reference(&t(EXC_C14N))), Ok(false));
        for bad in [
            t(EXC_C14N) + &t(ENVELOPED),
            t(ENVELOPED) + &t(ENVELOPED),
            t(EXC_C14N) + &t(C14N_10),
            t("http://www.w3.org/TR/1999/REC-xpath-19991116"),
        ] {
            assert!(
                matches!(check(reference(&bad)), Err(SignatureError::TransformForbidden(_))),
                "{bad}"
            );
        }
    }
}
