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

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::report::groups;
pub use super::report::{BatchReport, HostOutcome, HostReport, RunReport, StepReport, StepStatus};
use super::{RunbookPlan, StepPlan};
use crate::runbook::{OnFailure, Runbook, Step};
use crate::service::Service;
use crate::service::fanout::{self, FanoutOptions, HostEntry, HostStatus};
use crate::tasks::TaskState;
use crate::tasks::ring::inline_text;

/// Output kept per host in a run report (head+tail).
const REPORT_OUTPUT_BYTES: usize = 2048;

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
) -> Result<RunReport, crate::audit::AuditError> {
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
                status: StepStatus::Pending,
                groups: Vec::new(),
                hosts: Vec::new(),
            })
            .collect(),
        batches: plan
            .batches
            .iter()
            .map(|hosts| BatchReport { hosts: hosts.clone(), status: StepStatus::Pending })
            .collect(),
    };
    let start = json!({ "run_id": run_id, "runbook": runbook.name, "runbook_sha256": runbook.sha256, "params": plan.params, "plan_hash": plan.plan_hash });
    // No durable start record, no run: the steps would run unaccounted for as a run.
    if let Err(e) = svc.audit(Some(client), "runbook_start", start.clone(), true) {
        svc.forget_secrets(&run_id);
        return Err(e);
    }
    on_event(&json!({ "event": "run_started", "run": start }), &report);

    let definitions: Vec<&Step> = runbook.steps.iter().chain(&runbook.rollback).collect();
    let mut progress = Progress { aborted: false, ran_commands: false };
    if plan.batch_hosts.is_empty() {
        run_steps(svc, plan, &definitions, None, &step_client, cancel, &mut progress, &mut report, &mut on_event).await;
    } else {
        run_batches(svc, runbook, plan, &definitions, &step_client, cancel, &mut progress, &mut report, &mut on_event)
            .await;
    }
    let Progress { aborted, ran_commands } = progress;
    if aborted && ran_commands && !runbook.rollback.is_empty() {
        report.rollback_ran = true;
        on_event(&json!({ "event": "rollback_started" }), &report);
        // Rollback runs to its end even after a cancel: it is what undoes the change.
        let rollback_cancel = CancellationToken::new();
        for (i, sp) in plan.steps.iter().enumerate().filter(|(_, s)| s.phase == "rollback") {
            let hosts = sp.rows.iter().map(|r| r.alias.clone()).collect();
            run_step(svc, sp, definitions[i], hosts, &step_client, &rollback_cancel, i, &mut report, &mut on_event)
                .await;
        }
    }
    for s in report.steps.iter_mut().filter(|s| s.status == StepStatus::Pending) {
        s.status = StepStatus::Skipped;
    }
    let failed = report.steps.iter().any(|s| s.phase == "step" && s.status == StepStatus::Failed);
    report.outcome = if cancel.is_cancelled() {
        "cancelled"
    } else if failed {
        "failed"
    } else {
        "ok"
    }
    .into();
    let end = json!({ "run_id": run_id, "runbook": runbook.name, "outcome": report.outcome, "rollback_ran": report.rollback_ran });
    svc.audit_or_warn(Some(client), "runbook_end", end.clone());
    on_event(&json!({ "event": "run_done", "run": end }), &report);
    svc.forget_secrets(&run_id);
    Ok(report)
}

/// Where a run is: stopped (a step aborted, a cancel, the failure threshold), and whether
/// any command ran (only then does a rollback have something to undo).
struct Progress {
    aborted: bool,
    ran_commands: bool,
}

