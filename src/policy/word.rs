//! One shell word, read the way bash reads it: quoting contexts and the expansions inside each.
//!
//! Owns: `analyze(raw) -> WordFacts` — the word's text after quote removal when it is fixed
//! by the text alone, the code of every substitution it would run, and the named constructs
//! it uses. Contexts are bash's own: unquoted, `'…'`, `"…"` (where only `$`, a backtick and
//! `\` before `$ \` " newline` are special, and a `'` is an ordinary character), `$'…'`,
//! `$"…"`, and the word of a `${…}` operator, which is read in the context of the `${…}`
//! itself. Never decides allow/deny, never does IO.
//!
//! A word is fixed when it is literal text or plain `$NAME`/`${NAME}` (and defaults whose
//! every part is fixed the same way): a value never runs code there. Everything that
//! evaluates data (`${!x}`, `${x@P}`, subscripts, offsets, `$((…))` over names) is either a
//! named construct or refused outright, because the value may be text the command itself
//! supplied (`$_`, a `for` variable, `read`): bash evaluates `a[$(id)]` in every arithmetic
//! context and runs `id`.

use brush_parser::ParserOptions;
use brush_parser::word::{self, Parameter, ParameterExpr, WordPiece, WordPieceWithSource};

use super::Construct;
use super::shell::ShellError;

/// Everything policy learns from one word.
#[derive(Debug, Default)]
pub struct WordFacts {
    /// Text after quote removal, when the text alone fixes it.
    pub literal: Option<String>,
    /// Unquoted `*`, `?`, `[…]` or an extglob pattern: bash may replace it with file names.
    pub globs: bool,
    /// Unquoted extglob operator `@(`, `?(`, `*(`, `+(`, `!(` (with `extglob` on they match `..`).
    pub extglob: bool,
    /// Unquoted `{a,b}` or `{1..3}`.
    pub braces: bool,
    /// Bash may make zero or several words of it: brace expansion, a glob, an unquoted
    /// expansion or substitution (field splitting), or `$@`/`${a[@]}` even in quotes.
    pub splits: bool,
    /// Constructs the word uses.
    pub constructs: Vec<Construct>,
    /// Code of each command or process substitution, to be judged as commands.
    pub code: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Unquoted,
    DoubleQuoted,
}

/// Reads one word as bash will.
pub fn analyze(raw: &str, opts: &ParserOptions) -> Result<WordFacts, ShellError> {
    let pieces = word::parse(raw, opts).map_err(|e| ShellError::Unparseable(e.to_string()))?;
    let mut reader = Reader { facts: WordFacts::default(), skeleton: String::new(), opts, dollar: false };
    let literal = reader.pieces(&pieces, Context::Unquoted)?;
    let mut facts = reader.facts;
    facts.braces = is_brace_expansion(&reader.skeleton);
    // Any `@` parameter (`$@`, `${@:2}`, `${a[@]}`, `${!p@}`) may be several words even
    // quoted; read from the text, erring on the side of "splits" inside single quotes.
    let at_parameter = ["$@", "${@", "[@]", "@}"].iter().any(|p| raw.contains(p));
    facts.splits |= facts.braces || facts.globs || at_parameter;
    facts.literal = literal;
    Ok(facts)
}

/// Whether `expr` is arithmetic over constants only: no names (a name's value is evaluated
/// again, subscripts and all), no expansions.
pub fn constant_arithmetic(expr: &str) -> bool {
    expr.chars().all(|c| c.is_ascii_digit() || c.is_ascii_whitespace() || "+-*/%()<>=!&|^~?:,".contains(c))
}

struct Reader<'o> {
    facts: WordFacts,
    /// Unquoted text with every other piece as one placeholder: bash brace-expands
    /// `{'..',x}` although its `{` and `,` sit in different pieces.
    skeleton: String,
    opts: &'o ParserOptions,
    /// The previous piece was text ending in `$`: brush-parser leaves an expansion it does
    /// not know (`${v@op}`, `$[…]`) as text, which bash still expands.
    dollar: bool,
}

