//! Risk rows and their links to controls (shared with the SoA).

use std::collections::HashMap;

use super::sql::{Bind, Cells, Conn, Value, args, json_text};
use super::{Reader, Store, Write};
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

fn risk_from_row(r: &impl Cells, controls: Vec<String>, m: Methodology) -> Result<Risk> {
    let likelihood: i64 = r.get(6)?;
    let impact: i64 = r.get(7)?;
    let residual_likelihood: Option<i64> = r.get(11)?;
    let residual_impact: Option<i64> = r.get(12)?;
    let treatment: crate::domain::risk::Treatment = r.get::<String>(9)?.parse()?;
    let score = likelihood * impact;
    let residual_score = match (residual_likelihood, residual_impact) {
        (Some(l), Some(i)) => Some(l * i),
        _ if treatment == crate::domain::risk::Treatment::Accept => Some(score),
        _ => None,
    };
    let properties: Vec<Property> =
        serde_json::from_str(&r.get::<String>(5)?).map_err(|e| Error::Internal(format!("stored properties: {e}")))?;
    Ok(Risk {
        reference: RecordRef::new(RecordKind::Risk, r.get(0)?).to_string(),
        title: r.get(1)?,
        asset: r.get(2)?,
        threat: r.get(3)?,
        vulnerability: r.get(4)?,
        properties,
        likelihood,
        impact,
        score,
        level: m.level(score),
        owner: r.get(8)?,
        treatment,
        treatment_plan: r.get(10)?,
        controls,
        residual_likelihood,
        residual_impact,
        residual_score,
        residual_level: residual_score.map(|s| m.level(s)),
        acceptable: residual_score.map(|s| m.acceptable(s)),
        accepted_by: r.get(13)?,
        accepted_at: r.get(14)?,
        version: r.get(15)?,
        created_at: r.get(16)?,
        created_by: r.get(17)?,
        updated_at: r.get(18)?,
        updated_by: r.get(19)?,
    })
}

async fn load_risk(conn: &mut Conn<'_>, number: i64, m: Methodology) -> Result<Option<Risk>> {
    let sql = format!("SELECT {COLUMNS} FROM risks WHERE number = $1");
    let Some(row) = conn.fetch_optional(&sql, args![number]).await? else {
        return Ok(None);
    };
    let rows =
        conn.fetch_all("SELECT control FROM risk_controls WHERE risk = $1 ORDER BY control", args![number]).await?;
    let controls = rows.iter().map(|r| r.get(0)).collect::<Result<Vec<String>>>()?;
    risk_from_row(&row, sort_controls(controls), m).map(Some)
}

/// Control refs in catalogue order (A.5.2 before A.5.10).
pub(crate) fn sort_controls(mut controls: Vec<String>) -> Vec<String> {
    let key =
        |c: &String| -> Vec<u32> { c.trim_start_matches("A.").split('.').filter_map(|p| p.parse().ok()).collect() };
    controls.sort_by_key(key);
    controls
}

/// A risk's fields, bound to `$1`–`$14` of its INSERT and its UPDATE.
fn risk_values<'a>(f: &'a RiskFields, properties: &'a str) -> Vec<Value<'a>> {
    let accepted = |part: fn(&(String, String)) -> &str| Value::Text(f.accepted.as_ref().map(part));
    vec![
        f.title.value(),
        f.asset.value(),
        f.threat.value(),
        f.vulnerability.value(),
        properties.value(),
        Value::Int(Some(f.likelihood.get())),
        Value::Int(Some(f.impact.get())),
        f.owner.value(),
        Value::Text(Some(f.treatment.as_str())),
        f.treatment_plan.value(),
        Value::Int(f.residual_likelihood.map(Rating::get)),
        Value::Int(f.residual_impact.map(Rating::get)),
        accepted(|a| &a.0),
        accepted(|a| &a.1),
    ]
}

impl Write {
    /// The risk with this number, read inside this write.
    pub async fn risk(&mut self, number: i64, m: Methodology) -> Result<Option<Risk>> {
        load_risk(&mut self.conn(), number, m).await
    }

