//! Policy rules of both anchor generations and how one rule matches one simple command.
//!
//! Owns: `Rule`, its matchers (fnmatch `commands`, `simple_binaries`, structured
//! `binary`/`arg_prefix`/`path_args`), host scoping by alias and tag globs. Never combines
//! rule outcomes (that is `policy::evaluate`) and never does IO.

use globset::{GlobBuilder, GlobMatcher};
use serde::Serialize;

use super::Construct;
use super::shell::ShellWord;
use crate::config::Host;

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Deny,
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
    pub matchers: Vec<Matcher>,
    pub allow_constructs: Vec<Construct>,
}

impl Rule {
    /// `rule #3 "id"` (1-based, as people count lines in a list).
    pub fn label(&self) -> String {
        match &self.id {
            Some(id) => format!("rule #{} \"{id}\"", self.index + 1),
            None => format!("rule #{}", self.index + 1),
        }
    }

    /// Whether the rule is scoped to this host (empty alias/tag lists mean any).
    pub fn applies_to(&self, host: &Host) -> bool {
        let alias_ok = self.aliases.is_empty() || self.aliases.iter().any(|p| p.matches(&host.alias));
        let tag_ok = self.tags.is_empty() || self.tags.iter().any(|p| host.tags.iter().any(|t| p.matches(t)));
        alias_ok && tag_ok
    }

    /// Whether any matcher recognises the command `argv`.
    pub fn matches(&self, argv: &[ShellWord]) -> bool {
        let text = super::shell::argv_text(argv);
        self.matchers.iter().any(|m| m.matches(argv, &text))
    }
}

impl Matcher {
    fn matches(&self, argv: &[ShellWord], text: &str) -> bool {
        let Some((first, args)) = argv.split_first() else {
            return false;
        };
        let name = first.literal.as_deref();
        match self {
            Matcher::Globs(patterns) => patterns.iter().any(|p| p.matches(text)),
            Matcher::Simple { binaries, max_args } => {
                name.is_some_and(|n| binaries.iter().any(|b| b == n))
                    && max_args.is_none_or(|max| args.len() <= max as usize)
            }
            Matcher::Structured { binary, arg_prefix, path_args, allow_extra_args } => {
                if name != Some(binary.as_str()) || args.len() < arg_prefix.len() {
                    return false;
                }
                let prefix_ok =
                    arg_prefix.iter().zip(args).all(|(want, got)| got.literal.as_deref() == Some(want.as_str()));
                let paths_ok = path_args.as_ref().is_none_or(|(indices, patterns)| {
                    indices.iter().all(|&i| {
                        argv.get(i)
                            .and_then(|w| w.literal.as_deref())
                            .is_some_and(|t| patterns.iter().any(|p| p.matches(t)))
                    })
                });
                let count_ok = *allow_extra_args
                    || args.len() == arg_prefix.len() + path_args.as_ref().map_or(0, |(i, _)| i.len());
                prefix_ok && paths_ok && count_ok
            }
        }
    }

    /// A structured rule with only `binary` never matches (anchor semantics).
    pub fn is_inert(&self) -> bool {
        matches!(self, Matcher::Structured { arg_prefix, path_args: None, .. } if arg_prefix.is_empty())
    }
}
