//! Getting a human's yes for an `ask` decision through what this MCP client can do.
//!
//! Owns: the choice of channel and its protocol shapes. A client on `2026-07-28` that
//! declared elicitation gets an `InputRequiredResult` (the request id travels as
//! `requestState`; the retried call carries the answer); an older client that declared
//! elicitation is asked with `elicitation/create`; any other client waits for an out-of-band
//! approver if `serve --approver-token-file` is set, or is denied at once with a hint. The
//! decision itself, its timeout and audit live in `approvals.rs`. Never runs anything.

use std::sync::Arc;

use rmcp::RoleServer;
use rmcp::model::{
    CallToolResult, ElicitRequest, ElicitRequestParams, ElicitationAction, ElicitationSchema, InputRequest,
    InputRequiredResult, InputResponses, ProtocolVersion,
};
use rmcp::service::{Peer, RequestContext};

use super::errors::service_error;
use super::ops::client_of;
use crate::service::Service;
use crate::service::approvals::{ApprovalRequest, AskHuman, Via};

/// Key of the one input request sshwarden sends.
pub(super) const INPUT_KEY: &str = "approval";

/// Marks a call made by an MCP task on the client's behalf: the client answers through
/// `tasks/update`, so a client that declared elicitation is asked with `input_required`
/// whatever its protocol version.
#[derive(Clone, Copy)]
pub(super) struct AskInTask;

/// What the tool does next.
pub enum Gate {
    /// Go on with this ticket (`None`: no host needed approval).
    Proceed(Option<String>),
    /// Return this to the client; it asks its user and retries the call.
    InputRequired(InputRequiredResult),
    /// Denied (declined, timed out, or nobody can be asked).
    Refused(CallToolResult),
}

/// Asks through `elicitation/create` (protocols before 2026-07-28).
struct Elicit(Peer<RoleServer>);

impl AskHuman for Elicit {
    fn ask<'a>(&'a self, request: &'a ApprovalRequest) -> futures::future::BoxFuture<'a, Option<bool>> {
        Box::pin(async move {
            match self.0.create_elicitation(form(request)).await {
                Ok(r) => Some(r.action == ElicitationAction::Accept),
                Err(e) => {
                    tracing::warn!(approval = %request.id, "elicitation failed: {e}");
                    None
                }
            }
        })
    }
}

/// The question put to the user: the request's message and no fields to fill (accept,
/// decline or cancel is the whole answer).
fn form(request: &ApprovalRequest) -> ElicitRequestParams {
    ElicitRequestParams::FormElicitationParams {
        meta: None,
        message: request.message(),
        requested_schema: ElicitationSchema::new(Default::default()),
    }
}

pub(super) fn elicitation_declared(ctx: &RequestContext<RoleServer>) -> bool {
    ctx.client_capabilities().is_some_and(|c| c.elicitation.is_some())
}

/// The approval `what` on `aliases` needs, obtained as this client allows. `state` and
/// `responses` are the input-required round's echo, if this is a retried call.
pub async fn gate(
    svc: &Arc<Service>,
    aliases: &[String],
    what: &str,
    ctx: &RequestContext<RoleServer>,
    state: Option<String>,
    responses: Option<InputResponses>,
) -> Gate {
    let client = client_of(ctx);
    let Some(request) = svc.approval_needed(aliases, what, &client) else {
        return Gate::Proceed(None);
    };
    // An echo opens only a request this client was sent as an `input_required` round: a
    // request an approver was asked (or a runbook step's) is never the caller's to answer.
    let echoed = state.filter(|id| {
        svc.approvals.answerable_in_band(id) && svc.approvals.is_open_for(id, what, &request.aliases, &client)
    });
    if let Some(id) = echoed {
        let answer = responses.as_ref().and_then(|r| r.get(INPUT_KEY)).and_then(|v| v.get("action").cloned());
        let accepted = answer.as_ref().and_then(|a| a.as_str()) == Some("accept");
        if answer.is_some() {
            svc.decide_or_deny(&id, accepted, "elicitation");
        }
        let verdict = tokio::select! {
            v = svc.approval_verdict(&id) => v,
            _ = ctx.ct.cancelled() => {
                svc.decide_or_deny(&id, false, "cancelled by the caller");
                svc.approval_verdict(&id).await
            }
        };
        return match verdict {
            Ok(ticket) => Gate::Proceed(Some(ticket)),
            Err(e) => Gate::Refused(service_error(&e)),
        };
    }
    let modern = ctx.extensions.get::<AskInTask>().is_some()
        || ctx.protocol_version().is_some_and(|v| v >= ProtocolVersion::V_2026_07_28);
    let verdict = match (elicitation_declared(ctx), modern) {
        (true, true) => {
            if let Err(e) = svc.approvals.has_room_for(&request.client) {
                return Gate::Refused(service_error(&e));
            }
            let mut request = request;
            request.answerable_in_band = true;
            svc.open_approval(&request);
            let mut inputs = rmcp::model::InputRequests::new();
            inputs.insert(INPUT_KEY.to_owned(), InputRequest::Elicitation(ElicitRequest::new(form(&request))));
            return Gate::InputRequired(InputRequiredResult::new(Some(inputs), Some(request.id.clone())));
        }
        (true, false) => svc.obtain_approval_or_cancel(&request, Via::Human(&Elicit(ctx.peer.clone())), &ctx.ct).await,
        (false, _) => {
            if svc.approvals.out_of_band() {
                // Whoever waits is told for what and who can end the wait.
                let mut reporter = super::progress::Reporter::new(ctx.peer.clone(), ctx.meta.get_progress_token());
                let message = format!(
                    "waiting for approval {} of `{}` on {} (up to {} s): an approver runs `sshwarden approvals approve {}` or uses /approvals",
                    request.id, request.what, request.hosts, request.timeout_seconds, request.id
                );
                reporter.send(None, None, message).await;
            }
            svc.obtain_approval_or_cancel(&request, Via::OutOfBand, &ctx.ct).await
        }
    };
    match verdict {
        Ok(ticket) => Gate::Proceed(Some(ticket)),
        Err(e) => Gate::Refused(service_error(&e)),
    }
}
