//! Bounded free text, checked once at the edge.

use crate::error::{Error, Result};

/// Longest title accepted, in characters.
pub const MAX_TITLE: usize = 200;
/// Longest long-form text accepted (descriptions, notes), in characters.
pub const MAX_TEXT: usize = 20_000;
/// Most items accepted in one list argument (references, evidence).
pub const MAX_LIST: usize = 50;

/// Trims `value` and checks it is non-empty and at most `max` characters.
pub fn required(field: &str, value: &str, max: usize) -> Result<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    bounded(field, v, max)
}

/// Trims an optional `value`; blank becomes `None`; checks the length.
pub fn optional(field: &str, value: Option<&str>, max: usize) -> Result<Option<String>> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => bounded(field, v, max).map(Some),
    }
}

fn bounded(field: &str, v: &str, max: usize) -> Result<String> {
    if v.contains('\0') {
        return Err(Error::invalid(field, "contains a NUL character; send plain text"));
    }
    let n = v.chars().count();
    if n > max {
        return Err(Error::invalid(field, format!("is {n} characters long; the limit is {max}")));
    }
    Ok(v.to_owned())
}

/// Checks a list's length and each entry, trimming entries and dropping duplicates.
pub fn list(field: &str, values: &[String], max_each: usize) -> Result<Vec<String>> {
    if values.len() > MAX_LIST {
        return Err(Error::invalid(field, format!("has {} entries; the limit is {MAX_LIST}", values.len())));
    }
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for v in values {
        let v = required(field, v, max_each)?;
        if !out.contains(&v) {
            out.push(v);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_bounds() {
        assert_eq!(required("title", "  x ", 5).unwrap(), "x");
        assert!(required("title", "   ", 5).is_err());
        assert!(required("title", "abcdef", 5).is_err());
        assert!(required("title", "a\0b", 5).is_err());
        assert_eq!(optional("n", Some(" "), 5).unwrap(), None);
        let e = required("title", "abcdef", 5).unwrap_err().to_string();
        assert!(e.contains("`title`") && e.contains("limit is 5"), "{e}");
    }

    #[test]
    fn lists_deduplicate_and_cap() {
        let l = list("evidence", &["a".into(), "a".into(), "b".into()], 10).unwrap();
        assert_eq!(l, vec!["a", "b"]);
        let many: Vec<String> = (0..=MAX_LIST).map(|i| i.to_string()).collect();
        assert!(list("evidence", &many, 10).is_err());
    }
}
