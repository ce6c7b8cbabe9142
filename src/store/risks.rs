//! Risk rows and their links to controls (shared with the SoA).

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{Arg, Store, Write, query_with};
use crate::domain::references::{RecordKind, RecordRef};
use crate::domain::risk::{Methodology, Property, Rating, Risk};
use crate::domain::time::stamp;
use crate::error::{Error, Result};

const COLUMNS: &str = "number, title, asset, threat, vulnerability, properties, likelihood, impact, owner, treatment, \
    treatment_plan, residual_likelihood, residual_impact, accepted_by, accepted_at, version, created_at, created_by, \
    updated_at, updated_by";

/// The stored fields of a risk, as an operation sets them.
#[derive(Debug, Clone)]
pub struct RiskFields {
    /// Short name.
    pub title: String,
    /// Asset or process.
    pub asset: String,
    /// Threat.
    pub threat: String,
    /// Vulnerability.
    pub vulnerability: String,
    /// Properties threatened.
    pub properties: Vec<Property>,
    /// Likelihood.
    pub likelihood: Rating,
    /// Impact.
    pub impact: Rating,
    /// Owner.
    pub owner: String,
    /// Treatment option.
    pub treatment: crate::domain::risk::Treatment,
    /// Treatment plan.
    pub treatment_plan: Option<String>,
    /// Controls that treat it (canonical refs).
    pub controls: Vec<String>,
    /// Residual likelihood.
    pub residual_likelihood: Option<Rating>,
    /// Residual impact.
    pub residual_impact: Option<Rating>,
    /// Who accepted the residual risk, and when.
    pub accepted: Option<(String, String)>,
}

fn risk_from_row(r: &AnyRow, controls: Vec<String>, m: Methodology) -> Result<Risk> {
    let likelihood: i64 = r.try_get(6)?;
    let impact: i64 = r.try_get(7)?;
    let residual_likelihood: Option<i64> = r.try_get(11)?;
    let residual_impact: Option<i64> = r.try_get(12)?;
    let treatment: crate::domain::risk::Treatment = r.try_get::<String, _>(9)?.parse()?;
    let score = likelihood * impact;
    let residual_score = match (residual_likelihood, residual_impact) {
        (Some(l), Some(i)) => Some(l * i),
        _ if treatment == crate::domain::risk::Treatment::Accept => Some(score),
        _ => None,
    };
    let properties: Vec<Property> = serde_json::from_str(&r.try_get::<String, _>(5)?)
        .map_err(|e| Error::Internal(format!("stored properties: {e}")))?;
    Ok(Risk {
        reference: RecordRef::new(RecordKind::Risk, r.try_get(0)?).to_string(),
        title: r.try_get(1)?,
        asset: r.try_get(2)?,
        threat: r.try_get(3)?,
        vulnerability: r.try_get(4)?,
        properties,
        likelihood,
        impact,
        score,
        level: m.level(score),
        owner: r.try_get(8)?,
        treatment,
        treatment_plan: r.try_get(10)?,
        controls,
        residual_likelihood,
        residual_impact,
        residual_score,
        residual_level: residual_score.map(|s| m.level(s)),
        acceptable: residual_score.map(|s| m.acceptable(s)),
        accepted_by: r.try_get(13)?,
        accepted_at: r.try_get(14)?,
        version: r.try_get(15)?,
        created_at: r.try_get(16)?,
        created_by: r.try_get(17)?,
        updated_at: r.try_get(18)?,
        updated_by: r.try_get(19)?,
    })
}

async fn load_risk(conn: &mut AnyConnection, number: i64, m: Methodology) -> Result<Option<Risk>> {
    let sql = format!("SELECT {COLUMNS} FROM risks WHERE number = $1");
    let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(number).fetch_optional(&mut *conn).await? else {
        return Ok(None);
    };
    let controls: Vec<String> =
        sqlx::query_scalar("SELECT control FROM risk_controls WHERE risk = $1 ORDER BY control")
            .bind(number)
            .fetch_all(&mut *conn)
            .await?;
    risk_from_row(&row, sort_controls(controls), m).map(Some)
}

/// Control refs in catalogue order (A.5.2 before A.5.10).
pub(crate) fn sort_controls(mut controls: Vec<String>) -> Vec<String> {
    let key =
        |c: &String| -> Vec<u32> { c.trim_start_matches("A.").split('.').filter_map(|p| p.parse().ok()).collect() };
    controls.sort_by_key(key);
    controls
}

fn properties_json(p: &[Property]) -> Result<String> {
    serde_json::to_string(p).map_err(|e| Error::Internal(e.to_string()))
}

impl Write {
    /// The risk with this number, read inside this write.
    pub async fn risk(&mut self, number: i64, m: Methodology) -> Result<Option<Risk>> {
        load_risk(self.tx(), number, m).await
    }

