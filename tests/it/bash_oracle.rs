//! The differential oracle: every command the policy allows is run by the real bash of the
//! test hosts (sandboxed: chroot, no network, recorders instead of programs, xtrace for
//! builtins), once with `extglob` off and once on. The test fails when bash executes a
//! program or an argv the policy did not judge, and prints the smallest command showing it.
//! Fed by a seed corpus of every known bypass class and a generator of 20 000+ commands
//! combining quoting contexts × expansions × separators × wrappers × allowed/denied names;
//! path arguments and runbook rendering are checked the same way.

use std::collections::BTreeMap;

use sshwarden::config::Config;
use sshwarden::policy::{self, Subject, shell::ShellWord};

use crate::support::cfg::{CREDS, CfgDir, servers};
use crate::support::oracle::{Observed, Sandbox};

/// Narrow: named commands, no constructs, one path rule. Denied names have deny rules too.
pub(crate) const NARROW: &str = r#"
rules:
  - {id: no-df, action: deny, commands: ["df", "df *", "id", "id *", "touch *", "rm *", "curl *"]}
  - {id: echo, action: allow, commands: ["echo", "echo *"]}
  - id: harmless
    action: allow
    simple_binaries: [uptime, ls, date, "true", "false", hostname, whoami, sleep, printf, test, "[", cat, grep, wc, head, uname, kill]
  - id: logs
    action: allow
    binary: du
    path_args: {indices: [1], patterns: ["/var/log", "/var/log/*"]}
    allow_extra_args: false
"#;

/// Broad: everything is allowed but a few names, with every construct except those that
/// run text policy cannot read (`eval`, `interpreter_code`, `indirect_expansion`).
pub(crate) const BROAD: &str = r#"
rules:
  - {id: no-df, action: deny, commands: ["df", "df *", "id", "id *", "touch *", "rm *", "curl *"]}
  - id: anything
    action: allow
    commands: ["*"]
    allow_constructs: [command_substitution, process_substitution, arithmetic, output_redirect, input_redirect, heredoc, env_assignment, privilege, xargs, variable_assignment, function_definition, parameter_transform, locale_string, shell_state]
"#;

fn policy(yml: &str) -> Config {
    CfgDir::new(&servers(&[("web1", &["web"])]), CREDS, yml).load().unwrap()
}

