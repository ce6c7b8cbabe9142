//! Information security objectives (6.2) and their measurement (9.1): targets, whether a
//! value meets them, and the figures the server can compute from its own records.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

text_enum! {
    /// How a value compares with the target.
    Comparator {
        /// Met when the value is at least the target.
        AtLeast = "at_least",
        /// Met when the value is at most the target.
        AtMost = "at_most",
        /// Met when the value equals the target.
        Equal = "equal",
    }
}

text_enum! {
    /// How often it is measured.
    Frequency {
        /// Continuously (each check).
        Continuous = "continuous",
        /// Weekly.
        Weekly = "weekly",
        /// Monthly.
        Monthly = "monthly",
        /// Quarterly.
        Quarterly = "quarterly",
        /// Annually.
        Annually = "annually",
    }
}

text_enum! {
    /// A figure the server computes from its own records instead of having it recorded.
    ComputedMetric {
        /// Percent of active agents that acknowledged every current policy binding them (7.3).
        AgentAwarenessShare = "agent_awareness_share",
        /// Percent of major nonconformities' corrective actions done by their due date, of
        /// those done or due (10.2).
        MajorActionsOnTime = "major_actions_on_time",
    }
}

/// Whether `value` meets `target`.
pub fn met(comparator: Comparator, value: f64, target: f64) -> bool {
    match comparator {
        Comparator::AtLeast => value >= target,
        Comparator::AtMost => value <= target,
        Comparator::Equal => (value - target).abs() < 1e-9,
    }
}

/// Checks a measured value: a finite number.
pub fn value(field: &str, v: f64) -> Result<f64> {
    if v.is_finite() { Ok(v) } else { Err(Error::invalid(field, "must be a finite number")) }
}

/// What an objective says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ObjectiveBody {
    /// The objective, e.g. "100% agent compliance with the constitution".
    pub statement: String,
    /// What is measured, e.g. "share of agents with current acknowledgements".
    pub metric: String,
    /// Target value.
    pub target: f64,
    /// How a value compares with the target.
    pub comparator: Comparator,
    /// Unit, e.g. "%", "hours".
    pub unit: String,
    /// How often it is measured.
    pub frequency: Frequency,
}

/// One measurement of an objective.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Measurement {
    /// The value.
    pub value: f64,
    /// The period it covers, e.g. "2026-11" or "2026-Q4".
    pub period: String,
    /// Where it comes from (scanner, report, `computed`).
    pub source: String,
    /// Whether it met the target.
    pub met: bool,
    /// When recorded (UTC).
    pub recorded_at: String,
    /// Who recorded it.
    pub recorded_by: String,
}

/// An objective with its measurements.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Objective {
    /// Reference, e.g. `OBJ-2`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// What it says.
    #[serde(flatten)]
    pub body: ObjectiveBody,
    /// The figure the server computes, if it is computed.
    pub computed: Option<ComputedMetric>,
    /// Who owns it.
    pub owner: String,
    /// Measurements, oldest first.
    pub measurements: Vec<Measurement>,
    /// Whether the latest measurement met the target.
    pub met: Option<bool>,
    /// When defined (UTC).
    pub created_at: String,
    /// Who defined it.
    pub created_by: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons() {
        assert!(met(Comparator::AtLeast, 100.0, 100.0) && !met(Comparator::AtLeast, 99.9, 100.0));
        assert!(met(Comparator::AtMost, 0.5, 1.0) && !met(Comparator::AtMost, 1.5, 1.0));
        assert!(met(Comparator::Equal, 0.0, 0.0));
        assert!(value("value", f64::NAN).is_err());
    }
}
