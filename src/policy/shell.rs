//! Reads a command string as a POSIX shell would (brush-parser) and flattens it into the
//! simple commands it would run, each with the opaque constructs it uses.
//!
//! Owns: the AST walk and recursion into substitutions; each word is read by `word.rs`
//! (bash's quoting contexts), each redirection by `redirects.rs`, assignments of every form
//! by `builtins::assignable`. Compound commands hand their constructs down: a `for` loop's
//! body runs with `variable_assignment`, a function body with `function_definition`.
//! Never decides allow/deny (that is `policy::evaluate`) and never does IO.

use brush_parser::ast::{self, Command, CommandPrefixOrSuffixItem as Item, CompoundCommand};
use brush_parser::{Parser, ParserOptions};

use super::redirects::varname_redirects;
use super::{Construct, builtins, word};

/// Nesting bound for substitutions and compound commands; deeper input is refused.
const MAX_DEPTH: usize = 24;

/// One shell word after quote removal, when that is possible without running anything.
#[derive(Debug, Clone)]
pub struct ShellWord {
    /// The text after quote removal, if the word is fully literal.
    pub literal: Option<String>,
    /// The word as written.
    pub raw: String,
    /// Unquoted `*`, `?`, `[` or `{a,b}`: the shell may turn it into other words.
    pub expands: bool,
    /// Unquoted `{a,b}` or `{1..3}`: brace expansion (a subset of `expands`).
    pub braces: bool,
    /// Bash may make zero or several words of it (`word::WordFacts::splits`): a command
    /// that reads its words by position cannot be judged from the text.
    pub splits: bool,
    /// Unquoted extglob pattern `@(…)`, `!(…)`, …: with `extglob` on it matches `..`.
    pub extglob: bool,
}

impl ShellWord {
    /// Literal text when known, else the raw source.
    pub fn text(&self) -> &str {
        self.literal.as_deref().unwrap_or(&self.raw)
    }

    /// The one word bash will pass, when the text alone fixes it: known and not split.
    pub fn fixed(&self) -> Option<&str> {
        self.literal.as_deref().filter(|_| !self.splits)
    }
}

/// A simple command the remote shell would run, with what makes it opaque.
#[derive(Debug, Clone, Default)]
pub struct SimpleCmd {
    pub argv: Vec<ShellWord>,
    /// Constructs this command uses itself.
    pub constructs: Vec<Construct>,
    /// Constructs of what encloses it: a `for`/`case` word list, a redirected group.
    pub enclosing: Vec<Construct>,
}

/// Words joined by single spaces: what glob rules, deny_substrings and messages see (a
/// process substitution's `/dev/fd/N` argument, which has no text, is left out).
pub fn argv_text(argv: &[ShellWord]) -> String {
    argv.iter().filter(|w| w.literal.is_some() || !w.raw.is_empty()).map(ShellWord::text).collect::<Vec<_>>().join(" ")
}

/// Why the string cannot be evaluated at all; no rule can permit these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShellError {
    #[error("cannot parse as shell: {0}")]
    Unparseable(String),
    #[error("nesting deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("{0}")]
    Opaque(String),
}

