//! Operations on any record: reading one with its history, and verifying the audit trail.

use std::sync::Arc;

use chrono::Utc;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{App, Effect, Operation};
use crate::domain::access::Access;
use crate::domain::actor::Actor;
use crate::domain::references::{RecordKind, RecordRef};
use crate::error::{Error, Result};
use crate::store::{AuditEntry, ChainReport};

pub(super) fn operations() -> Vec<Operation> {
    vec![
        Operation::new("get_record", Effect::Read, Access::Everyone, get_record),
        Operation::new("verify_audit_trail", Effect::Read, Access::Everyone, verify_audit_trail),
    ]
}

/// Get any record by ref (NC-12, CA-7, ...) with its full history from the audit trail.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetRecord {
    /// Record reference, e.g. "NC-12".
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

/// Loads the current state of a record as a JSON object, if it exists.
async fn load_record(app: &App, r: RecordRef) -> Result<Option<serde_json::Map<String, serde_json::Value>>> {
    let value = match r.kind {
        RecordKind::Nonconformity => app
            .store
            .nonconformity(r.number, Utc::now().date_naive())
            .await?
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| Error::Internal(e.to_string()))?,
        RecordKind::CorrectiveAction => app
            .store
            .corrective_action(r.number, Utc::now().date_naive())
            .await?
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| Error::Internal(e.to_string()))?,
        RecordKind::ChangeRequest | RecordKind::Risk | RecordKind::Audit | RecordKind::ManagementReview => None,
    };
    Ok(value.and_then(|v| match v {
        serde_json::Value::Object(m) => Some(m),
        _ => None,
    }))
}

async fn get_record(app: Arc<App>, _actor: Actor, input: GetRecord) -> Result<RecordWithHistory> {
    record_with_history(&app, RecordRef::parse("ref", &input.reference)?).await
}

/// A record with its history, as `get_record` and the `isms://records/{ref}` resource serve it.
pub(crate) async fn record_with_history(app: &App, r: RecordRef) -> Result<RecordWithHistory> {
    let record = load_record(app, r).await?.ok_or_else(|| {
        Error::not_found(
            r.to_string(),
            format!("check the reference; {} records are numbered from 1 in the order logged", r.kind.prefix()),
        )
    })?;
    let history = app.store.history(r).await?;
    Ok(RecordWithHistory { reference: r.to_string(), kind: r.kind.name().to_owned(), record, history })
}

/// Verify the tamper-evident audit trail: walks the SHA-256 chain and reports the first broken entry, if any.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyAuditTrail {}

async fn verify_audit_trail(app: Arc<App>, _actor: Actor, _input: VerifyAuditTrail) -> Result<ChainReport> {
    app.store.verify_chain().await
}
