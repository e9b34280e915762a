//! The approval notification hook (`approvals.notify` in policy.yml): a local receiver on
//! 127.0.0.1 that fails the first attempt (slowly, then 500) and accepts the retry; the JSON
//! body names the request and links the page, the configured header arrives, the request was
//! pending (not blocked) while the hook was still failing, the header's value is never
//! logged, and the waiting `ssh_run` runs once approved. Also the `approvals:` block's
//! validation: file:line:col errors for a bad URL or header, unknown keys reported.
//!
//! Never sends anything off the loopback interface.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::approvals::ask_fleet;
use crate::mcp_e2e::http_server_logging;
use crate::support::cfg::{CREDS, CfgDir, servers};
use crate::support::mcp::{self, call};

const TOKEN: &str = "agent-token-0123456789abcdef";
const APPROVER: &str = "approver-token-0123456789abcdef";
const BRIDGE_SECRET: &str = "bridge-secret-do-not-log-42";

type Seen = Arc<Mutex<Vec<(HeaderMap, Value)>>>;

/// A receiver that answers the first POST after a pause with 500 and every later one with 200.
async fn receiver() -> (u16, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, axum::Json(body): axum::Json<Value>| {
            let record = record.clone();
            async move {
                let first = {
                    let mut s = record.lock().unwrap();
                    s.push((headers, body));
                    s.len() == 1
                };
                if first {
                    // Slow and failing: the approval request must not wait for this.
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_hook_posts_each_new_request_with_retries_and_never_blocks_it() {
    let (hook_port, seen) = receiver().await;
    let fleet = ask_fleet();
    let policy = fleet.path("config/policy.yml");
    let text = std::fs::read_to_string(&policy)
        .unwrap()
        .replace("approval_timeout_seconds: 3", "approval_timeout_seconds: 60");
    let block = format!(
        "approvals:\n  page_url: https://gw.example/approvals/ui\n  notify:\n    url: http://127.0.0.1:{hook_port}/hook\n    headers:\n      X-Bridge-Token: {BRIDGE_SECRET}\n"
    );
    std::fs::write(&policy, format!("{text}{block}")).unwrap();
    let approver = fleet.path("approver");
    std::fs::write(&approver, APPROVER).unwrap();
    let log = fleet.path("serve.log");
    let server = http_server_logging(&fleet, TOKEN, &["--approver-token-file", approver.to_str().unwrap()], Some(&log));
    let base = format!("http://127.0.0.1:{}", server.1);
    let (client, _) = mcp::http(&format!("{base}/mcp"), TOKEN).await.unwrap();
    let client = Arc::new(client);
    let c = client.clone();
    let run =
        tokio::spawn(
            async move { call(&c, "ssh_run", json!({ "alias": "h1", "command": "echo approve-me hook" })).await },
        );

    let http = reqwest::Client::new();
    let mut id = None;
    for _ in 0..400 {
        let list: Value =
            http.get(format!("{base}/approvals")).bearer_auth(APPROVER).send().await.unwrap().json().await.unwrap();
        if let Some(found) = list["approvals"][0]["id"].as_str() {
            id = Some(found.to_owned());
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let id = id.expect("the request is pending");
    assert!(seen.lock().unwrap().len() <= 1, "the request was pending before the hook's retry: not blocked by it");

    for _ in 0..300 {
        if seen.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "one failed attempt, one retry that was accepted, nothing more");
        for (headers, body) in seen.iter() {
            assert_eq!(headers.get("x-bridge-token").unwrap(), BRIDGE_SECRET);
            assert!(headers.get("content-type").unwrap().to_str().unwrap().starts_with("application/json"));
            assert_eq!(body["event"], "approval_requested", "{body}");
            assert_eq!(body["id"], id.as_str(), "{body}");
            assert!(body["hosts"] == "h1" && body["host_count"] == 1, "{body}");
            assert_eq!(body["what"], "echo approve-me hook", "{body}");
            assert!(body["rule"].as_str().is_some_and(|r| r.contains("needs-human")), "{body}");
            assert!(body["reason"].as_str().is_some_and(|r| !r.is_empty()), "{body}");
            assert_eq!(body["link"], "https://gw.example/approvals/ui", "{body}");
        }
    }

    let decided = http.post(format!("{base}/approvals/{id}/approve")).bearer_auth(APPROVER).send().await.unwrap();
    assert_eq!(decided.status(), 200);
    let (err, result) = tokio::time::timeout(Duration::from_secs(60), run).await.unwrap().unwrap();
    assert!(!err && result["stdout"] == "approve-me hook\n", "{result}");
    let list: Value =
        http.get(format!("{base}/approvals")).bearer_auth(APPROVER).send().await.unwrap().json().await.unwrap();
    let last = &list["decided"][0];
    assert!(last["id"] == id.as_str() && last["decision"] == "approved" && last["by"] == "approver token", "{list}");
    assert!(last["decided_at_ms"].is_u64(), "{list}");

    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("approval notification failed") && logged.contains("500"), "{logged}");
    assert!(!logged.contains(BRIDGE_SECRET), "a header value was logged: {logged}");
    drop(server);
    if let Ok(client) = Arc::try_unwrap(client) {
        mcp::close(client).await;
    }
}

#[test]
fn approvals_block_errors_name_file_line_column_and_key() {
    let hosts = servers(&[("a", &[])]);
    let bad = "rules: []\napprovals:\n  page_url: /relative\n  notify:\n    url: ftp://127.0.0.1/hook\n    headers:\n      Bad Name: x\n      Authorization: \"line\\nbreak\"\n";
    let err = CfgDir::new(&hosts, CREDS, bad).load().unwrap_err().to_string();
    assert!(err.contains("policy.yml:3:3: approvals.page_url:"), "{err}");
    assert!(err.contains("policy.yml:5:5: approvals.notify.url: \"ftp://127.0.0.1/hook\" is not an http"), "{err}");
    assert!(err.contains("policy.yml:7:7: approvals.notify.headers.Bad Name:"), "{err}");
    assert!(err.contains("policy.yml:8:7: approvals.notify.headers.Authorization:"), "{err}");
    assert!(!err.contains("break"), "a header value never shows in a diagnostic: {err}");

    let typo = "rules: []\napprovals:\n  notfy:\n    url: http://127.0.0.1:9/hook\n";
    let err = CfgDir::new(&hosts, CREDS, typo).load().unwrap_err().to_string();
    assert!(err.contains("policy.yml:3:") && err.contains("notfy"), "{err}");

    let tls = "rules: []\napprovals:\n  notify:\n    url: https://chat.example/hook\n";
    assert!(CfgDir::new(&hosts, CREDS, tls).load().is_ok(), "an https:// receiver is accepted");

    let good = "rules: []\napprovals:\n  page_url: https://gw.example/approvals/ui\n  notify:\n    url: http://10.0.0.9:8080/hook\n    headers: {Authorization: Bearer x}\n";
    let cfg = CfgDir::new(&hosts, CREDS, good).load().unwrap();
    let notify = cfg.policy.approvals.notify.as_ref().unwrap();
    assert_eq!(notify.url, "http://10.0.0.9:8080/hook");
    assert_eq!(cfg.policy.approvals.page_url.as_deref(), Some("https://gw.example/approvals/ui"));
    assert!(!format!("{cfg:?}").contains("Bearer x"), "header values are secrets in Debug output");
}

/// An `https://` receiver: the hook speaks TLS and verifies the receiver's certificate
/// against the CA store (here `SSL_CERT_FILE`, a throwaway CA the receiver's certificate for
/// 127.0.0.1 comes from).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_hook_reaches_an_https_receiver_it_verifies() {
    let fleet = ask_fleet();
    std::fs::create_dir_all(fleet.path("tls")).unwrap();
    let tls = crate::support::rsyslog::tls_files(&fleet.path("tls"));
    let received = fleet.path("received.jsonl");
    let script = "import http.server, ssl, sys\n\
        class H(http.server.BaseHTTPRequestHandler):\n\
        \x20   def do_POST(self):\n\
        \x20       body = self.rfile.read(int(self.headers.get('content-length', 0)))\n\
        \x20       open(sys.argv[3], 'ab').write(body + b'\\n')\n\
        \x20       self.send_response(200); self.end_headers()\n\
        \x20   def log_message(self, *a): pass\n\
        s = http.server.HTTPServer(('127.0.0.1', 0), H)\n\
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); c.load_cert_chain(sys.argv[1], sys.argv[2])\n\
        s.socket = c.wrap_socket(s.socket, server_side=True)\n\
        print(s.server_address[1], flush=True)\n\
        s.serve_forever()\n";
    let mut receiver = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&tls.cert)
        .arg(&tls.key)
        .arg(&received)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(receiver.stdout.take().unwrap()), &mut line).unwrap();
    let hook_port: u16 = line.trim().parse().unwrap();
    let policy = fleet.path("config/policy.yml");
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(&policy, format!("{text}approvals:\n  notify:\n    url: https://127.0.0.1:{hook_port}/hook\n"))
        .unwrap();
    std::fs::write(fleet.path("approver"), APPROVER).unwrap();
    std::fs::write(fleet.path("token"), TOKEN).unwrap();
    // Untrusted first (the system store does not know the throwaway CA), then trusted.
    for trusted in [false, true] {
        let port = crate::mcp_e2e::free_port();
        let mut command = std::process::Command::new(crate::support::mcp::BIN);
        command
            .args(["serve", "--http", &format!("127.0.0.1:{port}"), "--token-file"])
            .arg(fleet.path("token"))
            .arg("--approver-token-file")
            .arg(fleet.path("approver"))
            .arg("--config-dir")
            .arg(fleet.config_dir())
            .env("SSHWARDEN_LOG", "sshwarden=error");
        if trusted {
            command.env("SSL_CERT_FILE", &tls.ca);
        }
        let mut server = command.spawn().unwrap();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let (client, _) = mcp::http(&format!("http://127.0.0.1:{port}/mcp"), TOKEN).await.unwrap();
        // Nobody approves: the call waits out its 3 s and is denied; the hook has tried by then.
        let what = format!("echo approve-me trusted={trusted}");
        let (err, _) = call(&client, "ssh_run", json!({ "alias": "h1", "command": what })).await;
        assert!(err);
        mcp::close(client).await;
        let _ = server.kill();
        let _ = server.wait();
        let posted = std::fs::read_to_string(&received).unwrap_or_default();
        assert_eq!(posted.contains(&format!("\"what\":\"{what}\"")), trusted, "trusted={trusted}: {posted:?}");
    }
    let _ = receiver.kill();
    let _ = receiver.wait();
}
