//! Adversarial tests (third round) against the gates added with `auth:`, `become` and the
//! approver page. Each test demonstrates a hole: it fails on the code it was written
//! against and passes once the hole is closed.

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::mcp_e2e::{free_port, http_server_at};
use crate::support::mcp::{self, BIN};
use crate::support::sshd::{Fleet, FleetOptions, PORT, USER, password};

const LEGACY: &str = "adv3-legacy-token-0123456789abcdef";
const ALICE: &str = "adv3-alice-token-0123456789abcdef";
const BOB: &str = "adv3-bob-token-0123456789abcdef";

/// A fleet whose HTTP server knows alice and bob by static named tokens, and a rule that
/// forbids bob `echo restart-*`.
fn auth_fleet() -> Fleet {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    std::fs::write(fleet.path("alice.token"), ALICE).unwrap();
    std::fs::write(fleet.path("bob.token"), BOB).unwrap();
    fleet.write_config(
        "auth:\n  tokens:\n    - {name: alice, file: ../alice.token, scopes: [\"ssh:run\"]}\n    - {name: bob, file: ../bob.token, scopes: [\"ssh:run\"]}\n",
    );
    let policy = fleet.path("config/policy.yml");
    let text = std::fs::read_to_string(&policy).unwrap().replacen(
        "rules:\n",
        "rules:\n  - {id: bob-no-restart, action: deny, principals: [bob], commands: ['echo restart-*']}\n",
        1,
    );
    std::fs::write(&policy, text).unwrap();
    fleet
}

/// A raw MCP session over streamable HTTP, so the test chooses every JSON-RPC `id`.
struct RawHttp {
    url: String,
    token: String,
    session: String,
    http: reqwest::Client,
}

const PROTOCOL: &str = "2025-06-18";

impl RawHttp {
    async fn open(url: &str, token: &str) -> Self {
        let mut me =
            Self { url: url.to_owned(), token: token.to_owned(), session: String::new(), http: reqwest::Client::new() };
        let init = json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": { "name": "adv3", "version": "0" } } });
        let resp = me.send(&init).await;
        me.session = resp
            .headers()
            .get("mcp-session-id")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no session id: {}", resp.status()));
        let _ = resp.text().await;
        let resp = me.send(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" })).await;
        assert!(resp.status().is_success(), "initialized: {}", resp.status());
        me
    }

    async fn send(&self, body: &Value) -> reqwest::Response {
        let mut req = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_string());
        if !self.session.is_empty() {
            req = req.header("mcp-session-id", &self.session).header("mcp-protocol-version", PROTOCOL);
        }
        req.send().await.unwrap()
    }

    /// `tools/call` with the JSON-RPC id `id`; the answer's `result` (or `error`), as JSON.
    async fn call(&self, id: Value, tool: &str, args: Value) -> Value {
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": { "name": tool, "arguments": args } });
        let resp = self.send(&body).await;
        let text = resp.text().await.unwrap();
        answer_for(&text, &id).unwrap_or_else(|| panic!("no answer for {id} in {text}"))
    }
}

/// The JSON-RPC answer with `id` in an SSE or JSON body.
fn answer_for(text: &str, id: &Value) -> Option<Value> {
    let mut messages: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect();
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        messages.push(v);
    }
    messages.into_iter().find(|m| &m["id"] == id && (m.get("result").is_some() || m.get("error").is_some()))
}

/// Rule 1: the principal comes from the verified token only. The MCP layer writes the
/// JSON-RPC request id into the client label as `req=<id>` unencoded, after the verified
/// `principal=` word, and `principal_of` takes the *last* `principal=` word: a string id
/// `"8 principal=alice"` makes bob alice, and the `principals: [bob]` deny rule no longer
/// applies to him.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adv3_request_id_forges_the_principal_past_a_deny_rule() {
    let fleet = auth_fleet();
    let port = free_port();
    let _server = http_server_at(&fleet, port, LEGACY, &[], None);
    let bob = RawHttp::open(&format!("http://127.0.0.1:{port}/mcp"), BOB).await;
    // Sanity: with an ordinary id, bob is refused by his rule.
    let plain = bob.call(json!(7), "ssh_run", json!({ "alias": "h1", "command": "echo restart-plain" })).await;
    assert!(plain.to_string().contains("bob-no-restart"), "setup: bob must be denied: {plain}");
    // The same command, with a request id that carries a principal word.
    let forged = bob
        .call(json!("8 principal=alice"), "ssh_run", json!({ "alias": "h1", "command": "echo restart-forged" }))
        .await;
    let audit = std::fs::read_to_string(fleet.path("audit.jsonl")).unwrap_or_default();
    let ran = audit.lines().any(|l| l.contains("\"task_start\"") && l.contains("restart-forged"));
    assert!(
        forged.to_string().contains("bob-no-restart") && !ran,
        "bob ran a command his deny rule forbids by sending the request id \"8 principal=alice\": {forged}\naudit: {}",
        audit.lines().filter(|l| l.contains("restart-forged")).collect::<Vec<_>>().join("\n")
    );
}

