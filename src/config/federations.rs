//! `[federations.NAME]`: where the IdP metadata comes from (a file, or a URL whose signature
//! is the trust) and the trust policy, as saml's [`MetadataSource`] and [`TrustPolicy`]. The
//! metadata a load reads (the file, or the copy kept on disk for a URL) comes along as the
//! starting copy; the copy in force lives in the application state's metadata registry.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use super::file::FederationSection;
use super::parse::{parse_duration, read_pem_certificates, resolve};
use super::problems::Collector;
use crate::saml::idp_metadata::{self, IdpDescriptor};
use crate::saml::metadata_registry::{self, LoadedMetadata, MetadataUnavailable, SourceKey};
use crate::saml::settings::{MetadataSource, TrustPolicy};

/// One federation as configured.
#[derive(Debug)]
pub struct Federation {
    pub name: String,
    pub source: MetadataSource,
    /// `idp_entity_id`, to pick the IdP out of metadata that lists several.
    pub idp_entity_id: Option<String>,
    pub trust: TrustPolicy,
    /// The metadata this load read: the file, or the copy kept on disk for a URL.
    at_load: Option<Arc<IdpDescriptor>>,
}

impl Federation {
    /// The metadata this load read, if it may be trusted now (for `check-config`,
    /// `verify-response` and tests; a running bridge asks its metadata registry).
    pub fn metadata_at_load(&self) -> Result<Arc<IdpDescriptor>, MetadataUnavailable> {
        metadata_registry::usable(&self.name, self.at_load.clone(), || None)
    }

    /// What this load brings to the metadata registry when its config is put in force.
    pub fn loaded_metadata(&self) -> LoadedMetadata<'_> {
        LoadedMetadata {
            federation: &self.name,
            source: SourceKey::of(&self.source, self.idp_entity_id.as_deref()),
            copy: self.at_load.clone(),
            require_valid_until: self.trust.require_valid_until,
        }
    }
}

pub(super) fn build_federation(
    name: &str,
    f: &FederationSection,
    base: &Path,
    c: &mut Collector<'_>,
) -> Option<Federation> {
    let key = format!("federations.{name}");
    let clock_skew = c.take(&format!("{key}.clock_skew"), parse_duration(&f.clock_skew));
    let refresh_interval = c.take(&format!("{key}.refresh_interval"), parse_duration(&f.refresh_interval));
    if refresh_interval.is_some_and(|r| r < Duration::from_secs(1)) {
        c.add(format!("{key}.refresh_interval"), "must be at least 1s");
    }
    let refresh_timeout = c.take(&format!("{key}.refresh_timeout"), parse_duration(&f.refresh_timeout));
    if refresh_timeout.is_some_and(|t| t < Duration::from_secs(1) || t > Duration::from_secs(600)) {
        c.add(format!("{key}.refresh_timeout"), "must be between 1s and 10m");
    }
    let signing_certs = f.metadata_signing_cert.as_ref().and_then(|p| {
        let path = resolve(base, p);
        c.take(&format!("{key}.metadata_signing_cert"), read_pem_certificates(&path))
    });
    let wanted = f.idp_entity_id.as_deref();
    // A file is the admin's own copy, refreshed by hand: validUntil is honoured when present
    // and never required, so require_valid_until only matters for a URL.
    let trust = |clock_skew| TrustPolicy {
        allow_sha1: f.allow_sha1,
        allow_cbc: f.allow_cbc,
        require_valid_until: f.require_valid_until,
        clock_skew,
    };
    if f.metadata.starts_with("http://") || f.metadata.starts_with("https://") {
        let url = c.take(
            &format!("{key}.metadata"),
            Url::parse(&f.metadata).map_err(|e| format!("{:?} is not a URL: {e}", f.metadata)),
        );
        if f.metadata_signing_cert.is_none() {
            c.add(
                format!("{key}.metadata_signing_cert"),
                "required with a metadata URL: the PEM certificate(s) the federation signs its metadata with \
                 (the signature, not the transport, is the trust)",
            );
        }
        let cache = resolve(
            base,
            f.metadata_cache
                .as_deref()
                .unwrap_or(&format!("data/metadata-{name}.xml")),
        );
        let (url, signing_certs, refresh_interval, refresh_timeout) =
            (url?, signing_certs?, refresh_interval?, refresh_timeout?);
        let idp = idp_metadata::load_cached(&cache, &signing_certs, wanted).filter(|idp| {
            // A copy kept while require_valid_until was false is not trusted once it is true.
            idp.valid_until.is_some() || !f.require_valid_until
        });
        return Some(Federation {
            name: name.to_string(),
            source: MetadataSource::Url {
                url,
                signing_certs,
                cache,
                refresh_interval,
                refresh_timeout,
            },
            idp_entity_id: f.idp_entity_id.clone(),
            trust: trust(clock_skew?),
            at_load: idp.map(Arc::new),
        });
    }
    let path = resolve(base, &f.metadata);
    let text = c.take(
        &format!("{key}.metadata"),
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display())),
    )?;
    // With a signing certificate a file must be signed by it too; without, the admin who put
    // the file there vouches for it.
    let parsed = match &signing_certs {
        Some(certs) => idp_metadata::verify_and_parse(&text, certs, wanted).map(|(idp, _)| idp),
        None => idp_metadata::parse(&text, wanted),
    };
    let idp = c.take(
        &format!("{key}.metadata"),
        parsed.map_err(|e| format!("{}: {e}", path.display())),
    )?;
    if let Some(until) = idp.valid_until.filter(|u| *u <= chrono::Utc::now()) {
        c.add(
            format!("{key}.metadata"),
            format!(
                "{}: expired at {until} (validUntil); get a fresh copy from the federation",
                path.display()
            ),
        );
    }
    Some(Federation {
        name: name.to_string(),
        source: MetadataSource::File(path),
        idp_entity_id: f.idp_entity_id.clone(),
        trust: trust(clock_skew?),
        at_load: Some(Arc::new(idp)),
    })
}

