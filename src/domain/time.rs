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
    let v = value.trim();
    let shaped = v.len() == 10
        && v.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
    shaped
        .then(|| NaiveDate::parse_from_str(v, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| Error::invalid(field, format!("`{value}` is not a date; use YYYY-MM-DD")))
}

/// A date formatted for storage and output.
pub fn date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_exactly_yyyy_mm_dd() {
        assert!(parse_date("d", "2026-11-28").is_ok());
        for bad in ["+12026-01-01", "2026-1-1", "2026-02-30", "20261128", " ", "2026-11-28T00:00"] {
            assert!(parse_date("d", bad).is_err(), "{bad}");
        }
    }
}
