//! Signals to the built binary: `serve` reloads its configuration on SIGHUP (as
//! `ssh_reload_config` does) and keeps the old one when the new one is broken; `call`
//! stops the remote command it started on SIGINT or SIGTERM and exits 130 or 143.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::mcp_e2e::Server;
use crate::support::mcp::{self, BIN, call};
use crate::support::sshd::{Fleet, FleetOptions, gone_within, remote_processes};

/// `serve --http` with its log (`SSHWARDEN_LOG=sshwarden=info`) going to `log`.
fn serve_logged(fleet: &Fleet, token: &str, log: &Path) -> Server {
    crate::mcp_e2e::http_server_logging(fleet, token, &[], Some(log))
}

/// Sends SIGHUP and waits until the log shows `outcome`; the server must still be running.
fn hangup(server: &mut Server, log: &Path, outcome: &str) {
    let before = std::fs::read_to_string(log).unwrap().matches(outcome).count();
    assert!(Command::new("kill").args(["-HUP", &server.0.id().to_string()]).status().unwrap().success());
    let start = Instant::now();
    while std::fs::read_to_string(log).unwrap().matches(outcome).count() == before {
        assert!(server.0.try_wait().unwrap().is_none(), "SIGHUP killed the server");
        assert!(start.elapsed() < Duration::from_secs(10), "no {outcome:?} in the log");
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(server.0.try_wait().unwrap().is_none(), "the server exited after SIGHUP");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_config_and_keeps_the_old_one_when_broken() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let token = "sighup-token-0123456789abcdef";
    let log = fleet.path("serve.log");
    let mut server = serve_logged(&fleet, token, &log);
    let url = format!("http://127.0.0.1:{}/mcp", server.1);

    fleet.add_hosts("  - alias: added-by-hup\n    host: 127.0.0.1\n    credentials: key\n    tags: [hup]\n");
    hangup(&mut server, &log, "SIGHUP: configuration reloaded");
    let (client, _) = mcp::http(&url, token).await.unwrap();
    let (err, hosts) = call(&client, "ssh_list_hosts", json!({})).await;
    assert!(!err && hosts.to_string().contains("added-by-hup"), "the new host is served: {hosts}");

    let policy = fleet.path("config/policy.yml");
    let good = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(&policy, format!("{good}bogus_key: 1\n")).unwrap();
    hangup(&mut server, &log, "SIGHUP: configuration not reloaded");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("bogus_key"), "the log names what is wrong: {text}");
    let (err, hosts) = call(&client, "ssh_list_hosts", json!({})).await;
    assert!(!err && hosts.to_string().contains("added-by-hup"), "the old config stays: {hosts}");
    let (err, r) = call(&client, "ssh_run", json!({ "alias": "h1", "command": "echo still-serving" })).await;
    assert!(!err && r["stdout"] == "still-serving\n", "{r}");
    mcp::close(client).await;

    let audit = std::fs::read_to_string(fleet.path("audit.jsonl")).unwrap();
    let reloads: Vec<&str> = audit.lines().filter(|l| l.contains("\"config_reloaded\"")).collect();
    assert!(reloads.len() == 1 && reloads[0].contains("signal SIGHUP"), "audited like ssh_reload_config: {reloads:?}");
}

/// Runs `sshwarden call … ssh_run alias=h1 command="sleep MARKER"`, sends `signal` once the
/// remote sleep runs, and returns the exit code.
fn interrupted_call(fleet: &Fleet, extra: &[&str], marker: &str, signal: &str) -> (Option<i32>, String) {
    let mut child = Command::new(BIN)
        .args(["call", "--config-dir"])
        .arg(fleet.config_dir())
        .args(extra)
        .args(["ssh_run", "alias=h1", &format!("command=sleep {marker}")])
        .env("SSHWARDEN_LOG", "sshwarden=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while remote_processes(marker).is_empty() {
        assert!(child.try_wait().unwrap().is_none(), "call ended before its command started");
        assert!(start.elapsed() < Duration::from_secs(10), "the remote command never started");
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap().success());
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < Duration::from_secs(15), "call did not exit after {signal}");
        std::thread::sleep(Duration::from_millis(25));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn call_stops_its_remote_command_on_sigint_and_sigterm_in_process_and_over_http() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let tag = std::process::id() % 100_000;
    let local = format!("37.{tag:05}1");
    let (code, err) = interrupted_call(&fleet, &[], &local, "-INT");
    assert_eq!(code, Some(130), "{err}");
    gone_within(&local, Duration::from_secs(5)).expect("the remote command outlived the interrupted call");

    let server = crate::mcp_e2e::http_server(&fleet, "call-signal-token-0123456789");
    let url = format!("http://127.0.0.1:{}/mcp", server.1);
    let token = fleet.path("token");
    let remote = format!("37.{tag:05}2");
    let (code, err) =
        interrupted_call(&fleet, &["--url", &url, "--token-file", token.to_str().unwrap()], &remote, "-TERM");
    assert_eq!(code, Some(143), "{err}");
    gone_within(&remote, Duration::from_secs(5)).expect("the server did not stop the cancelled call's command");
}

/// `serve --http` on `port` telling `socket` (NOTIFY_SOCKET) where it is.
fn serve_notifying(fleet: &Fleet, port: u16, socket: &std::path::Path) -> std::process::Child {
    std::process::Command::new(crate::support::mcp::BIN)
        .args(["serve", "--http", &format!("127.0.0.1:{port}"), "--token-file"])
        .arg(fleet.path("token"))
        .arg("--config-dir")
        .arg(fleet.config_dir())
        .env("NOTIFY_SOCKET", socket)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// `Type=notify`: READY=1 once the configuration is loaded and the listener bound, STOPPING=1
/// on shutdown; and the shipped unit passes `systemd-analyze verify`.
#[test]
fn serve_tells_systemd_when_it_is_ready_and_the_unit_verifies() {
    use std::os::unix::net::UnixDatagram;
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let socket_path = fleet.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    std::fs::write(fleet.path("token"), "notify-token-0123456789abcdef").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = serve_notifying(&fleet, port, &socket_path);
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).unwrap();
    let ready = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(ready.contains("READY=1") && ready.contains(&format!("127.0.0.1:{port}")), "{ready}");
    // SIGTERM at once, the moment READY=1 is read: a signal in the window between READY and
    // the serving loop's first poll used to kill the process with the default action (no
    // STOPPING, remote commands left running; seen twice on a loaded machine).
    std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let n = socket.recv(&mut buf).expect("STOPPING=1 after SIGTERM (the process was killed by the signal instead?)");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1"));
    let status = child.wait().unwrap();
    assert!(status.success(), "SIGTERM stops serve gracefully (exit 0), not by the signal: {status:?}");

    // And once more with the listener in use: ready means it is bound.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = serve_notifying(&fleet, port, &socket_path);
    let n = socket.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("READY=1"));
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(), "ready means the listener is bound");
    std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let n = socket.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1"));
    let _ = child.wait();

    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/sshwarden.service")).unwrap();
    let local = fleet.path("sshwarden.service");
    std::fs::write(&local, unit.replace("/usr/bin/sshwarden", crate::support::mcp::BIN)).unwrap();
    let verified = std::process::Command::new("systemd-analyze").args(["verify", "--man=no"]).arg(&local).output();
    if let Ok(out) = verified {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}
