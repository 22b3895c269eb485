//! SAML Responses shaped to make an XML parser, a canonicalizer or the decryption do work that
//! grows faster than the input: the classes of issue 14, each at any size. None needs a key:
//! they are what anyone can post to an ACS. Shared by the cost tests (tests/it/web_hardening.rs)
//! and the benchmark of the worst shapes (benches/hot_paths.rs).

/// One shape: a name for messages, the error code the bridge must refuse it with, and how to
/// build it at about `bytes` bytes.
pub struct Shape {
    pub name: &'static str,
    pub code: &'static str,
    pub build: fn(usize) -> String,
}

pub const SHAPES: &[Shape] = &[
    Shape {
        name: "namespace declarations on one element",
        code: "xml_too_many_namespaces",
        build: namespaces_on_one_element,
    },
    Shape {
        name: "a namespace declaration on each of many descendants",
        code: "xml_too_many_namespaces",
        build: namespace_per_descendant,
    },
    Shape {
        name: "a distinct namespace on each of many descendants",
        code: "xml_too_many_namespaces",
        build: distinct_namespace_per_descendant,
    },
    Shape {
        name: "attributes on one element",
        code: "xml_too_many_attributes",
        build: attributes_on_one_element,
    },
    Shape {
        name: "attributes in a namespace with a long URI",
        code: "xml_value_too_long",
        build: attributes_in_a_long_namespace,
    },
    Shape {
        name: "the most attributes allowed, in the longest namespace allowed, on many elements",
        code: "signature_invalid",
        build: bounded_attributes_on_many_elements,
    },
    Shape {
        name: "xml:* attributes on the ancestors of an element signed with inclusive C14N",
        code: "signature_invalid",
        build: xml_attributes_on_ancestors,
    },
    Shape {
        name: "EncryptedKeys in an unsigned AES-GCM EncryptedAssertion",
        code: "encrypted_key_too_many",
        build: encrypted_keys,
    },
];

const HEAD: &str = r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r" Version="2.0" IssueInstant="2026-01-01T00:00:00Z""#;
const STATUS: &str =
    r#"<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>"#;

/// Repeats `unit(i)` until the text reaches `bytes`.
fn filled(bytes: usize, unit: impl Fn(usize) -> String) -> String {
    let mut out = String::with_capacity(bytes + 64);
    let mut i = 0;
    while out.len() < bytes {
        out.push_str(&unit(i));
        i += 1;
    }
    out
}

/// A Response whose root carries `root_extra` and whose body is `body`.
fn response(root_extra: &str, body: &str) -> String {
    format!("{HEAD}{root_extra}>{STATUS}{body}</samlp:Response>")
}

fn namespaces_on_one_element(bytes: usize) -> String {
    response(&filled(bytes, |i| format!(r#" xmlns:n{i}="urn:n""#)), "")
}

fn namespace_per_descendant(bytes: usize) -> String {
    response("", &filled(bytes, |_| r#"<v xmlns:a="u"/>"#.to_string()))
}

fn distinct_namespace_per_descendant(bytes: usize) -> String {
    response("", &filled(bytes, |i| format!(r#"<v xmlns:a="u{i}"/>"#)))
}

fn attributes_on_one_element(bytes: usize) -> String {
    response(&filled(bytes, |i| format!(r#" a{i}="""#)), "")
}

fn attributes_in_a_long_namespace(bytes: usize) -> String {
    let uri = "u".repeat(bytes / 2);
    let attributes = filled(bytes / 2, |i| format!(r#" p:a{i}="""#));
    response("", &format!(r#"<e xmlns:p="urn:{uri}"{attributes}/>"#))
}

/// Within every bound of the pre-scan, so it reaches the parser: each element makes
/// roxmltree compare each attribute's expanded name with the earlier ones'. Wrapped in a
/// signed-looking assertion so that canonicalization runs over all of it too.
fn bounded_attributes_on_many_elements(bytes: usize) -> String {
    let uri = format!("urn:{}", "u".repeat(250));
    let element = {
        let attributes: String = (0..32).map(|i| format!(r#" p:a{i}="""#)).collect();
        // Written as the canonical form writes it, so the canonical form is no larger.
        format!("<e{attributes}></e>")
    };
    let body = filled(bytes, |_| element.clone());
    signed_looking(&format!(r#" xmlns:p="{uri}""#), &body, INCLUSIVE)
}

/// The apex of an inclusive C14N reference inherits every `xml:*` attribute of its ancestors
/// (here the Response, the only ancestor a signed Assertion may have), with as many as an
/// element may carry beside the Response's own three, and a body that grows with `bytes`.
fn xml_attributes_on_ancestors(bytes: usize) -> String {
    let attributes: String = (0..29).map(|i| format!(r#" xml:a{i}="v""#)).collect();
    let element = format!("<c>{}</c>", "t".repeat(80));
    signed_looking(&attributes, &filled(bytes, |_| element.clone()), INCLUSIVE)
}

/// No signature anywhere, so the AES-GCM ciphertext is all there is; each EncryptedKey would
/// cost an RSA private-key operation per SP key.
fn encrypted_keys(bytes: usize) -> String {
    let key = concat!(
        r#"<xenc:EncryptedKey><xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"/>"#,
        r#"<xenc:CipherData><xenc:CipherValue>AAAA</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey>"#
    );
    let keys = filled(bytes, |_| key.to_string());
    response(
        "",
        &format!(
            concat!(
                r#"<saml:EncryptedAssertion><xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" xmlns:ds="http://www.w3.org/2000/09/xmldsig#">"#,
                r#"<xenc:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#aes128-gcm"/>"#,
                r#"<ds:KeyInfo>{keys}</ds:KeyInfo>"#,
                r#"<xenc:CipherData><xenc:CipherValue>AAAA</xenc:CipherValue></xenc:CipherData>"#,
                r#"</xenc:EncryptedData></saml:EncryptedAssertion>"#
            ),
            keys = keys
        ),
    )
}

const INCLUSIVE: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";

/// A direct-child Assertion with a made-up enveloped signature over it.
fn signed_assertion(body: &str, c14n: &str) -> String {
    format!(
        concat!(
            r#"<saml:Assertion ID="_a" Version="2.0" IssueInstant="2026-01-01T00:00:00Z">{body}"#,
            r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
            r##"<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#_a"><ds:Transforms>"##,
            r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="{c14n}"/></ds:Transforms>"#,
            r#"<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>AAAA</ds:DigestValue></ds:Reference></ds:SignedInfo>"#,
            r#"<ds:SignatureValue>AAAA</ds:SignatureValue></ds:Signature></saml:Assertion>"#
        ),
        body = body,
        c14n = c14n
    )
}

fn signed_looking(root_extra: &str, body: &str, c14n: &str) -> String {
    response(root_extra, &signed_assertion(body, c14n))
}
