//! MCP tasks whose tool call runs in the background through the tool router: fan-outs
//! (`f…` ids) and calls that need a human's approval first (`a…` ids).
//!
//! Owns: the background loop and its phases. The call goes through the same tool code as a
//! plain call, so it meets the same gates; when the approval gate answers `input_required`,
//! the task moves to `input_required` with the elicitation form in `inputRequests` (always
//! the form, one step, no required field), and waits for `tasks/update`, a decision made
//! elsewhere (the approver page, the timeout) or `tasks/cancel` (which denies the request);
//! then the call is made again with the answer, exactly as a client's retried call.
//! Every loop is tracked (shutdown waits for it); a result expires `task_result_ttl` after
//! it arrived. Never runs anything the tool path would not.

use std::sync::{Arc, Mutex};

use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, InputRequests, InputResponses,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::SshWarden;
use super::approval::{AskInTask, INPUT_KEY};
use crate::tasks::lock;

/// An approval the human never answers ends by its own timeout; more rounds than this mean
/// the gate keeps asking for something new, and the task stops rather than loop.
const MAX_INPUT_ROUNDS: usize = 3;

/// Where a deferred task is.
#[derive(Clone)]
pub(super) enum Phase {
    Working,
    /// Waiting for the client's answer to these requests.
    InputRequired(InputRequests),
    Done(CallToolResult),
}

pub(super) struct DeferredTask {
    pub created_ms: u64,
    /// The client that started it (`service::task_owner`, as for every task): only it may see,
    /// answer or cancel the task.
    pub owner: String,
    pub cancel: CancellationToken,
    phase: Mutex<Phase>,
    /// When the result arrived: it expires `task_result_ttl` later, like a task's.
    finished_ms: Mutex<Option<u64>>,
    answers: mpsc::Sender<InputResponses>,
}

impl DeferredTask {
    pub fn phase(&self) -> Phase {
        lock(&self.phase).clone()
    }

    pub fn finished_ms(&self) -> Option<u64> {
        *lock(&self.finished_ms)
    }

    /// `tasks/update`: hands the client's answers to the waiting call. Refused unless the task
    /// is waiting for exactly these keys (an answer is taken once).
    pub fn answer(&self, responses: InputResponses) -> Result<(), McpError> {
        // Checked and taken under one lock: two answers racing can never both be queued (a
        // stale one would answer the next round's request unseen).
        let mut phase = lock(&self.phase);
        let Phase::InputRequired(requests) = &*phase else {
            let msg = "this task is not waiting for input (status is not input_required)";
            return Err(McpError::invalid_params(msg, None));
        };
        if self.cancel.is_cancelled() {
            return Err(McpError::invalid_params("this task was cancelled", None));
        }
        if let Some(extra) = responses.keys().find(|k| !requests.contains_key(*k)) {
            let msg =
                format!("inputResponses key {extra:?} answers no outstanding input request (expected {INPUT_KEY:?})");
            return Err(McpError::invalid_params(msg, None));
        }
        if responses.is_empty() {
            return Err(McpError::invalid_params(format!("inputResponses is empty: answer {INPUT_KEY:?}"), None));
        }
        self.answers
            .try_send(responses)
            .map_err(|_| McpError::invalid_params("this task already has an answer", None))?;
        *phase = Phase::Working;
        Ok(())
    }

    fn finish(&self, result: CallToolResult) {
        *lock(&self.phase) = Phase::Done(result);
        *lock(&self.finished_ms) = Some(crate::tasks::now_ms());
    }
}

/// Starts `request` as a background call and returns its entry.
pub(super) fn spawn(
    handler: &SshWarden,
    request: CallToolRequestParams,
    ctx: &RequestContext<RoleServer>,
) -> Arc<DeferredTask> {
    let (answers, inbox) = mpsc::channel(1);
    let entry = Arc::new(DeferredTask {
        created_ms: crate::tasks::now_ms(),
        owner: crate::service::task_owner(&super::ops::client_of(ctx)),
        cancel: CancellationToken::new(),
        phase: Mutex::new(Phase::Working),
        finished_ms: Mutex::new(None),
        answers,
    });
    let template = context_for(ctx, &entry.cancel);
    let (handler, slot) = (handler.clone(), entry.clone());
    let tracker = handler.svc.enders.clone();
    tracker.spawn(async move {
        match drive(&handler, request, &template, &slot, inbox).await {
            Some(r) if slot.cancel.is_cancelled() => {
                // Cancelled while the call was starting: stop what it started, if anything.
                stop_started(&handler, &r);
                slot.finish(r);
            }
            Some(r) => slot.finish(r),
            // Cancelled while waiting: nothing ran; the entry still expires like a result.
            None => *lock(&slot.finished_ms) = Some(crate::tasks::now_ms()),
        }
    });
    entry
}

/// The call's own context: the client's identity, capabilities and protocol (its `_meta`),
/// a cancel of its own, and the mark that says "a task: ask through input_required".
fn context_for(ctx: &RequestContext<RoleServer>, cancel: &CancellationToken) -> RequestContext<RoleServer> {
    let mut own = RequestContext::new(ctx.id.clone(), ctx.peer.clone());
    own.meta = ctx.meta.clone();
    own.extensions = ctx.extensions.clone();
    own.extensions.insert(AskInTask);
    own.ct = cancel.clone();
    own
}

/// The call, made again with each answer; `None` when it was cancelled while waiting.
async fn drive(
    handler: &SshWarden,
    mut request: CallToolRequestParams,
    template: &RequestContext<RoleServer>,
    slot: &DeferredTask,
    mut inbox: mpsc::Receiver<InputResponses>,
) -> Option<CallToolResult> {
    for _ in 0..=MAX_INPUT_ROUNDS {
        let tcc = ToolCallContext::new(handler, request.clone(), context_for(template, &slot.cancel));
        let asked = match handler.tool_router.call(tcc).await {
            Ok(CallToolResponse::Complete(r)) => return Some(r),
            Ok(CallToolResponse::InputRequired(asked)) => asked,
            Ok(_) => return Some(error_text("the tool answered with a task inside a task".into())),
            Err(e) => return Some(error_text(e.message.to_string())),
        };
        let approval_id = asked.request_state.clone().unwrap_or_default();
        *lock(&slot.phase) = Phase::InputRequired(asked.input_requests.clone().unwrap_or_default());
        let svc = &handler.svc;
        let answer = tokio::select! {
            // A cancel that came with (or right after) the answer wins: nothing starts.
            biased;
            _ = slot.cancel.cancelled() => None,
            a = inbox.recv() => a,
            // Decided elsewhere (approver page) or timed out: the retried call reads the verdict.
            _ = svc.approval_verdict(&approval_id) => None,
        };
        if slot.cancel.is_cancelled() {
            svc.decide_or_deny(&approval_id, false, "tasks/cancel");
            return None;
        }
        *lock(&slot.phase) = Phase::Working;
        request.request_state = asked.request_state;
        request.input_responses = answer;
    }
    Some(error_text(format!("the approval was asked {MAX_INPUT_ROUNDS} times without an answer the call could use")))
}

/// Cancels the sshwarden task a call's result names (`ssh_run_async` returns its id).
pub(super) fn stop_started(handler: &SshWarden, result: &CallToolResult) {
    let named = result.structured_content.as_ref().and_then(|v| v["task_id"].as_str().map(str::to_owned));
    if let Some(id) = named {
        let _ = handler.svc.cancel(&id, Some("mcp tasks/cancel"));
    }
}

fn error_text(message: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}
