//! The audit log's hash chain, written once for both backends: each entry's hash is the
//! SHA-256 of its own fields and the previous entry's hash, so [`verify`] detects any row
//! edited, deleted or moved, and names it.
//!
//! The hashed text is the JSON array `[seq, at (µs since the epoch), actor, action, target,
//! before, after, source, prev_hash]`: unambiguous (no field can spill into the next) and the
//! same bytes whichever backend stored the row (instants are kept to the microsecond, which both
//! store exactly; `before`/`after` are stored as text, never re-encoded).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{AuditEntry, NewAuditEntry};

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// `at` as stored: to the microsecond.
pub fn stored_instant(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

/// The hash of an entry with these fields.
pub fn entry_hash(seq: i64, at: DateTime<Utc>, e: &NewAuditEntry, prev_hash: &str) -> String {
    let fields = (
        seq,
        at.timestamp_micros(),
        &e.actor,
        &e.action,
        &e.target,
        &e.before,
        &e.after,
        &e.source,
        prev_hash,
    );
    // Serializing strings, integers and options cannot fail.
    let text = serde_json::to_string(&fields).unwrap_or_default();
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The next entry of a chain whose last entry is `last` (`None`: the chain is empty).
pub fn next_entry(last: Option<(i64, &str)>, at: DateTime<Utc>, e: NewAuditEntry) -> AuditEntry {
    let (seq, prev_hash) = match last {
        Some((seq, hash)) => (seq + 1, hash.to_owned()),
        None => (1, GENESIS.to_owned()),
    };
    let at = stored_instant(at);
    let hash = entry_hash(seq, at, &e, &prev_hash);
    AuditEntry {
        seq,
        at,
        actor: e.actor,
        action: e.action,
        target: e.target,
        before: e.before,
        after: e.after,
        source: e.source,
        prev_hash,
        hash,
    }
}

/// One break in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainProblem {
    /// The row (by its `seq`) where the chain breaks.
    pub seq: i64,
    pub problem: String,
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainReport {
    pub entries: usize,
    /// The last entry's hash (publish it elsewhere to detect truncation of the tail).
    pub head: Option<String>,
    pub problems: Vec<ChainProblem>,
}

impl ChainReport {
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks every entry (in storage order by `seq`): numbering without gaps, each `prev_hash`
/// equal to the previous entry's hash, each hash recomputed from the row's own fields.
pub fn verify(entries: &[AuditEntry]) -> ChainReport {
    let mut problems = Vec::new();
    let mut prev: Option<&AuditEntry> = None;
    for e in entries {
        let (want_seq, want_prev) = match prev {
            Some(p) => (p.seq + 1, p.hash.as_str()),
            None => (1, GENESIS),
        };
        if e.seq != want_seq {
            problems.push(ChainProblem {
                seq: e.seq,
                problem: format!(
                    "expected row {want_seq} here: rows {want_seq}..{} were deleted",
                    e.seq - 1
                ),
            });
        } else if e.prev_hash != want_prev {
            problems.push(ChainProblem {
                seq: e.seq,
                problem: format!(
                    "its prev_hash does not match row {}'s hash: rows were reordered, deleted \
                     and renumbered, or replaced",
                    e.seq - 1
                ),
            });
        }
        let fields = NewAuditEntry {
            actor: e.actor.clone(),
            action: e.action.clone(),
            target: e.target.clone(),
            before: e.before.clone(),
            after: e.after.clone(),
            source: e.source.clone(),
        };
        if entry_hash(e.seq, e.at, &fields, &e.prev_hash) != e.hash {
            problems.push(ChainProblem {
                seq: e.seq,
                problem: "its content does not match its hash: the row was edited".into(),
            });
        }
        prev = Some(e);
    }
    ChainReport {
        entries: entries.len(),
        head: entries.last().map(|e| e.hash.clone()),
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: usize) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for i in 0..n {
            let last = out.last().map(|e| (e.seq, e.hash.as_str()));
            let e = next_entry(
                last,
                Utc::now(),
                NewAuditEntry {
                    actor: "bootstrap".into(),
                    action: "raise".into(),
                    target: format!("member:m{i}"),
                    after: Some(format!("{{\"amount\":\"{i}\"}}")),
                    ..Default::default()
                },
            );
            out.push(e);
        }
        out
    }

    #[test]
    fn an_intact_chain_verifies_and_each_tamper_is_named() {
        let c = chain(5);
        assert!(verify(&c).is_valid());
        let mut edited = c.clone();
        edited[2].after = Some("{\"amount\":\"999\"}".into());
        let r = verify(&edited);
        assert_eq!(r.problems.len(), 1, "{r:?}");
        assert_eq!(r.problems[0].seq, 3);
        assert!(r.problems[0].problem.contains("edited"));
        let mut deleted = c.clone();
        deleted.remove(1);
        let r = verify(&deleted);
        assert_eq!(r.problems[0].seq, 3);
        assert!(r.problems[0].problem.contains("deleted"), "{r:?}");
        let mut swapped = c.clone();
        let (a, b) = (swapped[1].clone(), swapped[2].clone());
        swapped[1] = AuditEntry { seq: 2, ..b };
        swapped[2] = AuditEntry { seq: 3, ..a };
        let r = verify(&swapped);
        assert!(r.problems.iter().any(|p| p.seq == 2), "{r:?}");
    }
}
