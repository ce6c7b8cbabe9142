//! Change request rows.

use chrono::{DateTime, Duration, Utc};

use super::sql::{Bind, Cells, Conn, Row, Value, args, json_text};
use super::{Arg, Conditions, Reader, Store, Write};
use crate::domain::change::{
    ChangeBody, ChangePolicy, ChangeRequest, ChangeType, CrStatus, Decision, retrospective_overdue,
};
use crate::domain::references::{ControlRef, RecordKind, RecordRef};
use crate::domain::time::stamp;
use crate::error::{Error, Result};

const COLUMNS: &str = "number, kind, status, requester, nc, ca, body, decision, decided_at, started_at, finished_at, \
    version, created_at, updated_at, updated_by";

/// What `list_change_requests` narrows by.
#[derive(Debug, Clone, Default)]
pub struct CrFilter {
    /// Status.
    pub status: Option<CrStatus>,
    /// Type.
    pub kind: Option<ChangeType>,
    /// An affected control.
    pub control: Option<ControlRef>,
    /// Requester.
    pub requester: Option<String>,
    /// Only those awaiting a decision (emergencies included once implemented).
    pub awaiting_decision: bool,
    /// Only those overdue for retrospective approval or review.
    pub overdue: bool,
    /// Only numbers below this (the cursor).
    pub before: Option<i64>,
    /// Page size.
    pub limit: i64,
}

/// The state fields an update sets.
#[derive(Debug, Clone)]
pub struct CrUpdate {
    /// Status.
    pub status: CrStatus,
    /// Descriptive fields.
    pub body: ChangeBody,
    /// Decision.
    pub decision: Option<Decision>,
    /// When decided.
    pub decided_at: Option<String>,
    /// When implementation started.
    pub started_at: Option<String>,
    /// When implementation ended.
    pub finished_at: Option<String>,
}

fn parse_stamp(s: Option<&str>) -> Option<DateTime<Utc>> {
    s.and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|d| d.with_timezone(&Utc))
}

fn from_row(r: &impl Cells, policy: ChangePolicy, now: DateTime<Utc>) -> Result<ChangeRequest> {
    let kind: ChangeType = r.get::<String>(1)?.parse()?;
    let status: CrStatus = r.get::<String>(2)?.parse()?;
    let body: ChangeBody = serde_json::from_str(&r.get::<String>(6)?)
        .map_err(|e| Error::Internal(format!("stored change request: {e}")))?;
    let decision: Option<Decision> = r.get::<Option<String>>(7)?.map(|d| d.parse()).transpose()?;
    let started_at: Option<String> = r.get(9)?;
    let finished_at: Option<String> = r.get(10)?;
    let approved = decision == Some(Decision::Approve);
    let awaiting_review = matches!(status, CrStatus::Implemented | CrStatus::Failed | CrStatus::RolledBack);
    Ok(ChangeRequest {
        reference: RecordRef::new(RecordKind::ChangeRequest, r.get(0)?).to_string(),
        kind,
        status,
        requester: r.get(3)?,
        nonconformity: r.get::<Option<i64>>(4)?.map(|n| RecordRef::new(RecordKind::Nonconformity, n).to_string()),
        corrective_action: r
            .get::<Option<i64>>(5)?
            .map(|n| RecordRef::new(RecordKind::CorrectiveAction, n).to_string()),
        body,
        retrospective_approval_overdue: status != CrStatus::Closed
            && decision.is_none()
            && retrospective_overdue(
                kind,
                approved,
                parse_stamp(started_at.as_deref()),
                now,
                policy.emergency_approval_hours,
            ),
        review_overdue: awaiting_review
            && parse_stamp(finished_at.as_deref()).is_some_and(|f| now - f > Duration::days(policy.review_days)),
        decision,
        decided_at: r.get(8)?,
        started_at,
        finished_at,
        version: r.get(11)?,
        created_at: r.get(12)?,
        updated_at: r.get(13)?,
        updated_by: r.get(14)?,
    })
}

async fn load(
    conn: &mut Conn<'_>,
    number: i64,
    policy: ChangePolicy,
    now: DateTime<Utc>,
) -> Result<Option<ChangeRequest>> {
    let sql = format!("SELECT {COLUMNS} FROM change_requests WHERE number = $1");
    let row = conn.fetch_optional(&sql, args![number]).await?;
    row.as_ref().map(|r| from_row(r, policy, now)).transpose()
}

