//! Management review (9.3): the context register, the inputs of 9.3.2 a)-g) computed from the
//! records, the review's decisions and actions, and the Stage 1 readiness checks.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{Duration, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{App, Effect, Operation};
use crate::domain::access::{Access, check_owner_or_manager};
use crate::domain::actor::{Actor, Role};
use crate::domain::management_review::{Check, ContextItem, ContextKind, ReadinessFacts, ReviewAction, readiness};
use crate::domain::nonconformity::{Severity, Source};
use crate::domain::references::{RecordKind, RecordRef};
use crate::domain::risk::{RiskLevel, Treatment};
use crate::domain::text::{self, MAX_TEXT, MAX_TITLE};
use crate::domain::time::{date, parse_date, stamp};
use crate::error::{Error, Result};
use crate::store::{Change, NcFacts};

pub(super) fn operations() -> Vec<Operation> {
    const LEADERS: Access = Access::Only(&[Role::IsmsManager, Role::TopManagement]);
    vec![
        Operation::new("record_context", Effect::Update, LEADERS, record_context),
        Operation::new("get_management_review_inputs", Effect::Read, Access::Everyone, get_inputs),
        Operation::new("record_management_review", Effect::Create, LEADERS, record_review),
        Operation::new("complete_review_action", Effect::Update, Access::Contributors, complete_action),
        Operation::new("check_certification_readiness", Effect::Read, Access::Everyone, check_readiness),
    ]
}

/// Record or change a context register entry: ISMS scope (4.3), internal or external issue (4.1), interested party (4.2); dated for management review.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordContext {
    /// Kind of entry.
    pub kind: ContextKind,
    /// Name, unique per kind, e.g. Clients.
    pub name: String,
    /// What it is.
    pub description: String,
    /// An interested party's needs and expectations.
    #[serde(default)]
    pub expectations: Option<String>,
    /// Feedback received from it.
    #[serde(default)]
    pub feedback: Option<String>,
    /// False to withdraw the entry.
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// The entry as recorded.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ContextRecorded {
    /// The entry.
    pub item: ContextItem,
}

async fn record_context(app: Arc<App>, actor: Actor, input: RecordContext) -> Result<ContextRecorded> {
    let mut w = app.store.begin_write().await?;
    let item = ContextItem {
        kind: input.kind,
        name: text::required("name", &input.name, MAX_TITLE)?,
        description: text::required("description", &input.description, MAX_TEXT)?,
        expectations: text::optional("expectations", input.expectations.as_deref(), MAX_TEXT)?,
        feedback: text::optional("feedback", input.feedback.as_deref(), MAX_TEXT)?,
        active: input.active,
        changed_at: stamp(w.now()),
        changed_by: actor.name.clone(),
    };
    w.upsert_context(&item).await?;
    let record = format!("context:{}:{}", item.kind.as_str(), item.name);
    w.record(Change {
        actor: &actor.name,
        operation: "record_context",
        record: &record,
        event: "context.recorded",
        detail: &item,
    })?;
    w.commit().await?;
    Ok(ContextRecorded { item })
}

/// Compute the management review inputs (9.3.2 a-g) for a period, with source refs; nonconformity lists hold the newest 100, with totals.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetInputs {
    /// YYYY-MM-DD; default: the last review, or 90 days ago.
    #[serde(default)]
    pub since: Option<String>,
}

/// Most references listed per count in the review inputs (the newest); the totals count all.
pub const MAX_REFS: usize = 100;

/// How many records each list of [`NcTrend`] counts, before it is cut to [`MAX_REFS`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct NcTotals {
    /// Nonconformities logged in the period.
    pub logged: usize,
    /// Nonconformities closed in the period.
    pub closed: usize,
    /// Corrective actions done in the period.
    pub actions_done: usize,
    /// Corrective actions open past their due date.
    pub actions_overdue: usize,
}

