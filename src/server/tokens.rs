//! The secrets `serve --http` is started with: the MCP bearer token, the approver token and
//! the metrics token, read from files (or the environment), at least 16 characters, and
//! all different.
//!
//! Owns: `HttpOptions` (what the command line gave) and `HttpTokens` (what was read).
//! Never logs or prints a token; errors name the file, never its content.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::Secret;

pub(crate) fn read_token(token_file: Option<&PathBuf>) -> Result<Secret, String> {
    read_token_or_env(token_file, "SSHWARDEN_TOKEN")
}

/// A token from `token_file`, else from the environment variable `env`; at least 16 characters.
pub(crate) fn read_token_or_env(token_file: Option<&PathBuf>, env: &str) -> Result<Secret, String> {
    if let Some(p) = token_file {
        let t = std::fs::read_to_string(p).map_err(|e| format!("cannot read token file {}: {e}", p.display()))?;
        let t = t.trim().to_owned();
        if t.len() < 16 {
            return Err(format!("token in {} is shorter than 16 characters", p.display()));
        }
        return Ok(Secret::new(t));
    }
    match std::env::var(env) {
        Ok(t) if t.trim().len() >= 16 => Ok(Secret::new(t.trim().to_owned())),
        Ok(_) => Err(format!("{env} is shorter than 16 characters")),
        Err(_) => Err(format!("HTTP needs a bearer token: --token-file FILE or env {env}")),
    }
}

/// `sshwarden serve`'s HTTP options: the address and the files of its three tokens.
#[derive(Debug, Default)]
pub struct HttpOptions {
    /// Serve streamable HTTP here instead of stdio.
    pub addr: Option<SocketAddr>,
    pub token_file: Option<PathBuf>,
    pub approver_token_file: Option<PathBuf>,
    pub metrics_token_file: Option<PathBuf>,
}

/// The secrets HTTP is served with: each guards its own routes, so they must all differ
/// (a metrics scraper's token must never run a command or decide an approval).
pub(crate) struct HttpTokens {
    pub mcp: Secret,
    pub approver: Option<Secret>,
    pub metrics: Option<Secret>,
}

impl HttpOptions {
    pub(super) fn tokens(&self) -> Result<Option<(SocketAddr, HttpTokens)>, String> {
        let Some(addr) = self.addr else {
            if self.approver_token_file.is_some() {
                return Err("error: --approver-token-file needs --http (approvals are decided over HTTP)".into());
            }
            if self.metrics_token_file.is_some() {
                return Err("error: --metrics-token-file needs --http (metrics are scraped over HTTP)".into());
            }
            return Ok(None);
        };
        let mcp = read_token(self.token_file.as_ref()).map_err(|e| format!("error: refusing to serve HTTP: {e}"))?;
        let optional = |file: &Option<PathBuf>, env: &str| match file {
            Some(f) => read_token_or_env(Some(f), env).map(Some).map_err(|e| format!("error: {e}")),
            None => Ok(None),
        };
        let approver = optional(&self.approver_token_file, "SSHWARDEN_APPROVER_TOKEN")?;
        let metrics = optional(&self.metrics_token_file, "SSHWARDEN_METRICS_TOKEN")?;
        let same = |a: &Option<Secret>, b: &Secret| a.as_ref().is_some_and(|a| a.expose() == b.expose());
        if same(&approver, &mcp) {
            return Err("error: the approver token must differ from the MCP bearer token".into());
        }
        if same(&metrics, &mcp) || metrics.as_ref().is_some_and(|m| same(&approver, m)) {
            return Err("error: the metrics token must differ from the MCP bearer token and the approver token".into());
        }
        Ok(Some((addr, HttpTokens { mcp, approver, metrics })))
    }
}