/// Rule 1 (tasks): a task belongs to the principal (`task_owner`, the last `principal=`
/// word). Bob names alice in his request id and reads, then cancels, alice's task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adv3_request_id_forges_the_task_owner() {
    let fleet = auth_fleet();
    let port = free_port();
    let _server = http_server_at(&fleet, port, LEGACY, &[], None);
    let url = format!("http://127.0.0.1:{port}/mcp");
    let alice = RawHttp::open(&url, ALICE).await;
    let bob = RawHttp::open(&url, BOB).await;
    let started =
        alice.call(json!(1), "ssh_run_async", json!({ "alias": "h1", "command": "sleep 20; echo alice-secret" })).await;
    let id = started["result"]["structuredContent"]["task_id"]
        .as_str()
        .unwrap_or_else(|| panic!("alice's task: {started}"))
        .to_owned();
    // Sanity: with an ordinary id, bob does not see it.
    let plain = bob.call(json!(2), "ssh_get_task_status", json!({ "task_id": id })).await;
    assert_eq!(plain["result"]["isError"], true, "setup: bob must not see alice's task: {plain}");
    let seen = bob.call(json!("3 principal=alice"), "ssh_get_task_status", json!({ "task_id": id })).await;
    let cancelled = bob.call(json!("4 principal=alice"), "ssh_cancel", json!({ "task_id": id })).await;
    let status = alice.call(json!(5), "ssh_get_task_status", json!({ "task_id": id })).await;
    assert!(
        seen["result"]["isError"] == true && cancelled["result"]["isError"] == true,
        "bob saw and cancelled alice's task with request ids naming her:\nstatus: {seen}\ncancel: {cancelled}\nalice now sees: {status}"
    );
}

/// Rule 1 (stdio): "stdio and the CLI in process are the caller `local`". A stdio client
/// claims any principal with its request id, so a rule for `local` does not hold.
#[test]
fn adv3_stdio_request_id_claims_a_principal() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let policy = fleet.path("config/policy.yml");
    let text = std::fs::read_to_string(&policy).unwrap().replacen(
        "rules:\n",
        "rules:\n  - {id: local-no-restart, action: deny, principals: [local], commands: ['echo restart-*']}\n",
        1,
    );
    std::fs::write(&policy, text).unwrap();
    let mut child = Command::new(BIN)
        .arg("serve")
        .arg("--config-dir")
        .arg(fleet.config_dir())
        .env("SSHWARDEN_LOG", "sshwarden=warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut send = |v: Value| writeln!(stdin, "{v}").unwrap();
    let mut answer = |id: &Value| -> Value {
        loop {
            let mut line = String::new();
            assert!(stdout.read_line(&mut line).unwrap() > 0, "server closed stdout");
            let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
            if &v["id"] == id && (v.get("result").is_some() || v.get("error").is_some()) {
                return v;
            }
        }
    };
    send(json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": { "name": "adv3", "version": "0" } } }));
    answer(&json!(0));
    send(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
    let call = |id: &Value, command: &str| json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": { "name": "ssh_run", "arguments": { "alias": "h1", "command": command } } });
    send(call(&json!(1), "echo restart-plain"));
    let plain = answer(&json!(1));
    assert!(plain.to_string().contains("local-no-restart"), "setup: local must be denied: {plain}");
    let id = json!("2 principal=ops");
    send(call(&id, "echo restart-forged"));
    let forged = answer(&id);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        forged.to_string().contains("local-no-restart"),
        "a stdio client escaped the rule for `local` with the request id \"2 principal=ops\": {forged}"
    );
}

/// A root-owned program the test user may run as root without a password (its own
/// sudoers file), removed with the file on drop.
struct NopasswdScript {
    path: String,
    sudoers: String,
}

impl NopasswdScript {
    fn install(name: &str, script: &str) -> Self {
        crate::support::sudo::ensure_sudoers();
        let me = Self {
            path: format!("/usr/local/bin/sshwarden-{name}"),
            sudoers: format!("/etc/sudoers.d/sshwarden-{name}"),
        };
        std::fs::write(&me.path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&me.path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let temp = format!("{}.tmp", me.sudoers);
        std::fs::write(&temp, format!("{USER} ALL=(root) NOPASSWD: {}\n", me.path)).unwrap();
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o440)).unwrap();
        let check = Command::new("visudo").args(["-cf", &temp]).output().unwrap();
        assert!(check.status.success(), "visudo: {}", String::from_utf8_lossy(&check.stderr));
        std::fs::rename(&temp, &me.sudoers).unwrap();
        me
    }

    /// Runs the program with `ssh_run` under `become: root` on a host with a become password.
    async fn run_with_become_password(&self) -> Value {
        let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
        fleet.add_hosts(&format!(
            "  - alias: h1pw\n    host: {}\n    port: {PORT}\n    credentials: key\n    connect_timeout: 5\n    become_password_secret: swtest_password\n",
            fleet.hosts[0].addr.ip()
        ));
        let policy = fleet.path("config/policy.yml");
        let rule = format!(
            "rules:\n  - id: leak-as-root\n    action: allow\n    aliases: [h1pw]\n    commands: [\"{}\"]\n    become: root\n",
            self.path
        );
        let text = std::fs::read_to_string(&policy).unwrap().replacen("rules:\n", &rule, 1);
        std::fs::write(&policy, text).unwrap();
        let (client, _) = mcp::stdio(&fleet.config_dir()).await;
        let (_, r) = mcp::call(&client, "ssh_run", json!({ "alias": "h1pw", "command": self.path })).await;
        mcp::close(client).await;
        r
    }
}

