//! Information security risks (6.1.2, 8.2, 8.3): the assessment scale, scores and levels,
//! treatment options, and who may accept a residual risk.

use serde::Serialize;

use super::actor::{Actor, Role};
use crate::error::{Error, Result};

text_enum! {
    /// How a risk is treated (6.1.3 a).
    Treatment {
        /// Reduce it with controls.
        Mitigate = "mitigate",
        /// Retain it knowingly.
        Accept = "accept",
        /// Stop the activity that causes it.
        Avoid = "avoid",
        /// Share it (insurance, a supplier).
        Transfer = "transfer",
    }
}

text_enum! {
    /// An information security property a risk threatens.
    Property {
        /// Confidentiality.
        Confidentiality = "confidentiality",
        /// Integrity.
        Integrity = "integrity",
        /// Availability.
        Availability = "availability",
    }
}

text_enum! {
    /// Where a score falls on the methodology's scale.
    RiskLevel {
        /// 1-4.
        Low = "low",
        /// 5-9.
        Medium = "medium",
        /// 10-16.
        High = "high",
        /// 17-25.
        Critical = "critical",
    }
}

/// A rating on the 1-5 scale of the methodology.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rating(u8);

impl Rating {
    /// Checks a likelihood or impact rating.
    pub fn parse(field: &str, value: i64) -> Result<Self> {
        if (1..=5).contains(&value) {
            Ok(Rating(value as u8))
        } else {
            Err(Error::invalid(
                field,
                format!("{value} is off the scale; rate from 1 (rare / negligible) to 5 (almost certain / severe)"),
            ))
        }
    }

    /// The number.
    pub fn get(self) -> i64 {
        i64::from(self.0)
    }
}

/// The documented risk assessment method (6.1.2): a 1-5 likelihood and impact scale, score =
/// likelihood x impact, levels, and the score up to which a residual risk is acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Methodology {
    /// Highest residual score that may be accepted.
    pub acceptance_threshold: i64,
}

impl Default for Methodology {
    fn default() -> Self {
        Methodology { acceptance_threshold: 6 }
    }
}

/// The likelihood scale, 1 to 5, as documented.
pub const LIKELIHOOD_SCALE: [&str; 5] = [
    "1 rare: not expected in five years",
    "2 unlikely: could happen within five years",
    "3 possible: could happen within a year",
    "4 likely: expected within a year",
    "5 almost certain: expected within a month",
];

/// The impact scale, 1 to 5, as documented.
pub const IMPACT_SCALE: [&str; 5] = [
    "1 negligible: no client or data affected",
    "2 minor: internal disruption, no client data",
    "3 moderate: one client affected or limited data exposed",
    "4 major: several clients, personal data or contractual breach",
    "5 severe: regulatory action, loss of certification or of a key client",
];

impl Methodology {
    /// Score of a likelihood and impact.
    pub fn score(self, likelihood: Rating, impact: Rating) -> i64 {
        likelihood.get() * impact.get()
    }

    /// The level of a score.
    pub fn level(self, score: i64) -> RiskLevel {
        match score {
            ..=4 => RiskLevel::Low,
            5..=9 => RiskLevel::Medium,
            10..=16 => RiskLevel::High,
            _ => RiskLevel::Critical,
        }
    }

    /// Whether a residual score may be accepted.
    pub fn acceptable(self, score: i64) -> bool {
        score <= self.acceptance_threshold
    }
}

/// The assessment of a risk, checked: residual no worse than inherent, controls where it is
/// mitigated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assessment {
    /// Likelihood before treatment.
    pub likelihood: Rating,
    /// Impact before treatment.
    pub impact: Rating,
    /// Likelihood after treatment.
    pub residual_likelihood: Option<Rating>,
    /// Impact after treatment.
    pub residual_impact: Option<Rating>,
    /// Treatment option.
    pub treatment: Treatment,
}

impl Assessment {
    /// Checks the assessment against the rules of the method.
    pub fn check(&self, m: Methodology, controls: usize) -> Result<()> {
        match (self.residual_likelihood, self.residual_impact) {
            (Some(l), Some(i)) if m.score(l, i) > m.score(self.likelihood, self.impact) => {
                return Err(Error::rule(
                    "the residual risk scores higher than the risk before treatment",
                    "rate the residual likelihood and impact no higher than the inherent ones",
                ));
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(Error::invalid(
                    "residual_impact",
                    "give residual_likelihood and residual_impact together, or neither",
                ));
            }
            _ => {}
        }
        if self.treatment == Treatment::Mitigate && controls == 0 {
            return Err(Error::invalid(
                "controls",
                "a mitigated risk needs the controls that treat it, e.g. [\"A.8.12\"] (query_controls finds them)",
            ));
        }
        Ok(())
    }

    /// The residual score: after treatment, or the inherent one when accepted as is.
    pub fn residual_score(&self, m: Methodology) -> Option<i64> {
        match (self.residual_likelihood, self.residual_impact, self.treatment) {
            (Some(l), Some(i), _) => Some(m.score(l, i)),
            (_, _, Treatment::Accept) => Some(m.score(self.likelihood, self.impact)),
            _ => None,
        }
    }
}

