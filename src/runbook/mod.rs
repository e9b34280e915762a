//! Runbooks: YAML procedures (check → act batch by batch → verify → roll back) whose every
//! step is a fan-out judged by the same policy as `ssh_run_on_tag`.
//!
//! Owns: the checked runbook types, `{{ name }}` templates and rendering with parameters.
//! A parameter value becomes **one shell word**: checked against its type, pattern or enum,
//! then inserted as is when it is a plain safe word and POSIX single-quoted otherwise, so a
//! value can never end a command and start another. The rendered string is the command the
//! policy judges and the host runs, byte for byte. Never does IO (loading is in
//! `config/validate_runbook.rs`, running in `runner/`).

pub mod raw;
pub mod serial;

use std::collections::BTreeMap;
use std::path::PathBuf;

use regex::Regex;
use serde::Serialize;

/// A parameter's type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    String,
    Integer,
    Boolean,
    Enum(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub kind: ParamType,
    pub required: bool,
    pub default: Option<String>,
    /// Whole-value match.
    pub pattern: Option<Regex>,
    pub secret: bool,
    pub description: String,
}

/// One piece of a template: literal text or a parameter reference with the quoting
/// context it sits in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Param(String, Quoting),
}

/// The shell quoting context a placeholder sits in: its value is rendered for that context,
/// so it stays exactly the characters given (`"note: {{ msg }}"` escapes `$`, a backtick,
/// `"` and `\`; inside `'…'` a `'` becomes `'\''`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quoting {
    Unquoted,
    SingleQuoted,
    DoubleQuoted,
}

impl Quoting {
    fn render(self, value: &str) -> String {
        match self {
            Self::Unquoted => shell_word(value),
            Self::SingleQuoted => value.replace('\'', r"'\''"),
            Self::DoubleQuoted => value.chars().fold(String::new(), |mut out, c| {
                if matches!(c, '$' | '`' | '"' | '\\') {
                    out.push('\\');
                }
                out.push(c);
                out
            }),
        }
    }
}

/// Tracks bash's quoting across template text. Only `\`, `'` and `"` are followed; a
/// placeholder after text bash reads in another context of its own (`$(`, a backtick,
/// `${`, `$'`, `$"`, a here-document, a comment) is refused at load time.
#[derive(Default)]
struct QuoteScan {
    single: bool,
    double: bool,
    escaped: bool,
    opaque: Option<&'static str>,
}

impl QuoteScan {
    fn feed(&mut self, text: &str) {
        let mut prev = ' ';
        for c in text.chars() {
            if self.escaped {
                self.escaped = false;
            } else if self.single {
                self.single = c != '\'';
            } else {
                match c {
                    '(' | '{' | '\'' | '"' if prev == '$' => {
                        self.opaque = Some("a `$(`, `${`, `$'` or `$\"` expansion");
                    }
                    '\\' => self.escaped = true,
                    '\'' if !self.double => self.single = true,
                    '"' => self.double = !self.double,
                    '`' => self.opaque = Some("a backtick substitution"),
                    '<' if prev == '<' && !self.double => self.opaque = Some("a here-document"),
                    '#' if !self.double && (prev == ' ' || prev == '\n') => self.opaque = Some("a comment"),
                    _ => {}
                }
            }
            prev = c;
        }
    }

    fn quoting(&self) -> Result<Quoting, String> {
        if let Some(what) = self.opaque {
            return Err(format!("follows {what}; a placeholder must be a shell word, or inside '…' or \"…\""));
        }
        Ok(match (self.single, self.double) {
            (true, _) => Quoting::SingleQuoted,
            (false, true) => Quoting::DoubleQuoted,
            (false, false) => Quoting::Unquoted,
        })
    }
}

/// A parsed `{{ name }}` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub source: String,
    pub pieces: Vec<Piece>,
}

impl Template {
    /// Parses `text`; `Err` says what is wrong (unclosed `{{`, a bad name).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        let mut scan = QuoteScan::default();
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
                scan.feed(&rest[..open]);
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| format!("`{{{{` without `}}}}` in {text:?}"))?;
            let name = after[..close].trim();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("{{{{ {name} }}}} is not a parameter name (letters, digits, `_`)"));
            }
            let quoting = scan
                .quoting()
                .map_err(|why| format!("{{{{ {name} }}}} at byte {} {why}", text.len() - rest.len() + open))?;
            pieces.push(Piece::Param(name.to_owned(), quoting));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Self { source: text.to_owned(), pieces })
    }

    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Param(n, _) => Some(n.as_str()),
            Piece::Text(_) => None,
        })
    }

    /// Fills the template; `quote` turns each value into what is inserted in its context.
    fn render(&self, values: &BTreeMap<String, String>, quote: impl Fn(&str, Quoting) -> String) -> String {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.clone(),
                Piece::Param(n, q) => quote(values.get(n).map_or("", String::as_str), *q),
            })
            .collect()
    }

    /// The command with every value rendered for its quoting context: one shell word's worth
    /// of exactly the given characters.
    pub fn render_shell(&self, values: &BTreeMap<String, String>) -> String {
        self.render(values, |v, q| q.render(v))
    }
}

/// What a step expects of each host.
#[derive(Debug, Clone, Serialize)]
pub struct Expect {
    pub exit: Vec<u32>,
    #[serde(serialize_with = "regex_source")]
    pub stdout_regex: Option<Regex>,
}

fn regex_source<S: serde::Serializer>(r: &Option<Regex>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(r.as_ref().map_or("", Regex::as_str))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    Abort,
    Continue,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub id: String,
    pub target: Template,
    pub command: Template,
    pub expect: Expect,
    pub batch_size: Option<usize>,
    pub concurrency: usize,
    pub max_fail_percentage: f64,
    pub timeout_seconds: Option<u64>,
    pub retries: u32,
    pub retry_delay_seconds: u64,
    pub on_failure: OnFailure,
}

