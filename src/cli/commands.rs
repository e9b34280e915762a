//! The CLI commands that are not the MCP server: `check`, `plan`, `schema`.
//!
//! Owns: rendering summaries and plans for people (stdout) or JSON. Never writes logs to
//! stdout and never opens an SSH connection.

use std::io::Write;
use std::time::Duration;

use serde::Serialize;

use crate::cli::ConfigArgs;
use crate::config::{self, Config, Dirs, Severity};
use crate::inventory::select;
use crate::net::HickoryResolver;

pub use crate::audit::copy::verify_command as audit_verify;
pub use crate::cli::call::call;

/// Exit codes shared by `plan` and `call`.
pub const EXIT_OK: u8 = 0;
pub const EXIT_ERROR: u8 = 1;
pub const EXIT_DENIED: u8 = 3;
pub const EXIT_FAILED: u8 = 4;

pub fn dirs(args: &ConfigArgs) -> Dirs {
    Dirs::new(args.config_dir.clone(), args.keys_dir.clone(), args.secrets_dir.clone())
        .with_runbooks(args.runbooks_dir.clone())
}

/// Loads the config or prints every diagnostic to stderr.
pub fn load_or_report(args: &ConfigArgs) -> Option<Config> {
    match config::load(&dirs(args)) {
        Ok(c) => {
            for w in &c.warnings {
                eprintln!("{w}");
            }
            Some(c)
        }
        Err(e) => {
            for d in &e.diagnostics {
                eprintln!("{d}");
            }
            let n = e.diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
            eprintln!("error: configuration in {} has {n} error(s)", args.config_dir.display());
            None
        }
    }
}

pub(crate) fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    // A closed stdout (e.g. `| head`) is not worth a panic.
    let _ = writeln!(stdout, "{text}");
}

