//! Validation of one `rules:` entry of `policy.yml`: its `action`, host and principal
//! scopes, matcher, `allow_constructs` and `become`, with file:line:col errors.
//!
//! Owns: `RawRule` → `policy::Rule`, and the shared `action` check (`files.rules` uses it
//! too). Never: the rest of `policy.yml` (that is `validate_policy.rs`), judging a command,
//! IO.

use super::Severity;
use super::locate::Locator;
use super::raw::RawRule;
use super::types::Host;
use super::validate::{Source, Validator};
use crate::policy::{Action, Become, BecomeMethod, Construct, Matcher, Pattern, Rule};

impl Validator<'_> {
    /// A rule's `action` (the anchor's default is deny); `None` after reporting a bad one.
    pub(super) fn action(&mut self, src: &Source, pos: super::Pos, key: &str, value: Option<&str>) -> Option<Action> {
        match value.unwrap_or("deny") {
            "allow" => Some(Action::Allow),
            "deny" => Some(Action::Deny),
            "ask" => Some(Action::Ask),
            other => {
                self.push(Severity::Error, src, pos, key.to_owned(), format!("{other:?} is not allow, deny or ask"));
                None
            }
        }
    }

    pub(super) fn rule(&mut self, src: &Source, loc: &Locator, i: usize, r: &RawRule, hosts: &[Host]) -> Option<Rule> {
        let pos = loc.key("action", None, i);
        let key = |k: &str| format!("rules[{i}].{k}");
        let action = self.action(src, pos, &key("action"), r.action.as_deref())?;
        let mut patterns = |list: &[String], k: &str| -> Vec<Pattern> {
            list.iter()
                .filter_map(|p| match Pattern::new(p) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        self.push(Severity::Error, src, pos, key(k), format!("invalid glob {p:?}: {e}"));
                        None
                    }
                })
                .collect()
        };
        let aliases = patterns(&r.aliases, "aliases");
        let tags = patterns(&r.tags, "tags");
        let principals = patterns(&r.principals, "principals");
        let groups = patterns(&r.groups, "groups");
        let commands = patterns(&r.commands, "commands");
        let mut matchers = Vec::new();
        if !commands.is_empty() {
            matchers.push(Matcher::Globs(commands));
        }
        if !r.simple_binaries.is_empty() {
            matchers.push(Matcher::Simple { binaries: r.simple_binaries.clone(), max_args: r.simple_max_args });
        }
        if let Some(binary) = &r.binary {
            let path_args =
                r.path_args.as_ref().map(|pa| (pa.indices.clone(), patterns(&pa.patterns, "path_args.patterns")));
            let m = Matcher::Structured {
                binary: binary.clone(),
                arg_prefix: r.arg_prefix.clone().unwrap_or_default(),
                path_args,
                allow_extra_args: r.allow_extra_args.unwrap_or(true),
            };
            if m.is_inert() {
                self.push(
                    Severity::Warning,
                    src,
                    pos,
                    key("binary"),
                    "a rule with only `binary` never matches; add arg_prefix or path_args".into(),
                );
            } else {
                matchers.push(m);
            }
        }
        let mut allow_constructs = Vec::new();
        for name in &r.allow_constructs {
            match Construct::from_name(name) {
                Some(c) => allow_constructs.push(c),
                None => {
                    let known: Vec<_> = Construct::ALL.iter().map(|c| c.name()).collect();
                    self.push(
                        Severity::Error,
                        src,
                        pos,
                        key("allow_constructs"),
                        format!("unknown construct {name:?}; known: {}", known.join(", ")),
                    );
                }
            }
        }
        let elevate = self.become_of(src, loc, i, r, action);
        let rule = Rule {
            index: i,
            id: r.id.clone(),
            action,
            aliases,
            tags,
            principals,
            groups,
            matchers,
            allow_constructs,
            elevate,
            approvals: self.approvals_wanted(src, pos, i, r.approvals, action),
        };
        if rule.matchers.is_empty() {
            self.push(
                Severity::Warning,
                src,
                pos,
                key("commands"),
                "rule has no commands, simple_binaries or binary matcher; it has no effect".into(),
            );
        } else if !hosts.iter().any(|h| rule.selects_host(&h.subject(&[], &crate::policy::Principal::local()))) {
            self.warn_selects_no_host(src, pos, key("aliases"));
        }
        Some(rule)
    }

    /// A rule's `become` / `become_method`. The user name is checked here because it is
    /// put on the remote command line (quoted anyway); a deny rule cannot run anything.
    fn become_of(&mut self, src: &Source, loc: &Locator, i: usize, r: &RawRule, action: Action) -> Option<Become> {
        let at = |k: &str| loc.key_after("action", i, k);
        let key = |k: &str| format!("rules[{i}].{k}");
        let method = match r.become_method.as_deref() {
            None | Some("sudo") => BecomeMethod::Sudo,
            Some("doas") => BecomeMethod::Doas,
            Some(other) => {
                let msg = format!("{other:?} is not one of sudo, doas");
                self.push(Severity::Error, src, at("become_method"), key("become_method"), msg);
                return None;
            }
        };
        let Some(user) = r.become_user.as_deref() else {
            if r.become_method.is_some() {
                let msg = "become_method needs become (the user to run as)".to_owned();
                self.push(Severity::Error, src, at("become_method"), key("become_method"), msg);
            }
            return None;
        };
        // POSIX portable user names (and what useradd accepts): never an option, a path or
        // shell syntax.
        let valid = !user.is_empty()
            && user.len() <= 32
            && !user.starts_with('-')
            && user.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid {
            let msg = format!("become user {user:?} must be 1-32 of A-Z a-z 0-9 _ - . (not starting with -)");
            self.push(Severity::Error, src, at("become"), key("become"), msg);
            return None;
        }
        if action == Action::Deny {
            let msg = "become on a deny rule has no effect (a denied command never runs)".to_owned();
            self.push(Severity::Warning, src, at("become"), key("become"), msg);
            return None;
        }
        Some(Become { user: user.to_owned(), method })
    }
}
