//! A dry run: for each selected host, the policy decision and the network precheck, with no
//! SSH connection. Shared by `sshwarden plan` and the `ssh_plan` tool.
//!
//! Owns: the per-host plan row. Never connects, never runs anything.

use std::time::Duration;

use serde::Serialize;

use crate::config::{Config, Host, Limits};
use crate::net::{self, Resolve};

/// What would happen on one host.
#[derive(Debug, Clone, Serialize)]
pub struct PlanRow {
    pub alias: String,
    /// Policy and network both allow it.
    pub allowed: bool,
    pub policy_allowed: bool,
    /// The deciding rule's label (`rule #3 "id"`).
    pub rule: Option<String>,
    pub reason: String,
    pub denied_command: Option<String>,
    pub target_ip: Option<String>,
    /// The precheck's refusal, if any.
    pub network: Option<String>,
    pub limits: Limits,
}

/// Plans `command` on `hosts`; DNS goes through `resolver` with the policy's timeout.
pub async fn plan(cfg: &Config, hosts: &[&Host], command: &str, resolver: &dyn Resolve) -> Vec<PlanRow> {
    let timeout = Duration::from_millis(cfg.policy.execution.dns_timeout_ms);
    let mut rows = Vec::with_capacity(hosts.len());
    for host in hosts {
        let d = cfg.policy.evaluate(host, command);
        let pre = net::precheck(host, &cfg.policy.network, resolver, timeout).await;
        rows.push(PlanRow {
            alias: host.alias.clone(),
            allowed: d.allowed && pre.is_ok(),
            policy_allowed: d.allowed,
            rule: d.rule.as_ref().and_then(|r| cfg.policy.rules.get(r.index)).map(|r| r.label()),
            reason: d.reason,
            denied_command: d.denied_command,
            target_ip: pre.as_ref().ok().map(|t| t.addr.ip().to_string()),
            network: pre.err().map(|e| e.to_string()),
            limits: cfg.policy.limits_for(host),
        });
    }
    rows
}