pub fn check(args: &ConfigArgs) -> u8 {
    let Some(cfg) = load_or_report(args) else {
        return EXIT_ERROR;
    };
    let p = &cfg.policy;
    let tags: Vec<String> = crate::config::all_tags(&cfg.hosts).into_iter().collect();
    out(&format!(
        "ok: {} hosts, {} tags ({}), {} credentials, {} rules, {} warnings\nknown_hosts: {}\naudit: {}\nconfig hash: {}",
        cfg.hosts.len(),
        tags.len(),
        tags.join(", "),
        cfg.credentials.len(),
        p.rules.len(),
        cfg.warnings.len(),
        p.known_hosts_path.display(),
        p.audit.path.display(),
        cfg.hash
    ));
    let d = dirs(args);
    out(&format!(
        "keys: {}\nsecrets: {}\nrunbooks dir: {}",
        d.keys.display(),
        d.secrets.display(),
        d.runbooks.display()
    ));
    // A configuration that loads but cannot do anything deserves a word before the first run.
    if !p.known_hosts_path.exists() {
        out(&format!(
            "warning: known_hosts {} does not exist: no host can be reached (sshwarden init --scan confirms host keys)",
            p.known_hosts_path.display()
        ));
    }
    if !p.rules.iter().any(|r| r.action != crate::policy::Action::Deny) {
        out("warning: no rule allows or asks for anything: every command is denied");
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    for c in cfg.credentials.values() {
        let Some(path) = &c.certificate_path else { continue };
        match crate::ssh::certificate_window(path) {
            Err(e) => out(&format!("warning: credential {:?}: {e}", c.name)),
            Ok((_, before)) if before <= now => {
                out(&format!("warning: credential {:?}: certificate {} has expired", c.name, path.display()))
            }
            Ok((_, before)) if before - now < 24 * 3600 => out(&format!(
                "warning: credential {:?}: certificate {} expires in {} minutes",
                c.name,
                path.display(),
                (before - now) / 60
            )),
            Ok(_) => {}
        }
    }
    let runbooks: Vec<&str> = cfg.runbooks.keys().map(String::as_str).collect();
    out(&format!("runbooks: {} ({})", runbooks.len(), runbooks.join(", ")));
    EXIT_OK
}

#[derive(Serialize)]
struct PlanHost {
    alias: String,
    decision: &'static str,
    allowed: bool,
    rule: Option<String>,
    reason: String,
    target_ip: Option<String>,
    #[serde(rename = "become", skip_serializing_if = "Option::is_none")]
    become_user: Option<String>,
}

pub async fn plan(
    args: &ConfigArgs,
    json: bool,
    per_host: bool,
    as_principal: Option<&str>,
    pattern: &str,
    command: &str,
) -> u8 {
    let who = match as_principal
        .map(crate::policy::Principal::parse)
        .unwrap_or_else(|| Ok(crate::policy::Principal::local()))
    {
        Ok(who) => who,
        Err(e) => {
            eprintln!("error: --as {e}");
            return EXIT_ERROR;
        }
    };
    let Some(cfg) = load_or_report(args) else {
        return EXIT_ERROR;
    };
    let hosts = match select::select(&cfg.hosts, pattern) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_ERROR;
        }
    };
    let timeout = Duration::from_millis(cfg.policy.execution.dns_timeout_ms);
    let resolver = match HickoryResolver::from_system(timeout) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_ERROR;
        }
    };
    let plan_rows = crate::service::plan::plan(&cfg, &hosts, &who, command, &resolver).await;
    let folded = crate::service::plan::fold(&plan_rows);
    let rows: Vec<PlanHost> = plan_rows
        .into_iter()
        .map(|r| PlanHost {
            reason: crate::service::plan::reason_line(r.policy_allowed, &r.reason, r.network.as_deref()),
            alias: r.alias,
            decision: r.decision,
            allowed: r.allowed,
            rule: r.rule,
            target_ip: r.target_ip,
            become_user: r.become_user,
        })
        .collect();
    let allowed = rows.iter().filter(|r| r.allowed).count();
    let ask = rows.iter().filter(|r| r.decision == "ask").count();
    if json {
        let mut body = serde_json::json!({
            "summary": { "hosts": rows.len(), "allowed": allowed, "ask": ask, "denied": rows.len() - allowed - ask },
            "groups": folded.groups,
            "limits_sets": folded.limits_sets,
        });
        if per_host {
            body["hosts"] = serde_json::json!(rows);
        }
        out(&body.to_string());
    } else if per_host {
        for r in &rows {
            let verdict = format!("{:<5}", r.decision.to_uppercase());
            let as_user = crate::service::plan::become_suffix(r.become_user.as_deref());
            out(&format!(
                "{verdict} {:<20} {:<16} {}{as_user}",
                r.alias,
                r.target_ip.as_deref().unwrap_or("-"),
                r.reason
            ));
        }
    } else {
        for g in &folded.groups {
            let verdict = format!("{:<5}", g.decision.to_uppercase());
            let reason = crate::service::plan::reason_line(g.policy_allowed, &g.reason, g.network.as_deref());
            let as_user = crate::service::plan::become_suffix(g.become_user.as_deref());
            out(&format!("{verdict} {} ({}) {reason}{as_user}", g.hosts, g.count));
        }
    }
    if allowed == rows.len() { EXIT_OK } else { EXIT_DENIED }
}

pub fn schema(file: Option<&str>) -> u8 {
    use crate::config::raw::{CredentialsFile, PolicyFile, ServersFile};
    let all = serde_json::json!({
        "servers": schemars::schema_for!(ServersFile),
        "credentials": schemars::schema_for!(CredentialsFile),
        "policy": schemars::schema_for!(PolicyFile),
        "runbook": schemars::schema_for!(crate::runbook::raw::RunbookFile),
    });
    let mut all = all;
    crate::config::json_schema::standardize(&mut all);
    let chosen = match file {
        Some(f) => all.get(f).cloned().unwrap_or_default(),
        None => all,
    };
    out(&serde_json::to_string_pretty(&chosen).unwrap_or_default());
    EXIT_OK
}

/// `sshwarden serve`.
pub async fn serve(args: &ConfigArgs, http: crate::server::HttpOptions, tools: &str) -> u8 {
    match crate::server::serve(dirs(args), http, tools).await {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("{e}");
            EXIT_ERROR
        }
    }
}
