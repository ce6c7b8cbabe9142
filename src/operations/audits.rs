//! Internal audits (9.2): programme entries, performed audits and their findings, which
//! become nonconformities; nobody audits their own work.

use std::sync::Arc;

use chrono::Utc;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::nonconformities::{LogNonconformity, insert_logged, matches_of, validate};
use super::{App, Effect, Operation};
use crate::domain::access::Access;
use crate::domain::actor::{Actor, Role};
use crate::domain::internal_audit::{Audit, AuditBody, AuditScope, AuditStatus, Owned, check_independence};
use crate::domain::nonconformity::{Severity, Source};
use crate::domain::references::{ControlRef, RecordKind, RecordRef};
use crate::domain::text::{self, MAX_TEXT};
use crate::domain::time::{date, parse_date};
use crate::error::{Error, Result};
use crate::store::Change;

pub(super) fn operations() -> Vec<Operation> {
    const AUDITORS: Access = Access::Only(&[Role::Auditor, Role::IsmsManager]);
    vec![Operation::new("record_audit", Effect::Create, AUDITORS, record_audit)]
}

/// A finding of the audit; each becomes a nonconformity with source internal_audit.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    /// One-line summary.
    pub title: String,
    /// What was found.
    pub description: String,
    /// major | minor | observation.
    pub severity: Severity,
    /// Clauses not met.
    #[serde(default)]
    pub clauses: Vec<String>,
    /// Controls not met.
    #[serde(default)]
    pub controls: Vec<String>,
}

/// Record an internal audit AUD-n (9.2): plan it, or record it performed; pass ref to complete a planned one.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordAudit {
    /// A planned audit to complete, e.g. AUD-2; omit to create one.
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
    /// As last read; required with ref.
    #[serde(default)]
    pub version: Option<i64>,
    /// Scope (new audits).
    #[serde(default)]
    pub scope: Option<AuditScope>,
    /// Criteria: clauses, policies, procedures (new audits).
    #[serde(default)]
    pub criteria: Option<String>,
    /// YYYY-MM-DD planned (new audits).
    #[serde(default)]
    pub planned_date: Option<String>,
    /// The auditor (registered actor; never an auditee nor owner of anything in scope); omit while planned.
    #[serde(default)]
    pub auditor: Option<String>,
    /// Who was audited.
    #[serde(default)]
    pub auditees: Vec<String>,
    /// YYYY-MM-DD performed; with auditor and conclusion it completes the audit.
    #[serde(default)]
    pub audit_date: Option<String>,
    /// The conclusion.
    #[serde(default)]
    pub conclusion: Option<String>,
    /// Findings; each becomes a nonconformity.
    #[serde(default)]
    pub findings: Vec<Finding>,
}

/// The audit and the nonconformities raised from it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AuditRecorded {
    /// The audit.
    pub audit: Audit,
}

