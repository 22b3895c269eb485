//! The HTTP-Redirect binding (SAML bindings 3.4): raw DEFLATE, base64, URL-encoded, and a
//! signature over the query string `SAMLRequest|SAMLResponse=..&RelayState=..&SigAlg=..`
//! exactly as it travels. Used for AuthnRequests and both directions of Single Logout.

use std::io::{Read, Write};

use base64::Engine;
use flate2::write::DeflateEncoder;
use flate2::Compression;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::{Signer, Verifier};
use openssl::x509::X509;
use samael::crypto::CertificateDer;
use url::form_urlencoded::byte_serialize;

use super::signature::{ALG_RSA_SHA1, ALG_RSA_SHA256};

/// Largest inflated message accepted (an inflate bomb stops here).
pub const MAX_INFLATED: usize = 64 * 1024;
/// Largest query string read.
const MAX_QUERY: usize = 32 * 1024;

/// `SAMLRequest` or `SAMLResponse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Response,
}

impl Kind {
    fn param(self) -> &'static str {
        match self {
            Kind::Request => "SAMLRequest",
            Kind::Response => "SAMLResponse",
        }
    }
}

fn urlencode(value: &str) -> String {
    byte_serialize(value.as_bytes()).collect()
}

/// The URL that carries `xml` to `destination`; `sign_with` signs it (rsa-sha256).
pub fn build_url(
    destination: &str,
    kind: Kind,
    xml: &str,
    relay_state: &str,
    sign_with: Option<&PKey<Private>>,
) -> Result<String, openssl::error::ErrorStack> {
    let mut deflater = DeflateEncoder::new(Vec::new(), Compression::default());
    // Writing into a Vec cannot fail.
    let _ = deflater.write_all(xml.as_bytes());
    let deflated = deflater.finish().unwrap_or_default();
    let encoded = base64::engine::general_purpose::STANDARD.encode(deflated);
    let mut query = format!("{}={}", kind.param(), urlencode(&encoded));
    if !relay_state.is_empty() {
        query.push_str("&RelayState=");
        query.push_str(&urlencode(relay_state));
    }
    if let Some(key) = sign_with {
        query.push_str("&SigAlg=");
        query.push_str(&urlencode(ALG_RSA_SHA256));
        let mut signer = Signer::new(MessageDigest::sha256(), key)?;
        signer.update(query.as_bytes())?;
        let signature = base64::engine::general_purpose::STANDARD.encode(signer.sign_to_vec()?);
        query.push_str("&Signature=");
        query.push_str(&urlencode(&signature));
    }
    let separator = if destination.contains('?') { '&' } else { '?' };
    Ok(format!("{destination}{separator}{query}"))
}

/// Inflates a Redirect-binding message, refusing output beyond `limit` bytes.
pub fn inflate_bounded(deflated: &[u8], limit: usize) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::new();
    let mut reader = flate2::read::DeflateDecoder::new(deflated).take(limit as u64 + 1);
    reader.read_to_end(&mut out).map_err(|_| "not raw DEFLATE data")?;
    if out.len() > limit {
        return Err("inflates beyond the size limit");
    }
    Ok(out)
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RedirectError {
    #[error("the query is malformed or too long")]
    Malformed,
    #[error("the message is not signed")]
    Unsigned,
    #[error("the signature algorithm {0} is not allowed")]
    Algorithm(String),
    #[error("the signature does not verify against the IdP's certificates")]
    BadSignature,
    #[error("the message cannot be decoded: {0}")]
    Decode(&'static str),
}

impl RedirectError {
    pub fn code(&self) -> &'static str {
        match self {
            RedirectError::Malformed => "redirect_malformed",
            RedirectError::Unsigned => "redirect_unsigned",
            RedirectError::Algorithm(_) => "redirect_algorithm_forbidden",
            RedirectError::BadSignature => "redirect_signature_invalid",
            RedirectError::Decode(_) => "redirect_decode_failed",
        }
    }
}

/// A verified incoming message: its XML and RelayState.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub kind: Kind,
    pub xml: String,
    pub relay_state: Option<String>,
}

