//! The Statement of Applicability (6.1.3 d): one entry per Annex A control, the rules an
//! entry must meet, traceability to risks, stale evidence, and the diff between versions.

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

text_enum! {
    /// How far a control is implemented.
    ImplementationStatus {
        /// Not implemented.
        NotImplemented = "not_implemented",
        /// Planned.
        Planned = "planned",
        /// Partly in place.
        PartiallyImplemented = "partially_implemented",
        /// In place.
        Implemented = "implemented",
    }
}

/// A piece of evidence and the date it shows the control working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// Path, URL or record ref.
    #[serde(rename = "ref")]
    pub reference: String,
    /// YYYY-MM-DD.
    pub date: String,
}

/// What an entry says, as the rules see it.
#[derive(Debug, Clone)]
pub struct Decision<'a> {
    /// The control.
    pub control: &'a str,
    /// Whether it applies.
    pub applicable: bool,
    /// Why it is included or excluded.
    pub justification: Option<&'a str>,
    /// Implementation status.
    pub status: ImplementationStatus,
    /// How it is implemented.
    pub implementation: Option<&'a str>,
    /// A legal, contractual or business requirement that includes it.
    pub requirement: Option<&'a str>,
    /// The risk-assessment statement behind an exclusion.
    pub risk_assessment: Option<&'a str>,
    /// How many risks it is linked to.
    pub linked_risks: usize,
}

/// Checks an entry: a justification both ways; an exclusion cites the risk assessment and is
/// not implemented; an implemented control says how.
pub fn check_entry(d: &Decision<'_>) -> Result<()> {
    let c = d.control;
    if d.justification.is_none_or(|j| j.trim().is_empty()) {
        return Err(Error::invalid(
            "justification",
            format!("is required: say why {c} is {} (6.1.3 d)", if d.applicable { "included" } else { "excluded" }),
        ));
    }
    if !d.applicable {
        if d.linked_risks == 0 && d.risk_assessment.is_none() {
            return Err(Error::rule(
                format!("excluding {c} needs a justification based on the risk assessment, not on cost or difficulty"),
                "link the risks whose assessment shows it is not needed (`risks`), or give `risk_assessment`: what the assessment found",
            ));
        }
        if d.status != ImplementationStatus::NotImplemented {
            return Err(Error::invalid(
                "status",
                format!("an excluded control is not_implemented, not {}", d.status.as_str()),
            ));
        }
    }
    if matches!(d.status, ImplementationStatus::Implemented | ImplementationStatus::PartiallyImplemented)
        && d.implementation.is_none_or(|i| i.trim().is_empty())
    {
        return Err(Error::invalid(
            "implementation",
            format!("is required when {c} is {}: say how", d.status.as_str()),
        ));
    }
    Ok(())
}

/// Checks evidence dates: real dates, not in the future.
pub fn check_evidence(evidence: &[Evidence], today: NaiveDate) -> Result<()> {
    for e in evidence {
        let d = NaiveDate::parse_from_str(&e.date, "%Y-%m-%d")
            .map_err(|_| Error::invalid("evidence.date", format!("`{}` is not a date; use YYYY-MM-DD", e.date)))?;
        if d > today {
            return Err(Error::invalid("evidence.date", format!("{d} is in the future")));
        }
    }
    Ok(())
}

/// An applicable control tied to no risk and no requirement: chosen from a template, not from
/// the risk assessment (the auditors' top finding).
pub fn untraceable(applicable: Option<bool>, linked_risks: usize, requirement: Option<&str>) -> bool {
    applicable == Some(true) && linked_risks == 0 && requirement.is_none()
}

/// An implemented (or partly implemented) control whose newest evidence is older than
/// `max_age_days`, or that has none.
pub fn stale_evidence(
    status: Option<ImplementationStatus>,
    evidence: &[Evidence],
    today: NaiveDate,
    max_age_days: u64,
) -> bool {
    if !matches!(status, Some(ImplementationStatus::Implemented | ImplementationStatus::PartiallyImplemented)) {
        return false;
    }
    let cutoff = today.checked_sub_days(Days::new(max_age_days)).unwrap_or(NaiveDate::MIN);
    let newest = evidence.iter().filter_map(|e| NaiveDate::parse_from_str(&e.date, "%Y-%m-%d").ok()).max();
    newest.is_none_or(|d| d < cutoff)
}

/// One line of the SoA as shown and frozen in approved versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SoaEntry {
    /// Control, e.g. `A.8.28`.
    pub control: String,
    /// Control title.
    pub title: String,
    /// Applicable; absent while undecided.
    pub applicable: Option<bool>,
    /// Why included or excluded.
    pub justification: Option<String>,
    /// Implementation status.
    pub status: Option<ImplementationStatus>,
    /// How it is implemented.
    pub implementation: Option<String>,
    /// Who owns it.
    pub owner: Option<String>,
    /// Evidence with dates.
    pub evidence: Vec<Evidence>,
    /// Requirement that includes it.
    pub requirement: Option<String>,
    /// Risk-assessment statement behind an exclusion.
    pub risk_assessment: Option<String>,
    /// Risks it treats.
    pub risks: Vec<String>,
    /// Applicable but tied to no risk or requirement.
    pub untraceable: bool,
    /// Implemented but its evidence is missing or old.
    pub stale_evidence: bool,
    /// Version for optimistic concurrency (0 while undecided).
    pub version: i64,
    /// When last changed (UTC).
    pub updated_at: Option<String>,
    /// Who last changed it.
    pub updated_by: Option<String>,
}

