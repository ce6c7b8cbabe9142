//! Nonconformities (clause 10.2): what counts as a valid one, and when its actions fall due.

use chrono::{Days, NaiveDate};
use serde::Serialize;

use super::corrective_action::CorrectiveAction;
use super::references::{ClauseRef, ControlRef, RecordKind, RecordRef};
use super::similarity::Similar;
use super::time::date;
use crate::error::{Error, Result};

text_enum! {
    /// How serious a nonconformity is (certification-audit grading).
    Severity {
        /// A requirement is not met at all or the ISMS fails to achieve its outcome.
        Major = "major",
        /// A single lapse that does not undermine the ISMS.
        Minor = "minor",
        /// Not a nonconformity yet: a weakness worth improving.
        Observation = "observation",
    }
}

text_enum! {
    /// Where a nonconformity was found.
    Source {
        /// An internal audit (9.2).
        InternalAudit = "internal_audit",
        /// A certification or customer audit.
        ExternalAudit = "external_audit",
        /// A security incident.
        Incident = "incident",
        /// Monitoring and measurement (9.1), scans, alerts.
        Monitoring = "monitoring",
        /// Someone noticed it in their own work.
        SelfReport = "self_report",
        /// A management review (9.3).
        ManagementReview = "management_review",
        /// A complaint from an interested party.
        Complaint = "complaint",
    }
}

text_enum! {
    /// Where a nonconformity stands in the 10.2 cycle.
    NcStatus {
        /// Logged; no correction recorded yet.
        Open = "open",
        /// Contained and corrected (10.2 a).
        Corrected = "corrected",
        /// Causes analysed and the need for action decided (10.2 b).
        Analysed = "analysed",
        /// Corrective actions planned (10.2 c).
        ActionsPlanned = "actions_planned",
        /// Corrective actions done.
        ActionsDone = "actions_done",
        /// Effectiveness reviewed and confirmed (10.2 d).
        Verified = "verified",
        /// ISMS changes noted and the nonconformity closed (10.2 e).
        Closed = "closed",
    }
}

impl NcStatus {
    /// Whether the nonconformity still needs work (anything but closed).
    pub fn is_open(self) -> bool {
        self != NcStatus::Closed
    }
}

/// A step of clause 10.2 that moves a nonconformity on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NcStep {
    /// b) causes analysed, similar nonconformities checked, need for action decided.
    Analyse,
    /// c) a corrective action planned.
    PlanAction,
    /// c) the last open corrective action done.
    ActionsDone,
    /// d) effectiveness reviewed.
    Review {
        /// Whether the actions worked.
        effective: bool,
    },
    /// e) ISMS changes noted; closed.
    Close,
}

/// What the 10.2 gates need to know about a nonconformity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NcGate {
    /// Its reference, for messages.
    pub reference: String,
    /// Where it stands.
    pub status: NcStatus,
    /// Its grading.
    pub severity: Severity,
    /// Whether a correction or containment is on record (10.2 a).
    pub has_correction: bool,
    /// The analysis's decision on corrective action, once analysed.
    pub action_needed: Option<bool>,
}

