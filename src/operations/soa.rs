//! The Statement of Applicability (6.1.3 d): deciding entries, approving numbered versions,
//! exporting them.

use std::fmt::Write as _;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{App, Effect, Operation};
use crate::domain::access::Access;
use crate::domain::actor::{Actor, Role};
use crate::domain::references::{ControlRef, RecordKind, RecordRef};
use crate::domain::risk::Treatment;
use crate::domain::soa::{
    Decision, EntryChange, Evidence, ImplementationStatus, SoaEntry, check_entry, check_evidence, diff, fingerprint,
};
use crate::domain::text::{self, MAX_TEXT};
use crate::error::{Error, Result};
use crate::store::{Change, SoaEntryFields, SoaVersion};

pub(super) fn operations() -> Vec<Operation> {
    const EDITORS: Access = Access::Only(&[Role::Agent, Role::IsmsManager]);
    const MANAGERS: Access = Access::Only(&[Role::IsmsManager]);
    vec![
        Operation::new("update_soa_entry", Effect::Update, EDITORS, update_soa_entry),
        Operation::new("approve_soa", Effect::Create, MANAGERS, approve_soa),
        Operation::new("export_soa", Effect::Read, Access::Everyone, export_soa),
    ]
}

/// Decide a control's SoA entry (6.1.3 d); an exclusion must cite the risk assessment (risks or risk_assessment).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSoaEntry {
    /// Annex A control, e.g. A.8.28.
    pub control: String,
    /// As last read; 0 while undecided.
    pub version: i64,
    /// Whether the control applies.
    pub applicable: bool,
    /// Why it is included or excluded.
    pub justification: String,
    /// Default not_implemented.
    #[serde(default)]
    pub status: Option<ImplementationStatus>,
    /// How it is implemented (required when implemented or partially).
    #[serde(default)]
    pub implementation: Option<String>,
    /// Who owns the control.
    #[serde(default)]
    pub owner: Option<String>,
    /// Dated evidence; replaces the list.
    #[serde(default)]
    pub evidence: Vec<Evidence>,
    /// Legal, contractual or business requirement for it.
    #[serde(default)]
    pub requirement: Option<String>,
    /// For an exclusion: what the risk assessment found.
    #[serde(default)]
    pub risk_assessment: Option<String>,
    /// Risks it treats, e.g. RISK-4; replaces the links if given.
    #[serde(default)]
    pub risks: Option<Vec<String>>,
}

/// The entry as decided.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SoaEntryResult {
    /// The entry now.
    pub entry: SoaEntry,
}

async fn update_soa_entry(app: Arc<App>, actor: Actor, input: UpdateSoaEntry) -> Result<SoaEntryResult> {
    const OP: &str = "update_soa_entry";
    let control = ControlRef::parse("control", &input.control)?;
    let justification = text::required("justification", &input.justification, MAX_TEXT)?;
    let fields = SoaEntryFields {
        applicable: input.applicable,
        justification,
        status: input.status.unwrap_or(ImplementationStatus::NotImplemented),
        implementation: text::optional("implementation", input.implementation.as_deref(), MAX_TEXT)?,
        owner: text::optional("owner", input.owner.as_deref(), 64)?,
        evidence: input.evidence.clone(),
        requirement: text::optional("requirement", input.requirement.as_deref(), MAX_TEXT)?,
        risk_assessment: text::optional("risk_assessment", input.risk_assessment.as_deref(), MAX_TEXT)?,
    };
    if fields.evidence.len() > text::MAX_LIST {
        return Err(Error::invalid(
            "evidence",
            format!("has {} entries; the limit is {}", fields.evidence.len(), text::MAX_LIST),
        ));
    }
    for e in &fields.evidence {
        text::required("evidence.ref", &e.reference, 1000)?;
    }
    let risk_numbers = match &input.risks {
        None => None,
        Some(list) => Some(
            text::list("risks", list, 20)?
                .iter()
                .map(|r| {
                    let r = RecordRef::parse("risks", r)?;
                    if r.kind == RecordKind::Risk {
                        Ok(r.number)
                    } else {
                        Err(Error::invalid("risks", format!("{r} is not a risk (RISK-n)")))
                    }
                })
                .collect::<Result<Vec<i64>>>()?
                .into_iter()
                .fold(Vec::new(), |mut acc, n| {
                    if !acc.contains(&n) {
                        acc.push(n);
                    }
                    acc
                }),
        ),
    };

    let mut w = app.store.begin_write().await?;
    check_evidence(&fields.evidence, w.now().date_naive())?;
    let entry = w.soa_entry(control.as_str(), app.evidence_max_age_days).await?;
    if input.version != entry.version {
        return Err(Error::Conflict {
            reference: format!("the SoA entry of {control}"),
            expected: input.version,
            current: entry.version,
        });
    }
    let linked = match &risk_numbers {
        Some(numbers) => {
            let existing = w.existing_risks(numbers).await?;
            if let Some(missing) = numbers.iter().find(|n| !existing.contains(n)) {
                return Err(Error::not_found(
                    RecordRef::new(RecordKind::Risk, *missing).to_string(),
                    "register it with register_risk first",
                ));
            }
            // A mitigated risk keeps at least one control: unlinking its last one is refused.
            for gone in entry.risks.iter().filter_map(|r| RecordRef::parse("risks", r).ok()) {
                if numbers.contains(&gone.number) {
                    continue;
                }
                if let Some(risk) = w.risk(gone.number, app.risk).await?
                    && risk.treatment == Treatment::Mitigate
                    && risk.controls.len() == 1
                {
                    return Err(Error::rule(
                        format!("{control} is the only control of {}, which is mitigated", risk.reference),
                        format!("give {} another control or treatment with update_risk first", risk.reference),
                    ));
                }
            }
            numbers.len()
        }
        None => entry.risks.len(),
    };
    check_entry(&Decision {
        control: control.as_str(),
        applicable: fields.applicable,
        justification: Some(&fields.justification),
        status: fields.status,
        implementation: fields.implementation.as_deref(),
        requirement: fields.requirement.as_deref(),
        risk_assessment: fields.risk_assessment.as_deref(),
        linked_risks: linked,
    })?;
    w.upsert_soa_entry(&actor.name, control.as_str(), input.version, &fields).await?;
    if let Some(numbers) = &risk_numbers {
        w.set_control_risks(control.as_str(), numbers).await?;
    }
    let entry = w.soa_entry(control.as_str(), app.evidence_max_age_days).await?;
    let record = format!("soa:{control}");
    w.record(Change {
        actor: &actor.name,
        operation: OP,
        record: &record,
        event: "soa.entry_updated",
        detail: &entry,
    })?;
    w.commit().await?;
    Ok(SoaEntryResult { entry })
}

