//! MCP end to end: the built binary, a real rmcp client, real sshd. stdio and HTTP.

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::{Value, json};

use crate::ssh_exec::unique_tag;
use crate::support::mcp::{self, BIN, call};
use crate::support::sshd::{Fleet, FleetOptions, gone_within, remote_processes};

const TOOLS: [&str; 16] = [
    "ssh_ping",
    "ssh_list_hosts",
    "ssh_describe_host",
    "ssh_plan",
    "ssh_run",
    "ssh_run_on_tag",
    "ssh_run_async",
    "ssh_get_task_status",
    "ssh_get_task_result",
    "ssh_get_task_output",
    "ssh_cancel_async_task",
    "ssh_cancel",
    "ssh_list_tasks",
    "ssh_ack_task",
    "ssh_preflight",
    "ssh_reload_config",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_every_tool_progress_paging_cancel_reload() {
    let fleet = Fleet::start(FleetOptions::default());
    let (client, rec) = mcp::stdio(&fleet.config_dir()).await;

    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for t in TOOLS {
        assert!(names.contains(&t), "missing tool {t}: {names:?}");
    }
    let run = tools.iter().find(|t| t.name == "ssh_run").unwrap();
    let schema = Value::Object((*run.input_schema).clone());
    assert_eq!(schema["required"], json!(["alias", "command"]), "{schema}");
    assert!(run.output_schema.is_some() && run.annotations.as_ref().unwrap().destructive_hint == Some(true));

    let (err, ping) = call(&client, "ssh_ping", json!({})).await;
    assert!(!err && ping["status"] == "pong" && ping["config_hash"].as_str().unwrap().len() == 64, "{ping}");
    assert!(
        ping["memory"]["rss_bytes"].as_u64().unwrap() > 1 << 20 && ping["memory"]["pooled_connections"].is_u64(),
        "{ping}"
    );
    let (_, hosts) = call(&client, "ssh_list_hosts", json!({ "pattern": "web:&prod" })).await;
    assert_eq!(hosts["hosts"][0]["alias"], "h1");
    assert!(!hosts.to_string().contains("id_ed25519") && !hosts.to_string().contains("swtest"));
    let (_, d) = call(&client, "ssh_describe_host", json!({ "alias": "h2" })).await;
    assert_eq!(d["capabilities"]["host_key_known"], true, "{d}");

    let (err, plan) = call(&client, "ssh_plan", json!({ "target": "web", "command": "reboot now" })).await;
    assert!(!err && plan["groups"][0]["allowed"] == false && plan["plan_hash"].as_str().unwrap().len() == 64, "{plan}");
    let (err, denied) = call(&client, "ssh_run", json!({ "alias": "h1", "command": "reboot now" })).await;
    assert!(
        err && denied["kind"] == "policy_denied"
            && denied["rule"]["id"] == "no-reboot"
            && denied["hint"].as_str().is_some(),
        "{denied}"
    );
    let (err, unknown) = call(&client, "ssh_run", json!({ "alias": "nope", "command": "true" })).await;
    assert!(err && unknown["kind"] == "unknown_host", "{unknown}");

    // A quiet command still gets progress at least every task_progress_interval (1 s).
    rec.progress.lock().unwrap().clear();
    let (err, r) = call(&client, "ssh_run", json!({ "alias": "h1", "command": "sleep 2.5; echo done" })).await;
    assert!(!err && r["exit_code"] == 0 && r["stdout"] == "done\n", "{r}");
    let seen = rec.progress.lock().unwrap().len();
    assert!(seen >= 3, "only {seen} progress notifications");

    // Inline output is head+tail within max_inline_output_bytes (16 KiB), cut on characters.
    let (err, big) =
        call(&client, "ssh_run", json!({ "alias": "h1", "command": "for i in $(seq 1 3000); do echo \"€ $i\"; done" }))
            .await;
    let inline = big["stdout"].as_str().unwrap();
    assert!(
        !err && big["truncated"] == true && big["stdout_bytes"] == 3000 * 6 + (3000 - 9) + (3000 - 99) + (3000 - 999),
        "{big}"
    );
    assert!(inline.starts_with("€ 1\n€ 2\n") && inline.ends_with("€ 3000\n") && inline.contains("bytes not shown"));
    assert!(inline.len() <= 16 * 1024 + 100 && !inline.contains('\u{FFFD}'), "{} bytes", inline.len());
    let (err, fan) =
        call(&client, "ssh_run_on_tag", json!({ "tag": "web", "command": "hostname", "detail": "hosts" })).await;
    assert!(!err && fan["summary"]["ok"] == 2 && fan["results"][1]["alias"] == "h2", "{fan}");
    assert!(rec.progress.lock().unwrap().iter().any(|p| p.total == Some(2.0)));

    // Async: page output while it runs, then cancel and see the remote process gone.
    let tag = unique_tag();
    let (_, started) = call(
        &client,
        "ssh_run_async",
        json!({ "alias": "h2", "command": format!("for i in 1 2 3; do echo line $i; done; sleep 310.{tag}") }),
    )
    .await;
    let id = started["task_id"].as_str().unwrap().to_owned();
    assert_eq!(started["ttl_seconds"], 300);
    // The three lines may arrive in separate channel packets: wait for all of them before paging.
    for _ in 0..100 {
        let all = call(&client, "ssh_get_task_output", json!({ "task_id": id, "stream": "stdout" })).await.1;
        if all["data"] == "line 1\nline 2\nline 3\n" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let page = call(&client, "ssh_get_task_output", json!({ "task_id": id, "stream": "stdout", "limit": 7 })).await.1;
    assert_eq!(
        (page["data"].as_str(), page["next_offset"].as_u64(), page["eof"].as_bool(), page["status"].as_str()),
        (Some("line 1\n"), Some(7), Some(false), Some("running")),
        "{page}"
    );
    let (_, next) =
        call(&client, "ssh_get_task_output", json!({ "task_id": id, "offset": 7, "stream": "stdout" })).await;
    assert_eq!(next["data"], "line 2\nline 3\n");
    let (_, tail) =
        call(&client, "ssh_get_task_output", json!({ "task_id": id, "tail_lines": 1, "stream": "stdout" })).await;
    assert_eq!(tail["data"], "line 3\n");
    let (err, still) = call(&client, "ssh_get_task_result", json!({ "task_id": id })).await;
    assert!(err && still["kind"] == "still_running");
    let uri = format!("ssh://task/{id}");
    #[allow(deprecated)]
    client.subscribe(rmcp::model::SubscribeRequestParams::new(uri.clone())).await.unwrap();
    let (_, c) = call(&client, "ssh_cancel_async_task", json!({ "task_id": id })).await;
    assert_eq!(c["cancelled"], true);
    gone_within(&format!("310.{tag}"), Duration::from_secs(2)).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, st) = call(&client, "ssh_get_task_status", json!({ "task_id": id })).await;
    assert_eq!(st["state"], "cancelled", "{st}");
    for _ in 0..60 {
        if rec.updated.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let updates = rec.updated.lock().unwrap().clone();
    assert!(updates.iter().filter(|u| **u == uri).count() >= 2, "resource updates for {uri}: {updates:?}");
    let (_, list) = call(&client, "ssh_list_tasks", json!({ "state": "cancelled" })).await;
    assert_eq!(list["tasks"].as_array().unwrap().len(), 1);
    let (err, _) = call(&client, "ssh_ack_task", json!({ "task_id": id })).await;
    assert!(!err);
    let (err, gone) = call(&client, "ssh_get_task_status", json!({ "task_id": id })).await;
    assert!(err && gone["kind"] == "expired", "{gone}");
    let (err, bad) = call(&client, "ssh_get_task_status", json!({ "task_id": "../etc" })).await;
    assert!(err && bad["kind"] == "invalid_input");
    let (err, bad) = call(&client, "ssh_get_task_output", json!({ "task_id": id, "limit": 10_000_000 })).await;
    assert!(err && bad["kind"] == "invalid_input", "{bad}");
    let (err, bad) = call(&client, "ssh_run", json!({ "alias": "h1", "command": "x".repeat(10_001) })).await;
    assert!(
        err && bad["kind"] == "invalid_input" && bad["message"].as_str().unwrap().contains("limit is 10000"),
        "{bad}"
    );
    let (err, bad) = call(&client, "ssh_run_on_tag", json!({ "target": "web:&", "command": "true" })).await;
    assert!(err && bad["kind"] == "invalid_input", "{bad}");

    let (_, pf) = call(&client, "ssh_preflight", json!({ "target": "all" })).await;
    assert_eq!(pf["ready"], 7 - 3, "{pf}");

    // Reload with a broken file keeps the old config and lists every error.
    let good = std::fs::read_to_string(fleet.path("config/policy.yml")).unwrap();
    std::fs::write(fleet.path("config/policy.yml"), format!("{good}\nbogus_key: 1\n")).unwrap();
    let (err, rl) = call(&client, "ssh_reload_config", json!({})).await;
    assert!(err && rl["kind"] == "config_error" && rl["errors"][0].as_str().unwrap().contains("bogus_key"), "{rl}");
    assert_eq!(rl["config_hash"], ping["config_hash"]);
    let (err, r) = call(&client, "ssh_run", json!({ "alias": "h1", "command": "echo still" })).await;
    assert!(!err && r["stdout"] == "still\n");
    std::fs::write(fleet.path("config/policy.yml"), good.replace("reboot*", "reboot*\", \"shutdown*")).unwrap();
    let (err, rl) = call(&client, "ssh_reload_config", json!({})).await;
    assert!(!err && rl["changed"] == true, "{rl}");

    let res =
        client.read_resource(rmcp::model::ReadResourceRequestParams::new("ssh://host/h1/capabilities")).await.unwrap();
    assert!(format!("{res:?}").contains("policy_probes"));
    let prompts = client.list_all_prompts().await.unwrap();
    assert_eq!(prompts.len(), 6);
    mcp::close(client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_cancel_notification_stops_the_remote_command() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let (client, _rec) = mcp::stdio(&fleet.config_dir()).await;
    let tag = unique_tag();
    let marker = format!("311.{tag}");
    {
        let request = client
            .call_tool(mcp::params("ssh_run", json!({ "alias": "h1", "command": format!("sleep {marker} | cat") })));
        tokio::pin!(request);
        let appeared = async {
            while remote_processes(&marker).is_empty() {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        };
        tokio::select! {
            r = &mut request => panic!("the call ended before it was cancelled: {r:?}"),
            _ = tokio::time::timeout(Duration::from_secs(10), appeared) => {}
        }
        assert!(!remote_processes(&marker).is_empty(), "remote command never started");
        // Leaving this scope drops the in-flight request: rmcp sends notifications/cancelled.
    }
    gone_within(&marker, Duration::from_secs(3))
        .unwrap_or_else(|left| panic!("remote command survived the cancel: {left:?}"));
    mcp::close(client).await;
}

fn raw_http(port: u16, auth: Option<&str>) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let auth = auth.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.lines().next().unwrap_or_default().to_owned()
}

pub struct Server(pub std::process::Child, pub u16);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn http_server(fleet: &Fleet, token: &str) -> Server {
    http_server_with(fleet, token, &[])
}

/// `http_server` with more `serve` arguments (e.g. `--approver-token-file`).
pub fn http_server_with(fleet: &Fleet, token: &str, extra: &[&str]) -> Server {
    http_server_logging(fleet, token, extra, None)
}

/// `http_server_with`, with INFO logs written to `log` when given (WARN to stderr otherwise).
pub fn http_server_logging(fleet: &Fleet, token: &str, extra: &[&str], log: Option<&std::path::Path>) -> Server {
    http_server_at(fleet, free_port(), token, extra, log)
}

/// A port the kernel just handed out and nobody else holds (released right before use).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `http_server_logging` on a port chosen beforehand (a config that names its own URL).
pub fn http_server_at(fleet: &Fleet, port: u16, token: &str, extra: &[&str], log: Option<&std::path::Path>) -> Server {
    std::fs::write(fleet.path("token"), token).unwrap();
    let mut command = std::process::Command::new(BIN);
    command
        .args(["serve", "--http", &format!("127.0.0.1:{port}"), "--token-file"])
        .arg(fleet.path("token"))
        .arg("--config-dir")
        .arg(fleet.config_dir())
        .args(extra)
        .env("SSHWARDEN_LOG", if log.is_some() { "sshwarden=info" } else { "sshwarden=warn" });
    if let Some(log) = log {
        command.stderr(std::fs::File::create(log).unwrap());
    }
    let child = command.spawn().unwrap();
    let mut server = Server(child, port);
    for _ in 0..200 {
        assert!(server.0.try_wait().unwrap().is_none(), "HTTP server on {port} exited at start");
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return server;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("HTTP server did not start on {port}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_requires_the_token_and_serves_tools() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let token = "it-token-0123456789abcdef";
    let server = http_server(&fleet, token);
    assert!(raw_http(server.1, None).contains("401"), "no token must be refused");
    assert!(raw_http(server.1, Some("wrong-token-0123456789")).contains("401"));
    assert!(mcp::http(&format!("http://127.0.0.1:{}/mcp", server.1), "wrong-token-0123456789").await.is_err());
    let (client, rec) = mcp::http(&format!("http://127.0.0.1:{}/mcp", server.1), token).await.unwrap();
    let (err, r) = call(&client, "ssh_run", json!({ "alias": "h1", "command": "sleep 1.2; whoami" })).await;
    assert!(!err && r["stdout"] == "swtest\n", "{r}");
    assert!(!rec.progress.lock().unwrap().is_empty());
    mcp::close(client).await;
    let audit = std::fs::read_to_string(fleet.path("audit.jsonl")).unwrap();
    assert!(audit.contains("\"wrong bearer token\"") && audit.contains("\"missing bearer token\""));
    assert!(!audit.contains("wrong-token-0123456789") && !audit.contains(token), "tokens must never be logged");
}

#[test]
fn serve_http_refuses_to_start_without_a_token() {
    let out = std::process::Command::new(BIN)
        .args(["serve", "--http", "127.0.0.1:1", "--config-dir", "config"])
        .env_remove("SSHWARDEN_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a bearer token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_output_is_base64_and_sigterm_stops_the_server_gracefully() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let (client, _) = mcp::stdio(&fleet.config_dir()).await;
    let (_, r) = call(
        &client,
        "ssh_run_async",
        json!({ "alias": "h1", "command": "printf 'ok\\377\\376\\000'", "wait_seconds": 5 }),
    )
    .await;
    let id = r["task_id"].as_str().unwrap();
    let (_, page) = call(&client, "ssh_get_task_output", json!({ "task_id": id, "stream": "stdout" })).await;
    assert_eq!((page["encoding"].as_str(), page["data"].as_str()), (Some("base64"), Some("b2v//gA=")), "{page}");
    mcp::close(client).await;

    let server = http_server(&fleet, "sigterm-token-0123456789");
    let pid = server.0.id().to_string();
    let t0 = std::time::Instant::now();
    std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let mut server = server;
    let status = loop {
        if let Some(s) = server.0.try_wait().unwrap() {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(15), "server ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn call_prints_json_and_exits_0_ok_3_denied_4_failed() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let call = |args: &[&str]| {
        let out = std::process::Command::new(BIN)
            .arg("call")
            .arg("--config-dir")
            .arg(fleet.config_dir())
            .args(args)
            .output()
            .unwrap();
        (out.status.code().unwrap_or(-1), serde_json::from_slice::<Value>(&out.stdout).unwrap_or(Value::Null))
    };
    assert_eq!(call(&["ssh_ping"]).0, 0);
    let (code, v) = call(&["ssh_run", "alias=h1", "command=echo hi", "timeout_seconds=5"]);
    assert_eq!((code, v["stdout"].as_str()), (0, Some("hi\n")), "{v}");
    assert_eq!(call(&["ssh_run", "alias=h1", "command=exit 3"]).0, 4);
    assert_eq!(call(&["ssh_run", "alias=h1", "command=reboot"]).0, 3);
    assert_eq!(call(&["ssh_run", "alias=nope", "command=true"]).0, 4);
    assert_eq!(call(&["ssh_run_async", "alias=h1", "command=true", "wait_seconds=5"]).0, 0);
    assert_eq!(call(&["--json", r#"{"target":"web","command":"true"}"#, "ssh_run_on_tag"]).0, 0);
    assert_eq!(call(&["ssh_run_on_tag", "target=web", "command=reboot"]).0, 3);
    assert_eq!(call(&["ssh_run", "alias=h1", "comand=true"]).0, 1, "unknown parameter is a usage error");
    assert_eq!(call(&["ssh_nope"]).0, 1);
}

/// Raw `GET path` over HTTP/1.1: the status line and the body.
fn http_get(port: u16, path: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.lines().next().unwrap_or_default().to_owned();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}

/// `/healthz` and `/readyz` need no token; an unknown path is a 404 naming the served paths,
/// not a 401.
#[test]
fn unknown_paths_are_404_with_the_served_paths_and_healthz_is_open() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let approver = fleet.path("approver-token");
    std::fs::write(&approver, "approver-secret-0123456789abcdef").unwrap();
    let server = http_server_with(
        &fleet,
        "agent-secret-0123456789abcdef",
        &["--approver-token-file", approver.to_str().unwrap()],
    );
    let (status, body) = http_get(server.1, "/healthz");
    assert!(status.contains(" 200 ") && body.contains("ok"), "{status} {body}");
    for path in ["/", "/metrics", "/nope"] {
        let (status, body) = http_get(server.1, path);
        assert!(
            status.contains(" 404 ") && body.contains("/mcp") && body.contains("/approvals"),
            "{path}: {status} {body}"
        );
    }
    let (status, _) = http_get(server.1, "/approvals");
    assert!(status.contains(" 401 "), "/approvals still needs the approver token: {status}");

    // Ready while the audit file can take records; 503 naming the check once it cannot.
    let (status, body) = http_get(server.1, "/readyz");
    assert!(status.contains(" 200 ") && body.contains("\"ready\":true"), "{status} {body}");
    let audit = fleet.path("audit.jsonl");
    let kept = fleet.path("audit.jsonl.kept");
    std::fs::rename(&audit, &kept).unwrap();
    std::fs::create_dir(&audit).unwrap();
    let (status, body) = http_get(server.1, "/readyz");
    std::fs::remove_dir(&audit).unwrap();
    std::fs::rename(&kept, &audit).unwrap();
    assert!(status.contains(" 503 ") && body.contains("\"audit\"") && body.contains("not writable"), "{status} {body}");
}

/// `ssh_list_tasks`: `started_at` is RFC 3339 text in every row, finished or running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_tasks_carry_started_at_as_rfc3339() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let (client, _) = mcp::stdio(&fleet.config_dir()).await;
    let (err, r) = call(&client, "ssh_run", json!({ "alias": "h1", "command": "echo listed" })).await;
    assert!(!err, "{r}");
    let (err, r) = call(&client, "ssh_run_async", json!({ "alias": "h1", "command": "sleep 0.5" })).await;
    assert!(!err, "{r}");
    let (_, list) = call(&client, "ssh_list_tasks", json!({})).await;
    let rows = list["tasks"].as_array().unwrap();
    assert!(rows.len() >= 2, "{list}");
    for row in rows {
        let at = row["started_at"].as_str().unwrap_or_default();
        assert!(at.len() >= 20 && at.contains('T'), "started_at must be RFC 3339 text: {row}");
    }
    mcp::close(client).await;
}
