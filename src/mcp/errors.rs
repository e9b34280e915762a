//! The one place domain errors become MCP tool results, like axum's single `IntoResponse`.
//!
//! The rule for error results: `isError: true`, **no `structuredContent`**, and one text
//! block holding the `{kind, message, hint, …}` object as JSON. Tools declare an
//! `outputSchema` for their success shape, and clients built on the TypeScript SDK validate
//! `structuredContent` against it even on errors (a mismatch becomes a protocol error that
//! hides the denial); JSON in text reaches every client and stays machine-readable
//! (`error_body` reads it back).
//!
//! Owns: error kinds and the hint a model can act on. Never logs, never carries secrets
//! (domain errors are built without them).

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Value, json};

use crate::service::ServiceError;
use crate::tasks::TaskError;

/// A failed or denied tool call the model can read and act on.
pub fn tool_error(kind: &str, message: &str, hint: &str, extra: Value) -> CallToolResult {
    let mut body = json!({ "kind": kind, "message": message, "hint": hint });
    if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
        b.extend(e);
    }
    CallToolResult::error(vec![ContentBlock::text(body.to_string())])
}

/// The `{kind, message, hint, …}` object of an error result, `None` for a success.
pub fn error_body(r: &CallToolResult) -> Option<Value> {
    if r.is_error != Some(true) {
        return None;
    }
    r.content
        .iter()
        .filter_map(|c| c.as_text())
        .find_map(|t| serde_json::from_str::<Value>(&t.text).ok().filter(|v| v.get("kind").is_some()))
}

/// A successful result: structured content plus a short text rendering.
pub fn ok(value: Value, summary: String) -> CallToolResult {
    let mut r = CallToolResult::structured(value);
    r.content = vec![ContentBlock::text(summary)];
    r
}

pub fn task_error(e: &TaskError) -> CallToolResult {
    match e {
        TaskError::Busy { .. } => tool_error(
            "busy",
            &e.to_string(),
            "Too many tasks are queued; wait for some to finish (ssh_list_tasks) and retry.",
            json!({}),
        ),
        TaskError::ShuttingDown => {
            tool_error("shutting_down", &e.to_string(), "The server is stopping; retry after it restarts.", json!({}))
        }
        TaskError::Expired(_) => tool_error(
            "expired",
            &e.to_string(),
            "Results are kept for task_result_ttl seconds after the task ends; run the command again if you need it.",
            json!({}),
        ),
        TaskError::Unknown(_) => tool_error(
            "unknown_task",
            &e.to_string(),
            "Use a task_id returned by ssh_run/ssh_run_async, or list them with ssh_list_tasks.",
            json!({}),
        ),
        TaskError::StillRunning(_) => tool_error(
            "still_running",
            &e.to_string(),
            "Wait for the task to finish or cancel it with ssh_cancel.",
            json!({}),
        ),
    }
}

pub fn service_error(e: &ServiceError) -> CallToolResult {
    let msg = e.to_string();
    match e {
        ServiceError::InvalidInput(_) => {
            tool_error("invalid_input", &msg, "Fix the parameter named in the message and retry.", json!({}))
        }
        ServiceError::UnknownHost(_) => tool_error(
            "unknown_host",
            &msg,
            "Call ssh_list_hosts for valid aliases; do not guess addresses.",
            json!({}),
        ),
        ServiceError::Denied(d) => tool_error(
            "policy_denied",
            &msg,
            "Do not try to work around the policy. Use ssh_plan to see what is allowed, explain the denial to the user, and ask whether the policy should change.",
            json!({ "rule": d.rule, "reason": d.reason, "denied_command": d.denied_command }),
        ),
        ServiceError::ApprovalRequired(_) => tool_error(
            "approval_required",
            &msg,
            "Nothing ran. The policy asks a human to approve this. Use a client that supports MCP elicitation, or ask an operator to approve it out of band (`sshwarden approvals list` / `approve ID` with the approver token), then retry.",
            json!({}),
        ),
        ServiceError::Network(_) => tool_error(
            "network_denied",
            &msg,
            "The host's address is outside the network policy or does not resolve; ask the operator to check servers.yml and policy.yml network rules.",
            json!({}),
        ),
        ServiceError::Audit(_) => tool_error(
            "audit_failed",
            &msg,
            "The audit log cannot be written, so nothing runs (fail-closed). Ask the operator to check the audit path and disk.",
            json!({}),
        ),
        ServiceError::Task(t) => task_error(t),
        ServiceError::RateLimited { retry_after_seconds, .. } => tool_error(
            "rate_limited",
            &msg,
            "Nothing ran: your quota is used up. Wait retry_after_seconds before trying again, and do less per call.",
            json!({ "retry_after_seconds": retry_after_seconds }),
        ),
        ServiceError::Config(_) => tool_error(
            "config_error",
            &msg,
            "The configuration files have errors; the previous configuration stays active.",
            json!({}),
        ),
    }
}
