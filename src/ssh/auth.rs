//! Authentication: private key (with its OpenSSH user certificate when configured),
//! ssh-agent, password, in that order, each only when the credential configures it.
//!
//! Owns: key loading (passphrase from the credential's secret), RSA SHA-2 selection, and
//! a report of which method failed and why. Never logs or returns a secret.

use std::sync::Arc;

use russh::client::{AuthResult, Handle};
use russh::keys::{PrivateKeyWithHashAlg, load_openssh_certificate, load_secret_key};

use super::{SshError, Verifier};
use crate::config::Credential;

/// A certificate's validity window (`valid_after`, `valid_before`, Unix seconds).
pub fn certificate_window(path: &std::path::Path) -> Result<(u64, u64), String> {
    let cert = load_openssh_certificate(path).map_err(|e| format!("certificate {}: {e}", path.display()))?;
    Ok((cert.valid_after(), cert.valid_before()))
}

fn utc(secs: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| "forever".into())
}

/// Refuses an expired or not yet valid certificate before any connection is tried.
pub(super) fn check_certificate(cred: &Credential) -> Result<(), SshError> {
    let Some(path) = &cred.certificate_path else { return Ok(()) };
    let fail = |why: String| SshError::Auth { user: cred.username.clone(), tried: why };
    let (after, before) = certificate_window(path).map_err(fail)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if now < after || now >= before {
        let state = if now < after { "is not valid yet" } else { "has expired" };
        return Err(fail(format!(
            "certificate {} {state}: valid from {} to {} (renew it with your SSH CA)",
            path.display(),
            utc(after),
            utc(before)
        )));
    }
    Ok(())
}

pub(super) async fn authenticate(handle: &mut Handle<Verifier>, cred: &Credential) -> Result<(), SshError> {
    let user = cred.username.clone();
    let mut tried = Vec::new();
    if let (Some(key_path), Some(cert_path)) = (&cred.key_path, &cred.certificate_path) {
        let key = load_secret_key(key_path, cred.key_passphrase.as_ref().map(|s| s.expose()));
        let cert = load_openssh_certificate(cert_path);
        match (key, cert) {
            (Ok(key), Ok(cert)) => match handle.authenticate_openssh_cert(&user, Arc::new(key), cert).await {
                Ok(AuthResult::Success) => return Ok(()),
                Ok(AuthResult::Failure { .. }) => tried.push(format!(
                    "certificate {}: rejected by server (principal or CA not accepted for user {user:?})",
                    cert_path.display()
                )),
                Err(e) => tried.push(format!("certificate {}: {e}", cert_path.display())),
            },
            (Err(e), _) => tried.push(format!("key {}: cannot load ({e})", key_path.display())),
            (_, Err(e)) => tried.push(format!("certificate {}: cannot load ({e})", cert_path.display())),
        }
        return Err(SshError::Auth { user, tried: tried.join("; ") });
    }
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
