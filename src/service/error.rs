//! What a service call can end in besides success, classified by type (a front end maps
//! each variant to its own error kind and exit code, never by matching message text),
//! and the first check every command meets.
//!
//! Owns: `ServiceError` and `check_command`. Never decides policy or runs anything.

use crate::audit::AuditError;
use crate::config::ConfigError;
use crate::net::PrecheckError;
use crate::policy::{self, Decision};
use crate::tasks::TaskError;

/// Why a service call did not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("unknown host alias {0:?}; use ssh_list_hosts to see the inventory")]
    UnknownHost(String),
    #[error("denied by policy: {}", .0.reason)]
    Denied(Decision),
    /// An `ask` decision without a granted approval: nothing ran.
    #[error("{0}")]
    ApprovalRequired(String),
    #[error("denied by network policy: {0}")]
    Network(PrecheckError),
    #[error("refused: audit record could not be written, nothing was run ({0})")]
    Audit(AuditError),
    #[error(transparent)]
    Task(TaskError),
    #[error(transparent)]
    Config(ConfigError),
    /// A caller's quota (`limits.quotas`) is used up: nothing ran.
    #[error("rate limited: {message}")]
    RateLimited { message: String, retry_after_seconds: u64 },
}

/// Validates a command string before anything else looks at it.
pub fn check_command(command: &str) -> Result<(), ServiceError> {
    if command.trim().is_empty() {
        return Err(ServiceError::InvalidInput("command is empty".into()));
    }
    if command.len() > policy::MAX_COMMAND_BYTES {
        return Err(ServiceError::InvalidInput(format!(
            "command is {} bytes; the limit is {}",
            command.len(),
            policy::MAX_COMMAND_BYTES
        )));
    }
    Ok(())
}
