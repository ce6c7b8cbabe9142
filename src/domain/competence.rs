//! Competence (7.2): what each role requires, the evidence each actor holds, and the gaps
//! between them, with the actions taken to close a gap and whether they worked.

use chrono::NaiveDate;
use serde::Serialize;

use super::actor::Role;
use crate::error::{Error, Result};

text_enum! {
    /// What shows a competence.
    EvidenceType {
        /// A course or training completed.
        Training = "training",
        /// A certification held.
        Certification = "certification",
        /// An assessment by someone else.
        Assessment = "assessment",
        /// Work experience.
        Experience = "experience",
        /// An AI agent's profile: model, prompt, tools and evaluations.
        AgentProfile = "agent_profile",
    }
}

/// A competency name, normalised (trimmed, lower case, single spaces), 1-100 characters.
pub fn competency(field: &str, value: &str) -> Result<String> {
    let v = value.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    if v.is_empty() || v.chars().count() > 100 {
        return Err(Error::invalid(field, "give a competency name of 1-100 characters, e.g. \"secure coding\""));
    }
    Ok(v)
}

/// Nobody assesses their own competence.
pub fn check_assessor(subject: &str, assessor: &str) -> Result<()> {
    if subject == assessor {
        return Err(Error::rule(
            format!("`{subject}` cannot assess their own competence"),
            "set `assessed_by` to another registered actor who checked the evidence",
        ));
    }
    Ok(())
}

/// A competency a role requires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Requirement {
    /// The role.
    pub role: Role,
    /// The competency.
    pub competency: String,
    /// What it means in practice.
    pub description: Option<String>,
}

/// One piece of competence evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct CompetenceRecord {
    /// Whose competence.
    pub actor: String,
    /// The competency.
    pub competency: String,
    /// Kind of evidence.
    pub evidence_type: EvidenceType,
    /// Where the evidence is.
    pub evidence_ref: String,
    /// Who checked it.
    pub assessed_by: String,
    /// Valid until (YYYY-MM-DD); absent: no expiry.
    pub valid_until: Option<String>,
    /// Notes.
    pub notes: Option<String>,
    /// The action taken to close a gap (7.2 c), if this evidence came from one.
    pub gap_action: Option<String>,
    /// When recorded (UTC).
    pub recorded_at: String,
    /// Who recorded it.
    pub recorded_by: String,
}

impl CompetenceRecord {
    /// Whether the evidence is valid on `today`.
    pub fn valid_on(&self, today: NaiveDate) -> bool {
        self.valid_until
            .as_deref()
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .is_none_or(|d| d >= today)
    }
}

/// A required competency an actor lacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Gap {
    /// The actor.
    pub actor: String,
    /// Their role.
    pub role: Role,
    /// The competency.
    pub competency: String,
    /// `missing`, or `expired on YYYY-MM-DD`.
    pub reason: String,
    /// Actions recorded for it that have not closed it yet.
    pub actions_taken: Vec<String>,
}

/// A gap an action closed: the action worked (7.2 c).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ClosedGap {
    /// The actor.
    pub actor: String,
    /// The competency.
    pub competency: String,
    /// The action that closed it.
    pub action: String,
}

/// The gaps of one actor: each competency their role requires without valid evidence.
pub fn gaps(
    actor: &str,
    role: Role,
    required: &[Requirement],
    records: &[CompetenceRecord],
    today: NaiveDate,
) -> Vec<Gap> {
    required
        .iter()
        .filter(|r| r.role == role)
        .filter_map(|req| {
            let mine: Vec<&CompetenceRecord> =
                records.iter().filter(|c| c.actor == actor && c.competency == req.competency).collect();
            if mine.iter().any(|c| c.valid_on(today)) {
                return None;
            }
            let reason = mine
                .iter()
                .filter_map(|c| c.valid_until.clone())
                .max()
                .map_or_else(|| "missing".to_owned(), |d| format!("expired on {d}"));
            let actions_taken = mine.iter().filter_map(|c| c.gap_action.clone()).collect();
            Some(Gap { actor: actor.to_owned(), role, competency: req.competency.clone(), reason, actions_taken })
        })
        .collect()
}

/// Gap actions whose evidence is valid now: the action worked.
pub fn closed_by_action(records: &[CompetenceRecord], today: NaiveDate) -> Vec<ClosedGap> {
    records
        .iter()
        .filter(|c| c.valid_on(today))
        .filter_map(|c| {
            c.gap_action.as_ref().map(|a| ClosedGap {
                actor: c.actor.clone(),
                competency: c.competency.clone(),
                action: a.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(competency: &str, valid_until: Option<&str>, gap_action: Option<&str>) -> CompetenceRecord {
        CompetenceRecord {
            actor: "a".into(),
            competency: competency.into(),
            evidence_type: EvidenceType::Certification,
            evidence_ref: "cert".into(),
            assessed_by: "m".into(),
            valid_until: valid_until.map(Into::into),
            notes: None,
            gap_action: gap_action.map(Into::into),
            recorded_at: "t".into(),
            recorded_by: "m".into(),
        }
    }

    fn req(c: &str) -> Requirement {
        Requirement { role: Role::Agent, competency: c.into(), description: None }
    }

    #[test]
    fn missing_and_expired_are_gaps() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        let required = [req("secure coding"), req("incident response"), req("gdpr")];
        let records = [
            record("secure coding", Some("2026-01-31"), Some("OWASP course booked")),
            record("incident response", Some("2027-01-01"), None),
        ];
        let found = gaps("a", Role::Agent, &required, &records, today);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].competency, "secure coding");
        assert_eq!(found[0].reason, "expired on 2026-01-31");
        assert_eq!(found[0].actions_taken, ["OWASP course booked"]);
        assert_eq!(found[1].reason, "missing");
        assert!(gaps("a", Role::Auditor, &required, &records, today).is_empty(), "requirements are per role");
    }

    #[test]
    fn actions_that_worked_and_names() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        let closed = closed_by_action(&[record("gdpr", None, Some("DPO training"))], today);
        assert_eq!(closed[0].action, "DPO training");
        assert_eq!(competency("c", "  Secure   Coding ").unwrap(), "secure coding");
        assert!(competency("c", " ").is_err());
        assert!(check_assessor("a", "a").is_err() && check_assessor("a", "b").is_ok());
    }
}
