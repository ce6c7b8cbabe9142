//! The context register, management reviews with their actions, and the counts that review
//! inputs and readiness are computed from.

use chrono::NaiveDate;

use super::sql::{Cells, args, joined_numbers};
use super::{CA_OPEN, NC_OPEN, Reader, Store, Write};
use crate::domain::management_review::{ActionStatus, ContextItem, ContextKind, ReviewAction, action_overdue};
use crate::domain::references::{RecordKind, RecordRef};
use crate::domain::time::stamp;
use crate::error::{Error, Result};

/// The review period's findings by severity, source and month, their numbers aggregated.
pub(super) const NC_FACTS: &str = "SELECT severity, source, substr(created_at, 1, 7) AS month, \
    string_agg(CAST(number AS TEXT), ',') FROM nonconformities WHERE created_at >= $1 \
    GROUP BY severity, source, substr(created_at, 1, 7)";

/// Findings closed since a stamp.
/// A management review's action `$2` of review `$1`, open.
pub(super) const INSERT_REVIEW_ACTION: &str = "INSERT INTO review_actions (mr, n, description, owner, due_date, status) \
     VALUES ($1, $2, $3, $4, $5, 'open')";

/// Marks review action `$4` of review `$3` done at `$1` with note `$2`, if it is open.
pub(super) const COMPLETE_REVIEW_ACTION: &str =
    "UPDATE review_actions SET status = 'done', done_at = $1, note = $2 WHERE mr = $3 AND n = $4 AND status = 'open'";

pub(super) const NCS_CLOSED_SINCE: &str = "SELECT number FROM nonconformities WHERE closed_at >= $1";

/// Corrective actions done since a stamp.
pub(super) const ACTIONS_DONE_SINCE: &str =
    "SELECT number FROM corrective_actions WHERE status = 'done' AND updated_at >= $1";

/// `sql`, which selects `number`, with its numbers aggregated into one value.
pub(super) fn aggregated(sql: &str) -> String {
    format!("SELECT string_agg(CAST(number AS TEXT), ',') FROM ({sql}) AS listed")
}

/// Nonconformities logged in a review period that share severity, source and month.
#[derive(Debug, Clone)]
pub struct NcFacts {
    /// Severity.
    pub severity: String,
    /// Source.
    pub source: String,
    /// Month logged (YYYY-MM).
    pub month: String,
    /// Their numbers, in order.
    pub numbers: Vec<i64>,
}

/// What the readiness check counts (see [`Store::record_counts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordCounts {
    /// Audits completed in the period.
    pub audits: usize,
    /// Management reviews held in the period.
    pub reviews: usize,
    /// Objectives.
    pub objectives: usize,
    /// Measurements.
    pub measurements: usize,
    /// Competence records.
    pub competence_records: usize,
}

/// A stored management review, before its actions are attached.
#[derive(Debug, Clone)]
pub struct StoredReview {
    /// Number.
    pub number: i64,
    /// Date of the meeting.
    pub review_date: String,
    /// The rest (JSON).
    pub body: serde_json::Value,
    /// When recorded.
    pub created_at: String,
    /// By whom.
    pub created_by: String,
}

impl Write {
    /// Creates or replaces a context register entry.
    pub async fn upsert_context(&mut self, item: &ContextItem) -> Result<()> {
        let body = serde_json::json!({ "description": item.description, "expectations": item.expectations, "feedback": item.feedback });
        self.conn()
            .execute("DELETE FROM context_items WHERE kind = $1 AND name = $2", args![item.kind.as_str(), item.name])
            .await?;
        let sql = "INSERT INTO context_items (kind, name, body, active, changed_at, changed_by) VALUES ($1, $2, $3, $4, $5, $6)";
        self.conn()
            .execute(
                sql,
                args![
                    item.kind.as_str(),
                    item.name,
                    body.to_string(),
                    i64::from(item.active),
                    item.changed_at,
                    item.changed_by,
                ],
            )
            .await?;
        Ok(())
    }

