//! Statement of Applicability rows and approved versions.

use std::collections::HashMap;

use chrono::NaiveDate;

use super::sql::{Cells, Conn, Row, args, joined_numbers, json_text};
use super::{Reader, Store, Write};
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

/// The SoA's statement, for every control or (with `one`) the control bound to `$1`: the
/// decided entries, then one row per control with its risk links aggregated.
pub(super) fn soa_query(one: bool) -> String {
    let only = if one { " WHERE control = $1" } else { "" };
    format!(
        "SELECT control, applicable, justification, status, implementation, owner, evidence, requirement, \
         risk_assessment, version, updated_at, updated_by, NULL AS risks FROM soa_entries{only} \
         UNION ALL SELECT control, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
         string_agg(CAST(risk AS TEXT), ',') FROM risk_controls{only} GROUP BY control"
    )
}

/// The SoA as it stands, in catalogue order: every control's entry, or with `only` that
/// control's alone. Each decided entry is one row, and each control's risk links one more
/// (aggregated in the database), in one statement: one round trip on PostgreSQL.
async fn load_soa(
    conn: &mut Conn<'_>,
    today: NaiveDate,
    max_age_days: u64,
    only: Option<&str>,
) -> Result<Vec<SoaEntry>> {
    let rows = match only {
        None => conn.fetch_all(&soa_query(false), args![]).await?,
        Some(control) => conn.fetch_all(&soa_query(true), args![control]).await?,
    };
    let mut risks: HashMap<String, Vec<String>> = HashMap::new();
    let mut stored: HashMap<String, &Row> = HashMap::new();
    for r in &rows {
        match r.get::<Option<String>>(12)? {
            Some(linked) => {
                let numbers = joined_numbers(Some(linked))?;
                let refs = numbers.into_iter().map(|n| RecordRef::new(RecordKind::Risk, n).to_string()).collect();
                risks.insert(r.get(0)?, refs);
            }
            None => {
                stored.insert(r.get(0)?, r);
            }
        }
    }
    let controls = catalog().controls().iter().filter(|c| only.is_none_or(|o| c.reference == o));
    controls
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
            let applicable = Some(r.get::<i64>(1)? == 1);
            let status: Option<ImplementationStatus> = Some(r.get::<String>(3)?.parse()?);
            let evidence: Vec<Evidence> = serde_json::from_str(&r.get::<String>(6)?)
                .map_err(|e| Error::Internal(format!("stored evidence: {e}")))?;
            let requirement: Option<String> = r.get(7)?;
            Ok(SoaEntry {
                control: c.reference.clone(),
                title: c.title.clone(),
                applicable,
                justification: Some(r.get(2)?),
                untraceable: untraceable(applicable, linked.len(), requirement.as_deref()),
                stale_evidence: applicable == Some(true) && stale_evidence(status, &evidence, today, max_age_days),
                status,
                implementation: r.get(4)?,
                owner: r.get(5)?,
                evidence,
                requirement,
                risk_assessment: r.get(8)?,
                risks: linked,
                version: r.get(9)?,
                updated_at: r.get(10)?,
                updated_by: r.get(11)?,
            })
        })
        .collect()
}

/// One control's SoA entry (`control` must be in the catalogue).
async fn load_entry(conn: &mut Conn<'_>, today: NaiveDate, max_age_days: u64, control: &str) -> Result<SoaEntry> {
    load_soa(conn, today, max_age_days, Some(control))
        .await?
        .pop()
        .ok_or_else(|| Error::Internal(format!("{control} is not in the catalogue")))
}

async fn load_version(conn: &mut Conn<'_>, number: Option<i64>) -> Result<Option<SoaVersion>> {
    const COLUMNS: &str = "SELECT number, approved_at, approved_by, note, entries FROM soa_versions";
    let row = match number {
        Some(n) => conn.fetch_optional(&format!("{COLUMNS} WHERE number = $1"), args![n]).await?,
        None => conn.fetch_optional(&format!("{COLUMNS} ORDER BY number DESC LIMIT 1"), args![]).await?,
    };
    let Some(r) = row else { return Ok(None) };
    let entries: Vec<SoaEntry> =
        serde_json::from_str(&r.get::<String>(4)?).map_err(|e| Error::Internal(format!("stored SoA version: {e}")))?;
    Ok(Some(SoaVersion { number: r.get(0)?, approved_at: r.get(1)?, approved_by: r.get(2)?, note: r.get(3)?, entries }))
}

