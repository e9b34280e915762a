//! MCP tasks (SEP-2663, the `io.modelcontextprotocol/tasks` extension rmcp 3.11 speaks):
//! task-augmented `tools/call` for ssh_run, ssh_run_async and ssh_run_on_tag.
//!
//! Owns: the mapping to sshwarden's own task manager. For ssh_run/ssh_run_async the MCP
//! task id *is* the sshwarden task id, so `tasks/get`, `tasks/cancel` and the tool API
//! (ssh_get_task_status, ssh_cancel) see one task; cancelling it stops the remote command
//! (rmcp's own `tasks/cancel` would only drop a future). A fan-out gets an `f…` id whose
//! cancel stops every host's command; a call that needs a human's approval gets an `a…` id,
//! moves to `input_required` and takes the answer through `tasks/update` (`deferred.rs`
//! runs both through the tool router, so they meet the same gates as the plain tool); when
//! nobody can answer, an `ask` call is served as a normal call and refused. Never runs
//! anything the tool path would not.

use std::sync::Arc;

use dashmap::DashMap;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, CreateTaskResult, DetailedTask,
    GetTaskParams, GetTaskResult, Task as McpTask, TaskPayload, TaskStatus, UpdateTaskParams,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer};
use serde_json::Value;

use super::approval;
use super::deferred::{self, DeferredTask, Phase};
use super::params::{RunAsyncParams, RunParams};
use super::{SshWarden, ops};
use crate::service::Service;
use crate::tasks::{Task, TaskState};

/// Task-augmented calls that run through the tool router in the background (fan-outs and
/// calls waiting for an approval), by MCP task id.
#[derive(Clone, Default)]
pub struct McpTasks {
    deferred: Arc<DashMap<String, Arc<DeferredTask>>>,
}

