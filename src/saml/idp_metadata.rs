//! The IdP side of a federation, read from SAML metadata: entity ID, SSO endpoint, the
//! certificates its signatures must verify against, and whether it wants signed requests.

use std::str::FromStr;

use base64::Engine;
use chrono::{DateTime, Utc};
use samael::crypto::CertificateDer;
use samael::metadata::{EntityDescriptor, EntityDescriptorType};

use super::signature::METADATA_LIMITS;

pub const BINDING_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
pub const BINDING_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";

#[derive(Debug, Clone)]
pub struct IdpDescriptor {
    pub entity_id: String,
    pub sso_redirect_url: String,
    pub signing_certs: Vec<CertificateDer>,
    /// The same certificates' public keys, decoded once here rather than per login.
    pub signing_keys: Vec<openssl::pkey::PKey<openssl::pkey::Public>>,
    pub want_authn_requests_signed: bool,
    pub valid_until: Option<DateTime<Utc>>,
    /// The HTTP-Redirect SingleLogoutService: where LogoutRequests go, and where
    /// LogoutResponses go (ResponseLocation, else the same Location).
    pub slo_redirect: Option<SloEndpoint>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SloEndpoint {
    pub location: String,
    pub response_location: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetadataError {
    #[error("the metadata is not valid SAML metadata: {0}")]
    Parse(String),
    #[error("the metadata contains a DTD")]
    Dtd,
    #[error("the metadata holds no IdP (IDPSSODescriptor)")]
    NoIdp,
    #[error("the metadata holds several IdPs ({0}); set idp_entity_id to choose one")]
    SeveralIdps(String),
    #[error("the metadata has no IdP with entityID {0:?}")]
    IdpNotFound(String),
    #[error("the IdP {0:?} has no HTTP-Redirect SingleSignOnService")]
    NoRedirectSso(String),
    #[error("the IdP {0:?} has no signing certificate; its responses could not be verified")]
    NoSigningCertificate(String),
    #[error("a signing certificate of IdP {0:?} is not valid base64 DER X.509")]
    BadCertificate(String),
    #[error("the metadata's signature does not hold: {0}")]
    Signature(String),
    #[error("the metadata expired at {0} (validUntil)")]
    Expired(String),
}

/// Reads the IdP named `wanted` (or the only IdP) from metadata text.
pub fn parse(text: &str, wanted: Option<&str>) -> Result<IdpDescriptor, MetadataError> {
    if text.contains("<!DOCTYPE") || text.contains("<!ENTITY") {
        return Err(MetadataError::Dtd);
    }
    // samael's reader is not bounded: the same size and shape bounds as any XML input first.
    if text.len() > METADATA_LIMITS.max_bytes {
        return Err(MetadataError::Parse(format!(
            "{} bytes, more than the limit of {}",
            text.len(),
            METADATA_LIMITS.max_bytes
        )));
    }
    super::prescan::scan(text, &METADATA_LIMITS).map_err(|e| match e {
        super::xml::XmlError::Dtd => MetadataError::Dtd,
        other => MetadataError::Parse(other.to_string()),
    })?;
    let parsed = EntityDescriptorType::from_str(text).map_err(|e| MetadataError::Parse(e.to_string()))?;
    let idps: Vec<&EntityDescriptor> = parsed
        .iter()
        .filter(|e| e.idp_sso_descriptors.as_ref().is_some_and(|d| !d.is_empty()))
        .collect();
    let entity = match wanted {
        Some(id) => idps
            .iter()
            .find(|e| e.entity_id.as_deref() == Some(id))
            .copied()
            .ok_or_else(|| MetadataError::IdpNotFound(id.to_string()))?,
        None => match idps.as_slice() {
            [] => return Err(MetadataError::NoIdp),
            [one] => *one,
            many => {
                let ids: Vec<&str> = many.iter().filter_map(|e| e.entity_id.as_deref()).collect();
                return Err(MetadataError::SeveralIdps(ids.join(", ")));
            }
        },
    };
    let entity_id = entity.entity_id.clone().unwrap_or_default();
    let descriptors = entity.idp_sso_descriptors.as_deref().unwrap_or_default();
    let descriptor = descriptors.first().ok_or(MetadataError::NoIdp)?;
    let sso_redirect_url = descriptors
        .iter()
        .flat_map(|d| d.single_sign_on_services.iter())
        .find(|s| s.binding == BINDING_REDIRECT)
        .map(|s| s.location.clone())
        .ok_or_else(|| MetadataError::NoRedirectSso(entity_id.clone()))?;
    let mut signing_certs = Vec::new();
    for kd in descriptors.iter().flat_map(|d| d.key_descriptors.iter()) {
        // A KeyDescriptor without `use` serves both signing and encryption.
        if kd.key_use.as_deref().is_some_and(|u| u != "signing") {
            continue;
        }
        for cert in kd.key_info.x509_data.iter().flat_map(|x| x.certificates.iter()) {
            let compact: String = cert.split_ascii_whitespace().collect();
            let der = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|_| MetadataError::BadCertificate(entity_id.clone()))?;
            openssl::x509::X509::from_der(&der).map_err(|_| MetadataError::BadCertificate(entity_id.clone()))?;
            signing_certs.push(CertificateDer::from(der));
        }
    }
    if signing_certs.is_empty() {
        return Err(MetadataError::NoSigningCertificate(entity_id));
    }
    let signing_keys =
        super::signature::public_keys(&signing_certs).map_err(|_| MetadataError::BadCertificate(entity_id.clone()))?;
    let slo_redirect = descriptors
        .iter()
        .flat_map(|d| d.single_logout_services.iter())
        .find(|s| s.binding == BINDING_REDIRECT)
        .map(|s| SloEndpoint {
            location: s.location.clone(),
            response_location: s.response_location.clone().unwrap_or_else(|| s.location.clone()),
        });
    Ok(IdpDescriptor {
        slo_redirect,
        entity_id,
        sso_redirect_url,
        signing_certs,
        signing_keys,
        want_authn_requests_signed: descriptor.want_authn_requests_signed.unwrap_or(false),
        // The earliest end wins: a descriptor may not outlive its entity, nor the entity it.
        valid_until: [entity.valid_until, descriptor.valid_until].into_iter().flatten().min(),
    })
}

/// Signed metadata, verified against the federation's metadata signing certificate(s) and
/// read from what the signature covers: the IdP, and the `cacheDuration` the federation asks
/// for (if any). Expired metadata (validUntil passed) is refused here.
pub fn verify_and_parse(
    text: &str,
    trusted: &[CertificateDer],
    wanted: Option<&str>,
) -> Result<(IdpDescriptor, Option<std::time::Duration>), MetadataError> {
    let signed =
        super::signature::verify_metadata(text, trusted).map_err(|e| MetadataError::Signature(e.to_string()))?;
    let mut idp = parse(&signed, wanted)?;
    let doc = super::xml::parse_bounded(&signed, METADATA_LIMITS).map_err(|e| MetadataError::Parse(e.to_string()))?;
    // Aggregates carry validUntil (and cacheDuration) on the EntitiesDescriptor around the
    // IdP: every enclosing element's end counts, the earliest wins.
    let enclosing = doc
        .descendants()
        .find(|n| {
            n.has_tag_name((super::xml::NS_MD, "EntityDescriptor"))
                && n.attribute("entityID") == Some(idp.entity_id.as_str())
        })
        .map(|entity| {
            entity
                .ancestors()
                .filter(roxmltree::Node::is_element)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut cache_duration: Option<std::time::Duration> = None;
    for element in enclosing {
        if let Some(v) = element.attribute("validUntil") {
            // The same xs:dateTime reading as every other SAML time (a zone offset converted).
            let until = super::response::parse_time(v).map_err(|e| MetadataError::Parse(format!("validUntil: {e}")))?;
            idp.valid_until = Some(idp.valid_until.map_or(until, |u| u.min(until)));
        }
        if let Some(d) = element.attribute("cacheDuration").and_then(parse_xs_duration) {
            cache_duration = Some(cache_duration.map_or(d, |c| c.min(d)));
        }
    }
    if let Some(until) = idp.valid_until {
        if until <= Utc::now() {
            return Err(MetadataError::Expired(until.to_rfc3339()));
        }
    }
    Ok((idp, cache_duration))
}

/// An `xs:duration` as metadata uses it (`PT6H`, `P1D`, `PT30M`, `P1DT12H`): days, hours,
/// minutes, seconds; years and months are refused (their length varies).
pub fn parse_xs_duration(text: &str) -> Option<std::time::Duration> {
    let rest = text.trim().strip_prefix('P')?;
    let (date, time) = rest.split_once('T').unwrap_or((rest, ""));
    let mut secs: u64 = 0;
    let mut number = String::new();
    for (part, units) in [
        (date, &[('D', 86_400u64)][..]),
        (time, &[('H', 3600), ('M', 60), ('S', 1)][..]),
    ] {
        for ch in part.chars() {
            if ch.is_ascii_digit() || ch == '.' {
                number.push(ch);
                continue;
            }
            let (_, unit) = units.iter().find(|(u, _)| *u == ch)?;
            let value: f64 = number.parse().ok()?;
            number.clear();
            secs = secs.checked_add((value * *unit as f64) as u64)?;
        }
        if !number.is_empty() {
            return None;
        }
    }
    (secs > 0).then(|| std::time::Duration::from_secs(secs))
}

/// The last good copy of URL metadata, kept on disk: used when it still verifies and has not
/// expired; otherwise `None` (with the reason logged).
pub fn load_cached(path: &std::path::Path, trusted: &[CertificateDer], wanted: Option<&str>) -> Option<IdpDescriptor> {
    let text = std::fs::read_to_string(path).ok()?;
    match verify_and_parse(&text, trusted, wanted) {
        Ok((idp, _)) => Some(idp),
        Err(e) => {
            tracing::warn!(cache = %path.display(), "the kept copy of the IdP metadata is not used: {e}");
            None
        }
    }
}

/// What [`render_spec`] writes: IdP metadata for a development or test IdP, or a test
/// federation's (several signing certificates, an ID to sign, validUntil, cacheDuration).
#[derive(Debug, Clone, Default)]
pub struct MetadataSpec<'a> {
    pub entity_id: &'a str,
    pub sso_url: &'a str,
    pub slo_url: Option<&'a str>,
    pub signing_certs_b64: Vec<&'a str>,
    pub want_signed_requests: bool,
    pub id: Option<&'a str>,
    pub valid_until: Option<DateTime<Utc>>,
    pub cache_duration: Option<&'a str>,
}

/// IdP metadata for a development or test IdP.
pub fn render(
    entity_id: &str,
    sso_url: &str,
    slo_url: Option<&str>,
    cert_b64: &str,
    want_signed_requests: bool,
) -> String {
    render_spec(&MetadataSpec {
        entity_id,
        sso_url,
        slo_url,
        signing_certs_b64: vec![cert_b64],
        want_signed_requests,
        ..MetadataSpec::default()
    })
}

pub fn render_spec(spec: &MetadataSpec<'_>) -> String {
    use super::xml::escape;
    let slo = spec
        .slo_url
        .map(|u| {
            format!(
                r#"<md:SingleLogoutService Binding="{BINDING_REDIRECT}" Location="{}"/>"#,
                escape(u)
            )
        })
        .unwrap_or_default();
    let keys: String = spec
        .signing_certs_b64
        .iter()
        .map(|cert| {
            format!(
                r#"<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#
            )
        })
        .collect();
    let mut root_attributes = String::new();
    if let Some(id) = spec.id {
        root_attributes.push_str(&format!(r#" ID="{}""#, escape(id)));
    }
    if let Some(t) = spec.valid_until {
        root_attributes.push_str(&format!(
            r#" validUntil="{}""#,
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ));
    }
    if let Some(d) = spec.cache_duration {
        root_attributes.push_str(&format!(r#" cacheDuration="{}""#, escape(d)));
    }
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            "\n",
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{id}"{root_attributes}>"#,
            r#"<md:IDPSSODescriptor WantAuthnRequestsSigned="{want}" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">"#,
            "{keys}",
            "{slo}",
            r#"<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified</md:NameIDFormat>"#,
            r#"<md:SingleSignOnService Binding="{binding}" Location="{sso}"/>"#,
            r#"</md:IDPSSODescriptor></md:EntityDescriptor>"#,
            "\n"
        ),
        slo = slo,
        keys = keys,
        root_attributes = root_attributes,
        id = escape(spec.entity_id),
        want = spec.want_signed_requests,
        binding = BINDING_REDIRECT,
        sso = escape(spec.sso_url)
    )
}

#[cfg(test)]
mod duration_tests {
    use super::parse_xs_duration;
    use std::time::Duration;

    #[test]
    fn reads_the_durations_metadata_uses() {
        assert_eq!(parse_xs_duration("PT6H"), Some(Duration::from_secs(6 * 3600)));
        assert_eq!(parse_xs_duration("P1D"), Some(Duration::from_secs(86_400)));
        assert_eq!(
            parse_xs_duration("P1DT12H30M"),
            Some(Duration::from_secs(86_400 + 12 * 3600 + 1800))
        );
        assert_eq!(parse_xs_duration("PT1.5S"), Some(Duration::from_secs(1)));
        assert_eq!(parse_xs_duration("P1M"), None, "months vary in length");
        assert_eq!(parse_xs_duration("6H"), None);
        assert_eq!(parse_xs_duration("PT"), None);
        assert_eq!(parse_xs_duration("PT5"), None);
    }
}
