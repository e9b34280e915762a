//! The domain service behind every front end (MCP tools, `call`, `plan`): look up, decide,
//! precheck, audit, spawn.
//!
//! Owns: the current config (swapped atomically on reload), the task manager, the SSH
//! pool, the resolver and the audit sink, and the order of the gates: input → inventory →
//! policy → network → audit (fail-closed) → task. Never speaks a protocol.

pub mod approval_notify;
mod approval_wait;
pub mod approvals;
mod approvers;
mod become_check;
pub mod caller;
mod command_run;
pub mod elevate;
mod error;
pub mod fanout;
mod launch;
pub mod lost;
pub mod masking;
pub mod metrics;
pub mod plan;
pub mod quota;
pub mod readiness;
pub mod runner;
pub mod stream_mask;
mod tickets;
pub mod transfer;
pub mod transfer_io;

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

pub use crate::audit::command_sha256;
use crate::audit::{Audit, AuditError};
use crate::config::{self, Config, Credential, Dirs, Host, Limits};
use crate::net::{self, PrecheckError, Resolve, Target};
use crate::policy::Decision;
use crate::ssh::{Pool, PoolSettings};
use crate::tasks::{self, CancelledBy, ManagerLimits, Task, TaskManager};

/// Admission: a command on a host that passed every gate (input, inventory, policy, the
/// approval an `ask` needs, network precheck and route), ready for `launch`, which writes the
/// durable start record before anything runs. Its fields are private and only
/// `prepare_with` builds one, so no other code can start a command the gate did not admit:
///
/// ```compile_fail,E0451
/// // Outside `service`, a `Prepared` cannot be built by hand:
/// let p = sshwarden::service::Prepared { command: "rm -rf /".into(), ..todo!() };
/// ```
pub struct Prepared {
    /// Jump hosts on the way (empty: direct), each prechecked.
    route: Vec<crate::ssh::Hop>,
    host: Host,
    credential: Credential,
    limits: Limits,
    target: Target,
    decision: Decision,
    command: String,
    timeout: Duration,
    /// The granted approval an `ask` decision ran under (in the `task_start` record).
    approval: Option<String>,
    /// The sudo password for a `become` decision (host's, else credential's).
    become_password: Option<config::Secret>,
    /// Every configured secret value: masked in the command's output as it streams.
    secrets: Vec<String>,
}

impl Prepared {
    /// The limits that apply to this host (progress interval, result TTL, output caps).
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The policy decision that admitted the command.
    pub fn decision(&self) -> &Decision {
        &self.decision
    }
}

pub struct Service {
    dirs: Dirs,
    config: RwLock<Arc<Config>>,
    /// Private: work starts only through the gate (`launch`, `launch_transfer`, the runner).
    tasks: TaskManager,
    pool: Arc<Pool>,
    resolver: Arc<dyn Resolve>,
    audit: Audit,
    started: Instant,
    /// Tasks a restart lost (`lost.rs`): listed until acknowledged.
    pub(crate) lost: std::sync::Mutex<Vec<Value>>,
    /// Audit writers for task ends; shutdown waits for them so no end record is lost.
    pub(crate) enders: tokio_util::task::TaskTracker,
    /// Stops the syslog shipper (`audit.syslog`) after its last bounded round.
    shipper_stop: tokio_util::sync::CancellationToken,
    shipper: tokio_util::task::TaskTracker,
    /// Secret runbook parameter values of running runs (by run id): masked in every audit
    /// record, never written in clear.
    pub(crate) secrets: crate::service::masking::Secrets,
    /// Requests for human approval of `ask` decisions, pending and decided.
    pub approvals: crate::service::approvals::Approvals,
    /// What `GET /metrics` reports (`metrics.rs`).
    pub(crate) metrics: crate::service::metrics::Metrics,
    /// Per-caller usage against `limits.quotas` (`quota.rs`).
    quotas: crate::service::quota::Ledger,
}

pub use caller::{Caller, TaskView, principal_of, task_owner};
pub use error::{ServiceError, check_command};

