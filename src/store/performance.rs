//! Objectives and measurements (6.2, 9.1) and internal audits (9.2).

use std::collections::HashMap;

use super::sql::{Cells, Conn, Row, args, json_text};
use super::{Reader, Store, Write};
use crate::domain::corrective_action::CaStatus;
use crate::domain::internal_audit::{Audit, AuditBody, AuditStatus};
use crate::domain::objective::{ComputedMetric, Measurement, Objective, ObjectiveBody};
use crate::domain::references::{RecordKind, RecordRef};
use crate::domain::time::stamp;
use crate::error::{Error, Result};

fn parse<T: serde::de::DeserializeOwned>(what: &str, raw: &str) -> Result<T> {
    serde_json::from_str(raw).map_err(|e| Error::Internal(format!("stored {what}: {e}")))
}

const OBJECTIVE_COLUMNS: &str = "number, body, computed, owner, created_at, created_by";
/// A measurement's columns: its objective's number, its fields, and its `id` (the order
/// recorded).
const MEASUREMENT_COLUMNS: &str = "objective, value, period, source, met, recorded_at, recorded_by, id";

async fn load_objective(conn: &mut Conn<'_>, number: i64) -> Result<Option<Objective>> {
    let sql = format!("SELECT {OBJECTIVE_COLUMNS} FROM objectives WHERE number = $1");
    let Some(r) = conn.fetch_optional(&sql, args![number]).await? else {
        return Ok(None);
    };
    let sql = format!("SELECT {MEASUREMENT_COLUMNS} FROM measurements WHERE objective = $1 ORDER BY id");
    let rows = conn.fetch_all(&sql, args![number]).await?;
    let measurements = rows.iter().map(measurement_from_row).collect::<Result<_>>()?;
    objective_from_row(&r, measurements).map(Some)
}

/// A measurement read with [`MEASUREMENT_COLUMNS`].
fn measurement_from_row(m: &impl Cells) -> Result<Measurement> {
    let value: String = m.get(1)?;
    Ok(Measurement {
        value: value.parse().map_err(|_| Error::Internal(format!("stored measurement `{value}`")))?,
        period: m.get(2)?,
        source: m.get(3)?,
        met: m.get::<i64>(4)? == 1,
        recorded_at: m.get(5)?,
        recorded_by: m.get(6)?,
    })
}

/// An objective read with [`OBJECTIVE_COLUMNS`], with its measurements in the order recorded.
fn objective_from_row(r: &impl Cells, measurements: Vec<Measurement>) -> Result<Objective> {
    let body: ObjectiveBody = parse("objective", &r.get::<String>(1)?)?;
    let computed: Option<ComputedMetric> = r.get::<Option<String>>(2)?.map(|c| c.parse()).transpose()?;
    Ok(Objective {
        reference: RecordRef::new(RecordKind::Objective, r.get(0)?).to_string(),
        body,
        computed,
        owner: r.get(3)?,
        met: measurements.last().map(|m| m.met),
        measurements,
        created_at: r.get(4)?,
        created_by: r.get(5)?,
    })
}

/// The condition of [`Reader::audits_held_since`]: completed audits held on or after `$1`.
pub(super) const AUDITS_HELD_SINCE: &str = "WHERE status = 'completed' AND audit_date >= $1 ORDER BY number";

/// The corrective actions of major nonconformities done or due before `$1` (due date,
/// status, last update), for the on-time share of major actions.
pub(super) const MAJOR_ACTIONS: &str = "SELECT ca.due_date, ca.status, ca.updated_at FROM corrective_actions ca \
     JOIN nonconformities n ON n.number = ca.nc \
     WHERE n.severity = 'major' AND (ca.status = 'done' OR ca.due_date < $1)";

const AUDIT_COLUMNS: &str =
    "number, status, auditor, planned_date, audit_date, body, version, created_at, updated_at, updated_by";

fn audit_from_row(r: &impl Cells) -> Result<Audit> {
    Ok(Audit {
        reference: RecordRef::new(RecordKind::Audit, r.get(0)?).to_string(),
        status: r.get::<String>(1)?.parse()?,
        auditor: r.get(2)?,
        planned_date: r.get(3)?,
        audit_date: r.get(4)?,
        body: parse("audit", &r.get::<String>(5)?)?,
        version: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
        updated_by: r.get(9)?,
    })
}