impl Reader<'_> {
    fn construct(&mut self, c: Construct) {
        if !self.facts.constructs.contains(&c) {
            self.facts.constructs.push(c);
        }
    }

    /// Returns the literal text of the pieces, if fixed.
    fn pieces(&mut self, pieces: &[WordPieceWithSource], ctx: Context) -> Result<Option<String>, ShellError> {
        let mut literal = Some(String::new());
        for p in pieces {
            let text = self.piece(&p.piece, ctx)?;
            literal = match (literal, text) {
                (Some(mut acc), Some(t)) => {
                    acc.push_str(&t);
                    Some(acc)
                }
                _ => None,
            };
        }
        Ok(literal)
    }

    fn piece(&mut self, piece: &WordPiece, ctx: Context) -> Result<Option<String>, ShellError> {
        let unquoted = ctx == Context::Unquoted;
        if unquoted && !matches!(piece, WordPiece::Text(_)) {
            self.skeleton.push('q');
        }
        // Field splitting: an unquoted expansion's value becomes as many words as it has
        // fields (`${x:--v a[…]}` is two).
        if unquoted
            && matches!(
                piece,
                WordPiece::ParameterExpansion(_)
                    | WordPiece::CommandSubstitution(_)
                    | WordPiece::BackquotedCommandSubstitution(_)
                    | WordPiece::ArithmeticExpression(_)
            )
        {
            self.facts.splits = true;
        }
        let after_dollar = std::mem::take(&mut self.dollar);
        Ok(match piece {
            WordPiece::Text(t) => {
                if t.contains("${") || t.contains("$[") || after_dollar && t.starts_with(['{', '[']) {
                    return Err(ShellError::Opaque(format!(
                        "`{t}` is an expansion policy cannot read (`${{…}}` it does not know, or `$[…]` arithmetic)"
                    )));
                }
                self.dollar = t.ends_with('$');
                if unquoted {
                    self.facts.globs |= t.contains(['*', '?']) || is_bracket_glob(t);
                    if has_extglob(t) {
                        self.facts.extglob = true;
                        self.facts.globs = true;
                    }
                    self.skeleton.push_str(t);
                }
                Some(t.clone())
            }
            WordPiece::SingleQuotedText(t) => Some(t.clone()),
            WordPiece::EscapeSequence(e) => Some(unescape(e, ctx)),
            WordPiece::AnsiCQuotedText(_) | WordPiece::TildeExpansion(_) => None,
            WordPiece::DoubleQuotedSequence(inner) => self.pieces(inner, Context::DoubleQuoted)?,
            WordPiece::GettextDoubleQuotedSequence(inner) => {
                self.construct(Construct::LocaleString);
                self.pieces(inner, Context::DoubleQuoted)?;
                None
            }
            WordPiece::ParameterExpansion(expr) => {
                self.parameter_expansion(expr, ctx)?;
                None
            }
            WordPiece::CommandSubstitution(code) => {
                self.construct(Construct::CommandSubstitution);
                self.facts.code.push(code.clone());
                None
            }
            WordPiece::BackquotedCommandSubstitution(code) => {
                self.construct(Construct::CommandSubstitution);
                // Inside "…", bash also turns `\"` back into `"` before parsing the code.
                let code = if unquoted { code.clone() } else { code.replace("\\\"", "\"") };
                self.facts.code.push(code);
                None
            }
            WordPiece::ArithmeticExpression(e) => {
                self.arithmetic(&e.value, "$((…))")?;
                None
            }
        })
    }

    fn arithmetic(&mut self, expr: &str, shown: &str) -> Result<(), ShellError> {
        if expr.contains("$(") || expr.contains('`') {
            return Err(ShellError::Opaque(format!(
                "a command substitution inside arithmetic (`{expr}` in {shown}) is not evaluated by policy: bash evaluates its output as code"
            )));
        }
        if !constant_arithmetic(expr) {
            return Err(ShellError::Opaque(format!(
                "arithmetic `{expr}` in {shown} names variables or expansions; bash evaluates their values as code (a[$(…)]), so policy refuses it"
            )));
        }
        self.construct(Construct::Arithmetic);
        Ok(())
    }

    fn parameter(&mut self, parameter: &Parameter, indirect: bool) -> Result<(), ShellError> {
        if indirect {
            self.construct(Construct::IndirectExpansion);
        }
        if let Parameter::NamedWithIndex { index, .. } = parameter
            && !index.chars().all(|c| c.is_ascii_digit())
        {
            self.arithmetic(index, "an array subscript")?;
        }
        Ok(())
    }

    /// The word of a `${…}` operator, read in the context of the `${…}` itself.
    fn operand(&mut self, text: &str, ctx: Context) -> Result<(), ShellError> {
        let pieces = match ctx {
            Context::Unquoted => word::parse(text, self.opts),
            // Inside "…" a `"` in the operand opens a new quoted string; bash's rules for that
            // nesting differ between versions, so it is refused rather than guessed.
            Context::DoubleQuoted if text.contains('"') => {
                return Err(ShellError::Opaque(format!(
                    "a double quote inside the quoted `${{…}}` operand `{text}` is not evaluated by policy"
                )));
            }
            Context::DoubleQuoted => word::parse(&format!("\"{text}\""), self.opts),
        }
        .map_err(|e| ShellError::Unparseable(e.to_string()))?;
        // Operand text never joins the outer word's brace skeleton.
        let saved = std::mem::take(&mut self.skeleton);
        let globs = self.facts.globs;
        let result = self.pieces(&pieces, ctx);
        self.skeleton = saved;
        self.facts.globs = globs;
        result.map(|_| ())
    }

    /// A pattern inside `${x#…}`, `${x/…/…}`, `${x^…}`: matched, never run, but read (and
    /// its substitutions run) like an operand.
    fn pattern(&mut self, text: Option<&String>, ctx: Context) -> Result<(), ShellError> {
        text.map_or(Ok(()), |t| self.operand(t, ctx))
    }

    fn parameter_expansion(&mut self, expr: &ParameterExpr, ctx: Context) -> Result<(), ShellError> {
        use ParameterExpr as P;
        match expr {
            P::Parameter { parameter, indirect } | P::ParameterLength { parameter, indirect } => {
                self.parameter(parameter, *indirect)
            }
            P::UseDefaultValues { parameter, indirect, default_value: value, .. }
            | P::UseAlternativeValue { parameter, indirect, alternative_value: value, .. }
            | P::IndicateErrorIfNullOrUnset { parameter, indirect, error_message: value, .. } => {
                self.parameter(parameter, *indirect)?;
                value.as_deref().map_or(Ok(()), |v| self.operand(v, ctx))
            }
            P::AssignDefaultValues { parameter, indirect, default_value, .. } => {
                if let Parameter::Named(name) = parameter {
                    super::builtins::assignable(name)?;
                }
                self.parameter(parameter, *indirect)?;
                default_value.as_deref().map_or(Ok(()), |v| self.operand(v, ctx))?;
                self.construct(Construct::VariableAssignment);
                Ok(())
            }
            P::Substring { parameter, indirect, offset, length } => {
                self.parameter(parameter, *indirect)?;
                self.arithmetic(&offset.value, "a `${x:offset}`")?;
                length.as_ref().map_or(Ok(()), |l| self.arithmetic(&l.value, "a `${x:offset:length}`"))
            }
            P::Transform { parameter, indirect, op } => {
                // `${x@P}` expands the value as a prompt, running any `$(…)` in it: eval.
                let c = match op {
                    word::ParameterTransformOp::PromptExpand => Construct::Eval,
                    _ => Construct::ParameterTransform,
                };
                self.construct(c);
                self.parameter(parameter, *indirect)
            }
            P::RemoveSmallestSuffixPattern { parameter, indirect, pattern }
            | P::RemoveLargestSuffixPattern { parameter, indirect, pattern }
            | P::RemoveSmallestPrefixPattern { parameter, indirect, pattern }
            | P::RemoveLargestPrefixPattern { parameter, indirect, pattern }
            | P::UppercaseFirstChar { parameter, indirect, pattern }
            | P::UppercasePattern { parameter, indirect, pattern }
            | P::LowercaseFirstChar { parameter, indirect, pattern }
            | P::LowercasePattern { parameter, indirect, pattern } => {
                self.parameter(parameter, *indirect)?;
                self.pattern(pattern.as_ref(), ctx)?;
                self.construct(Construct::ParameterTransform);
                Ok(())
            }
            P::ReplaceSubstring { parameter, indirect, pattern, replacement, .. } => {
                self.parameter(parameter, *indirect)?;
                self.pattern(Some(pattern), ctx)?;
                self.pattern(replacement.as_ref(), ctx)?;
                self.construct(Construct::ParameterTransform);
                Ok(())
            }
            P::VariableNames { .. } | P::MemberKeys { .. } => {
                self.construct(Construct::IndirectExpansion);
                Ok(())
            }
        }
    }
}

