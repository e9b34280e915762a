//! The policy engine against a table of commands: every bypass class of the anchor
//! (reference §7.A) and the constructs the issue names, with the expected decision.

use crate::support::cfg::{CREDS, CfgDir, servers};

const POLICY: &str = r#"
limits:
  deny_substrings: ["rm -rf /", "nc ", "reboot", ":(){ :|:& };:", "wget "]
rules:
  - id: basics
    action: allow
    simple_binaries: [uptime, ls, cat, echo, grep, df, head, tail, wc, sort, "true", "false", date, sleep, ps, id, whoami, find, printf, test, "[", rsync, wget, awk, env, xargs, nohup]
  - id: systemd
    action: allow
    commands: ["systemctl status *", "journalctl -u * -n *"]
  - id: tar-list
    action: allow
    binary: tar
    arg_prefix: ["-tzf"]
    path_args: {indices: [2], patterns: ["/backups/*.tgz"]}
    allow_extra_args: false
  - id: secrets
    action: deny
    commands: ["cat /etc/shadow*", "* /root/.ssh/*"]
  - id: sudo-restart
    action: allow
    binary: systemctl
    arg_prefix: [restart, nginx]
    allow_extra_args: false
    allow_constructs: [privilege]
  - id: marker
    action: allow
    binary: echo
    arg_prefix: [marker]
    allow_constructs: [output_redirect, command_substitution]
  - id: db-only
    action: allow
    tags: [db]
    simple_binaries: [psql]
  - id: web-no-df
    action: deny
    aliases: ["web*"]
    commands: ["df -i*"]
  - id: db-python
    action: allow
    aliases: ["db*"]
    binary: python3
    arg_prefix: ["-c"]
    allow_constructs: [interpreter_code]
"#;

