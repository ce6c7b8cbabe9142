//! Nonconformity rows, their corrective actions and effectiveness reviews.

use chrono::NaiveDate;

use super::audit::{HISTORY, entries};
use super::changes::{CHANGE_REQUESTS_OF_CA, CHANGE_REQUESTS_OF_NC, change_request_refs};
use super::sql::{Bind, Cells, Conn, Row, Value, args, json_text};
use super::{Arg, Conditions, InFull, Reader, Store, Write};
use crate::domain::corrective_action::{CaStatus, CorrectiveAction};
use crate::domain::nonconformity::{
    Analysis, EffectivenessReview, NcStatus, NewNonconformity, Nonconformity, Severity, Source, is_overdue,
};
use crate::domain::references::{ControlRef, RecordKind, RecordRef};
use crate::domain::similarity::{CLOSURES_FOLLOWED, Known, Observed, Refresh, Seen, Similar};
use crate::domain::time::{date, stamp};
use crate::error::{Error, Result};

const NC_COLUMNS: &str = "number, title, description, severity, source, status, clauses, controls, detected_in, \
    evidence, correction, due_date, version, created_at, created_by, updated_at, updated_by, consequences, \
    similar_at_logging, recurrence_of, analysis, round, isms_changes, closed_at, closed_by";

const CA_COLUMNS: &str = "number, nc, round, description, owner, due_date, status, progress, evidence, version, \
    created_at, created_by, updated_at, updated_by";

/// The columns a new nonconformity sets, and their values: `$1` is the number (given, or taken
/// from the counters inside the statement), `$8` the controls as a JSON array.
macro_rules! insert_nc {
    ($number:literal, $from:literal) => {
        concat!(
            "INSERT INTO nonconformities (number, title, description, severity, source, status, clauses, controls, ",
            "detected_in, evidence, correction, due_date, version, created_at, created_by, updated_at, updated_by, ",
            "similar_at_logging, recurrence_of, audit) SELECT ",
            $number,
            ", $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1, $13, $14, $13, $14, $15, $16, $17",
            $from
        )
    };
}

/// A new nonconformity whose number `$1` is given (its controls are inserted one by one).
const INSERT_NC: &str = insert_nc!("$1", "");

/// PostgreSQL: the next number of counter `$1`, the new nonconformity and its controls in
/// one statement (one round trip); returns the number.
const INSERT_NC_POSTGRES: &str = concat!(
    "WITH n AS (UPDATE counters SET last = last + 1 WHERE kind = $1 RETURNING last), nc AS (",
    insert_nc!("n.last", " FROM n RETURNING number"),
    "), c AS (INSERT INTO nc_controls (control, nc) SELECT control, nc.number FROM nc, json_array_elements_text($8::json) AS control) ",
    "SELECT number FROM nc"
);

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
    /// Only overdue ones (the nonconformity or one of its actions).
    pub overdue: bool,
    /// Only those whose actions are done and await an effectiveness review.
    pub awaiting_review: bool,
    /// Text in the title or description (case-insensitive).
    pub text: Option<String>,
    /// Only numbers below this (the cursor).
    pub before: Option<i64>,
    /// Page size.
    pub limit: i64,
    /// The date that decides overdue.
    pub today: NaiveDate,
}

/// The changes of a 10.2 step to a nonconformity row.
#[derive(Debug, Clone, Default)]
pub struct NcUpdate {
    /// New status.
    pub status: Option<NcStatus>,
    /// Correction (10.2 a), when given with the analysis.
    pub correction: Option<String>,
    /// Consequences (10.2 a).
    pub consequences: Option<String>,
    /// The analysis (10.2 b).
    pub analysis: Option<Analysis>,
    /// Next round of action after an ineffective review.
    pub round: Option<i64>,
    /// ISMS changes, at closing (10.2 e).
    pub isms_changes: Option<String>,
    /// Closing.
    pub closed: bool,
}

fn json_list<T: serde::de::DeserializeOwned>(field: &str, raw: &str) -> Result<Vec<T>> {
    serde_json::from_str(raw).map_err(|e| Error::Internal(format!("stored {field} is not a JSON list: {e}")))
}

