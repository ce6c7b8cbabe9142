//! Change requests (6.3, A.8.32): planned changes to the ISMS and its systems, approved by
//! someone other than the requester, implemented, reviewed and closed; emergency changes may
//! go first but need a retrospective approval in time.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::actor::{Actor, Role};
use crate::error::{Error, Result};

text_enum! {
    /// The kind of change.
    ChangeType {
        /// Pre-approved, low-risk, repeatable: needs no decision.
        Standard = "standard",
        /// Needs approval before it is implemented.
        Normal = "normal",
        /// May be implemented at once; needs a retrospective approval.
        Emergency = "emergency",
    }
}

text_enum! {
    /// Where a change request stands.
    CrStatus {
        /// Raised, awaiting a decision.
        Submitted = "submitted",
        /// Approved (or standard).
        Approved = "approved",
        /// Rejected, with a reason.
        Rejected = "rejected",
        /// Being implemented.
        Implementing = "implementing",
        /// Implemented, awaiting the post-implementation review.
        Implemented = "implemented",
        /// Implementation failed.
        Failed = "failed",
        /// Rolled back.
        RolledBack = "rolled_back",
        /// Post-implementation review done.
        Reviewed = "reviewed",
        /// Closed.
        Closed = "closed",
    }
}

text_enum! {
    /// A decision on a change request.
    Decision {
        /// Approve it.
        Approve = "approve",
        /// Reject it.
        Reject = "reject",
    }
}

/// The status a new change request starts in: a standard change is pre-approved.
pub fn initial_status(kind: ChangeType) -> CrStatus {
    match kind {
        ChangeType::Standard => CrStatus::Approved,
        ChangeType::Normal | ChangeType::Emergency => CrStatus::Submitted,
    }
}

/// Who may decide: an ISMS manager or top management, never the requester.
pub fn check_decider(actor: &Actor, reference: &str, requester: &str) -> Result<()> {
    if actor.name == requester {
        return Err(Error::rule(
            format!("`{requester}` raised {reference} and may not decide it"),
            "ask an ISMS manager or top management who did not raise it to decide",
        ));
    }
    if !matches!(actor.role, Role::IsmsManager | Role::TopManagement) {
        return Err(Error::rule(
            format!(
                "deciding {reference} needs an approving role (isms_manager or top_management), not {}",
                actor.role
            ),
            "ask an ISMS manager or top management to decide",
        ));
    }
    Ok(())
}

/// Whether a decision is possible now, and the status after it. An emergency change that is
/// already implementing or done keeps its status: the decision is retrospective.
pub fn decide(
    reference: &str,
    kind: ChangeType,
    status: CrStatus,
    decided: bool,
    decision: Decision,
) -> Result<CrStatus> {
    use CrStatus::*;
    if decided {
        return Err(Error::rule(
            format!("{reference} was already decided"),
            "raise a new change request to change the plan",
        ));
    }
    match (status, decision) {
        (Submitted, Decision::Approve) => Ok(Approved),
        (Submitted, Decision::Reject) => Ok(Rejected),
        (Implementing | Implemented | Failed | RolledBack | Reviewed, _) if kind == ChangeType::Emergency => Ok(status),
        _ => Err(Error::rule(
            format!("{reference} is {} and needs no decision", status.as_str()),
            "list_change_requests with awaiting_decision shows those that do",
        )),
    }
}

/// The moves update_change_request may make.
fn allowed(kind: ChangeType, from: CrStatus, to: CrStatus) -> bool {
    use CrStatus::*;
    matches!(
        (from, to),
        (Approved, Implementing)
            | (Implementing, Implemented | Failed | RolledBack)
            | (Implemented, Failed | RolledBack)
            | (Failed, RolledBack)
            | (Reviewed, Closed)
    ) || (from == Submitted && to == Implementing && kind == ChangeType::Emergency)
}