async fn record_audit(app: Arc<App>, actor: Actor, input: RecordAudit) -> Result<AuditRecorded> {
    const OP: &str = "record_audit";
    let performed = input.audit_date.is_some() || input.conclusion.is_some() || !input.findings.is_empty();
    let auditor = text::optional("auditor", input.auditor.as_deref(), 64)?;
    let auditees = text::list("auditees", &input.auditees, 64)?;
    let audit_date = input.audit_date.as_deref().map(|d| parse_date("audit_date", d)).transpose()?;
    let conclusion = text::optional("conclusion", input.conclusion.as_deref(), MAX_TEXT)?;
    if performed && (auditor.is_none() || audit_date.is_none() || conclusion.is_none()) {
        return Err(Error::invalid(
            "conclusion",
            "a performed audit needs auditor, audit_date and conclusion (findings optional)",
        ));
    }
    if input.findings.len() > text::MAX_LIST {
        return Err(Error::invalid("findings", format!("at most {} per call", text::MAX_LIST)));
    }
    let today = Utc::now().date_naive();
    let findings = input
        .findings
        .iter()
        .map(|f| {
            let log = LogNonconformity {
                title: f.title.clone(),
                description: f.description.clone(),
                severity: f.severity,
                source: Source::InternalAudit,
                clauses: f.clauses.clone(),
                controls: f.controls.clone(),
                detected_in: None,
                evidence: Vec::new(),
                correction: None,
                due_date: None,
                idempotency_key: None,
            };
            validate(&log, &app, today)
        })
        .collect::<Result<Vec<_>>>()?;

    // Independence is checked before the write starts: it reads other records.
    let scope = match input.reference.as_deref() {
        Some(reference) => {
            let r = RecordRef::parse("ref", reference)?;
            match app.store.audit(r.number).await? {
                Some(a) if r.kind == RecordKind::Audit => Some(a.body.scope),
                _ => None,
            }
        }
        None => input.scope.clone(),
    };
    if performed {
        let auditor = auditor.clone().unwrap_or_default();
        if app.store.actor_by_name(&auditor).await?.is_none() {
            return Err(Error::not_found(
                format!("actor `{auditor}`"),
                "the auditor must be a registered, active actor",
            ));
        }
        let scope = scope.clone().unwrap_or_default();
        let mut controls = Vec::new();
        for c in &scope.controls {
            controls.push(ControlRef::parse("scope.controls", c)?.as_str().to_owned());
        }
        let records: Vec<RecordRef> =
            scope.records.iter().map(|r| RecordRef::parse("scope.records", r)).collect::<Result<_>>()?;
        let owned: Vec<Owned> = app
            .store
            .owners_in_scope(&controls, &records)
            .await?
            .into_iter()
            .map(|(what, owner)| Owned { what, owner })
            .collect();
        check_independence(&auditor, &auditees, &owned)?;
    }
    let mut matches = Vec::with_capacity(findings.len());
    for nc in &findings {
        matches.push(matches_of(&app, nc).await?);
    }
    let mut w = app.store.begin_write().await?;
    let (number, mut audit) = match input.reference.as_deref() {
        Some(reference) => {
            let r = RecordRef::parse("ref", reference)?;
            if r.kind != RecordKind::Audit {
                return Err(Error::invalid("ref", format!("`{reference}` is not an audit (AUD-n)")));
            }
            let audit =
                w.audit(r.number).await?.ok_or_else(|| Error::not_found(r.to_string(), "check the reference"))?;
            let expected = input
                .version
                .ok_or_else(|| Error::invalid("version", "is required with ref: the audit's version as last read"))?;
            crate::domain::check_version(&audit.reference, expected, audit.version)?;
            if audit.status == AuditStatus::Completed {
                return Err(Error::rule(format!("{r} is already completed"), "record a follow-up audit as a new one"));
            }
            if !performed {
                return Err(Error::invalid(
                    "conclusion",
                    "completing a planned audit needs auditor, audit_date and conclusion",
                ));
            }
            (r.number, audit)
        }
        None => {
            let scope = input.scope.clone().unwrap_or_default();
            let mut controls = Vec::new();
            for c in &scope.controls {
                controls.push(ControlRef::parse("scope.controls", c)?.as_str().to_owned());
            }
            let mut records = Vec::new();
            for r in &scope.records {
                records.push(RecordRef::parse("scope.records", r)?.to_string());
            }
            if scope.processes.is_empty() && controls.is_empty() && records.is_empty() {
                return Err(Error::invalid("scope", "name at least one process, control or record"));
            }
            let body = AuditBody {
                scope: AuditScope {
                    processes: text::list("scope.processes", &scope.processes, 200)?,
                    controls,
                    records,
                },
                criteria: text::required("criteria", input.criteria.as_deref().unwrap_or_default(), MAX_TEXT)?,
                auditees: Vec::new(),
                conclusion: None,
                findings: Vec::new(),
            };
            let planned = match input.planned_date.as_deref() {
                Some(d) => parse_date("planned_date", d)?,
                None => audit_date.unwrap_or(today),
            };
            let draft = Audit {
                reference: String::new(),
                status: AuditStatus::Planned,
                auditor: None,
                planned_date: date(planned),
                audit_date: None,
                body,
                version: 1,
                created_at: String::new(),
                updated_at: String::new(),
                updated_by: String::new(),
            };
            let number = w.insert_audit(&actor.name, &draft).await?;
            let created = w.audit(number).await?.ok_or_else(|| Error::Internal(format!("AUD-{number} vanished")))?;
            w.record(Change {
                actor: &actor.name,
                operation: OP,
                record: &created.reference,
                event: "audit.planned",
                detail: &created,
            })?;
            (number, created)
        }
    };
    if performed {
        let auditor = auditor.unwrap_or_default();
        if app.store.actor_by_name(&auditor).await?.is_none() {
            return Err(Error::not_found(
                format!("actor `{auditor}`"),
                "the auditor must be a registered, active actor",
            ));
        }
        let records: Vec<RecordRef> =
            audit.body.scope.records.iter().map(|r| RecordRef::parse("scope.records", r)).collect::<Result<_>>()?;
        let owned: Vec<Owned> = app
            .store
            .owners_in_scope(&audit.body.scope.controls, &records)
            .await?
            .into_iter()
            .map(|(what, owner)| Owned { what, owner })
            .collect();
        check_independence(&auditor, &auditees, &owned)?;
        let mut raised = Vec::new();
        for (nc, matches) in findings.iter().zip(&matches) {
            raised.push(insert_logged(&mut w, &actor.name, OP, nc, matches, Some(number)).await?.reference);
        }
        let mut body = audit.body.clone();
        body.auditees = auditees;
        body.conclusion = conclusion;
        body.findings = raised;
        let audit_date = date(audit_date.unwrap_or(today));
        w.complete_audit(&actor.name, number, audit.version, &auditor, &audit_date, &body).await?;
        audit = w.audit(number).await?.ok_or_else(|| Error::Internal(format!("AUD-{number} vanished")))?;
        w.record(Change {
            actor: &actor.name,
            operation: OP,
            record: &audit.reference,
            event: "audit.completed",
            detail: &audit,
        })?;
    }
    w.commit().await?;
    Ok(AuditRecorded { audit })
}
