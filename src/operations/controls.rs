//! Annex A controls: the embedded catalogue, filtered and ranked.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{App, Effect, Operation};
use crate::catalog::{Control, ControlQuery, Theme, catalog, rank};
use crate::domain::access::Access;
use crate::domain::actor::Actor;
use crate::domain::references::canonical_control;
use crate::domain::text::{self, MAX_TITLE};
use crate::error::{Error, Result};

pub(super) fn operations() -> Vec<Operation> {
    vec![Operation::new("query_controls", Effect::Read, Access::Everyone, query_controls)]
}

/// Find ISO 27001:2022 Annex A controls by ref or prefix, theme, 27002 attribute, SOC 2 criterion or free text; best match first.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryControls {
    /// Control ref or prefix: "A.8.28", "A.8".
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
    /// Only this theme.
    #[serde(default)]
    pub theme: Option<Theme>,
    /// Attribute: preventive|detective|corrective, confidentiality|integrity|availability, identify|protect|detect|respond|recover.
    #[serde(default)]
    pub attribute: Option<String>,
    /// SOC 2 criterion, e.g. "CC8.1".
    #[serde(default)]
    pub soc2: Option<String>,
    /// Words describing the work, e.g. "secure coding review".
    #[serde(default)]
    pub text: Option<String>,
    /// Most controls returned, 1-93 (default 10).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Controls found.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ControlsFound {
    /// Matching controls, best first.
    pub controls: Vec<Control>,
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

async fn query_controls(_app: Arc<App>, _actor: Actor, input: QueryControls) -> Result<ControlsFound> {
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
    let controls = found.into_iter().take(limit as usize).cloned().collect();
    Ok(ControlsFound { controls, total })
}
