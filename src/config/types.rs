//! The validated configuration types: what the rest of sshwarden reads.
//!
//! Owns: defaults (the anchor's where it has one), effective-limit precedence. Never
//! constructed from unchecked input outside `validate.rs`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use regex::Regex;
use serde::Serialize;

use super::{AuditSettings, Diagnostic, Secret};
use crate::policy::Rule;

/// The anchor's 20 default `deny_substrings`, used when `limits.deny_substrings` is unset.
pub const DEFAULT_DENY_SUBSTRINGS: [&str; 20] = [
    "rm -rf /",
    ":(){ :|:& };:",
    "mkfs ",
    "dd if=/dev/zero",
    "shutdown -h",
    "reboot",
    "userdel ",
    "passwd ",
    "ssh ",
    "scp ",
    "rsync -e ssh",
    "curl ",
    "wget ",
    "nc ",
    "nmap ",
    "telnet ",
    "kubectl ",
    "aws ",
    "gcloud ",
    "az ",
];

/// Everything loaded from one config directory.
#[derive(Debug, Clone)]
pub struct Config {
    pub hosts: Vec<Host>,
    pub credentials: BTreeMap<String, Credential>,
    pub policy: Policy,
    pub warnings: Vec<Diagnostic>,
    /// SHA-256 over the three files' bytes, hex; shown by `ssh_ping` and audit records.
    pub hash: String,
    /// Runbooks by name (`--runbooks-dir`), reloaded with the rest.
    pub runbooks: BTreeMap<String, crate::runbook::Runbook>,
    /// `become_password_secret` of hosts that set one, by alias (wins over the credential's).
    pub host_become_passwords: BTreeMap<String, Secret>,
}

impl Config {
    pub fn host(&self, alias: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.alias == alias)
    }

    pub fn credential_for(&self, host: &Host) -> Option<&Credential> {
        self.credentials.get(&host.credentials)
    }

    /// The sudo password for `become` on `host`: the host's own, else its credential's.
    pub fn become_password_for(&self, host: &Host) -> Option<&Secret> {
        self.host_become_passwords
            .get(&host.alias)
            .or_else(|| self.credential_for(host).and_then(|c| c.become_password.as_ref()))
    }

    /// Every configured secret value (passwords, passphrases, become passwords), longest
    /// first: what output, results and audit records must never show.
    pub fn secret_values(&self) -> Vec<String> {
        let creds = self.credentials.values().flat_map(|c| [&c.password, &c.key_passphrase, &c.become_password]);
        let hosts = self.host_become_passwords.values();
        let mut values: Vec<String> =
            creds.flatten().chain(hosts).map(|s| s.expose().to_owned()).filter(|v| !v.is_empty()).collect();
        values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        values.dedup();
        values
    }

    /// The hops to `host`, first first: a first hop's own route comes before it, as
    /// OpenSSH does when a ProxyJump host has its own ProxyJump. Validation refuses unknown
    /// aliases and cycles, so this terminates; `None` only for an unvalidated inventory.
    pub fn route(&self, host: &Host) -> Option<Vec<&Host>> {
        let mut route = Vec::new();
        let mut seen = vec![host.alias.as_str()];
        let mut hops: Vec<&str> = host.proxy_jump.iter().map(String::as_str).collect();
        while let Some(first) = hops.first().copied() {
            if seen.contains(&first) {
                return None;
            }
            seen.push(first);
            let first_host = self.host(first)?;
            let mut chain: Vec<&Host> = Vec::new();
            for h in &hops {
                chain.push(self.host(h)?);
            }
            route.splice(0..0, chain);
            hops = first_host.proxy_jump.iter().map(String::as_str).collect();
        }
        Some(route)
    }
}

/// One inventory host.
#[derive(Debug, Clone, Serialize)]
pub struct Host {
    pub alias: String,
    /// Name or IP literal as written; known_hosts lookups use this, connects use the precheck IP.
    pub host: String,
    pub port: u16,
    pub credentials: String,
    pub tags: Vec<String>,
    pub description: String,
    pub max_concurrency: u32,
    #[serde(with = "secs")]
    pub connect_timeout: Duration,
    /// Jump hosts as written (`proxy_jump`), first hop first.
    pub proxy_jump: Vec<String>,
    /// `resolve: remote`: the last jump host resolves `host` (names only it can resolve).
    pub resolve_remote: bool,
}

