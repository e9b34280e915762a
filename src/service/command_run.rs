//! How one admitted command runs inside its task: on the pooled connection, as the login
//! user or (for a `become` decision) under sudo/doas with the refusal watch of `elevate.rs`,
//! and how its end becomes the task's outcome.
//!
//! Owns: the order of a `become` run (sudo `-n` first; the password on stdin only when sudo
//! says it needs one) and the `privilege_failed` outcome. Never judges a command (the gate
//! did, in `prepare_with`) and never sees a command line other than `elevate`'s.

use std::time::Duration;

use super::elevate;
use crate::config::{self, Credential};
use crate::net::Target;
use crate::ssh::{ExecOutcome, Pool};
use crate::tasks::{self, WorkOutcome};

/// How a command's run ended, as the task reports it.
pub(super) fn outcome_of(r: Result<ExecOutcome, crate::ssh::SshError>) -> WorkOutcome {
    match r {
        Ok(ExecOutcome::NotStarted) => WorkOutcome::Stopped,
        // We stopped it and it did not exit on its own: a cancel or timeout.
        Ok(ExecOutcome::Finished { exit_code: None, stopped: true, .. }) => WorkOutcome::Stopped,
        Ok(ExecOutcome::Finished { exit_code, exit_signal, .. }) => WorkOutcome::Exited { exit_code, exit_signal },
        Err(e) => WorkOutcome::Failed((&e).into()),
    }
}

/// Where and as whom one admitted command runs: what `launch`'s task needs to exec it.
pub(super) struct Run<'a> {
    pub pool: &'a Pool,
    pub route: &'a [crate::ssh::Hop],
    pub target: &'a Target,
    pub credential: &'a Credential,
    pub known_hosts: &'a std::path::Path,
    pub connect_timeout: Duration,
}

impl Run<'_> {
    pub async fn exec(
        &self,
        line: &str,
        stdin: &[u8],
        sink: &dyn crate::ssh::Sink,
        cancel: &tokio_util::sync::CancellationToken,
        started: &(dyn Fn() + Send + Sync),
    ) -> Result<ExecOutcome, crate::ssh::SshError> {
        let (route, target, cred, kh, ct) =
            (self.route, self.target, self.credential, self.known_hosts, self.connect_timeout);
        self.pool.run_with_stdin(route, target, cred, kh, ct, line, stdin, sink, cancel, started).await
    }

    /// The command under sudo/doas (`elevate.rs`). With a password configured, sudo is
    /// first asked with `-n`: only when it answers that a password is required does a second
    /// run give it on stdin (`-S -p ''`), so a command sudoers lets run without a password
    /// never receives the password on its stdin. A refusal ends the task as
    /// `privilege_failed` with a hint.
    pub async fn elevated(
        &self,
        command: &str,
        b: &crate::policy::Become,
        password: Option<&config::Secret>,
        sink: &dyn crate::ssh::Sink,
        cancel: &tokio_util::sync::CancellationToken,
        started: &(dyn Fn() + Send + Sync),
    ) -> WorkOutcome {
        use elevate::{Refusal, Watch, command_line};
        let password = password.filter(|_| b.method == crate::policy::BecomeMethod::Sudo);
        let watch = Watch::new(sink, cancel.child_token(), password.is_some());
        let line = command_line(command, b, false);
        let mut r = self.exec(&line, &[], &watch, watch.cancel(), started).await;
        watch.finish();
        let mut refusal = watch.refusal();
        if let (Some(pw), Some((Refusal::NeedsPassword, _))) = (password, &refusal)
            && !cancel.is_cancelled()
        {
            let watch = Watch::new(sink, cancel.child_token(), false);
            let mut stdin = format!("{}\n", pw.expose()).into_bytes();
            let line = command_line(command, b, true);
            r = self.exec(&line, &stdin, &watch, watch.cancel(), &|| {}).await;
            // Not left in freed memory longer than needed.
            stdin.fill(0);
            watch.finish();
            refusal = watch.refusal();
        }
        match refusal {
            // A cancel of the task itself stays a cancel.
            Some(_) if cancel.is_cancelled() => outcome_of(r),
            Some((why, said)) => {
                let hint = elevate::hint(why, b, &self.credential.username, Some(command), password.is_some());
                let error = format!("become {} via {} failed: {said}\nhint: {hint}", b.user, b.method.name());
                WorkOutcome::Failed(tasks::Failure::new(tasks::FailureKind::PrivilegeFailed, error))
            }
            None => outcome_of(r),
        }
    }
}
