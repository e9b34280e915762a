//! `sshwarden runbook plan|run NAME|FILE --param k=v …`: the runbook tools through a real
//! MCP client, in process or against a running server (`--url`), as `call` does.
//!
//! Owns: parameter parsing, the live display (indicatif bars per step on a terminal; one
//! JSON object per event with `--json` or when stdout is not a terminal), Ctrl-C or SIGTERM (cancel →
//! the server stops the remote commands and runs the rollback) and exit codes: 0 ok, 3
//! denied (nothing ran), 4 a step failed or the run was cancelled (after rollback), 1 usage
//! or config error. Never plans or runs anything itself.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use serde_json::{Value, json};

use crate::cli::ConfigArgs;
use crate::cli::call::{Client, Stop, connect};
use crate::cli::commands::{EXIT_DENIED, EXIT_ERROR, EXIT_FAILED, EXIT_OK};

/// Lines of a failing host's stderr the failure summary shows.
const STDERR_TAIL_LINES: usize = 3;

/// What to run and how.
pub struct RunbookArgs {
    pub config: ConfigArgs,
    pub url: Option<String>,
    pub token_file: Option<PathBuf>,
    pub runbook: String,
    pub params: Vec<String>,
    pub plan_hash: Option<String>,
    pub json: bool,
}

fn params(pairs: &[String]) -> Result<BTreeMap<String, String>, String> {
    pairs
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or(format!("--param {p:?} is not key=value"))
        })
        .collect()
}

/// A FILE argument runs in process from its own directory; a NAME from `--runbooks-dir`.
fn resolve(args: &mut RunbookArgs) -> Result<String, String> {
    let path = Path::new(&args.runbook);
    if !(path.is_file() && args.runbook.ends_with(".yml")) {
        return Ok(args.runbook.clone());
    }
    if args.url.is_some() {
        return Err(
            "a runbook FILE runs in process only; put it in the server's runbooks directory and pass its name".into()
        );
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let raw: crate::runbook::raw::RunbookFile =
        serde_norway::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    args.config.runbooks_dir = Some(path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf));
    Ok(raw.name.unwrap_or(stem))
}

async fn call(client: &Client, tool: &str, args: Value) -> Result<CallToolResult, String> {
    let Value::Object(map) = args else { return Err("arguments must be an object".into()) };
    let p = CallToolRequestParams::new(tool.to_owned()).with_arguments(map);
    client.call_tool(p).await.map_err(|e| e.to_string())
}

fn body(r: &CallToolResult) -> Value {
    crate::mcp::error_body(r).or_else(|| r.structured_content.clone()).unwrap_or(Value::Null)
}

