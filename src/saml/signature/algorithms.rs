//! The algorithms a signature may name, as allowlists, and what each URI means: the digest,
//! the public-key scheme, the canonicalization. Anything not listed is refused by name
//! ([`SignatureError::AlgorithmForbidden`], [`SignatureError::TransformForbidden`]), so no
//! URI an attacker writes reaches a code path the bridge did not choose.

use openssl::hash::MessageDigest;
use roxmltree::Node;

use super::SignatureError;
use crate::saml::c14n::Method;
use crate::saml::xml::{self, NS_DS};

pub const ALG_RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
pub const ALG_RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
pub(super) const ALG_RSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384";
pub(super) const ALG_RSA_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512";
pub(super) const ALG_ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
pub(super) const ALG_ECDSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384";
pub const DIGEST_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
pub const DIGEST_SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
pub(super) const DIGEST_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#sha384";
pub(super) const DIGEST_SHA512: &str = "http://www.w3.org/2001/04/xmlenc#sha512";
pub(super) const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
pub(super) const C14N_10: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
pub(super) const C14N_11: &str = "http://www.w3.org/2006/12/xml-c14n11";
pub(super) const C14N_11_COMMENTS: &str = "http://www.w3.org/2006/12/xml-c14n11#WithComments";
/// The canonicalizations accepted as CanonicalizationMethod and as a Reference transform.
pub(super) const CANONICALIZATIONS: &[&str] = &[EXC_C14N, C14N_10, C14N_11, C14N_11_COMMENTS];
pub(super) const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

pub(super) const SIGNATURE_ALGORITHMS: &[&str] = &[
    ALG_RSA_SHA256,
    ALG_RSA_SHA384,
    ALG_RSA_SHA512,
    ALG_ECDSA_SHA256,
    ALG_ECDSA_SHA384,
];
pub(super) const DIGEST_ALGORITHMS: &[&str] = &[DIGEST_SHA256, DIGEST_SHA384, DIGEST_SHA512];

pub(super) fn algorithm_of<'a>(node: Option<Node<'a, '_>>) -> &'a str {
    node.and_then(|n| n.attribute("Algorithm")).unwrap_or("")
}

/// The Reference's transform chain, of which only one shape exists in SAML: the enveloped
/// signature transform, then at most one canonicalization (without one, the node set is
/// serialized with C14N 1.0, as XML-DSig says).
pub(super) fn reference_transforms(reference: Node<'_, '_>) -> Result<(bool, (Method, bool)), SignatureError> {
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
pub(super) fn c14n_method(node: Option<Node<'_, '_>>) -> Result<(Method, bool), SignatureError> {
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

pub(super) fn digest_algorithm(alg: &str, allow_sha1: bool) -> Result<MessageDigest, SignatureError> {
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
pub(super) fn signature_algorithm(alg: &str, allow_sha1: bool) -> Result<(MessageDigest, bool), SignatureError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
