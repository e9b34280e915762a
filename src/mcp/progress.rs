//! Waits for tasks while telling the client how they are doing.
//!
//! Owns: `notifications/progress` for a request's progress token, on state changes and at
//! least every `task_progress_interval` (quiet commands get a heartbeat), never after the
//! response; and turning the request's cancellation into a task cancel (which stops the
//! remote command). Never decides what a task does.

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::{Peer, RoleServer};
use tokio_util::sync::CancellationToken;

use crate::service::Service;
use crate::tasks::{Task, TaskState};

/// Sends numbered progress notifications for one request.
pub struct Reporter {
    peer: Peer<RoleServer>,
    token: Option<ProgressToken>,
    sent: u64,
}

impl Reporter {
    pub fn new(peer: Peer<RoleServer>, token: Option<ProgressToken>) -> Self {
        Self { peer, token, sent: 0 }
    }

    /// `progress` is monotonic: the caller passes work done (hosts, or notifications sent).
    pub async fn send(&mut self, progress: Option<f64>, total: Option<f64>, message: String) {
        let Some(token) = self.token.clone() else {
            return;
        };
        self.sent += 1;
        let mut p = ProgressNotificationParam::new(token, progress.unwrap_or(self.sent as f64)).with_message(message);
        if let Some(t) = total {
            p = p.with_total(t);
        }
        // A client that went away is not an error for the command.
        let _ = self.peer.notify_progress(p).await;
    }
}

pub fn describe(task: &Task) -> String {
    let s = task.snapshot();
    format!(
        "{} on {}: {} B out, {} B err, {} lines, {:.1} s",
        s.state.name(),
        s.alias,
        s.stdout_bytes,
        s.stderr_bytes,
        s.lines,
        s.elapsed_ms as f64 / 1000.0
    )
}

/// Waits for `task` to finish, reporting progress. If the request is cancelled, the task is
/// cancelled (remote command stopped) and this still waits for it to end, bounded.
pub async fn wait(
    svc: &Arc<Service>,
    task: &Arc<Task>,
    reporter: &mut Reporter,
    interval: Duration,
    request: &CancellationToken,
) -> TaskState {
    let mut rx = task.subscribe();
    let mut last_state = String::new();
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(200)));
    tick.tick().await;
    loop {
        let state = task.state();
        if state.is_finished() {
            return state;
        }
        if state.name() != last_state {
            last_state = state.name().to_owned();
            reporter.send(None, None, describe(task)).await;
        }
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return task.state() },
            _ = tick.tick() => reporter.send(None, None, describe(task)).await,
            _ = request.cancelled() => {
                let _ = svc.cancel(&task.id, Some("mcp notifications/cancelled"));
                return tokio::time::timeout(Duration::from_secs(10), task.finished()).await.unwrap_or_else(|_| task.state());
            }
        }
    }
}
