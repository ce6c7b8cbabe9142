//! References: records (`NC-12`), Annex A controls (`A.8.28`) and clauses (`9.2.1`), each
//! parsed once at the edge into a type that can only hold a valid value.

use std::fmt;

use crate::catalog::catalog;
use crate::error::{Error, Result};

/// The kinds of record the ISMS keeps, each with its reference prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// `NC-n`: a nonconformity (10.2).
    Nonconformity,
    /// `CA-n`: a corrective action (10.2 c).
    CorrectiveAction,
    /// `CR-n`: a change request (6.3).
    ChangeRequest,
    /// `RISK-n`: a risk (6.1.2).
    Risk,
    /// `AUD-n`: an internal audit (9.2).
    Audit,
    /// `MR-n`: a management review (9.3).
    ManagementReview,
    /// `SOA-n`: an approved version of the Statement of Applicability (6.1.3 d).
    SoaVersion,
    /// `OBJ-n`: an information security objective (6.2).
    Objective,
}

impl RecordKind {
    const ALL: [RecordKind; 8] = [
        RecordKind::Nonconformity,
        RecordKind::CorrectiveAction,
        RecordKind::ChangeRequest,
        RecordKind::Risk,
        RecordKind::Audit,
        RecordKind::ManagementReview,
        RecordKind::SoaVersion,
        RecordKind::Objective,
    ];

    /// The reference prefix, e.g. `NC`.
    pub fn prefix(self) -> &'static str {
        match self {
            RecordKind::Nonconformity => "NC",
            RecordKind::CorrectiveAction => "CA",
            RecordKind::ChangeRequest => "CR",
            RecordKind::Risk => "RISK",
            RecordKind::Audit => "AUD",
            RecordKind::ManagementReview => "MR",
            RecordKind::SoaVersion => "SOA",
            RecordKind::Objective => "OBJ",
        }
    }

    /// The name used in outputs, e.g. `nonconformity`.
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::Nonconformity => "nonconformity",
            RecordKind::CorrectiveAction => "corrective_action",
            RecordKind::ChangeRequest => "change_request",
            RecordKind::Risk => "risk",
            RecordKind::Audit => "audit",
            RecordKind::ManagementReview => "management_review",
            RecordKind::SoaVersion => "soa_version",
            RecordKind::Objective => "objective",
        }
    }
}

/// A record reference such as `NC-12`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordRef {
    /// The kind of record.
    pub kind: RecordKind,
    /// Its number, from 1.
    pub number: i64,
}

impl RecordRef {
    /// A reference to record `number` of `kind`.
    pub fn new(kind: RecordKind, number: i64) -> Self {
        RecordRef { kind, number }
    }

    /// Parses `NC-12` (case-insensitive, surrounding blanks ignored).
    pub fn parse(field: &str, value: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(
                field,
                format!(
                    "`{value}` is not a record reference; use PREFIX-NUMBER such as NC-12 (prefixes: NC, CA, CR, RISK, AUD, MR, SOA, OBJ)"
                ),
            )
        };
        let (prefix, number) = value.trim().split_once('-').ok_or_else(bad)?;
        let kind = RecordKind::ALL.into_iter().find(|k| k.prefix().eq_ignore_ascii_case(prefix)).ok_or_else(bad)?;
        let number: i64 = number.parse().map_err(|_| bad())?;
        if number < 1 {
            return Err(bad());
        }
        Ok(RecordRef { kind, number })
    }

    /// Parses a reference that must be of `kind`, e.g. a nonconformity where one is expected.
    pub fn parse_kind(field: &str, value: &str, kind: RecordKind) -> Result<Self> {
        let r = RecordRef::parse(field, value)?;
        if r.kind != kind {
            return Err(Error::invalid(
                field,
                format!("`{value}` is not a {} reference ({}-n)", kind.name(), kind.prefix()),
            ));
        }
        Ok(r)
    }
}