/// (host, command, allowed, a fragment the reason must contain)
const CASES: &[(&str, &str, bool, &str)] = &[
    // plain allows
    ("web1", "uptime", true, "basics"),
    ("web1", "ls -la /var/log", true, "basics"),
    ("web1", "df -h", true, "basics"),
    ("web1", "echo hello world", true, "basics"),
    ("web1", "systemctl status nginx", true, "systemd"),
    ("web1", "journalctl -u nginx -n 50", true, "systemd"),
    ("web1", "tar -tzf /backups/a.tgz", true, "tar-list"),
    ("db1", "psql -c 'select 1'", true, "db-only"),
    ("db1", "df -i", true, "basics"),
    ("web1", "  uptime  ", true, "basics"),
    ("web1", "uptime # a comment", true, "basics"),
    ("web1", "'uptime'", true, "basics"),
    ("web1", "\"uptime\"", true, "basics"),
    ("web1", "u\\ptime", true, "basics"),
    ("web1", "echo 'a; b | c && d'", true, "basics"),
    ("web1", "echo \"quoted ; semicolon\"", true, "basics"),
    ("web1", "echo $HOME", true, "basics"),
    ("web1", "echo \"$HOME\"", true, "basics"),
    ("web1", "ls *.log", true, "basics"),
    ("web1", "grep -r error /var/log 2>/dev/null", true, "basics"),
    ("web1", "ls >/dev/null 2>&1", true, "basics"),
    ("web1", "ls 2>&1", true, "basics"),
    ("web1", "uptime && df -h", true, "basics"),
    ("web1", "uptime || true", true, "basics"),
    ("web1", "uptime; date", true, "basics"),
    ("web1", "ps aux | grep nginx | wc -l", true, "basics"),
    ("web1", "(uptime; date)", true, "basics"),
    ("web1", "{ uptime; date; }", true, "basics"),
    ("web1", "if true; then uptime; else date; fi", true, "basics"),
    ("web1", "for i in 1 2 3; do echo $i; done", true, "basics"),
    ("web1", "while false; do sleep 1; done", true, "basics"),
    ("web1", "case x in x) uptime;; *) date;; esac", true, "basics"),
    ("web1", "! grep -q x /etc/hosts", true, "basics"),
    ("web1", "sleep 1 &", true, "basics"),
    ("web1", "uptime\ndate\n", true, "basics"),
    ("web1", "sh -c 'uptime; date'", true, "basics"),
    ("web1", "bash -lc uptime", true, "basics"),
    ("web1", "nohup sleep 5", true, "basics"),
    ("web1", "timeout 5 uptime", true, "basics"),
    ("web1", "nice -n 10 uptime", true, "basics"),
    ("web1", "env uptime", true, "basics"),
    ("web1", "busybox uptime", true, "basics"),
    ("web1", "sudo systemctl restart nginx", true, "sudo-restart"),
    ("web1", "sudo -n systemctl restart nginx", true, "sudo-restart"),
    ("web1", "echo marker > /tmp/marker", true, "marker"),
    ("web1", "echo marker $(date)", true, "marker"),
    ("web1", "rsync -a /a /b", true, "basics"),
    ("web1", "f() { uptime; }; f", false, "no allow rule matches `f`"),
    ("web1", "test -f /etc/hosts && echo yes", true, "basics"),
    ("web1", "[ -f /etc/hosts ]", true, "basics"),
    ("db1", "python3 -c 'print(1)'", true, "db-python"),
    ("web1", "command -v uptime", false, "no allow rule"),
    ("web1", "find /var/log -name '*.log'", true, "basics"),
    ("web1", "echo a\\\nb", true, "basics"),
    // default deny and rule scoping
    ("web1", "rm -f /tmp/x", false, "no allow rule matches `rm -f /tmp/x`"),
    ("web1", "psql -c 'select 1'", false, "no allow rule"),
    ("web1", "df -i", false, "web-no-df"),
    ("web1", "systemctl restart nginx", true, "sudo-restart"),
    ("web1", "systemctl stop nginx", false, "no allow rule"),
    ("web1", "tar -tzf /etc/passwd", false, "no allow rule"),
    ("web1", "tar -tzf /backups/a.tgz --to-command=sh", false, "no allow rule"),
    ("web1", "tar -xzf /backups/a.tgz", false, "no allow rule"),
    ("web1", "journalctl -u nginx", false, "no allow rule"),
    ("web1", "/tmp/uptime", false, "no allow rule"),
    ("web1", "./uptime", false, "no allow rule"),
    ("web1", "UPTIME", false, "no allow rule"),
    ("web1", "python3 -c 'print(1)'", false, "no allow rule"),
    ("db1", "python3 -c 'import os' && rm x", false, "no allow rule matches `rm x`"),
    // deny rules win
    ("web1", "cat /etc/shadow", false, "secrets"),
    ("web1", "cat /etc/shadow-", false, "secrets"),
    ("web1", "cat /root/.ssh/id_rsa", false, "secrets"),
    ("web1", "uptime; cat /etc/shadow", false, "secrets"),
    ("web1", "'cat' '/etc/shadow'", false, "secrets"),
    ("web1", "c\\at /etc/shadow", false, "secrets"),
    ("web1", "ca''t /etc/sha\"\"dow", false, "secrets"),
    ("web1", "sh -c 'cat /etc/shadow'", false, "secrets"),
    ("web1", "env cat /etc/shadow", false, "secrets"),
    ("web1", "nohup cat /etc/shadow", false, "secrets"),
    ("web1", "timeout 5 cat /etc/shadow", false, "secrets"),
    ("web1", "busybox cat /etc/shadow", false, "secrets"),
    ("web1", "echo x | xargs cat /etc/shadow", false, "secrets"),
    ("web1", "(cat /etc/shadow)", false, "secrets"),
    ("web1", "{ cat /etc/shadow; }", false, "secrets"),
    ("web1", "if true; then cat /etc/shadow; fi", false, "secrets"),
    ("web1", "for f in a; do cat /etc/shadow; done", false, "secrets"),
    ("web1", "f() { cat /etc/shadow; }", false, "secrets"),
    ("web1", "echo ok | sh -c \"cat /etc/shadow\"", false, "secrets"),
    ("web1", "bash -c 'bash -c \"cat /etc/shadow\"'", false, "secrets"),
    // §7.A.1 newline separators
    ("web1", "uptime\ncat /etc/shadow", false, "secrets"),
    ("web1", "uptime\nrm -f /tmp/x", false, "rm -f /tmp/x"),
    ("web1", "uptime\r\nrm x", false, "U+000D"),
    ("web1", "uptime\n\n\nwhoami\nshutdown now", false, "shutdown now"),
    // §7.A.2 single & background
    ("web1", "uptime & rm -f /tmp/x", false, "rm -f /tmp/x"),
    ("web1", "uptime &rm x", false, "rm x"),
    ("web1", "sleep 1 & sleep 2 & halt", false, "halt"),
    // §7.A.3 redirections
    ("web1", "uptime > /etc/cron.d/x", false, "output redirection"),
    ("web1", "echo ssh-ed25519 AAAA >> ~/.ssh/authorized_keys", false, "output redirection"),
    ("web1", "uptime >| /tmp/x", false, "output redirection"),
    ("web1", "uptime &> /tmp/x", false, "output redirection"),
    ("web1", "uptime 1>/tmp/x", false, "output redirection"),
    (
        "web1",
        "{ uptime; } > /tmp/x",
        false,
        "runs inside a for/case list or redirected group that uses output redirection",
    ),
    (
        "web1",
        "for f in $(ls /etc); do echo $f; done",
        false,
        "runs inside a for/case list or redirected group that uses command substitution",
    ),
    ("web1", "(uptime) > /tmp/x", false, "output redirection"),
    ("web1", "cat < /etc/hosts", false, "input redirection"),
    ("web1", "uptime <> /tmp/x", false, "output redirection"),
    ("web1", "uptime >& /tmp/x", false, "output redirection"),
    ("web1", "grep x <<EOF\nhello\nEOF\n", false, "here-document"),
    ("web1", "grep x <<< 'hello'", false, "here-document"),
    ("web1", "cat <<'EOF'\n$(rm x)\nEOF\n", false, "here-document"),
    // §7.A.4 substitutions
    ("web1", "echo $(cat /etc/shadow)", false, "secrets"),
    ("web1", "echo $(id)", false, "command substitution"),
    ("web1", "echo `id`", false, "command substitution"),
    ("web1", "echo \"$(id)\"", false, "command substitution"),
    ("web1", "echo \"`rm x`\"", false, "rm x"),
    ("web1", "echo $(echo $(rm x))", false, "rm x"),
    ("web1", "echo ${X:-$(rm x)}", false, "rm x"),
    ("web1", "echo \"${X:-`rm x`}\"", false, "rm x"),
    ("web1", "echo ${X:=$(id)}", false, "command substitution"),
    ("web1", "echo ${X:+$(id)}", false, "command substitution"),
    ("web1", "echo ${X/a/$(id)}", false, "command substitution"),
    ("web1", "echo ${a[$(id)]}", false, "command substitution"),
    ("web1", "echo ${X:-${Y:-$(rm x)}}", false, "rm x"),
    ("web1", "cat <(rm x)", false, "rm x"),
    ("web1", "cat <(ls)", false, "process substitution"),
    ("web1", "ls > >(rm x)", false, "rm x"),
    ("web1", "diff <(ls a) <(ls b)", false, "no allow rule matches `diff`"),
    ("web1", "echo $((1+2))", false, "arithmetic"),
    ("web1", "echo $(( $(rm x) ))", false, "arithmetic"),
    ("web1", "(( x = 1 ))", false, "arithmetic"),
    ("web1", "$(echo rm) x", false, "computed at run time"),
    ("web1", "`echo uptime`", false, "computed at run time"),
    ("web1", "$CMD", false, "computed at run time"),
    ("web1", "${CMD}", false, "computed at run time"),
    ("web1", "cat${IFS}/etc/shadow", false, "computed at run time"),
    ("web1", "X=rm; $X x", false, "computed at run time"),
    ("web1", "{cat,/etc/shadow}", false, "computed at run time"),
    ("web1", "/bin/c?t /etc/hosts", false, "computed at run time"),
    ("web1", "/bin/ca[t] /etc/hosts", false, "computed at run time"),
    ("web1", "*", false, "computed at run time"),
    ("web1", "~/bin/tool", false, "computed at run time"),
    ("web1", "$'\\x72\\x6d' x", false, "computed at run time"),
    // env assignments and eval family
    ("web1", "LD_PRELOAD=/tmp/x.so uptime", false, "environment assignment"),
    ("web1", "PATH=/tmp:$PATH uptime", false, "environment assignment"),
    ("web1", "X=1", false, "without a command"),
    ("web1", "env LD_PRELOAD=/tmp/x uptime", false, "environment assignment"),
    ("web1", "env -S 'rm x'", false, "env -S"),
    ("web1", "eval uptime", false, "no allow rule matches `eval uptime`"),
    ("web1", "exec uptime", false, "no allow rule"),
    ("web1", "source /tmp/x.sh", false, "no allow rule"),
    ("web1", ". /tmp/x.sh", false, "no allow rule"),
    // §7.A.5 interpreters and wrappers
    ("web1", "busybox wget http://x", false, "deny_substrings"),
    ("web1", "busybox rm x", false, "no allow rule matches `rm x`"),
    ("web1", "python3 -c 'import os; os.system(\"id\")'", false, "no allow rule"),
    ("web1", "perl -e 'system(\"id\")'", false, "no allow rule"),
    ("web1", "bash -c 'rm x'", false, "rm x"),
    ("web1", "sh -c \"$CODE\"", false, "computed at run time"),
    ("web1", "awk 'BEGIN{system(\"id\")}'", false, "interpreter given code"),
    ("web1", "sudo rm x", false, "no allow rule matches `rm x`"),
    ("web1", "sudo uptime", false, "privilege"),
    ("web1", "sudo -i", false, "sudo -i"),
    ("web1", "sudo -u root sh -c 'rm x'", false, "rm x"),
    ("web1", "su -c 'rm x' root", false, "rm x"),
    ("web1", "su root", false, "su"),
    ("web1", "doas rm x", false, "rm x"),
    ("web1", "nohup rm x", false, "rm x"),
    ("web1", "timeout -s KILL 5 rm x", false, "rm x"),
    ("web1", "timeout --weird 5 uptime", false, "unknown option"),
    ("web1", "xargs rm", false, "rm"),
    ("web1", "ls | xargs cat", false, "xargs"),
    ("web1", "find / -exec rm {} ;", false, "interpreter given code"),
    ("web1", "watch 'rm x'", false, "rm x"),
    ("web1", "env env env rm x", false, "rm x"),
    ("web1", "nice -5 rm x", false, "rm x"),
    ("web1", "command rm x", false, "rm x"),
    ("web1", "builtin eval x", false, "no allow rule"),
    ("web1", "stdbuf -oL rm x", false, "rm x"),
    ("web1", "sudo sudo sudo sudo sudo sudo sudo sudo sudo sudo uptime", false, "wrappers"),
    // §7.A.5 deny_substrings, whole words
    ("web1", "ls /srv/inc /b", true, "basics"),
    ("web1", "echo x | nc host 80", false, "deny_substrings"),
    ("web1", "echo rm -rf /", false, "deny_substrings"),
    ("web1", "echo r'm' -rf /", false, "deny_substrings"),
    ("web1", "reboot", false, "deny_substrings"),
    ("web1", "grep reboots /var/log/x", true, "basics"),
    ("web1", ":(){ :|:& };:", false, "deny_substrings"),
    // unparseable and hostile text
    ("web1", "echo 'unterminated", false, "cannot parse"),
    ("web1", "echo \"unterminated", false, "cannot parse"),
    ("web1", "uptime )", false, "cannot parse"),
    ("web1", "", false, "empty"),
    ("web1", "   \n  ", false, "empty"),
    ("web1", "# only a comment", false, "no command"),
    ("web1", "uptime\0; rm x", false, "U+0000"),
    ("web1", "uptime \u{202E}x", false, "U+202E"),
    ("web1", "uptime \u{200B}", false, "U+200B"),
    ("web1", "uptime \u{1b}[2J", false, "U+001B"),
    ("web1", "ｕptime", false, "no allow rule"),
    ("web1", "[[ -f /etc/hosts ]]", false, "[[ … ]]"),
    ("web1", "coproc uptime", false, "coproc"),
    ("web1", "uptime; ;", false, "cannot parse"),
];

