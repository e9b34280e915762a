//! Running a planned runbook: steps in order, each a fan-out in batches through the same
//! gates as `ssh_run_on_tag` (`fanout::run` → `Service::prepare`/`launch`: policy, precheck,
//! durable audit, task), judged per host by the step's `expect`, retried, and on an abort
//! or a cancel: what runs is stopped, later steps never start, and `rollback` runs.
//!
//! Owns: run semantics, the run report and its events, `runbook_start`/`runbook_end`
//! audit records (every step record carries `run=<id>` in its client). Never runs a step
//! the plan did not allow: `start` refuses a denied plan or a changed `plan_hash`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{RunbookPlan, StepPlan};
use crate::fanout::{self, FanoutOptions, HostEntry, HostStatus};
use crate::runbook::{OnFailure, Runbook, Step};
use crate::service::Service;
use crate::tasks::TaskState;
use crate::tasks::ring::inline_text;

/// Output kept per host in a run report (head+tail).
const REPORT_OUTPUT_BYTES: usize = 2048;

#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    pub alias: String,
    /// ok, failed, denied, unreachable, skipped or cancelled.
    pub status: String,
    pub exit_code: Option<u32>,
    pub duration_ms: Option<u64>,
    pub task_id: Option<String>,
    pub attempts: u32,
    pub reason: Option<String>,
    pub stdout: String,
    pub stderr: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub id: String,
    pub phase: &'static str,
    /// pending, running, ok, failed, skipped or cancelled.
    pub status: String,
    /// Hosts with the same outcome folded (`h[1-98]`), largest first, as `ssh_run_on_tag`.
    pub groups: Vec<Value>,
    pub hosts: Vec<HostReport>,
}

/// Folds a step's hosts by (status, exit code, stdout, stderr).
fn groups(hosts: &[HostReport]) -> Vec<Value> {
    crate::hostset::group_by(hosts, |h| (&h.status, h.exit_code, &h.stdout, &h.stderr))
        .into_iter()
        .map(|members| {
            let h = &hosts[members[0]];
            let aliases: Vec<&str> = members.iter().map(|&i| hosts[i].alias.as_str()).collect();
            json!({ "hosts": crate::hostset::fold(&aliases), "count": members.len(), "status": h.status, "exit_code": h.exit_code, "stdout": h.stdout, "stderr": h.stderr, "task_id": h.task_id })
        })
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run_id: String,
    pub runbook: String,
    pub plan_hash: String,
    /// running, ok, failed or cancelled.
    pub outcome: String,
    pub rollback_ran: bool,
    pub steps: Vec<StepReport>,
}

/// Why a run did not start.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StartError {
    #[error("invalid parameters: {}", .0.join("; "))]
    Params(Vec<String>),
    #[error("denied, nothing ran: {0}")]
    Denied(String),
    #[error(
        "plan_hash mismatch, nothing ran: you reviewed {reviewed}, the plan is now {current} (config {config}, runbook sha256 {runbook}, params {params}); review the new plan"
    )]
    PlanChanged { reviewed: String, current: String, config: String, runbook: String, params: String },
}

/// Binds parameters and plans the whole runbook; refuses a denied plan or one that differs
/// from the `plan_hash` the operator reviewed.
pub async fn start(
    svc: &Service,
    runbook: &Runbook,
    params: &BTreeMap<String, String>,
    reviewed: Option<&str>,
) -> Result<(RunbookPlan, BTreeMap<String, String>), StartError> {
    let values = runbook.bind(params).map_err(StartError::Params)?;
    let cfg = svc.config();
    let plan = super::plan(&cfg, runbook, &values, svc.resolver()).await;
    if let Some(h) = reviewed.filter(|h| *h != plan.plan_hash) {
        return Err(StartError::PlanChanged {
            reviewed: h.to_owned(),
            current: plan.plan_hash.clone(),
            config: cfg.hash[..12].to_owned(),
            runbook: plan.runbook_sha256[..12].to_owned(),
            params: json!(plan.params).to_string(),
        });
    }
    if !plan.allowed {
        return Err(StartError::Denied(plan.first_denial().unwrap_or_else(|| "denied".into())));
    }
    Ok((plan, values))
}

