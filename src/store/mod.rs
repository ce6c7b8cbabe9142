//! Storage: one set of SQL for SQLite (the embedded default) and PostgreSQL. Placeholders are
//! `$n`, which both accept; values are always bound. On PostgreSQL statements go through
//! sqlx's `Any` driver; on SQLite they run on native connections in the calling task: one
//! writer (`group_commit`) and reused readers ([`Store::read`]). See [`sql`].
//!
//! Every write goes through [`Write`]: one transaction holding the record change, its
//! audit-trail entry and its outbox event.

mod actors;
mod audit;
mod changes;
mod group_commit;
mod nonconformities;
mod outbox;
mod people;
mod performance;
#[cfg(test)]
mod query_plans;
mod review;
mod risks;
mod soa;
pub(crate) mod sql;

pub use actors::{ActorInfo, NewActor, TokenInfo, TokenIssued};
pub use audit::{AuditEntry, ChainReport};
pub use changes::{CrFilter, CrUpdate};
pub use nonconformities::{NcFilter, NcUpdate};
pub use outbox::{Claimed, OutboxEvent};
pub use people::NewPolicy;
pub use review::{NcFacts, RecordCounts, StoredReview};
pub use risks::RiskFields;
pub use soa::{SoaEntryFields, SoaVersion};

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Executor, Transaction};
use tokio::sync::watch;

use self::group_commit::{Group, Turn};
use self::sql::{Cells, Conn, args};
use crate::domain::audit::{EntryFields, entry_hash};
use crate::domain::references::{RecordKind, RecordRef};
use crate::domain::time::stamp;
use crate::error::{Error, Result};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file (WAL, `synchronous=FULL`).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// The database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// On SQLite, the writers of this process, committed in groups: SQLite's one writer lock
    /// would otherwise turn concurrent transactions into busy errors, and one fsync per write
    /// would cap the write rate.
    group: Option<Arc<Group>>,
    /// Counts the commits made through this store; watchers wake on each.
    commits: Arc<watch::Sender<u64>>,
    /// The SQLite file, which long reads (the chain walk) open natively.
    sqlite_file: Option<std::path::PathBuf>,
    /// On SQLite, idle native read connections (see [`Store::read`]).
    readers: Option<Arc<Readers>>,
    /// On PostgreSQL, the URL, for the chain walk's own native connections.
    postgres_url: Option<Secret>,
}

/// A value kept out of `Debug` output (a database URL may hold a password).
#[derive(Clone)]
struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Idle native SQLite read connections, reused so each keeps its statement and page caches.
#[derive(Debug)]
struct Readers {
    file: std::path::PathBuf,
    idle: std::sync::Mutex<Vec<rusqlite::Connection>>,
}

/// The corrective-action statuses still open, as an SQL list. Spelled out rather than
/// `<> 'done'` so the index on (status, due_date) serves a lookup of all open actions (not a
/// check per nonconformity: see `Store::nonconformities`); a test keeps it equal to the
/// domain's statuses.
const CA_OPEN: &str = "('planned', 'in_progress')";

/// The nonconformity statuses still open, as an SQL list (the index on (status, number) serves
/// it); a test keeps it equal to the domain's statuses.
const NC_OPEN: &str = "('open', 'corrected', 'analysed', 'actions_planned', 'actions_done', 'verified')";

