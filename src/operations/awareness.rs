//! Awareness (7.3): publishing policy versions, acknowledging the text read, and the fast
//! boot-time check of what an actor still has to acknowledge.

use std::sync::Arc;

use chrono::Utc;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{App, Effect, Operation};
use crate::domain::access::{Access, oversees};
use crate::domain::actor::{Actor, ActorKind, Role};
use crate::domain::awareness::{Pending, Policy, check_acknowledgement, content_hash, pending, policy_id, sha256};
use crate::domain::text::{self, MAX_TITLE};
use crate::domain::time::{date, parse_date};
use crate::error::{Error, Result};
use crate::store::{Change, NewPolicy};

/// Longest policy text stored, in bytes.
const MAX_POLICY: usize = 512 * 1024;

pub(super) fn operations() -> Vec<Operation> {
    const MANAGERS: Access = Access::Only(&[Role::IsmsManager]);
    vec![
        Operation::new("publish_policy", Effect::Create, MANAGERS, publish_policy),
        Operation::new("acknowledge_policy", Effect::Create, Access::Everyone, acknowledge_policy),
        Operation::new("check_awareness", Effect::Read, Access::Everyone, check_awareness),
    ]
}

/// Publish a policy version (5.2, 7.3); earlier acknowledgements of the policy become stale.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishPolicy {
    /// Policy id, e.g. constitution.
    pub policy_id: String,
    /// New version label, e.g. 3.
    pub version: String,
    /// Title.
    pub title: String,
    /// The text (stored and served as isms://policies/{id}).
    #[serde(default)]
    pub content: Option<String>,
    /// Where the text lives when not given as content.
    #[serde(default)]
    pub location: Option<String>,
    /// SHA-256 of the text; required with location only.
    #[serde(default)]
    pub sha256: Option<String>,
    /// YYYY-MM-DD from when it applies (today or earlier); default today.
    #[serde(default)]
    pub effective_date: Option<String>,
    /// Roles it binds; default everyone.
    #[serde(default)]
    pub roles: Vec<Role>,
}

/// The policy version published.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PolicyPublished {
    /// The version now current.
    pub policy: Policy,
}

async fn publish_policy(app: Arc<App>, actor: Actor, input: PublishPolicy) -> Result<PolicyPublished> {
    let id = policy_id("policy_id", &input.policy_id)?;
    let version = text::required("version", &input.version, 40)?;
    let title = text::required("title", &input.title, MAX_TITLE)?;
    let content = input.content.filter(|c| !c.trim().is_empty());
    if content.as_ref().is_some_and(|c| c.len() > MAX_POLICY) {
        return Err(Error::invalid(
            "content",
            format!("is longer than {MAX_POLICY} bytes; publish a location and its sha256 instead"),
        ));
    }
    let location = text::optional("location", input.location.as_deref(), 1000)?;
    let given = input.sha256.as_deref().map(|h| sha256("sha256", h)).transpose()?;
    let hash = match (&content, given, &location) {
        (Some(c), Some(h), _) if h != content_hash(c) => {
            return Err(Error::invalid(
                "sha256",
                "does not match the content sent; omit it and the server computes it",
            ));
        }
        (Some(c), _, _) => content_hash(c),
        (None, Some(h), Some(_)) => h,
        (None, None, Some(_)) => return Err(Error::invalid("sha256", "is required when only a location is given")),
        (None, _, None) => return Err(Error::invalid("content", "give the policy text, or a location and its sha256")),
    };
    let today = Utc::now().date_naive();
    let effective = match input.effective_date.as_deref() {
        Some(d) => parse_date("effective_date", d)?,
        None => today,
    };
    if effective > today {
        return Err(Error::invalid(
            "effective_date",
            format!(
                "{effective} is in the future; publish the version on the day it takes effect, so the version in force stays current until then"
            ),
        ));
    }
    let mut roles = input.roles.clone();
    roles.dedup();
    let mut w = app.store.begin_write().await?;
    if w.policy_version_exists(&id, &version).await? {
        return Err(Error::rule(
            format!("version {version} of `{id}` was already published"),
            "publish a new version label; published versions never change",
        ));
    }
    let new = NewPolicy {
        policy_id: id.clone(),
        version,
        title,
        content,
        location,
        sha256: hash,
        effective_date: date(effective),
        roles,
    };
    let policy = w.insert_policy(&actor.name, &new).await?;
    let record = format!("policy:{id}");
    w.record(Change {
        actor: &actor.name,
        operation: "publish_policy",
        record: &record,
        event: "policy.published",
        detail: &policy,
    })?;
    w.commit().await?;
    Ok(PolicyPublished { policy })
}

/// Acknowledge a policy's current version after reading it (7.3).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgePolicy {
    /// Policy id, e.g. constitution.
    pub policy_id: String,
    /// The version read.
    pub version: String,
    /// SHA-256 of the text read.
    pub sha256: String,
    /// Session or boot id, model and version.
    #[serde(default)]
    pub context: Option<String>,
}

