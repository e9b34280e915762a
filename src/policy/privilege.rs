//! The wrappers that run their command as another user: `sudo`, `doas`, `runuser`,
//! `chroot`, `pkexec` (options read as their own getopt does) and `su` (only its plain
//! forms: `-`, `-l`, `-m`, `-p`, one `-c CODE`).
//!
//! Owns: how far each reads before its command starts, and the forms refused because the
//! command could not be told from the text (`sudo -i`, `sudo NAME=value CMD`, `runuser`
//! without `-u`, `su --c`). Never decides allow/deny: the inner command is judged by the
//! rules like any other, with the `privilege` construct.

use super::Construct;
use super::getopt::Spec;
use super::shell::ShellWord;
use super::wrappers::{Unwrapped, code_of, inner};

pub(super) fn privilege(name: &str, rest: &[ShellWord]) -> Unwrapped {
    let spec = match name {
        "sudo" => Spec {
            short_flags: "AbBEHkKnPS",
            short_valued: "CDgpRrtTUu",
            short_optional: "h",
            long_flags: &[
                "askpass",
                "background",
                "bell",
                "set-home",
                "non-interactive",
                "preserve-groups",
                "stdin",
                "remove-timestamp",
                "reset-timestamp",
            ],
            long_valued: &[
                "close-from",
                "chdir",
                "group",
                "prompt",
                "chroot",
                "role",
                "type",
                "command-timeout",
                "other-user",
                "user",
            ],
            long_optional: &["preserve-env", "host"],
            ..Spec::default()
        },
        "doas" => Spec { short_flags: "n", short_valued: "uC", ..Spec::default() },
        "runuser" => Spec {
            short_flags: "mp",
            short_valued: "gGu",
            long_valued: &["group", "supp-group", "user"],
            ..Spec::default()
        },
        "chroot" => Spec { long_flags: &["skip-chdir"], long_valued: &["userspec", "groups"], ..Spec::default() },
        "pkexec" => {
            Spec { long_flags: &["disable-internal-agent", "keep-cwd"], long_valued: &["user"], ..Spec::default() }
        }
        _ => Spec::default(),
    };
    if name == "sudo" && rest.iter().any(|w| matches!(w.text(), "-i" | "-s" | "--login" | "--shell")) {
        return Unwrapped::Opaque("`sudo -i`/`sudo -s` opens a shell policy cannot see".into());
    }
    // `runuser USER -c CMD` (no `-u`) is su's form: refused rather than read twice.
    if name == "runuser" && !rest.iter().any(|w| w.text().starts_with("-u") || w.text().starts_with("--user")) {
        return Unwrapped::Opaque("`runuser` without `-u` runs a shell like `su`; not evaluated by policy".into());
    }
    let positional = usize::from(name == "chroot");
    match inner(name, rest, &spec, positional, Some(Construct::Privilege)) {
        Unwrapped::Plain(_) => Unwrapped::Opaque(format!("`{name}` without a command is not evaluated by policy")),
        // sudo takes `NAME=value` before the command (environment for it), like env.
        Unwrapped::Inner { argv, .. } if name == "sudo" && argv.first().is_some_and(|w| w.text().contains('=')) => {
            let shown = argv.first().map_or("", |w| w.raw.as_str());
            Unwrapped::Opaque(format!(
                "`sudo {shown}`: an environment assignment for the command is not evaluated by policy"
            ))
        }
        other => other,
    }
}

pub(super) fn su(rest: &[ShellWord]) -> Unwrapped {
    // su runs the last `-c` with the shell `-s` names, and its getopt_long takes clusters
    // (`-s/x`), abbreviations (`--c`, `--sh`) and `--session-command`: only the plain
    // forms are read, anything else is refused rather than guessed.
    const PLAIN: &[&str] = &["-", "-l", "--login", "-m", "-p", "--preserve-environment", "-c", "--command"];
    if let Some(w) = rest.iter().find(|w| {
        let t = w.text();
        w.fixed().is_none() || (t.starts_with('-') && !PLAIN.contains(&t))
    }) {
        return Unwrapped::Opaque(format!("`su` with `{}` is not evaluated by policy", w.raw));
    }
    let commands = rest.iter().filter(|w| matches!(w.text(), "-c" | "--command")).count();
    if commands > 1 {
        return Unwrapped::Opaque("`su` with several `-c` is not evaluated by policy".into());
    }
    let pos = rest.iter().position(|w| matches!(w.text(), "-c" | "--command"));
    match pos.and_then(|p| rest.get(p + 1)) {
        Some(code) => code_of(code, Some(Construct::Privilege)),
        None => Unwrapped::Opaque("`su` without `-c` opens a shell policy cannot see".into()),
    }
}
