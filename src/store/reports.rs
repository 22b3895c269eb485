//! Failure reports: for each failed login, what the support desk needs to answer "why did my
//! login with reference 04d318e1 fail" from any instance: the error code, app, school, time and
//! the check list (`verify-response --json`'s `checks`), under the reference on the error
//! page. Pseudonymous: a person appears only as the keyed pseudonym the logs use. Kept for
//! `support.retention` ([`purge_reports`](LinkStore::purge_reports) on a schedule), and at most
//! `support.max_reports_per_hour` a clock hour over all instances, so a flood of failures
//! cannot fill the disk.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use sqlx::Row;

use super::links::{now, LinkStore, LinkStoreError};

/// Migration 3 of the link store.
pub(super) const MIGRATION: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS failure_reports (
        reference TEXT PRIMARY KEY,
        created_at BIGINT NOT NULL,
        app TEXT NOT NULL,
        code TEXT NOT NULL,
        status BIGINT NOT NULL,
        message TEXT NOT NULL,
        school TEXT,
        person TEXT,
        instance TEXT NOT NULL,
        checks TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS failure_reports_created_at ON failure_reports (created_at)",
];

/// The longest text of one field of a report (a message or a check's detail may quote what
/// the request sent): reports stay small whatever a hostile request carries.
pub const MAX_FIELD_CHARS: usize = 500;
/// Checks kept per report (a validation records about twenty).
pub const MAX_CHECKS: usize = 64;

/// One check of a failed login, as `verify-response --json` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReportCheck {
    pub check: String,
    pub ok: bool,
    pub detail: String,
}

/// What is kept of one failed login.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FailureReport {
    /// The reference on the error page (and in the log line).
    pub reference: String,
    /// Unix seconds.
    pub created_at: i64,
    /// The app's config name.
    pub app: String,
    /// The stable error code (docs/errors.md).
    pub code: String,
    pub status: u16,
    /// The log line's message: what went wrong, for the admin.
    pub message: String,
    /// The BRIN the assertion named, when validation got that far.
    pub school: Option<String>,
    /// The keyed pseudonym (`p:…`) of the federated id, as the logs name the person.
    pub person: Option<String>,
    /// The host that served the failed request.
    pub instance: String,
    pub checks: Vec<ReportCheck>,
}

/// Cuts `text` to [`MAX_FIELD_CHARS`] characters (on a character boundary), marking the cut.
pub fn bounded_text(text: &str) -> String {
    match text.char_indices().nth(MAX_FIELD_CHARS) {
        None => text.to_string(),
        Some((at, _)) => format!("{}…", &text[..at]),
    }
}

impl FailureReport {
    /// The report with every field within its bound.
    fn bounded(&self) -> FailureReport {
        let mut r = self.clone();
        r.message = bounded_text(&r.message);
        r.school = r.school.as_deref().map(bounded_text);
        r.checks.truncate(MAX_CHECKS);
        for c in &mut r.checks {
            c.check = bounded_text(&c.check);
            c.detail = bounded_text(&c.detail);
        }
        r
    }
}

/// What became of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    Kept,
    /// This hour's reports are spent: the report was counted, not stored.
    OverBudget,
}