/// Seeds: one per class the issue names, plus their siblings.
const SEEDS: &[&str] = &[
    r#"echo "'$(id)'""#,
    r#"echo "'$(df -h)'""#,
    r#"echo "${x:-'$(id)'}""#,
    r#"echo "${x:='$(id)'}""#,
    r#"echo "${x+'$(id)'}""#,
    r#"echo ${x:-"$(id)"}"#,
    "echo '$(id)'; echo ${_@P}",
    "echo 'a[$(id)]'; echo ${!_}",
    "echo 'a[$(id)]'; echo ${x:_}",
    "echo 'a[$(id)]'; echo ${x:0:_}",
    "echo 'a[$(id)]'; echo ${a[_]}",
    "echo 'a[$(id)]'; echo $((_))",
    "echo 'a[$(id)]'; echo $[_]",
    "echo 'a[$(id)]'; echo \"$[_]\"",
    "echo 'a[$(id)]'; test -v \"$_\"",
    "echo 'a[$(id)]'; [ -v 'a[$(id)]' ]",
    "for v in 'a[$(id)]'; do echo ${a[v]}; done",
    "for v in 'a[$(id)]'; do echo $((v)); done",
    "for v in 'a[$(id)]'; do let v; done",
    "for PATH in /tmp; do uptime; done",
    "read v <<< 'a[$(id)]'; echo ${a[$v]}",
    "read 'a[$(id)]' <<< x",
    "printf -v 'a[$(id)]' x",
    "printf -v v 'a[$(id)]'; echo $((v))",
    "declare 'a[$(id)]=1'",
    "declare -i v='a[$(id)]'",
    "export 'a[$(id)]=1'",
    "mapfile 'a[$(id)]' </dev/null",
    "getopts x 'a[$(id)]'",
    "OPTIND='a[$(id)]' getopts x v",
    "SECONDS='a[$(id)]' true",
    "read RANDOM <<< 'a[$(id)]'",
    "declare FUNCNEST='a[$(id)]'",
    "for LINENO in 'a[$(id)]'; do true; done",
    "mapfile -tC id -c 1 arr <<< x",
    "mapfile -C id -c 1 arr <<< x",
    "echo 'b[$(id)]'; true {a[_]}>/dev/null",
    "echo 'b[$(id)]'; {a[_]}>/dev/null true",
    "echo 'b[$(id)]'; uptime {a[_]}</dev/null",
    "true {PATH}>/dev/null; uptime",
    "echo 'b[$(id)]'; declare a=([_]=1)",
    "true >&'a[$(id)]'",
    "true <&'a[$(id)]'",
    "echo 'a[$(id)]'; true 2>&$_",
    "true 1>&'a[$(id)]'-",
    // From an adversary run: each confirmed in the sandbox before its fix.
    "echo 'a[$(id)]'; echo {a[_]}>/dev/null",
    "for v in 'a[$(id)]'; do echo {a[v]}>/dev/null; done",
    "test ${x:--v} 'a[$(id)]'",
    "[ ${x:--v} 'a[$(id)]' ]",
    "printf ${x:--v} 'a[$(id)]' x",
    "echo -v; printf $_ 'a[$(id)]' x",
    "for LC_ALL in zh_CN.GBK; do true; done\necho 中\\; id",
    "for v in 'a[$(id)]'; do cat <<EOF\n$[v]\nEOF\ndone",
    "cat <<EOF\n$\\\n(id)\nEOF",
    "cat <<EOF\nE\\\nOF\nid\nEOF",
    "echo $(cat <<EOF\nx\nEOF)\nid\nEOF\n)",
    "command ${x:-id}",
    "command {id,}",
    "builtin ${x:-eval} id",
    "echo id; command $_",
    "f() { command \"$@\"; }; f id",
    "echo 'a[$(id)]'; declare a=([$_]=1)",
    "for v in 'a[$(id)]'; do local a=([v]=1); done",
    "echo 'unset BASH_ENV; id' >/tmp/x; set -k; uptime BASH_ENV=/tmp/x",
    "jobs -x id",
    "for BASH_CMDS in /rec/id; do 0; done",
    "declare BASH_CMDS=/rec/id; 0",
    "shopt -s expand_aliases; for BASH_ALIASES in id; do :; done\n0",
    "printf '%s\\n' {1..5001} | mapfile -tC id a",
    "echo 'b[$(id)]'; local a=([_]=1)",
    "f() { echo $(($1)); }; f 'a[$(id)]'",
    "uptime() { id; }; uptime",
    "watch --exec id",
    "watch --exe id",
    "watch -tx id",
    "watch -xt id",
    "watch --exec=id",
    "watch -n 1 -x id",
    "timeout --signal=KILL 5 id",
    "nice -n5 id",
    "env -u X id",
    "env -- id",
    "env PATH=/tmp uptime",
    "xargs -I{} id",
    "sh -c -e id",
    "sh -ec id",
    "sh +e -c id",
    "./uptime",
    "././uptime",
    ".//uptime",
    "/bin/id",
    "/usr/bin/../bin/id",
    "echo $\"$(id)\"",
    "echo `echo \\`id\\``",
    "echo \"`echo \\\"x\\\"; id`\"",
    "cat <<EOF\n'$(id)'\nEOF",
    "echo \"it's\"",
    "echo \"'\"",
    "echo 'don'\"'\"'t'",
    "sh -c 'echo \"it'\\''s\"'",
    "( ( uptime ) )",
    "uptime >&/dev/null",
    "uptime </dev/null",
    "du /var/log/@(..)/etc",
    "du /var/log/?(.)./etc",
    "du /var/log/*(.)",
    "du /var/log/+(.)",
    "du /var/log/!(x)",
    "hash -p /rec/id uptime; uptime",
    "alias uptime=id; uptime",
    "shopt -s expand_aliases; alias uptime=id\nuptime",
    "trap id EXIT",
    "trap -- id EXIT",
    "trap 'uptime; id' INT",
    "enable -n echo; echo x",
    "BASH_ENV=/tmp/x sh -c uptime",
    "echo ${x/a/$(id)}",
    "echo \"${x#$(id)}\"",
    "echo ${x:-`id`}",
    "echo ${#x[$(id)]}",
];

