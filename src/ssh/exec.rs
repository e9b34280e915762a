//! One command on one channel: exec without a PTY, stdin (the given bytes, if any) closed at once, every byte
//! drained, exit status and signal captured, and a stop ladder that really stops it.
//!
//! Owns: the channel's read loop. Draining never stops early (an unread channel stalls
//! every channel of its connection); `Eof`/`Close` are awaited only for a bounded grace
//! after the exit (a `setsid` child holding stdout means they never come); on cancel the
//! SSH `signal` request goes INT, then TERM, then KILL (sshd `killpg`s the session).

use std::time::Duration;

use russh::client::Msg;
use russh::{Channel, ChannelMsg, Sig};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::SshError;
use crate::tasks::OutputSink;
use crate::tasks::ring::Stream;

/// How long to wait for `Eof`/`Close` after the exit status.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// The stop ladder: TERM, then KILL, each followed by its wait. INT is deliberately not
/// first: background jobs of a non-interactive shell ignore SIGINT, and once INT has
/// killed the session leader sshd can no longer signal the group, so `sleep 1 & sleep 2`
/// would leave `sleep 1` behind (seen in tests). TERM reaches the whole process group.
const LADDER: [(Sig, Duration); 2] =
    [(Sig::TERM, Duration::from_millis(1000)), (Sig::KILL, Duration::from_millis(1000))];

/// Where output goes.
pub trait Sink: Send + Sync {
    fn write(&self, stream: Stream, data: &[u8]);
}

