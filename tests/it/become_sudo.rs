//! `become`: rules that run the allowed command as root through a real sudo on the real
//! sshd fixture, driven through the built binary over MCP stdio. NOPASSWD, password (host
//! and credential secrets), wrong password and missing sudoers lines (each ends at once as
//! `privilege_failed` with a hint), compound commands through `/bin/sh -c`, a `sudo` still
//! written by the agent, mixed users in one command, plan / describe / preflight / audit,
//! a cancel that stops the root process, a jump host, and every configured secret masked
//! on every path (split across reads too).

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::cfg::{CREDS, CfgDir, servers};
use crate::support::mcp::{self, BIN, call};
use crate::support::sshd::{Fleet, FleetOptions, PORT, USER, password};
use crate::support::sudo::{ensure_sudoers, root_gone_within, root_processes, sudoers_text, valid};

const WRONG_BECOME: &str = "nope-become-9f3";

/// Root rules for the `h*` hosts and `t2` (first, so they decide `become`), login-user rules
/// for every host.
const POLICY_RULES: &str = "rules:\n  - id: root-cmds\n    action: allow\n    aliases: [\"h*\", \"t2\"]\n    commands: [\"id\", \"id *\", \"sleep *\", \"whoami\", \"cat *\"]\n    become: root\n  - id: login\n    action: allow\n    commands: [\"echo *\", \"printf *\", \"true\", \"sleep *\", \"sudo *\"]\n    allow_constructs: [output_redirect]\n";

fn setup() -> Fleet {
    ensure_sudoers();
    let fleet = Fleet::start(FleetOptions { hosts: 2, ..Default::default() });
    let (ip1, ip2) = (fleet.hosts[0].addr.ip(), fleet.hosts[1].addr.ip());
    std::fs::write(fleet.path("secrets/wrong_become"), WRONG_BECOME).unwrap();
    let host = |alias: &str, ip: std::net::IpAddr, cred: &str, extra: &str| {
        format!(
            "  - alias: {alias}\n    host: {ip}\n    port: {PORT}\n    credentials: {cred}\n    connect_timeout: 5\n{extra}"
        )
    };
    fleet.add_hosts(
        &(host("h1pw", ip1, "key", "    become_password_secret: swtest_password\n")
            + &host("h1c", ip1, "keybecome", "")
            + &host("h1bad", ip1, "key", "    become_password_secret: wrong_become\n")
            + &host("t2", ip2, "key", "    proxy_jump: h1\n")),
    );
    let creds = std::fs::read_to_string(fleet.path("config/credentials.yml")).unwrap();
    std::fs::write(
        fleet.path("config/credentials.yml"),
        format!("{creds}  - name: keybecome\n    username: {USER}\n    key_path: id_ed25519\n    become_password_secret: swtest_password\n"),
    )
    .unwrap();
    let policy = format!(
        "known_hosts_path: ../keys/known_hosts\nlimits:\n  max_seconds: 30\n  task_progress_interval: 1\n  deny_substrings: []\nnetwork:\n  allow_cidrs: [\"127.0.0.0/8\"]\n{POLICY_RULES}audit:\n  path: ../audit.jsonl\n"
    );
    std::fs::write(fleet.path("config/policy.yml"), policy).unwrap();
    fleet
}

async fn run(client: &mcp::Client, alias: &str, command: &str) -> Value {
    call(client, "ssh_run", json!({ "alias": alias, "command": command })).await.1
}

/// A `privilege_failed` result that came fast, with a hint containing `hint_has`.
fn assert_privilege_failed(r: &Value, hint_has: &str) {
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(r["kind"], "privilege_failed", "{r}");
    let hint = r["hint"].as_str().unwrap_or_default();
    assert!(hint.contains(hint_has), "hint {hint:?} should name {hint_has:?}: {r}");
    assert!(r["duration_ms"].as_u64().unwrap_or(u64::MAX) < 10_000, "not fast: {r}");
}

