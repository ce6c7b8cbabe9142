//! Competence requirements and evidence (7.2), policies and acknowledgements (7.3).

use sqlx::Row;
use sqlx::any::AnyRow;

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

fn policy_from_row(r: &AnyRow) -> Result<Policy> {
    Ok(Policy {
        policy_id: r.try_get(0)?,
        version: r.try_get(1)?,
        title: r.try_get(2)?,
        sha256: r.try_get(3)?,
        location: r.try_get(4)?,
        effective_date: r.try_get(5)?,
        roles: serde_json::from_str(&r.try_get::<String, _>(6)?)
            .map_err(|e| Error::Internal(format!("stored roles: {e}")))?,
        published_at: r.try_get(7)?,
        published_by: r.try_get(8)?,
    })
}

const RECORD_COLUMNS: &str = "actor, competency, evidence_type, evidence_ref, assessed_by, valid_until, notes, gap_action, recorded_at, recorded_by";

fn record_from_row(r: &AnyRow) -> Result<CompetenceRecord> {
    Ok(CompetenceRecord {
        actor: r.try_get(0)?,
        competency: r.try_get(1)?,
        evidence_type: r.try_get::<String, _>(2)?.parse()?,
        evidence_ref: r.try_get(3)?,
        assessed_by: r.try_get(4)?,
        valid_until: r.try_get(5)?,
        notes: r.try_get(6)?,
        gap_action: r.try_get(7)?,
        recorded_at: r.try_get(8)?,
        recorded_by: r.try_get(9)?,
    })
}

impl Write {
    /// Replaces the competencies `role` requires.
    pub async fn set_requirements(&mut self, role: Role, required: &[(String, Option<String>)]) -> Result<()> {
        sqlx::query("DELETE FROM competence_requirements WHERE role = $1")
            .bind(role.as_str())
            .execute(&mut **self.tx())
            .await?;
        for (competency, description) in required {
            sqlx::query("INSERT INTO competence_requirements (role, competency, description) VALUES ($1, $2, $3)")
                .bind(role.as_str())
                .bind(competency)
                .bind(description.as_deref())
                .execute(&mut **self.tx())
                .await?;
        }
        Ok(())
    }

    /// Stores a piece of competence evidence.
    pub async fn insert_competence(&mut self, r: &CompetenceRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO competence_records (actor, competency, evidence_type, evidence_ref, assessed_by, valid_until, \
             notes, gap_action, recorded_at, recorded_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&r.actor)
        .bind(&r.competency)
        .bind(r.evidence_type.as_str())
        .bind(&r.evidence_ref)
        .bind(&r.assessed_by)
        .bind(r.valid_until.as_deref())
        .bind(r.notes.as_deref())
        .bind(r.gap_action.as_deref())
        .bind(&r.recorded_at)
        .bind(&r.recorded_by)
        .execute(&mut **self.tx())
        .await?;
        Ok(())
    }