/// Approve the SoA as it stands (ISMS manager): freezes all 93 entries as a dated, immutable version SOA-n; later edits make a new draft.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveSoa {
    /// draft_hash of the export_soa you reviewed.
    pub draft_hash: String,
    /// Approval note, e.g. the review it came from.
    #[serde(default)]
    pub note: Option<String>,
}

/// The version approved.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SoaApproved {
    /// Version number; get_record "SOA-n" shows it.
    pub version: i64,
    /// When (UTC).
    pub approved_at: String,
    /// By whom.
    pub approved_by: String,
    /// Entries changed since the previous version (all on the first).
    pub changes: Vec<EntryChange>,
}

async fn approve_soa(app: Arc<App>, actor: Actor, input: ApproveSoa) -> Result<SoaApproved> {
    const OP: &str = "approve_soa";
    let note = text::optional("note", input.note.as_deref(), MAX_TEXT)?;
    let mut w = app.store.begin_write().await?;
    let entries = w.soa(app.evidence_max_age_days).await?;
    let undecided: Vec<&str> = entries.iter().filter(|e| e.applicable.is_none()).map(|e| e.control.as_str()).collect();
    if !undecided.is_empty() {
        let shown: Vec<&str> = undecided.iter().take(10).copied().collect();
        return Err(Error::rule(
            format!(
                "the SoA is incomplete: {} of 93 controls are undecided ({}{})",
                undecided.len(),
                shown.join(", "),
                if undecided.len() > 10 { ", …" } else { "" }
            ),
            "decide each with update_soa_entry (query_controls with undecided=true lists them), then approve",
        ));
    }
    if fingerprint(&entries) != input.draft_hash.trim() {
        return Err(Error::rule(
            "the SoA is not the draft you reviewed: it changed since that export (or the draft_hash is wrong)",
            "export_soa again, review the changes, and approve with its draft_hash",
        ));
    }
    let previous = w.latest_soa_version().await?;
    let changes = diff(previous.as_ref().map(|p| p.entries.as_slice()).unwrap_or_default(), &entries);
    if let Some(p) = &previous
        && changes.is_empty()
    {
        return Err(Error::rule(
            format!("nothing changed since SOA-{} was approved", p.number),
            "approve again after the SoA changes",
        ));
    }
    let number = w.insert_soa_version(&actor.name, note.as_deref(), &entries).await?;
    let record = RecordRef::new(RecordKind::SoaVersion, number).to_string();
    let detail = serde_json::json!({ "note": note, "changes": changes });
    w.record(Change { actor: &actor.name, operation: OP, record: &record, event: "soa.approved", detail: &detail })?;
    let approved_at = crate::domain::time::stamp(w.now());
    w.commit().await?;
    Ok(SoaApproved { version: number, approved_at, approved_by: actor.name, changes })
}

/// The export formats of the SoA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SoaFormat {
    /// Comma-separated values.
    Csv,
    /// A Markdown document with a table.
    Markdown,
}

/// Export the SoA with its approval header.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportSoa {
    /// Output format.
    pub format: SoaFormat,
    /// Approved version; omit for the SoA as it stands.
    #[serde(default)]
    pub version: Option<i64>,
}