/// The new keys are checked at load with file:line:col, typos are unknown keys, and the
/// password secrets resolve like `password_secret` (a missing one is an error).
#[test]
fn become_keys_are_validated_at_load() {
    let rule = |extra: &str| format!("rules:\n  - id: r\n    action: allow\n    commands: [id]\n{extra}");
    let load = |policy: &str, servers_extra: &str, creds_extra: &str| {
        let dir = CfgDir::new(
            &format!("{}{servers_extra}", servers(&[("a", &[])])),
            &format!("{CREDS}{creds_extra}"),
            policy,
        );
        std::fs::write(dir.path("secrets/sudo_pw"), "s3cret-sudo").unwrap();
        dir.load()
    };
    let cfg = load(&rule("    become: root\n    become_method: doas\n"), "", "").unwrap();
    let b = cfg.policy.rules[0].elevate.clone().unwrap();
    assert_eq!((b.user.as_str(), b.method.name()), ("root", "doas"));
    for (extra, line, says) in [
        ("    become_method: su\n", 5, "not one of sudo, doas"),
        ("    become_method: sudo\n", 5, "needs become"),
        ("    become: \"-oroot\"\n", 5, "must be 1-32"),
        ("    become: \"root; id\"\n", 5, "must be 1-32"),
        ("    becom: root\n", 5, "`becom`"),
    ] {
        let err = load(&rule(extra), "", "").unwrap_err().to_string();
        assert!(err.contains(&format!("policy.yml:{line}:")) && err.contains(says), "{extra}: {err}");
    }
    // Secrets: the host's wins over the credential's; a missing one is an error naming it.
    let cfg =
        load(&rule(""), "    become_password_secret: sudo_pw\n", "    become_password_secret: sudo_pw\n").unwrap();
    let host = cfg.host("a").unwrap();
    assert_eq!(cfg.become_password_for(host).map(|s| s.expose().to_owned()), Some("s3cret-sudo".into()));
    assert!(cfg.secret_values().contains(&"s3cret-sudo".to_owned()));
    let err = load(&rule(""), "    become_password_secret: missing_pw\n", "").unwrap_err().to_string();
    assert!(err.contains("servers.yml:") && err.contains("\"missing_pw\" not found"), "{err}");
    assert!(!format!("{:?}", cfg.credentials).contains("s3cret-sudo"), "Debug never shows the value");
    // The published schema knows the keys.
    let out = std::process::Command::new(BIN).args(["schema", "policy"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("become_method"));
    let out = std::process::Command::new(BIN).args(["schema", "servers"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("become_password_secret"));
}

/// Which user a decision runs the command as: the first permitting rule in file order
/// decides, per simple command; a command mixing users is denied; `sudo` stays `privilege`.
#[test]
fn become_decisions() {
    let policy = "rules:\n  - id: root\n    action: allow\n    commands: [\"systemctl restart *\", \"id\"]\n    become: root\n  - id: app\n    action: ask\n    commands: [\"app-reload\"]\n    become: app\n  - id: login\n    action: allow\n    commands: [\"id\", \"echo *\", \"sudo *\", \"nohup *\"]\n";
    let dir = CfgDir::new(&servers(&[("a", &[])]), CREDS, policy);
    let cfg = dir.load().unwrap();
    let host = cfg.host("a").unwrap();
    let user = |cmd: &str| {
        let d = cfg.policy.evaluate(host, cmd);
        (d.action(), d.elevate.map(|b| b.user))
    };
    assert_eq!(user("systemctl restart nginx"), ("allow", Some("root".into())));
    assert_eq!(user("id"), ("allow", Some("root".into())), "the first permitting rule decides");
    assert_eq!(user("echo hi"), ("allow", None));
    assert_eq!(user("id && systemctl restart nginx"), ("allow", Some("root".into())));
    assert_eq!(user("app-reload"), ("ask", Some("app".into())));
    assert_eq!(user("nohup systemctl restart nginx"), ("allow", Some("root".into())), "the wrapped command decides");
    let d = cfg.policy.evaluate(host, "systemctl restart nginx; echo done");
    assert!(!d.allowed && d.reason.contains("one command runs as one user"), "{d:?}");
    assert_eq!(d.denied_command.as_deref(), Some("echo done"));
    assert!(!cfg.policy.evaluate(host, "app-reload; id").allowed, "root and app in one command");
    let d = cfg.policy.evaluate(host, "sudo systemctl restart nginx");
    assert!(!d.allowed && d.reason.contains("privilege"), "{d:?}");
    // The decision as plans and audit serialize it.
    let v = serde_json::to_value(cfg.policy.evaluate(host, "id")).unwrap();
    assert_eq!(v["become"], json!({ "user": "root", "method": "sudo" }));
    assert!(serde_json::to_value(cfg.policy.evaluate(host, "echo x")).unwrap().get("become").is_none());
}

#[test]
fn the_test_sudoers_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    assert!(valid(&sudoers_text(), dir.path()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn become_runs_as_root_and_refusals_fail_fast() {
    let fleet = setup();
    let (client, _) = mcp::stdio(&fleet.config_dir()).await;

    // NOPASSWD: the single command is sudo's own argv (sudoers names /usr/bin/id).
    let r = run(&client, "h1", "id -u").await;
    assert_eq!((r["status"].as_str(), r["stdout"].as_str()), (Some("completed"), Some("0\n")), "{r}");
    // The login user still runs what a rule without `become` allows.
    let r = run(&client, "h1", "echo as-login").await;
    assert_eq!((r["stdout"].as_str(), r.get("kind")), (Some("as-login\n"), None), "{r}");

    // A password rule without a configured password: refused at once, hint names both fixes.
    let r = run(&client, "h1", "whoami").await;
    assert_privilege_failed(&r, "NOPASSWD");
    assert!(r["hint"].as_str().unwrap().contains("become_password_secret"), "{r}");
    // With the password (host secret, then credential secret): root.
    for alias in ["h1pw", "h1c"] {
        let r = run(&client, alias, "whoami").await;
        assert_eq!((r["status"].as_str(), r["stdout"].as_str()), (Some("completed"), Some("root\n")), "{alias}: {r}");
        assert!(!r["stderr"].as_str().unwrap().contains("password"), "{r}");
    }
    // A wrong password: refused at once, never a hang until the timeout.
    let r = run(&client, "h1bad", "whoami").await;
    assert_privilege_failed(&r, "become_password_secret");
    // No sudoers line at all: without a password sudo -n says so; with one, sudo refuses it.
    let r = run(&client, "h1", "cat /etc/shadow").await;
    assert_privilege_failed(&r, "NOPASSWD: /full/path/of/cat /etc/shadow");
    let r = run(&client, "h1pw", "cat /etc/shadow").await;
    assert_privilege_failed(&r, "does not let swtest run this as root");
    assert!(!r["stdout"].as_str().unwrap().contains("root:"), "{r}");
    // A NOPASSWD command on a host with a password: sudo -n runs it; the password is never
    // sent, so the command cannot read it on its stdin.
    let r = run(&client, "h1pw", "id -u").await;
    assert_eq!(r["stdout"], "0\n", "{r}");
    // A compound command runs through /bin/sh -c, which these sudoers do not allow.
    let r = run(&client, "h1", "id -u && id -u").await;
    assert_privilege_failed(&r, "/bin/sh -c");
    // `sudo` written by the agent stays a privilege construct.
    let (err, r) = call(&client, "ssh_run", json!({ "alias": "h1", "command": "sudo id" })).await;
    assert!(err && r["kind"] == "policy_denied", "{r}");
    // One command, two users: denied before anything runs.
    let (err, r) = call(&client, "ssh_run", json!({ "alias": "h1", "command": "id; echo x" })).await;
    assert!(err && r["message"].as_str().unwrap().contains("one command runs as one user"), "{r}");
    // Through a jump host.
    let r = run(&client, "t2", "id -u").await;
    assert_eq!(r["stdout"], "0\n", "{r}");

    // Plan, describe, preflight.
    let (_, plan) = call(&client, "ssh_plan", json!({ "target": "h1", "command": "id -u" })).await;
    assert_eq!(plan["groups"][0]["become"], "root", "{plan}");
    let (_, plan) = call(&client, "ssh_plan", json!({ "target": "pw", "command": "echo hi" })).await;
    assert_eq!(plan["groups"][0].get("become"), None, "{plan}");
    let (_, d) = call(&client, "ssh_describe_host", json!({ "alias": "h1pw" })).await;
    assert_eq!(d["become"]["configured"], true, "{d}");
    assert_eq!(d["become"]["password_configured"], true, "{d}");
    let (_, d) = call(&client, "ssh_describe_host", json!({ "alias": "pw" })).await;
    assert_eq!(d["become"]["configured"], false, "{d}");
    let (_, pre) = call(&client, "ssh_preflight", json!({ "target": "h1:h1pw:h1bad" })).await;
    let row = |alias: &str| pre["hosts"].as_array().unwrap().iter().find(|h| h["alias"] == alias).cloned().unwrap();
    assert_eq!((row("h1")["ok"].as_bool(), row("h1")["become"]["ok"].as_bool()), (Some(true), Some(true)), "{pre}");
    assert_eq!(row("h1pw")["become"]["ok"], true, "{pre}");
    assert_eq!((row("h1bad")["ok"].as_bool(), row("h1bad")["stage"].as_str()), (Some(false), Some("become")), "{pre}");
    mcp::close(client).await;

    // The CLI plan says it too.
    let out = std::process::Command::new(BIN)
        .args(["plan", "--config-dir"])
        .arg(fleet.config_dir())
        .args(["h1", "--", "id", "-u"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("(become: root)"), "{out:?}");
    // Audit: the judged command (no sudo) and the user it ran as.
    let audit = std::fs::read_to_string(fleet.path("audit.jsonl")).unwrap();
    assert!(
        audit.lines().any(|l| l.contains("\"task_start\"")
            && l.contains("\"command\":\"whoami\"")
            && l.contains("\"become_user\":\"root\"")),
        "task_start names become_user"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_become_command_stops_the_root_process() {
    let fleet = setup();
    let (client, _) = mcp::stdio(&fleet.config_dir()).await;
    let marker = format!("{}", 3000 + std::process::id() % 997);
    let command = format!("sleep {marker}");
    let (_, started) =
        call(&client, "ssh_run_async", json!({ "alias": "h1", "command": command, "wait_seconds": 0 })).await;
    let id = started["task_id"].as_str().unwrap().to_owned();
    let mut seen = Vec::new();
    for _ in 0..200 {
        seen = root_processes(&command);
        if seen.iter().any(|l| l.contains(&format!(" {command}")) && !l.contains("sudo")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(seen.iter().any(|l| !l.contains("sudo")), "the root sleep never started: {seen:?}");
    let (_, c) = call(&client, "ssh_cancel", json!({ "task_id": id })).await;
    assert!(c.is_object(), "{c}");
    root_gone_within(&command, Duration::from_secs(5))
        .unwrap_or_else(|left| panic!("root processes left after cancel: {left:?}"));
    mcp::close(client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_configured_secret_is_masked_on_every_path() {
    let fleet = setup();
    let secrets = [password(), "correct horse", "not-the-password", WRONG_BECOME];
    let (client, rec) = mcp::stdio(&fleet.config_dir()).await;
    let mut produced: Vec<Value> = Vec::new();
    let pw = password();
    let (a, b) = pw.split_at(pw.len() / 2);
    let commands = [
        // Every secret whole, on stdout and stderr.
        format!("printf '%s\\n' '{pw}' 'correct horse' not-the-password {WRONG_BECOME}"),
        format!("printf '%s\\n' '{pw}' 'correct horse' not-the-password {WRONG_BECOME} >&2"),
        // Split between two reads (the sleep makes two SSH data packets).
        format!("printf %s {a}; sleep 0.5; printf '%s\\n' {b}"),
        format!("printf %s {a} >&2; sleep 0.5; printf '%s\\n' {b} >&2"),
    ];
    for cmd in &commands {
        let r = run(&client, "pw", cmd).await;
        let text = format!("{}{}", r["stdout"].as_str().unwrap_or_default(), r["stderr"].as_str().unwrap_or_default());
        assert!(text.contains("[secret]"), "{cmd}: {r}");
        produced.push(r);
        // Paged output of an async run of the same command, both streams.
        let (_, s) = call(&client, "ssh_run_async", json!({ "alias": "pw", "command": cmd, "wait_seconds": 10 })).await;
        let id = s["task_id"].as_str().unwrap().to_owned();
        for stream in ["stdout", "stderr"] {
            let (_, page) = call(&client, "ssh_get_task_output", json!({ "task_id": id, "stream": stream })).await;
            produced.push(page);
        }
        produced.push(s);
    }
    produced.push(call(&client, "ssh_list_tasks", json!({})).await.1);
    produced.push(json!(format!("{:?}", rec.progress.lock().unwrap())));
    mcp::close(client).await;
    // A runbook's report (run in process by the CLI): the step output masked; a `become`
    // step runs as root there too.
    std::fs::create_dir_all(fleet.path("runbooks")).unwrap();
    let step = commands[0].replace('\'', "''");
    std::fs::write(
        fleet.path("runbooks/leak.yml"),
        format!("steps:\n  - id: echo\n    target: pw\n    command: '{step}'\n  - id: root\n    target: h1\n    command: id -u\n"),
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args(["runbook", "run", "--config-dir"])
        .arg(fleet.config_dir())
        .arg("leak")
        .env("SSHWARDEN_LOG", "sshwarden=warn")
        .output()
        .unwrap();
    let events = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success() && events.contains("[secret]"), "{events}{}", String::from_utf8_lossy(&out.stderr));
    assert!(events.contains("\"0\\n\"") || events.contains("0\\n"), "the become step ran as root: {events}");
    produced.push(json!(events));
    let audit = std::fs::read_to_string(fleet.path("audit.jsonl")).unwrap();
    assert!(audit.contains("command_masked"), "audit keeps the masked command");
    let all = [serde_json::to_string(&produced).unwrap(), audit];
    for (i, text) in all.iter().enumerate() {
        for s in secrets {
            assert!(!text.contains(s), "secret {s:?} found in output #{i}");
        }
        // Neither half of a split secret leaks with the other.
        assert!(!text.contains(&format!("{a}{b}")), "split secret joined in #{i}");
    }
}
