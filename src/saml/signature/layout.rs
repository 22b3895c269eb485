//! The first layer: where a signature may sit and what it may say, read before any
//! cryptography runs.
//!
//! A SAML IdP legitimately produces one shape: an enveloped signature that is a direct child
//! of the Response or of its single Assertion, with exactly one SignedInfo, exactly one
//! Reference naming its parent's ID, and algorithms and transforms from the allowlists
//! (`algorithms.rs`). Refusing everything else closes XML Signature Wrapping (XSW1-8),
//! empty-URI references and algorithm games.
//!
//! A [`CheckedLayout`] is the proof that this check ran on a document and passed: its
//! constructor is private to this module, and [`super::verify_signatures`] takes nothing else,
//! so no signature is verified (and no [`super::SignedDocument`] made) on a document whose
//! layout was not checked.

use roxmltree::{Document, Node};

use super::algorithms::{
    algorithm_of, ALG_RSA_SHA1, CANONICALIZATIONS, DIGEST_ALGORITHMS, DIGEST_SHA1, ENVELOPED, SIGNATURE_ALGORITHMS,
};
use super::SignatureError;
use crate::saml::xml::{self, NS_DS};

/// Proof that every `ds:Signature` in a document sits in an element allowed to carry one and
/// is shaped as SAML signatures are (one SignedInfo, one Reference to that element, allowed
/// algorithms and transforms). Made only by [`check_layout`] (and, for federation metadata,
/// `check_metadata_layout`); says nothing yet about whether a signature verifies.
pub struct CheckedLayout<'d, 'i> {
    doc: &'d Document<'i>,
    /// Every signature of the document with the element it sits in (and signs), in
    /// document order.
    signatures: Vec<Signature<'d, 'i>>,
}

/// One `ds:Signature` and the element it is enveloped in.
#[derive(Clone, Copy)]
pub(super) struct Signature<'d, 'i> {
    pub(super) element: Node<'d, 'i>,
    pub(super) parent: Node<'d, 'i>,
}

impl<'d, 'i> CheckedLayout<'d, 'i> {
    /// The document whose layout was checked.
    pub fn document(&self) -> &'d Document<'i> {
        self.doc
    }

    /// Whether `element` carries a signature (checked for its shape, not yet verified).
    pub fn has_signature(&self, element: Node<'_, '_>) -> bool {
        self.signatures.iter().any(|s| s.parent == element)
    }

    /// Whether the document carries no signature at all.
    pub fn is_unsigned(&self) -> bool {
        self.signatures.is_empty()
    }

    pub(super) fn signatures(&self) -> &[Signature<'d, 'i>] {
        &self.signatures
    }

    /// Tests only: a layout that was NOT checked, to show that verification still refuses
    /// what it cannot verify (its own checks are the defence in depth behind this type).
    #[cfg(test)]
    pub(super) fn unchecked(doc: &'d Document<'i>) -> Self {
        let signatures = xml::descendants(doc.root_element(), NS_DS, "Signature")
            .filter_map(|element| element.parent_element().map(|parent| Signature { element, parent }))
            .collect();
        CheckedLayout { doc, signatures }
    }
}

/// Checks every `ds:Signature` in the document. `allowed_parents` are the elements that may
/// carry one (the Response root and its single Assertion); any other place is refused.
pub fn check_layout<'d, 'i>(
    doc: &'d Document<'i>,
    allowed_parents: &[Node<'_, '_>],
    allow_sha1: bool,
) -> Result<CheckedLayout<'d, 'i>, SignatureError> {
    let mut signatures = Vec::new();
    for sig in xml::descendants(doc.root_element(), NS_DS, "Signature") {
        let parent = sig.parent_element().ok_or(SignatureError::Misplaced)?;
        if !allowed_parents.contains(&parent) {
            return Err(SignatureError::Misplaced);
        }
        check_signed_info(sig, parent, allow_sha1, Reference::IdOnly)?;
        signatures.push(Signature { element: sig, parent });
    }
    Ok(CheckedLayout { doc, signatures })
}

/// Federation metadata: the signature must be the root's own (a direct child, referencing the
/// root's ID, or the whole document with an empty URI), alone, with allowlisted algorithms
/// (never SHA-1); anything else in the document that claims to be signed is refused.
pub(super) fn check_metadata_layout<'d, 'i>(doc: &'d Document<'i>) -> Result<CheckedLayout<'d, 'i>, SignatureError> {
    let root = doc.root_element();
    let signatures: Vec<Node<'d, 'i>> = xml::descendants(root, NS_DS, "Signature").collect();
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
    Ok(CheckedLayout {
        doc,
        signatures: vec![Signature {
            element: *sig,
            parent: root,
        }],
    })
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

#[cfg(test)]
mod tests {
    use super::super::algorithms::{ALG_RSA_SHA256, DIGEST_SHA256, EXC_C14N};
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
            check_layout(&doc, &[doc.root_element()], false).map(|layout| layout.has_signature(doc.root_element()))
        };
        let enveloped = format!(r#"<ds:Transform Algorithm="{ENVELOPED}"/>"#);
        assert_eq!(check(&signed(&enveloped, 1)), Ok(true));
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

    #[test]
    fn a_signature_outside_the_allowed_parents_is_misplaced() {
        let xml = format!(r#"<r ID="a"><c ID="b"><ds:Signature xmlns:ds="{NS_DS}"/></c></r>"#);
        let doc = roxmltree::Document::parse(&xml).unwrap();
        assert!(matches!(
            check_layout(&doc, &[doc.root_element()], false),
            Err(SignatureError::Misplaced)
        ));
        let unsigned = roxmltree::Document::parse(r#"<r ID="a"/>"#).unwrap();
        let layout = check_layout(&unsigned, &[unsigned.root_element()], false).unwrap();
        assert!(layout.is_unsigned());
        assert!(!layout.has_signature(unsigned.root_element()));
    }
}
