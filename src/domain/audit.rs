//! The tamper-evident audit trail: every write appends an entry whose SHA-256 covers its own
//! fields and the previous entry's hash, so changing or removing any entry breaks the chain
//! from there on.

use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The fields of one audit-trail entry that its hash covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryFields<'a> {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When (storage stamp).
    pub at: &'a str,
    /// Who.
    pub actor: &'a str,
    /// Which operation.
    pub operation: &'a str,
    /// The record written.
    pub record_ref: &'a str,
    /// What was written (JSON).
    pub detail: &'a str,
}

/// The hex SHA-256 of an entry chained to `prev_hash`. Each field is length-prefixed so no
/// two different entries encode alike. On PostgreSQL the store computes the same hash in its
/// append statement; verification recomputes it here, and the PostgreSQL store suite checks
/// the two agree.
pub fn entry_hash(prev_hash: &str, e: &EntryFields<'_>) -> String {
    hex::encode(digest(prev_hash, e))
}

/// SHA-256 over each part, length-prefixed, so no two entries hash the same input.
fn digest(prev_hash: &str, e: &EntryFields<'_>) -> [u8; 32] {
    let mut h = Sha256::new();
    let seq = e.seq.to_string();
    for part in [prev_hash, &seq, e.at, e.actor, e.operation, e.record_ref, e.detail] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

/// Whether `hash` is [`entry_hash`] of the entry (compared without allocating).
fn hash_matches(prev_hash: &str, e: &EntryFields<'_>, hash: &str) -> bool {
    let mut hex = [0u8; 64];
    hex::encode_to_slice(digest(prev_hash, e), &mut hex).is_ok() && hex == hash.as_bytes()
}

/// Why the chain is broken at an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// An entry is missing or out of order.
    Gap {
        /// The sequence number expected.
        expected: i64,
    },
    /// The entry's `prev_hash` is not the previous entry's hash.
    Link,
    /// The entry's stored hash does not match its content.
    Content,
}

impl Break {
    /// A sentence for reports.
    pub fn describe(&self, seq: i64) -> String {
        match self {
            Break::Gap { expected } => format!("entry {expected} is missing (next entry found is {seq})"),
            Break::Link => format!("entry {seq} does not link to the hash of entry {}", seq - 1),
            Break::Content => format!("entry {seq} was altered: its content does not match its hash"),
        }
    }
}

/// Walks a chain entry by entry, in sequence order.
#[derive(Debug)]
pub struct ChainWalk {
    expected_seq: i64,
    prev_hash: String,
}

impl Default for ChainWalk {
    fn default() -> Self {
        ChainWalk { expected_seq: 1, prev_hash: GENESIS.to_owned() }
    }
}

impl ChainWalk {
    /// A walk that starts at entry `seq`, whose predecessor's hash is `prev_hash` (to check a
    /// chain in segments).
    pub fn resume(seq: i64, prev_hash: &str) -> Self {
        ChainWalk { expected_seq: seq, prev_hash: prev_hash.to_owned() }
    }

    /// The sequence number the next entry must have.
    pub fn expected_seq(&self) -> i64 {
        self.expected_seq
    }

    /// Checks the next entry; on success it becomes the link for the one after.
    pub fn step(&mut self, e: &EntryFields<'_>, prev_hash: &str, hash: &str) -> Result<(), Break> {
        if e.seq != self.expected_seq {
            return Err(Break::Gap { expected: self.expected_seq });
        }
        if prev_hash != self.prev_hash {
            return Err(Break::Link);
        }
        if !hash_matches(prev_hash, e, hash) {
            return Err(Break::Content);
        }
        self.expected_seq += 1;
        hash.clone_into(&mut self.prev_hash);
        Ok(())
    }

    /// The hash of the last entry checked (the genesis value before any).
    pub fn head(&self) -> &str {
        &self.prev_hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<(EntryFields<'static>, String, String)> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let e = EntryFields { seq, at: "t", actor: "a", operation: "op", record_ref: "NC-1", detail: "{}" };
                let h = entry_hash(&prev, &e);
                let out = (e, prev.clone(), h.clone());
                prev = h;
                out
            })
            .collect()
    }

    #[test]
    fn intact_chain_walks() {
        let mut w = ChainWalk::default();
        for (e, p, h) in chain(5) {
            w.step(&e, &p, &h).unwrap();
        }
        assert_ne!(w.head(), GENESIS);
    }

    #[test]
    fn altered_entry_is_found() {
        let mut entries = chain(3);
        entries[1].0.detail = "{\"x\":1}";
        let mut w = ChainWalk::default();
        w.step(&entries[0].0, &entries[0].1, &entries[0].2).unwrap();
        assert_eq!(w.step(&entries[1].0, &entries[1].1, &entries[1].2), Err(Break::Content));
    }

    #[test]
    fn removed_entry_is_a_gap_and_relinked_entry_breaks_link() {
        let entries = chain(3);
        let mut w = ChainWalk::default();
        w.step(&entries[0].0, &entries[0].1, &entries[0].2).unwrap();
        assert_eq!(w.step(&entries[2].0, &entries[2].1, &entries[2].2), Err(Break::Gap { expected: 2 }));
        let mut w = ChainWalk::default();
        w.step(&entries[0].0, &entries[0].1, &entries[0].2).unwrap();
        let forged = EntryFields { seq: 2, ..entries[1].0.clone() };
        assert_eq!(w.step(&forged, GENESIS, &entry_hash(GENESIS, &forged)), Err(Break::Link));
    }

    #[test]
    fn field_boundaries_matter() {
        let a = EntryFields { seq: 1, at: "t", actor: "ab", operation: "c", record_ref: "r", detail: "d" };
        let b = EntryFields { actor: "a", operation: "bc", ..a.clone() };
        assert_ne!(entry_hash(GENESIS, &a), entry_hash(GENESIS, &b));
    }
}
