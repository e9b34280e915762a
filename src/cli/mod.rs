//! Command-line definitions (clap), nothing else.
//!
//! Owns: flags, env fallbacks and help text. Never does the work (see `commands`).

pub mod approvals;
pub mod call;
mod call_connect;
pub mod commands;
pub mod init;
mod init_scan;
pub mod run;
mod run_output;
pub mod runbook;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "sshwarden", version, about = "Policy-gated async SSH orchestrator served over MCP")]
pub struct Cli {
    /// Log INFO lines on stderr (`-vv`: DEBUG). `serve` logs INFO without it; the terminal
    /// commands print only their results and warnings. `SSHWARDEN_LOG` overrides both.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The log filter when `SSHWARDEN_LOG` is not set.
    pub fn default_log_filter(&self) -> &'static str {
        match (self.verbose, matches!(self.command, Command::Serve { .. })) {
            (0, false) => "sshwarden=warn",
            (0, true) | (1, _) => "sshwarden=info",
            _ => "sshwarden=debug",
        }
    }
}

/// Where the configuration lives. Defaults: `./config`, then `<config>/../keys` and
/// `<config>/../secrets` (the anchor's `/app/{config,keys,secrets}` layout).
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// Directory holding servers.yml, credentials.yml and policy.yml.
    #[arg(long, env = "MCP_SSH_CONFIG_DIR", default_value = "config", global = true)]
    pub config_dir: PathBuf,
    /// Directory private keys must live in (key_path is resolved inside it).
    #[arg(long, env = "MCP_SSH_KEYS_DIR", global = true)]
    pub keys_dir: Option<PathBuf>,
    /// Directory of secret files (`<dir>/<name>`), after `MCP_SSH_SECRET_<NAME>` env vars.
    #[arg(long, env = "MCP_SSH_SECRETS_DIR", global = true)]
    pub secrets_dir: Option<PathBuf>,
    /// Directory of runbooks (`*.yml`), default `<config-dir>/../runbooks`.
    #[arg(long, env = "SSHWARDEN_RUNBOOKS_DIR", global = true)]
    pub runbooks_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load and validate the configuration; print a summary and every problem found.
    Check {
        #[command(flatten)]
        config: ConfigArgs,
        /// A directory `sshwarden init` wrote (its `config/` is checked), or a configuration
        /// directory; the same as --config-dir.
        dir: Option<PathBuf>,
    },
    /// Show, for each host a pattern selects, whether a command would be allowed and where it
    /// would connect. Opens no SSH connection. Exit 0 all allowed, 3 any denied, 1 error.
    Plan {
        #[command(flatten)]
        config: ConfigArgs,
        /// Print JSON: `{"summary", "groups":[{"hosts","count","allowed","rule","reason",…}]}`
        /// (with `--per-host` also `"hosts":[{"alias","allowed","rule","reason","target_ip"}]`).
        #[arg(long)]
        json: bool,
        /// One row per host instead of hosts folded by identical outcome (`h[1-100]`).
        #[arg(long)]
        per_host: bool,
        /// Decide for this caller, `PRINCIPAL[:group,…]` (rules with `principals:`/`groups:`);
        /// default `local`, the operator at this machine.
        #[arg(long = "as", value_name = "PRINCIPAL[:GROUP,…]")]
        as_principal: Option<String>,
        /// Host pattern: alias, tag, glob, `a:b`, `a:&b`, `a:!b`, `all`.
        pattern: String,
        /// The command, after `--`.
        #[arg(last = true, required = true, num_args = 1..)]
        command: Vec<String>,
    },
    /// Write a working configuration into DIR: config/{servers,credentials,policy}.yml,
    /// keys/known_hosts, secrets/. `check --config-dir DIR/config` passes right after.
    Init {
        /// Where to write (created; existing files are kept unless --force).
        dir: PathBuf,
        /// Import hosts from an ssh_config (default ~/.ssh/config), with its known_hosts files.
        #[arg(long, num_args = 0..=1, value_name = "FILE")]
        from_ssh_config: Option<Option<PathBuf>>,
        /// Import hosts from an Ansible inventory (INI or YAML).
        #[arg(long, value_name = "FILE")]
        from_ansible: Option<PathBuf>,
        /// Starter policy: readonly (diagnostics only) or ops (plus restarts that need approval).
        #[arg(long, default_value = "readonly", value_parser = ["readonly", "ops"])]
        profile: String,
        /// Ask each host for its host key and show `alias SHA256:…` to confirm before adding it.
        #[arg(long)]
        scan: bool,
        /// With --scan: add the keys without asking (you checked the fingerprints).
        #[arg(long)]
        yes: bool,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// Run a command on every host a pattern selects, in process, through the same gates as
    /// ssh_run_on_tag: output live as `host: line`, then identical outputs folded. An `ask`
    /// command is asked at the terminal. Exit 0 all ok, 3 denied, 4 any host failed or
    /// unreachable, 130/143 interrupted (every remote command stopped), 1 usage/config error.
    Run {
        #[command(flatten)]
        config: ConfigArgs,
        /// Print the structured result (as ssh_run_on_tag returns it) instead of live lines.
        #[arg(long)]
        json: bool,
        /// One block per host when it finishes (as `pssh -i`) instead of live lines.
        #[arg(short, long)]
        inline: bool,
        /// Hosts at once (default 8).
        #[arg(long)]
        concurrency: Option<usize>,
        /// Per-host timeout, at most the policy's max_seconds.
        #[arg(long)]
        timeout_seconds: Option<u64>,
        /// Host pattern: alias, tag, glob, `a:b`, `a:&b`, `a:!b`, `all`.
        target: String,
        /// The command, after `--`.
        #[arg(last = true, required = true, num_args = 1..)]
        command: Vec<String>,
    },
    /// Print the JSON Schema of servers.yml, credentials.yml, policy.yml and runbook files.
    Schema {
        /// Only this file's schema.
        #[arg(value_parser = ["servers", "credentials", "policy", "runbook"])]
        file: Option<String>,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write man pages (sshwarden.1 and one per subcommand) into DIR.
    Man {
        /// Directory to write the pages into (created when missing).
        dir: PathBuf,
    },
    /// Serve MCP over stdio (default) or streamable HTTP.
    Serve {
        #[command(flatten)]
        config: ConfigArgs,
        /// Serve streamable HTTP on this address (e.g. 127.0.0.1:8765) instead of stdio.
        #[arg(long)]
        http: Option<SocketAddr>,
        /// File holding the HTTP bearer token (else env SSHWARDEN_TOKEN).
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// File holding the approver token (a different secret): enables the /approvals
        /// endpoints, where `ask` decisions are approved or denied out of band.
        #[arg(long)]
        approver_token_file: Option<PathBuf>,
        /// File holding the metrics token (a third secret): enables `GET /metrics` (Prometheus
        /// format) for a scraper that must not be able to run commands.
        #[arg(long)]
        metrics_token_file: Option<PathBuf>,
        /// Tools to expose: all (default), read-only (hosts, plans, preflight, task status and
        /// output, runbook lists and plans), run (read-only plus run, async, on_tag, cancel),
        /// or a comma list of tool names. A hidden tool is refused as unknown.
        #[arg(long, default_value = "all", value_name = "PROFILE")]
        tools: String,
    },
    /// Call one MCP tool, in process or against a running HTTP server; print its
    /// structured result as JSON. Exit 0 ok, 3 denied, 4 failed, 1 usage/config error.
    Call {
        #[command(flatten)]
        config: ConfigArgs,
        /// URL of a running `sshwarden serve --http` (e.g. http://127.0.0.1:8765/mcp).
        #[arg(long)]
        url: Option<String>,
        /// Bearer token file for --url (else env SSHWARDEN_TOKEN).
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Arguments as one JSON object instead of key=value pairs.
        #[arg(long)]
        json: Option<String>,
        /// Tool name, e.g. ssh_run.
        tool: String,
        /// key=value arguments (numbers and true/false are typed).
        args: Vec<String>,
    },
    /// Plan or run a runbook (NAME from --runbooks-dir, or a FILE), in process or against a
    /// running server (--url). Exit 0 ok, 3 denied (nothing ran), 4 a step failed (after
    /// rollback), 1 usage/config error.
    Runbook {
        #[command(subcommand)]
        command: RunbookCommand,
    },
    /// Import an existing inventory (~/.ssh/config or an Ansible inventory) into
    /// servers.yml and credentials.yml.
    Import {
        #[command(subcommand)]
        source: ImportSource,
        /// Directory to write servers.yml and credentials.yml into.
        #[arg(long, global = true, default_value = "config")]
        out: PathBuf,
        /// Overwrite existing files in --out.
        #[arg(long, global = true)]
        force: bool,
    },
    /// Pending approvals of `ask` decisions on a running `serve --http`: list, approve or
    /// deny them with the approver token.
    Approvals {
        #[command(subcommand)]
        command: ApprovalsCommand,
        /// URL of the server (http://127.0.0.1:8765 or its …/mcp URL).
        #[arg(long, global = true)]
        url: Option<String>,
        /// File holding the approver token (else env SSHWARDEN_APPROVER_TOKEN).
        #[arg(long, global = true)]
        token_file: Option<PathBuf>,
    },
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// Pending requests (id, hosts, command or transfer, rule, client) as JSON.
    List,
    /// Approve one request: the waiting call runs.
    Approve { id: String },
    /// Deny one request: the waiting call is refused.
    Deny { id: String },
}

#[derive(Debug, Subcommand)]
pub enum ImportSource {
    /// An OpenSSH client config (default ~/.ssh/config), following Include.
    SshConfig { file: Option<PathBuf> },
    /// An Ansible inventory, INI or YAML (by extension .yml/.yaml).
    Ansible { file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum RunbookCommand {
    /// Render and judge every step and rollback step on every host; no connection.
    Plan {
        #[command(flatten)]
        target: RunbookTarget,
    },
    /// Plan, then run if nothing is denied anywhere.
    Run {
        #[command(flatten)]
        target: RunbookTarget,
        /// Refuse to run unless the plan still has this hash (from `runbook plan`).
        #[arg(long)]
        plan_hash: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
pub struct RunbookTarget {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// URL of a running `sshwarden serve --http` (e.g. http://127.0.0.1:8765/mcp).
    #[arg(long)]
    pub url: Option<String>,
    /// Bearer token file for --url (else env SSHWARDEN_TOKEN).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// One JSON object per event (always when stdout is not a terminal).
    #[arg(long)]
    pub json: bool,
    /// Parameter as key=value (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Runbook name, or a path to a runbook file.
    pub runbook: String,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain of an audit log; report the first broken record.
    Verify {
        /// The JSONL audit file.
        #[arg(required_unless_present = "from_syslog")]
        file: Option<PathBuf>,
        /// Verify the copy a syslog collector wrote instead (the JSON is taken from each
        /// line; resent duplicates are skipped; the copy may start mid-chain).
        #[arg(long, value_name = "FILE", conflicts_with = "file")]
        from_syslog: Option<PathBuf>,
        /// With --from-syslog: the APP-NAME of sshwarden's lines (`audit.syslog.app_name`);
        /// lines of other programs are skipped and counted.
        #[arg(long, value_name = "NAME", default_value = "sshwarden", requires = "from_syslog")]
        app_name: String,
        /// With --from-syslog: the original audit file; every record of it (from the copy's
        /// first record on) must be in the copy, so a truncated or lossy copy is reported.
        #[arg(long, value_name = "AUDIT_FILE", requires = "from_syslog")]
        against: Option<PathBuf>,
    },
}

/// `sshwarden completions SHELL`: the script for `shell`, from the same definitions clap parses.
pub fn completions(shell: clap_complete::Shell) -> u8 {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut cmd, "sshwarden", &mut std::io::stdout());
    0
}

/// `sshwarden man DIR`: `sshwarden.1` and `sshwarden-SUB.1` for every subcommand.
pub fn man_pages(dir: &std::path::Path) -> u8 {
    let cmd = <Cli as clap::CommandFactory>::command();
    let written = std::fs::create_dir_all(dir)
        .map_err(|e| e.to_string())
        .and_then(|()| clap_mangen::generate_to(cmd, dir).map_err(|e| e.to_string()));
    match written {
        Ok(()) => {
            eprintln!("man pages written to {}", dir.display());
            0
        }
        Err(e) => {
            eprintln!("error: cannot write man pages to {}: {e}", dir.display());
            1
        }
    }
}
