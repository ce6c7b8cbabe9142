//! The risk register (6.1.2, 8.2, 8.3): registering and reassessing risks, and the owner's
//! acceptance of residual risk.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{App, Effect, Operation, request_hash};
use crate::domain::access::{Access, check_owner_or_manager};
use crate::domain::actor::Actor;
use crate::domain::references::{ControlRef, RecordKind, RecordRef};
use crate::domain::risk::{Assessment, Property, Rating, Risk, Treatment, check_acceptance};
use crate::domain::text::{self, MAX_TEXT, MAX_TITLE};
use crate::domain::time::stamp;
use crate::error::{Error, Result};
use crate::store::{Change, Claim, RiskFields, Write};

pub(super) fn operations() -> Vec<Operation> {
    vec![
        Operation::new("register_risk", Effect::Create, Access::Contributors, register_risk),
        Operation::new("update_risk", Effect::Update, Access::Contributors, update_risk),
    ]
}

/// Register a risk RISK-n (6.1.2); the server computes its score and level.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRisk {
    /// Short name.
    pub title: String,
    /// Asset or process at risk.
    pub asset: String,
    /// What could happen.
    pub threat: String,
    /// Weakness it would exploit.
    pub vulnerability: String,
    /// Properties threatened (at least one).
    pub properties: Vec<Property>,
    /// 1 rare .. 5 almost certain.
    pub likelihood: i64,
    /// 1 negligible .. 5 severe.
    pub impact: i64,
    /// Registered actor who owns it.
    pub owner: String,
    /// Treatment (6.1.3 a); mitigate needs controls.
    pub treatment: Treatment,
    /// How it will be treated.
    #[serde(default)]
    pub treatment_plan: Option<String>,
    /// Annex A controls that treat it, e.g. A.8.12.
    #[serde(default)]
    pub controls: Vec<String>,
    /// After treatment, 1-5.
    #[serde(default)]
    pub residual_likelihood: Option<i64>,
    /// After treatment, 1-5.
    #[serde(default)]
    pub residual_impact: Option<i64>,
    /// Retry key: a repeat returns the first result.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// The risk as stored.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RiskResult {
    /// The risk.
    pub risk: Risk,
    /// True when this answers a retry with the same idempotency key.
    pub replayed: bool,
}

fn controls(values: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for c in text::list("controls", values, 16)? {
        let c = ControlRef::parse("controls", &c)?.as_str().to_owned();
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
}

fn properties(values: &[Property]) -> Result<Vec<Property>> {
    let mut out: Vec<Property> = Vec::new();
    for p in values {
        if !out.contains(p) {
            out.push(*p);
        }
    }
    if out.is_empty() {
        return Err(Error::invalid("properties", "name at least one of confidentiality, integrity, availability"));
    }
    Ok(out)
}

fn rating(field: &str, v: Option<i64>) -> Result<Option<Rating>> {
    v.map(|v| Rating::parse(field, v)).transpose()
}

async fn check_owner(app: &App, owner: &str) -> Result<()> {
    match app.store.actor_by_name(owner).await? {
        Some(_) => Ok(()),
        None => Err(Error::not_found(format!("actor `{owner}`"), "the risk owner must be a registered, active actor")),
    }
}

async fn load(w: &mut Write, app: &App, r: RecordRef) -> Result<Risk> {
    w.risk(r.number, app.risk).await?.ok_or_else(|| Error::not_found(r.to_string(), "check the reference"))
}

async fn register_risk(app: Arc<App>, actor: Actor, input: RegisterRisk) -> Result<RiskResult> {
    const OP: &str = "register_risk";
    let fields = RiskFields {
        title: text::required("title", &input.title, MAX_TITLE)?,
        asset: text::required("asset", &input.asset, MAX_TITLE)?,
        threat: text::required("threat", &input.threat, MAX_TEXT)?,
        vulnerability: text::required("vulnerability", &input.vulnerability, MAX_TEXT)?,
        properties: properties(&input.properties)?,
        likelihood: Rating::parse("likelihood", input.likelihood)?,
        impact: Rating::parse("impact", input.impact)?,
        owner: text::required("owner", &input.owner, 64)?,
        treatment: input.treatment,
        treatment_plan: text::optional("treatment_plan", input.treatment_plan.as_deref(), MAX_TEXT)?,
        controls: controls(&input.controls)?,
        residual_likelihood: rating("residual_likelihood", input.residual_likelihood)?,
        residual_impact: rating("residual_impact", input.residual_impact)?,
        accepted: None,
    };
    assessment(&fields).check(app.risk, fields.controls.len())?;
    check_owner(&app, &fields.owner).await?;
    let key = text::optional("idempotency_key", input.idempotency_key.as_deref(), 200)?;
    let mut w = app.store.begin_write().await?;
    if let Some(key) = &key
        && let Claim::Replay(reference) = w.claim_idempotency(&actor.name, OP, key, &request_hash(&input)?).await?
    {
        let risk = load(&mut w, &app, RecordRef::parse("ref", &reference)?).await?;
        return Ok(RiskResult { risk, replayed: true });
    }
    let risk = w.insert_risk(&actor.name, &fields, app.risk).await?;
    w.record(Change {
        actor: &actor.name,
        operation: OP,
        record: &risk.reference,
        event: "risk.registered",
        detail: &risk,
    })?;
    if let Some(key) = &key {
        w.complete_idempotency(&actor.name, OP, key, RecordRef::parse("ref", &risk.reference)?).await?;
    }
    w.commit().await?;
    Ok(RiskResult { risk, replayed: false })
}

fn assessment(f: &RiskFields) -> Assessment {
    Assessment {
        likelihood: f.likelihood,
        impact: f.impact,
        residual_likelihood: f.residual_likelihood,
        residual_impact: f.residual_impact,
        treatment: f.treatment,
    }
}

/// Reassess or change a risk (its owner or an ISMS manager); given fields replace, others stay. A reassessment voids an earlier acceptance.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRisk {
    /// Risk, e.g. RISK-4.
    #[serde(rename = "ref")]
    pub reference: String,
    /// As last read.
    pub version: i64,
    /// Short name.
    #[serde(default)]
    pub title: Option<String>,
    /// Threat.
    #[serde(default)]
    pub threat: Option<String>,
    /// Vulnerability.
    #[serde(default)]
    pub vulnerability: Option<String>,
    /// Properties threatened.
    #[serde(default)]
    pub properties: Option<Vec<Property>>,
    /// 1-5.
    #[serde(default)]
    pub likelihood: Option<i64>,
    /// 1-5.
    #[serde(default)]
    pub impact: Option<i64>,
    /// New owner (a registered actor).
    #[serde(default)]
    pub owner: Option<String>,
    /// Treatment option.
    #[serde(default)]
    pub treatment: Option<Treatment>,
    /// Treatment plan.
    #[serde(default)]
    pub treatment_plan: Option<String>,
    /// Controls that treat it; replaces the list.
    #[serde(default)]
    pub controls: Option<Vec<String>>,
    /// 1-5.
    #[serde(default)]
    pub residual_likelihood: Option<i64>,
    /// 1-5.
    #[serde(default)]
    pub residual_impact: Option<i64>,
    /// Accept the residual risk (6.1.3 f).
    #[serde(default)]
    pub accept_residual: bool,
}

