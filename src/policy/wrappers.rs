//! Commands that run other commands: `env`, `nohup`, `timeout`, `sudo`, `sh -c`, `xargs`,
//! `busybox`, interpreters given code, `eval`/`source`.
//!
//! Owns: peeling a wrapper off an argv so policy judges what actually runs. Never decides
//! allow/deny and never does IO. A wrapper whose options it does not know is opaque.

use super::Construct;
use super::shell::ShellWord;

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
        "nohup" | "builtin" | "setsid" | "strace" | "ltrace" => inner(rest, 0, &[], &[], None),
        "command" => match rest.first().and_then(|w| w.literal.as_deref()) {
            Some("-v" | "-V") => Unwrapped::Plain(None),
            _ => inner(rest, 0, &["-p"], &[], None),
        },
        "env" => env(rest),
        "nice" => inner(rest, 0, &[], &["-n", "--adjustment"], None),
        "ionice" => inner(rest, 0, &["-t"], &["-c", "-n", "-p"], None),
        "stdbuf" => inner(rest, 0, &[], &["-i", "-o", "-e"], None),
        "time" => inner(rest, 0, &["-p", "-v", "-a", "-q"], &["-f"], None),
        "timeout" => inner(
            rest,
            1,
            &["--preserve-status", "--foreground", "-v", "--verbose"],
            &["-s", "-k", "--signal", "--kill-after"],
            None,
        ),
        "taskset" => inner(rest, 1, &[], &[], None),
        "xargs" => inner(
            rest,
            0,
            &["-0", "-r", "-t", "-p", "-x", "--null", "--no-run-if-empty"],
            &["-I", "-L", "-n", "-P", "-d", "-E", "-s", "-a"],
            Some(Construct::Xargs),
        ),
        "busybox" => match rest.first() {
            Some(_) => Unwrapped::Inner { argv: rest.to_vec(), construct: None },
            None => Unwrapped::Plain(None),
        },
        "su" => su(rest),
        "watch" => watch(rest),
        b if PRIVILEGE.contains(&b) => privilege(b, rest),
        b if SHELLS.contains(&b) => shell(rest),
        b if is_interpreter(b) => interpreter(b, rest),
        "find" => {
            let runs = rest.iter().any(|w| matches!(w.text(), "-exec" | "-execdir" | "-ok" | "-okdir"));
            Unwrapped::Plain(runs.then_some(Construct::InterpreterCode))
        }
        _ => Unwrapped::Plain(None),
    }
}

/// Skips known flags (`flags` alone, `valued` with a value, attached or separate), then
/// `positional` fixed arguments (e.g. timeout's duration); what follows is the inner command.
fn inner(
    rest: &[ShellWord],
    positional: usize,
    flags: &[&str],
    valued: &[&str],
    construct: Option<Construct>,
) -> Unwrapped {
    let mut i = 0;
    while let Some(arg) = rest.get(i).map(ShellWord::text) {
        if arg == "--" {
            i += 1;
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            break;
        }
        // `nice -5 cmd`: a bare numeric flag is the adjustment.
        if is_numeric_flag(arg) && valued.contains(&"--adjustment") {
            i += 1;
            continue;
        }
        if flags.contains(&arg) {
            i += 1;
        } else if valued.contains(&arg) {
            i += 2;
        } else if valued.iter().any(|v| {
            arg.starts_with(v) && (v.starts_with("--") && arg[v.len()..].starts_with('=') || !v.starts_with("--"))
        }) {
            i += 1;
        } else {
            return Unwrapped::Opaque(format!(
                "unknown option `{arg}` of a command wrapper; policy cannot see what it runs"
            ));
        }
    }
    i += positional;
    match rest.get(i..) {
        Some(argv) if !argv.is_empty() => Unwrapped::Inner { argv: argv.to_vec(), construct },
        _ => Unwrapped::Plain(construct),
    }
}

fn is_numeric_flag(arg: &str) -> bool {
    arg.len() > 1 && arg[1..].chars().all(|c| c.is_ascii_digit())
}

fn env(rest: &[ShellWord]) -> Unwrapped {
    let mut i = 0;
    let mut construct = None;
    while let Some(arg) = rest.get(i).map(ShellWord::text) {
        match arg {
            "-i" | "-0" | "--ignore-environment" | "--null" | "-" => i += 1,
            "-u" | "--unset" | "-C" | "--chdir" => i += 2,
            a if a.starts_with("--unset=") || a.starts_with("--chdir=") => i += 1,
            a if a.starts_with('-') => {
                return Unwrapped::Opaque(format!("`env {a}` is not evaluated by policy"));
            }
            a if a.contains('=') => {
                construct = Some(Construct::EnvAssignment);
                i += 1;
            }
            _ => break,
        }
    }
    match rest.get(i..) {
        Some(argv) if !argv.is_empty() => Unwrapped::Inner { argv: argv.to_vec(), construct },
        _ => Unwrapped::Plain(construct),
    }
}

