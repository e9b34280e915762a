//! Audit records shipped off-host: every line of the JSONL audit file also goes to a syslog
//! collector as one RFC 5424 message whose MSG is the line exactly as written (with its
//! `seq` and `hash`), so the remote copy verifies with `sshwarden audit verify --from-syslog`.
//!
//! Delivery is in order and at least once. `Audit::record` appends each line, under the
//! audit file's lock, to a spool next to the audit file (`<audit>.syslog-spool`); one
//! shipper per spool (an exclusive lock on `<audit>.syslog-spool.offset`, so a server and a
//! `sshwarden call` sharing the log never both send) reads from the persisted offset, sends,
//! and advances the offset only once the collector has it (TCP: written and flushed; UDP and
//! unix datagrams: sent). A fully sent spool is truncated under the audit lock. A crash
//! between sending and saving the offset resends: duplicates, never gaps.
//!
//! Plain TCP syslog has no acknowledgements (RFC 6587): a record written just as the
//! collector dies can be lost in its socket buffer. Before each batch the connection is
//! probed for EOF, which narrows that window to the batch itself.
//!
//! Owns: the spool, RFC 5424 framing, the shipper task and its connections. Never decides
//! whether a command runs (the audit does, from `Spool::pending`), never logs a record.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{SyslogSettings, SyslogTransport};

/// Most bytes one shipping round reads from the spool.
const BATCH_BYTES: usize = 1 << 20;

/// The on-disk queue of lines the collector has not taken yet.
pub struct Spool {
    pub settings: SyslogSettings,
    audit_path: PathBuf,
    path: PathBuf,
    offset_path: PathBuf,
    pub notify: Notify,
}

impl Spool {
    pub fn new(audit_path: &Path, settings: SyslogSettings) -> Self {
        let name = |suffix: &str| {
            let mut p = audit_path.as_os_str().to_owned();
            p.push(suffix);
            PathBuf::from(p)
        };
        Self {
            settings,
            audit_path: audit_path.to_path_buf(),
            path: name(".syslog-spool"),
            offset_path: name(".syslog-spool.offset"),
            notify: Notify::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn offset(&self) -> u64 {
        std::fs::read_to_string(&self.offset_path).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
    }

    /// Bytes written to the spool and not yet taken by the collector.
    pub fn pending(&self) -> u64 {
        let len = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        len.saturating_sub(self.offset())
    }

    /// Appends one line; the caller holds the audit lock, so the spool keeps the file's order.
    pub fn append(&self, line: &str, durable: bool) -> std::io::Result<()> {
        let mut f = OpenOptions::new().create(true).append(true).open(&self.path)?;
        f.write_all(line.as_bytes())?;
        if durable {
            f.sync_data()?;
        }
        self.notify.notify_one();
        Ok(())
    }
}

/// One RFC 5424 message for an audit line (without the trailing newline).
pub fn format_message(settings: &SyslogSettings, hostname: &str, line: &str) -> String {
    let record: Value = serde_json::from_str(line).unwrap_or(Value::Null);
    let ts = record["ts"].as_str().map_or_else(|| "-".to_owned(), rfc5424_timestamp);
    let msgid: String =
        record["event"].as_str().unwrap_or("-").chars().filter(char::is_ascii_graphic).take(32).collect();
    // Severity: warning for refusals and failures, informational otherwise.
    let severity = match record["event"].as_str() {
        Some("auth_failed" | "network_denied") => 4,
        Some("decision") if record["allowed"] == false => 4,
        _ => 6,
    };
    let pri = u16::from(settings.facility) * 8 + severity;
    let msgid = if msgid.is_empty() { "-".to_owned() } else { msgid };
    format!("<{pri}>1 {ts} {hostname} {} {} {msgid} - {}", settings.app_name, std::process::id(), line.trim_end())
}

/// RFC 5424 allows at most 6 fractional digits (TIME-SECFRAC); the audit keeps 9.
/// Collectors misparse more (rsyslog garbles the timestamp).
fn rfc5424_timestamp(ts: &str) -> String {
    let Some(dot) = ts.find('.') else { return ts.to_owned() };
    let frac_end = ts[dot + 1..].find(|c: char| !c.is_ascii_digit()).map_or(ts.len(), |i| dot + 1 + i);
    let keep = (frac_end - dot - 1).min(6);
    format!("{}{}", &ts[..dot + 1 + keep], &ts[frac_end..])
}

fn local_hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String = name.trim().chars().filter(char::is_ascii_graphic).take(255).collect();
    if name.is_empty() { "-".into() } else { name }
}

enum Conn {
    Tcp(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
    Udp(tokio::net::UdpSocket),
    UnixDgram(tokio::net::UnixDatagram),
    UnixStream(tokio::net::UnixStream),
}

impl Conn {
    async fn open(transport: &SyslogTransport) -> Result<Self, String> {
        match transport {
            SyslogTransport::Tcp(addr) => {
                tokio::net::TcpStream::connect(addr).await.map(Conn::Tcp).map_err(|e| format!("tcp {addr}: {e}"))
            }
            SyslogTransport::TcpTls(addr, ca) => tls_connect(addr, ca).await.map(|s| Conn::Tls(Box::new(s))),
            SyslogTransport::Udp(addr) => {
                let sock = tokio::net::UdpSocket::bind(if addr.starts_with('[') { "[::]:0" } else { "0.0.0.0:0" })
                    .await
                    .map_err(|e| format!("udp bind: {e}"))?;
                sock.connect(addr).await.map_err(|e| format!("udp {addr}: {e}"))?;
                Ok(Conn::Udp(sock))
            }
            SyslogTransport::Unix(path) => {
                let dgram = tokio::net::UnixDatagram::unbound().map_err(|e| e.to_string())?;
                match dgram.connect(path) {
                    Ok(()) => Ok(Conn::UnixDgram(dgram)),
                    Err(_) => tokio::net::UnixStream::connect(path)
                        .await
                        .map(Conn::UnixStream)
                        .map_err(|e| format!("unix {}: {e}", path.display())),
                }
            }
        }
    }

