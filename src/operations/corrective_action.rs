//! The steps of clause 10.2 after logging: analysis (b), corrective actions (c), the
//! effectiveness review (d) and closure (e). Each step passes the gate of the domain's state
//! machine or is refused with the missing step and the tool for it.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::nonconformities::similar_candidates;
use super::{App, Effect, Operation, request_hash};
use crate::domain::access::{Access, check_owner_or_manager};
use crate::domain::actor::{Actor, Role};
use crate::domain::corrective_action::{
    CaStatus, CorrectiveAction, action_due_date, check_done_evidence, check_reviewer,
};
use crate::domain::nonconformity::{
    Analysis, Effectiveness, EffectivenessReview, NcStatus, NcStep, Nonconformity, SimilarDecision,
    check_action_decision,
};
use crate::domain::references::{RecordKind, RecordRef};
use crate::domain::text::{self, MAX_TEXT};
use crate::domain::time::{parse_date, stamp};
use crate::error::{Error, Result};
use crate::store::{Change, Claim, NcUpdate, Write};

pub(super) fn operations() -> Vec<Operation> {
    const REVIEWERS: Access = Access::Only(&[Role::IsmsManager, Role::Auditor]);
    const MANAGERS: Access = Access::Only(&[Role::IsmsManager]);
    vec![
        Operation::new("record_nonconformity_analysis", Effect::Update, Access::Contributors, record_analysis),
        Operation::new("plan_corrective_action", Effect::Create, Access::Contributors, plan_action),
        Operation::new("update_corrective_action", Effect::Update, Access::Contributors, update_action),
        Operation::new("review_effectiveness", Effect::Update, REVIEWERS, review_effectiveness),
        Operation::new(CLOSE_NONCONFORMITY, Effect::Update, MANAGERS, close_nonconformity),
    ]
}

/// Where a nonconformity stands after a step.
#[derive(Debug, Serialize, JsonSchema)]
pub struct NcProgress {
    /// Reference.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Status now.
    pub status: NcStatus,
    /// Version now: send it with the next step.
    pub version: i64,
    /// The tool for the next step; absent once closed.
    pub next_step: Option<String>,
}

impl From<&Nonconformity> for NcProgress {
    fn from(nc: &Nonconformity) -> Self {
        NcProgress {
            reference: nc.reference.clone(),
            status: nc.status,
            version: nc.version,
            next_step: nc.next_step.clone(),
        }
    }
}

async fn load_nc(w: &mut Write, r: RecordRef) -> Result<Nonconformity> {
    w.nonconformity(r.number)
        .await?
        .ok_or_else(|| Error::not_found(r.to_string(), "list_nonconformities shows the nonconformities that exist"))
}

async fn reload(w: &mut Write, nc: &Nonconformity) -> Result<Nonconformity> {
    load_nc(w, RecordRef::parse("ref", &nc.reference)?).await
}

/// Record a nonconformity's analysis (10.2 b).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordAnalysis {
    /// Nonconformity, e.g. NC-12.
    #[serde(rename = "ref")]
    pub reference: String,
    /// As last read.
    pub version: i64,
    /// Correction or containment (10.2 a); required if none on record.
    #[serde(default)]
    pub correction: Option<String>,
    /// Consequences and how they were dealt with.
    #[serde(default)]
    pub consequences: Option<String>,
    /// Analysis method, e.g. 5 whys.
    pub method: String,
    /// The root cause found.
    pub root_cause: String,
    /// Each similar one proposed, confirmed or dismissed; add others.
    #[serde(default)]
    pub similar: Vec<SimilarDecision>,
    /// Where else the same could occur and what was checked.
    #[serde(default)]
    pub similar_note: Option<String>,
    /// Corrective action needed on the cause (always for major).
    pub action_needed: bool,
    /// Why no action; required when action_needed is false.
    #[serde(default)]
    pub justification: Option<String>,
}