    /// Inserts a risk with the next `RISK-n` number.
    pub async fn insert_risk(&mut self, actor: &str, f: &RiskFields, m: Methodology) -> Result<Risk> {
        let number = self.next_number(RecordKind::Risk).await?;
        let now = stamp(self.now());
        sqlx::query(
            "INSERT INTO risks (number, title, asset, threat, vulnerability, properties, likelihood, impact, owner, \
             treatment, treatment_plan, residual_likelihood, residual_impact, accepted_by, accepted_at, version, \
             created_at, created_by, updated_at, updated_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 1, $16, $17, $16, $17)",
        )
        .bind(number)
        .bind(&f.title)
        .bind(&f.asset)
        .bind(&f.threat)
        .bind(&f.vulnerability)
        .bind(properties_json(&f.properties)?)
        .bind(f.likelihood.get())
        .bind(f.impact.get())
        .bind(&f.owner)
        .bind(f.treatment.as_str())
        .bind(f.treatment_plan.as_deref())
        .bind(f.residual_likelihood.map(Rating::get))
        .bind(f.residual_impact.map(Rating::get))
        .bind(f.accepted.as_ref().map(|a| a.0.clone()))
        .bind(f.accepted.as_ref().map(|a| a.1.clone()))
        .bind(&now)
        .bind(actor)
        .execute(&mut **self.tx())
        .await?;
        self.set_risk_controls(number, &f.controls).await?;
        self.risk(number, m).await?.ok_or_else(|| Error::Internal(format!("RISK-{number} vanished")))
    }

    /// Replaces every field of a risk read at version `expected`.
    pub async fn update_risk(&mut self, actor: &str, number: i64, expected: i64, f: &RiskFields) -> Result<()> {
        let query = sqlx::query(
            "UPDATE risks SET title = $1, asset = $2, threat = $3, vulnerability = $4, properties = $5, \
             likelihood = $6, impact = $7, owner = $8, treatment = $9, treatment_plan = $10, \
             residual_likelihood = $11, residual_impact = $12, accepted_by = $13, accepted_at = $14, \
             version = version + 1, updated_at = $15, updated_by = $16 WHERE number = $17 AND version = $18",
        )
        .bind(f.title.clone())
        .bind(f.asset.clone())
        .bind(f.threat.clone())
        .bind(f.vulnerability.clone())
        .bind(properties_json(&f.properties)?)
        .bind(f.likelihood.get())
        .bind(f.impact.get())
        .bind(f.owner.clone())
        .bind(f.treatment.as_str())
        .bind(f.treatment_plan.clone())
        .bind(f.residual_likelihood.map(Rating::get))
        .bind(f.residual_impact.map(Rating::get))
        .bind(f.accepted.as_ref().map(|a| a.0.clone()))
        .bind(f.accepted.as_ref().map(|a| a.1.clone()));
        self.versioned_update(query, "risks", RecordRef::new(RecordKind::Risk, number), actor, expected).await?;
        self.set_risk_controls(number, &f.controls).await
    }

    async fn set_risk_controls(&mut self, number: i64, controls: &[String]) -> Result<()> {
        sqlx::query("DELETE FROM risk_controls WHERE risk = $1").bind(number).execute(&mut **self.tx()).await?;
        for c in controls {
            sqlx::query("INSERT INTO risk_controls (control, risk) VALUES ($1, $2)")
                .bind(c)
                .bind(number)
                .execute(&mut **self.tx())
                .await?;
        }
        Ok(())
    }

    /// Replaces the risks linked to one control (the SoA side of the same links).
    pub async fn set_control_risks(&mut self, control: &str, risks: &[i64]) -> Result<()> {
        sqlx::query("DELETE FROM risk_controls WHERE control = $1").bind(control).execute(&mut **self.tx()).await?;
        for r in risks {
            sqlx::query("INSERT INTO risk_controls (control, risk) VALUES ($1, $2)")
                .bind(control)
                .bind(*r)
                .execute(&mut **self.tx())
                .await?;
        }
        Ok(())
    }

    /// Which of these risk numbers exist.
    pub async fn existing_risks(&mut self, numbers: &[i64]) -> Result<Vec<i64>> {
        if numbers.is_empty() {
            return Ok(Vec::new());
        }
        let args: Vec<Arg> = numbers.iter().map(|n| Arg::Int(*n)).collect();
        let placeholders: Vec<String> = (1..=args.len()).map(|i| format!("${i}")).collect();
        let sql = format!("SELECT number FROM risks WHERE number IN ({})", placeholders.join(", "));
        let rows = query_with(sql, args).fetch_all(&mut **self.tx()).await?;
        rows.iter().map(|r| Ok(r.try_get::<i64, _>(0)?)).collect()
    }
}

impl Store {
    /// The risk with this number, if any.
    pub async fn risk(&self, number: i64, m: Methodology) -> Result<Option<Risk>> {
        let mut conn = self.pool().acquire().await?;
        load_risk(&mut conn, number, m).await
    }
}

#[cfg(test)]
mod tests {
    use super::sort_controls;

    #[test]
    fn controls_sort_in_catalogue_order() {
        let sorted = sort_controls(vec!["A.8.2".into(), "A.5.10".into(), "A.5.2".into()]);
        assert_eq!(sorted, ["A.5.2", "A.5.10", "A.8.2"]);
    }
}
