//! What the run and task tools do, in protocol terms: gate, start, wait with progress,
//! render. The inspection tools live in `inspect.rs`, the task tools (status, result,
//! output, cancel, list, ack) in `task_tools.rs`; both are re-exported here.
//!
//! Owns: the mapping between tool parameters and `Service` calls. Never names russh.

use std::sync::Arc;
use std::time::Duration;

use rmcp::RoleServer;
use rmcp::model::{CallToolResponse, CallToolResult, InputResponses};
use rmcp::service::RequestContext;
use serde_json::json;

use super::approval::{self, Gate};
use super::errors::{ok, service_error, tool_error};
pub use super::inspect::*;
use super::params::{AsyncStarted, FanoutParams, RunAsyncParams, RunParams};
use super::progress::{self, Reporter};
pub use super::task_tools::*;
use super::{fanout_result, render};
use crate::service::Service;
use crate::service::fanout::{self, FanoutOptions, HostStatus};
use crate::tasks::Task;

/// Who asked, as far as the transport tells: client name and request id.
pub fn client_of(ctx: &RequestContext<RoleServer>) -> String {
    // The request's own clientInfo (2026-07-28 carries it in every request's `_meta`), else
    // the session's from `initialize`.
    // One encoded word: what a client declares about itself cannot add words to the label.
    let name = ctx.client_info().map(|i| crate::service::caller::label_word(&format!("{}/{}", i.name, i.version)));
    let name = name.unwrap_or_else(|| "mcp-client".into());
    // Over HTTP with `auth:`, the guard verified the token and left the caller here; its
    // principal goes last, after everything the client declared about itself.
    // `/rpc` passes its verified caller in `_meta`, keyed with a secret of this process.
    let from_rpc = ctx.meta.0.0.get(crate::service::caller::CALLER_META).and_then(crate::service::Caller::from_meta);
    let caller = ctx
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<crate::service::Caller>())
        .cloned()
        .or(from_rpc);
    // The request id is the client's too (a string id may hold spaces): one encoded word.
    let req = crate::service::caller::label_word(&ctx.id.to_string());
    match caller {
        Some(c) => format!("{name} {} req={req}", c.label_words()),
        None => format!("{name} req={req}"),
    }
}

pub fn finished(svc: &Service, task: &Task) -> CallToolResult {
    let cfg = svc.config();
    let limits = cfg.host(&task.spec.alias).map(|h| cfg.policy.limits_for(h));
    let budget = limits.map_or(16 * 1024, |l| l.max_inline_output_bytes);
    let r = render::run_result(task, budget, &cfg.policy.redact_output);
    let exit = match (&r.exit_code, &r.exit_signal) {
        (Some(code), _) => format!(", exit {code}"),
        (None, Some(signal)) => format!(", exit signal {signal}"),
        (None, None) => String::new(),
    };
    let summary = format!(
        "{} on {}: status {}{exit}{}\n{}",
        r.task_id,
        r.alias,
        r.status,
        r.error.as_deref().map(|e| format!(", {e}")).unwrap_or_default(),
        r.stdout
    );
    ok(serde_json::to_value(&r).unwrap_or_default(), summary)
}

/// An input-required round's echo: `requestState` and `inputResponses` of a retried call.
pub type Echo = (Option<String>, Option<InputResponses>);

/// The approval gate in front of a tool: `Err` is what the tool returns instead of running.
pub async fn approve(
    svc: &Arc<Service>,
    aliases: &[String],
    what: &str,
    ctx: &RequestContext<RoleServer>,
    (state, responses): Echo,
) -> Result<Option<String>, CallToolResponse> {
    match approval::gate(svc, aliases, what, ctx, state, responses).await {
        Gate::Proceed(ticket) => Ok(ticket),
        Gate::InputRequired(r) => Err(r.into()),
        Gate::Refused(r) => Err(r.into()),
    }
}

