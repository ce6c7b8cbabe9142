//! Operations on any record: reading one with its history, and verifying the audit trail.

use std::sync::Arc;

use chrono::Utc;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{App, Effect, Operation};
use crate::domain::access::Access;
use crate::domain::actor::Actor;
use crate::domain::references::{ControlRef, RecordKind, RecordRef};
use crate::domain::soa::diff;
use crate::error::{Error, Result};
use crate::store::{AuditEntry, ChainReport, InFull};

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

/// The current state of a record as JSON, if it exists, and its history. A nonconformity or
/// corrective action is read with its change requests and history at once (see
/// `Reader::nonconformity_in_full`); other records first, then their history.
async fn load_record(app: &App, r: RecordRef) -> Result<(Option<serde_json::Value>, Vec<AuditEntry>)> {
    let today = Utc::now().date_naive();
    let value = match r.kind {
        RecordKind::Nonconformity => {
            return in_full(app.store.reads().await?.nonconformity_in_full(r.number, today).await?);
        }
        RecordKind::CorrectiveAction => {
            return in_full(app.store.reads().await?.corrective_action_in_full(r.number, today).await?);
        }
        RecordKind::Risk => app
            .store
            .risk(r.number, app.risk)
            .await?
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| Error::Internal(e.to_string()))?,
        RecordKind::SoaVersion => match app.store.soa_version(Some(r.number)).await? {
            None => None,
            Some(v) => {
                let previous = match v.number {
                    1 => None,
                    n => app.store.soa_version(Some(n - 1)).await?,
                };
                let changes = diff(previous.as_ref().map(|p| p.entries.as_slice()).unwrap_or_default(), &v.entries);
                let mut value = serde_json::to_value(&v).map_err(|e| Error::Internal(e.to_string()))?;
                value["changes"] = serde_json::to_value(changes).map_err(|e| Error::Internal(e.to_string()))?;
                Some(value)
            }
        },
        RecordKind::ChangeRequest => app
            .store
            .change_request(r.number, app.change)
            .await?
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| Error::Internal(e.to_string()))?,
        RecordKind::Objective => app
            .store
            .objective(r.number)
            .await?
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| Error::Internal(e.to_string()))?,
        RecordKind::Audit => app
            .store
            .audit(r.number)
            .await?
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| Error::Internal(e.to_string()))?,
        RecordKind::ManagementReview => match app.store.review(Some(r.number)).await? {
            None => None,
            Some(review) => {
                let mut value = review.body.clone();
                value["ref"] = serde_json::json!(r.to_string());
                value["review_date"] = serde_json::json!(review.review_date);
                value["recorded_at"] = serde_json::json!(review.created_at);
                value["recorded_by"] = serde_json::json!(review.created_by);
                let actions = app.store.review_actions(Some(r.number), today).await?;
                value["actions"] = serde_json::to_value(actions).map_err(|e| Error::Internal(e.to_string()))?;
                Some(value)
            }
        },
    };
    match value {
        Some(value) => Ok((Some(value), app.store.history(&r.to_string()).await?)),
        None => Ok((None, Vec::new())),
    }
}

async fn get_record(app: Arc<App>, _actor: Actor, input: GetRecord) -> Result<RecordWithHistory> {
    if input.reference.trim().to_ascii_uppercase().starts_with("A.") {
        return control_with_history(&app, &ControlRef::parse("ref", &input.reference)?).await;
    }
    record_with_history(&app, RecordRef::parse("ref", &input.reference)?).await
}

/// An Annex A control with its SoA entry and the entry's history.
pub(crate) async fn control_with_history(app: &App, control: &ControlRef) -> Result<RecordWithHistory> {
    let view = super::controls::control_view(app, control).await?;
    let record = match serde_json::to_value(view).map_err(|e| Error::Internal(e.to_string()))? {
        serde_json::Value::Object(m) => m,
        _ => return Err(Error::Internal("a control view is an object".into())),
    };
    let history = app.store.history(&format!("soa:{control}")).await?;
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
    let mut record = serde_json::to_value(&read.record).map_err(|e| Error::Internal(e.to_string()))?;
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
