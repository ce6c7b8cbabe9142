//! Group commit on SQLite: concurrent writes share one transaction and one fsync.
//!
//! SQLite has one writer at a time and `synchronous=FULL` makes each commit wait for the disk,
//! so one transaction per write caps writes at the disk's sync rate. Here a write takes its
//! turn in the open batch (a transaction), runs inside a savepoint of its own, and releases
//! it. If other writes are queued, the batch passes to them and the write waits; the last
//! write of the queue commits the batch for everyone. Nobody is told "done" before the batch
//! is on disk, and a failed write rolls back to its savepoint without touching the others.
//! Every write that finishes its turn also queues once more: if the batch is still open when
//! its turn comes (a queued write was cancelled), it commits the batch itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use sqlx::{Any, AnyPool, Transaction};
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

/// One open transaction and the writes done in it.
struct Batch {
    id: u64,
    tx: Transaction<'static, Any>,
    members: usize,
    done: watch::Sender<Outcome>,
}

impl Batch {
    async fn commit(self) {
        let outcome = match self.tx.commit().await {
            Ok(()) => Outcome::Committed,
            Err(e) => {
                tracing::warn!(error = %e, writes = self.members, "group commit failed; no write of the batch is kept");
                Outcome::Failed
            }
        };
        self.done.send_replace(outcome);
    }
}

/// The writers of one SQLite database in this process.
#[derive(Default)]
pub(super) struct Group {
    open: Arc<Mutex<Option<Batch>>>,
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
    /// Waits for this write's turn: joins the open batch, or opens one.
    pub(super) async fn turn(self: &Arc<Self>, pool: &AnyPool) -> Result<Turn> {
        let mut guard = {
            let _waiting = Waiting::new(&self.waiting);
            self.open.clone().lock_owned().await
        };
        let batch = match guard.take() {
            Some(batch) => batch,
            None => Batch {
                id: self.next_id.fetch_add(1, Ordering::Relaxed),
                tx: pool.begin_with("BEGIN IMMEDIATE").await?,
                members: 0,
                done: watch::Sender::new(Outcome::Pending),
            },
        };
        let mut turn = Turn { held: Some((guard, batch)), group: self.clone() };
        sqlx::query("SAVEPOINT member").execute(&mut **turn.tx()).await?;
        Ok(turn)
    }

    /// After a write: commit the batch now, or hand it to the next queued write.
    async fn pass_on(&self, mut guard: OwnedMutexGuard<Option<Batch>>, batch: Batch) {
        if self.waiting.load(Ordering::SeqCst) > 0 && batch.members < MAX_MEMBERS {
            *guard = Some(batch);
        } else {
            batch.commit().await;
        }
    }

    /// A write that ended without committing: undo its part, keep the others'.
    async fn abandon(self: Arc<Self>, guard: OwnedMutexGuard<Option<Batch>>, mut batch: Batch) {
        let undone = sqlx::query("ROLLBACK TO member").execute(&mut *batch.tx).await.is_ok()
            && sqlx::query("RELEASE member").execute(&mut *batch.tx).await.is_ok();
        if !undone {
            tracing::warn!(writes = batch.members, "a write could not be undone alone; its batch is rolled back");
            let _ = batch.tx.rollback().await;
            batch.done.send_replace(Outcome::Failed);
        } else if batch.members == 0 {
            // Nothing to keep: release SQLite's writer lock rather than wait for a writer.
            let _ = batch.tx.rollback().await;
        } else {
            self.pass_on(guard, batch).await;
        }
    }
}

/// One write's turn in the open batch. Dropped without [`Turn::commit`], its changes are
/// rolled back (on a spawned task, since that takes a statement).
pub(super) struct Turn {
    held: Option<(OwnedMutexGuard<Option<Batch>>, Batch)>,
    group: Arc<Group>,
}

impl Turn {
    /// The batch's transaction.
    pub(super) fn tx(&mut self) -> &mut Transaction<'static, Any> {
        &mut self.held.as_mut().expect("a turn holds its batch until it ends").1.tx
    }

    /// Keeps this write and returns once the batch holding it is on disk.
    pub(super) async fn commit(mut self) -> Result<()> {
        let (guard, mut batch) = self.held.take().expect("a turn ends once");
        if let Err(e) = sqlx::query("RELEASE member").execute(&mut *batch.tx).await {
            self.group.clone().abandon(guard, batch).await;
            return Err(e.into());
        }
        batch.members += 1;
        let id = batch.id;
        let mut done = batch.done.subscribe();
        self.group.pass_on(guard, batch).await;
        if *done.borrow() == Outcome::Pending {
            // Queue once more: if the batch is still open on our turn, nobody else will close it.
            let mut guard = self.group.open.clone().lock_owned().await;
            if guard.as_ref().is_some_and(|b| b.id == id) {
                let batch = guard.take().expect("checked");
                batch.commit().await;
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
        if let Some((guard, batch)) = self.held.take() {
            let group = self.group.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(group.abandon(guard, batch));
            }
        }
    }
}
