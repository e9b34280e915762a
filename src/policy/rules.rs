//! Policy rules of both anchor generations and how one rule matches one simple command.
//!
//! Owns: `Rule`, its matchers (fnmatch `commands`, `simple_binaries`, structured
//! `binary`/`arg_prefix`/`path_args`), host scoping by alias and tag globs. Path arguments
//! are read by `paths::judge` (the one place), never matched as raw text. Never combines
//! rule outcomes (that is `policy::evaluate`) and never does IO.

use globset::{GlobBuilder, GlobMatcher};
use serde::Serialize;

use super::shell::ShellWord;
use super::{Construct, Subject, paths};

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Deny,
    /// Allowed only once a human approves this very command (deny still wins over it; it
    /// wins over allow).
    Ask,
}

/// How `become` runs a command: sudo (default) or doas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BecomeMethod {
    Sudo,
    Doas,
}

impl BecomeMethod {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sudo => "sudo",
            Self::Doas => "doas",
        }
    }
}

/// A rule's `become`: the user the allowed command runs as, and through what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Become {
    pub user: String,
    pub method: BecomeMethod,
}

/// An fnmatch-style pattern (`*` crosses `/`, as Python's fnmatch does).
#[derive(Debug, Clone)]
pub struct Pattern {
    pub source: String,
    matcher: GlobMatcher,
}

impl Pattern {
    pub fn new(source: &str) -> Result<Self, globset::Error> {
        let glob = GlobBuilder::new(source).literal_separator(false).backslash_escape(true).build()?;
        Ok(Self { source: source.to_owned(), matcher: glob.compile_matcher() })
    }

    pub fn matches(&self, text: &str) -> bool {
        self.matcher.is_match(text)
    }
}

/// Host scoping shared by command and file rules: an alias glob and a tag glob must each
/// match when given (empty lists mean any).
pub fn in_scope(aliases: &[Pattern], tags: &[Pattern], subject: &Subject) -> bool {
    let alias_ok = aliases.is_empty() || aliases.iter().any(|p| p.matches(subject.alias));
    let tag_ok = tags.is_empty() || tags.iter().any(|p| subject.tags.iter().any(|t| p.matches(t)));
    alias_ok && tag_ok
}

/// How a rule recognises a command.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// Glob generation: any pattern matches the whole simple command text.
    Globs(Vec<Pattern>),
    /// `simple_binaries` + `simple_max_args`.
    Simple { binaries: Vec<String>, max_args: Option<u32> },
    /// `binary` + `arg_prefix` / `path_args` / `allow_extra_args`.
    Structured {
        binary: String,
        arg_prefix: Vec<String>,
        path_args: Option<(Vec<usize>, Vec<Pattern>)>,
        allow_extra_args: bool,
    },
}

/// One rule of `policy.yml`, checked.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Position in `rules:` (0-based).
    pub index: usize,
    pub id: Option<String>,
    pub action: Action,
    pub aliases: Vec<Pattern>,
    pub tags: Vec<Pattern>,
    /// Callers the rule is for (globs over the principal; empty means anyone).
    pub principals: Vec<Pattern>,
    /// Groups the rule is for (any of the caller's groups; empty means anyone).
    pub groups: Vec<Pattern>,
    /// Distinct approvers an `ask` rule wants (`approvals: N`; 1 by default).
    pub approvals: u32,
    pub matchers: Vec<Matcher>,
    pub allow_constructs: Vec<Construct>,
    /// `become` / `become_method`: an allowed command runs as this user (never for deny).
    pub elevate: Option<Become>,
}

impl Rule {
    /// `rule #3 "id"` (1-based, as people count lines in a list).
    pub fn label(&self) -> String {
        match &self.id {
            Some(id) => format!("rule #{} \"{id}\"", self.index + 1),
            None => format!("rule #{}", self.index + 1),
        }
    }

