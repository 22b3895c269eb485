//! Hot config reload: on SIGHUP, and when the config file or a per-app file changes on disk.
//! The new config is loaded and validated completely (the same checks as `check-config`,
//! keys and certificates read), then swapped in whole; requests under way finish under the
//! config they started with. A config with problems is refused, each problem logged with its
//! key and file, and the old config keeps serving. What lives beside the config (the stores,
//! the counters, the IdP metadata in force) is carried by the state, not by the config: see
//! `AppState::reconfigured`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::{self, ConfigErrors, Settings};
use crate::http::Shared;

/// How often the files are checked for changes.
const POLL: Duration = Duration::from_secs(2);
/// A change is acted on when the files have been quiet this long (editors write in steps).
const SETTLE: Duration = Duration::from_millis(300);

/// Loads `path` and, when it is valid, puts it in force. Returns the notes about keys that
/// only take effect at a restart.
pub fn reload(shared: &Shared, path: &Path) -> Result<Vec<String>, ConfigErrors> {
    let current = shared.current();
    let loaded = config::load(path);
    current.metrics.reload(loaded.is_ok());
    let settings = loaded?;
    let mut notes = restart_only_changes(&current.settings, &settings);
    notes.extend(settings.warnings.iter().cloned());
    // New connections get the new certificate; open ones keep theirs.
    if let (Some(holder), Some(tls)) = (shared.tls(), &settings.tls) {
        holder.replace(tls.clone());
    }
    shared.replace(current.reconfigured(Arc::new(settings)));
    Ok(notes)
}

/// Keys whose new values the running process cannot take over (its socket and its stores
/// were made at start).
fn restart_only_changes(old: &Settings, new: &Settings) -> Vec<String> {
    let mut notes = Vec::new();
    if old.listen != new.listen {
        notes.push(format!(
            "server.listen changed to {}: takes effect at the next start",
            new.listen
        ));
    }
    if old.session_store != new.session_store {
        notes.push("sessions: the store changed: takes effect at the next start".to_string());
    }
    if old.tls.is_some() != new.tls.is_some() {
        notes.push("server.tls_cert: switching between http and https takes effect at the next start".to_string());
    }
    if old.log_format != new.log_format {
        notes.push("log.format changed: takes effect at the next start".to_string());
    }
    if old.links != new.links {
        notes.push("links: the link store changed: takes effect at the next start".to_string());
    }
    notes
}

/// Reloads and logs the outcome, one line per problem.
pub fn reload_and_log(shared: &Shared, path: &Path, why: &str) {
    match reload(shared, path) {
        Ok(notes) => {
            tracing::info!(config = %path.display(), why, "config reloaded");
            for note in notes {
                tracing::warn!("{note}");
            }
        }
        Err(errors) => {
            for problem in &errors.0 {
                tracing::error!(%problem, "config reload refused; the previous config keeps serving");
            }
        }
    }
}

/// What the watched files look like now: path, modification time, length.
fn fingerprint(files: &[PathBuf]) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    files
        .iter()
        .map(|p| {
            let meta = std::fs::metadata(p).ok();
            (
                p.clone(),
                meta.as_ref().and_then(|m| m.modified().ok()),
                meta.map_or(0, |m| m.len()),
            )
        })
        .collect()
}

/// SIGHUP, taken over from its default (ending the process) as early as possible.
#[cfg(unix)]
pub type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
pub type Hangup = ();

/// Installs the SIGHUP handler; call before the server starts serving.
pub fn hangup() -> Hangup {
    #[cfg(unix)]
    return tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
}

/// Reloads off the threads that serve requests (keys, certificates and metadata are read
/// and verified), then logs the outcome.
async fn reload_in_background(shared: &Arc<Shared>, path: &Path, why: &'static str) {
    let (shared, path) = (shared.clone(), path.to_path_buf());
    let _ = tokio::task::spawn_blocking(move || reload_and_log(&shared, &path, why)).await;
}

/// Watches for SIGHUP and for changed files until the process ends.
pub async fn watch(shared: Arc<Shared>, path: PathBuf, hangup: Hangup) {
    #[cfg(unix)]
    let mut hangup = hangup;
    let mut seen = fingerprint(&config::watched_files(&path));
    loop {
        #[cfg(unix)]
        let signalled = match hangup.as_mut() {
            Some(h) => tokio::select! {
                _ = h.recv() => true,
                _ = tokio::time::sleep(POLL) => false,
            },
            None => {
                tokio::time::sleep(POLL).await;
                false
            }
        };
        #[cfg(not(unix))]
        let signalled = {
            tokio::time::sleep(POLL).await;
            false
        };
        if signalled {
            // Taken before loading: an edit made while the reload runs is seen next time.
            seen = fingerprint(&config::watched_files(&path));
            reload_in_background(&shared, &path, "SIGHUP").await;
            continue;
        }
        let now = fingerprint(&config::watched_files(&path));
        if now == seen {
            continue;
        }
        // Let the writer finish, then take what is there.
        tokio::time::sleep(SETTLE).await;
        seen = fingerprint(&config::watched_files(&path));
        reload_in_background(&shared, &path, "a config file changed").await;
    }
}
