//! Clause 10.2 operations: logging and listing nonconformities.

use std::sync::Arc;

use chrono::Utc;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::corrective_action::CLOSE_NONCONFORMITY;
use super::{App, Effect, Operation, json, request_hash};
use crate::domain::access::Access;
use crate::domain::actor::Actor;
use crate::domain::nonconformity::{NcStatus, NewNonconformity, Nonconformity, Severity, Source};
use crate::domain::references::{ClauseRef, ControlRef, RecordKind, RecordRef};
use crate::domain::similarity::{Known, Similar, SimilarityIndex};
use crate::domain::text::{self, MAX_TEXT, MAX_TITLE};
use crate::domain::time::parse_date;
use crate::domain::time::stamp;
use crate::error::{Error, Result};
use crate::store::{Change, Claim, NcFilter, Write};

pub(super) fn operations() -> Vec<Operation> {
    vec![
        Operation::new("log_nonconformity", Effect::Create, Access::Contributors, log_nonconformity),
        Operation::new("list_nonconformities", Effect::Read, Access::Everyone, list_nonconformities),
    ]
}

/// Log a nonconformity NC-n (10.2): a requirement, policy or control not met.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogNonconformity {
    /// One-line summary.
    pub title: String,
    /// What was found and which requirement it breaks.
    pub description: String,
    /// major: requirement not met; minor: single lapse; observation: weakness.
    pub severity: Severity,
    /// How it was found.
    pub source: Source,
    /// Clauses not met, e.g. 8.1.
    #[serde(default)]
    pub clauses: Vec<String>,
    /// Annex A controls not met, e.g. A.8.28.
    #[serde(default)]
    pub controls: Vec<String>,
    /// System, repository, process or session.
    #[serde(default)]
    pub detected_in: Option<String>,
    /// Paths, URLs, commit ids.
    #[serde(default)]
    pub evidence: Vec<String>,
    /// Correction or containment already done (10.2 a).
    #[serde(default)]
    pub correction: Option<String>,
    /// YYYY-MM-DD. Default: major +90 days, minor +365, observation none.
    #[serde(default)]
    pub due_date: Option<String>,
    /// Retry key: a repeat returns the first result.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// The nonconformity logged.
#[derive(Debug, Serialize, JsonSchema)]
pub struct NonconformityLogged {
    /// Reference, e.g. `NC-12`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Status: `open`, or `corrected` when a correction came with it.
    pub status: NcStatus,
    /// Version: send it with the next step.
    pub version: i64,
    /// When corrective action is due.
    pub due_date: Option<String>,
    /// The tool for the next step.
    pub next_step: Option<String>,
    /// Similar earlier nonconformities; the analysis must confirm or dismiss each.
    pub similar: Vec<Similar>,
    /// Closed nonconformities on the same controls in the last 12 months: this is a recurrence.
    pub recurrence_of: Vec<String>,
    /// True when this answers a retry with the same idempotency key.
    pub replayed: bool,
}

impl NonconformityLogged {
    fn of(nc: Nonconformity, replayed: bool) -> Self {
        NonconformityLogged {
            reference: nc.reference,
            status: nc.status,
            version: nc.version,
            due_date: nc.due_date,
            next_step: nc.next_step,
            similar: nc.similar,
            recurrence_of: nc.recurrence_of,
            replayed,
        }
    }
}

pub(super) fn validate(input: &LogNonconformity, app: &App, today: chrono::NaiveDate) -> Result<NewNonconformity> {
    let clauses = text::list("clauses", &input.clauses, 16)?
        .iter()
        .map(|c| ClauseRef::parse("clauses", c))
        .collect::<Result<Vec<_>>>()?;
    let controls = text::list("controls", &input.controls, 16)?
        .iter()
        .map(|c| ControlRef::parse("controls", c))
        .collect::<Result<Vec<_>>>()?;
    let mut controls_unique: Vec<ControlRef> = Vec::with_capacity(controls.len());
    for c in controls {
        if !controls_unique.contains(&c) {
            controls_unique.push(c);
        }
    }
    let given_due = input.due_date.as_deref().map(|d| parse_date("due_date", d)).transpose()?;
    Ok(NewNonconformity {
        title: text::required("title", &input.title, MAX_TITLE)?,
        description: text::required("description", &input.description, MAX_TEXT)?,
        severity: input.severity,
        source: input.source,
        clauses,
        controls: controls_unique,
        detected_in: text::optional("detected_in", input.detected_in.as_deref(), 500)?,
        evidence: text::list("evidence", &input.evidence, 1000)?,
        correction: text::optional("correction", input.correction.as_deref(), MAX_TEXT)?,
        due_date: app.due.due_date(input.severity, today, given_due)?,
    })
}

