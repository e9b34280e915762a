//! Audit records shipped to a real rsyslog collector (`audit.syslog`): every line of the
//! audit file arrives exactly as written and verifies remotely; a collector outage spools
//! and replays in order once it is back; `required: true` with the collector down and the
//! spool full refuses commands (nothing runs); TLS to an rsyslog gtls listener.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::mcp::{self, BIN};
use crate::support::rsyslog::{Rsyslog, tls_files};
use crate::support::sshd::{Fleet, FleetOptions};

fn audit_lines(fleet: &Fleet) -> Vec<String> {
    std::fs::read_to_string(fleet.path("audit.jsonl")).unwrap().lines().map(str::to_owned).collect()
}

/// Waits until the collector holds exactly the audit file's lines, in order.
fn wait_for_copy(fleet: &Fleet, collector: &Rsyslog) {
    let start = Instant::now();
    loop {
        let (local, remote) = (audit_lines(fleet), collector.records());
        if local == remote {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "collector copy differs: {} local, {} remote\nlocal tail: {:?}\nremote tail: {:?}",
            local.len(),
            remote.len(),
            local.last(),
            remote.last()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn verify_remote(collector: &Rsyslog) {
    let out = std::process::Command::new(BIN)
        .args(["audit", "verify", "--from-syslog"])
        .arg(&collector.received)
        .output()
        .unwrap();
    assert!(out.status.success(), "remote chain: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_reach_rsyslog_survive_an_outage_and_verify() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let mut collector = Rsyslog::start(&fleet.path("rsyslog"), None);
    fleet.write_config(&format!("  syslog:\n    address: tcp://127.0.0.1:{}\n    facility: local3\n", collector.port));
    let (client, _) = mcp::stdio(&fleet.config_dir()).await;
    for i in 0..3 {
        let (err, r) =
            mcp::call(&client, "ssh_run", json!({ "alias": "h1", "command": format!("echo shipped-{i}") })).await;
        assert!(!err, "{r}");
    }
    wait_for_copy(&fleet, &collector);
    verify_remote(&collector);
    let raw = std::fs::read_to_string(&collector.received).unwrap();
    assert!(raw.lines().all(|l| l.contains(" sshwarden {")), "APP-NAME and MSG as sent: {raw}");

    // Outage: records spool while the collector is down, then arrive once, in order.
    collector.stop();
    for i in 0..4 {
        let (err, r) =
            mcp::call(&client, "ssh_run", json!({ "alias": "h1", "command": format!("echo during-outage-{i}") })).await;
        assert!(!err, "commands keep running when delivery is not required: {r}");
    }
    let spool = fleet.path("audit.jsonl.syslog-spool");
    let offset: u64 = std::fs::read_to_string(fleet.path("audit.jsonl.syslog-spool.offset"))
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or(0);
    let spooled = std::fs::metadata(&spool).map_or(0, |m| m.len()) - offset;
    assert!(spooled > 0, "records wait in the spool during the outage");
    assert!(collector.records().len() < audit_lines(&fleet).len());
    collector.start_again();
    wait_for_copy(&fleet, &collector);
    verify_remote(&collector);
    // The remote copy is checked, not trusted: an edited record is named.
    let copy = std::fs::read_to_string(&collector.received).unwrap();
    let edited = fleet.path("edited.log");
    std::fs::write(&edited, copy.replacen("during-outage-1", "during-outage-X", 1)).unwrap();
    let out = std::process::Command::new(BIN).args(["audit", "verify", "--from-syslog"]).arg(&edited).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("hash mismatch (record edited)"), "{err}");
    // Another program's line in the collector's file is skipped and counted, not a record.
    let mixed = fleet.path("mixed.log");
    std::fs::write(&mixed, format!("2026-12-04T06:00:00Z host cron[7]: {{\"job\": 1}}\n{copy}")).unwrap();
    let out = std::process::Command::new(BIN).args(["audit", "verify", "--from-syslog"]).arg(&mixed).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("1 line(s) from other programs"),
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A copy that lost its last record verifies as a chain, but not against the file.
    let truncated = fleet.path("truncated.log");
    let lines: Vec<&str> = copy.lines().collect();
    std::fs::write(&truncated, lines[..lines.len() - 1].join("\n") + "\n").unwrap();
    let out = std::process::Command::new(BIN)
        .args(["audit", "verify", "--from-syslog"])
        .arg(&truncated)
        .arg("--against")
        .arg(fleet.path("audit.jsonl"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("missing from the copy"), "{err}");
    mcp::close(client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_delivery_refuses_commands_when_the_spool_is_full() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let mut collector = Rsyslog::start(&fleet.path("rsyslog"), None);
    let port = collector.port;
    collector.stop();
    fleet.write_config(&format!(
        "  syslog:\n    address: tcp://127.0.0.1:{port}\n    required: true\n    spool_bytes: 8192\n"
    ));
    let (client, _) = mcp::stdio(&fleet.config_dir()).await;
    let filler = "x".repeat(1500);
    let mut refused = None;
    for _ in 0..10 {
        let (err, r) =
            mcp::call(&client, "ssh_run", json!({ "alias": "h1", "command": format!("echo {filler}") })).await;
        if err {
            refused = Some(r);
            break;
        }
    }
    let refused = refused.expect("the spool never filled");
    assert_eq!(refused["kind"], "audit_failed", "{refused}");
    // Somewhere the login user could create it, so only the refusal keeps it absent.
    let marker = std::path::PathBuf::from(format!("/tmp/sshwarden-spool-marker-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let (err, r) =
        mcp::call(&client, "ssh_run", json!({ "alias": "h1", "command": format!("touch {}", marker.display()) })).await;
    assert!(err && r["kind"] == "audit_failed" && r["message"].as_str().unwrap().contains("spool full"), "{r}");
    assert!(!marker.exists(), "a command ran although its audit record could not be shipped");
    mcp::close(client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_reach_rsyslog_over_tls() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let dir = fleet.path("rsyslog-tls");
    std::fs::create_dir_all(&dir).unwrap();
    let tls = tls_files(&dir);
    let collector = Rsyslog::start(&dir, Some(&tls));
    fleet.write_config(&format!(
        "  syslog:\n    address: tcp+tls://127.0.0.1:{}\n    tls: {{ca_path: {}}}\n",
        collector.port,
        tls.ca.display()
    ));
    let (client, _) = mcp::stdio(&fleet.config_dir()).await;
    let (err, r) = mcp::call(&client, "ssh_run", json!({ "alias": "h1", "command": "echo over-tls" })).await;
    assert!(!err, "{r}");
    wait_for_copy(&fleet, &collector);
    verify_remote(&collector);
    mcp::close(client).await;
}
