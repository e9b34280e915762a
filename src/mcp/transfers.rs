//! The file-transfer tools, `ssh_upload` and `ssh_download`, in protocol terms: parameters
//! to a `TransferRequest`, the approval gate, one host (waited for with byte progress) or a
//! fan-out upload (the batch engine of `ssh_run_on_tag`), and the result.
//!
//! Owns: parameter checks (one source of bytes, octal mode, base64) and the result shape.
//! Never judges a path and never names russh: `transfer.rs` does the gates.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rmcp::RoleServer;
use rmcp::model::{CallToolResponse, CallToolResult};
use rmcp::service::RequestContext;
use serde_json::{Value, json};

use super::errors::{ok, service_error};
use super::ops::{Echo, approve, client_of};
use super::params::{DownloadParams, UploadParams};
use super::progress::Reporter;
use crate::policy::files::Direction;
use crate::service::fanout::{self, FanoutOptions, HostStatus};
use crate::service::transfer::{Local, TransferRequest};
use crate::service::{Service, ServiceError};
use crate::tasks::{FailureKind, Task, TaskState};

fn invalid(msg: &str) -> CallToolResponse {
    service_error(&ServiceError::InvalidInput(msg.to_owned())).into()
}

pub async fn upload(
    svc: &Arc<Service>,
    p: UploadParams,
    ctx: RequestContext<RoleServer>,
    echo: Echo,
) -> CallToolResponse {
    let local = match (&p.content, &p.content_base64, &p.local_path) {
        (Some(text), None, None) => Local::Content(Arc::new(text.clone().into_bytes())),
        (None, Some(b64), None) => match base64::engine::general_purpose::STANDARD.decode(b64.trim()) {
            Ok(bytes) => Local::Content(Arc::new(bytes)),
            Err(e) => return invalid(&format!("content_base64 is not valid base64: {e}")),
        },
        (None, None, Some(path)) => Local::File(path.clone()),
        _ => return invalid("give exactly one of content, content_base64 or local_path"),
    };
    let mode = match p.mode.as_deref().map(|m| u32::from_str_radix(m.trim_start_matches("0o"), 8)) {
        None => None,
        Some(Ok(m)) if m <= 0o7777 => Some(m),
        Some(_) => {
            return invalid(&format!("mode {:?} is not octal permissions like \"0644\"", p.mode.unwrap_or_default()));
        }
    };
    let aliases = match (&p.alias, &p.target) {
        (Some(a), None) => vec![a.clone()],
        (None, Some(t)) => match fanout::targets(svc, t) {
            Ok(h) => h,
            Err(e) => return service_error(&e).into(),
        },
        _ => return invalid("give exactly one of alias or target"),
    };
    let what = crate::service::plan::transfer_notation(Direction::Write, &p.remote_path);
    let ticket = match approve(svc, &aliases, &what, &ctx, echo).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let request = |alias: String| TransferRequest {
        alias,
        direction: Direction::Write,
        remote_path: p.remote_path.clone(),
        local: local.clone(),
        mode,
    };
    let client = client_of(&ctx);
    if let (Some(alias), None) = (&p.alias, &p.target) {
        return one(svc, request(alias.clone()), &ctx, ticket.as_deref()).await.into();
    }
    let opts = FanoutOptions {
        concurrency: p.concurrency.unwrap_or(8),
        batch_size: p.batch_size,
        max_fail_percentage: p.max_fail_percentage.unwrap_or(100.0),
        timeout_seconds: None,
        approval: ticket,
    };
    let start = |alias: String| -> futures::future::BoxFuture<'_, Result<Arc<Task>, ServiceError>> {
        let (req, client, ticket) = (request(alias), client.clone(), opts.approval.clone());
        Box::pin(async move { svc.start_transfer(req, Some(&client), ticket.as_deref()).await })
    };
    let mut reporter = Reporter::new(ctx.peer.clone(), ctx.meta.get_progress_token());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, usize, String)>();
    let work = fanout::run_with(svc, &aliases, &opts, Some(&client), &ctx.ct, &start, |done, total, e| {
        let _ = tx.send((done, total, e.alias.clone()));
    });
    tokio::pin!(work);
    let entries = loop {
        tokio::select! {
            r = &mut work => break r,
            Some((d, t, alias)) = rx.recv() => reporter.send(Some(d as f64), Some(t as f64), format!("{d}/{t} hosts done; {alias}")).await,
        }
    };
    let entries = match entries {
        Ok(e) => e,
        Err(e) => return service_error(&e).into(),
    };
    uploaded(&p.remote_path, &entries).into()
}

