//! The outbox: events written with each change, waiting to be published.

use sqlx::Row;

use super::Store;
use crate::domain::time::stamp;
use crate::error::Result;

/// An event waiting in the outbox.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    /// The event id (the outbox row id): consumers de-duplicate on it.
    pub id: i64,
    /// When the change was committed.
    pub at: String,
    /// Event type, e.g. `nonconformity.logged`.
    pub event_type: String,
    /// The record changed.
    pub record_ref: String,
    /// The change (JSON).
    pub payload: String,
}

impl Store {
    /// Up to `limit` unpublished events, oldest first.
    pub async fn pending_events(&self, limit: i64) -> Result<Vec<OutboxEvent>> {
        let rows = sqlx::query(
            "SELECT id, at, event_type, record_ref, payload FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OutboxEvent {
                    id: r.try_get(0)?,
                    at: r.try_get(1)?,
                    event_type: r.try_get(2)?,
                    record_ref: r.try_get(3)?,
                    payload: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Marks these events as published.
    pub async fn mark_published(&self, ids: &[i64]) -> Result<()> {
        let mut w = self.begin_write().await?;
        let now = stamp(w.now());
        for id in ids {
            sqlx::query("UPDATE outbox SET published_at = $1 WHERE id = $2")
                .bind(&now)
                .bind(*id)
                .execute(&mut **w.tx())
                .await?;
        }
        w.commit().await
    }

    /// How many events wait to be published.
    pub async fn outbox_backlog(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL").fetch_one(self.pool()).await?;
        Ok(row.try_get(0)?)
    }
}
