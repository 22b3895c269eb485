//! Keeps the IdP metadata of URL federations fresh: fetched with hyper + rustls, trusted only
//! when its signature verifies against `metadata_signing_cert` and it has not expired, then
//! put in force and kept on disk (the last good copy, for a restart during an outage). A
//! fetch that fails in any way (unreachable, bad signature, expired, unparsable) changes
//! nothing: the last good copy serves on, until its own validUntil, after which logins for
//! that federation fail closed with a clear page. Copies are installed into the application
//! state's metadata registry (see [`crate::saml::metadata_registry`]), which outlives reloads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Limited};

use crate::config::Federation;
use crate::http::proxy::UpstreamClient;
use crate::http::Shared;
use crate::saml::idp_metadata;
use crate::saml::metadata_registry::LiveMetadata;
use crate::saml::settings::MetadataSource;

/// How often the due fetches are looked for.
const TICK: Duration = Duration::from_secs(1);
/// After a failed fetch, the next try comes this soon (or at the refresh interval, if sooner).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);

/// Why one refresh changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("{0}")]
    Fetch(String),
    /// The whole refresh (`federations.X.refresh_timeout`) ran out.
    #[error("not finished within {} (abandoned while {stage})", humantime::format_duration(*after))]
    Deadline { after: Duration, stage: Stage },
    /// The parse and signature check of an earlier, abandoned refresh still runs on its
    /// thread: no second one is started beside it (a hostile source could otherwise pile up
    /// busy threads, one per try).
    #[error("the check of an earlier copy still runs (it overran its deadline); not fetching again yet")]
    StillChecking,
    #[error("{0}")]
    Refused(String),
}

/// Where a refresh is, for the log line of one that overran its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Stage {
    Fetching = 0,
    Checking = 1,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Fetching => "fetching",
            Stage::Checking => "pre-scanning, parsing and checking the signature",
        })
    }
}

/// Per federation: its refresh under way, and whether the CPU part of a refresh (its own
/// or an abandoned earlier one) still runs on a blocking thread.
#[derive(Default)]
struct Refresher {
    task: Option<tokio::task::JoinHandle<()>>,
    checking: Arc<AtomicBool>,
}

/// Runs until the process ends. The federations are taken from the config in force at each
/// tick, so a reload's new federations are fetched at once and the old ones are left alone.
/// Each federation refreshes in a task of its own: a source that hangs, trickles or serves a
/// costly document holds up only itself, for at most its `refresh_timeout`.
pub async fn run(shared: Arc<Shared>) {
    let client = match crate::http::proxy::client(Duration::from_secs(10), &[]) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("cannot build the metadata HTTP client; metadata URLs are not refreshed: {e}");
            return;
        }
    };
    let mut refreshers: HashMap<String, Refresher> = HashMap::new();
    loop {
        let state = shared.current();
        for federation in state.settings.federations.values() {
            let Some(live) = state.metadata.get(&federation.name) else {
                continue;
            };
            if matches!(federation.source, MetadataSource::Url { .. }) {
                let refresher = refreshers.entry(federation.name.clone()).or_default();
                let idle = refresher.task.as_ref().is_none_or(|t| t.is_finished());
                let due = live.next_fetch() <= chrono::Utc::now().timestamp();
                if idle && due {
                    let (client, federation, live, metrics) =
                        (client.clone(), federation.clone(), live.clone(), state.metrics.clone());
                    let checking = refresher.checking.clone();
                    refresher.task = Some(tokio::spawn(async move {
                        refresh_with(&client, &federation, &live, &metrics, &checking).await;
                    }));
                }
            }
            // A series whenever metadata is loaded (`+Inf` when it has no validUntil), none
            // while there is none: the alert on it then is the absence, or /readyz.
            match live.last_known() {
                Some(idp) => state
                    .metrics
                    .set_metadata_valid_until(&federation.name, idp.valid_until.map(|t| t.timestamp())),
                None => state.metrics.forget_metadata(&federation.name),
            }
        }
        let names: Vec<&str> = state.settings.federations.keys().map(String::as_str).collect();
        state.metrics.retain_federations(&names);
        // A federation removed by a reload: its refresh under way may finish (it only
        // touches its own, no longer used, registry slot).
        refreshers.retain(|name, _| names.contains(&name.as_str()));
        drop(state);
        tokio::time::sleep(TICK).await;
    }
}

