//! The ISO/IEC 27001:2022 Annex A catalogue, embedded in the binary.
//!
//! The CSV files in `data/` are copies of `shared/reference/`; they are parsed once, on first
//! use, into [`Catalog`]. Nothing here does I/O.

mod search;

pub use search::{ControlQuery, rank};

use serde::Deserialize;
use std::collections::HashMap;
use std::sync::LazyLock;

const CONTROLS_CSV: &str = include_str!("data/annex-a-2022.csv");
const ATTRIBUTES_CSV: &str = include_str!("data/annex-a-2022-attributes.csv");
const ORIGINS_CSV: &str = include_str!("data/mapping-2013-to-2022.csv");
const SOC2_MAP_CSV: &str = include_str!("data/mapping-iso27001-2022-to-soc2.csv");
const SOC2_CRITERIA_CSV: &str = include_str!("data/soc2-common-criteria.csv");

/// The four themes of Annex A (2022).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    /// A.5: organizational controls.
    Organizational,
    /// A.6: people controls.
    People,
    /// A.7: physical controls.
    Physical,
    /// A.8: technological controls.
    Technological,
}

/// One Annex A control with its ISO/IEC 27002:2022 attributes and mappings.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Control {
    /// Reference such as `A.8.28`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Short title.
    pub title: String,
    /// Theme (A.5 to A.8).
    pub theme: Theme,
    /// True for the 11 controls new in 2022.
    pub new_in_2022: bool,
    /// Control types: preventive, detective, corrective.
    pub control_types: Vec<String>,
    /// Information security properties: confidentiality, integrity, availability.
    pub properties: Vec<String>,
    /// Cybersecurity concepts: identify, protect, detect, respond, recover.
    pub concepts: Vec<String>,
    /// ISO/IEC 27001:2013 Annex A controls this control came from.
    pub origins_2013: Vec<String>,
    /// Related SOC 2 common criteria (related, never equivalent).
    pub soc2_criteria: Vec<String>,
}

impl Control {
    /// Every attribute value of the control, for attribute filters.
    pub fn attributes(&self) -> impl Iterator<Item = &str> {
        self.control_types.iter().chain(&self.properties).chain(&self.concepts).map(String::as_str)
    }
}

/// A SOC 2 common criterion (TSC 2017, revised 2022).
#[derive(Debug, Clone)]
pub struct Soc2Criterion {
    /// Identifier such as `CC6.1`.
    pub id: String,
    /// Editorial short label.
    pub label: String,
}

/// The whole embedded catalogue.
#[derive(Debug)]
pub struct Catalog {
    controls: Vec<Control>,
    by_ref: HashMap<String, usize>,
    soc2: Vec<Soc2Criterion>,
}

#[derive(Deserialize)]
struct ControlRow {
    #[serde(rename = "ref")]
    reference: String,
    title: String,
    theme: Theme,
    new_in_2022: bool,
}

#[derive(Deserialize)]
struct AttributeRow {
    #[serde(rename = "ref")]
    reference: String,
    control_type: String,
    information_security_properties: String,
    cybersecurity_concepts: String,
}

#[derive(Deserialize)]
struct OriginRow {
    ref_2022: String,
    refs_2013: String,
}

#[derive(Deserialize)]
struct Soc2MapRow {
    iso_ref: String,
    soc2_common_criteria: String,
}

#[derive(Deserialize)]
struct Soc2Row {
    id: String,
    label_editorial: String,
}

fn rows<T: serde::de::DeserializeOwned>(data: &str) -> Vec<T> {
    csv::Reader::from_reader(data.as_bytes())
        .deserialize()
        .collect::<Result<Vec<T>, _>>()
        .expect("embedded catalogue CSV is well-formed (checked by tests)")
}

fn split_list(s: &str) -> Vec<String> {
    s.split(';').map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned).collect()
}

