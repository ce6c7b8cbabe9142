//! Reading the audit trail: a record's history and the walk that verifies the chain.

use futures::TryStreamExt;
use schemars::JsonSchema;
use serde::Serialize;
use sqlx::Row;

use super::Store;
use crate::domain::audit::{ChainWalk, EntryFields};
use crate::error::Result;

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
    pub detail: serde_json::Value,
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

impl Store {
    /// The audit-trail entries of one record (`NC-12`, `soa:A.8.28`), oldest first.
    pub async fn history(&self, record: &str) -> Result<Vec<AuditEntry>> {
        let rows =
            sqlx::query("SELECT seq, at, actor, operation, detail FROM audit_log WHERE record_ref = $1 ORDER BY seq")
                .bind(record)
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|r| {
                let detail: String = r.try_get(4)?;
                Ok(AuditEntry {
                    seq: r.try_get(0)?,
                    at: r.try_get(1)?,
                    actor: r.try_get(2)?,
                    operation: r.try_get(3)?,
                    detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
                })
            })
            .collect()
    }

    /// Walks the chain from the first entry and checks the stored head, so an altered,
    /// removed or truncated entry is found.
    pub async fn verify_chain(&self) -> Result<ChainReport> {
        // The head is read first and the walk stops at it, so writes committed during the walk
        // (which append after the head) are neither missed nor taken for a truncation.
        let head = sqlx::query("SELECT seq, hash FROM chain_head WHERE id = 1").fetch_one(self.pool()).await?;
        let (head_seq, head_hash): (i64, String) = (head.try_get(0)?, head.try_get(1)?);
        let mut walk = ChainWalk::default();
        let mut checked = 0i64;
        let mut rows = sqlx::query(
            "SELECT seq, at, actor, operation, record_ref, detail, prev_hash, hash FROM audit_log WHERE seq <= $1 ORDER BY seq",
        )
        .bind(head_seq)
        .fetch(self.pool());
        while let Some(r) = rows.try_next().await? {
            let seq: i64 = r.try_get(0)?;
            let (at, actor, operation, record_ref, detail, prev, hash): (
                String,
                String,
                String,
                String,
                String,
                String,
                String,
            ) = (
                r.try_get(1)?,
                r.try_get(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
                r.try_get(5)?,
                r.try_get(6)?,
                r.try_get(7)?,
            );
            let fields = EntryFields {
                seq,
                at: &at,
                actor: &actor,
                operation: &operation,
                record_ref: &record_ref,
                detail: &detail,
            };
            if let Err(b) = walk.step(&fields, &prev, &hash) {
                return Ok(ChainReport {
                    intact: false,
                    entries_checked: checked,
                    head_hash: walk.head().to_owned(),
                    first_broken_seq: Some(seq),
                    problem: Some(b.describe(seq)),
                });
            }
            checked += 1;
        }
        drop(rows);
        let truncated = head_seq != checked || head_hash != walk.head();
        Ok(ChainReport {
            intact: !truncated,
            entries_checked: checked,
            head_hash: walk.head().to_owned(),
            first_broken_seq: truncated.then_some(checked + 1),
            problem: truncated.then(|| {
                format!(
                    "the chain head records {head_seq} entries but the trail ends after {checked}: entries were removed"
                )
            }),
        })
    }
}