impl fmt::Display for RecordRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.kind.prefix(), self.number)
    }
}

/// A reference to one of the 93 Annex A controls, in canonical form (`A.8.28`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ControlRef(String);

impl ControlRef {
    /// Parses `A.8.28`, `a.8.28` or `8.28`; the control must exist in the catalogue.
    pub fn parse(field: &str, value: &str) -> Result<Self> {
        let canonical = canonical_control(value);
        if catalog().control(&canonical).is_some() {
            Ok(ControlRef(canonical))
        } else {
            Err(Error::invalid(
                field,
                format!(
                    "`{value}` is not an ISO/IEC 27001:2022 Annex A control; use A.5.1 to A.8.34 (query_controls lists them)"
                ),
            ))
        }
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Canonical spelling of a control reference or prefix: `a.8.28` and `8.28` become `A.8.28`.
pub fn canonical_control(value: &str) -> String {
    let v = value.trim();
    let rest = v.strip_prefix("A.").or_else(|| v.strip_prefix("a.")).unwrap_or(v);
    format!("A.{rest}")
}

impl fmt::Display for ControlRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The requirement clauses of ISO/IEC 27001:2022 (4 to 10) that a record may cite.
pub const CLAUSES: &[&str] = &[
    "4.1", "4.2", "4.3", "4.4", "5.1", "5.2", "5.3", "6.1", "6.1.1", "6.1.2", "6.1.3", "6.2", "6.3", "7.1", "7.2",
    "7.3", "7.4", "7.5", "7.5.1", "7.5.2", "7.5.3", "8.1", "8.2", "8.3", "9.1", "9.2", "9.2.1", "9.2.2", "9.3",
    "9.3.1", "9.3.2", "9.3.3", "10.1", "10.2",
];

/// A reference to a requirement clause, e.g. `9.2.1`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClauseRef(&'static str);

impl ClauseRef {
    /// Parses `9.2.1` (a leading `clause ` is ignored).
    pub fn parse(field: &str, value: &str) -> Result<Self> {
        let v = value.trim();
        let v = v.strip_prefix("clause ").unwrap_or(v).trim();
        CLAUSES
            .iter()
            .find(|c| **c == v)
            .map(|c| ClauseRef(c))
            .ok_or_else(|| {
                Error::invalid(
                    field,
                    format!("`{value}` is not a clause of ISO/IEC 27001:2022; use 4.1 to 10.2, e.g. 6.1.2 or 9.2 (Annex A controls go in `controls`)"),
                )
            })
    }

    /// The clause number.
    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_refs_round_trip() {
        let r = RecordRef::parse("ref", " nc-12 ").unwrap();
        assert_eq!(r, RecordRef::new(RecordKind::Nonconformity, 12));
        assert_eq!(r.to_string(), "NC-12");
        assert_eq!(RecordRef::parse("ref", "RISK-4").unwrap().kind, RecordKind::Risk);
        for bad in ["NC12", "NC-0", "NC--1", "XX-3", "NC-x", "", "NC-99999999999999999999"] {
            assert!(RecordRef::parse("ref", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn control_refs_are_canonical_and_must_exist() {
        assert_eq!(ControlRef::parse("c", "a.8.28").unwrap().as_str(), "A.8.28");
        assert_eq!(ControlRef::parse("c", "5.1").unwrap().as_str(), "A.5.1");
        let err = ControlRef::parse("controls", "A.8.35").unwrap_err().to_string();
        assert!(err.contains("`controls`") && err.contains("A.8.34"), "{err}");
        assert!(ControlRef::parse("c", "A.12.1.1").is_err());
    }

    #[test]
    fn clause_refs_must_be_in_the_standard() {
        assert_eq!(ClauseRef::parse("c", "clause 9.2.1").unwrap().as_str(), "9.2.1");
        assert!(ClauseRef::parse("c", "11.1").is_err());
        assert!(ClauseRef::parse("c", "A.8.28").is_err());
    }
}
