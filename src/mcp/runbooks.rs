//! The runbook tools and resource: `ssh_list_runbooks`, `ssh_plan_runbook`,
//! `ssh_run_runbook` (one task in the task manager for the whole run; its host commands are
//! ordinary tasks), `ssh://runbook/{name}`.
//!
//! Owns: translating parameters and results. Planning and running live in `service/runner/`.
//! Never runs a step itself.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rmcp::RoleServer;
use rmcp::model::CallToolResult;
use rmcp::service::RequestContext;
use serde_json::{Value, json};

use super::errors::{ok, tool_error};
use super::ops::client_of;
use super::params::{RunbookPlanParams, RunbookRunParams};
use super::progress::Reporter;
use crate::runbook::{ParamType, Runbook};
use crate::service::Service;
use crate::service::runner::exec::{self, StartError};

/// A runbook as a client sees it: name, description, parameters (no file contents).
pub fn describe(rb: &Runbook) -> Value {
    let params: Vec<Value> = rb
        .params
        .iter()
        .map(|p| {
            let (kind, values) = match &p.kind {
                ParamType::Enum(v) => ("enum", Some(v.clone())),
                ParamType::String => ("string", None),
                ParamType::Integer => ("integer", None),
                ParamType::Boolean => ("boolean", None),
            };
            json!({ "name": p.name, "type": kind, "values": values, "required": p.required,
                    "default": if p.secret { None } else { p.default.clone() }, "pattern": p.pattern.as_ref().map(|r| r.as_str()),
                    "secret": p.secret, "description": p.description })
        })
        .collect();
    let steps = |list: &[crate::runbook::Step]| -> Vec<Value> {
        list.iter().map(|s| json!({ "id": s.id, "target": s.target.source, "command": s.command.source })).collect()
    };
    json!({ "name": rb.name, "description": rb.description, "sha256": rb.sha256, "params": params,
            "steps": steps(&rb.steps), "rollback": steps(&rb.rollback) })
}

fn find(svc: &Service, name: &str) -> Result<Runbook, CallToolResult> {
    let cfg = svc.config();
    cfg.runbooks.get(name).cloned().ok_or_else(|| {
        let names: Vec<&str> = cfg.runbooks.keys().map(String::as_str).collect();
        tool_error(
            "unknown_runbook",
            &format!("no runbook named {name:?}"),
            "Call ssh_list_runbooks for the runbooks this server has.",
            json!({ "runbooks": names }),
        )
    })
}

/// JSON scalars as the strings parameters are checked as.
fn scalars(params: &BTreeMap<String, Value>) -> Result<BTreeMap<String, String>, CallToolResult> {
    params
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            Value::Number(_) | Value::Bool(_) => Ok((k.clone(), v.to_string())),
            _ => Err(tool_error(
                "invalid_input",
                &format!("parameter {k:?} must be a string, number or boolean"),
                "Pass scalar values in params.",
                json!({}),
            )),
        })
        .collect()
}

pub fn list(svc: &Service) -> CallToolResult {
    let cfg = svc.config();
    let list: Vec<Value> = cfg.runbooks.values().map(describe).collect();
    let text = cfg.runbooks.values().map(|r| format!("{}: {}", r.name, r.description)).collect::<Vec<_>>().join("\n");
    ok(json!({ "count": list.len(), "runbooks": list }), if text.is_empty() { "no runbooks".into() } else { text })
}

fn start_error(e: &StartError) -> CallToolResult {
    let (kind, hint) = match e {
        StartError::Params(_) => ("invalid_input", "Fix the parameters named and retry; ssh_list_runbooks lists them."),
        StartError::Denied(_) => (
            "policy_denied",
            "Nothing ran. A step is denied on some host; explain the denial to the user (ssh_plan_runbook shows every step).",
        ),
        StartError::PlanChanged { .. } => {
            ("plan_changed", "Nothing ran. Review the new plan with ssh_plan_runbook and pass its plan_hash.")
        }
    };
    tool_error(kind, &e.to_string(), hint, json!({}))
}

pub async fn plan(svc: &Arc<Service>, p: RunbookPlanParams, who: &crate::policy::Principal) -> CallToolResult {
    let (rb, params) = match find(svc, &p.name).and_then(|rb| Ok((rb, scalars(&p.params)?))) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let values = match rb.bind(&params) {
        Ok(v) => v,
        Err(errors) => return start_error(&StartError::Params(errors)),
    };
    let plan = crate::service::runner::plan(&svc.config(), &rb, &values, who, svc.resolver()).await;
    let text = plan
        .steps
        .iter()
        .map(|s| {
            let verdict = if s.error.is_none() && s.rows.iter().all(|r| r.runnable()) { "ALLOW" } else { "DENY " };
            let hosts =
                s.folded.as_ref().map(|f| f.groups.iter().map(|g| g.hosts.clone()).collect::<Vec<_>>().join(","));
            format!("{verdict} {} {} on {}: {}", s.phase, s.id, hosts.unwrap_or_default(), s.command)
        })
        .collect::<Vec<_>>()
        .join("\n");
    ok(serde_json::to_value(&plan).unwrap_or_default(), format!("plan_hash {}\n{text}", plan.plan_hash))
}

pub async fn run(svc: &Arc<Service>, p: RunbookRunParams, ctx: &RequestContext<RoleServer>) -> CallToolResult {
    let (rb, params) = match find(svc, &p.name).and_then(|rb| Ok((rb, scalars(&p.params)?))) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let client = client_of(ctx);
    let who = crate::service::principal_of(Some(&client));
    let (plan, values) = match exec::start(svc, &rb, &params, &who, p.plan_hash.as_deref()).await {
        Ok(x) => x,
        Err(e) => return start_error(&e),
    };
    let task = match crate::service::runner::launch::launch(svc, rb, plan, values, client_of(ctx)) {
        Ok(t) => t,
        Err(e) => return super::errors::service_error(&e),
    };
    let wait = Duration::from_secs(p.wait_seconds.unwrap_or(0).min(60));
    if !wait.is_zero() {
        let mut reporter = Reporter::new(ctx.peer.clone(), ctx.meta.get_progress_token());
        let mut rx = task.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        let mut last = String::new();
        while !task.state().is_finished() {
            tokio::select! {
                r = rx.changed() => if r.is_err() { break },
                _ = tokio::time::sleep_until(deadline) => break,
            }
            let steps = task.snapshot().detail.map(|d| step_line(&d)).unwrap_or_default();
            if steps != last {
                reporter.send(None, None, steps.clone()).await;
                last = steps;
            }
        }
    }
    let snap = task.snapshot();
    let text =
        format!("runbook {} started as task {} ({}); poll ssh_get_task_status", p.name, task.id, snap.state.name());
    ok(
        json!({ "task_id": task.id, "status": snap.state.name(), "plan_hash": snap.detail.as_ref().map(|d| d["plan_hash"].clone()), "run": snap.detail }),
        text,
    )
}

/// `before: ok, restart: running, …`
fn step_line(report: &Value) -> String {
    report["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .map(|s| format!("{}: {}", s["id"].as_str().unwrap_or(""), s["status"].as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}
