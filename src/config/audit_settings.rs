//! The checked `audit:` settings: the audit file, command redaction, and where records
//! are shipped (`audit.syslog`: transport, facility, spool).
//!
//! Owns: those types and the RFC 5424 facility table. Never constructed from unchecked
//! input outside `validate.rs`; never writes a record (that is `audit/`).

use std::path::PathBuf;

use serde::Serialize;

/// Where audit records go.
#[derive(Debug, Clone, Serialize)]
pub struct AuditSettings {
    pub path: PathBuf,
    pub redact_commands: bool,
    pub syslog: Option<SyslogSettings>,
}

/// Where audit records are shipped, checked (`audit.syslog`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyslogSettings {
    pub transport: SyslogTransport,
    pub app_name: String,
    /// RFC 5424 facility code (0-23).
    pub facility: u8,
    pub required: bool,
    pub spool_bytes: u64,
}

/// How to reach the collector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyslogTransport {
    /// `HOST:PORT`, octet-counted framing.
    Tcp(String),
    /// `HOST:PORT` and the CA file, octet-counted framing inside TLS.
    TcpTls(String, PathBuf),
    Udp(String),
    Unix(PathBuf),
}

/// RFC 5424 facility names and codes.
pub const SYSLOG_FACILITIES: [(&str, u8); 20] = [
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];
