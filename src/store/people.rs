//! Competence requirements and evidence (7.2), policies and acknowledgements (7.3).

use super::sql::{Cells, args, json_text};
use super::{Store, Write};
use crate::domain::actor::Role;
use crate::domain::awareness::Policy;
use crate::domain::competence::{CompetenceRecord, Requirement};
use crate::domain::time::stamp;
use crate::error::{Error, Result};

/// A policy version to publish.
#[derive(Debug, Clone)]
pub struct NewPolicy {
    /// Policy id.
    pub policy_id: String,
    /// Version label.
    pub version: String,
    /// Title.
    pub title: String,
    /// The text, when stored here.
    pub content: Option<String>,
    /// Where the text lives otherwise.
    pub location: Option<String>,
    /// SHA-256 of the text.
    pub sha256: String,
    /// From when it applies.
    pub effective_date: String,
    /// Roles it binds; empty: everyone.
    pub roles: Vec<Role>,
}

const POLICY_COLUMNS: &str =
    "policy_id, version, title, sha256, location, effective_date, roles, published_at, published_by";

fn policy_from_row(r: &impl Cells) -> Result<Policy> {
    Ok(Policy {
        policy_id: r.get(0)?,
        version: r.get(1)?,
        title: r.get(2)?,
        sha256: r.get(3)?,
        location: r.get(4)?,
        effective_date: r.get(5)?,
        roles: serde_json::from_str(&r.get::<String>(6)?).map_err(|e| Error::Internal(format!("stored roles: {e}")))?,
        published_at: r.get(7)?,
        published_by: r.get(8)?,
    })
}

/// The current policies, each with the version the actor `$1` acknowledged: the current one
/// if acknowledged, otherwise the latest acknowledged (NULL if none).
pub(super) fn acknowledged_query() -> String {
    format!(
        "SELECT {POLICY_COLUMNS}, COALESCE(\
         (SELECT a.version FROM acknowledgements a WHERE a.actor = $1 AND a.policy_id = policies.policy_id \
          AND a.version = policies.version LIMIT 1), \
         (SELECT a.version FROM acknowledgements a WHERE a.actor = $1 AND a.policy_id = policies.policy_id \
          ORDER BY a.id DESC LIMIT 1)) \
         FROM policies WHERE is_current = 1 ORDER BY policy_id"
    )
}

const RECORD_COLUMNS: &str = "actor, competency, evidence_type, evidence_ref, assessed_by, valid_until, notes, gap_action, recorded_at, recorded_by";

fn record_from_row(r: &impl Cells) -> Result<CompetenceRecord> {
    Ok(CompetenceRecord {
        actor: r.get(0)?,
        competency: r.get(1)?,
        evidence_type: r.get::<String>(2)?.parse()?,
        evidence_ref: r.get(3)?,
        assessed_by: r.get(4)?,
        valid_until: r.get(5)?,
        notes: r.get(6)?,
        gap_action: r.get(7)?,
        recorded_at: r.get(8)?,
        recorded_by: r.get(9)?,
    })
}

impl Write {
    /// Replaces the competencies `role` requires.
    pub async fn set_requirements(&mut self, role: Role, required: &[(String, Option<String>)]) -> Result<()> {
        self.conn().execute("DELETE FROM competence_requirements WHERE role = $1", args![role.as_str()]).await?;
        for (competency, description) in required {
            let sql = "INSERT INTO competence_requirements (role, competency, description) VALUES ($1, $2, $3)";
            self.conn().execute(sql, args![role.as_str(), competency, description.as_deref()]).await?;
        }
        Ok(())
    }

