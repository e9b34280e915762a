//! `sshwarden approvals list|approve|deny`: the approver's terminal client of the
//! `/approvals` endpoints of `serve --http` (`server/approvals_http.rs`).
//!
//! Owns: the request, what it prints and its exit code. Never decides anything itself: the
//! server does, under the approver token.

use std::path::PathBuf;

use serde_json::Value;

/// What `sshwarden approvals` does.
pub enum Action {
    List,
    Approve(String),
    Deny(String),
}

/// `sshwarden approvals …`: prints JSON; exit 0 done, 1 error (unknown id, wrong token,
/// server unreachable).
pub async fn cli(action: Action, url: &str, token_file: Option<PathBuf>) -> u8 {
    let token = match crate::server::read_token_or_env(token_file.as_ref(), "SSHWARDEN_APPROVER_TOKEN") {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return crate::cli::commands::EXIT_ERROR;
        }
    };
    // Accept the URL `call` uses (…/mcp) as well as the server's base URL.
    let base = url.trim_end_matches('/').trim_end_matches("/mcp").trim_end_matches("/rpc").to_owned();
    let client = reqwest::Client::new();
    let request = match &action {
        Action::List => client.get(format!("{base}/approvals")),
        Action::Approve(id) => client.post(format!("{base}/approvals/{id}/approve")),
        Action::Deny(id) => client.post(format!("{base}/approvals/{id}/deny")),
    };
    let response = match request.bearer_auth(token.expose()).send().await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {base}: {e}");
            return crate::cli::commands::EXIT_ERROR;
        }
    };
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        eprintln!("error: {status}: {}", body["error"].as_str().unwrap_or("request refused"));
        return crate::cli::commands::EXIT_ERROR;
    }
    if let (Action::List, Some(list)) = (&action, body["approvals"].as_array()) {
        for a in list {
            eprintln!(
                "{}  {}  {}  ({}; {})",
                a["id"].as_str().unwrap_or(""),
                a["hosts"].as_str().unwrap_or(""),
                a["what"].as_str().unwrap_or(""),
                a["rule"].as_str().unwrap_or("-"),
                a["client"].as_str().unwrap_or("")
            );
        }
    }
    crate::cli::commands::out(&body.to_string());
    crate::cli::commands::EXIT_OK
}
