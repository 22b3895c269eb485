//! The second layer: the cryptography, on the document whose layout was checked.
//!
//! Each signature of a [`CheckedLayout`] is checked on that same parsed document: the
//! canonical form of the referenced element (our own C14N, [`crate::saml::c14n`]), its digest,
//! and the SignatureValue over the canonical SignedInfo against the IdP metadata's keys ONLY
//! (KeyInfo is never read). There is no second parser: the bytes that are verified are the
//! tree every other check reads, and the canonical text kept in the [`SignedDocument`] is what
//! the bridge takes its values from.
//!
//! A [`SignedDocument`] is the proof that this happened: its fields are private to this
//! module and [`verify_signatures`] is the only function that makes one, so whatever takes a
//! `SignedDocument` (the assertion reader in [`crate::saml::response`]) can only run on
//! content a signature covered. The model is rustls's `HandshakeSignatureValid`.
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
use samael::crypto::CertificateDer;

use super::algorithms::{algorithm_of, c14n_method, digest_algorithm, reference_transforms, signature_algorithm};
use super::layout::{CheckedLayout, Signature};
use super::SignatureError;
use crate::saml::c14n::{self, C14nError, Method, Options, Scope};
use crate::saml::xml::{self, NS_DS};

/// A SignedInfo is a few hundred bytes; its canonical form may not pass this.
const SIGNED_INFO_MAX: usize = 64 * 1024;

/// Proof that every signature of a [`CheckedLayout`] verified against the trusted keys, with
/// the canonical text of the outermost signed element: what the signature covers, and the only
/// text the bridge reads signed values from. Only [`verify_signatures`] makes one.
pub struct SignedDocument<'d, 'i> {
    /// The elements whose enveloped signature verified, in document order.
    verified: Vec<Node<'d, 'i>>,
    /// The outermost of them: the root element when it is signed (its signature covers
    /// everything inside it), else the first.
    signed_element: Node<'d, 'i>,
    /// The canonical form of `signed_element`, the very text its digest was computed over.
    canonical: String,
}

impl<'d, 'i> SignedDocument<'d, 'i> {
    /// The element [`Self::canonical_text`] is the canonical form of.
    pub fn signed_element(&self) -> Node<'d, 'i> {
        self.signed_element
    }

    /// Whether the signed element is the document's root (a signed Response, or metadata),
    /// rather than an element inside it (an Assertion).
    pub fn signs_root(&self) -> bool {
        self.signed_element == self.signed_element.document().root_element()
    }

    /// Whether `element` carries a signature that verified (its own, enveloped in it).
    pub fn verified_on(&self, element: Node<'_, '_>) -> bool {
        self.verified.contains(&element)
    }

    /// The canonical text of the signed element.
    pub fn canonical_text(&self) -> &str {
        &self.canonical
    }

    pub fn into_canonical_text(self) -> String {
        self.canonical
    }
}

impl std::fmt::Debug for SignedDocument<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedDocument")
            .field("signed_element", &self.signed_element.tag_name().name())
            .field("verified", &self.verified.len())
            .field("canonical_bytes", &self.canonical.len())
            .finish()
    }
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

/// Verifies every signature of `layout` against `trusted` (the IdP metadata's signing keys).
/// The [`SignedDocument`] holds the canonical text of the signed element: the Response when
/// it is signed (it then covers the Assertion too), else the Assertion. A layout without any
/// signature is [`SignatureError::Unsigned`].
pub fn verify_signatures<'d, 'i>(
    layout: &CheckedLayout<'d, 'i>,
    trusted: &[PKey<Public>],
    allow_sha1: bool,
    max_bytes: usize,
) -> Result<SignedDocument<'d, 'i>, SignatureError> {
    // Nothing to verify against must never mean "nothing to check".
    if trusted.is_empty() {
        return Err(SignatureError::NoTrustedCertificates);
    }
    let doc = layout.document();
    let root = doc.root_element();
    let mut verified = Vec::with_capacity(layout.signatures().len());
    let mut outermost: Option<(Node<'d, 'i>, String)> = None;
    for signature in layout.signatures() {
        let signed = verify_one(doc, *signature, trusted, allow_sha1, max_bytes)?;
        verified.push(signature.parent);
        if signature.parent == root || outermost.is_none() {
            outermost = Some((signature.parent, signed));
        }
    }
    let (signed_element, canonical) = outermost.ok_or(SignatureError::Unsigned)?;
    Ok(SignedDocument {
        verified,
        signed_element,
        canonical,
    })
}