/// 9.3.2 d) 1: nonconformities and corrective actions. Each list holds the newest 100
/// references; `totals` counts them all.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct NcTrend {
    /// How many each list counts.
    pub totals: NcTotals,
    /// Logged in the period.
    pub logged: Vec<String>,
    /// Logged in the period, per severity.
    pub by_severity: BTreeMap<String, usize>,
    /// Logged per month (YYYY-MM).
    pub by_month: BTreeMap<String, usize>,
    /// Closed in the period.
    pub closed: Vec<String>,
    /// Open now.
    pub open: usize,
    /// Corrective actions done in the period.
    pub actions_done: Vec<String>,
    /// Corrective actions open past their due date.
    pub actions_overdue: Vec<String>,
}

/// A measurement in the period.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MeasurementInput {
    /// The objective.
    pub objective: String,
    /// Period measured.
    pub period: String,
    /// Value.
    pub value: f64,
    /// Met the target.
    pub met: bool,
}

/// An audit completed in the period.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AuditInput {
    /// The audit.
    #[serde(rename = "ref")]
    pub reference: String,
    /// When performed.
    pub date: Option<String>,
    /// Conclusion.
    pub conclusion: Option<String>,
    /// Nonconformities raised.
    pub findings: Vec<String>,
}

/// 9.3.2 d): feedback on information security performance.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Performance {
    /// 1. nonconformities and corrective actions.
    pub nonconformities: NcTrend,
    /// 2. monitoring and measurement results.
    pub measurements: Vec<MeasurementInput>,
    /// 3. audit results.
    pub audits: Vec<AuditInput>,
    /// 4. objectives met (by their latest measurement).
    pub objectives_met: Vec<String>,
    /// 4. objectives not met.
    pub objectives_not_met: Vec<String>,
    /// 4. objectives never measured.
    pub objectives_unmeasured: Vec<String>,
}

/// 9.3.2 e): feedback from interested parties.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Feedback {
    /// How many nonconformities from complaints were logged in the period.
    pub complaints_total: usize,
    /// The newest 100 of them.
    pub complaints: Vec<String>,
    /// Interested parties whose feedback changed in the period.
    pub parties: Vec<ContextItem>,
}

/// 9.3.2 f): risk assessment results and treatment progress.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RiskInput {
    /// Risks registered.
    pub total: usize,
    /// Per level of the inherent score.
    pub by_level: BTreeMap<String, usize>,
    /// Per treatment option.
    pub by_treatment: BTreeMap<String, usize>,
    /// Residual risk accepted by its owner.
    pub accepted: Vec<String>,
    /// Residual rated but not accepted.
    pub awaiting_acceptance: Vec<String>,
    /// High or critical and not yet treated to a residual rating.
    pub high_untreated: Vec<String>,
}

/// 9.3.2 g): opportunities for continual improvement.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Opportunities {
    /// How many observations were logged in the period.
    pub observations_total: usize,
    /// The newest 100 of them.
    pub observations: Vec<String>,
    /// Changes whose review found controls or the SoA need updating.
    pub changes_needing_updates: Vec<String>,
    /// Implemented controls with missing or old evidence.
    pub stale_evidence: Vec<String>,
    /// Applicable controls tied to no risk or requirement.
    pub untraceable: Vec<String>,
}

/// The inputs of a management review.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ReviewInputs {
    /// Period start (YYYY-MM-DD).
    pub since: String,
    /// Period end (YYYY-MM-DD).
    pub until: String,
    /// a) actions from previous reviews: open (overdue flagged) and done in the period.
    pub a_previous_actions: Vec<ReviewAction>,
    /// b) internal and external issues changed in the period.
    pub b_issues: Vec<ContextItem>,
    /// c) interested parties whose needs changed in the period.
    pub c_interested_parties: Vec<ContextItem>,
    /// d) performance.
    pub d_performance: Performance,
    /// e) interested-party feedback.
    pub e_feedback: Feedback,
    /// f) risks.
    pub f_risks: RiskInput,
    /// g) opportunities.
    pub g_opportunities: Opportunities,
}

