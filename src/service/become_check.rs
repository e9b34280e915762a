//! The `become` preflight: whether sudo lets the login user act as the users the policy's
//! `become` rules name on a host, checked without running any command of the agent's.
//!
//! Owns: `Service::preflight_become` (what `ssh_preflight` shows under `become`) and its one
//! probe, `sudo -n -l` or, with a password configured, `sudo -S -v` given the password only
//! at its own nonce prompt. Never runs the judged command, never puts the password on a command line, and
//! keeps none of sudo's listing (only its refusal line, if any).

use std::sync::Mutex;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::elevate::{PasswordPrompt, Refusal, WATCH_BYTES, classify, hint, validate_line};
use crate::config::Host;
use crate::policy::{Become, BecomeMethod};
use crate::service::Service;
use crate::ssh::{ExecOutcome, Input, Sink};
use crate::tasks::ring::Stream;

/// How long the probe may take, connect included.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Collects a probe's stderr (its stdout, sudo's listing, is not kept).
#[derive(Default)]
struct Collect(Mutex<Vec<u8>>);

impl Sink for Collect {
    fn write(&self, stream: Stream, data: &[u8]) {
        let mut buf = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if stream == Stream::Stderr && buf.len() < WATCH_BYTES {
            buf.extend_from_slice(data);
        }
    }
}

impl Service {
    /// The `become` users the policy's rules give `host`, and whether each can work there,
    /// checked without running the command: `sudo -n -l` (no password configured) or
    /// `sudo -S -p '' -v` with the password on stdin. doas has no such check. `None`: no
    /// rule of this host has `become`.
    pub async fn preflight_become(&self, host: &Host) -> Option<Value> {
        let cfg = self.config();
        let mut users: Vec<Become> = Vec::new();
        for r in
            cfg.policy.rules.iter().filter(|r| r.selects_host(&host.subject(&[], &crate::policy::Principal::local())))
        {
            if let Some(b) = r.elevate.as_ref().filter(|b| !users.contains(b)) {
                users.push(b.clone());
            }
        }
        if users.is_empty() {
            return None;
        }
        let password = cfg.become_password_for(host);
        let described: Vec<Value> =
            users.iter().map(|b| json!({ "user": b.user, "method": b.method.name() })).collect();
        let Some(sudo_user) = users.iter().find(|b| b.method == BecomeMethod::Sudo) else {
            let checked = "not checked: doas has no check that runs nothing (needs `permit nopass`)";
            return Some(json!({ "users": described, "password_configured": false, "checked": checked, "ok": true }));
        };
        let check = self.become_probe(host, password.map(|p| p.expose())).await;
        let (ok, detail) = match &check {
            Ok(None) => (true, "ok".to_owned()),
            Ok(Some((r, said))) => {
                let login = cfg.credential_for(host).map_or("", |c| c.username.as_str());
                (false, format!("{said}; hint: {}", hint(*r, sudo_user, login, None, password.is_some())))
            }
            Err(e) => (false, e.clone()),
        };
        let checked = if password.is_some() { "sudo -S -v (password at its prompt)" } else { "sudo -n -l" };
        Some(
            json!({ "users": described, "password_configured": password.is_some(), "checked": checked, "ok": ok, "detail": detail }),
        )
    }

    /// Runs the sudo check on `host`: `Ok(None)` when sudo accepted, the refusal otherwise.
    async fn become_probe(&self, host: &Host, password: Option<&str>) -> Result<Option<(Refusal, String)>, String> {
        let cfg = self.config();
        let target = self.precheck(host).await.map_err(|e| e.to_string())?;
        let route = self.route(host).await.map_err(|e| e.to_string())?;
        let cred = cfg.credential_for(host).ok_or("no credentials")?;
        // As for a command: the password only in answer to sudo's own prompt, a fresh nonce.
        let prompt = password.map(PasswordPrompt::new);
        let line = if prompt.is_some() { validate_line() } else { "sudo -n -l".to_owned() };
        let input = prompt.as_ref().map_or(Input::Now(&[]), |p| p.input(PROBE_TIMEOUT));
        let sink = Collect::default();
        let cancel = CancellationToken::new();
        let timer = cancel.clone();
        let deadline = tokio::spawn(async move {
            tokio::time::sleep(PROBE_TIMEOUT).await;
            timer.cancel();
        });
        let to = crate::ssh::Destination {
            route: &route,
            target: &target,
            cred,
            known_hosts: &cfg.policy.known_hosts_path,
            connect_timeout: host.connect_timeout,
        };
        let r = self.pool().run_with_stdin(&to, &line, input, &sink, &cancel, &|| {}).await;
        deadline.abort();
        drop(prompt);
        let err = String::from_utf8_lossy(&sink.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
        let refusal = err.lines().find_map(|l| classify(l).map(|r| (r, l.trim().to_owned())));
        match r.map_err(|e| e.to_string())? {
            ExecOutcome::Finished { exit_code: Some(0), .. } => Ok(None),
            _ if refusal.is_some() => Ok(refusal),
            ExecOutcome::Finished { exit_code, .. } => Err(format!(
                "`{line}` failed (exit {exit_code:?}): {}",
                err.trim().chars().take(300).collect::<String>()
            )),
            ExecOutcome::NotStarted => Err("the check did not start".into()),
        }
    }
}
