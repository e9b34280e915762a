//! MCP resources: `ssh://hosts`, `ssh://host/{alias}`, `ssh://host/{alias}/tags`,
//! `ssh://host/{alias}/capabilities`, `ssh://task/{id}`.
//!
//! Owns: URIs and their JSON bodies (sanitized: no credentials, no secrets), and
//! subscriptions to `ssh://task/{id}` (`notifications/resources/updated` on progress, at
//! most twice a second, until the task ends). Never runs a command.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use rmcp::model::{
    ListResourceTemplatesResult, ListResourcesResult, ReadResourceResult, Resource, ResourceContents, ResourceTemplate,
    ResourceUpdatedNotificationParam,
};
use rmcp::{ErrorData as McpError, Peer, RoleServer};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

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
    for name in cfg.runbooks.keys() {
        all.push(
            Resource::new(format!("ssh://runbook/{name}"), format!("runbook {name}"))
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
        t("ssh://runbook/{name}", "runbook", "A runbook: description, parameters, steps and rollback"),
    ])
}

pub fn read(svc: &Service, uri: &str, client: &str) -> Result<ReadResourceResult, McpError> {
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
            // Resources are read without a caller's say: probes as judged for `local`.
            "capabilities" => capabilities(svc, &cfg, h, &crate::policy::Principal::local()),
            _ => return Err(not_found()),
        }
    } else if let Some(name) = uri.strip_prefix("ssh://runbook/") {
        super::runbooks::describe(cfg.runbooks.get(name).ok_or_else(not_found)?)
    } else if let Some(id) = uri.strip_prefix("ssh://task/") {
        let t = svc.tasks().get_for(id, client).map_err(|_| not_found())?;
        serde_json::to_value(t.snapshot()).unwrap_or_default()
    } else {
        return Err(not_found());
    };
    Ok(ReadResourceResult::new(vec![ResourceContents::text(body.to_string(), uri)]))
}

/// Live subscriptions of one MCP session: URI → the watcher's stop token.
#[derive(Clone, Default)]
pub struct Subscriptions {
    watchers: Arc<DashMap<String, CancellationToken>>,
}

impl Subscriptions {
    /// Subscribes to `ssh://task/{id}`; other resources do not change while a session lasts
    /// except by reload, which clients learn about by reading again.
    pub fn subscribe(&self, svc: &Service, uri: &str, client: &str, peer: Peer<RoleServer>) -> Result<(), McpError> {
        let id = uri.strip_prefix("ssh://task/").ok_or_else(|| {
            McpError::invalid_params(format!("only ssh://task/{{id}} resources can be subscribed, not {uri}"), None)
        })?;
        let task = svc.tasks().get_for(id, client).map_err(|e| McpError::resource_not_found(e.to_string(), None))?;
        let stop = CancellationToken::new();
        if let Some(old) = self.watchers.insert(uri.to_owned(), stop.clone()) {
            old.cancel();
        }
        let (uri, watchers) = (uri.to_owned(), self.watchers.clone());
        tokio::spawn(async move {
            let mut rx = task.subscribe();
            loop {
                let finished = task.state().is_finished();
                if peer.notify_resource_updated(ResourceUpdatedNotificationParam::new(uri.clone())).await.is_err()
                    || finished
                {
                    break;
                }
                tokio::select! {
                    _ = stop.cancelled() => break,
                    changed = rx.changed() => if changed.is_err() { break },
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            watchers.remove_if(&uri, |_, t| t.is_cancelled() || task.state().is_finished());
        });
        Ok(())
    }

    pub fn unsubscribe(&self, uri: &str) {
        if let Some((_, stop)) = self.watchers.remove(uri) {
            stop.cancel();
        }
    }
}