/// One enveloped signature: digest of the referenced element, then the SignatureValue.
fn verify_one(
    doc: &Document<'_>,
    signature: Signature<'_, '_>,
    trusted: &[PKey<Public>],
    allow_sha1: bool,
    max_bytes: usize,
) -> Result<String, SignatureError> {
    let Signature { element: sig, parent } = signature;
    // check_layout refused a second SignedInfo (and every other shape read below) already;
    // refused here too, as a defence in depth behind the type.
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

/// One public-key check; a key of the wrong kind simply does not verify.
fn verifies(key: &PKey<Public>, md: MessageDigest, ecdsa: bool, data: &[u8], value: &[u8]) -> bool {
    let der;
    let signature = if ecdsa {
        if key.id() != Id::EC || value.is_empty() || !value.len().is_multiple_of(2) {
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

#[cfg(test)]
#[cfg(feature = "demo")] // the dev IdP signs the documents these tests read
mod tests {
    use super::super::algorithms::*;
    use super::super::check_layout;
    use super::*;

    /// The layout checked (the signatures' own parents allowed), then verified: the canonical text.
    fn verify(doc: &Document<'_>, keys: &[PKey<Public>]) -> Result<String, SignatureError> {
        let parents: Vec<Node> = xml::descendants(doc.root_element(), NS_DS, "Signature")
            .filter_map(|s| s.parent_element())
            .collect();
        let layout = check_layout(doc, &parents, false)?;
        verify_signatures(&layout, keys, false, 1 << 20).map(SignedDocument::into_canonical_text)
    }

    /// xmlsec (through samael) signs; the bridge verifies. For documents that exercise every
    /// C14N rule (namespace rendering and undeclaring, prefix lists, attribute order and
    /// escaping, text escaping, CDATA, comments, PIs, inherited xml:lang), our canonical
    /// bytes must be exactly the bytes xmlsec digested, for each canonicalization choice.
    #[test]
    fn canonical_bytes_match_xmlsec_for_every_c14n_rule() {
        use samael::crypto::{CryptoProvider, ReduceMode};
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
                let signed = crate::demo::sign::sign_first_template(&unsigned, &idp.key_der).unwrap();
                let signed = crate::demo::idp::strip_declaration(&signed);
                let theirs = samael::crypto::Crypto::reduce_xml_to_signed_with_allowed_algorithms(
                    &signed,
                    std::slice::from_ref(&cert_der),
                    ReduceMode::PreDigest,
                    None,
                )
                .expect("xmlsec verifies its own signature");
                let parsed = roxmltree::Document::parse(&signed).unwrap();
                let ours =
                    verify(&parsed, &keys).unwrap_or_else(|e| panic!("{e} for {si_c14n} {transform:?} on {signed}"));
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
                assert_eq!(verify(&parsed, &keys).as_deref(), Ok(theirs.as_str()));
                // With comments, the one in SignedInfo is signed: changing it breaks the signature.
                let comment_changed = signed.replacen("kept only", "changed", 1);
                let parsed = roxmltree::Document::parse(&comment_changed).unwrap();
                assert_eq!(
                    verify(&parsed, &keys).is_ok(),
                    *si_c14n != C14N_11_COMMENTS,
                    "{si_c14n}"
                );
                let tampered = signed.replacen(">t<", ">T<", 1).replacen("undeclared", "Undeclared", 1);
                let parsed = roxmltree::Document::parse(&tampered).unwrap();
                assert_eq!(verify(&parsed, &keys), Err(SignatureError::Invalid));
            }
        }
    }

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
        assert!(matches!(
            check_layout(&doc, &[doc.root_element()], false),
            Err(SignatureError::SignedInfoCount(2))
        ));
        // Verification refuses it too, on a layout that was (in this test only) not checked.
        assert!(matches!(
            verify_signatures(&CheckedLayout::unchecked(&doc), &keys, false, 1 << 20),
            Err(SignatureError::SignedInfoCount(2))
        ));
        let doc = roxmltree::Document::parse(&signed).unwrap();
        assert!(verify(&doc, &keys).is_ok());
    }

    #[test]
    fn c14n_11_below_an_xml_base_is_refused_not_guessed() {
        let idp = crate::demo::idp::DevIdp::generate("https://idp.example.nl").unwrap();
        let cert_b64 = base64::engine::general_purpose::STANDARD.encode(idp.cert.to_der().unwrap());
        let template =
            crate::demo::sign::template("x1", ALG_RSA_SHA256, DIGEST_SHA256, &cert_b64).replace(EXC_C14N, C14N_11);
        let xml = format!(r#"<o xml:base="http://a.example/b/"><r ID="x1"><c/>{template}</r></o>"#);
        let signed =
            crate::demo::idp::strip_declaration(&crate::demo::sign::sign_first_template(&xml, &idp.key_der).unwrap());
        let doc = roxmltree::Document::parse(&signed).unwrap();
        assert!(matches!(
            verify(&doc, &[idp.cert.public_key().unwrap()]),
            Err(SignatureError::TransformForbidden(_))
        ));
    }

    #[test]
    fn a_dev_idp_response_verifies_with_the_bytes_xmlsec_digests() {
        use crate::demo::idp::{DevIdp, ResponseSpec, SignMode};
        use samael::crypto::{CryptoProvider, ReduceMode};
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
            assert_eq!(verify(&doc, &keys), Ok(theirs), "{mode:?}");
            // What the proof says it covers.
            let root = doc.root_element();
            let assertion = xml::child(root, crate::saml::xml::NS_SAML, "Assertion").unwrap();
            let layout = check_layout(&doc, &[root, assertion], false).unwrap();
            let signed = verify_signatures(&layout, &keys, false, 1 << 20).unwrap();
            let response_signed = mode != SignMode::Assertion;
            assert_eq!(signed.signs_root(), response_signed, "{mode:?}");
            assert_eq!(signed.verified_on(root), response_signed, "{mode:?}");
            assert_eq!(signed.verified_on(assertion), mode != SignMode::Response, "{mode:?}");
            let expected = if response_signed { root } else { assertion };
            assert!(signed.signed_element() == expected, "{mode:?}");
            // Another key verifies nothing.
            let other = DevIdp::generate("https://other.example.nl").unwrap();
            assert_eq!(
                verify(&doc, &[other.cert.public_key().unwrap()]),
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
}