/// A small deterministic generator (xorshift), seeded so a failure reproduces.
struct Gen(u64);

impl Gen {
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        items[(self.0 % items.len() as u64) as usize]
    }
}

const NAMES: &[&str] =
    &["uptime", "echo", "ls", "printf", "true", "cat", "id", "df", "touch x", "test", "jobs", "wait", "read", "["];
const PAYLOADS: &[&str] = &["id", "df -h", "touch /tmp/p", "uptime", "echo ok"];
const WORDS: &[&str] = &[
    "plain",
    "'$(P)'",
    "\"$(P)\"",
    "\"'$(P)'\"",
    "`P`",
    "\"`P`\"",
    "${x:-$(P)}",
    "\"${x:-'$(P)'}\"",
    "${x:+\"$(P)\"}",
    "${x:-'$(P)'}",
    "$'\\x41'",
    "$\"$(P)\"",
    "${!x}",
    "${x@P}",
    "\"${_@P}\"",
    "$((1+2))",
    "$[_]",
    "$[1]",
    "${_:0:1}",
    "${a[$(P)]}",
    "${a[0]}",
    "\\$(P)",
    "'a[$(P)]'",
    "~",
    "*",
    "@(..)",
    "{a,b}",
    "\"$HOME\"",
    "${HOME}",
    "\"it's\"",
    "'don'\"'\"'t'",
    "$_",
    "\"${x:-it's}\"",
    "${x-\"$(P)\"}",
    "\"${x:=$(P)}\"",
    "<(P)",
    ">(P)",
    "${x/a/b}",
    "\"$(echo \\\"'\\\")\"",
    // Words bash splits into several, carrying an option and what it evaluates or runs.
    "{-v,'a[$(P)]'}",
    "${x:--v 'a[$(P)]'}",
    "{-x,P}",
    "${x:--x P}",
    "{-p,'a[$(P)]'}",
    "\"$@\"",
];
const WRAPPERS: &[&str] = &[
    "",
    "",
    "",
    "env ",
    "nohup ",
    "timeout 5 ",
    "nice -n 5 ",
    "command ",
    "builtin ",
    "watch -x ",
    "watch -tx ",
    "watch --exe ",
    "xargs ",
    "stdbuf -o0 ",
    "sudo -n ",
    "env -i X=1 ",
    "setsid -f ",
];
const SEPARATORS: &[&str] = &["; ", " && ", " || ", " | ", "\n", " & "];
const FRAMES: &[&str] = &[
    "C",
    "C",
    "C",
    "{ C; }",
    "( C )",
    "for v in W; do C; done",
    "f() { C; }; f W",
    "read v <<< W; C",
    "declare v=W; C",
    "printf -v v %s W; C",
    "C >/dev/null",
    "if C; then C; fi",
    "case W in x) C;; esac",
    "echo W; C",
    "sh -c 'C'",
    "watch 'C'",
];
const USES: &[&str] = &["$v", "${a[v]}", "$((v))", "${!v}", "\"${v@P}\"", "$[v]", "${x:v}", "${v:-$(P)}"];

fn simple_command(g: &mut Gen) -> String {
    let mut cmd = format!("{}{}", g.pick(WRAPPERS), g.pick(NAMES));
    for _ in 0..(g.0 % 3) {
        let word = if g.0.is_multiple_of(5) { g.pick(USES) } else { g.pick(WORDS) };
        cmd.push(' ');
        cmd.push_str(&word.replace('P', g.pick(PAYLOADS)));
    }
    cmd
}

