//! XML Encryption of assertions: RSA-OAEP key transport, AES-128/256 in CBC or GCM.
//! RSA PKCS#1 v1.5 key transport is refused (Bleichenbacher-style oracles); so is any
//! algorithm not listed here.

use base64::Engine;
use openssl::md::{Md, MdRef};
use openssl::pkey::{PKey, Private};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::symm::{Cipher, Crypter, Mode};
use roxmltree::Node;

use super::error::ValidationError;
use super::xml::{self, NS_DS, NS_XENC};

const NS_XENC11: &str = "http://www.w3.org/2009/xmlenc11#";
pub const RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
const RSA_OAEP_11: &str = "http://www.w3.org/2009/xmlenc11#rsa-oaep";
pub const AES128_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes128-cbc";
pub const AES256_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes256-cbc";
pub const AES128_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes128-gcm";
pub const AES256_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes256-gcm";

/// Decrypts the `saml:EncryptedAssertion` element `encrypted` with the first of `keys` that
/// unwraps its content key, and returns the plaintext (the serialized Assertion).
///
/// `cbc_allowed` says whether AES-CBC may be decrypted: when the ciphertext comes from a
/// signed Response, or when the federation's `allow_cbc` accepts the risk. Unauthenticated CBC
/// ciphertext turns any difference in the answer into a padding oracle that recovers captured
/// assertions (Jager & Somorovsky, 2011). GCM carries its own authentication tag and is
/// accepted either way.
pub fn decrypt_assertion(
    encrypted: Node<'_, '_>,
    keys: &[PKey<Private>],
    cbc_allowed: bool,
) -> Result<String, ValidationError> {
    let data = xml::child(encrypted, NS_XENC, "EncryptedData")
        .ok_or_else(|| ValidationError::Decryption("no EncryptedData".into()))?;
    let content_alg = algorithm(data);
    let cipher = content_cipher(content_alg)?;
    if !cbc_allowed && !is_gcm(content_alg) {
        return Err(ValidationError::CbcUnauthenticated(content_alg.to_string()));
    }
    // The EncryptedKey sits in EncryptedData/KeyInfo or beside EncryptedData (then referenced
    // by a RetrievalMethod, which we deliberately do not follow: we take the sibling).
    let encrypted_keys: Vec<Node> = xml::child(data, NS_DS, "KeyInfo")
        .into_iter()
        .flat_map(|ki| xml::children(ki, NS_XENC, "EncryptedKey"))
        .chain(xml::children(encrypted, NS_XENC, "EncryptedKey"))
        .collect();
    if encrypted_keys.is_empty() {
        return Err(ValidationError::Decryption("no EncryptedKey".into()));
    }
    if keys.is_empty() {
        return Err(ValidationError::Decryption("no SP decryption key is configured".into()));
    }
    // Each EncryptedKey costs an RSA private-key operation per SP key, and the Response need
    // not be signed: an IdP encrypts to one key of ours (one per key during a rollover), so
    // more than that is refused before any of them is tried.
    if encrypted_keys.len() > keys.len() {
        return Err(ValidationError::TooManyEncryptedKeys {
            found: encrypted_keys.len(),
            allowed: keys.len(),
        });
    }
    let ciphertext = cipher_value(data)?;
    for ek in &encrypted_keys {
        let wrapped = cipher_value(*ek)?;
        let (oaep_md, mgf_md) = key_transport(*ek)?;
        for key in keys {
            let Ok(content_key) = rsa_oaep_decrypt(key, &wrapped, oaep_md, mgf_md) else {
                continue;
            };
            if content_key.len() != cipher.key_len() {
                continue;
            }
            let plain = decrypt_content(cipher, content_alg, &content_key, &ciphertext)?;
            return String::from_utf8(plain).map_err(|_| ValidationError::Decryption("plaintext is not UTF-8".into()));
        }
    }
    Err(ValidationError::Decryption(
        "no configured SP key unwraps the content key".into(),
    ))
}

fn is_gcm(alg: &str) -> bool {
    alg == AES128_GCM || alg == AES256_GCM
}

fn algorithm<'a>(node: Node<'a, '_>) -> &'a str {
    xml::child(node, NS_XENC, "EncryptionMethod")
        .and_then(|m| m.attribute("Algorithm"))
        .unwrap_or("")
}

