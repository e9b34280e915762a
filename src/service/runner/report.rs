//! The run report of a runbook: per step and per host, what happened, as the MCP result,
//! the task's `detail` and `sshwarden runbook run` show it.
//!
//! Owns: the report types and their statuses (enums serialized as the lower-case names
//! clients read), and the folding of a step's hosts into groups. Never runs anything.

use serde::Serialize;
use serde_json::{Value, json};

/// How one host fared in a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostOutcome {
    Ok,
    Failed,
    Denied,
    Unreachable,
    Skipped,
    Cancelled,
}

/// Where a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Pending,
    Running,
    Ok,
    Failed,
    Skipped,
    Cancelled,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    pub alias: String,
    pub status: HostOutcome,
    pub exit_code: Option<u32>,
    pub duration_ms: Option<u64>,
    pub task_id: Option<String>,
    pub attempts: u32,
    pub reason: Option<String>,
    pub stdout: String,
    pub stderr: String,
}

impl HostReport {
    /// A host that got no command, with the reason.
    pub fn without_task(alias: &str, status: HostOutcome, why: &str) -> Self {
        Self {
            alias: alias.to_owned(),
            status,
            exit_code: None,
            duration_ms: None,
            task_id: None,
            attempts: 0,
            reason: Some(why.into()),
            stdout: String::new(),
            stderr: String::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub id: String,
    pub phase: &'static str,
    pub status: StepStatus,
    /// Hosts with the same outcome folded (`h[1-98]`), largest first, as `ssh_run_on_tag`.
    pub groups: Vec<Value>,
    pub hosts: Vec<HostReport>,
}

/// Folds a step's hosts by (status, exit code, stdout, stderr).
pub fn groups(hosts: &[HostReport]) -> Vec<Value> {
    crate::inventory::hostset::fold_groups(hosts, |h| (h.status, h.exit_code, &h.stdout, &h.stderr), |h| &h.alias)
        .into_iter()
        .map(|g| {
            let h = &hosts[g.members[0]];
            json!({ "hosts": g.hosts, "count": g.members.len(), "status": h.status, "exit_code": h.exit_code, "stdout": h.stdout, "stderr": h.stderr, "task_id": h.task_id })
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
    /// A rolling run's batches in order; empty when the runbook has no `serial:`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub batches: Vec<BatchReport>,
}

/// One batch of a rolling run: its hosts (folded) and how it ended.
#[derive(Debug, Clone, Serialize)]
pub struct BatchReport {
    pub hosts: String,
    pub status: StepStatus,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_serialize_as_the_names_clients_read() {
        let names: Vec<Value> = [StepStatus::Pending, StepStatus::Running, StepStatus::Cancelled]
            .iter()
            .map(|s| json!(s))
            .chain([HostOutcome::Ok, HostOutcome::Unreachable, HostOutcome::Skipped].iter().map(|s| json!(s)))
            .collect();
        assert_eq!(
            names,
            vec![
                json!("pending"),
                json!("running"),
                json!("cancelled"),
                json!("ok"),
                json!("unreachable"),
                json!("skipped")
            ]
        );
    }
}
