//! Measuring helpers of the comparison suite: timing, RSS, the OpenSSH and parallel-ssh
//! references, the sshwarden server under test, and the report (stdout, JSON, README table).

use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sshwarden::config::Dirs;
use sshwarden::net::HickoryResolver;
use sshwarden::service::Service;
use sshwarden::service::fanout::{self, FanoutOptions, HostStatus};

use super::{mcp, sshd};

pub const TOKEN: &str = "bench-token-0123456789abcdef";

pub fn time(n: usize, mut f: impl FnMut()) -> Vec<Duration> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect()
}

pub fn p50(v: &mut [Duration]) -> Duration {
    v.sort();
    v[(v.len() - 1) / 2]
}

pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:").and_then(|v| v.trim().trim_end_matches(" kB").parse().ok()))
        .unwrap_or(0)
}

/// OpenSSH with the fleet's key and known_hosts.
pub struct OpenSsh {
    dir: PathBuf,
    ips: Vec<String>,
}

impl OpenSsh {
    pub fn new(fleet: &sshd::Fleet) -> Self {
        let ips = fleet.hosts.iter().map(|h| h.addr.ip().to_string()).collect();
        Self { dir: fleet.dir.path().to_path_buf(), ips }
    }

    fn options(&self) -> Vec<String> {
        let d = self.dir.display();
        [
            format!("-i{d}/keys/id_ed25519"),
            "-oBatchMode=yes".into(),
            "-oIdentitiesOnly=yes".into(),
            "-oStrictHostKeyChecking=yes".into(),
            format!("-oUserKnownHostsFile={d}/keys/known_hosts"),
            format!("-p{}", sshd::PORT),
        ]
        .to_vec()
    }

    fn ip(&self, alias: &str) -> &str {
        let n: usize = alias[1..].parse().unwrap();
        &self.ips[n - 1]
    }

    pub fn cmd(&self, alias: &str, command: &str) -> Command {
        let mut c = Command::new("ssh");
        c.args(self.options()).arg(format!("{}@{}", sshd::USER, self.ip(alias))).arg(command);
        c
    }

    pub fn cmd_master(&self, alias: &str, command: &str) -> Command {
        let mut c = Command::new("ssh");
        let ctl = self.dir.join("ctl");
        c.args(self.options())
            .args(["-oControlMaster=auto", "-oControlPersist=120"])
            .arg(format!("-oControlPath={}", ctl.display()))
            .arg(format!("{}@{}", sshd::USER, self.ip(alias)))
            .arg(command);
        c
    }

    /// `parallel-ssh -p n` over the first `n` hosts; `None` when it is not installed.
    pub fn pssh(&self, n: usize, command: &str) -> Option<Duration> {
        let file = self.dir.join(format!("pssh-{n}"));
        std::fs::write(&file, self.ips[..n].iter().map(|ip| format!("{ip}:{}\n", sshd::PORT)).collect::<String>())
            .ok()?;
        let t = Instant::now();
        let out = Command::new("parallel-ssh")
            .arg("-h")
            .arg(&file)
            .args(["-p", &n.to_string(), "-l", sshd::USER, "-t", "60", "-x"])
            .arg(self.options()[..5].join(" "))
            .arg(command)
            .output()
            .ok()?;
        out.status.success().then(|| t.elapsed())
    }

    pub fn stop(&self) {
        let ctl = self.dir.join("ctl");
        let _ = Command::new("ssh").arg(format!("-oControlPath={}", ctl.display())).args(["-O", "exit", "x"]).output();
    }
}

/// `sshwarden serve --http` on a free loopback port, killed on drop.
pub struct Server(Child, u16);

impl Server {
    pub fn start(fleet: &sshd::Fleet) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        std::fs::write(fleet.path("token"), TOKEN).unwrap();
        let child = Command::new(mcp::BIN)
            .args(["serve", "--http", &format!("127.0.0.1:{port}"), "--token-file"])
            .arg(fleet.path("token"))
            .arg("--config-dir")
            .arg(fleet.config_dir())
            .env("SSHWARDEN_LOG", "sshwarden=warn")
            .spawn()
            .unwrap();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            std::thread::sleep(Duration::from_millis(20));
        }
        Self(child, port)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.1)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub async fn mcp_p50(client: &mcp::Client, n: usize) -> Duration {
    let args = json!({ "alias": "h1", "command": "true" });
    let _ = mcp::call(client, "ssh_run", args.clone()).await;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let (err, r) = mcp::call(client, "ssh_run", args.clone()).await;
        assert!(!err && r["exit_code"] == 0, "{r}");
        v.push(t.elapsed());
    }
    p50(&mut v)
}

async fn service(fleet: &sshd::Fleet) -> Arc<Service> {
    let resolver = Arc::new(HickoryResolver::from_system(Duration::from_secs(2)).unwrap());
    Service::start(Dirs::new(fleet.config_dir(), None, None), resolver).unwrap()
}