impl Drop for NopasswdScript {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.sudoers);
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The password hex-encoded: how the programs below print what they read, past the masker.
fn password_hex() -> String {
    password().bytes().map(|b| format!("{b:02x}")).collect()
}

/// Rule 3: "a command sudoers lets run without a password never receives the password on
/// its stdin". The probe (`sudo -n`) decided that a password is needed from the *command's*
/// stderr: a NOPASSWD command that prints sudo's own words was run again with the password
/// on its stdin, where it read it (and printed it hex-encoded, past the masker).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adv3_become_password_reaches_a_command_that_fakes_a_sudo_refusal() {
    // With nothing on stdin it says what sudo says when it needs a password; given a line
    // on stdin, it prints that line hex-encoded.
    let script = "#!/bin/bash\nif IFS= read -r -t 3 line && [ -n \"$line\" ]; then\n  printf '%s' \"$line\" | od -An -tx1 | tr -d ' \\n'; echo\nelse\n  echo 'sudo: a password is required' >&2\n  sleep 2\nfi\n";
    let program = NopasswdScript::install("adv3-leak", script);
    let r = program.run_with_become_password().await;
    assert!(
        !r.to_string().contains(&password_hex()),
        "the become password reached the stdin of a NOPASSWD command that printed sudo's refusal (hex of the password in its stdout): {r}"
    );
}

/// The same rule against a thief that knows the nonce design: a NOPASSWD program reads the
/// command lines of its ancestors (world-readable in /proc), prints any `sshwarden-<hex>:`
/// prompt it finds as its first output, and hex-prints what stdin then gives it. While sudo
/// carried the nonce in its own argv (`sudo -S -p NONCE -- cmd`), the program found it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn become_password_never_reaches_a_command_that_reads_its_ancestors_argv() {
    let script = "#!/bin/bash\np=$PPID\nfor _ in 1 2 3 4 5; do\n  n=$(tr '\\0' ' ' < /proc/$p/cmdline | grep -o 'sshwarden-[0-9a-f]\\{32\\}:' | head -1)\n  [ -n \"$n\" ] && break\n  p=$(awk '{print $4}' /proc/$p/stat)\ndone\nprintf '%s' \"$n\" >&2\nif IFS= read -r -t 3 line && [ -n \"$line\" ]; then\n  printf '%s' \"$line\" | od -An -tx1 | tr -d ' \\n'; echo\nfi\necho \"nonce seen: [$n]\"\n";
    let program = NopasswdScript::install("argv-thief", script);
    let r = program.run_with_become_password().await;
    assert!(r.to_string().contains("nonce seen"), "the program ran: {r}");
    assert!(
        !r.to_string().contains(&password_hex()),
        "the become password reached a NOPASSWD command that found sudo's prompt nonce in an ancestor's argv: {r}"
    );
}

/// Rule 2 (refresh storms): "fetched again when a token names an unknown `kid` (at most once
/// per 10 s)". The throttle only holds once a fetch has succeeded (`keys.set.is_some()`):
/// while the JWKS endpoint fails, every made-up `kid` becomes a request to the provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adv3_unknown_kids_flood_a_failing_jwks_endpoint() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let jwks = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let jwks_port = jwks.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in jwks.incoming() {
            let Ok(mut s) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut s, &mut buf);
            let _ = s.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let port = free_port();
    fleet.write_config(&format!(
        "auth:\n  issuer: http://127.0.0.1:{jwks_port}\n  audience: http://127.0.0.1:{port}/mcp\n  jwks_uri: http://127.0.0.1:{jwks_port}/jwks\n"
    ));
    let _server = http_server_at(&fleet, port, LEGACY, &[], None);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = hits.load(Ordering::SeqCst);
    use base64::Engine;
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let http = reqwest::Client::new();
    for i in 0..30 {
        let token = format!(
            "{}.{}.c2lnbmF0dXJl",
            b64(json!({ "alg": "ES256", "typ": "JWT", "kid": format!("made-up-{i}") })),
            b64(json!({ "sub": "x" }))
        );
        let resp = http
            .post(format!("http://127.0.0.1:{port}/mcp"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401);
    }
    let fetches = hits.load(Ordering::SeqCst) - before;
    assert!(
        fetches <= 2,
        "30 tokens with made-up kids made {fetches} requests to the failing JWKS endpoint within a second"
    );
}
