//! The builtins whose words name variables: `declare` and its kin (a value that would be
//! a compound assignment refused), `read`/`mapfile`/`unset` names after their options, and
//! the name `printf -v` / `wait -p` assign (every occurrence, as getopt keeps the last).
//!
//! Owns: finding each name such a builtin assigns and checking it (`assignable`). Never
//! decides allow/deny; never reads words whose position is unknowable (`builtins::judge`
//! refuses those first).

use super::Construct;
use super::builtins::{assignable, assigned_name, literal};
use super::shell::{ShellError, ShellWord};

pub(super) fn declare(rest: &[ShellWord]) -> Result<Construct, ShellError> {
    for w in rest {
        let raw = w.raw.as_str();
        // On a name that is already an array (`DIRSTACK`, one `mapfile` made), a value that
        // reads `(…)` after quote removal or expansion is a compound assignment: bash
        // evaluates its subscripts as code. So the value must be known and not `(`.
        if let Some((_, value)) = raw.split_once('=') {
            let cooked = w.literal.as_deref().and_then(|l| l.split_once('=')).map(|(_, v)| v);
            match cooked {
                Some(v) if v.starts_with('(') => {
                    return Err(ShellError::Opaque(format!(
                        "`{raw}` assigns `({}…`: on an array name bash evaluates its subscripts as code; policy refuses it",
                        v.chars().skip(1).take(20).collect::<String>()
                    )));
                }
                None if !value.is_empty() => {
                    return Err(ShellError::Opaque(format!(
                        "`{raw}`'s value is computed at run time: on an array name a `(…)` value is a compound assignment whose subscripts bash evaluates as code; policy refuses it"
                    )));
                }
                _ => {}
            }
        }
        if let Some(flags) = raw.strip_prefix('-').or_else(|| raw.strip_prefix('+')) {
            // -i evaluates values as arithmetic, -n makes a name reference, -a/-A take
            // compound values, -l/-u/-c/-t/-I change values or traps.
            if let Some(bad) = flags.chars().find(|c| !"xrgpfF".contains(*c)) {
                return Err(ShellError::Opaque(format!("`declare -{bad}` is not evaluated by policy")));
            }
            continue;
        }
        assignable(assigned_name(raw))?;
        // `a=([i]=v)`: every subscript of a compound assignment is evaluated as arithmetic.
        if raw.split_once('=').is_some_and(|(_, value)| value.starts_with('(')) {
            return Err(ShellError::Opaque(format!(
                "`{raw}` is a compound array assignment, whose subscripts bash evaluates as code; policy refuses it"
            )));
        }
    }
    Ok(Construct::VariableAssignment)
}

/// `read [-opts] NAME…`: every option in `valued` takes a value; the values of `named` and
/// every operand are variable names.
pub(super) fn names_after_options(rest: &[ShellWord], valued: &str, named: &[&str]) -> Result<Construct, ShellError> {
    let mut i = 0;
    while let Some(w) = rest.get(i) {
        let text = literal(w)?;
        i += 1;
        if text == "--" {
            break;
        }
        let Some(flags) = text.strip_prefix('-').filter(|f| !f.is_empty()) else {
            i -= 1;
            break;
        };
        for (pos, flag) in flags.char_indices() {
            if valued.contains(flag) {
                let attached = &flags[pos + flag.len_utf8()..];
                let value = if attached.is_empty() {
                    i += 1;
                    rest.get(i - 1).map(literal).transpose()?.unwrap_or_default()
                } else {
                    attached.to_owned()
                };
                if named.contains(&flag.to_string().as_str()) {
                    assignable(&value)?;
                }
                break;
            }
        }
    }
    for w in rest.get(i..).unwrap_or_default() {
        assignable(&literal(w)?)?;
    }
    Ok(Construct::VariableAssignment)
}

/// `printf -v NAME`, `wait -p NAME`: an option that names a variable to set.
pub(super) fn option_named_variable(name: &str, rest: &[ShellWord]) -> Result<Option<Construct>, ShellError> {
    let flag = if name == "printf" { 'v' } else { 'p' };
    if rest.first().is_some_and(|w| w.literal.is_none()) && rest.len() > 1 {
        return Err(ShellError::Opaque(format!(
            "`{name}`'s first word `{}` is computed at run time and could be an option naming a variable",
            rest[0].raw
        )));
    }
    // Every occurrence counts: getopt keeps the last `-v NAME`, so `-v x -v 'a[…]'` names
    // the second.
    let mut found = false;
    let mut i = 0;
    while let Some(w) = rest.get(i) {
        // A computed word still among the options may be `-v` at run time (`"$_"`).
        if w.literal.is_none() && i + 1 < rest.len() {
            return Err(ShellError::Opaque(format!(
                "`{name}`'s word `{}` is computed at run time and could be an option naming a variable",
                w.raw
            )));
        }
        let text = w.text();
        if text == "--" || !text.starts_with('-') {
            break;
        }
        i += 1;
        if let Some(pos) = text.find(flag) {
            let attached = &text[pos + 1..];
            let var = if attached.is_empty() {
                i += 1;
                rest.get(i - 1).map(literal).transpose()?
            } else {
                Some(attached.into())
            };
            assignable(&var.unwrap_or_default())?;
            found = true;
        }
    }
    Ok(found.then_some(Construct::VariableAssignment))
}
