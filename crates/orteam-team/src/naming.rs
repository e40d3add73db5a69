//! Deterministic key names: how orteam recognises its own keys in the ledger and at OpenRouter
//! without any other state.
//!
//! Every key orteam creates is named `orteam:<org>:<member>:<generation>`:
//! - at OpenRouter, that is the key's `name` (set *before* the key exists: it is in the
//!   `POST /keys` body), so a key whose creation response was lost is still found by name;
//! - in the ledger, the virtual key's `name` and the upstream key's `label` carry the same
//!   prefix plus the rotation policy, e.g. `orteam:acme:alice:3;rotate=30days;grace=1day`, so a
//!   running `orteam serve` can rotate keys that are due without the team file.
//!
//! Generations grow by one per new key of a member (creation, rotation, replacement) and are
//! never reused: a new key's generation is one more than the highest seen in the ledger *or* at
//! OpenRouter.

use std::fmt;
use std::time::Duration;

use crate::file::DEFAULT_ROTATION_GRACE;

/// The prefix of every name orteam gives a key.
pub const NAME_PREFIX: &str = "orteam";

/// A parsed key name or label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLabel {
    pub org: String,
    pub member: String,
    pub generation: u64,
    /// Rotation period, when the key rotates.
    pub rotate_every: Option<Duration>,
    /// How long this key's predecessor keeps working after this key replaced it, and how long
    /// this key keeps working after its successor is issued.
    pub grace: Duration,
}

impl KeyLabel {
    pub fn new(org: &str, member: &str, generation: u64) -> Self {
        KeyLabel {
            org: org.to_owned(),
            member: member.to_owned(),
            generation,
            rotate_every: None,
            grace: DEFAULT_ROTATION_GRACE,
        }
    }

    pub fn with_policy(mut self, rotate_every: Option<Duration>, grace: Duration) -> Self {
        self.rotate_every = rotate_every;
        self.grace = grace;
        self
    }

    /// The name at OpenRouter: `orteam:<org>:<member>:<generation>`.
    pub fn name(&self) -> String {
        format!(
            "{NAME_PREFIX}:{}:{}:{}",
            self.org, self.member, self.generation
        )
    }

    /// The ledger label: the name plus the rotation policy.
    pub fn label(&self) -> String {
        let mut s = self.name();
        if let Some(r) = self.rotate_every {
            s.push_str(";rotate=");
            s.push_str(&short_duration(r));
        }
        s.push_str(";grace=");
        s.push_str(&short_duration(self.grace));
        s
    }

    /// Parses a name or a label; `None` for anything orteam did not name.
    pub fn parse(text: &str) -> Option<KeyLabel> {
        let mut parts = text.split(';');
        let name = parts.next()?;
        let mut fields = name.split(':');
        if fields.next()? != NAME_PREFIX {
            return None;
        }
        let org = fields.next()?;
        let member = fields.next()?;
        let generation = fields.next()?.parse().ok()?;
        if fields.next().is_some() || org.is_empty() || member.is_empty() {
            return None;
        }
        let mut label = KeyLabel::new(org, member, generation);
        for p in parts {
            let (k, v) = p.split_once('=')?;
            let d = humantime::parse_duration(v).ok()?;
            match k {
                "rotate" => label.rotate_every = Some(d),
                "grace" => label.grace = d,
                _ => {}
            }
        }
        Some(label)
    }
}

/// `30d`, `12h`, `90m`, else humantime's form without spaces (`1h30m`).
pub fn short_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs > 0 && d.subsec_nanos() == 0 {
        for (unit, n) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
            if secs.is_multiple_of(n) {
                return format!("{}{unit}", secs / n);
            }
        }
    }
    humantime::format_duration(d).to_string().replace(' ', "")
}

impl fmt::Display for KeyLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let l = KeyLabel::new("acme", "alice", 3).with_policy(
            Some(Duration::from_secs(30 * 86400)),
            Duration::from_secs(3600),
        );
        assert_eq!(l.name(), "orteam:acme:alice:3");
        assert_eq!(l.label(), "orteam:acme:alice:3;rotate=30d;grace=1h");
        assert_eq!(KeyLabel::parse(&l.label()), Some(l.clone()));
        let bare = KeyLabel::parse("orteam:acme:alice:3").unwrap();
        assert_eq!(bare.generation, 3);
        assert_eq!(bare.rotate_every, None);
        assert_eq!(KeyLabel::parse("shared gateway key"), None);
        assert_eq!(KeyLabel::parse("orteam:acme:alice"), None);
        assert_eq!(KeyLabel::parse("orteam:acme:alice:x"), None);
    }
}
