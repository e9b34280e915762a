//! One simple command judged against the rules in scope: the `Judge` that `evaluate`
//! drives.
//!
//! Owns: the per-command walk — computed command names, `deny_substrings`, deny rules (by
//! name and by basename), wrappers peeled (`wrappers.rs`) and `sh -c` code re-parsed, then
//! the allow/ask rule that also permits every construct; it records what it judged, which
//! rules allowed or asked, and each permitted command's `become`.
//! Never: parses the whole command line or folds the final `Decision` (that is `mod.rs`),
//! IO, async.

use super::shell::{self, ShellWord};
use super::wrappers::{self, Unwrapped};
use super::{Action, Become, Construct, Decision, MAX_WRAPPERS, Rule, substrings};

/// `argv` with its command word cut to the file name, when the word is a path.
fn command_by_basename(argv: &[ShellWord]) -> Option<Vec<ShellWord>> {
    let first = argv.first()?;
    let base = first.literal.as_deref()?.rsplit_once('/')?.1.to_owned();
    let mut out = argv.to_vec();
    out[0] = ShellWord { literal: Some(base.clone()), raw: base, ..first.clone() };
    Some(out)
}

pub(super) struct Judge<'a> {
    pub(super) rules: &'a [&'a Rule],
    pub(super) deny_substrings: &'a [String],
    pub(super) allowed_by: Vec<&'a Rule>,
    /// Ask rules that matched a simple command (with its text): the command needs approval.
    pub(super) asked_by: Vec<(&'a Rule, String)>,
    /// Constructs the current top-level command only inherits from what encloses it.
    pub(super) enclosing: Vec<Construct>,
    /// Every argv judged, wrappers and what they run.
    pub(super) judged: Vec<Vec<ShellWord>>,
    /// Per permitted simple command: the `become` of the rule that permitted it.
    pub(super) elevations: Vec<(Option<Become>, String, &'a Rule)>,
}

impl<'a> Judge<'a> {
    /// Judges one simple command, peeling wrappers; `Err` carries the denial.
    pub(super) fn simple(
        &mut self,
        argv: Vec<ShellWord>,
        mut constructs: Vec<Construct>,
        depth: usize,
    ) -> Result<(), Decision> {
        let text = shell::argv_text(&argv);
        let denied = |reason: String, rule: Option<&Rule>| Decision::deny(rule, reason, Some(text.clone()));
        if argv.is_empty() {
            return Err(denied("assignment or redirection without a command".into(), None));
        }
        if depth > MAX_WRAPPERS {
            return Err(denied("too many nested command wrappers".into(), None));
        }
        self.judged.push(argv.clone());
        // Also after a wrapper is peeled: `command ${x:-id}` runs a computed name.
        if let Some(first) = argv.first().filter(|w| w.literal.is_none() || w.expands) {
            return Err(denied(
                format!(
                    "command name `{}` is computed at run time (expansion, substitution, glob or brace)",
                    first.raw
                ),
                None,
            ));
        }
        if let Some(hit) = substrings::find_denied(self.deny_substrings, &text) {
            return Err(denied(format!("`{text}` contains deny_substrings entry {hit:?}"), None));
        }
        // A deny rule naming `rm` also denies `/bin/rm` and `./rm`.
        let by_base = command_by_basename(&argv);
        let deny_hit = |r: &&&Rule| {
            r.action == Action::Deny
                && (r.matches(&argv) == Ok(true) || by_base.as_ref().is_some_and(|b| r.matches(b) == Ok(true)))
        };
        if let Some(rule) = self.rules.iter().find(deny_hit) {
            return Err(denied(format!("`{text}` matches deny {}", rule.label()), Some(rule)));
        }
        // A deny rule that cannot judge a path argument might match: fail closed, but only
        // after the allow side had its say, so a plainer reason (a construct) comes first.
        let uncertain_deny =
            self.rules.iter().filter(|r| r.action == Action::Deny).find_map(|r| match r.matches(&argv) {
                Err(why) => Some((*r, why)),
                Ok(_) => None,
            });
        let outcome = match wrappers::unwrap(&argv) {
            Unwrapped::Opaque(why) => Err(denied(why, None)),
            Unwrapped::Inner { argv: inner, construct } => {
                constructs.extend(construct);
                self.simple(inner, constructs, depth + 1)
            }
            Unwrapped::Code { code, construct } => {
                constructs.extend(construct);
                let cmds = shell::simple_commands(&code)
                    .map_err(|e| denied(format!("code given to `{}`: {e}", argv[0].text()), None))?;
                if cmds.is_empty() {
                    return Err(denied("empty shell code".into(), None));
                }
                for cmd in cmds {
                    let mut inherited = constructs.clone();
                    inherited.extend(cmd.constructs);
                    inherited.extend(cmd.enclosing);
                    self.simple(cmd.argv, inherited, depth + 1)?;
                }
                Ok(())
            }
            Unwrapped::Plain(construct) => {
                constructs.extend(construct);
                self.allow(&argv, &constructs).map_err(|(reason, rule)| denied(reason, rule))
            }
        };
        outcome?;
        match uncertain_deny {
            Some((rule, why)) => Err(denied(format!("`{text}` may match deny {}: {why}", rule.label()), Some(rule))),
            None => Ok(()),
        }
    }

    fn allow(&mut self, argv: &[ShellWord], constructs: &[Construct]) -> Result<(), (String, Option<&'a Rule>)> {
        let text = shell::argv_text(argv);
        let mut refused_path: Option<(String, &'a Rule)> = None;
        let mut matching: Vec<&'a Rule> = Vec::new();
        for rule in self.rules.iter().copied().filter(|r| r.action != Action::Deny) {
            match rule.matches(argv) {
                Ok(true) => matching.push(rule),
                Ok(false) => {}
                Err(why) => {
                    refused_path.get_or_insert((why, rule));
                }
            }
        }
        if let Some(rule) = matching.iter().find(|r| constructs.iter().all(|c| r.allow_constructs.contains(c))) {
            // The first permitting rule (file order) says which user the command runs as.
            self.elevations.push((rule.elevate.clone(), text.clone(), rule));
            // Ask wins over allow: any matching ask rule puts a human in the loop.
            match matching.iter().find(|r| r.action == Action::Ask) {
                Some(ask) => self.asked_by.push((ask, text)),
                None => self.allowed_by.push(rule),
            }
            return Ok(());
        }
        match (matching.first(), constructs.iter().find(|c| !matching.iter().any(|r| r.allow_constructs.contains(c)))) {
            (Some(rule), Some(c)) => {
                let place = if self.enclosing.contains(c) {
                    "runs inside a for/case list or redirected group that uses"
                } else {
                    "uses"
                };
                Err((
                    format!(
                        "`{text}` {place} {}, which {} does not permit (allow_constructs: [{}])",
                        c.describe(),
                        rule.label(),
                        c.name()
                    ),
                    Some(*rule),
                ))
            }
            (Some(rule), None) => Err((
                format!("`{text}` needs one rule permitting all of its constructs; {} does not", rule.label()),
                Some(*rule),
            )),
            (None, _) => match refused_path {
                Some((why, rule)) => Err((format!("`{text}`: {why} ({} judges its paths)", rule.label()), Some(rule))),
                None => Err((format!("no allow rule matches `{text}`"), None)),
            },
        }
    }
}