impl NcGate {
    /// The status after `step`, or the refusal naming the missing step and the tool for it.
    pub fn after(&self, step: NcStep) -> Result<NcStatus> {
        use NcStatus::*;
        let r = &self.reference;
        let refuse = |rule: String| Err(Error::rule(rule, self.next_step_hint()));
        match (step, self.status) {
            (NcStep::Analyse, Open | Corrected | Analysed) if self.has_correction => Ok(Analysed),
            (NcStep::Analyse, Open | Corrected | Analysed) => Err(Error::rule(
                format!("{r} has no correction or containment on record: 10.2 a) comes before the analysis"),
                "pass `correction` (what was done to contain and correct it, and its consequences) with record_nonconformity_analysis",
            )),
            (NcStep::Analyse, _) => {
                refuse(format!("{r} is {}: its analysis can no longer change", self.status.as_str()))
            }
            (NcStep::PlanAction, Analysed) if self.action_needed == Some(true) => Ok(ActionsPlanned),
            (NcStep::PlanAction, Analysed) => Err(Error::rule(
                format!("the analysis of {r} decided no corrective action is needed"),
                "record a new analysis with action_needed=true (record_nonconformity_analysis) to plan one, or close it with close_nonconformity",
            )),
            (NcStep::PlanAction, ActionsPlanned | ActionsDone) => Ok(ActionsPlanned),
            (NcStep::PlanAction, Open | Corrected) => {
                refuse(format!("{r} is {}: 10.2 b) (analysis) comes before corrective action", self.status.as_str()))
            }
            (NcStep::PlanAction, _) => {
                refuse(format!("{r} is {}: no new actions can be planned", self.status.as_str()))
            }
            (NcStep::ActionsDone, ActionsPlanned) => Ok(ActionsDone),
            (NcStep::ActionsDone, _) => refuse(format!("{r} is {}, not actions_planned", self.status.as_str())),
            (NcStep::Review { effective: true }, ActionsDone) => Ok(Verified),
            (NcStep::Review { effective: false }, ActionsDone) => Ok(Analysed),
            (NcStep::Review { .. }, _) => refuse(format!(
                "{r} is {}: an effectiveness review (10.2 d) needs all its corrective actions done",
                self.status.as_str()
            )),
            (NcStep::Close, Verified) => Ok(Closed),
            (NcStep::Close, Analysed) if self.action_needed == Some(false) => Ok(Closed),
            (NcStep::Close, Closed) => refuse(format!("{r} is already closed")),
            (NcStep::Close, _) => refuse(format!(
                "{r} is {}: closing needs its corrective actions verified effective (10.2 d), or an analysis that found no action needed",
                self.status.as_str()
            )),
        }
    }

    /// The tool that takes this nonconformity to its next step, or `None` when closed.
    pub fn next_step(&self) -> Option<&'static str> {
        use NcStatus::*;
        match self.status {
            Open | Corrected => Some("record_nonconformity_analysis"),
            Analysed if self.action_needed == Some(false) => Some("close_nonconformity"),
            Analysed => Some("plan_corrective_action"),
            ActionsPlanned => Some("update_corrective_action"),
            ActionsDone => Some("review_effectiveness"),
            Verified => Some("close_nonconformity"),
            Closed => None,
        }
    }

    fn next_step_hint(&self) -> String {
        match self.next_step() {
            Some(tool) => format!("its next step is {tool}"),
            None => "it is closed; log a new nonconformity if the problem is back".to_owned(),
        }
    }
}

/// Checks the decision of 10.2 b): not acting needs a justification, and a major
/// nonconformity always needs corrective action.
pub fn check_action_decision(severity: Severity, action_needed: bool, justification: Option<&str>) -> Result<()> {
    if action_needed {
        return Ok(());
    }
    if severity == Severity::Major {
        return Err(Error::rule(
            "a major nonconformity always needs corrective action",
            "set action_needed=true and plan actions, or, if it was graded wrongly, log it again with the right severity",
        ));
    }
    if justification.is_none_or(|j| j.trim().is_empty()) {
        return Err(Error::invalid(
            "justification",
            "is required when action_needed is false: say why no action on the causes is needed",
        ));
    }
    Ok(())
}

/// How due dates of corrective action are set when the caller gives none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuePolicy {
    /// Days from logging for a major nonconformity (the standard practice is 90).
    pub major_days: u64,
    /// Days from logging for a minor nonconformity, when no surveillance audit date is set.
    pub minor_days: u64,
    /// The next surveillance audit: minor nonconformities are due by then.
    pub next_surveillance_audit: Option<NaiveDate>,
}

impl Default for DuePolicy {
    fn default() -> Self {
        DuePolicy { major_days: 90, minor_days: 365, next_surveillance_audit: None }
    }
}

impl DuePolicy {
    /// The due date for a nonconformity logged on `logged_on`: the caller's date if given
    /// (not before the logging date), else the policy's default for the severity (a minor one
    /// by the next surveillance audit when its date is set); an observation has none unless given.
    pub fn due_date(
        self,
        severity: Severity,
        logged_on: NaiveDate,
        given: Option<NaiveDate>,
    ) -> Result<Option<NaiveDate>> {
        if let Some(d) = given {
            if d < logged_on {
                return Err(Error::invalid(
                    "due_date",
                    format!("{d} is before today ({logged_on}); give a date from today on, or omit it for the default"),
                ));
            }
            return Ok(Some(d));
        }
        let days = match severity {
            Severity::Major => self.major_days,
            Severity::Minor => match self.next_surveillance_audit {
                Some(audit) if audit >= logged_on => return Ok(Some(audit)),
                _ => self.minor_days,
            },
            Severity::Observation => return Ok(None),
        };
        Ok(logged_on.checked_add_days(Days::new(days)))
    }
}

