//! Nonconformity rows.

use chrono::NaiveDate;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Arg, Store, Write, query_with};
use crate::domain::nonconformity::{NcStatus, NewNonconformity, Nonconformity, Severity, Source, is_overdue};
use crate::domain::references::{ControlRef, RecordKind, RecordRef};
use crate::domain::time::{date, stamp};
use crate::error::{Error, Result};

const COLUMNS: &str = "number, title, description, severity, source, status, clauses, controls, detected_in, evidence, \
                       correction, due_date, version, created_at, created_by, updated_at, updated_by";

/// What `list_nonconformities` narrows by; every set field must match.
#[derive(Debug, Clone)]
pub struct NcFilter {
    /// Status.
    pub status: Option<NcStatus>,
    /// Severity.
    pub severity: Option<Severity>,
    /// Source.
    pub source: Option<Source>,
    /// A control the nonconformity cites.
    pub control: Option<ControlRef>,
    /// Only overdue ones.
    pub overdue: bool,
    /// Text in the title or description (case-insensitive).
    pub text: Option<String>,
    /// Only numbers below this (the cursor).
    pub before: Option<i64>,
    /// Page size.
    pub limit: i64,
    /// The date that decides overdue.
    pub today: NaiveDate,
}

fn json_list(field: &str, raw: &str) -> Result<Vec<String>> {
    serde_json::from_str(raw).map_err(|e| Error::Internal(format!("stored {field} is not a JSON list: {e}")))
}

fn from_row(r: &AnyRow, today: NaiveDate) -> Result<Nonconformity> {
    let number: i64 = r.try_get(0)?;
    let severity: String = r.try_get(3)?;
    let source: String = r.try_get(4)?;
    let status: NcStatus = r.try_get::<String, _>(5)?.parse()?;
    let due_date: Option<String> = r.try_get(11)?;
    let due = due_date.as_deref().and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    Ok(Nonconformity {
        reference: RecordRef::new(RecordKind::Nonconformity, number).to_string(),
        title: r.try_get(1)?,
        description: r.try_get(2)?,
        severity: severity.parse()?,
        source: source.parse()?,
        status,
        clauses: json_list("clauses", &r.try_get::<String, _>(6)?)?,
        controls: json_list("controls", &r.try_get::<String, _>(7)?)?,
        detected_in: r.try_get(8)?,
        evidence: json_list("evidence", &r.try_get::<String, _>(9)?)?,
        correction: r.try_get(10)?,
        overdue: is_overdue(status, due, today),
        due_date,
        version: r.try_get(12)?,
        created_at: r.try_get(13)?,
        created_by: r.try_get(14)?,
        updated_at: r.try_get(15)?,
        updated_by: r.try_get(16)?,
    })
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
fn like_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

impl Write {
    /// Inserts a new nonconformity with the next `NC-n` number.
    pub async fn insert_nonconformity(&mut self, actor: &str, nc: &NewNonconformity) -> Result<Nonconformity> {
        let number = self.next_number(RecordKind::Nonconformity).await?;
        let now = stamp(self.now());
        let clauses: Vec<&str> = nc.clauses.iter().map(|c| c.as_str()).collect();
        let controls: Vec<&str> = nc.controls.iter().map(|c| c.as_str()).collect();
        let sql = format!(
            "INSERT INTO nonconformities ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1, $13, $14, $13, $14) RETURNING {COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(number)
            .bind(&nc.title)
            .bind(&nc.description)
            .bind(nc.severity.as_str())
            .bind(nc.source.as_str())
            .bind(nc.initial_status().as_str())
            .bind(serde_json::to_string(&clauses).map_err(|e| Error::Internal(e.to_string()))?)
            .bind(serde_json::to_string(&controls).map_err(|e| Error::Internal(e.to_string()))?)
            .bind(nc.detected_in.as_deref())
            .bind(serde_json::to_string(&nc.evidence).map_err(|e| Error::Internal(e.to_string()))?)
            .bind(nc.correction.as_deref())
            .bind(nc.due_date.map(date))
            .bind(&now)
            .bind(actor)
            .fetch_one(&mut **self.tx())
            .await?;
        for control in &controls {
            sqlx::query("INSERT INTO nc_controls (control, nc) VALUES ($1, $2)")
                .bind(*control)
                .bind(number)
                .execute(&mut **self.tx())
                .await?;
        }
        from_row(&row, self.now().date_naive())
    }
}

impl Store {
    /// The nonconformity with this number, if any.
    pub async fn nonconformity(&self, number: i64, today: NaiveDate) -> Result<Option<Nonconformity>> {
        let sql = format!("SELECT {COLUMNS} FROM nonconformities WHERE number = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(number).fetch_optional(self.pool()).await?;
        row.as_ref().map(|r| from_row(r, today)).transpose()
    }

    /// Nonconformities matching `filter`, newest first, at most `filter.limit`.
    pub async fn nonconformities(&self, filter: &NcFilter) -> Result<Vec<Nonconformity>> {
        let mut conditions: Vec<String> = Vec::new();
        let mut args: Vec<Arg> = Vec::new();
        let bind = |args: &mut Vec<Arg>, a: Arg| {
            args.push(a);
            format!("${}", args.len())
        };
        if let Some(s) = filter.status {
            conditions.push(format!("status = {}", bind(&mut args, Arg::Text(s.as_str().into()))));
        }
        if let Some(s) = filter.severity {
            conditions.push(format!("severity = {}", bind(&mut args, Arg::Text(s.as_str().into()))));
        }
        if let Some(s) = filter.source {
            conditions.push(format!("source = {}", bind(&mut args, Arg::Text(s.as_str().into()))));
        }
        if let Some(c) = &filter.control {
            let p = bind(&mut args, Arg::Text(c.as_str().into()));
            conditions.push(format!("number IN (SELECT nc FROM nc_controls WHERE control = {p})"));
        }
        if filter.overdue {
            let p = bind(&mut args, Arg::Text(date(filter.today)));
            conditions.push(format!("status <> 'closed' AND due_date IS NOT NULL AND due_date < {p}"));
        }
        if let Some(t) = &filter.text {
            let p = bind(&mut args, Arg::Text(like_pattern(t)));
            conditions.push(format!("(LOWER(title) LIKE {p} ESCAPE '\\' OR LOWER(description) LIKE {p} ESCAPE '\\')"));
        }
        if let Some(before) = filter.before {
            conditions.push(format!("number < {}", bind(&mut args, Arg::Int(before))));
        }
        let limit = bind(&mut args, Arg::Int(filter.limit));
        let where_clause =
            if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
        let sql = format!("SELECT {COLUMNS} FROM nonconformities {where_clause} ORDER BY number DESC LIMIT {limit}");
        let rows = query_with(sql, args).fetch_all(self.pool()).await?;
        rows.iter().map(|r| from_row(r, filter.today)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("Secret"), "%secret%");
        assert_eq!(like_pattern("100%_a\\b"), "%100\\%\\_a\\\\b%");
    }
}
