//! The command policy: may this exact string run on this host?
//!
//! Owns: `evaluate(policy, host, command) -> Decision`. Semantics: the string is parsed as
//! the remote shell would; every simple command in it (substitutions, wrappers and `sh -c`
//! code included) must be allowed on its own. For each: **any matching deny rule wins;
//! otherwise an allow or ask rule that also permits the command's constructs; otherwise
//! deny.** When every simple command is permitted and any of them matched an `ask` rule,
//! the decision is `ask`: not allowed until a human approves (`allowed` stays false, so a
//! caller that ignores `ask` fails closed).
//! Pure and sync: no IO, no async, no clock.

mod builtins;
pub mod files;
mod getopt;
mod interpreters;
mod judge;
mod named_variables;
pub mod paths;
mod privilege;
mod redirects;
mod rules;
pub mod shell;
mod substrings;
pub mod text;
mod word;
mod wrappers;

pub use rules::{Action, Become, BecomeMethod, Matcher, Pattern, Rule, in_scope};

use judge::Judge;
use serde::{Deserialize, Serialize};
use shell::ShellWord;

/// Longest command accepted, in bytes (the anchor's limit).
pub const MAX_COMMAND_BYTES: usize = 10_000;
/// How many wrapper layers (`sudo env nohup …`) are peeled before giving up.
const MAX_WRAPPERS: usize = 8;

/// Shell features whose effect policy cannot read from the words alone. Each is denied
/// unless the allow rule that matches the command lists it in `allow_constructs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Construct {
    CommandSubstitution,
    ProcessSubstitution,
    Arithmetic,
    OutputRedirect,
    InputRedirect,
    Heredoc,
    EnvAssignment,
    Eval,
    InterpreterCode,
    Privilege,
    Xargs,
    VariableAssignment,
    FunctionDefinition,
    IndirectExpansion,
    ParameterTransform,
    LocaleString,
    ShellState,
}

impl Construct {
    pub const ALL: [Construct; 17] = [
        Self::CommandSubstitution,
        Self::ProcessSubstitution,
        Self::Arithmetic,
        Self::OutputRedirect,
        Self::InputRedirect,
        Self::Heredoc,
        Self::EnvAssignment,
        Self::Eval,
        Self::InterpreterCode,
        Self::Privilege,
        Self::Xargs,
        Self::VariableAssignment,
        Self::FunctionDefinition,
        Self::IndirectExpansion,
        Self::ParameterTransform,
        Self::LocaleString,
        Self::ShellState,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::CommandSubstitution => "command_substitution",
            Self::ProcessSubstitution => "process_substitution",
            Self::Arithmetic => "arithmetic",
            Self::OutputRedirect => "output_redirect",
            Self::InputRedirect => "input_redirect",
            Self::Heredoc => "heredoc",
            Self::EnvAssignment => "env_assignment",
            Self::Eval => "eval",
            Self::InterpreterCode => "interpreter_code",
            Self::Privilege => "privilege",
            Self::Xargs => "xargs",
            Self::VariableAssignment => "variable_assignment",
            Self::FunctionDefinition => "function_definition",
            Self::IndirectExpansion => "indirect_expansion",
            Self::ParameterTransform => "parameter_transform",
            Self::LocaleString => "locale_string",
            Self::ShellState => "shell_state",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    fn describe(self) -> &'static str {
        match self {
            Self::CommandSubstitution => "command substitution `$(…)`/backticks",
            Self::ProcessSubstitution => "process substitution `<(…)`/`>(…)`",
            Self::Arithmetic => "arithmetic expansion `$((…))`",
            Self::OutputRedirect => "output redirection to a file other than /dev/null",
            Self::InputRedirect => "input redirection from a file",
            Self::Heredoc => "here-document or here-string",
            Self::EnvAssignment => "environment assignment before a command",
            Self::Eval => "eval/exec/source/. (runs text policy cannot read)",
            Self::InterpreterCode => "an interpreter given code on the command line",
            Self::Privilege => "privilege escalation (sudo/doas/su/…)",
            Self::Xargs => "xargs (adds arguments from input)",
            Self::VariableAssignment => "a variable assignment (`for`, `read`, `declare`, `printf -v`, `${x:=…}`, …)",
            Self::FunctionDefinition => "a function definition (its name can shadow an allowed command)",
            Self::IndirectExpansion => "indirect expansion `${!x}`",
            Self::ParameterTransform => "a parameter operator (`${x@P}`, `${x/…}`, `${x#…}`, `${x^}`, …)",
            Self::LocaleString => "a locale-translated string `$\"…\"` (its text is chosen at run time)",
            Self::ShellState => "a builtin that changes how later commands are found or read (set, shopt, cd, hash, …)",
        }
    }
}

