//! Bash builtins that change the shell rather than run a program: assignments in every
//! form, name arguments bash evaluates (`test -v a[…]`), `let`, and builtins that change
//! what later words run (`alias`, `hash`, `trap`, `shopt`, `set`, `cd`, …).
//!
//! Owns: `assignable` (the names no assignment may set) and `judge` (the construct a builtin
//! uses, or why it is refused; the names `declare`, `read`, `printf -v`… assign are read in
//! `named_variables.rs`). Never decides allow/deny, never does IO.

use super::Construct;
use super::named_variables::{declare, names_after_options, option_named_variable};
use super::shell::{ShellError, ShellWord};
use super::word::constant_arithmetic;

/// Variables whose value changes what runs or how the shell reads: refused in every kind of
/// assignment, whatever the rules permit.
const RUN_CHANGING: &[&str] = &[
    "PATH",
    "IFS",
    "ENV",
    "BASH_ENV",
    "PS1",
    "PS2",
    "PS3",
    "PS4",
    "PROMPT_COMMAND",
    "SHELLOPTS",
    "BASHOPTS",
    "GLOBIGNORE",
    "CDPATH",
    "HOME",
    "EXECIGNORE",
    "BASH_XTRACEFD",
    "BASH_LOADABLES_PATH",
    "BASH_COMPAT",
    "POSIXLY_CORRECT",
    "FCEDIT",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "MANPAGER",
    "SYSTEMD_PAGER",
    "LESSOPEN",
    "LESSCLOSE",
    "SHELL",
    "TMPDIR",
    "NODE_OPTIONS",
    "PERL5OPT",
    "PERL5LIB",
    "RUBYOPT",
    "RUBYLIB",
    "_",
    // Variables bash evaluates as arithmetic (or treats specially) when assigned or read:
    // a value like `a[$(id)]` runs `id`.
    "OPTIND",
    "OPTERR",
    "SECONDS",
    "RANDOM",
    "SRANDOM",
    "LINENO",
    "FUNCNEST",
    "HISTCMD",
    "HISTSIZE",
    "HISTFILESIZE",
    "HISTFILE",
    "TMOUT",
    "MAILCHECK",
    "COLUMNS",
    "LINES",
    "BASH_ARGV0",
    "BASH_ARGC",
    "BASH_ARGV",
    "BASH_REMATCH",
    "BASH_CMDS",
    "BASH_ALIASES",
    "EPOCHSECONDS",
    "EPOCHREALTIME",
    "INPUTRC",
    "PROMPT_DIRTRIM",
    "TIMEFORMAT",
    "FIGNORE",
    "HOSTFILE",
    "MAIL",
    "MAILPATH",
    "OLDPWD",
    "PWD",
    // Locale: a multibyte charset (GBK) turns `中\;` into one character and a live `;`.
    "LANG",
    "LANGUAGE",
    // Programs that run a command named by their environment.
    "SUDO_ASKPASS",
    "SSH_ASKPASS",
    "TAR_OPTIONS",
    "OPENSSL_CONF",
    "LUA_INIT",
    "LESS",
    "LESSKEY",
];
/// Prefixes of the same kind (the dynamic loader, exported functions, interpreters' hooks).
const RUN_CHANGING_PREFIXES: &[&str] =
    &["LD_", "BASH", "DYLD_", "GIT_", "PYTHON", "GCONV_", "LOCPATH", "COMP_", "READLINE_", "LC_", "LUA_INIT"];

/// Whether `name` may be assigned: an identifier, and not one that changes what runs.
pub fn assignable(name: &str) -> Result<(), ShellError> {
    let mut chars = name.chars();
    let identifier = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !identifier {
        return Err(ShellError::Opaque(format!(
            "`{name}` is not a plain variable name (a subscript is evaluated as arithmetic, running any $(…) in it)"
        )));
    }
    if RUN_CHANGING.contains(&name) || RUN_CHANGING_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return Err(ShellError::Opaque(format!(
            "assigning `{name}` (an environment assignment or any other form) changes what runs; policy refuses it"
        )));
    }
    Ok(())
}

