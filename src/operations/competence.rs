//! Competence (7.2): requirements per role, evidence per actor, gaps.

use std::sync::Arc;

use chrono::Utc;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{App, Effect, Operation};
use crate::domain::access::Access;
use crate::domain::actor::{Actor, Role};
use crate::domain::competence::{
    ClosedGap, CompetenceRecord, EvidenceType, Gap, Requirement, check_assessor, closed_by_action, competency, gaps,
};
use crate::domain::text::{self, MAX_TEXT};
use crate::domain::time::{date, parse_date, stamp};
use crate::error::{Error, Result};
use crate::store::Change;

pub(super) fn operations() -> Vec<Operation> {
    const MANAGERS: Access = Access::Only(&[Role::IsmsManager]);
    vec![
        Operation::new("set_competence_requirements", Effect::Update, MANAGERS, set_requirements),
        Operation::new("record_competence", Effect::Create, Access::Contributors, record_competence),
        Operation::new("list_competence_gaps", Effect::Read, Access::Everyone, list_gaps),
    ]
}

/// A competency a role requires.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequiredCompetency {
    /// Name, e.g. secure coding.
    pub name: String,
    /// What it means in practice.
    #[serde(default)]
    pub description: Option<String>,
}

/// Set the competencies a role requires (7.2 a); replaces the role's list.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRequirements {
    /// The role.
    pub role: Role,
    /// Its required competencies (may be empty).
    pub competencies: Vec<RequiredCompetency>,
}

/// The role's requirements now.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RequirementsSet {
    /// The requirements.
    pub requirements: Vec<Requirement>,
}

async fn set_requirements(app: Arc<App>, actor: Actor, input: SetRequirements) -> Result<RequirementsSet> {
    if input.competencies.len() > text::MAX_LIST {
        return Err(Error::invalid("competencies", format!("at most {} per role", text::MAX_LIST)));
    }
    let mut list: Vec<(String, Option<String>)> = Vec::new();
    for c in &input.competencies {
        let name = competency("competencies.name", &c.name)?;
        if list.iter().any(|(n, _)| *n == name) {
            return Err(Error::invalid("competencies.name", format!("`{name}` is listed twice")));
        }
        list.push((name, text::optional("competencies.description", c.description.as_deref(), 2000)?));
    }
    let mut w = app.store.begin_write().await?;
    w.set_requirements(input.role, &list).await?;
    let requirements: Vec<Requirement> = list
        .into_iter()
        .map(|(competency, description)| Requirement { role: input.role, competency, description })
        .collect();
    let record = format!("role:{}", input.role);
    w.record(Change {
        actor: &actor.name,
        operation: "set_competence_requirements",
        record: &record,
        event: "competence.requirements_set",
        detail: &requirements,
    })?;
    w.commit().await?;
    Ok(RequirementsSet { requirements })
}

/// Record evidence of an actor's competence (7.2 d), checked by someone else.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordCompetence {
    /// Whose competence (a registered actor).
    pub actor: String,
    /// Competency, e.g. secure coding.
    pub competency: String,
    /// Kind of evidence.
    pub evidence_type: EvidenceType,
    /// Certificate id, course record or profile path.
    pub evidence_ref: String,
    /// Who checked it (not the actor); default: you.
    #[serde(default)]
    pub assessed_by: Option<String>,
    /// Expiry, YYYY-MM-DD; omit if none.
    #[serde(default)]
    pub valid_until: Option<String>,
    /// Notes.
    #[serde(default)]
    pub notes: Option<String>,
    /// Action on a gap that led to it (7.2 c).
    #[serde(default)]
    pub gap_action: Option<String>,
}

/// The evidence recorded and the actor's remaining gaps.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CompetenceRecorded {
    /// The evidence.
    pub record: CompetenceRecord,
    /// The actor's gaps now.
    pub gaps: Vec<Gap>,
}