/// Milliseconds since the epoch as RFC 3339 text.
pub(super) fn iso(ms: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

fn client_supports_tasks(ctx: &RequestContext<RoleServer>) -> bool {
    ctx.meta.client_capabilities().is_some_and(|c| c.supports_tasks())
        || ctx.peer.peer_info().is_some_and(|i| i.capabilities.supports_tasks())
}

fn to_object(r: &CallToolResult) -> rmcp::model::JsonObject {
    match serde_json::to_value(r) {
        Ok(Value::Object(o)) => o,
        _ => Default::default(),
    }
}

fn model(task: &Task) -> McpTask {
    let s = task.snapshot();
    let status = match &s.state {
        TaskState::Cancelled { .. } => TaskStatus::Cancelled,
        st if st.is_finished() => TaskStatus::Completed,
        _ => TaskStatus::Working,
    };
    McpTask::new(task.id.clone(), status, iso(s.created_at_ms), iso(s.updated_at_ms))
        .with_ttl_ms(task.spec.ttl.as_millis() as u64)
        .with_poll_interval_ms(1000)
        .with_status_message(super::progress::describe(task))
}

impl McpTasks {
    /// Starts a task-augmented call when the client declared the extension and the tool
    /// supports it; `None` means "serve it as a normal call".
    pub async fn maybe_spawn(
        &self,
        handler: &SshWarden,
        request: &CallToolRequestParams,
        ctx: &RequestContext<RoleServer>,
    ) -> Option<Result<CallToolResponse, McpError>> {
        if !client_supports_tasks(ctx) {
            return None;
        }
        let args = Value::Object(request.arguments.clone().unwrap_or_default());
        let svc = &handler.svc;
        let target = match request.name.as_ref() {
            "ssh_run" => parse::<RunParams>(args).map(|p| (p.alias, p.command, p.timeout_seconds)),
            "ssh_run_async" => parse::<RunAsyncParams>(args).map(|p| (p.alias, p.command, p.timeout_seconds)),
            "ssh_run_on_tag" => {
                if let Err(e) = self.has_room_for(ctx) {
                    return Some(Err(e));
                }
                return Some(Ok(self.spawn_deferred('f', handler, request.clone(), ctx)));
            }
            _ => return None,
        };
        let (alias, command, timeout) = match target {
            Ok(t) => t,
            Err(e) => return Some(Err(e)),
        };
        // An `ask` command meets the same approval gate as the plain call. When somebody can
        // answer (the client's user through `input_required` → `tasks/update`, or an approver),
        // the call waits as a task; when nobody can, it is served as a normal call: refused.
        if svc.approval_needed(std::slice::from_ref(&alias), &command, &ops::client_of(ctx)).is_some() {
            if !approval::elicitation_declared(ctx) && !svc.approvals.out_of_band() {
                return None;
            }
            if let Err(e) = self.has_room_for(ctx) {
                return Some(Err(e));
            }
            return Some(Ok(self.spawn_deferred('a', handler, request.clone(), ctx)));
        }
        let started = ops::start(svc, &alias, &command, timeout, ctx, None).await.map(|(task, _)| task);
        Some(Ok(match started {
            Ok(task) => CallToolResponse::Task(CreateTaskResult::new(model(&task))),
            Err(r) => CallToolResponse::Complete(r),
        }))
    }

    /// Starts `request` in the background as task `PREFIX…` (`f` fan-out, `a` awaiting approval).
    fn spawn_deferred(
        &self,
        prefix: char,
        handler: &SshWarden,
        request: CallToolRequestParams,
        ctx: &RequestContext<RoleServer>,
    ) -> CallToolResponse {
        let id = format!("{prefix}{:032x}", rand::random::<u128>());
        self.prune(handler.svc.config().policy.default_limits().task_result_ttl);
        let entry = deferred::spawn(handler, request, ctx);
        self.deferred.insert(id.clone(), entry.clone());
        let t = McpTask::new(id, TaskStatus::Working, iso(entry.created_ms), iso(entry.created_ms))
            .with_poll_interval_ms(1000);
        CallToolResponse::Task(CreateTaskResult::new(t))
    }

    /// Whether the caller may start one more background call: unfinished ones are bounded per
    /// client and in all (each holds a tracked loop and, waiting, an approval request).
    fn has_room_for(&self, ctx: &RequestContext<RoleServer>) -> Result<(), McpError> {
        const PER_CLIENT: usize = 64;
        const IN_ALL: usize = 1024;
        let me = crate::service::task_owner(&ops::client_of(ctx));
        let live: Vec<Arc<DeferredTask>> =
            self.deferred.iter().filter(|f| f.finished_ms().is_none()).map(|f| f.value().clone()).collect();
        let mine = live.iter().filter(|f| f.owner == me).count();
        if mine >= PER_CLIENT || live.len() >= IN_ALL {
            let msg = format!(
                "too many unfinished tasks ({mine} of this client's, {} in all; limits {PER_CLIENT} and {IN_ALL})",
                live.len()
            );
            return Err(McpError::invalid_request(msg, None));
        }
        Ok(())
    }

    /// Forgets results older than the task TTL (the map never grows without bound).
    fn prune(&self, ttl_seconds: u64) {
        let now = crate::tasks::now_ms();
        self.deferred.retain(|_, f| f.finished_ms().is_none_or(|done| now.saturating_sub(done) < ttl_seconds * 1000));
    }

    /// The deferred task `id` when `ctx`'s client started it; another client is told it does
    /// not exist (a task id is not a capability to share).
    fn owned(&self, id: &str, ctx: &RequestContext<RoleServer>) -> Option<Arc<DeferredTask>> {
        let me = crate::service::task_owner(&ops::client_of(ctx));
        self.deferred.get(id).map(|f| f.clone()).filter(|f| f.owner == me)
    }

    pub async fn get(
        &self,
        svc: &Service,
        req: &GetTaskParams,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, McpError> {
        self.prune(svc.config().policy.default_limits().task_result_ttl);
        if self.deferred.contains_key(&req.task_id) {
            let f = self.owned(&req.task_id, ctx).ok_or_else(|| unknown(&req.task_id))?;
            let payload = match f.phase() {
                _ if f.cancel.is_cancelled() => TaskPayload::Cancelled,
                Phase::Done(r) => TaskPayload::Completed { result: to_object(&r) },
                Phase::InputRequired(input_requests) => TaskPayload::InputRequired { input_requests },
                Phase::Working => TaskPayload::Working,
            };
            let t =
                McpTask::new(req.task_id.clone(), TaskStatus::Working, iso(f.created_ms), iso(crate::tasks::now_ms()))
                    .with_poll_interval_ms(1000);
            return Ok(GetTaskResult::new(DetailedTask::new(t, payload)));
        }
        let task = svc
            .tasks()
            .get_for(&req.task_id, &ops::client_of(ctx))
            .map_err(|e| McpError::invalid_params(e.to_string(), None))?;
        let state = task.state();
        let payload = match &state {
            TaskState::Cancelled { .. } => TaskPayload::Cancelled,
            s if s.is_finished() => TaskPayload::Completed { result: to_object(&ops::finished(svc, &task)) },
            _ => TaskPayload::Working,
        };
        Ok(GetTaskResult::new(DetailedTask::new(model(&task), payload)))
    }

    /// Cancels the sshwarden task(s) behind an MCP task: the remote command is stopped.
    pub async fn cancel(
        &self,
        svc: &Service,
        req: &CancelTaskParams,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        if self.deferred.contains_key(&req.task_id) {
            let f = self.owned(&req.task_id, ctx).ok_or_else(|| unknown(&req.task_id))?;
            if matches!(f.phase(), Phase::Done(_)) {
                return Err(McpError::invalid_params(format!("task {:?} already completed", req.task_id), None));
            }
            f.cancel.cancel();
            return Ok(());
        }
        svc.cancel_as(&req.task_id, &ops::client_of(ctx))
            .map(|_| ())
            .map_err(|e| McpError::invalid_params(e.to_string(), None))
    }
}

impl McpTasks {
    /// `tasks/update`: the client's answer to a task waiting in `input_required`.
    pub fn update(&self, req: &UpdateTaskParams, ctx: &RequestContext<RoleServer>) -> Result<(), McpError> {
        match self.owned(&req.task_id, ctx) {
            Some(f) => f.answer(req.input_responses.clone()),
            None => Err(McpError::invalid_params(
                format!("no task {:?} waits for input (unknown, expired, or not a task that asks)", req.task_id),
                None,
            )),
        }
    }
}

fn unknown(id: &str) -> McpError {
    McpError::invalid_params(format!("unknown task id {id:?}"), None)
}

fn parse<T: serde::de::DeserializeOwned>(args: Value) -> Result<T, McpError> {
    serde_json::from_value(args).map_err(|e| McpError::invalid_params(e.to_string(), None))
}