    /// A stream whose peer already closed reads EOF: reconnect before writing into it.
    fn peer_closed(&self) -> bool {
        let tcp = match self {
            Conn::Tcp(s) => s,
            Conn::Tls(s) => s.get_ref().0,
            _ => return false,
        };
        let mut probe = [0u8; 1];
        match tcp.try_read(&mut probe) {
            Ok(n) => n == 0,
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        }
    }

    async fn send(&mut self, message: &str) -> std::io::Result<()> {
        // Octet-counted framing (RFC 6587 3.4.1) on streams; one datagram otherwise.
        let framed = || format!("{} {message}", message.len());
        match self {
            Conn::Tcp(s) => s.write_all(framed().as_bytes()).await,
            Conn::Tls(s) => s.write_all(framed().as_bytes()).await,
            Conn::UnixStream(s) => s.write_all(framed().as_bytes()).await,
            Conn::Udp(s) => s.send(message.as_bytes()).await.map(|_| ()),
            Conn::UnixDgram(s) => s.send(message.as_bytes()).await.map(|_| ()),
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Tcp(s) => s.flush().await,
            Conn::Tls(s) => s.flush().await,
            Conn::UnixStream(s) => s.flush().await,
            Conn::Udp(_) | Conn::UnixDgram(_) => Ok(()),
        }
    }
}

async fn tls_connect(addr: &str, ca: &Path) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let certs = rustls_pki_types::CertificateDer::pem_file_iter(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("{}: {e}", ca.display()))?;
        roots.add(cert).map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).trim_start_matches('[').trim_end_matches(']');
    let name = rustls_pki_types::ServerName::try_from(host.to_owned()).map_err(|e| format!("{host}: {e}"))?;
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("tcp+tls {addr}: {e}"))?;
    tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.map_err(|e| format!("tls {addr}: {e}"))
}

/// Sends everything spooled; returns when the spool is empty or on the first error.
/// `Ok(false)`: another process holds the shipper lock.
async fn ship(spool: &Spool, conn: &mut Option<Conn>, hostname: &str) -> Result<bool, String> {
    let lock = OpenOptions::new().create(true).read(true).write(true).truncate(false).open(&spool.offset_path);
    let mut lock = lock.map_err(|e| format!("{}: {e}", spool.offset_path.display()))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(false),
        Err(std::fs::TryLockError::Error(e)) => return Err(e.to_string()),
    }
    let result = ship_locked(spool, &mut lock, conn, hostname).await;
    let _ = lock.unlock();
    result.map(|()| true)
}