async fn record_analysis(app: Arc<App>, actor: Actor, input: RecordAnalysis) -> Result<NcProgress> {
    let r = RecordRef::parse_kind("ref", &input.reference, RecordKind::Nonconformity)?;
    let correction = text::optional("correction", input.correction.as_deref(), MAX_TEXT)?;
    let consequences = text::optional("consequences", input.consequences.as_deref(), MAX_TEXT)?;
    let method = text::required("method", &input.method, 100)?;
    let root_cause = text::required("root_cause", &input.root_cause, MAX_TEXT)?;
    let similar_note = text::optional("similar_note", input.similar_note.as_deref(), MAX_TEXT)?;
    let justification = text::optional("justification", input.justification.as_deref(), MAX_TEXT)?;
    if input.similar.len() > text::MAX_LIST {
        return Err(Error::invalid(
            "similar",
            format!("has {} entries; the limit is {}", input.similar.len(), text::MAX_LIST),
        ));
    }
    let mut decisions: Vec<SimilarDecision> = Vec::with_capacity(input.similar.len());
    for d in &input.similar {
        let other = RecordRef::parse_kind("similar.ref", &d.reference, RecordKind::Nonconformity)?;
        if other == r {
            return Err(Error::invalid("similar.ref", format!("{r} cannot be similar to itself")));
        }
        if decisions.iter().any(|x| x.reference == other.to_string()) {
            return Err(Error::invalid("similar.ref", format!("{other} is listed twice")));
        }
        let note = text::optional("similar.note", d.note.as_deref(), 2000)?;
        decisions.push(SimilarDecision { reference: other.to_string(), related: d.related, note });
    }

    let mut w = app.store.begin_write().await?;
    let nc = load_nc(&mut w, r).await?;
    nc.check_version(input.version)?;
    check_action_decision(nc.severity, input.action_needed, justification.as_deref())?;
    if !input.action_needed && !nc.reviews.is_empty() {
        return Err(Error::rule(
            format!(
                "{} had corrective actions reviewed as not effective; it cannot now be closed without action",
                nc.reference
            ),
            "keep action_needed=true and plan a new corrective action",
        ));
    }
    let mut gate = nc.gate();
    gate.has_correction = gate.has_correction || correction.is_some();
    let status = gate.after(NcStep::Analyse)?;
    for d in &decisions {
        let other = RecordRef::parse("similar.ref", &d.reference)?;
        if w.nonconformity(other.number).await?.is_none() {
            return Err(Error::not_found(other.to_string(), "`similar` may only name nonconformities that exist"));
        }
    }
    let candidates = similar_candidates(&app, &nc).await?;
    let missing: Vec<String> = candidates
        .iter()
        .filter(|c| !decisions.iter().any(|d| d.reference == c.reference))
        .map(|c| format!("{} ({})", c.reference, c.reasons.join(", ")))
        .collect();
    if !missing.is_empty() {
        return Err(Error::rule(
            format!(
                "10.2 b) asks whether similar nonconformities exist; these are not confirmed or dismissed: {}",
                missing.join("; ")
            ),
            "add each to `similar` with related true or false (and a note), then resend",
        ));
    }
    let analysis = Analysis {
        method,
        root_cause,
        similar: decisions,
        similar_note,
        action_needed: input.action_needed,
        justification,
        analysed_at: stamp(w.now()),
        analysed_by: actor.name.clone(),
    };
    let update = NcUpdate {
        status: Some(status),
        correction: correction.clone(),
        consequences: consequences.clone(),
        analysis: Some(analysis.clone()),
        ..NcUpdate::default()
    };
    w.update_nonconformity(&actor.name, r.number, input.version, &update).await?;
    let detail = serde_json::json!({ "correction": correction, "consequences": consequences, "analysis": analysis });
    let record = r.to_string();
    w.record(Change {
        actor: &actor.name,
        operation: "record_nonconformity_analysis",
        record: &record,
        event: "nonconformity.analysed",
        detail: &detail,
    })?;
    let nc = reload(&mut w, &nc).await?;
    w.commit().await?;
    Ok(NcProgress::from(&nc))
}

