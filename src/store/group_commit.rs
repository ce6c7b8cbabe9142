//! Group commit on SQLite: concurrent writes share one transaction and one fsync.
//!
//! SQLite has one writer at a time and `synchronous=FULL` makes each commit wait for the disk,
//! so one transaction per write caps writes at the disk's sync rate. Here the process's one
//! writer connection (native, see [`super::sql`]) keeps a batch (a transaction) open; a write
//! takes its turn in it, runs inside a savepoint of its own, and releases it. If other writes
//! are queued, the batch passes to them and the write waits; the last write of the queue
//! commits the batch for everyone. Nobody is told "done" before the batch is on disk, and a
//! failed write rolls back to its savepoint without touching the others.
//!
//! The first time the writer is released with a batch still open, a closer task queues behind
//! the waiting writes: if that batch is still open on its turn (the writes meant to finish it
//! were cancelled, as when clients hang up), it commits it, or rolls it back if it holds no
//! write. So an abandoned batch never keeps SQLite's writer lock from other processes. One
//! closer per batch is enough: a later one would queue behind the first and find the batch
//! already closed. It is spawned before the writer is released, so the write woken by the
//! release runs next on that thread rather than behind the new task.
//!
//! Statements run in the writing task; only `COMMIT` (the fsync) runs on a blocking thread,
//! once per batch, and `BEGIN` when another process holds SQLite's lock (waiting for it).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, OwnedMutexGuard, watch};

use crate::error::{Error, Result};

/// Most writes committed in one transaction (bounds the wait of the first).
const MAX_MEMBERS: usize = 64;

/// How long opening a batch waits for another process's writer lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// Whether a closer has been queued for it.
    closer: bool,
    done: watch::Sender<Outcome>,
}

/// The writer connection and its open batch, if any.
struct Writer {
    conn: rusqlite::Connection,
    batch: Option<Batch>,
}