/// The exported document.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SoaExport {
    /// Format.
    pub format: SoaFormat,
    /// The approved version it is, if it is one.
    pub version: Option<i64>,
    /// Approval date (UTC), if approved.
    pub approved_at: Option<String>,
    /// Approver, if approved.
    pub approved_by: Option<String>,
    /// True when this is a draft with changes after the last approval (or none yet).
    pub draft: bool,
    /// Rows (always 93).
    pub rows: usize,
    /// Fingerprint of what the entries decide: approve_soa takes it to approve exactly this.
    pub draft_hash: String,
    /// The document.
    pub content: String,
}

/// The SoA to export: an approved version, or the current entries (which count as that
/// version when nothing changed since it was approved).
pub(crate) async fn soa_document(app: &App, version: Option<i64>) -> Result<(Vec<SoaEntry>, Option<SoaVersion>, bool)> {
    match version {
        Some(n) => {
            let v = app.store.soa_version(Some(n)).await?.ok_or_else(|| {
                Error::not_found(
                    format!("SOA-{n}"),
                    "approved versions are numbered from 1; omit `version` for the current SoA",
                )
            })?;
            Ok((v.entries.clone(), Some(v), false))
        }
        None => {
            let today = chrono::Utc::now().date_naive();
            let current = app.store.soa(today, app.evidence_max_age_days).await?;
            let latest = app.store.soa_version(None).await?;
            let draft = latest.as_ref().is_none_or(|l| !diff(&l.entries, &current).is_empty());
            Ok((current, latest, draft))
        }
    }
}

fn header(version: Option<&SoaVersion>, draft: bool) -> String {
    match (version, draft) {
        (Some(v), false) => format!("Version {} approved {} by {}", v.number, v.approved_at, v.approved_by),
        (Some(v), true) => {
            format!("DRAFT: changed since version {} approved {} by {}", v.number, v.approved_at, v.approved_by)
        }
        (None, _) => "DRAFT: never approved".to_owned(),
    }
}

fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "no",
        None => "undecided",
    }
}

/// Renders the SoA as CSV or Markdown, the approval header first.
pub(crate) fn render(
    format: SoaFormat,
    entries: &[SoaEntry],
    version: Option<&SoaVersion>,
    draft: bool,
) -> Result<String> {
    let head = header(version, draft);
    let evidence = |e: &SoaEntry| {
        e.evidence.iter().map(|x| format!("{} ({})", x.reference, x.date)).collect::<Vec<_>>().join("; ")
    };
    match format {
        SoaFormat::Csv => {
            let mut out = csv::Writer::from_writer(Vec::new());
            let io = |e: csv::Error| Error::Internal(e.to_string());
            out.write_record([
                "# Statement of Applicability (ISO/IEC 27001:2022)",
                head.as_str(),
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
            ])
            .map_err(io)?;
            out.write_record([
                "control",
                "title",
                "applicable",
                "justification",
                "status",
                "implementation",
                "owner",
                "evidence",
                "risks",
                "requirement_or_risk_assessment",
            ])
            .map_err(io)?;
            for e in entries {
                out.write_record([
                    e.control.as_str(),
                    e.title.as_str(),
                    yes_no(e.applicable),
                    e.justification.as_deref().unwrap_or_default(),
                    e.status.map(|s| s.as_str()).unwrap_or_default(),
                    e.implementation.as_deref().unwrap_or_default(),
                    e.owner.as_deref().unwrap_or_default(),
                    evidence(e).as_str(),
                    e.risks.join("; ").as_str(),
                    e.requirement.as_deref().or(e.risk_assessment.as_deref()).unwrap_or_default(),
                ])
                .map_err(io)?;
            }
            let bytes = out.into_inner().map_err(|e| Error::Internal(e.to_string()))?;
            String::from_utf8(bytes).map_err(|e| Error::Internal(e.to_string()))
        }
        SoaFormat::Markdown => {
            let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
            let mut out = format!("# Statement of Applicability\n\nISO/IEC 27001:2022 Annex A. {head}.\n\n");
            out.push_str("| Control | Title | Applicable | Justification | Status | Implementation | Owner | Evidence | Risks |\n");
            out.push_str("|---|---|---|---|---|---|---|---|---|\n");
            for e in entries {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    e.control,
                    cell(&e.title),
                    yes_no(e.applicable),
                    cell(e.justification.as_deref().unwrap_or_default()),
                    e.status.map(|s| s.as_str()).unwrap_or_default(),
                    cell(e.implementation.as_deref().unwrap_or_default()),
                    cell(e.owner.as_deref().unwrap_or_default()),
                    cell(&evidence(e)),
                    e.risks.join(", "),
                );
            }
            Ok(out)
        }
    }
}

async fn export_soa(app: Arc<App>, _actor: Actor, input: ExportSoa) -> Result<SoaExport> {
    let (entries, version, draft) = soa_document(&app, input.version).await?;
    let content = render(input.format, &entries, version.as_ref(), draft)?;
    Ok(SoaExport {
        format: input.format,
        version: version.as_ref().filter(|_| !draft).map(|v| v.number),
        approved_at: version.as_ref().filter(|_| !draft).map(|v| v.approved_at.clone()),
        approved_by: version.as_ref().filter(|_| !draft).map(|v| v.approved_by.clone()),
        draft,
        rows: entries.len(),
        draft_hash: fingerprint(&entries),
        content,
    })
}