    /// Stores a management review and its actions; returns its number.
    pub async fn insert_management_review(
        &mut self,
        actor: &str,
        review_date: &str,
        body: &serde_json::Value,
        actions: &[(String, String, String)],
    ) -> Result<i64> {
        let number = self.next_number(RecordKind::ManagementReview).await?;
        let now = stamp(self.now());
        let sql = "INSERT INTO management_reviews (number, review_date, body, created_at, created_by) VALUES ($1, $2, $3, $4, $5)";
        self.conn().execute(sql, args![number, review_date, body.to_string(), now, actor]).await?;
        for (i, (description, owner, due)) in actions.iter().enumerate() {
            self.conn().execute(INSERT_REVIEW_ACTION, args![number, i as i64 + 1, description, owner, due]).await?;
        }
        Ok(number)
    }

    /// Marks a review action done; false when it was not open.
    pub async fn complete_review_action(&mut self, mr: i64, n: i64, note: Option<&str>) -> Result<bool> {
        let now = stamp(self.now());
        let changed = self.conn().execute(COMPLETE_REVIEW_ACTION, args![now, note, mr, n]).await?;
        Ok(changed == 1)
    }
}

impl Reader {
    /// A management review, or the latest with `None`.
    pub async fn review(&mut self, number: Option<i64>) -> Result<Option<StoredReview>> {
        const COLUMNS: &str = "SELECT number, review_date, body, created_at, created_by FROM management_reviews";
        let row = match number {
            Some(n) => self.conn().fetch_optional(&format!("{COLUMNS} WHERE number = $1"), args![n]).await?,
            None => self.conn().fetch_optional(&format!("{COLUMNS} ORDER BY number DESC LIMIT 1"), args![]).await?,
        };
        let Some(r) = row else { return Ok(None) };
        Ok(Some(StoredReview {
            number: r.get(0)?,
            review_date: r.get(1)?,
            body: serde_json::from_str(&r.get::<String>(2)?)
                .map_err(|e| Error::Internal(format!("stored review: {e}")))?,
            created_at: r.get(3)?,
            created_by: r.get(4)?,
        }))
    }

    /// Review actions: of one review, or all of them.
    pub async fn review_actions(&mut self, mr: Option<i64>, today: NaiveDate) -> Result<Vec<ReviewAction>> {
        let rows = self
            .conn()
            .fetch_all(
                "SELECT mr, n, description, owner, due_date, status, done_at, note FROM review_actions \
             WHERE mr = $1 OR $2 = 1 ORDER BY mr, n",
                args![mr.unwrap_or(0), i64::from(mr.is_none())],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let status: ActionStatus = r.get::<String>(5)?.parse()?;
                let due: String = r.get(4)?;
                let mr: i64 = r.get(0)?;
                let n: i64 = r.get(1)?;
                Ok(ReviewAction {
                    reference: format!("{}.{n}", RecordRef::new(RecordKind::ManagementReview, mr)),
                    description: r.get(2)?,
                    owner: r.get(3)?,
                    overdue: action_overdue(status, &due, today),
                    due_date: due,
                    status,
                    done_at: r.get(6)?,
                    note: r.get(7)?,
                })
            })
            .collect()
    }
}

impl Store {
    /// Context register entries of one kind (or all), changed on or after `since` (or any).
    pub async fn context(&self, kind: Option<ContextKind>, since: Option<&str>) -> Result<Vec<ContextItem>> {
        let rows = self
            .read()
            .await?
            .conn()
            .fetch_all(
                "SELECT kind, name, body, active, changed_at, changed_by FROM context_items \
             WHERE changed_at >= $1 ORDER BY kind, name",
                args![since.unwrap_or("")],
            )
            .await?;
        let rows: Vec<_> = rows
            .into_iter()
            .filter(|r| kind.is_none_or(|k| r.get::<String>(0).is_ok_and(|v| v == k.as_str())))
            .collect();
        rows.iter()
            .map(|r| {
                let body: serde_json::Value = serde_json::from_str(&r.get::<String>(2)?)
                    .map_err(|e| Error::Internal(format!("stored context: {e}")))?;
                let text = |k: &str| body[k].as_str().map(str::to_owned);
                Ok(ContextItem {
                    kind: r.get::<String>(0)?.parse()?,
                    name: r.get(1)?,
                    description: text("description").unwrap_or_default(),
                    expectations: text("expectations"),
                    feedback: text("feedback"),
                    active: r.get::<i64>(3)? == 1,
                    changed_at: r.get(4)?,
                    changed_by: r.get(5)?,
                })
            })
            .collect()
    }