/// The result of a call cancelled before its work started.
pub fn cancelled_before_start(alias: &str, what: &str) -> CallToolResult {
    tool_error(
        "cancelled",
        &format!("the call was cancelled before `{what}` started on {alias}; nothing ran"),
        "Nothing to undo.",
        json!({ "alias": alias }),
    )
}

/// The one start of a single-host command for every tool (sync, async, task-augmented):
/// `Service::start_command` under this client, its error as the tool's result.
pub async fn start(
    svc: &Arc<Service>,
    alias: &str,
    command: &str,
    timeout_seconds: Option<u64>,
    ctx: &RequestContext<RoleServer>,
    ticket: Option<String>,
) -> Result<(Arc<Task>, crate::config::Limits), CallToolResult> {
    // A call cancelled while it waited (for an approval, a slot) starts nothing.
    if ctx.ct.is_cancelled() {
        return Err(cancelled_before_start(alias, command));
    }
    let client = client_of(ctx);
    svc.start_command(alias, command, timeout_seconds, Some(&client), ticket.as_deref())
        .await
        .map_err(|e| service_error(&e))
}

pub async fn run(svc: &Arc<Service>, p: RunParams, ctx: RequestContext<RoleServer>, echo: Echo) -> CallToolResponse {
    match approve(svc, std::slice::from_ref(&p.alias), &p.command, &ctx, echo).await {
        Ok(ticket) => run_approved(svc, p, ctx, ticket).await.into(),
        Err(r) => r,
    }
}

async fn run_approved(
    svc: &Arc<Service>,
    p: RunParams,
    ctx: RequestContext<RoleServer>,
    ticket: Option<String>,
) -> CallToolResult {
    let (task, limits) = match start(svc, &p.alias, &p.command, p.timeout_seconds, &ctx, ticket).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let interval = Duration::from_secs(limits.task_progress_interval);
    let mut reporter = Reporter::new(ctx.peer.clone(), ctx.meta.get_progress_token());
    progress::wait(svc, &task, &mut reporter, interval, &ctx.ct).await;
    finished(svc, &task)
}

pub async fn run_async(
    svc: &Arc<Service>,
    p: RunAsyncParams,
    ctx: &RequestContext<RoleServer>,
    echo: Echo,
) -> CallToolResponse {
    match approve(svc, std::slice::from_ref(&p.alias), &p.command, ctx, echo).await {
        Ok(ticket) => run_async_approved(svc, p, ctx, ticket).await.into(),
        Err(r) => r,
    }
}

async fn run_async_approved(
    svc: &Arc<Service>,
    p: RunAsyncParams,
    ctx: &RequestContext<RoleServer>,
    ticket: Option<String>,
) -> CallToolResult {
    let (task, limits) = match start(svc, &p.alias, &p.command, p.timeout_seconds, ctx, ticket).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (ttl, poll) = (limits.task_result_ttl, limits.task_progress_interval);
    let wait = Duration::from_secs(p.wait_seconds.unwrap_or(0).min(60));
    let result = match tokio::time::timeout(wait, task.finished()).await {
        Ok(_) => Some(render::run_result(&task, 16 * 1024, &svc.config().policy.redact_output)),
        Err(_) => None,
    };
    let started = AsyncStarted {
        task_id: task.id.clone(),
        status: task.state().name().to_owned(),
        ttl_seconds: ttl,
        poll_interval_seconds: poll,
        result,
    };
    let summary = format!(
        "task {} {} on {}; poll ssh_get_task_status every {poll} s",
        started.task_id, started.status, task.spec.alias
    );
    ok(serde_json::to_value(&started).unwrap_or_default(), summary)
}

pub async fn run_on_tag(
    svc: &Arc<Service>,
    p: FanoutParams,
    ctx: RequestContext<RoleServer>,
    echo: Echo,
) -> CallToolResponse {
    let hosts = match fanout::targets(svc, &p.target) {
        Ok(h) => h,
        Err(e) => return service_error(&e).into(),
    };
    // One approval for the whole fan-out: the human sees the folded host set once.
    match approve(svc, &hosts, &p.command, &ctx, echo).await {
        Ok(ticket) => run_on_tag_approved(svc, p, ctx, hosts, ticket).await.into(),
        Err(r) => r,
    }
}