/// What `check-config` and the start say about validUntil of URL metadata: that it is not
/// required (`require_valid_until = false`: the signature and `refresh_interval` alone decide),
/// or, when it is, that the copy kept on disk has none and is not used.
pub(super) fn valid_until_warning(f: &Federation) -> Option<String> {
    let MetadataSource::Url {
        cache,
        refresh_interval,
        ..
    } = &f.source
    else {
        return None;
    };
    if !f.trust.require_valid_until {
        return Some(format!(
            "federations.{}.require_valid_until = false: metadata from the URL without validUntil is trusted \
             on its signature alone and refreshed every {}; a copy that stops being refreshed never expires",
            f.name,
            humantime::format_duration(*refresh_interval)
        ));
    }
    let kept_without_end =
        f.at_load.is_none() && std::fs::read_to_string(cache).is_ok_and(|text| !text.contains("validUntil"));
    kept_without_end.then(|| {
        format!(
            "federations.{}: the kept copy {} has no validUntil, which require_valid_until = true refuses; \
             the federation must publish validUntil, or set federations.{}.require_valid_until = false",
            f.name,
            cache.display(),
            f.name
        )
    })
}

/// The summary line of one federation, for `check-config`.
pub(super) fn summary_line(f: &Federation) -> String {
    let source = match &f.source {
        MetadataSource::File(p) => format!("file {}", p.display()),
        MetadataSource::Url { url, .. } => format!("URL {}", crate::store::redacted(url.as_str())),
    };
    match &f.at_load {
        Some(idp) => format!(
            "federation {}: IdP {} ({} signing certificate(s), SSO {}{}) from {source}\n",
            f.name,
            idp.entity_id,
            idp.signing_certs.len(),
            idp.sso_redirect_url,
            if idp.want_authn_requests_signed {
                ", wants signed requests"
            } else {
                ""
            }
        ),
        None => format!(
            "federation {}: no IdP metadata yet; it will be fetched from {source}\n",
            f.name
        ),
    }
}