/// References to the last (newest) [`MAX_REFS`] of `numbers`, which are in order.
fn newest(kind: RecordKind, numbers: &[i64]) -> Vec<String> {
    refs(kind, &numbers[numbers.len().saturating_sub(MAX_REFS)..])
}

fn refs(kind: RecordKind, numbers: &[i64]) -> Vec<String> {
    numbers.iter().map(|n| RecordRef::new(kind, *n).to_string()).collect()
}

/// The numbers of the groups of `facts` that `keep` keeps, in order.
fn numbers_of(facts: &[NcFacts], keep: impl Fn(&NcFacts) -> bool) -> Vec<i64> {
    let mut numbers: Vec<i64> = facts.iter().filter(|f| keep(f)).flat_map(|f| f.numbers.iter().copied()).collect();
    numbers.sort_unstable();
    numbers
}

/// Computes the 9.3.2 inputs for the period from `since` to today.
pub(crate) async fn compute_inputs(app: &App, since: Option<NaiveDate>) -> Result<ReviewInputs> {
    let today = Utc::now().date_naive();
    let since = match since {
        Some(d) => d,
        None => match app.store.review(None).await? {
            Some(r) => parse_date("since", &r.review_date)?,
            None => today - Duration::days(90),
        },
    };
    let since_day = date(since);
    let since_stamp = format!("{since_day}T00:00:00.000000Z");

    let actions: Vec<ReviewAction> = app
        .store
        .review_actions(None, today)
        .await?
        .into_iter()
        .filter(|a| a.done_at.as_deref().is_none_or(|d| d >= since_stamp.as_str()))
        .collect();
    let context = app.store.context(None, Some(&since_stamp)).await?;
    let (parties, issues): (Vec<ContextItem>, Vec<ContextItem>) = context
        .into_iter()
        .filter(|c| c.kind != ContextKind::Scope)
        .partition(|c| c.kind == ContextKind::InterestedParty);

    // The period's findings and actions, read at once on separate connections.
    let store = &app.store;
    let today_day = date(today);
    let (logged, closed, open, actions_done, actions_overdue) = tokio::try_join!(
        store.nc_facts(&since_stamp),
        store.ncs_closed_since(&since_stamp),
        store.ncs_open(),
        store.actions_done_since(&since_stamp),
        store.actions_overdue(&today_day),
    )?;
    let (mut by_severity, mut by_month) = (BTreeMap::new(), BTreeMap::new());
    for f in &logged {
        *by_severity.entry(f.severity.clone()).or_insert(0) += f.numbers.len();
        *by_month.entry(f.month.clone()).or_insert(0) += f.numbers.len();
    }
    let logged_numbers = numbers_of(&logged, |_| true);
    let totals = NcTotals {
        logged: logged_numbers.len(),
        closed: closed.len(),
        actions_done: actions_done.len(),
        actions_overdue: actions_overdue.len(),
    };
    let nonconformities = NcTrend {
        totals,
        logged: newest(RecordKind::Nonconformity, &logged_numbers),
        by_severity,
        by_month,
        closed: newest(RecordKind::Nonconformity, &closed),
        open: usize::try_from(open).unwrap_or(0),
        actions_done: newest(RecordKind::CorrectiveAction, &actions_done),
        actions_overdue: newest(RecordKind::CorrectiveAction, &actions_overdue),
    };

    let mut measurements = Vec::new();
    let (mut met, mut not_met, mut unmeasured) = (Vec::new(), Vec::new(), Vec::new());
    for o in app.store.objectives().await? {
        for m in o.measurements.iter().filter(|m| m.recorded_at >= since_stamp) {
            measurements.push(MeasurementInput {
                objective: o.reference.clone(),
                period: m.period.clone(),
                value: m.value,
                met: m.met,
            });
        }
        match o.met {
            Some(true) => met.push(o.reference),
            Some(false) => not_met.push(o.reference),
            None => unmeasured.push(o.reference),
        }
    }
    let mut audits = Vec::new();
    for a in app.store.audits_held_since(&since_day).await? {
        audits.push(AuditInput {
            reference: a.reference,
            date: a.audit_date,
            conclusion: a.body.conclusion,
            findings: a.body.findings,
        });
    }

    let mut risk = RiskInput {
        total: 0,
        by_level: BTreeMap::new(),
        by_treatment: BTreeMap::new(),
        accepted: Vec::new(),
        awaiting_acceptance: Vec::new(),
        high_untreated: Vec::new(),
    };
    for r in app.store.risks(app.risk).await? {
        risk.total += 1;
        *risk.by_level.entry(r.level.as_str().to_owned()).or_insert(0) += 1;
        *risk.by_treatment.entry(r.treatment.as_str().to_owned()).or_insert(0) += 1;
        if r.accepted_by.is_some() {
            risk.accepted.push(r.reference.clone());
        } else if r.residual_score.is_some() {
            risk.awaiting_acceptance.push(r.reference.clone());
        }
        if matches!(r.level, RiskLevel::High | RiskLevel::Critical)
            && r.residual_score.is_none()
            && r.treatment != Treatment::Accept
        {
            risk.high_untreated.push(r.reference);
        }
    }

    let mut changes_needing_updates = Vec::new();
    for status in [crate::domain::change::CrStatus::Reviewed, crate::domain::change::CrStatus::Closed] {
        let filter = crate::store::CrFilter { status: Some(status), limit: 500, ..Default::default() };
        for c in app.store.change_requests(&filter, app.change).await? {
            if c.updated_at >= since_stamp && c.body.review.as_ref().is_some_and(|r| r.controls_or_soa_update_needed) {
                changes_needing_updates.push(c.reference);
            }
        }
    }
    let soa = app.store.soa(today, app.evidence_max_age_days).await?;
    let complaints = numbers_of(&logged, |f| f.source == Source::Complaint.as_str());
    let observations = numbers_of(&logged, |f| f.severity == Severity::Observation.as_str());
    Ok(ReviewInputs {
        since: since_day,
        until: date(today),
        a_previous_actions: actions,
        b_issues: issues,
        c_interested_parties: parties.clone(),
        d_performance: Performance {
            nonconformities,
            measurements,
            audits,
            objectives_met: met,
            objectives_not_met: not_met,
            objectives_unmeasured: unmeasured,
        },
        e_feedback: Feedback {
            complaints_total: complaints.len(),
            complaints: newest(RecordKind::Nonconformity, &complaints),
            parties: parties.into_iter().filter(|p| p.feedback.is_some()).collect(),
        },
        f_risks: risk,
        g_opportunities: Opportunities {
            observations_total: observations.len(),
            observations: newest(RecordKind::Nonconformity, &observations),
            changes_needing_updates,
            stale_evidence: soa.iter().filter(|e| e.stale_evidence).map(|e| e.control.clone()).collect(),
            untraceable: soa.iter().filter(|e| e.untraceable).map(|e| e.control.clone()).collect(),
        },
    })
}

