//! One task and its consistent snapshot.
//!
//! Owns: a task's shared state (state enum, output buffers, cancel token, change channel)
//! and how it is observed. Never schedules (that is `TaskManager`).

use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, MutexGuard};

use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{CancelledBy, Output, TaskSpec, TaskState, lock, now_ms};

/// One task. Shared between the manager, its tokio task and readers.
#[derive(Debug)]
pub struct Task {
    pub id: String,
    pub spec: TaskSpec,
    pub created_at_ms: u64,
    pub(super) started: Instant,
    pub(super) state: Mutex<(TaskState, u64)>,
    pub(super) output: Mutex<Output>,
    pub(super) cancel: CancellationToken,
    pub(super) cancelled_by: Mutex<Option<CancelledBy>>,
    pub(super) timed_out: AtomicBool,
    pub(super) changes: watch::Sender<u64>,
    pub(super) finished_at: Mutex<Option<Instant>>,
    /// Structured progress the work publishes (a runbook run's step states).
    pub(super) detail: Mutex<Option<serde_json::Value>>,
}

/// A consistent view of a task for status replies.
#[derive(Debug, Clone, Serialize)]
pub struct TaskSnapshot {
    pub task_id: String,
    pub alias: String,
    pub target_ip: String,
    /// The command as shown (masked; absent when redacted).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub command: String,
    #[serde(flatten)]
    pub state: TaskState,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    pub elapsed_ms: u64,
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    pub lines: u64,
    pub truncated: bool,
    pub output_evicted: bool,
    pub expires_in_seconds: Option<u64>,
    /// What the work published about itself (a runbook run: its steps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
    /// Who started it: the principal (with `auth:`), else the client's name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub started_by: String,
}

impl Task {
    pub fn state(&self) -> TaskState {
        lock(&self.state).0.clone()
    }

    /// Publishes structured progress (shown by status replies).
    pub fn detail(&self) -> Option<serde_json::Value> {
        lock(&self.detail).clone()
    }

    pub fn set_detail(&self, detail: serde_json::Value) {
        *lock(&self.detail) = Some(detail);
        self.changes.send_modify(|v| *v += 1);
    }

    pub(super) fn set_state(&self, s: TaskState) {
        *lock(&self.state) = (s, now_ms());
        self.changes.send_modify(|v| *v += 1);
    }

    pub fn output(&self) -> MutexGuard<'_, Output> {
        lock(&self.output)
    }

    /// A receiver that changes on every state change and output chunk.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub fn snapshot(&self) -> TaskSnapshot {
        let (state, updated) = lock(&self.state).clone();
        let out = self.output();
        let finished = *lock(&self.finished_at);
        let elapsed = finished.unwrap_or_else(Instant::now).duration_since(self.started);
        let expires = finished.map(|f| (f + self.spec.ttl).saturating_duration_since(Instant::now()).as_secs());
        TaskSnapshot {
            task_id: self.id.clone(),
            alias: self.spec.alias.clone(),
            target_ip: self.spec.target_ip.clone(),
            command: self.spec.command.clone(),
            state,
            created_at_ms: self.created_at_ms,
            updated_at_ms: updated,
            elapsed_ms: elapsed.as_millis() as u64,
            stdout_bytes: out.stdout.total(),
            stderr_bytes: out.stderr.total(),
            lines: out.lines,
            truncated: out.truncated(),
            output_evicted: out.evicted,
            expires_in_seconds: expires,
            detail: lock(&self.detail).clone(),
            started_by: self.spec.owner.strip_prefix("principal=").unwrap_or(&self.spec.owner).to_owned(),
        }
    }

    /// Waits until the task has finished and returns its final state.
    pub async fn finished(&self) -> TaskState {
        let mut rx = self.subscribe();
        loop {
            let s = self.state();
            if s.is_finished() {
                return s;
            }
            if rx.changed().await.is_err() {
                return self.state();
            }
        }
    }
}