/// The name part of an assignment word `NAME=value` / `NAME+=value`, as written.
pub fn assigned_name(raw: &str) -> &str {
    let end = raw.find('=').unwrap_or(raw.len());
    raw[..end].strip_suffix('+').unwrap_or(&raw[..end])
}

/// Builtins whose options or operands name variables or code, read by position: a word
/// bash may turn into several hides which is which.
const READ_BY_POSITION: &[&str] = &[
    "declare",
    "typeset",
    "local",
    "export",
    "readonly",
    "read",
    "mapfile",
    "readarray",
    "getopts",
    "unset",
    "printf",
    "wait",
    "test",
    "[",
    "let",
    "jobs",
    "set",
    "shopt",
];

/// What a builtin (called by its bare name) uses: `Ok(None)` when it is an ordinary
/// command, `Ok(Some(c))` for a construct the rule must permit, `Err` when refused.
pub fn judge(name: &str, rest: &[ShellWord]) -> Result<Option<Construct>, ShellError> {
    if READ_BY_POSITION.contains(&name)
        && let Some(w) = positional_words(name, rest).iter().find(|w| w.splits)
    {
        return Err(ShellError::Opaque(format!(
            "`{}` is computed into any number of words at run time (brace expansion, glob, unquoted expansion or `$@`) and `{name}` reads its words by position (`{{-v,NAME}}` is `-v NAME`); policy refuses it",
            w.raw
        )));
    }
    // A computed word of these may be the option that runs code (`jobs -x`, `set -k`).
    if matches!(name, "jobs" | "set" | "shopt")
        && let Some(w) = rest.iter().find(|w| w.literal.is_none())
    {
        return Err(ShellError::Opaque(format!(
            "`{}` is computed at run time and could be an option of `{name}` that runs code; policy refuses it",
            w.raw
        )));
    }
    match name {
        "declare" | "typeset" | "local" | "export" | "readonly" => declare(rest).map(Some),
        "read" => names_after_options(rest, "adnNptui", &["a"]).map(Some),
        "mapfile" | "readarray" => {
            // `-C` anywhere in a cluster (`-tC cb`) names a callback.
            if rest.iter().any(|w| w.text().starts_with('-') && w.text().contains('C')) {
                return Err(ShellError::Opaque(format!("`{name} -C` runs a callback policy cannot read")));
            }
            names_after_options(rest, "dnOsuCc", &[]).map(Some)
        }
        "getopts" => {
            if let Some(var) = rest.get(1) {
                assignable(&literal(var)?)?;
            }
            Ok(Some(Construct::VariableAssignment))
        }
        "unset" => names_after_options(rest, "", &[]).map(Some),
        "printf" | "wait" => option_named_variable(name, rest),
        "test" | "[" => {
            // A computed word may turn into `-v` at run time (`${x:--v}`): then the next word
            // is a name bash evaluates.
            for pair in rest.windows(2) {
                if pair[0].literal.is_none() && (pair[1].literal.is_none() || pair[1].raw.contains('[')) {
                    return Err(ShellError::Opaque(format!(
                        "`{}` is computed at run time and could be the option `-v`, naming `{}` for bash to evaluate",
                        pair[0].raw, pair[1].raw
                    )));
                }
            }
            for pair in rest.windows(2) {
                if matches!(pair[0].text(), "-v" | "-R") {
                    assignable_or_reading(&literal(&pair[1])?)?;
                }
            }
            Ok(None)
        }
        "let" => {
            for w in rest {
                let expr = literal(w)?;
                if !constant_arithmetic(&expr) {
                    return Err(ShellError::Opaque(format!(
                        "`let {expr}` names variables; bash evaluates their values as code"
                    )));
                }
            }
            Ok(Some(Construct::Arithmetic))
        }
        // These define code to run later or change which program a name runs.
        "alias" | "fc" | "bind" | "complete" | "compgen" | "enable" | "hash" => Ok(Some(Construct::Eval)),
        // `set -k` makes every NAME=value argument an assignment; posix mode and
        // `expand_aliases` make aliases (data) into code.
        "set"
            if rest.iter().any(|w| {
                let t = w.text();
                (t.starts_with(['-', '+']) && !t.starts_with("--") && t.contains('k'))
                    || matches!(t, "keyword" | "posix")
            }) =>
        {
            Ok(Some(Construct::Eval))
        }
        // `shopt -o` takes set's option names too (`shopt -os keyword`).
        "shopt" if rest.iter().any(|w| matches!(w.text(), "expand_aliases" | "keyword" | "posix")) => {
            Ok(Some(Construct::Eval))
        }
        // `jobs -x CMD` runs CMD.
        "jobs" if rest.iter().any(|w| w.text().starts_with('-') && w.text().contains('x')) => Ok(Some(Construct::Eval)),
        "unalias" | "shopt" | "set" | "cd" | "pushd" | "popd" | "ulimit" | "umask" | "shift" => {
            Ok(Some(Construct::ShellState))
        }
        _ => Ok(None),
    }
}

