//! Authentication: private key, ssh-agent, password, in that order, each only when the
//! credential configures it.
//!
//! Owns: key loading (passphrase from the credential's secret), RSA SHA-2 selection, and
//! a report of which method failed and why. Never logs or returns a secret.

use std::sync::Arc;

use russh::client::{AuthResult, Handle};
use russh::keys::{PrivateKeyWithHashAlg, load_secret_key};

use super::{SshError, Verifier};
use crate::config::Credential;

pub(super) async fn authenticate(handle: &mut Handle<Verifier>, cred: &Credential) -> Result<(), SshError> {
    let user = cred.username.clone();
    let mut tried = Vec::new();
    if let Some(path) = &cred.key_path {
        match load_secret_key(path, cred.key_passphrase.as_ref().map(|s| s.expose())) {
            Ok(key) => {
                let hash = if key.algorithm().is_rsa() {
                    handle.best_supported_rsa_hash().await.ok().flatten().flatten()
                } else {
                    None
                };
                match handle.authenticate_publickey(&user, PrivateKeyWithHashAlg::new(Arc::new(key), hash)).await {
                    Ok(AuthResult::Success) => return Ok(()),
                    Ok(AuthResult::Failure { .. }) => tried.push(format!("key {}: rejected by server", path.display())),
                    Err(e) => tried.push(format!("key {}: {e}", path.display())),
                }
            }
            Err(russh::keys::Error::KeyIsEncrypted) => {
                tried.push(format!("key {}: encrypted; set key_passphrase_secret", path.display()))
            }
            Err(e) => tried.push(format!("key {}: cannot load ({e})", path.display())),
        }
    }
    if cred.use_agent {
        match agent_auth(handle, &user).await {
            Ok(true) => return Ok(()),
            Ok(false) => tried.push("agent: no agent key accepted".into()),
            Err(e) => tried.push(format!("agent: {e}")),
        }
    }
    if let Some(pw) = &cred.password {
        match handle.authenticate_password(&user, pw.expose()).await {
            Ok(AuthResult::Success) => return Ok(()),
            Ok(AuthResult::Failure { .. }) => tried.push("password: rejected by server".into()),
            Err(e) => tried.push(format!("password: {e}")),
        }
    }
    if tried.is_empty() {
        tried.push("no method configured".into());
    }
    Err(SshError::Auth { user, tried: tried.join("; ") })
}

async fn agent_auth(handle: &mut Handle<Verifier>, user: &str) -> Result<bool, String> {
    let mut agent = russh::keys::agent::client::AgentClient::connect_env()
        .await
        .map_err(|e| format!("cannot reach SSH_AUTH_SOCK: {e}"))?;
    let identities = agent.request_identities().await.map_err(|e| e.to_string())?;
    for id in identities {
        let key = id.public_key().into_owned();
        let hash = if key.algorithm().is_rsa() {
            handle.best_supported_rsa_hash().await.ok().flatten().flatten()
        } else {
            None
        };
        if let Ok(AuthResult::Success) = handle.authenticate_publickey_with(user, key, hash, &mut agent).await {
            return Ok(true);
        }
    }
    Ok(false)
}
