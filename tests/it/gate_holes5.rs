//! Adversarial tests (fifth round) against the command policy: commands the policy allows
//! under a plausible policy where real bash 5.2 runs a program or code the policy never
//! judged. Each failed on the code it was written against.
//!
//! Three classes: (1) a word bash turns into several words (brace expansion `{-v,x}`, or an
//! unquoted `${x:-a b}` split into fields, or `"$@"`) hides an option from the builtin's
//! and the wrapper's option readers (`test -v`, `printf -v`, `wait -p`, `read`'s names,
//! `jobs -x`, `set -k`, a wrapper's option value or positional argument followed by the
//! command it runs, `find -exec`, `python3 -c`); (2) an option repeated (`printf -v x -v
//! NAME`, `wait -p x -p NAME`) where only the first is read; (3) `declare NAME='(…)'` on a
//! name that is already an array (`DIRSTACK`, or one `mapfile`/`read -a` made) is a quoted
//! compound assignment whose subscripts bash evaluates as code.

use sshwarden::config::Config;
use sshwarden::policy::{self, Subject};

use crate::bash_oracle::{BROAD, NARROW, differential, report};
use crate::support::cfg::{CREDS, CfgDir, servers};
use crate::support::oracle::Sandbox;

fn policy(yml: &str) -> Config {
    CfgDir::new(&servers(&[("web1", &["web"])]), CREDS, yml).load().unwrap()
}

fn subject() -> Subject<'static> {
    Subject { alias: "web1", tags: &[], deny_substrings: &[], principal: "local", groups: &[] }
}

/// Oracle seeds: each is allowed (by NARROW, or by BROAD) and bash runs `id`, never judged.
const SEEDS: &[&str] = &[
    // NARROW allows these: `test`, `[` and `printf` are plain simple_binaries, no construct.
    "test {-v,'a[$(id)]'}",
    "[ {-v,'a[$(id)]'} ]",
    "printf {-v,'a[$(id)]'} x",
    "echo 'a[$(id)]'; test {-v,$_}",
    "test ${x:--v 'a[$(id)]'}",
    "[ ${x:--v 'a[$(id)]'} ]",
    "printf ${x:--v 'a[$(id)]' y}",
    // BROAD allows these (variable_assignment, function_definition, shell_state, heredoc, …).
    "printf -v x -v 'a[$(id)]' y",
    "sleep 0 & wait -n -p x -p 'a[$(id)]'",
    "sleep 0 & wait {-n,-p,'a[$(id)]'}",
    "echo x | read -p {x,'a[$(id)]'}",
    "declare DIRSTACK='([$(id)]=1)'",
    "mapfile a </dev/null; declare a='([$(id)]=1)'",
    "read -a a <<< x; declare -g a+='([$(id)]=1)'",
    "jobs {-x,id}",
    "set {-k,}; echo 'unset BASH_ENV; id' >/tmp/x; uptime BASH_ENV=/tmp/x",
    "set -- -v 'a[$(id)]'; test \"$@\"",
    "set -- -v 'a[$(id)]' y; printf \"$@\"",
    "f() { test \"$@\"; }; f -v 'a[$(id)]'",
    "f() { printf \"$@\"; }; f -v 'a[$(id)]' y",
    "f() { jobs \"$@\"; }; f -x id",
    "jobs ${x:--x id}",
    "echo -x; jobs $_ id",
    "for o in -x; do jobs $o id; done",
    "sleep 0 & wait -n ${x:--p 'a[$(id)]'}",
    "for o in -k; do set $o; done; echo 'unset BASH_ENV; id' >/tmp/x; uptime BASH_ENV=/tmp/x",
];

