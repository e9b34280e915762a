//! Fan-out results sized for a model: hosts with identical outcomes folded into one group
//! (`h[1-98] (98)` and the output once, as ClusterShell's `clush -b`), per-host rows only
//! where they add something, and the whole structured result within `max_result_bytes`.
//!
//! Owns: grouping, the `detail` choice, the result budget and the `clush -b` text.
//! Never runs anything and never drops a task: every host's task id stays reachable.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::params::{Detail, RunResult};
use crate::inventory::hostset::{self, Folded};
use crate::service::fanout::{HostEntry, HostStatus};

/// Inline output per group: head+tail, as for one host of `ssh_run_on_tag` before folding.
pub const GROUP_INLINE_BYTES: u64 = 4096;

/// One host's outcome, rendered once.
pub struct HostOutcome<'a> {
    pub entry: &'a HostEntry,
    pub run: Option<RunResult>,
}

/// What makes two hosts' outcomes the same.
#[derive(PartialEq, Eq)]
struct Key<'a> {
    status: HostStatus,
    exit_code: Option<u32>,
    exit_signal: Option<&'a str>,
    stdout: Option<&'a str>,
    stderr: Option<&'a str>,
    /// Only for hosts that ran nothing (denied, unreachable, skipped): their reason is the
    /// outcome.
    reason: Option<&'a str>,
}

fn key<'a>(o: &'a HostOutcome<'_>) -> Key<'a> {
    let run = o.run.as_ref();
    Key {
        status: o.entry.status,
        exit_code: run.and_then(|r| r.exit_code),
        exit_signal: run.and_then(|r| r.exit_signal.as_deref()),
        stdout: run.map(|r| r.stdout.as_str()),
        stderr: run.map(|r| r.stderr.as_str()),
        reason: if run.is_none() { o.entry.reason.as_deref() } else { None },
    }
}

fn status_name(s: HostStatus) -> Value {
    serde_json::to_value(s).unwrap_or(Value::Null)
}

/// Inserts `v` unless it is null: keeps folded results compact.
fn put(map: &mut Map<String, Value>, k: &str, v: Value) {
    if !v.is_null() {
        map.insert(k.to_owned(), v);
    }
}

fn group_value(outcomes: &[HostOutcome], group: &Folded, full: bool) -> Value {
    let first = &outcomes[group.members[0]];
    let run = first.run.as_ref();
    let mut m = Map::new();
    m.insert("hosts".into(), json!(group.hosts));
    m.insert("count".into(), json!(group.members.len()));
    m.insert("status".into(), status_name(first.entry.status));
    put(&mut m, "exit_code", json!(run.and_then(|r| r.exit_code)));
    put(&mut m, "exit_signal", json!(run.and_then(|r| r.exit_signal.clone())));
    if run.is_none() {
        put(&mut m, "reason", json!(first.entry.reason));
    }
    if let Some(r) = run {
        // One member's task holds the group's output in full (ssh_get_task_output).
        m.insert("task_id".into(), json!(r.task_id));
        if full {
            m.insert("stdout".into(), json!(r.stdout));
            m.insert("stderr".into(), json!(r.stderr));
            if r.truncated {
                m.insert("output_truncated".into(), json!(true));
            }
        } else {
            let digest = Sha256::digest(format!("{}\0{}", r.stdout, r.stderr).as_bytes());
            m.insert("output_sha256".into(), json!(hex::encode(digest)));
            m.insert("truncated".into(), json!(true));
        }
    }
    Value::Object(m)
}

fn host_row(o: &HostOutcome, detail: Detail) -> Value {
    let run = o.run.as_ref();
    let mut m = Map::new();
    m.insert("alias".into(), json!(o.entry.alias));
    m.insert("status".into(), status_name(o.entry.status));
    put(&mut m, "exit_code", json!(run.and_then(|r| r.exit_code)));
    put(&mut m, "reason", json!(o.entry.reason));
    put(&mut m, "task_id", json!(run.map(|r| r.task_id.clone())));
    if detail == Detail::Hosts {
        put(&mut m, "duration_ms", json!(run.map(|r| r.duration_ms)));
        put(&mut m, "target_ip", json!(run.map(|r| r.target_ip.clone())));
    }
    Value::Object(m)
}

const HINT: &str = "The result was cut to max_result_bytes ({max}). Read a summarised group's output with ssh_get_task_output and its task_id; list every host's task with ssh_list_tasks (alias=…), or narrow the target.";

fn size(v: &Value) -> usize {
    serde_json::to_vec(v).map_or(usize::MAX, |b| b.len())
}