/// The steps in order, each on its hosts (within `batch` when rolling).
#[allow(clippy::too_many_arguments)]
async fn run_steps(
    svc: &Arc<Service>,
    plan: &RunbookPlan,
    definitions: &[&Step],
    batch: Option<&[String]>,
    client: &str,
    cancel: &CancellationToken,
    progress: &mut Progress,
    report: &mut RunReport,
    on_event: &mut impl FnMut(&Value, &RunReport),
) {
    for (i, sp) in plan.steps.iter().enumerate().filter(|(_, s)| s.phase == "step") {
        if progress.aborted || cancel.is_cancelled() {
            if report.steps[i].status == StepStatus::Pending {
                report.steps[i].status =
                    if cancel.is_cancelled() { StepStatus::Cancelled } else { StepStatus::Skipped };
            }
            continue;
        }
        let hosts: Vec<String> =
            sp.rows.iter().map(|r| r.alias.clone()).filter(|a| batch.is_none_or(|b| b.contains(a))).collect();
        if hosts.is_empty() && batch.is_some() {
            continue;
        }
        let ok = run_step(svc, sp, definitions[i], hosts, client, cancel, i, report, on_event).await;
        progress.ran_commands |= report.steps[i].hosts.iter().any(|h| h.task_id.is_some());
        progress.aborted = cancel.is_cancelled() || (!ok && definitions[i].on_failure == OnFailure::Abort);
    }
}

/// A rolling run: each batch through every step, then the run's failure threshold decides
/// whether the next batch starts.
#[allow(clippy::too_many_arguments)]
async fn run_batches(
    svc: &Arc<Service>,
    runbook: &Runbook,
    plan: &RunbookPlan,
    definitions: &[&Step],
    client: &str,
    cancel: &CancellationToken,
    progress: &mut Progress,
    report: &mut RunReport,
    on_event: &mut impl FnMut(&Value, &RunReport),
) {
    let total = plan.batch_hosts.iter().map(Vec::len).sum::<usize>().max(1);
    for (b, batch) in plan.batch_hosts.iter().enumerate() {
        if progress.aborted || cancel.is_cancelled() {
            report.batches[b].status = if cancel.is_cancelled() { StepStatus::Cancelled } else { StepStatus::Skipped };
            continue;
        }
        report.batches[b].status = StepStatus::Running;
        on_event(&json!({ "event": "batch_started", "batch": b + 1, "hosts": report.batches[b].hosts }), report);
        run_steps(svc, plan, definitions, Some(batch), client, cancel, progress, report, on_event).await;
        let failed = failed_hosts(report);
        let batch_failed = batch.iter().any(|a| failed.contains(a));
        let failed_count = failed.len();
        report.batches[b].status = if cancel.is_cancelled() {
            StepStatus::Cancelled
        } else if batch_failed || progress.aborted {
            StepStatus::Failed
        } else {
            StepStatus::Ok
        };
        let share = failed_count as f64 * 100.0 / total as f64;
        // Past the last batch there is nothing left to stop: the run ends failed, as without
        // `serial:`, and only an aborting step rolls back.
        let past_threshold = share > runbook.max_fail_percentage && b + 1 < plan.batch_hosts.len();
        on_event(
            &json!({ "event": "batch_done", "batch": b + 1, "status": report.batches[b].status, "failed_hosts": failed_count, "failed_percentage": share }),
            report,
        );
        if past_threshold && !progress.aborted {
            on_event(
                &json!({ "event": "run_stopped", "reason": format!("{share:.0}% of hosts failed, above max_fail_percentage {}", runbook.max_fail_percentage) }),
                report,
            );
        }
        progress.aborted |= past_threshold;
    }
}

/// Hosts that missed a step's `expect` so far (rollback steps aside).
fn failed_hosts(report: &RunReport) -> std::collections::BTreeSet<String> {
    report
        .steps
        .iter()
        .filter(|s| s.phase == "step")
        .flat_map(|s| s.hosts.iter().filter(|h| h.status != HostOutcome::Ok).map(|h| h.alias.clone()))
        .collect()
}

