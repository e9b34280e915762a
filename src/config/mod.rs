//! Inventory and policy configuration: the three YAML files of mcp-ssh-orchestrator, validated.
//!
//! Owns: the checked types every other layer reads (`Config`, `Host`, `Credential`,
//! `Policy`), diagnostics with file:line:col, secret wrapping. IO happens only in `load.rs`
//! (reading the three files, secrets and key paths); `validate.rs` is pure. Never talks to a
//! host and never logs a secret.

mod audit_settings;
mod callers;
pub mod json_schema;
mod load;
mod locate;
pub mod raw;
mod raw_auth;
mod secret;
mod types;
mod unknown_keys;
mod validate;
mod validate_approvals;
mod validate_auth;
mod validate_credentials;
mod validate_files;
mod validate_policy;
mod validate_rules;
mod validate_runbook;

pub use audit_settings::*;
pub use callers::*;
pub use load::{Dirs, load, load_from_sources};
pub use locate::Pos;
pub use secret::Secret;
pub use types::*;
pub use validate::all_tags;
pub use validate_auth::acceptable_url as acceptable_key_url;

use std::fmt;

/// How bad a diagnostic is: errors stop the load, warnings are reported and loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding about the configuration, pointing at file, line, column and key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub key: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.line == 0 {
            // A file-level problem (missing, unreadable, too big) has no position to show.
            return write!(f, "{sev}: {}", self.message);
        }
        write!(f, "{sev}: {}:{}:{}: {}: {}", self.file, self.line, self.col, self.key, self.message)
    }
}

/// Why a configuration could not be loaded: every error found, not just the first.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors: Vec<_> = self.diagnostics.iter().filter(|d| d.severity == Severity::Error).collect();
        write!(f, "configuration has {} error(s)", errors.len())?;
        for d in errors {
            write!(f, "\n  {d}")?;
        }
        Ok(())
    }
}