async fn ship_locked(spool: &Spool, offset_file: &mut File, conn: &mut Option<Conn>, host: &str) -> Result<(), String> {
    loop {
        let offset = spool.offset();
        let Ok(mut f) = File::open(&spool.path) else { return Ok(()) };
        let len = f.metadata().map_err(|e| e.to_string())?.len();
        if offset >= len {
            return compact(spool, offset_file, len);
        }
        f.seek(SeekFrom::Start(offset)).map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        f.take(BATCH_BYTES as u64).read_to_end(&mut buf).map_err(|e| e.to_string())?;
        // Only whole lines; a record longer than a batch is read whole on its own.
        let end = match buf.iter().rposition(|b| *b == b'\n') {
            Some(i) => i + 1,
            None => return Ok(()),
        };
        if conn.as_ref().is_some_and(Conn::peer_closed) {
            *conn = None;
        }
        if conn.is_none() {
            *conn = Some(Conn::open(&spool.settings.transport).await?);
        }
        let Some(c) = conn.as_mut() else { return Ok(()) };
        for line in String::from_utf8_lossy(&buf[..end]).lines().filter(|l| !l.is_empty()) {
            let sent = c.send(&format_message(&spool.settings, host, line)).await;
            sent.map_err(|e| format!("send: {e}"))?;
        }
        c.flush().await.map_err(|e| format!("flush: {e}"))?;
        write_offset(offset_file, offset + end as u64)?;
    }
}

fn write_offset(file: &mut File, offset: u64) -> Result<(), String> {
    file.set_len(0).and_then(|()| file.seek(SeekFrom::Start(0))).map_err(|e| e.to_string())?;
    file.write_all(offset.to_string().as_bytes()).and_then(|()| file.sync_data()).map_err(|e| e.to_string())
}

/// Truncates a fully sent spool, under the audit lock so no append slips in between.
fn compact(spool: &Spool, offset_file: &mut File, sent: u64) -> Result<(), String> {
    if sent == 0 {
        return Ok(());
    }
    let Ok(audit) = File::open(&spool.audit_path) else { return Ok(()) };
    audit.lock().map_err(|e| e.to_string())?;
    let len = std::fs::metadata(&spool.path).map_or(0, |m| m.len());
    let result = if len == sent {
        OpenOptions::new()
            .write(true)
            .open(&spool.path)
            .and_then(|f| f.set_len(0))
            .map_err(|e| e.to_string())
            .and_then(|()| write_offset(offset_file, 0))
    } else {
        Ok(())
    };
    let _ = audit.unlock();
    result
}

/// Runs until `stop`, shipping on every append and every half second; then one bounded
/// last round.
pub async fn run_shipper(spool: Arc<Spool>, stop: CancellationToken) {
    let hostname = local_hostname();
    let mut conn = None;
    let mut backoff = Duration::from_millis(250);
    let mut warned = false;
    loop {
        match ship(&spool, &mut conn, &hostname).await {
            Ok(_) => {
                backoff = Duration::from_millis(250);
                if warned {
                    tracing::info!(target: "sshwarden::audit", "syslog collector reachable again; spool drained");
                    warned = false;
                }
            }
            Err(e) => {
                conn = None;
                if !warned {
                    tracing::warn!(target: "sshwarden::audit", pending = spool.pending(), "syslog collector: {e}; records stay spooled");
                    warned = true;
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
        let wait = if warned { backoff } else { Duration::from_millis(500) };
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = spool.notify.notified(), if !warned => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), ship(&spool, &mut conn, &hostname)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SyslogSettings {
        SyslogSettings {
            transport: SyslogTransport::Tcp("127.0.0.1:514".into()),
            app_name: "sshwarden".into(),
            facility: 10,
            required: false,
            spool_bytes: 1 << 20,
        }
    }

    #[test]
    fn messages_are_rfc5424_with_the_line_as_msg() {
        let line = r#"{"event":"task_start","seq":3,"ts":"2026-11-29T08:10:29.123456789Z"}"#;
        let m = format_message(&settings(), "vm", &format!("{line}\n"));
        let pid = std::process::id();
        assert_eq!(m, format!("<86>1 2026-11-29T08:10:29.123456Z vm sshwarden {pid} task_start - {line}"));
        let denied = format_message(&settings(), "vm", r#"{"event":"decision","allowed":false}"#);
        assert!(denied.starts_with("<84>1 - vm "), "{denied}");
    }

    #[test]
    fn timestamps_keep_at_most_six_fraction_digits() {
        assert_eq!(rfc5424_timestamp("2026-11-29T08:10:29.123456789Z"), "2026-11-29T08:10:29.123456Z");
        assert_eq!(rfc5424_timestamp("2026-11-29T08:10:29.12+01:00"), "2026-11-29T08:10:29.12+01:00");
        assert_eq!(rfc5424_timestamp("2026-11-29T08:10:29Z"), "2026-11-29T08:10:29Z");
    }
}
