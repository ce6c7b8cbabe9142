//! Similar nonconformities (10.2 b: "whether similar nonconformities exist, or could
//! potentially occur") and recurrence: same controls or clauses, or similar words.
//!
//! Title, description, controls and clauses of a nonconformity never change once logged, so
//! what similarity compares ([`Known`]) is worked out once per nonconformity and kept in a
//! [`SimilarityIndex`] of the most recent ones, overall and per control; a new finding is
//! compared with those instead of re-reading and re-splitting earlier texts on every write.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use serde::Serialize;

use super::references::{RecordKind, RecordRef};

/// Words too common in findings to say anything about similarity.
const STOPWORDS: &[&str] = &[
    "the", "and", "for", "was", "were", "are", "not", "with", "from", "that", "this", "into", "has", "had", "have",
    "been", "but", "its", "our", "all", "any", "per", "via", "without", "found", "during", "work",
];

/// Text similarity from which two nonconformities count as similar (Jaccard of word sets).
pub const TEXT_THRESHOLD: f64 = 0.3;

/// The distinct significant words of a text (lower case, three letters or more, no
/// stopwords), each kept as a 64-bit hash, sorted: comparing two findings compares integers
/// (two different words sharing a hash is too unlikely to matter for a hint).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Words(Box<[u64]>);

impl Words {
    /// The significant words of `text`.
    pub fn of(text: &str) -> Self {
        let mut words: Vec<u64> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.chars().count() >= 3)
            .map(str::to_lowercase)
            .filter(|w| !STOPWORDS.contains(&w.as_str()))
            .map(|w| {
                let mut h = DefaultHasher::new();
                w.hash(&mut h);
                h.finish()
            })
            .collect();
        words.sort_unstable();
        words.dedup();
        Words(words.into_boxed_slice())
    }

    /// Jaccard similarity of two word sets, 0 to 1.
    pub fn jaccard(&self, other: &Words) -> f64 {
        let (a, b) = (&self.0, &other.0);
        let (mut i, mut j, mut shared) = (0, 0, 0usize);
        while i < a.len() && j < b.len() {
            match a[i].cmp(&b[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    shared += 1;
                    i += 1;
                    j += 1;
                }
            }
        }
        let union = a.len() + b.len() - shared;
        if union == 0 { 0.0 } else { shared as f64 / union as f64 }
    }
}

/// A nonconformity as similarity judges it: its number, the words of its title and
/// description, the controls and clauses it cites. None of these change after logging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    /// Its number (`NC-n`).
    pub number: i64,
    /// Significant words of title and description.
    pub words: Words,
    /// Controls cited.
    pub controls: Vec<String>,
    /// Clauses cited.
    pub clauses: Vec<String>,
}

impl Known {
    /// What similarity compares of a nonconformity numbered `number` (0 for one not yet logged).
    pub fn new(number: i64, title: &str, description: &str, controls: Vec<String>, clauses: Vec<String>) -> Self {
        Known { number, words: Words::of(&format!("{title} {description}")), controls, clauses }
    }
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

/// The nonconformities among `others` similar to `this` (itself excluded), most similar
/// first (most shared controls and clauses, then most shared words, then newest), at most
/// `limit`. Only those shown get their reasons written out.
pub fn similar<'a>(this: &Known, others: impl IntoIterator<Item = &'a Known>, limit: usize) -> Vec<Similar> {
    let mut scored: Vec<(usize, f64, &Known)> = others
        .into_iter()
        .filter(|o| o.number != this.number)
        .filter_map(|o| {
            let shared = shared(&o.controls, &this.controls).count() + shared(&o.clauses, &this.clauses).count();
            let text = this.words.jaccard(&o.words);
            (shared > 0 || text >= TEXT_THRESHOLD).then_some((shared, text, o))
        })
        .collect();
    let most_similar_first = |a: &(usize, f64, &Known), b: &(usize, f64, &Known)| {
        b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)).then(b.2.number.cmp(&a.2.number))
    };
    // Usually hundreds qualify (every finding on a control shares it) and ten are shown: set
    // those ten apart before sorting.
    if limit < scored.len() {
        scored.select_nth_unstable_by(limit, most_similar_first);
        scored.truncate(limit);
    }
    scored.sort_unstable_by(most_similar_first);
    scored
        .into_iter()
        .map(|(_, text, o)| {
            let mut reasons: Vec<String> =
                shared(&o.controls, &this.controls).map(|c| format!("same control {c}")).collect();
            reasons.extend(shared(&o.clauses, &this.clauses).map(|c| format!("same clause {c}")));
            if text >= TEXT_THRESHOLD {
                reasons.push(format!("similar text ({}% of words shared)", percent(text)));
            }
            Similar { reference: RecordRef::new(RecordKind::Nonconformity, o.number).to_string(), reasons }
        })
        .collect()
}