/// The status after an implementation step, or the refusal naming what is missing. An
/// emergency change closes only once approved; a rejected one goes no further than rolled back.
pub fn advance(
    reference: &str,
    kind: ChangeType,
    status: CrStatus,
    to: CrStatus,
    decision: Option<Decision>,
) -> Result<CrStatus> {
    use CrStatus::*;
    if kind == ChangeType::Emergency && to == Closed && decision != Some(Decision::Approve) {
        return Err(Error::rule(
            format!("{reference} is an emergency change without an approval; it cannot close"),
            "an ISMS manager or top management decides it retrospectively with decide_change_request",
        ));
    }
    if decision == Some(Decision::Reject) && matches!(to, Implementing | Implemented) {
        return Err(Error::rule(
            format!("{reference} was rejected"),
            "roll it back: update_change_request with status rolled_back",
        ));
    }
    if allowed(kind, status, to) {
        return Ok(to);
    }
    let next: Vec<&str> = [Implementing, Implemented, Failed, RolledBack, Closed]
        .into_iter()
        .filter(|t| allowed(kind, status, *t))
        .map(CrStatus::as_str)
        .collect();
    let hint = match (status, to) {
        (Submitted, Implementing) => "a normal change needs approval first: decide_change_request".to_owned(),
        (Rejected, _) => "it was rejected; raise a new change request".to_owned(),
        (Implemented | Failed | RolledBack, Closed) => {
            "the post-implementation review comes first: update_change_request with `review`".to_owned()
        }
        _ if next.is_empty() => format!("nothing follows {} by status; see get_record for its state", status.as_str()),
        _ => format!("from {} it may go to: {}", status.as_str(), next.join(", ")),
    };
    Err(Error::rule(format!("{reference} cannot go from {} to {}", status.as_str(), to.as_str()), hint))
}

/// A post-implementation review may follow implementation, failure or roll-back; a rejected
/// change only once rolled back.
pub fn check_review(reference: &str, status: CrStatus, decision: Option<Decision>) -> Result<CrStatus> {
    if decision == Some(Decision::Reject) && status != CrStatus::RolledBack {
        return Err(Error::rule(format!("{reference} was rejected"), "roll it back first: status rolled_back"));
    }
    match status {
        CrStatus::Implemented | CrStatus::Failed | CrStatus::RolledBack => Ok(CrStatus::Reviewed),
        other => Err(Error::rule(
            format!("{reference} is {}: the post-implementation review follows implementation", other.as_str()),
            "set status implemented (or failed / rolled_back) first",
        )),
    }
}

/// An emergency change started at `started` without approval is overdue for its
/// retrospective approval once `hours` have passed.
pub fn retrospective_overdue(
    kind: ChangeType,
    approved: bool,
    started: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    hours: i64,
) -> bool {
    kind == ChangeType::Emergency && !approved && started.is_some_and(|s| now - s > Duration::hours(hours))
}

/// The post-implementation review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Review {
    /// Did the change achieve its purpose?
    pub outcome: String,
    /// Problems found.
    #[serde(default)]
    pub issues_found: Option<String>,
    /// Controls or the SoA need updating.
    pub controls_or_soa_update_needed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::actor::ActorKind;
    use CrStatus::*;

    #[test]
    fn lifecycle_in_order_and_no_skipping() {
        let n = ChangeType::Normal;
        assert_eq!(initial_status(ChangeType::Standard), Approved);
        assert_eq!(decide("CR-1", n, Submitted, false, Decision::Approve).unwrap(), Approved);
        assert!(decide("CR-1", n, Approved, true, Decision::Approve).is_err());
        assert_eq!(advance("CR-1", n, Approved, Implementing, None).unwrap(), Implementing);
        assert_eq!(advance("CR-1", n, Implementing, Implemented, None).unwrap(), Implemented);
        let e = advance("CR-1", n, Implemented, Closed, None).unwrap_err().to_string();
        assert!(e.contains("review"), "{e}");
        assert_eq!(check_review("CR-1", Implemented, None).unwrap(), Reviewed);
        assert_eq!(advance("CR-1", n, Reviewed, Closed, None).unwrap(), Closed);
        let e = advance("CR-1", n, Submitted, Implementing, None).unwrap_err().to_string();
        assert!(e.contains("decide_change_request"), "{e}");
        assert!(advance("CR-1", n, Rejected, Implementing, None).is_err());
    }

    #[test]
    fn emergencies_go_first_and_are_decided_after() {
        let e = ChangeType::Emergency;
        assert_eq!(advance("CR-2", e, Submitted, Implementing, None).unwrap(), Implementing);
        assert_eq!(decide("CR-2", e, Implemented, false, Decision::Approve).unwrap(), Implemented);
        let e2 = advance("CR-2", e, Reviewed, Closed, None).unwrap_err().to_string();
        assert!(e2.contains("without an approval"), "{e2}");
        assert!(advance("CR-2", e, Reviewed, Closed, Some(Decision::Approve)).is_ok());
        assert!(advance("CR-2", e, Implementing, Implemented, Some(Decision::Reject)).is_err());
        assert!(check_review("CR-2", Implemented, Some(Decision::Reject)).is_err());
        assert!(check_review("CR-2", RolledBack, Some(Decision::Reject)).is_ok());
        let start = Utc::now() - Duration::hours(80);
        assert!(retrospective_overdue(e, false, Some(start), Utc::now(), 72));
        assert!(!retrospective_overdue(e, true, Some(start), Utc::now(), 72));
        assert!(!retrospective_overdue(ChangeType::Normal, false, Some(start), Utc::now(), 72));
    }

    #[test]
    fn deciders_are_not_requesters_and_hold_an_approving_role() {
        let manager = Actor { name: "m".into(), kind: ActorKind::Human, role: Role::IsmsManager };
        let agent = Actor { name: "a".into(), kind: ActorKind::Agent, role: Role::Agent };
        assert!(check_decider(&manager, "CR-1", "a").is_ok());
        assert!(check_decider(&manager, "CR-1", "m").is_err());
        assert!(check_decider(&agent, "CR-1", "m").is_err());
    }
}