/// A fan-out upload's result: hosts folded by (status, SHA-256, reason), one row per host.
fn uploaded(remote_path: &str, entries: &[fanout::HostEntry]) -> CallToolResult {
    let rows: Vec<Value> = entries
        .iter()
        .map(|e| {
            let d = e.task.as_ref().and_then(|t| t.detail()).unwrap_or(Value::Null);
            json!({ "alias": e.alias, "status": e.status, "reason": e.reason, "task_id": e.task.as_ref().map(|t| t.id.clone()), "bytes": d["bytes"], "sha256": d["sha256"] })
        })
        .collect();
    let key = |r: &Value| (r["status"].to_string(), r["sha256"].to_string(), r["reason"].to_string());
    let groups: Vec<Value> = crate::inventory::hostset::fold_groups(&rows, key, |r| r["alias"].as_str().unwrap_or(""))
        .into_iter()
        .map(|g| {
            let r = &rows[g.members[0]];
            json!({ "hosts": g.hosts, "count": g.members.len(), "status": r["status"], "reason": r["reason"], "bytes": r["bytes"], "sha256": r["sha256"] })
        })
        .collect();
    let okc = entries.iter().filter(|e| e.status == HostStatus::Ok).count();
    let text = groups
        .iter()
        .map(|g| {
            format!(
                "{} ({}): {} {}",
                g["hosts"].as_str().unwrap_or(""),
                g["count"],
                g["status"].as_str().unwrap_or(""),
                g["reason"].as_str().or(g["sha256"].as_str()).unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    ok(
        json!({ "remote_path": remote_path, "summary": { "hosts": entries.len(), "ok": okc, "not_ok": entries.len() - okc }, "groups": groups, "results": rows }),
        format!("upload {remote_path} to {} hosts: {okc} ok\n{text}", entries.len()),
    )
}

pub async fn download(
    svc: &Arc<Service>,
    p: DownloadParams,
    ctx: RequestContext<RoleServer>,
    echo: Echo,
) -> CallToolResponse {
    let what = crate::service::plan::transfer_notation(Direction::Read, &p.remote_path);
    let ticket = match approve(svc, std::slice::from_ref(&p.alias), &what, &ctx, echo).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let request = TransferRequest {
        alias: p.alias,
        direction: Direction::Read,
        remote_path: p.remote_path,
        local: p.local_path.map_or(Local::Inline, Local::File),
        mode: None,
    };
    one(svc, request, &ctx, ticket.as_deref()).await.into()
}

/// One host: gates, task, byte progress while it runs, the result.
async fn one(
    svc: &Arc<Service>,
    request: TransferRequest,
    ctx: &RequestContext<RoleServer>,
    ticket: Option<&str>,
) -> CallToolResult {
    if ctx.ct.is_cancelled() {
        return super::ops::cancelled_before_start(&request.alias, &request.what());
    }
    let client = client_of(ctx);
    let task = match svc.start_transfer(request, Some(&client), ticket).await {
        Ok(t) => t,
        Err(e) => return service_error(&e),
    };
    let mut reporter = Reporter::new(ctx.peer.clone(), ctx.meta.get_progress_token());
    let mut rx = task.subscribe();
    loop {
        if task.state().is_finished() {
            break;
        }
        tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() { break; }
                if let Some(d) = task.detail() {
                    let done = d["bytes_done"].as_f64();
                    reporter.send(done, d["total_bytes"].as_f64(), format!("{} bytes", done.unwrap_or(0.0))).await;
                }
            }
            _ = ctx.ct.cancelled() => {
                let _ = svc.cancel(&task.id, Some(&client));
                let _ = tokio::time::timeout(Duration::from_secs(10), task.finished()).await;
                break;
            }
        }
    }
    let detail = task.detail().unwrap_or(Value::Null);
    match task.state() {
        TaskState::Completed { exit_code: Some(0), .. } => {
            let mut body = detail.clone();
            body["task_id"] = json!(task.id);
            body["alias"] = json!(task.spec.alias);
            let text = format!(
                "{} {} on {}: {} bytes, sha256 {}",
                body["direction"].as_str().unwrap_or(""),
                body["remote_path"].as_str().unwrap_or(""),
                task.spec.alias,
                body["bytes"],
                body["sha256"].as_str().unwrap_or("")
            );
            ok(body, text)
        }
        // The host resolved the path outside the rules: the policy's denial, not a failure.
        TaskState::Failed { error, kind: FailureKind::Denied } => {
            service_error(&crate::service::transfer::denied(error))
        }
        other => super::errors::tool_error(
            "transfer_failed",
            &format!(
                "transfer on {} {}: {}",
                task.spec.alias,
                other.name(),
                match &other {
                    TaskState::Failed { error, .. } => error.clone(),
                    _ => other.name().to_owned(),
                }
            ),
            "Nothing was replaced on the host (uploads are atomic). Fix the cause named in the message and retry.",
            json!({ "task_id": task.id, "state": other.name() }),
        ),
    }
}
