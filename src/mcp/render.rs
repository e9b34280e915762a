//! Turns tasks into the result shapes of `params.rs`.
//!
//! Owns: inline output capping (head+tail within `max_inline_output_bytes`), paging and
//! UTF-8/base64 decisions at the protocol edge, output redaction. Never changes a task.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use regex::Regex;

use super::params::{OutputPage, RunResult};
use crate::tasks::ring::{HeadTail, Stream, decode_utf8};
use crate::tasks::{Task, TaskState};

/// Largest page `ssh_get_task_output` returns.
pub const MAX_PAGE: usize = 256 * 1024;
pub const DEFAULT_PAGE: usize = 16 * 1024;
pub const MAX_TAIL_LINES: usize = 5000;

fn redact(text: String, patterns: &[Regex]) -> String {
    patterns.iter().fold(text, |t, re| re.replace_all(&t, "[REDACTED]").into_owned())
}

/// The first and last `budget/2` retained bytes of a stream, marked where bytes are left out.
fn inline(buf: &HeadTail, budget: usize) -> (String, bool) {
    let total = buf.total();
    if total as usize <= budget && buf.dropped() == 0 {
        return (String::from_utf8_lossy(&buf.page(0, budget).data).into_owned(), false);
    }
    let half = budget / 2;
    let head = buf.page(0, half);
    let tail = buf.page(total.saturating_sub(half as u64).max(head.next_offset), half);
    // Cut on character boundaries: drop a partial character at the end of the head and
    // continuation bytes at the start of the tail (they are counted as not shown).
    let head_len = match decode_utf8(&head.data) {
        Some((_, held_back)) => head.data.len() - held_back,
        None => head.data.len(),
    };
    let tail_skip = tail.data.iter().take(3).take_while(|b| (**b & 0xC0) == 0x80).count();
    let omitted = tail.offset + tail_skip as u64 - head.next_offset + (head.data.len() - head_len) as u64;
    let text = format!(
        "{}\n…[{omitted} bytes not shown; page them with ssh_get_task_output]…\n{}",
        String::from_utf8_lossy(&head.data[..head_len]),
        String::from_utf8_lossy(&tail.data[tail_skip..])
    );
    (text, true)
}

pub fn run_result(task: &Task, inline_budget: u64, redactions: &[Regex]) -> RunResult {
    let snap = task.snapshot();
    let out = task.output();
    let (stdout, cut_out) = inline(&out.stdout, inline_budget as usize);
    let (stderr, cut_err) = inline(&out.stderr, inline_budget as usize);
    let (exit_code, exit_signal, error) = match &snap.state {
        TaskState::Completed { exit_code, exit_signal } => (*exit_code, exit_signal.clone(), None),
        TaskState::Failed { error } => (None, None, Some(error.clone())),
        TaskState::TimedOut => (
            None,
            None,
            Some(format!("timed out after {} s; the remote command was stopped", task.spec.timeout.as_secs())),
        ),
        TaskState::Cancelled { by } => {
            (None, None, Some(format!("cancelled ({by:?}); the remote command was stopped")))
        }
        _ => (None, None, None),
    };
    RunResult {
        task_id: snap.task_id,
        alias: snap.alias,
        target_ip: snap.target_ip,
        status: snap.state.name().to_owned(),
        exit_code,
        exit_signal,
        error,
        duration_ms: snap.elapsed_ms,
        stdout: redact(stdout, redactions),
        stderr: redact(stderr, redactions),
        truncated: snap.truncated || cut_out || cut_err,
        stdout_bytes: snap.stdout_bytes,
        stderr_bytes: snap.stderr_bytes,
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