fn out(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// The runbook name, its parameters and a connected client.
async fn open(
    args: &mut RunbookArgs,
) -> Result<(String, BTreeMap<String, String>, crate::cli::call::Connected), String> {
    let name = resolve(args)?;
    let given = params(&args.params)?;
    let conn = connect(&args.config, args.url.clone(), args.token_file.clone()).await?;
    Ok((name, given, conn))
}

/// `sshwarden runbook plan`: one row per step × host; exit 0 allowed, 3 denied, 1 error.
pub async fn plan(mut args: RunbookArgs) -> u8 {
    let (name, given, conn) = match open(&mut args).await {
        Ok(x) => x,
        Err(e) => return usage(&e),
    };
    let r = call(&conn.client, "ssh_plan_runbook", json!({ "name": name, "params": given })).await;
    conn.close().await;
    let r = match r {
        Ok(r) => r,
        Err(e) => return usage(&e),
    };
    let v = body(&r);
    if r.is_error == Some(true) {
        return usage(&format!("{}: {}", v["kind"].as_str().unwrap_or("error"), v["message"].as_str().unwrap_or("")));
    }
    if args.json {
        out(&v.to_string());
    } else {
        for s in v["steps"].as_array().into_iter().flatten() {
            let (phase, id, cmd) = (
                s["phase"].as_str().unwrap_or(""),
                s["id"].as_str().unwrap_or(""),
                s["command"].as_str().unwrap_or(""),
            );
            if let Some(e) = s["error"].as_str() {
                out(&format!("DENY  {phase:<8} {id:<16} -                    {e}"));
            }
            for g in s["groups"].as_array().into_iter().flatten() {
                // An `ask` step runs once a human approves it: ASK, not DENY.
                let verdict = format!("{:<5}", g["decision"].as_str().unwrap_or("deny").to_uppercase());
                let reason = g["reason"].as_str().unwrap_or("");
                out(&format!(
                    "{verdict} {phase:<8} {id:<16} {:<20} {cmd}  ({reason})",
                    g["hosts"].as_str().unwrap_or("")
                ));
            }
        }
        if let Some(batches) = v["batches"].as_array() {
            let shown: Vec<&str> = batches.iter().filter_map(Value::as_str).collect();
            out(&format!("batches  {}  (each through every step before the next)", shown.join(" | ")));
        }
        out(&format!("plan_hash {}", v["plan_hash"].as_str().unwrap_or("")));
    }
    if v["allowed"] == true { EXIT_OK } else { EXIT_DENIED }
}

fn usage(e: &str) -> u8 {
    eprintln!("error: {e}");
    EXIT_ERROR
}

/// `sshwarden runbook run`.
pub async fn run(mut args: RunbookArgs) -> u8 {
    // Listening before anything starts: SIGTERM (systemd, CI, a supervisor) must cancel the
    // run and let its rollback run, as Ctrl-C does, instead of killing us mid-step.
    let mut stop = match Stop::listen() {
        Ok(s) => s,
        Err(e) => return usage(&format!("cannot listen for SIGINT/SIGTERM: {e}")),
    };
    let (name, given, conn) = match open(&mut args).await {
        Ok(x) => x,
        Err(e) => return usage(&e),
    };
    let json_events = args.json || !std::io::stdout().is_terminal();
    // In process at a terminal, the operator is the approver of the run's `ask` steps (they
    // hold the configuration itself); elsewhere steps wait for the out-of-band approver.
    let asker = conn.local_service().filter(|_| crate::cli::call::at_terminal()).cloned();
    if let Some(svc) = &asker {
        svc.approvals.enable_out_of_band();
    }
    let code = drive(&conn.client, &name, given, args.plan_hash.clone(), json_events, &mut stop, asker.as_ref()).await;
    conn.close().await;
    if PROMPT_ABANDONED.load(std::sync::atomic::Ordering::SeqCst) {
        // The unanswered question's terminal read would hold the runtime's exit.
        std::process::exit(i32::from(code));
    }
    code
}

/// Set when a signal came while an approval question waited for its answer.
static PROMPT_ABANDONED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

async fn drive(
    client: &Client,
    name: &str,
    given: BTreeMap<String, String>,
    plan_hash: Option<String>,
    json_events: bool,
    stop: &mut Stop,
    asker: Option<&std::sync::Arc<crate::service::Service>>,
) -> u8 {
    let started =
        match call(client, "ssh_run_runbook", json!({ "name": name, "params": given, "plan_hash": plan_hash })).await {
            Ok(r) => r,
            Err(e) => return usage(&e),
        };
    let v = body(&started);
    if started.is_error == Some(true) {
        let kind = v["kind"].as_str().unwrap_or("error");
        eprintln!("{kind}: {}", v["message"].as_str().unwrap_or(""));
        return if kind == "policy_denied" { EXIT_DENIED } else { EXIT_ERROR };
    }
    let Some(task_id) = v["task_id"].as_str().map(str::to_owned) else { return usage("no task id returned") };
    let mut display = Display::new(json_events);
    let mut cancelled = false;
    let mut asked = std::collections::BTreeSet::new();
    loop {
        let status = match call(client, "ssh_get_task_status", json!({ "task_id": task_id })).await {
            Ok(r) => body(&r),
            Err(e) => return usage(&e),
        };
        display.update(&status["detail"]);
        if let (Some(svc), Some(run_id)) = (asker, status["detail"]["run_id"].as_str()) {
            // This run's pending step approvals, each asked once at the terminal.
            let mine = format!("run={run_id}");
            for request in svc.approvals.pending() {
                if request.client.split(' ').any(|w| w == mine) && asked.insert(request.id.clone()) {
                    let answer = tokio::select! {
                        yes = crate::cli::call::ask_at_terminal(request.message()) => Some(yes),
                        _ = stop.next() => None,
                    };
                    if let Err(e) = svc.decide_approval(&request.id, answer == Some(true), "terminal") {
                        eprintln!("approval {}: {e}", request.id);
                    }
                    if answer.is_none() && !cancelled {
                        // A signal at the question: denied, and the run is cancelled as usual.
                        cancelled = true;
                        PROMPT_ABANDONED.store(true, std::sync::atomic::Ordering::SeqCst);
                        eprintln!("cancelling: remote commands are stopped, then the rollback runs");
                        let _ = call(client, "ssh_cancel", json!({ "task_id": task_id })).await;
                    }
                }
            }
        }
        if !matches!(status["state"].as_str(), Some("queued" | "connecting" | "running")) {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(150)) => {}
            _ = stop.next(), if !cancelled => {
                cancelled = true;
                eprintln!("cancelling: remote commands are stopped, then the rollback runs");
                let _ = call(client, "ssh_cancel", json!({ "task_id": task_id })).await;
            }
        }
    }
    let result =
        call(client, "ssh_get_task_result", json!({ "task_id": task_id })).await.map(|r| body(&r)).unwrap_or_default();
    let report = &result["runbook"];
    if report.is_null() {
        // No report: the run never started (its runbook_start audit record was refused).
        eprintln!("runbook not run: {}", result["error"].as_str().unwrap_or("no report returned"));
        return EXIT_FAILED;
    }
    display.finish(report);
    if json_events {
        out(&json!({ "event": "report", "report": report }).to_string());
    }
    if report["outcome"] == "ok" { EXIT_OK } else { EXIT_FAILED }
}

