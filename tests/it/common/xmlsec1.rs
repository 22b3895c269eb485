//! The xmlsec1 command-line tool (Debian's `xmlsec1`, installed by
//! `scripts/system-deps.sh --test`) as a signer and encrypter independent of the bridge's own
//! code: documents made here are what an xmlsec-based IdP sends, built with its own parser and
//! serializer (libxml2), not with the bridge's canonicalization or samael's bindings.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use entree_bridge::demo::idp::{strip_declaration, DevIdp, ResponseSpec, SignMode};

const ID_ATTRS: &[&str] = &[
    "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
    "urn:oasis:names:tc:SAML:2.0:protocol:Response",
    "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor",
    "urn:oasis:names:tc:SAML:2.0:metadata:EntitiesDescriptor",
];
const RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";

fn run(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("xmlsec1")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("xmlsec1 runs (scripts/system-deps.sh --test installs it)");
    assert!(
        out.status.success(),
        "xmlsec1 {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.join("out.xml")).expect("xmlsec1 output");
    strip_declaration(&text)
}

/// Signs the first `ds:Signature` template in `xml` (in document order) with `key`, the
/// template's algorithms and canonicalizations as written; `ID` attributes of Assertion and
/// Response are the reference targets.
pub fn sign(xml: &str, key: &openssl::pkey::PKeyRef<openssl::pkey::Private>) -> String {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("key.pem"), key.private_key_to_pem_pkcs8().expect("pem")).expect("write");
    std::fs::write(dir.path().join("in.xml"), xml).expect("write");
    let mut args = vec!["--sign", "--privkey-pem", "key.pem"];
    for node in ID_ATTRS {
        args.extend(["--id-attr:ID", node]);
    }
    args.extend(["--output", "out.xml", "in.xml"]);
    run(dir.path(), &args)
}

/// `xml` (whose root element has `ID="{id}"`) with an enveloped exclusive-C14N RSA-SHA256
/// signature template as the root's first child, signed by xmlsec1.
pub fn sign_root(xml: &str, id: &str, idp: &DevIdp) -> String {
    sign_root_with(xml, id, idp, "http://www.w3.org/2001/10/xml-exc-c14n#")
}

/// As [`sign_root`], with `c14n` as CanonicalizationMethod and Reference transform.
pub fn sign_root_with(xml: &str, id: &str, idp: &DevIdp, c14n: &str) -> String {
    let template = entree_bridge::demo::sign::template(
        id,
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        entree_bridge::saml::signature::DIGEST_SHA256,
        &idp.cert_b64,
    )
    .replace("http://www.w3.org/2001/10/xml-exc-c14n#", c14n);
    let body = strip_declaration(xml);
    let open_end = body.find('>').expect("root start tag") + 1;
    sign(
        &format!("{}{template}{}", &body[..open_end], &body[open_end..]),
        &idp.key,
    )
}

/// Encrypts the `saml:Assertion` in `xml` in place (it becomes `EncryptedData` inside the
/// surrounding `saml:EncryptedAssertion`) to `sp_cert` with `content_alg` and RSA-OAEP. xmlsec1
/// serializes the element alone, so the plaintext carries only the namespace declarations the
/// element itself has: whatever it uses from the Response stays there (decrypt in context).
pub fn encrypt_assertion(xml: &str, sp_cert: &openssl::x509::X509Ref, content_alg: &str) -> String {
    let session_key = match content_alg.rsplit('#').next() {
        Some("aes128-gcm" | "aes128-cbc") => "aes-128",
        Some("aes256-gcm" | "aes256-cbc") => "aes-256",
        other => panic!("no xmlsec1 session key for {other:?}"),
    };
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("sp.crt"), sp_cert.to_pem().expect("pem")).expect("write");
    std::fs::write(dir.path().join("data.xml"), xml).expect("write");
    let template = format!(
        concat!(
            r#"<xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Type="http://www.w3.org/2001/04/xmlenc#Element">"#,
            r#"<xenc:EncryptionMethod Algorithm="{alg}"/><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">"#,
            r#"<xenc:EncryptedKey><xenc:EncryptionMethod Algorithm="{transport}"/><xenc:CipherData><xenc:CipherValue/></xenc:CipherData>"#,
            r#"</xenc:EncryptedKey></ds:KeyInfo><xenc:CipherData><xenc:CipherValue/></xenc:CipherData></xenc:EncryptedData>"#
        ),
        alg = content_alg,
        transport = RSA_OAEP_MGF1P
    );
    std::fs::write(dir.path().join("template.xml"), template).expect("write");
    let wrapped = xml.contains("<saml:EncryptedAssertion>");
    assert!(
        wrapped,
        "the Assertion to encrypt must sit in a saml:EncryptedAssertion"
    );
    run(
        dir.path(),
        &[
            "--encrypt",
            "--pubkey-cert-pem",
            "sp.crt",
            "--session-key",
            session_key,
            "--xml-data",
            "data.xml",
            "--node-name",
            "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
            "--output",
            "out.xml",
            "template.xml",
        ],
    )
}

/// An unsigned Response around an Assertion that xmlsec1 signed in place (inside the Response,
/// as an IdP does). `edit` may change the Assertion template before signing (its text starts
/// with `<saml:Assertion xmlns:saml=...`).
pub fn response(idp: &DevIdp, spec: &ResponseSpec, edit: impl FnOnce(String) -> String) -> String {
    let mut unsigned = spec.clone();
    unsigned.sign = SignMode::Assertion;
    let assertion = edit(idp.assertion_xml(spec, true));
    let xml = idp.response_around(&unsigned, &assertion).expect("response");
    sign(&xml, &idp.key)
}

/// As [`response`], with the Assertion inside a `saml:EncryptedAssertion`, signed and then
/// encrypted by xmlsec1.
pub fn encrypted_response(
    idp: &DevIdp,
    spec: &ResponseSpec,
    sp_cert: &openssl::x509::X509Ref,
    content_alg: &str,
    edit: impl FnOnce(String) -> String,
) -> String {
    let signed = response(idp, spec, |a| {
        format!("<saml:EncryptedAssertion>{}</saml:EncryptedAssertion>", edit(a))
    });
    encrypt_assertion(&signed, sp_cert, content_alg)
}

/// The Assertion template without its own `xmlns:saml`: it then relies on the Response's.
pub fn without_own_saml_namespace(assertion: String) -> String {
    assertion.replacen(
        r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" "#,
        "<saml:Assertion ",
        1,
    )
}