impl Host {
    /// The host as the command policy judges it for `who`, with the given effective
    /// deny_substrings.
    pub fn subject<'a>(
        &'a self,
        deny_substrings: &'a [String],
        who: &'a crate::policy::Principal,
    ) -> crate::policy::Subject<'a> {
        crate::policy::Subject {
            alias: &self.alias,
            tags: &self.tags,
            deny_substrings,
            principal: &who.name,
            groups: &who.groups,
        }
    }
}

/// How to log in.
#[derive(Debug, Clone)]
pub struct Credential {
    pub name: String,
    pub username: String,
    pub key_path: Option<PathBuf>,
    /// OpenSSH user certificate for `key_path`.
    pub certificate_path: Option<PathBuf>,
    pub key_passphrase: Option<Secret>,
    pub password: Option<Secret>,
    pub use_agent: bool,
    /// `become_password_secret`: the sudo password for `become` rules.
    pub become_password: Option<Secret>,
}

/// What to do when a task's output reaches `max_output_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnOutputLimit {
    Truncate,
    Kill,
}

/// Default bound on a fan-out's structured result: under the ~25k-token tool results MCP
/// hosts accept.
pub const DEFAULT_MAX_RESULT_BYTES: u64 = 24_576;

/// Effective limits for one host after defaults, `limits` and overrides.
#[derive(Debug, Clone, Serialize)]
pub struct Limits {
    pub max_seconds: u64,
    pub max_output_bytes: u64,
    pub task_result_ttl: u64,
    pub task_progress_interval: u64,
    pub deny_substrings: Vec<String>,
    pub on_output_limit: OnOutputLimit,
    pub max_inline_output_bytes: u64,
    pub max_result_bytes: u64,
    pub approval_timeout_seconds: u64,
}

/// A partial set of limits: the policy's `limits` block or one override.
#[derive(Debug, Clone, Default)]
pub struct LimitsLayer {
    pub max_seconds: Option<u64>,
    pub max_output_bytes: Option<u64>,
    pub task_result_ttl: Option<u64>,
    pub task_progress_interval: Option<u64>,
    pub deny_substrings: Option<Vec<String>>,
    pub on_output_limit: Option<OnOutputLimit>,
    pub max_inline_output_bytes: Option<u64>,
    pub max_result_bytes: Option<u64>,
    pub approval_timeout_seconds: Option<u64>,
}

impl LimitsLayer {
    /// Fills every key this layer leaves unset from `lower`.
    fn over(&self, lower: &LimitsLayer) -> LimitsLayer {
        LimitsLayer {
            max_seconds: self.max_seconds.or(lower.max_seconds),
            max_output_bytes: self.max_output_bytes.or(lower.max_output_bytes),
            task_result_ttl: self.task_result_ttl.or(lower.task_result_ttl),
            task_progress_interval: self.task_progress_interval.or(lower.task_progress_interval),
            deny_substrings: self.deny_substrings.clone().or_else(|| lower.deny_substrings.clone()),
            on_output_limit: self.on_output_limit.or(lower.on_output_limit),
            max_inline_output_bytes: self.max_inline_output_bytes.or(lower.max_inline_output_bytes),
            max_result_bytes: self.max_result_bytes.or(lower.max_result_bytes),
            approval_timeout_seconds: self.approval_timeout_seconds.or(lower.approval_timeout_seconds),
        }
    }

    fn resolve(self) -> Limits {
        Limits {
            max_seconds: self.max_seconds.unwrap_or(60),
            max_output_bytes: self.max_output_bytes.unwrap_or(1_048_576),
            task_result_ttl: self.task_result_ttl.unwrap_or(300),
            task_progress_interval: self.task_progress_interval.unwrap_or(5),
            deny_substrings: self
                .deny_substrings
                .unwrap_or_else(|| DEFAULT_DENY_SUBSTRINGS.iter().map(|s| (*s).to_owned()).collect()),
            on_output_limit: self.on_output_limit.unwrap_or(OnOutputLimit::Truncate),
            max_inline_output_bytes: self.max_inline_output_bytes.unwrap_or(16 * 1024),
            max_result_bytes: self.max_result_bytes.unwrap_or(DEFAULT_MAX_RESULT_BYTES),
            approval_timeout_seconds: self.approval_timeout_seconds.unwrap_or(120),
        }
    }
}

/// Network allow/block lists; blocks beat allows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Network {
    pub allow: Vec<IpNet>,
    pub block: Vec<IpNet>,
}

