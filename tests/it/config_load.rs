//! Config loading: anchor files load unchanged; every error names file, line, column, key.

use sshwarden::config::{Dirs, Severity, load};

use crate::support::cfg::{CREDS, CfgDir, anchor_dir, servers};

#[test]
fn anchor_example_files_load_with_the_same_meaning() {
    let dir = anchor_dir();
    let cfg = load(&Dirs::new(dir.path().join("config"), None, None)).unwrap();
    assert_eq!(cfg.hosts.len(), 4);
    let web1 = cfg.host("web1").unwrap();
    let db = cfg.host("db-primary").unwrap();
    assert_eq!((db.port, web1.port), (2222, 22));
    // Precedence: alias override beats tag overrides; tags fill what the alias left unset.
    let l = cfg.policy.limits_for(web1);
    assert_eq!((l.max_seconds, l.max_output_bytes, l.task_result_ttl), (30, 2_097_152, 300));
    let l = cfg.policy.limits_for(db);
    // db-primary's tags are [database, production]: the later tag wins among tags.
    assert_eq!((l.max_seconds, l.max_output_bytes), (90, 2_097_152));
    let l = cfg.policy.limits_for(cfg.host("web2").unwrap());
    assert_eq!(l.max_seconds, 90);
    assert_eq!(l.deny_substrings.len(), 5);
    // Secrets come from the secrets dir, trimmed; they never show in Debug output.
    let deploy = &cfg.credentials["deploy_key"];
    assert_eq!(deploy.key_passphrase.as_ref().unwrap().expose(), "pass-phrase-1");
    let debug = format!("{cfg:?}");
    for s in ["pass-phrase-1", "db-secret-2", "ops-secret-3"] {
        assert!(!debug.contains(s), "secret {s} in Debug output");
    }
    // Both rule generations work, scoped by alias and tag.
    let p = &cfg.policy;
    assert!(p.evaluate(web1, "uptime -p").allowed);
    assert!(p.evaluate(web1, "whoami").allowed);
    assert!(p.evaluate(db, "psql -c 'select 1'").allowed);
    assert!(!p.evaluate(web1, "psql -c 'select 1'").allowed);
    assert!(p.evaluate(web1, "cat /var/log/nginx/access.log").allowed);
    assert!(!p.evaluate(web1, "cat /var/log/nginx/access.log /etc/passwd").allowed);
    assert!(!p.evaluate(db, "cat /var/log/nginx/access.log").allowed);
    assert!(!p.evaluate(web1, "systemctl status x; shutdown now").allowed);
    // The unknown host key `owner` is kept as a warning, with its place.
    let w = cfg.warnings.iter().find(|d| d.key == "hosts[3].owner").unwrap();
    assert_eq!((w.line, w.severity), (23, Severity::Warning));
}

fn errors_of(servers: &str, creds: &str, policy: &str) -> Vec<String> {
    let err = CfgDir::new(servers, creds, policy).load().unwrap_err();
    err.diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| {
            let file = std::path::Path::new(&d.file).file_name().unwrap().to_string_lossy().to_string();
            format!("{file}:{}:{} {} {}", d.line, d.col, d.key, d.message)
        })
        .collect()
}

fn assert_error(errors: &[String], fragment: &str) {
    assert!(errors.iter().any(|e| e.contains(fragment)), "no error containing {fragment:?} in {errors:#?}");
}

#[test]
fn every_error_is_reported_with_its_place() {
    let servers = "hosts:\n  - alias: a\n    host: 10.0.0.1\n    credentials: c\n  - alias: a\n    host: 10.0.0.2\n    credentials: c\n  - alias: b\n    host: 10.0.0.3\n    port: 70000\n    credentials: nope\n";
    let errors = errors_of(servers, CREDS, "network:\n  allow_cidrs: [\"10.0.0.0/33\"]\n");
    assert_error(&errors, "servers.yml:5:5 hosts[1].alias duplicate alias \"a\"");
    assert_error(&errors, "servers.yml:10:5 hosts[2].port port 70000 is outside 1-65535");
    assert_error(&errors, "servers.yml:11:5 hosts[2].credentials credentials \"nope\" not found");
    assert_error(&errors, "policy.yml:2:3 network.allow_cidrs[0] \"10.0.0.0/33\" is not an IP address or CIDR");
    assert_eq!(errors.len(), 4, "{errors:#?}");
}