async fn get_inputs(app: Arc<App>, _actor: Actor, input: GetInputs) -> Result<ReviewInputs> {
    let since = input.since.as_deref().map(|d| parse_date("since", d)).transpose()?;
    compute_inputs(&app, since).await
}

/// An action decided at the review.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReviewAction {
    /// What to do.
    pub description: String,
    /// Who (a registered actor).
    pub owner: String,
    /// YYYY-MM-DD.
    pub due_date: String,
}

/// Record a management review MR-n (9.3.3): its inputs are computed and frozen now, its actions tracked until done.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordReview {
    /// Date of the meeting, YYYY-MM-DD.
    pub review_date: String,
    /// Who attended.
    pub attendees: Vec<String>,
    /// Start of the period reviewed, YYYY-MM-DD; default since the last review.
    #[serde(default)]
    pub since: Option<String>,
    /// Decisions on continual improvement.
    #[serde(default)]
    pub improvements: Vec<String>,
    /// Decisions on changes to the ISMS.
    #[serde(default)]
    pub isms_changes: Vec<String>,
    /// Actions decided.
    #[serde(default)]
    pub actions: Vec<NewReviewAction>,
}

/// A management review.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReviewRecorded {
    /// Reference, e.g. `MR-2`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Its actions.
    pub actions: Vec<ReviewAction>,
}