    /// Whether the rule is scoped to this host and this caller (empty lists mean any).
    pub fn applies_to(&self, subject: &Subject) -> bool {
        let principal_ok = self.principals.is_empty() || self.principals.iter().any(|p| p.matches(subject.principal));
        let group_ok =
            self.groups.is_empty() || self.groups.iter().any(|p| subject.groups.iter().any(|g| p.matches(g)));
        self.selects_host(subject) && principal_ok && group_ok
    }

    /// Whether the rule is scoped to this host, whoever asks.
    pub fn selects_host(&self, subject: &Subject) -> bool {
        in_scope(&self.aliases, &self.tags, subject)
    }

    /// Whether any matcher recognises the command `argv`. `Err` is a path argument this
    /// rule would have to judge but cannot (the reason names it): no allow, and for a deny
    /// rule a match.
    pub fn matches(&self, argv: &[ShellWord]) -> Result<bool, String> {
        let mut refused = None;
        for m in &self.matchers {
            match m.matches(argv) {
                Ok(true) => return Ok(true),
                Ok(false) => {}
                Err(why) => refused = Some(why),
            }
        }
        refused.map_or(Ok(false), Err)
    }
}

impl Matcher {
    fn matches(&self, argv: &[ShellWord]) -> Result<bool, String> {
        let Some((first, args)) = argv.split_first() else {
            return Ok(false);
        };
        // A command word with `/` is a path to an executable (perhaps one just uploaded): it
        // is compared as written, so `./uptime` matches only a rule naming `./uptime`.
        let name = first.literal.as_deref();
        match self {
            Matcher::Globs(patterns) => {
                let text = if patterns.iter().any(|p| p.source.contains('/')) {
                    paths_normalized_text(argv)?
                } else {
                    super::shell::argv_text(argv)
                };
                Ok(patterns.iter().any(|p| p.matches(&text)))
            }
            Matcher::Simple { binaries, max_args } => Ok(name.is_some_and(|n| binaries.iter().any(|b| b == n))
                && max_args.is_none_or(|max| args.len() <= max as usize)),
            Matcher::Structured { binary, arg_prefix, path_args, allow_extra_args } => {
                if name != Some(binary.as_str()) || args.len() < arg_prefix.len() {
                    return Ok(false);
                }
                let prefix_ok =
                    arg_prefix.iter().zip(args).all(|(want, got)| got.literal.as_deref() == Some(want.as_str()));
                let count_ok = *allow_extra_args
                    || args.len() == arg_prefix.len() + path_args.as_ref().map_or(0, |(i, _)| i.len());
                if !prefix_ok || !count_ok {
                    return Ok(false);
                }
                let Some((indices, patterns)) = path_args else {
                    return Ok(true);
                };
                for &i in indices {
                    let Some(word) = argv.get(i) else {
                        return Ok(false);
                    };
                    let path = paths::judge(word)?;
                    if !patterns.iter().any(|p| path.allowed_by(p)) {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
        }
    }

    /// A structured rule with only `binary` never matches (anchor semantics).
    pub fn is_inert(&self) -> bool {
        matches!(self, Matcher::Structured { arg_prefix, path_args: None, .. } if arg_prefix.is_empty())
    }
}

/// The command text a path-judging glob rule sees: every argument that names a path
/// (contains `/`, starts with `~`, or is `.`/`..`) judged and normalized; other words, and
/// the command word (`./uptime` is not `uptime`), as written.
fn paths_normalized_text(argv: &[ShellWord]) -> Result<String, String> {
    let mut words = Vec::with_capacity(argv.len());
    let Some((command, args)) = argv.split_first() else {
        return Ok(String::new());
    };
    words.push(command.text().to_owned());
    for word in args {
        let names_path = word.raw.contains('/') || word.raw.starts_with('~') || matches!(word.text(), "." | "..");
        words.push(if names_path { paths::judge(word)?.normalized } else { word.text().to_owned() });
    }
    Ok(words.join(" "))
}
