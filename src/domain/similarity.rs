//! Similar nonconformities (10.2 b: "whether similar nonconformities exist, or could
//! potentially occur") and recurrence: same controls or clauses, or similar words.

use std::collections::BTreeSet;

use serde::Serialize;

/// Words too common in findings to say anything about similarity.
const STOPWORDS: &[&str] = &[
    "the", "and", "for", "was", "were", "are", "not", "with", "from", "that", "this", "into", "has", "had", "have",
    "been", "but", "its", "our", "all", "any", "per", "via", "without", "found", "during", "work",
];

/// Text similarity from which two nonconformities count as similar (Jaccard of word sets).
pub const TEXT_THRESHOLD: f64 = 0.3;

/// The distinct significant words of a text: lower case, three letters or more, no stopwords.
pub fn words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_lowercase)
        .filter(|w| !STOPWORDS.contains(&w.as_str()))
        .collect()
}

/// Jaccard similarity of two word sets, 0 to 1.
pub fn jaccard(a: &BTreeSet<String>, b: &BTreeSet<String>) -> f64 {
    let union = a.union(b).count();
    if union == 0 {
        return 0.0;
    }
    a.intersection(b).count() as f64 / union as f64
}

/// An earlier nonconformity as similarity and recurrence judge it (no more is read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Reference, e.g. `NC-12`.
    pub reference: String,
    /// Title and description.
    pub text: String,
    /// Controls cited.
    pub controls: Vec<String>,
    /// Clauses cited.
    pub clauses: Vec<String>,
    /// When it was closed, if it is.
    pub closed_at: Option<String>,
}

impl Candidate {
    /// Its profile.
    pub fn profile(&self) -> Profile<'_> {
        Profile {
            reference: &self.reference,
            text: self.text.clone(),
            controls: &self.controls,
            clauses: &self.clauses,
        }
    }
}

/// What similarity is judged on.
#[derive(Debug, Clone)]
pub struct Profile<'a> {
    /// Reference.
    pub reference: &'a str,
    /// Title and description.
    pub text: String,
    /// Controls cited.
    pub controls: &'a [String],
    /// Clauses cited.
    pub clauses: &'a [String],
}

/// An earlier nonconformity similar to one being handled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Similar {
    /// Its reference.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Why it counts as similar: shared controls or clauses, similar text.
    pub reasons: Vec<String>,
}

/// The nonconformities among `others` similar to `this`, most similar first, at most `limit`.
pub fn similar(this: &Profile<'_>, others: &[Profile<'_>], limit: usize) -> Vec<Similar> {
    let mine = words(&this.text);
    let mut found: Vec<(usize, f64, Similar)> = others
        .iter()
        .filter(|o| o.reference != this.reference)
        .filter_map(|o| {
            let mut reasons = Vec::new();
            let shared: Vec<&String> = o.controls.iter().filter(|c| this.controls.contains(c)).collect();
            for c in &shared {
                reasons.push(format!("same control {c}"));
            }
            let shared_clauses: Vec<&String> = o.clauses.iter().filter(|c| this.clauses.contains(c)).collect();
            for c in &shared_clauses {
                reasons.push(format!("same clause {c}"));
            }
            let text = jaccard(&mine, &words(&o.text));
            if text >= TEXT_THRESHOLD {
                reasons.push(format!("similar text ({:.0}% of words shared)", text * 100.0));
            }
            (!reasons.is_empty()).then(|| {
                (shared.len() + shared_clauses.len(), text, Similar { reference: o.reference.to_owned(), reasons })
            })
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)));
    found.into_iter().take(limit).map(|(_, _, s)| s).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile<'a>(r: &'a str, text: &str, controls: &'a [String]) -> Profile<'a> {
        Profile { reference: r, text: text.into(), controls, clauses: &[] }
    }

    #[test]
    fn shared_controls_and_similar_text_count() {
        let c812 = vec!["A.8.12".to_string()];
        let none: Vec<String> = vec![];
        let this = profile("NC-9", "API key printed in the deploy log", &c812);
        let others = [
            profile("NC-1", "Unrelated laptop theft", &c812),
            profile("NC-2", "API key printed in build log output", &none),
            profile("NC-3", "Office door left open", &none),
            profile("NC-9", "API key printed in the deploy log", &c812),
        ];
        let found = similar(&this, &others, 10);
        let refs: Vec<&str> = found.iter().map(|s| s.reference.as_str()).collect();
        assert_eq!(refs, ["NC-1", "NC-2"]);
        assert_eq!(found[0].reasons, ["same control A.8.12"]);
        assert!(found[1].reasons[0].starts_with("similar text"), "{:?}", found[1].reasons);
    }

    #[test]
    fn words_drop_noise() {
        let w = words("The API-key was found in THE log");
        assert!(w.contains("api") && w.contains("key") && w.contains("log"));
        assert!(!w.contains("the") && !w.contains("in") && !w.contains("was"));
        assert_eq!(jaccard(&BTreeSet::new(), &BTreeSet::new()), 0.0);
    }
}