/// Plan a corrective action CA-n on the cause of an analysed nonconformity (10.2 c).
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanAction {
    /// Nonconformity, e.g. NC-12.
    #[serde(rename = "ref")]
    pub reference: String,
    /// As last read.
    pub version: i64,
    /// What will be done to remove the cause.
    pub description: String,
    /// Registered actor who carries it out.
    pub owner: String,
    /// YYYY-MM-DD, not after the nonconformity's due date (the default).
    #[serde(default)]
    pub due_date: Option<String>,
    /// Retry key: a repeat returns the first result.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// The action planned.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ActionPlanned {
    /// The corrective action.
    pub action: CorrectiveAction,
    /// Its nonconformity now.
    pub nonconformity: NcProgress,
    /// True when this answers a retry with the same idempotency key.
    pub replayed: bool,
}

async fn plan_action(app: Arc<App>, actor: Actor, input: PlanAction) -> Result<ActionPlanned> {
    const OP: &str = "plan_corrective_action";
    let r = RecordRef::parse_kind("ref", &input.reference, RecordKind::Nonconformity)?;
    let description = text::required("description", &input.description, MAX_TEXT)?;
    let owner = text::required("owner", &input.owner, 64)?;
    let given_due = input.due_date.as_deref().map(|d| parse_date("due_date", d)).transpose()?;
    let key = text::optional("idempotency_key", input.idempotency_key.as_deref(), 200)?;

    if app.store.actor_by_name(&owner).await?.is_none() {
        return Err(Error::not_found(format!("actor `{owner}`"), "the owner must be a registered, active actor"));
    }
    let mut w = app.store.begin_write().await?;
    if let Some(key) = &key
        && let Claim::Replay(reference) = w.claim_idempotency(&actor.name, OP, key, &request_hash(&input)?).await?
    {
        let ca = RecordRef::parse_kind("ref", &reference, RecordKind::CorrectiveAction)?;
        let action =
            w.corrective_action(ca.number).await?.ok_or_else(|| Error::Internal(format!("{reference} vanished")))?;
        let nc = load_nc(&mut w, r).await?;
        return Ok(ActionPlanned { action, nonconformity: NcProgress::from(&nc), replayed: true });
    }
    let nc = load_nc(&mut w, r).await?;
    nc.check_version(input.version)?;
    let status = nc.gate().after(NcStep::PlanAction)?;
    let nc_due = nc.due_date.as_deref().map(|d| parse_date("due_date", d)).transpose()?;
    let due = action_due_date(&nc.reference, nc.severity, nc_due, given_due, w.now().date_naive())?;
    let action = w.insert_corrective_action(&actor.name, &nc, &description, &owner, due).await?;
    w.update_nonconformity(
        &actor.name,
        r.number,
        input.version,
        &NcUpdate { status: Some(status), ..NcUpdate::default() },
    )
    .await?;
    w.record(Change {
        actor: &actor.name,
        operation: OP,
        record: &action.reference,
        event: "corrective_action.planned",
        detail: &action,
    })?;
    let nc_detail = serde_json::json!({ "action": action.reference, "status": status });
    w.record(Change {
        actor: &actor.name,
        operation: OP,
        record: &nc.reference,
        event: "nonconformity.actions_planned",
        detail: &nc_detail,
    })?;
    if let Some(key) = &key {
        w.complete_idempotency(&actor.name, OP, key, RecordRef::parse("ref", &action.reference)?).await?;
    }
    let nc = reload(&mut w, &nc).await?;
    w.commit().await?;
    Ok(ActionPlanned { action, nonconformity: NcProgress::from(&nc), replayed: false })
}