#[test]
fn unknown_keys_and_wrong_types_name_line_and_column() {
    let s = servers(&[("a", &[])]);
    assert_error(&errors_of(&s, CREDS, "limits:\n  max_secondz: 5\n"), "policy.yml:2:3 limits.max_secondz");
    assert_error(&errors_of(&s, CREDS, "rules:\n  - action: allow\n    commandz: [x]\n"), "policy.yml:3:5");
    assert_error(&errors_of(&s, CREDS, "limits:\n  max_seconds: soon\n"), "policy.yml:2:16");
    assert_error(
        &errors_of(&s, CREDS, "rules:\n  - action: permit\n    commands: [x]\n"),
        "rules[0].action \"permit\" is not allow, deny or ask",
    );
    assert_error(&errors_of(&s, CREDS, "rules: [\n"), "policy.yml:");
    let files = "rules:\n  - action: allow\n    commands: [x]\nfiles:\n  transfer_dir: /tmp\n  rules:\n    - action: allow\n      read: [\"/var/log/**\"]\n      max_bytes: 10\n    - action: maybe\n      write: [\"srv/x\", \"/srv/../etc/*\"]\n";
    let errors = errors_of(&s, CREDS, files);
    assert_error(&errors, "policy.yml:10:5 files.rules[1].action \"maybe\" is not allow, deny or ask");
    let files = files.replace("action: maybe", "action: ask");
    let errors = errors_of(&s, CREDS, &files);
    assert_error(&errors, "policy.yml:10:5 files.rules[1].write \"srv/x\" is not an absolute path pattern");
    assert_error(&errors, "files.rules[1].write \"/srv/../etc/*\" contains a `..` component");
    assert_error(&errors_of(&s, CREDS, "files:\n  rulez: []\n"), "policy.yml:2:3 files.rulez");
    assert_error(&errors_of(&s, CREDS, "limits:\n  host_key_auto_add: true\n"), "never added automatically");
    assert_error(
        &errors_of(&s, CREDS, "rules:\n  - action: allow\n    simple_binaries: [x]\n    allow_constructs: [magic]\n"),
        "unknown construct \"magic\"",
    );
    for (credentials, want) in [
        (
            "key_path: ../../etc/passwd",
            "credentials.yml:4:5 entries[0].key_path key_path \"../../etc/passwd\" contains `..`",
        ),
        ("key_path: /etc/passwd", "outside the keys dir"),
        ("password_secret: PATH", "secret \"PATH\" not found"),
        ("password_secret: ../x", "secret name \"../x\" is invalid"),
        ("password: x\n  - name: c\n    username: v\n    password: y", "duplicate credential name"),
    ] {
        assert_error(&errors_of(&s, &format!("entries:\n  - name: c\n    username: u\n    {credentials}\n"), ""), want);
    }
}

#[test]
fn lint_warnings_for_rules_without_effect_and_shadowed_allows() {
    let policy = "network:\n  allow_cidrs: [\"10.0.0.0/8\"]\n  block_cidrs: [\"0.0.0.0/0\"]\n  block_ips: [\"192.168.0.0/16\"]\nrules:\n  - action: allow\n    binary: ls\n  - action: allow\n    aliases: [zzz*]\n    commands: [ls]\n  - action: allow\n";
    let cfg = CfgDir::new(&servers(&[("a", &[])]), CREDS, policy).load().unwrap();
    let warnings: Vec<String> = cfg.warnings.iter().map(|d| format!("{} {}", d.key, d.message)).collect();
    let has = |f: &str| assert!(warnings.iter().any(|w| w.contains(f)), "no warning {f:?} in {warnings:#?}");
    has("allow entry 10.0.0.0/8 is entirely inside block entry 0.0.0.0/0");
    has("network.block_ips[0] \"192.168.0.0/16\" is a CIDR in an IP list; honoured");
    has("rules[0].binary a rule with only `binary` never matches");
    has("rules[1].aliases rule's aliases/tags select no host");
    has("rules[2].commands rule has no commands");
    assert_eq!(cfg.policy.network.block.len(), 2);
}

