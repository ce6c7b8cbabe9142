//! Change requests (6.3, A.8.32): raise, decide, implement and review.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{App, Effect, Operation, request_hash};
use crate::domain::access::{Access, check_owner_or_manager};
use crate::domain::actor::{Actor, Role};
use crate::domain::change::{
    ChangeBody, ChangeRequest, ChangeType, CrStatus, Decision, Review, advance, check_decider, check_review, decide,
    initial_status,
};
use crate::domain::references::{ControlRef, RecordKind, RecordRef};
use crate::domain::text::{self, MAX_TEXT, MAX_TITLE};
use crate::domain::time::{date, parse_date, stamp};
use crate::error::{Error, Result};
use crate::store::{Change, Claim, CrFilter, CrUpdate, Write};

pub(super) fn operations() -> Vec<Operation> {
    const DECIDERS: Access = Access::Only(&[Role::IsmsManager, Role::TopManagement]);
    vec![
        Operation::new("raise_change_request", Effect::Create, Access::Contributors, raise),
        Operation::new("decide_change_request", Effect::Update, DECIDERS, decide_cr),
        Operation::new("update_change_request", Effect::Update, Access::Contributors, update),
        Operation::new("list_change_requests", Effect::Read, Access::Everyone, list),
    ]
}

/// Raise a change request CR-n (6.3, A.8.32).
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RaiseChangeRequest {
    /// One-line summary.
    pub title: String,
    /// What will change.
    pub description: String,
    /// Why.
    pub purpose: String,
    /// Expected, including on security.
    pub consequences: String,
    /// standard: pre-approved; emergency: may start before approval.
    #[serde(rename = "type")]
    pub kind: ChangeType,
    /// Annex A controls affected, e.g. A.8.13.
    #[serde(default)]
    pub controls: Vec<String>,
    /// Assets or systems affected.
    #[serde(default)]
    pub assets: Vec<String>,
    /// On the ISMS scope.
    #[serde(default)]
    pub scope_impact: Option<String>,
    /// On risks.
    #[serde(default)]
    pub risk_impact: Option<String>,
    /// Risks affected, e.g. RISK-4.
    #[serde(default)]
    pub risks: Vec<String>,
    /// How it will be implemented.
    pub implementation_plan: String,
    /// How it will be undone.
    pub rollback_plan: String,
    /// YYYY-MM-DD.
    #[serde(default)]
    pub window_start: Option<String>,
    /// YYYY-MM-DD.
    #[serde(default)]
    pub window_end: Option<String>,
    /// Nonconformity it serves, e.g. NC-3.
    #[serde(default)]
    pub nonconformity: Option<String>,
    /// Corrective action it serves, e.g. CA-7.
    #[serde(default)]
    pub corrective_action: Option<String>,
    /// Retry key: a repeat returns the first result.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// A change request and its next step.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ChangeResult {
    /// The change request.
    pub change_request: ChangeRequest,
    /// True when this answers a retry with the same idempotency key.
    pub replayed: bool,
}

