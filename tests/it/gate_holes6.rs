//! Adversarial tests (sixth round) against the command policy: commands the policy allows
//! where real bash 5.2 runs a program or code the policy never judged. Each failed on the
//! code it was written against.
//!
//! Classes: (1) `set +` (a lone `+`, which bash's `set` skips and keeps reading options)
//! ends `positional_words` early, so a brace word after it hides `-k`/`-o keyword`; (2)
//! `shopt -o keyword` is `set -k` by another name; (3) a brace word keeps its literal
//! text (`{id ,EXIT}`), and the code given to `trap`, `sh -c`, `bash -c`, `su -c` and
//! `watch` is taken from that literal, while bash hands the command only the first field
//! (`id `); (4) `su` reads `--c`/`--session-command` (getopt prefixes; the last wins) and
//! `--sh`; (5) `sudo VAR=value CMD` runs CMD and `runuser USER -c CMD` runs CMD, while the
//! policy judges `VAR=value` / `USER` as the command; (6) a computed word after `printf -v
//! x` / `wait -p x` is a second option at run time.
//!
//! Reported in the same round and left as documented (SECURITY.md): a login shell
//! (`bash -lc`, `su -`) runs the profile, as the shell sshd starts runs `~/.bashrc`; both
//! are code on the host that policy does not see, and writing them needs a redirect or an
//! upload the policy must not allow to those paths.

use sshwarden::config::Config;
use sshwarden::policy::{self, Subject};

use crate::bash_oracle::{BROAD, differential, report};
use crate::support::cfg::{CREDS, CfgDir, servers};
use crate::support::oracle::Sandbox;

fn policy(yml: &str) -> Config {
    CfgDir::new(&servers(&[("web1", &["web"])]), CREDS, yml).load().unwrap()
}

fn subject() -> Subject<'static> {
    Subject { alias: "web1", tags: &[], deny_substrings: &[], principal: "local", groups: &[] }
}

fn allowed_under(yml: &str, commands: &[&str]) -> Vec<String> {
    let cfg = policy(yml);
    commands
        .iter()
        .filter_map(|c| {
            let d = policy::evaluate(&cfg.policy.rules, &subject(), c);
            d.allowed.then(|| format!("{c:?} allowed ({})", d.reason))
        })
        .collect()
}

fn oracle(yml: &str, seeds: &[&str]) {
    let sandbox = Sandbox::new().expect("the oracle needs root (chroot) and mknod: run the tests as root");
    let commands: Vec<String> = seeds.iter().map(|s| (*s).to_owned()).collect();
    let (allowed, failures) = differential(&sandbox, yml, &commands);
    assert!(
        failures.is_empty(),
        "{allowed} allowed, {} ran what was never judged:{}",
        failures.len(),
        report(&failures)
    );
}

/// `set + {-k,}` is `set + -k -k`... bash's `set` skips a lone `+` and reads `-k`; the
/// policy stops reading options at `+` and the brace word's literal `{-k,}` is no option.
#[test]
fn gate_holes6_set_plus_then_brace_word_is_set_k() {
    oracle(
        BROAD,
        &[
            "set + {-k,}; echo 'unset BASH_ENV; id' >/tmp/x; uptime BASH_ENV=/tmp/x",
            "set + {-o,keyword}; echo 'unset BASH_ENV; id' >/tmp/x; uptime BASH_ENV=/tmp/x",
        ],
    );
}

/// `shopt -o NAME` sets a `set -o` option: `keyword` is `set -k`.
#[test]
fn gate_holes6_shopt_o_keyword_is_set_k() {
    oracle(
        BROAD,
        &[
            "shopt -os keyword; echo 'unset BASH_ENV; id' >/tmp/x; uptime BASH_ENV=/tmp/x",
            "shopt -s -o keyword; echo 'unset BASH_ENV; id' >/tmp/x; uptime BASH_ENV=/tmp/x",
        ],
    );
}

/// `trap {"id ",EXIT}` is `trap 'id ' EXIT`; the policy judges the code `{id ,EXIT}`
/// (commands `{id` and `,EXIT}`).
#[test]
fn gate_holes6_trap_code_from_a_brace_word() {
    oracle(BROAD, &["trap {\"id \",EXIT}", "trap {\"id;\",EXIT}", "builtin trap -- {\"id \",EXIT}"]);
}

/// The same for the code of `sh -c`, `bash -c`, `su -c` and `watch` (recorders in the
/// sandbox, so the policy is asserted; real bash runs the payload: `bash -c {"touch
/// /tmp/f;",x}` creates /tmp/f).
#[test]
fn gate_holes6_shell_code_from_a_brace_word() {
    let wrong = allowed_under(
        BROAD,
        &["sh -c {\"id \",x}", "bash -c {\"id;\",uptime}", "su -c {\"id \",x}", "watch {\"id \",x}"],
    );
    assert!(wrong.is_empty(), "each runs `id`:\n{}", wrong.join("\n"));
}

/// util-linux `su` takes the last command option, abbreviations included (`--c` is
/// `--command`), and `--session-command`; `--sh` is `--shell`.
#[test]
fn gate_holes6_su_reads_options_the_policy_does_not() {
    let wrong = allowed_under(
        BROAD,
        &[
            "su -c uptime --c id",
            "su -c uptime --session-command id",
            "su --sh /tmp/x -c uptime",
            "su -s/tmp/x -c uptime",
        ],
    );
    assert!(wrong.is_empty(), "su runs `id` (or /tmp/x):\n{}", wrong.join("\n"));
}

/// `sudo [VAR=value] command`: the policy judges `X=1` as the command name.
#[test]
fn gate_holes6_sudo_environment_assignment_hides_the_command() {
    let wrong = allowed_under(BROAD, &["sudo X=1 id", "sudo -u root BASH_ENV=/tmp/x uptime"]);
    assert!(wrong.is_empty(), "sudo runs `id`:\n{}", wrong.join("\n"));
}

/// util-linux `runuser USER -c CMD` (su-compatible form, no `-u`): the policy reads
/// `root -c id` as the command `root`, runuser runs `id` through the shell.
#[test]
fn gate_holes6_runuser_su_form_hides_the_command() {
    let wrong = allowed_under(BROAD, &["runuser root -c id", "runuser -- root -c id"]);
    assert!(wrong.is_empty(), "runuser runs `id`:\n{}", wrong.join("\n"));
}

/// `printf`/`wait` check only their first word for a computed option: after `-v x`, a
/// quoted `"$_"` (one word, no split) that is `-v` at run time is read by getopt as a
/// second `-v`, naming `a[$(id)]`; the policy stops reading options at it.
#[test]
fn gate_holes6_computed_word_after_an_option_is_a_second_option() {
    oracle(
        BROAD,
        &[
            "echo -v; printf -v x \"$_\" 'a[$(id)]' z",
            "echo -v; printf -vx \"$_\" 'a[$(id)]' z",
            "for o in -v; do printf -v x \"$o\" 'a[$(id)]' z; done",
            "sleep 0 & echo -p; wait -n -p x \"$_\" 'a[$(id)]'",
        ],
    );
}