struct Discard;
impl sshwarden::ssh::Sink for Discard {
    fn write(&self, _: sshwarden::tasks::ring::Stream, _: &[u8]) {}
}

/// `true` over an already open pooled russh connection: no MCP, policy, audit or task.
pub async fn floor(fleet: &sshd::Fleet, n: usize) -> Duration {
    let svc = service(fleet).await;
    let cfg = svc.config();
    let host = cfg.host("h1").unwrap();
    let target = svc.precheck(host).await.unwrap();
    let cred = cfg.credential_for(host).unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let to = sshwarden::ssh::Destination {
        route: &[],
        target: &target,
        cred,
        known_hosts: &cfg.policy.known_hosts_path,
        connect_timeout: host.connect_timeout,
    };
    let mut v = Vec::with_capacity(n + 1);
    for _ in 0..=n {
        let t = Instant::now();
        let r = svc.pool().run(&to, "true", &Discard, &cancel, &|| {}).await;
        assert!(r.is_ok());
        v.push(t.elapsed());
    }
    v.remove(0);
    p50(&mut v)
}

/// `true` through every service gate (policy, precheck, durable audit, task) in process: the
/// step between the russh floor and a round trip over MCP.
pub async fn gates(fleet: &sshd::Fleet, n: usize) -> Duration {
    let svc = service(fleet).await;
    let mut v = Vec::with_capacity(n + 1);
    for _ in 0..=n {
        let t = Instant::now();
        let p = svc.prepare("h1", "true", None, None).await.unwrap();
        svc.launch(p, None).unwrap().finished().await;
        v.push(t.elapsed());
    }
    v.remove(0);
    svc.shutdown(Duration::from_secs(5)).await;
    p50(&mut v)
}

fn options(n: usize) -> FanoutOptions {
    FanoutOptions {
        concurrency: n,
        batch_size: None,
        max_fail_percentage: 100.0,
        timeout_seconds: None,
        approval: None,
    }
}

/// A new service (no pooled connection) fanning `uptime` out to h1..hn.
pub async fn fanout_cold(fleet: &sshd::Fleet, n: usize) -> Duration {
    let svc = service(fleet).await;
    let hosts: Vec<String> = (1..=n).map(|i| format!("h{i}")).collect();
    let cancel = tokio_util::sync::CancellationToken::new();
    let t = Instant::now();
    let entries = fanout::run(&svc, &hosts, "uptime", &options(n), None, &cancel, |_, _, _| {}).await.unwrap();
    let took = t.elapsed();
    assert!(entries.iter().all(|e| e.status == HostStatus::Ok));
    svc.shutdown(Duration::from_secs(5)).await;
    took
}

/// Time from `ssh_cancel` to the remote `sleep` being gone.
pub async fn cancel_latency(client: &mcp::Client) -> Duration {
    let marker = format!("30{}.{}", std::process::id() % 1000, 4321);
    let (_, started) =
        mcp::call(client, "ssh_run_async", json!({ "alias": "h1", "command": format!("sleep {marker}") })).await;
    let id = started["task_id"].as_str().unwrap().to_owned();
    while sshd::remote_processes(&marker).is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let t = Instant::now();
    let _ = mcp::call(client, "ssh_cancel", json!({ "task_id": id })).await;
    while !sshd::remote_processes(&marker).is_empty() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    t.elapsed()
}

/// A fresh server's RSS (MiB, from `ssh_ping`) at rest, with idle pooled connections to
/// h1..h100, to every host alias (`web:second`, 2 × hosts), and with 1000 concurrent async
/// tasks: `(label, pooled connections, MiB)` rows.
pub async fn memory(fleet: &sshd::Fleet, hosts: usize) -> Vec<(String, u64, f64)> {
    let server = Server::start(fleet);
    let (client, _) = mcp::http(&server.url(), TOKEN).await.unwrap();
    let mut rows = Vec::new();
    let (n, mib) = ping(&client).await;
    rows.push(("at rest".to_owned(), n, mib));
    for (label, target) in [
        (format!("h[1-{}]", hosts.min(100)), format!("h[1-{}]", hosts.min(100))),
        ("every alias".to_owned(), "web:second".to_owned()),
    ] {
        let (err, r) =
            mcp::call(&client, "ssh_run_on_tag", json!({ "target": target, "command": "true", "concurrency": 64 }))
                .await;
        assert!(!err && r["summary"]["failed"] == 0 && r["summary"]["unreachable"] == 0, "{r}");
        let before_ack = ping(&client).await.1;
        ack_all(&client).await;
        let (n, mib) = ping(&client).await;
        println!("  (server RSS {before_ack:.1} MiB before its finished task results were acknowledged)");
        rows.push((format!("idle pooled connections after a fan-out to {label}"), n, mib));
    }
    for i in 0..1000 {
        let alias = format!("h{}", i % hosts + 1);
        let (err, r) = mcp::call(&client, "ssh_run_async", json!({ "alias": alias, "command": "sleep 4" })).await;
        assert!(!err, "{r}");
    }
    let (n, mib) = ping(&client).await;
    rows.push(("1000 concurrent async tasks running".to_owned(), n, mib));
    rows
}