impl Write {
    /// The whole SoA as it stands inside this write.
    pub async fn soa(&mut self, max_age_days: u64) -> Result<Vec<SoaEntry>> {
        let today = self.now().date_naive();
        load_soa(&mut self.conn(), today, max_age_days, None).await
    }

    /// One control's SoA entry inside this write.
    pub async fn soa_entry(&mut self, control: &str, max_age_days: u64) -> Result<SoaEntry> {
        let today = self.now().date_naive();
        load_entry(&mut self.conn(), today, max_age_days, control).await
    }

    /// The latest approved version, inside this write.
    pub async fn latest_soa_version(&mut self) -> Result<Option<SoaVersion>> {
        load_version(&mut self.conn(), None).await
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
        let evidence = json_text(&f.evidence)?;
        // Both statements take the same values; a new entry starts at version `expected + 1` = 1.
        let sql = if expected == 0 {
            "INSERT INTO soa_entries (applicable, justification, status, implementation, owner, evidence, \
             requirement, risk_assessment, updated_at, updated_by, control, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 + 1) ON CONFLICT DO NOTHING"
        } else {
            "UPDATE soa_entries SET applicable = $1, justification = $2, status = $3, implementation = $4, \
             owner = $5, evidence = $6, requirement = $7, risk_assessment = $8, version = version + 1, \
             updated_at = $9, updated_by = $10 WHERE control = $11 AND version = $12"
        };
        let (status, implementation) = (f.status.as_str(), f.implementation.as_deref());
        let (owner, requirement, assessment) =
            (f.owner.as_deref(), f.requirement.as_deref(), f.risk_assessment.as_deref());
        let values = args![
            applicable,
            f.justification,
            status,
            implementation,
            owner,
            evidence,
            requirement,
            assessment,
            now,
            actor,
            control,
            expected
        ];
        let affected = self.conn().execute(sql, values).await?;
        if affected == 1 {
            return Ok(());
        }
        let sql = "SELECT version FROM soa_entries WHERE control = $1";
        let current = self.conn().fetch_optional(sql, args![control]).await?.map(|r| r.get::<i64>(0)).transpose()?;
        Err(Error::Conflict {
            reference: format!("the SoA entry of {control}"),
            expected,
            current: current.unwrap_or(0),
        })
    }

    /// Freezes `entries` as the next approved version.
    pub async fn insert_soa_version(&mut self, actor: &str, note: Option<&str>, entries: &[SoaEntry]) -> Result<i64> {
        let number = self.next_number(RecordKind::SoaVersion).await?;
        let now = stamp(self.now());
        let sql =
            "INSERT INTO soa_versions (number, approved_at, approved_by, note, entries) VALUES ($1, $2, $3, $4, $5)";
        self.conn().execute(sql, args![number, now, actor, note, json_text(&entries)?]).await?;
        Ok(number)
    }
}

impl Reader {
    /// The whole SoA as it stands: 93 entries in catalogue order, undecided ones empty.
    pub async fn soa(&mut self, today: NaiveDate, max_age_days: u64) -> Result<Vec<SoaEntry>> {
        load_soa(&mut self.conn(), today, max_age_days, None).await
    }

    /// One control's SoA entry as it stands (`control` must be in the catalogue).
    pub async fn soa_entry(&mut self, control: &str, today: NaiveDate, max_age_days: u64) -> Result<SoaEntry> {
        load_entry(&mut self.conn(), today, max_age_days, control).await
    }

    /// An approved version, or the latest one with `None`.
    pub async fn soa_version(&mut self, number: Option<i64>) -> Result<Option<SoaVersion>> {
        load_version(&mut self.conn(), number).await
    }
}

impl Store {
    /// The whole SoA as it stands: 93 entries in catalogue order, undecided ones empty.
    pub async fn soa(&self, today: NaiveDate, max_age_days: u64) -> Result<Vec<SoaEntry>> {
        self.read().await?.soa(today, max_age_days).await
    }

    /// One control's SoA entry as it stands (`control` must be in the catalogue).
    pub async fn soa_entry(&self, control: &str, today: NaiveDate, max_age_days: u64) -> Result<SoaEntry> {
        self.read().await?.soa_entry(control, today, max_age_days).await
    }

    /// An approved version, or the latest one with `None`.
    pub async fn soa_version(&self, number: Option<i64>) -> Result<Option<SoaVersion>> {
        self.read().await?.soa_version(number).await
    }
}