impl LinkStore {
    /// Stores `report` unless `max_per_hour` reports of this clock hour are stored already
    /// (by any instance): one statement, so instances racing at the bound overshoot by at
    /// most one each.
    pub async fn keep_report(&self, report: &FailureReport, max_per_hour: u64) -> Result<Kept, LinkStoreError> {
        let r = report.bounded();
        let checks = serde_json::to_string(&r.checks).map_err(|e| LinkStoreError::Corrupt(e.to_string()))?;
        let hour_start = r.created_at - r.created_at.rem_euclid(3600);
        self.bounded(async {
            self.ensure_schema().await?;
            let done = sqlx::query(&self.sql(
                "INSERT INTO failure_reports (reference, created_at, app, code, status, message, school, person, instance, checks)
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10
                 WHERE (SELECT COUNT(*) FROM failure_reports WHERE created_at >= $11) < $12
                 ON CONFLICT (reference) DO NOTHING",
            ))
            .bind(&r.reference)
            .bind(r.created_at)
            .bind(&r.app)
            .bind(&r.code)
            .bind(i64::from(r.status))
            .bind(&r.message)
            .bind(r.school.as_deref())
            .bind(r.person.as_deref())
            .bind(&r.instance)
            .bind(checks)
            .bind(hour_start)
            .bind(i64::try_from(max_per_hour).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await?;
            Ok(if done.rows_affected() == 1 { Kept::Kept } else { Kept::OverBudget })
        })
        .await
    }

    /// The report kept under `reference`, if any (and not purged).
    pub async fn failure_report(&self, reference: &str) -> Result<Option<FailureReport>, LinkStoreError> {
        self.bounded(async {
            self.ensure_schema().await?;
            let row = sqlx::query(&self.sql(
                "SELECT reference, created_at, app, code, status, message, school, person, instance, checks
                 FROM failure_reports WHERE reference = $1",
            ))
            .bind(reference)
            .fetch_optional(&self.pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let checks: String = row.try_get("checks")?;
            let status: i64 = row.try_get("status")?;
            Ok(Some(FailureReport {
                reference: row.try_get("reference")?,
                created_at: row.try_get("created_at")?,
                app: row.try_get("app")?,
                code: row.try_get("code")?,
                status: u16::try_from(status).unwrap_or(0),
                message: row.try_get("message")?,
                school: row.try_get("school")?,
                person: row.try_get("person")?,
                instance: row.try_get("instance")?,
                checks: serde_json::from_str(&checks).map_err(|e| LinkStoreError::Corrupt(e.to_string()))?,
            }))
        })
        .await
    }

    /// Removes the reports made before `before` (unix seconds); returns how many.
    pub async fn purge_reports(&self, before: i64) -> Result<u64, LinkStoreError> {
        self.bounded(async {
            self.ensure_schema().await?;
            let done = sqlx::query(&self.sql("DELETE FROM failure_reports WHERE created_at < $1"))
                .bind(before)
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected())
        })
        .await
    }
}

/// Where failed logins leave their reports: the link store, the hour's bound, and counts for
/// `/metrics`. Once the database says this hour is spent, the instance stops asking until
/// the next hour: a flood then costs no query per request.
#[derive(Debug, Default)]
pub struct ReportCounts {
    pub kept: AtomicU64,
    pub over_budget: AtomicU64,
    pub failed: AtomicU64,
    pub purged: AtomicU64,
    /// The clock hour (unix seconds / 3600) whose budget this instance saw spent.
    spent_hour: AtomicI64,
    /// Reports on their way to the database now: a flood of cheap failures (a POST to the
    /// ACS without RelayState) must not queue thousands of writes before the hour's bound
    /// is even seen.
    in_flight: std::sync::atomic::AtomicUsize,
}

/// The most reports one instance writes at a time; beyond it a report is counted, not kept.
pub const MAX_IN_FLIGHT: usize = 32;

impl ReportCounts {
    /// Whether this hour's budget is known to be spent (no query needed to refuse).
    pub fn hour_spent(&self, at: i64) -> bool {
        self.spent_hour.load(Ordering::Relaxed) == at.div_euclid(3600)
    }

    /// Keeps `report` in `links` within `max_per_hour`, counting what became of it.
    pub async fn keep(&self, links: &LinkStore, report: &FailureReport, max_per_hour: u64) {
        if self.hour_spent(report.created_at) {
            self.over_budget.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.in_flight.fetch_add(1, Ordering::Relaxed) >= MAX_IN_FLIGHT {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            self.over_budget.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let kept = links.keep_report(report, max_per_hour).await;
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        match kept {
            Ok(Kept::Kept) => {
                self.kept.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Kept::OverBudget) => {
                if self
                    .spent_hour
                    .swap(report.created_at.div_euclid(3600), Ordering::Relaxed)
                    != report.created_at.div_euclid(3600)
                {
                    tracing::warn!(
                        max_per_hour,
                        "this hour's failure reports are spent (support.max_reports_per_hour): further failures are counted, not kept, until the hour ends"
                    );
                }
                self.over_budget.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(reference = report.reference, "failure report not kept: {e}");
            }
        }
    }
}

/// How often the reports older than the retention are removed.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(600);

/// Purges the reports older than the retention (`retention()`: the config in force's) now
/// and every [`PURGE_INTERVAL`], counting them.
pub async fn purge_on_schedule(
    links: LinkStore,
    counts: std::sync::Arc<ReportCounts>,
    retention: impl Fn() -> Duration + Send + 'static,
) {
    let mut ticks = tokio::time::interval(PURGE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let before = now() - i64::try_from(retention().as_secs()).unwrap_or(i64::MAX);
        match links.purge_reports(before).await {
            Ok(0) => {}
            Ok(n) => {
                counts.purged.fetch_add(n, Ordering::Relaxed);
                tracing::info!(purged = n, "failure reports past support.retention removed");
            }
            Err(e) => tracing::warn!("cannot purge failure reports: {e}"),
        }
    }
}
