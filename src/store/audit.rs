//! Reading the audit trail: a record's history and the walk that verifies the chain.

use futures::TryStreamExt;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::value::RawValue;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Row};

use super::sql::{self, Cells, args};
use super::{Reader, Store};
use crate::domain::audit::{Break, ChainWalk, EntryFields, GENESIS};
use crate::error::{Error, Result};

/// One entry of a record's history.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AuditEntry {
    /// Position in the audit trail.
    pub seq: i64,
    /// When (UTC).
    pub at: String,
    /// Who.
    pub actor: String,
    /// The operation that wrote it.
    pub operation: String,
    /// What was written.
    #[schemars(with = "serde_json::Value")]
    pub detail: Box<RawValue>,
}

/// Chains shorter than this are walked in one piece.
const SEGMENT_FROM: i64 = 50_000;
/// Most segments walked at once.
const MAX_SEGMENTS: usize = 4;

/// What the walk of one segment found.
struct Segment {
    /// The last entry found intact.
    checked_to: i64,
    /// Its hash.
    head: String,
    /// The first break, if any: where, and what.
    broken: Option<(i64, Break)>,
}

/// The outcome of walking the whole chain.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ChainReport {
    /// True when every entry links to the one before and matches its hash.
    pub intact: bool,
    /// Entries checked before the walk ended.
    pub entries_checked: i64,
    /// Hash of the last intact entry.
    pub head_hash: String,
    /// Sequence number of the first broken entry, if any.
    pub first_broken_seq: Option<i64>,
    /// What is wrong there, if anything.
    pub problem: Option<String>,
}

/// One record's audit-trail entries, oldest first: `$1` is the record.
pub(super) const HISTORY: &str =
    "SELECT seq, at, actor, operation, detail FROM audit_log WHERE record_ref = $1 ORDER BY seq";

impl Reader {
    /// The audit-trail entries of one record (`NC-12`, `soa:A.8.28`), oldest first; see
    /// [`entries`].
    pub async fn history(&mut self, record: &str) -> Result<Vec<AuditEntry>> {
        entries(&self.conn().fetch_all(HISTORY, args![record]).await?)
    }
}

/// The entries [`HISTORY`] read. Each detail is passed on as stored, not parsed (a detail
/// that is not JSON, which no write makes, is passed on as a string).
pub(super) fn entries(rows: &[sql::Row]) -> Result<Vec<AuditEntry>> {
    rows.iter()
        .map(|r| {
            let detail: String = r.get(4)?;
            let detail = match RawValue::from_string(detail) {
                Ok(raw) => raw,
                Err(e) => {
                    let text = serde_json::Value::String(r.get(4)?);
                    serde_json::value::to_raw_value(&text).map_err(|_| Error::Internal(e.to_string()))?
                }
            };
            Ok(AuditEntry { seq: r.get(0)?, at: r.get(1)?, actor: r.get(2)?, operation: r.get(3)?, detail })
        })
        .collect()
}

impl Store {
    /// The audit-trail entries of one record (`NC-12`, `soa:A.8.28`), oldest first.
    pub async fn history(&self, record: &str) -> Result<Vec<AuditEntry>> {
        self.read().await?.history(record).await
    }

    /// Walks the chain from the first entry and checks the stored head, so an altered,
    /// removed or truncated entry is found. A long chain is walked in segments at once, one
    /// connection each; each segment starts from the stored hash of the entry before it, which
    /// the previous segment checks.
    pub async fn verify_chain(&self) -> Result<ChainReport> {
        let parts = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, MAX_SEGMENTS);
        self.verify_chain_in(parts as i64, SEGMENT_FROM).await
    }

    /// [`Store::verify_chain`] in `parts` segments at once when the chain has at least
    /// `from` entries (in one piece otherwise).
    pub async fn verify_chain_in(&self, parts: i64, from: i64) -> Result<ChainReport> {
        // The head is read first and the walk stops at it, so writes committed during the walk
        // (which append after the head) are neither missed nor taken for a truncation.
        let head =
            self.read().await?.conn().fetch_one("SELECT seq, hash FROM chain_head WHERE id = 1", args![]).await?;
        let (head_seq, head_hash): (i64, String) = (head.get(0)?, head.get(1)?);
        let parts = if head_seq < from { 1 } else { parts.clamp(1, head_seq) };
        let size = (head_seq / parts).max(1);
        let mut walks = Vec::new();
        for k in 0..parts {
            let lo = k * size + 1;
            let hi = if k == parts - 1 { head_seq } else { (k + 1) * size };
            let store = self.clone();
            walks.push(tokio::spawn(async move { store.walk_segment(lo, hi, k == parts - 1).await }));
        }
        let mut last = Segment { checked_to: 0, head: GENESIS.to_owned(), broken: None };
        for walk in walks {
            let segment = walk.await.map_err(|e| Error::Internal(format!("chain walk: {e}")))??;
            last = segment;
            if let Some((seq, b)) = &last.broken {
                return Ok(ChainReport {
                    intact: false,
                    entries_checked: last.checked_to,
                    head_hash: last.head.clone(),
                    first_broken_seq: Some(*seq),
                    problem: Some(b.describe(*seq)),
                });
            }
        }
        let checked = last.checked_to;
        let truncated = head_seq != checked || head_hash != last.head;
        Ok(ChainReport {
            intact: !truncated,
            entries_checked: checked,
            head_hash: last.head,
            first_broken_seq: truncated.then_some(checked + 1),
            problem: truncated.then(|| {
                format!(
                    "the chain head records {head_seq} entries but the trail ends after {checked}: entries were removed"
                )
            }),
        })
    }

    /// Checks entries `lo..=hi`, starting from the stored hash of entry `lo - 1`. Entries
    /// missing at the end are a gap unless this is the `last` segment (then the caller
    /// compares with the head). An SQLite file is read natively on a blocking thread (sqlx
    /// would hand each row over from its worker thread, which costs more than hashing it);
    /// PostgreSQL through a connection of its own without the `Any` layer, whose rows copy
    /// every column into an owned value, so columns are hashed where they arrived.
    async fn walk_segment(&self, lo: i64, hi: i64, last: bool) -> Result<Segment> {
        if let Some(file) = self.sqlite_file.clone() {
            return tokio::task::spawn_blocking(move || walk_sqlite_segment(&file, lo, hi, last))
                .await
                .map_err(|e| Error::Internal(format!("chain walk: {e}")))?;
        }
        let url = self.postgres_url.as_ref().ok_or_else(|| Error::Internal("no database to walk".into()))?;
        let mut conn = PgConnection::connect(&url.0).await?;
        let before: Option<String> = match lo {
            1 => None,
            _ => {
                sqlx::query_scalar("SELECT hash FROM audit_log WHERE seq = $1")
                    .bind(lo - 1)
                    .fetch_optional(&mut conn)
                    .await?
            }
        };
        let mut check = SegmentCheck::new(lo, hi, last, before.as_deref());
        let mut rows = sqlx::query(ENTRIES).bind(lo).bind(hi).fetch(&mut conn);
        while let Some(r) = rows.try_next().await? {
            let (fields, prev, hash) = entry_of(r.try_get(0)?, |i| Ok(r.try_get::<&str, _>(i)?))?;
            if let Some(broken) = check.step(&fields, prev, hash) {
                return Ok(broken);
            }
        }
        Ok(check.finish())
    }
}