/// Runs a plan `start` accepted. `on_event` sees every event with the report so far.
pub async fn execute(
    svc: &Arc<Service>,
    runbook: &Runbook,
    plan: &RunbookPlan,
    values: &BTreeMap<String, String>,
    client: &str,
    cancel: &CancellationToken,
    mut on_event: impl FnMut(&Value, &RunReport),
) -> RunReport {
    let run_id = format!("r{:032x}", rand::random::<u128>());
    svc.register_secrets(&run_id, runbook.secrets(values));
    let step_client = format!("{client} run={run_id}");
    let mut report = RunReport {
        run_id: run_id.clone(),
        runbook: runbook.name.clone(),
        plan_hash: plan.plan_hash.clone(),
        outcome: "running".into(),
        rollback_ran: false,
        steps: plan
            .steps
            .iter()
            .map(|s| StepReport {
                id: s.id.clone(),
                phase: s.phase,
                status: "pending".into(),
                groups: Vec::new(),
                hosts: Vec::new(),
            })
            .collect(),
    };
    let start = json!({ "run_id": run_id, "runbook": runbook.name, "runbook_sha256": runbook.sha256, "params": plan.params, "plan_hash": plan.plan_hash });
    let _ = svc.audit(Some(client), "runbook_start", start.clone(), true);
    on_event(&json!({ "event": "run_started", "run": start }), &report);

    let definitions: Vec<&Step> = runbook.steps.iter().chain(&runbook.rollback).collect();
    let mut aborted = false;
    let mut ran_commands = false;
    for (i, sp) in plan.steps.iter().enumerate().filter(|(_, s)| s.phase == "step") {
        if aborted || cancel.is_cancelled() {
            report.steps[i].status = if cancel.is_cancelled() { "cancelled" } else { "skipped" }.into();
            continue;
        }
        let ok = run_step(svc, sp, definitions[i], &step_client, cancel, i, &mut report, &mut on_event).await;
        ran_commands |= report.steps[i].hosts.iter().any(|h| h.task_id.is_some());
        aborted = cancel.is_cancelled() || (!ok && definitions[i].on_failure == OnFailure::Abort);
    }
    if aborted && ran_commands && !runbook.rollback.is_empty() {
        report.rollback_ran = true;
        on_event(&json!({ "event": "rollback_started" }), &report);
        // Rollback runs to its end even after a cancel: it is what undoes the change.
        let rollback_cancel = CancellationToken::new();
        for (i, sp) in plan.steps.iter().enumerate().filter(|(_, s)| s.phase == "rollback") {
            run_step(svc, sp, definitions[i], &step_client, &rollback_cancel, i, &mut report, &mut on_event).await;
        }
    }
    for s in report.steps.iter_mut().filter(|s| s.status == "pending") {
        s.status = "skipped".into();
    }
    let failed = report.steps.iter().any(|s| s.phase == "step" && s.status == "failed");
    report.outcome = if cancel.is_cancelled() {
        "cancelled"
    } else if failed {
        "failed"
    } else {
        "ok"
    }
    .into();
    let end = json!({ "run_id": run_id, "runbook": runbook.name, "outcome": report.outcome, "rollback_ran": report.rollback_ran });
    let _ = svc.audit(Some(client), "runbook_end", end.clone(), false);
    on_event(&json!({ "event": "run_done", "run": end }), &report);
    svc.forget_secrets(&run_id);
    report
}