/// A share (0 to 1) as a whole percentage, rounded as `{:.0}` would (ties to even), without
/// float formatting.
fn percent(share: f64) -> u32 {
    (share * 100.0).round_ties_even() as u32
}

/// The items of `theirs` also in `mine`.
fn shared<'a>(theirs: &'a [String], mine: &'a [String]) -> impl Iterator<Item = &'a String> {
    theirs.iter().filter(|c| mine.contains(c))
}

/// What a [`SimilarityIndex`] needs read before it can answer for some controls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refresh {
    /// `None`: read the newest nonconformities; `Some(n)`: read those numbered above `n`. At
    /// most [`SimilarityIndex::limit`] either way, newest first.
    pub after: Option<i64>,
    /// Controls whose newest nonconformities (at most the limit each) are to be read.
    pub controls: Vec<String>,
    /// `Some(seq)`: read the closures recorded in the audit trail after entry `seq`; `None`:
    /// the index holds no closures yet, so there are none to follow.
    pub closures_after: Option<i64>,
}

/// Audit-trail entries [`Observed::closed`] follows at most; after more, the index reads its
/// per-control lists again rather than read the whole stretch.
pub const CLOSURES_FOLLOWED: i64 = 10_000;

/// A nonconformity as read for the index: what similarity compares, and when it was closed
/// (a closed nonconformity stays closed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// What similarity compares.
    pub known: Known,
    /// When it was closed (UTC stamp), if it is.
    pub closed_at: Option<String>,
}

/// What was read for a [`Refresh`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// The audit-trail head (its last entry's `seq`), read no later than everything else:
    /// closures recorded after it are followed next time.
    pub head: i64,
    /// The nonconformities asked for by number, newest first.
    pub recent: Vec<Seen>,
    /// Per control asked for, the newest nonconformities citing it.
    pub per_control: Vec<(String, Vec<Seen>)>,
    /// Closures recorded after [`Refresh::closures_after`] (number, when), or `None` when
    /// more than [`CLOSURES_FOLLOWED`] entries were recorded since: the lists are then read
    /// again.
    pub closed: Option<Vec<(i64, String)>>,
}

/// The nonconformities a new one is compared with: the most recent ones overall and, per
/// control, the most recent citing it (a control's list is read on first use), at most
/// `limit` each, and when those on a control's list were closed (for recurrence). It follows
/// the database by reading only what was logged since it last looked, and the closures the
/// audit trail recorded since; when more than `limit` were logged meanwhile, or too much was
/// recorded to follow, it forgets the per-control lists so they are read again, rather than
/// miss any.
#[derive(Debug)]
pub struct SimilarityIndex {
    limit: usize,
    caught_up: Option<i64>,
    newest: BTreeMap<i64, Arc<Known>>,
    by_control: HashMap<String, BTreeMap<i64, Arc<Known>>>,
    closed: HashMap<i64, Box<str>>,
    closures_seen: Option<i64>,
}

impl SimilarityIndex {
    /// An empty index keeping `limit` nonconformities overall and per control.
    pub fn new(limit: usize) -> Self {
        SimilarityIndex {
            limit: limit.max(1),
            caught_up: None,
            newest: BTreeMap::new(),
            by_control: HashMap::new(),
            closed: HashMap::new(),
            closures_seen: None,
        }
    }

    /// How many nonconformities it keeps overall and per control.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// What to read before comparing with nonconformities citing `controls`.
    pub fn refresh_for(&self, controls: &[String]) -> Refresh {
        let mut unread: Vec<String> = Vec::new();
        for c in controls {
            if !self.by_control.contains_key(c) && !unread.contains(c) {
                unread.push(c.clone());
            }
        }
        Refresh { after: self.caught_up, controls: unread, closures_after: self.closures_seen }
    }