/// One refresh of one federation into its registry slot `live`, under its deadline; the
/// outcome is logged and decides the next fetch.
pub async fn refresh(
    client: &UpstreamClient,
    federation: &Federation,
    live: &LiveMetadata,
    metrics: &crate::http::Metrics,
) {
    refresh_with(client, federation, live, metrics, &Arc::new(AtomicBool::new(false))).await;
}

async fn refresh_with(
    client: &UpstreamClient,
    federation: &Federation,
    live: &LiveMetadata,
    metrics: &crate::http::Metrics,
    checking: &Arc<AtomicBool>,
) {
    let MetadataSource::Url {
        url,
        cache,
        refresh_interval,
        refresh_timeout,
        ..
    } = &federation.source
    else {
        return;
    };
    let shown_url = crate::store::redacted(url.as_str());
    let stage = AtomicU8::new(Stage::Fetching as u8);
    let outcome =
        match tokio::time::timeout(*refresh_timeout, attempt(client, federation, live, checking, &stage)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(RefreshError::Deadline {
                after: *refresh_timeout,
                stage: if stage.load(Ordering::Relaxed) == Stage::Checking as u8 {
                    Stage::Checking
                } else {
                    Stage::Fetching
                },
            }),
        };
    let now = chrono::Utc::now().timestamp();
    // The copy goes in force first, so that one a reload meanwhile refuses counts as refused.
    let outcome = outcome.and_then(|(text, idp, cache_duration)| {
        let (entity_id, valid_until) = (idp.entity_id.clone(), idp.valid_until);
        live.install(idp).map_err(RefreshError::Refused)?;
        Ok((text, entity_id, valid_until, cache_duration))
    });
    match outcome {
        Ok((text, entity_id, valid_until, cache_duration)) => {
            let next = cache_duration.map_or(*refresh_interval, |d| d.min(*refresh_interval));
            tracing::info!(
                federation = federation.name,
                url = %shown_url,
                idp = entity_id,
                valid_until = ?valid_until,
                next_in = %humantime::format_duration(next),
                "IdP metadata refreshed"
            );
            if valid_until.is_none() {
                tracing::warn!(
                    federation = federation.name,
                    "IdP metadata without validUntil accepted on its signature (federations.{}.require_valid_until = false)",
                    federation.name
                );
            }
            live.note_refusal(None);
            if let Err(e) = keep_on_disk(cache, &text) {
                tracing::warn!(federation = federation.name, cache = %cache.display(), "cannot keep the metadata on disk: {e}");
            }
            live.schedule_fetch(now + secs(next));
            metrics.metadata_refresh(true);
        }
        Err(reason) => {
            let retry = RETRY_AFTER_FAILURE.min(*refresh_interval);
            let kept = match live.idp() {
                Ok(_) => "the last good copy serves on",
                Err(_) => "no valid copy is left: logins for this federation fail",
            };
            tracing::error!(
                federation = federation.name,
                url = %shown_url,
                retry_in = %humantime::format_duration(retry),
                "IdP metadata refresh refused ({kept}): {reason}"
            );
            live.note_refusal(Some(reason.to_string()));
            live.schedule_fetch(now + secs(retry));
            metrics.metadata_refresh(false);
        }
    }
}

type Fetched = (String, idp_metadata::IdpDescriptor, Option<Duration>);

