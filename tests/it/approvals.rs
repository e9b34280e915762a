//! Human approval of `ask` rules: the Python SDK answering elicitation (2.x through the
//! 2026-07-28 input-required flow, 1.x through `elicitation/create`) with accept, decline,
//! cancel, an answer after the timeout and silence; a client without elicitation denied with the hint; one
//! prompt for a whole fan-out; out-of-band approve/deny over HTTP with the approver token,
//! which the normal token cannot use, for a run and for a runbook step; plans showing `ask`; the audit records.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::mcp_e2e::http_server_with;
use crate::python_interop::venv;
use crate::support::mcp::{self, BIN, call};
use crate::support::sshd::{Fleet, FleetOptions};

const ASK_RULE: &str = "rules:\n  - id: needs-human\n    action: ask\n    commands: [\"echo approve-me*\"]\n";

pub fn ask_fleet() -> Fleet {
    let fleet = Fleet::start(FleetOptions { hosts: 2, ..Default::default() });
    let path = fleet.path("config/policy.yml");
    let policy = std::fs::read_to_string(&path).unwrap().replacen("rules:\n", ASK_RULE, 1);
    let policy =
        policy.replace("  task_progress_interval: 1\n", "  task_progress_interval: 1\n  approval_timeout_seconds: 3\n");
    std::fs::write(path, policy).unwrap();
    fleet
}

fn python(venv_name: &str, req: &str, mode: &str, fleet: &Fleet, fanout: bool) -> Value {
    let py = venv(venv_name, req);
    let config = fleet.config_dir();
    let mut cmd = Command::new(py);
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/approvals.py")).args([
        mode,
        BIN,
        config.to_str().unwrap(),
        "h1",
        "echo approve-me",
    ]);
    if fanout {
        cmd.arg("web");
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "approvals.py {mode}: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap()
}

#[test]
fn elicitation_approves_declines_times_out_and_fails_closed() {
    let fleet = ask_fleet();
    let ok = python("mcp2", "mcp>=2.3,<3", "approve", &fleet, true);
    assert_eq!(ok["protocol"], "2026-07-28", "{ok}");
    assert_eq!(ok["run"]["structured"]["stdout"], "approve-me\n", "{ok}");
    assert_eq!(ok["fanout"]["structured"]["summary"]["ok"], 2, "{ok}");
    let prompts = ok["prompts"].as_array().unwrap();
    assert_eq!(prompts.len(), 2, "one prompt for the run, one for the whole fan-out: {ok}");
    let msg = prompts[1].as_str().unwrap();
    assert!(msg.contains("h[1-2]") && msg.contains("echo approve-me") && msg.contains("needs-human"), "{msg}");

    for mode in ["decline", "cancel"] {
        let no = python("mcp2", "mcp>=2.3,<3", mode, &fleet, false);
        let err = &no["run"]["error"];
        assert!(no["run"]["is_error"] == true && err["kind"] == "policy_denied", "{mode}: {no}");
        assert!(err["message"].as_str().unwrap().contains("declined (elicitation)"), "{mode}: {no}");
    }
    // Input-required: an answer after approval_timeout_seconds finds the request denied.
    let late = python("mcp2", "mcp>=2.3,<3", "late", &fleet, false);
    assert!(late["run"]["error"]["message"].as_str().unwrap_or("").contains("approval_timeout_seconds"), "{late}");
    let none = python("mcp2", "mcp>=2.3,<3", "none", &fleet, false);
    let err = &none["run"]["error"];
    assert!(
        err["kind"] == "approval_required" && err["message"].as_str().unwrap().contains("cannot ask a human"),
        "{none}"
    );
    assert!(err["hint"].as_str().unwrap().contains("sshwarden approvals"), "{none}");

    // The classic flow (2025-11-25): the server asks with elicitation/create.
    let legacy = python("mcp1", "mcp>=1.20,<2", "approve", &fleet, false);
    assert!(legacy["protocol"] == "2025-11-25" && legacy["run"]["structured"]["stdout"] == "approve-me\n", "{legacy}");
    let legacy = python("mcp1", "mcp>=1.20,<2", "decline", &fleet, false);
    assert_eq!(legacy["run"]["error"]["kind"], "policy_denied", "{legacy}");
    let silent = python("mcp1", "mcp>=1.20,<2", "silent", &fleet, false);
    assert!(silent["run"]["error"]["message"].as_str().unwrap_or("").contains("approval_timeout_seconds"), "{silent}");

    // Nothing denied or unanswered ran; every decision is audited with who and how fast.
    let audit = std::fs::read_to_string(fleet.path("audit.jsonl")).unwrap();
    let records: Vec<Value> = audit.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let decided: Vec<&Value> = records.iter().filter(|r| r["event"] == "approval_decided").collect();
    let by = |d: &str, who: &str| decided.iter().filter(|r| r["decision"] == d && r["by"] == who).count();
    assert!(
        by("approved", "elicitation") == 3 && by("denied", "elicitation") == 3 && by("denied", "timeout") == 2,
        "{decided:?}"
    );
    assert!(decided.iter().all(|r| r["latency_ms"].is_u64()));
    let starts = records.iter().filter(|r| r["event"] == "task_start").count();
    assert_eq!(starts, 4, "1 + 2 (fan-out) + 1 (legacy) approved runs, nothing else");
}