/// A fingerprint of what the entries decide (not of derived flags or edit metadata): the
/// approver names the fingerprint of the draft they reviewed, so edits made after it cannot
/// slip into the approved version.
pub fn fingerprint(entries: &[SoaEntry]) -> String {
    use sha2::{Digest, Sha256};
    let decided: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                &e.control,
                e.applicable,
                &e.justification,
                e.status.map(ImplementationStatus::as_str),
                &e.implementation,
                &e.owner,
                &e.evidence,
                &e.requirement,
                &e.risk_assessment,
                &e.risks,
            )
        })
        .collect();
    let bytes = serde_json::to_vec(&decided).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

/// How one control's entry differs between two versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EntryChange {
    /// The control.
    pub control: String,
    /// The fields that differ.
    pub fields: Vec<String>,
}

/// The entries that differ between `old` and `new` (both in catalogue order), field by field.
pub fn diff(old: &[SoaEntry], new: &[SoaEntry]) -> Vec<EntryChange> {
    new.iter()
        .filter_map(|n| {
            let o = old.iter().find(|o| o.control == n.control);
            let mut fields = Vec::new();
            let mut check = |name: &str, differs: bool| {
                if differs {
                    fields.push(name.to_owned());
                }
            };
            match o {
                None => check("added", true),
                Some(o) => {
                    check("applicable", o.applicable != n.applicable);
                    check("justification", o.justification != n.justification);
                    check("status", o.status != n.status);
                    check("implementation", o.implementation != n.implementation);
                    check("owner", o.owner != n.owner);
                    check("evidence", o.evidence != n.evidence);
                    check("requirement", o.requirement != n.requirement);
                    check("risk_assessment", o.risk_assessment != n.risk_assessment);
                    check("risks", o.risks != n.risks);
                }
            }
            (!fields.is_empty()).then(|| EntryChange { control: n.control.clone(), fields })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(applicable: bool) -> Decision<'static> {
        Decision {
            control: "A.7.3",
            applicable,
            justification: Some("Fully remote, no office"),
            status: ImplementationStatus::NotImplemented,
            implementation: None,
            requirement: None,
            risk_assessment: None,
            linked_risks: 0,
        }
    }

    #[test]
    fn exclusions_cite_the_risk_assessment() {
        let e = check_entry(&decision(false)).unwrap_err().to_string();
        assert!(e.contains("risk assessment"), "{e}");
        assert!(
            check_entry(&Decision { risk_assessment: Some("RA-2026: no premises in scope"), ..decision(false) })
                .is_ok()
        );
        assert!(check_entry(&Decision { linked_risks: 1, ..decision(false) }).is_ok());
        assert!(check_entry(&Decision { justification: None, ..decision(true) }).is_err());
        assert!(check_entry(&Decision { justification: None, linked_risks: 1, ..decision(false) }).is_err());
        let implemented_exclusion = Decision {
            linked_risks: 1,
            status: ImplementationStatus::Implemented,
            implementation: Some("x"),
            ..decision(false)
        };
        assert!(check_entry(&implemented_exclusion).is_err());
        assert!(check_entry(&Decision { status: ImplementationStatus::Implemented, ..decision(true) }).is_err());
    }

    #[test]
    fn traceability_and_staleness() {
        assert!(untraceable(Some(true), 0, None));
        assert!(!untraceable(Some(true), 1, None));
        assert!(!untraceable(Some(true), 0, Some("GDPR art. 32")));
        assert!(!untraceable(Some(false), 0, None));
        let today = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        let old = vec![Evidence { reference: "scan".into(), date: "2025-01-01".into() }];
        let fresh = vec![Evidence { reference: "scan".into(), date: "2026-10-01".into() }];
        let implemented = Some(ImplementationStatus::Implemented);
        assert!(stale_evidence(implemented, &old, today, 365));
        assert!(!stale_evidence(implemented, &fresh, today, 365));
        assert!(stale_evidence(implemented, &[], today, 365));
        assert!(!stale_evidence(Some(ImplementationStatus::Planned), &[], today, 365));
        assert!(check_evidence(&[Evidence { reference: "x".into(), date: "2999-01-01".into() }], today).is_err());
    }

    #[test]
    fn diffs_name_changed_fields() {
        let base = SoaEntry {
            control: "A.5.1".into(),
            title: "Policies".into(),
            applicable: Some(true),
            justification: Some("j".into()),
            status: Some(ImplementationStatus::Planned),
            implementation: None,
            owner: None,
            evidence: vec![],
            requirement: None,
            risk_assessment: None,
            risks: vec![],
            untraceable: true,
            stale_evidence: false,
            version: 1,
            updated_at: None,
            updated_by: None,
        };
        let changed = SoaEntry { status: Some(ImplementationStatus::Implemented), version: 2, ..base.clone() };
        assert_eq!(diff(std::slice::from_ref(&base), &[changed])[0].fields, ["status"]);
        let same = [base];
        assert!(diff(&same, &same).is_empty());
    }
}
