//! File transfers through the same gates as a command: input → inventory → `files:` policy
//! (and approval) → local path under `transfer_dir` → network → durable audit → task.
//!
//! Owns: `TransferRequest`, `Service::prepare_transfer` and `Service::launch_transfer`. The
//! task's work opens SFTP on the pooled connection, resolves the remote path on the host
//! (`realpath`) and judges the resolved path again (a symlink out of the allowed tree is
//! refused there), then streams; its result (bytes, SHA-256, content when inline) is the
//! task's `detail`. Never speaks a protocol and never names russh.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use crate::config::{Credential, Host, Limits};
use crate::net::Target;
use crate::policy::files::Direction;
use crate::policy::paths::{self, TransferPathError};
use crate::service::{Service, ServiceError, command_sha256};
use crate::tasks::{self, Task, WorkOutcome};

/// Where the bytes come from or go to on sshwarden's side.
#[derive(Debug, Clone)]
pub enum Local {
    /// Upload these bytes (inline `content` / `content_base64`).
    Content(Arc<Vec<u8>>),
    /// Upload from / download to this file (must lie under `files.transfer_dir`).
    File(String),
    /// Download into the result (capped by `max_output_bytes`).
    Inline,
}

#[derive(Debug, Clone)]
pub struct TransferRequest {
    pub alias: String,
    pub direction: Direction,
    pub remote_path: String,
    pub local: Local,
    /// Permissions for an uploaded file (default: the replaced file's, else 0600 → umask).
    pub mode: Option<u32>,
}

impl TransferRequest {
    /// The plan notation (`upload:PATH` / `download:PATH`): what policy, approvals and audit
    /// name.
    pub fn what(&self) -> String {
        crate::service::plan::transfer_notation(self.direction, &self.remote_path)
    }
}

/// A transfer that passed every gate.
pub struct PreparedTransfer {
    request: TransferRequest,
    local_path: Option<PathBuf>,
    route: Vec<crate::ssh::Hop>,
    host: Host,
    credential: Credential,
    limits: Limits,
    target: Target,
    max_bytes: Option<u64>,
    approval: Option<String>,
}

/// The denial a transfer task found while running (the path the host resolved is outside
/// the `files:` rules), as the same error a denial before the run is.
pub fn denied(reason: String) -> ServiceError {
    ServiceError::Denied(crate::policy::Decision {
        allowed: false,
        ask: false,
        rule: None,
        reason,
        denied_command: None,
        elevate: None,
    })
}

fn invalid(msg: String) -> ServiceError {
    ServiceError::InvalidInput(msg)
}

/// The resolved `local_path` of a request that names one, inside `files.transfer_dir`.
fn local_path_for(
    files: &crate::config::FilesPolicy,
    request: &TransferRequest,
) -> Result<Option<PathBuf>, ServiceError> {
    let Local::File(p) = &request.local else { return Ok(None) };
    let dir = files
        .transfer_dir
        .as_ref()
        .ok_or_else(|| denied("local_path needs files.transfer_dir in policy.yml; none is configured".into()))?;
    local_under(dir, p, request.direction == Direction::Write).map(Some)
}

/// `path` resolved (symlinks included) and inside `dir` (resolved too); for a download the
/// file may not exist yet, so its directory is resolved and the name appended.
fn local_under(dir: &Path, path: &str, must_exist: bool) -> Result<PathBuf, ServiceError> {
    let root = std::fs::canonicalize(dir)
        .map_err(|e| invalid(format!("files.transfer_dir {} cannot be used: {e}", dir.display())))?;
    let p = Path::new(path);
    let resolved = if must_exist || p.exists() {
        std::fs::canonicalize(p).map_err(|e| invalid(format!("local_path {path:?}: {e}")))?
    } else {
        let name = p.file_name().ok_or_else(|| invalid(format!("local_path {path:?} has no file name")))?;
        let parent = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::canonicalize(parent).map_err(|e| invalid(format!("local_path {path:?}: {e}")))?.join(name)
    };
    if !resolved.starts_with(&root) || resolved == root {
        return Err(denied(format!(
            "local_path {path:?} resolves to {} which is outside files.transfer_dir {}",
            resolved.display(),
            root.display()
        )));
    }
    Ok(resolved)
}