/// The structured result and its `clush -b` text. `head` holds the fields that come
/// first (`target`, `summary`).
pub fn build(head: Map<String, Value>, outcomes: &[HostOutcome], detail: Detail, max_bytes: usize) -> (Value, String) {
    let groups = hostset::fold_groups(outcomes, key, |o| &o.entry.alias);
    let rows: Vec<Value> = outcomes
        .iter()
        .filter(|o| detail == Detail::Hosts || o.entry.status != HostStatus::Ok)
        .map(|o| host_row(o, detail))
        .collect();
    let assemble = |full: &[bool], rows: &[Value], groups_kept: usize| {
        let mut body = head.clone();
        let values: Vec<Value> =
            groups.iter().zip(full).take(groups_kept).map(|(m, f)| group_value(outcomes, m, *f)).collect();
        body.insert("groups".into(), Value::Array(values));
        body.insert("results".into(), Value::Array(rows.to_vec()));
        Value::Object(body)
    };
    let all_full = vec![true; groups.len()];
    let body = assemble(&all_full, &rows, groups.len());
    if size(&body) <= max_bytes {
        return (body, clush_text(outcomes, &groups));
    }
    // Sizes add up (JSON arrays: items plus commas), so the cut is computed, not searched.
    let full_sizes: Vec<usize> = groups.iter().map(|m| size(&group_value(outcomes, m, true))).collect();
    let short_sizes: Vec<usize> = groups.iter().map(|m| size(&group_value(outcomes, m, false))).collect();
    let row_sizes: Vec<usize> = rows.iter().map(size).collect();
    let notes =
        json!({ "truncated": true, "results_omitted": rows.len(), "groups_omitted": groups.len(), "hint": HINT });
    let base = size(&assemble(&[], &[], 0)) + size(&notes) + max_bytes.to_string().len();
    let list = |sizes: &mut dyn Iterator<Item = usize>| {
        let (sum, n) = sizes.fold((0usize, 0usize), |(s, n), x| (s + x, n + 1));
        sum + n.saturating_sub(1)
    };
    let total = |full: &[bool], rows_kept: usize, groups_kept: usize| {
        let g = list(&mut (0..groups_kept).map(|i| if full[i] { full_sizes[i] } else { short_sizes[i] }));
        base + g + list(&mut row_sizes[..rows_kept].iter().copied())
    };
    // Summarise every group, then give output back to the largest groups while it fits.
    let mut full = vec![false; groups.len()];
    for i in 0..groups.len() {
        full[i] = true;
        if total(&full, rows.len(), groups.len()) > max_bytes {
            full[i] = false;
            break;
        }
    }
    let (mut rows_kept, mut groups_kept) = (rows.len(), groups.len());
    while rows_kept > 0 && total(&full, rows_kept, groups_kept) > max_bytes {
        rows_kept -= 1;
    }
    while groups_kept > 1 && total(&full, rows_kept, groups_kept) > max_bytes {
        groups_kept -= 1;
    }
    let mut body = assemble(&full, &rows[..rows_kept], groups_kept);
    if let Value::Object(m) = &mut body {
        m.insert("truncated".into(), json!(true));
        if rows_kept < rows.len() {
            m.insert("results_omitted".into(), json!(rows.len() - rows_kept));
        }
        if groups_kept < groups.len() {
            m.insert("groups_omitted".into(), json!(groups.len() - groups_kept));
        }
        m.insert("hint".into(), json!(HINT.replace("{max}", &max_bytes.to_string())));
    }
    (body, clush_text(outcomes, &groups))
}

/// `clush -b`: each group's folded hosts and count, a line of dashes, the output.
fn clush_text(outcomes: &[HostOutcome], groups: &[Folded]) -> String {
    let mut text = String::new();
    for group in groups {
        let first = &outcomes[group.members[0]];
        let header = format!("{} ({})", group.hosts, group.members.len());
        text.push_str(&header);
        text.push('\n');
        text.push_str(&"-".repeat(header.chars().count().clamp(15, 72)));
        text.push('\n');
        match &first.run {
            Some(r) => {
                text.push_str(&r.stdout);
                if !r.stderr.is_empty() {
                    text.push_str(&r.stderr);
                }
                if first.entry.status != HostStatus::Ok {
                    text.push_str(&format!("[{}]\n", first.entry.reason.as_deref().unwrap_or("failed")));
                }
            }
            None => {
                let status = status_name(first.entry.status);
                let reason = first.entry.reason.as_deref().unwrap_or("");
                text.push_str(&format!("[{}: {reason}]\n", status.as_str().unwrap_or("")));
            }
        }
        if !text.ends_with('\n') {
            text.push('\n');
        }
    }
    text
}
