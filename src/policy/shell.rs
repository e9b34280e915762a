//! Reads a command string as a POSIX shell would (brush-parser) and flattens it into the
//! simple commands it would run, each with the opaque constructs it uses.
//!
//! Owns: the AST walk, quote removal, recursion into substitutions and `${…}` strings.
//! Never decides allow/deny (that is `policy::evaluate`) and never does IO.

use brush_parser::ast::{self, Command, CommandPrefixOrSuffixItem as Item, CompoundCommand};
use brush_parser::word::{self, WordPiece};
use brush_parser::{Parser, ParserOptions};

use super::Construct;

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
}

impl ShellWord {
    /// Literal text when known, else the raw source.
    pub fn text(&self) -> &str {
        self.literal.as_deref().unwrap_or(&self.raw)
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

/// Words joined by single spaces: what glob rules, deny_substrings and messages see.
pub fn argv_text(argv: &[ShellWord]) -> String {
    argv.iter().map(ShellWord::text).collect::<Vec<_>>().join(" ")
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
    let mut walker = Walker { out: Vec::new(), opts: ParserOptions::default() };
    walker.program(src, 0, &[])?;
    Ok(walker.out)
}

struct Walker {
    out: Vec<SimpleCmd>,
    opts: ParserOptions,
}

impl Walker {
    fn program(&mut self, src: &str, depth: usize, inherited: &[Construct]) -> Result<(), ShellError> {
        if depth > MAX_DEPTH {
            return Err(ShellError::TooDeep);
        }
        let program = Parser::new(std::io::Cursor::new(src.as_bytes()), &self.opts)
            .parse_program()
            .map_err(|e| ShellError::Unparseable(e.to_string()))?;
        for list in &program.complete_commands {
            self.list(list, depth, inherited)?;
        }
        Ok(())
    }

    fn list(&mut self, list: &ast::CompoundList, depth: usize, inh: &[Construct]) -> Result<(), ShellError> {
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
                if let Some(list) = &def.body.1 {
                    for r in &list.0 {
                        self.redirect(r, depth, &mut inner)?;
                    }
                }
                self.compound(&def.body.0, depth + 1, &inner)
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
            CompoundCommand::Arithmetic(_) | CompoundCommand::ArithmeticForClause(_) => {
                Err(ShellError::Opaque("arithmetic commands `(( … ))` are not evaluated by policy".into()))
            }
            CompoundCommand::Coprocess(_) => Err(ShellError::Opaque("`coproc` is not evaluated by policy".into())),
        }
    }

    fn simple(&mut self, s: &ast::SimpleCommand, depth: usize, inh: &[Construct]) -> Result<(), ShellError> {
        let mut cmd = SimpleCmd { argv: Vec::new(), constructs: Vec::new(), enclosing: inh.to_vec() };
        let items = s.prefix.iter().flat_map(|p| p.0.iter());
        let suffix = s.suffix.iter().flat_map(|p| p.0.iter());
        for item in items {
            match item {
                Item::AssignmentWord(_, w) => {
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
                self.list(&sub.list, depth + 1, &[])?;
            }
        }
        Ok(())
    }

    fn redirect(&mut self, r: &ast::IoRedirect, depth: usize, out: &mut Vec<Construct>) -> Result<(), ShellError> {
        use ast::{IoFileRedirectKind as K, IoFileRedirectTarget as T};
        match r {
            ast::IoRedirect::File(_, kind, target) => match target {
                T::ProcessSubstitution(_, sub) => {
                    push_unique(out, Construct::ProcessSubstitution);
                    self.list(&sub.list, depth + 1, &[])?;
                }
                T::Fd(_) => {}
                T::Duplicate(w) => {
                    let word = self.word(&w.value, depth, out)?;
                    let is_fd =
                        word.literal.as_deref().is_some_and(|t| t == "-" || t.chars().all(|c| c.is_ascii_digit()));
                    if !is_fd {
                        push_unique(out, Construct::OutputRedirect);
                    }
                }
                T::Filename(w) => {
                    let word = self.word(&w.value, depth, out)?;
                    let construct = match kind {
                        K::Read => Construct::InputRedirect,
                        K::DuplicateInput | K::DuplicateOutput
                            if word
                                .literal
                                .as_deref()
                                .is_some_and(|t| t.chars().all(|c| c.is_ascii_digit() || c == '-')) =>
                        {
                            return Ok(());
                        }
                        _ if word.literal.as_deref() == Some("/dev/null") => return Ok(()),
                        _ => Construct::OutputRedirect,
                    };
                    push_unique(out, construct);
                }
            },
            ast::IoRedirect::OutputAndError(w, _) => {
                let word = self.word(&w.value, depth, out)?;
                if word.literal.as_deref() != Some("/dev/null") {
                    push_unique(out, Construct::OutputRedirect);
                }
            }
            ast::IoRedirect::HereDocument(_, doc) => {
                push_unique(out, Construct::Heredoc);
                if doc.requires_expansion {
                    self.word_pieces(&doc.doc.value, depth, out, true)?;
                }
            }
            ast::IoRedirect::HereString(_, w) => {
                push_unique(out, Construct::Heredoc);
                self.word(&w.value, depth, out)?;
            }
        }
        Ok(())
    }

    /// Analyzes one word: quote removal plus recursion into everything that runs code.
    fn word(&mut self, raw: &str, depth: usize, out: &mut Vec<Construct>) -> Result<ShellWord, ShellError> {
        let (literal, globs, braces) = self.word_pieces(raw, depth, out, false)?;
        Ok(ShellWord { literal, raw: raw.to_owned(), expands: globs || braces, braces })
    }

    /// Returns (literal text if fully literal, whether unquoted glob chars appear, whether an
    /// unquoted brace expansion appears).
    fn word_pieces(
        &mut self,
        raw: &str,
        depth: usize,
        out: &mut Vec<Construct>,
        quoted: bool,
    ) -> Result<(Option<String>, bool, bool), ShellError> {
        if depth > MAX_DEPTH {
            return Err(ShellError::TooDeep);
        }
        let pieces = word::parse(raw, &self.opts).map_err(|e| ShellError::Unparseable(e.to_string()))?;
        let mut literal = Some(String::new());
        let mut globs = false;
        // The unquoted text with every other piece as one placeholder character: bash
        // brace-expands `{'..',x}` although its `{` and `,` sit in different pieces.
        let mut skeleton = String::new();
        for p in pieces {
            // Positions come from brush-parser; a bad one is refused, never a panic.
            let source = raw
                .get(p.start_index..p.end_index)
                .ok_or_else(|| ShellError::Unparseable("word position out of range".into()))?;
            if !matches!(p.piece, WordPiece::Text(_)) {
                skeleton.push('q');
            }
            let text: Option<String> = match p.piece {
                WordPiece::Text(t) => {
                    if !quoted {
                        globs |= t.contains(['*', '?']) || is_bracket_glob(&t);
                    }
                    skeleton.push_str(&t);
                    Some(t)
                }
                WordPiece::SingleQuotedText(t) => Some(t),
                WordPiece::EscapeSequence(t) => Some(t.strip_prefix('\\').unwrap_or(&t).to_owned()),
                WordPiece::AnsiCQuotedText(_) | WordPiece::TildeExpansion(_) => None,
                WordPiece::DoubleQuotedSequence(_) | WordPiece::GettextDoubleQuotedSequence(_) => {
                    let inner = source.trim_start_matches('$');
                    let body = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(inner);
                    self.word_pieces(body, depth + 1, out, true)?.0
                }
                WordPiece::ParameterExpansion(_) => {
                    // brush-parser keeps the strings inside `${…}` raw (defaults, patterns,
                    // array indices): re-read the whole inside so `${X:-$(cmd)}` is seen.
                    let inner = source.trim_start_matches('$');
                    let inner = inner.strip_prefix('{').and_then(|s| s.strip_suffix('}')).unwrap_or(inner);
                    self.word_pieces(inner, depth + 1, out, true)?;
                    None
                }
                WordPiece::CommandSubstitution(code) | WordPiece::BackquotedCommandSubstitution(code) => {
                    push_unique(out, Construct::CommandSubstitution);
                    self.program(&code, depth + 1, &[])?;
                    None
                }
                WordPiece::ArithmeticExpression(e) => {
                    if e.value.contains(['$', '`']) {
                        return Err(ShellError::Opaque(
                            "arithmetic expansion containing an expansion is not evaluated by policy".into(),
                        ));
                    }
                    push_unique(out, Construct::Arithmetic);
                    None
                }
            };
            literal = match (literal, text) {
                (Some(mut acc), Some(t)) => {
                    acc.push_str(&t);
                    Some(acc)
                }
                _ => None,
            };
        }
        let braces = !quoted && is_brace_expansion(&skeleton);
        Ok((literal, globs, braces))
    }
}

/// `[abc]`: a bracket expression (a lone `[`, the test command, is not one).
fn is_bracket_glob(text: &str) -> bool {
    text.find('[').is_some_and(|open| text[open + 1..].contains(']'))
}

/// `{a,b}` or `{1..3}` outside quotes: bash brace expansion.
fn is_brace_expansion(text: &str) -> bool {
    text.find('{').is_some_and(|open| text[open..].contains(',') || text[open..].contains(".."))
}

fn push_unique(v: &mut Vec<Construct>, c: Construct) {
    if !v.contains(&c) {
        v.push(c);
    }
}
