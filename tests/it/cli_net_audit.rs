//! The CLI (`check`, `plan`, `schema`, `audit verify`), the network precheck with an
//! injected and the real resolver, and the audit log (chain, tampering, fail-closed, lost
//! tasks after a restart).

use std::collections::HashMap;
use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Value, json};
use sshwarden::audit::{Audit, verify};
use sshwarden::config::{Host, Network};
use sshwarden::net::{HickoryResolver, PrecheckError, Resolve, precheck};
use sshwarden::service::ServiceError;

use crate::ssh_exec::{service, start, unique_tag};
use crate::support::cfg::anchor_dir;
use crate::support::mcp::BIN;
use crate::support::sshd::{Fleet, FleetOptions};

struct FakeDns {
    answers: HashMap<&'static str, Result<Vec<IpAddr>, String>>,
    delay: Duration,
}

impl Resolve for FakeDns {
    fn lookup<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, String>> {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            self.answers.get(name).cloned().unwrap_or_else(|| Err("NXDOMAIN".into()))
        })
    }
}

fn host(name: &str) -> Host {
    Host {
        alias: "h".into(),
        host: name.into(),
        port: 2222,
        credentials: "c".into(),
        tags: vec![],
        description: String::new(),
        max_concurrency: 1,
        connect_timeout: Duration::from_secs(1),
        proxy_jump: Vec::new(),
        resolve_remote: false,
    }
}

fn net(allow: &[&str], block: &[&str]) -> Network {
    Network {
        allow: allow.iter().map(|s| s.parse().unwrap()).collect(),
        block: block.iter().map(|s| s.parse().unwrap()).collect(),
    }
}

#[tokio::test]
async fn precheck_judges_every_address_and_returns_the_one_to_dial() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let dns = FakeDns {
        answers: HashMap::from([
            ("dual.example", Ok(vec![ip("2001:db8::5"), ip("10.0.0.5")])),
            ("mixed.example", Ok(vec![ip("10.0.0.6"), ip("192.168.1.6")])),
            ("outside.example", Ok(vec![ip("8.8.8.8")])),
            ("fail.example", Err("SERVFAIL".into())),
        ]),
        delay: Duration::from_millis(1),
    };
    let t = Duration::from_millis(500);
    let n = net(&["10.0.0.0/8", "2001:db8::/32"], &["192.168.0.0/16"]);
    let target = precheck(&host("dual.example"), &n, &dns, t).await.unwrap();
    assert_eq!(target.addr.to_string(), "10.0.0.5:2222", "IPv4 first");
    assert_eq!(target.resolved.len(), 2);
    assert_eq!(precheck(&host("10.1.2.3"), &n, &dns, t).await.unwrap().addr.to_string(), "10.1.2.3:2222");
    assert_eq!(precheck(&host("2001:db8::9"), &n, &dns, t).await.unwrap().addr.to_string(), "[2001:db8::9]:2222");
    let e = precheck(&host("mixed.example"), &n, &dns, t).await.unwrap_err();
    assert_eq!(e.to_string(), "host \"h\": 192.168.1.6 is in block list entry 192.168.0.0/16");
    let e = precheck(&host("outside.example"), &n, &dns, t).await.unwrap_err();
    assert_eq!(e.to_string(), "host \"h\": no resolved address is inside allow_ips/allow_cidrs (8.8.8.8)");
    assert!(matches!(precheck(&host("fail.example"), &n, &dns, t).await, Err(PrecheckError::Dns { .. })));
    assert!(matches!(precheck(&host("nx.example"), &n, &dns, t).await, Err(PrecheckError::Dns { .. })));
    let slow =
        FakeDns { answers: HashMap::from([("slow.example", Ok(vec![ip("10.0.0.1")]))]), delay: Duration::from_secs(5) };
    let t0 = std::time::Instant::now();
    assert!(matches!(
        precheck(&host("slow.example"), &n, &slow, Duration::from_millis(200)).await,
        Err(PrecheckError::DnsTimeout { .. })
    ));
    assert!(t0.elapsed() < Duration::from_secs(2));
    // The real system resolver: localhost never leaves the machine.
    let sys = HickoryResolver::from_system(Duration::from_secs(2)).unwrap();
    let target = precheck(&host("localhost"), &net(&["127.0.0.0/8", "::1/128"], &[]), &sys, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(target.addr.to_string(), "127.0.0.1:2222");
}