/// Turns successive run reports into events (JSON lines) or indicatif bars.
struct Display {
    json: bool,
    seen: BTreeMap<String, String>,
    bars: Option<MultiProgress>,
    step_bars: BTreeMap<String, ProgressBar>,
}

impl Display {
    fn new(json: bool) -> Self {
        Self { json, seen: BTreeMap::new(), bars: (!json).then(MultiProgress::new), step_bars: BTreeMap::new() }
    }

    fn update(&mut self, report: &Value) {
        for step in report["steps"].as_array().into_iter().flatten() {
            let id = step["id"].as_str().unwrap_or("").to_owned();
            let status = step["status"].as_str().unwrap_or("").to_owned();
            let hosts = step["hosts"].as_array().map_or(0, Vec::len);
            let failed = step["hosts"].as_array().into_iter().flatten().filter(|h| h["status"] != "ok").count();
            let key = format!("{status}/{hosts}");
            if self.seen.get(&id) == Some(&key) {
                continue;
            }
            self.seen.insert(id.clone(), key);
            if self.json {
                out(&json!({ "event": "step", "step": id, "phase": step["phase"], "status": status, "hosts_done": hosts, "failed": failed }).to_string());
                continue;
            }
            if status == "pending" {
                continue;
            }
            let Some(multi) = &self.bars else { continue };
            let bar = self.step_bars.entry(id.clone()).or_insert_with(|| {
                let b = multi.add(ProgressBar::new_spinner());
                b.set_style(
                    ProgressStyle::with_template("{spinner} {prefix:<24} {msg} [{elapsed}]")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                b.set_prefix(format!("{} {id}", step["phase"].as_str().unwrap_or("")));
                b.enable_steady_tick(Duration::from_millis(120));
                b
            });
            bar.set_message(format!("{status}: {} ok, {failed} failed", hosts - failed));
            if !matches!(status.as_str(), "running") {
                // Frozen at the step's end: a finished bar is redrawn with the others, and an
                // `{elapsed}` there would keep counting.
                let took = bar.elapsed();
                bar.set_style(
                    ProgressStyle::with_template("  {prefix:<24} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.finish_with_message(format!(
                    "{status}: {} ok, {failed} failed [{:.1}s]",
                    hosts - failed,
                    took.as_secs_f64()
                ));
            }
        }
    }

    fn finish(&mut self, report: &Value) {
        self.update(report);
        for b in self.step_bars.values() {
            b.finish();
        }
        if !self.json {
            out(&format!(
                "runbook {}: {}{} (run {})",
                report["runbook"].as_str().unwrap_or(""),
                report["outcome"].as_str().unwrap_or("unknown"),
                if report["rollback_ran"] == true { ", rollback ran" } else { "" },
                report["run_id"].as_str().unwrap_or("")
            ));
            for s in report["steps"].as_array().into_iter().flatten() {
                for h in s["hosts"].as_array().into_iter().flatten().filter(|h| h["status"] != "ok") {
                    out(&format!(
                        "  {} {} {}: {} {}",
                        s["phase"].as_str().unwrap_or(""),
                        s["id"].as_str().unwrap_or(""),
                        h["alias"].as_str().unwrap_or(""),
                        h["status"].as_str().unwrap_or(""),
                        h["reason"].as_str().unwrap_or("")
                    ));
                    // What the host said about it: the last lines of its stderr.
                    let stderr = h["stderr"].as_str().unwrap_or("");
                    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
                    for line in &lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..] {
                        out(&format!("      stderr: {}", crate::policy::text::printable(line)));
                    }
                }
            }
        }
    }
}