fn check_all(cases: &[(&str, &str, bool, &str)]) {
    let cfg =
        CfgDir::new(&servers(&[("web1", &["web", "prod"]), ("db1", &["db", "prod"])]), CREDS, POLICY).load().unwrap();
    let mut failures = Vec::new();
    for (alias, command, allowed, fragment) in cases {
        let host = cfg.host(alias).unwrap();
        let d = cfg.policy.evaluate(host, command);
        if d.allowed != *allowed
            || !format!("{} {:?}", d.reason, d.rule).contains(fragment) && !d.reason.contains(fragment)
        {
            let label = d.rule.as_ref().map(|r| cfg.policy.rules[r.index].label()).unwrap_or_default();
            if !(d.allowed == *allowed && label.contains(fragment)) {
                failures.push(format!("{alias} {command:?}: want allowed={allowed} ~{fragment:?}, got allowed={} reason={:?} rule={label}", d.allowed, d.reason));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn policy_table() {
    assert!(CASES.len() >= 150, "table has {} cases", CASES.len());
    check_all(CASES);
}

#[test]
fn long_and_deep_input_is_denied_without_panic() {
    let long = format!("echo {}", "a".repeat(20_000));
    let deep = format!("{}uptime{}", "$(".repeat(200), ")".repeat(200));
    let nested = format!("{}uptime{}", "(".repeat(500), ")".repeat(500));
    let cases = [
        ("web1", long.as_str(), false, "limit"),
        ("web1", deep.as_str(), false, "deep"),
        ("web1", nested.as_str(), false, ""),
    ];
    check_all(&cases);
}

static FUZZ_CFG: std::sync::LazyLock<sshwarden::config::Config> =
    std::sync::LazyLock::new(|| CfgDir::new(&servers(&[("web1", &["web"])]), CREDS, POLICY).load().unwrap());

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 5000, .. Default::default() })]
    #[test]
    fn evaluator_never_panics(cmd in "[ -~\\n\\t$`'\"(){};|&<>*?~\\\\]{0,80}") {
        let _ = FUZZ_CFG.policy.evaluate(FUZZ_CFG.host("web1").unwrap(), &cmd);
    }
}