/// The audit-trail append on PostgreSQL in one statement: lock the chain head, hash the entry
/// exactly as [`entry_hash`] does (each part's UTF-8 byte length as 8 bytes big-endian, then
/// its bytes: previous hash, sequence number, `at` ($1), actor ($2), operation ($3), record
/// ($4), detail ($5)), move the head, insert the entry and the outbox event ($6 its type).
/// Verification recomputes every hash in Rust, so a difference would show as a broken chain.
const APPEND_POSTGRES: &str = "\
WITH head AS (SELECT seq + 1 AS seq, hash AS prev_hash FROM chain_head WHERE id = 1 FOR UPDATE), \
entry AS (SELECT head.seq, head.prev_hash, \
  encode(sha256(string_agg(int8send(octet_length(part.b)::int8) || part.b, ''::bytea ORDER BY part.n)), 'hex') AS hash \
  FROM head, unnest(ARRAY[convert_to(head.prev_hash, 'UTF8'), convert_to(head.seq::text, 'UTF8'), \
    convert_to($1::text, 'UTF8'), convert_to($2::text, 'UTF8'), convert_to($3::text, 'UTF8'), \
    convert_to($4::text, 'UTF8'), convert_to($5::text, 'UTF8')]) WITH ORDINALITY AS part(b, n) \
  GROUP BY head.seq, head.prev_hash), \
moved AS (UPDATE chain_head SET seq = entry.seq, hash = entry.hash FROM entry WHERE chain_head.id = 1), \
logged AS (INSERT INTO audit_log (seq, at, actor, operation, record_ref, detail, prev_hash, hash) \
  SELECT seq, $1, $2, $3, $4, $5, prev_hash, hash FROM entry) \
INSERT INTO outbox (at, event_type, record_ref, payload) SELECT $1, $6, $4, $5 FROM entry";

/// How long a pooled PostgreSQL connection may lie idle before it is pinged when next handed
/// out.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Most idle read connections kept: reads run in the calling task, so about one per runtime
/// worker is in use at a time; the rest are spares.
const IDLE_READERS: usize = 4;

impl Readers {
    fn take(&self) -> rusqlite::Result<rusqlite::Connection> {
        if let Some(conn) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(conn);
        }
        sql::open_native(&self.file, "PRAGMA query_only = ON;")
    }

    fn put(&self, conn: rusqlite::Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
    }
}

/// A connection for reads: a pooled sqlx connection (PostgreSQL), possibly holding a
/// read-only transaction ([`Store::snapshot`]), or a native SQLite one,
/// whose queries run in the calling task (an indexed lookup takes microseconds there, against
/// two thread hops per statement through sqlx).
pub(crate) enum Reader {
    /// PostgreSQL: a connection from sqlx's pool.
    Pool(sqlx::pool::PoolConnection<Any>),
    /// PostgreSQL: a read-only `REPEATABLE READ` transaction (see [`Store::snapshot`]).
    Snapshot(Transaction<'static, Any>),
    /// SQLite: a native read-only connection.
    Native(NativeReader),
}

/// A native SQLite read connection, back among the idle ones when dropped.
pub(crate) struct NativeReader {
    conn: Option<rusqlite::Connection>,
    readers: Arc<Readers>,
}

impl Drop for NativeReader {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // A reader from `Store::reads` ends its read transaction first; one that cannot is
            // closed rather than kept.
            if conn.is_autocommit() || conn.execute_batch("COMMIT").is_ok() {
                self.readers.put(conn);
            }
        }
    }
}

impl Reader {
    /// The connection to run statements on.
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            Reader::Pool(c) => Conn::Any(c),
            Reader::Snapshot(tx) => Conn::Any(tx),
            Reader::Native(r) => Conn::Native(r.conn.as_mut().expect("a reader holds its connection until dropped")),
        }
    }
}

/// One value bound to a `$n` placeholder.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
}

impl sql::Bind for Arg {
    fn value(&self) -> sql::Value<'_> {
        match self {
            Arg::Text(s) => sql::Value::Text(Some(s)),
            Arg::Int(i) => sql::Value::Int(Some(*i)),
        }
    }
}

/// The filters of a list query: conditions joined with `AND`, their values bound to `$n`
/// placeholders in order (never formatted into the SQL).
#[derive(Debug, Default)]
pub(crate) struct Conditions {
    parts: Vec<String>,
    args: Vec<Arg>,
}