impl Sink for OutputSink {
    fn write(&self, stream: Stream, data: &[u8]) {
        OutputSink::write(self, stream, data);
    }
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecOutcome {
    /// Cancelled before a channel was opened: nothing ran.
    NotStarted,
    Finished {
        exit_code: Option<u32>,
        exit_signal: Option<String>,
        /// We sent stop signals.
        stopped: bool,
        /// The server reported an exit after we signalled (the process is gone).
        stop_confirmed: bool,
    },
}

fn sig_name(sig: &Sig) -> String {
    match sig {
        Sig::Custom(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

/// What a command's stdin gets.
#[derive(Clone, Copy)]
pub enum Input<'a> {
    /// These bytes (maybe none), then EOF, as soon as the server accepted the exec.
    Now(&'a [u8]),
    /// `first` at once (a prompt nonce the remote shell reads), then `answer` only if the
    /// command's very first output is `prompt` on stderr (sudo asking with that nonce); the
    /// prompt is not passed on. Anything else first, or nothing `within`, and stdin just
    /// gets EOF: the answer is never sent.
    OnPrompt { first: &'a [u8], prompt: &'a [u8], answer: &'a [u8], within: Duration },
}

pub(super) async fn run(
    channel: Channel<Msg>,
    command: &str,
    input: Input<'_>,
    sink: &dyn Sink,
    cancel: &CancellationToken,
) -> Result<ExecOutcome, SshError> {
    channel.exec(true, command.as_bytes()).await.map_err(|e| SshError::Channel(e.to_string()))?;
    // Commands that wait for input must see EOF, not hang. It goes out once the server
    // answered the exec request: two back-to-back small packets through a jump host's
    // forwarding socket would wait on Nagle for the target's delayed ACK (~40 ms per run).
    let (mut reader, writer) = channel.split();
    let mut eof_sent = false;
    let (mut exit_code, mut exit_signal) = (None, None);
    let mut exited_at: Option<Instant> = None;
    let mut stage = 0usize;
    let mut next_signal: Option<Instant> = None;
    let mut stopped = false;
    let mut closed = false;
    // While waiting for a prompt: the deadline and the stderr bytes seen so far.
    let mut awaiting: Option<(Instant, Vec<u8>)> = None;
    loop {
        // Once we started stopping, the ladder runs to its end even after an exit: a dead
        // session leader (the login shell) can leave TERM-ignoring children holding stdout.
        let ladder_pending = stopped && stage < LADDER.len();
        let wake = match (ladder_pending, exited_at) {
            (true, _) | (false, None) => next_signal,
            (false, Some(t)) if stopped => next_signal.max(Some(t + CLOSE_GRACE)),
            (false, Some(t)) => Some(t + CLOSE_GRACE),
        };
        let prompt_deadline = awaiting.as_ref().map(|(t, _)| *t);
        tokio::select! {
            msg = reader.wait() => match msg {
                Some(ChannelMsg::Success | ChannelMsg::Failure) if !eof_sent => {
                    eof_sent = true;
                    match input {
                        Input::Now(bytes) => {
                            if !bytes.is_empty() {
                                let _ = writer.data(bytes).await;
                            }
                            let _ = writer.eof().await;
                        }
                        Input::OnPrompt { first, within, .. } => {
                            let _ = writer.data(first).await;
                            awaiting = Some((Instant::now() + within, Vec::new()));
                        }
                    }
                }
                Some(ChannelMsg::Data { data }) if awaiting.is_some() => {
                    // Output before the prompt: whatever runs is not asking for the answer.
                    if let Some((_, seen)) = awaiting.take() {
                        let _ = writer.eof().await;
                        sink.write(Stream::Stderr, &seen);
                    }
                    sink.write(Stream::Stdout, &data);
                }
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) if awaiting.is_some() => {
                    let Input::OnPrompt { prompt, answer, .. } = input else { continue };
                    let Some((_, seen)) = awaiting.as_mut() else { continue };
                    seen.extend_from_slice(&data);
                    if seen.starts_with(prompt) {
                        let rest = seen[prompt.len()..].to_vec();
                        awaiting = None;
                        let _ = writer.data(answer).await;
                        let _ = writer.eof().await;
                        if !rest.is_empty() {
                            sink.write(Stream::Stderr, &rest);
                        }
                    } else if !prompt.starts_with(seen) {
                        let seen = std::mem::take(seen);
                        awaiting = None;
                        let _ = writer.eof().await;
                        sink.write(Stream::Stderr, &seen);
                    }
                }
                None => break,
                Some(ChannelMsg::Close) => {
                    closed = true;
                    break;
                }
                Some(ChannelMsg::Data { data }) => sink.write(Stream::Stdout, &data),
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => sink.write(Stream::Stderr, &data),
                Some(ChannelMsg::ExitStatus { exit_status }) => {
                    exit_code = Some(exit_status);
                    exited_at.get_or_insert_with(Instant::now);
                }
                Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                    exit_signal = Some(sig_name(&signal_name));
                    exited_at.get_or_insert_with(Instant::now);
                }
                Some(_) => {}
            },
            _ = cancel.cancelled(), if stage == 0 && exited_at.is_none() => {
                stopped = true;
                stage = 1;
                let sent = writer.signal(LADDER[0].0.clone()).await;
                tracing::debug!(?sent, "stop signal");
                next_signal = Some(Instant::now() + LADDER[0].1);
            }
            _ = sleep_until(prompt_deadline), if prompt_deadline.is_some() => {
                if let Some((_, seen)) = awaiting.take() {
                    let _ = writer.eof().await;
                    sink.write(Stream::Stderr, &seen);
                }
            }
            _ = sleep_until(wake), if wake.is_some() => {
                if !ladder_pending {
                    break;
                }
                let (signal, wait) = LADDER[stage].clone();
                let sent = writer.signal(signal).await;
                tracing::debug!(stage, ?sent, "stop signal");
                next_signal = Some(Instant::now() + wait);
                stage += 1;
            }
        }
    }
    // Always release the session slot, whatever path got us here.
    let _ = writer.close().await;
    if exited_at.is_none() && !stopped {
        return Err(SshError::Disconnected(if closed {
            "channel closed without an exit status".into()
        } else {
            "connection closed before the command's exit status arrived".into()
        }));
    }
    let stop_confirmed = stopped && exited_at.is_some();
    Ok(ExecOutcome::Finished { exit_code, exit_signal, stopped, stop_confirmed })
}

async fn sleep_until(when: Option<Instant>) {
    match when {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