    /// Takes in what was read for `refresh`.
    pub fn apply(&mut self, refresh: &Refresh, read: Observed) {
        let gap = (refresh.after.is_some() && read.recent.len() >= self.limit)
            || (refresh.closures_after.is_some() && read.closed.is_none());
        if gap {
            self.by_control.clear();
            self.closed.clear();
        }
        let highest = read.recent.iter().map(|s| s.known.number).max().unwrap_or(0);
        self.caught_up = Some(self.caught_up.unwrap_or(0).max(highest).max(refresh.after.unwrap_or(0)));
        // Lists read here reflect the closures up to `read.head` only; if another refresh has
        // already followed the trail past it, follow it again from there next time.
        self.closures_seen = Some(match self.closures_seen {
            Some(seen) if read.per_control.is_empty() => seen.max(read.head),
            _ => read.head,
        });
        for (control, rows) in read.per_control {
            let list = self.by_control.entry(control).or_default();
            for s in rows {
                if let Some(at) = s.closed_at {
                    self.closed.insert(s.known.number, at.into());
                }
                list.entry(s.known.number).or_insert_with(|| Arc::new(s.known));
            }
        }
        for s in read.recent {
            let k = Arc::new(s.known);
            let mut listed = false;
            for c in &k.controls {
                if let Some(list) = self.by_control.get_mut(c) {
                    list.entry(k.number).or_insert_with(|| k.clone());
                    listed = true;
                }
            }
            if let (true, Some(at)) = (listed, s.closed_at) {
                self.closed.insert(k.number, at.into());
            }
            self.newest.entry(k.number).or_insert(k);
        }
        for (number, at) in read.closed.unwrap_or_default() {
            if self.listed(number) {
                self.closed.insert(number, at.into());
            }
        }
        let limit = self.limit;
        trim(&mut self.newest, limit);
        let mut dropped = Vec::new();
        for list in self.by_control.values_mut() {
            dropped.extend(trim(list, limit));
        }
        for number in dropped {
            if !self.listed(number) {
                self.closed.remove(&number);
            }
        }
    }

    /// Whether nonconformity `number` is on some control's list.
    fn listed(&self, number: i64) -> bool {
        self.by_control.values().any(|l| l.contains_key(&number))
    }

    /// The nonconformities among those kept (the most recent overall and the most recent
    /// citing one of its controls) similar to `this`: see [`similar`].
    pub fn similar_to(&self, this: &Known, shown: usize) -> Vec<Similar> {
        let lists: Vec<&BTreeMap<i64, Arc<Known>>> =
            this.controls.iter().filter_map(|c| self.by_control.get(c)).collect();
        let cited = lists.iter().enumerate().flat_map(|(i, list)| {
            let earlier = &lists[..i];
            list.iter()
                .filter(move |(n, _)| !self.newest.contains_key(n) && !earlier.iter().any(|l| l.contains_key(n)))
                .map(|(_, k)| k.as_ref())
        });
        similar(this, self.newest.values().map(Arc::as_ref).chain(cited), shown)
    }

    /// Recurrence (10.2 b): the references of the nonconformities among the most recent
    /// citing one of `this`'s controls that were closed at or after `since` (a UTC stamp),
    /// newest first.
    pub fn closed_since(&self, this: &Known, since: &str) -> Vec<String> {
        let mut numbers: Vec<i64> = this
            .controls
            .iter()
            .filter_map(|c| self.by_control.get(c))
            .flat_map(|list| list.keys().copied())
            .filter(|n| *n != this.number && self.closed.get(n).is_some_and(|at| **at >= *since))
            .collect();
        numbers.sort_unstable_by(|a, b| b.cmp(a));
        numbers.dedup();
        numbers.into_iter().map(|n| RecordRef::new(RecordKind::Nonconformity, n).to_string()).collect()
    }
}

