//! Second adversarial round against the gates (approvals, deferred tasks, `/rpc`,
//! `sshwarden run`). Each test fails while the hole it names exists.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::mcp_e2e::http_server_with;
use crate::ssh_exec::unique_tag;
use crate::support::mcp::BIN;
use crate::support::sshd::{Fleet, FleetOptions, remote_processes};

const TOKEN: &str = "agent-token-0123456789abcdef";
const APPROVER: &str = "approver-token-0123456789abcdef";

/// `touch /tmp/sshwarden-adv2*` and `echo approve-me*` need a human; everything else is allowed.
const ASK: &str = "rules:\n  - id: needs-human\n    action: ask\n    commands: [\"touch /tmp/sshwarden-adv2*\", \"echo approve-me*\"]\n";

fn ask_fleet(hosts: usize, timeout: u64) -> Fleet {
    let fleet = Fleet::start(FleetOptions { hosts, ..Default::default() });
    let path = fleet.path("config/policy.yml");
    let policy = std::fs::read_to_string(&path).unwrap().replacen("rules:\n", ASK, 1).replace(
        "  task_progress_interval: 1\n",
        &format!("  task_progress_interval: 1\n  approval_timeout_seconds: {timeout}\n"),
    );
    std::fs::write(path, policy).unwrap();
    fleet
}

fn marker(name: &str) -> String {
    let p = format!("/tmp/sshwarden-adv2-{}-{name}-{}", std::process::id(), unique_tag());
    let _ = std::fs::remove_file(&p);
    p
}

fn with_approver(fleet: &Fleet) -> crate::mcp_e2e::Server {
    let approver = fleet.path("approver");
    std::fs::write(&approver, APPROVER).unwrap();
    http_server_with(fleet, TOKEN, &["--approver-token-file", approver.to_str().unwrap()])
}

/// One raw HTTP exchange; returns the whole response text.
fn raw_http(port: u16, method: &str, path: &str, token: &str, extra_headers: &str, body: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n{extra_headers}Authorization: Bearer {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn json_of(out: &str) -> Value {
    let at = out.find('{').unwrap_or_else(|| panic!("no JSON in {out}"));
    serde_json::Deserializer::from_str(&out[at..]).into_iter::<Value>().next().unwrap().unwrap()
}

fn pending(port: u16) -> Vec<Value> {
    let out = raw_http(port, "GET", "/approvals", APPROVER, "", "");
    json_of(&out)["approvals"].as_array().cloned().unwrap_or_default()
}

fn decide(port: u16, id: &str, how: &str) -> String {
    raw_http(port, "POST", &format!("/approvals/{id}/{how}"), APPROVER, "", "")
}

/// A 2026-07-28 MCP request over streamable HTTP (one handler per request), as `name`.
fn mcp_post(port: u16, name: &str, elicitation: bool, body: Value) -> Value {
    mcp_post_with(port, name, elicitation, true, body)
}

fn mcp_post_with(port: u16, name: &str, elicitation: bool, tasks: bool, body: Value) -> Value {
    let mut body = body;
    let mut caps = if tasks { json!({ "extensions": { "io.modelcontextprotocol/tasks": {} } }) } else { json!({}) };
    if elicitation {
        caps["elicitation"] = json!({ "form": {} });
    }
    body["params"]["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": { "name": name, "version": "0" },
        "io.modelcontextprotocol/clientCapabilities": caps
    });
    let method = body["method"].as_str().unwrap_or("").to_owned();
    let mcp_name = body["params"]["name"]
        .as_str()
        .or(body["params"]["taskId"].as_str())
        .map(|n| format!("Mcp-Name: {n}\r\n"))
        .unwrap_or_default();
    let headers = format!(
        "Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: {method}\r\n{mcp_name}"
    );
    let out = raw_http(port, "POST", "/mcp", TOKEN, &headers, &body.to_string());
    let Some(at) = out.find("{\"jsonrpc\"") else { panic!("no JSON-RPC answer: {out}") };
    serde_json::Deserializer::from_str(&out[at..]).into_iter::<Value>().next().unwrap().unwrap()
}

/// HELD (guard): a `POST /rpc` caller that hangs up while its call waits for the out-of-band
/// approver: hyper drops the handler, rmcp's in-process client sends `notifications/cancelled`
/// on drop, the request is denied, and a later approval starts nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adv2_rpc_caller_hanging_up_during_the_approval_wait_runs_nothing() {
    let fleet = ask_fleet(1, 30);
    let server = with_approver(&fleet);
    let port = server.1;
    let m = marker("rpc");
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "ssh_run_async", "params": { "alias": "h1", "command": format!("touch {m}") } }).to_string();
    // The script: POST and give up after a second (closes the connection).
    let hangup = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            s,
            "POST /rpc HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        std::thread::sleep(Duration::from_secs(1));
        let _ = s.shutdown(std::net::Shutdown::Both);
        drop(s);
    });
    let mut id = None;
    for _ in 0..200 {
        if let Some(a) = pending(port).first() {
            id = a["id"].as_str().map(str::to_owned);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let id = id.expect("the /rpc call asked the approver");
    hangup.join().unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let still = pending(port);
    let approved = decide(port, &id, "approve");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ran = std::path::Path::new(&m).exists();
    let _ = std::fs::remove_file(&m);
    let audit = std::fs::read_to_string(fleet.path("audit.jsonl")).unwrap();
    let started = audit.lines().any(|l| l.contains("task_start") && l.contains(&id));
    assert!(
        !ran && !started,
        "the /rpc caller hung up while waiting for approval {id}; still pending afterwards: {}; the approver \
         approved ({}) and the command ran={ran} (task_start {started})",
        still.len(),
        approved.lines().next().unwrap_or("")
    );
}

/// HOLE B: every input-required round (and every `a…` task) registers an approval request
/// that lives until its timeout plus the ticket lifetime (10 min), with no cap: any client
/// holding the bearer token grows the server's memory (and the approver's list) without
/// bound by repeating an `ask` call it never answers. Invariant: memory is bounded by
/// construction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adv2_unanswered_approval_requests_are_bounded() {
    let fleet = ask_fleet(1, 600);
    let server = with_approver(&fleet);
    let port = server.1;
    const N: usize = 1500;
    let mut rounds = 0;
    for n in 0..N {
        let r = mcp_post_with(
            port,
            "spammer",
            true,
            false,
            json!({ "jsonrpc": "2.0", "id": n + 1, "method": "tools/call", "params": { "name": "ssh_run", "arguments": { "alias": "h1", "command": "echo approve-me" } } }),
        );
        if r["result"]["resultType"] == "input_required" || r["result"]["inputRequests"].is_object() {
            rounds += 1;
        } else if n == 0 {
            panic!("expected an input_required round: {r}");
        }
    }
    let held = pending(port).len();
    assert!(
        held < 1000,
        "{rounds} unanswered input_required rounds left {held} pending approval requests held for \
         approval_timeout_seconds + 600 s each, with no per-client or global cap"
    );
}