async fn log_nonconformity(app: Arc<App>, actor: Actor, input: LogNonconformity) -> Result<NonconformityLogged> {
    const OP: &str = "log_nonconformity";
    let today = Utc::now().date_naive();
    let nc = validate(&input, &app, today)?;
    let key = text::optional("idempotency_key", input.idempotency_key.as_deref(), 200)?;
    let matches = matches_of(&app, &nc).await?;
    let mut w = app.store.begin_write().await?;
    if let Some(key) = &key
        && let Claim::Replay(reference) = w.claim_idempotency(&actor.name, OP, key, &request_hash(&input)?).await?
    {
        drop(w);
        let r = RecordRef::parse("ref", &reference)?;
        let nonconformity = app
            .store
            .nonconformity(r.number, today)
            .await?
            .ok_or_else(|| Error::Internal(format!("idempotency key points at missing {reference}")))?;
        return Ok(NonconformityLogged::of(nonconformity, true));
    }
    let nonconformity = insert_logged(&mut w, &actor.name, OP, &nc, &matches, None).await?;
    let reference = RecordRef::parse("ref", &nonconformity.reference)?;
    if let Some(key) = &key {
        w.complete_idempotency(&actor.name, OP, key, reference).await?;
    }
    w.commit().await?;
    Ok(NonconformityLogged::of(nonconformity, false))
}

/// The earlier nonconformities a new one resembles or repeats, found before its write
/// transaction (comparing them must not hold up other writers; a finding logged meanwhile may
/// be missed, which only costs a hint).
#[derive(Debug, Default)]
pub(super) struct Matches {
    similar: Vec<Similar>,
    recurrence_of: Vec<String>,
}

/// Finds what `nc` resembles (shared controls or clauses, similar words) and repeats (a
/// nonconformity on the same control closed within a year).
pub(super) async fn matches_of(app: &App, nc: &NewNonconformity) -> Result<Matches> {
    let controls: Vec<String> = nc.controls.iter().map(|c| c.as_str().to_owned()).collect();
    let clauses: Vec<String> = nc.clauses.iter().map(|c| c.as_str().to_owned()).collect();
    let this = Known::new(0, &nc.title, &nc.description, controls, clauses);
    let cutoff = stamp(Utc::now() - chrono::Duration::days(365));
    let (similar, recurrence_of) = compare(app, &this, Some(&cutoff)).await?;
    Ok(Matches { similar, recurrence_of })
}

/// Logs a checked nonconformity inside `w` with its `matches` (linked to an internal audit
/// when it is a finding of one), and appends its audit-trail entry and event. The one path
/// for `log_nonconformity` and audit findings.
pub(super) async fn insert_logged(
    w: &mut Write,
    actor: &str,
    operation: &str,
    nc: &NewNonconformity,
    matches: &Matches,
    audit: Option<i64>,
) -> Result<Nonconformity> {
    let nonconformity = w.insert_nonconformity(actor, nc, &matches.similar, &matches.recurrence_of, audit).await?;
    let (record, event) = (nonconformity.reference.as_str(), "nonconformity.logged");
    match audit {
        None => w.record(Change { actor, operation, record, event, detail: &nonconformity })?,
        Some(a) => {
            // A finding of an internal audit also names the audit.
            let mut detail = json(&nonconformity)?;
            detail["audit"] = serde_json::json!(RecordRef::new(RecordKind::Audit, a).to_string());
            w.record(Change { actor, operation, record, event, detail: &detail })?;
        }
    }
    Ok(nonconformity)
}

/// How many earlier nonconformities (per criterion: most recent, most recent citing each
/// control) are compared with one being handled; 200 of each covers years of findings of an
/// organisation this size.
pub(super) const SIMILARITY_POOL: usize = 200;
/// How many similar nonconformities are proposed.
const SIMILAR_SHOWN: usize = 10;

/// Compares `this` with the recent nonconformities of the app's similarity index, after
/// bringing the index up to date; with `closed_since`, also finds those on its controls'
/// lists closed since then (recurrence).
async fn compare(app: &App, this: &Known, closed_since: Option<&str>) -> Result<(Vec<Similar>, Vec<String>)> {
    let (refresh, limit) = {
        let index = similarity_index(app);
        (index.refresh_for(&this.controls), index.limit())
    };
    let read = app.store.similarity_rows(&refresh, CLOSE_NONCONFORMITY, limit as i64).await?;
    let mut index = similarity_index(app);
    index.apply(&refresh, read);
    let recurrent = closed_since.map(|since| index.closed_since(this, since)).unwrap_or_default();
    Ok((index.similar_to(this, SIMILAR_SHOWN), recurrent))
}

