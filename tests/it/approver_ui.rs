//! The approver page (`/approvals/ui`) end to end: a real sshd fleet, the real
//! `sshwarden serve --http --approver-token-file` binary, a real MCP client calling `ssh_run`
//! on an `ask` rule, and the page driven in a real headless Chromium through Selenium
//! (tests/interop/approver_ui.py, in a virtualenv under target/interop-venvs): a wrong token
//! shows an error, a pending request appears with its details, approve (confirmed) lets the
//! waiting `ssh_run` finish, deny (confirmed) refuses it. Also, with plain HTTP requests: the
//! page's security headers, and the data routes' token and Origin/Host checks.
//!
//! Never talks to anything but loopback; never decides an approval other than through the page.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::approvals::ask_fleet;
use crate::mcp_e2e::http_server_with;
use crate::python_interop::venv;
use crate::support::mcp::{self, call};

const TOKEN: &str = "agent-token-0123456789abcdef";
const APPROVER: &str = "approver-token-0123456789abcdef";
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page and its assets carry the security headers; the data routes need the approver
/// token and refuse a foreign Origin or Host, whatever the token.
async fn check_http_surface(base: &str) {
    let http = reqwest::Client::new();
    for (path, kind) in [
        ("/approvals/ui", "text/html"),
        ("/approvals/ui/app.js", "text/javascript"),
        ("/approvals/ui/app.css", "text/css"),
    ] {
        let resp = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let h = resp.headers();
        let header = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        assert!(header("content-type").starts_with(kind), "{path}: {h:?}");
        assert_eq!(header("content-security-policy"), CSP, "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(header("cache-control"), "no-store", "{path}");
        assert!(h.get("set-cookie").is_none(), "{path}: no cookies, ever");
    }
    let list = format!("{base}/approvals");
    assert_eq!(http.get(&list).send().await.unwrap().status(), 401, "no token");
    let agent = http.get(&list).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(agent.status(), 401, "the MCP token is not the approver's");
    let ok = http.get(&list).bearer_auth(APPROVER).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers().get("cache-control").unwrap(), "no-store");
    let body: Value = ok.json().await.unwrap();
    assert!(body["approvals"].is_array() && body["decided"].is_array() && body["now_ms"].is_u64(), "{body}");
    for (name, value) in [("origin", "http://evil.example"), ("host", "evil.example")] {
        let foreign = http.get(&list).bearer_auth(APPROVER).header(name, value).send().await.unwrap();
        assert_eq!(foreign.status(), 403, "{name}: {value} must be refused even with the token");
        let post = http.post(format!("{list}/a00/approve")).bearer_auth(APPROVER).header(name, value);
        assert_eq!(post.send().await.unwrap().status(), 403, "{name}: {value} cannot decide");
        let page = http.get(format!("{base}/approvals/ui")).header(name, value).send().await.unwrap();
        assert_eq!(page.status(), 403, "{name}: {value} is not served the page");
    }
    let same = http.get(&list).bearer_auth(APPROVER).header("origin", base).send().await.unwrap();
    assert_eq!(same.status(), 200, "the page's own origin");
}

