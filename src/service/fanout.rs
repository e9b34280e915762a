//! Running one command on many hosts: batches, a concurrency cap, a failure threshold.
//!
//! Owns: the per-host outcome (ok, failed, denied, unreachable, skipped) and the summary.
//! Every host goes through the same gates as a single run (`Service::prepare`/`launch`).
//! Never speaks a protocol: progress leaves through a callback.

use std::sync::Arc;

use futures::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::inventory::select;
use crate::service::{Service, ServiceError, check_command};
use crate::tasks::{FailureKind, Task, TaskState};

#[derive(Debug, Clone)]
pub struct FanoutOptions {
    pub concurrency: usize,
    pub batch_size: Option<usize>,
    pub max_fail_percentage: f64,
    pub timeout_seconds: Option<u64>,
    /// A granted approval (`approvals.rs`) for hosts whose decision is `ask`.
    pub approval: Option<String>,
}

/// How one host fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HostStatus {
    Ok,
    Failed,
    Denied,
    Unreachable,
    Skipped,
}

/// One host's entry; `task` is set when a command was started.
#[derive(Debug, Clone)]
pub struct HostEntry {
    pub alias: String,
    pub status: HostStatus,
    pub reason: Option<String>,
    pub task: Option<Arc<Task>>,
}

/// The aliases `pattern` selects, in inventory order, within `execution.max_fanout_hosts`.
pub fn targets(svc: &Service, pattern: &str) -> Result<Vec<String>, ServiceError> {
    let cfg = svc.config();
    let hosts: Vec<String> = select::select(&cfg.hosts, pattern)
        .map_err(|e| ServiceError::InvalidInput(e.to_string()))?
        .into_iter()
        .map(|h| h.alias.clone())
        .collect();
    let limit = cfg.policy.execution.max_fanout_hosts;
    if hosts.len() > limit {
        return Err(ServiceError::InvalidInput(format!(
            "pattern selects {} hosts; the limit is {limit} (execution.max_fanout_hosts)",
            hosts.len()
        )));
    }
    Ok(hosts)
}

/// Runs `command` on `hosts` (from `targets`) batch by batch; stops starting batches past
/// the failure threshold.
pub async fn run(
    svc: &Arc<Service>,
    hosts: &[String],
    command: &str,
    opts: &FanoutOptions,
    client: Option<&str>,
    cancel: &CancellationToken,
    progress: impl FnMut(usize, usize, &HostEntry),
) -> Result<Vec<HostEntry>, ServiceError> {
    check_command(command)?;
    let start = |alias: String| -> futures::future::BoxFuture<'_, Result<Arc<Task>, ServiceError>> {
        Box::pin(async move {
            let (task, _) =
                svc.start_command(&alias, command, opts.timeout_seconds, client, opts.approval.as_deref()).await?;
            Ok(task)
        })
    };
    run_with(svc, hosts, opts, client, cancel, &start, progress).await
}

/// What a fan-out starts on one host: a task that passed every gate, or the gate's refusal.
pub type Start<'a> = dyn Fn(String) -> futures::future::BoxFuture<'a, Result<Arc<Task>, ServiceError>> + Sync + 'a;

/// The batch/concurrency/threshold engine behind `run`, for any per-host task (`start`):
/// commands and file transfers fan out the same way.
pub async fn run_with<'a>(
    svc: &Arc<Service>,
    hosts: &[String],
    opts: &FanoutOptions,
    client: Option<&str>,
    cancel: &CancellationToken,
    start: &Start<'a>,
    mut progress: impl FnMut(usize, usize, &HostEntry),
) -> Result<Vec<HostEntry>, ServiceError> {
    let total = hosts.len();
    svc.charge_fanout(client, total)?;
    let batch = opts.batch_size.unwrap_or(total).clamp(1, total.max(1));
    let gate = Arc::new(Semaphore::new(opts.concurrency.clamp(1, 256)));
    let mut entries: Vec<HostEntry> = Vec::with_capacity(total);
    let mut failures = 0usize;
    for chunk in hosts.chunks(batch) {
        let over = failures as f64 * 100.0 / total as f64 > opts.max_fail_percentage;
        if over || cancel.is_cancelled() {
            for alias in chunk {
                let why = if over { "max_fail_percentage reached" } else { "cancelled" };
                let e = HostEntry {
                    alias: alias.clone(),
                    status: HostStatus::Skipped,
                    reason: Some(why.into()),
                    task: None,
                };
                progress(entries.len() + 1, total, &e);
                entries.push(e);
            }
            continue;
        }
        let mut running: FuturesUnordered<_> =
            chunk.iter().map(|alias| one(svc, alias, start, client, gate.clone(), cancel)).collect();
        while let Some(e) = running.next().await {
            if matches!(e.status, HostStatus::Failed | HostStatus::Unreachable) {
                failures += 1;
            }
            progress(entries.len() + 1, total, &e);
            entries.push(e);
        }
    }
    // Report in inventory order, whatever order hosts finished in.
    entries.sort_by_key(|e| hosts.iter().position(|h| *h == e.alias));
    Ok(entries)
}

async fn one(
    svc: &Arc<Service>,
    alias: &str,
    start: &Start<'_>,
    client: Option<&str>,
    gate: Arc<Semaphore>,
    cancel: &CancellationToken,
) -> HostEntry {
    let entry = |status, reason: Option<String>, task| HostEntry { alias: alias.to_owned(), status, reason, task };
    let _permit = gate.acquire_owned().await;
    if cancel.is_cancelled() {
        return entry(HostStatus::Skipped, Some("cancelled".into()), None);
    }
    let task = match start(alias.to_owned()).await {
        Ok(t) => t,
        Err(ServiceError::Denied(d)) => return entry(HostStatus::Denied, Some(d.reason), None),
        Err(e @ ServiceError::ApprovalRequired(_)) => return entry(HostStatus::Denied, Some(e.to_string()), None),
        Err(ServiceError::Network(e)) => {
            return entry(HostStatus::Unreachable, Some(e.to_string()), None);
        }
        Err(e) => return entry(HostStatus::Failed, Some(e.to_string()), None),
    };
    let state = tokio::select! {
        s = task.finished() => s,
        _ = cancel.cancelled() => {
            let _ = svc.cancel(&task.id, client);
            task.finished().await
        }
    };
    let (status, reason) = match &state {
        TaskState::Completed { exit_code: Some(0), .. } => (HostStatus::Ok, None),
        TaskState::Completed { exit_code, exit_signal } => {
            let why = match (exit_code, exit_signal) {
                (Some(code), _) => format!("exit code {code}"),
                (None, Some(signal)) => format!("killed by signal {signal}"),
                (None, None) => "ended without an exit status".to_owned(),
            };
            (HostStatus::Failed, Some(why))
        }
        TaskState::Failed { error, kind } => {
            let status = match kind {
                FailureKind::Unreachable => HostStatus::Unreachable,
                FailureKind::Denied => HostStatus::Denied,
                FailureKind::Error | FailureKind::PrivilegeFailed => HostStatus::Failed,
            };
            (status, Some(error.clone()))
        }
        other => (HostStatus::Failed, Some(other.name().to_owned())),
    };
    entry(status, reason, Some(task))
}
