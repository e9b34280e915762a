//! The task engine: runs units of work as tracked tokio tasks with queueing, concurrency
//! limits, timeouts, cancellation, bounded output and TTL'd results.
//!
//! Owns: task ids, states, limits (global running, per-host, queue), the output memory
//! budget, result expiry and shutdown. Knows nothing of SSH: a task is any future that
//! writes to an `OutputSink` and honours a `CancellationToken`.

mod expiry;
pub mod ring;
pub mod state;
mod task;

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use dashmap::DashMap;
use futures::future::BoxFuture;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use ring::Stream;
pub use state::{CancelledBy, Failure, FailureKind, Output, TaskState, WorkOutcome, now_ms};
pub use task::{Task, TaskSnapshot};

/// How long a timed-out task's work gets to stop the remote command (`TaskSpec::stop_grace`
/// of a single command or transfer).
pub const STOP_GRACE: Duration = Duration::from_secs(6);
/// How many expired ids are remembered, so status can say "expired" rather than "unknown".
const EXPIRED_MEMORY: usize = 10_000;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    #[error("busy: {queued} tasks are already queued (limit {limit}); retry later")]
    Busy { queued: usize, limit: usize },
    #[error("shutting down; no new tasks are accepted")]
    ShuttingDown,
    #[error("task {0:?} expired; its result was kept for task_result_ttl and is gone")]
    Expired(String),
    #[error("unknown task id {0:?}")]
    Unknown(String),
    #[error("task {0:?} is still running; cancel it first")]
    StillRunning(String),
}

/// What a task is and the limits it runs under.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    pub alias: String,
    pub target_ip: String,
    pub command_sha256: String,
    /// What the task runs, as people may see it: secret values masked, empty when the
    /// configuration redacts commands (`audit.redact_commands`).
    pub command: String,
    /// Who started it (`service::task_owner` of the client): only they see and stop it
    /// through the protocol; empty for work nobody in particular started.
    pub owner: String,
    pub host_slots: usize,
    pub timeout: Duration,
    /// How long the work may still run after its timeout fired: `STOP_GRACE` to stop a
    /// remote command; a runbook's rollback steps' own timeouts.
    pub stop_grace: Duration,
    pub ttl: Duration,
    pub output_cap: u64,
    pub kill_on_output_limit: bool,
}

/// Process-wide limits.
#[derive(Debug, Clone)]
pub struct ManagerLimits {
    pub max_running: usize,
    pub max_queued: usize,
    pub output_budget: u64,
}

pub type Work = Box<dyn FnOnce(TaskContext) -> BoxFuture<'static, WorkOutcome> + Send>;

/// Handed to the work: where output goes, when to stop, and state updates.
pub struct TaskContext {
    pub cancel: CancellationToken,
    pub sink: OutputSink,
    task: Arc<Task>,
}

impl TaskContext {
    pub fn set_running(&self) {
        self.task.set_state(TaskState::Running { started_at: now_ms() });
    }

    pub fn task(&self) -> &Arc<Task> {
        &self.task
    }
}

/// Writes output into the task's buffers under the per-task cap and the global budget.
#[derive(Clone)]
pub struct OutputSink {
    task: Arc<Task>,
    inner: Arc<Inner>,
}

impl OutputSink {
    /// Records a chunk. Over the per-task cap with `on_output_limit: kill`, it asks the work
    /// to stop (cancel reason `output_limit`); the bytes are still counted.
    pub fn write(&self, stream: Stream, data: &[u8]) {
        let (delta, total) = {
            let mut out = self.task.output();
            (out.push(stream, data), out.total_bytes())
        };
        self.inner.budget_used.fetch_add(delta, Ordering::Relaxed);
        let streamed = if stream == Stream::Stdout { &self.inner.streamed.0 } else { &self.inner.streamed.1 };
        streamed.fetch_add(data.len() as u64, Ordering::Relaxed);
        if total > self.task.spec.output_cap && self.task.spec.kill_on_output_limit {
            self.inner.stop(&self.task, CancelledBy::OutputLimit);
        }
        self.inner.enforce_budget();
        self.task.changes.send_modify(|v| *v += 1);
    }
}