async fn load_audit(conn: &mut Conn<'_>, number: i64) -> Result<Option<Audit>> {
    let sql = format!("SELECT {AUDIT_COLUMNS} FROM audits WHERE number = $1");
    let row = conn.fetch_optional(&sql, args![number]).await?;
    row.as_ref().map(audit_from_row).transpose()
}

impl Write {
    /// Inserts an objective with the next `OBJ-n` number.
    pub async fn insert_objective(
        &mut self,
        actor: &str,
        body: &ObjectiveBody,
        computed: Option<ComputedMetric>,
        owner: &str,
    ) -> Result<Objective> {
        let number = self.next_number(RecordKind::Objective).await?;
        let now = stamp(self.now());
        let sql = "INSERT INTO objectives (number, body, computed, owner, version, created_at, created_by) VALUES ($1, $2, $3, $4, 1, $5, $6)";
        self.conn()
            .execute(sql, args![number, json_text(body)?, computed.map(ComputedMetric::as_str), owner, now, actor])
            .await?;
        self.objective(number).await?.ok_or_else(|| Error::Internal(format!("OBJ-{number} vanished")))
    }

    /// An objective read inside this write.
    pub async fn objective(&mut self, number: i64) -> Result<Option<Objective>> {
        load_objective(&mut self.conn(), number).await
    }

    /// Stores a measurement.
    pub async fn insert_measurement(&mut self, objective: i64, m: &Measurement) -> Result<()> {
        let sql = "INSERT INTO measurements (objective, value, period, source, met, recorded_at, recorded_by) VALUES ($1, $2, $3, $4, $5, $6, $7)";
        self.conn()
            .execute(
                sql,
                args![
                    objective,
                    m.value.to_string(),
                    m.period,
                    m.source,
                    i64::from(m.met),
                    m.recorded_at,
                    m.recorded_by,
                ],
            )
            .await?;
        Ok(())
    }

    /// Inserts an audit with the next `AUD-n` number.
    pub async fn insert_audit(&mut self, actor: &str, a: &Audit) -> Result<i64> {
        let number = self.next_number(RecordKind::Audit).await?;
        let now = stamp(self.now());
        self.conn()
            .execute(
                "INSERT INTO audits (number, status, auditor, planned_date, audit_date, body, version, created_at, created_by, updated_at, updated_by) \
             VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8, $7, $8)",
                args![
                    number,
                    a.status.as_str(),
                    a.auditor.as_deref(),
                    a.planned_date,
                    a.audit_date.as_deref(),
                    json_text(&a.body)?,
                    now,
                    actor,
                ],
            )
        .await?;
        Ok(number)
    }

    /// An audit read inside this write.
    pub async fn audit(&mut self, number: i64) -> Result<Option<Audit>> {
        load_audit(&mut self.conn(), number).await
    }

    /// Completes an audit read at version `expected`.
    pub async fn complete_audit(
        &mut self,
        actor: &str,
        number: i64,
        expected: i64,
        auditor: &str,
        audit_date: &str,
        body: &AuditBody,
    ) -> Result<()> {
        self.versioned_update(
            "UPDATE audits SET status = $1, auditor = $2, audit_date = $3, body = $4, version = version + 1, \
             updated_at = $5, updated_by = $6 WHERE number = $7 AND version = $8",
            args![AuditStatus::Completed.as_str(), auditor, audit_date, json_text(body)?],
            "audits",
            RecordRef::new(RecordKind::Audit, number),
            actor,
            expected,
        )
        .await
    }
}

impl Reader {
    /// The objective with this number, with its measurements.
    pub async fn objective(&mut self, number: i64) -> Result<Option<Objective>> {
        load_objective(&mut self.conn(), number).await
    }

    /// The audit with this number.
    pub async fn audit(&mut self, number: i64) -> Result<Option<Audit>> {
        load_audit(&mut self.conn(), number).await
    }

