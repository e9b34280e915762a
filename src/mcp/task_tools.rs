//! The task tools in protocol terms: `ssh_task_status`, `ssh_task_result`,
//! `ssh_task_output`, `ssh_cancel`, `ssh_list_tasks`, `ssh_ack_task`; re-exported by
//! `ops.rs`.
//!
//! Owns: the task id check (refused before lookup) and the caller-scoped lookup. Never
//! starts a task or names russh.

use std::sync::Arc;

use rmcp::RoleServer;
use rmcp::model::CallToolResult;
use rmcp::service::RequestContext;
use serde_json::json;

use super::errors::{ok, service_error, task_error, tool_error};
use super::ops::{client_of, finished};
use super::params::{ListTasksParams, OutputParams};
use super::{progress, render};
use crate::service::Service;
use crate::tasks::ring::Stream;
use crate::tasks::{Task, TaskError};

/// Task ids are `t` + 32 lowercase hex digits; anything else is refused before lookup.
fn check_task_id(id: &str) -> Result<(), CallToolResult> {
    let valid = id.len() == 33 && id.starts_with('t') && id[1..].chars().all(|c| c.is_ascii_hexdigit());
    if valid {
        Ok(())
    } else {
        Err(tool_error(
            "invalid_input",
            &format!("task_id {:?} is not a sshwarden task id", id.chars().take(80).collect::<String>()),
            "Use the task_id exactly as ssh_run/ssh_run_async returned it.",
            json!({}),
        ))
    }
}

fn lookup(svc: &Service, id: &str, client: &str) -> Result<Arc<Task>, CallToolResult> {
    check_task_id(id)?;
    svc.tasks().get_for(id, client).map_err(|e| task_error(&e))
}

pub fn status(svc: &Service, id: &str, client: &str) -> CallToolResult {
    if let Some(lost) = svc.lost_tasks().iter().find(|v| v["task_id"] == id) {
        return ok(
            json!({ "task_id": id, "state": "lost", "started": lost }),
            format!("task {id} was running when the server stopped; its outcome is unknown"),
        );
    }
    match lookup(svc, id, client) {
        Ok(t) => {
            let s = t.snapshot();
            ok(serde_json::to_value(&s).unwrap_or_default(), progress::describe(&t))
        }
        Err(e) => e,
    }
}

pub fn result(svc: &Service, id: &str, client: &str) -> CallToolResult {
    match lookup(svc, id, client) {
        Ok(t) if t.state().is_finished() => finished(svc, &t),
        Ok(t) => tool_error(
            "still_running",
            &format!("task {id} is {}", t.state().name()),
            "Poll ssh_get_task_status, or read live output with ssh_get_task_output.",
            json!({ "status": t.state().name() }),
        ),
        Err(e) => e,
    }
}

pub fn output(svc: &Service, p: OutputParams, client: &str) -> CallToolResult {
    let limit = p.limit.unwrap_or(render::DEFAULT_PAGE);
    if limit == 0
        || limit > render::MAX_PAGE
        || p.tail_lines.or(p.max_lines).is_some_and(|n| n == 0 || n > render::MAX_TAIL_LINES)
    {
        return tool_error(
            "invalid_input",
            &format!("limit must be 1..={} bytes and tail_lines 1..={}", render::MAX_PAGE, render::MAX_TAIL_LINES),
            "Use smaller pages and follow next_offset.",
            json!({}),
        );
    }
    let task = match lookup(svc, &p.task_id, client) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let page = render::output_page(
        &task,
        p.stream.unwrap_or(Stream::Combined),
        p.offset.unwrap_or(0),
        limit,
        p.tail_lines.or(p.max_lines),
        &svc.config().policy.redact_output,
    );
    let text = format!(
        "{} bytes at {} (next {}, eof {})\n{}",
        page.next_offset - page.offset,
        page.offset,
        page.next_offset,
        page.eof,
        page.data
    );
    ok(serde_json::to_value(&page).unwrap_or_default(), text)
}

pub fn cancel(svc: &Service, id: &str, ctx: &RequestContext<RoleServer>) -> CallToolResult {
    if let Err(e) = check_task_id(id) {
        return e;
    }
    match svc.cancel_as(id, &client_of(ctx)) {
        Ok(before) if before.is_finished() => ok(
            json!({ "task_id": id, "cancelled": false, "state": before.name(), "message": "task had already finished" }),
            format!("task {id} had already finished ({})", before.name()),
        ),
        Ok(before) => ok(
            json!({ "task_id": id, "cancelled": true, "state_before": before.name(), "message": "cancellation signalled; the remote command is being stopped" }),
            format!("cancelling task {id}"),
        ),
        Err(e) => service_error(&e),
    }
}

pub fn list_tasks(svc: &Service, p: ListTasksParams, client: &str) -> CallToolResult {
    let mut tasks: Vec<serde_json::Value> = svc
        .tasks()
        .list_for(client)
        .into_iter()
        .filter(|s| p.alias.as_ref().is_none_or(|a| *a == s.alias))
        .filter(|s| p.state.as_ref().is_none_or(|st| st == s.state.name()))
        .map(|s| {
            let mut row = serde_json::to_value(s).unwrap_or_default();
            // One type for every row, lost ones included: RFC 3339 text (a finished or queued
            // task: when it was created).
            let started = row["started_at"].as_u64().or(row["created_at_ms"].as_u64()).map(super::tasks_ext::iso);
            row["started_at"] = json!(started);
            row
        })
        .collect();
    if p.state.as_deref().is_none_or(|s| s == "lost") {
        tasks.extend(
            svc.lost_tasks().iter().filter(|v| p.alias.as_ref().is_none_or(|a| v["alias"] == **a)).map(
                |v| json!({ "task_id": v["task_id"], "alias": v["alias"], "state": "lost", "started_at": v["ts"] }),
            ),
        );
    }
    let text = format!("{} tasks", tasks.len());
    ok(json!({ "tasks": tasks }), text)
}

pub fn ack(svc: &Service, id: &str, client: &str) -> CallToolResult {
    if let Err(e) = check_task_id(id) {
        return e;
    }
    // A lost task has no result to free: acknowledging it records that someone checked.
    match svc.ack_lost_task(id, None) {
        Some(Ok(())) => {
            let text = format!("lost task {id} acknowledged: its end is recorded as lost and it is no longer listed");
            return ok(json!({ "task_id": id, "acknowledged": true }), text);
        }
        Some(Err(e)) => return service_error(&crate::service::ServiceError::Audit(e)),
        None => {}
    }
    if let Err(e) = svc.tasks().get_for(id, client) {
        return task_error(&e);
    }
    match svc.tasks().ack(id) {
        Ok(()) => ok(json!({ "task_id": id, "acknowledged": true }), format!("task {id} freed")),
        Err(e @ TaskError::StillRunning(_)) => task_error(&e),
        Err(e) => task_error(&e),
    }
}
