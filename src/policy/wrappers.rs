//! Commands that run other commands: `env`, `nohup`, `timeout`, `sudo`, `sh -c`, `xargs`,
//! `busybox`, interpreters given code, `eval`/`source`.
//!
//! Owns: peeling a wrapper off an argv so policy judges what actually runs. Never decides
//! allow/deny and never does IO. Options are read as each program's own parser reads them
//! (`getopt.rs`: clusters, `--opt=value`, unique prefixes); an option it does not know makes
//! the wrapper opaque. A bare name that is not a wrapper goes to `builtins::judge`; the
//! wrappers that change user are in `privilege.rs`.

use super::getopt::{self, Spec};
use super::shell::ShellWord;
use super::{Construct, builtins, interpreters, privilege};

/// What a command really runs, as far as the policy can tell.
#[derive(Debug)]
pub enum Unwrapped {
    /// Judge this argv as written; the construct (if any) must be permitted by its rule.
    Plain(Option<Construct>),
    /// Judge the inner argv instead; the wrapper adds a construct to permit.
    Inner { argv: Vec<ShellWord>, construct: Option<Construct> },
    /// The wrapper runs this shell code: parse and judge every command in it.
    Code { code: String, construct: Option<Construct> },
    /// Cannot be seen through.
    Opaque(String),
}

const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "fish", "rbash"];
const PRIVILEGE: &[&str] = &["sudo", "doas", "pkexec", "runuser", "chroot"];

/// Looks at argv[0] and peels one wrapper layer.
pub fn unwrap(argv: &[ShellWord]) -> Unwrapped {
    let Some(name) = argv.first().and_then(|w| w.literal.as_deref()) else {
        return Unwrapped::Plain(None);
    };
    let base = name.rsplit('/').next().unwrap_or(name);
    let rest = &argv[1..];
    match base {
        "eval" | "exec" | "source" | "." => Unwrapped::Plain(Some(Construct::Eval)),
        "builtin" => inner(base, rest, &Spec::default(), 0, None),
        "nohup" => inner(base, rest, &Spec { long_flags: &["help", "version"], ..Spec::default() }, 0, None),
        "setsid" => inner(
            base,
            rest,
            &Spec { short_flags: "cfw", long_flags: &["ctty", "fork", "wait"], ..Spec::default() },
            0,
            None,
        ),
        "strace" | "ltrace" => inner(base, rest, &Spec { short_flags: "cfqrtTvyZz", ..Spec::default() }, 0, None),
        "command" => match rest.first().and_then(|w| w.literal.as_deref()) {
            Some("-v" | "-V") => Unwrapped::Plain(None),
            _ => inner(base, rest, &Spec { short_flags: "p", ..Spec::default() }, 0, None),
        },
        "env" => env(rest),
        "nice" => inner(
            base,
            rest,
            &Spec { short_flags: "0123456789", short_valued: "n", long_valued: &["adjustment"], ..Spec::default() },
            0,
            None,
        ),
        "ionice" => inner(
            base,
            rest,
            &Spec {
                short_flags: "t",
                short_valued: "cn",
                long_flags: &["ignore"],
                long_valued: &["class", "classdata"],
                ..Spec::default()
            },
            0,
            None,
        ),
        "stdbuf" => inner(
            base,
            rest,
            &Spec { short_valued: "ioe", long_valued: &["input", "output", "error"], ..Spec::default() },
            0,
            None,
        ),
        "time" => inner(
            base,
            rest,
            &Spec {
                short_flags: "pqv",
                short_valued: "f",
                long_flags: &["portability", "quiet", "verbose"],
                long_valued: &["format"],
                ..Spec::default()
            },
            0,
            None,
        ),
        "timeout" => inner(
            base,
            rest,
            &Spec {
                short_flags: "v",
                short_valued: "ks",
                long_flags: &["preserve-status", "foreground", "verbose"],
                long_valued: &["kill-after", "signal"],
                ..Spec::default()
            },
            1,
            None,
        ),
        "taskset" => inner(
            base,
            rest,
            &Spec { short_flags: "ac", long_flags: &["all-tasks", "cpu-list"], ..Spec::default() },
            1,
            None,
        ),
        "xargs" => xargs(rest),
        "busybox" => match rest.first() {
            Some(_) => Unwrapped::Inner { argv: rest.to_vec(), construct: None },
            None => Unwrapped::Plain(None),
        },
        "su" => privilege::su(rest),
        "trap" => trap(rest),
        "watch" => watch(rest),
        b if PRIVILEGE.contains(&b) => privilege::privilege(b, rest),
        b if SHELLS.contains(&b) => shell(b, rest),
        b if interpreters::is_interpreter(b) => interpreters::interpreter(b, rest),
        "find" => {
            // A computed or splitting word may be `-exec` at run time.
            let runs =
                rest.iter().any(|w| matches!(w.text(), "-exec" | "-execdir" | "-ok" | "-okdir") || w.fixed().is_none());
            Unwrapped::Plain(runs.then_some(Construct::InterpreterCode))
        }
        // A bare name may be a builtin that changes the shell; a path never is.
        b if b == name => match builtins::judge(b, rest) {
            Ok(construct) => Unwrapped::Plain(construct),
            Err(why) => Unwrapped::Opaque(why.to_string()),
        },
        _ => Unwrapped::Plain(None),
    }
}

