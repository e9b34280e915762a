//! Human approval for what the policy marks `ask`: one registry of approval requests,
//! decided by the client's user (MCP elicitation, classic or input-required) or out of band
//! by an approver (`/approvals`, `sshwarden approvals`, the approver page).
//!
//! Owns: the request registry and its decision (the first wins, audited before anyone sees
//! it), the bounds on undecided requests, recently decided requests for the page, and
//! `approval_needed` (which hosts of a call are `ask`, and how many approvers the rule
//! wants). Waiting is `approval_wait.rs`, tickets `tickets.rs`, four eyes `approvers.rs`.
//! Never speaks a protocol and never decides policy.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use serde::Serialize;
use serde_json::json;
use tokio::sync::watch;

pub use crate::service::tickets::client_identity;
use crate::service::tickets::same_client;
use crate::service::{Service, ServiceError};

/// Decided approvals stay usable (by every host they cover) for this long.
const TICKET_LIFETIME: Duration = Duration::from_secs(600);
/// Undecided requests one client may have at once: nobody answers hundreds, and each is held
/// until its timeout.
const PENDING_PER_CLIENT: usize = 32;
/// Undecided requests in all: memory stays bounded whoever asks.
const PENDING_IN_ALL: usize = 512;
/// Decided requests remembered for the approver page (who decided, when), newest last.
const RECENTLY_DECIDED: usize = 50;

/// What a human is asked to approve.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalRequest {
    pub id: String,
    /// Folded host set (`h[1-3]`).
    pub hosts: String,
    #[serde(skip)]
    pub aliases: Vec<String>,
    /// The exact command, or `upload:PATH` / `download:PATH`.
    pub what: String,
    pub rule: Option<String>,
    pub reason: String,
    pub client: String,
    pub requested_at_ms: u64,
    pub timeout_seconds: u64,
    /// How many times the ticket may run on each host (1; a runbook step: 1 + its retries).
    #[serde(skip)]
    pub uses_per_host: u32,
    /// Sent to the calling client as an `input_required` round, so its echoed answer may
    /// decide it. Every other request (elicitation, out-of-band, a runbook step's) is
    /// decided only where it was asked: an agent can never answer what an approver was asked.
    #[serde(skip)]
    pub answerable_in_band: bool,
    /// Distinct out-of-band approvers the rule wants (`approvals: N`; 1 by default).
    pub approvals_required: u32,
}

impl ApprovalRequest {
    /// The one message a human reads.
    pub fn message(&self) -> String {
        format!(
            "Approve on {} ({} host{}): {}\nRule: {}\nReason: {}\nRequested by {}. Accept to run it; decline or cancel to deny.",
            self.hosts,
            self.aliases.len(),
            if self.aliases.len() == 1 { "" } else { "s" },
            self.what,
            self.rule.as_deref().unwrap_or("-"),
            self.reason,
            self.client
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum State {
    Pending,
    Approved { by: String },
    Denied { by: String },
}

pub(super) struct Entry {
    pub(super) request: ApprovalRequest,
    pub(super) state: watch::Sender<State>,
    pub(super) created: Instant,
    /// Uses so far, by host: a ticket is consumed, not shown.
    pub(super) used: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    /// Who approved so far, when the rule wants more than one approver (`approvers.rs`).
    pub(super) approvers: std::sync::Mutex<Vec<String>>,
}

impl Entry {
    /// Whether the ticket is past its lifetime (the decision window plus `TICKET_LIFETIME`).
    pub(super) fn expired(&self) -> bool {
        self.created.elapsed() >= TICKET_LIFETIME + Duration::from_secs(self.request.timeout_seconds)
    }
}

/// Why a decision changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("no approval request {0:?} (unknown or expired)")]
    Unknown(String),
    #[error("approval request {0:?} was already decided")]
    AlreadyDecided(String),
    /// The `approval_decided` record could not be written: an approval is not granted.
    #[error("the decision could not be recorded, so it is not granted: {0}")]
    NotRecorded(crate::audit::AuditError),
    /// Four eyes: the approver is the principal that asked.
    #[error("approval request {0:?} was asked by {1}; its approver must be someone else")]
    OwnRequest(String, String),
    /// The rule wants several out-of-band approvers; an in-band answer does not count.
    #[error(
        "approval request {0:?} needs {1} approvers through /approvals (an answer from the requesting client does not count)"
    )]
    NeedsApprovers(String, usize),
    #[error("approval request {0:?} already has the approval of {1}; another approver is needed")]
    AlreadyApprovedBy(String, String),
}

/// Who can be asked: the client's user now (`Human`), or only an out-of-band approver.
pub enum Via<'a> {
    Human(&'a (dyn AskHuman + 'a)),
    OutOfBand,
}

/// A way to ask the client's user; `Some(true)` approve, `Some(false)` decline or cancel,
/// `None` the client could not ask (the out-of-band approver may still decide).
pub trait AskHuman: Send + Sync {
    fn ask<'a>(&'a self, request: &'a ApprovalRequest) -> futures::future::BoxFuture<'a, Option<bool>>;
}