/// Record progress on a corrective action or finish it; its owner or an ISMS manager only.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAction {
    /// Corrective action, e.g. CA-7.
    #[serde(rename = "ref")]
    pub reference: String,
    /// As last read.
    pub version: i64,
    /// New status.
    pub status: CaStatus,
    /// What was done so far.
    #[serde(default)]
    pub progress: Option<String>,
    /// Commits, tickets, documents; required for done.
    #[serde(default)]
    pub evidence: Vec<String>,
}

/// The action updated.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ActionUpdated {
    /// The corrective action now.
    pub action: CorrectiveAction,
    /// Its nonconformity now.
    pub nonconformity: NcProgress,
}

async fn update_action(app: Arc<App>, actor: Actor, input: UpdateAction) -> Result<ActionUpdated> {
    const OP: &str = "update_corrective_action";
    let r = RecordRef::parse_kind("ref", &input.reference, RecordKind::CorrectiveAction)?;
    let progress = text::optional("progress", input.progress.as_deref(), MAX_TEXT)?;
    let new_evidence = text::list("evidence", &input.evidence, 1000)?;

    let mut w = app.store.begin_write().await?;
    let located = w
        .corrective_action(r.number)
        .await?
        .ok_or_else(|| Error::not_found(r.to_string(), "get_record on the nonconformity lists its actions"))?;
    w.lock_nonconformity(RecordRef::parse("ref", &located.nonconformity)?.number).await?;
    let action = w
        .corrective_action(r.number)
        .await?
        .ok_or_else(|| Error::not_found(r.to_string(), "get_record on the nonconformity lists its actions"))?;
    action.check_version(input.version)?;
    check_owner_or_manager(&actor, &action.reference, &action.owner)?;
    let status = action.status.after(&action.reference, input.status)?;
    let mut evidence = action.evidence.clone();
    for e in new_evidence {
        if !evidence.contains(&e) {
            evidence.push(e);
        }
    }
    if status == CaStatus::Done {
        check_done_evidence(&action.reference, &evidence)?;
    }
    let nc_ref = RecordRef::parse("ref", &action.nonconformity)?;
    let nc = load_nc(&mut w, nc_ref).await?;
    if !nc.status.is_open() {
        return Err(Error::rule(format!("{} is closed", nc.reference), "its actions can no longer change"));
    }
    w.update_corrective_action(&actor.name, r.number, input.version, status, progress.as_deref(), &evidence).await?;
    let event = if status == CaStatus::Done { "corrective_action.done" } else { "corrective_action.updated" };
    let detail = serde_json::json!({ "status": status, "progress": progress, "evidence": evidence });
    w.record(Change { actor: &actor.name, operation: OP, record: &action.reference, event, detail: &detail })?;

    let round_done =
        nc.actions.iter().filter(|a| a.round == nc.round).all(|a| {
            if a.reference == action.reference { status == CaStatus::Done } else { a.status == CaStatus::Done }
        });
    if status == CaStatus::Done && round_done && nc.status == NcStatus::ActionsPlanned {
        let next = nc.gate().after(NcStep::ActionsDone)?;
        w.update_nonconformity(
            &actor.name,
            nc_ref.number,
            nc.version,
            &NcUpdate { status: Some(next), ..NcUpdate::default() },
        )
        .await?;
        let detail = serde_json::json!({ "status": next, "last_action": action.reference });
        w.record(Change {
            actor: &actor.name,
            operation: OP,
            record: &nc.reference,
            event: "nonconformity.actions_done",
            detail: &detail,
        })?;
    }
    let action = w.corrective_action(r.number).await?.ok_or_else(|| Error::Internal(format!("{r} vanished")))?;
    let nc = reload(&mut w, &nc).await?;
    w.commit().await?;
    Ok(ActionUpdated { action, nonconformity: NcProgress::from(&nc) })
}