fn approvals_cli(port: u16, token_file: &std::path::Path, args: &[&str]) -> (bool, Value) {
    let out = Command::new(BIN)
        .arg("approvals")
        .args(args)
        .args(["--url", &format!("http://127.0.0.1:{port}/mcp"), "--token-file"])
        .arg(token_file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    (out.status.success(), serde_json::from_str(stdout.trim()).unwrap_or(Value::Null))
}

async fn pending_id(port: u16, approver: &std::path::Path, what: &str) -> String {
    // Generous: the waiting call only has to reach a loaded CI machine's server.
    for _ in 0..400 {
        let (ok, list) = approvals_cli(port, approver, &["list"]);
        assert!(ok, "approvals list failed");
        if let Some(id) = list["approvals"][0]["id"].as_str() {
            assert_eq!(list["approvals"][0]["what"], what);
            return id.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no pending approval appeared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_band_approver_decides_and_the_agent_token_cannot() {
    let fleet = ask_fleet();
    let policy = fleet.path("config/policy.yml");
    let text = std::fs::read_to_string(&policy)
        .unwrap()
        .replace("approval_timeout_seconds: 3", "approval_timeout_seconds: 30");
    std::fs::write(&policy, text).unwrap();
    let token = "agent-token-0123456789abcdef";
    let approver = fleet.path("approver");
    std::fs::write(&approver, "approver-token-0123456789abcdef").unwrap();
    std::fs::create_dir_all(fleet.path("runbooks")).unwrap();
    std::fs::write(
        fleet.path("runbooks/ask-step.yml"),
        "steps:\n  - id: check\n    target: web\n    command: echo approve-me from a runbook\n",
    )
    .unwrap();
    let server = http_server_with(&fleet, token, &["--approver-token-file", approver.to_str().unwrap()]);
    let url = format!("http://127.0.0.1:{}/mcp", server.1);
    let client = std::sync::Arc::new(mcp::http(&url, token).await.unwrap().0);

    let (_, plan) = call(&client, "ssh_plan", json!({ "target": "web", "command": "echo approve-me" })).await;
    assert!(plan["groups"][0]["decision"] == "ask" && plan["summary"]["ask"] == 2, "{plan}");

    for (verb, want_ok) in [("approve", true), ("deny", false)] {
        let c = client.clone();
        let run =
            tokio::spawn(
                async move { call(&c, "ssh_run", json!({ "alias": "h1", "command": "echo approve-me" })).await },
            );
        let id = pending_id(server.1, &approver, "echo approve-me").await;
        // The agent's token cannot decide, not even with the id in hand.
        let agent_file = fleet.path("token");
        let (ok, _) = approvals_cli(server.1, &agent_file, &[verb, &id]);
        assert!(!ok, "the MCP bearer token must not decide approvals");
        let (ok, decided) = approvals_cli(server.1, &approver, &[verb, &id]);
        assert!(ok && decided["approval_id"] == id.as_str(), "{decided}");
        let (err, r) = run.await.unwrap();
        match want_ok {
            true => assert!(!err && r["stdout"] == "approve-me\n", "{r}"),
            false => assert!(err && r["message"].as_str().unwrap().contains("declined (approver token)"), "{r}"),
        }
        let (ok, _) = approvals_cli(server.1, &approver, &["approve", &id]);
        assert!(!ok, "a decided request cannot be decided again");
    }

    // A runbook step the policy asks about waits for the approver, then runs on both hosts.
    let run = Command::new(BIN)
        .args(["runbook", "run", "--json", "--url", &url, "--token-file"])
        .arg(fleet.path("token"))
        .arg("ask-step")
        .env("SSHWARDEN_LOG", "sshwarden=warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let id = pending_id(server.1, &approver, "echo approve-me from a runbook").await;
    assert!(approvals_cli(server.1, &approver, &["approve", &id]).0);
    let out = run.wait_with_output().unwrap();
    let events = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{events}");
    assert!(
        events.contains("\"outcome\":\"ok\"") && events.contains("\"hosts\":\"h[1-2]\",\"status\":\"ok\""),
        "{events}"
    );
    let audit = std::fs::read_to_string(fleet.path("audit.jsonl")).unwrap();
    assert_eq!(audit.matches("\"by\":\"approver token\"").count(), 3, "{audit}");
    let started: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["event"] == "task_start")
        .collect();
    assert!(
        started.len() == 3 && started.iter().all(|r| r["approval_id"].as_str().is_some_and(|a| a.starts_with('a'))),
        "{started:?}"
    );
    assert!(audit.contains("approvals need the approver token"));
}

/// A granted approval is a ticket for one use per host, bound to its hosts, command and
/// client, and checked against its lifetime when used: a replay or a borrowed state runs nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_is_consumed_and_bound_to_its_hosts_command_and_client() {
    let fleet = ask_fleet();
    let svc = crate::support::svc::service(&fleet);
    let h1 = vec!["h1".to_owned()];
    let request = svc.approval_needed(&h1, "echo approve-me", "client-a").expect("an ask rule");
    svc.open_approval(&request);
    svc.decide_approval(&request.id, true, "test").unwrap();
    let id = request.id.as_str();
    assert!(svc.approvals.is_open_for(id, "echo approve-me", &h1, "client-a"));
    assert!(!svc.approvals.is_open_for(id, "echo approve-me", &h1, "client-b"), "another client's state");
    assert!(!svc.approvals.is_open_for(id, "echo approve-me-too", &h1, "client-a"), "another command");
    let both = vec!["h1".to_owned(), "h2".to_owned()];
    assert!(!svc.approvals.is_open_for(id, "echo approve-me", &both, "client-a"), "more hosts than approved");
    let other = svc.prepare_with("h2", "echo approve-me", None, Some("client-a"), Some(id)).await;
    assert!(other.is_err(), "h2 was never approved");
    let first = svc.prepare_with("h1", "echo approve-me", None, Some("client-a"), Some(id)).await;
    assert!(first.is_ok(), "{:?}", first.err());
    let replay = svc.prepare_with("h1", "echo approve-me", None, Some("client-a"), Some(id)).await;
    let why = replay.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(why.contains("already used"), "a replayed ticket must be refused: {why}");
}