/// The app's similarity index. It is a cache of facts that never change, so a panic while
/// it was held (a poisoned lock) leaves it usable: at worst a hint is missed, which must not
/// stop findings from being logged.
fn similarity_index(app: &App) -> std::sync::MutexGuard<'_, SimilarityIndex> {
    app.similarity.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The candidates the analyst of `nc` must confirm or dismiss (10.2 b).
pub(crate) async fn similar_candidates(app: &App, nc: &Nonconformity) -> Result<Vec<Similar>> {
    let number = RecordRef::parse("ref", &nc.reference)?.number;
    let this = Known::new(number, &nc.title, &nc.description, nc.controls.clone(), nc.clauses.clone());
    Ok(compare(app, &this, None).await?.0)
}

/// Most items one page of a list returns.
pub const MAX_PAGE: u32 = 200;

/// List nonconformities, newest first; page with cursor.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListNonconformities {
    /// Only this status.
    #[serde(default)]
    pub status: Option<NcStatus>,
    /// Only this severity.
    #[serde(default)]
    pub severity: Option<Severity>,
    /// Only this source.
    #[serde(default)]
    pub source: Option<Source>,
    /// Only those citing this control, e.g. A.8.28.
    #[serde(default)]
    pub control: Option<String>,
    /// Only open ones past due, or with an action past due.
    #[serde(default)]
    pub overdue: bool,
    /// Only those awaiting review_effectiveness.
    #[serde(default)]
    pub awaiting_review: bool,
    /// In title or description, case-insensitive.
    #[serde(default)]
    pub text: Option<String>,
    /// next_cursor of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Page size, 1-200 (default 50).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// One nonconformity in a list.
#[derive(Debug, Serialize, JsonSchema)]
pub struct NonconformitySummary {
    /// Reference, e.g. `NC-12`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// One-line summary.
    pub title: String,
    /// Grading.
    pub severity: Severity,
    /// How it was found.
    pub source: Source,
    /// Where it stands in 10.2.
    pub status: NcStatus,
    /// The tool for the next step; absent once closed.
    pub next_step: Option<String>,
    /// Annex A controls cited.
    pub controls: Vec<String>,
    /// Due date of corrective action.
    pub due_date: Option<String>,
    /// Open past its due date.
    pub overdue: bool,
    /// Last change (UTC).
    pub updated_at: String,
}

/// A page of nonconformities.
#[derive(Debug, Serialize, JsonSchema)]
pub struct NonconformityPage {
    /// The nonconformities, newest first.
    pub items: Vec<NonconformitySummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

async fn list_nonconformities(app: Arc<App>, _actor: Actor, input: ListNonconformities) -> Result<NonconformityPage> {
    let limit = input.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_PAGE {
        return Err(Error::invalid("limit", format!("{limit} is out of range; use 1 to {MAX_PAGE}")));
    }
    let before = match input.cursor.as_deref() {
        None => None,
        Some(c) => Some(
            RecordRef::parse("cursor", c)
                .ok()
                .filter(|r| r.kind == RecordKind::Nonconformity)
                .ok_or_else(|| {
                    Error::invalid(
                        "cursor",
                        "is not a cursor from this list; pass `next_cursor` unchanged, or omit it for the first page",
                    )
                })?
                .number,
        ),
    };
    let filter = NcFilter {
        status: input.status,
        severity: input.severity,
        source: input.source,
        control: input.control.as_deref().map(|c| ControlRef::parse("control", c)).transpose()?,
        overdue: input.overdue,
        awaiting_review: input.awaiting_review,
        text: text::optional("text", input.text.as_deref(), MAX_TITLE)?,
        before,
        limit: i64::from(limit) + 1,
        today: Utc::now().date_naive(),
    };
    let mut rows = app.store.nonconformities(&filter).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(|n| n.reference.clone()) } else { None };
    let items = rows
        .into_iter()
        .map(|n| NonconformitySummary {
            reference: n.reference,
            title: n.title,
            severity: n.severity,
            source: n.source,
            status: n.status,
            next_step: n.next_step,
            controls: n.controls,
            due_date: n.due_date,
            overdue: n.overdue,
            updated_at: n.updated_at,
        })
        .collect();
    Ok(NonconformityPage { items, next_cursor })
}