fn generate(count: usize, seed: u64) -> Vec<String> {
    let mut g = Gen(seed | 1);
    (0..count)
        .map(|_| {
            let first = simple_command(&mut g);
            let second = simple_command(&mut g);
            let word = g.pick(WORDS).replace('P', g.pick(PAYLOADS));
            let frame = g.pick(FRAMES).replace('W', &word);
            let body = frame.replacen('C', &first, 1).replace('C', &second);
            if g.0.is_multiple_of(3) {
                let sep = g.pick(SEPARATORS);
                format!("{body}{sep}{}", simple_command(&mut g))
            } else {
                body
            }
        })
        .collect()
}

/// Whether bash's argv `got` is one the policy judged: literal words equal, words whose
/// value bash computes (expansions, globs) stand for any number of words.
fn argv_judged(judged: &[ShellWord], got: &[String]) -> bool {
    let Some((name, args)) = got.split_first() else { return false };
    let Some((first, rest)) = judged.split_first() else { return false };
    let Some(judged_name) = first.literal.as_deref() else { return false };
    let name_ok = match name.strip_prefix("/rec/") {
        Some(base) => judged_name == base,
        None => judged_name == name,
    };
    name_ok && words_match(rest, args)
}

fn words_match(judged: &[ShellWord], got: &[String]) -> bool {
    match judged.split_first() {
        None => got.is_empty(),
        Some((w, rest)) if w.literal.is_none() || w.expands => (0..=got.len()).any(|n| words_match(rest, &got[n..])),
        Some((w, rest)) => {
            got.first().is_some_and(|g| Some(g.as_str()) == w.literal.as_deref()) && words_match(rest, &got[1..])
        }
    }
}

/// What went wrong for one allowed command, if anything.
fn violation(judged: &[Vec<ShellWord>], seen: &Observed) -> Option<String> {
    for argv in &seen.executed {
        if !judged.iter().any(|j| argv_judged(j, argv)) {
            return Some(format!("bash executed {argv:?}, which the policy never judged"));
        }
        if let Some(path) = argv.iter().skip(1).find(|a| a.starts_with("/var/log") && climbs_out(a, "/var/log")) {
            return Some(format!("bash passed the path {path:?}, outside /var/log"));
        }
    }
    let names: Vec<&str> = judged.iter().filter_map(|j| j.first()?.literal.as_deref()).collect();
    seen.traced
        .iter()
        .find(|t| !t.contains('=') && !matches!(t.as_str(), "case" | "for") && !names.contains(&t.as_str()))
        .map(|t| format!("bash ran `{t}` (xtrace), which the policy never judged"))
}

/// Whether `path` resolves (lexically, `..` climbing) outside `root`.
fn climbs_out(path: &str, root: &str) -> bool {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    !format!("/{}", parts.join("/")).starts_with(root)
}

/// Runs every allowed command of `commands` under `yml`; returns failures (smallest first).
pub(crate) fn differential(sandbox: &Sandbox, yml: &str, commands: &[String]) -> (usize, Vec<(String, String)>) {
    let cfg = policy(yml);
    let subject =
        Subject { alias: "web1", tags: &["web".to_owned()], deny_substrings: &[], principal: "local", groups: &[] };
    let mut allowed: Vec<(String, Vec<Vec<ShellWord>>)> = Vec::new();
    for c in commands {
        let (decision, judged) = policy::evaluate_traced(&cfg.policy.rules, &subject, c);
        if decision.allowed {
            allowed.push((c.clone(), judged));
        }
    }
    let texts: Vec<String> = allowed.iter().map(|(c, _)| c.clone()).collect();
    let mut failures: BTreeMap<(usize, String), String> = BTreeMap::new();
    for extglob in [false, true] {
        for (i, seen) in sandbox.run(&texts, extglob).iter().enumerate() {
            if let Some(why) = violation(&allowed[i].1, seen) {
                // Confirm alone: a straggling background job of the previous case must not blame this one.
                let alone = sandbox.run(std::slice::from_ref(&texts[i]), extglob);
                if let Some(confirmed) = alone.first().and_then(|s| violation(&allowed[i].1, s)) {
                    failures.insert((texts[i].len(), texts[i].clone()), format!("extglob {extglob}: {confirmed}"));
                } else {
                    eprintln!("oracle: {:?} looked wrong in the batch ({why}) but not alone", texts[i]);
                }
            }
        }
    }
    (allowed.len(), failures.into_iter().map(|((_, c), why)| (c, why)).collect())
}

