//! The parse helpers every section shares: durations, paths, URLs, names, certificate files,
//! and the extraction of one section with serde's problems named by key path. Each returns a
//! message for the caller to file under its key (see [`super::problems::Collector`]).

use std::path::{Path, PathBuf};

use figment::Figment;
use openssl::x509::X509;
use serde::de::DeserializeOwned;
use url::Url;

use super::problems::Collector;

pub(super) fn parse_duration(value: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(value).map_err(|e| format!("{value:?} is not a duration like \"90s\" or \"8h\": {e}"))
}

/// `value` as a path: absolute as it is, relative to the main config file's folder.
pub(super) fn resolve(base: &Path, value: &str) -> PathBuf {
    let p = Path::new(value);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// An http(s) URL with a host and nothing a browser or app could be misled by (user info,
/// query, fragment).
pub(super) fn parse_http_url(value: &str) -> Result<Url, String> {
    let url = Url::parse(value).map_err(|e| format!("{value:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{value:?} must be an http(s) URL with a host"));
    }
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{value:?} must not carry user info, a query or a fragment"));
    }
    Ok(url)
}

/// A federation or app name: it becomes a URL path segment and a JWT audience.
pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The certificates of a PEM CA file, as DER.
pub(super) fn read_ca_file(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs: Vec<Vec<u8>> = rustls_pemfile::certs(&mut pem.as_slice())
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// Every certificate of a PEM file, as DER.
pub(super) fn read_pem_certificates(path: &Path) -> Result<Vec<samael::crypto::CertificateDer>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = X509::stack_from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    certs
        .iter()
        .map(|c| {
            c.to_der()
                .map(samael::crypto::CertificateDer::from)
                .map_err(|e| format!("{}: {e}", path.display()))
        })
        .collect()
}

/// Extracts one section, reporting serde problems (unknown keys, wrong types) by key path.
pub(super) fn section<T: DeserializeOwned>(figment: &Figment, key: &str, c: &mut Collector<'_>) -> Option<T> {
    match figment.extract_inner::<T>(key) {
        Ok(v) => Some(v),
        Err(errors) => {
            for e in errors {
                let mut path = vec![key.to_string()];
                path.extend(e.path.iter().cloned());
                let message = match &e.kind {
                    figment::error::Kind::UnknownField(field, _) => {
                        path.push(field.clone());
                        "unknown key".to_string()
                    }
                    figment::error::Kind::MissingField(field) => {
                        path.push(field.to_string());
                        "missing required key".to_string()
                    }
                    other => other.to_string(),
                };
                c.add(path.join("."), message);
            }
            None
        }
    }
}
