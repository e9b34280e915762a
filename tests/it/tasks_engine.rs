//! The task engine without SSH: states, limits, queueing, TTL expiry with paused time,
//! cancel in every state, the output budget.

use std::sync::Arc;
use std::time::Duration;

use sshwarden::tasks::ring::Stream;
use sshwarden::tasks::{CancelledBy, ManagerLimits, TaskError, TaskManager, TaskSpec, TaskState, Work, WorkOutcome};

fn spec(alias: &str, ttl: u64) -> TaskSpec {
    TaskSpec {
        alias: alias.into(),
        target_ip: "127.0.0.1".into(),
        command_sha256: String::new(),
        command: String::new(),
        owner: String::new(),
        host_slots: 1,
        timeout: Duration::from_secs(30),
        stop_grace: sshwarden::tasks::STOP_GRACE,
        ttl: Duration::from_secs(ttl),
        output_cap: 1024,
        kill_on_output_limit: false,
    }
}

fn manager(max_running: usize, max_queued: usize) -> TaskManager {
    TaskManager::new(ManagerLimits { max_running, max_queued, output_budget: 1 << 20 })
}

/// Work that writes `out`, then waits for `release` or its cancellation.
fn work(out: &'static str, release: Arc<tokio::sync::Notify>) -> Work {
    Box::new(move |ctx| {
        Box::pin(async move {
            ctx.set_running();
            ctx.sink.write(Stream::Stdout, out.as_bytes());
            tokio::select! {
                _ = release.notified() => WorkOutcome::Exited { exit_code: Some(0), exit_signal: None },
                _ = ctx.cancel.cancelled() => WorkOutcome::Stopped,
            }
        })
    })
}

#[tokio::test(start_paused = true)]
async fn results_expire_after_ttl_and_status_says_expired() {
    let tm = manager(4, 10);
    let go = Arc::new(tokio::sync::Notify::new());
    let t = tm.spawn(spec("a", 60), work("x", go.clone())).unwrap();
    tokio::task::yield_now().await;
    go.notify_one();
    assert_eq!(t.finished().await, TaskState::Completed { exit_code: Some(0), exit_signal: None });
    assert_eq!(t.snapshot().expires_in_seconds, Some(60));
    tokio::time::advance(Duration::from_secs(59)).await;
    tokio::task::yield_now().await;
    assert!(tm.get(&t.id).is_ok(), "still retained before its TTL");
    tokio::time::advance(Duration::from_secs(2)).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(tm.get(&t.id).unwrap_err(), TaskError::Expired(t.id.clone()));
    assert_eq!(tm.memory().0, 0, "expired output buffers are freed");
    assert!(matches!(tm.get("t00000000000000000000000000000000"), Err(TaskError::Unknown(_))));
}

#[tokio::test(start_paused = true)]
async fn queue_limits_and_cancel_in_every_state() {
    let tm = manager(1, 2);
    let go = Arc::new(tokio::sync::Notify::new());
    let running = tm.spawn(spec("a", 300), work("r", go.clone())).unwrap();
    let queued = tm.spawn(spec("a", 300), work("q", go.clone())).unwrap();
    assert!(matches!(tm.spawn(spec("a", 300), work("z", go.clone())), Err(TaskError::Busy { .. })));
    for _ in 0..5 {
        tokio::task::yield_now().await;
    }
    assert!(matches!(running.state(), TaskState::Running { .. }));
    assert_eq!(queued.state(), TaskState::Queued);
    // Queued: cancelled without ever running.
    assert_eq!(tm.cancel(&queued.id, CancelledBy::Client).unwrap(), TaskState::Queued);
    assert_eq!(queued.finished().await, TaskState::Cancelled { by: CancelledBy::Client });
    assert_eq!(queued.output().stdout.total(), 0);
    // Running: the work sees the cancel and stops.
    tm.cancel(&running.id, CancelledBy::Client).unwrap();
    assert_eq!(running.finished().await, TaskState::Cancelled { by: CancelledBy::Client });
    // Finished: cancelling again changes nothing.
    assert_eq!(tm.cancel(&running.id, CancelledBy::Client).unwrap(), TaskState::Cancelled { by: CancelledBy::Client });
    assert_eq!(running.state(), TaskState::Cancelled { by: CancelledBy::Client });
    // Ack frees a finished result; a running one refuses.
    let busy = tm.spawn(spec("b", 300), work("b", go.clone())).unwrap();
    tokio::task::yield_now().await;
    assert!(matches!(tm.ack(&busy.id), Err(TaskError::StillRunning(_))));
    tm.ack(&running.id).unwrap();
    assert!(matches!(tm.get(&running.id), Err(TaskError::Expired(_))));
    tm.shutdown(Duration::from_secs(5)).await;
    assert_eq!(busy.state(), TaskState::Cancelled { by: CancelledBy::Shutdown });
    assert!(matches!(tm.spawn(spec("a", 1), work("n", go)), Err(TaskError::ShuttingDown)));
}

#[tokio::test(start_paused = true)]
async fn timeouts_are_their_own_state() {
    let tm = manager(2, 2);
    let never = Arc::new(tokio::sync::Notify::new());
    let mut s = spec("a", 300);
    s.timeout = Duration::from_secs(5);
    let t = tm.spawn(s, work("slow", never)).unwrap();
    assert_eq!(t.finished().await, TaskState::TimedOut);
    assert!(t.snapshot().elapsed_ms >= 5000);
}

#[tokio::test]
async fn ids_are_unguessable_and_the_budget_evicts_oldest_finished_first() {
    let tm = TaskManager::new(ManagerLimits { max_running: 8, max_queued: 100, output_budget: 64 * 1024 });
    let mut ids = std::collections::HashSet::new();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let go = Arc::new(tokio::sync::Notify::new());
        go.notify_one();
        let big: &'static str = Box::leak("y".repeat(40 * 1024).into_boxed_str());
        let mut s = spec("a", 300);
        s.output_cap = 1 << 20;
        let t = tm.spawn(s, work(big, go)).unwrap();
        t.finished().await;
        assert!(t.id.len() == 33 && t.id.starts_with('t'));
        ids.insert(t.id.clone());
        tasks.push(t);
    }
    assert_eq!(ids.len(), 6);
    let (used, _) = tm.memory();
    assert!(used <= 64 * 1024 + 3 * 40 * 1024, "budget {used}");
    assert!(tasks[0].snapshot().output_evicted, "the oldest result gave up its buffers");
    assert!(!tasks[5].snapshot().output_evicted, "the newest kept its output");
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_task_gets_its_own_stop_grace_not_a_fixed_six_seconds() {
    // A runbook's rollback runs after the run's deadline: its work needs its steps' own
    // timeouts to finish, here 20 s, far past the 6 s a single command gets to stop.
    let tm = manager(4, 10);
    let mut s = spec("runbook:r", 60);
    s.timeout = Duration::from_secs(1);
    s.stop_grace = Duration::from_secs(30);
    let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = finished.clone();
    let work: Work = Box::new(move |ctx| {
        Box::pin(async move {
            ctx.set_running();
            ctx.cancel.cancelled().await;
            tokio::time::sleep(Duration::from_secs(20)).await;
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            WorkOutcome::Exited { exit_code: Some(0), exit_signal: None }
        })
    });
    let t = tm.spawn(s, work).unwrap();
    assert_eq!(t.finished().await, TaskState::TimedOut);
    assert!(finished.load(std::sync::atomic::Ordering::SeqCst), "the work was cut off before its end");
}
