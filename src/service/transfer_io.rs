//! The byte-moving half of a transfer task: resolve the remote path on the host, judge the
//! resolved path again, then stream between SFTP and the local side.
//!
//! Owns: the symlink check (`realpath` → `judge_transfer` must still permit it), the local
//! side's atomicity for downloads to a file (temporary file in the same directory, fsync,
//! rename), progress in the task's `detail`, and the result object. Never decides the first
//! policy question (`transfer.rs` did) and never names russh.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::config::Config;
use crate::policy::files::Direction;
use crate::service::transfer::{Local, PreparedTransfer, inline_content};
use crate::ssh::Sftp;
use crate::tasks::{Failure, FailureKind, TaskContext};

/// Runs the transfer; `Ok` is the result object (the task's detail), `Err` says why not
/// (`FailureKind::Denied` when the path the host resolved is outside the rules).
pub async fn run(sftp: &Sftp, cfg: &Config, p: &PreparedTransfer, ctx: &TaskContext) -> Result<Value, Failure> {
    let req = p.request();
    let path = req.remote_path.as_str();
    // Resolve what the host will really touch: the file for a download, the directory
    // (the file may not exist yet) for an upload.
    let resolved = match req.direction {
        Direction::Read => sftp.realpath(path).await.map_err(|e| e.to_string())?,
        Direction::Write => {
            let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
            let dir = if dir.is_empty() { "/" } else { dir };
            let real_dir = sftp.realpath(dir).await.map_err(|e| e.to_string())?;
            let joined = format!("{}/{name}", real_dir.trim_end_matches('/'));
            // An existing symlink at the target itself is followed by the rename too.
            match sftp.realpath(path).await {
                Ok(real) if real != joined => real,
                _ => joined,
            }
        }
    };
    // The resolved path gets the full decision, not just "not denied": a link from an
    // `allow` tree into an `ask` tree must not skip the human, and the tighter `max_bytes`
    // of the two paths applies.
    let mut max_bytes = p.max_bytes();
    if resolved != path {
        let again = cfg.policy.judge_transfer(p.host(), req.direction, &resolved);
        if again.decision.ask {
            return Err(Failure::new(
                FailureKind::Denied,
                format!(
                    "{path} resolves on the host to {resolved}, which needs a human's approval ({}); no approval covers the resolved path, so ask for {resolved} itself",
                    again.decision.reason
                ),
            ));
        }
        if !again.decision.allowed {
            return Err(Failure::new(
                FailureKind::Denied,
                format!(
                    "{path} resolves on the host to {resolved}, which the policy does not allow: {}",
                    again.decision.reason
                ),
            ));
        }
        max_bytes = match (max_bytes, again.max_bytes) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    let total = match req.direction {
        Direction::Read => sftp.stat(&resolved).await.and_then(|a| a.size),
        Direction::Write => match &req.local {
            Local::Content(c) => Some(c.len() as u64),
            Local::File(_) => match p.local_path() {
                Some(l) => tokio::fs::metadata(l).await.ok().map(|m| m.len()),
                None => None,
            },
            Local::Inline => None,
        },
    };
    let base = json!({ "direction": req.direction.name(), "remote_path": path, "resolved_path": resolved, "total_bytes": total });
    let last_report = AtomicU64::new(0);
    let progress = |n: u64| {
        // Report every MiB, not every chunk: watchers wake on each detail change.
        if n - last_report.load(Ordering::Relaxed) >= 1 << 20 {
            last_report.store(n, Ordering::Relaxed);
            let mut d = base.clone();
            d["bytes_done"] = json!(n);
            ctx.task().set_detail(d);
        }
    };
    let mut result = base.clone();
    let moved = match (req.direction, &req.local) {
        (Direction::Write, Local::Content(bytes)) => {
            let mut reader: &[u8] = bytes.as_slice();
            sftp.upload(&resolved, &mut reader, req.mode, max_bytes, &progress, &ctx.cancel).await
        }
        (Direction::Write, _) => {
            let local = p.local_path().ok_or("upload needs content, content_base64 or local_path")?;
            let mut file = tokio::fs::File::open(local).await.map_err(|e| format!("{}: {e}", local.display()))?;
            sftp.upload(&resolved, &mut file, req.mode, max_bytes, &progress, &ctx.cancel).await
        }
        (Direction::Read, Local::File(_)) => {
            let local = p.local_path().ok_or("download to a file needs local_path")?;
            let r = download_to_file(sftp, &resolved, local, max_bytes, &progress, ctx).await?;
            result["local_path"] = json!(local.display().to_string());
            Ok(r)
        }
        (Direction::Read, _) => {
            let mut buf: Vec<u8> = Vec::new();
            let r = sftp.download(&resolved, &mut buf, max_bytes, &progress, &ctx.cancel).await;
            if r.is_ok() {
                let (content, encoding) = inline_content(buf);
                result["content"] = json!(content);
                result["encoding"] = json!(encoding);
            }
            r
        }
    };
    let moved = moved.map_err(|e| e.to_string())?;
    result["bytes"] = json!(moved.bytes);
    result["bytes_done"] = json!(moved.bytes);
    result["sha256"] = json!(moved.sha256);
    Ok(result)
}

/// Download into a temporary file next to `local`, fsync, rename over it; removed on failure.
async fn download_to_file(
    sftp: &Sftp,
    remote: &str,
    local: &std::path::Path,
    max_bytes: Option<u64>,
    progress: &(dyn Fn(u64) + Send + Sync),
    ctx: &TaskContext,
) -> Result<crate::ssh::Transferred, String> {
    let name = local.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let temp = local.with_file_name(format!(".{name}.sshwarden-{}", hex::encode(rand::random::<[u8; 8]>())));
    let attempt = async {
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .await
            .map_err(|e| format!("{}: {e}", temp.display()))?;
        let moved =
            sftp.download(remote, &mut file, max_bytes, progress, &ctx.cancel).await.map_err(|e| e.to_string())?;
        file.flush().await.map_err(|e| e.to_string())?;
        file.sync_all().await.map_err(|e| e.to_string())?;
        tokio::fs::rename(&temp, local).await.map_err(|e| format!("rename onto {}: {e}", local.display()))?;
        Ok(moved)
    };
    let r = attempt.await;
    if r.is_err() {
        let _ = tokio::fs::remove_file(&temp).await;
    }
    r
}
