//! What the SAML targets share: the development IdP whose fixed key signed the seeds, and the
//! expectations of an SP that trusts it, as the ACS builds them. Each target includes this
//! file and uses part of it.
#![allow(dead_code)]

use std::sync::LazyLock;
use std::time::Duration;

use entree_bridge::demo::idp::DevIdp;
use entree_bridge::saml::response::Expectations;
use entree_bridge::saml::xml::XmlLimits;

pub const SP: &str = "https://sp.example.nl/saml2/kennisnet/metadata";
pub const ACS: &str = "https://sp.example.nl/saml2/kennisnet/acs";

pub struct Trust {
    pub idp: DevIdp,
    pub keys: Vec<openssl::pkey::PKey<openssl::pkey::Public>>,
    pub cert: samael::crypto::CertificateDer,
}

pub static TRUST: LazyLock<Trust> = LazyLock::new(|| {
    // The seeds (fuzz/seeds) are signed by this fixed key, so the fuzzer starts from
    // responses that verify and mutates from there.
    let key_pem = include_bytes!("../seeds/idp-key.pem");
    let cert_pem = include_bytes!("../seeds/idp-cert.pem");
    let key = openssl::pkey::PKey::private_key_from_pem(key_pem).expect("seed key");
    let cert = openssl::x509::X509::from_pem(cert_pem).expect("seed cert");
    let idp = DevIdp::from_parts("https://idp.example.nl/metadata", key, cert.clone()).expect("idp");
    Trust {
        keys: vec![cert.public_key().expect("public key")],
        cert: samael::crypto::CertificateDer::from(cert.to_der().expect("der")),
        idp,
    }
});

pub fn expectations(trust: &Trust) -> Expectations<'_> {
    Expectations {
        idp_entity_id: &trust.idp.entity_id,
        idp_keys: &trust.keys,
        sp_entity_id: SP,
        acs_url: ACS,
        request_id: None,
        in_response_to_unchecked: false,
        allow_unsolicited: true,
        allow_sha1: false,
        allow_cbc: false,
        clock_skew: Duration::from_secs(120),
        // The seeds' validity window: fixed, so that a verifying seed stays valid.
        now: chrono::DateTime::parse_from_rfc3339("2026-12-01T09:00:30Z")
            .expect("time")
            .with_timezone(&chrono::Utc),
        decryption_keys: &[],
        limits: XmlLimits::default(),
    }
}