/// The acknowledgement and what is still pending.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Acknowledged {
    /// Policy id.
    pub policy_id: String,
    /// Version acknowledged.
    pub version: String,
    /// True when this version had been acknowledged before (nothing new written).
    pub already: bool,
    /// Policies still to acknowledge.
    pub pending: Vec<Pending>,
}

async fn acknowledge_policy(app: Arc<App>, actor: Actor, input: AcknowledgePolicy) -> Result<Acknowledged> {
    let id = policy_id("policy_id", &input.policy_id)?;
    let version = text::required("version", &input.version, 40)?;
    let hash = sha256("sha256", &input.sha256)?;
    let context = text::optional("context", input.context.as_deref(), 500)?;
    let (policy, _) = app.store.current_policy(&id).await?.ok_or_else(|| {
        Error::not_found(format!("policy `{id}`"), "check_awareness lists the policies you must acknowledge")
    })?;
    check_acknowledgement(&policy, &version, &hash)?;
    let mut w = app.store.begin_write().await?;
    let new = w.insert_acknowledgement(&actor.name, &policy, context.as_deref()).await?;
    if new {
        let detail = serde_json::json!({ "policy_id": id, "version": version, "sha256": hash, "context": context });
        let record = format!("actor:{}", actor.name);
        w.record(Change {
            actor: &actor.name,
            operation: "acknowledge_policy",
            record: &record,
            event: "policy.acknowledged",
            detail: &detail,
        })?;
        w.commit().await?;
    }
    let status = awareness_of(&app, &actor).await?;
    Ok(Acknowledged { policy_id: id, version, already: !new, pending: status })
}

/// Check whether an actor (default: you) has acknowledged every current policy binding its role (7.3).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckAwareness {
    /// Another actor (ISMS manager, auditor, top management only).
    #[serde(default)]
    pub actor: Option<String>,
    /// Also count active agents with nothing pending (same roles only).
    #[serde(default)]
    pub summary: bool,
}

/// Awareness of one actor.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AwarenessStatus {
    /// The actor.
    pub actor: String,
    /// True when nothing is pending.
    pub current: bool,
    /// What to read (isms://policies/{id}) and acknowledge.
    pub pending: Vec<Pending>,
    /// Across active agents, when `summary` was asked.
    pub figures: Option<AwarenessFigures>,
}

/// What `actor` still has to acknowledge.
async fn awareness_of(app: &App, actor: &Actor) -> Result<Vec<Pending>> {
    let current = app.store.current_policies_acknowledged_by(&actor.name).await?;
    let acknowledged: Vec<(String, String)> =
        current.iter().filter_map(|(p, v)| Some((p.policy_id.clone(), v.clone()?))).collect();
    let policies: Vec<Policy> = current.into_iter().map(|(p, _)| p).collect();
    Ok(pending(actor.role, &policies, &acknowledged, Utc::now().date_naive()))
}

async fn check_awareness(app: Arc<App>, caller: Actor, input: CheckAwareness) -> Result<AwarenessStatus> {
    let overseer = oversees(caller.role);
    let refuse = |what: &str| {
        Err(Error::rule(
            format!("only an ISMS manager, auditor or top management may {what}"),
            "omit it to check your own awareness",
        ))
    };
    if input.summary && !overseer {
        return refuse("ask for the summary");
    }
    let target = match input.actor.as_deref().map(str::trim) {
        None => caller,
        Some(name) if name == caller.name => caller,
        Some(_) if !overseer => return refuse("check another actor's awareness"),
        Some(name) => app
            .store
            .actor_by_name(name)
            .await?
            .ok_or_else(|| Error::not_found(format!("active actor `{name}`"), "check the name"))?,
    };
    let pending = awareness_of(&app, &target).await?;
    let figures = if input.summary { Some(awareness_figures(&app).await?) } else { None };
    Ok(AwarenessStatus { actor: target.name, current: pending.is_empty(), pending, figures })
}

/// Awareness across the active agents: how many have acknowledged every current policy that
/// binds them (for objectives and management review).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AwarenessFigures {
    /// Active agents.
    pub active_agents: usize,
    /// Of them, with nothing pending.
    pub agents_current: usize,
}

/// Computes [`AwarenessFigures`] from the records.
pub(crate) async fn awareness_figures(app: &App) -> Result<AwarenessFigures> {
    let agents: Vec<Actor> = app.store.actors().await?.into_iter().filter(|a| a.kind == ActorKind::Agent).collect();
    let policies = app.store.current_policies().await?;
    let acks = app.store.current_acknowledgements().await?;
    let today = Utc::now().date_naive();
    let agents_current = agents
        .iter()
        .filter(|a| {
            let mine: Vec<(String, String)> =
                acks.iter().filter(|(who, _, _)| *who == a.name).map(|(_, p, v)| (p.clone(), v.clone())).collect();
            pending(a.role, &policies, &mine, today).is_empty()
        })
        .count();
    Ok(AwarenessFigures { active_agents: agents.len(), agents_current })
}
