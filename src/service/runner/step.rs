//! One step of a run on its hosts: the step's approval (an `ask` step waits for an
//! out-of-band approver, retries included in the ticket), its own batches and failure
//! threshold, attempts and retries, and each host judged by `expect`.
//!
//! Owns: a step's outcome in the report and its events. Never starts a command except
//! through `fanout::run` (the gate every command meets).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::StepPlan;
use super::report::{HostOutcome, HostReport, RunReport, StepStatus, groups};
use crate::runbook::Step;
use crate::service::Service;
use crate::service::fanout::{self, FanoutOptions, HostEntry, HostStatus};
use crate::tasks::TaskState;
use crate::tasks::ring::inline_text;

/// Output kept per host in a run report (head+tail).
const REPORT_OUTPUT_BYTES: usize = 2048;

/// One step on `hosts`: batches of hosts, expect, retries, the failure threshold. `true` when
/// every host met `expect`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run_step(
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
            match svc.obtain_approval_or_cancel(&request, crate::service::approvals::Via::OutOfBand, cancel).await {
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
        let run = Attempts { svc, sp, step, command: &rendered.command, opts: &opts, client, cancel, index };
        if let Err(why) = run.until_done(chunk.to_vec(), report, on_event).await {
            // Refused before any host started (the command itself): the step failed, it did
            // not succeed on zero hosts.
            return fail_step(sp, index, &hosts, HostOutcome::Failed, &why, report, on_event);
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

/// One batch of a step's hosts, attempted until each met `expect` or ran out of retries.
struct Attempts<'a> {
    svc: &'a Arc<Service>,
    sp: &'a StepPlan,
    step: &'a Step,
    command: &'a str,
    opts: &'a FanoutOptions,
    client: &'a str,
    cancel: &'a CancellationToken,
    index: usize,
}

impl Attempts<'_> {
    /// Runs `pending`, retries the hosts that missed `expect`; each host's final outcome goes
    /// into the report. `Err`: the fan-out was refused before any host started.
    async fn until_done(
        &self,
        mut pending: Vec<String>,
        report: &mut RunReport,
        on_event: &mut impl FnMut(&Value, &RunReport),
    ) -> Result<(), String> {
        let (step, cancel) = (self.step, self.cancel);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let entries =
                fanout::run(self.svc, &pending, self.command, self.opts, Some(self.client), cancel, |_, _, _| {})
                    .await
                    .map_err(|e| e.to_string())?;
            let mut retry = Vec::new();
            for e in entries {
                let mut host = judge(&e, step, attempt);
                self.svc.mask_text(&mut host.stdout);
                self.svc.mask_text(&mut host.stderr);
                let done = host.status == HostOutcome::Ok || attempt > step.retries || cancel.is_cancelled();
                on_event(
                    &json!({ "event": "host_done", "step": self.sp.id, "alias": host.alias, "status": host.status, "exit_code": host.exit_code, "attempt": attempt, "final": done }),
                    report,
                );
                if done {
                    report.steps[self.index].hosts.push(host);
                } else {
                    retry.push(e.alias.clone());
                }
            }
            if retry.is_empty() {
                return Ok(());
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(step.retry_delay_seconds)) => {}
                _ = cancel.cancelled() => {}
            }
            pending = retry;
        }
    }
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