impl Service {
    /// Loads the config and opens the audit log (its tail tells which tasks were lost).
    pub fn start(dirs: Dirs, resolver: Arc<dyn Resolve>) -> Result<Arc<Self>, ServiceError> {
        let cfg = config::load(&dirs).map_err(ServiceError::Config)?;
        let lost = Audit::unfinished_tasks(&cfg.policy.audit.path);
        let audit =
            Audit::open(&cfg.policy.audit.path, cfg.policy.audit.redact_commands, cfg.policy.audit.syslog.as_ref())
                .map_err(ServiceError::Audit)?;
        let shipper_stop = tokio_util::sync::CancellationToken::new();
        let shipper = tokio_util::task::TaskTracker::new();
        // Outside a runtime (never in practice) records simply wait in the spool.
        if let (Some(spool), Ok(rt)) = (audit.spool(), tokio::runtime::Handle::try_current()) {
            shipper.spawn_on(crate::audit::syslog::run_shipper(spool, shipper_stop.clone()), &rt);
        }
        let e = &cfg.policy.execution;
        let tasks = TaskManager::new(ManagerLimits {
            max_running: e.max_running_tasks,
            max_queued: e.max_queued_tasks,
            output_budget: e.output_memory_budget_bytes,
        });
        let pool = Pool::new(PoolSettings {
            max_sessions_per_connection: e.max_sessions_per_connection,
            idle: Duration::from_secs(e.connection_idle_seconds),
            keepalive: Duration::from_secs(e.keepalive_seconds),
            max_concurrent_handshakes: e.max_concurrent_handshakes,
        });
        let svc = Arc::new(Self {
            dirs,
            config: RwLock::new(Arc::new(cfg)),
            tasks,
            pool,
            resolver,
            audit,
            started: Instant::now(),
            lost: std::sync::Mutex::new(lost),
            enders: tokio_util::task::TaskTracker::new(),
            shipper_stop,
            shipper,
            secrets: Default::default(),
            approvals: Default::default(),
            metrics: Default::default(),
            quotas: Default::default(),
        });
        let hash = svc.config().hash.clone();
        svc.audit_or_warn(None, "config_loaded", json!({ "config_hash": hash }));
        Ok(svc)
    }

    /// The off-host audit spool, when `audit.syslog` is configured.
    pub(crate) fn audit_spool(&self) -> Option<Arc<crate::audit::syslog::Spool>> {
        self.audit.spool()
    }

