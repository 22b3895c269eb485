//! The IdP side of a federation, read from SAML metadata: entity ID, SSO endpoint, the
//! certificates its signatures must verify against, and whether it wants signed requests.

use std::str::FromStr;

use base64::Engine;
use chrono::{DateTime, Utc};
use samael::crypto::CertificateDer;
use samael::metadata::{EntityDescriptor, EntityDescriptorType};

pub const BINDING_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
pub const BINDING_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";

#[derive(Debug, Clone)]
pub struct IdpDescriptor {
    pub entity_id: String,
    pub sso_redirect_url: String,
    pub signing_certs: Vec<CertificateDer>,
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
}

/// Reads the IdP named `wanted` (or the only IdP) from metadata text.
pub fn parse(text: &str, wanted: Option<&str>) -> Result<IdpDescriptor, MetadataError> {
    if text.contains("<!DOCTYPE") || text.contains("<!ENTITY") {
        return Err(MetadataError::Dtd);
    }
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
        want_authn_requests_signed: descriptor.want_authn_requests_signed.unwrap_or(false),
        valid_until: entity.valid_until.or(descriptor.valid_until),
    })
}

/// IdP metadata for a development or test IdP.
pub fn render(
    entity_id: &str,
    sso_url: &str,
    slo_url: Option<&str>,
    cert_b64: &str,
    want_signed_requests: bool,
) -> String {
    let slo = slo_url
        .map(|u| {
            format!(
                r#"<md:SingleLogoutService Binding="{BINDING_REDIRECT}" Location="{}"/>"#,
                super::xml::escape(u)
            )
        })
        .unwrap_or_default();
    use super::xml::escape;
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            "\n",
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{id}">"#,
            r#"<md:IDPSSODescriptor WantAuthnRequestsSigned="{want}" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">"#,
            r#"<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#,
            "{slo}",
            r#"<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified</md:NameIDFormat>"#,
            r#"<md:SingleSignOnService Binding="{binding}" Location="{sso}"/>"#,
            r#"</md:IDPSSODescriptor></md:EntityDescriptor>"#,
            "\n"
        ),
        slo = slo,
        id = escape(entity_id),
        want = want_signed_requests,
        cert = cert_b64,
        binding = BINDING_REDIRECT,
        sso = escape(sso_url)
    )
}
