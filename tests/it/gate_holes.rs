//! Holes an adversary found in the gates (self-approval by echo, cancel during an approval
//! wait, cancel racing an accept, unpruned cancelled tasks, MCP tasks lost between HTTP
//! handlers): each test failed before its fix.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use rmcp::model::CallToolResult;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::mcp_e2e::http_server_with;
use crate::ssh_exec::unique_tag;
use crate::support::mcp::{self, BIN, call};
use crate::support::sshd::{Fleet, FleetOptions, remote_processes};

/// `touch /tmp/sshwarden-adv*` needs a human; everything else is allowed.
const ASK_TOUCH: &str = "rules:\n  - id: needs-human\n    action: ask\n    commands: [\"touch /tmp/sshwarden-adv*\", \"echo approve-me*\"]\n";

fn ask_fleet(hosts: usize, timeout: u64, ttl: Option<u64>) -> Fleet {
    let fleet = Fleet::start(FleetOptions { hosts, ..Default::default() });
    let path = fleet.path("config/policy.yml");
    let mut policy = std::fs::read_to_string(&path).unwrap().replacen("rules:\n", ASK_TOUCH, 1);
    let mut extra = format!("  approval_timeout_seconds: {timeout}\n");
    if let Some(t) = ttl {
        extra.push_str(&format!("  task_result_ttl: {t}\n"));
    }
    policy = policy.replace("  task_progress_interval: 1\n", &format!("  task_progress_interval: 1\n{extra}"));
    std::fs::write(path, policy).unwrap();
    fleet
}

