//! A dry run: for each selected host, the policy decision and the network precheck, with no
//! SSH connection. Shared by `sshwarden plan` and the `ssh_plan` tool.
//!
//! Owns: the per-host plan row and its folding by identical outcome (`fold`: host ranges,
//! each limits set once). Never connects, never runs anything.

use std::time::Duration;

use serde::Serialize;

use crate::config::{Config, Host, Limits};
use crate::net::{self, Resolve};
use crate::policy::files::Direction;
use crate::policy::{Decision, Principal};

/// What would happen on one host.
#[derive(Debug, Clone, Serialize)]
pub struct PlanRow {
    pub alias: String,
    /// `allow`, `ask` (allowed once a human approves) or `deny`, network included.
    pub decision: &'static str,
    /// Policy and network both allow it (false for `ask`).
    pub allowed: bool,
    pub policy_allowed: bool,
    /// The deciding rule's label (`rule #3 "id"`).
    pub rule: Option<String>,
    pub reason: String,
    pub denied_command: Option<String>,
    pub target_ip: Option<String>,
    /// The precheck's refusal, if any.
    pub network: Option<String>,
    /// The user the command would run as (`become`), when not the login user.
    #[serde(rename = "become", skip_serializing_if = "Option::is_none")]
    pub become_user: Option<String>,
    pub limits: Limits,
}

impl PlanRow {
    /// Allowed, or allowed once a human approves (an `ask` with a clean network precheck).
    pub fn runnable(&self) -> bool {
        self.allowed || (self.decision == "ask" && self.network.is_none())
    }
}

/// The one notation of a transfer as a "command" (`upload:PATH`, `download:PATH`): what
/// `ssh_plan` accepts, and what policy, approvals and audit records name.
pub fn transfer_notation(direction: Direction, path: &str) -> String {
    match direction {
        Direction::Write => format!("upload:{path}"),
        Direction::Read => format!("download:{path}"),
    }
}

/// What `ssh_plan`'s `command` names: a command, or a transfer (`upload:PATH`,
/// `download:PATH`) judged by the `files:` rules.
pub fn transfer_of(command: &str) -> Option<(Direction, &str)> {
    command
        .strip_prefix("upload:")
        .map(|p| (Direction::Write, p))
        .or_else(|| command.strip_prefix("download:").map(|p| (Direction::Read, p)))
}

/// The policy's decision for `what` on `host` — a command, or a transfer (see
/// `transfer_of`) judged by the `files:` rules — with the deciding rule's label.
pub fn decide(cfg: &Config, host: &Host, who: &Principal, what: &str) -> (Decision, Option<String>) {
    match transfer_of(what) {
        Some((direction, path)) => {
            let d = cfg.policy.judge_transfer(host, direction, path).decision;
            let label = d.rule.as_ref().and_then(|r| cfg.policy.files.rules.get(r.index)).map(|r| r.label());
            (d, label)
        }
        None => {
            let d = cfg.policy.evaluate_as(host, who, what);
            let label = d.rule.as_ref().and_then(|r| cfg.policy.rules.get(r.index)).map(|r| r.label());
            (d, label)
        }
    }
}

/// Plans `command` (or a transfer, see `transfer_of`) on `hosts`; DNS goes through
/// `resolver` with the policy's timeout.
pub async fn plan(
    cfg: &Config,
    hosts: &[&Host],
    who: &Principal,
    command: &str,
    resolver: &dyn Resolve,
) -> Vec<PlanRow> {
    let timeout = Duration::from_millis(cfg.policy.execution.dns_timeout_ms);
    let mut rows = Vec::with_capacity(hosts.len());
    for host in hosts {
        let (d, label) = decide(cfg, host, who, command);
        let pre = net::precheck(host, &cfg.policy.network, resolver, timeout).await;
        rows.push(PlanRow {
            alias: host.alias.clone(),
            decision: if pre.is_ok() { d.action() } else { "deny" },
            allowed: d.allowed && pre.is_ok(),
            policy_allowed: d.allowed,
            rule: label,
            reason: d.reason,
            denied_command: d.denied_command,
            target_ip: pre.as_ref().ok().map(|t| t.addr.ip().to_string()),
            network: pre.err().map(|e| e.to_string()),
            become_user: d.elevate.as_ref().map(|b| b.user.clone()),
            limits: cfg.policy.limits_for(host),
        });
    }
    rows
}

