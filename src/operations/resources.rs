//! Read-mostly material offered beside the tools: MCP resources (`isms://records/{ref}`)
//! and prompts (a guided root-cause analysis).

use chrono::Utc;

use super::App;
use super::nonconformities::similar_candidates;
use super::records::{control_with_history, record_with_history};
use super::soa::{SoaFormat, render, soa_document};
use crate::domain::awareness::policy_id;
use crate::domain::references::{ControlRef, RecordKind, RecordRef};
use crate::error::{Error, Result};

/// URI template of a record with its history.
pub const RECORD_TEMPLATE: &str = "isms://records/{ref}";
const RECORD_PREFIX: &str = "isms://records/";
/// URI template of a control with its SoA entry.
pub const CONTROL_TEMPLATE: &str = "isms://controls/{ref}";
const CONTROL_PREFIX: &str = "isms://controls/";
/// URI template of a policy's current text.
pub const POLICY_TEMPLATE: &str = "isms://policies/{id}";
const POLICY_PREFIX: &str = "isms://policies/";
/// URI of the Statement of Applicability as it stands (Markdown).
pub const SOA_URI: &str = "isms://soa";

fn pretty<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string_pretty(value).map_err(|e| Error::Internal(e.to_string()))
}

/// The text and MIME type of the resource at `uri`.
pub async fn read(app: &App, uri: &str) -> Result<(String, &'static str)> {
    if uri == SOA_URI {
        let (entries, version, draft) = soa_document(app, None).await?;
        return Ok((render(SoaFormat::Markdown, &entries, version.as_ref(), draft)?, "text/markdown"));
    }
    if let Some(reference) = uri.strip_prefix(RECORD_PREFIX) {
        let record = record_with_history(app, RecordRef::parse("uri", reference)?).await?;
        return Ok((pretty(&record)?, "application/json"));
    }
    if let Some(reference) = uri.strip_prefix(CONTROL_PREFIX) {
        let control = ControlRef::parse("uri", reference)?;
        let record = control_with_history(app, &control).await?;
        return Ok((pretty(&record)?, "application/json"));
    }
    if let Some(id) = uri.strip_prefix(POLICY_PREFIX) {
        return policy_text(app, id).await.map(|t| (t, "text/markdown"));
    }
    Err(Error::not_found(
        format!("resource `{uri}`"),
        format!("resources are {SOA_URI}, {RECORD_TEMPLATE}, {CONTROL_TEMPLATE} and {POLICY_TEMPLATE}"),
    ))
}

/// The current text of a policy exactly as published, so the SHA-256 of what an agent reads
/// is the one acknowledge_policy expects.
async fn policy_text(app: &App, id: &str) -> Result<String> {
    let id = policy_id("uri", id)?;
    let (policy, content) = app.store.current_policy(&id).await?.ok_or_else(|| {
        Error::not_found(format!("policy `{id}`"), "check_awareness lists the published policies you must acknowledge")
    })?;
    let body = match (content, &policy.location) {
        (Some(text), _) => text,
        (None, Some(location)) => format!("The text is kept at {location}; its SHA-256 must equal {}.", policy.sha256),
        (None, None) => String::new(),
    };
    Ok(body)
}

/// Name of the root-cause analysis prompt.
pub const ROOT_CAUSE_PROMPT: &str = "root_cause_analysis";

/// A prompt that walks an agent through the 10.2 b) analysis of one nonconformity, with the
/// similar nonconformities it must confirm or dismiss and the exact call that records it.
pub async fn root_cause_prompt(app: &App, reference: &str) -> Result<String> {
    let r = RecordRef::parse("ref", reference)?;
    if r.kind != RecordKind::Nonconformity {
        return Err(Error::invalid("ref", "the root-cause analysis is for a nonconformity (NC-n)"));
    }
    let nc =
        app.store.nonconformity(r.number, Utc::now().date_naive()).await?.ok_or_else(|| {
            Error::not_found(r.to_string(), "list_nonconformities shows the nonconformities that exist")
        })?;
    let candidates = similar_candidates(app, &nc).await?;
    let list = |v: &[String]| if v.is_empty() { "none".to_owned() } else { v.join(", ") };
    let similar = if candidates.is_empty() {
        "The server found no similar nonconformity. Still think about where else the same cause could act.".to_owned()
    } else {
        let lines: Vec<String> =
            candidates.iter().map(|c| format!("- {} ({})", c.reference, c.reasons.join(", "))).collect();
        format!(
            "The server proposes these similar nonconformities; read each with get_record and confirm (related: true) \
             or dismiss (related: false) every one:\n{}",
            lines.join("\n")
        )
    };
    let correction = match &nc.correction {
        Some(c) => format!("Correction on record (10.2 a): {c}"),
        None => "No correction on record yet: pass `correction` (what was done to contain and correct it) with the analysis.".to_owned(),
    };
    Ok(format!(
        "Analyse nonconformity {reference} under ISO/IEC 27001:2022 clause 10.2 b).\n\n\
         Title: {title}\nSeverity: {severity}; source: {source}; status: {status}; version: {version}\n\
         Controls: {controls}; clauses: {clauses}\nDescription: {description}\n{correction}\n\n\
         1. Find the root cause. With 5 whys, ask why it happened until the answer is a cause in a process, \
         control or system that can be changed, not a person's mistake. Say which method you used.\n\
         2. Check for similar nonconformities. {similar}\n\
         3. Decide whether action on the cause is needed so it does not recur or occur elsewhere. A major \
         nonconformity always needs it; otherwise, if not, give the justification.\n\n\
         Then call record_nonconformity_analysis with ref \"{reference}\", version {version}, method, root_cause, \
         similar (one entry per nonconformity above), similar_note, action_needed and, if no action, justification.",
        reference = nc.reference,
        title = nc.title,
        severity = nc.severity.as_str(),
        source = nc.source.as_str(),
        status = nc.status.as_str(),
        version = nc.version,
        controls = list(&nc.controls),
        clauses = list(&nc.clauses),
        description = nc.description,
    ))
}
