//! Statement of Applicability rows and approved versions.

use std::collections::HashMap;

use chrono::NaiveDate;
use sqlx::{AnyConnection, Row};

use super::{Store, Write};
use crate::catalog::catalog;
use crate::domain::references::{RecordKind, RecordRef};
use crate::domain::soa::{Evidence, ImplementationStatus, SoaEntry, stale_evidence, untraceable};
use crate::domain::time::stamp;
use crate::error::{Error, Result};

/// What an SoA update sets.
#[derive(Debug, Clone)]
pub struct SoaEntryFields {
    /// Applicable.
    pub applicable: bool,
    /// Why included or excluded.
    pub justification: String,
    /// Implementation status.
    pub status: ImplementationStatus,
    /// How it is implemented.
    pub implementation: Option<String>,
    /// Owner.
    pub owner: Option<String>,
    /// Evidence with dates.
    pub evidence: Vec<Evidence>,
    /// Requirement that includes it.
    pub requirement: Option<String>,
    /// Risk-assessment statement behind an exclusion.
    pub risk_assessment: Option<String>,
}

/// An approved, frozen version of the SoA.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct SoaVersion {
    /// Version number (`SOA-n`).
    pub number: i64,
    /// When approved (UTC).
    pub approved_at: String,
    /// Who approved it.
    pub approved_by: String,
    /// Approval note.
    pub note: Option<String>,
    /// The 93 entries as approved.
    pub entries: Vec<SoaEntry>,
}

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Internal(e.to_string()))
}

async fn load_soa(conn: &mut AnyConnection, today: NaiveDate, max_age_days: u64) -> Result<Vec<SoaEntry>> {
    let rows = sqlx::query(
        "SELECT control, applicable, justification, status, implementation, owner, evidence, requirement, \
         risk_assessment, version, updated_at, updated_by FROM soa_entries",
    )
    .fetch_all(&mut *conn)
    .await?;
    let links = sqlx::query("SELECT control, risk FROM risk_controls ORDER BY risk").fetch_all(&mut *conn).await?;
    let mut risks: HashMap<String, Vec<String>> = HashMap::new();
    for l in &links {
        let control: String = l.try_get(0)?;
        risks.entry(control).or_default().push(RecordRef::new(RecordKind::Risk, l.try_get(1)?).to_string());
    }
    let mut stored: HashMap<String, &sqlx::any::AnyRow> = HashMap::new();
    for r in &rows {
        stored.insert(r.try_get(0)?, r);
    }
    catalog()
        .controls()
        .iter()
        .map(|c| {
            let linked = risks.remove(&c.reference).unwrap_or_default();
            let Some(r) = stored.get(&c.reference) else {
                return Ok(SoaEntry {
                    control: c.reference.clone(),
                    title: c.title.clone(),
                    applicable: None,
                    justification: None,
                    status: None,
                    implementation: None,
                    owner: None,
                    evidence: Vec::new(),
                    requirement: None,
                    risk_assessment: None,
                    untraceable: false,
                    stale_evidence: false,
                    risks: linked,
                    version: 0,
                    updated_at: None,
                    updated_by: None,
                });
            };
            let applicable = Some(r.try_get::<i64, _>(1)? == 1);
            let status: Option<ImplementationStatus> = Some(r.try_get::<String, _>(3)?.parse()?);
            let evidence: Vec<Evidence> = serde_json::from_str(&r.try_get::<String, _>(6)?)
                .map_err(|e| Error::Internal(format!("stored evidence: {e}")))?;
            let requirement: Option<String> = r.try_get(7)?;
            Ok(SoaEntry {
                control: c.reference.clone(),
                title: c.title.clone(),
                applicable,
                justification: Some(r.try_get(2)?),
                untraceable: untraceable(applicable, linked.len(), requirement.as_deref()),
                stale_evidence: applicable == Some(true) && stale_evidence(status, &evidence, today, max_age_days),
                status,
                implementation: r.try_get(4)?,
                owner: r.try_get(5)?,
                evidence,
                requirement,
                risk_assessment: r.try_get(8)?,
                risks: linked,
                version: r.try_get(9)?,
                updated_at: r.try_get(10)?,
                updated_by: r.try_get(11)?,
            })
        })
        .collect()
}

