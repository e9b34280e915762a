//! Task states as an enum whose variants carry their data, and the task's output record.
//!
//! Owns: what a task is at a moment and what it produced. Never schedules anything.

use std::time::SystemTime;

use serde::Serialize;

use super::ring::{HeadTail, Stream};

/// Who or what stopped a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelledBy {
    Client,
    Shutdown,
    OutputLimit,
}

/// How the work of a task ended, as reported by the work itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkOutcome {
    Exited {
        exit_code: Option<u32>,
        exit_signal: Option<String>,
    },
    /// The work saw its cancellation and stopped (the remote command was signalled).
    Stopped,
    Failed(Failure),
}

/// What kind of failure ended a task, carried as a value so callers (fan-out statuses, tool
/// error kinds) classify it by type, never by reading the message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    #[default]
    Error,
    /// The host could not be reached (connect refused or timed out, also behind a jump host).
    Unreachable,
    /// The policy refused what the run found (a transfer path the host resolved outside the
    /// `files:` rules): a denial, not an error.
    Denied,
    /// `become` failed: sudo/doas refused (no sudoers line, a password needed or wrong,
    /// a tty required); the command did not run.
    PrivilegeFailed,
}

/// A failed task's kind and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub error: String,
}

impl Failure {
    pub fn new(kind: FailureKind, error: impl Into<String>) -> Self {
        Self { kind, error: error.into() }
    }
}

impl From<String> for Failure {
    fn from(error: String) -> Self {
        Self::new(FailureKind::Error, error)
    }
}

impl From<&str> for Failure {
    fn from(error: &str) -> Self {
        Self::new(FailureKind::Error, error)
    }
}

/// The state of one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TaskState {
    Queued,
    Connecting,
    Running {
        started_at: u64,
    },
    Completed {
        exit_code: Option<u32>,
        exit_signal: Option<String>,
    },
    Failed {
        error: String,
        /// Not serialized: the published state stays `{state: failed, error}`.
        #[serde(skip)]
        kind: FailureKind,
    },
    TimedOut,
    Cancelled {
        by: CancelledBy,
    },
}

impl TaskState {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Connecting => "connecting",
            Self::Running { .. } => "running",
            Self::Completed { .. } => "completed",
            Self::Failed { .. } => "failed",
            Self::TimedOut => "timed_out",
            Self::Cancelled { .. } => "cancelled",
        }
    }

    pub fn is_finished(&self) -> bool {
        matches!(self, Self::Completed { .. } | Self::Failed { .. } | Self::TimedOut | Self::Cancelled { .. })
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Everything a task produced, bounded by construction.
#[derive(Debug)]
pub struct Output {
    pub stdout: HeadTail,
    pub stderr: HeadTail,
    pub combined: HeadTail,
    pub lines: u64,
    /// Set when the global memory budget took this task's buffers.
    pub evicted: bool,
}

impl Output {
    /// Splits the per-task cap: stdout and stderr a quarter each, the interleaved view half.
    pub fn new(cap: u64) -> Self {
        let q = (cap / 8).max(1) as usize;
        Self {
            stdout: HeadTail::new(q, q),
            stderr: HeadTail::new(q, q),
            combined: HeadTail::new(2 * q, 2 * q),
            lines: 0,
            evicted: false,
        }
    }

    pub fn stream(&self, s: Stream) -> &HeadTail {
        match s {
            Stream::Stdout => &self.stdout,
            Stream::Stderr => &self.stderr,
            Stream::Combined => &self.combined,
        }
    }

    /// Appends a chunk; returns the change in retained bytes.
    pub fn push(&mut self, s: Stream, data: &[u8]) -> i64 {
        self.lines += data.iter().filter(|b| **b == b'\n').count() as u64;
        let own = match s {
            Stream::Stderr => self.stderr.push(data),
            _ => self.stdout.push(data),
        };
        own + self.combined.push(data)
    }

    pub fn total_bytes(&self) -> u64 {
        self.stdout.total() + self.stderr.total()
    }

    pub fn truncated(&self) -> bool {
        self.evicted || self.stdout.dropped() > 0 || self.stderr.dropped() > 0
    }

    pub fn retained(&self) -> usize {
        self.stdout.retained() + self.stderr.retained() + self.combined.retained()
    }

    pub fn release(&mut self) -> usize {
        self.evicted = true;
        self.stdout.release() + self.stderr.release() + self.combined.release()
    }
}