async fn update_risk(app: Arc<App>, actor: Actor, input: UpdateRisk) -> Result<RiskResult> {
    const OP: &str = "update_risk";
    let r = RecordRef::parse("ref", &input.reference)?;
    if r.kind != RecordKind::Risk {
        return Err(Error::invalid("ref", format!("`{}` is not a risk reference (RISK-n)", input.reference)));
    }
    if let Some(owner) = &input.owner {
        check_owner(&app, owner.trim()).await?;
    }
    let mut w = app.store.begin_write().await?;
    let risk = load(&mut w, &app, r).await?;
    risk.check_version(input.version)?;
    check_owner_or_manager(&actor, &risk.reference, &risk.owner)?;
    let keep = |field: &str, new: &Option<String>, old: &str, max| -> Result<String> {
        match new {
            Some(v) => text::required(field, v, max),
            None => Ok(old.to_owned()),
        }
    };
    let mut f = RiskFields {
        title: keep("title", &input.title, &risk.title, MAX_TITLE)?,
        asset: risk.asset.clone(),
        threat: keep("threat", &input.threat, &risk.threat, MAX_TEXT)?,
        vulnerability: keep("vulnerability", &input.vulnerability, &risk.vulnerability, MAX_TEXT)?,
        properties: match &input.properties {
            Some(p) => properties(p)?,
            None => risk.properties.clone(),
        },
        likelihood: Rating::parse("likelihood", input.likelihood.unwrap_or(risk.likelihood))?,
        impact: Rating::parse("impact", input.impact.unwrap_or(risk.impact))?,
        owner: keep("owner", &input.owner, &risk.owner, 64)?,
        treatment: input.treatment.unwrap_or(risk.treatment),
        treatment_plan: match &input.treatment_plan {
            Some(p) => text::optional("treatment_plan", Some(p), MAX_TEXT)?,
            None => risk.treatment_plan.clone(),
        },
        controls: match &input.controls {
            Some(c) => controls(c)?,
            None => risk.controls.clone(),
        },
        residual_likelihood: rating("residual_likelihood", input.residual_likelihood.or(risk.residual_likelihood))?,
        residual_impact: rating("residual_impact", input.residual_impact.or(risk.residual_impact))?,
        accepted: risk.accepted_by.clone().zip(risk.accepted_at.clone()),
    };
    let a = assessment(&f);
    a.check(app.risk, f.controls.len())?;
    // An exclusion resting only on this risk keeps its basis: unlinking that control is refused.
    let dropped: Vec<&String> = risk.controls.iter().filter(|c| !f.controls.contains(c)).collect();
    if !dropped.is_empty() {
        let soa = w.soa(app.evidence_max_age_days).await?;
        for c in dropped {
            if let Some(e) = soa.iter().find(|e| e.control == *c)
                && e.applicable == Some(false)
                && e.risk_assessment.is_none()
                && e.risks == [risk.reference.clone()]
            {
                return Err(Error::rule(
                    format!("the exclusion of {c} rests on {} alone", risk.reference),
                    format!(
                        "give the SoA entry of {c} a risk_assessment statement or another risk with update_soa_entry first"
                    ),
                ));
            }
        }
    }
    let reassessed = f.likelihood.get() != risk.likelihood
        || f.impact.get() != risk.impact
        || f.residual_likelihood.map(Rating::get) != risk.residual_likelihood
        || f.residual_impact.map(Rating::get) != risk.residual_impact
        || f.treatment != risk.treatment
        || f.controls != risk.controls
        || f.owner != risk.owner;
    if reassessed {
        f.accepted = None;
    }
    if input.accept_residual {
        check_acceptance(&actor, &risk.reference, &f.owner, a.residual_score(app.risk))?;
        f.accepted = Some((actor.name.clone(), stamp(w.now())));
    }
    w.update_risk(&actor.name, r.number, input.version, &f).await?;
    let risk = load(&mut w, &app, r).await?;
    let event = if input.accept_residual { "risk.residual_accepted" } else { "risk.updated" };
    w.record(Change { actor: &actor.name, operation: OP, record: &risk.reference, event, detail: &risk })?;
    w.commit().await?;
    Ok(RiskResult { risk, replayed: false })
}