/// Keeps the `limit` highest-numbered entries of `list`; returns the numbers dropped.
fn trim(list: &mut BTreeMap<i64, Arc<Known>>, limit: usize) -> Vec<i64> {
    let mut dropped = Vec::new();
    while list.len() > limit {
        if let Some((n, _)) = list.pop_first() {
            dropped.push(n);
        }
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(number: i64, text: &str, controls: &[&str]) -> Known {
        Known::new(number, text, "", controls.iter().map(|c| c.to_string()).collect(), Vec::new())
    }

    #[test]
    fn shared_controls_and_similar_text_count() {
        let this = known(9, "API key printed in the deploy log", &["A.8.12"]);
        let others = [
            known(1, "Unrelated laptop theft", &["A.8.12"]),
            known(2, "API key printed in build log output", &[]),
            known(3, "Office door left open", &[]),
            known(9, "API key printed in the deploy log", &["A.8.12"]),
        ];
        let found = similar(&this, &others, 10);
        let refs: Vec<&str> = found.iter().map(|s| s.reference.as_str()).collect();
        assert_eq!(refs, ["NC-1", "NC-2"]);
        assert_eq!(found[0].reasons, ["same control A.8.12"]);
        assert!(found[1].reasons[0].starts_with("similar text"), "{:?}", found[1].reasons);
    }

    #[test]
    fn the_most_similar_are_those_a_full_ranking_puts_first() {
        let words = ["key", "log", "deploy", "token", "backup", "laptop", "badge", "vendor"];
        let others: Vec<Known> = (1..=60)
            .map(|n| {
                let text: Vec<&str> =
                    words.iter().enumerate().filter(|(i, _)| n % (i + 2) == 0).map(|(_, w)| *w).collect();
                let controls: &[&str] = if n % 3 == 0 { &["A.8.12", "A.5.15"] } else { &["A.8.12"] };
                known(n as i64, &text.join(" "), controls)
            })
            .collect();
        let this = known(0, "key log deploy token", &["A.8.12", "A.5.15"]);
        let all = similar(&this, &others, others.len());
        assert_eq!(all.len(), others.len(), "every one shares A.8.12");
        for shown in [0, 1, 5, 10, 59] {
            assert_eq!(similar(&this, &others, shown), all[..shown], "top {shown}");
        }
    }

    #[test]
    fn shared_words_are_rounded_as_formatting_rounds() {
        for union in 1..=80u32 {
            for shared in 0..=union {
                let text = f64::from(shared) / f64::from(union);
                assert_eq!(percent(text).to_string(), format!("{:.0}", text * 100.0), "{shared}/{union}");
            }
        }
    }

    #[test]
    fn words_drop_noise_and_repeats() {
        let w = Words::of("The API-key was found in THE log, the log");
        assert_eq!(w, Words::of("api key log"), "lower case, once each; no short words or stopwords");
        assert_eq!(w.0.len(), 3);
        assert_eq!(Words::default().jaccard(&Words::default()), 0.0);
        assert_eq!(Words::of("alpha beta gamma").jaccard(&Words::of("beta gamma delta")), 0.5);
    }

    fn seen(number: i64, text: &str, controls: &[&str]) -> Seen {
        Seen { known: known(number, text, controls), closed_at: None }
    }

    fn read(head: i64, recent: Vec<Seen>, per_control: Vec<(&str, Vec<Seen>)>) -> Observed {
        let per_control = per_control.into_iter().map(|(c, rows)| (c.to_string(), rows)).collect();
        Observed { head, recent, per_control, closed: Some(vec![]) }
    }

    #[test]
    fn index_reads_the_newest_first_then_only_what_is_new() {
        let mut index = SimilarityIndex::new(2);
        let first = index.refresh_for(&[]);
        assert_eq!(first, Refresh { after: None, controls: vec![], closures_after: None });
        index.apply(&first, read(10, vec![seen(5, "five", &[]), seen(4, "four", &[])], vec![]));
        let next = index.refresh_for(&["A.5.1".to_string()]);
        assert_eq!(next, Refresh { after: Some(5), controls: vec!["A.5.1".to_string()], closures_after: Some(10) });
        index.apply(
            &next,
            read(12, vec![seen(6, "six", &["A.5.1"])], vec![("A.5.1", vec![seen(3, "three", &["A.5.1"])])]),
        );
        assert_eq!(
            index.refresh_for(&["A.5.1".to_string()]),
            Refresh { after: Some(6), controls: vec![], closures_after: Some(12) }
        );
        let this = known(0, "new", &["A.5.1"]);
        let refs: Vec<String> = index.similar_to(&this, 10).into_iter().map(|s| s.reference).collect();
        assert_eq!(refs, ["NC-6", "NC-3"], "the control's list took in NC-6 as it arrived");
        assert_eq!(index.newest.keys().copied().collect::<Vec<_>>(), [5, 6], "only the newest two are kept");
    }

    #[test]
    fn index_forgets_per_control_lists_after_a_gap() {
        let mut index = SimilarityIndex::new(2);
        let first = index.refresh_for(&["A.5.1".to_string()]);
        index.apply(
            &first,
            read(1, vec![seen(1, "one", &["A.5.1"])], vec![("A.5.1", vec![seen(1, "one", &["A.5.1"])])]),
        );
        let next = index.refresh_for(&["A.5.1".to_string()]);
        assert!(next.controls.is_empty());
        index.apply(&next, read(9, vec![seen(9, "nine", &[]), seen(8, "eight", &[])], vec![]));
        let after_gap = index.refresh_for(&["A.5.1".to_string()]);
        assert_eq!(
            after_gap,
            Refresh { after: Some(9), controls: vec!["A.5.1".to_string()], closures_after: Some(9) },
            "read again: 2..7 unseen"
        );
    }

    #[test]
    fn recurrence_follows_closures_recorded_after_the_lists_were_read() {
        let mut index = SimilarityIndex::new(3);
        let mut old = seen(1, "old", &["A.5.17"]);
        old.closed_at = Some("2025-01-10T00:00:00.000000Z".into());
        let mut recent = seen(2, "recent", &["A.5.17"]);
        recent.closed_at = Some("2026-06-01T00:00:00.000000Z".into());
        let first = index.refresh_for(&["A.5.17".to_string()]);
        index.apply(&first, read(20, vec![], vec![("A.5.17", vec![recent, old, seen(3, "open", &["A.5.17"])])]));
        let this = known(0, "new", &["A.5.17", "A.8.12"]);
        let since = "2025-11-28T00:00:00.000000Z";
        assert_eq!(index.closed_since(&this, since), ["NC-2"], "NC-1 closed more than a year ago; NC-3 is open");

        let next = index.refresh_for(&["A.5.17".to_string()]);
        assert_eq!(next.closures_after, Some(20));
        let mut later = read(25, vec![], vec![]);
        later.closed =
            Some(vec![(3, "2026-11-27T00:00:00.000000Z".into()), (99, "2026-11-27T00:00:00.000000Z".into())]);
        index.apply(&next, later);
        assert_eq!(index.closed_since(&this, since), ["NC-3", "NC-2"]);
        assert!(!index.closed.contains_key(&99), "closures of nonconformities on no list are not kept");

        let next = index.refresh_for(&[]);
        index.apply(&next, read(26, vec![seen(4, "four", &["A.5.17"])], vec![]));
        assert!(!index.closed.contains_key(&1), "NC-1 left the list, and its closure with it");
        assert_eq!(index.closed_since(&this, since), ["NC-3", "NC-2"]);

        let next = index.refresh_for(&[]);
        let mut flood = read(26 + CLOSURES_FOLLOWED + 1, vec![], vec![]);
        flood.closed = None;
        index.apply(&next, flood);
        assert!(index.closed_since(&this, since).is_empty(), "too much to follow: the lists are forgotten");
        assert_eq!(index.refresh_for(&["A.5.17".to_string()]).controls, ["A.5.17"], "and read again");
    }

    #[test]
    fn lists_read_before_a_later_refresh_make_the_trail_be_followed_again() {
        let mut index = SimilarityIndex::new(3);
        let first = index.refresh_for(&[]);
        index.apply(&first, read(10, vec![], vec![]));
        // Two writers refresh at once; both need A.5.17's list. The second reads after closure
        // 18 of NC-1 and applies first; the first read the list before it and applies last.
        let both = index.refresh_for(&["A.5.17".to_string()]);
        index.apply(&both, read(20, vec![], vec![]));
        assert_eq!(index.refresh_for(&[]).closures_after, Some(20));
        index.apply(&both, read(15, vec![], vec![("A.5.17", vec![seen(1, "one", &["A.5.17"])])]));
        assert_eq!(
            index.refresh_for(&[]).closures_after,
            Some(15),
            "closure 18 may be missing from that list: the trail is followed again from 15"
        );
    }
}