#[test]
fn secrets_come_from_env_first_and_files_over_10_mib_are_refused() {
    let creds = "entries:\n  - name: c\n    username: u\n    password_secret: it_env_secret\n";
    let dir = CfgDir::new(&servers(&[("a", &[])]), creds, "");
    let check = |env: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_sshwarden"));
        cmd.arg("check").arg("--config-dir").arg(dir.config_dir()).env_remove("MCP_SSH_SECRET_IT_ENV_SECRET");
        if let Some(v) = env {
            cmd.env("MCP_SSH_SECRET_IT_ENV_SECRET", v);
        }
        cmd.output().unwrap()
    };
    let with_env = check(Some("from-env"));
    assert!(with_env.status.success(), "{}", String::from_utf8_lossy(&with_env.stderr));
    let without = check(None);
    assert_eq!(without.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&without.stderr);
    assert!(stderr.contains("credentials.yml:4:5: entries[0].password_secret: secret \"it_env_secret\" not found: env MCP_SSH_SECRET_IT_ENV_SECRET is unset"), "{stderr}");
    assert!(!stderr.contains("no authentication method"), "a missing secret is reported once, as missing: {stderr}");
    dir.write("secrets/it_env_secret", "from-file");
    assert!(check(None).status.success());

    let dir = CfgDir::new(&servers(&[("a", &[])]), CREDS, "");
    dir.write("config/policy.yml", &format!("# {}\n", "x".repeat(10 * 1024 * 1024 + 1)));
    let err = dir.load().unwrap_err();
    assert!(err.to_string().contains("more than the 10 MiB limit"), "{err}");
    dir.write("config/policy.yml", "");
    std::fs::remove_file(dir.path("config/servers.yml")).unwrap();
    assert!(dir.load().unwrap_err().to_string().contains("servers.yml"));
}

#[test]
fn a_runbook_default_is_checked_alone_like_a_given_value() {
    let dir = CfgDir::new(&servers(&[("a", &[])]), CREDS, "");
    std::fs::create_dir_all(dir.path("runbooks")).unwrap();
    dir.write(
        "runbooks/r.yml",
        "params:\n  - {name: n, type: integer, default: abc}\n  - {name: req, required: true}\n  - {name: ok, pattern: \"^[a-z]+$\", default: fine}\nsteps:\n  - id: s\n    target: a\n    command: \"echo {{ n }} {{ req }} {{ ok }}\"\n",
    );
    let err = dir.load().unwrap_err().to_string();
    assert!(err.contains("params.n.default"), "{err}");
    assert!(!err.contains("params.req") && !err.contains("params.ok"), "only the bad default is named: {err}");
}

#[test]
fn a_runbooks_serial_and_threshold_errors_name_their_line() {
    let dir = CfgDir::new(&servers(&[("a", &[])]), CREDS, "");
    std::fs::create_dir_all(dir.path("runbooks")).unwrap();
    dir.write(
        "runbooks/r.yml",
        "steps:\n  - id: s\n    target: a\n    command: uptime\n    max_fail_percentage: 10\nserial: [1, \"150%\"]\nmax_fail_percentage: 120\n",
    );
    let err = dir.load().unwrap_err().to_string();
    assert!(err.contains("r.yml:6:1") && err.contains("at most 100%"), "{err}");
    assert!(
        err.contains("r.yml:7:1") && err.contains("between 0 and 100"),
        "the runbook's own key, not the step's: {err}"
    );

    dir.write("runbooks/r.yml", "max_fail_percentage: 10\nsteps:\n  - id: s\n    target: a\n    command: uptime\n");
    let err = dir.load().unwrap_err().to_string();
    assert!(err.contains("r.yml:1:1") && err.contains("needs `serial:`"), "{err}");
}

/// Three typos, one run: every unknown key is named with its line, not only the first.
#[test]
fn every_unknown_key_is_reported_in_one_run() {
    let dir = CfgDir::new(
        &servers(&[("a", &[])]),
        CREDS,
        "limts:\n  max_seconds: 5\nrules:\n  - id: r\n    acton: allow\n    commands: [uptime]\nnetwork:\n  allow_cidr: []\n",
    );
    let err = dir.load().unwrap_err().to_string();
    for (line, key) in [(1, "limts"), (5, "acton"), (8, "allow_cidr")] {
        assert!(
            err.contains(&format!("policy.yml:{line}:")) && err.contains(&format!("`{key}`")),
            "{key} at {line}: {err}"
        );
    }
}
