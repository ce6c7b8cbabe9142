//! Group commit on SQLite: concurrent writes share one transaction and one fsync.
//!
//! SQLite has one writer at a time and `synchronous=FULL` makes each commit wait for the disk,
//! so one transaction per write caps writes at the disk's sync rate. Here the process's one
//! writer connection (native, see [`super::sql`]) keeps a batch (a transaction) open; a write
//! takes its turn in it, runs inside a savepoint of its own, and releases it. If other writes
//! are queued, the batch passes to them and the write waits; the last write of the queue
//! commits the batch for everyone. Nobody is told "done" before the batch is on disk, and a
//! failed write rolls back to its savepoint without touching the others. Every write that
//! finishes its turn also queues once more: if the batch is still open when its turn comes (a
//! queued write was cancelled), it commits the batch itself.
//!
//! Statements run in the writing task; only `BEGIN` (which may wait for another process's
//! lock) and `COMMIT` (the fsync) run on a blocking thread, once per batch.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::{Mutex, OwnedMutexGuard, watch};

use crate::error::{Error, Result};

/// Most writes committed in one transaction (bounds the wait of the first).
const MAX_MEMBERS: usize = 64;

/// What became of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Pending,
    Committed,
    Failed,
}

/// The open transaction and the writes done in it.
struct Batch {
    id: u64,
    members: usize,
    done: watch::Sender<Outcome>,
}

/// The writer connection and its open batch, if any.
struct Writer {
    conn: rusqlite::Connection,
    batch: Option<Batch>,
}

impl Writer {
    /// Rolls the whole batch back and tells its members.
    fn roll_back(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        if let Some(batch) = self.batch.take() {
            batch.done.send_replace(Outcome::Failed);
        }
    }
}

/// The writers of one SQLite database in this process.
pub(super) struct Group {
    writer: Arc<Mutex<Writer>>,
    /// Writes waiting for their turn.
    waiting: AtomicUsize,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group").field("waiting", &self.waiting.load(Ordering::Relaxed)).finish_non_exhaustive()
    }
}

/// Counts a write as waiting for as long as it is (also if its future is dropped).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Waiting(counter)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs `f` on the writer on a blocking thread. The writer goes with it, so a caller that
/// stops waiting cannot leave the connection half-way: `f` finishes and releases it.
async fn blocking<T: Send + 'static>(
    mut writer: OwnedMutexGuard<Writer>,
    f: impl FnOnce(&mut Writer) -> T + Send + 'static,
) -> Result<(OwnedMutexGuard<Writer>, T)> {
    tokio::task::spawn_blocking(move || {
        let out = f(&mut writer);
        (writer, out)
    })
    .await
    .map_err(|e| Error::Internal(format!("the SQLite writer's thread failed: {e}")))
}

/// Commits the writer's batch on a blocking thread and tells its members.
fn commit(writer: OwnedMutexGuard<Writer>) {
    tokio::task::spawn_blocking(move || {
        let mut writer = writer;
        let Some(batch) = writer.batch.take() else { return };
        match writer.conn.execute_batch("COMMIT") {
            Ok(()) => {
                batch.done.send_replace(Outcome::Committed);
            }
            Err(e) => {
                tracing::warn!(error = %e, writes = batch.members, "group commit failed; no write of the batch is kept");
                writer.batch = Some(batch);
                writer.roll_back();
            }
        }
    });
}

impl Group {
    /// Opens the process's writer connection to the SQLite database `file` (already migrated).
    pub(super) fn open(file: &Path) -> rusqlite::Result<Group> {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = rusqlite::Connection::open_with_flags(file, flags)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
        )?;
        conn.set_prepared_statement_cache_capacity(128);
        Ok(Group {
            writer: Arc::new(Mutex::new(Writer { conn, batch: None })),
            waiting: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
        })
    }

    /// Waits for this write's turn: joins the open batch, or opens one.
    pub(super) async fn turn(self: &Arc<Self>) -> Result<Turn> {
        let mut writer = {
            let _waiting = Waiting::new(&self.waiting);
            self.writer.clone().lock_owned().await
        };
        if writer.batch.is_none() {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let began;
            (writer, began) = blocking(writer, move |w| {
                w.conn.execute_batch("BEGIN IMMEDIATE")?;
                w.batch = Some(Batch { id, members: 0, done: watch::Sender::new(Outcome::Pending) });
                Ok::<_, rusqlite::Error>(())
            })
            .await?;
            began?;
        }
        if let Err(e) = writer.conn.execute_batch("SAVEPOINT member") {
            if writer.batch.as_ref().is_some_and(|b| b.members == 0) {
                writer.roll_back();
            }
            return Err(e.into());
        }
        Ok(Turn { writer: Some(writer), group: self.clone() })
    }

    /// After a write: commit the batch now (true), or leave it open for the next queued write.
    fn pass_on(&self, writer: OwnedMutexGuard<Writer>) -> bool {
        let members = writer.batch.as_ref().map_or(0, |b| b.members);
        let now = self.waiting.load(Ordering::SeqCst) == 0 || members >= MAX_MEMBERS;
        if now {
            commit(writer);
        }
        now
    }

    /// A write that ended without committing: undo its part, keep the others'. The batch
    /// stays open for the writes already in it, each of which queues to commit it.
    fn abandon(&self, mut writer: OwnedMutexGuard<Writer>) {
        if writer.conn.execute_batch("ROLLBACK TO member; RELEASE member").is_err() {
            tracing::warn!("a write could not be undone alone; its batch is rolled back");
            writer.roll_back();
        } else if writer.batch.as_ref().is_some_and(|b| b.members == 0) {
            // Nothing to keep: release SQLite's writer lock rather than wait for a writer.
            writer.roll_back();
        }
    }
}

/// One write's turn in the open batch. Dropped without [`Turn::commit`], its changes are
/// rolled back.
pub(super) struct Turn {
    writer: Option<OwnedMutexGuard<Writer>>,
    group: Arc<Group>,
}

impl Turn {
    /// The writer connection, inside the batch's transaction.
    pub(super) fn conn(&mut self) -> &mut rusqlite::Connection {
        &mut self.writer.as_mut().expect("a turn holds the writer until it ends").conn
    }

    /// Keeps this write and returns once the batch holding it is on disk.
    pub(super) async fn commit(mut self) -> Result<()> {
        let mut writer = self.writer.take().expect("a turn ends once");
        if let Err(e) = writer.conn.execute_batch("RELEASE member") {
            self.group.abandon(writer);
            return Err(e.into());
        }
        let batch = writer.batch.as_mut().expect("a turn runs in a batch");
        batch.members += 1;
        let id = batch.id;
        let mut done = batch.done.subscribe();
        if !self.group.pass_on(writer) && *done.borrow() == Outcome::Pending {
            // Queue once more: if the batch is still open on our turn, nobody else will close it.
            let writer = self.group.writer.clone().lock_owned().await;
            if writer.batch.as_ref().is_some_and(|b| b.id == id) {
                commit(writer);
            }
        }
        match done.wait_for(|o| *o != Outcome::Pending).await.map(|o| *o) {
            Ok(Outcome::Committed) => Ok(()),
            _ => Err(Error::Unavailable),
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take() {
            self.group.abandon(writer);
        }
    }
}
