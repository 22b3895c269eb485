//! The support desk's operations, one implementation for the command line, the admin API
//! and the admin pages: school activation, link lookup and removal, imports, references.
//! Each change writes its audit line here, with who made it, so no caller can forget it.

use serde::Serialize;

use crate::config::App;
use crate::identity::import::{self, Format};
use crate::identity::{parse_brin, school_activation, ActivatedBy, Pseudonyms};
use crate::store::links::{Link, LinkStore, LinkStoreError};
use crate::store::reports::FailureReport;

/// Who makes a change, as the audit trail names them: `token:NAME` (the admin API and pages)
/// or `shell:USER` (the command line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(String);

impl Actor {
    pub fn token(name: &str) -> Actor {
        Actor(format!("token:{name}"))
    }

    pub fn shell(user: &str) -> Actor {
        Actor(format!("shell:{user}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// What the caller sent cannot be used (a BRIN, a format, a file): nothing was changed.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] LinkStoreError),
}

impl OpError {
    pub fn code(&self) -> &'static str {
        match self {
            OpError::Invalid(_) => "invalid_request",
            OpError::Store(_) => "store_unavailable",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SchoolStatus {
    pub app: String,
    pub brin: String,
    pub active: bool,
    /// Why it is active (`everyone`, `config`, `database`); `None`: it is not.
    pub source: Option<ActivatedBy>,
    /// Database activations: who made it, and when (unix seconds).
    pub activated_by: Option<String>,
    pub activated_at: Option<i64>,
}

/// The activation of `brin` (checked first) for `app`, from the config and the database.
pub async fn school_status(links: &LinkStore, app: &App, brin: &str) -> Result<SchoolStatus, OpError> {
    let brin = parse_brin(brin).map_err(OpError::Invalid)?;
    let rows = links.activations(Some(&app.name)).await?;
    let row = rows.iter().find(|a| a.brin == brin);
    let in_database: std::collections::BTreeSet<String> = row.map(|a| a.brin.clone()).into_iter().collect();
    let source = school_activation(&app.identity, &in_database, Some(&brin), None).ok();
    Ok(SchoolStatus {
        app: app.name.clone(),
        active: source.is_some(),
        activated_by: row.map(|a| a.activated_by.clone()),
        activated_at: row.map(|a| a.activated_at),
        brin,
        source,
    })
}

/// What an activation or deactivation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SchoolChange {
    Activated,
    AlreadyActivated,
    Deactivated,
    /// Deactivation asked for a school `apps.X.schools` names: only the config can remove it.
    InConfig,
    NotActivated,
}

/// Activates (`activate`) or deactivates each BRIN for `app`; every BRIN is checked before
/// anything is written. The changes are in force on every instance within
/// [`REFRESH_INTERVAL`](crate::store::schools::REFRESH_INTERVAL) plus a query.
pub async fn change_schools(
    links: &LinkStore,
    app: &App,
    brins: &[String],
    activate: bool,
    by: &Actor,
) -> Result<Vec<(String, SchoolChange)>, OpError> {
    let parsed = brins
        .iter()
        .map(|b| parse_brin(b))
        .collect::<Result<Vec<_>, _>>()
        .map_err(OpError::Invalid)?;
    let in_config = |brin: &str| {
        app.identity
            .schools
            .iter()
            .any(|s| s == "*" || s.eq_ignore_ascii_case(brin))
    };
    let mut done = Vec::with_capacity(parsed.len());
    for brin in parsed {
        let changed = if activate {
            links.activate_school(&app.name, &brin, by.as_str()).await?
        } else {
            links.deactivate_school(&app.name, &brin).await?
        };
        let change = match (changed, activate) {
            (true, true) => SchoolChange::Activated,
            (true, false) => SchoolChange::Deactivated,
            (false, true) => SchoolChange::AlreadyActivated,
            (false, false) if in_config(&brin) => SchoolChange::InConfig,
            (false, false) => SchoolChange::NotActivated,
        };
        if changed {
            tracing::info!(
                target: "audit",
                event = if activate { "school_activated" } else { "school_deactivated" },
                app = app.name,
                school = brin,
                by = by.as_str(),
                "school {}",
                if activate { "activated" } else { "deactivated" }
            );
        }
        done.push((brin, change));
    }
    Ok(done)
}

/// An app's links by person code or by federated id (one of the two).
pub async fn find_links(
    links: &LinkStore,
    app: &App,
    person_code: Option<&str>,
    federated_id: Option<&str>,
) -> Result<Vec<Link>, OpError> {
    fn clean(v: Option<&str>) -> Option<&str> {
        v.map(str::trim).filter(|v| !v.is_empty())
    }
    match (clean(person_code), clean(federated_id)) {
        (Some(code), None) => Ok(links.list_by_person_code(&app.name, code).await?),
        (None, Some(id)) => Ok(links.list(Some(&app.name), Some(id)).await?),
        _ => Err(OpError::Invalid(
            "give exactly one of person_code and federated_id".into(),
        )),
    }
}

/// Removes the link of `federated_id` in `app`: `false` when there was none.
pub async fn remove_link(
    links: &LinkStore,
    pseudonyms: &Pseudonyms,
    app: &App,
    federated_id: &str,
    by: &Actor,
) -> Result<bool, OpError> {
    let removed = links.remove(&app.name, federated_id).await?;
    if removed {
        tracing::info!(
            target: "audit",
            event = "link_removed",
            app = app.name,
            federated = pseudonyms.of(federated_id),
            by = by.as_str(),
            "link removed"
        );
    }
    Ok(removed)
}

/// A line of an import file that was not used, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineProblem {
    pub line: usize,
    pub why: String,
}

/// What an import did, or would do: the same report on the command line, the API and the pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Whether anything was written (false for a dry run, and for a file with invalid lines
    /// imported without `skip_invalid`).
    pub written: bool,
    pub dry_run: bool,
    /// The file has invalid lines and `skip_invalid` was not given: nothing was written.
    pub blocked_by_invalid_lines: bool,
    pub added: usize,
    pub unchanged: usize,
    /// Lines that correct an earlier import's code.
    pub changed: Vec<usize>,
    pub conflicting: Vec<LineProblem>,
    pub invalid: Vec<LineProblem>,
}

/// How an import is asked for: the `links import` options.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub format: Format,
    pub dry_run: bool,
    pub skip_invalid: bool,
}

impl ImportOptions {
    /// From the options as typed (`--format`, `--code-column`, or the API's query).
    pub fn parse(format: &str, code_column: Option<&str>, dry_run: bool, skip_invalid: bool) -> Result<Self, OpError> {
        Ok(ImportOptions {
            format: Format::parse(format, code_column).map_err(OpError::Invalid)?,
            dry_run,
            skip_invalid,
        })
    }
}

/// Imports a link file (`source` names it in the audit trail). By default a file with
/// invalid lines changes nothing: the admin fixes it first (or skips them knowingly).
pub async fn import_links(
    links: &LinkStore,
    app: &App,
    bytes: axum::body::Bytes,
    options: &ImportOptions,
    source: &str,
    by: &Actor,
) -> Result<ImportReport, OpError> {
    // Parsing is CPU work linear in the file (up to the listener's 16 MiB): off the async
    // workers, which also answer the public port.
    let format = options.format;
    let parsed = tokio::task::spawn_blocking(move || import::parse(&bytes, format))
        .await
        .map_err(|e| OpError::Invalid(format!("{source}: the file could not be read: {e}")))?
        .map_err(|e| OpError::Invalid(format!("{source}: {e}")))?;
    let blocked = !parsed.invalid.is_empty() && !options.skip_invalid;
    let write = !options.dry_run && !blocked;
    let outcome = links.import(&app.name, &parsed.entries, !write).await?;
    if write {
        tracing::info!(
            target: "audit",
            event = "links_imported",
            app = app.name,
            file = source,
            added = outcome.added.len(),
            changed = outcome.changed.len(),
            by = by.as_str(),
            "links imported"
        );
    }
    let problems = |v: Vec<(usize, String)>| v.into_iter().map(|(line, why)| LineProblem { line, why }).collect();
    Ok(ImportReport {
        written: write,
        dry_run: options.dry_run,
        blocked_by_invalid_lines: blocked,
        added: outcome.added.len(),
        unchanged: outcome.unchanged.len(),
        changed: outcome.changed,
        conflicting: problems(outcome.conflicting),
        invalid: problems(parsed.invalid),
    })
}

/// A reference as the error page shows it (hex), lower-cased; `None` when it cannot be one.
pub fn parse_reference(value: &str) -> Option<String> {
    let reference = value.trim().to_ascii_lowercase();
    let ok = !reference.is_empty() && reference.len() <= 64 && reference.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then_some(reference)
}

/// The failure report under `reference`.
pub async fn report(links: &LinkStore, reference: &str) -> Result<Option<FailureReport>, OpError> {
    let reference =
        parse_reference(reference).ok_or_else(|| OpError::Invalid(format!("{reference:?} is not a reference")))?;
    Ok(links.failure_report(&reference).await?)
}

/// Unix seconds as the desk reads them.
pub fn readable_time(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| unix.to_string())
}