/// One step on `hosts`: batches of hosts, expect, retries, the failure threshold. `true` when
/// every host met `expect`.
#[allow(clippy::too_many_arguments)]
async fn run_step(
    svc: &Arc<Service>,
    sp: &StepPlan,
    step: &Step,
    hosts: Vec<String>,
    client: &str,
    cancel: &CancellationToken,
    index: usize,
    report: &mut RunReport,
    on_event: &mut impl FnMut(&Value, &RunReport),
) -> bool {
    let Some(rendered) = &sp.rendered else { return false };
    let reported_before = report.steps[index].hosts.len();
    report.steps[index].status = StepStatus::Running;
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
            match svc.obtain_approval(&request, crate::service::approvals::Via::OutOfBand).await {
                Ok(id) => Some(id),
                Err(e) => {
                    return fail_step(sp, index, &hosts, HostOutcome::Skipped, &e.to_string(), report, on_event);
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
                report.steps[index].hosts.push(HostReport::without_task(alias, HostOutcome::Skipped, why));
            }
            continue;
        }
        let mut pending: Vec<String> = chunk.to_vec();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let entries =
                match fanout::run(svc, &pending, &rendered.command, &opts, Some(client), cancel, |_, _, _| {}).await {
                    Ok(entries) => entries,
                    // Refused before any host started (the command itself): the step failed,
                    // it did not succeed on zero hosts.
                    Err(e) => {
                        return fail_step(sp, index, &hosts, HostOutcome::Failed, &e.to_string(), report, on_event);
                    }
                };
            let mut retry = Vec::new();
            for e in entries {
                let mut host = judge(&e, step, attempt);
                svc.mask_text(&mut host.stdout);
                svc.mask_text(&mut host.stderr);
                let done = host.status == HostOutcome::Ok || attempt > step.retries || cancel.is_cancelled();
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
        failures = report.steps[index].hosts[reported_before..].iter().filter(|h| h.status != HostOutcome::Ok).count();
        stopped = failures as f64 * 100.0 / hosts.len().max(1) as f64 > step.max_fail_percentage;
    }
    report.steps[index].groups = groups(&report.steps[index].hosts);
    let ok = failures == 0 && !cancel.is_cancelled();
    // A rolling run reaches a step once per batch: it failed if it failed in any batch.
    let failed_before = report.steps[index].hosts.iter().any(|h| h.status != HostOutcome::Ok);
    report.steps[index].status = if cancel.is_cancelled() {
        StepStatus::Cancelled
    } else if ok && !failed_before {
        StepStatus::Ok
    } else {
        StepStatus::Failed
    };
    on_event(
        &json!({ "event": "step_done", "step": sp.id, "phase": sp.phase, "status": report.steps[index].status, "failed_hosts": failures }),
        report,
    );
    ok
}

/// Ends a step as failed before its hosts ran: each host gets `status` and `why`.
fn fail_step(
    sp: &StepPlan,
    index: usize,
    hosts: &[String],
    status: HostOutcome,
    why: &str,
    report: &mut RunReport,
    on_event: &mut impl FnMut(&Value, &RunReport),
) -> bool {
    let step = &mut report.steps[index];
    step.hosts.extend(hosts.iter().map(|alias| HostReport::without_task(alias, status, why)));
    step.groups = groups(&step.hosts);
    step.status = StepStatus::Failed;
    on_event(
        &json!({ "event": "step_done", "step": sp.id, "phase": sp.phase, "status": StepStatus::Failed, "failed_hosts": hosts.len(), "reason": why }),
        report,
    );
    false
}

/// Judges one host's outcome by the step's `expect` (exit codes, stdout regex).
fn judge(e: &HostEntry, step: &Step, attempt: u32) -> HostReport {
    let status = match e.status {
        HostStatus::Denied => HostOutcome::Denied,
        HostStatus::Unreachable => HostOutcome::Unreachable,
        HostStatus::Skipped => HostOutcome::Cancelled,
        HostStatus::Ok | HostStatus::Failed => HostOutcome::Failed,
    };
    let mut h = HostReport::without_task(&e.alias, status, "");
    h.attempts = attempt;
    h.reason = e.reason.clone();
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
                h.status = HostOutcome::Ok;
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
        TaskState::Cancelled { .. } => h.status = HostOutcome::Cancelled,
        _ => {}
    }
    h
}
