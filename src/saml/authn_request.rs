//! AuthnRequests over the HTTP-Redirect binding: raw DEFLATE, base64, and when the IdP wants
//! signed requests, SigAlg + Signature over the query string (SAML bindings 3.4.4.1).

use std::io::Write;

use base64::Engine;
use chrono::{SecondsFormat, Utc};
use flate2::write::DeflateEncoder;
use flate2::Compression;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use url::form_urlencoded::byte_serialize;

use super::signature::ALG_RSA_SHA256;
use super::xml::escape;

pub struct AuthnRequest<'a> {
    pub id: &'a str,
    pub sp_entity_id: &'a str,
    pub acs_url: &'a str,
    pub destination: &'a str,
}

impl AuthnRequest<'_> {
    pub fn to_xml(&self) -> String {
        format!(
            concat!(
                r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" "#,
                r#"ID="{id}" Version="2.0" IssueInstant="{instant}" Destination="{dest}" "#,
                r#"AssertionConsumerServiceURL="{acs}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST">"#,
                r#"<saml:Issuer>{issuer}</saml:Issuer>"#,
                r#"<samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified" AllowCreate="true"/>"#,
                r#"</samlp:AuthnRequest>"#
            ),
            id = escape(self.id),
            instant = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
            dest = escape(self.destination),
            acs = escape(self.acs_url),
            issuer = escape(self.sp_entity_id)
        )
    }

    /// The IdP URL to redirect the browser to. `sign_with` signs the query (rsa-sha256).
    pub fn redirect_url(
        &self,
        relay_state: &str,
        sign_with: Option<&PKey<Private>>,
    ) -> Result<String, openssl::error::ErrorStack> {
        let mut deflater = DeflateEncoder::new(Vec::new(), Compression::default());
        // Writing into a Vec cannot fail.
        let _ = deflater.write_all(self.to_xml().as_bytes());
        let deflated = deflater.finish().unwrap_or_default();
        let encoded = base64::engine::general_purpose::STANDARD.encode(deflated);
        let mut query = format!("SAMLRequest={}", urlencode(&encoded));
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
        let separator = if self.destination.contains('?') { '&' } else { '?' };
        Ok(format!("{}{separator}{query}", self.destination))
    }
}

fn urlencode(value: &str) -> String {
    byte_serialize(value.as_bytes()).collect()
}

/// Inflates a Redirect-binding message, refusing output beyond `limit` bytes (an inflate
/// bomb stops early instead of filling memory).
pub fn inflate_bounded(deflated: &[u8], limit: usize) -> Result<Vec<u8>, &'static str> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut reader = flate2::read::DeflateDecoder::new(deflated).take(limit as u64 + 1);
    reader.read_to_end(&mut out).map_err(|_| "not raw DEFLATE data")?;
    if out.len() > limit {
        return Err("inflates beyond the size limit");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::sign::Verifier;

    fn query_param(url: &str, name: &str) -> Option<String> {
        let query = url.split_once('?')?.1;
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    #[test]
    fn redirect_url_round_trips_and_the_signature_verifies() {
        let key = crate::keys::generate_key(crate::keys::KeyKind::Rsa2048).unwrap();
        let req = AuthnRequest {
            id: "_abc",
            sp_entity_id: "https://sp/metadata",
            acs_url: "https://sp/acs",
            destination: "https://idp/sso",
        };
        let url = req.redirect_url("relay", Some(&key)).unwrap();
        let saml = query_param(&url, "SAMLRequest").unwrap();
        let xml = inflate_bounded(
            &base64::engine::general_purpose::STANDARD.decode(saml).unwrap(),
            1 << 16,
        )
        .unwrap();
        let xml = String::from_utf8(xml).unwrap();
        assert!(xml.contains(r#"ID="_abc""#) && xml.contains("https://sp/acs"));
        assert_eq!(query_param(&url, "SigAlg").as_deref(), Some(ALG_RSA_SHA256));
        let signed_part = &url[url.find('?').unwrap() + 1..url.find("&Signature=").unwrap()];
        let sig = base64::engine::general_purpose::STANDARD
            .decode(query_param(&url, "Signature").unwrap())
            .unwrap();
        let mut verifier = Verifier::new(MessageDigest::sha256(), &key).unwrap();
        verifier.update(signed_part.as_bytes()).unwrap();
        assert!(verifier.verify(&sig).unwrap());
    }

    #[test]
    fn inflate_bombs_stop_at_the_limit() {
        let mut deflater = DeflateEncoder::new(Vec::new(), Compression::best());
        deflater.write_all(&vec![b'a'; 50 << 20]).unwrap();
        let bomb = deflater.finish().unwrap();
        assert!(bomb.len() < 100_000);
        assert_eq!(inflate_bounded(&bomb, 1 << 20), Err("inflates beyond the size limit"));
    }
}
