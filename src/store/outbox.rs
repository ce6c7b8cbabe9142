//! The outbox: events written with each change, kept in commit order. The relay publishes
//! them to Redis; the live feed tails them for WebSocket subscribers.

use sqlx::{Any, Transaction};

use super::sql::{Cells, Conn, args};
use super::{Backend, Store, Write};
use crate::domain::time::stamp;
use crate::error::Result;

/// The advisory lock key that makes one relay at a time publish on PostgreSQL.
const RELAY_LOCK: i64 = 0x1535_0001;

/// An event from the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    /// The event id (the outbox row id, increasing in commit order): consumers de-duplicate on it.
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

const COLUMNS: &str = "SELECT id, at, event_type, record_ref, payload FROM outbox";

fn event(r: &impl Cells) -> Result<OutboxEvent> {
    Ok(OutboxEvent { id: r.get(0)?, at: r.get(1)?, event_type: r.get(2)?, record_ref: r.get(3)?, payload: r.get(4)? })
}

/// The relay's lock on the outbox: held while a batch is published, so replicas sharing one
/// database neither publish an event twice nor out of order.
enum RelayLock {
    /// SQLite: the writer lock of a write transaction.
    Sqlite(Write),
    /// PostgreSQL: a transaction holding the relay's advisory lock.
    Postgres(Transaction<'static, Any>),
}

/// A batch of unpublished events, oldest first, claimed by this relay.
pub struct Claimed {
    lock: RelayLock,
    /// The events to publish.
    pub events: Vec<OutboxEvent>,
}

impl std::fmt::Debug for Claimed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claimed").field("events", &self.events.len()).finish_non_exhaustive()
    }
}

impl Claimed {
    /// Marks the batch published and releases the claim.
    pub async fn published(self) -> Result<()> {
        let Some(last) = self.events.last().map(|e| e.id) else { return Ok(()) };
        let first = self.events[0].id;
        let now = stamp(chrono::Utc::now());
        let sql = "UPDATE outbox SET published_at = $1 WHERE id BETWEEN $2 AND $3 AND published_at IS NULL";
        match self.lock {
            RelayLock::Sqlite(mut w) => {
                w.conn().execute(sql, args![now, first, last]).await?;
                w.commit().await
            }
            RelayLock::Postgres(mut tx) => {
                Conn::Any(&mut tx).execute(sql, args![now, first, last]).await?;
                tx.commit().await?;
                Ok(())
            }
        }
    }
}

impl Store {
    /// Claims up to `limit` unpublished events, oldest first. `None` when another relay
    /// holds the claim (another replica on the same PostgreSQL).
    pub async fn claim_pending(&self, limit: i64) -> Result<Option<Claimed>> {
        let pending = format!("{COLUMNS} WHERE published_at IS NULL ORDER BY id LIMIT $1");
        let lock = match self.backend {
            Backend::Sqlite => RelayLock::Sqlite(self.begin_write().await?),
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                let row =
                    Conn::Any(&mut tx).fetch_one("SELECT pg_try_advisory_xact_lock($1)", args![RELAY_LOCK]).await?;
                if !row.get::<bool>(0)? {
                    return Ok(None);
                }
                RelayLock::Postgres(tx)
            }
        };
        let mut lock = lock;
        let rows = match &mut lock {
            RelayLock::Sqlite(w) => w.conn().fetch_all(&pending, args![limit]).await?,
            RelayLock::Postgres(tx) => Conn::Any(tx).fetch_all(&pending, args![limit]).await?,
        };
        let events = rows.iter().map(event).collect::<Result<Vec<_>>>()?;
        Ok(Some(Claimed { lock, events }))
    }

    /// Up to `limit` events after event `after`, oldest first.
    pub async fn events_after(&self, after: i64, limit: i64) -> Result<Vec<OutboxEvent>> {
        let sql = format!("{COLUMNS} WHERE id > $1 ORDER BY id LIMIT $2");
        let rows = self.read().await?.conn().fetch_all(&sql, args![after, limit]).await?;
        rows.iter().map(event).collect()
    }

    /// The id of the newest event (0 when there is none).
    pub async fn latest_event_id(&self) -> Result<i64> {
        let row = self.read().await?.conn().fetch_one("SELECT COALESCE(MAX(id), 0) FROM outbox", args![]).await?;
        row.get(0)
    }

    /// How many events wait to be published.
    pub async fn outbox_backlog(&self) -> Result<i64> {
        self.count("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL").await
    }
}