async fn raise(app: Arc<App>, actor: Actor, input: RaiseChangeRequest) -> Result<ChangeResult> {
    const OP: &str = "raise_change_request";
    let mut controls: Vec<String> = Vec::new();
    for c in text::list("controls", &input.controls, 16)? {
        let c = ControlRef::parse("controls", &c)?.as_str().to_owned();
        if !controls.contains(&c) {
            controls.push(c);
        }
    }
    let risks: Vec<RecordRef> = text::list("risks", &input.risks, 20)?
        .iter()
        .map(|r| RecordRef::parse_kind("risks", r, RecordKind::Risk))
        .collect::<Result<_>>()?;
    let window_start = input.window_start.as_deref().map(|d| parse_date("window_start", d)).transpose()?;
    let window_end = input.window_end.as_deref().map(|d| parse_date("window_end", d)).transpose()?;
    if let (Some(s), Some(e)) = (window_start, window_end)
        && e < s
    {
        return Err(Error::invalid("window_end", format!("{e} is before window_start {s}")));
    }
    let body = ChangeBody {
        title: text::required("title", &input.title, MAX_TITLE)?,
        description: text::required("description", &input.description, MAX_TEXT)?,
        purpose: text::required("purpose", &input.purpose, MAX_TEXT)?,
        consequences: text::required("consequences", &input.consequences, MAX_TEXT)?,
        controls,
        assets: text::list("assets", &input.assets, 200)?,
        scope_impact: text::optional("scope_impact", input.scope_impact.as_deref(), MAX_TEXT)?,
        risk_impact: text::optional("risk_impact", input.risk_impact.as_deref(), MAX_TEXT)?,
        risks: risks.iter().map(ToString::to_string).collect(),
        implementation_plan: text::required("implementation_plan", &input.implementation_plan, MAX_TEXT)?,
        rollback_plan: text::required("rollback_plan", &input.rollback_plan, MAX_TEXT)?,
        window_start: window_start.map(date),
        window_end: window_end.map(date),
        decided_by: None,
        decision_reason: None,
        notes: Vec::new(),
        review: None,
    };
    let nc = input
        .nonconformity
        .as_deref()
        .map(|r| RecordRef::parse_kind("nonconformity", r, RecordKind::Nonconformity))
        .transpose()?;
    let ca = input
        .corrective_action
        .as_deref()
        .map(|r| RecordRef::parse_kind("corrective_action", r, RecordKind::CorrectiveAction))
        .transpose()?;
    let key = text::optional("idempotency_key", input.idempotency_key.as_deref(), 200)?;

    let mut w = app.store.begin_write().await?;
    if let Some(key) = &key
        && let Claim::Replay(reference) = w.claim_idempotency(&actor.name, OP, key, &request_hash(&input)?).await?
    {
        let r = RecordRef::parse_kind("ref", &reference, RecordKind::ChangeRequest)?;
        let change_request =
            w.change_request(r.number, app.change).await?.ok_or_else(|| Error::Internal(format!("{r} vanished")))?;
        return Ok(ChangeResult { change_request, replayed: true });
    }
    let existing = w.existing_risks(&risks.iter().map(|r| r.number).collect::<Vec<_>>()).await?;
    if let Some(missing) = risks.iter().find(|r| !existing.contains(&r.number)) {
        return Err(Error::not_found(missing.to_string(), "list the risks that exist; register_risk adds one"));
    }
    let nc_number = match (ca, nc) {
        (Some(ca), given) => {
            let action = w
                .corrective_action(ca.number)
                .await?
                .ok_or_else(|| Error::not_found(ca.to_string(), "check the reference"))?;
            let of = RecordRef::parse("ref", &action.nonconformity)?;
            if given.is_some_and(|n| n != of) {
                return Err(Error::invalid(
                    "nonconformity",
                    format!("{ca} belongs to {of}, not {}", given.map(|n| n.to_string()).unwrap_or_default()),
                ));
            }
            Some(of.number)
        }
        (None, Some(nc)) => {
            w.nonconformity(nc.number).await?.ok_or_else(|| Error::not_found(nc.to_string(), "check the reference"))?;
            Some(nc.number)
        }
        (None, None) => None,
    };
    let status = initial_status(input.kind);
    let change_request = w
        .insert_change_request(&actor.name, input.kind, status, (nc_number, ca.map(|c| c.number)), &body, app.change)
        .await?;
    w.record(Change {
        actor: &actor.name,
        operation: OP,
        record: &change_request.reference,
        event: "change_request.raised",
        detail: &change_request,
    })?;
    if let Some(served) =
        ca.map(|c| c.to_string()).or(nc_number.map(|n| RecordRef::new(RecordKind::Nonconformity, n).to_string()))
    {
        let link = serde_json::json!({ "change_request": change_request.reference });
        w.record(Change {
            actor: &actor.name,
            operation: OP,
            record: &served,
            event: "change_request.linked",
            detail: &link,
        })?;
    }
    if let Some(key) = &key {
        w.complete_idempotency(&actor.name, OP, key, RecordRef::parse("ref", &change_request.reference)?).await?;
    }
    w.commit().await?;
    Ok(ChangeResult { change_request, replayed: false })
}