async fn record_review(app: Arc<App>, actor: Actor, input: RecordReview) -> Result<ReviewRecorded> {
    let review_date = parse_date("review_date", &input.review_date)?;
    let attendees = text::list("attendees", &input.attendees, 64)?;
    if attendees.is_empty() {
        return Err(Error::invalid("attendees", "name who attended; top management must take part (9.3.1)"));
    }
    let improvements = text::list("improvements", &input.improvements, MAX_TEXT)?;
    let isms_changes = text::list("isms_changes", &input.isms_changes, MAX_TEXT)?;
    if improvements.is_empty() && isms_changes.is_empty() {
        return Err(Error::invalid(
            "improvements",
            "9.3.3 asks for decisions on improvement and on ISMS changes: give at least one (\"none\" is a decision)",
        ));
    }
    let mut actions = Vec::new();
    for a in &input.actions {
        let owner = text::required("actions.owner", &a.owner, 64)?;
        if app.store.actor_by_name(&owner).await?.is_none() {
            return Err(Error::not_found(
                format!("actor `{owner}`"),
                "action owners must be registered, active actors",
            ));
        }
        actions.push((
            text::required("actions.description", &a.description, MAX_TEXT)?,
            owner,
            date(parse_date("actions.due_date", &a.due_date)?),
        ));
    }
    let since = input.since.as_deref().map(|d| parse_date("since", d)).transpose()?;
    let inputs = compute_inputs(&app, since).await?;
    let body = serde_json::json!({
        "attendees": attendees, "improvements": improvements, "isms_changes": isms_changes, "inputs": inputs,
    });
    let mut w = app.store.begin_write().await?;
    let number = w.insert_management_review(&actor.name, &date(review_date), &body, &actions).await?;
    let reference = RecordRef::new(RecordKind::ManagementReview, number).to_string();
    let detail = serde_json::json!({ "review_date": date(review_date), "attendees": body["attendees"], "improvements": body["improvements"], "isms_changes": body["isms_changes"], "actions": actions.len() });
    w.record(Change {
        actor: &actor.name,
        operation: "record_management_review",
        record: &reference,
        event: "management_review.recorded",
        detail: &detail,
    })?;
    w.commit().await?;
    let actions = app.store.review_actions(Some(number), Utc::now().date_naive()).await?;
    Ok(ReviewRecorded { reference, actions })
}

/// Mark a management review action done (its owner or an ISMS manager).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteAction {
    /// Action, e.g. MR-2.1.
    #[serde(rename = "ref")]
    pub reference: String,
    /// What was done.
    pub note: String,
}

/// The action now.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ActionCompleted {
    /// The action.
    pub action: ReviewAction,
}

