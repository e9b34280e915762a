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

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::RunbookPlan;
pub use super::report::{BatchReport, HostOutcome, HostReport, RunReport, StepReport, StepStatus};
use super::step::{Running, run_step};
use crate::runbook::{OnFailure, Runbook, Step};
use crate::service::Service;

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
    who: &crate::policy::Principal,
    reviewed: Option<&str>,
) -> Result<(RunbookPlan, BTreeMap<String, String>), StartError> {
    let values = runbook.bind(params).map_err(StartError::Params)?;
    let cfg = svc.config();
    let plan = super::plan(&cfg, runbook, &values, who, svc.resolver()).await;
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
    mut on_event: impl FnMut(&Value, &RunReport) + Send,
) -> Result<RunReport, crate::audit::AuditError> {
    let run_id = format!("r{:032x}", rand::random::<u128>());
    svc.register_secrets(&run_id, runbook.secrets(values));
    let step_client = format!("{client} run={run_id}");
    let report = RunReport {
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
    let mut run = Running { svc, client: &step_client, report, on_event: &mut on_event };
    run.event(json!({ "event": "run_started", "run": start }));

    let definitions: Vec<&Step> = runbook.steps.iter().chain(&runbook.rollback).collect();
    let mut progress = Progress { aborted: false, ran_commands: false };
    if plan.batch_hosts.is_empty() {
        run_steps(&mut run, plan, &definitions, None, cancel, &mut progress).await;
    } else {
        run_batches(&mut run, runbook, plan, &definitions, cancel, &mut progress).await;
    }
    let Progress { aborted, ran_commands } = progress;
    if aborted && ran_commands && !runbook.rollback.is_empty() {
        run.report.rollback_ran = true;
        run.event(json!({ "event": "rollback_started" }));
        // Rollback runs to its end even after a cancel: it is what undoes the change.
        let rollback_cancel = CancellationToken::new();
        for (i, sp) in plan.steps.iter().enumerate().filter(|(_, s)| s.phase == "rollback") {
            let hosts = sp.rows.iter().map(|r| r.alias.clone()).collect();
            run_step(&mut run, sp, definitions[i], hosts, &rollback_cancel, i).await;
        }
    }
    let Running { mut report, on_event, .. } = run;
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
async fn run_steps(
    run: &mut Running<'_>,
    plan: &RunbookPlan,
    definitions: &[&Step],
    batch: Option<&[String]>,
    cancel: &CancellationToken,
    progress: &mut Progress,
) {
    for (i, sp) in plan.steps.iter().enumerate().filter(|(_, s)| s.phase == "step") {
        if progress.aborted || cancel.is_cancelled() {
            if run.report.steps[i].status == StepStatus::Pending {
                run.report.steps[i].status =
                    if cancel.is_cancelled() { StepStatus::Cancelled } else { StepStatus::Skipped };
            }
            continue;
        }
        let hosts: Vec<String> =
            sp.rows.iter().map(|r| r.alias.clone()).filter(|a| batch.is_none_or(|b| b.contains(a))).collect();
        if hosts.is_empty() && batch.is_some() {
            continue;
        }
        let ok = run_step(run, sp, definitions[i], hosts, cancel, i).await;
        progress.ran_commands |= run.report.steps[i].hosts.iter().any(|h| h.task_id.is_some());
        progress.aborted = cancel.is_cancelled() || (!ok && definitions[i].on_failure == OnFailure::Abort);
    }
}

/// A rolling run: each batch through every step, then the run's failure threshold decides
/// whether the next batch starts.
async fn run_batches(
    run: &mut Running<'_>,
    runbook: &Runbook,
    plan: &RunbookPlan,
    definitions: &[&Step],
    cancel: &CancellationToken,
    progress: &mut Progress,
) {
    let total = plan.batch_hosts.iter().map(Vec::len).sum::<usize>().max(1);
    for (b, batch) in plan.batch_hosts.iter().enumerate() {
        if progress.aborted || cancel.is_cancelled() {
            run.report.batches[b].status =
                if cancel.is_cancelled() { StepStatus::Cancelled } else { StepStatus::Skipped };
            continue;
        }
        run.report.batches[b].status = StepStatus::Running;
        let hosts = run.report.batches[b].hosts.clone();
        run.event(json!({ "event": "batch_started", "batch": b + 1, "hosts": hosts }));
        run_steps(run, plan, definitions, Some(batch), cancel, progress).await;
        let failed = failed_hosts(&run.report);
        let batch_failed = batch.iter().any(|a| failed.contains(a));
        let failed_count = failed.len();
        run.report.batches[b].status = if cancel.is_cancelled() {
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
        let status = run.report.batches[b].status;
        run.event(
            json!({ "event": "batch_done", "batch": b + 1, "status": status, "failed_hosts": failed_count, "failed_percentage": share }),
        );
        if past_threshold && !progress.aborted {
            run.event(
                json!({ "event": "run_stopped", "reason": format!("{share:.0}% of hosts failed, above max_fail_percentage {}", runbook.max_fail_percentage) }),
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
