//! Approval tickets: the only way past an `ask` decision. A granted approval covers exactly
//! the hosts, the command (or transfer) and the client it was asked for, within its
//! lifetime, and each use consumes it (once per host; a runbook step's retries count).
//!
//! Owns: `Service::admit` (the decision → the ticket check → the approval id the task's start
//! record names) and the client identity a ticket is bound to. Never grants anything: only
//! `approvals.rs` and `approvers.rs` decide.

use crate::service::approvals::{State, unknown_ticket};
use crate::service::{Service, ServiceError};

impl Service {
    /// Lets `decision` through or refuses it: an `ask` passes only with a `ticket` granted
    /// for `what` on `alias`. `Ok` is the approval id it ran under (for the start record).
    pub(crate) fn admit(
        &self,
        mut decision: crate::policy::Decision,
        ticket: Option<&str>,
        alias: &str,
        what: &str,
        client: Option<&str>,
    ) -> Result<(crate::policy::Decision, Option<String>), ServiceError> {
        if decision.ask {
            self.check_ticket(ticket, alias, what, client.unwrap_or(""))?;
            decision.allowed = true;
            return Ok((decision, ticket.map(str::to_owned)));
        }
        if !decision.allowed {
            return Err(ServiceError::Denied(decision));
        }
        Ok((decision, None))
    }

    /// Whether approval `ticket` was granted for `what` on `alias` to `client`; `Err` is the
    /// denial.
    fn check_ticket(&self, ticket: Option<&str>, alias: &str, what: &str, client: &str) -> Result<(), ServiceError> {
        let Some(id) = ticket else {
            return Err(ServiceError::ApprovalRequired(format!(
                "`{what}` on {alias} needs a human's approval and none was given"
            )));
        };
        let entry = self.approvals.entries.get(id).ok_or_else(|| unknown_ticket(id))?;
        if entry.expired() {
            return Err(unknown_ticket(id));
        }
        if !same_client(&entry.request.client, client) {
            return Err(ServiceError::ApprovalRequired(format!(
                "approval {id} was asked for another client; ask again"
            )));
        }
        let covers = entry.request.what == what && entry.request.aliases.iter().any(|a| a == alias);
        match (&*entry.state.borrow(), covers) {
            (State::Approved { .. }, true) => {
                // Consumed here, when the work is admitted: a replayed ticket runs nothing.
                let mut used = entry.used.lock().map_err(|_| unknown_ticket(id))?;
                let count = used.entry(alias.to_owned()).or_insert(0);
                if *count >= entry.request.uses_per_host {
                    return Err(ServiceError::ApprovalRequired(format!(
                        "approval {id} was already used for `{what}` on {alias}; ask again"
                    )));
                }
                *count += 1;
                Ok(())
            }
            (State::Approved { .. }, false) => Err(ServiceError::ApprovalRequired(format!(
                "approval {id} covers `{}` on {}, not `{what}` on {alias}",
                entry.request.what, entry.request.hosts
            ))),
            _ => Err(ServiceError::ApprovalRequired(format!("approval {id} was not granted"))),
        }
    }
}

/// The same client across a retried call: its identity, not the request id it sends. Only
/// the `req=` word differs between retries; a runbook run's `run=` stays part of it, so a
/// step's request is never the caller's own.
pub(super) fn same_client(asked: &str, now: &str) -> bool {
    client_identity(asked) == client_identity(now)
}

/// A client's identity across its requests: its description without the `req=` word.
pub fn client_identity(client: &str) -> String {
    client.split(' ').filter(|w| !w.starts_with("req=")).collect::<Vec<_>>().join(" ")
}
