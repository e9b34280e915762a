//! Path arguments are judged as the shell and the kernel will read them (issue: a
//! `path_args` rule could be climbed out of with `..`). Table cases for every refused form
//! and its allowed neighbours, and a property test: whatever a rule allows normalizes to a
//! path under the rule's pattern.

use proptest::prelude::*;
use sshwarden::config::Config;
use sshwarden::policy::paths::normalize;

use crate::support::cfg::{CREDS, CfgDir, servers};

const POLICY: &str = r#"
rules:
  - id: ls-logs
    action: allow
    binary: ls
    path_args: {indices: [1], patterns: ["/var/log", "/var/log/*"]}
    allow_extra_args: false
  - id: zcat-logs
    action: allow
    commands: ["zcat /var/log/*"]
  - id: no-keys
    action: deny
    commands: ["cat /root/.ssh/*"]
  - id: cat-any
    action: allow
    simple_binaries: [cat]
"#;

/// (command, allowed, fragment of the reason or rule label)
const CASES: &[(&str, bool, &str)] = &[
    ("ls /var/log", true, "ls-logs"),
    ("ls '/var/log'", true, "ls-logs"),
    ("ls \"/var/log\"", true, "ls-logs"),
    ("ls /var/log/apt", true, "ls-logs"),
    ("ls /var/log/", true, "ls-logs"),
    ("ls /var//log/./apt", true, "ls-logs"),
    ("ls /var/log/..foo", true, "ls-logs"),
    ("ls /var/log/*.log", true, "ls-logs"),
    ("ls /var/log/apt/*", true, "ls-logs"),
    ("ls '/var/log/*'", true, "ls-logs"),
    ("ls /var/log/../../etc", false, "`..` component"),
    ("ls /var/log//../etc", false, "`..` component"),
    ("ls /var/log/..", false, "`..` component"),
    ("ls '/var/log/../etc'", false, "`..` component"),
    ("ls \"/var/log/..\"/etc", false, "`..` component"),
    ("ls /var/log/\\.\\./etc", false, "`..` component"),
    ("ls /var/log/.\\./etc", false, "`..` component"),
    ("ls /var/log/{..,x}/../etc", false, "brace expansion"),
    ("ls /var/log/{'..',x}", false, "brace expansion"),
    ("ls /var/log/{a,b}", false, "brace expansion"),
    ("ls ~/x", false, "expansion"),
    ("ls ~root", false, "expansion"),
    ("ls $HOME", false, "expansion"),
    ("ls /var/log/$X", false, "expansion"),
    ("ls \"/var/log/${X}\"", false, "expansion"),
    ("ls /var/log/$'\\x2e\\x2e'", false, "expansion"),
    ("ls /var/log/.*", false, "starting with `.`"),
    ("ls /var/log/.?", false, "starting with `.`"),
    ("ls /var/lo*", false, "no allow rule"),
    ("ls /var/*/x", false, "no allow rule"),
    ("ls var/log", false, "no allow rule"),
    ("ls /etc", false, "no allow rule"),
    ("zcat /var/log/syslog.2.gz", true, "zcat-logs"),
    ("zcat /var/log//apt/./history.log.1.gz", true, "zcat-logs"),
    ("zcat /var/log/*.gz", true, "zcat-logs"),
    ("zcat /var/log/../../etc/shadow", false, "`..` component"),
    ("zcat /var/log/{..,x}/y", false, "brace expansion"),
    ("zcat $HOME/x", false, "expansion"),
    ("cat /root/.ssh/id_rsa", false, "no-keys"),
    ("cat /root//.ssh/./id_rsa", false, "no-keys"),
    ("cat /tmp/../root/.ssh/id_rsa", false, "no-keys"),
    ("cat /etc/hostname", true, "cat-any"),
];

fn cfg() -> Config {
    CfgDir::new(&servers(&[("web1", &["web"])]), CREDS, POLICY).load().unwrap()
}

#[test]
fn path_table() {
    let cfg = cfg();
    let host = cfg.host("web1").unwrap();
    let mut failures = Vec::new();
    for (command, allowed, fragment) in CASES {
        let d = cfg.policy.evaluate(host, command);
        let label = d.rule.as_ref().map(|r| cfg.policy.rules[r.index].label()).unwrap_or_default();
        if d.allowed != *allowed || !(d.reason.contains(fragment) || label.contains(fragment)) {
            failures
                .push(format!("{command:?}: want {allowed} ~{fragment:?}, got {} {:?} [{label}]", d.allowed, d.reason));
        }
    }
    assert!(failures.is_empty(), "{} of {} failed:\n{}", failures.len(), CASES.len(), failures.join("\n"));
}

#[test]
fn a_denial_names_the_argument() {
    let cfg = cfg();
    let d = cfg.policy.evaluate(cfg.host("web1").unwrap(), "ls /var/log/../../etc");
    assert!(!d.allowed && d.reason.contains("/var/log/../../etc") && d.reason.contains("rule #1"), "{}", d.reason);
}

/// One generated path segment and how it is written on the command line.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just(String::new()),
        Just("'..'".to_owned()),
        Just("\\.\\.".to_owned()),
        Just("\".\"".to_owned()),
        Just("{..,x}".to_owned()),
        Just("{a,b}".to_owned()),
        Just("*".to_owned()),
        Just(".*".to_owned()),
        Just("log".to_owned()),
        Just("var".to_owned()),
        Just("etc".to_owned()),
        Just("apt".to_owned()),
        Just("..foo".to_owned()),
        Just("$X".to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, .. ProptestConfig::default() })]

    /// Whatever `ls-logs` allows normalizes to a path under `/var/log`, and reading the
    /// argument the way the shell does (quotes removed) never contains a `..` component.
    #[test]
    fn what_a_path_rule_allows_stays_under_its_tree(
        inside in proptest::bool::ANY,
        segments in proptest::collection::vec(segment(), 1..7),
    ) {
        let cfg = cfg();
        let host = cfg.host("web1").unwrap();
        // Most attempts start inside the tree, where climbing out is the threat.
        let arg = format!("{}/{}", if inside { "/var/log" } else { "" }, segments.join("/"));
        let d = cfg.policy.evaluate(host, &format!("ls {arg}"));
        if d.allowed {
            let unquoted: String = arg.replace(['\'', '"', '\\'], "");
            prop_assert!(!unquoted.contains('{') && !unquoted.contains('$'), "{arg} allowed: {}", d.reason);
            let norm = normalize(&unquoted);
            prop_assert!(norm.is_ok(), "{arg} allowed but climbs: {}", d.reason);
            let norm = norm.unwrap_or_default();
            prop_assert!(norm == "/var/log" || norm.starts_with("/var/log/"), "{arg} -> {norm} allowed: {}", d.reason);
            prop_assert!(!norm.split('/').any(|c| c.starts_with('.') && c.contains('*')), "{arg}");
        }
    }
}