impl Conditions {
    /// Binds `value` to the next placeholder and returns it, e.g. `$3`.
    pub(crate) fn bind(&mut self, value: Arg) -> String {
        self.args.push(value);
        format!("${}", self.args.len())
    }

    /// Adds a condition rows must meet.
    pub(crate) fn push(&mut self, condition: impl Into<String>) {
        self.parts.push(condition.into());
    }

    /// Adds `column = value`, with the value bound.
    pub(crate) fn equals(&mut self, column: &str, value: Arg) {
        let p = self.bind(value);
        self.push(format!("{column} = {p}"));
    }

    /// `WHERE` and the conditions, or nothing when there are none.
    pub(crate) fn where_clause(&self) -> String {
        if self.parts.is_empty() { String::new() } else { format!("WHERE {}", self.parts.join(" AND ")) }
    }

    /// The values bound, in placeholder order.
    pub(crate) fn into_args(self) -> Vec<Arg> {
        self.args
    }
}

/// The SQLite URL for a database file, created if missing.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// The file of an SQLite URL (`sqlite://PATH?…`), if it names one.
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let path = url.strip_prefix("sqlite://")?;
    let path = path.split('?').next().unwrap_or(path);
    (!path.is_empty() && path != ":memory:").then(|| path.into())
}

/// Creates an empty database file only its owner can read: it holds every record and the
/// token hashes.
fn create_private(file: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(file).map(drop)
}

/// Whether the database has exactly the embedded migrations applied, each successfully and
/// with the same checksum: then `Migrator::run` would change nothing, and one query has made
/// the check it would make in seven statements and an advisory lock on PostgreSQL (a
/// quarter of a cold start there). Anything else (a new database, a pending, failed, edited
/// or unknown migration, an error) returns false, and the migrator runs and reports it.
async fn migrations_current(conn: &mut sqlx::AnyConnection, migrator: &sqlx::migrate::Migrator) -> bool {
    let sql = "SELECT version, checksum FROM _sqlx_migrations WHERE success = TRUE ORDER BY version";
    let Ok(applied) = sqlx::query_as::<_, (i64, Vec<u8>)>(sql).fetch_all(&mut *conn).await else { return false };
    let embedded = migrator.iter().filter(|m| !m.migration_type.is_down_migration());
    applied.len() == embedded.clone().count()
        && applied
            .iter()
            .zip(embedded)
            .all(|((version, checksum), m)| *version == m.version && **checksum == *m.checksum)
}

