//! SSH execution: the only module that names russh.
//!
//! Owns: connecting to exactly the precheck's address, strict host-key verification
//! (`known_hosts.rs`), authentication (`auth.rs`), the connection pool with per-connection
//! session limits (`pool.rs`) and command execution with drain, signals and bounded waits
//! (`exec.rs`), file transfer over SFTP (`sftp.rs`). Never decides policy and never
//! re-resolves a name.

mod auth;
mod connect;
mod exec;
pub mod known_hosts;
mod pool;
mod sftp;

pub use auth::certificate_window;
pub use exec::{ExecOutcome, Input, Sink};
pub use pool::{Destination, Hop, Pool, PoolSettings};
pub use sftp::{Sftp, Transferred};

use std::net::SocketAddr;
use std::path::PathBuf;

use russh::keys::{HashAlg, PublicKey, PublicKeyOrCertificate};

use known_hosts::Verdict;

#[derive(Debug, Clone, thiserror::Error)]
pub enum SshError {
    #[error("connect to {addr} failed: {reason}")]
    Connect { addr: SocketAddr, reason: String },
    #[error("connect to {addr} timed out after {secs} s (TCP + SSH handshake)")]
    ConnectTimeout { addr: SocketAddr, secs: u64 },
    #[error("connected peer {got} is not the checked address {want}")]
    PeerMismatch { want: SocketAddr, got: SocketAddr },
    #[error(
        "unknown host key for {name}: {fingerprint} is not in {path}. Review it (e.g. `ssh-keyscan -p {port} {host}`) and add this line if it is right:\n{line}"
    )]
    UnknownHostKey { name: String, host: String, port: u16, fingerprint: String, path: String, line: String },
    #[error(
        "HOST KEY CHANGED for {name}: offered {fingerprint}, but {path} lines {lines:?} list other keys. This may be an impostor; refusing to connect"
    )]
    HostKeyChanged { name: String, fingerprint: String, path: String, lines: Vec<usize> },
    #[error("host key {fingerprint} of {name} is revoked by {path} line {line}")]
    HostKeyRevoked { name: String, fingerprint: String, path: String, line: usize },
    #[error("cannot read known_hosts {path}: {reason}")]
    KnownHosts { path: String, reason: String },
    #[error("SSH handshake with {addr} failed: {reason}")]
    Handshake { addr: SocketAddr, reason: String },
    #[error("authentication as {user:?} failed: {tried}")]
    Auth { user: String, tried: String },
    #[error("cannot open a session channel: {0}")]
    Channel(String),
    /// An SFTP request failed (names the request and the path).
    #[error("{0}")]
    Sftp(String),
    #[error("connection lost: {0}")]
    Disconnected(String),
    /// A jump host on the way failed (connect, host key, auth, or it refused to forward).
    /// `unreachable`: the jump host itself could not be reached.
    #[error("via jump host {hop}: {reason}")]
    Hop { hop: String, reason: String, unreachable: bool },
}

impl SshError {
    /// Names the jump host this error happened at, unless an inner hop already did.
    pub fn at_hop(self, hop: &str) -> Self {
        match self {
            e @ SshError::Hop { .. } => e,
            e => SshError::Hop { hop: hop.to_owned(), unreachable: e.is_unreachable(), reason: e.to_string() },
        }
    }

    /// The host (or a jump host on the way) could not be reached: nothing was refused, nothing
    /// ran. Fan-outs report these hosts as `unreachable`.
    pub fn is_unreachable(&self) -> bool {
        match self {
            SshError::Connect { .. } | SshError::ConnectTimeout { .. } => true,
            SshError::Hop { unreachable, .. } => *unreachable,
            _ => false,
        }
    }
}

/// A task ended by an SSH error: its kind by the error's type (unreachable or not).
impl From<&SshError> for crate::tasks::Failure {
    fn from(e: &SshError) -> Self {
        use crate::tasks::FailureKind;
        let kind = if e.is_unreachable() { FailureKind::Unreachable } else { FailureKind::Error };
        Self::new(kind, e.to_string())
    }
}

/// Errors of the russh handler: russh's own, or our host-key refusal with its details.
#[derive(Debug)]
pub enum HandlerError {
    Russh(russh::Error),
    HostKey(SshError),
}

impl From<russh::Error> for HandlerError {
    fn from(e: russh::Error) -> Self {
        Self::Russh(e)
    }
}

/// Verifies the server's key against known_hosts under the configured name and port.
pub struct Verifier {
    pub host: String,
    pub port: u16,
    pub known_hosts: PathBuf,
}

impl Verifier {
    fn verify(&self, offered: &PublicKeyOrCertificate) -> Result<(), SshError> {
        let path = self.known_hosts.display().to_string();
        let text = std::fs::read_to_string(&self.known_hosts)
            .map_err(|e| SshError::KnownHosts { path: path.clone(), reason: e.to_string() })?;
        let name = known_hosts::lookup_name(&self.host, self.port);
        let (verdict, key) = match offered {
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                (known_hosts::check_key(&text, &self.host, self.port, key.key_data()), key.clone())
            }
            PublicKeyOrCertificate::Certificate(cert) => (
                known_hosts::check_certificate(&text, &self.host, self.port, cert),
                PublicKey::from(cert.public_key().clone()),
            ),
        };
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        match verdict {
            Verdict::Trusted { .. } | Verdict::TrustedByCa { .. } => Ok(()),
            Verdict::Revoked { line } => Err(SshError::HostKeyRevoked { name, fingerprint, path, line }),
            Verdict::Changed { lines } => Err(SshError::HostKeyChanged { name, fingerprint, path, lines }),
            Verdict::Unknown => {
                let line = format!("{name} {}", key.to_openssh().unwrap_or_default());
                Err(SshError::UnknownHostKey {
                    name,
                    host: self.host.clone(),
                    port: self.port,
                    fingerprint,
                    path,
                    line,
                })
            }
        }
    }
}

impl russh::client::Handler for Verifier {
    type Error = HandlerError;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        self.verify(key).map(|()| true).map_err(HandlerError::HostKey)
    }
}
