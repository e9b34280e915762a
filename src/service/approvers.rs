//! Four eyes: who may decide an approval request, and rules that want several approvers
//! (`approvals: N` on an `ask` rule).
//!
//! Owns: the check that an approver principal is not the one that asked, and the count of
//! distinct out-of-band approvers (the shared approver token, or principals with the approve
//! scope) until a request has the number its rule wants; each partial approval is audited
//! (`approval_partial`), the last one decides as usual. In-band answers (elicitation, the
//! terminal) never count toward a rule that wants more than one approver: the requester's
//! own side is not a second pair of eyes. A denial decides at once, whoever gives it.

use serde_json::json;

use crate::service::Service;
use crate::service::approvals::{DecideError, State};

/// Where an approval leaves a request that wants several approvers.
pub(crate) enum Count {
    /// Counted; more approvers are needed.
    Partial,
    /// The last one needed: decide, naming them all.
    Final(String),
}

/// The approvers that count toward `approvals: N`: not the requesting client's own side.
fn out_of_band(by: &str) -> bool {
    by == "approver token" || by.starts_with("principal ")
}

impl Service {
    /// Decides approval `id` as the principal `approver` (an `auth:` caller with the approve
    /// scope): four eyes, so never the principal that asked.
    pub fn decide_approval_as(&self, id: &str, approve: bool, approver: &str) -> Result<(), DecideError> {
        let requester = self.approvals.requester(id).ok_or_else(|| DecideError::Unknown(id.to_owned()))?;
        let asked_by = crate::service::principal_of(Some(&requester)).name;
        if asked_by == approver {
            self.audit_or_warn(
                Some(&requester),
                "approval_refused",
                json!({ "approval_id": id, "reason": "four eyes: the approver asked for it", "by": approver }),
            );
            return Err(DecideError::OwnRequest(id.to_owned(), asked_by));
        }
        self.decide_approval(id, approve, &format!("principal {approver}"))
    }

    /// Counts approver `by` on request `id`. A request wanting one approver is decided by
    /// it (`Final(by)`); one wanting more records `by` (once per approver) until the last.
    pub(crate) fn count_approver(&self, id: &str, by: &str) -> Result<Count, DecideError> {
        let entry = self.approvals.entries.get(id).ok_or_else(|| DecideError::Unknown(id.to_owned()))?;
        let need = entry.request.approvals_required.max(1) as usize;
        if need == 1 {
            return Ok(Count::Final(by.to_owned()));
        }
        if *entry.state.borrow() != State::Pending {
            return Err(DecideError::AlreadyDecided(id.to_owned()));
        }
        if !out_of_band(by) {
            return Err(DecideError::NeedsApprovers(id.to_owned(), need));
        }
        let mut approvers = entry.approvers.lock().unwrap_or_else(|p| p.into_inner());
        if approvers.iter().any(|a| a == by) {
            return Err(DecideError::AlreadyApprovedBy(id.to_owned(), by.to_owned()));
        }
        approvers.push(by.to_owned());
        if approvers.len() < need {
            let fields =
                json!({ "approval_id": id, "by": by, "approvals": approvers.len(), "approvals_required": need });
            let client = entry.request.client.clone();
            drop(approvers);
            drop(entry);
            self.audit_or_warn(Some(&client), "approval_partial", fields);
            return Ok(Count::Partial);
        }
        Ok(Count::Final(approvers.join(" + ")))
    }
}
