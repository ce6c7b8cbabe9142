//! Corrective actions (clause 10.2 c and d): their states, who may move them, when they fall
//! due, and who may judge whether they worked.

use chrono::NaiveDate;
use serde::Serialize;

use super::actor::Actor;
use super::nonconformity::Severity;
use crate::error::{Error, Result};

text_enum! {
    /// Where a corrective action stands.
    CaStatus {
        /// Planned, not started.
        Planned = "planned",
        /// Being carried out.
        InProgress = "in_progress",
        /// Done, with evidence.
        Done = "done",
    }
}

impl CaStatus {
    /// The status after a requested move, or the refusal.
    pub fn after(self, reference: &str, to: CaStatus) -> Result<CaStatus> {
        use CaStatus::*;
        match (self, to) {
            (Planned, InProgress | Done) | (InProgress, Done) => Ok(to),
            (s, t) if s == t && s != Done => Ok(to),
            (Done, _) => Err(Error::rule(
                format!("{reference} is done and stays done"),
                "if it did not work, review_effectiveness with result not_effective reopens the nonconformity for a new action",
            )),
            (_, Planned) => Err(Error::rule(
                format!("{reference} has started; it cannot go back to planned"),
                "record progress with status in_progress, or finish it with status done and evidence",
            )),
            _ => unreachable!("every pair of statuses is covered above"),
        }
    }
}

/// Finishing an action needs evidence of what was done.
pub fn check_done_evidence(reference: &str, evidence: &[String]) -> Result<()> {
    if evidence.is_empty() {
        return Err(Error::invalid(
            "evidence",
            format!(
                "is required to mark {reference} done: refs to what shows the action was carried out (commit, ticket, document)"
            ),
        ));
    }
    Ok(())
}

/// 10.2 d) segregation of duties: whoever reviews effectiveness owns none of the actions.
pub fn check_reviewer(reviewer: &Actor, nc: &str, owners: &[String]) -> Result<()> {
    if owners.contains(&reviewer.name) {
        return Err(Error::rule(
            format!("`{}` owns a corrective action of {nc} and may not review its effectiveness", reviewer.name),
            "ask an ISMS manager or auditor who owns none of its actions to call review_effectiveness",
        ));
    }
    Ok(())
}

/// The due date of a new action: the caller's date or the nonconformity's; never past the
/// nonconformity's own due date (proportionate to its severity), never before today.
pub fn action_due_date(
    nc: &str,
    severity: Severity,
    nc_due: Option<NaiveDate>,
    given: Option<NaiveDate>,
    today: NaiveDate,
) -> Result<NaiveDate> {
    match (given, nc_due) {
        (Some(d), _) if d < today => {
            Err(Error::invalid("due_date", format!("{d} is in the past; give a date from {today} on")))
        }
        (Some(d), Some(limit)) if d > limit && severity != Severity::Observation => Err(Error::rule(
            format!("{nc} ({}) is due {limit}; its actions may not be due later ({d})", severity.as_str()),
            format!("choose a due date up to {limit}, or omit due_date to use it"),
        )),
        (Some(d), _) => Ok(d),
        (None, Some(limit)) => Ok(limit.max(today)),
        (None, None) => Err(Error::invalid("due_date", format!("is required: {nc} has no due date of its own"))),
    }
}

/// A corrective action as stored and shown.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CorrectiveAction {
    /// Reference, e.g. `CA-7`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The nonconformity it corrects.
    pub nonconformity: String,
    /// What will be done about the cause.
    pub description: String,
    /// Who carries it out.
    pub owner: String,
    /// When it is due (YYYY-MM-DD).
    pub due_date: String,
    /// Where it stands.
    pub status: CaStatus,
    /// Latest progress note.
    pub progress: Option<String>,
    /// Evidence it was done.
    pub evidence: Vec<String>,
    /// True when not done past its due date.
    pub overdue: bool,
    /// Which round of action (1, then 2 after an ineffective review, …).
    pub round: i64,
    /// Version for optimistic concurrency.
    pub version: i64,
    /// When planned (UTC).
    pub created_at: String,
    /// Who planned it.
    pub created_by: String,
    /// When last changed (UTC).
    pub updated_at: String,
    /// Who last changed it.
    pub updated_by: String,
}

impl CorrectiveAction {
    /// Fails with a conflict unless the caller read the current version.
    pub fn check_version(&self, expected: i64) -> Result<()> {
        super::check_version(&self.reference, expected, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::actor::{ActorKind, Role};

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn actions_move_forward_only() {
        use CaStatus::*;
        assert_eq!(Planned.after("CA-1", InProgress).unwrap(), InProgress);
        assert_eq!(InProgress.after("CA-1", InProgress).unwrap(), InProgress);
        assert_eq!(InProgress.after("CA-1", Done).unwrap(), Done);
        assert!(Done.after("CA-1", InProgress).is_err());
        assert!(Done.after("CA-1", Done).is_err());
        assert!(InProgress.after("CA-1", Planned).is_err());
    }

    #[test]
    fn owners_do_not_review() {
        let manager = Actor { name: "m".into(), kind: ActorKind::Human, role: Role::IsmsManager };
        let e = check_reviewer(&manager, "NC-1", &["x".into(), "m".into()]).unwrap_err().to_string();
        assert!(e.contains("may not review"), "{e}");
        assert!(check_reviewer(&manager, "NC-1", &["x".into()]).is_ok());
    }

    #[test]
    fn due_dates_are_proportionate() {
        let today = day("2026-11-28");
        let nc_due = Some(day("2027-02-26"));
        assert_eq!(action_due_date("NC-1", Severity::Major, nc_due, None, today).unwrap(), day("2027-02-26"));
        assert!(action_due_date("NC-1", Severity::Major, nc_due, Some(day("2027-06-01")), today).is_err());
        assert!(action_due_date("NC-1", Severity::Major, nc_due, Some(day("2026-01-01")), today).is_err());
        assert_eq!(
            action_due_date("NC-1", Severity::Observation, None, Some(day("2027-06-01")), today).unwrap(),
            day("2027-06-01")
        );
        assert!(action_due_date("NC-1", Severity::Observation, None, None, today).is_err());
        assert!(check_done_evidence("CA-1", &[]).is_err());
    }
}
