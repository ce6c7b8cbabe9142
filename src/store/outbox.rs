//! The outbox: events written with each change, kept in commit order. The relay publishes
//! them to Redis; the live feed tails them for WebSocket subscribers.

use std::fs::TryLockError;
use std::path::Path;

use sqlx::{Any, Transaction};

use super::sql::{Cells, Conn, args};
use super::{Backend, Store};
use crate::domain::time::stamp;
use crate::error::{Error, Result};

/// The advisory lock key that makes one relay at a time publish on PostgreSQL.
const RELAY_LOCK: i64 = 0x1535_0001;

/// Appended to the resolved path of an SQLite database: the file whose lock lets one relay at a
/// time publish.
const RELAY_LOCK_SUFFIX: &str = "-relay-lock";

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

/// The relay's lock on the outbox: held while a batch is published and marked, so replicas
/// sharing one database neither publish an event twice nor out of order.
enum RelayLock {
    /// SQLite: an exclusive lock on a file beside the database, which the system releases when
    /// the file is closed, also when the process dies. The writer is not held: writes go on
    /// while Redis is slow, and the relay reads only committed events.
    Sqlite(std::fs::File, Store),
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
            RelayLock::Sqlite(lock, store) => {
                let mut w = store.begin_write().await?;
                w.conn().execute(sql, args![now, first, last]).await?;
                w.commit().await?;
                drop(lock);
                Ok(())
            }
            RelayLock::Postgres(mut tx) => {
                Conn::Any(&mut tx).execute(sql, args![now, first, last]).await?;
                tx.commit().await?;
                Ok(())
            }
        }
    }
}

/// Takes the relay lock of the SQLite database `file`: `None` when another relay holds it.
/// The lock file sits beside the file the path resolves to, as SQLite's own `-wal` does, so
/// replicas naming one database through different links share one lock.
fn lock_sqlite_relay(file: &Path) -> Result<Option<std::fs::File>> {
    let cannot = |e: std::io::Error| {
        tracing::error!(error = %e, database = %file.display(), "cannot take the relay lock");
        Error::Internal(format!("cannot take the relay lock: {e}"))
    };
    let mut path = std::fs::canonicalize(file).map_err(cannot)?.into_os_string();
    path.push(RELAY_LOCK_SUFFIX);
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let lock = options.open(&path).map_err(cannot)?;
    match lock.try_lock() {
        Ok(()) => Ok(Some(lock)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(cannot(e)),
    }
}

impl Store {
    /// Claims up to `limit` unpublished, committed events, oldest first. `None` when another
    /// relay holds the claim (another replica on the same database).
    pub async fn claim_pending(&self, limit: i64) -> Result<Option<Claimed>> {
        let pending = format!("{COLUMNS} WHERE published_at IS NULL ORDER BY id LIMIT $1");
        let (lock, rows) = match self.backend {
            Backend::Sqlite => {
                let file = self.sqlite_file.as_deref().expect("an SQLite store has a file");
                let Some(lock) = lock_sqlite_relay(file)? else { return Ok(None) };
                // A reader sees only committed batches, whose events come before any
                // uncommitted one: the writer appends them in commit order.
                let rows = self.read().await?.conn().fetch_all(&pending, args![limit]).await?;
                (RelayLock::Sqlite(lock, self.clone()), rows)
            }
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                let row =
                    Conn::Any(&mut tx).fetch_one("SELECT pg_try_advisory_xact_lock($1)", args![RELAY_LOCK]).await?;
                if !row.get::<bool>(0)? {
                    return Ok(None);
                }
                let rows = Conn::Any(&mut tx).fetch_all(&pending, args![limit]).await?;
                (RelayLock::Postgres(tx), rows)
            }
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
