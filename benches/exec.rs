//! Benchmark: a warm command through sshwarden versus OpenSSH with ControlMaster, measured in
//! the same run against the same local sshd, printed as ratios (never asserted: shared
//! machines are noisy). Run: `cargo bench --bench exec` (root; starts its own sshd).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]

#[path = "../tests/it/support/sshd.rs"]
#[allow(dead_code)]
mod sshd;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sshwarden::config::Dirs;
use sshwarden::net::HickoryResolver;
use sshwarden::service::Service;

const N: usize = 200;

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p) as usize]
}

fn report(name: &str, mut v: Vec<Duration>, base: Option<Duration>) -> Duration {
    let p50 = percentile(&mut v, 0.5);
    let p90 = percentile(&mut v, 0.9);
    let ratio = base.map(|b| format!("  {:.2}x OpenSSH p50", p50.as_secs_f64() / b.as_secs_f64())).unwrap_or_default();
    println!("{name:<44} p50 {:>7.2} ms  p90 {:>7.2} ms{ratio}", p50.as_secs_f64() * 1e3, p90.as_secs_f64() * 1e3);
    p50
}

fn main() {
    let fleet = sshd::Fleet::start(sshd::FleetOptions { hosts: 1, max_sessions: 10 });
    let d = fleet.dir.path();
    let addr = fleet.hosts[0].addr;
    let ctl = d.join("ctl");
    let base = |extra: &[&str]| {
        let mut c = Command::new("ssh");
        c.args(["-i"]).arg(d.join("keys/id_ed25519")).args([
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=yes",
        ]);
        c.arg("-o").arg(format!("UserKnownHostsFile={}", d.join("keys/known_hosts").display()));
        c.args(["-p", "24022"]).args(extra).arg(format!("{}@{}", sshd::USER, addr.ip())).arg("true");
        c
    };
    let master =
        ["-o", "ControlMaster=auto", "-o", &format!("ControlPath={}", ctl.display()), "-o", "ControlPersist=60"];
    assert!(base(&master).status().unwrap().success(), "OpenSSH could not connect");
    let openssh: Vec<Duration> = (0..N)
        .map(|_| {
            let t = Instant::now();
            assert!(base(&master).status().unwrap().success());
            t.elapsed()
        })
        .collect();
    let cold: Vec<Duration> = (0..20)
        .map(|_| {
            let t = Instant::now();
            assert!(base(&[]).status().unwrap().success());
            t.elapsed()
        })
        .collect();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (full, rss) = rt.block_on(async {
        let resolver = Arc::new(HickoryResolver::from_system(Duration::from_secs(2)).unwrap());
        let svc = Service::start(Dirs::new(fleet.config_dir(), None, None), resolver).unwrap();
        let run = |svc: Arc<Service>| async move {
            let p = svc.prepare("h1", "true", None, None).await.unwrap();
            let t = svc.launch(p, None).unwrap();
            t.finished().await
        };
        run(svc.clone()).await;
        let mut v = Vec::new();
        for _ in 0..N {
            let t = Instant::now();
            run(svc.clone()).await;
            v.push(t.elapsed());
        }
        // 50 concurrent commands on one host, 4 rounds: throughput versus the same with OpenSSH.
        let t = Instant::now();
        for _ in 0..4 {
            let handles: Vec<_> = (0..50).map(|_| tokio::spawn(run(svc.clone()))).collect();
            for h in handles {
                h.await.unwrap();
            }
        }
        let per_cmd = t.elapsed() / 200;
        println!("sshwarden 200 commands, 50 at a time          {:>7.2} ms per command", per_cmd.as_secs_f64() * 1e3);
        let rss = std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find(|l| l.starts_with("VmRSS"))
            .unwrap_or("")
            .to_owned();
        (v, rss)
    });
    let t = Instant::now();
    for _ in 0..4 {
        let children: Vec<_> = (0..50).map(|_| base(&master).spawn().unwrap()).collect();
        for mut c in children {
            c.wait().unwrap();
        }
    }
    println!(
        "OpenSSH ControlMaster 200 commands, 50 at a time {:>4.2} ms per command",
        (t.elapsed() / 200).as_secs_f64() * 1e3
    );

    println!("\nwarm `true`, {N} sequential runs against one local sshd:");
    let b = report("OpenSSH ssh -o ControlMaster (warm)", openssh, None);
    report("OpenSSH ssh, no master (cold handshake)", cold, Some(b));
    report("sshwarden (policy+precheck+audit fsync+exec)", full, Some(b));
    println!("sshwarden process {rss}");
    let _ = Command::new("ssh").args(["-o", &format!("ControlPath={}", ctl.display()), "-O", "exit", "x"]).output();
}
