//! `POST /rpc`: plain JSON-RPC 2.0 over raw HTTP against the built binary: single calls,
//! batches, notifications, every error code, the bearer token and the body cap, and a
//! runbook started and polled the way a shell script would (curl-style).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::mcp_e2e::http_server;
use crate::support::sshd::{Fleet, FleetOptions};

const TOKEN: &str = "rpc-token-0123456789abcdef";

/// (status code, body) of one POST.
fn post(port: u16, token: Option<&str>, body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "POST /rpc HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n", body.len()).unwrap();
    let _ = s.write_all(body.as_bytes());
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

fn rpc(port: u16, body: Value) -> Value {
    let (status, text) = post(port, Some(TOKEN), &body.to_string());
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn plain_json_rpc_for_scripts() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    std::fs::create_dir_all(fleet.path("runbooks")).unwrap();
    std::fs::write(
        fleet.path("runbooks/hello.yml"),
        "steps:\n  - id: hi\n    target: web\n    command: \"sleep 0.3; echo from-runbook\"\n",
    )
    .unwrap();
    let server = http_server(&fleet, TOKEN);
    let port = server.1;

    let r = rpc(
        port,
        json!({ "jsonrpc": "2.0", "id": 1, "method": "ssh_run", "params": { "alias": "h1", "command": "echo over-rpc" } }),
    );
    assert_eq!((r["id"].as_i64(), r["result"]["stdout"].as_str()), (Some(1), Some("over-rpc\n")), "{r}");

    let r = rpc(
        port,
        json!({ "jsonrpc": "2.0", "id": "d", "method": "ssh_run", "params": { "alias": "h1", "command": "reboot now" } }),
    );
    assert_eq!(r["error"]["code"], -32000, "{r}");
    assert_eq!(
        (r["error"]["data"]["kind"].as_str(), r["error"]["data"]["hint"].is_string()),
        (Some("policy_denied"), true),
        "{r}"
    );

    let r = rpc(port, json!({ "jsonrpc": "2.0", "id": 2, "method": "no_such_tool" }));
    assert_eq!(r["error"]["code"], -32601, "{r}");
    let r = rpc(port, json!({ "jsonrpc": "2.0", "id": 3, "method": "ssh_run", "params": { "alias": "h1" } }));
    assert_eq!(r["error"]["code"], -32602, "missing command: {r}");
    let r = rpc(port, json!({ "jsonrpc": "2.0", "id": 4, "method": "ssh_run", "params": [1] }));
    assert_eq!(r["error"]["code"], -32602, "{r}");
    let r = rpc(port, json!({ "id": 5, "method": "ssh_ping" }));
    assert_eq!(r["error"]["code"], -32600, "{r}");
    let (status, text) = post(port, Some(TOKEN), "{not json");
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["error"]["code"], -32700);

    let batch = rpc(
        port,
        json!([
            { "jsonrpc": "2.0", "id": 10, "method": "ssh_ping" },
            { "jsonrpc": "2.0", "method": "ssh_ping" },
            { "jsonrpc": "2.0", "id": 11, "method": "ssh_list_hosts", "params": { "pattern": "web" } },
        ]),
    );
    let ids: Vec<i64> = batch.as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 2, "the notification gets no answer: {batch}");
    assert!(ids.contains(&10) && ids.contains(&11));
    let (status, text) = post(port, Some(TOKEN), r#"{"jsonrpc":"2.0","method":"ssh_ping"}"#);
    assert_eq!((status, text.as_str()), (204, ""), "a notification alone gets no body");

    assert_eq!(post(port, None, r#"{"jsonrpc":"2.0","id":1,"method":"ssh_ping"}"#).0, 401);
    assert_eq!(post(port, Some("wrong-token-0123456789"), r#"{"jsonrpc":"2.0","id":1,"method":"ssh_ping"}"#).0, 401);
    let huge = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"ssh_ping","params":{{"x":"{}"}}}}"#, "a".repeat(2 << 20));
    assert_eq!(post(port, Some(TOKEN), &huge).0, 413);

    // A runbook started and polled the way docs/runbooks.md shows with curl.
    let started =
        rpc(port, json!({ "jsonrpc": "2.0", "id": 20, "method": "ssh_run_runbook", "params": { "name": "hello" } }));
    let task_id = started["result"]["task_id"].as_str().unwrap_or_else(|| panic!("{started}")).to_owned();
    let start = Instant::now();
    loop {
        let s = rpc(
            port,
            json!({ "jsonrpc": "2.0", "id": 21, "method": "ssh_get_task_status", "params": { "task_id": task_id } }),
        );
        if s["result"]["state"] == "completed" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "{s}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = rpc(
        port,
        json!({ "jsonrpc": "2.0", "id": 22, "method": "ssh_get_task_result", "params": { "task_id": task_id } }),
    );
    assert_eq!(r["result"]["runbook"]["outcome"], "ok", "{r}");
    assert_eq!(r["result"]["runbook"]["steps"][0]["hosts"][0]["stdout"], "from-runbook\n", "{r}");
    let audit = std::fs::read_to_string(fleet.path("audit.jsonl")).unwrap();
    assert!(audit.contains("sshwarden-rpc"), "/rpc calls are audited like /mcp calls");
}
