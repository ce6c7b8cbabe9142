//! Management review (9.3) and the context it looks at (4.1-4.3): the context register,
//! review actions tracked to done, and the Stage 1 readiness checks.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

text_enum! {
    /// What a context register entry is.
    ContextKind {
        /// The ISMS scope statement (4.3).
        Scope = "scope",
        /// An internal issue (4.1).
        InternalIssue = "internal_issue",
        /// An external issue (4.1).
        ExternalIssue = "external_issue",
        /// An interested party and its requirements (4.2).
        InterestedParty = "interested_party",
    }
}

/// An entry of the context register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContextItem {
    /// Kind.
    pub kind: ContextKind,
    /// Name, unique per kind.
    pub name: String,
    /// What it is.
    pub description: String,
    /// An interested party's needs and expectations.
    pub expectations: Option<String>,
    /// Feedback received from it (9.3.2 e).
    pub feedback: Option<String>,
    /// False once withdrawn.
    pub active: bool,
    /// When last changed (UTC).
    pub changed_at: String,
    /// Who changed it.
    pub changed_by: String,
}

text_enum! {
    /// Where a review action stands.
    ActionStatus {
        /// Not done yet.
        Open = "open",
        /// Done.
        Done = "done",
    }
}

/// An action decided at a management review, tracked until done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ReviewAction {
    /// Reference, e.g. `MR-2.1`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// What to do.
    pub description: String,
    /// Who.
    pub owner: String,
    /// By when (YYYY-MM-DD).
    pub due_date: String,
    /// Status.
    pub status: ActionStatus,
    /// When done (UTC).
    pub done_at: Option<String>,
    /// Note on completion.
    pub note: Option<String>,
    /// Open past its due date.
    pub overdue: bool,
}

/// Whether an open action is past its due date on `today`.
pub fn action_overdue(status: ActionStatus, due: &str, today: NaiveDate) -> bool {
    status == ActionStatus::Open && NaiveDate::parse_from_str(due, "%Y-%m-%d").is_ok_and(|d| d < today)
}

/// One Stage 1 readiness check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Check {
    /// What the auditor checks.
    pub check: String,
    /// The clause.
    pub clause: String,
    /// Whether the records show it.
    pub passed: bool,
    /// What is missing, when it fails.
    pub gap: Option<String>,
    /// The tool that closes the gap.
    pub tool: Option<String>,
}

/// What the readiness checks look at, counted from the records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadinessFacts {
    /// A scope statement is on record.
    pub scope: bool,
    /// An information security policy is published.
    pub policy: bool,
    /// Risks registered.
    pub risks: usize,
    /// Risks that are mitigated without a treatment plan.
    pub risks_without_plan: usize,
    /// Risks whose residual risk awaits its owner's acceptance.
    pub residual_not_accepted: usize,
    /// SoA controls undecided.
    pub soa_undecided: usize,
    /// An approved SoA version exists.
    pub soa_approved: bool,
    /// Audits completed in the last 12 months.
    pub audits: usize,
    /// Management reviews in the last 12 months.
    pub reviews: usize,
    /// Objectives defined.
    pub objectives: usize,
    /// Measurements recorded.
    pub measurements: usize,
    /// Competence evidence recorded.
    pub competence_records: usize,
}

fn check(check: &str, clause: &str, passed: bool, gap: String, tool: &str) -> Check {
    Check {
        check: check.to_owned(),
        clause: clause.to_owned(),
        passed,
        gap: (!passed).then_some(gap),
        tool: (!passed).then(|| tool.to_owned()),
    }
}

/// The Stage 1 auditor's checks, each passed or failed with its gap and the tool to close it.
pub fn readiness(f: &ReadinessFacts) -> Vec<Check> {
    vec![
        check(
            "ISMS scope defined and documented",
            "4.3",
            f.scope,
            "no scope statement on record".into(),
            "record_context (kind scope)",
        ),
        check("Information security policy exists", "5.2", f.policy, "no policy published".into(), "publish_policy"),
        check("Risk assessment methodology defined", "6.1.2", true, String::new(), ""),
        check("Risk assessment performed", "6.1.2, 8.2", f.risks > 0, "no risk registered".into(), "register_risk"),
        check(
            "Risk treatment plan exists and residual risks are accepted",
            "6.1.3, 8.3",
            f.risks > 0 && f.risks_without_plan == 0 && f.residual_not_accepted == 0,
            format!(
                "{} mitigated risks without a treatment plan, {} residual risks not accepted by their owners",
                f.risks_without_plan, f.residual_not_accepted
            ),
            "update_risk",
        ),
        check(
            "Statement of Applicability complete and approved",
            "6.1.3 d",
            f.soa_undecided == 0 && f.soa_approved,
            format!(
                "{} controls undecided; approved version: {}",
                f.soa_undecided,
                if f.soa_approved { "yes" } else { "none" }
            ),
            "update_soa_entry, approve_soa",
        ),
        check(
            "Internal audit performed",
            "9.2",
            f.audits > 0,
            "no internal audit completed in the last 12 months".into(),
            "record_audit",
        ),
        check(
            "Management review performed",
            "9.3",
            f.reviews > 0,
            "no management review in the last 12 months".into(),
            "record_management_review",
        ),
        check(
            "Mandatory documented information exists",
            "6.2, 7.2, 9.1",
            f.objectives > 0 && f.measurements > 0 && f.competence_records > 0,
            format!(
                "objectives: {}, measurements: {}, competence evidence: {}",
                f.objectives, f.measurements, f.competence_records
            ),
            "define_objective, record_measurement, record_competence",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_flips_as_records_appear() {
        let empty = readiness(&ReadinessFacts::default());
        assert!(empty.iter().filter(|c| c.passed).count() == 1, "only the methodology, documented in configuration");
        assert!(empty.iter().all(|c| c.passed || c.tool.is_some()));
        let full = ReadinessFacts {
            scope: true,
            policy: true,
            risks: 3,
            soa_approved: true,
            audits: 1,
            reviews: 1,
            objectives: 5,
            measurements: 2,
            competence_records: 4,
            ..ReadinessFacts::default()
        };
        assert!(readiness(&full).iter().all(|c| c.passed), "{:?}", readiness(&full));
    }

    #[test]
    fn overdue_actions() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        assert!(action_overdue(ActionStatus::Open, "2026-11-01", today));
        assert!(!action_overdue(ActionStatus::Done, "2026-11-01", today));
        assert!(!action_overdue(ActionStatus::Open, "2026-12-01", today));
    }
}