#[derive(Debug)]
struct Inner {
    tasks: DashMap<String, Arc<Task>>,
    expired: Mutex<(VecDeque<String>, HashSet<String>)>,
    deadlines: Mutex<std::collections::BTreeSet<(Instant, String)>>,
    expiry_notify: Notify,
    running: Arc<Semaphore>,
    per_host: DashMap<String, Arc<Semaphore>>,
    queued: AtomicUsize,
    limits: ManagerLimits,
    /// Bytes received on (stdout, stderr) since start, whatever the buffers kept.
    streamed: (AtomicU64, AtomicU64),
    budget_used: AtomicI64,
    budget_overflows: AtomicUsize,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

/// Cheap to clone; all clones share one engine.
#[derive(Debug, Clone)]
pub struct TaskManager {
    inner: Arc<Inner>,
}

impl Inner {
    fn stop(&self, task: &Task, by: CancelledBy) {
        lock(&task.cancelled_by).get_or_insert(by);
        task.cancel.cancel();
    }

    /// Over budget: the oldest finished results give up their buffers first.
    fn enforce_budget(&self) {
        if self.budget_used.load(Ordering::Relaxed) <= self.limits.output_budget as i64 {
            return;
        }
        let mut finished: Vec<Arc<Task>> =
            self.tasks.iter().filter(|t| t.state().is_finished()).map(|t| t.clone()).collect();
        finished.sort_by_key(|t| *lock(&t.finished_at));
        for t in finished {
            if self.budget_used.load(Ordering::Relaxed) <= self.limits.output_budget as i64 {
                return;
            }
            let freed = t.output().release();
            self.budget_used.fetch_sub(freed as i64, Ordering::Relaxed);
        }
        if self.budget_used.load(Ordering::Relaxed) > self.limits.output_budget as i64 {
            self.budget_overflows.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn host_semaphore(&self, alias: &str, slots: usize) -> Arc<Semaphore> {
        self.per_host.entry(alias.to_owned()).or_insert_with(|| Arc::new(Semaphore::new(slots.max(1)))).clone()
    }

    fn finish(&self, task: &Task, state: TaskState) {
        let now = Instant::now();
        *lock(&task.finished_at) = Some(now);
        task.set_state(state);
        lock(&self.deadlines).insert((now + task.spec.ttl, task.id.clone()));
        self.expiry_notify.notify_one();
    }

    fn remove(&self, id: &str) {
        if let Some((_, task)) = self.tasks.remove(id) {
            let freed = task.output().release();
            self.budget_used.fetch_sub(freed as i64, Ordering::Relaxed);
            let mut expired = lock(&self.expired);
            if expired.1.insert(id.to_owned()) {
                expired.0.push_back(id.to_owned());
            }
            while expired.0.len() > EXPIRED_MEMORY {
                if let Some(old) = expired.0.pop_front() {
                    expired.1.remove(&old);
                }
            }
        }
    }
}

impl TaskManager {
    /// Starts the engine and its expiry task. Must be called inside a tokio runtime.
    pub fn new(limits: ManagerLimits) -> Self {
        let inner = Arc::new(Inner {
            tasks: DashMap::new(),
            expired: Mutex::new((VecDeque::new(), HashSet::new())),
            deadlines: Mutex::new(Default::default()),
            expiry_notify: Notify::new(),
            running: Arc::new(Semaphore::new(limits.max_running.max(1))),
            per_host: DashMap::new(),
            queued: AtomicUsize::new(0),
            limits,
            streamed: Default::default(),
            budget_used: AtomicI64::new(0),
            budget_overflows: AtomicUsize::new(0),
            tracker: TaskTracker::new(),
            shutdown: CancellationToken::new(),
        });
        inner.tracker.spawn(expiry::run(inner.clone()));
        Self { inner }
    }

    /// Queues `work`; it starts when a global and a per-host slot are free.
    pub fn spawn(&self, spec: TaskSpec, work: Work) -> Result<Arc<Task>, TaskError> {
        let inner = &self.inner;
        if inner.shutdown.is_cancelled() {
            return Err(TaskError::ShuttingDown);
        }
        let queued = inner.queued.fetch_add(1, Ordering::SeqCst);
        if queued >= inner.limits.max_queued {
            inner.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(TaskError::Busy { queued, limit: inner.limits.max_queued });
        }
        let id = format!("t{:032x}", rand::random::<u128>());
        let task = Arc::new(Task {
            id: id.clone(),
            created_at_ms: now_ms(),
            started: Instant::now(),
            state: Mutex::new((TaskState::Queued, now_ms())),
            output: Mutex::new(Output::new(spec.output_cap)),
            cancel: inner.shutdown.child_token(),
            cancelled_by: Mutex::new(None),
            timed_out: AtomicBool::new(false),
            changes: watch::channel(0).0,
            finished_at: Mutex::new(None),
            detail: Mutex::new(None),
            spec,
        });
        inner.tasks.insert(id, task.clone());
        let (inner2, task2) = (inner.clone(), task.clone());
        inner.tracker.spawn(async move { run(inner2, task2, work).await });
        Ok(task)
    }

    pub fn get(&self, id: &str) -> Result<Arc<Task>, TaskError> {
        if let Some(t) = self.inner.tasks.get(id) {
            return Ok(t.clone());
        }
        if lock(&self.inner.expired).1.contains(id) {
            return Err(TaskError::Expired(id.to_owned()));
        }
        Err(TaskError::Unknown(id.to_owned()))
    }

    /// Cancels a task; returns its state before the cancel. Finished tasks are unchanged.
    pub fn cancel(&self, id: &str, by: CancelledBy) -> Result<TaskState, TaskError> {
        let task = self.get(id)?;
        let before = task.state();
        if !before.is_finished() {
            self.inner.stop(&task, by);
        }
        Ok(before)
    }

    /// Frees a finished result now.
    pub fn ack(&self, id: &str) -> Result<(), TaskError> {
        let task = self.get(id)?;
        if !task.state().is_finished() {
            return Err(TaskError::StillRunning(id.to_owned()));
        }
        self.inner.remove(id);
        Ok(())
    }

    /// Bytes received on (stdout, stderr) since the manager started.
    pub fn streamed_bytes(&self) -> (u64, u64) {
        (self.inner.streamed.0.load(Ordering::Relaxed), self.inner.streamed.1.load(Ordering::Relaxed))
    }

    pub fn list(&self) -> Vec<TaskSnapshot> {
        let mut v: Vec<TaskSnapshot> = self.inner.tasks.iter().map(|t| t.snapshot()).collect();
        v.sort_by_key(|s| s.created_at_ms);
        v
    }

    /// Bytes held by all task buffers, and how often the budget could not be met.
    pub fn memory(&self) -> (i64, usize) {
        (self.inner.budget_used.load(Ordering::Relaxed), self.inner.budget_overflows.load(Ordering::Relaxed))
    }

    /// Stops accepting, cancels everything (remote commands are signalled by their work),
    /// and waits up to `grace` for every task to end.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.shutdown.cancel();
        for t in self.inner.tasks.iter() {
            lock(&t.cancelled_by).get_or_insert(CancelledBy::Shutdown);
        }
        self.inner.tracker.close();
        let _ = tokio::time::timeout(grace, self.inner.tracker.wait()).await;
    }
}

async fn run(inner: Arc<Inner>, task: Arc<Task>, work: Work) {
    let host = inner.host_semaphore(&task.spec.alias, task.spec.host_slots);
    let permits = tokio::select! {
        p = async {
            let global = inner.running.clone().acquire_owned().await.ok()?;
            let host = host.acquire_owned().await.ok()?;
            Some((global, host))
        } => p,
        _ = task.cancel.cancelled() => None,
    };
    inner.queued.fetch_sub(1, Ordering::SeqCst);
    let Some(_permits) = permits else {
        let by = lock(&task.cancelled_by).unwrap_or(CancelledBy::Client);
        inner.finish(&task, TaskState::Cancelled { by });
        return;
    };
    task.set_state(TaskState::Connecting);
    let ctx = TaskContext {
        cancel: task.cancel.clone(),
        sink: OutputSink { task: task.clone(), inner: inner.clone() },
        task: task.clone(),
    };
    let mut fut = work(ctx);
    let outcome = tokio::select! {
        o = &mut fut => o,
        _ = tokio::time::sleep(task.spec.timeout) => {
            task.timed_out.store(true, Ordering::SeqCst);
            task.cancel.cancel();
            tokio::time::timeout(task.spec.stop_grace, fut).await.unwrap_or(WorkOutcome::Stopped)
        }
    };
    let cancelled_by = *lock(&task.cancelled_by);
    let state = match outcome {
        _ if task.timed_out.load(Ordering::SeqCst) => TaskState::TimedOut,
        WorkOutcome::Exited { exit_code, exit_signal } if cancelled_by.is_none() || exit_signal.is_none() => {
            TaskState::Completed { exit_code, exit_signal }
        }
        WorkOutcome::Failed(f) if cancelled_by.is_none() => TaskState::Failed { error: f.error, kind: f.kind },
        _ => TaskState::Cancelled { by: cancelled_by.unwrap_or(CancelledBy::Client) },
    };
    inner.finish(&task, state);
}