fn parse_day(raw: Option<&str>) -> Option<NaiveDate> {
    raw.and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
}

fn nc_from_row(r: &impl Cells, today: NaiveDate) -> Result<Nonconformity> {
    let number: i64 = r.get(0)?;
    let status: NcStatus = r.get::<String>(5)?.parse()?;
    let due_date: Option<String> = r.get(11)?;
    let analysis: Option<String> = r.get(20)?;
    let analysis: Option<Analysis> = analysis
        .map(|a| serde_json::from_str(&a).map_err(|e| Error::Internal(format!("stored analysis: {e}"))))
        .transpose()?;
    let mut nc = Nonconformity {
        reference: RecordRef::new(RecordKind::Nonconformity, number).to_string(),
        title: r.get(1)?,
        description: r.get(2)?,
        severity: r.get::<String>(3)?.parse()?,
        source: r.get::<String>(4)?.parse()?,
        status,
        next_step: None,
        clauses: json_list("clauses", &r.get::<String>(6)?)?,
        controls: json_list("controls", &r.get::<String>(7)?)?,
        detected_in: r.get(8)?,
        evidence: json_list("evidence", &r.get::<String>(9)?)?,
        correction: r.get(10)?,
        overdue: is_overdue(status, parse_day(due_date.as_deref()), today),
        due_date,
        version: r.get(12)?,
        created_at: r.get(13)?,
        created_by: r.get(14)?,
        updated_at: r.get(15)?,
        updated_by: r.get(16)?,
        consequences: r.get(17)?,
        similar: json_list::<Similar>("similar", &r.get::<String>(18)?)?,
        recurrence_of: json_list("recurrence_of", &r.get::<String>(19)?)?,
        analysis,
        actions: Vec::new(),
        reviews: Vec::new(),
        round: r.get(21)?,
        isms_changes: r.get(22)?,
        closed_at: r.get(23)?,
        closed_by: r.get(24)?,
    };
    nc.next_step = nc.gate().next_step().map(str::to_owned);
    Ok(nc)
}

fn ca_from_row(r: &impl Cells, nc_open: bool, today: NaiveDate) -> Result<CorrectiveAction> {
    let status: CaStatus = r.get::<String>(6)?.parse()?;
    let due_date: String = r.get(5)?;
    Ok(CorrectiveAction {
        reference: RecordRef::new(RecordKind::CorrectiveAction, r.get(0)?).to_string(),
        nonconformity: RecordRef::new(RecordKind::Nonconformity, r.get(1)?).to_string(),
        round: r.get(2)?,
        description: r.get(3)?,
        owner: r.get(4)?,
        overdue: nc_open && status != CaStatus::Done && parse_day(Some(&due_date)).is_some_and(|d| d < today),
        due_date,
        status,
        progress: r.get(7)?,
        evidence: json_list("evidence", &r.get::<String>(8)?)?,
        version: r.get(9)?,
        created_at: r.get(10)?,
        created_by: r.get(11)?,
        updated_at: r.get(12)?,
        updated_by: r.get(13)?,
    })
}

/// The statements that read a nonconformity, `$1` its number: its row, its corrective actions
/// and its effectiveness reviews.
fn nc_statements() -> [String; 3] {
    [
        format!("SELECT {NC_COLUMNS} FROM nonconformities WHERE number = $1"),
        format!("SELECT {CA_COLUMNS} FROM corrective_actions WHERE nc = $1 ORDER BY number"),
        "SELECT round, result, evidence, notes, reviewer, at FROM effectiveness_reviews WHERE nc = $1 ORDER BY id"
            .to_owned(),
    ]
}

