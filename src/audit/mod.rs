//! The audit log: JSON Lines, one record per event, hash-chained, fail-closed.
//!
//! Owns: record format (`seq`, `ts`, `prev`, `hash` over the canonical record), appending
//! with flush + fsync for records that gate execution, verifying a file's chain, and
//! reading the tail on start to find tasks that started and never ended. Never records a
//! secret; commands are recorded as SHA-256 always and as text unless redacted.

pub mod copy;
pub mod syslog;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::audit::syslog::Spool;
use crate::config::SyslogSettings;
use crate::tasks::lock;

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, thiserror::Error)]
#[error("audit log {path}: {reason}")]
pub struct AuditError {
    pub path: String,
    pub reason: String,
}

struct State {
    file: Option<File>,
}

/// An append-only, hash-chained audit sink.
pub struct Audit {
    path: PathBuf,
    redact_commands: bool,
    state: Mutex<State>,
    /// Off-host copy (`audit.syslog`): every line is spooled for the shipper.
    spool: Option<Arc<Spool>>,
    /// Set when a record found no room; cleared once the collector has taken half the
    /// spool, so refusals do not flap record by record.
    spool_full: AtomicBool,
}

/// SHA-256 hex of a command, as audit records and plans carry it.
pub fn command_sha256(command: &str) -> String {
    hex::encode(Sha256::digest(command.as_bytes()))
}