/// A nonconformity as logged, every field already checked.
#[derive(Debug, Clone)]
pub struct NewNonconformity {
    /// One-line summary.
    pub title: String,
    /// What was found, where, and why it breaks a requirement.
    pub description: String,
    /// Grading.
    pub severity: Severity,
    /// Where it was found.
    pub source: Source,
    /// Requirement clauses not met.
    pub clauses: Vec<ClauseRef>,
    /// Annex A controls not met.
    pub controls: Vec<ControlRef>,
    /// Context where it was detected (system, repository, process, session).
    pub detected_in: Option<String>,
    /// Evidence references (paths, URLs, record refs).
    pub evidence: Vec<String>,
    /// The immediate correction or containment already done (10.2 a).
    pub correction: Option<String>,
    /// When corrective action is due.
    pub due_date: Option<NaiveDate>,
}

impl NewNonconformity {
    /// The status a nonconformity starts in: corrected when a correction came with it.
    pub fn initial_status(&self) -> NcStatus {
        if self.correction.is_some() { NcStatus::Corrected } else { NcStatus::Open }
    }

    /// The record it becomes when logged as number `number` by `actor` at `at` (a stamp),
    /// with the similar and recurring ones found: what reading it back would give.
    pub fn logged(
        &self,
        number: i64,
        at: &str,
        actor: &str,
        similar: Vec<Similar>,
        recurrence_of: Vec<String>,
        today: NaiveDate,
    ) -> Nonconformity {
        let status = self.initial_status();
        let mut nc = Nonconformity {
            reference: RecordRef::new(RecordKind::Nonconformity, number).to_string(),
            title: self.title.clone(),
            description: self.description.clone(),
            severity: self.severity,
            source: self.source,
            status,
            next_step: None,
            clauses: self.clauses.iter().map(|c| c.as_str().to_owned()).collect(),
            controls: self.controls.iter().map(|c| c.as_str().to_owned()).collect(),
            detected_in: self.detected_in.clone(),
            evidence: self.evidence.clone(),
            correction: self.correction.clone(),
            consequences: None,
            due_date: self.due_date.map(date),
            overdue: is_overdue(status, self.due_date, today),
            similar,
            recurrence_of,
            analysis: None,
            actions: Vec::new(),
            reviews: Vec::new(),
            round: 1,
            isms_changes: None,
            closed_at: None,
            closed_by: None,
            version: 1,
            created_at: at.to_owned(),
            created_by: actor.to_owned(),
            updated_at: at.to_owned(),
            updated_by: actor.to_owned(),
        };
        nc.next_step = nc.gate().next_step().map(str::to_owned);
        nc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn major_is_due_in_90_days_minor_by_policy_observation_never() {
        let p = DuePolicy::default();
        let today = day("2026-11-28");
        assert_eq!(p.due_date(Severity::Major, today, None).unwrap(), Some(day("2027-02-26")));
        assert_eq!(p.due_date(Severity::Minor, today, None).unwrap(), Some(day("2027-11-28")));
        assert_eq!(p.due_date(Severity::Observation, today, None).unwrap(), None);
        let audit = DuePolicy { next_surveillance_audit: Some(day("2027-05-10")), ..p };
        assert_eq!(audit.due_date(Severity::Minor, today, None).unwrap(), Some(day("2027-05-10")));
        assert_eq!(audit.due_date(Severity::Major, today, None).unwrap(), Some(day("2027-02-26")));
        let past = DuePolicy { next_surveillance_audit: Some(day("2026-01-01")), ..p };
        assert_eq!(past.due_date(Severity::Minor, today, None).unwrap(), Some(day("2027-11-28")));
    }

    #[test]
    fn a_given_due_date_wins_but_not_in_the_past() {
        let p = DuePolicy::default();
        let today = day("2026-11-28");
        assert_eq!(p.due_date(Severity::Major, today, Some(day("2026-12-01"))).unwrap(), Some(day("2026-12-01")));
        let e = p.due_date(Severity::Major, today, Some(day("2026-11-01"))).unwrap_err().to_string();
        assert!(e.contains("due_date"), "{e}");
    }

    #[test]
    fn statuses_round_trip() {
        for s in ["open", "corrected", "analysed", "actions_planned", "actions_done", "verified", "closed"] {
            assert_eq!(s.parse::<NcStatus>().unwrap().as_str(), s);
        }
        assert!(!NcStatus::Closed.is_open());
    }
}

/// An analyst's decision on one similar nonconformity (10.2 b).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SimilarDecision {
    /// The similar nonconformity, e.g. NC-4.
    #[serde(rename = "ref")]
    pub reference: String,
    /// true: same cause or could recur the same way; false: unrelated.
    pub related: bool,
    /// Why.
    #[serde(default)]
    pub note: Option<String>,
}

