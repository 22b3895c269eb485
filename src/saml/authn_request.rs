//! AuthnRequests over the HTTP-Redirect binding: raw DEFLATE, base64, and when the IdP wants
//! signed requests, SigAlg + Signature over the query string (SAML bindings 3.4.4.1).

use chrono::{SecondsFormat, Utc};
use openssl::pkey::{PKey, Private};

use super::redirect;
use super::xml::escape;

pub struct AuthnRequest<'a> {
    pub id: &'a str,
    pub sp_entity_id: &'a str,
    pub acs_url: &'a str,
    pub destination: &'a str,
    /// Ask the IdP for a fresh login whatever session it has (`ForceAuthn`; OIDC `prompt=login`).
    pub force_authn: bool,
}

impl AuthnRequest<'_> {
    pub fn to_xml(&self) -> String {
        format!(
            concat!(
                r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" "#,
                r#"ID="{id}" Version="2.0" IssueInstant="{instant}" Destination="{dest}"{force} "#,
                r#"AssertionConsumerServiceURL="{acs}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST">"#,
                r#"<saml:Issuer>{issuer}</saml:Issuer>"#,
                r#"<samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified" AllowCreate="true"/>"#,
                r#"</samlp:AuthnRequest>"#
            ),
            id = escape(self.id),
            instant = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
            dest = escape(self.destination),
            force = if self.force_authn { r#" ForceAuthn="true""# } else { "" },
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
        redirect::build_url(
            self.destination,
            redirect::Kind::Request,
            &self.to_xml(),
            relay_state,
            sign_with,
        )
    }
}

/// Kept for callers that inflate Redirect-binding messages themselves (the dev IdP, tests).
pub use super::redirect::inflate_bounded;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saml::signature::ALG_RSA_SHA256;
    use base64::Engine;
    use flate2::write::DeflateEncoder;
    use flate2::Compression;
    use openssl::hash::MessageDigest;
    use openssl::sign::Verifier;
    use std::io::Write;

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
            force_authn: false,
        };
        assert!(!req.to_xml().contains("ForceAuthn"));
        let forced = AuthnRequest {
            force_authn: true,
            ..req
        };
        assert!(
            forced.to_xml().contains(r#" ForceAuthn="true" "#),
            "{}",
            forced.to_xml()
        );
        let req = AuthnRequest {
            force_authn: false,
            ..forced
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
