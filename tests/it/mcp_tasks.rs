//! MCP tasks (SEP-2663) over raw JSON-RPC on stdio, MCP 2026-07-28 stateless requests:
//! a task-augmented tools/call is the same task the tool API sees, and tasks/cancel stops
//! the remote command.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::ssh_exec::unique_tag;
use crate::support::mcp::BIN;
use crate::support::sshd::{Fleet, FleetOptions, gone_within, remote_processes};

struct Raw {
    /// The client declared form elicitation (its user can be asked).
    elicitation: bool,
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    next_id: u64,
}

fn meta(elicitation: bool) -> Value {
    let mut caps = json!({ "extensions": { "io.modelcontextprotocol/tasks": {} } });
    if elicitation {
        caps["elicitation"] = json!({ "form": {} });
    }
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": { "name": "raw-it", "version": "0" },
        "io.modelcontextprotocol/clientCapabilities": caps
    })
}

impl Raw {
    fn start(config: &std::path::Path) -> Self {
        Self::start_with(config, &[])
    }

    fn start_with(config: &std::path::Path, extra: &[&str]) -> Self {
        let mut child = tokio::process::Command::new(BIN)
            .arg("serve")
            .arg("--config-dir")
            .arg(config)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Self { elicitation: false, child, stdin, lines, next_id: 0 }
    }

    /// Polls `tasks/get` until the task completed (at most 5 s); returns the last reply.
    async fn until_completed(&mut self, id: &str) -> Value {
        self.until_status(id, "completed").await
    }

    /// Polls `tasks/get` until the task has `status` (at most 5 s); returns the last reply.
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