#[test]
fn gate_holes5_seeds_run_only_what_the_policy_judged() {
    let sandbox = Sandbox::new().expect("the oracle needs root (chroot) and mknod: run the tests as root");
    let commands: Vec<String> = SEEDS.iter().map(|s| (*s).to_owned()).collect();
    let mut wrong = Vec::new();
    for (name, yml) in [("narrow", NARROW), ("broad", BROAD)] {
        let (_, failures) = differential(&sandbox, yml, &commands);
        if !failures.is_empty() {
            wrong.push(format!(
                "policy {name}: {} allowed commands ran what was never judged:{}",
                failures.len(),
                report(&failures)
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The NARROW bypasses under the policy an operator writes from the docs: glob rules only.
const GLOBS: &str = r#"
rules:
  - {id: no-id, action: deny, commands: ["id", "id *"]}
  - {id: look, action: allow, commands: ["echo *", "test *", '\[ *', "printf *", "cat /var/log/*", "grep *"]}
"#;

#[test]
fn gate_holes5_split_words_hide_test_v_and_printf_v_under_glob_rules() {
    let cfg = policy(GLOBS);
    let mut wrong = Vec::new();
    for command in [
        "test {-v,'a[$(id)]'}",
        "[ {-v,'a[$(id)]'} ]",
        "printf {-v,'a[$(id)]'} x",
        "test ${x:--v 'a[$(id)]'}",
        "printf ${x:--v 'a[$(id)]' y}",
    ] {
        let d = policy::evaluate(&cfg.policy.rules, &subject(), command);
        if d.allowed {
            wrong.push(format!("{command:?} allowed ({}); bash runs `id` from the subscript", d.reason));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Wrappers the operator allows by name (the inner command is judged, `timeout 5 id` is
/// denied), `find` under /var/log and `python3` scripts: a word bash splits carries the
/// wrapper's last fixed argument and the inner command, or `-exec`/`-c`. The recorders
/// cannot show it (the wrapper itself is the recorder), so the policy is asserted; the
/// sandbox shows the argv bash hands the wrapper.
const WRAPPERS: &str = r#"
rules:
  - {id: no-id, action: deny, commands: ["id", "id *"]}
  - {id: wrappers, action: allow, simple_binaries: [timeout, nice, ionice, stdbuf, taskset, echo, uptime]}
  - {id: xargs, action: allow, simple_binaries: [xargs], allow_constructs: [xargs]}
  - {id: find, action: allow, commands: ["find /var/log *"]}
  - {id: py, action: allow, commands: ["python3 *"]}
"#;

#[test]
fn gate_holes5_split_words_hide_what_a_wrapper_runs() {
    let cfg = policy(WRAPPERS);
    for control in ["timeout 5 id", "nice -n 5 id", "find /var/log -exec id ;", "python3 -c 'print(1)'"] {
        let d = policy::evaluate(&cfg.policy.rules, &subject(), control);
        assert!(!d.allowed, "control {control:?} must be denied: {d:?}");
    }
    let commands: Vec<String> = [
        "timeout {5,id}",
        "timeout -s {KILL,5,id}",
        "timeout -k {1,5,id}",
        "taskset {1,id}",
        "nice -n {5,id}",
        "nice -n ${x:-5 id}",
        "ionice -c {2,id}",
        "stdbuf -o {L,id}",
        "echo x | xargs -n {1,id}",
        "find /var/log {-exec,id,\\;}",
        "python3 {-c,'print(1)'}",
        "echo -exec; find /var/log $_ id \\;",
        "echo -c; python3 $_ 'print(1)'",
        "find /var/log ${x:--exec id ;}",
    ]
    .iter()
    .map(|c| (*c).to_owned())
    .collect();
    let sandbox = Sandbox::new().expect("the oracle needs root (chroot) and mknod: run the tests as root");
    let seen = sandbox.run(&commands, false);
    let mut wrong = Vec::new();
    for (command, seen) in commands.iter().zip(seen) {
        let d = policy::evaluate(&cfg.policy.rules, &subject(), command);
        if d.allowed {
            wrong.push(format!("{command:?} allowed ({}); bash ran {:?}", d.reason, seen.executed));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