/// HOLE C: MCP task ids of task-augmented `ssh_run_async` are sshwarden task ids, and
/// `tasks/get`/`tasks/cancel` on them check no owner: another client (any clientInfo) reads
/// the output of and cancels a task it did not start, while the `a…`/`f…` tasks of the same
/// server are owner-only. The ids are listed to everybody by ssh_list_tasks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adv2_another_client_cannot_read_or_cancel_a_clients_mcp_task() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let server = crate::mcp_e2e::http_server(&fleet, TOKEN);
    let port = server.1;
    let tag = format!("{}.{}", 7000 + std::process::id() % 1000, unique_tag());
    let r = mcp_post(
        port,
        "owner",
        false,
        json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": { "name": "ssh_run_async", "arguments": { "alias": "h1", "command": format!("echo secret-output; sleep {tag}") } } }),
    );
    let tid = r["result"]["task"]["taskId"]
        .as_str()
        .or(r["result"]["taskId"].as_str())
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned();
    // The stranger finds the id in the shared list.
    let list = mcp_post(
        port,
        "stranger",
        false,
        json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": { "name": "ssh_list_tasks", "arguments": {} } }),
    );
    let listed = list.to_string().contains(&tid);
    let g = mcp_post(
        port,
        "stranger",
        false,
        json!({ "jsonrpc": "2.0", "id": 3, "method": "tasks/get", "params": { "taskId": tid } }),
    );
    let c = mcp_post(
        port,
        "stranger",
        false,
        json!({ "jsonrpc": "2.0", "id": 4, "method": "tasks/cancel", "params": { "taskId": tid } }),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let still_running = !remote_processes(&tag).is_empty();
    for l in remote_processes(&tag) {
        if let Some(pid) = l.split_whitespace().next() {
            let _ = Command::new("kill").arg(pid).status();
        }
    }
    assert!(
        g.get("error").is_some() && c.get("error").is_some() && still_running,
        "a client named `stranger` (task id listed to it: {listed}) read `owner`'s task {tid}: {g}\n and cancelled it: {c} (still running: {still_running})"
    );
}

