//! Interpreters (python, perl, ruby, node, awk, …): given code on the command line, they run
//! something policy cannot read.
//!
//! Owns: recognising an interpreter by name and whether its arguments carry code. Never
//! decides allow/deny, never does IO.

use super::Construct;
use super::shell::ShellWord;
use super::wrappers::Unwrapped;

pub fn is_interpreter(base: &str) -> bool {
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
pub fn interpreter(base: &str, rest: &[ShellWord]) -> Unwrapped {
    let awk = base.ends_with("awk");
    // A computed or splitting word may be `-c`/`-e` at run time (`python3 {-c,CODE}`).
    let code_flag = rest.iter().any(|w| {
        let t = w.text();
        if w.fixed().is_none() {
            return true;
        }
        matches!(t, "-c" | "-e" | "-E" | "-r" | "-p" | "--eval" | "--print" | "-m")
            || (t.starts_with('-') && !t.starts_with("--") && (t.contains('c') || t.contains('e')) && !awk)
    });
    let awk_program = awk && !rest.iter().any(|w| w.text() == "-f");
    Unwrapped::Plain((code_flag || awk_program).then_some(Construct::InterpreterCode))
}