struct Browser {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Browser {
    async fn start(page: &str) -> Self {
        let python = venv("selenium", "selenium>=4.20,<5");
        let mut child = tokio::process::Command::new(python)
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/approver_ui.py"))
            .args([page, APPROVER, "not-the-approver-token-0123"])
            // Selenium Manager must not look for drivers online: ours are Debian's.
            .env("SE_OFFLINE", "true")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Self { child, lines }
    }

    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(120), self.lines.next_line()).await;
        let line = line.expect("the browser script answered nothing for 120 s").unwrap();
        let line = line.expect("the browser script exited early (its stderr is above)");
        serde_json::from_str(&line).unwrap()
    }

    async fn send(&mut self, command: &str) -> Value {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{command}\n").as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
        self.next().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approver_ui_signs_in_approves_and_denies_in_chromium() {
    let fleet = ask_fleet();
    let policy = fleet.path("config/policy.yml");
    let text = std::fs::read_to_string(&policy)
        .unwrap()
        .replace("approval_timeout_seconds: 3", "approval_timeout_seconds: 120");
    std::fs::write(&policy, text).unwrap();
    let approver = fleet.path("approver");
    std::fs::write(&approver, APPROVER).unwrap();
    let server = http_server_with(&fleet, TOKEN, &["--approver-token-file", approver.to_str().unwrap()]);
    let base = format!("http://127.0.0.1:{}", server.1);
    check_http_surface(&base).await;

    let (client, _) = mcp::http(&format!("{base}/mcp"), TOKEN).await.unwrap();
    let client = std::sync::Arc::new(client);
    let mut browser = Browser::start(&format!("{base}/approvals/ui")).await;
    let wrong = browser.next().await;
    assert_eq!(wrong["step"], "wrong_token", "{wrong}");
    assert!(wrong["error"].as_str().unwrap().contains("Wrong token") && wrong["main_hidden"] == true, "{wrong}");
    let signed_in = browser.next().await;
    assert!(signed_in["step"] == "signed_in" && signed_in["error_hidden"] == true, "{signed_in}");

    for (verb, command) in [("approve", "echo approve-me from the page"), ("deny", "echo approve-me not this one")] {
        let c = client.clone();
        let run = tokio::spawn(async move { call(&c, "ssh_run", json!({ "alias": "h1", "command": command })).await });
        let seen = browser.send(&format!("{verb} {command}")).await;
        assert_eq!(seen["step"], verb, "{seen}");
        let details = &seen["seen"];
        assert!(details["hosts"] == "h1" && details["label"] == "Command", "{seen}");
        assert!(details["rule"].as_str().is_some_and(|r| r.contains("needs-human")), "{seen}");
        assert!(details["reason"].as_str().is_some_and(|r| !r.is_empty()), "{seen}");
        assert!(details["client"].as_str().is_some_and(|c| !c.is_empty()), "{seen}");
        assert!(details["age"].as_str().is_some_and(|a| a.ends_with(" s")), "{seen}");
        let want = if verb == "approve" { "Confirm approve" } else { "Confirm deny" };
        assert_eq!(seen["confirm_text"], want, "{seen}");
        assert_eq!(seen["pending_at_confirmation"], true, "the first click must decide nothing: {seen}");
        let decided = if verb == "approve" { "approved" } else { "denied" };
        let verdict = seen["verdict"].as_str().unwrap();
        assert!(verdict.starts_with(&format!("{decided} by approver token at ")), "{seen}");
        assert_eq!(seen["decided_what"], command, "{seen}");

        let (err, result) = tokio::time::timeout(Duration::from_secs(60), run).await.unwrap().unwrap();
        match verb {
            "approve" => assert!(!err && result["stdout"] == "approve-me from the page\n", "{result}"),
            _ => {
                assert!(err, "a denied request must not run: {result}");
                assert!(result["message"].as_str().unwrap().contains("declined (approver token)"), "{result}");
            }
        }
    }

    let done = browser.send("quit").await;
    assert_eq!(done["step"], "done", "{done}");
    assert_eq!(done["cookies"], "", "no cookie is set: {done}");
    assert_eq!(done["session_token"], APPROVER, "the token is kept in the session: {done}");
    assert_eq!(done["local_storage_keys"], 0, "{done}");
    let url = done["url"].as_str().unwrap();
    assert!(!url.contains(APPROVER) && !url.contains("token"), "the token is never in a URL: {url}");
    assert_eq!(done["csp_errors"], json!([]), "the page runs under its own CSP: {done}");
    let _ = tokio::time::timeout(Duration::from_secs(30), browser.child.wait()).await;

    // Exactly one command ran: the approved one.
    let audit = std::fs::read_to_string(fleet.path("audit.jsonl")).unwrap();
    let starts = audit.lines().filter(|l| l.contains("\"event\":\"task_start\"")).count();
    assert_eq!(starts, 1, "{audit}");
    if let Ok(client) = std::sync::Arc::try_unwrap(client) {
        mcp::close(client).await;
    }
}