/// The rule that decided, for people and audit records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    /// 0-based position in `rules:`.
    pub index: usize,
    pub id: Option<String>,
}

/// The outcome of `evaluate`: a value, not an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    /// Permitted only with a human's approval (`allowed` is false until then).
    pub ask: bool,
    /// The deciding rule: the deny that matched, the (first) allow that permitted, or none.
    pub rule: Option<RuleRef>,
    /// One line a person understands.
    pub reason: String,
    /// The simple command that was denied, when the command had several.
    pub denied_command: Option<String>,
    /// The user an allowed (or asked) command runs as, from its rules' `become`; `None`:
    /// as the login user.
    #[serde(rename = "become", skip_serializing_if = "Option::is_none")]
    pub elevate: Option<Become>,
}

impl Decision {
    fn deny(rule: Option<&Rule>, reason: String, denied_command: Option<String>) -> Self {
        let rule = rule.map(|r| RuleRef { index: r.index, id: r.id.clone() });
        Self { allowed: false, ask: false, rule, reason, denied_command, elevate: None }
    }

    /// The decision's word for people and plans: `allow`, `ask` or `deny`.
    pub fn action(&self) -> &'static str {
        match (self.allowed, self.ask) {
            (true, _) => "allow",
            (false, true) => "ask",
            (false, false) => "deny",
        }
    }
}

/// What the policy judges a command for: the host as rules scope it, the host's effective
/// `deny_substrings`, and who asks. The caller (the configuration) resolves these; the
/// policy never reads the inventory.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub alias: &'a str,
    pub tags: &'a [String],
    pub deny_substrings: &'a [String],
    /// Who asks: the verified principal, or `local` (stdio, the CLI in process).
    pub principal: &'a str,
    pub groups: &'a [String],
}

/// A caller as rules see it (`principals:`, `groups:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub groups: Vec<String>,
}

impl Principal {
    /// stdio and the CLI in process: no token, the operator at the machine.
    pub fn local() -> Self {
        Self { name: "local".into(), groups: Vec::new() }
    }

    /// `PRINCIPAL[:group,…]`, as `plan --as` and `ssh_plan`'s `as` take it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (name, groups) = text.split_once(':').map_or((text, ""), |(n, g)| (n, g));
        if name.trim().is_empty() {
            return Err(format!("{text:?}: expected PRINCIPAL[:group,…]"));
        }
        let groups = groups.split(',').map(str::trim).filter(|g| !g.is_empty()).map(str::to_owned).collect();
        Ok(Self { name: name.trim().to_owned(), groups })
    }
}

/// Decides whether `command` may run on `subject` under `rules`. Never panics, whatever
/// the input.
pub fn evaluate(rules: &[Rule], subject: &Subject, command: &str) -> Decision {
    evaluate_traced(rules, subject, command).0
}

