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

/// A run in progress, as every step sees it: the service, the client its commands run
/// under (`… run=<id>`), the report, and the watcher that sees each event with the report
/// so far.
pub(super) struct Running<'a> {
    pub svc: &'a Arc<Service>,
    pub client: &'a str,
    pub report: RunReport,
    pub on_event: &'a mut (dyn FnMut(&Value, &RunReport) + Send),
}

impl Running<'_> {
    /// Tells the watcher, with the report as it stands.
    pub fn event(&mut self, event: Value) {
        (self.on_event)(&event, &self.report);
    }
}
use crate::runbook::Step;
use crate::service::Service;
use crate::service::fanout::{self, FanoutOptions, HostEntry, HostStatus};
use crate::tasks::TaskState;
use crate::tasks::ring::inline_text;

/// Output kept per host in a run report (head+tail).
const REPORT_OUTPUT_BYTES: usize = 2048;

/// One step on `hosts`: batches of hosts, expect, retries, the failure threshold. `true` when
/// every host met `expect`.
pub(super) async fn run_step(
    run: &mut Running<'_>,
    sp: &StepPlan,
    step: &Step,
    hosts: Vec<String>,
    cancel: &CancellationToken,
    index: usize,
) -> bool {
    let Some(rendered) = &sp.rendered else { return false };
    let (svc, client) = (run.svc, run.client);
    let reported_before = run.report.steps[index].hosts.len();
    run.report.steps[index].status = StepStatus::Running;
    run.event(json!({ "event": "step_started", "step": sp.id, "phase": sp.phase, "hosts": hosts.len() }));
    // An `ask` step waits for an out-of-band approver (a run has no user to ask).
    let approval = match svc.approval_needed(&hosts, &rendered.command, client) {
        None => None,
        Some(mut request) => {
            // The human approves the step as written, retries included.
            request.uses_per_host = step.retries.saturating_add(1);
            run.event(
                json!({ "event": "approval_requested", "step": sp.id, "approval_id": request.id, "hosts": request.hosts, "timeout_seconds": request.timeout_seconds }),
            );
            match svc.obtain_approval_or_cancel(&request, crate::service::approvals::Via::OutOfBand, cancel).await {
                Ok(id) => Some(id),
                Err(e) => {
                    return fail_step(run, sp, index, &hosts, HostOutcome::Skipped, &e.to_string());
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
                run.report.steps[index].hosts.push(HostReport::without_task(alias, HostOutcome::Skipped, why));
            }
            continue;
        }
        let attempts = Attempts { sp, step, command: &rendered.command, opts: &opts, cancel, index };
        if let Err(why) = attempts.until_done(chunk.to_vec(), run).await {
            // Refused before any host started (the command itself): the step failed, it did
            // not succeed on zero hosts.
            return fail_step(run, sp, index, &hosts, HostOutcome::Failed, &why);
        }
        let reported = &run.report.steps[index].hosts[reported_before..];
        failures = reported.iter().filter(|h| h.status != HostOutcome::Ok).count();
        stopped = failures as f64 * 100.0 / hosts.len().max(1) as f64 > step.max_fail_percentage;
    }
    let report = &mut run.report.steps[index];
    report.groups = groups(&report.hosts);
    let ok = failures == 0 && !cancel.is_cancelled();
    // A rolling run reaches a step once per batch: it failed if it failed in any batch.
    let failed_before = report.hosts.iter().any(|h| h.status != HostOutcome::Ok);
    report.status = if cancel.is_cancelled() {
        StepStatus::Cancelled
    } else if ok && !failed_before {
        StepStatus::Ok
    } else {
        StepStatus::Failed
    };
    let status = report.status;
    run.event(
        json!({ "event": "step_done", "step": sp.id, "phase": sp.phase, "status": status, "failed_hosts": failures }),
    );
    ok
}

/// One batch of a step's hosts, attempted until each met `expect` or ran out of retries.
struct Attempts<'a> {
    sp: &'a StepPlan,
    step: &'a Step,
    command: &'a str,
    opts: &'a FanoutOptions,
    cancel: &'a CancellationToken,
    index: usize,
}

impl Attempts<'_> {
    /// Runs `pending`, retries the hosts that missed `expect`; each host's final outcome goes
    /// into the report. `Err`: the fan-out was refused before any host started.
    async fn until_done(&self, mut pending: Vec<String>, run: &mut Running<'_>) -> Result<(), String> {
        let (step, cancel, svc) = (self.step, self.cancel, run.svc);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let entries = fanout::run(svc, &pending, self.command, self.opts, Some(run.client), cancel, |_, _, _| {})
                .await
                .map_err(|e| e.to_string())?;
            let mut retry = Vec::new();
            for e in entries {
                let mut host = judge(&e, step, attempt);
                svc.mask_text(&mut host.stdout);
                svc.mask_text(&mut host.stderr);
                let done = host.status == HostOutcome::Ok || attempt > step.retries || cancel.is_cancelled();
                run.event(
                    json!({ "event": "host_done", "step": self.sp.id, "alias": host.alias, "status": host.status, "exit_code": host.exit_code, "attempt": attempt, "final": done }),
                );
                if done {
                    run.report.steps[self.index].hosts.push(host);
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
    run: &mut Running<'_>,
    sp: &StepPlan,
    index: usize,
    hosts: &[String],
    status: HostOutcome,
    why: &str,
) -> bool {
    let step = &mut run.report.steps[index];
    step.hosts.extend(hosts.iter().map(|alias| HostReport::without_task(alias, status, why)));
    step.groups = groups(&step.hosts);
    step.status = StepStatus::Failed;
    run.event(
        json!({ "event": "step_done", "step": sp.id, "phase": sp.phase, "status": StepStatus::Failed, "failed_hosts": hosts.len(), "reason": why }),
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