/// `\x` as bash reads it: unquoted, the backslash goes; inside "…" only before `$`, a
/// backtick, `"`, `\` or a newline. A backslash-newline is a line continuation: nothing.
fn unescape(seq: &str, ctx: Context) -> String {
    let rest = seq.strip_prefix('\\').unwrap_or(seq);
    match (ctx, rest) {
        (_, "\n") => String::new(),
        (Context::Unquoted, _) => rest.to_owned(),
        (Context::DoubleQuoted, "$" | "`" | "\"" | "\\") => rest.to_owned(),
        (Context::DoubleQuoted, _) => seq.to_owned(),
    }
}

/// `[abc]`: a bracket expression (a lone `[`, the test command, is not one).
fn is_bracket_glob(text: &str) -> bool {
    text.find('[').is_some_and(|open| text[open + 1..].contains(']'))
}

fn has_extglob(text: &str) -> bool {
    ["@(", "?(", "*(", "+(", "!("].iter().any(|op| text.contains(op))
}

/// `{a,b}` or `{1..3}` outside quotes: bash brace expansion.
fn is_brace_expansion(text: &str) -> bool {
    text.find('{').is_some_and(|open| text[open..].contains(',') || text[open..].contains(".."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(raw: &str) -> WordFacts {
        analyze(raw, &ParserOptions::default()).unwrap()
    }

    #[test]
    fn single_quotes_inside_double_quotes_are_characters() {
        let f = facts(r#""'$(id)'""#);
        assert_eq!(f.code, vec!["id".to_owned()]);
        assert_eq!(facts(r#""it's""#).literal.as_deref(), Some("it's"));
        assert_eq!(facts(r#"'don'"'"'t'"#).literal.as_deref(), Some("don't"));
        assert_eq!(facts(r#""a\b\$c\"d""#).literal.as_deref(), Some(r#"a\b$c"d"#));
    }

    #[test]
    fn words_bash_may_split_are_known() {
        for splits in ["{-v,x}", "${x:--v a}", "$_", "$(id)", "\"$@\"", "\"${a[@]}\"", "*.log", "$((1))"] {
            assert!(facts(splits).splits, "{splits}");
        }
        for one in ["\"$x\"", "\"$(id)\"", "'{a,b}'", "-v", "'a[1]x'", "\"${x:--v a}\""] {
            assert!(!facts(one).splits, "{one}");
        }
    }

    #[test]
    fn operands_are_read_in_their_context() {
        assert_eq!(facts(r#""${x:-'$(id)'}""#).code, vec!["id".to_owned()]);
        assert!(facts(r#"${x:-'$(id)'}"#).code.is_empty(), "unquoted, the single quotes quote");
        assert_eq!(facts(r#"${x:-"$(id)"}"#).code, vec!["id".to_owned()]);
    }

    #[test]
    fn evaluating_expansions_are_named() {
        assert!(facts("${!x}").constructs.contains(&Construct::IndirectExpansion));
        assert!(facts("${x@P}").constructs.contains(&Construct::Eval));
        assert!(facts("${x@Q}").constructs.contains(&Construct::ParameterTransform));
        assert!(facts("$\"x\"").constructs.contains(&Construct::LocaleString));
        assert!(facts("${x:=1}").constructs.contains(&Construct::VariableAssignment));
        for refused in ["${v:$x}", "${a[i]}", "$((x+1))", "${@:n}"] {
            assert!(analyze(refused, &ParserOptions::default()).is_err(), "{refused}");
        }
        assert!(facts("${a[0]}").constructs.is_empty());
        assert!(facts("@(..)").extglob);
    }
}