async fn run_on_tag_approved(
    svc: &Arc<Service>,
    p: FanoutParams,
    ctx: RequestContext<RoleServer>,
    hosts: Vec<String>,
    approval: Option<String>,
) -> CallToolResult {
    let opts = FanoutOptions {
        concurrency: p.concurrency.unwrap_or(8),
        batch_size: p.batch_size,
        max_fail_percentage: p.max_fail_percentage.unwrap_or(100.0),
        timeout_seconds: p.timeout_seconds,
        approval,
    };
    let client = client_of(&ctx);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, usize, String)>();
    let mut reporter = Reporter::new(ctx.peer.clone(), ctx.meta.get_progress_token());
    let work = fanout::run(svc, &hosts, &p.command, &opts, Some(&client), &ctx.ct, |done, total, e| {
        let _ = tx.send((
            done,
            total,
            format!(
                "{}: {}",
                e.alias,
                serde_json::to_value(e.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
            ),
        ));
    });
    tokio::pin!(work);
    let interval = svc.config().policy.default_limits().task_progress_interval;
    let mut tick = tokio::time::interval(Duration::from_secs(interval.max(1)));
    tick.tick().await;
    let mut total = hosts.len();
    let mut done = 0;
    let entries = loop {
        tokio::select! {
            r = &mut work => break r,
            Some((d, t, msg)) = rx.recv() => { (done, total) = (d, t); reporter.send(Some(d as f64), Some(t as f64), format!("{d}/{t} hosts done; {msg}")).await }
            _ = tick.tick() => reporter.send(Some(done as f64), (total > 0).then_some(total as f64), format!("{done}/{total} hosts done")).await,
        }
    };
    let entries = match entries {
        Ok(e) => e,
        Err(e) => return service_error(&e),
    };
    let (body, text) = fanout_report(svc, &p.target, &p.command, &entries, p.detail);
    ok(body, text)
}

/// The one report of a command fan-out, for `ssh_run_on_tag` and `sshwarden run`: the
/// structured result (summary, groups of identical outcomes, rows) and its `clush -b` text.
pub fn fanout_report(
    svc: &Service,
    target: &str,
    command: &str,
    entries: &[fanout::HostEntry],
    detail: super::params::Detail,
) -> (serde_json::Value, String) {
    let count = |s: HostStatus| entries.iter().filter(|e| e.status == s).count();
    let cfg = svc.config();
    let outcomes: Vec<fanout_result::HostOutcome> = entries
        .iter()
        .map(|e| fanout_result::HostOutcome {
            entry: e,
            run: e
                .task
                .as_ref()
                .map(|t| render::run_result(t, fanout_result::GROUP_INLINE_BYTES, &cfg.policy.redact_output)),
        })
        .collect();
    let summary = json!({ "hosts": entries.len(), "ok": count(HostStatus::Ok), "failed": count(HostStatus::Failed), "denied": count(HostStatus::Denied), "unreachable": count(HostStatus::Unreachable), "skipped": count(HostStatus::Skipped) });
    let mut head = serde_json::Map::new();
    head.insert("target".into(), json!(target));
    head.insert("summary".into(), summary.clone());
    let max_bytes = cfg.policy.default_limits().max_result_bytes;
    let (body, groups_text) =
        fanout_result::build(head, &outcomes, detail, usize::try_from(max_bytes).unwrap_or(usize::MAX));
    let counts = ["ok", "failed", "denied", "unreachable", "skipped"]
        .iter()
        .filter(|k| summary[**k].as_u64().unwrap_or(0) > 0)
        .map(|k| format!("{} {k}", summary[*k]))
        .collect::<Vec<_>>()
        .join(", ");
    let text = format!("{command} on {target}: {} hosts: {counts}\n{groups_text}", entries.len());
    (body, text)
}