/// The words of `name` whose position decides what they mean. `printf`, `wait` and `jobs`
/// read options only before their first operand (getopt), so what follows the format
/// (`printf '%s\n' /var/log/*`) or `--` is data; every other builtin of `READ_BY_POSITION`
/// gives meaning to all of its words (`set` skips a lone `+` and reads on). An option's value counts (`-v {x,-v,NAME}`).
fn positional_words<'a>(name: &str, rest: &'a [ShellWord]) -> &'a [ShellWord] {
    let valued: &str = match name {
        "printf" => "v",
        "wait" => "p",
        "jobs" => "",
        // `set` takes `+`, `-` and options anywhere among its words: all count.
        _ => return rest,
    };
    let mut i = 0;
    while let Some(w) = rest.get(i) {
        let Some(text) = w.fixed() else { return &rest[..=i] };
        let is_option = text.starts_with('-') && text.len() > 1;
        if text == "--" || !is_option {
            return &rest[..i];
        }
        // A valued option written last in its cluster takes the next word.
        i += if text.ends_with(|c: char| valued.contains(c)) { 2 } else { 1 };
    }
    rest
}

pub(super) fn literal(word: &ShellWord) -> Result<String, ShellError> {
    word.literal.clone().ok_or_else(|| {
        ShellError::Opaque(format!("variable name `{}` is computed at run time; policy cannot read it", word.raw))
    })
}

/// Reading a variable by name (`test -v NAME`) evaluates a subscript like an assignment does.
fn assignable_or_reading(name: &str) -> Result<(), ShellError> {
    if name.contains('[') {
        return Err(ShellError::Opaque(format!(
            "`{name}` has a subscript, which bash evaluates as arithmetic (running any $(…) in it)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_changing_names_and_subscripts_are_refused() {
        for bad in ["PATH", "LD_PRELOAD", "a[$(id)]", "BASH_ENV", "IFS", "1x", ""] {
            assert!(assignable(bad).is_err(), "{bad}");
        }
        assert!(assignable("count").is_ok());
        assert_eq!(assigned_name("X+=1"), "X");
    }

    /// Judges the first simple command of `text` as the builtin it names.
    fn judged(text: &str) -> Result<Option<Construct>, ShellError> {
        let cmds = crate::policy::shell::simple_commands(text).map_err(|e| ShellError::Opaque(e.to_string()))?;
        let argv = &cmds[0].argv;
        judge(argv[0].text(), &argv[1..])
    }

    #[test]
    fn words_that_split_are_refused_only_where_their_position_matters() {
        for refused in [
            "test {-v,x}",
            "[ x = {y,-o,-v,z} ]",
            "printf {-v,x} y",
            "printf -v x {-v,y} z",
            "wait -n {-p,x}",
            "jobs {-x,id}",
            "set -o {posix,x}",
            "set + {-k,}",
            "read {x,y}",
            "unset $names",
        ] {
            assert!(judged(refused).is_err(), "{refused}");
        }
        for allowed in ["printf '%s\\n' /var/log/*", "printf -- {a,b}", "jobs %1 {a,b}"] {
            assert!(judged(allowed).is_ok(), "{allowed}: {:?}", judged(allowed));
        }
    }
}