/// The analysis of 10.2 b): causes, similar nonconformities, and the decision on action.
#[derive(Debug, Clone, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Analysis {
    /// Method used, e.g. 5 whys, fishbone.
    pub method: String,
    /// The root cause found.
    pub root_cause: String,
    /// Each similar nonconformity confirmed or dismissed.
    pub similar: Vec<SimilarDecision>,
    /// Where else the same could occur, and what was checked.
    pub similar_note: Option<String>,
    /// Whether corrective action on the cause is needed.
    pub action_needed: bool,
    /// Why no action is needed (when it is not).
    pub justification: Option<String>,
    /// When analysed (UTC).
    pub analysed_at: String,
    /// Who analysed it.
    pub analysed_by: String,
}

text_enum! {
    /// The result of an effectiveness review (10.2 d).
    Effectiveness {
        /// The actions removed the cause.
        Effective = "effective",
        /// They did not: the nonconformity reopens for new action.
        NotEffective = "not_effective",
    }
}

/// One effectiveness review.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct EffectivenessReview {
    /// The round of actions reviewed.
    pub round: i64,
    /// Outcome.
    pub result: Effectiveness,
    /// What the reviewer checked.
    pub evidence: Vec<String>,
    /// Findings.
    pub notes: String,
    /// Who reviewed.
    pub reviewer: String,
    /// When (UTC).
    pub at: String,
}

/// A nonconformity as stored and shown.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Nonconformity {
    /// Reference, e.g. `NC-12`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// One-line summary.
    pub title: String,
    /// What was found.
    pub description: String,
    /// Grading.
    pub severity: Severity,
    /// Where it was found.
    pub source: Source,
    /// Where it stands in the 10.2 cycle.
    pub status: NcStatus,
    /// The tool for the next step; absent once closed.
    pub next_step: Option<String>,
    /// Requirement clauses not met.
    pub clauses: Vec<String>,
    /// Annex A controls not met.
    pub controls: Vec<String>,
    /// Context where it was detected.
    pub detected_in: Option<String>,
    /// Evidence references.
    pub evidence: Vec<String>,
    /// Correction or containment (10.2 a).
    pub correction: Option<String>,
    /// Consequences and how they were dealt with (10.2 a).
    pub consequences: Option<String>,
    /// When corrective action is due (YYYY-MM-DD).
    pub due_date: Option<String>,
    /// True when open past its due date or with an action past due.
    pub overdue: bool,
    /// Similar nonconformities found when it was logged.
    pub similar: Vec<Similar>,
    /// Closed nonconformities on the same controls in the 12 months before it: a recurrence.
    pub recurrence_of: Vec<String>,
    /// The 10.2 b) analysis, once recorded.
    pub analysis: Option<Analysis>,
    /// Corrective actions, all rounds.
    pub actions: Vec<CorrectiveAction>,
    /// Effectiveness reviews, oldest first.
    pub reviews: Vec<EffectivenessReview>,
    /// Round of corrective action (2 after one ineffective review, …).
    pub round: i64,
    /// ISMS changes made (10.2 e), once closed.
    pub isms_changes: Option<String>,
    /// When closed (UTC).
    pub closed_at: Option<String>,
    /// Who closed it.
    pub closed_by: Option<String>,
    /// Version for optimistic concurrency; send it back with updates.
    pub version: i64,
    /// When logged (UTC).
    pub created_at: String,
    /// Who logged it.
    pub created_by: String,
    /// When last changed (UTC).
    pub updated_at: String,
    /// Who last changed it.
    pub updated_by: String,
}