/// Process-wide execution limits (sshwarden additions under `execution:`).
#[derive(Debug, Clone, Serialize)]
pub struct Execution {
    pub max_running_tasks: usize,
    pub max_queued_tasks: usize,
    pub max_sessions_per_connection: usize,
    pub connection_idle_seconds: u64,
    pub keepalive_seconds: u64,
    pub output_memory_budget_bytes: u64,
    pub max_fanout_hosts: usize,
    pub dns_timeout_ms: u64,
    pub max_concurrent_handshakes: usize,
}

impl Default for Execution {
    fn default() -> Self {
        Self {
            max_running_tasks: 64,
            max_queued_tasks: 1024,
            max_sessions_per_connection: 8,
            connection_idle_seconds: 300,
            keepalive_seconds: 15,
            output_memory_budget_bytes: 256 * 1024 * 1024,
            max_fanout_hosts: 500,
            max_concurrent_handshakes: 64,
            dns_timeout_ms: 2000,
        }
    }
}

/// `policy.yml`, checked.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `auth:`; `None` keeps HTTP on the `--token-file` token alone, as before `auth:` existed.
    pub auth: Option<super::callers::AuthSettings>,
    /// `limits.quotas`: per-caller budgets.
    pub quotas: super::callers::Quotas,
    pub known_hosts_path: PathBuf,
    pub limits: LimitsLayer,
    pub alias_overrides: BTreeMap<String, LimitsLayer>,
    pub tag_overrides: BTreeMap<String, LimitsLayer>,
    pub network: Network,
    pub rules: Vec<Rule>,
    pub execution: Execution,
    pub audit: AuditSettings,
    pub redact_output: Vec<Regex>,
    pub files: FilesPolicy,
    pub approvals: ApprovalSettings,
}

/// `approvals:` checked.
#[derive(Debug, Clone, Default)]
pub struct ApprovalSettings {
    /// The approver page's address for links (`None`: the server's listen address).
    pub page_url: Option<String>,
    pub notify: Option<NotifySettings>,
}

/// `approvals.notify` checked: an http(s) URL and header names and values HTTP accepts.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    pub url: String,
    /// Header values may be credentials of the bridge: kept as secrets (never printed).
    pub headers: Vec<(String, Secret)>,
}

/// `files:` checked: where local files may be, and the transfer rules.
#[derive(Debug, Clone, Default)]
pub struct FilesPolicy {
    pub transfer_dir: Option<PathBuf>,
    pub rules: Vec<crate::policy::files::FileRule>,
}

impl Policy {
    /// The decision for reading or writing `path` on `host`.
    pub fn judge_transfer(
        &self,
        host: &Host,
        direction: crate::policy::files::Direction,
        path: &str,
    ) -> crate::policy::files::TransferDecision {
        // File rules are scoped by host only.
        let anyone = crate::policy::Principal::local();
        crate::policy::files::judge_transfer(&self.files.rules, &host.subject(&[], &anyone), direction, path)
    }

    /// Limits with no host override applied: what applies to the fleet as a whole.
    pub fn default_limits(&self) -> Limits {
        self.limits.clone().resolve()
    }

    /// The policy's decision for `command` on `host`, with the host's own limits.
    /// `evaluate_as` the `local` caller (stdio, the CLI in process). Request paths use
    /// `evaluate_as` with the request's principal, so a rule scoped to a caller is never
    /// judged for the wrong one.
    pub fn evaluate(&self, host: &Host, command: &str) -> crate::policy::Decision {
        self.evaluate_as(host, &crate::policy::Principal::local(), command)
    }

    /// The decision for `command` on `host`, asked by `who`.
    pub fn evaluate_as(&self, host: &Host, who: &crate::policy::Principal, command: &str) -> crate::policy::Decision {
        let limits = self.limits_for(host);
        crate::policy::evaluate(&self.rules, &host.subject(&limits.deny_substrings, who), command)
    }

    /// Anchor precedence: defaults < `limits` < alias override < tag overrides (host tag
    /// order, a later tag wins among tags, never over a key the alias override set).
    pub fn limits_for(&self, host: &Host) -> Limits {
        let mut tags = LimitsLayer::default();
        for tag in &host.tags {
            if let Some(layer) = self.tag_overrides.get(tag) {
                tags = layer.over(&tags);
            }
        }
        let alias = self.alias_overrides.get(&host.alias).cloned().unwrap_or_default();
        alias.over(&tags).over(&self.limits).resolve()
    }
}

mod secs {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
}
