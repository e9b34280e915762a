//! How one admitted command runs inside its task: on the pooled connection, as the login
//! user or (for a `become` decision) under sudo/doas with the refusal watch of `elevate.rs`,
//! and how its end becomes the task's outcome.
//!
//! Owns: how a `become` run gets its password (only in answer to sudo's own nonce prompt)
//! and the `privilege_failed` outcome. Never judges a command (the gate
//! did, in `prepare_with`) and never sees a command line other than `elevate`'s.

use std::time::Duration;

/// How long sudo may take to show its password prompt before stdin is closed (PAM and
/// directory lookups can be slow; a command that never prompts is not kept waiting longer).
const PROMPT_WAIT: Duration = Duration::from_secs(10);

use super::elevate;
use crate::config;
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
    pub to: crate::ssh::Destination<'a>,
}

impl Run<'_> {
    pub async fn exec(
        &self,
        line: &str,
        stdin: crate::ssh::Input<'_>,
        sink: &dyn crate::ssh::Sink,
        cancel: &tokio_util::sync::CancellationToken,
        started: &(dyn Fn() + Send + Sync),
    ) -> Result<ExecOutcome, crate::ssh::SshError> {
        self.pool.run_with_stdin(&self.to, line, stdin, sink, cancel, started).await
    }

    /// The command under sudo/doas (`elevate.rs`). With a password configured, the remote
    /// shell reads a fresh 128-bit prompt nonce from stdin and `sudo -S -p NONCE -v` asks
    /// for the password with it; the password is written only if the first output is that
    /// exact prompt on stderr. The command then runs under `sudo -n`: it never receives the
    /// password, and cannot learn the nonce from any argv to imitate sudo. A refusal ends
    /// the task as `privilege_failed` with a hint.
    pub async fn elevated(
        &self,
        command: &str,
        b: &crate::policy::Become,
        password: Option<&config::Secret>,
        sink: &dyn crate::ssh::Sink,
        cancel: &tokio_util::sync::CancellationToken,
        started: &(dyn Fn() + Send + Sync),
    ) -> WorkOutcome {
        use elevate::{Watch, command_line};
        let password = password.filter(|_| b.method == crate::policy::BecomeMethod::Sudo);
        let prompt = password.map(|pw| elevate::PasswordPrompt::new(pw.expose()));
        let watch = Watch::new(sink, cancel.child_token());
        let line = command_line(command, b, prompt.is_some());
        let input = prompt.as_ref().map_or(crate::ssh::Input::Now(&[]), |p| p.input(PROMPT_WAIT));
        let r = self.exec(&line, input, &watch, watch.cancel(), started).await;
        drop(prompt);
        watch.finish();
        let refusal = watch.refusal();
        match refusal {
            // A cancel of the task itself stays a cancel.
            Some(_) if cancel.is_cancelled() => outcome_of(r),
            Some((why, said)) => {
                let hint = elevate::hint(why, b, &self.to.cred.username, Some(command), password.is_some());
                let error = format!("become {} via {} failed: {said}\nhint: {hint}", b.user, b.method.name());
                WorkOutcome::Failed(tasks::Failure::new(tasks::FailureKind::PrivilegeFailed, error))
            }
            None => outcome_of(r),
        }
    }
}