async fn load_version(conn: &mut AnyConnection, number: Option<i64>) -> Result<Option<SoaVersion>> {
    let query = match number {
        Some(n) => {
            sqlx::query("SELECT number, approved_at, approved_by, note, entries FROM soa_versions WHERE number = $1")
                .bind(n)
        }
        None => sqlx::query(
            "SELECT number, approved_at, approved_by, note, entries FROM soa_versions ORDER BY number DESC LIMIT 1",
        ),
    };
    let Some(r) = query.fetch_optional(&mut *conn).await? else { return Ok(None) };
    let entries: Vec<SoaEntry> = serde_json::from_str(&r.try_get::<String, _>(4)?)
        .map_err(|e| Error::Internal(format!("stored SoA version: {e}")))?;
    Ok(Some(SoaVersion {
        number: r.try_get(0)?,
        approved_at: r.try_get(1)?,
        approved_by: r.try_get(2)?,
        note: r.try_get(3)?,
        entries,
    }))
}

impl Write {
    /// The whole SoA as it stands inside this write.
    pub async fn soa(&mut self, max_age_days: u64) -> Result<Vec<SoaEntry>> {
        let today = self.now().date_naive();
        load_soa(self.tx(), today, max_age_days).await
    }

    /// The latest approved version, inside this write.
    pub async fn latest_soa_version(&mut self) -> Result<Option<SoaVersion>> {
        load_version(self.tx(), None).await
    }

    /// Decides one control's entry: inserts it when `expected` is 0 (undecided), otherwise
    /// updates it at version `expected`.
    pub async fn upsert_soa_entry(
        &mut self,
        actor: &str,
        control: &str,
        expected: i64,
        f: &SoaEntryFields,
    ) -> Result<()> {
        let now = stamp(self.now());
        let applicable = i64::from(f.applicable);
        let evidence = json(&f.evidence)?;
        let affected = if expected == 0 {
            sqlx::query(
                "INSERT INTO soa_entries (control, applicable, justification, status, implementation, owner, evidence, \
                 requirement, risk_assessment, version, updated_at, updated_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $11) ON CONFLICT DO NOTHING",
            )
            .bind(control)
            .bind(applicable)
            .bind(&f.justification)
            .bind(f.status.as_str())
            .bind(f.implementation.as_deref())
            .bind(f.owner.as_deref())
            .bind(&evidence)
            .bind(f.requirement.as_deref())
            .bind(f.risk_assessment.as_deref())
            .bind(&now)
            .bind(actor)
            .execute(&mut **self.tx())
            .await?
            .rows_affected()
        } else {
            sqlx::query(
                "UPDATE soa_entries SET applicable = $1, justification = $2, status = $3, implementation = $4, \
                 owner = $5, evidence = $6, requirement = $7, risk_assessment = $8, version = version + 1, \
                 updated_at = $9, updated_by = $10 WHERE control = $11 AND version = $12",
            )
            .bind(applicable)
            .bind(&f.justification)
            .bind(f.status.as_str())
            .bind(f.implementation.as_deref())
            .bind(f.owner.as_deref())
            .bind(&evidence)
            .bind(f.requirement.as_deref())
            .bind(f.risk_assessment.as_deref())
            .bind(&now)
            .bind(actor)
            .bind(control)
            .bind(expected)
            .execute(&mut **self.tx())
            .await?
            .rows_affected()
        };
        if affected == 1 {
            return Ok(());
        }
        let current: Option<i64> = sqlx::query_scalar("SELECT version FROM soa_entries WHERE control = $1")
            .bind(control)
            .fetch_optional(&mut **self.tx())
            .await?;
        Err(Error::Conflict {
            reference: format!("the SoA entry of {control}"),
            expected,
            current: current.unwrap_or(0),
        })
    }

    /// Freezes `entries` as the next approved version.
    pub async fn insert_soa_version(&mut self, actor: &str, note: Option<&str>, entries: &[SoaEntry]) -> Result<i64> {
        let number = self.next_number(RecordKind::SoaVersion).await?;
        sqlx::query(
            "INSERT INTO soa_versions (number, approved_at, approved_by, note, entries) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(number)
        .bind(stamp(self.now()))
        .bind(actor)
        .bind(note)
        .bind(json(&entries)?)
        .execute(&mut **self.tx())
        .await?;
        Ok(number)
    }
}

impl Store {
    /// The whole SoA as it stands: 93 entries in catalogue order, undecided ones empty.
    pub async fn soa(&self, today: NaiveDate, max_age_days: u64) -> Result<Vec<SoaEntry>> {
        let mut conn = self.pool().acquire().await?;
        load_soa(&mut conn, today, max_age_days).await
    }

    /// An approved version, or the latest one with `None`.
    pub async fn soa_version(&self, number: Option<i64>) -> Result<Option<SoaVersion>> {
        let mut conn = self.pool().acquire().await?;
        load_version(&mut conn, number).await
    }
}
