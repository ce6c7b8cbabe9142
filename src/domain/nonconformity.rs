//! Nonconformities (clause 10.2): what counts as a valid one, and when its actions fall due.

use std::str::FromStr;

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

use super::references::{ClauseRef, ControlRef};
use crate::error::{Error, Result};

macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            /// The value as written in arguments, outputs and storage.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(Error::Internal(format!("stored {} `{s}` is unknown", stringify!($name)))),
                }
            }
        }
    };
}

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

/// How due dates of corrective action are set when the caller gives none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuePolicy {
    /// Days from logging for a major nonconformity (the standard practice is 90).
    pub major_days: u64,
    /// Days from logging for a minor nonconformity (until the next surveillance audit).
    pub minor_days: u64,
}

impl Default for DuePolicy {
    fn default() -> Self {
        DuePolicy { major_days: 90, minor_days: 365 }
    }
}

impl DuePolicy {
    /// The due date for a nonconformity logged on `logged_on`: the caller's date if given
    /// (not before the logging date), else the policy's default for the severity; an
    /// observation has none unless given.
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
            Severity::Minor => self.minor_days,
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
    /// Requirement clauses not met.
    pub clauses: Vec<String>,
    /// Annex A controls not met.
    pub controls: Vec<String>,
    /// Context where it was detected.
    pub detected_in: Option<String>,
    /// Evidence references.
    pub evidence: Vec<String>,
    /// Immediate correction or containment (10.2 a).
    pub correction: Option<String>,
    /// When corrective action is due (YYYY-MM-DD).
    pub due_date: Option<String>,
    /// True when open past its due date.
    pub overdue: bool,
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

/// Whether a nonconformity is overdue on `today`: still open and past its due date.
pub fn is_overdue(status: NcStatus, due_date: Option<NaiveDate>, today: NaiveDate) -> bool {
    status.is_open() && due_date.is_some_and(|d| d < today)
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