fn content_cipher(alg: &str) -> Result<Cipher, ValidationError> {
    Ok(match alg {
        AES128_CBC => Cipher::aes_128_cbc(),
        AES256_CBC => Cipher::aes_256_cbc(),
        AES128_GCM => Cipher::aes_128_gcm(),
        AES256_GCM => Cipher::aes_256_gcm(),
        other => return Err(ValidationError::EncryptionAlgorithm(other.to_string())),
    })
}

/// The OAEP digest and MGF1 digest named by an EncryptedKey's EncryptionMethod.
fn key_transport(ek: Node<'_, '_>) -> Result<(&'static MdRef, &'static MdRef), ValidationError> {
    let method = xml::child(ek, NS_XENC, "EncryptionMethod")
        .ok_or_else(|| ValidationError::Decryption("EncryptedKey without EncryptionMethod".into()))?;
    let alg = method.attribute("Algorithm").unwrap_or("");
    let digest = xml::child(method, NS_DS, "DigestMethod")
        .and_then(|d| d.attribute("Algorithm"))
        .map(digest_md)
        .transpose()?
        .unwrap_or(Md::sha1());
    match alg {
        RSA_OAEP_MGF1P => Ok((digest, Md::sha1())),
        RSA_OAEP_11 => {
            let mgf = xml::child(method, NS_XENC11, "MGF")
                .and_then(|m| m.attribute("Algorithm"))
                .map(|a| match a {
                    "http://www.w3.org/2009/xmlenc11#mgf1sha1" => Ok(Md::sha1()),
                    "http://www.w3.org/2009/xmlenc11#mgf1sha256" => Ok(Md::sha256()),
                    "http://www.w3.org/2009/xmlenc11#mgf1sha384" => Ok(Md::sha384()),
                    "http://www.w3.org/2009/xmlenc11#mgf1sha512" => Ok(Md::sha512()),
                    other => Err(ValidationError::EncryptionAlgorithm(other.to_string())),
                })
                .transpose()?
                .unwrap_or(Md::sha1());
            Ok((digest, mgf))
        }
        other => Err(ValidationError::EncryptionAlgorithm(other.to_string())),
    }
}

fn digest_md(alg: &str) -> Result<&'static MdRef, ValidationError> {
    match alg {
        "http://www.w3.org/2000/09/xmldsig#sha1" => Ok(Md::sha1()),
        "http://www.w3.org/2001/04/xmlenc#sha256" => Ok(Md::sha256()),
        "http://www.w3.org/2001/04/xmldsig-more#sha384" => Ok(Md::sha384()),
        "http://www.w3.org/2001/04/xmlenc#sha512" => Ok(Md::sha512()),
        other => Err(ValidationError::EncryptionAlgorithm(other.to_string())),
    }
}

fn cipher_value(node: Node<'_, '_>) -> Result<Vec<u8>, ValidationError> {
    let text = xml::child(node, NS_XENC, "CipherData")
        .and_then(|cd| xml::child(cd, NS_XENC, "CipherValue"))
        .map(xml::full_text)
        .ok_or_else(|| ValidationError::Decryption("no CipherValue".into()))?;
    let compact: String = text.split_ascii_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| ValidationError::Decryption("CipherValue is not base64".into()))
}

fn rsa_oaep_decrypt(
    key: &PKey<Private>,
    wrapped: &[u8],
    md: &MdRef,
    mgf: &MdRef,
) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    let mut ctx = PkeyCtx::new(key)?;
    ctx.decrypt_init()?;
    ctx.set_rsa_padding(Padding::PKCS1_OAEP)?;
    ctx.set_rsa_oaep_md(md)?;
    ctx.set_rsa_mgf1_md(mgf)?;
    let mut out = Vec::new();
    ctx.decrypt_to_vec(wrapped, &mut out)?;
    Ok(out)
}