/// A request and its decision, as the approver page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct DecidedRequest {
    #[serde(flatten)]
    pub request: ApprovalRequest,
    /// `approved` or `denied`.
    pub decision: &'static str,
    /// Who decided: `approver token`, `elicitation`, `timeout`, …
    pub by: String,
    pub decided_at_ms: u64,
}

#[derive(Default)]
pub struct Approvals {
    pub(super) entries: DashMap<String, Entry>,
    /// `serve --approver-token-file` is set: requests can wait for an out-of-band decision.
    out_of_band: AtomicBool,
    /// The last `RECENTLY_DECIDED` decisions, oldest first (entries themselves are pruned by
    /// ticket lifetime, and a ticket is not a history).
    recent: std::sync::Mutex<std::collections::VecDeque<DecidedRequest>>,
    /// The approver page's address derived from `serve --http` (`approvals.page_url` wins).
    page_url: std::sync::Mutex<Option<String>>,
}

impl Approvals {
    pub fn enable_out_of_band(&self) {
        self.out_of_band.store(true, Ordering::SeqCst);
    }

    pub fn out_of_band(&self) -> bool {
        self.out_of_band.load(Ordering::SeqCst)
    }

    /// Sets the approver page's address the server derived from its listen address.
    pub fn set_page_url(&self, url: String) {
        if let Ok(mut p) = self.page_url.lock() {
            *p = Some(url);
        }
    }

    /// The approver page's address derived from the listen address, if serving one.
    pub fn served_page_url(&self) -> Option<String> {
        self.page_url.lock().ok().and_then(|p| p.clone())
    }

    /// Recently decided requests, newest first.
    pub fn recently_decided(&self) -> Vec<DecidedRequest> {
        self.recent.lock().map(|r| r.iter().rev().cloned().collect()).unwrap_or_default()
    }

    fn remember(&self, request: &ApprovalRequest, state: &State) {
        let (decision, by) = match state {
            State::Approved { by } => ("approved", by.clone()),
            State::Denied { by } => ("denied", by.clone()),
            State::Pending => return,
        };
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() >= RECENTLY_DECIDED {
                recent.pop_front();
            }
            let decided_at_ms = crate::tasks::now_ms();
            recent.push_back(DecidedRequest { request: request.clone(), decision, by, decided_at_ms });
        }
    }

    pub(super) fn prune(&self) {
        self.entries.retain(|_, e| !e.expired());
    }

    /// Pending requests, oldest first.
    /// The client label that asked for request `id`.
    pub fn requester(&self, id: &str) -> Option<String> {
        self.entries.get(id).map(|e| e.request.client.clone())
    }

    pub fn pending(&self) -> Vec<ApprovalRequest> {
        self.prune();
        let mut list: Vec<ApprovalRequest> =
            self.entries.iter().filter(|e| *e.state.borrow() == State::Pending).map(|e| e.request.clone()).collect();
        list.sort_by_key(|r| r.requested_at_ms);
        list
    }

    /// Whether `id` names a live request for exactly `what` on exactly `aliases` (the hosts
    /// whose decision is `ask` now), asked by
    /// `client` (a retried call's echo): a state echoed by another client, for other hosts or
    /// past its lifetime opens nothing.
    pub fn is_open_for(&self, id: &str, what: &str, aliases: &[String], client: &str) -> bool {
        self.entries.get(id).is_some_and(|e| {
            let mut want: Vec<&String> = e.request.aliases.iter().collect();
            let mut got: Vec<&String> = aliases.iter().collect();
            want.sort();
            got.sort();
            e.request.what == what && want == got && same_client(&e.request.client, client) && !e.expired()
        })
    }

    /// Whether `client` may open one more request: `Err` names the limit it reached.
    pub fn has_room_for(&self, client: &str) -> Result<(), ServiceError> {
        self.prune();
        let me = client_identity(client);
        let (mut mine, mut all) = (0usize, 0usize);
        for e in self.entries.iter().filter(|e| *e.state.borrow() == State::Pending) {
            all += 1;
            mine += usize::from(client_identity(&e.request.client) == me);
        }
        if mine >= PENDING_PER_CLIENT || all >= PENDING_IN_ALL {
            return Err(ServiceError::ApprovalRequired(format!(
                "too many approval requests wait for a decision ({mine} of this client's, {all} in all; limits {PENDING_PER_CLIENT} and {PENDING_IN_ALL}): answer or let them time out first"
            )));
        }
        Ok(())
    }

    /// Whether `id` was asked through an `input_required` round (only then may the client's
    /// echoed answer decide it).
    pub fn answerable_in_band(&self, id: &str) -> bool {
        self.entries.get(id).is_some_and(|e| e.request.answerable_in_band)
    }

    /// Records a decision; the first one wins. `record` writes its audit record while the
    /// request is held, before anyone can see the decision: an approval it cannot record is
    /// not granted (the request stays pending); a denial stands anyway (denying is safe).
    /// `Err` names why nothing changed.
    fn decide(
        &self,
        id: &str,
        approve: bool,
        by: &str,
        record: impl FnOnce(&ApprovalRequest, Instant) -> Result<(), crate::audit::AuditError>,
    ) -> Result<(), DecideError> {
        let entry = self.entries.get(id).ok_or_else(|| DecideError::Unknown(id.to_owned()))?;
        let state = if approve { State::Approved { by: by.to_owned() } } else { State::Denied { by: by.to_owned() } };
        let mut outcome = Err(DecideError::AlreadyDecided(id.to_owned()));
        entry.state.send_if_modified(|s| {
            if *s != State::Pending {
                return false;
            }
            outcome = record(&entry.request, entry.created).map_err(DecideError::NotRecorded);
            if outcome.is_err() && approve {
                return false;
            }
            *s = state.clone();
            true
        });
        if !matches!(outcome, Err(DecideError::AlreadyDecided(_))) && *entry.state.borrow() == state {
            self.remember(&entry.request, &state);
        }
        drop(entry);
        match outcome {
            Err(e @ DecideError::NotRecorded(_)) if !approve => {
                tracing::warn!(target: "sshwarden::audit", approval_id = id, "denial not recorded: {e}");
                Ok(())
            }
            other => other,
        }
    }
}