async fn load(w: &mut Write, app: &App, reference: &str) -> Result<ChangeRequest> {
    let r = RecordRef::parse_kind("ref", reference, RecordKind::ChangeRequest)?;
    let cr = w
        .change_request(r.number, app.change)
        .await?
        .ok_or_else(|| Error::not_found(r.to_string(), "list_change_requests shows those that exist"))?;
    Ok(cr)
}

fn state(cr: &ChangeRequest) -> CrUpdate {
    CrUpdate {
        status: cr.status,
        body: cr.body.clone(),
        decision: cr.decision,
        decided_at: cr.decided_at.clone(),
        started_at: cr.started_at.clone(),
        finished_at: cr.finished_at.clone(),
    }
}

/// Writes a change request's new state with its audit entry and event; returns it as stored.
async fn save(
    w: &mut Write,
    app: &App,
    actor: &Actor,
    op: &str,
    event: &str,
    cr: &ChangeRequest,
    u: &CrUpdate,
) -> Result<ChangeRequest> {
    let r = RecordRef::parse("ref", &cr.reference)?;
    w.update_change_request(&actor.name, r.number, cr.version, u).await?;
    let now = w.change_request(r.number, app.change).await?.ok_or_else(|| Error::Internal(format!("{r} vanished")))?;
    w.record(Change { actor: &actor.name, operation: op, record: &now.reference, event, detail: &now })?;
    Ok(now)
}

/// Approve or reject a change request (ISMS manager or top management, never its requester); emergency changes are decided retrospectively.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideChangeRequest {
    /// Change request, e.g. CR-3.
    #[serde(rename = "ref")]
    pub reference: String,
    /// As last read.
    pub version: i64,
    /// approve | reject.
    pub decision: Decision,
    /// Why; required to reject.
    #[serde(default)]
    pub reason: Option<String>,
}

async fn decide_cr(app: Arc<App>, actor: Actor, input: DecideChangeRequest) -> Result<ChangeResult> {
    let reason = text::optional("reason", input.reason.as_deref(), MAX_TEXT)?;
    if input.decision == Decision::Reject && reason.is_none() {
        return Err(Error::invalid("reason", "is required to reject: say why, so the requester can rework it"));
    }
    let mut w = app.store.begin_write().await?;
    let cr = load(&mut w, &app, &input.reference).await?;
    cr.check_version(input.version)?;
    check_decider(&actor, &cr.reference, &cr.requester)?;
    let status = decide(&cr.reference, cr.kind, cr.status, cr.decision.is_some(), input.decision)?;
    let mut u = state(&cr);
    u.status = status;
    u.decision = Some(input.decision);
    u.decided_at = Some(stamp(w.now()));
    u.body.decided_by = Some(actor.name.clone());
    u.body.decision_reason = reason;
    let event = if input.decision == Decision::Approve { "change_request.approved" } else { "change_request.rejected" };
    let change_request = save(&mut w, &app, &actor, "decide_change_request", event, &cr, &u).await?;
    w.commit().await?;
    Ok(ChangeResult { change_request, replayed: false })
}

/// Move a change request on, or record its post-implementation review (needed before closed); its requester or an ISMS manager only.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateChangeRequest {
    /// Change request, e.g. CR-3.
    #[serde(rename = "ref")]
    pub reference: String,
    /// As last read.
    pub version: i64,
    /// New status: implementing, implemented, failed, rolled_back or closed.
    #[serde(default)]
    pub status: Option<CrStatus>,
    /// Progress note.
    #[serde(default)]
    pub note: Option<String>,
    /// The post-implementation review.
    #[serde(default)]
    pub review: Option<Review>,
}

