//! Annex A controls: the embedded catalogue, filtered and ranked.

use std::sync::Arc;

use chrono::Utc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{App, Effect, Operation};
use crate::catalog::{Control, ControlQuery, Theme, catalog, rank};
use crate::domain::access::Access;
use crate::domain::actor::Actor;
use crate::domain::references::{ControlRef, RecordKind, RecordRef, canonical_control};
use crate::domain::soa::{ImplementationStatus, SoaEntry};
use crate::domain::text::{self, MAX_TITLE};
use crate::error::{Error, Result};
use crate::store::Reader;

pub(super) fn operations() -> Vec<Operation> {
    vec![Operation::new("query_controls", Effect::Read, Access::Everyone, query_controls)]
}

/// Find ISO 27001:2022 Annex A controls, best match first, each with its SoA entry.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryControls {
    /// Control or prefix, e.g. A.8.28, A.8.
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
    /// Only this theme.
    #[serde(default)]
    pub theme: Option<Theme>,
    /// Per 27002: preventive|detective|corrective, confidentiality|integrity|availability, identify|protect|detect|respond|recover.
    #[serde(default)]
    pub attribute: Option<String>,
    /// SOC 2 criterion, e.g. CC8.1.
    #[serde(default)]
    pub soc2: Option<String>,
    /// Free text, e.g. secure coding review.
    #[serde(default)]
    pub text: Option<String>,
    /// true: only applicable; false: only excluded.
    #[serde(default)]
    pub applicable: Option<bool>,
    /// Only those not decided in the SoA.
    #[serde(default)]
    pub undecided: bool,
    /// Only this implementation status.
    #[serde(default)]
    pub status: Option<ImplementationStatus>,
    /// Only implemented controls with missing or old evidence.
    #[serde(default)]
    pub stale_evidence: bool,
    /// Only applicable controls tied to no risk or requirement.
    #[serde(default)]
    pub untraceable: bool,
    /// Only controls treating this risk, e.g. RISK-4.
    #[serde(default)]
    pub risk: Option<String>,
    /// How many at most, 1-93 (default 10).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// A control's SoA entry in brief (get_record on the control shows all of it).
#[derive(Debug, Serialize, JsonSchema)]
pub struct SoaBrief {
    /// Applicable; absent while undecided.
    pub applicable: Option<bool>,
    /// Implementation status.
    pub status: Option<ImplementationStatus>,
    /// Owner.
    pub owner: Option<String>,
    /// Risks it treats.
    pub risks: Vec<String>,
    /// Applicable but tied to no risk or requirement.
    pub untraceable: bool,
    /// Implemented with missing or old evidence.
    pub stale_evidence: bool,
    /// Entry version for update_soa_entry.
    pub version: i64,
}

/// A control with its SoA entry in brief.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ControlFound {
    /// The control.
    #[serde(flatten)]
    pub control: Control,
    /// Its SoA entry.
    pub soa: SoaBrief,
}

/// A control with its whole SoA entry.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ControlDetail {
    /// The control.
    #[serde(flatten)]
    pub control: Control,
    /// Its SoA entry.
    pub soa: SoaEntry,
}

/// The control and its SoA entry, as get_record and `isms://controls/{ref}` show it, read
/// through `reader`.
pub(crate) async fn control_view(app: &App, reader: &mut Reader, control: &ControlRef) -> Result<ControlDetail> {
    let entry = reader.soa_entry(control.as_str(), Utc::now().date_naive(), app.evidence_max_age_days).await?;
    let c =
        catalog().control(control.as_str()).ok_or_else(|| Error::Internal(format!("{control} not in catalogue")))?;
    Ok(ControlDetail { control: c.clone(), soa: entry })
}

/// Controls found.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ControlsFound {
    /// Matching controls, best first.
    pub controls: Vec<ControlFound>,
    /// How many matched before `limit`.
    pub total: usize,
}

const ATTRIBUTES: &[&str] = &[
    "preventive",
    "detective",
    "corrective",
    "confidentiality",
    "integrity",
    "availability",
    "identify",
    "protect",
    "detect",
    "respond",
    "recover",
];

async fn query_controls(app: Arc<App>, _actor: Actor, input: QueryControls) -> Result<ControlsFound> {
    let limit = input.limit.unwrap_or(10);
    if limit == 0 || limit > 93 {
        return Err(Error::invalid("limit", format!("{limit} is out of range; use 1 to 93")));
    }
    let attribute = match text::optional("attribute", input.attribute.as_deref(), 40)? {
        Some(a) if !ATTRIBUTES.contains(&a.to_lowercase().as_str()) => {
            return Err(Error::invalid(
                "attribute",
                format!("`{a}` is not a 27002 attribute; use one of {}", ATTRIBUTES.join(", ")),
            ));
        }
        a => a.map(|a| a.to_lowercase()),
    };
    let query = ControlQuery {
        reference: text::optional("ref", input.reference.as_deref(), 20)?.map(|r| canonical_control(&r)),
        theme: input.theme,
        attribute,
        soc2: text::optional("soc2", input.soc2.as_deref(), 20)?,
        text: text::optional("text", input.text.as_deref(), MAX_TITLE)?,
    };
    let found = rank(catalog().controls(), &query);
    let risk = match input.risk.as_deref() {
        None => None,
        Some(r) => {
            let r = RecordRef::parse("risk", r)?;
            if r.kind != RecordKind::Risk {
                return Err(Error::invalid("risk", format!("{r} is not a risk (RISK-n)")));
            }
            Some(r.to_string())
        }
    };
    // One candidate (the usual `ref` query) needs its own entry only, none needs none.
    let today = Utc::now().date_naive();
    let soa = match found.as_slice() {
        [] => Vec::new(),
        [one] => vec![app.store.soa_entry(&one.reference, today, app.evidence_max_age_days).await?],
        _ => app.store.soa(today, app.evidence_max_age_days).await?,
    };
    let entry_of = |c: &Control| soa.iter().find(|e| e.control == c.reference);
    let found: Vec<(&Control, &SoaEntry)> = found
        .into_iter()
        .filter_map(|c| entry_of(c).map(|e| (c, e)))
        .filter(|(_, e)| input.applicable.is_none_or(|a| e.applicable == Some(a)))
        .filter(|(_, e)| !input.undecided || e.applicable.is_none())
        .filter(|(_, e)| input.status.is_none_or(|s| e.status == Some(s)))
        .filter(|(_, e)| !input.stale_evidence || e.stale_evidence)
        .filter(|(_, e)| !input.untraceable || e.untraceable)
        .filter(|(_, e)| risk.as_ref().is_none_or(|r| e.risks.contains(r)))
        .collect();
    let only_ref = query.theme.is_none() && query.attribute.is_none() && query.soc2.is_none() && query.text.is_none();
    if let Some(r) = &query.reference
        && found.is_empty()
        && only_ref
    {
        return Err(Error::invalid(
            "ref",
            format!("`{r}` matches no Annex A control; use A.5.1 to A.8.34, or a prefix such as A.8"),
        ));
    }
    let total = found.len();
    let controls = found
        .into_iter()
        .take(limit as usize)
        .map(|(c, e)| ControlFound {
            control: c.clone(),
            soa: SoaBrief {
                applicable: e.applicable,
                status: e.status,
                owner: e.owner.clone(),
                risks: e.risks.clone(),
                untraceable: e.untraceable,
                stale_evidence: e.stale_evidence,
                version: e.version,
            },
        })
        .collect();
    Ok(ControlsFound { controls, total })
}
