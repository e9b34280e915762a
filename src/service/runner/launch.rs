//! Starting a planned run as one task of the service's task manager: its deadline, its
//! rollback's stop grace, and the work that drives `exec::execute` and publishes the report
//! as the task's detail (one JSON event per line on its stdout).
//!
//! Owns: the run's task. Never starts a host command itself: every step goes through
//! `fanout::run` → `Service::prepare_with` → `launch`, the gate every command meets.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::RunbookPlan;
use super::StepPlan;
use super::exec;
use crate::runbook::{Runbook, Step};
use crate::service::{Service, ServiceError};
use crate::tasks::ring::Stream;
use crate::tasks::{Task, TaskSpec, WorkOutcome};

/// Starts the run `exec::start` accepted; the task ends when the run (and any rollback) did.
pub fn launch(
    svc: &Arc<Service>,
    rb: Runbook,
    plan: RunbookPlan,
    values: BTreeMap<String, String>,
    client: String,
) -> Result<Arc<Task>, ServiceError> {
    let limits = svc.config().policy.default_limits();
    let rollback_plans = plan.steps.get(rb.steps.len()..).unwrap_or(&[]);
    let rolling = !plan.batch_hosts.is_empty();
    let spec = TaskSpec {
        alias: format!("runbook:{}", rb.name),
        target_ip: String::new(),
        command_sha256: rb.sha256.clone(),
        command: format!("runbook {}", rb.name),
        owner: crate::service::task_owner(&client),
        host_slots: 16,
        timeout: run_deadline(rb.steps.iter().chain(&rb.rollback), &plan.steps, rolling, limits.max_seconds),
        // A run past its deadline is cancelled, and the rollback is what undoes it: give it
        // its steps' own timeouts, not the few seconds a single command gets to stop.
        stop_grace: run_deadline(&rb.rollback, rollback_plans, false, limits.max_seconds),
        ttl: Duration::from_secs(limits.task_result_ttl),
        output_cap: limits.max_output_bytes,
        kill_on_output_limit: false,
    };
    let svc2 = svc.clone();
    let work: crate::tasks::Work = Box::new(move |tctx| {
        Box::pin(async move {
            tctx.set_running();
            let report = exec::execute(&svc2, &rb, &plan, &values, &client, &tctx.cancel, |event, report| {
                tctx.sink.write(Stream::Stdout, format!("{event}\n").as_bytes());
                tctx.task().set_detail(json!(report));
            })
            .await;
            match report.as_ref().map(|r| r.outcome.as_str()) {
                Ok("ok") => WorkOutcome::Exited { exit_code: Some(0), exit_signal: None },
                Ok("cancelled") => WorkOutcome::Stopped,
                Ok(_) => WorkOutcome::Exited { exit_code: Some(4), exit_signal: None },
                Err(e) => WorkOutcome::Failed(
                    format!("refused: the runbook_start audit record could not be written, nothing ran ({e})").into(),
                ),
            }
        })
    });
    // The run's own task writes no start record: `execute` writes `runbook_start` (durable)
    // before the first step, and each host command its own `task_start`.
    svc.tasks.spawn(spec, work).map_err(ServiceError::Task)
}

/// An upper bound for running `defs` (planned as `plans`): every step's timeout × attempts
/// × batches, plus retry delays, plus a minute. A rolling run reaches a step once per
/// batch of the run, so every host may be a batch of its own.
fn run_deadline<'a>(
    defs: impl IntoIterator<Item = &'a Step>,
    plans: &[StepPlan],
    rolling: bool,
    max_seconds: u64,
) -> Duration {
    let secs: u64 = defs
        .into_iter()
        .zip(plans)
        .map(|(d, p)| {
            let hosts = p.rows.len().max(1);
            let batches = if rolling { hosts } else { hosts.div_ceil(d.batch_size.unwrap_or(hosts).max(1)) } as u64;
            let attempts = u64::from(d.retries) + 1;
            batches * attempts * (d.timeout_seconds.unwrap_or(max_seconds) + d.retry_delay_seconds)
        })
        .sum();
    Duration::from_secs(secs + 60)
}