fn record_hash(record: &Map<String, Value>) -> String {
    // serde_json's Map is ordered by key (no preserve_order feature): canonical.
    let text = serde_json::to_string(record).unwrap_or_default();
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl Audit {
    /// Opens (or creates) the log; each record continues the chain from the file's last record.
    pub fn open(path: &Path, redact_commands: bool, syslog: Option<&SyslogSettings>) -> Result<Self, AuditError> {
        let err = |reason: String| AuditError { path: path.display().to_string(), reason };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        let file =
            OpenOptions::new().create(true).read(true).append(true).open(path).map_err(|e| err(e.to_string()))?;
        Ok(Self {
            path: path.to_path_buf(),
            redact_commands,
            state: Mutex::new(State { file: Some(file) }),
            spool: syslog.map(|s| Arc::new(Spool::new(path, s.clone()))),
            spool_full: AtomicBool::new(false),
        })
    }

    /// The syslog spool, when `audit.syslog` is configured (the service runs its shipper).
    pub fn spool(&self) -> Option<Arc<Spool>> {
        self.spool.clone()
    }

    /// Whether `line` goes to the spool; `Err` refuses the record (spool full and
    /// `required`), before anything is written.
    fn admit_to_spool(&self, line: &str) -> Result<bool, String> {
        let Some(spool) = &self.spool else { return Ok(false) };
        let pending = spool.pending();
        let limit = spool.settings.spool_bytes;
        if self.spool_full.load(Ordering::Relaxed) && pending <= limit / 2 {
            self.spool_full.store(false, Ordering::Relaxed);
            tracing::info!(target: "sshwarden::audit", pending, "syslog spool has room again");
        }
        if !self.spool_full.load(Ordering::Relaxed) && pending + line.len() as u64 <= limit {
            return Ok(true);
        }
        let newly_full = !self.spool_full.swap(true, Ordering::Relaxed);
        if spool.settings.required {
            return Err(format!(
                "syslog spool full ({pending} bytes the collector has not taken, spool_bytes {}); audit.syslog.required refuses new records",
                spool.settings.spool_bytes
            ));
        }
        if newly_full {
            tracing::warn!(target: "sshwarden::audit", pending, "syslog spool full: new audit records are kept only in the file until the collector catches up");
        }
        Ok(false)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record. `durable` records (task start) are fsynced before returning:
    /// the caller must not run the command unless this returns `Ok`.
    pub fn record(&self, event: &str, mut fields: Map<String, Value>, durable: bool) -> Result<(), AuditError> {
        let err = |reason: String| AuditError { path: self.path.display().to_string(), reason };
        if let Some(Value::String(cmd)) = fields.remove("command") {
            fields.insert("command_sha256".into(), json!(command_sha256(&cmd)));
            if !self.redact_commands {
                fields.insert("command".into(), json!(cmd));
            }
        }
        let mut st = lock(&self.state);
        // The file may have been removed or replaced under us: reopen by path so a
        // deleted log fails closed instead of writing into an unlinked inode.
        if std::fs::metadata(&self.path).is_err() {
            st.file = None;
            return Err(err("file was removed".into()));
        }
        let file = st.file.as_mut().ok_or_else(|| err("not open".into()))?;
        // Several sshwarden processes (a server and `sshwarden call`) may share one log:
        // hold an exclusive lock and continue from the last record actually in the file.
        file.lock().map_err(|e| err(format!("cannot lock: {e}")))?;
        fields.insert("event".into(), json!(event));
        let written = chained_line(file, &mut fields).and_then(|line| {
            let spooled = self.admit_to_spool(&line)?;
            write_line(file, &line, durable)?;
            if let (true, Some(spool)) = (spooled, &self.spool)
                && let Err(e) = spool.append(&line, durable)
            {
                if spool.settings.required {
                    return Err(format!("record written, but the syslog spool failed: {e}"));
                }
                tracing::warn!(target: "sshwarden::audit", "syslog spool {}: {e}", spool.path().display());
            }
            Ok(())
        });
        let _ = file.unlock();
        written.map_err(err)
    }
}

/// The next record of the chain as one JSONL line (seq, ts, prev and hash filled in),
/// computed under the caller's lock. `Err` when the file's last record cannot be read:
/// starting again at seq 1 would hide whatever cut the chain.
fn chained_line(file: &mut File, fields: &mut Map<String, Value>) -> Result<String, String> {
    let (last_seq, prev) = last_record(file)?.unwrap_or((0, GENESIS.to_owned()));
    fields.insert("seq".into(), json!(last_seq + 1));
    fields.insert("ts".into(), json!(iso8601_now()));
    fields.insert("prev".into(), json!(prev));
    let hash = record_hash(fields);
    fields.insert("hash".into(), json!(hash));
    Ok(format!("{}\n", Value::Object(fields.clone())))
}

fn write_line(file: &mut File, line: &str, durable: bool) -> Result<(), String> {
    file.write_all(line.as_bytes()).map_err(|e| e.to_string())?;
    file.flush().map_err(|e| e.to_string())?;
    if durable {
        file.sync_data().map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// How much of the file's end is read to find the last record.
const TAIL_WINDOW: u64 = 64 * 1024;

/// The seq and hash of the file's last record (`None`: no record yet). `Err` names the
/// byte offset of a last line that cannot be read: longer than the read window, not
/// UTF-8, not a record.
fn last_record(file: &mut File) -> Result<Option<(u64, String)>, String> {
    use std::io::{Read, Seek, SeekFrom};
    let io = |e: std::io::Error| format!("cannot read the last record: {e}");
    let len = file.seek(SeekFrom::End(0)).map_err(io)?;
    let start = len.saturating_sub(TAIL_WINDOW);
    file.seek(SeekFrom::Start(start)).map_err(io)?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).map_err(io)?;
    file.seek(SeekFrom::End(0)).map_err(io)?;
    let end = tail.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(0, |i| i + 1);
    if end == 0 && start == 0 {
        return Ok(None);
    }
    let refuse = |what: String| {
        format!(
            "{what}; refusing to restart the chain at seq 1 (move the file aside or repair it, then `sshwarden audit verify`)"
        )
    };
    let from = match tail[..end].iter().rposition(|b| *b == b'\n') {
        Some(nl) => nl + 1,
        None if start == 0 => 0,
        None => {
            return Err(refuse(format!(
                "the last record starts before byte offset {start}: longer than the {TAIL_WINDOW}-byte read window"
            )));
        }
    };
    let at = start + from as u64;
    let bad = |what: &str| refuse(format!("the last record at byte offset {at} {what}"));
    let line = std::str::from_utf8(&tail[from..end]).map_err(|_| bad("is not valid UTF-8 (a cut character?)"))?;
    let v: Value = serde_json::from_str(line).map_err(|e| bad(&format!("is not a JSON record ({e})")))?;
    match (v["seq"].as_u64(), v["hash"].as_str()) {
        (Some(seq), Some(hash)) => Ok(Some((seq, hash.to_owned()))),
        _ => Err(bad("has no seq or hash")),
    }
}

impl Audit {
    /// Task ids with a `task_start` and no `task_end` in the log: lost when we stopped.
    pub fn unfinished_tasks(path: &Path) -> Vec<Value> {
        let Ok(f) = File::open(path) else {
            return Vec::new();
        };
        let mut open: Vec<Value> = Vec::new();
        for v in BufReader::new(f).lines().map_while(Result::ok).filter_map(|l| serde_json::from_str::<Value>(&l).ok())
        {
            match v["event"].as_str() {
                Some("task_start") => open.push(v),
                Some("task_end") => open.retain(|s| s["task_id"] != v["task_id"]),
                _ => {}
            }
        }
        open
    }
}

fn iso8601_now() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Checks the chain of `path`; `Err` names the first bad record.
pub fn verify(path: &Path) -> Result<u64, String> {
    let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let lines = BufReader::new(f).lines().enumerate().map(|(i, l)| (i + 1, l.map_err(|e| e.to_string())));
    verify_lines(lines, false)
}

/// Checks the copy a syslog collector wrote: the JSON record is what follows the first `{`
/// of each line (lines without one are not records). At-least-once delivery may repeat
/// records (same seq, same hash): they are skipped. The copy may start mid-chain (shipping
/// enabled later, a rotated file); from there on the chain must be whole.
pub fn verify_syslog(path: &Path) -> Result<u64, String> {
    let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let lines = BufReader::new(f).lines().enumerate().filter_map(|(i, l)| match l {
        Ok(l) => l.find('{').map(|at| (i + 1, Ok(l[at..].trim_end().to_owned()))),
        Err(e) => Some((i + 1, Err(e.to_string()))),
    });
    verify_lines(lines, true)
}

pub(crate) fn verify_lines(
    lines: impl Iterator<Item = (usize, Result<String, String>)>,
    remote: bool,
) -> Result<u64, String> {
    let mut prev = GENESIS.to_owned();
    let mut expect_seq = if remote { None } else { Some(1) };
    let mut seen: std::collections::HashMap<u64, String> = std::collections::HashMap::new();
    let mut count = 0;
    for (n, line) in lines {
        let line = line.map_err(|e| format!("line {n}: {e}"))?;
        let Ok(Value::Object(mut rec)) = serde_json::from_str::<Value>(&line) else {
            return Err(format!("line {n}: not a JSON object (inserted or corrupted)"));
        };
        let seq = rec.get("seq").and_then(Value::as_u64).ok_or(format!("line {n}: no seq"))?;
        if remote
            && let Some(h) = seen.get(&seq)
            && rec.get("hash").and_then(Value::as_str) == Some(h.as_str())
        {
            continue;
        }
        if let Some(want) = expect_seq
            && seq != want
        {
            return Err(format!("line {n}: seq {seq}, expected {want} (record dropped, inserted or reordered)"));
        }
        let hash =
            rec.remove("hash").and_then(|h| h.as_str().map(str::to_owned)).ok_or(format!("line {n}: no hash"))?;
        if count == 0 && remote {
            // A copy that starts mid-chain is anchored on its first record's `prev`.
            prev = rec.get("prev").and_then(Value::as_str).unwrap_or(GENESIS).to_owned();
        }
        if remote {
            seen.insert(seq, hash.clone());
        }
        if rec.get("prev").and_then(Value::as_str) != Some(prev.as_str()) {
            return Err(format!(
                "line {n} (seq {seq}): prev does not match the previous record's hash (record dropped, inserted or reordered)"
            ));
        }
        if record_hash(&rec) != hash {
            return Err(format!("line {n} (seq {seq}): hash mismatch (record edited)"));
        }
        prev = hash;
        expect_seq = Some(seq + 1);
        count += 1;
    }
    Ok(count)
}
