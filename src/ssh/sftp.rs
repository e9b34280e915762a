//! File transfer over SFTP (russh-sftp) on a pooled connection's session channel.
//!
//! Owns: the SFTP subsystem session, `realpath`, the atomic upload (a temporary file in
//! the target's directory, fsync, `posix-rename@openssh.com` over the target; the
//! temporary file removed on any failure) and the streaming download. Both pipeline up to
//! `IN_FLIGHT` requests of `CHUNK` bytes, hash while streaming and hold at most
//! `IN_FLIGHT × CHUNK` bytes, whatever the file's size. Never judges a path (the caller did).

use std::sync::Arc;

use futures::stream::{FuturesOrdered, StreamExt};
use russh_sftp::client::RawSftpSession;
use russh_sftp::protocol::{FileAttributes, OpenFlags};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use super::SshError;
use super::pool::{Conn, Destination, Pool};

/// Bytes per read/write request (OpenSSH's sftp-server accepts up to 256 KiB).
const CHUNK: usize = 64 * 1024;
/// Requests in flight at once.
const IN_FLIGHT: usize = 16;
const POSIX_RENAME: &str = "posix-rename@openssh.com";
const FSYNC: &str = "fsync@openssh.com";

/// What went over the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transferred {
    pub bytes: u64,
    pub sha256: String,
}

/// An open SFTP session; holds its connection's session slot until dropped.
pub struct Sftp {
    session: RawSftpSession,
    posix_rename: bool,
    fsync: bool,
    _conn: Arc<Conn>,
    _permit: OwnedSemaphorePermit,
}

fn sftp_error(what: &str, path: &str, e: impl std::fmt::Display) -> SshError {
    SshError::Sftp(format!("SFTP {what} {path}: {e}"))
}

/// A failed write, with a hint when its status says so: OpenSSH answers a full disk with
/// the generic SSH_FX_FAILURE (judged by the status code, not the message).
fn write_error(path: &str, e: russh_sftp::client::error::Error) -> SshError {
    let full = matches!(&e, russh_sftp::client::error::Error::Status(s) if matches!(s.status_code, russh_sftp::protocol::StatusCode::Failure));
    let hint = if full { " (the host's disk may be full)" } else { "" };
    sftp_error("write", path, format!("{e}{hint}"))
}

impl Pool {
    /// An SFTP session to `target` (through `route`). `None`: cancelled first.
    pub async fn sftp(&self, to: &Destination<'_>, cancel: &CancellationToken) -> Result<Option<Sftp>, SshError> {
        let Some((channel, conn, permit)) = self.session_channel(&to.key(), to, cancel).await? else {
            return Ok(None);
        };
        channel.request_subsystem(true, "sftp").await.map_err(|e| SshError::Channel(format!("sftp subsystem: {e}")))?;
        let session = RawSftpSession::new(channel.into_stream());
        session.set_timeout(to.connect_timeout.as_secs().max(10));
        let version = session.init().await.map_err(|e| sftp_error("init", "", e))?;
        let has = |name: &str| version.extensions.contains_key(name);
        Ok(Some(Sftp { posix_rename: has(POSIX_RENAME), fsync: has(FSYNC), session, _conn: conn, _permit: permit }))
    }
}