/// Time limits of the change process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangePolicy {
    /// Hours within which an emergency change needs its retrospective approval.
    pub emergency_approval_hours: i64,
    /// Days within which an implemented change needs its post-implementation review.
    pub review_days: i64,
}

impl Default for ChangePolicy {
    fn default() -> Self {
        ChangePolicy { emergency_approval_hours: 72, review_days: 14 }
    }
}

/// What a change request says, beyond its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChangeBody {
    /// One-line summary.
    pub title: String,
    /// What will change.
    pub description: String,
    /// Why.
    pub purpose: String,
    /// Expected consequences, including on security.
    pub consequences: String,
    /// Annex A controls affected.
    pub controls: Vec<String>,
    /// Assets or systems affected.
    pub assets: Vec<String>,
    /// Effect on the ISMS scope.
    pub scope_impact: Option<String>,
    /// Effect on risks.
    pub risk_impact: Option<String>,
    /// Risks affected.
    pub risks: Vec<String>,
    /// How it will be implemented.
    pub implementation_plan: String,
    /// How it will be undone if it fails.
    pub rollback_plan: String,
    /// Planned start (YYYY-MM-DD).
    pub window_start: Option<String>,
    /// Planned end (YYYY-MM-DD).
    pub window_end: Option<String>,
    /// Who decided.
    pub decided_by: Option<String>,
    /// Why (required for a rejection).
    pub decision_reason: Option<String>,
    /// Progress notes, oldest first.
    pub notes: Vec<String>,
    /// The post-implementation review.
    pub review: Option<Review>,
}

/// A change request as stored and shown.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ChangeRequest {
    /// Reference, e.g. `CR-3`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Type.
    #[serde(rename = "type")]
    pub kind: ChangeType,
    /// Status.
    pub status: CrStatus,
    /// Who raised it.
    pub requester: String,
    /// The nonconformity it serves.
    pub nonconformity: Option<String>,
    /// The corrective action it serves.
    pub corrective_action: Option<String>,
    /// What it says.
    #[serde(flatten)]
    pub body: ChangeBody,
    /// The decision, once made.
    pub decision: Option<Decision>,
    /// When decided (UTC).
    pub decided_at: Option<String>,
    /// When implementation started (UTC).
    pub started_at: Option<String>,
    /// When implementation ended (UTC).
    pub finished_at: Option<String>,
    /// An emergency change past its time for retrospective approval.
    pub retrospective_approval_overdue: bool,
    /// Implemented but not reviewed in time.
    pub review_overdue: bool,
    /// Version for optimistic concurrency.
    pub version: i64,
    /// When raised (UTC).
    pub created_at: String,
    /// When last changed (UTC).
    pub updated_at: String,
    /// Who last changed it.
    pub updated_by: String,
}

impl ChangeRequest {
    /// Fails with a conflict unless the caller read the current version.
    pub fn check_version(&self, expected: i64) -> Result<()> {
        super::check_version(&self.reference, expected, self.version)
    }
}