/// Reads the wrapper's options as its own parser does, skips `positional` fixed arguments
/// (e.g. timeout's duration); what follows is the inner command.
pub(super) fn inner(
    program: &str,
    rest: &[ShellWord],
    spec: &Spec,
    positional: usize,
    construct: Option<Construct>,
) -> Unwrapped {
    let parsed = match options(program, spec, rest) {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    // The fixed arguments and the inner command's name must be the words they look like.
    let fixed = rest.iter().skip(parsed.operands).take(positional + 1);
    if let Some(w) = fixed.clone().find(|w| w.splits) {
        return Unwrapped::Opaque(format!(
            "`{}` may become several words at run time, so `{program}`'s command cannot be told from the text",
            w.raw
        ));
    }
    match rest.get(parsed.operands + positional..) {
        Some(argv) if !argv.is_empty() => Unwrapped::Inner { argv: argv.to_vec(), construct },
        _ => Unwrapped::Plain(construct),
    }
}

/// The wrapper's options, or the refusal naming the one policy cannot read.
fn options(program: &str, spec: &Spec, args: &[ShellWord]) -> Result<getopt::Parsed, Unwrapped> {
    let parsed = getopt::parse(program, spec, args)
        .map_err(|why| Unwrapped::Opaque(format!("{why}; policy cannot see what it runs")))?;
    // An option or its value that bash splits (`-n {5,id}`) moves every word after it.
    if let Some(w) = args.iter().take(parsed.operands).find(|w| w.splits) {
        return Err(Unwrapped::Opaque(format!(
            "`{}` in `{program}`'s options may become several words at run time; policy cannot see what it runs",
            w.raw
        )));
    }
    Ok(parsed)
}

/// `xargs`: what follows its options runs with arguments from input. With `-I R`/`-i`/
/// `--replace`, input replaces `R` inside the words: such a word is computed at run time
/// (`xargs -I% sh -c %` runs input as code), so it loses its literal text.
fn xargs(rest: &[ShellWord]) -> Unwrapped {
    let spec = Spec {
        short_flags: "0rtpx",
        short_valued: "ILnPdEsa",
        short_optional: "eil",
        long_flags: &["null", "no-run-if-empty", "verbose", "interactive", "exit"],
        long_valued: &["max-args", "max-procs", "delimiter", "max-chars", "arg-file", "max-lines"],
        long_optional: &["replace", "eof"],
        ..Spec::default()
    };
    let parsed = match options("xargs", &spec, rest) {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    let replace = parsed.options.iter().find_map(|(name, value)| match (name.as_str(), value.as_deref()) {
        ("I", Some(r)) => Some(r.to_owned()),
        ("i" | "replace", None | Some("")) => Some("{}".to_owned()),
        ("i" | "replace", Some(r)) => Some(r.to_owned()),
        _ => None,
    });
    let Some(argv) = rest.get(parsed.operands..).filter(|a| !a.is_empty()) else {
        return Unwrapped::Plain(Some(Construct::Xargs));
    };
    let argv = argv
        .iter()
        .map(|w| match &replace {
            Some(r) if !r.is_empty() && w.text().contains(r.as_str()) => ShellWord { literal: None, ..w.clone() },
            _ => w.clone(),
        })
        .collect();
    Unwrapped::Inner { argv, construct: Some(Construct::Xargs) }
}

fn env(rest: &[ShellWord]) -> Unwrapped {
    let spec = Spec {
        short_flags: "i0v",
        short_valued: "uC",
        long_flags: &["ignore-environment", "null", "debug"],
        long_valued: &["unset", "chdir"],
        ..Spec::default()
    };
    // `env -` is `env -i`.
    let skip = usize::from(rest.first().is_some_and(|w| w.literal.as_deref() == Some("-")));
    let parsed = match options("env", &spec, &rest[skip.min(rest.len())..]) {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    let mut i = skip + parsed.operands;
    let mut construct = None;
    while let Some(word) = rest.get(i).filter(|w| w.text().contains('=')) {
        if let Err(why) = builtins::assignable(builtins::assigned_name(word.text())) {
            return Unwrapped::Opaque(why.to_string());
        }
        construct = Some(Construct::EnvAssignment);
        i += 1;
    }
    match rest.get(i..) {
        Some(argv) if !argv.is_empty() => Unwrapped::Inner { argv: argv.to_vec(), construct },
        _ => Unwrapped::Plain(construct),
    }
}

/// procps `watch`: with `-x`/`--exec` the operands are an argv, otherwise they are joined
/// with spaces and given to `sh -c`.
fn watch(rest: &[ShellWord]) -> Unwrapped {
    let spec = Spec {
        short_flags: "bcCegptwrx",
        short_valued: "nq",
        short_optional: "d",
        long_flags: &[
            "beep",
            "color",
            "no-color",
            "errexit",
            "chgexit",
            "precise",
            "no-title",
            "no-wrap",
            "no-linewrap",
            "no-rerun",
            "exec",
        ],
        long_valued: &["interval", "equexit"],
        long_optional: &["differences"],
        ..Spec::default()
    };
    let parsed = match options("watch", &spec, rest) {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    let words = rest.get(parsed.operands..).unwrap_or_default();
    if words.is_empty() {
        return Unwrapped::Opaque("`watch` without a command".into());
    }
    if parsed.has("x") || parsed.has("exec") {
        return Unwrapped::Inner { argv: words.to_vec(), construct: None };
    }
    if let Some(w) = words.iter().find(|w| w.splits) {
        return Unwrapped::Opaque(format!("`watch`'s command word `{}` may become several words at run time", w.raw));
    }
    match words.iter().map(|w| w.literal.clone()).collect::<Option<Vec<_>>>() {
        Some(parts) => Unwrapped::Code { code: parts.join(" "), construct: None },
        None => Unwrapped::Opaque("`watch` with a computed command is not evaluated by policy".into()),
    }
}

/// `sh -c CODE`, `bash -lc CODE`: the code (the first operand) is parsed and judged like the
/// top-level command. A shell given no `-c` runs a script file or its input: code policy
/// cannot read.
fn shell(name: &str, rest: &[ShellWord]) -> Unwrapped {
    let spec = Spec {
        short_flags: "abcefhikmnprstuvxBCEHPTlD",
        short_valued: "oO",
        long_flags: &["norc", "noprofile", "posix", "login", "restricted", "verbose", "noediting", "version", "help"],
        plus: true,
        ..Spec::default()
    };
    let parsed = match options(name, &spec, rest) {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    // An interactive shell first runs ~/.bashrc (or $ENV): code policy never sees.
    if parsed.has("i") {
        return Unwrapped::Opaque(format!("`{name} -i` runs the user's rc file first; policy cannot see it"));
    }
    if parsed.has("c") {
        return match rest.get(parsed.operands) {
            Some(code) => code_of(code, None),
            None => Unwrapped::Opaque("`-c` without code".into()),
        };
    }
    if parsed.has("version") || parsed.has("help") {
        return Unwrapped::Plain(None);
    }
    Unwrapped::Plain(Some(Construct::InterpreterCode))
}

/// `trap CODE SIGNAL…`: the code runs later, on the signal; it is judged now like `sh -c`.
/// `trap '' SIG` (ignore), `trap - SIG` (reset) and `trap -p`/`-l` run nothing.
fn trap(rest: &[ShellWord]) -> Unwrapped {
    let rest = match rest.first().and_then(|w| w.literal.as_deref()) {
        Some("--") => &rest[1..],
        _ => rest,
    };
    match rest.first() {
        None => Unwrapped::Plain(None),
        Some(w) if matches!(w.literal.as_deref(), Some("-" | "-p" | "-l")) => Unwrapped::Plain(None),
        Some(code) if code.literal.as_deref().is_some_and(|c| c.trim().is_empty()) => Unwrapped::Plain(None),
        Some(code) => code_of(code, None),
    }
}

pub(super) fn code_of(word: &ShellWord, construct: Option<Construct>) -> Unwrapped {
    // `trap {"id ",EXIT}` is `trap 'id ' EXIT`: the code is not the text as written.
    if word.splits {
        return Unwrapped::Opaque(format!(
            "shell code `{}` may become several words at run time; policy cannot read it",
            word.raw
        ));
    }
    match &word.literal {
        Some(code) => Unwrapped::Code { code: code.clone(), construct },
        None => Unwrapped::Opaque("shell code computed at run time is not evaluated by policy".into()),
    }
}