pub(crate) fn report(failures: &[(String, String)]) -> String {
    failures.iter().take(10).map(|(c, why)| format!("\n  {c:?}\n    {why}")).collect()
}

#[test]
fn bash_runs_only_what_the_policy_judged() {
    let sandbox = Sandbox::new().expect("the oracle needs root (chroot) and mknod: run the tests as root");
    let seed: u64 = std::env::var("SSHWARDEN_ORACLE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_2026);
    let mut commands: Vec<String> = SEEDS.iter().map(|s| (*s).to_owned()).collect();
    commands.extend(generate(10_000, seed));
    let mut total_allowed = 0;
    for (name, yml) in [("narrow", NARROW), ("broad", BROAD)] {
        let (allowed, failures) = differential(&sandbox, yml, &commands);
        total_allowed += allowed;
        assert!(
            failures.is_empty(),
            "policy {name} (seed {seed}): {} allowed commands made bash run what was never judged; smallest:{}",
            failures.len(),
            report(&failures)
        );
    }
    assert!(commands.len() * 2 >= 20_000, "at least 20 000 judged commands per run");
    assert!(total_allowed > 1_000, "the generator must reach the allowed side too ({total_allowed} allowed)");
}

/// The issue's policy: the only `echo` rule is the glob `echo *`, no constructs; `df` denied.
const ISSUE_POLICY: &str = r#"
rules:
  - {id: no-df, action: deny, commands: ["df", "df *"]}
  - {id: echo, action: allow, commands: ["echo *"]}
  - {id: basics, action: allow, simple_binaries: [uptime, sh]}
"#;

#[test]
fn every_named_bypass_class_is_refused_and_the_overblocks_are_allowed() {
    let cfg = policy(ISSUE_POLICY);
    let subject =
        Subject { alias: "web1", tags: &["web".to_owned()], deny_substrings: &[], principal: "local", groups: &[] };
    let refused: &[(&str, &str)] = &[
        (r#"echo "'$(id)'""#, "`id`"),
        (r#"echo "'$(df -h)'""#, "df"),
        (r#"echo "${x:-'$(id)'}""#, "`id`"),
        (r#"echo "${x:='$(id)'}""#, "`id`"),
        (r#"echo "${x+'$(id)'}""#, "`id`"),
        ("echo '$(id)'; echo ${_@P}", "eval"),
        ("echo ${!x}", "indirect_expansion"),
        ("echo ${v:$x:1}", "arithmetic"),
        ("echo ${a[i]}", "arithmetic"),
        ("echo ${@:n}", "arithmetic"),
        ("echo $((x))", "arithmetic"),
        ("echo $[_]", "arithmetic"),
        ("for PATH in /tmp; do uptime; done", "PATH"),
        ("echo x | read IFS", "IFS"),
        ("printf -v 'a[$(id)]' x", "subscript"),
        ("uptime() { uptime | uptime & }; uptime", "function_definition"),
        ("watch -x df", "df"),
        ("watch --exec df", "df"),
        ("watch --exe df", "df"),
        ("watch --exec=df", "--exec"),
        ("watch -tx df", "df"),
        ("watch -xt df", "df"),
        ("watch -z uptime", "unknown option"),
        ("uptime\u{2060}", "U+2060"),
        ("uptime\u{180E}", "U+180E"),
        ("uptime\u{FE0F}", "U+FE0F"),
        ("uptime\u{E0041}", "U+E0041"),
        ("./uptime", "no allow rule"),
        ("././uptime", "no allow rule"),
        (".//uptime", "no allow rule"),
        ("/bin/df", "deny"),
        ("echo $\"x\"", "locale_string"),
        ("echo 'a[$(id)]'; uptime >&$_", "file descriptor"),
        ("sh -ic uptime", "rc file"),
        ("command ${x:-uptime}", "computed"),
        ("test ${x:--v} 'a[$(id)]'", "computed"),
        ("echo 'b[$(id)]'; uptime {a[_]}>/dev/null", "subscript"),
    ];
    let mut wrong = Vec::new();
    for (command, why) in refused {
        let d = policy::evaluate(&cfg.policy.rules, &subject, command);
        if d.allowed || !d.reason.contains(why) {
            wrong.push(format!("{command:?}: want refused ~{why:?}, got allowed={} {:?}", d.allowed, d.reason));
        }
    }
    let allowed = [
        r#"echo "it's""#,
        r#"echo "'""#,
        r#"echo 'don'"'"'t'"#,
        r#"sh -c 'echo "it'\''s"'"#,
        "( ( uptime ) )",
        "uptime >&/dev/null",
        "uptime </dev/null",
        "for i in 1 2; do echo $i; done",
    ];
    for command in allowed {
        let d = policy::evaluate(&cfg.policy.rules, &subject, command);
        if !d.allowed {
            wrong.push(format!("{command:?}: want allowed, got {:?}", d.reason));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Runbook rendering under the same bash: hostile values in every quoting context become
/// exactly the intended words, and a placeholder bash would read in another context
/// (`$(…)`, backticks, `${…}`) is refused when the template is loaded.
#[test]
fn rendered_runbook_values_are_exactly_the_words_given() {
    use sshwarden::runbook::Template;
    let sandbox = Sandbox::new().expect("the oracle needs root (chroot) and mknod: run the tests as root");
    let template = Template::parse(r#"ls {{ v }} "note: {{ v }}" 'q {{ v }}' c{{ v }}d "{{ v }}"'{{ v }}'"#).unwrap();
    let values = [
        "$(touch X)",
        "'$(id)'",
        "\"$(id)\"",
        "`id`",
        "it's",
        "\\",
        "a b",
        "*",
        "${x:-$(id)}",
        "\n",
        "",
        "$_",
        "\\\"; id; \"",
        "'; id; '",
        "$((1))",
        "~",
        "{a,b}",
        "@(..)",
        "!",
        "$'\\x41'",
    ];
    let mut commands = Vec::new();
    for v in values {
        let bound = BTreeMap::from([("v".to_owned(), v.to_owned())]);
        commands.push(template.render_shell(&bound));
    }
    for (i, seen) in sandbox.run(&commands, true).iter().enumerate() {
        let v = values[i];
        let want = vec![
            "/rec/ls".to_owned(),
            v.to_owned(),
            format!("note: {v}"),
            format!("q {v}"),
            format!("c{v}d"),
            format!("{v}{v}"),
        ];
        assert_eq!(seen.executed, vec![want], "value {v:?} rendered as {:?}", commands[i]);
    }
    for bad in ["ls $(cat {{ v }})", "ls `echo {{ v }}`", "ls ${x:-{{ v }}}", "ls $'{{ v }}'", "cat <<EOF {{ v }}"] {
        assert!(Template::parse(bad).is_err(), "{bad} must be refused at load time");
    }
}

/// `xargs -I R`: input replaces R inside the words, so a word holding R is computed (the
/// recorders cannot show this: xargs itself is a recorder in the sandbox).
#[test]
fn xargs_replacement_makes_its_words_computed() {
    let cfg = policy("rules:\n  - {id: any, action: allow, commands: [\"*\"], allow_constructs: [xargs]}\n");
    let subject =
        Subject { alias: "web1", tags: &["web".to_owned()], deny_substrings: &[], principal: "local", groups: &[] };
    for command in
        ["echo id | xargs -I% sh -c %", "echo id | xargs -i sh -c '{}'", "echo id | xargs --replace=@ sh -c @"]
    {
        let d = policy::evaluate(&cfg.policy.rules, &subject, command);
        assert!(!d.allowed && d.reason.contains("computed"), "{command}: {d:?}");
    }
    let d = policy::evaluate(&cfg.policy.rules, &subject, "echo a | xargs -I% echo %");
    assert!(d.allowed, "a replaced argument is still just an argument: {d:?}");
}