    async fn request(&mut self, method: &str, mut params: Value) -> Value {
        self.next_id += 1;
        params["_meta"] = meta(self.elicitation);
        let msg = json!({ "jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params });
        self.stdin.write_all(format!("{msg}\n").as_bytes()).await.unwrap();
        loop {
            let line =
                tokio::time::timeout(Duration::from_secs(20), self.lines.next_line()).await.unwrap().unwrap().unwrap();
            let v: Value = serde_json::from_str(&line).unwrap();
            if v["id"] == self.next_id {
                return v;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_augmented_calls_share_the_task_manager_and_cancel_stops_the_command() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let mut raw = Raw::start(&fleet.config_dir());
    let tag = unique_tag();
    let marker = format!("314.{tag}");
    let r = raw
        .request(
            "tools/call",
            json!({ "name": "ssh_run", "arguments": { "alias": "h1", "command": format!("sleep {marker}") } }),
        )
        .await;
    assert_eq!(r["result"]["resultType"], "task", "{r}");
    let id = r["result"]["taskId"].as_str().unwrap().to_owned();
    for _ in 0..200 {
        if !remote_processes(&marker).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // The same id through the tool API.
    let st = raw.request("tools/call", json!({ "name": "ssh_get_task_status", "arguments": { "task_id": id } })).await;
    assert_eq!(st["result"]["structuredContent"]["state"], "running", "{st}");
    let g = raw.request("tasks/get", json!({ "taskId": id })).await;
    assert_eq!(g["result"]["status"], "working", "{g}");
    let c = raw.request("tasks/cancel", json!({ "taskId": id })).await;
    assert!(c.get("error").is_none(), "{c}");
    gone_within(&marker, Duration::from_secs(2)).unwrap_or_else(|left| panic!("tasks/cancel left {left:?}"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let g = raw.request("tasks/get", json!({ "taskId": id })).await;
    assert_eq!(g["result"]["status"], "cancelled", "{g}");

    let r = raw
        .request(
            "tools/call",
            json!({ "name": "ssh_run_async", "arguments": { "alias": "h1", "command": "echo via-task" } }),
        )
        .await;
    let id = r["result"]["taskId"].as_str().unwrap().to_owned();
    let done = raw.until_completed(&id).await;
    assert_eq!(done["result"]["result"]["structuredContent"]["stdout"], "via-task\n", "{done}");
    // A fan-out as one MCP task: an f… id whose result is the summary.
    let r = raw
        .request(
            "tools/call",
            json!({ "name": "ssh_run_on_tag", "arguments": { "target": "web", "command": "echo fan" } }),
        )
        .await;
    let fid = r["result"]["taskId"].as_str().unwrap().to_owned();
    assert!(fid.starts_with('f'), "{r}");
    let fan = raw.until_completed(&fid).await;
    assert_eq!(fan["result"]["result"]["structuredContent"]["summary"]["ok"], 1, "{fan}");
    let unknown = raw.request("tasks/get", json!({ "taskId": "nope" })).await;
    assert_eq!(unknown["error"]["code"], -32602);
    let _ = raw.child.kill().await;
}

/// Task-augmented calls meet the same approval gate as plain ones (an `ask` command is
/// served as a normal call, refused here because this client cannot ask a human), and a
/// cancelled fan-out reports `cancelled`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_augmented_calls_meet_the_approval_gate_and_fanouts_report_cancelled() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let path = fleet.path("config/policy.yml");
    let policy = std::fs::read_to_string(&path).unwrap();
    let ask = "rules:\n  - id: needs-human\n    action: ask\n    commands: [\"echo approve-me*\"]\n";
    std::fs::write(&path, policy.replacen("rules:\n", ask, 1)).unwrap();
    let mut raw = Raw::start(&fleet.config_dir());
    let r = raw
        .request(
            "tools/call",
            json!({ "name": "ssh_run", "arguments": { "alias": "h1", "command": "echo approve-me" } }),
        )
        .await;
    let text = r.to_string();
    assert!(r["result"]["resultType"] != "task" && text.contains("cannot ask a human"), "{r}");

    let tag = unique_tag();
    let marker = format!("271.{tag}");
    let r = raw
        .request(
            "tools/call",
            json!({ "name": "ssh_run_on_tag", "arguments": { "target": "web", "command": format!("sleep {marker}") } }),
        )
        .await;
    let fid = r["result"]["taskId"].as_str().unwrap().to_owned();
    for _ in 0..200 {
        if !remote_processes(&marker).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let c = raw.request("tasks/cancel", json!({ "taskId": fid })).await;
    assert!(c.get("error").is_none(), "{c}");
    gone_within(&marker, Duration::from_secs(3)).unwrap_or_else(|left| panic!("fan-out cancel left {left:?}"));
    let g = raw.request("tasks/get", json!({ "taskId": fid })).await;
    assert_eq!(g["result"]["status"], "cancelled", "{g}");
    let _ = raw.child.kill().await;
}

/// A task-augmented call that needs a human's approval moves to `input_required` with the
/// elicitation form (no required field) and takes the answer through `tasks/update`: accept
/// runs it, decline refuses it, `tasks/cancel` denies it, an answer is taken once; a
/// fan-out asks the same way. Before, the call was refused ("cannot ask a human").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_needs_approval_asks_through_input_required_and_tasks_update() {
    let fleet = Fleet::start(FleetOptions { hosts: 2, ..Default::default() });
    let path = fleet.path("config/policy.yml");
    let policy = std::fs::read_to_string(&path).unwrap();
    let ask = "rules:\n  - id: needs-human\n    action: ask\n    commands: [\"echo approve-me*\"]\n";
    std::fs::write(&path, policy.replacen("rules:\n", ask, 1)).unwrap();
    let mut raw = Raw::start(&fleet.config_dir());
    raw.elicitation = true;
    let call = |tool: &str, args: Value| json!({ "name": tool, "arguments": args });

    let r = raw.request("tools/call", call("ssh_run", json!({ "alias": "h1", "command": "echo approve-me 1" }))).await;
    assert_eq!(r["result"]["resultType"], "task", "{r}");
    let id = r["result"]["taskId"].as_str().unwrap().to_owned();
    let g = raw.until_status(&id, "input_required").await;
    let form = &g["result"]["inputRequests"]["approval"];
    assert_eq!(form["method"], "elicitation/create", "{g}");
    assert!(form["params"]["message"].as_str().unwrap().contains("echo approve-me 1"), "{g}");
    assert!(form["params"]["requestedSchema"]["required"].as_array().is_none_or(Vec::is_empty), "{g}");
    let wrong = raw.request("tasks/update", json!({ "taskId": id, "inputResponses": { "other": {} } })).await;
    assert_eq!(wrong["error"]["code"], -32602, "a key no request asked for: {wrong}");
    let u = raw
        .request("tasks/update", json!({ "taskId": id, "inputResponses": { "approval": { "action": "accept" } } }))
        .await;
    assert!(u.get("error").is_none(), "{u}");
    let done = raw.until_completed(&id).await;
    assert_eq!(done["result"]["result"]["structuredContent"]["stdout"], "approve-me 1\n", "{done}");
    let again = raw
        .request("tasks/update", json!({ "taskId": id, "inputResponses": { "approval": { "action": "accept" } } }))
        .await;
    assert_eq!(again["error"]["code"], -32602, "an answer is taken once: {again}");

    let r = raw
        .request("tools/call", call("ssh_run_async", json!({ "alias": "h1", "command": "echo approve-me 2" })))
        .await;
    let id = r["result"]["taskId"].as_str().unwrap().to_owned();
    raw.until_status(&id, "input_required").await;
    raw.request("tasks/update", json!({ "taskId": id, "inputResponses": { "approval": { "action": "decline" } } }))
        .await;
    let done = raw.until_completed(&id).await;
    assert_eq!(done["result"]["result"]["isError"], true, "{done}");
    assert!(done.to_string().contains("declined"), "{done}");

    let r = raw.request("tools/call", call("ssh_run", json!({ "alias": "h1", "command": "echo approve-me 3" }))).await;
    let id = r["result"]["taskId"].as_str().unwrap().to_owned();
    raw.until_status(&id, "input_required").await;
    raw.request("tasks/cancel", json!({ "taskId": id })).await;
    let g = raw.until_status(&id, "cancelled").await;
    assert_eq!(g["result"]["status"], "cancelled", "{g}");
    let audit = fleet.audit_once_it_has("tasks/cancel").await;
    assert!(audit.contains("tasks/cancel"), "the cancel denied the approval: {audit}");

    let r = raw
        .request("tools/call", call("ssh_run_on_tag", json!({ "target": "h[1-2]", "command": "echo approve-me 4" })))
        .await;
    let fid = r["result"]["taskId"].as_str().unwrap().to_owned();
    let g = raw.until_status(&fid, "input_required").await;
    assert!(g.to_string().contains("h[1-2]"), "one approval for the fan-out's hosts: {g}");
    raw.request("tasks/update", json!({ "taskId": fid, "inputResponses": { "approval": { "action": "accept" } } }))
        .await;
    let fan = raw.until_completed(&fid).await;
    assert_eq!(fan["result"]["result"]["structuredContent"]["summary"]["ok"], 2, "{fan}");
    let _ = raw.child.kill().await;
}

/// `tools/list` costs a model context on every turn: all tools fit in 16 KiB of compact JSON;
/// `serve --tools read-only` lists and serves only the read-only tools, and a hidden tool is
/// unknown on every path (plain and task-augmented).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_definitions_are_compact_and_serve_tools_hides_the_rest() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let mut raw = Raw::start(&fleet.config_dir());
    let all = raw.request("tools/list", json!({})).await;
    let size = serde_json::to_string(&all["result"]).unwrap().len();
    let names = |v: &Value| -> Vec<String> {
        v["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
    };
    assert!(names(&all).len() >= 21 && size <= 16 * 1024, "{} tools in {size} bytes", names(&all).len());
    let _ = raw.child.kill().await;

    let mut raw = Raw::start_with(&fleet.config_dir(), &["--tools", "read-only"]);
    let listed = names(&raw.request("tools/list", json!({})).await);
    assert!(
        listed.contains(&"ssh_plan".to_owned()) && !listed.iter().any(|n| n == "ssh_run" || n == "ssh_upload"),
        "{listed:?}"
    );
    let call = json!({ "name": "ssh_run", "arguments": { "alias": "h1", "command": "uptime" } });
    let r = raw.request("tools/call", call.clone()).await;
    assert!(r.get("error").is_some() || r["result"]["isError"] == true, "a hidden tool is refused: {r}");
    assert!(r["result"]["resultType"] != "task", "not started as a task either: {r}");
    let _ = raw.child.kill().await;

    let bad = std::process::Command::new(BIN)
        .args(["serve", "--tools", "ssh_plan,ssh_rm", "--config-dir"])
        .arg(fleet.config_dir())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("\"ssh_rm\" is not a tool"));
}
