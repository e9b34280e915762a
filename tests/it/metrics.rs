//! `GET /metrics` through the built binary: only the metrics token reads it (not the MCP or
//! approver token), the page counts what really happened (decisions by rule, task states
//! and durations, streamed bytes, reloads, audit records), `promtool check metrics` accepts
//! it, and a real Prometheus (Debian's package) scrapes it with the token and answers
//! queries for the series.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::mcp_e2e::{Server, http_server_with};
use crate::support::mcp;
use crate::support::sshd::{Fleet, FleetOptions};

const TOKEN: &str = "agent-token-0123456789abcdef";
const METRICS_TOKEN: &str = "metrics-token-0123456789abcdef";

async fn get_metrics(port: u16, token: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(format!("http://127.0.0.1:{port}/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// The value of the sample whose line starts with `series` (name and labels as written).
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.split(' ').next()?.parse().ok())
}

fn serve(fleet: &Fleet) -> Server {
    std::fs::write(fleet.path("metrics-token"), METRICS_TOKEN).unwrap();
    let metrics = fleet.path("metrics-token");
    http_server_with(fleet, TOKEN, &["--metrics-token-file", metrics.to_str().unwrap()])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_metrics_token_reads_a_page_that_counts_what_happened() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let server = serve(&fleet);
    let port = server.1;
    assert_eq!(get_metrics(port, None).await.0, 401);
    assert_eq!(get_metrics(port, Some(TOKEN)).await.0, 401, "the MCP token must not read metrics");
    // And the metrics token is no MCP token.
    assert!(mcp::http(&format!("http://127.0.0.1:{port}/mcp"), METRICS_TOKEN).await.is_err());

    let (client, _) = mcp::http(&format!("http://127.0.0.1:{port}/mcp"), TOKEN).await.unwrap();
    let (err, r) = mcp::call(&client, "ssh_run", json!({ "alias": "h1", "command": "echo streamed-bytes" })).await;
    assert!(!err, "{r}");
    let (err, _) = mcp::call(&client, "ssh_run", json!({ "alias": "h1", "command": "reboot" })).await;
    assert!(err, "reboot is denied by the fixture's policy");
    let (err, r) = mcp::call(&client, "ssh_reload_config", json!({})).await;
    assert!(!err, "{r}");

    let (status, page) = get_metrics(port, Some(METRICS_TOKEN)).await;
    assert_eq!(status, 200, "{page}");
    let decisions = |d: &str| {
        page.lines()
            .filter(|l| l.starts_with(&format!("sshwarden_decisions_total{{decision=\"{d}\"")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    assert_eq!(decisions("allow"), 1.0, "{page}");
    assert_eq!(decisions("deny"), 1.0, "{page}");
    assert_eq!(sample(&page, "sshwarden_tasks{state=\"completed\"}"), Some(1.0), "{page}");
    assert_eq!(sample(&page, "sshwarden_task_duration_seconds_count{state=\"completed\"}"), Some(1.0), "{page}");
    assert_eq!(sample(&page, "sshwarden_streamed_bytes_total{stream=\"stdout\"}"), Some(15.0), "{page}");
    assert_eq!(sample(&page, "sshwarden_config_reloads_total{result=\"ok\"}"), Some(1.0), "{page}");
    assert_eq!(sample(&page, "sshwarden_ssh_pooled_connections"), Some(1.0), "{page}");
    let audited = std::fs::read_to_string(fleet.path("audit.jsonl")).unwrap().lines().count() as f64;
    let counted = sample(&page, "sshwarden_audit_records_total").unwrap_or(0.0);
    assert!(counted >= 5.0 && counted <= audited, "{counted} of {audited} records: {page}");
    assert!(page.contains("sshwarden_build_info{version=\""), "{page}");
    assert!(!page.contains("streamed-bytes") && !page.contains("h1"), "no command or host in labels: {page}");

    // A reload that fails is counted as failed (and the old config stays).
    std::fs::write(fleet.path("config/policy.yml"), "rules: [\n").unwrap();
    let (err, _) = mcp::call(&client, "ssh_reload_config", json!({})).await;
    assert!(err);
    let (_, page) = get_metrics(port, Some(METRICS_TOKEN)).await;
    assert_eq!(sample(&page, "sshwarden_config_reloads_total{result=\"failed\"}"), Some(1.0), "{page}");

    // Prometheus asks for OpenMetrics and gets it; everyone else gets the classic format.
    let om = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .header("Accept", "application/openmetrics-text;version=1.0.0,text/plain;q=0.5")
        .send()
        .await
        .unwrap();
    assert!(om.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    assert!(om.text().await.unwrap().ends_with("# EOF\n"));
    assert!(!page.contains("# EOF"));
    let promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; scripts/test.sh installs it)");
    let out = write_and_wait(promtool, &page);
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    mcp::close(client).await;
}

fn write_and_wait(mut child: std::process::Child, input: &str) -> std::process::Output {
    use std::io::Write;
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// A real Prometheus server, on loopback, scraping every second with the token from a file.
struct Prometheus(std::process::Child, u16);

impl Prometheus {
    fn start(dir: &Path, target_port: u16, token_file: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = format!(
            "global: {{scrape_interval: 1s, scrape_timeout: 1s}}\nscrape_configs:\n  - job_name: sshwarden\n    authorization: {{credentials_file: {}}}\n    static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]\n",
            token_file.display()
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .expect("prometheus (Debian package; scripts/test.sh installs it)");
        Self(child, port)
    }

    async fn query(&self, q: &str) -> Value {
        let base = format!("http://127.0.0.1:{}/api/v1/query", self.1);
        let Ok(url) = reqwest::Url::parse_with_params(&base, &[("query", q)]) else { return Value::Null };
        match reqwest::Client::new().get(url).send().await {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_series_with_the_token() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let server = serve(&fleet);
    let (client, _) = mcp::http(&format!("http://127.0.0.1:{}/mcp", server.1), TOKEN).await.unwrap();
    let (err, r) = mcp::call(&client, "ssh_run", json!({ "alias": "h1", "command": "echo scraped" })).await;
    assert!(!err, "{r}");
    let prom = Prometheus::start(&fleet.path(""), server.1, &fleet.path("metrics-token"));
    let start = Instant::now();
    let q = "sum(sshwarden_decisions_total{decision=\"allow\"})";
    loop {
        let up = prom.query("up{job=\"sshwarden\"}").await;
        let allowed = prom.query(q).await;
        let value = allowed["data"]["result"][0]["value"][1].as_str().map(str::to_owned);
        if up["data"]["result"][0]["value"][1] == "1" && value.as_deref() == Some("1") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(45),
            "Prometheus did not scrape: up={up} {q}={allowed}\n{}",
            std::fs::read_to_string(fleet.path("prometheus.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let durations = prom.query("sshwarden_task_duration_seconds_count").await;
    assert_eq!(durations["data"]["result"][0]["metric"]["state"], "completed", "{durations}");
    mcp::close(client).await;
}

#[test]
fn the_metrics_token_must_be_its_own_secret_and_needs_http() {
    let dir = tempfile::tempdir().unwrap();
    let same = dir.path().join("same");
    std::fs::write(&same, TOKEN).unwrap();
    let out = Command::new(crate::support::mcp::BIN)
        .args(["serve", "--http", "127.0.0.1:1", "--token-file"])
        .arg(&same)
        .arg("--metrics-token-file")
        .arg(&same)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("the metrics token must differ"), "{err}");
    let out =
        Command::new(crate::support::mcp::BIN).arg("serve").arg("--metrics-token-file").arg(&same).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--metrics-token-file needs --http"), "{err}");
}