async fn update(app: Arc<App>, actor: Actor, input: UpdateChangeRequest) -> Result<ChangeResult> {
    let note = text::optional("note", input.note.as_deref(), MAX_TEXT)?;
    if input.status.is_none() && input.review.is_none() && note.is_none() {
        return Err(Error::invalid("status", "give a status, a review or a note"));
    }
    if input.status.is_some() && input.review.is_some() {
        return Err(Error::invalid("review", "send the review on its own; close in a later call"));
    }
    let mut w = app.store.begin_write().await?;
    let cr = load(&mut w, &app, &input.reference).await?;
    cr.check_version(input.version)?;
    check_owner_or_manager(&actor, &cr.reference, &cr.requester)?;
    let mut u = state(&cr);
    let now = stamp(w.now());
    let mut event = "change_request.updated";
    if let Some(to) = input.status {
        u.status = advance(&cr.reference, cr.kind, cr.status, to, cr.decision)?;
        match to {
            CrStatus::Implementing => u.started_at = Some(now.clone()),
            CrStatus::Implemented | CrStatus::Failed | CrStatus::RolledBack => u.finished_at = Some(now.clone()),
            _ => {}
        }
        event = match to {
            CrStatus::Implementing => "change_request.implementing",
            CrStatus::Implemented => "change_request.implemented",
            CrStatus::Closed => "change_request.closed",
            _ => "change_request.updated",
        };
    }
    if let Some(review) = &input.review {
        u.status = check_review(&cr.reference, cr.status, cr.decision)?;
        u.body.review = Some(Review {
            outcome: text::required("review.outcome", &review.outcome, MAX_TEXT)?,
            issues_found: text::optional("review.issues_found", review.issues_found.as_deref(), MAX_TEXT)?,
            controls_or_soa_update_needed: review.controls_or_soa_update_needed,
        });
        event = "change_request.reviewed";
    }
    if let Some(n) = note {
        u.body.notes.push(format!("{now} {}: {n}", actor.name));
    }
    let change_request = save(&mut w, &app, &actor, "update_change_request", event, &cr, &u).await?;
    w.commit().await?;
    Ok(ChangeResult { change_request, replayed: false })
}

/// List change requests, newest first; page with cursor.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListChangeRequests {
    /// Only this status.
    #[serde(default)]
    pub status: Option<CrStatus>,
    /// Only this type.
    #[serde(default, rename = "type")]
    pub kind: Option<ChangeType>,
    /// Only those affecting this control.
    #[serde(default)]
    pub control: Option<String>,
    /// Only those raised by this actor.
    #[serde(default)]
    pub requester: Option<String>,
    /// Only those awaiting a decision.
    #[serde(default)]
    pub awaiting_decision: bool,
    /// Only those overdue for retrospective approval or review.
    #[serde(default)]
    pub overdue: bool,
    /// next_cursor of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Page size, 1-200 (default 50).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// A page of change requests.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ChangePage {
    /// Newest first.
    pub items: Vec<ChangeRequest>,
    /// Pass as `cursor` for the next page.
    pub next_cursor: Option<String>,
}

async fn list(app: Arc<App>, _actor: Actor, input: ListChangeRequests) -> Result<ChangePage> {
    let limit = input.limit.unwrap_or(50);
    if limit == 0 || limit > super::nonconformities::MAX_PAGE {
        return Err(Error::invalid(
            "limit",
            format!("{limit} is out of range; use 1 to {}", super::nonconformities::MAX_PAGE),
        ));
    }
    let before = input
        .cursor
        .as_deref()
        .map(|c| RecordRef::parse_kind("cursor", c, RecordKind::ChangeRequest).map(|r| r.number))
        .transpose()?;
    let filter = CrFilter {
        status: input.status,
        kind: input.kind,
        control: input.control.as_deref().map(|c| ControlRef::parse("control", c)).transpose()?,
        requester: text::optional("requester", input.requester.as_deref(), 64)?,
        awaiting_decision: input.awaiting_decision,
        overdue: input.overdue,
        before,
        limit: i64::from(limit) + 1,
    };
    let mut items = app.store.change_requests(&filter, app.change).await?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = if more { items.last().map(|c| c.reference.clone()) } else { None };
    Ok(ChangePage { items, next_cursor })
}
