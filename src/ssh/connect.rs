//! Opening one SSH connection: TCP to exactly the checked address (or a `direct-tcpip`
//! channel of a jump host's connection), the peer check, the handshake with strict host keys
//! for the target's own known_hosts entry, and authentication, all within one timeout.
//!
//! Owns: `connect`. Never pools (that is `pool.rs`) and never re-resolves a name.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use russh::client::{self, Handle};
use tokio::net::TcpStream;

use std::borrow::Cow;

use russh::cipher;

use super::pool::Conn;
use super::{HandlerError, SshError, Verifier, auth};
use crate::config::Credential;
use crate::net::Target;

/// TCP to exactly `target.addr` (or a `direct-tcpip` channel of `via` to it), verify the
/// peer, SSH handshake with strict host keys for the target's own entry, authenticate; all
/// within `timeout`.
pub(super) async fn connect(
    target: &Target,
    cred: &Credential,
    known_hosts: &Path,
    timeout: Duration,
    keepalive: Duration,
    via: Option<&Arc<Conn>>,
) -> Result<Handle<Verifier>, SshError> {
    let addr = target.addr;
    auth::check_certificate(cred)?;
    let attempt = async {
        let config = Arc::new(client::Config {
            keepalive_interval: Some(keepalive),
            keepalive_max: 3,
            nodelay: true,
            preferred: preferred(),
            ..Default::default()
        });
        let verifier =
            Verifier { host: target.host_name.clone(), port: target.port, known_hosts: known_hosts.to_path_buf() };
        let handshake = |e| match e {
            HandlerError::HostKey(e) => e,
            HandlerError::Russh(e) => SshError::Handshake { addr, reason: e.to_string() },
        };
        let mut handle = match via {
            Some(hop) => {
                // The bastion dials exactly the checked address; its refusal (AllowTcpForwarding
                // no, PermitOpen) is reported as the hop's.
                let dial = target.remote_name.clone().unwrap_or_else(|| addr.ip().to_string());
                let channel = hop
                    .handle
                    .channel_open_direct_tcpip(dial, u32::from(addr.port()), "127.0.0.1", 0)
                    .await
                    .map_err(|e| SshError::Hop {
                        hop: hop.alias.clone(),
                        unreachable: false,
                        reason: match e {
                            russh::Error::ChannelOpenFailure(r) => format!(
                                "refused to forward to {addr} ({r:?}; check AllowTcpForwarding and PermitOpen on the jump host)"
                            ),
                            other => format!("cannot open a tunnel to {addr}: {other}"),
                        },
                    })?;
                client::connect_stream(config, channel.into_stream(), verifier).await.map_err(handshake)?
            }
            None => {
                let tcp =
                    TcpStream::connect(addr).await.map_err(|e| SshError::Connect { addr, reason: e.to_string() })?;
                let peer = tcp.peer_addr().map_err(|e| SshError::Connect { addr, reason: e.to_string() })?;
                if peer != addr {
                    return Err(SshError::PeerMismatch { want: addr, got: peer });
                }
                let _ = tcp.set_nodelay(true);
                client::connect_stream(config, tcp, verifier).await.map_err(handshake)?
            }
        };
        auth::authenticate(&mut handle, cred).await?;
        Ok(handle)
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| SshError::ConnectTimeout { addr, secs: timeout.as_secs() })?
}

/// AES-GCM first where the CPU has AES and carry-less multiply instructions (it then streams
/// faster than chacha20-poly1305, measured by `benches/compare.rs`), russh's order otherwise.
/// Only the order changes: the same safe set is offered either way.
fn preferred() -> russh::Preferred {
    const AES_FIRST: &[cipher::Name] = &[
        cipher::AES_256_GCM,
        cipher::CHACHA20_POLY1305,
        cipher::AES_256_CTR,
        cipher::AES_192_CTR,
        cipher::AES_128_CTR,
    ];
    #[cfg(target_arch = "x86_64")]
    let aes = std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq");
    #[cfg(target_arch = "aarch64")]
    let aes = std::arch::is_aarch64_feature_detected!("aes");
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let aes = false;
    match aes {
        true => russh::Preferred { cipher: Cow::Borrowed(AES_FIRST), ..russh::Preferred::DEFAULT },
        false => russh::Preferred::DEFAULT,
    }
}
