//! Serde mirror of the three YAML files, key for key, as mcp-ssh-orchestrator writes them.
//!
//! Owns: the on-disk shape and the JSON Schemas generated from it. Never leaves `config/`:
//! `validate.rs` turns these into the checked types of `config::types`. Never does IO.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

pub use super::raw_auth::{RawApprovals, RawAuth, RawAuthClaims, RawAuthScopes, RawNamedToken, RawNotify};

/// `servers.yml`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServersFile {
    #[serde(default)]
    pub hosts: Vec<RawHost>,
}

/// One entry of `servers.yml` `hosts:`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RawHost {
    pub alias: String,
    pub host: String,
    #[serde(default)]
    pub port: Option<i64>,
    #[serde(default)]
    pub credentials: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub description: String,
    /// sshwarden: at most this many tasks run on the host at once (default 4).
    #[serde(default)]
    pub max_concurrency: Option<u32>,
    /// sshwarden: TCP connect + SSH handshake timeout in seconds (default 10).
    #[serde(default)]
    pub connect_timeout: Option<u64>,
    /// sshwarden: jump hosts, first hop first (inventory aliases; a single string is
    /// accepted), as OpenSSH's ProxyJump.
    #[serde(default)]
    pub proxy_jump: Option<OneOrMany>,
    /// sshwarden: `local` (default: resolved and prechecked here) or `remote` (the last jump
    /// host resolves the name; block_cidrs cannot be enforced for it).
    #[serde(default)]
    pub resolve: Option<String>,
    /// sshwarden: the secret holding the sudo password for `become` rules on this host
    /// (resolved like `password_secret`; wins over the credential's).
    #[serde(default)]
    pub become_password_secret: Option<String>,
    /// The anchor keeps unknown host keys; we keep them too but warn, since a typo here is
    /// usually a setting that silently does nothing.
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: BTreeMap<String, serde_norway::Value>,
}

/// A string or a list of strings.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

/// `credentials.yml`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialsFile {
    #[serde(default)]
    pub entries: Vec<RawCredential>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCredential {
    pub name: String,
    pub username: String,
    #[serde(default)]
    pub key_path: Option<String>,
    /// sshwarden: OpenSSH user certificate (`*-cert.pub`) for `key_path`, relative to the
    /// keys dir like the key.
    #[serde(default)]
    pub certificate_path: Option<String>,
    /// Inline plaintext password (anchor compatible; prefer `password_secret`).
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub password_secret: Option<String>,
    #[serde(default)]
    pub key_passphrase_secret: Option<String>,
    /// sshwarden: the secret holding the sudo password for `become` rules (resolved like
    /// `password_secret`).
    #[serde(default)]
    pub become_password_secret: Option<String>,
    /// sshwarden: also try the ssh-agent at `SSH_AUTH_SOCK`.
    #[serde(default)]
    pub use_agent: bool,
}

/// `policy.yml`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    #[serde(default)]
    pub known_hosts_path: Option<String>,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub network: RawNetwork,
    #[serde(default)]
    pub rules: Vec<RawRule>,
    #[serde(default)]
    pub overrides: RawOverrides,
    /// sshwarden: the anchor ignored `version`; we accept and ignore it too.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub version: Option<serde_norway::Value>,
    /// sshwarden: process-wide execution limits.
    #[serde(default)]
    pub execution: RawExecution,
    /// sshwarden: audit log settings.
    #[serde(default)]
    pub audit: RawAudit,
    /// sshwarden: regexes whose matches are replaced by `[REDACTED]` in output.
    #[serde(default)]
    pub redact_output: Vec<String>,
    /// sshwarden: file transfer policy (`ssh_upload` / `ssh_download`).
    #[serde(default)]
    pub files: RawFiles,
    /// sshwarden: the HTTP server as an OAuth 2.1 resource server, and named static tokens.
    pub auth: Option<RawAuth>,
    /// sshwarden: out-of-band approvals (the approver page's address, the notification hook).
    #[serde(default)]
    pub approvals: RawApprovals,
}

/// `files:` of policy.yml.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFiles {
    /// The only directory on sshwarden's side where `local_path` may be (relative to the
    /// config directory when not absolute).
    pub transfer_dir: Option<String>,
    #[serde(default)]
    pub rules: Vec<RawFileRule>,
}

/// One `files.rules` entry.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFileRule {
    pub id: Option<String>,
    /// `allow`, `deny` or `ask`.
    pub action: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Remote paths that may be downloaded (`*` within one directory, `**` across).
    #[serde(default)]
    pub read: Vec<String>,
    /// Remote paths that may be uploaded.
    #[serde(default)]
    pub write: Vec<String>,
    pub max_bytes: Option<u64>,
    pub description: Option<String>,
}

