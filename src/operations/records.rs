//! Operations on any record: reading one with its history, and verifying the audit trail.

use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{App, Effect, Operation, json};
use crate::domain::access::Access;
use crate::domain::actor::Actor;
use crate::domain::references::{ControlRef, RecordKind, RecordRef};
use crate::domain::soa::diff;
use crate::error::{Error, Result};
use crate::store::{AuditEntry, ChainReport, InFull, Reader};

pub(super) fn operations() -> Vec<Operation> {
    vec![
        Operation::new("get_record", Effect::Read, Access::Everyone, get_record),
        Operation::new("verify_audit_trail", Effect::Read, Access::Everyone, verify_audit_trail),
    ]
}

/// Get any record by ref, with its audit-trail history.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetRecord {
    /// NC-12, CA-7, CR-3, RISK-4, AUD-1, MR-1, OBJ-2, SOA-2, or a control A.8.28.
    #[serde(rename = "ref")]
    pub reference: String,
}

/// A record and its history.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RecordWithHistory {
    /// Reference.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Kind of record, e.g. `nonconformity`.
    pub kind: String,
    /// The record's current fields.
    pub record: serde_json::Map<String, serde_json::Value>,
    /// Every change, oldest first: who, when, which operation, what.
    pub history: Vec<AuditEntry>,
}

/// The current state of a record as JSON, if it exists, and its history, read in one state
/// of the database. A nonconformity or corrective action is read with its change requests
/// and history at once (see `Reader::nonconformity_in_full`); other records in a
/// [`Snapshot`](crate::store::Snapshot), one statement after another.
async fn load_record(app: &App, r: RecordRef) -> Result<(Option<serde_json::Value>, Vec<AuditEntry>)> {
    let today = Utc::now().date_naive();
    match r.kind {
        RecordKind::Nonconformity => in_full(app.store.reads().await?.nonconformity_in_full(r.number, today).await?),
        RecordKind::CorrectiveAction => {
            in_full(app.store.reads().await?.corrective_action_in_full(r.number, today).await?)
        }
        RecordKind::Risk => in_snapshot(app, r, async |reader| to_json(reader.risk(r.number, app.risk).await?)).await,
        RecordKind::SoaVersion => {
            in_snapshot(app, r, async |reader| soa_version_with_changes(reader, r.number).await).await
        }
        RecordKind::ChangeRequest => {
            in_snapshot(app, r, async |reader| to_json(reader.change_request(r.number, app.change).await?)).await
        }
        RecordKind::Objective => in_snapshot(app, r, async |reader| to_json(reader.objective(r.number).await?)).await,
        RecordKind::Audit => in_snapshot(app, r, async |reader| to_json(reader.audit(r.number).await?)).await,
        RecordKind::ManagementReview => {
            in_snapshot(app, r, async |reader| review_with_actions(reader, r, today).await).await
        }
    }
}

/// What `read` makes of record `r` and, if it exists, its history, read in one snapshot.
async fn in_snapshot(
    app: &App,
    r: RecordRef,
    read: impl AsyncFnOnce(&mut Reader) -> Result<Option<serde_json::Value>>,
) -> Result<(Option<serde_json::Value>, Vec<AuditEntry>)> {
    let mut snapshot = app.store.snapshot().await?;
    let value = read(snapshot.reader()).await?;
    let history = match value {
        Some(_) => snapshot.history(&r.to_string()).await?,
        None => Vec::new(),
    };
    snapshot.finish().await?;
    Ok((value, history))
}

/// An approved SoA version with what changed since the version before it.
async fn soa_version_with_changes(reader: &mut Reader, number: i64) -> Result<Option<serde_json::Value>> {
    let Some(v) = reader.soa_version(Some(number)).await? else { return Ok(None) };
    let previous = match v.number {
        1 => None,
        n => reader.soa_version(Some(n - 1)).await?,
    };
    let changes = diff(previous.as_ref().map(|p| p.entries.as_slice()).unwrap_or_default(), &v.entries);
    let mut value = json(&v)?;
    value["changes"] = json(&changes)?;
    Ok(Some(value))
}

/// A management review as recorded, with its actions.
async fn review_with_actions(reader: &mut Reader, r: RecordRef, today: NaiveDate) -> Result<Option<serde_json::Value>> {
    let Some(review) = reader.review(Some(r.number)).await? else { return Ok(None) };
    let mut value = review.body;
    value["ref"] = serde_json::json!(r.to_string());
    value["review_date"] = serde_json::json!(review.review_date);
    value["recorded_at"] = serde_json::json!(review.created_at);
    value["recorded_by"] = serde_json::json!(review.created_by);
    let actions = reader.review_actions(Some(r.number), today).await?;
    value["actions"] = json(&actions)?;
    Ok(Some(value))
}

/// A record read, as JSON.
fn to_json<T: Serialize>(record: Option<T>) -> Result<Option<serde_json::Value>> {
    record.as_ref().map(json).transpose()
}

async fn get_record(app: Arc<App>, _actor: Actor, input: GetRecord) -> Result<RecordWithHistory> {
    if input.reference.trim().to_ascii_uppercase().starts_with("A.") {
        return control_with_history(&app, &ControlRef::parse("ref", &input.reference)?).await;
    }
    record_with_history(&app, RecordRef::parse("ref", &input.reference)?).await
}

/// An Annex A control with its SoA entry and the entry's history, read in one snapshot.
pub(crate) async fn control_with_history(app: &App, control: &ControlRef) -> Result<RecordWithHistory> {
    let mut snapshot = app.store.snapshot().await?;
    let view = super::controls::control_view(app, snapshot.reader(), control).await?;
    let record = match json(&view)? {
        serde_json::Value::Object(m) => m,
        _ => return Err(Error::Internal("a control view is an object".into())),
    };
    let history = snapshot.history(&format!("soa:{control}")).await?;
    snapshot.finish().await?;
    Ok(RecordWithHistory { reference: control.to_string(), kind: "control".to_owned(), record, history })
}

/// A record with its history, as `get_record` and the `isms://records/{ref}` resource serve it.
pub(crate) async fn record_with_history(app: &App, r: RecordRef) -> Result<RecordWithHistory> {
    let (record, history) = load_record(app, r).await?;
    let record = match record {
        Some(serde_json::Value::Object(m)) => m,
        Some(_) => return Err(Error::Internal(format!("{r} is not a JSON object"))),
        None => {
            return Err(Error::not_found(
                r.to_string(),
                format!("check the reference; {} records are numbered from 1 in the order logged", r.kind.prefix()),
            ));
        }
    };
    Ok(RecordWithHistory { reference: r.to_string(), kind: r.kind.name().to_owned(), record, history })
}

/// The JSON of a record read in full, with its change requests as a field, and its history.
fn in_full<T: Serialize>(read: Option<InFull<T>>) -> Result<(Option<serde_json::Value>, Vec<AuditEntry>)> {
    let Some(read) = read else { return Ok((None, Vec::new())) };
    let mut record = json(&read.record)?;
    let fields = record.as_object_mut().ok_or_else(|| Error::Internal("a record is a JSON object".into()))?;
    fields.insert("change_requests".into(), serde_json::json!(read.change_requests));
    Ok((Some(record), read.history))
}

/// Verify the audit trail's SHA-256 hash chain; reports the first broken entry, if any.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyAuditTrail {}

async fn verify_audit_trail(app: Arc<App>, _actor: Actor, _input: VerifyAuditTrail) -> Result<ChainReport> {
    app.store.verify_chain().await
}