/// Every simple command in `src`, in source order, substitutions included.
pub fn simple_commands(src: &str) -> Result<Vec<SimpleCmd>, ShellError> {
    // brush-parser's PEG grammar recurses per nesting level; bound it before parsing so
    // hostile input cannot overflow the stack. Quotes are not considered: conservative.
    let mut depth = 0usize;
    for c in src.chars() {
        match c {
            '(' | '{' => depth += 1,
            ')' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > MAX_DEPTH {
            return Err(ShellError::TooDeep);
        }
    }
    let mut walker = Walker {
        out: Vec::new(),
        opts: ParserOptions::default(),
        source: String::new(),
        functions: Vec::new(),
        substitutions: 0,
    };
    walker.program(src, 0, &[])?;
    // Function bodies come last: a call to an unknown function name is the plainer reason.
    while let Some((body, depth, inherited)) = walker.functions.pop() {
        walker.compound(&body, depth, &inherited)?;
    }
    Ok(walker.out)
}

pub(super) struct Walker {
    out: Vec<SimpleCmd>,
    opts: ParserOptions,
    /// The program being walked: node positions index into it.
    source: String,
    /// Function bodies, judged after everything else with `function_definition`.
    functions: Vec<(CompoundCommand, usize, Vec<Construct>)>,
    /// How many substitutions enclose what is being walked.
    pub(super) substitutions: usize,
}

impl Walker {
    fn program(&mut self, src: &str, depth: usize, inherited: &[Construct]) -> Result<(), ShellError> {
        if depth > MAX_DEPTH {
            return Err(ShellError::TooDeep);
        }
        let program = Parser::new(std::io::Cursor::new(src.as_bytes()), &self.opts)
            .parse_program()
            .map_err(|e| ShellError::Unparseable(e.to_string()))?;
        let outer = std::mem::replace(&mut self.source, src.to_owned());
        let walked = program.complete_commands.iter().try_for_each(|list| self.list(list, depth, inherited));
        self.source = outer;
        walked
    }

    pub(super) fn list(&mut self, list: &ast::CompoundList, depth: usize, inh: &[Construct]) -> Result<(), ShellError> {
        for item in &list.0 {
            let and_or = &item.0;
            self.pipeline(&and_or.first, depth, inh)?;
            for next in &and_or.additional {
                let (ast::AndOr::And(p) | ast::AndOr::Or(p)) = next;
                self.pipeline(p, depth, inh)?;
            }
        }
        Ok(())
    }

    fn pipeline(&mut self, p: &ast::Pipeline, depth: usize, inh: &[Construct]) -> Result<(), ShellError> {
        for cmd in &p.seq {
            self.command(cmd, depth, inh)?;
        }
        Ok(())
    }

    fn command(&mut self, cmd: &Command, depth: usize, inh: &[Construct]) -> Result<(), ShellError> {
        if depth > MAX_DEPTH {
            return Err(ShellError::TooDeep);
        }
        match cmd {
            Command::Simple(simple) => self.simple(simple, depth, inh),
            Command::Compound(compound, redirects) => {
                let mut inner = inh.to_vec();
                if let Some(list) = redirects {
                    for r in &list.0 {
                        self.redirect(r, depth, &mut inner)?;
                    }
                }
                self.compound(compound, depth + 1, &inner)
            }
            Command::Function(def) => {
                let mut inner = inh.to_vec();
                push_unique(&mut inner, Construct::FunctionDefinition);
                if let Some(list) = &def.body.1 {
                    for r in &list.0 {
                        self.redirect(r, depth, &mut inner)?;
                    }
                }
                self.functions.push((def.body.0.clone(), depth + 1, inner));
                Ok(())
            }
            Command::ExtendedTest(..) => {
                Err(ShellError::Opaque("`[[ … ]]` is not evaluated by policy; use `[ … ]` or `test`".into()))
            }
        }
    }

    fn compound(&mut self, c: &CompoundCommand, depth: usize, inh: &[Construct]) -> Result<(), ShellError> {
        match c {
            CompoundCommand::BraceGroup(g) => self.list(&g.list, depth, inh),
            CompoundCommand::Subshell(s) => self.list(&s.list, depth, inh),
            CompoundCommand::ForClause(f) => {
                // The loop variable is judged like any assignment name; its values can only
                // reach places policy reads as data (arithmetic over names is refused).
                builtins::assignable(&f.variable_name)?;
                let mut inner = inh.to_vec();
                for w in f.values.iter().flatten() {
                    self.word(&w.value, depth, &mut inner)?;
                }
                self.list(&f.body.list, depth, &inner)
            }
            CompoundCommand::CaseClause(c) => {
                let mut inner = inh.to_vec();
                self.word(&c.value.value, depth, &mut inner)?;
                for case in &c.cases {
                    for p in &case.patterns {
                        self.word(&p.value, depth, &mut inner)?;
                    }
                    if let Some(body) = &case.cmd {
                        self.list(body, depth, &inner)?;
                    }
                }
                Ok(())
            }
            CompoundCommand::IfClause(i) => {
                self.list(&i.condition, depth, inh)?;
                self.list(&i.then, depth, inh)?;
                for e in i.elses.iter().flatten() {
                    if let Some(cond) = &e.condition {
                        self.list(cond, depth, inh)?;
                    }
                    self.list(&e.body, depth, inh)?;
                }
                Ok(())
            }
            CompoundCommand::WhileClause(w) | CompoundCommand::UntilClause(w) => {
                self.list(&w.0, depth, inh)?;
                self.list(&w.1.list, depth, inh)
            }
            CompoundCommand::Arithmetic(a) if !self.is_double_paren(a.loc.start.index) => {
                // `( ( uptime ) )`: bash reads two subshells; brush-parser reads `((`.
                let (start, end) = (a.loc.start.index, a.loc.end.index);
                let inner = self.source.get(start + 1..end.saturating_sub(1)).map(str::to_owned);
                let inner = inner.ok_or_else(|| ShellError::Unparseable("subshell position out of range".into()))?;
                self.program(&inner, depth + 1, inh)
            }
            CompoundCommand::Arithmetic(_) | CompoundCommand::ArithmeticForClause(_) => {
                Err(ShellError::Opaque("arithmetic commands `(( … ))` are not evaluated by policy".into()))
            }
            CompoundCommand::Coprocess(_) => Err(ShellError::Opaque("`coproc` is not evaluated by policy".into())),
        }
    }

    /// Whether the `((` at `index` of the walked source is written without a space.
    fn is_double_paren(&self, index: usize) -> bool {
        self.source.get(index..).is_some_and(|rest| rest.starts_with("(("))
    }

    fn simple(&mut self, s: &ast::SimpleCommand, depth: usize, inh: &[Construct]) -> Result<(), ShellError> {
        let mut cmd = SimpleCmd { argv: Vec::new(), constructs: Vec::new(), enclosing: inh.to_vec() };
        let items = s.prefix.iter().flat_map(|p| p.0.iter());
        let suffix = s.suffix.iter().flat_map(|p| p.0.iter());
        for item in items {
            match item {
                Item::AssignmentWord(_, w) => {
                    builtins::assignable(builtins::assigned_name(&w.value))?;
                    if w.value.split_once('=').is_some_and(|(_, v)| v.starts_with('(')) {
                        return Err(ShellError::Opaque(format!(
                            "`{}` is a compound array assignment, whose subscripts bash evaluates as code",
                            w.value
                        )));
                    }
                    push_unique(&mut cmd.constructs, Construct::EnvAssignment);
                    self.word(&w.value, depth, &mut cmd.constructs)?;
                }
                other => self.item(other, depth, &mut cmd)?,
            }
        }
        if let Some(name) = &s.word_or_name {
            let w = self.word(&name.value, depth, &mut cmd.constructs)?;
            cmd.argv.push(w);
        }
        for item in suffix {
            self.item(item, depth, &mut cmd)?;
        }
        varname_redirects(s, &mut cmd)?;
        if let Some(first) = cmd.argv.first()
            && (first.literal.is_none() || first.expands)
        {
            return Err(ShellError::Opaque(format!(
                "command name `{}` is computed at run time (expansion, substitution, glob or brace)",
                first.raw
            )));
        }
        self.out.push(cmd);
        Ok(())
    }

    fn item(&mut self, item: &Item, depth: usize, cmd: &mut SimpleCmd) -> Result<(), ShellError> {
        match item {
            Item::Word(w) => {
                let word = self.word(&w.value, depth, &mut cmd.constructs)?;
                cmd.argv.push(word);
            }
            Item::AssignmentWord(_, w) => {
                // `export X=1`, `declare a=b`: an argument of the builtin, not a prefix.
                let word = self.word(&w.value, depth, &mut cmd.constructs)?;
                cmd.argv.push(word);
            }
            Item::IoRedirect(r) => self.redirect(r, depth, &mut cmd.constructs)?,
            Item::ProcessSubstitution(_, sub) => {
                push_unique(&mut cmd.constructs, Construct::ProcessSubstitution);
                self.substitutions += 1;
                let walked = self.list(&sub.list, depth + 1, &[]);
                self.substitutions -= 1;
                walked?;
                // The command receives a `/dev/fd/N` argument in its place.
                // Its raw text is empty so the text globs and messages see stays as written.
                cmd.argv.push(ShellWord {
                    literal: None,
                    raw: String::new(),
                    expands: false,
                    braces: false,
                    extglob: false,
                    splits: false,
                });
            }
        }
        Ok(())
    }

    /// Reads one word (`word::analyze`) and walks the code of its substitutions.
    pub(super) fn word(&mut self, raw: &str, depth: usize, out: &mut Vec<Construct>) -> Result<ShellWord, ShellError> {
        if depth > MAX_DEPTH {
            return Err(ShellError::TooDeep);
        }
        let facts = word::analyze(raw, &self.opts)?;
        for c in facts.constructs {
            push_unique(out, c);
        }
        for code in &facts.code {
            self.substitutions += 1;
            let walked = self.program(code, depth + 1, &[]);
            self.substitutions -= 1;
            walked?;
        }
        Ok(ShellWord {
            literal: facts.literal,
            raw: raw.to_owned(),
            expands: facts.globs || facts.braces,
            braces: facts.braces,
            extglob: facts.extglob,
            splits: facts.splits,
        })
    }
}

pub(super) fn push_unique(v: &mut Vec<Construct>, c: Construct) {
    if !v.contains(&c) {
        v.push(c);
    }
}