/// Limit keys; every one optional so overrides can set a subset.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub max_seconds: Option<u64>,
    pub max_output_bytes: Option<u64>,
    /// Deprecated in the anchor and ignored; `true` is refused here.
    pub host_key_auto_add: Option<bool>,
    /// Deprecated in the anchor and forced true; `false` is refused here.
    pub require_known_host: Option<bool>,
    pub task_result_ttl: Option<u64>,
    pub task_progress_interval: Option<u64>,
    pub deny_substrings: Option<Vec<String>>,
    /// sshwarden: `truncate` (default) keeps head+tail, `kill` stops the command.
    pub on_output_limit: Option<String>,
    /// sshwarden: cap on output returned inline by `ssh_run` (default 16 KiB).
    pub max_inline_output_bytes: Option<u64>,
    /// sshwarden: cap on the whole structured result of a fan-out (default 24576); groups
    /// past it are summarised with their output's SHA-256.
    pub max_result_bytes: Option<u64>,
    /// sshwarden: how long an `ask` decision waits for a human (default 120 s); then denied.
    pub approval_timeout_seconds: Option<u64>,
    /// sshwarden: per-caller budgets (only in the top-level `limits`; needs `auth:`).
    pub quotas: Option<RawQuotas>,
}

/// `limits.quotas`.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawQuotas {
    #[serde(default)]
    pub principals: BTreeMap<String, RawQuota>,
    #[serde(default)]
    pub groups: BTreeMap<String, RawQuota>,
    pub default: Option<RawQuota>,
}

/// One caller's budget; an absent key is unlimited.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawQuota {
    /// Remote commands started per minute (a fan-out to N hosts starts N).
    pub commands_per_minute: Option<u32>,
    /// Tasks queued or running at once.
    pub concurrent_tasks: Option<u32>,
    /// Hosts reached by fan-outs per hour.
    pub fanout_hosts_per_hour: Option<u32>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNetwork {
    #[serde(default)]
    pub allow_ips: Vec<String>,
    #[serde(default)]
    pub allow_cidrs: Vec<String>,
    #[serde(default)]
    pub block_ips: Vec<String>,
    #[serde(default)]
    pub block_cidrs: Vec<String>,
    /// Legacy key, accepted and ignored (host keys are always required).
    #[serde(default)]
    pub require_known_host: Option<bool>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// sshwarden: a stable name shown in decisions and audit records.
    pub id: Option<String>,
    /// `allow` or `deny`; the anchor defaults to `deny`.
    pub action: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// sshwarden: callers the rule is for (globs over the principal; needs `auth:`).
    #[serde(default)]
    pub principals: Vec<String>,
    /// sshwarden: caller groups the rule is for (any of the caller's groups).
    #[serde(default)]
    pub groups: Vec<String>,
    /// sshwarden: distinct out-of-band approvers an `ask` rule wants (1-5, default 1).
    pub approvals: Option<u32>,
    /// Glob-generation rule: fnmatch patterns over one simple command.
    #[serde(default)]
    pub commands: Vec<String>,
    /// Structured-generation rule: allowed argv[0] names.
    #[serde(default)]
    pub simple_binaries: Vec<String>,
    pub simple_max_args: Option<u32>,
    pub binary: Option<String>,
    pub arg_prefix: Option<Vec<String>>,
    pub path_args: Option<RawPathArgs>,
    pub allow_extra_args: Option<bool>,
    /// sshwarden: shell constructs this rule permits (see `policy::Construct`).
    #[serde(default)]
    pub allow_constructs: Vec<String>,
    /// sshwarden: run what this rule allows as this user (`root`, …) through `become_method`.
    #[serde(default, rename = "become")]
    pub become_user: Option<String>,
    /// sshwarden: `sudo` (default) or `doas`; only with `become`.
    #[serde(default)]
    pub become_method: Option<String>,
    /// Free text, ignored by the engine.
    pub description: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPathArgs {
    pub indices: Vec<usize>,
    pub patterns: Vec<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOverrides {
    #[serde(default)]
    pub aliases: BTreeMap<String, RawLimits>,
    #[serde(default)]
    pub tags: BTreeMap<String, RawLimits>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawExecution {
    pub max_running_tasks: Option<usize>,
    pub max_queued_tasks: Option<usize>,
    pub max_sessions_per_connection: Option<usize>,
    pub connection_idle_seconds: Option<u64>,
    pub keepalive_seconds: Option<u64>,
    pub output_memory_budget_bytes: Option<u64>,
    pub max_fanout_hosts: Option<usize>,
    /// sshwarden: SSH handshakes in progress at once (default 64); a cold fan-out waits
    /// for a slot instead of starving running tasks of CPU.
    pub max_concurrent_handshakes: Option<usize>,
    pub dns_timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    pub path: Option<String>,
    #[serde(default)]
    pub redact_commands: bool,
    /// sshwarden: ship every record to a syslog collector (RFC 5424, MSG = the JSON line).
    pub syslog: Option<RawSyslog>,
}

/// `audit.syslog`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSyslog {
    /// `tcp://HOST:PORT`, `tcp+tls://HOST:PORT`, `udp://HOST:PORT` or `unix:/dev/log`.
    pub address: String,
    /// APP-NAME of the messages (default `sshwarden`).
    pub app_name: Option<String>,
    /// Facility name (default `authpriv`).
    pub facility: Option<String>,
    /// Refuse new commands when the spool is full (default false: warn, file only).
    #[serde(default)]
    pub required: bool,
    /// Most bytes held for an unreachable collector (default 64 MiB).
    pub spool_bytes: Option<u64>,
    /// For `tcp+tls://`: the CA that signed the collector's certificate.
    pub tls: Option<RawSyslogTls>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSyslogTls {
    pub ca_path: String,
}
