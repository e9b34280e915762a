//! Tasks a restart lost: a `task_start` in the audit log with no `task_end` (the process
//! stopped while they ran, so their outcome is unknown).
//!
//! Owns: the list (read from the audit log at start), and clearing an entry once an
//! operator checked the host (`ssh_ack_task`): a `task_end` record with state `lost`, so the
//! next start no longer reports it. Never touches hosts or guesses an outcome.

use serde_json::{Value, json};

use crate::audit::AuditError;
use crate::service::Service;
use crate::tasks::lock;

/// How to clear lost tasks, for the startup warning and the tool's text.
pub const HOW_TO_CLEAR: &str =
    "check what they did on their hosts, then clear each with ssh_ack_task (`sshwarden call ssh_ack_task task_id=ID`)";

impl Service {
    /// Tasks that started before the last restart and never ended (from the audit log),
    /// not yet acknowledged.
    pub fn lost_tasks(&self) -> Vec<Value> {
        lock(&self.lost).clone()
    }

    /// Acknowledges lost task `id`: records its end as `lost` and forgets it. `None` when
    /// `id` is not a lost task; `Err` when the record could not be written (it stays listed,
    /// or the next start would report it again).
    pub fn ack_lost_task(&self, id: &str, client: Option<&str>) -> Option<Result<(), AuditError>> {
        let mut lost = lock(&self.lost);
        let at = lost.iter().position(|v| v["task_id"] == id)?;
        let started = &lost[at];
        let fields = json!({ "task_id": id, "alias": started["alias"], "state": "lost", "acknowledged": true, "started_at": started["ts"] });
        if let Err(e) = self.audit(client, "task_end", fields, true) {
            return Some(Err(e));
        }
        lost.remove(at);
        Some(Ok(()))
    }
}
