//! Durable account links: (app, federated id) -> person code, in SQLite (one file, WAL) or
//! PostgreSQL, through one implementation on sqlx's `Any` driver so both behave the same.
//! Every write is one transaction; the primary key (app, federated_id) makes a link unique.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

/// How a link came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkSource {
    /// The student linked an existing app account on first login.
    Linked,
    /// From an import (a Magister migratiehulpbestand or a CSV).
    Imported,
    /// Made by an admin.
    Admin,
}

impl LinkSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkSource::Linked => "linked",
            LinkSource::Imported => "imported",
            LinkSource::Admin => "admin",
        }
    }
}

impl FromStr for LinkSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "linked" => Ok(LinkSource::Linked),
            "imported" => Ok(LinkSource::Imported),
            "admin" => Ok(LinkSource::Admin),
            other => Err(format!("unknown link source {other:?}")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Link {
    pub app: String,
    pub federated_id: String,
    pub person_code: String,
    pub source: LinkSource,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum LinkStoreError {
    #[error("the link store is unavailable: {0}")]
    Unavailable(String),
    #[error("the link store holds unexpected data: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for LinkStoreError {
    fn from(e: sqlx::Error) -> Self {
        LinkStoreError::Unavailable(e.to_string())
    }
}

/// The import's lines are identity's data (`identity::import` reads them from a Magister file);
/// the store writes them.
pub use crate::identity::import::ImportEntry;

/// What an import did (or would do, in a dry run), line numbers included.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportOutcome {
    pub added: Vec<usize>,
    pub unchanged: Vec<usize>,
    pub changed: Vec<usize>,
    /// Lines that contradict a link a student or admin made, or another line of the file.
    pub conflicting: Vec<(usize, String)>,
}

/// The other lines a conflicting import line names in its reason, at most.
const MAX_LINES_NAMED: usize = 5;

enum ImportStep {
    Added,
    Unchanged,
    Changed,
    Conflict(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// Schema versions, applied in order, each once; a version's statements run in one
/// transaction. 2: school activations ([`super::schools`]); 3: failure reports
/// ([`super::reports`]); 4: the kind of person of a link ([`super::link_affiliations`]).
const MIGRATIONS: &[(i64, &[&str])] = &[
    (
        1,
        &["CREATE TABLE IF NOT EXISTS links (
        app TEXT NOT NULL,
        federated_id TEXT NOT NULL,
        person_code TEXT NOT NULL,
        source TEXT NOT NULL CHECK (source IN ('linked', 'imported', 'admin')),
        created_at BIGINT NOT NULL,
        last_login_at BIGINT,
        PRIMARY KEY (app, federated_id)
    )"],
    ),
    (2, super::schools::MIGRATION),
    (3, super::reports::MIGRATION),
    (4, super::link_affiliations::MIGRATION),
];

#[derive(Clone)]
pub struct LinkStore {
    pub(super) pool: AnyPool,
    backend: Backend,
    /// Set once the schema is known to be current. PostgreSQL may be away when the bridge
    /// starts; the first operation after it is back migrates, and everything waits for that.
    schema_ready: std::sync::Arc<tokio::sync::OnceCell<()>>,
    /// Longest a login waits for the database.
    timeout: Duration,
}

/// The default of `links.timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

pub(super) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl LinkStore {
    /// Opens the store a config names.
    pub async fn open_target(target: &super::LinksTarget, timeout: Duration) -> Result<Self, LinkStoreError> {
        match target {
            super::LinksTarget::Sqlite(path) => Self::sqlite(path, timeout).await,
            super::LinksTarget::Postgres(url) => Self::postgres(url, timeout).await,
        }
    }

    /// Opens (creating when needed) a SQLite file, in WAL mode with full sync.
    pub async fn sqlite(path: &std::path::Path, timeout: Duration) -> Result<Self, LinkStoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| LinkStoreError::Unavailable(format!("{}: {e}", dir.display())))?;
        }
        // The Any driver parses this as a URL: a relative path's first segment would become the
        // URL's host and a following `..` would eat the rest (`config/../data` turned into
        // `config/data`). An absolute, percent-encoded file URL path avoids both.
        let absolute =
            std::path::absolute(path).map_err(|e| LinkStoreError::Unavailable(format!("{}: {e}", path.display())))?;
        let file_url = url::Url::from_file_path(&absolute)
            .map_err(|_| LinkStoreError::Unavailable(format!("{} is not a usable file path", absolute.display())))?;
        let url = format!("sqlite://{}?mode=rwc", file_url.path());
        let store = Self::open(&url, Backend::Sqlite, timeout).await?;
        // A local file that cannot be opened is a setup problem: report it at once.
        store.ensure_schema().await?;
        Ok(store)
    }

    /// Connects to PostgreSQL (`postgres://user@host/db`). An unreachable server is not an
    /// error here: the bridge starts, `/readyz` and logins that need a link answer 503, and
    /// the store connects (and migrates) by itself once the server is back.
    pub async fn postgres(url: &str, timeout: Duration) -> Result<Self, LinkStoreError> {
        let store = Self::open(url, Backend::Postgres, timeout).await?;
        if let Err(e) = store.bounded(store.ensure_schema()).await {
            tracing::warn!("the link database is not reachable yet; logins that need it answer 503 until it is: {e}");
        }
        Ok(store)
    }

    async fn open(url: &str, backend: Backend, timeout: Duration) -> Result<Self, LinkStoreError> {
        sqlx::any::install_default_drivers();
        let mut options = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            .acquire_timeout(timeout);
        if backend == Backend::Sqlite {
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;")
                        .await?;
                    Ok(())
                })
            });
        }
        let pool = match backend {
            Backend::Sqlite => options.connect(url).await?,
            Backend::Postgres => options.connect_lazy(url)?,
        };
        Ok(LinkStore {
            pool,
            backend,
            schema_ready: std::sync::Arc::new(tokio::sync::OnceCell::new()),
            timeout,
        })
    }

    /// Migrates once per process; a failed attempt is tried again by the next operation.
    pub(super) async fn ensure_schema(&self) -> Result<(), LinkStoreError> {
        self.schema_ready.get_or_try_init(|| self.migrate()).await.map(|_| ())
    }

    /// `work` within `links.timeout`: a database that does not answer becomes a 503, not a
    /// hanging login. A transaction cut off here is rolled back, never half-written.
    pub(super) async fn bounded<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, LinkStoreError>>,
    ) -> Result<T, LinkStoreError> {
        match tokio::time::timeout(self.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(LinkStoreError::Unavailable(format!(
                "the link database did not answer within {}",
                humantime::format_duration(self.timeout)
            ))),
        }
    }

    /// A transaction that will write. SQLite takes the write lock up front (BEGIN IMMEDIATE):
    /// a deferred transaction that reads first cannot wait for a busy lock and fails at once.
    pub(super) async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, LinkStoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// SQL is written with `$1` placeholders; SQLite takes them as `?1`.
    pub(super) fn sql(&self, sql: &str) -> String {
        match self.backend {
            Backend::Postgres => sql.to_string(),
            Backend::Sqlite => sql.replace('$', "?"),
        }
    }

    async fn migrate(&self) -> Result<(), LinkStoreError> {
        let mut tx = self.write_tx().await?;
        if self.backend == Backend::Postgres {
            // Instances starting together would race on CREATE TABLE (not atomic in
            // PostgreSQL); one migrates at a time. The key is arbitrary but fixed.
            tx.execute("SELECT pg_advisory_xact_lock(7351024166402)").await?;
        }
        tx.execute("CREATE TABLE IF NOT EXISTS link_schema (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
            .await?;
        for (version, ddl) in MIGRATIONS {
            let applied: Option<i64> =
                sqlx::query_scalar(&self.sql("SELECT version FROM link_schema WHERE version = $1"))
                    .bind(*version)
                    .fetch_optional(&mut *tx)
                    .await?;
            if applied.is_none() {
                for statement in *ddl {
                    tx.execute(*statement).await?;
                }
                sqlx::query(&self.sql(
                    "INSERT INTO link_schema (version, applied_at) VALUES ($1, $2) ON CONFLICT (version) DO NOTHING",
                ))
                .bind(*version)
                .bind(now())
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), LinkStoreError> {
        self.bounded(async {
            self.ensure_schema().await?;
            sqlx::query("SELECT 1").execute(&self.pool).await?;
            Ok(())
        })
        .await
    }

    /// The person code linked to (app, federated id), recording the login time.
    pub async fn person_code_for_login(&self, app: &str, federated_id: &str) -> Result<Option<String>, LinkStoreError> {
        self.bounded(async {
            self.ensure_schema().await?;
            // SQLite has one writer at a time, and most logins of a rule-based app have no
            // link: a read finds that out without queueing for the write lock. PostgreSQL
            // locks rows, so one statement there is one round trip fewer.
            if self.backend == Backend::Sqlite {
                let linked: Option<String> =
                    sqlx::query_scalar("SELECT person_code FROM links WHERE app = ?1 AND federated_id = ?2")
                        .bind(app)
                        .bind(federated_id)
                        .fetch_optional(&self.pool)
                        .await?;
                if linked.is_none() {
                    return Ok(None);
                }
            }
            let code: Option<String> =
                sqlx::query_scalar(&self.sql(
                    "UPDATE links SET last_login_at = $1 WHERE app = $2 AND federated_id = $3 RETURNING person_code",
                ))
                .bind(now())
                .bind(app)
                .bind(federated_id)
                .fetch_optional(&self.pool)
                .await?;
            Ok(code)
        })
        .await
    }

    /// Stores a link unless one exists, and returns the person code that is linked now: when
    /// two first-time links race, both callers get the winner's code.
    pub async fn link_once(
        &self,
        app: &str,
        federated_id: &str,
        person_code: &str,
        source: LinkSource,
    ) -> Result<String, LinkStoreError> {
        self.bounded(async {
            self.ensure_schema().await?;
            let mut tx = self.pool.begin().await?;
            sqlx::query(&self.sql(
                "INSERT INTO links (app, federated_id, person_code, source, created_at, last_login_at)
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (app, federated_id) DO NOTHING",
            ))
            .bind(app)
            .bind(federated_id)
            .bind(person_code)
            .bind(source.as_str())
            .bind(now())
            .execute(&mut *tx)
            .await?;
            let code: String =
                sqlx::query_scalar(&self.sql("SELECT person_code FROM links WHERE app = $1 AND federated_id = $2"))
                    .bind(app)
                    .bind(federated_id)
                    .fetch_one(&mut *tx)
                    .await?;
            tx.commit().await?;
            Ok(code)
        })
        .await
    }

    /// Applies an import in one transaction (or only reports it, with `dry_run`). Imported
    /// links may be corrected by a later import; links a student or admin made are never
    /// overwritten (reported as conflicting), and lines of the file that disagree about one
    /// federated id are all left out (conflicting): the file must say one thing.
    pub async fn import(
        &self,
        app: &str,
        entries: &[ImportEntry],
        dry_run: bool,
    ) -> Result<ImportOutcome, LinkStoreError> {
        let mut outcome = ImportOutcome::default();
        let mut codes: std::collections::HashMap<&str, Vec<&ImportEntry>> = std::collections::HashMap::new();
        for e in entries {
            codes.entry(e.federated_id.as_str()).or_default().push(e);
        }
        self.ensure_schema().await?;
        // A dry run only reads: it must not hold SQLite's write lock (logins that link wait
        // for it) for the length of a large file.
        let mut tx = if dry_run {
            self.pool.begin().await?
        } else {
            self.write_tx().await?
        };
        for e in entries {
            let same_id = &codes[e.federated_id.as_str()];
            if same_id.iter().any(|o| o.person_code != e.person_code) {
                // At most a few other lines are named: naming all of them would make the
                // report grow with the square of a hostile file's lines.
                let others: Vec<String> = same_id
                    .iter()
                    .filter(|o| o.line != e.line)
                    .take(MAX_LINES_NAMED)
                    .map(|o| o.line.to_string())
                    .collect();
                let more = (same_id.len() - 1).saturating_sub(others.len());
                let more = if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                };
                outcome.conflicting.push((
                    e.line,
                    format!(
                        "line(s) {}{more} link the same federated id to another person code",
                        others.join(", ")
                    ),
                ));
                continue;
            }
            if same_id.first().is_some_and(|first| first.line != e.line) {
                outcome.unchanged.push(e.line); // a repeat of an earlier line
                continue;
            }
            match self.import_one(&mut tx, app, e, dry_run).await? {
                ImportStep::Added => outcome.added.push(e.line),
                ImportStep::Unchanged => outcome.unchanged.push(e.line),
                ImportStep::Changed => outcome.changed.push(e.line),
                ImportStep::Conflict(why) => outcome.conflicting.push((e.line, why)),
            }
        }
        if dry_run {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(outcome)
    }

    /// One line. Writes are guarded so that a link made concurrently (a student linking
    /// during the import) is never overwritten: a guarded write that touches no row is a
    /// conflict, not an error that aborts the import.
    async fn import_one(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        app: &str,
        e: &ImportEntry,
        dry_run: bool,
    ) -> Result<ImportStep, LinkStoreError> {
        let existing: Option<AnyRow> =
            sqlx::query(&self.sql("SELECT person_code, source FROM links WHERE app = $1 AND federated_id = $2"))
                .bind(app)
                .bind(&e.federated_id)
                .fetch_optional(&mut **tx)
                .await?;
        let concurrent = || ImportStep::Conflict("the link changed while importing; run the import again".into());
        let Some(row) = existing else {
            if dry_run {
                return Ok(ImportStep::Added);
            }
            let done = sqlx::query(&self.sql(
                "INSERT INTO links (app, federated_id, person_code, source, created_at) VALUES ($1, $2, $3, 'imported', $4)
                 ON CONFLICT (app, federated_id) DO NOTHING",
            ))
            .bind(app)
            .bind(&e.federated_id)
            .bind(&e.person_code)
            .bind(now())
            .execute(&mut **tx)
            .await?;
            return Ok(if done.rows_affected() == 1 {
                ImportStep::Added
            } else {
                concurrent()
            });
        };
        let code: String = row.try_get("person_code")?;
        let source: String = row.try_get("source")?;
        if code == e.person_code {
            return Ok(ImportStep::Unchanged);
        }
        if source != LinkSource::Imported.as_str() {
            return Ok(ImportStep::Conflict(format!(
                "a {source} link to another person code exists; remove it first to change it"
            )));
        }
        if dry_run {
            return Ok(ImportStep::Changed);
        }
        let done = sqlx::query(&self.sql(
            "UPDATE links SET person_code = $1 WHERE app = $2 AND federated_id = $3 AND source = 'imported' AND person_code = $4",
        ))
        .bind(&e.person_code)
        .bind(app)
        .bind(&e.federated_id)
        .bind(&code)
        .execute(&mut **tx)
        .await?;
        Ok(if done.rows_affected() == 1 {
            ImportStep::Changed
        } else {
            concurrent()
        })
    }

    /// The person code linked to (app, federated id), read only (`verify-response`, the
    /// admin pages): unlike [`person_code_for_login`](Self::person_code_for_login) it records
    /// nothing.
    pub async fn person_code_of(&self, app: &str, federated_id: &str) -> Result<Option<String>, LinkStoreError> {
        self.bounded(async {
            self.ensure_schema().await?;
            Ok(
                sqlx::query_scalar(&self.sql("SELECT person_code FROM links WHERE app = $1 AND federated_id = $2"))
                    .bind(app)
                    .bind(federated_id)
                    .fetch_optional(&self.pool)
                    .await?,
            )
        })
        .await
    }

    /// An app's links to one person code (a person code may have several federated ids: a
    /// student who moved schools, or a wrong link the support desk is looking for).
    pub async fn list_by_person_code(&self, app: &str, person_code: &str) -> Result<Vec<Link>, LinkStoreError> {
        self.bounded(async {
            self.ensure_schema().await?;
            let rows = sqlx::query(&self.sql(
                "SELECT app, federated_id, person_code, source, created_at, last_login_at FROM links
                 WHERE app = $1 AND person_code = $2 ORDER BY federated_id",
            ))
            .bind(app)
            .bind(person_code)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(link_from_row).collect()
        })
        .await
    }

    /// Links, filtered by app and/or federated id, in a stable order.
    pub async fn list(&self, app: Option<&str>, federated_id: Option<&str>) -> Result<Vec<Link>, LinkStoreError> {
        self.ensure_schema().await?;
        let rows = sqlx::query(&self.sql(
            "SELECT app, federated_id, person_code, source, created_at, last_login_at FROM links
             WHERE ($1 = '' OR app = $1) AND ($2 = '' OR federated_id = $2) ORDER BY app, federated_id",
        ))
        .bind(app.unwrap_or(""))
        .bind(federated_id.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(link_from_row).collect()
    }

    /// Removes a link; `false` when there was none.
    pub async fn remove(&self, app: &str, federated_id: &str) -> Result<bool, LinkStoreError> {
        self.ensure_schema().await?;
        let done = sqlx::query(&self.sql("DELETE FROM links WHERE app = $1 AND federated_id = $2"))
            .bind(app)
            .bind(federated_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn link_from_row(row: &AnyRow) -> Result<Link, LinkStoreError> {
    let source: String = row.try_get("source")?;
    Ok(Link {
        app: row.try_get("app")?,
        federated_id: row.try_get("federated_id")?,
        person_code: row.try_get("person_code")?,
        source: source.parse().map_err(LinkStoreError::Corrupt)?,
        created_at: row.try_get("created_at")?,
        last_login_at: row.try_get("last_login_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_relative_sqlite_path_with_dotdot_opens() {
        // The demo config names `../data/demo/links.sqlite3` relative to config/.
        // The first segment followed by `..` is what a URL parser mangles.
        let dir = format!("target/test-links-{}", crate::keys::random_token());
        let path = std::path::PathBuf::from(format!("target/../{dir}/with space/links.sqlite3"));
        let store = LinkStore::sqlite(&path, DEFAULT_TIMEOUT).await.expect("opens");
        assert_eq!(store.link_once("a", "f", "c", LinkSource::Admin).await.unwrap(), "c");
        store.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