fn sshwarden(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_plan_schema_and_help() {
    let dir = anchor_dir();
    let cfg = dir.path().join("config");
    let c = cfg.to_str().unwrap();
    let (code, out, _) = sshwarden(&["check", "--config-dir", c]);
    assert_eq!(code, 0);
    assert!(out.starts_with("ok: 4 hosts, 5 tags"), "{out}");
    let (code, out, _) = sshwarden(&["plan", "--config-dir", c, "--json", "web", "--", "uptime"]);
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["groups"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(
        (v["groups"][0]["hosts"].as_str(), v["groups"][0]["count"].as_u64()),
        (Some("web[1-2]"), Some(2)),
        "{v}"
    );
    // web1 has an alias override: same decision, two limits sets, each named once.
    assert_eq!(v["groups"][0]["limits"], json!({ "web1": 0, "web2": 1 }), "{v}");
    assert_eq!(v["limits_sets"].as_array().map(Vec::len), Some(2), "{v}");
    assert!(v.get("hosts").is_none(), "per-host rows only with --per-host: {v}");
    let (_, out, _) = sshwarden(&["plan", "--config-dir", c, "web:db-primary", "--", "uptime; cat /etc/shadow"]);
    assert_eq!(out.lines().count(), 1, "identical denials fold into one row: {out}");
    assert!(out.starts_with("DENY  db-primary,web[1-2] (3) "), "{out}");
    let (_, out, _) = sshwarden(&["plan", "--config-dir", c, "web", "--", "uptime"]);
    assert_eq!(out.trim(), "ALLOW web[1-2] (2) allowed by rule #1", "{out}");
    let (code, out, _) = sshwarden(&["plan", "--config-dir", c, "--json", "--per-host", "web", "--", "uptime"]);
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["hosts"][0],
        json!({ "alias": "web1", "decision": "allow", "allowed": true, "rule": "rule #1", "reason": "allowed by rule #1", "target_ip": "10.0.0.11" })
    );
    // Every bypass class of the anchor's §7.A is denied by `plan`.
    for bypass in [
        "uptime\ncat /etc/shadow",
        "uptime & cat /etc/shadow",
        "uptime > /etc/cron.d/x",
        "echo $(cat /etc/shadow)",
        "cat <(id)",
        "uptime${IFS}-p",
        "busybox wget x",
        "python3 -c 'import os'",
        "bash -c 'cat /etc/shadow'",
    ] {
        let (code, out, _) = sshwarden(&["plan", "--config-dir", c, "--json", "web1", "--", bypass]);
        assert_eq!(code, 3, "{bypass:?} must be denied: {out}");
    }
    let (code, _, err) = sshwarden(&["plan", "--config-dir", c, "nope", "--", "uptime"]);
    assert_eq!(code, 1);
    assert!(err.contains("\"nope\" is neither a host alias nor a tag"));
    std::fs::write(cfg.join("policy.yml"), "limits:\n  max_secondz: 1\nnetwork:\n  allow_cidrs: [nope]\n").unwrap();
    let (code, _, err) = sshwarden(&["check", "--config-dir", c]);
    assert_eq!(code, 1);
    assert!(err.contains("policy.yml:2:3: limits.max_secondz"), "{err}");
    let (code, out, _) = sshwarden(&["schema", "policy"]);
    assert_eq!(code, 0);
    assert!(serde_json::from_str::<Value>(&out).unwrap()["properties"]["rules"].is_object());
    for sub in ["check", "plan", "serve", "call", "schema", "audit"] {
        assert_eq!(sshwarden(&[sub, "--help"]).0, 0, "{sub} --help");
    }
    assert!(sshwarden(&["--version"]).1.starts_with("sshwarden "));
}

#[test]
fn audit_chain_detects_edits_drops_inserts_and_reorders() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let audit = Audit::open(&path, false, None).unwrap();
    for i in 0..5 {
        let Value::Object(m) = json!({ "n": i, "command": format!("echo {i}") }) else { unreachable!() };
        audit.record("decision", m, i == 2).unwrap();
    }
    assert_eq!(verify(&path), Ok(5));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("command_sha256") && text.contains("\"prev\""));
    let lines: Vec<&str> = text.lines().collect();
    let write = |ls: Vec<String>| std::fs::write(&path, ls.join("\n") + "\n").unwrap();
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut edited = owned(&lines);
    edited[2] = edited[2].replace("echo 2", "echo 9");
    write(edited);
    assert!(verify(&path).unwrap_err().contains("line 3 (seq 3): hash mismatch"));
    let mut dropped = owned(&lines);
    dropped.remove(1);
    write(dropped);
    assert!(verify(&path).unwrap_err().contains("line 2: seq 3, expected 2"));
    let mut swapped = owned(&lines);
    swapped.swap(3, 4);
    write(swapped);
    assert!(verify(&path).unwrap_err().contains("line 4"));
    let mut inserted = owned(&lines);
    inserted.insert(2, "{\"seq\":3,\"hash\":\"x\"}".into());
    write(inserted);
    assert!(verify(&path).is_err());
    write(owned(&lines));
    assert_eq!(sshwarden(&["audit", "verify", path.to_str().unwrap()]).0, 0);
    std::fs::write(&path, text.replace("echo 4", "echo 5")).unwrap();
    let (code, _, err) = sshwarden(&["audit", "verify", path.to_str().unwrap()]);
    assert!(code != 0 && err.contains("line 5"), "{err}");
    // Redacted commands keep only the hash.
    let redacted = Audit::open(&dir.path().join("r.jsonl"), true, None).unwrap();
    let Value::Object(m) = json!({ "command": "echo secret-ish" }) else { unreachable!() };
    redacted.record("decision", m, false).unwrap();
    let r = std::fs::read_to_string(dir.path().join("r.jsonl")).unwrap();
    assert!(!r.contains("secret-ish") && r.contains("command_sha256"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_is_fail_closed_and_lost_tasks_survive_a_restart() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let svc = service(&fleet);
    let marker = format!("/tmp/sshwarden-failclosed-{}", unique_tag());
    std::fs::remove_file(fleet.path("audit.jsonl")).unwrap();
    let err = start(&svc, "h1", &format!("touch {marker}"), None).await.unwrap_err();
    assert!(matches!(err, ServiceError::Audit(_)), "{err}");
    assert!(err.to_string().contains("nothing was run"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!std::path::Path::new(&marker).exists(), "a command ran without its audit record");
    assert!(svc.tasks().list().iter().all(|t| t.state.is_finished()), "no task left running");
    // A task that started and never ended (the server died) is reported as lost.
    std::fs::write(fleet.path("audit.jsonl"), "").unwrap();
    let svc = service(&fleet);
    // A marker of this test's own: the cleanup ends this sleep, never another test's.
    let marker = format!("30.{}", crate::ssh_exec::unique_tag());
    let t = start(&svc, "h1", &format!("sleep {marker}"), None).await.unwrap();
    drop(svc);
    let text = std::fs::read_to_string(fleet.path("audit.jsonl")).unwrap();
    assert!(text.contains("task_start"));
    let restarted = service(&fleet);
    assert!(restarted.lost_tasks().iter().any(|v| v["task_id"] == t.id.as_str()), "{:?}", restarted.lost_tasks());
    let _ = Command::new("pkill").args(["-u", "swtest", "-f", &format!("sleep {marker}")]).status();
}

/// The terminal commands print results, not INFO logs; `-v` brings the logs back.
#[test]
fn terminal_commands_are_quiet_unless_verbose() {
    let dir = anchor_dir();
    let c = dir.path().join("config");
    let c = c.to_str().unwrap();
    let (code, out, err) = sshwarden(&["call", "--config-dir", c, "ssh_list_hosts"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!err.contains("INFO"), "no INFO lines by default: {err}");
    let (code, _, err) = sshwarden(&["-v", "call", "--config-dir", c, "ssh_list_hosts"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("INFO"), "-v logs INFO: {err}");
}

/// Completions and man pages come from the same definitions clap parses.
#[test]
fn completions_and_man_pages() {
    let (code, out, _) = sshwarden(&["completions", "bash"]);
    assert!(code == 0 && out.contains("sshwarden") && out.contains("complete"), "{out}");
    let (code, out, _) = sshwarden(&["completions", "zsh"]);
    assert!(code == 0 && out.starts_with("#compdef sshwarden"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = sshwarden(&["man", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let page = std::fs::read_to_string(dir.path().join("sshwarden.1")).unwrap();
    assert!(page.contains(".TH sshwarden") && page.contains("serve"), "{page}");
    assert!(dir.path().join("sshwarden-call.1").exists());
}

#[test]
fn a_lost_task_is_cleared_by_ssh_ack_task_and_the_warning_says_how() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let path = fleet.path("audit.jsonl");
    let id = format!("t{:032x}", u128::from(std::process::id()) * 7919 + 3);
    // A task_start with no task_end: the server stopped while the task ran.
    let Value::Object(start) = json!({ "task_id": id, "alias": "h1" }) else { unreachable!() };
    Audit::open(&path, false, None).unwrap().record("task_start", start, true).unwrap();
    let config = fleet.config_dir();
    let call = |args: &[&str]| sshwarden(&[&["call", "--config-dir", config.to_str().unwrap()], args].concat());
    let (code, out, err) = call(&["ssh_list_tasks"]);
    assert!(code == 0 && out.contains(&id) && out.contains("\"lost\""), "{out}");
    assert!(err.contains(&id) && err.contains("sshwarden call ssh_ack_task task_id=ID"), "the warning says how: {err}");
    let (code, out, err) = call(&["ssh_ack_task", &format!("task_id={id}")]);
    assert!(code == 0 && out.contains("\"acknowledged\": true"), "a lost id is accepted: {out}{err}");
    let (code, out, err) = call(&["ssh_list_tasks"]);
    assert!(code == 0 && !out.contains(&id) && !err.contains("last stopped"), "cleared for good: {out}{err}");
    assert!(std::fs::read_to_string(&path).unwrap().contains("\"state\":\"lost\""));
    assert!(verify(&path).is_ok(), "the chain goes on");
}
