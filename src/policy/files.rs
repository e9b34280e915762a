//! The file-transfer policy: may this host's file at this path be read or written?
//!
//! Owns: `FileRule` (the `files.rules` entries), `Direction` and `judge_transfer`. The
//! semantics mirror command rules: rules scoped to the host by aliases/tags; **any matching
//! deny wins; then any matching ask; then an allow; no rule → deny**. Paths are checked and
//! matched by `paths.rs` only (`transfer_path`, `TreeGlob`). Pure: no IO.

use serde::Serialize;

use super::paths::{self, TreeGlob};
use super::{Action, Decision, Pattern, RuleRef, Subject};

/// Which way the bytes go, seen from the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// `ssh_download`: the host's file is read.
    Read,
    /// `ssh_upload`: the host's file is written.
    Write,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

/// One entry of `files.rules`, checked.
#[derive(Debug, Clone)]
pub struct FileRule {
    /// Position in `files.rules` (0-based).
    pub index: usize,
    pub id: Option<String>,
    pub action: Action,
    pub aliases: Vec<Pattern>,
    pub tags: Vec<Pattern>,
    pub read: Vec<TreeGlob>,
    pub write: Vec<TreeGlob>,
    /// Largest transfer this rule permits, in bytes.
    pub max_bytes: Option<u64>,
}

impl FileRule {
    /// `files rule #2 "id"` (1-based).
    pub fn label(&self) -> String {
        match &self.id {
            Some(id) => format!("files rule #{} \"{id}\"", self.index + 1),
            None => format!("files rule #{}", self.index + 1),
        }
    }

    pub fn applies_to(&self, subject: &Subject) -> bool {
        super::in_scope(&self.aliases, &self.tags, subject)
    }

    fn covers(&self, direction: Direction, path: &str) -> bool {
        let globs = match direction {
            Direction::Read => &self.read,
            Direction::Write => &self.write,
        };
        globs.iter().any(|g| g.matches(path))
    }
}

/// The decision for one transfer, and the byte cap of the rule that permitted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransferDecision {
    #[serde(flatten)]
    pub decision: Decision,
    pub max_bytes: Option<u64>,
}

/// Judges reading or writing `path` on `subject`. `path` must be absolute and normalized.
pub fn judge_transfer(rules: &[FileRule], subject: &Subject, direction: Direction, path: &str) -> TransferDecision {
    let verb = direction.name();
    let deny = |rule: Option<&FileRule>, reason: String| TransferDecision {
        decision: Decision {
            allowed: false,
            ask: false,
            rule: rule.map(|r| RuleRef { index: r.index, id: r.id.clone() }),
            reason,
            denied_command: None,
            elevate: None,
        },
        max_bytes: None,
    };
    if let Err(why) = paths::transfer_path(path) {
        return deny(None, why.to_string());
    }
    let matching: Vec<&FileRule> =
        rules.iter().filter(|r| r.applies_to(subject) && r.covers(direction, path)).collect();
    if let Some(rule) = matching.iter().find(|r| r.action == Action::Deny) {
        return deny(Some(rule), format!("{verb} {path} matches deny {}", rule.label()));
    }
    let (rule, ask) = match matching.iter().find(|r| r.action == Action::Ask) {
        Some(rule) => (*rule, true),
        None => match matching.first() {
            Some(rule) => (*rule, false),
            None => {
                return deny(None, format!("no files rule allows {verb} of {path} on {}", subject.alias));
            }
        },
    };
    // The tightest cap among the rules that permit it.
    let max_bytes = matching.iter().filter(|r| r.action != Action::Deny).filter_map(|r| r.max_bytes).min();
    let reason = match ask {
        true => format!("{verb} {path} needs a human's approval ({})", rule.label()),
        false => format!("{verb} {path} allowed by {}", rule.label()),
    };
    TransferDecision {
        decision: Decision {
            allowed: !ask,
            ask,
            rule: Some(RuleRef { index: rule.index, id: rule.id.clone() }),
            reason,
            denied_command: None,
            elevate: None,
        },
        max_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(index: usize, action: Action, read: &[&str], write: &[&str], tags: &[&str]) -> FileRule {
        FileRule {
            index,
            id: None,
            action,
            aliases: vec![],
            tags: tags.iter().map(|t| Pattern::new(t).unwrap()).collect(),
            read: read.iter().map(|g| TreeGlob::new(g).unwrap()).collect(),
            write: write.iter().map(|g| TreeGlob::new(g).unwrap()).collect(),
            max_bytes: Some(100 * (index as u64 + 1)),
        }
    }

    #[test]
    fn deny_wins_then_ask_then_allow_and_no_rule_denies() {
        let rules = vec![
            rule(0, Action::Allow, &["/var/log/**"], &["/srv/app/releases/**"], &["web"]),
            rule(1, Action::Deny, &["/var/log/secret/**"], &[], &[]),
            rule(2, Action::Ask, &[], &["/srv/app/releases/prod/*"], &[]),
        ];
        let tags = vec!["web".to_owned()];
        let web = Subject { alias: "h1", tags: &tags, deny_substrings: &[], principal: "local", groups: &[] };
        let judge = |d, p| judge_transfer(&rules, &web, d, p);
        let ok = judge(Direction::Read, "/var/log/nginx/access.log");
        assert!(ok.decision.allowed && ok.max_bytes == Some(100), "{ok:?}");
        let denied = judge(Direction::Read, "/var/log/secret/k");
        assert!(!denied.decision.allowed && denied.decision.reason.contains("files rule #2"), "{denied:?}");
        let ask = judge(Direction::Write, "/srv/app/releases/prod/v2.tar");
        assert!(ask.decision.ask && !ask.decision.allowed && ask.max_bytes == Some(100), "{ask:?}");
        assert_eq!(judge(Direction::Write, "/var/log/x").decision.action(), "deny", "read rules do not write");
        assert!(judge(Direction::Read, "/var/log/../../etc/shadow").decision.reason.contains("`..`"));
        let untagged = Subject { alias: "db1", tags: &[], deny_substrings: &[], principal: "local", groups: &[] };
        let none = judge_transfer(&rules, &untagged, Direction::Read, "/var/log/syslog");
        assert!(none.decision.reason.contains("no files rule allows read"), "{none:?}");
    }
}
