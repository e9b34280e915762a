//! Quotas against runaway agents (`limits.quotas`): per caller, remote commands started per
//! minute, tasks running at once, and hosts reached by fan-outs per hour.
//!
//! Owns: the usage ledger (sliding windows per principal) and the refusal, `rate_limited`
//! with `retry_after_seconds`, audited. Charged at the gate (`prepare_with`, every remote
//! command on every path: a fan-out to N hosts starts N commands) and when a fan-out starts
//! (its host count). Never limits `local` (stdio and the CLI: the operator at the machine)
//! and never holds a lock across an await.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use serde_json::{Value, json};

use crate::config::{Config, Quota};
use crate::policy::Principal;
use crate::service::{Service, ServiceError, principal_of, task_owner};

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

#[derive(Default)]
struct Usage {
    commands: VecDeque<Instant>,
    fanout_hosts: VecDeque<(Instant, usize)>,
}

impl Usage {
    fn prune(&mut self, now: Instant) {
        while self.commands.front().is_some_and(|t| now.duration_since(*t) >= MINUTE) {
            self.commands.pop_front();
        }
        while self.fanout_hosts.front().is_some_and(|(t, _)| now.duration_since(*t) >= HOUR) {
            self.fanout_hosts.pop_front();
        }
    }

    fn hosts_this_hour(&self) -> usize {
        self.fanout_hosts.iter().map(|(_, n)| n).sum()
    }
}

/// Usage per principal.
#[derive(Default)]
pub struct Ledger(DashMap<String, Usage>);

fn refused(who: &Principal, what: &str, retry_after: Duration) -> ServiceError {
    let retry_after_seconds = retry_after.as_secs().max(1);
    ServiceError::RateLimited {
        message: format!("quota of {}: {what}; retry in {retry_after_seconds} s", who.name),
        retry_after_seconds,
    }
}

impl Service {
    /// The quota that applies to the caller of `client`, `None` for `local` or when none is set.
    fn quota_for(&self, cfg: &Config, client: Option<&str>) -> Option<(Principal, Quota)> {
        let who = principal_of(client);
        if who == Principal::local() {
            return None;
        }
        let quota = cfg.policy.quotas.for_caller(&who)?;
        Some((who, quota))
    }

    /// Charges one remote command to the caller, or refuses it (audited).
    pub(crate) fn charge_command(&self, cfg: &Config, client: Option<&str>) -> Result<(), ServiceError> {
        let Some((who, quota)) = self.quota_for(cfg, client) else { return Ok(()) };
        if let Some(limit) = quota.concurrent_tasks {
            let owner = task_owner(client.unwrap_or(""));
            let active = self
                .tasks
                .list()
                .iter()
                .filter(|s| !s.state.is_finished())
                .filter(|s| self.tasks.get(&s.task_id).is_ok_and(|t| t.spec.owner == owner))
                .count();
            if active >= limit as usize {
                return Err(self.audit_refusal(
                    client,
                    refused(&who, &format!("{active} tasks running, concurrent_tasks {limit}"), Duration::from_secs(5)),
                ));
            }
        }
        let now = Instant::now();
        let mut usage = self.quotas.0.entry(who.name.clone()).or_default();
        usage.prune(now);
        if let Some(limit) = quota.commands_per_minute
            && usage.commands.len() >= limit as usize
        {
            let oldest = usage.commands.front().copied().unwrap_or(now);
            let wait = MINUTE.saturating_sub(now.duration_since(oldest));
            drop(usage);
            return Err(self.audit_refusal(client, refused(&who, &format!("commands_per_minute {limit} used"), wait)));
        }
        usage.commands.push_back(now);
        Ok(())
    }

    /// Charges a fan-out's `hosts` to the caller's hourly budget, or refuses the whole fan-out.
    pub(crate) fn charge_fanout(&self, client: Option<&str>, hosts: usize) -> Result<(), ServiceError> {
        let cfg = self.config();
        let Some((who, quota)) = self.quota_for(&cfg, client) else { return Ok(()) };
        let Some(limit) = quota.fanout_hosts_per_hour else { return Ok(()) };
        let now = Instant::now();
        let mut usage = self.quotas.0.entry(who.name.clone()).or_default();
        usage.prune(now);
        let used = usage.hosts_this_hour();
        if used + hosts > limit as usize {
            let oldest = usage.fanout_hosts.front().map_or(now, |(t, _)| *t);
            let wait = if hosts > limit as usize { HOUR } else { HOUR.saturating_sub(now.duration_since(oldest)) };
            drop(usage);
            let what = format!("{used} of fanout_hosts_per_hour {limit} used, this fan-out has {hosts}");
            return Err(self.audit_refusal(client, refused(&who, &what, wait)));
        }
        usage.fanout_hosts.push_back((now, hosts));
        Ok(())
    }

    fn audit_refusal(&self, client: Option<&str>, e: ServiceError) -> ServiceError {
        if let ServiceError::RateLimited { message, retry_after_seconds } = &e {
            self.audit_or_warn(
                client,
                "rate_limited",
                json!({ "reason": message, "retry_after_seconds": retry_after_seconds }),
            );
        }
        e
    }

    /// What is left of the caller's budget now (for `ssh_describe_host`), `None` without one.
    pub fn quota_remaining(&self, client: Option<&str>) -> Option<Value> {
        let cfg = self.config();
        let (who, quota) = self.quota_for(&cfg, client)?;
        let now = Instant::now();
        let (commands, hosts) = match self.quotas.0.get_mut(&who.name) {
            Some(mut u) => {
                u.prune(now);
                (u.commands.len(), u.hosts_this_hour())
            }
            None => (0, 0),
        };
        let left = |limit: Option<u32>, used: usize| limit.map(|l| (l as usize).saturating_sub(used));
        Some(json!({
            "principal": who.name,
            "commands_this_minute_left": left(quota.commands_per_minute, commands),
            "fanout_hosts_this_hour_left": left(quota.fanout_hosts_per_hour, hosts),
            "concurrent_tasks": quota.concurrent_tasks,
        }))
    }
}