/// The entries of a segment, in order.
const ENTRIES: &str = "SELECT seq, at, actor, operation, record_ref, detail, prev_hash, hash FROM audit_log \
     WHERE seq >= $1 AND seq <= $2 ORDER BY seq";

/// One segment's walk: the chain walk and where the segment ends.
struct SegmentCheck {
    walk: ChainWalk,
    hi: i64,
    last: bool,
}

impl SegmentCheck {
    /// A walk of `lo..=hi`; `before` is the stored hash of entry `lo - 1` (`None` for the
    /// first segment, or when that entry is missing: a gap the previous segment reports).
    fn new(lo: i64, hi: i64, last: bool, before: Option<&str>) -> Self {
        let walk = if lo == 1 { ChainWalk::default() } else { ChainWalk::resume(lo, before.unwrap_or_default()) };
        SegmentCheck { walk, hi, last }
    }

    /// Checks the next entry; the segment's result if it is broken there.
    fn step(&mut self, fields: &EntryFields<'_>, prev: &str, hash: &str) -> Option<Segment> {
        let b = self.walk.step(fields, prev, hash).err()?;
        Some(Segment {
            checked_to: self.walk.expected_seq() - 1,
            head: self.walk.head().to_owned(),
            broken: Some((fields.seq, b)),
        })
    }

    /// The result after the last entry read.
    fn finish(self) -> Segment {
        let checked_to = self.walk.expected_seq() - 1;
        // Entries missing at the end of a middle segment: a gap before the next one.
        let broken =
            (checked_to < self.hi && !self.last).then_some((self.hi + 1, Break::Gap { expected: checked_to + 1 }));
        Segment { checked_to, head: self.walk.head().to_owned(), broken }
    }
}

/// The hashed fields of a row of [`ENTRIES`] with its stored previous hash and hash, the text
/// columns read through `text`.
fn entry_of<'r>(seq: i64, text: impl Fn(usize) -> Result<&'r str>) -> Result<(EntryFields<'r>, &'r str, &'r str)> {
    let fields =
        EntryFields { seq, at: text(1)?, actor: text(2)?, operation: text(3)?, record_ref: text(4)?, detail: text(5)? };
    Ok((fields, text(6)?, text(7)?))
}

/// [`Store::walk_segment`] on an SQLite file, through a read-only connection of its own;
/// rows are hashed where SQLite holds them, without copies.
fn walk_sqlite_segment(file: &std::path::Path, lo: i64, hi: i64, last: bool) -> Result<Segment> {
    let failed = |e: rusqlite::Error| Error::Internal(format!("reading the audit trail: {e}"));
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = rusqlite::Connection::open_with_flags(file, flags).map_err(failed)?;
    conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(failed)?;
    // One read transaction: the segment and its predecessor come from one snapshot.
    conn.execute_batch("BEGIN").map_err(failed)?;
    let before: Option<String> = match lo {
        1 => None,
        _ => conn
            .query_row("SELECT hash FROM audit_log WHERE seq = ?1", [lo - 1], |r| r.get(0))
            .map(Some)
            .or_else(|e| if e == rusqlite::Error::QueryReturnedNoRows { Ok(None) } else { Err(e) })
            .map_err(failed)?,
    };
    let mut check = SegmentCheck::new(lo, hi, last, before.as_deref());
    let mut statement = conn.prepare(&ENTRIES.replace('$', "?")).map_err(failed)?;
    let mut rows = statement.query([lo, hi]).map_err(failed)?;
    while let Some(r) = rows.next().map_err(failed)? {
        let text = |i: usize| r.get_ref(i).and_then(|v| v.as_str().map_err(Into::into)).map_err(failed);
        let (fields, prev, hash) = entry_of(r.get(0).map_err(failed)?, text)?;
        if let Some(broken) = check.step(&fields, prev, hash) {
            return Ok(broken);
        }
    }
    Ok(check.finish())
}