impl Store {
    /// Connects to `url` (`sqlite://…` or `postgres://…`) and applies the migrations.
    pub async fn open(url: &str) -> std::result::Result<Store, sqlx::Error> {
        install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(sqlx::Error::Configuration(
                format!("unsupported database URL `{url}`: use sqlite://PATH or postgres://…").into(),
            ));
        };
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(5));
        let pool = match backend {
            Backend::Sqlite => {
                if let Some(file) = sqlite_file(url).filter(|f| !f.exists()) {
                    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
                        std::fs::create_dir_all(parent)?;
                    }
                    create_private(&file)?;
                }
                // Only migrations use this pool: reads and writes run on native connections. A
                // local file cannot drop a connection the way a network can, so it is not pinged.
                options
                    .max_connections(1)
                    .test_before_acquire(false)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;")
                                .await?;
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await?
            }
            // A connection is pinged before use only after lying idle (when the server may
            // have restarted or a firewall dropped it unnoticed): one just returned is live, and
            // pinging it would add a round trip to every call under load.
            Backend::Postgres => {
                options
                    .max_connections(10)
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| {
                        Box::pin(async move {
                            if meta.idle_for >= PING_AFTER_IDLE {
                                sqlx::Connection::ping(conn).await?;
                            }
                            Ok(true)
                        })
                    })
                    .connect(url)
                    .await?
            }
        };
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        // Migrate on one connection and wait for it to be back in the pool: dropped, it would
        // be tested (a round trip) in a background task while the first query opened a second
        // connection, which a cold start would wait for.
        let mut conn = pool.acquire().await?;
        if !migrations_current(&mut conn, migrator).await {
            migrator.run(&mut *conn).await?;
        }
        conn.return_to_pool().await;
        let sqlite_file = match backend {
            Backend::Sqlite => Some(sqlite_file(url).ok_or_else(|| {
                sqlx::Error::Configuration(format!("`{url}` names no SQLite file: use sqlite://PATH").into())
            })?),
            Backend::Postgres => None,
        };
        let group =
            match &sqlite_file {
                Some(file) => Some(Arc::new(Group::open(file).map_err(|e| {
                    sqlx::Error::Io(std::io::Error::other(format!("cannot open the SQLite writer: {e}")))
                })?)),
                None => None,
            };
        let readers =
            sqlite_file.clone().map(|file| Arc::new(Readers { file, idle: std::sync::Mutex::new(Vec::new()) }));
        let postgres_url = (backend == Backend::Postgres).then(|| Secret(url.to_owned()));
        Ok(Store { pool, backend, group, commits: Arc::new(watch::Sender::new(0)), sqlite_file, readers, postgres_url })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a write: its own transaction with row locks (PostgreSQL), or a turn in the
    /// open group-commit transaction, which holds the writer lock (SQLite).
    pub async fn begin_write(&self) -> Result<Write> {
        let tx = match &self.group {
            Some(group) => WriteTx::Grouped(group.turn().await?),
            None => WriteTx::Own(self.pool.begin().await?),
        };
        Ok(Write { tx, now: Utc::now(), commits: self.commits.clone(), entries: Vec::new() })
    }

    /// A connection for reads outside a write.
    pub(crate) async fn read(&self) -> Result<Reader> {
        match &self.readers {
            Some(readers) => Ok(Reader::Native(NativeReader { conn: Some(readers.take()?), readers: readers.clone() })),
            None => Ok(Reader::Pool(self.pool.acquire().await?)),
        }
    }

    /// A connection for several reads that belong together (a record and its history): on
    /// SQLite they run in one read transaction, so they see one state of the database and
    /// take the read lock once; on PostgreSQL they share one pooled connection.
    pub(crate) async fn reads(&self) -> Result<Reader> {
        let mut reader = self.read().await?;
        if let Reader::Native(r) = &mut reader
            && let Some(conn) = r.conn.as_mut()
        {
            conn.execute_batch("BEGIN")?;
        }
        Ok(reader)
    }

    /// Reads that must see one state of the database, sent one statement after another: on
    /// SQLite a read transaction, as [`Store::reads`] gives; on PostgreSQL a read-only
    /// `REPEATABLE READ` transaction, which costs two round trips more than `reads`. Readers
    /// whose statements can be joined into one (`Conn::fetch_parts`) use `reads`.
    pub async fn snapshot(&self) -> Result<Snapshot> {
        let reader = match self.backend {
            Backend::Sqlite => self.reads().await?,
            Backend::Postgres => {
                Reader::Snapshot(self.pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?)
            }
        };
        Ok(Snapshot(reader))
    }

    /// A watch that changes after each commit made through this store (writes by other
    /// processes are not seen: poll for those).
    pub fn commits(&self) -> watch::Receiver<u64> {
        self.commits.subscribe()
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> Result<()> {
        self.read().await?.conn().fetch_one("SELECT 1", args![]).await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Reads that see one state of the database, from [`Store::snapshot`]; end it with
/// [`Snapshot::finish`] (dropped, it ends without effect all the same: nothing in it writes).
pub struct Snapshot(Reader);

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").finish_non_exhaustive()
    }
}

impl Snapshot {
    /// The reader to run the snapshot's statements on.
    pub(crate) fn reader(&mut self) -> &mut Reader {
        &mut self.0
    }