/// A checked runbook.
#[derive(Debug, Clone)]
pub struct Runbook {
    pub name: String,
    pub description: String,
    pub file: PathBuf,
    /// SHA-256 of the file's bytes, hex.
    pub sha256: String,
    pub params: Vec<Param>,
    pub steps: Vec<Step>,
    pub rollback: Vec<Step>,
    /// Batches of a rolling run (empty: every step runs on all its hosts at once).
    pub serial: serial::Serial,
    /// With `serial`: the share of the run's hosts that may fail before no batch starts.
    pub max_fail_percentage: f64,
}

/// A step with its parameters filled in.
#[derive(Debug, Clone, Serialize)]
pub struct RenderedStep {
    pub id: String,
    pub target: String,
    pub command: String,
    /// The command with secret values masked: what logs and audit records show.
    pub shown_command: String,
}

/// POSIX single-quoting unless the value is a plain safe word.
pub fn shell_word(value: &str) -> String {
    let plain = !value.is_empty()
        && value.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ':' | '@' | '%' | '+' | '=' | ',')
        });
    if plain { value.to_owned() } else { format!("'{}'", value.replace('\'', r"'\''")) }
}

impl Runbook {
    /// Checks `given` against the declared parameters (unknown names, types, patterns,
    /// enums, required) and fills defaults. `Err` lists every problem.
    pub fn bind(&self, given: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, Vec<String>> {
        let mut errors: Vec<String> = given
            .keys()
            .filter(|k| !self.params.iter().any(|p| p.name == **k))
            .map(|k| format!("unknown parameter {k:?} (runbook {} takes: {})", self.name, self.param_names()))
            .collect();
        let mut values = BTreeMap::new();
        for p in &self.params {
            let Some(v) = given.get(&p.name).cloned().or_else(|| p.default.clone()) else {
                if p.required {
                    errors.push(format!("parameter {:?} is required", p.name));
                }
                continue;
            };
            if let Err(e) = p.check(&v) {
                errors.push(e);
                continue;
            }
            values.insert(p.name.clone(), v);
        }
        if errors.is_empty() { Ok(values) } else { Err(errors) }
    }

    fn param_names(&self) -> String {
        self.params.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// Secret parameter values present in `values` (to mask in logs, audit and output).
    pub fn secrets(&self, values: &BTreeMap<String, String>) -> Vec<String> {
        self.params.iter().filter(|p| p.secret).filter_map(|p| values.get(&p.name).cloned()).collect()
    }

    /// Renders `steps` with bound `values`: targets get values as written (they passed their
    /// checks and `select` judges the pattern), commands get one shell word per value.
    pub fn render(&self, steps: &[Step], values: &BTreeMap<String, String>) -> Vec<RenderedStep> {
        let secret: Vec<&str> = self.params.iter().filter(|p| p.secret).map(|p| p.name.as_str()).collect();
        let masked: BTreeMap<String, String> = values
            .iter()
            .map(|(k, v)| (k.clone(), if secret.contains(&k.as_str()) { "[secret]".into() } else { v.clone() }))
            .collect();
        steps
            .iter()
            .map(|s| RenderedStep {
                id: s.id.clone(),
                target: s.target.render(values, |v, _| v.to_owned()),
                command: s.command.render_shell(values),
                shown_command: s.command.render_shell(&masked),
            })
            .collect()
    }
}

impl Param {
    pub fn check(&self, v: &str) -> Result<(), String> {
        let name = &self.name;
        let shown = if self.secret { "(secret)".to_owned() } else { format!("{v:?}") };
        if v.len() > 4096 || v.contains('\0') {
            return Err(format!("parameter {name:?}: value too long or contains NUL"));
        }
        // A newline or tab is data inside its quoting; what a reviewer cannot see is not.
        if let Some(c) = crate::policy::text::find_invisible(v, true) {
            return Err(format!(
                "parameter {name:?}: {shown} contains the control or invisible character {}",
                crate::policy::text::code_point(c)
            ));
        }
        match &self.kind {
            ParamType::Integer if v.parse::<i64>().is_err() => {
                return Err(format!("parameter {name:?}: {shown} is not an integer"));
            }
            ParamType::Boolean if !matches!(v, "true" | "false") => {
                return Err(format!("parameter {name:?}: {shown} is not true or false"));
            }
            ParamType::Enum(values) if !values.iter().any(|x| x == v) => {
                return Err(format!("parameter {name:?}: {shown} is not one of {}", values.join(", ")));
            }
            _ => {}
        }
        if let Some(re) = &self.pattern
            && !re.is_match(v)
        {
            let written = re.as_str().strip_prefix("^(?:").and_then(|s| s.strip_suffix(")$")).unwrap_or(re.as_str());
            return Err(format!("parameter {name:?}: {shown} does not match pattern {written}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_and_values_stay_one_word() {
        let t = Template::parse("systemctl restart {{ service }} --now").unwrap();
        assert_eq!(t.params().collect::<Vec<_>>(), ["service"]);
        assert!(Template::parse("echo {{ x").is_err());
        assert!(Template::parse("echo {{ a-b }}").is_err());
        let values = BTreeMap::from([("service".to_owned(), "x; touch /tmp/pwned".to_owned())]);
        assert_eq!(t.render_shell(&values), "systemctl restart 'x; touch /tmp/pwned' --now");
        assert_eq!(shell_word("nginx"), "nginx");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
        assert_eq!(shell_word("$(id)"), "'$(id)'");
    }
}
