//! Redirections as the shell walk reads them: which construct each one is
//! (`output_redirect`, `input_redirect`, `heredoc`, `process_substitution`), what a `>&`
//! target may be, and `{name}>` file-descriptor assignments.
//!
//! Owns: `Walker::redirect`, the `>&`/`<&` target check and `varname_redirects`; refuses
//! here-documents policy cannot read. Never walks commands itself (that is `shell.rs`),
//! decides allow/deny, or does IO.

use brush_parser::ast::{self, CommandPrefixOrSuffixItem as Item};

use super::Construct;
use super::builtins;
use super::shell::{ShellError, ShellWord, SimpleCmd, Walker, push_unique};

impl Walker {
    pub(super) fn redirect(
        &mut self,
        r: &ast::IoRedirect,
        depth: usize,
        out: &mut Vec<Construct>,
    ) -> Result<(), ShellError> {
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
                    duplicate_target(&word, out)?;
                }
                T::Filename(w) => {
                    let word = self.word(&w.value, depth, out)?;
                    let construct = match kind {
                        _ if word.literal.as_deref() == Some("/dev/null") => return Ok(()),
                        K::Read => Construct::InputRedirect,
                        K::DuplicateInput | K::DuplicateOutput => return duplicate_target(&word, out),
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
                // Inside `$(…)` bash ends the document at `EOF)`; the parser does not.
                if self.substitutions > 0 {
                    return Err(ShellError::Opaque(
                        "a here-document inside a command substitution is not evaluated by policy".into(),
                    ));
                }
                // A body line that only starts with the delimiter (`EOF)` inside `$(…)`) may
                // end the document where bash sees it, not where the parser did.
                let end = doc.here_end.value.trim_matches(['\'', '"']);
                if doc.doc.value.lines().any(|l| l.trim_start_matches('\t').starts_with(end)) {
                    return Err(ShellError::Opaque(format!(
                        "a here-document line starts with its delimiter `{end}`; policy cannot say where bash ends it"
                    )));
                }
                // The body is read like "…" but a `"` in it is a character: rather than
                // re-quote it, refuse the expansions that run code (and backslash-newlines,
                // which join lines into them).
                let body = &doc.doc.value;
                if doc.requires_expansion && ["$(", "`", "${", "$[", "\\\n"].iter().any(|p| body.contains(p)) {
                    return Err(ShellError::Opaque(
                        "a here-document with substitutions or `${…}` is not evaluated by policy; quote its delimiter (<<'EOF')".into(),
                    ));
                }
            }
            ast::IoRedirect::HereString(_, w) => {
                push_unique(out, Construct::Heredoc);
                self.word(&w.value, depth, out)?;
            }
        }
        Ok(())
    }
}

/// The word after `>&`/`<&`: a file descriptor number (`2`, `3-` moves it), `-` (close),
/// `/dev/null`, or a plain file name (an output redirection). Bash evaluates a subscript in
/// it first (`>&'a[$(id)]'` runs `id`; so can `>&$_`), so a `[` or a computed word is
/// refused, however the rules read redirections.
fn duplicate_target(word: &ShellWord, out: &mut Vec<Construct>) -> Result<(), ShellError> {
    let fd = word.literal.as_deref().is_some_and(|t| {
        let digits = t.strip_suffix('-').unwrap_or(t);
        t == "-" || t == "/dev/null" || (!digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()))
    });
    if fd {
        return Ok(());
    }
    // `>& file` is `&> file`: an output redirection, as long as nothing in it is evaluated.
    if word.literal.as_deref().is_some_and(|t| !t.contains('[')) && !word.expands {
        push_unique(out, Construct::OutputRedirect);
        return Ok(());
    }
    Err(ShellError::Opaque(format!(
        "`>&{}`/`<&{}` is not a file descriptor number: bash evaluates it as an expression; write `>file 2>&1`",
        word.raw, word.raw
    )))
}

/// `{name}>file` assigns a file descriptor number to `name` (and evaluates a subscript in it,
/// `{a[_]}>…` running whatever `$_` holds). brush-parser reads `{name}` as a word, so a
/// `{…}` word in a command with a redirection is judged as that assignment.
pub(super) fn varname_redirects(s: &ast::SimpleCommand, cmd: &mut SimpleCmd) -> Result<(), ShellError> {
    let items = s.prefix.iter().flat_map(|p| p.0.iter()).chain(s.suffix.iter().flat_map(|p| p.0.iter()));
    if !items.clone().any(|i| matches!(i, Item::IoRedirect(_))) {
        return Ok(());
    }
    for (i, word) in cmd.argv.iter().enumerate() {
        let Some(name) = word.raw.strip_prefix('{').and_then(|r| r.strip_suffix('}')) else { continue };
        if word.braces {
            continue;
        }
        if i == 0 {
            return Err(ShellError::Opaque(format!(
                "`{}` before the command is a `{{name}}>` redirection, not evaluated by policy",
                word.raw
            )));
        }
        builtins::assignable(name)?;
        push_unique(&mut cmd.constructs, Construct::VariableAssignment);
    }
    Ok(())
}