    /// A management review, or the latest with `None`.
    pub async fn review(&self, number: Option<i64>) -> Result<Option<StoredReview>> {
        self.read().await?.review(number).await
    }

    /// Review actions: of one review, or all of them.
    pub async fn review_actions(&self, mr: Option<i64>, today: NaiveDate) -> Result<Vec<ReviewAction>> {
        self.read().await?.review_actions(mr, today).await
    }

    /// Nonconformities logged on or after the stamp `since`, grouped by severity, source and
    /// month, each group's numbers aggregated into one value: a few dozen rows however many
    /// were logged (each row costs more than its aggregation, on PostgreSQL through the `Any`
    /// driver above all). Sorted here, not in SQL: asked to sort by number, SQLite, which has
    /// no statistics, scans the whole table rather than read the period from the covering
    /// `created_at` index.
    pub async fn nc_facts(&self, since: &str) -> Result<Vec<NcFacts>> {
        let rows = self.read().await?.conn().fetch_all(NC_FACTS, args![since]).await?;
        rows.iter()
            .map(|r| {
                Ok(NcFacts {
                    severity: r.get(0)?,
                    source: r.get(1)?,
                    month: r.get(2)?,
                    numbers: joined_numbers(r.get(3)?)?,
                })
            })
            .collect()
    }

    /// Numbers of the nonconformities closed on or after the stamp `since`.
    pub async fn ncs_closed_since(&self, since: &str) -> Result<Vec<i64>> {
        self.numbers(NCS_CLOSED_SINCE, since).await
    }

    /// How many nonconformities are not closed.
    pub async fn ncs_open(&self) -> Result<i64> {
        self.count("SELECT COUNT(*) FROM nonconformities WHERE closed_at IS NULL").await
    }

    /// Numbers of records of a table matching one fixed condition (`sql` selects `number`),
    /// with one bound value, in order: aggregated into one value in the database, as in
    /// [`Store::nc_facts`], and sorted here for the reason given there.
    async fn numbers(&self, sql: &str, value: &str) -> Result<Vec<i64>> {
        joined_numbers(self.read().await?.conn().fetch_one(&aggregated(sql), args![value]).await?.get(0)?)
    }

    /// Corrective actions done since `since`.
    pub async fn actions_done_since(&self, since: &str) -> Result<Vec<i64>> {
        self.numbers(ACTIONS_DONE_SINCE, since).await
    }

    /// Open corrective actions past their due date on `today`.
    pub async fn actions_overdue(&self, today: &str) -> Result<Vec<i64>> {
        self.numbers(&actions_overdue_query(), today).await
    }

    /// What the readiness check counts, in one statement: audits completed and management
    /// reviews held on or after the date `since`, and every objective, measurement and
    /// competence record.
    pub async fn record_counts(&self, since: &str) -> Result<RecordCounts> {
        let sql = "SELECT \
            (SELECT COUNT(*) FROM audits WHERE status = 'completed' AND audit_date >= $1), \
            (SELECT COUNT(*) FROM management_reviews WHERE review_date >= $1), \
            (SELECT COUNT(*) FROM objectives), (SELECT COUNT(*) FROM measurements), \
            (SELECT COUNT(*) FROM competence_records)";
        let r = self.read().await?.conn().fetch_one(sql, args![since]).await?;
        let count = |i: usize| r.get::<i64>(i).map(|n| usize::try_from(n).unwrap_or(0));
        Ok(RecordCounts {
            audits: count(0)?,
            reviews: count(1)?,
            objectives: count(2)?,
            measurements: count(3)?,
            competence_records: count(4)?,
        })
    }

    /// How many rows a fixed counting query finds.
    pub(super) async fn count(&self, sql: &'static str) -> Result<i64> {
        self.read().await?.conn().fetch_one(sql, args![]).await?.get(0)
    }
}

/// The query of [`Store::actions_overdue`]: `$1` is today.
pub(super) fn actions_overdue_query() -> String {
    format!(
        "SELECT ca.number FROM corrective_actions ca JOIN nonconformities n ON n.number = ca.nc \
         WHERE ca.status IN {CA_OPEN} AND n.status IN {NC_OPEN} AND ca.due_date < $1"
    )
}
