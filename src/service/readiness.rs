//! What can be learned about a host without running anything: whether its host key is in
//! known_hosts, and a preflight probe (network precheck → credentials → host key →
//! authentication). These are `Service` queries so the protocol layer never reaches into
//! `ssh/` itself.
//!
//! Owns: the preflight stages and their names, and the offered host key of an unknown host
//! (for a person to confirm). Never opens a session channel, never runs a command, never
//! adds a host key itself.

use serde::Serialize;

use crate::config::Host;
use crate::service::Service;
use crate::ssh::{Destination, SshError, known_hosts};

/// One host's preflight outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Preflight {
    pub alias: String,
    pub ok: bool,
    /// Where it stopped: network, credentials, host_key, authentication or connect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Each jump host on the way, checked the same way (first hop first).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hops: Vec<Preflight>,
}

fn stage(e: &SshError) -> &'static str {
    match e {
        SshError::UnknownHostKey { .. }
        | SshError::HostKeyChanged { .. }
        | SshError::HostKeyRevoked { .. }
        | SshError::KnownHosts { .. } => "host_key",
        SshError::Auth { .. } => "authentication",
        SshError::Hop { .. } => "jump_host",
        _ => "connect",
    }
}

/// Why the server is not ready for work (`GET /readyz`): each failing check by name.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    pub ready: bool,
    /// check name → `ok` or what is wrong.
    pub checks: std::collections::BTreeMap<&'static str, String>,
}

impl Service {
    /// Whether the server can take work: the configuration is loaded (it is, once serving),
    /// the audit file is writable (no record, no run), the syslog spool has room.
    pub fn readiness(&self) -> Readiness {
        let cfg = self.config();
        let mut checks = std::collections::BTreeMap::new();
        checks.insert("config", format!("ok ({} hosts, hash {})", cfg.hosts.len(), &cfg.hash[..12]));
        let audit = &cfg.policy.audit.path;
        let writable = std::fs::OpenOptions::new().append(true).open(audit);
        checks.insert(
            "audit",
            writable.map_or_else(|e| format!("{} is not writable: {e}", audit.display()), |_| "ok".into()),
        );
        if let Some(spool) = self.audit_spool() {
            let (pending, limit) = (spool.pending(), spool.settings.spool_bytes);
            let verdict = if pending < limit {
                "ok".to_owned()
            } else {
                format!("full: {pending} of {limit} bytes not taken by the collector")
            };
            checks.insert("syslog_spool", verdict);
        }
        Readiness { ready: checks.values().all(|v| v.starts_with("ok")), checks }
    }

    /// Whether known_hosts has an entry for the host (`[host]:port` forms included).
    pub fn host_key_known(&self, host: &Host) -> bool {
        let cfg = self.config();
        std::fs::read_to_string(&cfg.policy.known_hosts_path)
            .is_ok_and(|t| known_hosts::has_entry(&t, &host.host, host.port))
    }

    /// Connects and authenticates as a run would, and stops there; every jump host on the
    /// way gets its own row (address, precheck, host key, authentication).
    pub async fn preflight(&self, host: &Host) -> Preflight {
        let cfg = self.config();
        let mut hops = Vec::new();
        for hop in cfg.route(host).unwrap_or_default() {
            hops.push(self.preflight_one(hop).await);
        }
        let mut row = self.preflight_one(host).await;
        row.hops = hops;
        row
    }

    /// The host key `host` offers when known_hosts does not list it yet: its SHA-256
    /// fingerprint and the known_hosts line, for a person to confirm (`init --scan`). The
    /// connection stops at the host key: nothing is authenticated with an unknown host.
    /// `Ok(None)`: the key is already known.
    pub async fn offered_host_key(&self, host: &Host) -> Result<Option<(String, String)>, String> {
        let target = self.precheck(host).await.map_err(|e| e.to_string())?;
        let cfg = self.config();
        let cred = cfg.credential_for(host).ok_or("no credentials")?;
        let route = self.route(host).await.map_err(|e| e.to_string())?;
        let known_hosts = &cfg.policy.known_hosts_path;
        let to =
            Destination { route: &route, target: &target, cred, known_hosts, connect_timeout: host.connect_timeout };
        match self.pool().probe(&to).await {
            Err(SshError::UnknownHostKey { fingerprint, line, .. }) => Ok(Some((fingerprint, line))),
            // Authentication is not this question: the host key was known to get there.
            Ok(()) | Err(SshError::Auth { .. }) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn preflight_one(&self, host: &Host) -> Preflight {
        let row = |ok, stage, target_ip, error| Preflight {
            alias: host.alias.clone(),
            ok,
            stage,
            target_ip,
            error,
            hops: Vec::new(),
        };
        let target = match self.precheck(host).await {
            Ok(t) => t,
            Err(e) => return row(false, Some("network"), None, Some(e.to_string())),
        };
        let ip = Some(target.addr.ip().to_string());
        let cfg = self.config();
        let Some(cred) = cfg.credential_for(host) else {
            return row(false, Some("credentials"), None, Some("no credentials".into()));
        };
        let route = match self.route(host).await {
            Ok(r) => r,
            Err(e) => return row(false, Some("jump_host"), ip, Some(e.to_string())),
        };
        let known_hosts = &cfg.policy.known_hosts_path;
        let to =
            Destination { route: &route, target: &target, cred, known_hosts, connect_timeout: host.connect_timeout };
        match self.pool().probe(&to).await {
            Ok(()) => row(true, None, ip, None),
            Err(e) => row(false, Some(stage(&e)), ip, Some(e.to_string())),
        }
    }
}