impl Nonconformity {
    /// What the 10.2 gates need to know.
    pub fn gate(&self) -> NcGate {
        NcGate {
            reference: self.reference.clone(),
            status: self.status,
            severity: self.severity,
            has_correction: self.correction.is_some(),
            action_needed: self.analysis.as_ref().map(|a| a.action_needed),
        }
    }

    /// Fails with a conflict unless the caller read the current version.
    pub fn check_version(&self, expected: i64) -> Result<()> {
        super::check_version(&self.reference, expected, self.version)
    }
}

/// Whether a nonconformity is overdue on `today`: still open and past its due date.
pub fn is_overdue(status: NcStatus, due_date: Option<NaiveDate>, today: NaiveDate) -> bool {
    status.is_open() && due_date.is_some_and(|d| d < today)
}

#[cfg(test)]
mod gate_tests {
    use super::*;

    fn gate(status: NcStatus, has_correction: bool, action_needed: Option<bool>) -> NcGate {
        NcGate { reference: "NC-1".into(), status, severity: Severity::Major, has_correction, action_needed }
    }

    #[test]
    fn the_whole_cycle_in_order() {
        let mut g = gate(NcStatus::Open, true, None);
        g.status = g.after(NcStep::Analyse).unwrap();
        assert_eq!(g.status, NcStatus::Analysed);
        g.action_needed = Some(true);
        for (step, expected) in [
            (NcStep::PlanAction, NcStatus::ActionsPlanned),
            (NcStep::ActionsDone, NcStatus::ActionsDone),
            (NcStep::Review { effective: true }, NcStatus::Verified),
            (NcStep::Close, NcStatus::Closed),
        ] {
            g.status = g.after(step).unwrap();
            assert_eq!(g.status, expected);
        }
        assert_eq!(g.next_step(), None);
    }

    #[test]
    fn no_gate_is_skipped_and_refusals_name_the_next_tool() {
        let open = gate(NcStatus::Open, false, None);
        let e = open.after(NcStep::Analyse).unwrap_err().to_string();
        assert!(e.contains("10.2 a)") && e.contains("correction"), "{e}");
        let e = gate(NcStatus::Corrected, true, None).after(NcStep::PlanAction).unwrap_err().to_string();
        assert!(e.contains("record_nonconformity_analysis"), "{e}");
        let planned = gate(NcStatus::ActionsPlanned, true, Some(true));
        let e = planned.after(NcStep::Review { effective: true }).unwrap_err().to_string();
        assert!(e.contains("update_corrective_action"), "{e}");
        let e = planned.after(NcStep::Close).unwrap_err().to_string();
        assert!(e.contains("update_corrective_action"), "{e}");
        assert!(gate(NcStatus::Closed, true, Some(true)).after(NcStep::Close).is_err());
        assert!(gate(NcStatus::Verified, true, Some(true)).after(NcStep::Analyse).is_err());
    }

    #[test]
    fn an_ineffective_review_reopens_for_new_action() {
        let done = gate(NcStatus::ActionsDone, true, Some(true));
        assert_eq!(done.after(NcStep::Review { effective: false }).unwrap(), NcStatus::Analysed);
        assert_eq!(done.after(NcStep::PlanAction).unwrap(), NcStatus::ActionsPlanned);
    }

    #[test]
    fn no_action_needed_closes_straight_after_analysis() {
        let g = gate(NcStatus::Analysed, true, Some(false));
        assert_eq!(g.next_step(), Some("close_nonconformity"));
        assert_eq!(g.after(NcStep::Close).unwrap(), NcStatus::Closed);
        assert!(g.after(NcStep::PlanAction).is_err());
    }

    #[test]
    fn action_decisions() {
        assert!(check_action_decision(Severity::Major, false, Some("because")).is_err());
        assert!(check_action_decision(Severity::Minor, false, None).is_err());
        assert!(check_action_decision(Severity::Observation, false, Some("one-off")).is_ok());
        assert!(check_action_decision(Severity::Major, true, None).is_ok());
    }
}

#[cfg(test)]
mod overdue_tests {
    use super::*;

    #[test]
    fn only_open_past_due_is_overdue() {
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let today = d("2026-11-28");
        assert!(is_overdue(NcStatus::Open, Some(d("2026-11-27")), today));
        assert!(!is_overdue(NcStatus::Open, Some(today), today));
        assert!(!is_overdue(NcStatus::Closed, Some(d("2026-01-01")), today));
        assert!(!is_overdue(NcStatus::Open, None, today));
    }
}
