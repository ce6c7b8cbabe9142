//! Awareness (7.3): published policy versions with a content hash, acknowledgements bound to
//! the exact text read, and what an actor still has to acknowledge.

use chrono::NaiveDate;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::actor::Role;
use crate::error::{Error, Result};

/// A policy id: 1-64 characters of `a-z 0-9 . _ -` (e.g. `constitution`).
pub fn policy_id(field: &str, value: &str) -> Result<String> {
    let v = value.trim();
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(v.to_owned())
    } else {
        Err(Error::invalid(
            field,
            format!("`{value}` is not a policy id; use 1-64 characters of a-z, 0-9, '.', '_', '-'"),
        ))
    }
}

/// The SHA-256 of a policy text, lower-case hex.
pub fn content_hash(content: &str) -> String {
    hex::encode(Sha256::digest(content.as_bytes()))
}

/// Checks a SHA-256 given by a caller: 64 hex digits; returns it in lower case.
pub fn sha256(field: &str, value: &str) -> Result<String> {
    let v = value.trim().to_ascii_lowercase();
    if v.len() == 64 && v.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(v)
    } else {
        Err(Error::invalid(field, "is not a SHA-256: give 64 hex digits (sha256sum of the text you read)"))
    }
}

/// A published policy version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Policy {
    /// Policy id, e.g. `constitution`.
    pub policy_id: String,
    /// Version label.
    pub version: String,
    /// Title.
    pub title: String,
    /// SHA-256 of the text.
    pub sha256: String,
    /// Where the text lives, when not stored here.
    pub location: Option<String>,
    /// From when it applies (YYYY-MM-DD).
    pub effective_date: String,
    /// Roles it applies to; empty: everyone.
    pub roles: Vec<Role>,
    /// When published (UTC).
    pub published_at: String,
    /// Who published it.
    pub published_by: String,
}

impl Policy {
    /// Whether it binds `role` on `today`.
    pub fn binds(&self, role: Role, today: NaiveDate) -> bool {
        let effective = NaiveDate::parse_from_str(&self.effective_date, "%Y-%m-%d").is_ok_and(|d| d <= today);
        effective && (self.roles.is_empty() || self.roles.contains(&role))
    }
}

/// A policy an actor still has to acknowledge, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Pending {
    /// Policy id.
    pub policy_id: String,
    /// The current version to acknowledge.
    pub version: String,
    /// Title.
    pub title: String,
    /// SHA-256 of the current text: acknowledge with it.
    pub sha256: String,
    /// Why: never acknowledged, or an older version was.
    pub reason: String,
}

/// What `role` still has to acknowledge: every current policy binding it whose current
/// version is not among `acknowledged` (policy id, version).
pub fn pending(role: Role, current: &[Policy], acknowledged: &[(String, String)], today: NaiveDate) -> Vec<Pending> {
    current
        .iter()
        .filter(|p| p.binds(role, today))
        .filter(|p| !acknowledged.iter().any(|(id, v)| *id == p.policy_id && *v == p.version))
        .map(|p| {
            let older: Vec<&str> =
                acknowledged.iter().filter(|(id, _)| *id == p.policy_id).map(|(_, v)| v.as_str()).collect();
            let reason = match older.last() {
                Some(v) => format!("version {} was published after you acknowledged version {v}", p.version),
                None => "never acknowledged".to_owned(),
            };
            Pending {
                policy_id: p.policy_id.clone(),
                version: p.version.clone(),
                title: p.title.clone(),
                sha256: p.sha256.clone(),
                reason,
            }
        })
        .collect()
}

/// An acknowledgement must name the current version and the hash of its text.
pub fn check_acknowledgement(current: &Policy, version: &str, hash: &str) -> Result<()> {
    let read_it = format!(
        "read isms://policies/{} and acknowledge version {} with its SHA-256",
        current.policy_id, current.version
    );
    if version != current.version {
        return Err(Error::rule(
            format!("version {version} of `{}` is not the current one ({})", current.policy_id, current.version),
            read_it,
        ));
    }
    if hash != current.sha256 {
        return Err(Error::rule(
            format!(
                "the SHA-256 you sent does not match version {} of `{}`: you did not read the published text",
                current.version, current.policy_id
            ),
            read_it,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(version: &str, roles: Vec<Role>, effective: &str) -> Policy {
        Policy {
            policy_id: "constitution".into(),
            version: version.into(),
            title: "Constitution".into(),
            sha256: content_hash(version),
            location: None,
            effective_date: effective.into(),
            roles,
            published_at: "t".into(),
            published_by: "m".into(),
        }
    }

    #[test]
    fn a_new_version_makes_the_old_acknowledgement_stale() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        let v2 = [policy("2", vec![], "2026-01-01")];
        let acked = vec![("constitution".to_owned(), "1".to_owned())];
        let p = pending(Role::Agent, &v2, &acked, today);
        assert_eq!(p.len(), 1);
        assert!(p[0].reason.contains("after you acknowledged version 1"), "{}", p[0].reason);
        assert_eq!(pending(Role::Agent, &v2, &[], today)[0].reason, "never acknowledged");
        let current = vec![("constitution".to_owned(), "2".to_owned())];
        assert!(pending(Role::Agent, &v2, &current, today).is_empty());
    }

    #[test]
    fn roles_and_effective_dates_decide_who_is_bound() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        let agents_only = [policy("1", vec![Role::Agent], "2026-01-01")];
        assert!(pending(Role::Auditor, &agents_only, &[], today).is_empty());
        let future = [policy("1", vec![], "2027-01-01")];
        assert!(pending(Role::Agent, &future, &[], today).is_empty());
    }

    #[test]
    fn acknowledgements_need_the_current_text() {
        let p = policy("2", vec![], "2026-01-01");
        assert!(check_acknowledgement(&p, "2", &content_hash("2")).is_ok());
        let e = check_acknowledgement(&p, "2", &content_hash("1")).unwrap_err().to_string();
        assert!(e.contains("does not match") && e.contains("isms://policies/constitution"), "{e}");
        assert!(check_acknowledgement(&p, "1", &content_hash("1")).is_err());
        assert!(sha256("h", "xyz").is_err());
        assert_eq!(sha256("h", &content_hash("a").to_uppercase()).unwrap(), content_hash("a"));
        assert!(policy_id("id", "Constitution").is_err());
    }
}