fn marker(name: &str) -> String {
    let p = format!("/tmp/sshwarden-adv-{}-{name}-{}", std::process::id(), unique_tag());
    let _ = std::fs::remove_file(&p);
    p
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

async fn pending_id(port: u16, approver: &std::path::Path) -> String {
    for _ in 0..400 {
        let (ok, list) = approvals_cli(port, approver, &["list"]);
        assert!(ok, "approvals list failed");
        if let Some(id) = list["approvals"][0]["id"].as_str() {
            return id.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no pending approval appeared");
}

/// HOLE 1: the agent approves its own `ask`. A runbook step that needs an approver writes
/// `approval_requested` with the approval id into the run task's output, which the agent
/// reads with ssh_get_task_output; the agent then makes a plain call for the same command
/// and hosts echoing that id as `requestState` with `inputResponses: accept`. The gate takes
/// the echo as the human's answer (`decide_or_deny(.., "elicitation")`): no human approved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adv_agent_self_approves_an_out_of_band_request_it_can_read() {
    let fleet = ask_fleet(2, 30, None);
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
    let (client, _) = mcp::http(&url, token).await.unwrap();

    let (err, started) = call(&client, "ssh_run_runbook", json!({ "name": "ask-step" })).await;
    assert!(!err, "{started}");
    let run_task = started["task_id"].as_str().unwrap().to_owned();
    // The agent reads the approval id from its own run's output.
    let mut id = None;
    for _ in 0..100 {
        let (_, out) = call(&client, "ssh_get_task_output", json!({ "task_id": run_task })).await;
        let data = out["data"].as_str().unwrap_or("").to_owned();
        if let Some(line) = data.lines().find(|l| l.contains("approval_requested")) {
            let ev: Value = serde_json::from_str(line).unwrap();
            id = ev["approval_id"].as_str().map(str::to_owned);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let id = id.expect("the run's output names the pending approval");
    // ... and answers it itself.
    let mut p = mcp::params("ssh_run_on_tag", json!({ "target": "web", "command": "echo approve-me from a runbook" }));
    p.request_state = Some(id.clone());
    let mut answers = std::collections::BTreeMap::new();
    answers.insert("approval".to_owned(), json!({ "action": "accept" }));
    p.input_responses = Some(answers);
    let r: CallToolResult = client.call_tool(p).await.unwrap();
    let audit = std::fs::read_to_string(fleet.path("audit.jsonl")).unwrap();
    let self_approved =
        audit.lines().any(|l| l.contains("approval_decided") && l.contains(&id) && l.contains("\"approved\""));
    assert!(
        !self_approved,
        "the agent approved request {id} with no approver: {}\nresult: {:?}",
        audit.lines().filter(|l| l.contains(&id)).collect::<Vec<_>>().join("\n"),
        r.structured_content
    );
    mcp::close(client).await;
}

/// HOLE 2: a call cancelled while it waits for the out-of-band approver (sshwarden call on
/// SIGINT, or any client's notifications/cancelled) leaves the request pending; when the
/// approver approves later, ssh_run_async starts the command nobody waits for any more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adv_a_call_cancelled_during_the_approval_wait_runs_nothing_after_approval() {
    let fleet = ask_fleet(1, 30, None);
    let token = "agent-token-0123456789abcdef";
    let approver = fleet.path("approver");
    std::fs::write(&approver, "approver-token-0123456789abcdef").unwrap();
    let server = http_server_with(&fleet, token, &["--approver-token-file", approver.to_str().unwrap()]);
    let url = format!("http://127.0.0.1:{}/mcp", server.1);
    let mut failures = Vec::new();
    for tool in ["ssh_run_async", "ssh_run"] {
        let m = marker(tool);
        let child = Command::new(BIN)
            .args(["call", "--url", &url, "--token-file"])
            .arg(fleet.path("token"))
            .args([tool, "alias=h1", &format!("command=touch {m}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let id = pending_id(server.1, &approver).await;
        Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (still_pending, list) = approvals_cli(server.1, &approver, &["list"]);
        let (approved, _) = approvals_cli(server.1, &approver, &["approve", &id]);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let ran = std::path::Path::new(&m).exists();
        let _ = std::fs::remove_file(&m);
        let audit = std::fs::read_to_string(fleet.path("audit.jsonl")).unwrap();
        let started = audit.lines().any(|l| l.contains("task_start") && l.contains(&id));
        println!("{tool}: ran={ran} task_start_after_interrupt={started}");
        failures.push((tool, ran, started, approved, still_pending, list));
    }
    for (tool, ran, started, approved, still_pending, list) in failures {
        assert!(
            !ran && !started,
            "{tool}: the call was interrupted (exit 130) while waiting for approval, yet after the approver \
             approved ({approved}, still listed pending: {still_pending} {list}) it started (task_start {started}, command ran {ran})"
        );
    }
}

struct Raw {
    elicitation: bool,
    name: String,
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    next_id: u64,
}

impl Raw {
    fn start(config: &std::path::Path) -> Self {
        let mut child = tokio::process::Command::new(BIN)
            .arg("serve")
            .arg("--config-dir")
            .arg(config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Self { elicitation: true, name: "raw-adv".into(), child, stdin, lines, next_id: 0 }
    }

    fn meta(&self) -> Value {
        let mut caps = json!({ "extensions": { "io.modelcontextprotocol/tasks": {} } });
        if self.elicitation {
            caps["elicitation"] = json!({ "form": {} });
        }
        json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": { "name": self.name, "version": "0" },
            "io.modelcontextprotocol/clientCapabilities": caps
        })
    }

    fn line(&mut self, method: &str, mut params: Value) -> (u64, String) {
        self.next_id += 1;
        params["_meta"] = self.meta();
        let msg = json!({ "jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params });
        (self.next_id, format!("{msg}\n"))
    }

    async fn reply(&mut self, id: u64) -> Value {
        loop {
            let line =
                tokio::time::timeout(Duration::from_secs(20), self.lines.next_line()).await.unwrap().unwrap().unwrap();
            let v: Value = serde_json::from_str(&line).unwrap();
            if v["id"] == id {
                return v;
            }
        }
    }

    async fn request(&mut self, method: &str, params: Value) -> Value {
        let (id, line) = self.line(method, params);
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.reply(id).await
    }

    async fn until_status(&mut self, id: &str, status: &str) -> Value {
        let mut reply = json!(null);
        for _ in 0..100 {
            reply = self.request("tasks/get", json!({ "taskId": id })).await;
            if reply["result"]["status"] == status {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        reply
    }
}

/// HOLE 3: `tasks/cancel` on an `a…` task that was just answered: the retried call runs with
/// a cancelled context, ssh_run_async ignores it and launches the command, while tasks/get
/// reports the task `cancelled`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adv_cancel_right_after_accept_runs_nothing_or_is_not_reported_cancelled() {
    let fleet = ask_fleet(1, 30, None);
    let mut raw = Raw::start(&fleet.config_dir());
    let mut bad = Vec::new();
    for n in 0..8 {
        let m = marker(&format!("race{n}"));
        let r = raw
            .request(
                "tools/call",
                json!({ "name": "ssh_run_async", "arguments": { "alias": "h1", "command": format!("touch {m}") } }),
            )
            .await;
        let id = r["result"]["taskId"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
        raw.until_status(&id, "input_required").await;
        // Answer and cancel in one write.
        let (uid, u) =
            raw.line("tasks/update", json!({ "taskId": id, "inputResponses": { "approval": { "action": "accept" } } }));
        let (cid, c) = raw.line("tasks/cancel", json!({ "taskId": id }));
        raw.stdin.write_all(format!("{u}{c}").as_bytes()).await.unwrap();
        let mut seen = 0;
        while seen < 2 {
            let line =
                tokio::time::timeout(Duration::from_secs(20), raw.lines.next_line()).await.unwrap().unwrap().unwrap();
            let v: Value = serde_json::from_str(&line).unwrap();
            if v["id"] == uid || v["id"] == cid {
                seen += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let g = raw.request("tasks/get", json!({ "taskId": id })).await;
        let ran = std::path::Path::new(&m).exists();
        let _ = std::fs::remove_file(&m);
        if ran && g["result"]["status"] == "cancelled" {
            bad.push(n);
        }
    }
    assert!(bad.is_empty(), "rounds {bad:?}: the a… task reports cancelled but its command ran");
    let _ = raw.child.kill().await;
}

/// HOLE 4: an `a…` task cancelled while it waits in input_required never gets a result, so
/// `McpTasks::prune` (which keeps every entry without `finished_ms`) keeps it forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adv_cancelled_waiting_tasks_are_pruned_like_finished_ones() {
    let fleet = ask_fleet(1, 30, Some(1));
    let mut raw = Raw::start(&fleet.config_dir());
    let start = |cmd: &str| json!({ "name": "ssh_run_async", "arguments": { "alias": "h1", "command": cmd } });
    let r = raw.request("tools/call", start("echo approve-me cancelled")).await;
    let cancelled = r["result"]["taskId"].as_str().unwrap().to_owned();
    raw.until_status(&cancelled, "input_required").await;
    raw.request("tasks/cancel", json!({ "taskId": cancelled })).await;
    let r = raw.request("tools/call", start("echo approve-me declined")).await;
    let declined = r["result"]["taskId"].as_str().unwrap().to_owned();
    raw.until_status(&declined, "input_required").await;
    raw.request(
        "tasks/update",
        json!({ "taskId": declined, "inputResponses": { "approval": { "action": "decline" } } }),
    )
    .await;
    raw.until_status(&declined, "completed").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let gone = |v: &Value| v["error"]["code"] == -32602;
    let d = raw.request("tasks/get", json!({ "taskId": declined })).await;
    assert!(gone(&d), "a finished task past its TTL is forgotten: {d}");
    let c = raw.request("tasks/get", json!({ "taskId": cancelled })).await;
    assert!(gone(&c), "a cancelled a… task past the TTL is still held (never pruned): {c}");
    let _ = raw.child.kill().await;
}

fn http_post(port: u16, token: &str, body: &Value) -> Value {
    let method = body["method"].as_str().unwrap_or("").to_owned();
    let name = body["params"]["name"]
        .as_str()
        .or(body["params"]["taskId"].as_str())
        .map(|n| format!("Mcp-Name: {n}\r\n"))
        .unwrap_or_default();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let body = body.to_string();
    write!(
        s,
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: {method}\r\n{name}Authorization: Bearer {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let Some(at) = out.find("{\"jsonrpc\"") else { panic!("no JSON-RPC answer: {out}") };
    serde_json::Deserializer::from_str(&out[at..]).into_iter::<Value>().next().unwrap().unwrap()
}

/// HOLE 5: over streamable HTTP every 2026-07-28 request gets a fresh `SshWarden` (the
/// service factory), so the `f…`/`a…` tasks of one request are unknown to the next:
/// tasks/get, tasks/update and tasks/cancel cannot reach them (a fan-out cannot be stopped
/// through tasks/cancel; an approval task can never be answered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adv_http_fanout_tasks_can_be_polled_and_cancelled() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let token = "agent-token-0123456789abcdef";
    let server = crate::mcp_e2e::http_server(&fleet, token);
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": { "name": "raw-http", "version": "0" },
        "io.modelcontextprotocol/clientCapabilities": { "extensions": { "io.modelcontextprotocol/tasks": {} } }
    });
    let tag = format!("{}.{}", 6000 + std::process::id() % 1000, unique_tag());
    let r = http_post(
        server.1,
        token,
        &json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": { "name": "ssh_run_on_tag", "arguments": { "target": "web", "command": format!("sleep {tag}") }, "_meta": meta } }),
    );
    let fid = r["result"]["taskId"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    for _ in 0..200 {
        if !remote_processes(&tag).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let g = http_post(
        server.1,
        token,
        &json!({ "jsonrpc": "2.0", "id": 2, "method": "tasks/get", "params": { "taskId": fid, "_meta": meta } }),
    );
    let c = http_post(
        server.1,
        token,
        &json!({ "jsonrpc": "2.0", "id": 3, "method": "tasks/cancel", "params": { "taskId": fid, "_meta": meta } }),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let left = remote_processes(&tag);
    for l in &left {
        if let Some(pid) = l.split_whitespace().next() {
            let _ = Command::new("kill").arg(pid).status();
        }
    }
    assert!(
        g.get("error").is_none() && c.get("error").is_none() && left.is_empty(),
        "f… task over HTTP: tasks/get {g}\ntasks/cancel {c}\nstill running: {left:?}"
    );
}
