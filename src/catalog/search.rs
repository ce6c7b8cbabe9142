//! Filtering and relevance ranking of catalogue controls.

use super::{Control, Theme};

/// What a caller asks of the catalogue; every field narrows the result.
#[derive(Debug, Default, Clone)]
pub struct ControlQuery {
    /// Reference or reference prefix, canonical form (`A.8.28`, `A.8`).
    pub reference: Option<String>,
    /// Theme.
    pub theme: Option<Theme>,
    /// Attribute value (control type, property or concept), lower case.
    pub attribute: Option<String>,
    /// SOC 2 criterion such as `CC8.1`.
    pub soc2: Option<String>,
    /// Free text; controls are ranked by how well they match it.
    pub text: Option<String>,
}

fn reference_matches(reference: &str, wanted: &str) -> bool {
    reference == wanted || reference.strip_prefix(wanted).is_some_and(|rest| rest.starts_with('.'))
}

/// Words of at least two characters, lower case, for matching.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() >= 2).map(str::to_lowercase).collect()
}

/// Relevance of a control to free-text words: title words weigh most, then attributes,
/// theme and SOC 2 criteria. Zero means no match.
fn score(control: &Control, query_words: &[String]) -> u32 {
    let title = words(&control.title);
    let theme = format!("{:?}", control.theme).to_lowercase();
    query_words
        .iter()
        .map(|q| {
            let mut s = 0;
            if title.iter().any(|t| t == q) {
                s += 4;
            } else if title.iter().any(|t| t.starts_with(q.as_str()) || q.starts_with(t.as_str()) && t.len() >= 4) {
                s += 2;
            }
            if control.attributes().any(|a| a == q) {
                s += 1;
            }
            if theme == *q {
                s += 1;
            }
            if control.soc2_criteria.iter().any(|c| c.eq_ignore_ascii_case(q)) {
                s += 1;
            }
            s
        })
        .sum()
}

/// The controls matching `query`, most relevant first (catalogue order among equals).
pub fn rank<'a>(controls: &'a [Control], query: &ControlQuery) -> Vec<&'a Control> {
    let query_words = query.text.as_deref().map(words).unwrap_or_default();
    let mut hits: Vec<(u32, usize, &Control)> = controls
        .iter()
        .enumerate()
        .filter(|(_, c)| query.reference.as_deref().is_none_or(|r| reference_matches(&c.reference, r)))
        .filter(|(_, c)| query.theme.is_none_or(|t| c.theme == t))
        .filter(|(_, c)| query.attribute.as_deref().is_none_or(|a| c.attributes().any(|x| x == a)))
        .filter(|(_, c)| {
            query.soc2.as_deref().is_none_or(|s| c.soc2_criteria.iter().any(|x| x.eq_ignore_ascii_case(s)))
        })
        .map(|(i, c)| (score(c, &query_words), i, c))
        .filter(|(s, _, _)| query_words.is_empty() || *s > 0)
        .collect();
    hits.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    hits.into_iter().map(|(_, _, c)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::catalog;

    fn refs(query: ControlQuery) -> Vec<String> {
        rank(catalog().controls(), &query).into_iter().map(|c| c.reference.clone()).collect()
    }

    #[test]
    fn prefix_selects_a_theme_section_not_a_longer_number() {
        let found = refs(ControlQuery { reference: Some("A.8.2".into()), ..Default::default() });
        assert_eq!(found, vec!["A.8.2"]);
        let found = refs(ControlQuery { reference: Some("A.6".into()), ..Default::default() });
        assert_eq!(found.len(), 8);
    }

    #[test]
    fn text_ranks_title_matches_first() {
        let found = refs(ControlQuery { text: Some("secure coding".into()), ..Default::default() });
        assert_eq!(found.first().map(String::as_str), Some("A.8.28"));
        assert!(refs(ControlQuery { text: Some("zzzz".into()), ..Default::default() }).is_empty());
    }

    #[test]
    fn filters_combine() {
        let found = refs(ControlQuery {
            theme: Some(Theme::Technological),
            attribute: Some("corrective".into()),
            ..Default::default()
        });
        assert!(!found.is_empty());
        for r in &found {
            let c = catalog().control(r).unwrap();
            assert_eq!(c.theme, Theme::Technological);
            assert!(c.control_types.iter().any(|t| t == "corrective"));
        }
        let soc2 = refs(ControlQuery { soc2: Some("cc8.1".into()), ..Default::default() });
        assert!(soc2.contains(&"A.8.28".to_string()));
    }
}