/// One step: batches of hosts, expect, retries, the failure threshold. `true` when every
/// host met `expect`.
#[allow(clippy::too_many_arguments)]
async fn run_step(
    svc: &Arc<Service>,
    sp: &StepPlan,
    step: &Step,
    client: &str,
    cancel: &CancellationToken,
    index: usize,
    report: &mut RunReport,
    on_event: &mut impl FnMut(&Value, &RunReport),
) -> bool {
    let Some(rendered) = &sp.rendered else { return false };
    let hosts: Vec<String> = sp.rows.iter().map(|r| r.alias.clone()).collect();
    report.steps[index].status = "running".into();
    on_event(&json!({ "event": "step_started", "step": sp.id, "phase": sp.phase, "hosts": hosts.len() }), report);
    // An `ask` step waits for an out-of-band approver (a run has no user to ask).
    let approval = match svc.approval_needed(&hosts, &rendered.command, client) {
        None => None,
        Some(mut request) => {
            // The human approves the step as written, retries included.
            request.uses_per_host = step.retries.saturating_add(1);
            on_event(
                &json!({ "event": "approval_requested", "step": sp.id, "approval_id": request.id, "hosts": request.hosts, "timeout_seconds": request.timeout_seconds }),
                report,
            );
            match svc.obtain_approval(&request, crate::approvals::Via::OutOfBand).await {
                Ok(id) => Some(id),
                Err(e) => {
                    for alias in &hosts {
                        report.steps[index].hosts.push(skipped(alias, &e.to_string()));
                    }
                    report.steps[index].status = "failed".into();
                    return false;
                }
            }
        }
    };
    let opts = FanoutOptions {
        concurrency: step.concurrency,
        batch_size: None,
        max_fail_percentage: 100.0,
        timeout_seconds: step.timeout_seconds,
        approval,
    };
    let batch = step.batch_size.unwrap_or(hosts.len()).max(1);
    let mut failures = 0usize;
    let mut stopped = false;
    for chunk in hosts.chunks(batch) {
        if stopped || cancel.is_cancelled() {
            for alias in chunk {
                let why = if stopped { "max_fail_percentage reached" } else { "cancelled" };
                report.steps[index].hosts.push(skipped(alias, why));
            }
            continue;
        }
        let mut pending: Vec<String> = chunk.to_vec();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let entries = fanout::run(svc, &pending, &rendered.command, &opts, Some(client), cancel, |_, _, _| {})
                .await
                .unwrap_or_default();
            let mut retry = Vec::new();
            for e in entries {
                let mut host = judge(&e, step, attempt);
                svc.mask_text(&mut host.stdout);
                svc.mask_text(&mut host.stderr);
                let done = host.status == "ok" || attempt > step.retries || cancel.is_cancelled();
                on_event(
                    &json!({ "event": "host_done", "step": sp.id, "alias": host.alias, "status": host.status, "exit_code": host.exit_code, "attempt": attempt, "final": done }),
                    report,
                );
                if done {
                    report.steps[index].hosts.push(host);
                } else {
                    retry.push(e.alias.clone());
                }
            }
            if retry.is_empty() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(step.retry_delay_seconds)) => {}
                _ = cancel.cancelled() => {}
            }
            pending = retry;
        }
        failures = report.steps[index].hosts.iter().filter(|h| h.status != "ok").count();
        stopped = failures as f64 * 100.0 / hosts.len().max(1) as f64 > step.max_fail_percentage;
    }
    report.steps[index].groups = groups(&report.steps[index].hosts);
    let ok = failures == 0 && !cancel.is_cancelled();
    report.steps[index].status = if cancel.is_cancelled() {
        "cancelled"
    } else if ok {
        "ok"
    } else {
        "failed"
    }
    .into();
    on_event(
        &json!({ "event": "step_done", "step": sp.id, "phase": sp.phase, "status": report.steps[index].status, "failed_hosts": failures }),
        report,
    );
    ok
}

fn skipped(alias: &str, why: &str) -> HostReport {
    HostReport {
        alias: alias.to_owned(),
        status: "skipped".into(),
        exit_code: None,
        duration_ms: None,
        task_id: None,
        attempts: 0,
        reason: Some(why.into()),
        stdout: String::new(),
        stderr: String::new(),
    }
}

/// Judges one host's outcome by the step's `expect` (exit codes, stdout regex).
fn judge(e: &HostEntry, step: &Step, attempt: u32) -> HostReport {
    let mut h = skipped(&e.alias, "");
    h.attempts = attempt;
    h.reason = e.reason.clone();
    h.status = match e.status {
        HostStatus::Denied => "denied",
        HostStatus::Unreachable => "unreachable",
        HostStatus::Skipped => "cancelled",
        HostStatus::Ok | HostStatus::Failed => "failed",
    }
    .into();
    let Some(task) = &e.task else { return h };
    h.task_id = Some(task.id.clone());
    let snap = task.snapshot();
    h.duration_ms = Some(snap.elapsed_ms);
    {
        let out = task.output();
        h.stdout = inline_text(&out.stdout, REPORT_OUTPUT_BYTES).0;
        h.stderr = inline_text(&out.stderr, REPORT_OUTPUT_BYTES).0;
    }
    match snap.state {
        TaskState::Completed { exit_code, .. } => {
            h.exit_code = exit_code;
            let exit_ok = exit_code.is_some_and(|c| step.expect.exit.contains(&c));
            let out_ok = step.expect.stdout_regex.as_ref().is_none_or(|re| re.is_match(&h.stdout));
            if exit_ok && out_ok {
                h.status = "ok".into();
                h.reason = None;
            } else if exit_ok {
                h.reason = Some("stdout does not match expect.stdout_regex".into());
            } else {
                h.reason = Some(match exit_code {
                    Some(c) => format!("exit code {c}, expected one of {:?}", step.expect.exit),
                    None => "ended without an exit status".into(),
                });
            }
        }
        TaskState::Cancelled { .. } => h.status = "cancelled".into(),
        _ => {}
    }
    h
}
