//! The kind of person (`student`, `employee`) behind each link, recorded when the student
//! links the account, so that one person code linked to both kinds is seen: at the next
//! link (a warning, or a refusal where the app asks for it) and in `links list`.

use sqlx::Row;

use super::links::{LinkStore, LinkStoreError};

/// Schema version 4: the column (empty for links made before it, and for imported ones).
pub const MIGRATION: &[&str] = &["ALTER TABLE links ADD COLUMN affiliation TEXT"];

impl LinkStore {
    /// The kinds of person of the other federated ids linked to `person_code` in `app`.
    pub async fn affiliations_linked_to(
        &self,
        app: &str,
        person_code: &str,
        except_federated_id: &str,
    ) -> Result<Vec<Option<String>>, LinkStoreError> {
        self.bounded(async {
            self.ensure_schema().await?;
            let rows = sqlx::query(
                &self.sql("SELECT affiliation FROM links WHERE app = $1 AND person_code = $2 AND federated_id <> $3"),
            )
            .bind(app)
            .bind(person_code)
            .bind(except_federated_id)
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    r.try_get::<Option<String>, _>("affiliation")
                        .map_err(LinkStoreError::from)
                })
                .collect()
        })
        .await
    }

    /// Records the kind of person of a link.
    pub async fn set_affiliation(
        &self,
        app: &str,
        federated_id: &str,
        affiliation: &str,
    ) -> Result<(), LinkStoreError> {
        self.bounded(async {
            self.ensure_schema().await?;
            sqlx::query(&self.sql("UPDATE links SET affiliation = $1 WHERE app = $2 AND federated_id = $3"))
                .bind(affiliation)
                .bind(app)
                .bind(federated_id)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
        .await
    }

    /// (app, federated id) -> kind of person, of the links that have one, optionally of one app.
    pub async fn affiliations(&self, app: Option<&str>) -> Result<Vec<(String, String, String)>, LinkStoreError> {
        self.ensure_schema().await?;
        let rows = sqlx::query(&self.sql(
            "SELECT app, federated_id, affiliation FROM links
             WHERE ($1 = '' OR app = $1) AND affiliation IS NOT NULL ORDER BY app, federated_id",
        ))
        .bind(app.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("app")?, r.try_get("federated_id")?, r.try_get("affiliation")?)))
            .collect()
    }
}
