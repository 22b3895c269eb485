//! `entree-bridge verify-response`: explains why a SAML Response is accepted or rejected,
//! running the very validation code the ACS runs.

use std::path::PathBuf;

use openssl::pkey::{PKey, Private};
use serde_json::json;

use crate::saml::idp_metadata;
use crate::saml::response::{self, Expectations, Report, ValidatedAssertion};
use crate::saml::xml::XmlLimits;
use crate::saml::ValidationError;
use crate::verify_identity::{self, IdentityReport, IdentityTarget};

/// Settings for one verification, from flags or from a config's app.
pub struct VerifySettings {
    pub idp: idp_metadata::IdpDescriptor,
    pub sp_entity_id: String,
    pub acs_url: String,
    pub request_id: Option<String>,
    pub now: chrono::DateTime<chrono::Utc>,
    pub allow_sha1: bool,
    /// `--allow-cbc` (or the config's `federations.X.allow_cbc`).
    pub allow_cbc: bool,
    pub allow_unsolicited: bool,
    pub clock_skew: std::time::Duration,
    pub sp_keys: Vec<PKey<Private>>,
    /// With `--config --app`: the identity step after a valid response (`None` from flags).
    pub identity: Option<IdentityTarget>,
}

#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("{0}")]
    Message(String),
}

/// Turns the input (raw XML, base64, or a `SAMLResponse=...` form body) into XML text.
pub fn read_input(input: &[u8], limits: XmlLimits) -> Result<String, ValidationError> {
    let text = std::str::from_utf8(input).map_err(|_| ValidationError::NotUtf8)?;
    // A BOM is not whitespace to `trim`, and before `<` it would send raw XML to base64.
    let text = response::strip_bom(text).trim();
    if text.starts_with('<') {
        return Ok(text.to_string());
    }
    if text.contains("SAMLResponse=") {
        let value = url::form_urlencoded::parse(text.as_bytes())
            .find(|(k, _)| k == "SAMLResponse")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        return response::decode_post_binding(&value, limits);
    }
    response::decode_post_binding(text, limits)
}

pub fn load_sp_keys(paths: &[PathBuf]) -> Result<Vec<PKey<Private>>, UsageError> {
    paths
        .iter()
        .map(|p| crate::keys::read_private_key(p).map_err(|e| UsageError::Message(e.to_string())))
        .collect()
}

/// Runs the validation and returns the process exit code (0 valid, 1 invalid), printing
/// either one JSON object or a human-readable explanation.
pub fn run(settings: &VerifySettings, input: &[u8], as_json: bool) -> i32 {
    let limits = XmlLimits::default();
    let mut report = Report::recording();
    let outcome = read_input(input, limits).and_then(|xml| {
        let expectations = Expectations {
            idp_entity_id: &settings.idp.entity_id,
            idp_keys: &settings.idp.signing_keys,
            sp_entity_id: &settings.sp_entity_id,
            acs_url: &settings.acs_url,
            request_id: settings.request_id.as_deref(),
            // The contract: without --request-id, InResponseTo is not checked (plaintext and
            // encrypted assertions alike); with it, it is required and must match.
            in_response_to_unchecked: settings.request_id.is_none(),
            allow_unsolicited: settings.allow_unsolicited,
            allow_sha1: settings.allow_sha1,
            allow_cbc: settings.allow_cbc,
            clock_skew: settings.clock_skew,
            now: settings.now,
            decryption_keys: &settings.sp_keys,
            limits,
        };
        response::validate(&xml, &expectations, &mut report)
    });
    // Only a valid response reaches the identity step, as at the ACS.
    let identity = match (&outcome, &settings.identity) {
        (Ok(assertion), Some(target)) => Some(verify_identity::run(target, assertion, settings.now.timestamp())),
        _ => None,
    };
    if as_json {
        let mut out = to_json(&outcome, &report);
        // With a config, always the key: null when the response never reached the step.
        if settings.identity.is_some() {
            out["identity"] = identity
                .as_ref()
                .map_or(serde_json::Value::Null, IdentityReport::to_json);
        }
        println!("{out}");
    } else {
        print_human(&outcome, &report);
        if let (Some(step), Some(target)) = (&identity, &settings.identity) {
            step.print(&target.app);
        }
    }
    // A valid response the identity step refuses (or cannot tell about) is no login either.
    i32::from(outcome.is_err() || identity.as_ref().is_some_and(|step| !step.ok()))
}

fn to_json(outcome: &Result<ValidatedAssertion, ValidationError>, report: &Report) -> serde_json::Value {
    match outcome {
        Ok(a) => json!({
            "valid": true,
            "error": null,
            "issuer": a.issuer(),
            "name_id": a.name_id(),
            "attributes": a.attributes(),
            "checks": report.checks,
        }),
        Err(e) => json!({
            "valid": false,
            "error": {"code": e.code(), "message": e.to_string()},
            "issuer": null,
            "name_id": null,
            "attributes": {},
            "checks": report.checks,
        }),
    }
}

fn print_human(outcome: &Result<ValidatedAssertion, ValidationError>, report: &Report) {
    for c in &report.checks {
        println!("{} {:<24} {}", if c.ok { "ok  " } else { "FAIL" }, c.check, c.detail);
    }
    match outcome {
        Ok(a) => {
            println!("\nVALID: issuer {}, NameID {}", a.issuer(), a.name_id());
            for (name, values) in a.attributes().iter() {
                println!("  {name} = {}", values.join(", "));
            }
        }
        Err(e) => println!("\nINVALID [{}]: {e}", e.code()),
    }
}

/// Reads `--now`.
pub fn parse_now(value: Option<&str>) -> Result<chrono::DateTime<chrono::Utc>, UsageError> {
    match value {
        None => Ok(chrono::Utc::now()),
        Some(v) => chrono::DateTime::parse_from_rfc3339(v)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|e| UsageError::Message(format!("--now {v:?} is not RFC 3339: {e}"))),
    }
}