fn privilege(name: &str, rest: &[ShellWord]) -> Unwrapped {
    let (flags, valued): (&[&str], &[&str]) = match name {
        "sudo" => (
            &["-n", "-E", "-H", "-P", "-S", "-b", "-k", "--non-interactive", "--preserve-env"],
            &["-u", "-g", "-U", "-C", "-h", "-p", "-r", "-t", "-D", "-R", "-T", "--user", "--group"],
        ),
        "doas" => (&["-n", "-s"], &["-u", "-C"]),
        "runuser" => (&["-l", "-m", "-p"], &["-u", "-g", "-G", "-s"]),
        "chroot" => (&[], &["--userspec", "--groups"]),
        _ => (&[], &[]),
    };
    if rest.iter().any(|w| matches!(w.text(), "-i" | "-s" | "--login" | "--shell")) && name == "sudo" {
        return Unwrapped::Opaque("`sudo -i`/`sudo -s` opens a shell policy cannot see".into());
    }
    let positional = usize::from(name == "chroot");
    match inner(rest, positional, flags, valued, Some(Construct::Privilege)) {
        Unwrapped::Plain(_) => Unwrapped::Opaque(format!("`{name}` without a command is not evaluated by policy")),
        other => other,
    }
}

fn su(rest: &[ShellWord]) -> Unwrapped {
    let pos = rest.iter().position(|w| matches!(w.text(), "-c" | "--command"));
    match pos.and_then(|p| rest.get(p + 1)) {
        Some(code) => code_of(code, Some(Construct::Privilege)),
        None => Unwrapped::Opaque("`su` without `-c` opens a shell policy cannot see".into()),
    }
}

fn watch(rest: &[ShellWord]) -> Unwrapped {
    let mut i = 0;
    while let Some(arg) = rest.get(i).map(ShellWord::text) {
        match arg {
            "-n" | "--interval" | "-q" => i += 2,
            a if a.starts_with('-') && a != "-x" => i += 1,
            "-x" => return Unwrapped::Opaque("`watch -x` is not evaluated by policy".into()),
            _ => break,
        }
    }
    let words = rest.get(i..).unwrap_or_default();
    match words.iter().map(|w| w.literal.clone()).collect::<Option<Vec<_>>>() {
        Some(parts) if !parts.is_empty() => Unwrapped::Code { code: parts.join(" "), construct: None },
        _ => Unwrapped::Opaque("`watch` with a computed command is not evaluated by policy".into()),
    }
}

/// `sh -c CODE`, `bash -lc CODE`: the code is parsed and judged like the top-level command.
fn shell(rest: &[ShellWord]) -> Unwrapped {
    for (i, w) in rest.iter().enumerate() {
        let t = w.text();
        if t == "--" || !t.starts_with('-') && !t.starts_with('+') {
            break;
        }
        if !t.starts_with("--") && t[1..].contains('c') {
            return match rest.get(i + 1) {
                Some(code) => code_of(code, None),
                None => Unwrapped::Opaque("`-c` without code".into()),
            };
        }
    }
    Unwrapped::Plain(None)
}

fn code_of(word: &ShellWord, construct: Option<Construct>) -> Unwrapped {
    match &word.literal {
        Some(code) => Unwrapped::Code { code: code.clone(), construct },
        None => Unwrapped::Opaque("shell code computed at run time is not evaluated by policy".into()),
    }
}

fn is_interpreter(base: &str) -> bool {
    let stem = base.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    matches!(
        stem,
        "python"
            | "perl"
            | "ruby"
            | "node"
            | "nodejs"
            | "php"
            | "lua"
            | "luajit"
            | "tclsh"
            | "Rscript"
            | "awk"
            | "gawk"
            | "mawk"
            | "nawk"
            | "osascript"
            | "pwsh"
            | "deno"
            | "bun"
    )
}

/// Interpreters given code on the command line run something policy cannot read.
fn interpreter(base: &str, rest: &[ShellWord]) -> Unwrapped {
    let awk = base.ends_with("awk");
    let code_flag = rest.iter().any(|w| {
        let t = w.text();
        matches!(t, "-c" | "-e" | "-E" | "-r" | "-p" | "--eval" | "--print" | "-m")
            || (t.starts_with('-') && !t.starts_with("--") && (t.contains('c') || t.contains('e')) && !awk)
    });
    let awk_program = awk && !rest.iter().any(|w| w.text() == "-f");
    Unwrapped::Plain((code_flag || awk_program).then_some(Construct::InterpreterCode))
}