/// SSH wire string: u32 length, then the bytes.
fn ssh_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl Sftp {
    /// The server's canonical form of `path` (symlinks resolved).
    pub async fn realpath(&self, path: &str) -> Result<String, SshError> {
        let name = self.session.realpath(path).await.map_err(|e| sftp_error("realpath", path, e))?;
        name.files.first().map(|f| f.filename.clone()).ok_or_else(|| sftp_error("realpath", path, "no name returned"))
    }

    /// Size and permissions of `path`, if it exists.
    pub async fn stat(&self, path: &str) -> Option<FileAttributes> {
        self.session.stat(path).await.ok().map(|a| a.attrs)
    }

    /// Writes `source` to `path` atomically: a temporary file next to it, fsync, rename over
    /// it. On any failure (or cancel) the temporary file is removed and `path` is untouched.
    pub async fn upload(
        &self,
        path: &str,
        source: &mut (dyn AsyncRead + Unpin + Send),
        mode: Option<u32>,
        max_bytes: Option<u64>,
        progress: &(dyn Fn(u64) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<Transferred, SshError> {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let temp = format!("{dir}/.{name}.sshwarden-{}", hex::encode(rand::random::<[u8; 8]>()));
        // Keep the old file's permissions unless asked otherwise.
        let permissions = match mode {
            Some(m) => Some(m),
            None => self.stat(path).await.and_then(|a| a.permissions).map(|p| p & 0o7777),
        };
        let attrs = FileAttributes { permissions: Some(0o600), ..FileAttributes::empty() };
        let flags = OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::WRITE;
        let handle = self.session.open(&temp, flags, attrs).await.map_err(|e| sftp_error("create", &temp, e))?.handle;
        let written = self.fill(&handle, &temp, source, max_bytes, progress, cancel).await;
        let finished = match written {
            Ok(t) => self.finish(&handle, &temp, path, permissions).await.map(|()| t),
            Err(e) => Err(e),
        };
        if finished.is_err() {
            let _ = self.session.close(handle.as_str()).await;
            let _ = self.session.remove(temp.as_str()).await;
        }
        finished
    }

    async fn fill(
        &self,
        handle: &str,
        temp: &str,
        source: &mut (dyn AsyncRead + Unpin + Send),
        max_bytes: Option<u64>,
        progress: &(dyn Fn(u64) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<Transferred, SshError> {
        let mut hasher = Sha256::new();
        let mut offset = 0u64;
        let mut pending = FuturesOrdered::new();
        let mut eof = false;
        while !eof || !pending.is_empty() {
            if cancel.is_cancelled() {
                return Err(SshError::Sftp("upload cancelled".into()));
            }
            if !eof && pending.len() < IN_FLIGHT {
                let mut chunk = vec![0u8; CHUNK];
                let n = read_full(source, &mut chunk).await.map_err(|e| sftp_error("read source for", temp, e))?;
                chunk.truncate(n);
                if n == 0 {
                    eof = true;
                    continue;
                }
                if max_bytes.is_some_and(|max| offset + n as u64 > max) {
                    return Err(SshError::Channel(format!(
                        "upload exceeds the policy's max_bytes ({} bytes)",
                        max_bytes.unwrap_or(0)
                    )));
                }
                hasher.update(&chunk);
                pending.push_back(self.session.write(handle, offset, chunk));
                offset += n as u64;
                continue;
            }
            if let Some(r) = pending.next().await {
                r.map_err(|e| write_error(temp, e))?;
                progress(offset);
            }
        }
        Ok(Transferred { bytes: offset, sha256: hex::encode(hasher.finalize()) })
    }

    async fn finish(&self, handle: &str, temp: &str, path: &str, permissions: Option<u32>) -> Result<(), SshError> {
        if self.fsync {
            let mut data = Vec::new();
            ssh_string(&mut data, handle);
            self.session.extended(FSYNC, data).await.map_err(|e| sftp_error("fsync", temp, e))?;
        }
        if let Some(p) = permissions {
            let attrs = FileAttributes { permissions: Some(p), ..FileAttributes::empty() };
            self.session.fsetstat(handle, attrs).await.map_err(|e| sftp_error("chmod", temp, e))?;
        }
        self.session.close(handle).await.map_err(|e| sftp_error("close", temp, e))?;
        if self.posix_rename {
            let mut data = Vec::new();
            ssh_string(&mut data, temp);
            ssh_string(&mut data, path);
            self.session.extended(POSIX_RENAME, data).await.map_err(|e| sftp_error("rename onto", path, e))?;
        } else {
            // Plain SFTP rename refuses an existing target: atomic replacement needs the
            // OpenSSH extension, so say so instead of deleting first.
            self.session
                .rename(temp, path)
                .await
                .map_err(|e| sftp_error("rename onto", path, format!("{e} (the server lacks {POSIX_RENAME})")))?;
        }
        Ok(())
    }

    /// Streams `path` into `sink`; refuses a file over `max_bytes` before reading it, and
    /// stops if it grows past that while being read.
    pub async fn download(
        &self,
        path: &str,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
        max_bytes: Option<u64>,
        progress: &(dyn Fn(u64) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<Transferred, SshError> {
        let attrs = self.stat(path).await.ok_or_else(|| sftp_error("stat", path, "no such file or no permission"))?;
        if attrs.is_dir() {
            return Err(sftp_error("download", path, "is a directory"));
        }
        let size = attrs.size.unwrap_or(0);
        if let Some(max) = max_bytes.filter(|max| size > *max) {
            return Err(SshError::Sftp(format!("{path} is {size} bytes, more than the allowed {max}")));
        }
        let handle = self.session.open(path, OpenFlags::READ, FileAttributes::empty()).await;
        let handle = handle.map_err(|e| sftp_error("open", path, e))?.handle;
        let r = self.drain(&handle, path, sink, max_bytes, progress, cancel).await;
        let _ = self.session.close(handle.as_str()).await;
        r
    }

    async fn drain(
        &self,
        handle: &str,
        path: &str,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
        max_bytes: Option<u64>,
        progress: &(dyn Fn(u64) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<Transferred, SshError> {
        let mut hasher = Sha256::new();
        let mut done = 0u64;
        loop {
            // Requests go out in order from `done`; a short read restarts the pipeline
            // at the first byte not received.
            let mut pending = FuturesOrdered::new();
            for i in 0..IN_FLIGHT as u64 {
                pending.push_back(self.session.read(handle, done + i * CHUNK as u64, CHUNK as u32));
            }
            while let Some(r) = pending.next().await {
                if cancel.is_cancelled() {
                    return Err(SshError::Sftp("download cancelled".into()));
                }
                let data = match r {
                    Ok(d) => d.data,
                    Err(russh_sftp::client::error::Error::Status(s))
                        if s.status_code == russh_sftp::protocol::StatusCode::Eof =>
                    {
                        Vec::new()
                    }
                    Err(e) => return Err(sftp_error("read", path, e)),
                };
                if data.is_empty() {
                    sink.flush().await.map_err(|e| sftp_error("write local copy of", path, e))?;
                    return Ok(Transferred { bytes: done, sha256: hex::encode(hasher.finalize()) });
                }
                done += data.len() as u64;
                if let Some(max) = max_bytes.filter(|max| done > *max) {
                    return Err(SshError::Sftp(format!("{path} grew past the allowed {max} bytes while read")));
                }
                hasher.update(&data);
                sink.write_all(&data).await.map_err(|e| sftp_error("write local copy of", path, e))?;
                progress(done);
                if data.len() < CHUNK {
                    break;
                }
            }
        }
    }

    pub fn close(&self) {
        let _ = self.session.close_session();
    }
}

/// Reads until `buf` is full or the source ends; returns how much was read.
async fn read_full(source: &mut (dyn AsyncRead + Unpin + Send), buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let got = source.read(&mut buf[n..]).await?;
        if got == 0 {
            break;
        }
        n += got;
    }
    Ok(n)
}