/// A nonconformity from the rows the [`nc_statements`] read: its own, then the other parts.
fn nc_from_rows(nc: &Row, parts: &[Vec<Row>], today: NaiveDate) -> Result<Nonconformity> {
    let [actions, reviews] = parts else {
        return Err(Error::Internal(format!("a nonconformity is read in 3 parts, not {}", parts.len() + 1)));
    };
    let mut nc = nc_from_row(nc, today)?;
    let open = nc.status.is_open();
    nc.actions = actions.iter().map(|r| ca_from_row(r, open, today)).collect::<Result<_>>()?;
    nc.overdue = nc.overdue || nc.actions.iter().any(|a| a.overdue);
    nc.reviews = reviews
        .iter()
        .map(|r| {
            Ok(EffectivenessReview {
                round: r.get(0)?,
                result: r.get::<String>(1)?.parse()?,
                evidence: json_list("evidence", &r.get::<String>(2)?)?,
                notes: r.get(3)?,
                reviewer: r.get(4)?,
                at: r.get(5)?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(nc)
}

/// Loads a nonconformity with its actions and reviews through one connection (a pool
/// connection for reads, the write's transaction for a read-decide-write).
async fn load_nc(conn: &mut Conn<'_>, number: i64, today: NaiveDate) -> Result<Option<Nonconformity>> {
    let [nc, actions, reviews] = nc_statements();
    let rows = conn.fetch_parts(&[(&nc, args![number]), (&actions, args![number]), (&reviews, args![number])]).await?;
    let Some((nc, parts)) = rows.split_first() else {
        return Err(Error::Internal("a nonconformity is read in 3 parts, not 0".into()));
    };
    nc.first().map(|nc| nc_from_rows(nc, parts, today)).transpose()
}

/// The statement that reads a corrective action, `$1` its number, with its nonconformity's
/// status as the last column.
fn ca_statement() -> String {
    format!(
        "SELECT {}, n.status FROM corrective_actions ca JOIN nonconformities n ON n.number = ca.nc WHERE ca.number = $1",
        CA_COLUMNS.split(", ").map(|c| format!("ca.{c}")).collect::<Vec<_>>().join(", ")
    )
}

/// A corrective action from the row [`ca_statement`] read.
fn ca_from_joined_row(row: &Row, today: NaiveDate) -> Result<CorrectiveAction> {
    let nc_status: NcStatus = row.get::<String>(14)?.parse()?;
    ca_from_row(row, nc_status.is_open(), today)
}

async fn load_ca(conn: &mut Conn<'_>, number: i64, today: NaiveDate) -> Result<Option<CorrectiveAction>> {
    conn.fetch_optional(&ca_statement(), args![number]).await?.map(|row| ca_from_joined_row(&row, today)).transpose()
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

/// Fails with a conflict (or not found) when an update matched no row at `expected`.
async fn check_updated(
    conn: &mut Conn<'_>,
    affected: u64,
    table: &'static str,
    reference: RecordRef,
    expected: i64,
) -> Result<()> {
    if affected == 1 {
        return Ok(());
    }
    let sql = format!("SELECT version FROM {table} WHERE number = $1");
    let current = conn.fetch_optional(&sql, args![reference.number]).await?;
    match current.map(|r| r.get::<i64>(0)).transpose()? {
        Some(current) => Err(Error::Conflict { reference: reference.to_string(), expected, current }),
        None => Err(Error::not_found(reference.to_string(), "check the reference")),
    }
}

impl Write {
    /// Inserts a new nonconformity with the next `NC-n` number.
    pub async fn insert_nonconformity(
        &mut self,
        actor: &str,
        nc: &NewNonconformity,
        similar: &[Similar],
        recurrence_of: &[String],
        audit: Option<i64>,
    ) -> Result<Nonconformity> {
        let now = stamp(self.now());
        let clauses: Vec<&str> = nc.clauses.iter().map(|c| c.as_str()).collect();
        let controls: Vec<&str> = nc.controls.iter().map(|c| c.as_str()).collect();
        let (clauses, controls_json) = (json_text(&clauses)?, json_text(&controls)?);
        let (evidence, similar_json, recurrence) =
            (json_text(&nc.evidence)?, json_text(&similar)?, json_text(&recurrence_of)?);
        let on_postgres = self.on_postgres();
        // PostgreSQL takes the number, inserts the row and its controls in one statement: the
        // counter's row lock is held from there to the commit.
        let number = if on_postgres { None } else { Some(self.next_number(RecordKind::Nonconformity).await?) };
        let first = match number {
            Some(n) => Value::Int(Some(n)),
            None => Value::Text(Some(RecordKind::Nonconformity.prefix())),
        };
        let due = nc.due_date.map(date);
        fn text(t: &str) -> Value<'_> {
            Value::Text(Some(t))
        }
        let values = [
            first,
            text(&nc.title),
            text(&nc.description),
            text(nc.severity.as_str()),
            text(nc.source.as_str()),
            text(nc.initial_status().as_str()),
            text(&clauses),
            text(&controls_json),
            Value::Text(nc.detected_in.as_deref()),
            text(&evidence),
            Value::Text(nc.correction.as_deref()),
            Value::Text(due.as_deref()),
            text(&now),
            text(actor),
            text(&similar_json),
            text(&recurrence),
            Value::Int(audit),
        ];
        let mut conn = self.conn();
        let number = match number {
            Some(number) => {
                conn.execute(INSERT_NC, &values).await?;
                for control in &controls {
                    conn.execute("INSERT INTO nc_controls (control, nc) VALUES ($1, $2)", args![control, number])
                        .await?;
                }
                number
            }
            None => conn.fetch_one(INSERT_NC_POSTGRES, &values).await?.get(0)?,
        };
        let today = self.now().date_naive();
        Ok(nc.logged(number, &now, actor, similar.to_vec(), recurrence_of.to_vec(), today))
    }

    /// A nonconformity read inside this write, for deciding on it.
    pub async fn nonconformity(&mut self, number: i64) -> Result<Option<Nonconformity>> {
        let today = self.now().date_naive();
        load_nc(&mut self.conn(), number, today).await
    }

    /// Takes the nonconformity's row lock (PostgreSQL; SQLite's writer lock already holds),
    /// so decisions about its actions as a whole see every other writer's committed change.
    pub async fn lock_nonconformity(&mut self, number: i64) -> Result<()> {
        self.conn().execute("UPDATE nonconformities SET version = version WHERE number = $1", args![number]).await?;
        Ok(())
    }

    /// A corrective action read inside this write.
    pub async fn corrective_action(&mut self, number: i64) -> Result<Option<CorrectiveAction>> {
        let today = self.now().date_naive();
        load_ca(&mut self.conn(), number, today).await
    }

    /// Applies a 10.2 step to a nonconformity read at version `expected`.
    pub async fn update_nonconformity(&mut self, actor: &str, number: i64, expected: i64, u: &NcUpdate) -> Result<()> {
        let now = stamp(self.now());
        let analysis = u.analysis.as_ref().map(json_text).transpose()?;
        let action_needed = u.analysis.as_ref().map(|a| i64::from(a.action_needed));
        let sql = "UPDATE nonconformities SET \
               status = COALESCE($1, status), correction = COALESCE($2, correction), \
               consequences = COALESCE($3, consequences), analysis = COALESCE($4, analysis), \
               action_needed = COALESCE($5, action_needed), round = COALESCE($6, round), \
               isms_changes = COALESCE($7, isms_changes), closed_at = COALESCE($8, closed_at), \
               closed_by = COALESCE($9, closed_by), \
               version = version + 1, updated_at = $10, updated_by = $11 \
             WHERE number = $12 AND version = $13";
        let r = RecordRef::new(RecordKind::Nonconformity, number);
        let status = u.status.map(NcStatus::as_str);
        let (closed_at, closed_by) = (u.closed.then_some(now.as_str()), u.closed.then_some(actor));
        let values = args![
            status,
            u.correction,
            u.consequences,
            analysis,
            action_needed,
            u.round,
            u.isms_changes,
            closed_at,
            closed_by
        ];
        self.versioned_update(sql, values, "nonconformities", r, actor, expected).await
    }

    /// Runs an update whose last four placeholders are `updated_at`, `updated_by`, the row's
    /// number and the version the caller read; no row matched means a conflict (or none).
    pub(crate) async fn versioned_update(
        &mut self,
        sql: &str,
        values: &[Value<'_>],
        table: &'static str,
        r: RecordRef,
        actor: &str,
        expected: i64,
    ) -> Result<()> {
        let now = stamp(self.now());
        let mut all = values.to_vec();
        all.extend_from_slice(args![now, actor, r.number, expected]);
        let mut conn = self.conn();
        let affected = conn.execute(sql, &all).await?;
        check_updated(&mut conn, affected, table, r, expected).await
    }

    /// Inserts a corrective action with the next `CA-n` number.
    pub async fn insert_corrective_action(
        &mut self,
        actor: &str,
        nc: &Nonconformity,
        description: &str,
        owner: &str,
        due_date: NaiveDate,
    ) -> Result<CorrectiveAction> {
        let number = self.next_number(RecordKind::CorrectiveAction).await?;
        let nc_number = RecordRef::parse("ref", &nc.reference)?.number;
        let now = stamp(self.now());
        self.conn()
            .execute(
                "INSERT INTO corrective_actions (number, nc, round, description, owner, due_date, status, evidence, \
                 version, created_at, created_by, updated_at, updated_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'planned', '[]', 1, $7, $8, $7, $8)",
                args![number, nc_number, nc.round, description, owner, date(due_date), now, actor],
            )
            .await?;
        self.corrective_action(number).await?.ok_or_else(|| Error::Internal(format!("CA-{number} vanished")))
    }

    /// Records progress on a corrective action read at version `expected`.
    pub async fn update_corrective_action(
        &mut self,
        actor: &str,
        number: i64,
        expected: i64,
        status: CaStatus,
        progress: Option<&str>,
        evidence: &[String],
    ) -> Result<()> {
        let sql = "UPDATE corrective_actions SET status = $1, progress = COALESCE($2, progress), evidence = $3, \
             version = version + 1, updated_at = $4, updated_by = $5 WHERE number = $6 AND version = $7";
        let r = RecordRef::new(RecordKind::CorrectiveAction, number);
        let evidence = json_text(&evidence)?;
        self.versioned_update(sql, args![status.as_str(), progress, evidence], "corrective_actions", r, actor, expected)
            .await
    }

    /// Stores an effectiveness review.
    pub async fn insert_review(&mut self, nc: i64, review: &EffectivenessReview) -> Result<()> {
        let r = review;
        self.conn()
            .execute(
                "INSERT INTO effectiveness_reviews (nc, round, result, evidence, notes, reviewer, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                args![nc, r.round, r.result.as_str(), json_text(&r.evidence)?, r.notes, r.reviewer, r.at],
            )
            .await?;
        Ok(())
    }
}

/// The columns [`Seen`] is made of, in [`seen_from_row`]'s order.
const SEEN_COLUMNS: &str = "number, title, description, controls, clauses, closed_at";

fn seen_from_row(r: &impl Cells) -> Result<Seen> {
    let (title, description): (String, String) = (r.get(1)?, r.get(2)?);
    let known = Known::new(
        r.get(0)?,
        &title,
        &description,
        json_list("controls", &r.get::<String>(3)?)?,
        json_list("clauses", &r.get::<String>(4)?)?,
    );
    Ok(Seen { known, closed_at: r.get(5)? })
}

impl Reader {
    /// The nonconformity with this number as `get_record` shows it, if any: with its actions
    /// and reviews, the change requests raised for it or its actions, and its history, all
    /// read at once (one statement on PostgreSQL).
    pub async fn nonconformity_in_full(
        &mut self,
        number: i64,
        today: NaiveDate,
    ) -> Result<Option<InFull<Nonconformity>>> {
        let r = RecordRef::new(RecordKind::Nonconformity, number);
        self.in_full(r, &nc_statements(), CHANGE_REQUESTS_OF_NC, |nc, parts| nc_from_rows(nc, parts, today)).await
    }

    /// The corrective action with this number as `get_record` shows it, if any: with the
    /// change requests raised for it and its history, all read at once.
    pub async fn corrective_action_in_full(
        &mut self,
        number: i64,
        today: NaiveDate,
    ) -> Result<Option<InFull<CorrectiveAction>>> {
        let r = RecordRef::new(RecordKind::CorrectiveAction, number);
        self.in_full(r, &[ca_statement()], CHANGE_REQUESTS_OF_CA, |ca, _| ca_from_joined_row(ca, today)).await
    }

    /// Reads record `r` with its change requests and history in one batch: `record` are the
    /// statements that read it (`$1` its number; the first returns its row, if it exists),
    /// `changes` the one that reads its change requests, and `decode` makes the record from
    /// its row and the other parts' rows.
    async fn in_full<T>(
        &mut self,
        r: RecordRef,
        record: &[String],
        changes: &str,
        decode: impl FnOnce(&Row, &[Vec<Row>]) -> Result<T>,
    ) -> Result<Option<InFull<T>>> {
        let reference = r.to_string();
        let (number, reference) = (args![r.number], args![reference]);
        let mut parts: Vec<(&str, &[Value<'_>])> = record.iter().map(|sql| (sql.as_str(), number)).collect();
        parts.extend([(changes, number), (HISTORY, reference)]);
        let rows = self.conn().fetch_parts(&parts).await?;
        let [own, others @ .., changes, history] = &rows[..] else {
            return Err(Error::Internal(format!("{r} is read in {} parts, not {}", parts.len(), rows.len())));
        };
        let Some(row) = own.first() else { return Ok(None) };
        let record = decode(row, others)?;
        Ok(Some(InFull { record, change_requests: change_request_refs(changes)?, history: entries(history)? }))
    }
}

impl Store {
    /// Reads what `refresh` asks for, at most `limit` per list, at once (one statement on
    /// PostgreSQL, so one snapshot; on SQLite one query after another in this order): the
    /// audit-trail head, the closures recorded since `refresh.closures_after` (entries of the
    /// `closing` operation), then the nonconformities. Every closure up to the head is thus in
    /// the rows read, and every later one is followed next time. Closures are read at most
    /// [`CLOSURES_FOLLOWED`] entries past `closures_after`: if the head is further on, they
    /// are not followed and the lists are read again.
    pub async fn similarity_rows(&self, refresh: &Refresh, closing: &str, limit: i64) -> Result<Observed> {
        let recent =
            format!("SELECT {SEEN_COLUMNS} FROM nonconformities WHERE number > $2 ORDER BY number DESC LIMIT $1");
        let citing = format!(
            "SELECT {SEEN_COLUMNS} FROM nonconformities WHERE number IN \
             (SELECT nc FROM nc_controls WHERE control = $1 ORDER BY nc DESC LIMIT $2) ORDER BY number DESC"
        );
        let per_control: Vec<[Value<'_>; 2]> = refresh.controls.iter().map(|c| [c.value(), limit.value()]).collect();
        let after = refresh.after.unwrap_or(0);
        let mut parts: Vec<(&str, &[Value<'_>])> = vec![("SELECT seq FROM chain_head WHERE id = 1", args![])];
        let followed = refresh.closures_after.map(|a| {
            [Value::Int(Some(a)), Value::Int(Some(a.saturating_add(CLOSURES_FOLLOWED))), Value::Text(Some(closing))]
        });
        if let Some(values) = &followed {
            parts
                .push(("SELECT record_ref, at FROM audit_log WHERE seq > $1 AND seq <= $2 AND operation = $3", values));
        }
        let recent_args = [limit.value(), after.value()];
        parts.push((&recent, &recent_args));
        parts.extend(per_control.iter().map(|values| (citing.as_str(), &values[..])));

        let rows = self.read().await?.conn().fetch_parts(&parts).await?;
        let mut rows = rows.iter();
        let mut next = || rows.next().ok_or_else(|| Error::Internal("a similarity part is missing".into()));
        let head: i64 = next()?.first().ok_or_else(|| Error::Internal("no audit-trail head".into()))?.get(0)?;
        let closed = match refresh.closures_after {
            None => Some(Vec::new()),
            Some(after) => {
                let read = next()?;
                if head - after > CLOSURES_FOLLOWED {
                    None
                } else {
                    let closure =
                        |r: &Row| Ok((RecordRef::parse("record_ref", &r.get::<String>(0)?)?.number, r.get(1)?));
                    Some(read.iter().map(closure).collect::<Result<_>>()?)
                }
            }
        };
        let recent = next()?.iter().map(seen_from_row).collect::<Result<_>>()?;
        let per_control = refresh
            .controls
            .iter()
            .map(|control| Ok((control.clone(), next()?.iter().map(seen_from_row).collect::<Result<_>>()?)))
            .collect::<Result<_>>()?;
        Ok(Observed { head, recent, per_control, closed })
    }

    /// The nonconformity with this number, with its actions and reviews, if any, read in one
    /// snapshot (one statement on PostgreSQL, one read transaction on SQLite).
    pub async fn nonconformity(&self, number: i64, today: NaiveDate) -> Result<Option<Nonconformity>> {
        load_nc(&mut self.reads().await?.conn(), number, today).await
    }

    /// Nonconformities matching `filter`, newest first, at most `filter.limit`; without
    /// actions and reviews, but `overdue` counts overdue actions too.
    pub async fn nonconformities(&self, filter: &NcFilter) -> Result<Vec<Nonconformity>> {
        let (sql, args) = list_query(filter);
        let values: Vec<Value> = args.iter().map(Bind::value).collect();
        let rows = self.read().await?.conn().fetch_all(&sql, &values).await?;
        rows.iter()
            .map(|r| {
                let mut nc = nc_from_row(r, filter.today)?;
                let late: i64 = r.get(25)?;
                nc.overdue = nc.overdue || (late == 1 && nc.status.is_open());
                Ok(nc)
            })
            .collect()
    }
}

/// The query of [`Store::nonconformities`] and its values.
pub(super) fn list_query(filter: &NcFilter) -> (String, Vec<Arg>) {
    let mut c = Conditions::default();
    // Always `$1`: the overdue checks below name it.
    c.bind(Arg::Text(date(filter.today)));
    // Per nonconformity through the partial index of open actions (migration 0010). Naming
    // the open statuses here instead made SQLite probe the (status, due_date) index for
    // every row (15 ms to 21 s at 1M entries); `query_plans` checks the plan.
    let late_actions = "EXISTS (SELECT 1 FROM corrective_actions ca WHERE ca.nc = nonconformities.number \
             AND ca.status <> 'done' AND ca.due_date < $1)";
    if let Some(s) = filter.status {
        c.equals("status", Arg::Text(s.as_str().into()));
    }
    if let Some(s) = filter.severity {
        c.equals("severity", Arg::Text(s.as_str().into()));
    }
    if let Some(s) = filter.source {
        c.equals("source", Arg::Text(s.as_str().into()));
    }
    if let Some(control) = &filter.control {
        let p = c.bind(Arg::Text(control.as_str().into()));
        c.push(format!("number IN (SELECT nc FROM nc_controls WHERE control = {p})"));
    }
    if filter.overdue {
        c.push(format!("status <> 'closed' AND ((due_date IS NOT NULL AND due_date < $1) OR {late_actions})"));
    }
    if filter.awaiting_review {
        c.push("status = 'actions_done'");
    }
    if let Some(t) = &filter.text {
        let p = c.bind(Arg::Text(like_pattern(t)));
        c.push(format!("(LOWER(title) LIKE {p} ESCAPE '\\' OR LOWER(description) LIKE {p} ESCAPE '\\')"));
    }
    if let Some(before) = filter.before {
        let p = c.bind(Arg::Int(before));
        c.push(format!("number < {p}"));
    }
    let limit = c.bind(Arg::Int(filter.limit));
    let sql = format!(
        "SELECT {NC_COLUMNS}, CASE WHEN {late_actions} THEN 1 ELSE 0 END FROM nonconformities {} \
             ORDER BY number DESC LIMIT {limit}",
        c.where_clause()
    );
    (sql, c.into_args())
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
