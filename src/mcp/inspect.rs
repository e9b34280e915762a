//! The inspection tools: ping, hosts, describe, plan, preflight, reload. None runs a command.
//!
//! Owns: sanitized views of the inventory (no credentials, no secrets) and plan hashing.
//! Never starts a task.

use std::sync::Arc;

use rmcp::RoleServer;
use rmcp::model::CallToolResult;
use rmcp::service::RequestContext;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::errors::{ok, service_error, tool_error};
use super::ops::client_of;
use super::params::Detail;
use crate::config::{Config, Host, Severity};
use crate::inventory::select;
use crate::service::{Service, ServiceError};

/// Probe commands shown by describe/capabilities: (name, command, only for this tag).
const PROBES: [(&str, &str, Option<&str>); 3] = [
    ("basic_diagnostics", "uptime", None),
    ("filesystem_overview", "df -h", None),
    ("docker_status", "docker ps", Some("docker")),
];

pub fn sanitized(h: &Host) -> Value {
    json!({ "alias": h.alias, "host": h.host, "port": h.port, "tags": h.tags, "description": h.description, "has_credentials_ref": !h.credentials.is_empty(), "max_concurrency": h.max_concurrency, "proxy_jump": h.proxy_jump })
}

pub fn capabilities(svc: &Service, cfg: &Config, h: &Host, who: &crate::policy::Principal) -> Value {
    let probes: Vec<Value> = PROBES
        .iter()
        .filter(|(_, _, tag)| tag.is_none_or(|t| h.tags.iter().any(|x| x == t)))
        .map(|(name, cmd, _)| {
            let d = cfg.policy.evaluate_as(h, who, cmd);
            json!({ "probe": name, "command": cmd, "allowed": d.allowed, "reason": d.reason })
        })
        .collect();
    let n = &cfg.policy.network;
    json!({ "alias": h.alias, "tags": h.tags, "limits": cfg.policy.limits_for(h), "policy_probes": probes, "host_key_known": svc.host_key_known(h),
            "network": { "require_known_host": true, "allowlist_enabled": !n.allow.is_empty(), "blocklist_enabled": !n.block.is_empty() },
            "features": { "supports_async": true, "supports_cancellation": true, "stops_remote_command": true } })
}

pub fn ping(svc: &Service) -> CallToolResult {
    let cfg = svc.config();
    let (output_bytes, _) = svc.tasks().memory();
    let rss_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("VmRSS:").map(|v| v.trim().trim_end_matches(" kB").to_owned()))
        })
        .and_then(|v| v.parse::<u64>().ok());
    let v = json!({ "status": "pong", "server": "sshwarden", "version": env!("CARGO_PKG_VERSION"), "config_hash": cfg.hash, "uptime_seconds": svc.uptime().as_secs(), "hosts": cfg.hosts.len(),
        "memory": { "rss_bytes": rss_kib.map(|k| k * 1024), "pooled_connections": svc.pool().connection_count(), "task_output_bytes": output_bytes, "tasks": svc.tasks().list().len() } });
    ok(
        v,
        format!("pong: sshwarden {}, {} hosts, config {}", env!("CARGO_PKG_VERSION"), cfg.hosts.len(), &cfg.hash[..12]),
    )
}

pub fn list_hosts(svc: &Service, pattern: Option<&str>) -> CallToolResult {
    let cfg = svc.config();
    let hosts: Vec<&Host> = match pattern.map(|p| selected(&cfg, p)) {
        Some(Ok(h)) => h,
        Some(Err(e)) => return e,
        None => cfg.hosts.iter().collect(),
    };
    let list: Vec<Value> =
        hosts.iter().map(|h| json!({ "alias": h.alias, "tags": h.tags, "description": h.description })).collect();
    let text = hosts
        .iter()
        .map(|h| format!("{} [{}] {}", h.alias, h.tags.join(","), h.description))
        .collect::<Vec<_>>()
        .join("\n");
    ok(json!({ "count": list.len(), "hosts": list }), text)
}

pub fn describe_host(svc: &Service, alias: &str, client: &str) -> CallToolResult {
    let who = &crate::service::principal_of(Some(client));
    let cfg = svc.config();
    let Some(h) = cfg.host(alias) else {
        return service_error(&ServiceError::UnknownHost(alias.to_owned()));
    };
    let route: Vec<Value> = cfg
        .route(h)
        .unwrap_or_default()
        .iter()
        .map(|hop| json!({ "alias": hop.alias, "host": hop.host, "port": hop.port, "host_key_known": svc.host_key_known(hop) }))
        .collect();
    let mut v = json!({ "host": sanitized(h), "capabilities": capabilities(svc, &cfg, h, who), "route": route });
    // Which users `become` rules run commands as here, and whether a password is set (never
    // the password itself).
    let mut users: Vec<Value> = Vec::new();
    for r in cfg.policy.rules.iter().filter(|r| r.applies_to(&h.subject(&[], who))) {
        if let Some(b) = &r.elevate {
            let entry = json!({ "user": b.user, "method": b.method.name() });
            if !users.contains(&entry) {
                users.push(entry);
            }
        }
    }
    v["become"] = json!({ "configured": !users.is_empty(), "users": users, "password_configured": cfg.become_password_for(h).is_some() });
    // The caller's budget left under `limits.quotas` (absent when nothing limits it).
    if let Some(q) = svc.quota_remaining(Some(client)) {
        v["quota"] = q;
    }
    ok(
        v.clone(),
        format!(
            "{}: {}:{} tags [{}], host key known: {}",
            h.alias,
            h.host,
            h.port,
            h.tags.join(","),
            svc.host_key_known(h)
        ),
    )
}

