//! XML-DSig: the ONE place in the bridge that touches XML signatures.
//!
//! Verification happens in two layers. First [`check_layout`] reads the signature elements
//! ourselves and refuses anything but the one shape a SAML IdP legitimately produces: an
//! enveloped signature that is a direct child of the Response or of its single Assertion,
//! with exactly one Reference naming its parent's ID, and algorithms from an allowlist.
//! That closes XML Signature Wrapping (XSW1-8), empty-URI references and algorithm games
//! before any cryptography runs. Then [`verify_signed_element`] has xmlsec (through samael)
//! verify against the IdP metadata's certificates ONLY (never a KeyInfo certificate) and
//! returns the canonical bytes that were actually digested, so that every value the bridge
//! uses is read from signed content.

use roxmltree::Node;
use samael::crypto::{AllowedSignatureAlgorithm, CertificateDer, CryptoProvider, ReduceMode};

use super::xml::{self, NS_DS};

pub const ALG_RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
pub const ALG_RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const DIGEST_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
pub const DIGEST_SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const C14N_10: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

const SIGNATURE_ALGORITHMS: &[&str] = &[
    ALG_RSA_SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
];
const DIGEST_ALGORITHMS: &[&str] = &[
    DIGEST_SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
];
/// The same allowlist, for samael's own (second) check when SHA-1 is not allowed.
const SAMAEL_ALLOWED: &[AllowedSignatureAlgorithm] = &[
    AllowedSignatureAlgorithm::RsaSha256,
    AllowedSignatureAlgorithm::RsaSha384,
    AllowedSignatureAlgorithm::RsaSha512,
    AllowedSignatureAlgorithm::EcdsaSha256,
    AllowedSignatureAlgorithm::EcdsaSha384,
];

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
    #[error("libxml2 reads a different document than our checks did ({0})")]
    ParserDisagreement(String),
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
    let signed_info = xml::child(sig, NS_DS, "SignedInfo")
        .ok_or_else(|| SignatureError::ReferenceMismatch("no SignedInfo".into()))?;
    let c14n = algorithm_of(xml::child(signed_info, NS_DS, "CanonicalizationMethod"));
    if c14n != EXC_C14N && c14n != C14N_10 {
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
            if !xml::is(&transform, NS_DS, "Transform") || ![ENVELOPED, EXC_C14N, C14N_10].contains(&alg) {
                return Err(SignatureError::TransformForbidden(alg.to_string()));
            }
        }
    }
    Ok(())
}

fn algorithm_of<'a>(node: Option<Node<'a, '_>>) -> &'a str {
    node.and_then(|n| n.attribute("Algorithm")).unwrap_or("")
}

/// A tripwire for parser differentials: xmlsec verifies with libxml2, our checks read with
/// roxmltree. Both must see the same number of elements and of Signatures, or the checks above
/// would be about another document than the one verified (the UTF-7 trick was one such case).
pub fn check_parsers_agree(xml_text: &str, checked: &roxmltree::Document<'_>) -> Result<(), SignatureError> {
    let ours = checked.descendants().filter(Node::is_element).count();
    let our_signatures = xml::descendants(checked.root_element(), NS_DS, "Signature").count();
    let doc = libxml::parser::Parser::default()
        .parse_string(xml::without_declaration(xml_text))
        .map_err(|e| SignatureError::ParserDisagreement(format!("libxml2 cannot parse it: {e:?}")))?;
    let root = doc
        .get_root_element()
        .ok_or_else(|| SignatureError::ParserDisagreement("libxml2 sees no root element".into()))?;
    let (mut theirs, mut their_signatures) = (0usize, 0usize);
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        theirs += 1;
        if node.get_name() == "Signature" && node.get_namespace().is_some_and(|ns| ns.get_href() == NS_DS) {
            their_signatures += 1;
        }
        stack.extend(node.get_child_elements());
    }
    if (ours, our_signatures) == (theirs, their_signatures) {
        Ok(())
    } else {
        Err(SignatureError::ParserDisagreement(format!(
            "{ours} elements and {our_signatures} signatures versus {theirs} and {their_signatures}"
        )))
    }
}

/// Verifies every signature in `xml_text` against `trusted` (the IdP metadata's signing
/// certificates) and returns the canonical text of the signed element: the Response when it
/// is signed (it then covers the Assertion too), else the Assertion. Call [`check_layout`]
/// first; this function trusts that the layout has been checked.
pub fn verify_signed_element(
    xml_text: &str,
    trusted: &[CertificateDer],
    allow_sha1: bool,
) -> Result<String, SignatureError> {
    // samael skips verification when given no key: never let that happen.
    if trusted.is_empty() {
        return Err(SignatureError::NoTrustedCertificates);
    }
    super::xmlsec_log::route_to_tracing();
    let allowlist = if allow_sha1 { None } else { Some(SAMAEL_ALLOWED) };
    // Without the declaration libxml2 can only read the text as UTF-8, as our checks did.
    samael::crypto::Crypto::reduce_xml_to_signed_with_allowed_algorithms(
        xml::without_declaration(xml_text),
        trusted,
        ReduceMode::PreDigest,
        allowlist,
    )
    .map_err(|_| SignatureError::Invalid)
}

/// Limits for federation metadata fetched from a URL: larger than a response (a federation's
/// metadata lists many entities), still bounded.
pub const METADATA_LIMITS: xml::XmlLimits = xml::XmlLimits {
    max_bytes: 16 * 1024 * 1024,
    max_depth: 32,
    max_nodes: 2_000_000,
};

/// Verifies signed metadata against the certificate(s) configured for it
/// (`metadata_signing_cert`) and returns the canonical text of what the signature covers: the
/// whole root element. The signature must be the root's own (a direct child, referencing the
/// root's ID, or the whole document with an empty URI), alone, with allowlisted algorithms;
/// anything else in the document that claims to be signed is refused.
pub fn verify_metadata(xml_text: &str, trusted: &[CertificateDer]) -> Result<String, SignatureError> {
    let doc = xml::parse_bounded(xml_text, METADATA_LIMITS)
        .map_err(|e| SignatureError::ParserDisagreement(format!("metadata: {e}")))?;
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
    check_parsers_agree(xml_text, &doc)?;
    verify_signed_element(xml_text, trusted, false)
}

/// Signs the first `ds:Signature` template in `xml_text` (enveloped, exc-c14n) with a private
/// key in DER form. Used by the development IdP and the test IdP; the bridge itself only signs
/// AuthnRequests with the Redirect binding's query signature.
pub fn sign_first_template(xml_text: &str, private_key_der: &[u8]) -> Result<String, SignatureError> {
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
    fn the_parser_tripwire_fires_when_the_documents_differ() {
        let text = r#"<r xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:Signature/><a/></r>"#;
        let same = roxmltree::Document::parse(text).unwrap();
        assert_eq!(check_parsers_agree(text, &same), Ok(()));
        // Our checks looked at a document without the Signature that libxml2 would verify.
        let other = roxmltree::Document::parse(r#"<r><a/></r>"#).unwrap();
        assert!(matches!(
            check_parsers_agree(text, &other),
            Err(SignatureError::ParserDisagreement(_))
        ));
    }

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
}