    /// The task manager, read-only: get, list, memory, ack.
    pub fn tasks(&self) -> TaskView<'_> {
        TaskView(&self.tasks)
    }

    /// A command as people may see it in task listings: secret values masked, nothing when
    /// the configuration redacts commands.
    pub(crate) fn shown_command(&self, cfg: &Config, command: &str) -> String {
        if cfg.policy.audit.redact_commands {
            return String::new();
        }
        let mut shown = command.to_owned();
        self.mask_text(&mut shown);
        shown
    }

    /// The one way a front starts a command: every gate (`prepare_with`, with the approval
    /// ticket an `ask` needs), then `launch`. Returns the task and the limits it runs under.
    pub async fn start_command(
        self: &Arc<Self>,
        alias: &str,
        command: &str,
        timeout_seconds: Option<u64>,
        client: Option<&str>,
        approval: Option<&str>,
    ) -> Result<(Arc<Task>, Limits), ServiceError> {
        let prepared = self.prepare_with(alias, command, timeout_seconds, client, approval).await?;
        let limits = prepared.limits.clone();
        Ok((self.launch(prepared, client)?, limits))
    }

    pub fn config(&self) -> Arc<Config> {
        self.config.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub fn audit(&self, client: Option<&str>, event: &str, fields: Value, durable: bool) -> Result<(), AuditError> {
        let mut map = match fields {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        if let Some(c) = client {
            map.insert("client".into(), json!(c));
            // The verified caller, as its own field for whoever queries the trail.
            let who = principal_of(Some(c));
            if who.name != "local" {
                map.insert("principal".into(), json!(who.name));
            }
        }
        self.secrets.mask_record(&mut map);
        self.mask_config_secrets(&mut map);
        self.audit.record(event, map, durable)?;
        self.metrics.audit_record_written();
        Ok(())
    }

    /// A record that gates nothing: a write failure is logged (the reason names the file,
    /// never a field) and the caller goes on.
    pub fn audit_or_warn(&self, client: Option<&str>, event: &str, fields: Value) {
        if let Err(e) = self.audit(client, event, fields, false) {
            tracing::warn!(target: "sshwarden::audit", event, "audit record not written: {e}");
        }
    }

    /// Validates the new files fully and swaps them in, or keeps the old config.
    pub fn reload(&self, client: Option<&str>) -> Result<(Arc<Config>, Arc<Config>), ServiceError> {
        let loaded = config::load(&self.dirs).map_err(ServiceError::Config);
        self.metrics.reloaded(loaded.is_ok());
        let new = Arc::new(loaded?);
        let old = std::mem::replace(&mut *self.config.write().unwrap_or_else(|p| p.into_inner()), new.clone());
        self.audit_or_warn(client, "config_reloaded", json!({ "config_hash": new.hash, "previous_hash": old.hash }));
        Ok((old, new))
    }

    /// The resolver every precheck of this service uses.
    pub fn resolver(&self) -> &dyn Resolve {
        self.resolver.as_ref()
    }

    /// Resolves `host` with the service's resolver and judges it against the network policy.
    /// The jump hosts to `host`, first first, each prechecked (its address judged by the
    /// network policy) with its credential. Empty for a direct host.
    pub async fn route(&self, host: &Host) -> Result<Vec<crate::ssh::Hop>, ServiceError> {
        let cfg = self.config();
        let hops = cfg.route(host).ok_or_else(|| {
            ServiceError::InvalidInput(format!("the jump hosts of {:?} do not form a route", host.alias))
        })?;
        let mut route = Vec::with_capacity(hops.len());
        for hop in hops {
            let target = self.precheck(hop).await.map_err(ServiceError::Network)?;
            let cred = cfg.credential_for(hop).cloned().ok_or_else(|| ServiceError::UnknownHost(hop.alias.clone()))?;
            route.push((target, cred));
        }
        Ok(route)
    }

    pub async fn precheck(&self, host: &Host) -> Result<Target, PrecheckError> {
        let cfg = self.config();
        let dns = Duration::from_millis(cfg.policy.execution.dns_timeout_ms);
        net::precheck(host, &cfg.policy.network, self.resolver.as_ref(), dns).await
    }

    /// Every gate short of running: inventory, policy, network.
    pub async fn prepare(
        &self,
        alias: &str,
        command: &str,
        timeout_seconds: Option<u64>,
        client: Option<&str>,
    ) -> Result<Prepared, ServiceError> {
        self.prepare_with(alias, command, timeout_seconds, client, None).await
    }

    /// `prepare`, with the approval ticket (`approvals.rs`) that lets an `ask` decision
    /// through when a human granted it for this command on this host.
    pub async fn prepare_with(
        &self,
        alias: &str,
        command: &str,
        timeout_seconds: Option<u64>,
        client: Option<&str>,
        approval: Option<&str>,
    ) -> Result<Prepared, ServiceError> {
        check_command(command)?;
        let cfg = self.config();
        let host = cfg.host(alias).ok_or_else(|| ServiceError::UnknownHost(alias.to_owned()))?.clone();
        let limits = cfg.policy.limits_for(&host);
        let decision = cfg.policy.evaluate_as(&host, &principal_of(client), command);
        let sha = command_sha256(command);
        self.metrics.decision(&decision, "command");
        let mut record = json!({ "alias": alias, "command": command, "allowed": decision.allowed, "ask": decision.ask, "rule": decision.rule, "reason": decision.reason });
        if let Some(b) = &decision.elevate {
            record["become_user"] = json!(b.user);
        }
        self.audit_or_warn(client, "decision", record);
        let (decision, approval) = self.admit(decision, approval, alias, command, client)?;
        let credential =
            cfg.credential_for(&host).cloned().ok_or_else(|| ServiceError::UnknownHost(alias.to_owned()))?;
        let target = match self.precheck(&host).await {
            Ok(t) => t,
            Err(e) => {
                let reason = e.to_string();
                self.audit_or_warn(
                    client,
                    "precheck",
                    json!({ "alias": alias, "command_sha256": sha, "allowed": false, "reason": reason }),
                );
                return Err(ServiceError::Network(e));
            }
        };
        let route = match self.route(&host).await {
            Ok(r) => r,
            Err(e) => {
                let reason = e.to_string();
                self.audit_or_warn(client, "precheck", json!({ "alias": alias, "command_sha256": sha, "allowed": false, "reason": reason, "via": host.proxy_jump }));
                return Err(e);
            }
        };
        let max = limits.max_seconds;
        let timeout = match timeout_seconds {
            Some(0) => {
                return Err(ServiceError::InvalidInput("timeout_seconds must be at least 1".into()));
            }
            Some(t) if t > max => {
                return Err(ServiceError::InvalidInput(format!(
                    "timeout_seconds {t} exceeds the policy's max_seconds {max} for {alias:?}"
                )));
            }
            Some(t) => t,
            None => max,
        };
        // Last: only a command that passed every gate is charged to its caller.
        self.charge_command(&cfg, client)?;
        Ok(Prepared {
            approval,
            become_password: cfg.become_password_for(&host).cloned(),
            secrets: cfg.secret_values(),
            route,
            host,
            credential,
            limits,
            target,
            decision,
            command: command.to_owned(),
            timeout: Duration::from_secs(timeout),
        })
    }

    /// `cancel` on behalf of `client`: only a task it started (another's is unknown to it).
    pub fn cancel_as(&self, task_id: &str, client: &str) -> Result<tasks::TaskState, ServiceError> {
        self.tasks().get_for(task_id, client).map_err(ServiceError::Task)?;
        self.cancel(task_id, Some(client))
    }

    pub fn cancel(&self, task_id: &str, client: Option<&str>) -> Result<tasks::TaskState, ServiceError> {
        let before = self.tasks.cancel(task_id, CancelledBy::Client).map_err(ServiceError::Task)?;
        self.audit_or_warn(client, "cancel", json!({ "task_id": task_id, "state_before": before.name() }));
        Ok(before)
    }

    pub async fn shutdown(&self, grace: Duration) {
        self.tasks.shutdown(grace).await;
        self.enders.close();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.enders.wait()).await;
        self.shipper_stop.cancel();
        self.shipper.close();
        let _ = tokio::time::timeout(Duration::from_secs(3), self.shipper.wait()).await;
    }
}
