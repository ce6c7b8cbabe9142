//! Internal audits (9.2): the programme entry, the audit, its findings, and the auditor's
//! independence: nobody audits their own work.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

text_enum! {
    /// Where an audit stands.
    AuditStatus {
        /// In the programme, not yet done.
        Planned = "planned",
        /// Done, with a conclusion.
        Completed = "completed",
    }
}

/// What an audit covers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditScope {
    /// Processes, e.g. change management.
    #[serde(default)]
    pub processes: Vec<String>,
    /// Annex A controls, e.g. A.8.32.
    #[serde(default)]
    pub controls: Vec<String>,
    /// Records, e.g. RISK-4, CR-2.
    #[serde(default)]
    pub records: Vec<String>,
}

/// Something in scope and who owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    /// What: a control, risk, action or change request.
    pub what: String,
    /// Its owner.
    pub owner: String,
}

/// 9.2.2: the auditor may not be an auditee nor own anything in scope.
pub fn check_independence(auditor: &str, auditees: &[String], in_scope: &[Owned]) -> Result<()> {
    if auditees.iter().any(|a| a == auditor) {
        return Err(Error::rule(
            format!("`{auditor}` is an auditee of this audit and may not audit it"),
            "choose an auditor from outside the audited area",
        ));
    }
    let own: Vec<&str> = in_scope.iter().filter(|o| o.owner == auditor).map(|o| o.what.as_str()).collect();
    if !own.is_empty() {
        return Err(Error::rule(
            format!("`{auditor}` owns {} in the audit's scope and may not audit their own work", own.join(", ")),
            "choose another auditor, or take those items out of the scope",
        ));
    }
    Ok(())
}

/// What an audit says, beyond its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditBody {
    /// Scope.
    pub scope: AuditScope,
    /// Audit criteria (clauses, policies, procedures).
    pub criteria: String,
    /// Who was audited.
    pub auditees: Vec<String>,
    /// The conclusion, once completed.
    pub conclusion: Option<String>,
    /// Nonconformities raised from its findings.
    pub findings: Vec<String>,
}

/// An internal audit as stored and shown.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Audit {
    /// Reference, e.g. `AUD-2`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Status.
    pub status: AuditStatus,
    /// The auditor.
    pub auditor: Option<String>,
    /// Planned date.
    pub planned_date: String,
    /// When it was performed.
    pub audit_date: Option<String>,
    /// What it says.
    #[serde(flatten)]
    pub body: AuditBody,
    /// Version for optimistic concurrency.
    pub version: i64,
    /// When entered (UTC).
    pub created_at: String,
    /// When last changed (UTC).
    pub updated_at: String,
    /// Who last changed it.
    pub updated_by: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auditors_do_not_audit_their_own_work() {
        let scope = [Owned { what: "A.8.32".into(), owner: "marta".into() }];
        assert!(check_independence("amber", &["marta".into()], &scope).is_ok());
        let e = check_independence("marta", &[], &scope).unwrap_err().to_string();
        assert!(e.contains("A.8.32"), "{e}");
        assert!(check_independence("amber", &["amber".into()], &[]).is_err());
    }
}
