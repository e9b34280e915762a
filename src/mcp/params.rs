//! Tool parameters and results: the typed shapes MCP clients see (JSON Schema generated).
//!
//! Owns: names and documentation of every field. Names follow mcp-ssh-orchestrator where it
//! had the tool; `tag` and `alias` are accepted as the anchor's spellings of `target`.
//! Never holds behaviour.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::tasks::ring::Stream;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunParams {
    /// Host alias from the inventory (see ssh_list_hosts).
    pub alias: String,
    /// Shell command; it must pass the policy.
    pub command: String,
    /// Stop after this many seconds (at most, and by default, max_seconds).
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunAsyncParams {
    /// Host alias from the inventory.
    pub alias: String,
    /// Shell command to run; it must pass the policy.
    pub command: String,
    /// Stop after this many seconds (at most max_seconds).
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    /// Return the result if it finishes within this many seconds (max 60).
    #[serde(default)]
    pub wait_seconds: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanParams {
    /// Alias or pattern (`web*`, `web:&prod`, `all:!db1`).
    #[serde(alias = "alias")]
    pub target: String,
    /// The command to evaluate; nothing is run.
    pub command: String,
    /// `groups` (default): hosts folded by outcome; `hosts`: also a row per host.
    #[serde(default)]
    pub detail: Detail,
    /// Judge as `PRINCIPAL[:group,…]` (default: you).
    #[serde(default, rename = "as")]
    pub as_principal: Option<String>,
}

/// How much per-host detail a result over many hosts carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Detail {
    /// Outcomes folded by identical result; per-host rows only for hosts that did not succeed.
    #[default]
    Groups,
    /// A row for every host as well.
    Hosts,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FanoutParams {
    /// Host pattern (tag, alias, glob, `a:&b`, `a:!b`).
    #[serde(alias = "tag")]
    pub target: String,
    /// Shell command to run on every selected host.
    pub command: String,
    /// Hosts running at once (default 8).
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Hosts per batch (default: all).
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// No new batch past this % of failed hosts (default 100).
    #[serde(default)]
    pub max_fail_percentage: Option<f64>,
    /// Seconds per host before its command is stopped.
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    /// `groups` (default): hosts folded by outcome, rows for failures; `hosts`: a row each.
    #[serde(default)]
    pub detail: Detail,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskIdParams {
    /// Task id returned by ssh_run/ssh_run_async (`t` + 32 hex digits).
    pub task_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputParams {
    /// Task id.
    pub task_id: String,
    /// stdout, stderr or combined (default).
    #[serde(default)]
    pub stream: Option<Stream>,
    /// Byte offset (the previous page's next_offset).
    #[serde(default)]
    pub offset: Option<u64>,
    /// Bytes to return (default 16384, max 262144).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Instead of offset/limit: the last N lines (max 5000).
    #[serde(default)]
    pub tail_lines: Option<usize>,
    /// The anchor's name for tail_lines.
    #[serde(default)]
    pub max_lines: Option<usize>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListHostsParams {
    /// Optional host pattern; all hosts when absent.
    #[serde(default)]
    pub pattern: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListTasksParams {
    /// Only tasks in this state (running, completed, failed, lost, …).
    #[serde(default)]
    pub state: Option<String>,
    /// Only tasks on this host alias.
    #[serde(default)]
    pub alias: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AliasParams {
    /// Host alias from the inventory.
    pub alias: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetParams {
    /// Host alias or host pattern.
    #[serde(alias = "alias")]
    pub target: String,
}

/// The result of a command run.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RunResult {
    pub task_id: String,
    pub alias: String,
    pub target_ip: String,
    /// completed, failed, timed_out or cancelled.
    pub status: String,
    pub exit_code: Option<u32>,
    pub exit_signal: Option<String>,
    pub error: Option<String>,
    /// What kind of failure, when it has one a model should act on (`privilege_failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// What to change so the failure goes away (the sudoers line or secret that is missing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    pub duration_ms: u64,
    /// Inline stdout (head+tail within max_inline_output_bytes; page the rest by task_id).
    pub stdout: String,
    pub stderr: String,
    /// Some output is not inline or not retained; see stdout_bytes/stderr_bytes.
    pub truncated: bool,
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    /// For a runbook run: the run report (steps × hosts, outcome, rollback).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runbook: Option<serde_json::Value>,
}

/// A started (or already finished) async task.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AsyncStarted {
    pub task_id: String,
    pub status: String,
    pub ttl_seconds: u64,
    pub poll_interval_seconds: u64,
    /// Present when the task finished within wait_seconds.
    pub result: Option<RunResult>,
}

/// One page of a task's output.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OutputPage {
    pub task_id: String,
    pub stream: Stream,
    pub status: String,
    /// Text, or base64 when `encoding` is base64 (binary output).
    pub data: String,
    pub encoding: String,
    pub offset: u64,
    pub next_offset: u64,
    /// The task has finished and no bytes follow next_offset.
    pub eof: bool,
    /// Bytes skipped because they were not retained (head+tail buffer).
    pub dropped_bytes: u64,
    pub total_bytes: u64,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunbookPlanParams {
    /// Runbook name (see ssh_list_runbooks).
    pub name: String,
    /// Parameter values by name (strings, numbers or booleans).
    #[serde(default)]
    pub params: std::collections::BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunbookRunParams {
    /// Runbook name (see ssh_list_runbooks).
    pub name: String,
    /// Parameter values by name (strings, numbers or booleans).
    #[serde(default)]
    pub params: std::collections::BTreeMap<String, serde_json::Value>,
    /// The reviewed plan's plan_hash: refused if anything changed since.
    #[serde(default)]
    pub plan_hash: Option<String>,
    /// Watch up to this many seconds (max 60) before returning the task id.
    #[serde(default)]
    pub wait_seconds: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadParams {
    /// One host alias; or use `target` for several.
    #[serde(default)]
    pub alias: Option<String>,
    /// Host pattern: upload to every selected host.
    #[serde(default)]
    pub target: Option<String>,
    /// Absolute path on the host (a `files:` write rule).
    pub remote_path: String,
    /// Small UTF-8 content to write (at most max_output_bytes).
    #[serde(default)]
    pub content: Option<String>,
    /// Small binary content, base64-encoded.
    #[serde(default)]
    pub content_base64: Option<String>,
    /// A file under files.transfer_dir on this machine.
    #[serde(default)]
    pub local_path: Option<String>,
    /// Octal mode (`"0644"`; default: the replaced file's).
    #[serde(default)]
    pub mode: Option<String>,
    /// Hosts uploading at once, for `target` (default 8).
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Hosts per batch, for `target`.
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// No new batch past this % of failed hosts (default 100).
    #[serde(default)]
    pub max_fail_percentage: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DownloadParams {
    /// Host alias.
    pub alias: String,
    /// Absolute path on the host (a `files:` read rule).
    pub remote_path: String,
    /// Store it under files.transfer_dir (else inline, base64 when binary).
    #[serde(default)]
    pub local_path: Option<String>,
}