impl Service {
    /// The approval request `what` on `aliases` needs, if any host's decision is `ask`
    /// (hosts the policy denies outright are left to their denial).
    pub fn approval_needed(&self, aliases: &[String], what: &str, client: &str) -> Option<ApprovalRequest> {
        let cfg = self.config();
        let mut asked = Vec::new();
        let mut first = None;
        let mut approvals_required = 1;
        for alias in aliases {
            let Some(host) = cfg.host(alias) else { continue };
            let (decision, label) =
                crate::service::plan::decide(&cfg, host, &crate::service::principal_of(Some(client)), what);
            if decision.ask {
                let wanted =
                    decision.rule.as_ref().and_then(|r| cfg.policy.rules.get(r.index)).map_or(1, |r| r.approvals);
                approvals_required = approvals_required.max(wanted);
                asked.push(alias.clone());
                first.get_or_insert((label, decision.reason, cfg.policy.limits_for(host).approval_timeout_seconds));
            }
        }
        let (rule, reason, timeout_seconds) = first?;
        let names: Vec<&str> = asked.iter().map(String::as_str).collect();
        Some(ApprovalRequest {
            id: format!("a{}", hex::encode(rand::random::<[u8; 12]>())),
            hosts: crate::inventory::hostset::fold(&names),
            aliases: asked,
            what: what.to_owned(),
            rule,
            reason,
            client: client.to_owned(),
            requested_at_ms: crate::tasks::now_ms(),
            timeout_seconds,
            uses_per_host: 1,
            answerable_in_band: false,
            approvals_required,
        })
    }

    /// Decides approval `id` (the first decision wins) and audits it: who, what, how fast.
    pub fn decide_approval(&self, id: &str, approve: bool, by: &str) -> Result<(), DecideError> {
        // A rule wanting several approvers: this one may only be counted.
        let joined;
        let by = match approve.then(|| self.count_approver(id, by)).transpose()? {
            Some(crate::service::approvers::Count::Partial) => return Ok(()),
            Some(crate::service::approvers::Count::Final(all)) => {
                joined = all;
                joined.as_str()
            }
            None => by,
        };
        self.approvals.decide(id, approve, by, |request, created| {
            let fields = json!({ "approval_id": id, "decision": if approve { "approved" } else { "denied" }, "by": by, "latency_ms": created.elapsed().as_millis() as u64 });
            self.audit(Some(&request.client), "approval_decided", fields, true)?;
            self.metrics.approval_decided(approve, created.elapsed().as_secs_f64());
            Ok(())
        })
    }

    /// A human's answer from the client: an approval the audit cannot record is turned
    /// into a denial at once, rather than leaving the caller waiting for the timeout.
    pub fn decide_or_deny(&self, id: &str, approve: bool, by: &str) {
        if let Err(DecideError::NotRecorded(e)) = self.decide_approval(id, approve, by) {
            tracing::warn!(target: "sshwarden::audit", approval_id = id, "approval refused: {e}");
            if let Err(e) = self.decide_approval(id, false, "audit log unwritable") {
                // Still pending, then: the requester is refused when its wait times out.
                tracing::warn!(target: "sshwarden::audit", approval_id = id, "the denial was not recorded either: {e}");
            }
        }
    }
}

pub(super) fn unknown_ticket(id: &str) -> ServiceError {
    ServiceError::ApprovalRequired(format!("no approval {id:?} (unknown or expired)"))
}

pub(super) fn cannot_ask(request: &ApprovalRequest) -> ServiceError {
    ServiceError::ApprovalRequired(format!(
        "approval required, this client cannot ask a human: `{}` on {} ({}: {})",
        request.what,
        request.hosts,
        request.rule.as_deref().unwrap_or("policy"),
        request.reason
    ))
}