    /// Inserts a risk with the next `RISK-n` number.
    pub async fn insert_risk(&mut self, actor: &str, f: &RiskFields, m: Methodology) -> Result<Risk> {
        let number = self.next_number(RecordKind::Risk).await?;
        let now = stamp(self.now());
        let properties = json_text(&f.properties)?;
        let mut values = risk_values(f, &properties);
        values.extend_from_slice(args![now, actor, number]);
        let sql = "INSERT INTO risks (title, asset, threat, vulnerability, properties, likelihood, impact, owner, \
             treatment, treatment_plan, residual_likelihood, residual_impact, accepted_by, accepted_at, \
             created_at, created_by, updated_at, updated_by, number, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $15, $16, $17, 1)";
        self.conn().execute(sql, &values).await?;
        self.set_risk_controls(number, &f.controls).await?;
        self.risk(number, m).await?.ok_or_else(|| Error::Internal(format!("RISK-{number} vanished")))
    }

    /// Replaces every field of a risk read at version `expected`.
    pub async fn update_risk(&mut self, actor: &str, number: i64, expected: i64, f: &RiskFields) -> Result<()> {
        let sql = "UPDATE risks SET title = $1, asset = $2, threat = $3, vulnerability = $4, properties = $5, \
             likelihood = $6, impact = $7, owner = $8, treatment = $9, treatment_plan = $10, \
             residual_likelihood = $11, residual_impact = $12, accepted_by = $13, accepted_at = $14, \
             version = version + 1, updated_at = $15, updated_by = $16 WHERE number = $17 AND version = $18";
        let properties = json_text(&f.properties)?;
        let r = RecordRef::new(RecordKind::Risk, number);
        self.versioned_update(sql, &risk_values(f, &properties), "risks", r, actor, expected).await?;
        self.set_risk_controls(number, &f.controls).await
    }

    async fn set_risk_controls(&mut self, number: i64, controls: &[String]) -> Result<()> {
        self.conn().execute("DELETE FROM risk_controls WHERE risk = $1", args![number]).await?;
        for c in controls {
            self.conn().execute("INSERT INTO risk_controls (control, risk) VALUES ($1, $2)", args![c, number]).await?;
        }
        Ok(())
    }

    /// Replaces the risks linked to one control (the SoA side of the same links).
    pub async fn set_control_risks(&mut self, control: &str, risks: &[i64]) -> Result<()> {
        self.conn().execute("DELETE FROM risk_controls WHERE control = $1", args![control]).await?;
        for r in risks {
            self.conn()
                .execute("INSERT INTO risk_controls (control, risk) VALUES ($1, $2)", args![control, *r])
                .await?;
        }
        Ok(())
    }

    /// Which of these risk numbers exist.
    pub async fn existing_risks(&mut self, numbers: &[i64]) -> Result<Vec<i64>> {
        if numbers.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Value> = numbers.iter().map(Bind::value).collect();
        let placeholders: Vec<String> = (1..=values.len()).map(|i| format!("${i}")).collect();
        let sql = format!("SELECT number FROM risks WHERE number IN ({})", placeholders.join(", "));
        let rows = self.conn().fetch_all(&sql, &values).await?;
        rows.iter().map(|r| r.get::<i64>(0)).collect()
    }
}

impl Reader {
    /// The risk with this number, if any.
    pub async fn risk(&mut self, number: i64, m: Methodology) -> Result<Option<Risk>> {
        load_risk(&mut self.conn(), number, m).await
    }

    /// Every risk, by number, read at once (one statement on PostgreSQL), whatever their number.
    pub async fn risks(&mut self, m: Methodology) -> Result<Vec<Risk>> {
        let all = format!("SELECT {COLUMNS} FROM risks ORDER BY number");
        let links = "SELECT risk, control FROM risk_controls ORDER BY risk, control";
        let parts = self.conn().fetch_parts(&[(&all, args![]), (links, args![])]).await?;
        let [risks, links] = &parts[..] else {
            return Err(Error::Internal(format!("risks are read in 2 parts, not {}", parts.len())));
        };
        let mut controls: HashMap<i64, Vec<String>> = HashMap::new();
        for l in links {
            controls.entry(l.get(0)?).or_default().push(l.get(1)?);
        }
        let mut all = risks
            .iter()
            .map(|r| {
                let number: i64 = r.get(0)?;
                Ok((number, risk_from_row(r, sort_controls(controls.remove(&number).unwrap_or_default()), m)?))
            })
            .collect::<Result<Vec<_>>>()?;
        // By number here as well, not by how PostgreSQL aggregates a sorted subquery.
        all.sort_unstable_by_key(|(number, _)| *number);
        Ok(all.into_iter().map(|(_, r)| r).collect())
    }
}

impl Store {
    /// Every risk, by number, in one state of the database.
    pub async fn risks(&self, m: Methodology) -> Result<Vec<Risk>> {
        self.reads().await?.risks(m).await
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
