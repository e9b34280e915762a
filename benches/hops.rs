//! Benchmark: commands through a jump host. A warm command through one hop with sshwarden
//! versus `ssh -J bastion target` with ControlMaster; and a 20-host fan-out behind one
//! bastion versus `parallel-ssh -x "-J bastion"`. Same run, same loopback sshd, printed as
//! ratios (never asserted). Run: `cargo bench --bench hops` (root; starts its own sshd;
//! needs `parallel-ssh` from Debian's pssh for the fan-out row).

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
use sshwarden::service::fanout::{self, FanoutOptions};

const N: usize = 100;

fn p50(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let fleet = sshd::Fleet::start(sshd::FleetOptions { hosts: 2, max_sessions: 10 });
    let d = fleet.dir.path();
    let (bastion, target) = (fleet.hosts[0].addr.ip(), fleet.hosts[1].addr.ip());
    let mut hosts =
        format!("  - alias: t\n    host: {target}\n    port: 24022\n    credentials: key\n    proxy_jump: h1\n");
    for i in 1..=20 {
        hosts += &format!(
            "  - alias: j{i}\n    host: {target}\n    port: 24022\n    credentials: key\n    tags: [behind]\n    proxy_jump: h1\n    max_concurrency: 20\n"
        );
    }
    fleet.add_hosts(&hosts);
    let ssh_config = d.join("ssh_config");
    std::fs::write(
        &ssh_config,
        format!(
            "Host *\n  User {}\n  Port 24022\n  IdentityFile {}\n  IdentitiesOnly yes\n  BatchMode yes\n  StrictHostKeyChecking yes\n  UserKnownHostsFile {}\n",
            sshd::USER,
            d.join("keys/id_ed25519").display(),
            d.join("keys/known_hosts").display()
        ),
    )
    .unwrap();
    let ctl = d.join("ctl-hop");
    let ssh_hop = || {
        let mut c = Command::new("ssh");
        c.arg("-F").arg(&ssh_config).args(["-J", &bastion.to_string()]);
        c.args([
            "-o",
            "ControlMaster=auto",
            "-o",
            &format!("ControlPath={}", ctl.display()),
            "-o",
            "ControlPersist=60",
        ]);
        c.arg(target.to_string()).arg("true");
        c
    };
    assert!(ssh_hop().status().unwrap().success(), "OpenSSH could not reach the target through the bastion");
    let openssh: Vec<Duration> = (0..N)
        .map(|_| {
            let t = Instant::now();
            assert!(ssh_hop().status().unwrap().success());
            t.elapsed()
        })
        .collect();
    let openssh = p50(openssh);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (warm, fan) = rt.block_on(async {
        let resolver = Arc::new(HickoryResolver::from_system(Duration::from_secs(2)).unwrap());
        let svc = Service::start(Dirs::new(fleet.config_dir(), None, None), resolver).unwrap();
        let run = |svc: Arc<Service>| async move {
            let p = svc.prepare("t", "true", None, None).await.unwrap();
            svc.launch(p, None).unwrap().finished().await
        };
        run(svc.clone()).await;
        let mut v = Vec::new();
        for _ in 0..N {
            let t = Instant::now();
            run(svc.clone()).await;
            v.push(t.elapsed());
        }
        let hosts = fanout::targets(&svc, "behind").unwrap();
        let opts = FanoutOptions {
            concurrency: 20,
            batch_size: None,
            max_fail_percentage: 100.0,
            timeout_seconds: None,
            approval: None,
        };
        let cancel = tokio_util::sync::CancellationToken::new();
        let t = Instant::now();
        let entries = fanout::run(&svc, &hosts, "uptime", &opts, None, &cancel, |_, _, _| {}).await.unwrap();
        let fan = t.elapsed();
        assert!(entries.iter().all(|e| e.status == fanout::HostStatus::Ok));
        (p50(v), fan)
    });

    println!("through one jump host, loopback sshd, {N} warm runs:");
    println!("  OpenSSH ssh -J + ControlMaster (warm) p50 {:>7.2} ms", openssh.as_secs_f64() * 1e3);
    println!(
        "  sshwarden warm through h1               p50 {:>7.2} ms  {:.2}x",
        warm.as_secs_f64() * 1e3,
        warm.as_secs_f64() / openssh.as_secs_f64()
    );
    let hosts_file = d.join("pssh-hosts");
    std::fs::write(&hosts_file, format!("{target}\n").repeat(20)).unwrap();
    let t = Instant::now();
    let pssh = Command::new("parallel-ssh")
        .arg("-h")
        .arg(&hosts_file)
        .args(["-p", "20", "-x"])
        .arg(format!("-F {} -J {bastion}", ssh_config.display()))
        .arg("uptime")
        .output();
    match pssh {
        Ok(out) if out.status.success() => {
            let pssh = t.elapsed();
            println!("fan-out `uptime` to 20 targets behind one bastion (sshwarden cold, in process):");
            println!("  parallel-ssh -p 20 -x '-J bastion'      {:>7.0} ms", pssh.as_secs_f64() * 1e3);
            println!(
                "  sshwarden                               {:>7.0} ms  {:.2}x",
                fan.as_secs_f64() * 1e3,
                fan.as_secs_f64() / pssh.as_secs_f64()
            );
        }
        other => println!("parallel-ssh unavailable or failed ({other:?}); apt-get install -y pssh"),
    }
    println!("bastion logins during the run: {}", fleet.hosts[0].accepted_logins());
}