/// The hosts a pattern selects, or the tool error saying why none.
fn selected<'a>(cfg: &'a Config, pattern: &str) -> Result<Vec<&'a Host>, CallToolResult> {
    select::select(&cfg.hosts, pattern).map_err(|e| service_error(&ServiceError::InvalidInput(e.to_string())))
}

pub async fn plan(
    svc: &Arc<Service>,
    target: &str,
    command: &str,
    who: &crate::policy::Principal,
    detail: Detail,
) -> CallToolResult {
    let cfg = svc.config();
    let hosts = match selected(&cfg, target) {
        Ok(h) => h,
        Err(e) => return e,
    };
    let plan_rows = crate::service::plan::plan(&cfg, &hosts, who, command, svc.resolver()).await;
    let rows: Vec<Value> = plan_rows.iter().map(|r| json!(r)).collect();
    // Over the per-host rows, whatever the shape returned: the same hash as before folding.
    let hash =
        hex::encode(Sha256::digest(format!("{}\n{command}\n{}", cfg.hash, Value::Array(rows.clone())).as_bytes()));
    let folded = crate::service::plan::fold(&plan_rows);
    let allowed: usize = folded.groups.iter().filter(|g| g.allowed).map(|g| g.count).sum();
    let ask: usize = folded.groups.iter().filter(|g| g.decision == "ask").map(|g| g.count).sum();
    let text = folded
        .groups
        .iter()
        .map(|g| {
            let verdict = g.decision.to_uppercase();
            let reason = crate::service::plan::reason_line(g.policy_allowed, &g.reason, g.network.as_deref());
            let as_user = crate::service::plan::become_suffix(g.become_user.as_deref());
            format!("{verdict} {} ({}): {reason}{as_user}", g.hosts, g.count)
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut body = json!({
        "command": command,
        "command_sha256": crate::service::command_sha256(command),
        "plan_hash": hash,
        "summary": { "hosts": plan_rows.len(), "allowed": allowed, "ask": ask, "denied": plan_rows.len() - allowed - ask },
        "groups": folded.groups,
        "limits_sets": folded.limits_sets,
    });
    if detail == Detail::Hosts {
        body["hosts"] = Value::Array(rows);
    }
    ok(body, text)
}

pub async fn preflight(svc: &Arc<Service>, target: &str) -> CallToolResult {
    let cfg = svc.config();
    let hosts = match selected(&cfg, target) {
        Ok(h) => h,
        Err(e) => return e,
    };
    let mut rows = Vec::new();
    for h in hosts {
        let mut row = json!(svc.preflight(h).await);
        // `become` is checked once the login works: sudo -n -l, or the password with -v.
        if row["ok"] == true
            && let Some(mut check) = svc.preflight_become(h).await
        {
            if let Some(Value::String(detail)) = check.get_mut("detail") {
                svc.mask_text(detail);
            }
            if check["ok"] != true {
                row["ok"] = json!(false);
                row["stage"] = json!("become");
            }
            row["become"] = check;
        }
        rows.push(row);
    }
    let good = rows.iter().filter(|r| r["ok"] == true).count();
    let text = format!("{good}/{} hosts ready", rows.len());
    ok(json!({ "ready": good, "hosts": rows }), text)
}

pub fn reload(svc: &Service, ctx: &RequestContext<RoleServer>) -> CallToolResult {
    match svc.reload(Some(&client_of(ctx))) {
        Ok((old, new)) => {
            let aliases =
                |c: &Config| c.hosts.iter().map(|h| h.alias.clone()).collect::<std::collections::BTreeSet<_>>();
            let (a, b) = (aliases(&old), aliases(&new));
            let v = json!({ "status": "reloaded", "config_hash": new.hash, "previous_hash": old.hash, "changed": old.hash != new.hash,
                "hosts_added": b.difference(&a).collect::<Vec<_>>(), "hosts_removed": a.difference(&b).collect::<Vec<_>>(),
                "rules": new.policy.rules.len(), "warnings": new.warnings.iter().map(ToString::to_string).collect::<Vec<_>>() });
            ok(
                v,
                format!(
                    "reloaded: config {} ({} hosts, {} rules)",
                    &new.hash[..12],
                    new.hosts.len(),
                    new.policy.rules.len()
                ),
            )
        }
        Err(ServiceError::Config(e)) => {
            let errors: Vec<String> =
                e.diagnostics.iter().filter(|d| d.severity == Severity::Error).map(ToString::to_string).collect();
            tool_error(
                "config_error",
                &format!(
                    "configuration not reloaded: {} error(s); the previous configuration stays active",
                    errors.len()
                ),
                "Fix the files at the lines named and call ssh_reload_config again.",
                json!({ "errors": errors, "config_hash": svc.config().hash }),
            )
        }
        Err(e) => service_error(&e),
    }
}