impl Service {
    /// The one way a front starts a transfer: every gate (`prepare_transfer`), then
    /// `launch_transfer` (durable `transfer_start`, then the task).
    pub async fn start_transfer(
        self: &Arc<Self>,
        request: TransferRequest,
        client: Option<&str>,
        approval: Option<&str>,
    ) -> Result<Arc<Task>, ServiceError> {
        let prepared = self.prepare_transfer(request, client, approval).await?;
        self.launch_transfer(prepared, client)
    }

    /// Every gate short of transferring. `approval` is the ticket for an `ask` decision.
    pub async fn prepare_transfer(
        &self,
        request: TransferRequest,
        client: Option<&str>,
        approval: Option<&str>,
    ) -> Result<PreparedTransfer, ServiceError> {
        // A path to spell differently is the caller's error; a `..` (or a control character)
        // is the policy's refusal, which `judge_transfer` below turns into an audited denial.
        match paths::transfer_path(&request.remote_path) {
            Err(e @ (TransferPathError::NotAbsolute(_) | TransferPathError::NotNormalized(_))) => {
                return Err(invalid(e.to_string()));
            }
            Ok(()) | Err(TransferPathError::Refused(_)) => {}
        }
        let cfg = self.config();
        let alias = request.alias.as_str();
        let host = cfg.host(alias).ok_or_else(|| ServiceError::UnknownHost(alias.to_owned()))?.clone();
        let limits = cfg.policy.limits_for(&host);
        let what = request.what();
        // sshwarden's own side first: a local path the policy does not cover is refused
        // before an approval could be asked for (or a granted one consumed).
        let local_path = local_path_for(&cfg.policy.files, &request).inspect_err(|e| {
            if let ServiceError::Denied(d) = e {
                self.audit_or_warn(client, "decision", json!({ "alias": alias, "command": what, "transfer": request.direction.name(), "path": request.remote_path, "allowed": false, "ask": false, "rule": null, "reason": d.reason }));
            }
        })?;
        let judged = cfg.policy.judge_transfer(&host, request.direction, &request.remote_path);
        let decision = judged.decision;
        self.metrics.decision(&decision, "transfer");
        self.audit_or_warn(client, "decision", json!({ "alias": alias, "command": what, "transfer": request.direction.name(), "path": request.remote_path, "allowed": decision.allowed, "ask": decision.ask, "rule": decision.rule, "reason": decision.reason }));
        let (_, approval) = self.admit(decision, approval, alias, &what, client)?;
        let inline_cap = limits.max_output_bytes;
        if let Local::Content(c) = &request.local
            && c.len() as u64 > inline_cap
        {
            return Err(invalid(format!(
                "inline content is {} bytes; the limit is max_output_bytes {inline_cap}: put the file under files.transfer_dir and pass local_path",
                c.len()
            )));
        }
        let max_bytes = match request.local {
            Local::Inline => Some(judged.max_bytes.map_or(inline_cap, |m| m.min(inline_cap))),
            _ => judged.max_bytes,
        };
        let target = self.precheck(&host).await.map_err(ServiceError::Network)?;
        let route = self.route(&host).await?;
        let credential =
            cfg.credential_for(&host).cloned().ok_or_else(|| ServiceError::UnknownHost(alias.to_owned()))?;
        Ok(PreparedTransfer { request, local_path, route, host, credential, limits, target, max_bytes, approval })
    }

