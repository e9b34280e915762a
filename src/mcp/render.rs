//! Turns tasks into the result shapes of `params.rs`.
//!
//! Owns: inline output capping (head+tail within `max_inline_output_bytes`), paging and
//! UTF-8/base64 decisions at the protocol edge, output redaction. Never changes a task.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use regex::Regex;

use super::params::{OutputPage, RunResult};
use crate::tasks::ring::{Stream, decode_utf8, inline_text};
use crate::tasks::{FailureKind, Task, TaskState};

/// Largest page `ssh_get_task_output` returns.
pub const MAX_PAGE: usize = 256 * 1024;
pub const DEFAULT_PAGE: usize = 16 * 1024;
pub const MAX_TAIL_LINES: usize = 5000;

fn redact(text: String, patterns: &[Regex]) -> String {
    patterns.iter().fold(text, |t, re| re.replace_all(&t, "[REDACTED]").into_owned())
}

pub fn run_result(task: &Task, inline_budget: u64, redactions: &[Regex]) -> RunResult {
    let snap = task.snapshot();
    let out = task.output();
    let (stdout, cut_out) = inline_text(&out.stdout, inline_budget as usize);
    let (stderr, cut_err) = inline_text(&out.stderr, inline_budget as usize);
    let (exit_code, exit_signal, error) = match &snap.state {
        TaskState::Completed { exit_code, exit_signal } => (*exit_code, exit_signal.clone(), None),
        TaskState::Failed { error, .. } => (None, None, Some(error.clone())),
        TaskState::TimedOut => (
            None,
            None,
            Some(format!("timed out after {} s; the remote command was stopped", task.spec.timeout.as_secs())),
        ),
        TaskState::Cancelled { by } => {
            let by = serde_json::to_value(by).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            (None, None, Some(format!("cancelled ({by}); the remote command was stopped")))
        }
        _ => (None, None, None),
    };
    // A `become` refusal carries its hint after a `\nhint: ` line (`service::elevate`).
    let (error, kind, hint) = match (&snap.state, error) {
        (TaskState::Failed { kind: FailureKind::PrivilegeFailed, .. }, Some(e)) => {
            let (msg, hint) =
                e.split_once("\nhint: ").map_or((e.clone(), None), |(m, h)| (m.to_owned(), Some(h.to_owned())));
            (Some(msg), Some("privilege_failed".to_owned()), hint)
        }
        (_, error) => (error, None, None),
    };
    RunResult {
        task_id: snap.task_id,
        alias: snap.alias,
        target_ip: snap.target_ip,
        status: snap.state.name().to_owned(),
        exit_code,
        exit_signal,
        error,
        kind,
        hint,
        duration_ms: snap.elapsed_ms,
        stdout: redact(stdout, redactions),
        stderr: redact(stderr, redactions),
        truncated: snap.truncated || cut_out || cut_err,
        stdout_bytes: snap.stdout_bytes,
        stderr_bytes: snap.stderr_bytes,
        runbook: snap.detail,
    }
}

/// One page by byte offset, or the last lines; works while the task runs.
pub fn output_page(
    task: &Task,
    stream: Stream,
    offset: u64,
    limit: usize,
    tail_lines: Option<usize>,
    redactions: &[Regex],
) -> OutputPage {
    let state = task.state();
    let out = task.output();
    let buf = out.stream(stream);
    let total = buf.total();
    let (bytes, off, next, dropped) = match tail_lines {
        Some(n) => {
            let data = buf.tail_lines(n.min(MAX_TAIL_LINES));
            let start = total - data.len() as u64;
            (data, start, total, 0)
        }
        None => {
            let p = buf.page(offset, limit.min(MAX_PAGE));
            (p.data, p.offset, p.next_offset, p.dropped_bytes)
        }
    };
    let (data, encoding, next) = match decode_utf8(&bytes) {
        Some((text, held_back)) => (redact(text, redactions), "utf-8", next - held_back as u64),
        None => (STANDARD.encode(&bytes), "base64", next),
    };
    OutputPage {
        task_id: task.id.clone(),
        stream,
        status: state.name().to_owned(),
        data,
        encoding: encoding.to_owned(),
        offset: off,
        next_offset: next,
        eof: state.is_finished() && next >= total,
        dropped_bytes: dropped,
        total_bytes: total,
    }
}