    /// The audit-trail entries of one record, oldest first, as of the snapshot.
    pub async fn history(&mut self, record: &str) -> Result<Vec<AuditEntry>> {
        self.0.history(record).await
    }

    /// Ends the snapshot.
    pub async fn finish(self) -> Result<()> {
        match self.0 {
            Reader::Snapshot(tx) => Ok(tx.commit().await?),
            // A native reader ends its read transaction when it goes back among the idle ones.
            Reader::Native(_) | Reader::Pool(_) => Ok(()),
        }
    }
}

/// A record with what `get_record` shows beside it, read together.
#[derive(Debug, Clone)]
pub struct InFull<T> {
    /// The record.
    pub record: T,
    /// The change requests raised for it (`CR-n`).
    pub change_requests: Vec<String>,
    /// Its audit-trail entries, oldest first.
    pub history: Vec<AuditEntry>,
}

/// What an idempotency key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First use: go on and create the record.
    New,
    /// Used before for the same arguments; this is the record it created.
    Replay(String),
}

/// The audit-trail entry and outbox event of one change. The detail is any serialisable
/// value, written as JSON text in one pass: a record passed as itself costs no intermediate
/// `serde_json::Value`.
#[derive(Debug)]
pub struct Change<'a, D: ?Sized = serde_json::Value> {
    /// Who made it.
    pub actor: &'a str,
    /// The operation (tool) that made it.
    pub operation: &'a str,
    /// The record changed (`NC-12`, `actor:julian`).
    pub record: &'a str,
    /// The event type published, e.g. `nonconformity.logged`.
    pub event: &'a str,
    /// What changed (stored in the audit trail and as the event payload).
    pub detail: &'a D,
}

/// Where a write's statements go.
enum WriteTx {
    /// A transaction of its own.
    Own(Transaction<'static, Any>),
    /// A savepoint in a group-commit transaction.
    Grouped(Turn),
}

/// An audit-trail entry recorded by a write, appended when it commits.
struct Entry {
    actor: String,
    operation: String,
    record: String,
    event: String,
    detail: String,
}

/// An open write. Dropped without [`Write::commit`], its changes roll back.
pub struct Write {
    tx: WriteTx,
    now: DateTime<Utc>,
    commits: Arc<watch::Sender<u64>>,
    entries: Vec<Entry>,
}

impl Write {
    /// The time of this write (one value for every row it touches).
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Whether this write runs on PostgreSQL (a transaction of its own), where each statement
    /// is a round trip and merged statements pay.
    pub(crate) fn on_postgres(&self) -> bool {
        matches!(self.tx, WriteTx::Own(_))
    }

    /// The connection this write's statements run on, inside its transaction.
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match &mut self.tx {
            WriteTx::Own(tx) => Conn::Any(tx),
            WriteTx::Grouped(turn) => Conn::Native(turn.conn()),
        }
    }

    /// Takes the next number for a record kind (`NC-1`, `NC-2`, …).
    pub async fn next_number(&mut self, kind: RecordKind) -> Result<i64> {
        let sql = "UPDATE counters SET last = last + 1 WHERE kind = $1 RETURNING last";
        self.conn().fetch_one(sql, args![kind.prefix()]).await?.get(0)
    }

