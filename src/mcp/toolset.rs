//! Which tools a server exposes (`serve --tools PROFILE`): `all` (default), `read-only`
//! (look and plan: hosts, plans, preflight, task status and output, runbook lists and plans),
//! `run` (read-only plus running and cancelling commands), or an explicit comma list.
//!
//! Owns: the profiles and parsing them. A hidden tool is not listed and a call to it is
//! refused as unknown, on every path of the handler (plain, task-augmented, `/rpc`). Never
//! decides what a visible tool may do: the policy does.

use std::collections::BTreeSet;

const READ_ONLY: &[&str] = &[
    "ssh_ping",
    "ssh_list_hosts",
    "ssh_describe_host",
    "ssh_plan",
    "ssh_preflight",
    "ssh_get_task_status",
    "ssh_get_task_output",
    "ssh_get_task_result",
    "ssh_list_tasks",
    "ssh_list_runbooks",
    "ssh_plan_runbook",
];

const RUN: &[&str] =
    &["ssh_run", "ssh_run_async", "ssh_run_on_tag", "ssh_cancel", "ssh_cancel_async_task", "ssh_ack_task"];

/// The tools to expose: `None` is all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolSet(Option<BTreeSet<String>>);

impl ToolSet {
    /// `all`, `read-only`, `run`, or `name,name,…` (every name must be a tool of `known`).
    pub fn parse(spec: &str, known: &[String]) -> Result<Self, String> {
        let names: Vec<&str> = match spec.trim() {
            "all" => return Ok(Self(None)),
            "read-only" => READ_ONLY.to_vec(),
            "run" => READ_ONLY.iter().chain(RUN).copied().collect(),
            list => list.split(',').map(str::trim).filter(|n| !n.is_empty()).collect(),
        };
        if let Some(unknown) = names.iter().find(|n| !known.iter().any(|k| k == *n)) {
            return Err(format!(
                "--tools: {unknown:?} is not a tool (profiles: all, read-only, run; tools: {})",
                known.join(", ")
            ));
        }
        if names.is_empty() {
            return Err("--tools: name at least one tool, or a profile (all, read-only, run)".into());
        }
        Ok(Self(Some(names.into_iter().map(str::to_owned).collect())))
    }

    pub fn exposes(&self, tool: &str) -> bool {
        self.0.as_ref().is_none_or(|set| set.contains(tool))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_and_lists_name_real_tools() {
        let known: Vec<String> = READ_ONLY.iter().chain(RUN).chain(&["ssh_upload"]).map(|s| s.to_string()).collect();
        let ro = ToolSet::parse("read-only", &known).unwrap();
        assert!(ro.exposes("ssh_plan") && !ro.exposes("ssh_run") && !ro.exposes("ssh_upload"));
        let run = ToolSet::parse("run", &known).unwrap();
        assert!(run.exposes("ssh_run") && !run.exposes("ssh_upload"));
        assert!(ToolSet::parse("all", &known).unwrap().exposes("ssh_upload"));
        assert!(ToolSet::parse("ssh_plan, ssh_run", &known).unwrap().exposes("ssh_run"));
        assert!(ToolSet::parse("ssh_plan,ssh_rm", &known).unwrap_err().contains("ssh_rm"));
    }
}