    /// Stores a piece of competence evidence.
    pub async fn insert_competence(&mut self, r: &CompetenceRecord) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO competence_records (actor, competency, evidence_type, evidence_ref, assessed_by, valid_until, \
             notes, gap_action, recorded_at, recorded_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                args![
                    r.actor,
                    r.competency,
                    r.evidence_type.as_str(),
                    r.evidence_ref,
                    r.assessed_by,
                    r.valid_until.as_deref(),
                    r.notes.as_deref(),
                    r.gap_action.as_deref(),
                    r.recorded_at,
                    r.recorded_by,
                ],
            )
        .await?;
        Ok(())
    }

    /// Whether a version of a policy was published before.
    pub async fn policy_version_exists(&mut self, policy_id: &str, version: &str) -> Result<bool> {
        let sql = "SELECT 1 FROM policies WHERE policy_id = $1 AND version = $2";
        Ok(self.conn().fetch_optional(sql, args![policy_id, version]).await?.is_some())
    }

    /// Publishes a policy version as the current one; earlier versions stop being current.
    pub async fn insert_policy(&mut self, actor: &str, p: &NewPolicy) -> Result<Policy> {
        self.conn().execute("UPDATE policies SET is_current = 0 WHERE policy_id = $1", args![p.policy_id]).await?;
        let roles = json_text(&p.roles)?;
        let now = stamp(self.now());
        self.conn()
            .execute(
                "INSERT INTO policies (policy_id, version, title, content, location, sha256, effective_date, roles, \
             is_current, published_at, published_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $10)",
                args![
                    p.policy_id,
                    p.version,
                    p.title,
                    p.content.as_deref(),
                    p.location.as_deref(),
                    p.sha256,
                    p.effective_date,
                    roles,
                    now,
                    actor
                ],
            )
            .await?;
        let sql = format!("SELECT {POLICY_COLUMNS} FROM policies WHERE policy_id = $1 AND version = $2");
        let row = self.conn().fetch_one(&sql, args![p.policy_id, p.version]).await?;
        policy_from_row(&row)
    }

    /// Records an acknowledgement; false when this actor had already acknowledged that version.
    pub async fn insert_acknowledgement(
        &mut self,
        actor: &str,
        policy: &Policy,
        context: Option<&str>,
    ) -> Result<bool> {
        let now = stamp(self.now());
        let inserted = self.conn()
            .execute(
                "INSERT INTO acknowledgements (actor, policy_id, version, sha256, context, at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT DO NOTHING",
                args![actor, policy.policy_id, policy.version, policy.sha256, context, now],
            )
        .await?;
        Ok(inserted == 1)
    }
}

impl Store {
    /// The competencies required, for one role or all.
    pub async fn requirements(&self) -> Result<Vec<Requirement>> {
        let rows = self
            .read()
            .await?
            .conn()
            .fetch_all(
                "SELECT role, competency, description FROM competence_requirements ORDER BY role, competency",
                args![],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Requirement { role: r.get::<String>(0)?.parse()?, competency: r.get(1)?, description: r.get(2)? })
            })
            .collect()
    }

    /// Competence evidence, of one actor or of all, oldest first.
    pub async fn competence_records(&self, actor: Option<&str>) -> Result<Vec<CompetenceRecord>> {
        let rows = match actor {
            Some(a) => {
                let sql = format!("SELECT {RECORD_COLUMNS} FROM competence_records WHERE actor = $1 ORDER BY id");
                self.read().await?.conn().fetch_all(&sql, args![a]).await?
            }
            None => {
                let sql = format!("SELECT {RECORD_COLUMNS} FROM competence_records ORDER BY id");
                self.read().await?.conn().fetch_all(&sql, args![]).await?
            }
        };
        rows.iter().map(record_from_row).collect()
    }

    /// Every current policy version.
    pub async fn current_policies(&self) -> Result<Vec<Policy>> {
        let sql = format!("SELECT {POLICY_COLUMNS} FROM policies WHERE is_current = 1 ORDER BY policy_id");
        let rows = self.read().await?.conn().fetch_all(&sql, args![]).await?;
        rows.iter().map(policy_from_row).collect()
    }

    /// The current version of one policy with its stored text, if published.
    pub async fn current_policy(&self, policy_id: &str) -> Result<Option<(Policy, Option<String>)>> {
        let sql = format!("SELECT {POLICY_COLUMNS}, content FROM policies WHERE policy_id = $1 AND is_current = 1");
        let Some(row) = self.read().await?.conn().fetch_optional(&sql, args![policy_id]).await? else {
            return Ok(None);
        };
        Ok(Some((policy_from_row(&row)?, row.get(9)?)))
    }

    /// The current version of every policy, each with the version `actor` acknowledged: the
    /// current one if they did, otherwise the latest they did, if any. One statement, so an
    /// awareness check is one round trip on PostgreSQL.
    pub async fn current_policies_acknowledged_by(&self, actor: &str) -> Result<Vec<(Policy, Option<String>)>> {
        let rows = self.read().await?.conn().fetch_all(&acknowledged_query(), args![actor]).await?;
        rows.iter().map(|r| Ok((policy_from_row(r)?, r.get(9)?))).collect()
    }

    /// Every acknowledgement of a current policy version, as (actor, policy, version).
    pub async fn current_acknowledgements(&self) -> Result<Vec<(String, String, String)>> {
        let sql = "SELECT a.actor, a.policy_id, a.version FROM acknowledgements a \
             JOIN policies p ON p.policy_id = a.policy_id AND p.version = a.version AND p.is_current = 1";
        let rows = self.read().await?.conn().fetch_all(sql, args![]).await?;
        rows.iter().map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).collect()
    }
}
