//! Fault injection against real sshd and the real binary: closed ports, silent peers, a
//! thousand tasks, clients that vanish, reloads that fail mid-flight, hostile HTTP. Each
//! fault gives a clear error, leaks nothing, and the next request is served.

use std::io::{Read, Write};
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use sshwarden::tasks::TaskState;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::mcp_e2e::http_server;
use crate::ssh_exec::{run, service, start, unique_tag};
use crate::support::mcp::{self, BIN, call};
use crate::support::sshd::{Fleet, FleetOptions, gone_within, remote_processes};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_port_and_silent_peer_fail_clearly_within_their_timeout() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let (closed, silent) = (fleet.spare_addr(250), fleet.spare_addr(251));
    let listener = std::net::TcpListener::bind((silent, 24022)).unwrap();
    // Accepts TCP and never sends a banner.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept() {
            held.push(s);
        }
    });
    fleet.add_hosts(&format!("  - alias: closed\n    host: {closed}\n    port: 24022\n    credentials: key\n  - alias: silent\n    host: {silent}\n    port: 24022\n    credentials: key\n    connect_timeout: 2\n"));
    let svc = service(&fleet);
    let TaskState::Failed { error, .. } = run(&svc, "closed", "true").await.0 else { panic!() };
    assert!(error.contains(&format!("connect to {closed}:24022 failed")) && error.contains("refused"), "{error}");
    let t0 = std::time::Instant::now();
    let TaskState::Failed { error, .. } = run(&svc, "silent", "true").await.0 else { panic!() };
    assert!(error.contains("timed out after 2 s"), "{error}");
    assert!(t0.elapsed() < Duration::from_secs(6), "{:?}", t0.elapsed());
    assert_eq!(run(&svc, "h1", "echo next").await.1, "next\n", "the next request is served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_async_tasks_finish_or_are_refused_cleanly() {
    let fleet = Fleet::start(FleetOptions { hosts: 2, max_sessions: 10 });
    fleet.write_config(
        "execution:\n  max_running_tasks: 16\n  max_queued_tasks: 200\n  output_memory_budget_bytes: 1048576\n",
    );
    let svc = service(&fleet);
    assert_eq!(run(&svc, "h1", "true").await.0, TaskState::Completed { exit_code: Some(0), exit_signal: None });
    let fds_before = open_fds();
    // Every command waits for a gate file, so the queue fills deterministically.
    let gate = format!("/tmp/sshwarden-gate-{}", unique_tag());
    let (mut tasks, mut busy) = (Vec::new(), 0);
    for i in 0..1000 {
        let alias = if i % 2 == 0 { "h1" } else { "h2" };
        match start(&svc, alias, &format!("while [ ! -e {gate} ]; do sleep 0.05; done; echo {i}"), None).await {
            Ok(t) => tasks.push((i, t)),
            Err(e) => {
                assert!(e.to_string().contains("busy:"), "{e}");
                busy += 1;
            }
        }
    }
    // At most 16 running + 200 queued are accepted; the rest are refused with "busy".
    assert!(
        (200..=216).contains(&tasks.len()) && busy + tasks.len() == 1000,
        "{busy} refused, {} accepted",
        tasks.len()
    );
    std::fs::write(&gate, "").unwrap();
    for (i, t) in &tasks {
        let state = tokio::time::timeout(Duration::from_secs(120), t.finished()).await.unwrap();
        assert_eq!(state, TaskState::Completed { exit_code: Some(0), exit_signal: None }, "task {i}");
        assert_eq!(t.output().stdout.total(), format!("{i}\n").len() as u64);
    }
    let (used, _) = svc.tasks().memory();
    assert!(used <= 1 << 20, "output budget exceeded: {used}");
    // Connections stay bounded: 16 running at 8 sessions each is 2 per host at most, plus slack.
    assert!(svc.pool().connection_count() <= 8, "{}", svc.pool().connection_count());
    assert!(open_fds() <= fds_before + 16, "fds {fds_before} -> {}", open_fds());
    let _ = std::fs::remove_file(&gate);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_closed_while_a_command_runs_stops_it_and_exits() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let mut child = tokio::process::Command::new(BIN)
        .arg("serve")
        .arg("--config-dir")
        .arg(fleet.config_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let tag = unique_tag();
    let marker = format!("315.{tag}");
    let meta = json!({ "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientInfo": { "name": "gone", "version": "0" }, "io.modelcontextprotocol/clientCapabilities": {} });
    let msg = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": { "name": "ssh_run", "arguments": { "alias": "h1", "command": format!("sleep {marker} | cat") }, "_meta": meta } });
    stdin.write_all(format!("{msg}\n").as_bytes()).await.unwrap();
    for _ in 0..200 {
        if !remote_processes(&marker).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(!remote_processes(&marker).is_empty(), "command never started");
    drop(stdin); // the client goes away
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("server did not exit after stdin closed")
        .unwrap();
    assert!(status.success(), "{status:?}");
    gone_within(&marker, Duration::from_secs(2)).unwrap_or_else(|left| panic!("left running: {left:?}"));
    while let Ok(Some(_)) = lines.next_line().await {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_reloads_during_running_tasks_change_nothing() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let (client, _) = mcp::stdio(&fleet.config_dir()).await;
    let (_, started) =
        call(&client, "ssh_run_async", json!({ "alias": "h1", "command": "sleep 1.5; echo survived" })).await;
    let id = started["task_id"].as_str().unwrap().to_owned();
    let servers = std::fs::read_to_string(fleet.path("config/servers.yml")).unwrap();
    let creds = std::fs::read_to_string(fleet.path("config/credentials.yml")).unwrap();
    std::fs::write(fleet.path("config/servers.yml"), "hosts:\n  - alias: [broken\n").unwrap();
    let (err, r) = call(&client, "ssh_reload_config", json!({})).await;
    assert!(err && r["errors"][0].as_str().unwrap().contains("servers.yml:"), "{r}");
    std::fs::remove_file(fleet.path("config/servers.yml")).unwrap();
    let (err, r) = call(&client, "ssh_reload_config", json!({})).await;
    assert!(err && r["errors"][0].as_str().unwrap().contains("cannot read"), "{r}");
    std::fs::write(fleet.path("config/servers.yml"), &servers).unwrap();
    std::fs::create_dir_all(fleet.path("keys/not-a-key")).unwrap();
    std::fs::write(
        fleet.path("config/credentials.yml"),
        creds.replacen("key_path: id_ed25519", "key_path: not-a-key", 1),
    )
    .unwrap();
    let (err, r) = call(&client, "ssh_reload_config", json!({})).await;
    assert!(err && r["errors"][0].as_str().unwrap().contains("not a regular file"), "{r}");
    std::fs::write(fleet.path("config/credentials.yml"), &creds).unwrap();
    for _ in 0..100 {
        let (_, st) = call(&client, "ssh_get_task_status", json!({ "task_id": id })).await;
        if st["state"] == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, res) = call(&client, "ssh_get_task_result", json!({ "task_id": id })).await;
    assert_eq!(res["stdout"], "survived\n", "{res}");
    let (err, r) = call(&client, "ssh_run", json!({ "alias": "h1", "command": "echo old-config-still-serves" })).await;
    assert!(!err && r["exit_code"] == 0, "{r}");
    mcp::close(client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_oversized_bodies_bad_origins_and_many_sessions() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let token = "fault-token-0123456789abcdef";
    let server = http_server(&fleet, token);
    let post = |body: &str, extra: &str| {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", server.1)).unwrap();
        let _ = write!(
            s,
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out.lines().next().unwrap_or_default().to_owned()
    };
    let big = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{{\"x\":\"{}\"}}}}",
        "a".repeat(2 * 1024 * 1024)
    );
    assert!(post(&big, "").contains("413"), "oversized body");
    assert!(post("{}", "Origin: http://evil.example\r\n").contains("403"), "foreign origin");
    let url = format!("http://127.0.0.1:{}/mcp", server.1);
    let mut handles = Vec::new();
    for _ in 0..30 {
        let url = url.clone();
        handles.push(tokio::spawn(async move {
            let (c, _) = mcp::http(&url, "fault-token-0123456789abcdef").await.unwrap();
            let (err, p) = call(&c, "ssh_ping", json!({})).await;
            mcp::close(c).await;
            !err && p["status"] == "pong"
        }));
    }
    for h in handles {
        assert!(h.await.unwrap(), "a session failed");
    }
    let (c, _) = mcp::http(&url, token).await.unwrap();
    let (err, r) = call(&c, "ssh_run", json!({ "alias": "h1", "command": "echo after-the-storm" })).await;
    assert!(!err && r["stdout"] == "after-the-storm\n");
    mcp::close(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalives_detect_a_peer_that_went_silent() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    fleet.write_config("execution:\n  keepalive_seconds: 1\n");
    let svc = service(&fleet);
    let tag = unique_tag();
    let task = start(&svc, "h1", &format!("sleep 316.{tag}"), None).await.unwrap();
    for _ in 0..200 {
        if !remote_processes(&format!("316.{tag}")).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // The sshd side of the connection freezes: no data, no keepalive replies.
    fleet.hosts[0].signal_sessions("STOP");
    let t0 = std::time::Instant::now();
    let state =
        tokio::time::timeout(Duration::from_secs(20), task.finished()).await.expect("a dead peer went unnoticed");
    fleet.hosts[0].signal_sessions("CONT");
    let _ = std::process::Command::new("pkill").args(["-u", "swtest", "-f", &format!("316.{tag}")]).status();
    let TaskState::Failed { error, .. } = state else { panic!("{state:?}") };
    assert!(error.contains("connection closed before the command's exit status"), "{error}");
    assert!(t0.elapsed() < Duration::from_secs(10), "detected after {:?}", t0.elapsed());
    assert_eq!(run(&svc, "h1", "echo fresh-connection").await.1, "fresh-connection\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_client_is_dropped_and_others_are_served() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let token = "slowloris-token-0123456789";
    let server = http_server(&fleet, token);
    let port = server.1;
    let slow = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let t0 = std::time::Instant::now();
        let _ = s.write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
        // One header byte per 500 ms, never finishing the headers.
        while t0.elapsed() < Duration::from_secs(20) {
            if s.write_all(b"a").is_err() {
                return t0.elapsed();
            }
            let mut buf = [0u8; 256];
            match s.read(&mut buf) {
                Ok(_) => return t0.elapsed(),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return t0.elapsed(),
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        t0.elapsed()
    });
    let (c, _) = mcp::http(&format!("http://127.0.0.1:{port}/mcp"), token).await.unwrap();
    let (err, r) = call(&c, "ssh_ping", json!({})).await;
    assert!(!err && r["status"] == "pong");
    mcp::close(c).await;
    let dropped_after = slow.join().unwrap();
    assert!(dropped_after < Duration::from_secs(10), "slow client held its connection for {dropped_after:?}");
}