impl Write {
    /// Inserts a change request with the next `CR-n` number.
    pub async fn insert_change_request(
        &mut self,
        actor: &str,
        kind: ChangeType,
        status: CrStatus,
        links: (Option<i64>, Option<i64>),
        body: &ChangeBody,
        policy: ChangePolicy,
    ) -> Result<ChangeRequest> {
        let number = self.next_number(RecordKind::ChangeRequest).await?;
        let now = stamp(self.now());
        self.conn()
            .execute(
                "INSERT INTO change_requests (number, kind, status, requester, nc, ca, body, version, created_at, updated_at, updated_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8, $4)",
                args![number, kind.as_str(), status.as_str(), actor, links.0, links.1, json_text(body)?, now],
            )
        .await?;
        for c in &body.controls {
            self.conn().execute("INSERT INTO cr_controls (control, cr) VALUES ($1, $2)", args![c, number]).await?;
        }
        self.change_request(number, policy).await?.ok_or_else(|| Error::Internal(format!("CR-{number} vanished")))
    }

    /// A change request read inside this write.
    pub async fn change_request(&mut self, number: i64, policy: ChangePolicy) -> Result<Option<ChangeRequest>> {
        let now = self.now();
        load(&mut self.conn(), number, policy, now).await
    }

    /// Writes a change request's new state, read at version `expected`.
    pub async fn update_change_request(&mut self, actor: &str, number: i64, expected: i64, u: &CrUpdate) -> Result<()> {
        let sql = "UPDATE change_requests SET status = $1, body = $2, decision = $3, decided_at = $4, started_at = $5, \
             finished_at = $6, version = version + 1, updated_at = $7, updated_by = $8 WHERE number = $9 AND version = $10";
        let decision = u.decision.map(Decision::as_str);
        self.versioned_update(
            sql,
            args![u.status.as_str(), json_text(&u.body)?, decision, u.decided_at, u.started_at, u.finished_at],
            "change_requests",
            RecordRef::new(RecordKind::ChangeRequest, number),
            actor,
            expected,
        )
        .await
    }
}

impl Reader {
    /// The change request with this number, if any.
    pub async fn change_request(&mut self, number: i64, policy: ChangePolicy) -> Result<Option<ChangeRequest>> {
        load(&mut self.conn(), number, policy, Utc::now()).await
    }
}

impl Store {
    /// Change requests matching `filter`, newest first.
    pub async fn change_requests(&self, filter: &CrFilter, policy: ChangePolicy) -> Result<Vec<ChangeRequest>> {
        let now = Utc::now();
        let mut c = Conditions::default();
        if let Some(s) = filter.status {
            c.equals("status", Arg::Text(s.as_str().into()));
        }
        if let Some(k) = filter.kind {
            c.equals("kind", Arg::Text(k.as_str().into()));
        }
        if let Some(control) = &filter.control {
            let p = c.bind(Arg::Text(control.as_str().into()));
            c.push(format!("number IN (SELECT cr FROM cr_controls WHERE control = {p})"));
        }
        if let Some(r) = &filter.requester {
            c.equals("requester", Arg::Text(r.clone()));
        }
        if filter.awaiting_decision {
            c.push(
                "decision IS NULL AND (status = 'submitted' OR (kind = 'emergency' AND status NOT IN ('approved', 'rejected', 'closed')))",
            );
        }
        if filter.overdue {
            let retro = c.bind(Arg::Text(stamp(now - Duration::hours(policy.emergency_approval_hours))));
            let review = c.bind(Arg::Text(stamp(now - Duration::days(policy.review_days))));
            c.push(format!(
                "((kind = 'emergency' AND decision IS NULL AND status <> 'closed' AND started_at < {retro}) OR \
                 (status IN ('implemented', 'failed', 'rolled_back') AND finished_at < {review}))"
            ));
        }
        if let Some(b) = filter.before {
            let p = c.bind(Arg::Int(b));
            c.push(format!("number < {p}"));
        }
        let limit = c.bind(Arg::Int(filter.limit));
        let sql =
            format!("SELECT {COLUMNS} FROM change_requests {} ORDER BY number DESC LIMIT {limit}", c.where_clause());
        let args = c.into_args();
        let values: Vec<Value> = args.iter().map(Bind::value).collect();
        let rows = self.read().await?.conn().fetch_all(&sql, &values).await?;
        rows.iter().map(|r| from_row(r, policy, now)).collect()
    }
}

/// The change requests raised for a nonconformity (`$1` its number) or any of its actions.
pub(super) const CHANGE_REQUESTS_OF_NC: &str = "SELECT number FROM change_requests WHERE nc = $1 \
     OR ca IN (SELECT number FROM corrective_actions WHERE nc = $1) ORDER BY number";

/// The change requests raised for a corrective action, `$1` its number.
pub(super) const CHANGE_REQUESTS_OF_CA: &str = "SELECT number FROM change_requests WHERE ca = $1 ORDER BY number";

/// The references (`CR-n`) of the numbers one of those statements read.
pub(super) fn change_request_refs(rows: &[Row]) -> Result<Vec<String>> {
    rows.iter().map(|r| Ok(RecordRef::new(RecordKind::ChangeRequest, r.get(0)?).to_string())).collect()
}