/// Hosts whose plan rows agree on everything but the host: one entry, hosts folded.
#[derive(Debug, Clone, Serialize)]
pub struct PlanGroup {
    /// Folded host set (`h[1-100]`).
    pub hosts: String,
    pub count: usize,
    pub decision: &'static str,
    pub allowed: bool,
    pub policy_allowed: bool,
    pub rule: Option<String>,
    pub reason: String,
    pub denied_command: Option<String>,
    pub network: Option<String>,
    #[serde(rename = "become", skip_serializing_if = "Option::is_none")]
    pub become_user: Option<String>,
    /// Which limits set (index into `limits_sets`) applies to which of the hosts, folded:
    /// `{"h[1-100]": 0}`, or several entries when overrides differ within the group.
    pub limits: std::collections::BTreeMap<String, usize>,
}

/// A plan folded by identical outcome: groups (largest first) and each distinct limits set
/// once.
#[derive(Debug, Clone, Serialize)]
pub struct FoldedPlan {
    pub groups: Vec<PlanGroup>,
    pub limits_sets: Vec<Limits>,
}

/// Folds `rows` by (decision, rule, reason, denied command, network verdict, become user).
pub fn fold(rows: &[PlanRow]) -> FoldedPlan {
    let mut limits_sets: Vec<Limits> = Vec::new();
    let mut limits_keys: Vec<String> = Vec::new();
    let set_of: Vec<usize> = rows
        .iter()
        .map(|row| {
            let key = serde_json::to_string(&row.limits).unwrap_or_default();
            limits_keys.iter().position(|k| *k == key).unwrap_or_else(|| {
                limits_keys.push(key);
                limits_sets.push(row.limits.clone());
                limits_sets.len() - 1
            })
        })
        .collect();
    let key = |r: &'_ PlanRow| {
        (
            r.decision,
            r.allowed,
            r.policy_allowed,
            r.rule.clone(),
            r.reason.clone(),
            r.denied_command.clone(),
            r.network.clone(),
            r.become_user.clone(),
        )
    };
    let groups = crate::inventory::hostset::fold_groups(rows, key, |r| &r.alias)
        .into_iter()
        .map(|g| {
            let row = &rows[g.members[0]];
            let mut by_set: std::collections::BTreeMap<usize, Vec<&str>> = Default::default();
            for &i in &g.members {
                by_set.entry(set_of[i]).or_default().push(&rows[i].alias);
            }
            PlanGroup {
                hosts: g.hosts,
                count: g.members.len(),
                decision: row.decision,
                allowed: row.allowed,
                policy_allowed: row.policy_allowed,
                rule: row.rule.clone(),
                reason: row.reason.clone(),
                denied_command: row.denied_command.clone(),
                network: row.network.clone(),
                become_user: row.become_user.clone(),
                limits: by_set.into_iter().map(|(set, hosts)| (crate::inventory::hostset::fold(&hosts), set)).collect(),
            }
        })
        .collect();
    FoldedPlan { groups, limits_sets }
}

/// ` (become: root)` after a plan line, when the command would run as another user.
pub fn become_suffix(become_user: Option<&str>) -> String {
    become_user.map(|u| format!(" (become: {u})")).unwrap_or_default()
}

/// One line a person reads: the policy's reason, then the network's when it refused.
pub fn reason_line(policy_allowed: bool, reason: &str, network: Option<&str>) -> String {
    match (network, policy_allowed) {
        (Some(n), true) => format!("network: {n}"),
        (Some(n), false) => format!("{reason}; network: {n}"),
        (None, _) => reason.to_owned(),
    }
}