    /// Claims an idempotency key for `actor` and `operation`. A key used before with other
    /// arguments (`request_hash`) is refused.
    pub async fn claim_idempotency(
        &mut self,
        actor: &str,
        operation: &str,
        key: &str,
        request_hash: &str,
    ) -> Result<Claim> {
        let now = stamp(self.now);
        let sql = "INSERT INTO idempotency (actor, operation, key, request_hash, created_at) VALUES ($1, $2, $3, $4, $5) \
                   ON CONFLICT DO NOTHING";
        let inserted = self.conn().execute(sql, args![actor, operation, key, request_hash, now]).await?;
        if inserted == 1 {
            return Ok(Claim::New);
        }
        let sql = "SELECT request_hash, record_ref FROM idempotency WHERE actor = $1 AND operation = $2 AND key = $3";
        let row = self.conn().fetch_one(sql, args![actor, operation, key]).await?;
        let stored_hash: String = row.get(0)?;
        let record: Option<String> = row.get(1)?;
        match record {
            Some(r) if stored_hash == request_hash => Ok(Claim::Replay(r)),
            _ => Err(Error::rule(
                format!("idempotency_key `{key}` was already used for a different {operation} call"),
                "use a new key for a new record, or resend the first call's exact arguments to get its result",
            )),
        }
    }

    /// Notes the record an idempotency key created.
    pub async fn complete_idempotency(
        &mut self,
        actor: &str,
        operation: &str,
        key: &str,
        record: RecordRef,
    ) -> Result<()> {
        let sql = "UPDATE idempotency SET record_ref = $1 WHERE actor = $2 AND operation = $3 AND key = $4";
        self.conn().execute(sql, args![record.to_string(), actor, operation, key]).await?;
        Ok(())
    }

    /// Records a change: its audit-trail entry (chained to the previous one) and its outbox
    /// event are appended when the write commits, as its last statements. On PostgreSQL the
    /// append locks the chain head until the commit, so every transaction takes that lock after
    /// all its others: a write that records and then takes a number cannot deadlock with one
    /// that takes the number and then records, and the lock is held only for the appends and
    /// the commit.
    pub fn record<D: serde::Serialize + ?Sized>(&mut self, change: Change<'_, D>) -> Result<()> {
        let detail = serde_json::to_string(change.detail)
            .map_err(|e| Error::Internal(format!("detail of {} {}: {e}", change.operation, change.record)))?;
        self.entries.push(Entry {
            actor: change.actor.to_owned(),
            operation: change.operation.to_owned(),
            record: change.record.to_owned(),
            event: change.event.to_owned(),
            detail,
        });
        Ok(())
    }

    /// Appends one recorded entry and its outbox event.
    async fn append(&mut self, entry: &Entry) -> Result<()> {
        let at = stamp(self.now);
        if let WriteTx::Own(tx) = &mut self.tx {
            // PostgreSQL: one statement, so the chain head's row lock (which makes concurrent
            // writers, also other replicas', append one after another) is held from the first
            // append to the commit: one round trip per entry.
            let args = args![at, entry.actor, entry.operation, entry.record, entry.detail, entry.event];
            return match Conn::Any(tx).execute(APPEND_POSTGRES, args).await? {
                1 => Ok(()),
                n => Err(Error::Internal(format!("the audit-trail append wrote {n} events"))),
            };
        }
        // SQLite: the writer lock already serialises writers, and each statement is a call.
        let mut conn = self.conn();
        let head =
            conn.fetch_one("UPDATE chain_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash", args![]).await?;
        let seq: i64 = head.get(0)?;
        let prev_hash: String = head.get(1)?;
        let fields = EntryFields {
            seq,
            at: &at,
            actor: &entry.actor,
            operation: &entry.operation,
            record_ref: &entry.record,
            detail: &entry.detail,
        };
        let hash = entry_hash(&prev_hash, &fields);
        conn.execute("UPDATE chain_head SET hash = $1 WHERE id = 1", args![hash]).await?;
        conn.execute(
            "INSERT INTO audit_log (seq, at, actor, operation, record_ref, detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            args![seq, at, entry.actor, entry.operation, entry.record, entry.detail, prev_hash, hash],
        )
        .await?;
        conn.execute(
            "INSERT INTO outbox (at, event_type, record_ref, payload) VALUES ($1, $2, $3, $4)",
            args![at, entry.event, entry.record, entry.detail],
        )
        .await?;
        Ok(())
    }

