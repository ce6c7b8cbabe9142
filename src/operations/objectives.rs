//! Objectives (6.2) and measurement (9.1), including figures the server computes itself.

use std::sync::Arc;

use chrono::Utc;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::awareness::awareness_figures;
use super::{App, Effect, Operation};
use crate::domain::access::Access;
use crate::domain::actor::{Actor, Role};
use crate::domain::objective::{
    Comparator, ComputedMetric, Frequency, Measurement, Objective, ObjectiveBody, met, value,
};
use crate::domain::references::{RecordKind, RecordRef};
use crate::domain::text::{self, MAX_TITLE};
use crate::domain::time::{date, stamp};
use crate::error::{Error, Result};
use crate::store::Change;

pub(super) fn operations() -> Vec<Operation> {
    const MANAGERS: Access = Access::Only(&[Role::IsmsManager, Role::TopManagement]);
    vec![
        Operation::new("define_objective", Effect::Create, MANAGERS, define_objective),
        Operation::new("record_measurement", Effect::Create, Access::Contributors, record_measurement),
    ]
}

/// Define an information security objective OBJ-n (6.2).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DefineObjective {
    /// The objective.
    pub statement: String,
    /// What is measured.
    pub metric: String,
    /// Target value.
    pub target: f64,
    /// at_least | at_most | equal.
    pub comparator: Comparator,
    /// Unit, e.g. %.
    pub unit: String,
    /// How often it is measured.
    pub frequency: Frequency,
    /// Registered actor who owns it.
    pub owner: String,
    /// Computed by the server from its records (both in %).
    #[serde(default)]
    pub computed: Option<ComputedMetric>,
}

/// The objective.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ObjectiveResult {
    /// The objective with its measurements.
    pub objective: Objective,
}

async fn define_objective(app: Arc<App>, actor: Actor, input: DefineObjective) -> Result<ObjectiveResult> {
    let body = ObjectiveBody {
        statement: text::required("statement", &input.statement, MAX_TITLE)?,
        metric: text::required("metric", &input.metric, MAX_TITLE)?,
        target: value("target", input.target)?,
        comparator: input.comparator,
        unit: text::required("unit", &input.unit, 20)?,
        frequency: input.frequency,
    };
    let owner = text::required("owner", &input.owner, 64)?;
    if app.store.actor_by_name(&owner).await?.is_none() {
        return Err(Error::not_found(format!("actor `{owner}`"), "the owner must be a registered, active actor"));
    }
    let mut w = app.store.begin_write().await?;
    let objective = w.insert_objective(&actor.name, &body, input.computed, &owner).await?;
    w.record(Change {
        actor: &actor.name,
        operation: "define_objective",
        record: &objective.reference,
        event: "objective.defined",
        detail: &objective,
    })?;
    w.commit().await?;
    Ok(ObjectiveResult { objective })
}

/// Record a measurement of an objective (9.1).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordMeasurement {
    /// Objective, e.g. OBJ-2.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Omit for a computed objective: the server computes it.
    #[serde(default)]
    pub value: Option<f64>,
    /// Period covered, e.g. 2026-11; default today.
    #[serde(default)]
    pub period: Option<String>,
    /// Where it comes from, e.g. trivy weekly scan.
    #[serde(default)]
    pub source: Option<String>,
}

/// Computes a figure from the records, in percent. With nothing to count, it is 100.
pub(crate) async fn compute(app: &App, metric: ComputedMetric) -> Result<f64> {
    let share = |part: usize, whole: usize| if whole == 0 { 100.0 } else { part as f64 * 100.0 / whole as f64 };
    match metric {
        ComputedMetric::AgentAwarenessShare => {
            let f = awareness_figures(app).await?;
            Ok(share(f.agents_current, f.active_agents))
        }
        ComputedMetric::MajorActionsOnTime => {
            let today = date(Utc::now().date_naive());
            let actions = app.store.major_actions(&today).await?;
            let on_time = actions
                .iter()
                .filter(|(due, done)| done.as_deref().and_then(|d| d.get(..10)).is_some_and(|d| d <= due.as_str()))
                .count();
            Ok(share(on_time, actions.len()))
        }
    }
}

async fn record_measurement(app: Arc<App>, actor: Actor, input: RecordMeasurement) -> Result<ObjectiveResult> {
    let r = RecordRef::parse("ref", &input.reference)?;
    if r.kind != RecordKind::Objective {
        return Err(Error::invalid("ref", format!("`{}` is not an objective (OBJ-n)", input.reference)));
    }
    let objective =
        app.store.objective(r.number).await?.ok_or_else(|| Error::not_found(r.to_string(), "check the reference"))?;
    let (measured, source) = match (objective.computed, input.value) {
        (Some(metric), None) => (compute(&app, metric).await?, format!("computed: {}", metric.as_str())),
        (Some(_), Some(_)) => {
            return Err(Error::invalid("value", format!("{r} is computed by the server from its records; omit value")));
        }
        (None, Some(v)) => (
            value("value", v)?,
            text::optional("source", input.source.as_deref(), 200)?.unwrap_or_else(|| "recorded".into()),
        ),
        (None, None) => return Err(Error::invalid("value", format!("is required: {r} is not computed"))),
    };
    let mut w = app.store.begin_write().await?;
    let m = Measurement {
        value: measured,
        period: text::optional("period", input.period.as_deref(), 40)?.unwrap_or_else(|| date(w.now().date_naive())),
        source,
        met: met(objective.body.comparator, measured, objective.body.target),
        recorded_at: stamp(w.now()),
        recorded_by: actor.name.clone(),
    };
    w.insert_measurement(r.number, &m).await?;
    w.record(Change {
        actor: &actor.name,
        operation: "record_measurement",
        record: &objective.reference,
        event: "objective.measured",
        detail: &m,
    })?;
    let objective = w.objective(r.number).await?.ok_or_else(|| Error::Internal(format!("{r} vanished")))?;
    w.commit().await?;
    Ok(ObjectiveResult { objective })
}
