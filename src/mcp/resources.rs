//! MCP resources: `ssh://hosts`, `ssh://host/{alias}`, `ssh://host/{alias}/tags`,
//! `ssh://host/{alias}/capabilities`, `ssh://task/{id}`.
//!
//! Owns: URIs and their JSON bodies (sanitized: no credentials, no secrets). Never runs
//! a command.

use rmcp::ErrorData as McpError;
use rmcp::model::{
    ListResourceTemplatesResult, ListResourcesResult, ReadResourceResult, Resource, ResourceContents, ResourceTemplate,
};
use serde_json::{Value, json};

use super::inspect::{capabilities, sanitized};
use crate::service::Service;

pub fn list(svc: &Service) -> ListResourcesResult {
    let cfg = svc.config();
    let mut all = vec![
        Resource::new("ssh://hosts", "hosts")
            .with_description("Registered SSH hosts (sanitized)")
            .with_mime_type("application/json"),
    ];
    for h in &cfg.hosts {
        all.push(
            Resource::new(format!("ssh://host/{}", h.alias), format!("host {}", h.alias))
                .with_mime_type("application/json"),
        );
    }
    ListResourcesResult::with_all_items(all)
}

pub fn templates() -> ListResourceTemplatesResult {
    let t = |uri: &str, name: &str, d: &str| {
        ResourceTemplate::new(uri, name).with_description(d).with_mime_type("application/json")
    };
    ListResourceTemplatesResult::with_all_items(vec![
        t("ssh://host/{alias}", "host", "One host, sanitized"),
        t("ssh://host/{alias}/tags", "host-tags", "A host's tags"),
        t(
            "ssh://host/{alias}/capabilities",
            "host-capabilities",
            "Limits, policy probes, network and features of a host",
        ),
        t("ssh://task/{id}", "task", "A task's status"),
    ])
}

pub fn read(svc: &Service, uri: &str) -> Result<ReadResourceResult, McpError> {
    let cfg = svc.config();
    let not_found = || McpError::resource_not_found(format!("no resource {uri}"), Some(json!({ "uri": uri })));
    let body: Value = if uri == "ssh://hosts" {
        let hosts: Vec<Value> = cfg.hosts.iter().map(sanitized).collect();
        json!({ "count": hosts.len(), "hosts": hosts })
    } else if let Some(rest) = uri.strip_prefix("ssh://host/") {
        let (alias, what) = rest.split_once('/').unwrap_or((rest, ""));
        let h = cfg.host(alias).ok_or_else(not_found)?;
        match what {
            "" => sanitized(h),
            "tags" => json!({ "alias": h.alias, "tags": h.tags }),
            "capabilities" => capabilities(&cfg, h),
            _ => return Err(not_found()),
        }
    } else if let Some(id) = uri.strip_prefix("ssh://task/") {
        let t = svc.tasks.get(id).map_err(|_| not_found())?;
        serde_json::to_value(t.snapshot()).unwrap_or_default()
    } else {
        return Err(not_found());
    };
    Ok(ReadResourceResult::new(vec![ResourceContents::text(body.to_string(), uri)]))
}