    /// Every objective, by number, with its measurements, read at once (one statement on
    /// PostgreSQL), whatever their number.
    pub async fn objectives(&mut self) -> Result<Vec<Objective>> {
        let all = format!("SELECT {OBJECTIVE_COLUMNS} FROM objectives ORDER BY number");
        let measured = format!("SELECT {MEASUREMENT_COLUMNS} FROM measurements ORDER BY objective, id");
        let parts = self.conn().fetch_parts(&[(&all, args![]), (&measured, args![])]).await?;
        let [objectives, measured] = &parts[..] else {
            return Err(Error::Internal(format!("objectives are read in 2 parts, not {}", parts.len())));
        };
        // Sorted here as well: which measurement is last decides whether an objective is met,
        // and no order should rest on how PostgreSQL aggregates a sorted subquery.
        let mut measurements: HashMap<i64, Vec<(i64, Measurement)>> = HashMap::new();
        for m in measured {
            measurements.entry(m.get(0)?).or_default().push((m.get(7)?, measurement_from_row(m)?));
        }
        let mut all = objectives
            .iter()
            .map(|o| {
                let number: i64 = o.get(0)?;
                let mut taken = measurements.remove(&number).unwrap_or_default();
                taken.sort_unstable_by_key(|(id, _)| *id);
                Ok((number, objective_from_row(o, taken.into_iter().map(|(_, m)| m).collect())?))
            })
            .collect::<Result<Vec<_>>>()?;
        all.sort_unstable_by_key(|(number, _)| *number);
        Ok(all.into_iter().map(|(_, o)| o).collect())
    }

    /// The completed audits held on or after the date `since`, by number.
    pub async fn audits_held_since(&mut self, since: &str) -> Result<Vec<Audit>> {
        let sql = format!("SELECT {AUDIT_COLUMNS} FROM audits {AUDITS_HELD_SINCE}");
        self.conn().fetch_all(&sql, args![since]).await?.iter().map(audit_from_row).collect()
    }
}

impl Store {
    /// The objective with this number, with its measurements.
    pub async fn objective(&self, number: i64) -> Result<Option<Objective>> {
        self.read().await?.objective(number).await
    }

    /// The audit with this number.
    pub async fn audit(&self, number: i64) -> Result<Option<Audit>> {
        self.read().await?.audit(number).await
    }

    /// Every objective, by number, with its measurements, in one state of the database.
    pub async fn objectives(&self) -> Result<Vec<Objective>> {
        self.reads().await?.objectives().await
    }

    /// The completed audits held on or after the date `since`, by number.
    pub async fn audits_held_since(&self, since: &str) -> Result<Vec<Audit>> {
        self.read().await?.audits_held_since(since).await
    }

    /// Corrective actions of major nonconformities that are done or due by `today`, as
    /// (due date, done at or none).
    pub async fn major_actions(&self, today: &str) -> Result<Vec<(String, Option<String>)>> {
        let rows = self.read().await?.conn().fetch_all(MAJOR_ACTIONS, args![today]).await?;
        let done = |r: &Row| -> Result<bool> { Ok(r.get::<String>(1)? == CaStatus::Done.as_str()) };
        rows.iter().map(|r| Ok((r.get(0)?, done(r)?.then(|| r.get(2)).transpose()?))).collect()
    }

    /// Owners of what an audit may cover: SoA entry owners of controls, risk owners, action
    /// owners, change requesters; as (what, owner).
    pub async fn owners_in_scope(&self, controls: &[String], records: &[RecordRef]) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        let mut reader = self.read().await?;
        let mut conn = reader.conn();
        for c in controls {
            let sql = "SELECT owner FROM soa_entries WHERE control = $1";
            let owners: Vec<Option<String>> = conn.fetch_column(sql, args![c]).await?;
            if let Some(o) = owners.into_iter().flatten().next() {
                out.push((c.clone(), o));
            }
        }
        for r in records {
            let sql = match r.kind {
                RecordKind::Risk => "SELECT owner FROM risks WHERE number = $1",
                RecordKind::CorrectiveAction => "SELECT owner FROM corrective_actions WHERE number = $1",
                RecordKind::ChangeRequest => "SELECT requester FROM change_requests WHERE number = $1",
                RecordKind::Nonconformity => "SELECT owner FROM corrective_actions WHERE nc = $1",
                _ => continue,
            };
            let owners: Vec<String> = conn.fetch_column(sql, args![r.number]).await?;
            out.extend(owners.into_iter().map(|o| (r.to_string(), o)));
        }
        Ok(out)
    }
}