fn decrypt_content(cipher: Cipher, alg: &str, key: &[u8], data: &[u8]) -> Result<Vec<u8>, ValidationError> {
    let fail = |what: &str| ValidationError::Decryption(what.to_string());
    let is_gcm = is_gcm(alg);
    let iv_len = if is_gcm { 12 } else { 16 };
    let tag_len = if is_gcm { 16 } else { 0 };
    if data.len() < iv_len + tag_len + 1 {
        return Err(fail("ciphertext too short"));
    }
    let (iv, rest) = data.split_at(iv_len);
    let (body, tag) = rest.split_at(rest.len() - tag_len);
    let mut crypter = Crypter::new(cipher, Mode::Decrypt, key, Some(iv)).map_err(|_| fail("bad key or IV"))?;
    crypter.pad(false);
    let mut out = vec![0; body.len() + cipher.block_size()];
    let mut n = crypter.update(body, &mut out).map_err(|_| fail("decryption failed"))?;
    if is_gcm {
        crypter.set_tag(tag).map_err(|_| fail("bad GCM tag"))?;
    }
    n += crypter
        .finalize(&mut out[n..])
        .map_err(|_| fail("decryption failed (tag or padding)"))?;
    out.truncate(n);
    if !is_gcm {
        // XML Encryption padding: the last byte says how many bytes to drop (ISO 10126 style,
        // the other padding bytes are arbitrary, so OpenSSL's PKCS#7 check cannot be used).
        let pad = usize::from(*out.last().ok_or_else(|| fail("empty plaintext"))?);
        if pad == 0 || pad > 16 || pad > out.len() {
            return Err(fail("bad padding"));
        }
        out.truncate(out.len() - pad);
    }
    Ok(out)
}

/// Encrypts `plaintext` (a serialized Assertion) to the RSA public key of `cert` with
/// RSA-OAEP (SHA-1 MGF1) and the given AES content algorithm, as an `EncryptedAssertion`.
/// Used by the development and test IdPs; the bridge itself only decrypts.
pub fn encrypt_assertion(
    plaintext: &str,
    cert: &openssl::x509::X509Ref,
    content_alg: &str,
) -> Result<String, ValidationError> {
    let fail = |e: openssl::error::ErrorStack| ValidationError::Decryption(e.to_string());
    let cipher = content_cipher(content_alg)?;
    let is_gcm = is_gcm(content_alg);
    let mut key = vec![0u8; cipher.key_len()];
    let mut iv = vec![0u8; if is_gcm { 12 } else { 16 }];
    openssl::rand::rand_bytes(&mut key).map_err(fail)?;
    openssl::rand::rand_bytes(&mut iv).map_err(fail)?;
    let mut data = plaintext.as_bytes().to_vec();
    if !is_gcm {
        let pad = 16 - data.len() % 16;
        data.extend(std::iter::repeat_n(pad as u8, pad));
    }
    let mut crypter = Crypter::new(cipher, Mode::Encrypt, &key, Some(&iv)).map_err(fail)?;
    crypter.pad(false);
    let mut out = vec![0; data.len() + cipher.block_size()];
    let mut n = crypter.update(&data, &mut out).map_err(fail)?;
    n += crypter.finalize(&mut out[n..]).map_err(fail)?;
    out.truncate(n);
    let mut blob = iv;
    blob.extend_from_slice(&out);
    if is_gcm {
        let mut tag = vec![0u8; 16];
        crypter.get_tag(&mut tag).map_err(fail)?;
        blob.extend_from_slice(&tag);
    }
    let public = cert.public_key().map_err(fail)?;
    let mut ctx = PkeyCtx::new(&public).map_err(fail)?;
    ctx.encrypt_init().map_err(fail)?;
    ctx.set_rsa_padding(Padding::PKCS1_OAEP).map_err(fail)?;
    let mut wrapped = Vec::new();
    ctx.encrypt_to_vec(&key, &mut wrapped).map_err(fail)?;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    Ok(format!(
        concat!(
            r#"<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">"#,
            r#"<xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Type="http://www.w3.org/2001/04/xmlenc#Element">"#,
            r#"<xenc:EncryptionMethod Algorithm="{alg}"/>"#,
            r#"<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><xenc:EncryptedKey>"#,
            r#"<xenc:EncryptionMethod Algorithm="{transport}"/>"#,
            r#"<xenc:CipherData><xenc:CipherValue>{key}</xenc:CipherValue></xenc:CipherData>"#,
            r#"</xenc:EncryptedKey></ds:KeyInfo>"#,
            r#"<xenc:CipherData><xenc:CipherValue>{data}</xenc:CipherValue></xenc:CipherData>"#,
            r#"</xenc:EncryptedData></saml:EncryptedAssertion>"#
        ),
        alg = content_alg,
        transport = RSA_OAEP_MGF1P,
        key = b64(&wrapped),
        data = b64(&blob)
    ))
}
