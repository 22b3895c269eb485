//! A development IdP: it signs real SAML responses with a key it generates. The demo's login
//! page uses it, and the test suite builds its valid and hostile responses with it.

use std::path::Path;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

use super::sign;
use crate::keys::{self, KeyError, KeyKind};
use crate::saml::signature::{SignatureError, ALG_RSA_SHA256, DIGEST_SHA256};
use crate::saml::xml::escape;

pub struct DevIdp {
    pub entity_id: String,
    pub key: PKey<Private>,
    pub key_der: Vec<u8>,
    pub cert: X509,
    pub cert_b64: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMode {
    Assertion,
    Response,
    Both,
    Nothing,
}

/// Everything a response says; defaults are a valid answer to `in_response_to`.
#[derive(Debug, Clone)]
pub struct ResponseSpec {
    pub issuer: Option<String>,
    pub response_id: String,
    pub assertion_id: String,
    pub destination: Option<String>,
    pub recipient: String,
    pub audience: String,
    pub in_response_to: Option<String>,
    pub name_id: String,
    pub attributes: Vec<(String, Vec<String>)>,
    pub issue_instant: DateTime<Utc>,
    pub not_before: DateTime<Utc>,
    pub not_on_or_after: DateTime<Utc>,
    pub confirmation_not_on_or_after: DateTime<Utc>,
    pub status: Option<(String, Option<String>)>,
    pub sign: SignMode,
    pub algorithms: (&'static str, &'static str),
    /// The AuthnStatement's AuthnInstant (default: `issue_instant`).
    pub authn_instant: Option<DateTime<Utc>>,
}

impl ResponseSpec {
    /// A valid response for the given SP and ACS, answering `in_response_to`.
    pub fn new(sp_entity_id: &str, acs_url: &str, in_response_to: Option<&str>) -> Self {
        let now = Utc::now();
        ResponseSpec {
            issuer: None,
            response_id: keys::random_saml_id(),
            assertion_id: keys::random_saml_id(),
            destination: Some(acs_url.to_string()),
            recipient: acs_url.to_string(),
            audience: sp_entity_id.to_string(),
            in_response_to: in_response_to.map(str::to_string),
            name_id: keys::random_saml_id(),
            attributes: Vec::new(),
            issue_instant: now,
            not_before: now - Duration::seconds(30),
            not_on_or_after: now + Duration::minutes(5),
            confirmation_not_on_or_after: now + Duration::minutes(5),
            status: None,
            sign: SignMode::Assertion,
            algorithms: (ALG_RSA_SHA256, DIGEST_SHA256),
            authn_instant: None,
        }
    }