/// 6.1.3 f): only the risk owner or an ISMS manager accepts a residual risk, once there is one.
pub fn check_acceptance(actor: &Actor, reference: &str, owner: &str, residual: Option<i64>) -> Result<()> {
    if actor.name != owner && actor.role != Role::IsmsManager {
        return Err(Error::rule(
            format!("only the owner of {reference} (`{owner}`) or an ISMS manager may accept its residual risk"),
            format!("ask `{owner}` to accept it with update_risk"),
        ));
    }
    if residual.is_none() {
        return Err(Error::rule(
            format!("{reference} has no residual risk to accept"),
            "rate residual_likelihood and residual_impact (or treat it with accept) first",
        ));
    }
    Ok(())
}

/// A risk as stored and shown.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Risk {
    /// Reference, e.g. `RISK-4`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Short name.
    pub title: String,
    /// Asset or process at risk.
    pub asset: String,
    /// What could happen.
    pub threat: String,
    /// The weakness it exploits.
    pub vulnerability: String,
    /// Properties threatened.
    pub properties: Vec<Property>,
    /// Likelihood 1-5.
    pub likelihood: i64,
    /// Impact 1-5.
    pub impact: i64,
    /// Likelihood x impact.
    pub score: i64,
    /// Level of the score.
    pub level: RiskLevel,
    /// Risk owner.
    pub owner: String,
    /// Treatment option.
    pub treatment: Treatment,
    /// The treatment plan.
    pub treatment_plan: Option<String>,
    /// Controls that treat it (the SoA shows the same link).
    pub controls: Vec<String>,
    /// Residual likelihood 1-5.
    pub residual_likelihood: Option<i64>,
    /// Residual impact 1-5.
    pub residual_impact: Option<i64>,
    /// Residual score.
    pub residual_score: Option<i64>,
    /// Residual level.
    pub residual_level: Option<RiskLevel>,
    /// Residual score within the acceptance threshold.
    pub acceptable: Option<bool>,
    /// Who accepted the residual risk.
    pub accepted_by: Option<String>,
    /// When (UTC).
    pub accepted_at: Option<String>,
    /// Version for optimistic concurrency.
    pub version: i64,
    /// When registered (UTC).
    pub created_at: String,
    /// Who registered it.
    pub created_by: String,
    /// When last assessed or changed (UTC).
    pub updated_at: String,
    /// Who last changed it.
    pub updated_by: String,
}

impl Risk {
    /// Fails with a conflict unless the caller read the current version.
    pub fn check_version(&self, expected: i64) -> Result<()> {
        super::check_version(&self.reference, expected, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::actor::ActorKind;

    fn r(v: i64) -> Rating {
        Rating::parse("x", v).unwrap()
    }

    #[test]
    fn scale_scores_and_levels() {
        assert!(Rating::parse("likelihood", 0).is_err() && Rating::parse("likelihood", 6).is_err());
        let m = Methodology::default();
        assert_eq!(m.score(r(4), r(5)), 20);
        assert_eq!(m.level(4), RiskLevel::Low);
        assert_eq!(m.level(9), RiskLevel::Medium);
        assert_eq!(m.level(16), RiskLevel::High);
        assert_eq!(m.level(25), RiskLevel::Critical);
        assert!(m.acceptable(6) && !m.acceptable(8));
    }

    #[test]
    fn assessments_are_checked() {
        let m = Methodology::default();
        let a = Assessment {
            likelihood: r(3),
            impact: r(4),
            residual_likelihood: Some(r(2)),
            residual_impact: Some(r(2)),
            treatment: Treatment::Mitigate,
        };
        assert!(a.check(m, 1).is_ok());
        assert!(a.check(m, 0).is_err(), "mitigation needs controls");
        let worse = Assessment { residual_likelihood: Some(r(5)), residual_impact: Some(r(5)), ..a };
        assert!(worse.check(m, 1).is_err());
        let half = Assessment { residual_impact: None, ..a };
        assert!(half.check(m, 1).is_err());
        let accepted =
            Assessment { residual_likelihood: None, residual_impact: None, treatment: Treatment::Accept, ..a };
        assert_eq!(accepted.residual_score(m), Some(12));
    }

    #[test]
    fn owners_and_managers_accept() {
        let owner = Actor { name: "o".into(), kind: ActorKind::Human, role: Role::Agent };
        let other = Actor { name: "x".into(), kind: ActorKind::Human, role: Role::Auditor };
        let manager = Actor { name: "m".into(), kind: ActorKind::Human, role: Role::IsmsManager };
        assert!(check_acceptance(&owner, "RISK-1", "o", Some(4)).is_ok());
        assert!(check_acceptance(&manager, "RISK-1", "o", Some(4)).is_ok());
        assert!(check_acceptance(&other, "RISK-1", "o", Some(4)).is_err());
        assert!(check_acceptance(&owner, "RISK-1", "o", None).is_err());
    }
}
