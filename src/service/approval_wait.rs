//! Waiting for a human: opening an approval request (its audit record, its timeout, the
//! notification hook), asking through the client when it can, and the verdict.
//!
//! Owns: `open_approval`, `obtain_approval` (the user's answer and an out-of-band decision
//! race; the first counts), `obtain_approval_or_cancel` (a caller that hangs up denies its
//! request, so a later approval starts nothing) and `approval_verdict`. Never decides on its
//! own except by the timeout, which denies.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use tokio::sync::watch;

use crate::service::approvals::{ApprovalRequest, Entry, State, Via, cannot_ask, unknown_ticket};
use crate::service::{Service, ServiceError};

impl Service {
    /// Registers `request` as pending (audited) so a human or an approver can decide it;
    /// it is denied by timeout if nobody decides (also when nobody waits for it, as after an
    /// input-required round the client never retried).
    pub fn open_approval(self: &Arc<Self>, request: &ApprovalRequest) {
        self.approvals.prune();
        self.audit_or_warn(
            Some(&request.client),
            "approval_requested",
            json!({ "approval_id": request.id, "hosts": request.hosts, "command": request.what, "rule": request.rule, "reason": request.reason }),
        );
        let (state, _) = watch::channel(State::Pending);
        self.approvals.entries.insert(
            request.id.clone(),
            Entry {
                request: request.clone(),
                state,
                created: Instant::now(),
                used: Default::default(),
                approvers: Default::default(),
            },
        );
        // Detached: the hook never delays or fails the request it announces.
        crate::service::approval_notify::announce(self, request);
        let (svc, id, limit) = (Arc::downgrade(self), request.id.clone(), Duration::from_secs(request.timeout_seconds));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                tokio::time::sleep(limit).await;
                if let Some(svc) = svc.upgrade() {
                    let _ = svc.decide_approval(&id, false, "timeout");
                }
            });
        }
    }

    /// Waits for the decision on `request` (asking through `via` when it can), up to its
    /// timeout; `Ok` is the approval id (the ticket), anything else a denial.
    pub async fn obtain_approval(
        self: &Arc<Self>,
        request: &ApprovalRequest,
        via: Via<'_>,
    ) -> Result<String, ServiceError> {
        if matches!(via, Via::OutOfBand) && !self.approvals.out_of_band() {
            return Err(cannot_ask(request));
        }
        self.approvals.has_room_for(&request.client)?;
        self.open_approval(request);
        if let Via::Human(asker) = via {
            // The user's answer and an out-of-band decision race; the first one counts.
            let mut decided = match self.approvals.entries.get(&request.id) {
                Some(e) => e.state.subscribe(),
                None => return Err(unknown_ticket(&request.id)),
            };
            let limit = Duration::from_secs(request.timeout_seconds);
            tokio::select! {
                answer = tokio::time::timeout(limit, asker.ask(request)) => match answer {
                    Ok(Some(yes)) => self.decide_or_deny(&request.id, yes, "elicitation"),
                    Ok(None) if !self.approvals.out_of_band() => {
                        let _ = self.decide_approval(&request.id, false, "this client cannot ask a human");
                    }
                    _ => {}
                },
                _ = decided.wait_for(|s| *s != State::Pending) => {}
            }
        }
        self.approval_verdict(&request.id).await
    }

    /// `obtain_approval`, given up when `cancel` fires first (the caller hung up, the run was
    /// cancelled): the request is then denied, so a later approval starts nothing.
    pub async fn obtain_approval_or_cancel(
        self: &Arc<Self>,
        request: &ApprovalRequest,
        via: Via<'_>,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Result<String, ServiceError> {
        tokio::select! {
            verdict = self.obtain_approval(request, via) => verdict,
            _ = cancel.cancelled() => {
                self.decide_or_deny(&request.id, false, "cancelled by the caller");
                Err(ServiceError::ApprovalRequired(format!(
                    "approval {} for `{}` on {}: the call was cancelled while waiting; nothing ran",
                    request.id, request.what, request.hosts
                )))
            }
        }
    }

    /// The decision on approval `id`, waiting for it until the request's timeout.
    pub async fn approval_verdict(&self, id: &str) -> Result<String, ServiceError> {
        let (mut rx, request, created) = match self.approvals.entries.get(id) {
            Some(e) => (e.state.subscribe(), e.request.clone(), e.created),
            None => return Err(unknown_ticket(id)),
        };
        let deadline = created + Duration::from_secs(request.timeout_seconds);
        let waited = tokio::time::timeout_at(deadline.into(), rx.wait_for(|s| *s != State::Pending)).await;
        if waited.is_err() {
            let _ = self.decide_approval(id, false, "timeout");
        }
        let state =
            self.approvals.entries.get(id).map_or(State::Denied { by: "timeout".into() }, |e| e.state.borrow().clone());
        let (approved, by) = match &state {
            State::Approved { by } => (true, by.clone()),
            State::Denied { by } => (false, by.clone()),
            State::Pending => (false, "timeout".to_owned()),
        };
        if approved {
            return Ok(id.to_owned());
        }
        let why = match by.as_str() {
            "timeout" => format!("no decision within approval_timeout_seconds ({} s)", request.timeout_seconds),
            other => format!("declined ({other})"),
        };
        Err(ServiceError::Denied(crate::policy::Decision {
            allowed: false,
            ask: false,
            rule: None,
            reason: format!("approval {id} for `{}` on {}: {why}", request.what, request.hosts),
            denied_command: None,
            elevate: None,
        }))
    }
}