/// Fetch, then pre-scan, parse and verify off the async workers. Dropped at the deadline;
/// the blocking part cannot be stopped from outside, so it finishes on its thread and its
/// result is thrown away, and `checking` keeps the next try from starting a second one.
async fn attempt(
    client: &UpstreamClient,
    federation: &Federation,
    live: &LiveMetadata,
    checking: &Arc<AtomicBool>,
    stage: &AtomicU8,
) -> Result<Fetched, RefreshError> {
    let MetadataSource::Url { url, signing_certs, .. } = &federation.source else {
        return Err(RefreshError::Fetch("not a URL federation".into()));
    };
    if checking.load(Ordering::Acquire) {
        return Err(RefreshError::StillChecking);
    }
    let text = fetch(client, url).await.map_err(RefreshError::Fetch)?;
    if checking.swap(true, Ordering::AcqRel) {
        return Err(RefreshError::StillChecking);
    }
    stage.store(Stage::Checking as u8, Ordering::Relaxed);
    let done = CheckingDone(checking.clone());
    let (certs, wanted) = (signing_certs.clone(), federation.idp_entity_id.clone());
    // xmlsec and parsing of up to 16 MiB: off the threads that serve requests.
    let (text, idp, cache_duration) = tokio::task::spawn_blocking(move || {
        let _done = done;
        idp_metadata::verify_and_parse(&text, &certs, wanted.as_deref())
            .map(|(idp, cache_duration)| (text, idp, cache_duration))
            .map_err(|e| RefreshError::Refused(e.to_string()))
    })
    .await
    .unwrap_or_else(|e| Err(RefreshError::Refused(format!("verification did not finish: {e}"))))?;
    acceptable_after(federation, live.last_known().as_deref(), &idp).map_err(RefreshError::Refused)?;
    Ok((text, idp, cache_duration))
}

/// Clears the federation's "checking" flag when the blocking check ends, however it ends.
struct CheckingDone(Arc<AtomicBool>);

impl Drop for CheckingDone {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// A fetched copy must end (validUntil: a copy without one would be trusted forever) unless
/// `require_valid_until = false` says its signature is enough, and may not end before the copy
/// in force (an older copy served again, a rollback).
fn acceptable_after(
    federation: &Federation,
    current: Option<&crate::saml::idp_metadata::IdpDescriptor>,
    fetched: &crate::saml::idp_metadata::IdpDescriptor,
) -> Result<(), String> {
    let Some(until) = fetched.valid_until else {
        if !federation.trust.require_valid_until {
            return Ok(());
        }
        return Err(format!(
            "the metadata has no validUntil; metadata from a URL must say when it ends \
             (federations.{}.require_valid_until = false accepts it on its signature and refresh_interval)",
            federation.name
        ));
    };
    match current.and_then(|c| c.valid_until) {
        Some(current_until) if until < current_until => Err(format!(
            "the metadata ends at {until}, before the copy in force ({current_until}): an older copy"
        )),
        _ => Ok(()),
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2)
}

async fn fetch(client: &UpstreamClient, url: &url::Url) -> Result<String, String> {
    let request = hyper::Request::get(url.as_str())
        .header(hyper::header::ACCEPT, "application/samlmetadata+xml, application/xml")
        .body(axum::body::Body::empty())
        .map_err(|e| e.to_string())?;
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("cannot fetch: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("the server answered {}", response.status()));
    }
    let limit = crate::saml::signature::METADATA_LIMITS.max_bytes;
    let body = Limited::new(response.into_body(), limit)
        .collect()
        .await
        .map_err(|e| format!("reading the body (at most {limit} bytes): {e}"))?
        .to_bytes();
    String::from_utf8(body.to_vec()).map_err(|_| "the metadata is not UTF-8".to_string())
}

/// Writes next to the file (a name of its own: instances may share the folder), syncs, and
/// renames over it, so a crash never leaves half a copy.
fn keep_on_disk(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("xml.{}.tmp", crate::keys::random_token()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