async fn complete_action(app: Arc<App>, actor: Actor, input: CompleteAction) -> Result<ActionCompleted> {
    let bad = || {
        Error::invalid(
            "ref",
            format!("`{}` is not a review action; use MR-n.k as listed by the review", input.reference),
        )
    };
    let (mr, n) = input.reference.trim().split_once('.').ok_or_else(bad)?;
    let mr = RecordRef::parse("ref", mr).ok().filter(|r| r.kind == RecordKind::ManagementReview).ok_or_else(bad)?;
    let n: i64 = n.parse().map_err(|_| bad())?;
    let note = text::required("note", &input.note, MAX_TEXT)?;
    let today = Utc::now().date_naive();
    let action = app
        .store
        .review_actions(Some(mr.number), today)
        .await?
        .into_iter()
        .find(|a| a.reference == format!("{mr}.{n}"))
        .ok_or_else(|| Error::not_found(format!("{mr}.{n}"), "get_record on the review lists its actions"))?;
    check_owner_or_manager(&actor, &action.reference, &action.owner)?;
    let mut w = app.store.begin_write().await?;
    if !w.complete_review_action(mr.number, n, Some(&note)).await? {
        return Err(Error::rule(format!("{} is already done", action.reference), "nothing to do"));
    }
    let detail = serde_json::json!({ "action": action.reference, "note": note });
    w.record(Change {
        actor: &actor.name,
        operation: "complete_review_action",
        record: &mr.to_string(),
        event: "management_review.action_done",
        detail: &detail,
    })?;
    w.commit().await?;
    let action = app
        .store
        .review_actions(Some(mr.number), today)
        .await?
        .into_iter()
        .find(|a| a.reference == action.reference)
        .ok_or_else(|| Error::Internal("review action vanished".into()))?;
    Ok(ActionCompleted { action })
}

/// Check readiness for the Stage 1 certification audit: each gap with the tool that closes it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckReadiness {}

/// The checks.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Readiness {
    /// True when every check passes.
    pub ready: bool,
    /// Each check.
    pub checks: Vec<Check>,
}

async fn check_readiness(app: Arc<App>, _actor: Actor, _input: CheckReadiness) -> Result<Readiness> {
    let today = Utc::now().date_naive();
    let year_ago = date(today - Duration::days(365));
    let soa = app.store.soa(today, app.evidence_max_age_days).await?;
    let mut risks_without_plan = 0;
    let mut residual_not_accepted = 0;
    let risks = app.store.risks(app.risk).await?;
    let counts = app.store.record_counts(&year_ago).await?;
    for r in &risks {
        if r.treatment == Treatment::Mitigate && r.treatment_plan.is_none() {
            risks_without_plan += 1;
        }
        if r.residual_score.is_some() && r.accepted_by.is_none() {
            residual_not_accepted += 1;
        }
    }
    let facts = ReadinessFacts {
        scope: !app.store.context(Some(ContextKind::Scope), None).await?.iter().all(|c| !c.active),
        policy: !app.store.current_policies().await?.is_empty(),
        risks: risks.len(),
        risks_without_plan,
        residual_not_accepted,
        soa_undecided: soa.iter().filter(|e| e.applicable.is_none()).count(),
        soa_approved: app.store.soa_version(None).await?.is_some(),
        audits: counts.audits,
        reviews: counts.reviews,
        objectives: counts.objectives,
        measurements: counts.measurements,
        competence_records: counts.competence_records,
    };
    let checks = readiness(&facts);
    Ok(Readiness { ready: checks.iter().all(|c| c.passed), checks })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn review_lists_keep_the_newest_references() {
        let many: Vec<i64> = (1..=250).collect();
        let kept = newest(RecordKind::Nonconformity, &many);
        assert_eq!(kept.len(), MAX_REFS);
        assert_eq!((kept[0].as_str(), kept[MAX_REFS - 1].as_str()), ("NC-151", "NC-250"));
        assert_eq!(newest(RecordKind::CorrectiveAction, &[1]), ["CA-1"]);
    }

    #[test]
    fn grouped_findings_merge_in_number_order() {
        let group = |severity: &str, source: &str, month: &str, numbers: &[i64]| NcFacts {
            severity: severity.into(),
            source: source.into(),
            month: month.into(),
            numbers: numbers.to_vec(),
        };
        let facts = [
            group("minor", "complaint", "2026-10", &[4, 9]),
            group("observation", "monitoring", "2026-11", &[2, 12]),
            group("observation", "complaint", "2026-11", &[7]),
        ];
        assert_eq!(numbers_of(&facts, |_| true), [2, 4, 7, 9, 12]);
        assert_eq!(numbers_of(&facts, |f| f.source == "complaint"), [4, 7, 9]);
        assert_eq!(numbers_of(&facts, |f| f.severity == "observation"), [2, 7, 12]);
    }
}
