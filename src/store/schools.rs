//! School activations kept as data, in the link store's database: `entree-bridge schools`
//! and the admin API write them, and every instance reads them all into a
//! [`SchoolActivations`] snapshot every [`REFRESH_INTERVAL`] ([`ActivationCache`]), so a login
//! asks no query and a change is in force everywhere within seconds.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;

use super::links::{now, LinkStore, LinkStoreError};
use crate::identity::SchoolActivations;

/// Migration 2 of the link store.
pub(super) const MIGRATION: &[&str] = &["CREATE TABLE IF NOT EXISTS school_activations (
        app TEXT NOT NULL,
        brin TEXT NOT NULL,
        activated_by TEXT NOT NULL,
        activated_at BIGINT NOT NULL,
        PRIMARY KEY (app, brin)
    )"];

/// How often an instance reads the activations again: a change made anywhere is in force
/// on every instance within this (plus one query's time), well inside the 10 s promised.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// One activation as `schools list` and the admin API show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Activation {
    pub app: String,
    pub brin: String,
    /// Who activated it: the admin token's name, or `shell:USER`.
    pub activated_by: String,
    pub activated_at: i64,
}

impl LinkStore {
    /// Activates `brin` for `app`; `false` when it was active already (nothing changes).
    pub async fn activate_school(&self, app: &str, brin: &str, by: &str) -> Result<bool, LinkStoreError> {
        self.bounded(async {
            self.ensure_schema().await?;
            let done = sqlx::query(&self.sql(
                "INSERT INTO school_activations (app, brin, activated_by, activated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (app, brin) DO NOTHING",
            ))
            .bind(app)
            .bind(brin)
            .bind(by)
            .bind(now())
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    /// Removes an activation the database holds; `false` when it held none.
    pub async fn deactivate_school(&self, app: &str, brin: &str) -> Result<bool, LinkStoreError> {
        self.bounded(async {
            self.ensure_schema().await?;
            let done = sqlx::query(&self.sql("DELETE FROM school_activations WHERE app = $1 AND brin = $2"))
                .bind(app)
                .bind(brin)
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected() > 0)
        })
        .await
    }

    /// The activations of `app` (every app's with `None`), in a stable order.
    pub async fn activations(&self, app: Option<&str>) -> Result<Vec<Activation>, LinkStoreError> {
        self.bounded(async {
            self.ensure_schema().await?;
            let rows = sqlx::query(&self.sql(
                "SELECT app, brin, activated_by, activated_at FROM school_activations
                 WHERE ($1 = '' OR app = $1) ORDER BY app, brin",
            ))
            .bind(app.unwrap_or(""))
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(Activation {
                        app: r.try_get("app")?,
                        brin: r.try_get("brin")?,
                        activated_by: r.try_get("activated_by")?,
                        activated_at: r.try_get("activated_at")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(Into::into)
        })
        .await
    }

    /// Every activation, as the snapshot logins read.
    pub async fn school_activations(&self) -> Result<SchoolActivations, LinkStoreError> {
        let all = self.activations(None).await?;
        Ok(SchoolActivations::from_rows(all.into_iter().map(|a| (a.app, a.brin))))
    }
}

/// The activations in force on this instance: the last snapshot read from the database.
/// When the database is away the last one stays in force (a school activated before keeps
/// working); before the first read, only the config's `schools` admit anyone.
#[derive(Default)]
pub struct ActivationCache {
    current: arc_swap::ArcSwap<SchoolActivations>,
}

impl ActivationCache {
    pub fn snapshot(&self) -> Arc<SchoolActivations> {
        self.current.load_full()
    }

    /// Reads the activations again now (after a change made on this instance, and on the
    /// schedule of [`keep_fresh`]).
    pub async fn refresh(&self, links: &LinkStore) -> Result<(), LinkStoreError> {
        let fresh = links.school_activations().await?;
        if *self.current.load_full() != fresh {
            tracing::info!(activations = fresh.len(), "school activations changed");
        }
        self.current.store(Arc::new(fresh));
        Ok(())
    }
}

/// Refreshes `cache` every [`REFRESH_INTERVAL`] for as long as the process runs; a failed
/// read is logged once until reads work again.
pub async fn keep_fresh(cache: Arc<ActivationCache>, links: LinkStore) {
    let mut failing = false;
    let mut ticks = tokio::time::interval(REFRESH_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match cache.refresh(&links).await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("school activations are read from the link database again");
            }
            Ok(()) => {}
            Err(e) if !failing => {
                failing = true;
                tracing::warn!("cannot read the school activations (the last ones read stay in force): {e}");
            }
            Err(_) => {}
        }
    }
}