    /// Appends the recorded changes to the audit trail and commits everything written;
    /// returns once it is durable.
    pub async fn commit(mut self) -> Result<()> {
        for entry in std::mem::take(&mut self.entries) {
            self.append(&entry).await?;
        }
        match self.tx {
            WriteTx::Own(tx) => tx.commit().await?,
            WriteTx::Grouped(turn) => turn.commit().await?,
        }
        self.commits.send_modify(|n| *n += 1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::corrective_action::CaStatus;
    use crate::domain::nonconformity::NcStatus;

    fn sql_list<'a>(values: impl Iterator<Item = &'a str>) -> String {
        format!("({})", values.map(|v| format!("'{v}'")).collect::<Vec<_>>().join(", "))
    }

    #[test]
    fn open_status_lists_match_the_domain() {
        let ca = CaStatus::ALL.iter().filter(|s| **s != CaStatus::Done).map(|s| s.as_str());
        assert_eq!(CA_OPEN, sql_list(ca));
        let nc = NcStatus::ALL.iter().filter(|s| s.is_open()).map(|s| s.as_str());
        assert_eq!(NC_OPEN, sql_list(nc));
    }

    /// Statements that name domain values as SQL literals (a done action, a major finding, a
    /// held audit, an open or done review action) name them as the domain spells them: a
    /// renamed value fails here rather than silently matching no rows.
    #[test]
    fn status_literals_in_sql_are_the_domains_names() {
        use crate::domain::internal_audit::AuditStatus;
        use crate::domain::management_review::ActionStatus;
        use crate::domain::nonconformity::Severity;
        let status = |s: &str| format!("status = '{s}'");
        let done = status(CaStatus::Done.as_str());
        assert!(review::ACTIONS_DONE_SINCE.contains(&done));
        assert!(performance::MAJOR_ACTIONS.contains(&done));
        assert!(performance::MAJOR_ACTIONS.contains(&format!("severity = '{}'", Severity::Major.as_str())));
        assert!(performance::AUDITS_HELD_SINCE.contains(&status(AuditStatus::Completed.as_str())));
        let (open, done) = (ActionStatus::Open.as_str(), ActionStatus::Done.as_str());
        assert!(review::INSERT_REVIEW_ACTION.ends_with(&format!("'{open}')")));
        let completing = review::COMPLETE_REVIEW_ACTION;
        assert!(completing.contains(&status(done)) && completing.ends_with(&status(open)), "{completing}");
    }

    /// The start skips the migrator exactly when the database has every embedded migration,
    /// each applied successfully with its checksum; any other state runs it (and it reports).
    #[tokio::test]
    async fn the_migrator_is_skipped_only_for_a_current_database() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&sqlite_url(&dir.path().join("isms.db"))).await.expect("a new database is migrated");
        let mut conn = store.pool.acquire().await.unwrap();
        assert!(migrations_current(&mut conn, &SQLITE_MIGRATIONS).await, "a current database skips the migrator");
        let last = SQLITE_MIGRATIONS.iter().map(|m| m.version).max().unwrap();
        let states: [(String, &str); 4] = [
            ("UPDATE _sqlx_migrations SET checksum = X'00' WHERE version = 1".into(), "an edited migration"),
            ("UPDATE _sqlx_migrations SET success = FALSE WHERE version = 1".into(), "a failed migration"),
            (format!("DELETE FROM _sqlx_migrations WHERE version = {last}"), "a pending migration"),
            (
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                 VALUES (999999, 'unknown', TRUE, X'00', 0)"
                    .into(),
                "an unknown migration",
            ),
        ];
        for (change, state) in states {
            let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(change)).execute(&mut *tx).await.unwrap();
            assert!(!migrations_current(&mut tx, &SQLITE_MIGRATIONS).await, "{state} runs the migrator");
            tx.rollback().await.unwrap();
        }
        assert!(migrations_current(&mut conn, &SQLITE_MIGRATIONS).await);
    }
}
