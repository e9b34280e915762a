//! The comparison suite: every performance figure of sshwarden next to its reference,
//! measured in the same run against the same loopback sshd fleet, printed as ratios and
//! written to `target/bench-compare.json` (never asserted: shared machines are noisy).
//!
//! Run: `cargo bench --bench compare` (root; starts its own fleet of sshd, 500 by default,
//! `SSHWARDEN_BENCH_HOSTS` to change; `parallel-ssh` from Debian's pssh for the fan-out
//! references). `SSHWARDEN_BENCH_README=1` also rewrites the README's performance table.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]

#[path = "../tests/it/support/sshd.rs"]
#[allow(dead_code)]
mod sshd;

#[path = "../tests/it/support/mcp.rs"]
#[allow(dead_code)]
mod mcp;

#[path = "compare/measure.rs"]
mod measure;

use std::process::Command;
use std::time::{Duration, Instant};

use measure::{Report, p50, rss_kib, time};
use serde_json::json;

fn main() {
    let hosts: usize = std::env::var("SSHWARDEN_BENCH_HOSTS").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
    let mut report = Report::default();
    let t = Instant::now();
    let fleet = sshd::Fleet::start(sshd::FleetOptions { hosts, max_sessions: 10 });
    report.note(&format!("fixture: {hosts} sshd started in {:.1} s", t.elapsed().as_secs_f64()));
    fleet.write_config("execution:\n  max_fanout_hosts: 2000\n  max_running_tasks: 1100\n  max_queued_tasks: 2000\n  connection_idle_seconds: 3600\n");
    // A second alias per host with another credential: distinct pooled connections.
    let mut extra = String::new();
    for h in fleet.hosts.iter() {
        extra.push_str(&format!(
            "  - alias: p{}\n    host: {}\n    port: {}\n    credentials: password\n    tags: [second]\n",
            &h.alias[1..],
            h.addr.ip(),
            sshd::PORT
        ));
    }
    fleet.add_hosts(&extra);
    let openssh = measure::OpenSsh::new(&fleet);

    // 1. Round trips: OpenSSH references, then sshwarden over HTTP, stdio, cold call, floor.
    let warm_ssh = p50(&mut time(100, || assert!(openssh.cmd_master("h1", "true").status().unwrap().success())));
    let cold_ssh = p50(&mut time(10, || assert!(openssh.cmd("h1", "true").status().unwrap().success())));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = measure::Server::start(&fleet);
    let (http_warm, stdio_warm) = rt.block_on(async {
        let (client, _) = mcp::http(&server.url(), measure::TOKEN).await.unwrap();
        let http = measure::mcp_p50(&client, 100).await;
        let (stdio, _) = mcp::stdio(&fleet.config_dir()).await;
        let s = measure::mcp_p50(&stdio, 100).await;
        let _ = stdio.cancel().await;
        (http, s)
    });
    report.row("warm ssh_run true, MCP over kept-alive HTTP", http_warm, "ssh ControlMaster true", warm_ssh);
    report.row("warm ssh_run true, MCP over stdio", stdio_warm, "ssh ControlMaster true", warm_ssh);
    let cold_call = p50(&mut time(10, || {
        let out = Command::new(mcp::BIN)
            .args(["call", "--config-dir"])
            .arg(fleet.config_dir())
            .args(["ssh_run", "alias=h1", "command=true"])
            .output()
            .unwrap();
        assert!(out.status.success());
    }));
    report.row("cold sshwarden call ssh_run true (new process)", cold_call, "ssh h true (cold)", cold_ssh);
    let floor = rt.block_on(measure::floor(&fleet, 100));
    report.row("floor: exec true over an open russh connection", floor, "ssh ControlMaster true", warm_ssh);
    let gates = rt.block_on(measure::gates(&fleet, 100));
    report.row("warm true through the service gates, in process", gates, "ssh ControlMaster true", warm_ssh);
    let per = rt.block_on(measure::concurrent(&fleet));
    let t = Instant::now();
    for _ in 0..4 {
        let children: Vec<_> = (0..50).map(|_| openssh.cmd_master("h1", "true").spawn().unwrap()).collect();
        for mut c in children {
            assert!(c.wait().unwrap().success());
        }
    }
    let ssh_per = t.elapsed() / 200;
    report.row("200 x true on one host, 50 at a time (per command)", per, "ssh ControlMaster, 50 at a time", ssh_per);

    // 2. Fan-out: sshwarden cold (new service, in process) and warm (server over HTTP)
    // against parallel-ssh with as many parallel connections as hosts.
    for n in [20usize, 100, 500].into_iter().filter(|n| *n <= hosts) {
        let pssh = openssh.pssh(n, "uptime");
        let cold = rt.block_on(measure::fanout_cold(&fleet, n));
        let warm = rt.block_on(async {
            let (client, _) = mcp::http(&server.url(), measure::TOKEN).await.unwrap();
            let pattern = format!("h[1-{n}]");
            let _ = mcp::call(
                &client,
                "ssh_run_on_tag",
                json!({ "target": pattern, "command": "uptime", "concurrency": n }),
            )
            .await;
            let t = Instant::now();
            let (err, r) = mcp::call(
                &client,
                "ssh_run_on_tag",
                json!({ "target": pattern, "command": "uptime", "concurrency": n }),
            )
            .await;
            assert!(!err && r["summary"]["ok"] == n, "{r}");
            t.elapsed()
        });
        match pssh {
            Some(p) => {
                report.row(
                    &format!("fan-out uptime to {n} hosts, cold, in process"),
                    cold,
                    &format!("parallel-ssh -p {n}"),
                    p,
                );
                report.row(
                    &format!("fan-out uptime to {n} hosts, warm server (HTTP)"),
                    warm,
                    &format!("parallel-ssh -p {n}"),
                    p,
                );
            }
            None => report.note(&format!(
                "fan-out {n}: parallel-ssh missing (apt-get install pssh); sshwarden cold {cold:?}, warm {warm:?}"
            )),
        }
    }

    // 3. 1 GiB of stdout through the warm server versus ssh into /dev/null; cancel latency;
    // the server's RSS after all of it.
    let gib = "head -c 1073741824 /dev/zero";
    let ssh_stream =
        time(1, || assert!(openssh.cmd("h1", gib).stdout(std::process::Stdio::null()).status().unwrap().success()))[0];
    let (stream, cancel, server_rss) = rt.block_on(async {
        let (client, _) = mcp::http(&server.url(), measure::TOKEN).await.unwrap();
        let t = Instant::now();
        let (err, r) = mcp::call(&client, "ssh_run", json!({ "alias": "h1", "command": gib })).await;
        assert!(!err && r["stdout_bytes"] == 1u64 << 30, "{r}");
        let stream = t.elapsed();
        let cancel = measure::cancel_latency(&client).await;
        let (_, ping) = mcp::call(&client, "ssh_ping", json!({})).await;
        (stream, cancel, ping["memory"]["rss_bytes"].as_u64().unwrap_or(0))
    });
    report.row("1 GiB stdout through the warm server (time)", stream, "ssh h head -c 1G >/dev/null", ssh_stream);
    report.value("cancel -> remote sleep gone", cancel.as_secs_f64() * 1e3, "ms");
    report.value("server RSS after fan-outs and the 1 GiB stream", server_rss as f64 / 1048576.0, "MiB");
    drop(server);

    // 4. Memory of a fresh server: idle pooled connections and 1000 concurrent async tasks.
    for (label, pooled, mib) in rt.block_on(measure::memory(&fleet, hosts)) {
        report.value(&format!("server RSS, {label} ({pooled} pooled)"), mib, "MiB");
    }
    report.value("bench process RSS at the end", rss_kib() as f64 / 1024.0, "MiB");
    openssh.stop();
    report.finish(Duration::from_secs(0));
}