    /// Whether a version of a policy was published before.
    pub async fn policy_version_exists(&mut self, policy_id: &str, version: &str) -> Result<bool> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM policies WHERE policy_id = $1 AND version = $2")
            .bind(policy_id)
            .bind(version)
            .fetch_optional(&mut **self.tx())
            .await?;
        Ok(found.is_some())
    }

    /// Publishes a policy version as the current one; earlier versions stop being current.
    pub async fn insert_policy(&mut self, actor: &str, p: &NewPolicy) -> Result<Policy> {
        sqlx::query("UPDATE policies SET is_current = 0 WHERE policy_id = $1")
            .bind(&p.policy_id)
            .execute(&mut **self.tx())
            .await?;
        let roles = serde_json::to_string(&p.roles).map_err(|e| Error::Internal(e.to_string()))?;
        sqlx::query(
            "INSERT INTO policies (policy_id, version, title, content, location, sha256, effective_date, roles, \
             is_current, published_at, published_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $10)",
        )
        .bind(&p.policy_id)
        .bind(&p.version)
        .bind(&p.title)
        .bind(p.content.as_deref())
        .bind(p.location.as_deref())
        .bind(&p.sha256)
        .bind(&p.effective_date)
        .bind(roles)
        .bind(stamp(self.now()))
        .bind(actor)
        .execute(&mut **self.tx())
        .await?;
        let sql = format!("SELECT {POLICY_COLUMNS} FROM policies WHERE policy_id = $1 AND version = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&p.policy_id)
            .bind(&p.version)
            .fetch_one(&mut **self.tx())
            .await?;
        policy_from_row(&row)
    }

    /// Records an acknowledgement; false when this actor had already acknowledged that version.
    pub async fn insert_acknowledgement(
        &mut self,
        actor: &str,
        policy: &Policy,
        context: Option<&str>,
    ) -> Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO acknowledgements (actor, policy_id, version, sha256, context, at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT DO NOTHING",
        )
        .bind(actor)
        .bind(&policy.policy_id)
        .bind(&policy.version)
        .bind(&policy.sha256)
        .bind(context)
        .bind(stamp(self.now()))
        .execute(&mut **self.tx())
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }
}

impl Store {
    /// The competencies required, for one role or all.
    pub async fn requirements(&self) -> Result<Vec<Requirement>> {
        let rows =
            sqlx::query("SELECT role, competency, description FROM competence_requirements ORDER BY role, competency")
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|r| {
                Ok(Requirement {
                    role: r.try_get::<String, _>(0)?.parse()?,
                    competency: r.try_get(1)?,
                    description: r.try_get(2)?,
                })
            })
            .collect()
    }

    /// Competence evidence, of one actor or of all, oldest first.
    pub async fn competence_records(&self, actor: Option<&str>) -> Result<Vec<CompetenceRecord>> {
        let rows = match actor {
            Some(a) => {
                let sql = format!("SELECT {RECORD_COLUMNS} FROM competence_records WHERE actor = $1 ORDER BY id");
                sqlx::query(sqlx::AssertSqlSafe(sql)).bind(a).fetch_all(self.pool()).await?
            }
            None => {
                let sql = format!("SELECT {RECORD_COLUMNS} FROM competence_records ORDER BY id");
                sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(self.pool()).await?
            }
        };
        rows.iter().map(record_from_row).collect()
    }

    /// Every current policy version.
    pub async fn current_policies(&self) -> Result<Vec<Policy>> {
        let sql = format!("SELECT {POLICY_COLUMNS} FROM policies WHERE is_current = 1 ORDER BY policy_id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(self.pool()).await?;
        rows.iter().map(policy_from_row).collect()
    }

    /// The current version of one policy with its stored text, if published.
    pub async fn current_policy(&self, policy_id: &str) -> Result<Option<(Policy, Option<String>)>> {
        let sql = format!("SELECT {POLICY_COLUMNS}, content FROM policies WHERE policy_id = $1 AND is_current = 1");
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(policy_id).fetch_optional(self.pool()).await? else {
            return Ok(None);
        };
        Ok(Some((policy_from_row(&row)?, row.try_get(9)?)))
    }

    /// The (policy, version) pairs an actor acknowledged, oldest first.
    pub async fn acknowledged(&self, actor: &str) -> Result<Vec<(String, String)>> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT policy_id, version FROM acknowledgements WHERE actor = $1 ORDER BY id")
                .bind(actor)
                .fetch_all(self.pool())
                .await?;
        Ok(rows)
    }

    /// Every acknowledgement of a current policy version, as (actor, policy, version).
    pub async fn current_acknowledgements(&self) -> Result<Vec<(String, String, String)>> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT a.actor, a.policy_id, a.version FROM acknowledgements a \
             JOIN policies p ON p.policy_id = a.policy_id AND p.version = a.version AND p.is_current = 1",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows)
    }
}