impl Catalog {
    fn load() -> Self {
        let attributes: HashMap<String, AttributeRow> =
            rows::<AttributeRow>(ATTRIBUTES_CSV).into_iter().map(|r| (r.reference.clone(), r)).collect();
        let origins: HashMap<String, String> =
            rows::<OriginRow>(ORIGINS_CSV).into_iter().map(|r| (r.ref_2022, r.refs_2013)).collect();
        let soc2_map: HashMap<String, String> =
            rows::<Soc2MapRow>(SOC2_MAP_CSV).into_iter().map(|r| (r.iso_ref, r.soc2_common_criteria)).collect();
        let controls: Vec<Control> = rows::<ControlRow>(CONTROLS_CSV)
            .into_iter()
            .map(|row| {
                let attrs = attributes.get(&row.reference);
                let list = |f: fn(&AttributeRow) -> &str| attrs.map(|a| split_list(f(a))).unwrap_or_default();
                Control {
                    control_types: list(|a| &a.control_type),
                    properties: list(|a| &a.information_security_properties),
                    concepts: list(|a| &a.cybersecurity_concepts),
                    origins_2013: origins.get(&row.reference).map(|s| split_list(s)).unwrap_or_default(),
                    soc2_criteria: soc2_map.get(&row.reference).map(|s| split_list(s)).unwrap_or_default(),
                    reference: row.reference,
                    title: row.title,
                    theme: row.theme,
                    new_in_2022: row.new_in_2022,
                }
            })
            .collect();
        let by_ref = controls.iter().enumerate().map(|(i, c)| (c.reference.clone(), i)).collect();
        let soc2 = rows::<Soc2Row>(SOC2_CRITERIA_CSV)
            .into_iter()
            .map(|r| Soc2Criterion { id: r.id, label: r.label_editorial })
            .collect();
        Catalog { controls, by_ref, soc2 }
    }

    /// All 93 controls in catalogue order (A.5.1 … A.8.34).
    pub fn controls(&self) -> &[Control] {
        &self.controls
    }

    /// The control with this canonical reference (`A.8.28`), if any.
    pub fn control(&self, reference: &str) -> Option<&Control> {
        self.by_ref.get(reference).map(|&i| &self.controls[i])
    }

    /// The SOC 2 common criteria.
    pub fn soc2_criteria(&self) -> &[Soc2Criterion] {
        &self.soc2
    }
}

/// The embedded catalogue, parsed on first use.
pub fn catalog() -> &'static Catalog {
    static CATALOG: LazyLock<Catalog> = LazyLock::new(Catalog::load);
    &CATALOG
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_all_93_controls_by_theme() {
        let c = catalog();
        assert_eq!(c.controls().len(), 93);
        let count = |t: Theme| c.controls().iter().filter(|x| x.theme == t).count();
        assert_eq!(count(Theme::Organizational), 37);
        assert_eq!(count(Theme::People), 8);
        assert_eq!(count(Theme::Physical), 14);
        assert_eq!(count(Theme::Technological), 34);
        assert_eq!(c.controls().iter().filter(|x| x.new_in_2022).count(), 11);
    }

    #[test]
    fn every_control_has_attributes_and_new_ones_have_no_origin() {
        for control in catalog().controls() {
            assert!(!control.control_types.is_empty(), "{}", control.reference);
            assert!(!control.properties.is_empty(), "{}", control.reference);
            assert!(!control.concepts.is_empty(), "{}", control.reference);
            assert_eq!(control.new_in_2022, control.origins_2013.is_empty(), "{}", control.reference);
        }
    }

    #[test]
    fn secure_coding_is_new_technological_and_mapped() {
        let c = catalog().control("A.8.28").expect("A.8.28 exists");
        assert_eq!(c.title, "Secure coding");
        assert_eq!(c.theme, Theme::Technological);
        assert!(c.new_in_2022);
        assert_eq!(catalog().soc2_criteria().len(), 33);
        let corrective =
            catalog().controls().iter().filter(|c| c.control_types.iter().any(|t| t == "corrective")).count();
        assert_eq!(corrective, 14);
    }
}
