//! Timestamps and dates as stored and shown: UTC, RFC 3339 with microseconds, and
//! `YYYY-MM-DD` dates. Fixed-width text sorts in time order on every backend.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

use crate::error::{Error, Result};

/// A point in time formatted for storage (`2026-11-28T10:00:00.000000Z`).
pub fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses a `YYYY-MM-DD` date argument.
pub fn parse_date(field: &str, value: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d")
        .map_err(|_| Error::invalid(field, format!("`{value}` is not a date; use YYYY-MM-DD")))
}

/// A date formatted for storage and output.
pub fn date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}