/// `evaluate`, plus every simple command it judged (each wrapper layer and what it runs),
/// for the differential test against real bash: when the decision allows, bash must run
/// nothing but these.
pub fn evaluate_traced(rules: &[Rule], subject: &Subject, command: &str) -> (Decision, Vec<Vec<ShellWord>>) {
    if let Err(reason) = check_text(command) {
        return (Decision::deny(None, reason, None), Vec::new());
    }
    if let Some(hit) = substrings::find_denied(subject.deny_substrings, command) {
        return (Decision::deny(None, format!("contains deny_substrings entry {hit:?}"), None), Vec::new());
    }
    let cmds = match shell::simple_commands(command) {
        Ok(cmds) if cmds.is_empty() => {
            return (Decision::deny(None, "no command to run".into(), None), Vec::new());
        }
        Ok(cmds) => cmds,
        Err(e) => return (Decision::deny(None, e.to_string(), None), Vec::new()),
    };
    let rules: Vec<&Rule> = rules.iter().filter(|r| r.applies_to(subject)).collect();
    let mut judge = Judge {
        rules: &rules,
        deny_substrings: subject.deny_substrings,
        allowed_by: Vec::new(),
        asked_by: Vec::new(),
        enclosing: Vec::new(),
        judged: Vec::new(),
        elevations: Vec::new(),
    };
    for cmd in &cmds {
        judge.enclosing = cmd.enclosing.iter().filter(|c| !cmd.constructs.contains(c)).copied().collect();
        let mut constructs = cmd.constructs.clone();
        constructs.extend(judge.enclosing.iter().copied());
        if let Err(d) = judge.simple(cmd.argv.clone(), constructs, 0) {
            return (d, judge.judged);
        }
    }
    let judged = std::mem::take(&mut judge.judged);
    let elevate = match one_user(&judge.elevations) {
        Ok(elevate) => elevate,
        Err(d) => return (d, judged),
    };
    let rule_ref = |r: &&Rule| RuleRef { index: r.index, id: r.id.clone() };
    if let Some((rule, text)) = judge.asked_by.first() {
        let decision = Decision {
            allowed: false,
            ask: true,
            rule: Some(rule_ref(rule)),
            reason: format!("`{text}` needs a human's approval ({})", rule.label()),
            denied_command: None,
            elevate,
        };
        return (decision, judged);
    }
    let first = judge.allowed_by.first().map(rule_ref);
    let mut labels: Vec<String> = judge.allowed_by.iter().map(|r| r.label()).collect();
    labels.dedup();
    let decision = Decision {
        allowed: true,
        ask: false,
        rule: first,
        reason: format!("allowed by {}", labels.join(", ")),
        denied_command: None,
        elevate,
    };
    (decision, judged)
}

/// The one user every simple command runs as: a command line runs under one `sudo`, so
/// a command mixing a `become: root` part with a part allowed only as the login user (or
/// as another user) would run that part with rights no rule gave it. Denied instead.
fn one_user(elevations: &[(Option<Become>, String, &Rule)]) -> Result<Option<Become>, Decision> {
    let Some((first, first_text, first_rule)) = elevations.first() else { return Ok(None) };
    let who = |b: &Option<Become>| b.as_ref().map_or("the login user".to_owned(), |b| format!("{} (become)", b.user));
    match elevations.iter().find(|(b, _, _)| b != first) {
        None => Ok(first.clone()),
        Some((other, text, rule)) => Err(Decision::deny(
            Some(rule),
            format!(
                "`{first_text}` runs as {} ({}) but `{text}` as {} ({}); one command runs as one user, so run them separately",
                who(first),
                first_rule.label(),
                who(other),
                rule.label()
            ),
            Some(text.clone()),
        )),
    }
}

/// Text-level refusals that come before parsing: empty, too long, NUL, control and bidi
/// characters (they make what a reviewer sees differ from what runs).
fn check_text(command: &str) -> Result<(), String> {
    if command.trim().is_empty() {
        return Err("command is empty".into());
    }
    if command.len() > MAX_COMMAND_BYTES {
        return Err(format!("command is {} bytes, more than the {MAX_COMMAND_BYTES}-byte limit", command.len()));
    }
    if let Some(c) = text::find_invisible(command, true) {
        return Err(format!("command contains the control or invisible character {}", text::code_point(c)));
    }
    Ok(())
}