/// The python pty driver: runs argv[1..-1] on a pty; when `[y/N]` shows, sends `argv[-1]`
/// as a signal name to the child instead of answering; prints what the terminal showed,
/// exits with the child's code (or 124 when the child outlived 8 s after the signal).
const PTY_SIGNAL: &str = r#"
import os, pty, select, signal, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:-1])
buf, sent, deadline = b"", None, time.time() + 30
while time.time() < deadline:
    ready, _, _ = select.select([fd], [], [], 0.2)
    if ready:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        buf += data
    if sent is None and b"[y/N]" in buf:
        os.kill(pid, getattr(signal, sys.argv[-1]))
        sent = time.time()
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        sys.stdout.buffer.write(buf)
        sys.exit(os.waitstatus_to_exitcode(status))
    if sent is not None and time.time() - sent > 8:
        buf += b"\n[still running 8 s after the signal; answering y]\n"
        os.write(fd, b"y\n")
        end = time.time() + 10
        while time.time() < end:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    buf += os.read(fd, 4096)
                except OSError:
                    pass
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                buf += b"\n[then exited %d]\n" % os.waitstatus_to_exitcode(status)
                break
        else:
            os.kill(pid, signal.SIGKILL)
        sys.stdout.buffer.write(buf)
        sys.exit(124)
sys.exit(125)
"#;

/// HOLE D: `sshwarden run` installs its INT/TERM handlers before it asks, but nothing listens
/// to them while the `[y/N]` question waits: SIGTERM (or Ctrl-C) at the prompt is swallowed,
/// the process neither stops (143/130) nor denies the request; an answer typed later still
/// approves and starts the command.
#[test]
fn adv2_run_sigterm_at_the_approval_prompt_stops_and_runs_nothing() {
    let fleet = ask_fleet(1, 60);
    let m = marker("prompt");
    let config = fleet.config_dir();
    let mut failures = Vec::new();
    for sig in ["SIGTERM", "SIGINT"] {
        let out = Command::new("python3")
            .args([
                "-c",
                PTY_SIGNAL,
                BIN,
                "run",
                "--config-dir",
                config.to_str().unwrap(),
                "h1",
                "--",
                "touch",
                &m,
                sig,
            ])
            .output()
            .unwrap();
        let screen = String::from_utf8_lossy(&out.stdout).into_owned();
        let ran = std::path::Path::new(&m).exists();
        let _ = std::fs::remove_file(&m);
        let want = if sig == "SIGTERM" { 143 } else { 130 };
        if out.status.code() != Some(want) || ran {
            failures.push(format!("{sig}: exit {:?} (want {want}), command ran {ran}\n{screen}", out.status.code()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n----\n"));
}

/// HOLE E: `sshwarden run` prints each host's bytes raw after `host: `. A host's output with
/// `\r` and ANSI sequences rewrites what the operator sees: it erases its own `h1: ` label and
/// forges lines of another host (and of the summary) on the terminal. Expected: control bytes
/// (ESC, CR, other C0 except TAB/LF) are escaped or replaced before they reach the terminal.
#[test]
fn adv2_run_does_not_pass_terminal_control_bytes_from_a_host() {
    let fleet = Fleet::start(FleetOptions { hosts: 2, ..Default::default() });
    let evil = r"printf 'x\r\033[2Kh2: FORGED all good\n\033]0;title\007\n'";
    let mut failures = Vec::new();
    for mode in [&[][..], &["-i"][..]] {
        let out = Command::new(BIN)
            .arg("run")
            .arg("--config-dir")
            .arg(fleet.config_dir())
            .args(mode)
            .args(["h1", "--", evil])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let raw: Vec<&u8> = out.stdout.iter().filter(|b| matches!(**b, 0x1b | b'\r' | 0x07)).collect();
        if !raw.is_empty() {
            failures.push(format!(
                "mode {mode:?}: {} raw control bytes on stdout: {:?}",
                raw.len(),
                String::from_utf8_lossy(&out.stdout)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// HELD (guard): `sshwarden run` edge cases: a TARGET that selects nothing is an error (exit 1), not
/// "0 hosts, all ok" (exit 0) — a typo in the pattern must not look like success.
#[test]
fn adv2_run_a_target_selecting_nothing_is_not_success() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let out = Command::new(BIN)
        .arg("run")
        .arg("--config-dir")
        .arg(fleet.config_dir())
        .args(["web:&nosuchtag", "--", "echo", "hi"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_ne!(
        out.status.code(),
        Some(0),
        "a pattern selecting no host exited 0: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[allow(dead_code)]
fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