/// Frees every finished task result, so what stays is the pool.
async fn ack_all(c: &mcp::Client) {
    let (_, list) = mcp::call(c, "ssh_list_tasks", json!({})).await;
    for t in list["tasks"].as_array().into_iter().flatten() {
        if let Some(id) = t["task_id"].as_str() {
            let _ = mcp::call(c, "ssh_ack_task", json!({ "task_id": id })).await;
        }
    }
}

async fn ping(c: &mcp::Client) -> (u64, f64) {
    let (_, p) = mcp::call(c, "ssh_ping", json!({})).await;
    let mib = p["memory"]["rss_bytes"].as_u64().unwrap_or(0) as f64 / 1048576.0;
    (p["memory"]["pooled_connections"].as_u64().unwrap_or(0), mib)
}

/// 200 `true` commands on h1, 50 at a time, in process: time per command.
pub async fn concurrent(fleet: &sshd::Fleet) -> Duration {
    let svc = service(fleet).await;
    let run = |svc: Arc<Service>| async move {
        let p = svc.prepare("h1", "true", None, None).await.unwrap();
        svc.launch(p, None).unwrap().finished().await
    };
    run(svc.clone()).await;
    let t = Instant::now();
    for _ in 0..4 {
        let handles: Vec<_> = (0..50).map(|_| tokio::spawn(run(svc.clone()))).collect();
        for h in handles {
            h.await.unwrap();
        }
    }
    let per = t.elapsed() / 200;
    svc.shutdown(Duration::from_secs(5)).await;
    per
}

/// The rows, printed and written as JSON (and into the README between its markers).
#[derive(Default)]
pub struct Report {
    rows: Vec<Value>,
    notes: Vec<String>,
}

impl Report {
    pub fn note(&mut self, text: &str) {
        println!("{text}");
        self.notes.push(text.to_owned());
    }

    pub fn row(&mut self, what: &str, ours: Duration, reference: &str, theirs: Duration) {
        let ratio = ours.as_secs_f64() / theirs.as_secs_f64();
        let (a, b) = (ours.as_secs_f64() * 1e3, theirs.as_secs_f64() * 1e3);
        println!("{what:<52} {a:>9.2} ms | {reference:<30} {b:>9.2} ms | {ratio:>5.2}x");
        self.rows.push(
            json!({ "what": what, "sshwarden_ms": a, "reference": reference, "reference_ms": b, "ratio": ratio }),
        );
    }

    pub fn value(&mut self, what: &str, value: f64, unit: &str) {
        println!("{what:<52} {value:>9.2} {unit}");
        self.rows.push(json!({ "what": what, "value": value, "unit": unit }));
    }

    pub fn finish(self, _: Duration) {
        let machine = format!(
            "{} cores, {}",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            std::fs::read_to_string("/proc/cpuinfo")
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned()))
                .unwrap_or_default()
        );
        let body = json!({ "machine": machine, "rows": self.rows, "notes": self.notes });
        let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-compare.json");
        std::fs::write(&out, serde_json::to_string_pretty(&body).unwrap()).unwrap();
        println!("wrote {}", out.display());
        if std::env::var("SSHWARDEN_BENCH_README").is_ok_and(|v| v == "1") {
            let table = readme_table(&body);
            let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md");
            let text = std::fs::read_to_string(&path).unwrap();
            let (Some(a), Some(b)) = (text.find("<!-- perf:begin -->"), text.find("<!-- perf:end -->")) else {
                panic!("README.md has no perf markers");
            };
            let new = format!("{}<!-- perf:begin -->\n{table}{}", &text[..a], &text[b..]);
            std::fs::write(&path, new).unwrap();
            println!("rewrote the README performance table");
        }
    }
}

fn readme_table(body: &Value) -> String {
    let mut t = format!(
        "Measured by `cargo bench --bench compare` on {} (loopback sshd, clean login user, medians, one run):\n\n| what | sshwarden | reference | ratio |\n|---|---|---|---|\n",
        body["machine"].as_str().unwrap_or("?")
    );
    for r in body["rows"].as_array().into_iter().flatten() {
        match r["ratio"].as_f64() {
            Some(ratio) => t.push_str(&format!(
                "| {} | {:.1} ms | {} {:.1} ms | **{ratio:.2}×** |\n",
                r["what"].as_str().unwrap_or(""),
                r["sshwarden_ms"].as_f64().unwrap_or(0.0),
                r["reference"].as_str().unwrap_or(""),
                r["reference_ms"].as_f64().unwrap_or(0.0)
            )),
            None => t.push_str(&format!(
                "| {} | {:.1} {} | | |\n",
                r["what"].as_str().unwrap_or(""),
                r["value"].as_f64().unwrap_or(0.0),
                r["unit"].as_str().unwrap_or("")
            )),
        }
    }
    t
}