    pub fn attribute(mut self, name: &str, values: &[&str]) -> Self {
        self.attributes
            .push((name.to_string(), values.iter().map(|v| v.to_string()).collect()));
        self
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl DevIdp {
    pub fn generate(entity_id: &str) -> Result<Self, KeyError> {
        let key = keys::generate_key(KeyKind::Rsa2048)?;
        let cert = keys::self_signed_certificate(&key, "entree-bridge development IdP", 3650)?;
        Self::from_parts(entity_id, key, cert)
    }

    pub fn from_parts(entity_id: &str, key: PKey<Private>, cert: X509) -> Result<Self, KeyError> {
        Ok(DevIdp {
            entity_id: entity_id.to_string(),
            key_der: key.private_key_to_der()?,
            cert_b64: keys::certificate_b64(&cert)?,
            key,
            cert,
        })
    }

    /// Loads the key pair from `dir` (idp.key, idp.crt), creating it on first use.
    pub fn load_or_create(dir: &Path, entity_id: &str) -> Result<Self, KeyError> {
        let (key_path, cert_path) = (dir.join("idp.key"), dir.join("idp.crt"));
        if key_path.exists() && cert_path.exists() {
            return Self::from_parts(
                entity_id,
                keys::read_private_key(&key_path)?,
                keys::read_certificate(&cert_path)?,
            );
        }
        let idp = Self::generate(entity_id)?;
        keys::write_private_key(&key_path, &idp.key)?;
        keys::write_certificate(&cert_path, &idp.cert)?;
        Ok(idp)
    }

    pub fn metadata(&self, sso_url: &str) -> String {
        crate::saml::idp_metadata::render(&self.entity_id, sso_url, None, &self.cert_b64, true)
    }

    /// Metadata that also names a Single Logout endpoint.
    pub fn metadata_with_slo(&self, sso_url: &str, slo_url: &str) -> String {
        crate::saml::idp_metadata::render(&self.entity_id, sso_url, Some(slo_url), &self.cert_b64, true)
    }

    /// Signs metadata as a federation operator does (this key pair standing in for the
    /// operator's): an enveloped signature, first child of the root, over the root's `ID`.
    pub fn sign_metadata(&self, unsigned: &str, id: &str) -> Result<String, SignatureError> {
        // Right after the root element's start tag (EntityDescriptor or EntitiesDescriptor).
        let root_start = unsigned
            .match_indices('<')
            .map(|(i, _)| i)
            .find(|&i| !unsigned[i + 1..].starts_with(['?', '!']))
            .ok_or(SignatureError::Invalid)?;
        let open_end = unsigned[root_start..]
            .find('>')
            .map(|end| root_start + end + 1)
            .ok_or(SignatureError::Invalid)?;
        let template = sign::template(id, ALG_RSA_SHA256, DIGEST_SHA256, &self.cert_b64);
        let with_template = format!("{}{template}{}", &unsigned[..open_end], &unsigned[open_end..]);
        sign::sign_first_template(&with_template, &self.key_der)
    }

    fn issuer(&self, spec: &ResponseSpec) -> String {
        spec.issuer.clone().unwrap_or_else(|| self.entity_id.clone())
    }

    /// The Assertion element, unsigned; with `template` a signature template sits after Issuer.
    pub fn assertion_xml(&self, spec: &ResponseSpec, template: bool) -> String {
        let irt = spec
            .in_response_to
            .as_deref()
            .map(|i| format!(r#" InResponseTo="{}""#, escape(i)))
            .unwrap_or_default();
        let mut attributes = String::new();
        for (name, values) in &spec.attributes {
            attributes.push_str(&format!(
                r#"<saml:Attribute Name="{}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified">"#,
                escape(name)
            ));
            for v in values {
                attributes.push_str(&format!("<saml:AttributeValue>{}</saml:AttributeValue>", escape(v)));
            }
            attributes.push_str("</saml:Attribute>");
        }
        let statement = if attributes.is_empty() {
            String::new()
        } else {
            format!("<saml:AttributeStatement>{attributes}</saml:AttributeStatement>")
        };
        let sig = if template {
            sign::template(&spec.assertion_id, spec.algorithms.0, spec.algorithms.1, &self.cert_b64)
        } else {
            String::new()
        };
        format!(
            concat!(
                r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{instant}">"#,
                r#"<saml:Issuer>{issuer}</saml:Issuer>{sig}"#,
                r#"<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:transient">{name_id}</saml:NameID>"#,
                r#"<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">"#,
                r#"<saml:SubjectConfirmationData NotOnOrAfter="{sc_until}" Recipient="{recipient}"{irt}/>"#,
                r#"</saml:SubjectConfirmation></saml:Subject>"#,
                r#"<saml:Conditions NotBefore="{nb}" NotOnOrAfter="{na}"><saml:AudienceRestriction><saml:Audience>{aud}</saml:Audience></saml:AudienceRestriction></saml:Conditions>"#,
                r#"<saml:AuthnStatement AuthnInstant="{authn_instant}" SessionIndex="{id}"><saml:AuthnContext>"#,
                r#"<saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef>"#,
                r#"</saml:AuthnContext></saml:AuthnStatement>{statement}</saml:Assertion>"#
            ),
            id = escape(&spec.assertion_id),
            instant = time(spec.issue_instant),
            authn_instant = time(spec.authn_instant.unwrap_or(spec.issue_instant)),
            issuer = escape(&self.issuer(spec)),
            sig = sig,
            name_id = escape(&spec.name_id),
            sc_until = time(spec.confirmation_not_on_or_after),
            recipient = escape(&spec.recipient),
            irt = irt,
            nb = time(spec.not_before),
            na = time(spec.not_on_or_after),
            aud = escape(&spec.audience),
            statement = statement
        )
    }

    /// The assertion, signed when the spec says so (standalone document, no XML declaration).
    pub fn assertion(&self, spec: &ResponseSpec) -> Result<String, SignatureError> {
        if matches!(spec.sign, SignMode::Assertion | SignMode::Both) {
            let signed = sign::sign_first_template(&self.assertion_xml(spec, true), &self.key_der)?;
            Ok(strip_declaration(&signed))
        } else {
            Ok(self.assertion_xml(spec, false))
        }
    }

    /// A Response around `inner` (a serialized Assertion or EncryptedAssertion, or nothing).
    pub fn response_around(&self, spec: &ResponseSpec, inner: &str) -> Result<String, SignatureError> {
        let sign_response = matches!(spec.sign, SignMode::Response | SignMode::Both);
        let sig = if sign_response {
            sign::template(&spec.response_id, spec.algorithms.0, spec.algorithms.1, &self.cert_b64)
        } else {
            String::new()
        };
        let (code, message) = match &spec.status {
            Some((c, m)) => (c.clone(), m.clone()),
            None => ("urn:oasis:names:tc:SAML:2.0:status:Success".to_string(), None),
        };
        let message = message
            .map(|m| format!("<samlp:StatusMessage>{}</samlp:StatusMessage>", escape(&m)))
            .unwrap_or_default();
        let xml = format!(
            concat!(
                r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{instant}"{dest}{irt}>"#,
                r#"<saml:Issuer>{issuer}</saml:Issuer>{sig}<samlp:Status><samlp:StatusCode Value="{code}"/>{message}</samlp:Status>{inner}</samlp:Response>"#
            ),
            id = escape(&spec.response_id),
            instant = time(spec.issue_instant),
            dest = spec
                .destination
                .as_deref()
                .map(|d| format!(r#" Destination="{}""#, escape(d)))
                .unwrap_or_default(),
            irt = spec
                .in_response_to
                .as_deref()
                .map(|i| format!(r#" InResponseTo="{}""#, escape(i)))
                .unwrap_or_default(),
            issuer = escape(&self.issuer(spec)),
            sig = sig,
            code = escape(&code),
            message = message,
            inner = inner
        );
        if sign_response {
            Ok(strip_declaration(&sign::sign_first_template(&xml, &self.key_der)?))
        } else {
            Ok(xml)
        }
    }

    /// A complete response as the spec describes it.
    pub fn response(&self, spec: &ResponseSpec) -> Result<String, SignatureError> {
        let assertion = if spec.status.is_some() {
            String::new()
        } else {
            self.assertion(spec)?
        };
        self.response_around(spec, &assertion)
    }

    /// A response whose (signed) assertion is encrypted to `sp_cert`.
    pub fn encrypted_response(&self, spec: &ResponseSpec, sp_cert: &X509, content_alg: &str) -> Result<String, String> {
        let assertion = self.assertion(spec).map_err(|e| e.to_string())?;
        let encrypted =
            crate::saml::decrypt::encrypt_assertion(&assertion, sp_cert, content_alg).map_err(|e| e.to_string())?;
        self.response_around(spec, &encrypted).map_err(|e| e.to_string())
    }
}

/// libxml2 serializes with an XML declaration; embedded elements must not carry one.
pub fn strip_declaration(xml: &str) -> String {
    let trimmed = xml.trim_start();
    match trimmed.strip_prefix("<?xml") {
        Some(rest) => rest
            .split_once("?>")
            .map(|(_, r)| r.trim_start().to_string())
            .unwrap_or_default(),
        None => trimmed.to_string(),
    }
}
