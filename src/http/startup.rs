//! The start-up summary in the log: what this instance serves and on what, so that the
//! engineer paged at night sees from the first lines which version runs with which apps,
//! federations and stores.

use crate::config::{LinksTarget, Settings};
use crate::handoff::HandoffMode;
use crate::saml::settings::MetadataSource;

/// One line for the instance, one per federation, one per app.
pub fn log_startup(settings: &Settings) {
    let apps: Vec<&str> = settings.apps.iter().map(|a| a.name.as_str()).collect();
    let federations: Vec<&str> = settings.federations.keys().map(String::as_str).collect();
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        listen = %settings.listen,
        public_url = %settings.public_base_url,
        https = settings.tls.is_some(),
        sessions = %settings.session_store,
        links = links_label(&settings.links),
        admin = settings.admin.as_ref().map(|a| a.listen.to_string()),
        apps = apps.join(","),
        federations = federations.join(","),
        "entree-bridge {} listening on {}",
        env!("CARGO_PKG_VERSION"),
        settings.listen
    );
    for f in settings.federations.values() {
        let metadata = match &f.source {
            MetadataSource::File(path) => format!("file {}", path.display()),
            MetadataSource::Url { url, .. } => format!("url {url}"),
        };
        tracing::info!(federation = f.name, metadata, "federation ready");
    }
    for a in &settings.apps {
        let mode = match a.handoff.mode {
            HandoffMode::Jwt => "jwt",
            HandoffMode::Headers => "headers",
            HandoffMode::Oidc => "oidc",
        };
        tracing::info!(
            app = a.name,
            federation = a.federation.name,
            mode,
            login = %a.route_url("login"),
            "app ready"
        );
    }
}

fn links_label(links: &LinksTarget) -> String {
    match links {
        LinksTarget::Sqlite(path) => format!("sqlite {}", path.display()),
        LinksTarget::Postgres(_) => "postgres".to_string(),
    }
}