async fn record_competence(app: Arc<App>, actor: Actor, input: RecordCompetence) -> Result<CompetenceRecorded> {
    let subject_name = text::required("actor", &input.actor, 64)?;
    let assessor = match &input.assessed_by {
        Some(a) => text::required("assessed_by", a, 64)?,
        None => actor.name.clone(),
    };
    let valid_until = input.valid_until.as_deref().map(|d| parse_date("valid_until", d)).transpose()?;
    let subject = app.store.actor_by_name(&subject_name).await?.ok_or_else(|| {
        Error::not_found(format!("actor `{subject_name}`"), "competence is recorded for registered, active actors")
    })?;
    if app.store.actor_by_name(&assessor).await?.is_none() {
        return Err(Error::not_found(
            format!("actor `{assessor}`"),
            "`assessed_by` must be a registered, active actor",
        ));
    }
    check_assessor(&subject.name, &assessor)?;
    check_assessor(&subject.name, &actor.name)?;
    let mut w = app.store.begin_write().await?;
    let record = CompetenceRecord {
        actor: subject.name.clone(),
        competency: competency("competency", &input.competency)?,
        evidence_type: input.evidence_type,
        evidence_ref: text::required("evidence_ref", &input.evidence_ref, 1000)?,
        assessed_by: assessor,
        valid_until: valid_until.map(date),
        notes: text::optional("notes", input.notes.as_deref(), MAX_TEXT)?,
        gap_action: text::optional("gap_action", input.gap_action.as_deref(), MAX_TEXT)?,
        recorded_at: stamp(w.now()),
        recorded_by: actor.name.clone(),
    };
    w.insert_competence(&record).await?;
    let reference = format!("actor:{}", subject.name);
    w.record(Change {
        actor: &actor.name,
        operation: "record_competence",
        record: &reference,
        event: "competence.recorded",
        detail: &record,
    })?;
    w.commit().await?;
    let required = app.store.requirements().await?;
    let records = app.store.competence_records(Some(&subject.name)).await?;
    let gaps = gaps(&subject.name, subject.role, &required, &records, Utc::now().date_naive());
    Ok(CompetenceRecorded { record, gaps })
}

/// List competence gaps (7.2): required competencies missing or expired, with actions taken, and gaps actions closed.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListGaps {
    /// Only this actor.
    #[serde(default)]
    pub actor: Option<String>,
    /// Only actors with this role.
    #[serde(default)]
    pub role: Option<Role>,
}

/// Gaps found.
#[derive(Debug, Serialize, JsonSchema)]
pub struct GapsFound {
    /// Active actors checked.
    pub actors_checked: usize,
    /// Open gaps.
    pub gaps: Vec<Gap>,
    /// Gaps an action closed (the action worked).
    pub closed_by_action: Vec<ClosedGap>,
}

/// The competence gaps of the active actors matching the filters.
pub(crate) async fn find_gaps(app: &App, actor: Option<&str>, role: Option<Role>) -> Result<GapsFound> {
    let actors: Vec<Actor> = app
        .store
        .actors()
        .await?
        .into_iter()
        .filter(|a| actor.is_none_or(|n| a.name == n))
        .filter(|a| role.is_none_or(|r| a.role == r))
        .collect();
    if let Some(n) = actor
        && actors.is_empty()
    {
        return Err(Error::not_found(format!("active actor `{n}`"), "check the name"));
    }
    let required = app.store.requirements().await?;
    let records = app.store.competence_records(actor).await?;
    let today = Utc::now().date_naive();
    let open: Vec<Gap> = actors.iter().flat_map(|a| gaps(&a.name, a.role, &required, &records, today)).collect();
    let closed =
        closed_by_action(&records, today).into_iter().filter(|c| actors.iter().any(|a| a.name == c.actor)).collect();
    Ok(GapsFound { actors_checked: actors.len(), gaps: open, closed_by_action: closed })
}

async fn list_gaps(app: Arc<App>, _actor: Actor, input: ListGaps) -> Result<GapsFound> {
    find_gaps(&app, input.actor.as_deref().map(str::trim), input.role).await
}