impl Writer {
    /// Opens batch `id` if SQLite's writer lock is free now; `false` if another process holds
    /// it.
    fn begin_now(&mut self, id: u64) -> Result<bool> {
        match self.conn.execute_batch("BEGIN IMMEDIATE") {
            Ok(()) => {
                self.opened(id);
                Ok(true)
            }
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::DatabaseBusy => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens batch `id`, waiting up to the busy timeout for SQLite's writer lock (blocks: call
    /// on a blocking thread).
    fn begin_waiting(&mut self, id: u64) -> rusqlite::Result<()> {
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
        let began = self.conn.execute_batch("BEGIN IMMEDIATE");
        if began.is_ok() {
            // Opened before anything else can fail, so its closer ends it on any error.
            self.opened(id);
        }
        let reset = self.conn.busy_timeout(Duration::ZERO);
        began.and(reset)
    }

    fn opened(&mut self, id: u64) {
        self.batch = Some(Batch { id, members: 0, closer: false, done: watch::Sender::new(Outcome::Pending) });
    }

    /// Rolls the whole batch back and tells its members.
    fn roll_back(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        if let Some(batch) = self.batch.take() {
            batch.done.send_replace(Outcome::Failed);
        }
    }

    /// Commits the batch and tells its members (an fsync: call on a blocking thread).
    fn commit(&mut self) {
        let Some(batch) = self.batch.take() else { return };
        match self.conn.execute_batch("COMMIT") {
            Ok(()) => {
                batch.done.send_replace(Outcome::Committed);
            }
            Err(e) => {
                tracing::warn!(error = %e, writes = batch.members, "group commit failed; no write of the batch is kept");
                self.batch = Some(batch);
                self.roll_back();
            }
        }
    }
}

/// The writer, held by one task. Released with a batch open, it queues a closer for it.
struct Held {
    writer: Option<OwnedMutexGuard<Writer>>,
    group: Arc<Group>,
}

impl Held {
    fn get(&mut self) -> &mut Writer {
        self.writer.as_mut().expect("held until released")
    }

    /// Commits the batch on a blocking thread; its members learn the outcome.
    fn commit(mut self) {
        let mut writer = self.writer.take().expect("held until released");
        tokio::task::spawn_blocking(move || writer.commit());
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let Some(mut writer) = self.writer.take() else { return };
        if let Some(batch) = writer.batch.as_mut().filter(|b| !b.closer)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            batch.closer = true;
            runtime.spawn(self.group.clone().close(batch.id));
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

impl Group {
    /// Opens the process's writer connection to the SQLite database `file` (already migrated).
    /// Refuses a database that cannot be in WAL mode: without it readers would block the
    /// writer, whose zero busy timeout would then fail commits instead of waiting.
    pub(super) fn open(file: &Path) -> std::io::Result<Group> {
        // Each write runs in a savepoint, whose undo copies of pages (the sub-journal) SQLite
        // spills to a temporary file past 64 KiB: in memory they cost no write calls.
        let conn = super::sql::open_native(
            file,
            "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;",
        )
        .map_err(std::io::Error::other)?;
        // SQLite answers with the mode now in force, the old one when it cannot switch.
        let mode: String =
            conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(std::io::Error::other)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(std::io::Error::other(format!(
                "{} stays in {mode} journal mode, but isms needs WAL mode: keep the database on a local, \
                 writable file system, with an SQLite built with WAL",
                file.display()
            )));
        }
        // Only `BEGIN` can meet another process's lock; `begin_waiting` waits for it.
        conn.busy_timeout(Duration::ZERO).map_err(std::io::Error::other)?;
        Ok(Group {
            writer: Arc::new(Mutex::new(Writer { conn, batch: None })),
            waiting: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
        })
    }

    /// Waits for this write's turn: joins the open batch, or opens one.
    pub(super) async fn turn(self: &Arc<Self>) -> Result<Turn> {
        let writer = {
            let _waiting = Waiting::new(&self.waiting);
            self.writer.clone().lock_owned().await
        };
        let mut held = Held { writer: Some(writer), group: self.clone() };
        if held.get().batch.is_none() {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            if !held.get().begin_now(id)? {
                // Another process holds SQLite's writer lock: wait for it (up to the busy
                // timeout) on a blocking thread. The writer travels there and back inside
                // `held`: if this task is cancelled meanwhile, dropping it there queues a closer
                // for the new batch.
                let began;
                (held, began) = tokio::task::spawn_blocking(move || {
                    let began = held.get().begin_waiting(id);
                    (held, began)
                })
                .await
                .map_err(|e| Error::Internal(format!("the SQLite writer's thread failed: {e}")))?;
                began?;
            }
        }
        let w = held.get();
        if let Err(e) = w.conn.execute_batch("SAVEPOINT member") {
            if w.batch.as_ref().is_some_and(|b| b.members == 0) {
                w.roll_back();
            }
            return Err(e.into());
        }
        Ok(Turn { held: Some(held), group: self.clone() })
    }

    /// Closes batch `id` if it is still open on this turn: commits its writes, or rolls it
    /// back if it has none.
    async fn close(self: Arc<Self>, id: u64) {
        let mut writer = self.writer.clone().lock_owned().await;
        match writer.batch.as_ref() {
            Some(b) if b.id == id && b.members > 0 => {
                tokio::task::spawn_blocking(move || writer.commit());
            }
            Some(b) if b.id == id => writer.roll_back(),
            _ => {}
        }
    }

    /// After a write: commit the batch now, or leave it open for the next queued write.
    fn pass_on(&self, mut held: Held) {
        let members = held.get().batch.as_ref().map_or(0, |b| b.members);
        if self.waiting.load(Ordering::SeqCst) == 0 || members >= MAX_MEMBERS {
            held.commit();
        }
    }

    /// A write that ended without committing: undo its part, keep the others'.
    fn abandon(&self, mut held: Held) {
        let w = held.get();
        if w.conn.execute_batch("ROLLBACK TO member; RELEASE member").is_err() {
            tracing::warn!("a write could not be undone alone; its batch is rolled back");
            w.roll_back();
        } else if w.batch.as_ref().is_some_and(|b| b.members == 0) {
            // Nothing to keep: release SQLite's writer lock rather than wait for a writer.
            w.roll_back();
        }
    }
}

/// One write's turn in the open batch. Dropped without [`Turn::commit`], its changes are
/// rolled back.
pub(super) struct Turn {
    held: Option<Held>,
    group: Arc<Group>,
}

impl Turn {
    /// The writer connection, inside the batch's transaction.
    pub(super) fn conn(&mut self) -> &mut rusqlite::Connection {
        &mut self.held.as_mut().expect("a turn holds the writer until it ends").get().conn
    }

    /// Keeps this write and returns once the batch holding it is on disk.
    pub(super) async fn commit(mut self) -> Result<()> {
        let mut held = self.held.take().expect("a turn ends once");
        let w = held.get();
        if let Err(e) = w.conn.execute_batch("RELEASE member") {
            self.group.abandon(held);
            return Err(e.into());
        }
        let batch = w.batch.as_mut().expect("a turn runs in a batch");
        batch.members += 1;
        let mut done = batch.done.subscribe();
        self.group.pass_on(held);
        match done.wait_for(|o| *o != Outcome::Pending).await.map(|o| *o) {
            Ok(Outcome::Committed) => Ok(()),
            _ => Err(Error::Unavailable),
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Some(held) = self.held.take() {
            self.group.abandon(held);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database that cannot be in WAL mode (here an in-memory one) is refused with the mode
    /// it stays in and what to do.
    #[test]
    fn a_database_without_wal_is_refused() {
        let refused = Group::open(Path::new(":memory:")).expect_err("an in-memory database has no WAL");
        let message = refused.to_string();
        assert!(message.contains("stays in memory journal mode"), "{message}");
        assert!(message.contains("local, writable file system"), "{message}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("isms.db");
        rusqlite::Connection::open(&file).unwrap();
        Group::open(&file).expect("a file on a local disk is put in WAL mode");
    }

    /// A batch opened while another process holds SQLite's writer lock waits for it, rather
    /// than fail at once (the writer's busy timeout is otherwise zero).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_waits_for_another_process_lock() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("isms.db");
        let other = rusqlite::Connection::open(&file).unwrap();
        other.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (v INTEGER)").unwrap();
        let group = Arc::new(Group::open(&file).unwrap());
        other.execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (1)").unwrap();
        let write = tokio::spawn({
            let group = group.clone();
            async move {
                let mut turn = group.turn().await?;
                turn.conn().execute_batch("INSERT INTO t VALUES (2)")?;
                turn.commit().await
            }
        });
        // The write holds the writer while it waits for SQLite's lock on a blocking thread.
        let started = std::time::Instant::now();
        while group.writer.try_lock().is_ok() {
            assert!(started.elapsed() < Duration::from_secs(5), "the write never took its turn");
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!write.is_finished(), "the write waits while the other process holds the lock");
        other.execute_batch("COMMIT").unwrap();
        write.await.unwrap().expect("the write goes ahead once the lock is free");
        let rows: i64 = other.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 2);
    }
}