/// Review whether a nonconformity's corrective actions worked (10.2 d), by someone who owns none of them.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewEffectiveness {
    /// Nonconformity, e.g. NC-12.
    #[serde(rename = "ref")]
    pub reference: String,
    /// As last read.
    pub version: i64,
    /// not_effective reopens it for new action.
    pub result: Effectiveness,
    /// What was checked: scans, samples, audits.
    #[serde(default)]
    pub evidence: Vec<String>,
    /// Findings of the review.
    pub notes: String,
}

async fn review_effectiveness(app: Arc<App>, actor: Actor, input: ReviewEffectiveness) -> Result<NcProgress> {
    const OP: &str = "review_effectiveness";
    let r = RecordRef::parse_kind("ref", &input.reference, RecordKind::Nonconformity)?;
    let evidence = text::list("evidence", &input.evidence, 1000)?;
    let notes = text::required("notes", &input.notes, MAX_TEXT)?;

    let mut w = app.store.begin_write().await?;
    let nc = load_nc(&mut w, r).await?;
    nc.check_version(input.version)?;
    let effective = input.result == Effectiveness::Effective;
    let status = nc.gate().after(NcStep::Review { effective })?;
    let owners: Vec<String> = nc.actions.iter().filter(|a| a.round == nc.round).map(|a| a.owner.clone()).collect();
    check_reviewer(&actor, &nc.reference, &owners)?;
    let review = EffectivenessReview {
        round: nc.round,
        result: input.result,
        evidence,
        notes,
        reviewer: actor.name.clone(),
        at: stamp(w.now()),
    };
    w.insert_review(r.number, &review).await?;
    let update = NcUpdate { status: Some(status), round: (!effective).then_some(nc.round + 1), ..NcUpdate::default() };
    w.update_nonconformity(&actor.name, r.number, input.version, &update).await?;
    let event = if effective { "nonconformity.verified" } else { "nonconformity.reopened" };
    w.record(Change { actor: &actor.name, operation: OP, record: &nc.reference, event, detail: &review })?;
    let nc = reload(&mut w, &nc).await?;
    w.commit().await?;
    Ok(NcProgress::from(&nc))
}

/// Close a nonconformity (10.2 e) once its actions are verified effective, or its analysis found no action needed.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseNonconformity {
    /// Nonconformity, e.g. NC-12.
    #[serde(rename = "ref")]
    pub reference: String,
    /// As last read.
    pub version: i64,
    /// ISMS changes made (policies, procedures, controls, SoA), or "none".
    pub isms_changes: String,
}

/// The operation that closes a nonconformity, as the audit trail names it: the similarity
/// index follows closures by it.
pub(super) const CLOSE_NONCONFORMITY: &str = "close_nonconformity";

async fn close_nonconformity(app: Arc<App>, actor: Actor, input: CloseNonconformity) -> Result<NcProgress> {
    const OP: &str = CLOSE_NONCONFORMITY;
    let r = RecordRef::parse_kind("ref", &input.reference, RecordKind::Nonconformity)?;
    let isms_changes = text::required("isms_changes", &input.isms_changes, MAX_TEXT)?;

    let mut w = app.store.begin_write().await?;
    let nc = load_nc(&mut w, r).await?;
    nc.check_version(input.version)?;
    let status = nc.gate().after(NcStep::Close)?;
    let update = NcUpdate {
        status: Some(status),
        isms_changes: Some(isms_changes.clone()),
        closed: true,
        ..NcUpdate::default()
    };
    w.update_nonconformity(&actor.name, r.number, input.version, &update).await?;
    let detail = serde_json::json!({ "isms_changes": isms_changes });
    w.record(Change {
        actor: &actor.name,
        operation: OP,
        record: &nc.reference,
        event: "nonconformity.closed",
        detail: &detail,
    })?;
    let nc = reload(&mut w, &nc).await?;
    w.commit().await?;
    Ok(NcProgress::from(&nc))
}