    /// Writes the durable `transfer_start` record, then spawns the transfer task.
    pub fn launch_transfer(
        self: &Arc<Self>,
        p: PreparedTransfer,
        client: Option<&str>,
    ) -> Result<Arc<Task>, ServiceError> {
        let what = p.request.what();
        let spec = tasks::TaskSpec {
            alias: p.host.alias.clone(),
            target_ip: p.target.addr.ip().to_string(),
            command_sha256: command_sha256(&what),
            command: what.clone(),
            owner: crate::service::task_owner(client.unwrap_or("")),
            host_slots: p.host.max_concurrency as usize,
            timeout: Duration::from_secs(p.limits.max_seconds.max(3600)),
            stop_grace: tasks::STOP_GRACE,
            ttl: Duration::from_secs(p.limits.task_result_ttl),
            output_cap: p.limits.max_output_bytes,
            kill_on_output_limit: false,
        };
        let local_shown = p.local_path.as_ref().map(|l| l.display().to_string());
        let fields = json!({ "alias": p.host.alias, "target_ip": spec.target_ip, "command": what, "transfer": p.request.direction.name(), "path": p.request.remote_path, "local_path": local_shown, "max_bytes": p.max_bytes, "approval_id": p.approval });
        let svc = self.clone();
        let work: tasks::Work = Box::new(move |ctx| Box::pin(async move { svc.transfer_work(p, ctx).await }));
        let task = self.start_audited(spec, work, "transfer_start", fields, client)?;
        let (svc, t) = (self.clone(), task.clone());
        self.enders.spawn(async move {
            let state = t.finished().await;
            let d = t.detail().unwrap_or(Value::Null);
            svc.metrics.task_finished(state.name(), t.snapshot().elapsed_ms as f64 / 1000.0);
            svc.audit_or_warn(None, "transfer_end", json!({ "task_id": t.id, "alias": t.spec.alias, "state": state, "transfer": d["direction"], "path": d["remote_path"], "resolved_path": d["resolved_path"], "bytes": d["bytes"], "sha256": d["sha256"] }));
        });
        Ok(task)
    }

    async fn transfer_work(self: Arc<Self>, p: PreparedTransfer, ctx: tasks::TaskContext) -> WorkOutcome {
        let cfg = self.config();
        let known_hosts = cfg.policy.known_hosts_path.clone();
        let to = crate::ssh::Destination {
            route: &p.route,
            target: &p.target,
            cred: &p.credential,
            known_hosts: &known_hosts,
            connect_timeout: p.host.connect_timeout,
        };
        let sftp = match self.pool().sftp(&to, &ctx.cancel).await {
            Ok(Some(s)) => s,
            Ok(None) => return WorkOutcome::Stopped,
            Err(e) => return WorkOutcome::Failed((&e).into()),
        };
        ctx.set_running();
        let r = crate::service::transfer_io::run(&sftp, &cfg, &p, &ctx).await;
        sftp.close();
        match r {
            Ok(detail) => {
                ctx.task().set_detail(detail);
                WorkOutcome::Exited { exit_code: Some(0), exit_signal: None }
            }
            Err(e) if ctx.cancel.is_cancelled() => {
                ctx.task().set_detail(json!({ "error": e.error }));
                WorkOutcome::Stopped
            }
            Err(e) => WorkOutcome::Failed(e),
        }
    }
}

impl PreparedTransfer {
    pub fn request(&self) -> &TransferRequest {
        &self.request
    }
    pub fn local_path(&self) -> Option<&Path> {
        self.local_path.as_deref()
    }
    pub fn host(&self) -> &Host {
        &self.host
    }
    pub fn max_bytes(&self) -> Option<u64> {
        self.max_bytes
    }
}

/// Inline content as the result carries it: UTF-8 text, or base64 when it is not UTF-8.
pub fn inline_content(bytes: Vec<u8>) -> (String, &'static str) {
    match String::from_utf8(bytes) {
        Ok(text) => (text, "utf-8"),
        Err(e) => (base64::engine::general_purpose::STANDARD.encode(e.into_bytes()), "base64"),
    }
}