/// Verifies and decodes a signed Redirect-binding message from the raw query string. The
/// signature is checked over the parameters exactly as received, against `trusted` only.
pub fn receive(raw_query: &str, trusted: &[CertificateDer], allow_sha1: bool) -> Result<Received, RedirectError> {
    if raw_query.len() > MAX_QUERY {
        return Err(RedirectError::Malformed);
    }
    let raw = |name: &str| -> Result<Option<&str>, RedirectError> {
        let mut found = raw_query.split('&').filter(|p| p.split('=').next() == Some(name));
        match (found.next(), found.next()) {
            (Some(p), None) => Ok(Some(p)),
            (None, _) => Ok(None),
            (Some(_), Some(_)) => Err(RedirectError::Malformed),
        }
    };
    let decode = |segment: &str| -> String {
        let value = segment.split_once('=').map(|(_, v)| v).unwrap_or("");
        url::form_urlencoded::parse(format!("v={value}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let (kind, message) = match (raw("SAMLRequest")?, raw("SAMLResponse")?) {
        (Some(m), None) => (Kind::Request, m),
        (None, Some(m)) => (Kind::Response, m),
        _ => return Err(RedirectError::Malformed),
    };
    let relay = raw("RelayState")?;
    let (Some(sig_alg), Some(signature)) = (raw("SigAlg")?, raw("Signature")?) else {
        return Err(RedirectError::Unsigned);
    };
    let alg = decode(sig_alg);
    let digest = match alg.as_str() {
        ALG_RSA_SHA256 => MessageDigest::sha256(),
        ALG_RSA_SHA1 if allow_sha1 => MessageDigest::sha1(),
        other => return Err(RedirectError::Algorithm(other.chars().take(80).collect())),
    };
    let mut signed = message.to_string();
    if let Some(r) = relay {
        signed.push('&');
        signed.push_str(r);
    }
    signed.push('&');
    signed.push_str(sig_alg);
    let signature = base64::engine::general_purpose::STANDARD
        .decode(decode(signature).split_ascii_whitespace().collect::<String>())
        .map_err(|_| RedirectError::Malformed)?;
    let verified = trusted.iter().any(|cert| {
        X509::from_der(cert.der_data())
            .and_then(|c| c.public_key())
            .and_then(|key| {
                let mut verifier = Verifier::new(digest, &key)?;
                verifier.update(signed.as_bytes())?;
                verifier.verify(&signature)
            })
            .unwrap_or(false)
    });
    if !verified {
        return Err(RedirectError::BadSignature);
    }
    let deflated = base64::engine::general_purpose::STANDARD
        .decode(decode(message).split_ascii_whitespace().collect::<String>())
        .map_err(|_| RedirectError::Decode("not base64"))?;
    let xml = String::from_utf8(inflate_bounded(&deflated, MAX_INFLATED).map_err(RedirectError::Decode)?)
        .map_err(|_| RedirectError::Decode("not UTF-8"))?;
    Ok(Received {
        kind,
        xml,
        relay_state: relay.map(decode),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_message_round_trips_and_tampering_is_caught() {
        let key = crate::keys::generate_key(crate::keys::KeyKind::Rsa2048).unwrap();
        let cert = crate::keys::self_signed_certificate(&key, "t", 1).unwrap();
        let trusted = [CertificateDer::from(cert.to_der().unwrap())];
        let url = build_url("https://sp/sls", Kind::Response, "<r>hallo</r>", "rs 1", Some(&key)).unwrap();
        let query = url.split_once('?').unwrap().1;
        let got = receive(query, &trusted, false).unwrap();
        assert_eq!(
            (got.kind, got.xml.as_str(), got.relay_state.as_deref()),
            (Kind::Response, "<r>hallo</r>", Some("rs 1"))
        );
        let tampered = query.replace("RelayState=rs", "RelayState=xs");
        assert_eq!(receive(&tampered, &trusted, false), Err(RedirectError::BadSignature));
        let unsigned = build_url("https://sp/sls", Kind::Response, "<r/>", "", None).unwrap();
        assert_eq!(
            receive(unsigned.split_once('?').unwrap().1, &trusted, false),
            Err(RedirectError::Unsigned)
        );
        let other = crate::keys::generate_key(crate::keys::KeyKind::Rsa2048).unwrap();
        let forged = build_url("https://sp/sls", Kind::Response, "<r/>", "", Some(&other)).unwrap();
        assert_eq!(
            receive(forged.split_once('?').unwrap().1, &trusted, false),
            Err(RedirectError::BadSignature)
        );
    }
}
