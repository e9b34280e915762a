//! The execution core against real sshd: exec, exit codes and signals, host keys,
//! authentication, concurrency under MaxSessions, stop ladder, faults, output bounds.

use std::sync::Arc;
use std::time::Duration;

use sshwarden::service::{Service, ServiceError};
use sshwarden::tasks::ring::Stream;
use sshwarden::tasks::{Task, TaskState};

use crate::support::sshd::{Fleet, FleetOptions, gone_within, remote_processes};

pub use crate::support::svc::{service, start};

fn text(task: &Task, stream: Stream) -> String {
    let out = task.output();
    let b = out.stream(stream);
    String::from_utf8_lossy(&b.page(0, usize::MAX).data).into_owned()
}

pub async fn run(svc: &Arc<Service>, alias: &str, command: &str) -> (TaskState, String, String) {
    let task = start(svc, alias, command, None).await.unwrap();
    let state = task.finished().await;
    (state, text(&task, Stream::Stdout), text(&task, Stream::Stderr))
}

fn completed(code: u32) -> TaskState {
    TaskState::Completed { exit_code: Some(code), exit_signal: None }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_exit_codes_signals_stderr_and_stdin() {
    let fleet = Fleet::start(FleetOptions::default());
    let svc = service(&fleet);
    assert_eq!(run(&svc, "h1", "echo hi; echo err >&2; exit 3").await, (completed(3), "hi\n".into(), "err\n".into()));
    assert_eq!(run(&svc, "h2", "whoami").await, (completed(0), "swtest\n".into(), String::new()));
    let (state, _, _) = run(&svc, "h1", "kill -TERM $$").await;
    assert_eq!(state, TaskState::Completed { exit_code: None, exit_signal: Some("TERM".into()) });
    // stdin is closed at once: a command reading it ends instead of hanging.
    assert_eq!(run(&svc, "h1", "cat; echo done").await, (completed(0), "done\n".into(), String::new()));
    // The pool reuses one connection per (address, user).
    assert_eq!(svc.pool().connection_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_methods_and_failures() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let svc = service(&fleet);
    assert_eq!(run(&svc, "pw", "echo pw").await.0, completed(0));
    assert_eq!(run(&svc, "locked", "echo locked").await.0, completed(0));
    for (alias, want) in [
        ("wrongpw", "password: rejected by server"),
        ("wrongkey", "rejected by server"),
        ("nopass", "encrypted; set key_passphrase_secret"),
    ] {
        let (state, _, _) = run(&svc, alias, "true").await;
        let TaskState::Failed { error, .. } = state else { panic!("{alias}: {state:?}") };
        assert!(error.contains("authentication as \"swtest\" failed") && error.contains(want), "{alias}: {error}");
        assert!(!error.contains("not-the-password") && !error.contains("correct horse"), "secret leaked: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_keys_unknown_changed_revoked() {
    let mut fleet = Fleet::start(FleetOptions { hosts: 2, ..Default::default() });
    let kh = fleet.path("keys/known_hosts");
    let original = std::fs::read_to_string(&kh).unwrap();
    let h2_line = original.lines().nth(1).unwrap().to_owned();
    // Unknown: only h1 is listed.
    std::fs::write(&kh, original.lines().next().unwrap()).unwrap();
    let svc = service(&fleet);
    let TaskState::Failed { error, .. } = run(&svc, "h2", "true").await.0 else { panic!() };
    assert!(
        error.contains("unknown host key for [") && error.contains("SHA256:") && error.contains(&h2_line),
        "{error}"
    );
    // Revoked: listed and revoked.
    std::fs::write(&kh, format!("{original}@revoked * {}\n", fleet.hosts[1].host_pub())).unwrap();
    let TaskState::Failed { error, .. } = run(&svc, "h2", "true").await.0 else { panic!() };
    assert!(error.contains("is revoked by") && error.contains("line 3"), "{error}");
    // Hashed known_hosts works.
    std::fs::write(&kh, &original).unwrap();
    std::process::Command::new("ssh-keygen").args(["-q", "-H", "-f"]).arg(&kh).status().unwrap();
    assert!(std::fs::read_to_string(&kh).unwrap().starts_with("|1|"));
    assert_eq!(run(&svc, "h2", "true").await.0, completed(0));
    // Changed: h1 restarts with a new key.
    std::fs::write(&kh, &original).unwrap();
    fleet.hosts[0].restart_with_new_key();
    let svc = service(&fleet);
    let TaskState::Failed { error, .. } = run(&svc, "h1", "true").await.0 else { panic!() };
    assert!(error.contains("HOST KEY CHANGED") && error.contains("lines [1]"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_commands_on_one_host_with_max_sessions_10() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, max_sessions: 10 });
    let svc = service(&fleet);
    for i in 0..200 {
        let (state, out, _) = run(&svc, "h1", &format!("echo {i}")).await;
        assert_eq!((state, out), (completed(0), format!("{i}\n")), "sequential {i}");
    }
    let mut handles = Vec::new();
    for i in 0..50 {
        let svc = svc.clone();
        handles.push(tokio::spawn(async move { run(&svc, "h1", &format!("sleep 2; echo {i}")).await }));
    }
    for (i, h) in handles.into_iter().enumerate() {
        let (state, out, err) = h.await.unwrap();
        assert_eq!((state, out), (completed(0), format!("{i}\n")), "concurrent {i}: {err}");
    }
    // 50 commands of 2 s at once, 8 sessions per connection: at least 7 connections, and
    // sshd (MaxSessions 10) never refused a session (every command succeeded above).
    assert!(svc.pool().connection_count() >= 7, "{}", svc.pool().connection_count());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_and_timeout_stop_the_remote_processes() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let svc = service(&fleet);
    // Unique sleep durations tell this run's processes from any other's.
    let tag = unique_tag();
    let cases = [
        format!("sleep 301.{tag}"),
        format!("sleep 302.{tag} | cat"),
        format!("sleep 303.{tag} & sleep 304.{tag}"),
        format!("trap '' INT TERM; sleep 305.{tag}"),
    ];
    for cmd in &cases {
        let task = start(&svc, "h1", cmd, None).await.unwrap();
        let marker = format!(".{tag}");
        wait_for(|| !remote_processes(&marker).is_empty()).await;
        svc.cancel(&task.id, None).unwrap();
        let state = task.finished().await;
        assert!(matches!(state, TaskState::Cancelled { .. }), "{cmd}: {state:?}");
        gone_within(&marker, Duration::from_secs(2)).unwrap_or_else(|left| panic!("{cmd}: still running {left:?}"));
    }
    let task = start(&svc, "h1", &format!("sleep 306.{tag} | cat"), Some(1)).await.unwrap();
    assert_eq!(task.finished().await, TaskState::TimedOut);
    gone_within(&format!("306.{tag}"), Duration::from_secs(2)).unwrap();
}

pub fn unique_tag() -> String {
    format!(
        "{:06}",
        (std::process::id() as u64 * 7919
            + std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_micros() as u64)
            % 1_000_000
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setsid_child_holding_stdout_does_not_hang_the_task() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let svc = service(&fleet);
    let t0 = std::time::Instant::now();
    let tag = unique_tag();
    let (state, out, _) = run(&svc, "h1", &format!("setsid sleep 307.{tag} & echo started")).await;
    assert_eq!((state, out), (completed(0), "started\n".into()));
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());
    // Documented limit: a setsid child leaves the session; we clean it up ourselves here.
    let _ = std::process::Command::new("pkill").args(["-u", "swtest", "-f", &format!("307.{tag}")]).status();
    // The connection keeps working afterwards.
    assert_eq!(run(&svc, "h1", "echo ok").await.1, "ok\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sshd_killed_mid_command_fails_clearly_and_the_pool_recovers() {
    let mut fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let svc = service(&fleet);
    assert_eq!(run(&svc, "h1", "true").await.0, completed(0));
    let tag = unique_tag();
    let task = start(&svc, "h1", &format!("sleep 308.{tag}"), None).await.unwrap();
    wait_for(|| !remote_processes(&format!("308.{tag}")).is_empty()).await;
    fleet.hosts[0].kill_with_sessions();
    let state = tokio::time::timeout(Duration::from_secs(20), task.finished()).await.unwrap();
    let TaskState::Failed { error, .. } = state else { panic!("{state:?}") };
    assert!(error.contains("connection closed before the command's exit status"), "{error}");
    let _ = std::process::Command::new("pkill").args(["-u", "swtest", "-f", &format!("308.{tag}")]).status();
    let TaskState::Failed { error, .. } = run(&svc, "h1", "true").await.0 else { panic!("sshd is down") };
    assert!(error.contains("connect to") && error.contains("refused"), "{error}");
    fleet.hosts[0].restart_with_new_key();
    std::fs::write(
        fleet.path("keys/known_hosts"),
        format!("[{}]:24022 {}\n", fleet.hosts[0].addr.ip(), fleet.hosts[0].host_pub()),
    )
    .unwrap();
    assert_eq!(run(&svc, "h1", "echo back").await.1, "back\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_flood_stays_bounded() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    fleet.write_config("execution:\n  output_memory_budget_bytes: 4194304\n");
    let policy = std::fs::read_to_string(fleet.path("config/policy.yml")).unwrap();
    std::fs::write(fleet.path("config/policy.yml"), policy.replace("max_seconds: 30", "max_seconds: 300")).unwrap();
    let svc = service(&fleet);
    let command = std::env::var("SSHWARDEN_FLOOD").unwrap_or_else(|_| "head -c 4G /dev/zero; echo tail-marker".into());
    let task = start(&svc, "h1", &command, None).await.unwrap();
    let mut peak = 0;
    while !task.state().is_finished() {
        peak = peak.max(task.output().retained());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(task.state(), completed(0));
    let snap = task.snapshot();
    assert_eq!(snap.stdout_bytes, 4 * 1024 * 1024 * 1024 + 12);
    assert!(snap.truncated);
    // max_output_bytes is 1 MiB: stdout, stderr and the interleaved view stay within it.
    assert!(
        task.output().retained() <= 1 << 20 && peak <= 1 << 20,
        "retained {} peak {peak}",
        task.output().retained()
    );
    assert!(task.output().stdout.tail_lines(1).ends_with(b"\0tail-marker\n"), "tail of the flood is kept");
    let (used, _) = svc.tasks().memory();
    assert!(used <= 4 << 20, "budget accounting {used}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gates_deny_before_anything_runs() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let svc = service(&fleet);
    assert!(matches!(start(&svc, "h1", "reboot now", None).await, Err(ServiceError::Denied(_))));
    assert!(matches!(start(&svc, "nope", "true", None).await, Err(ServiceError::UnknownHost(_))));
    assert!(matches!(start(&svc, "h1", "true", Some(31)).await, Err(ServiceError::InvalidInput(_))));
    fleet.write_config("");
    std::fs::write(
        fleet.path("config/policy.yml"),
        std::fs::read_to_string(fleet.path("config/policy.yml")).unwrap().replace("127.0.0.0/8", "10.0.0.0/8"),
    )
    .unwrap();
    svc.reload(None).unwrap();
    let err = start(&svc, "h1", "true", None).await.unwrap_err();
    assert!(
        err.to_string().contains("is outside") || err.to_string().contains("no resolved address is inside"),
        "{err}"
    );
}

async fn wait_for(mut cond: impl FnMut() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("condition not met within 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_close_and_output_limit_kill_stops_the_command() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    fleet.write_config("execution:\n  connection_idle_seconds: 1\n");
    let policy = std::fs::read_to_string(fleet.path("config/policy.yml")).unwrap();
    let policy = policy
        .replace("  max_seconds: 30\n", "  max_seconds: 30\n  max_output_bytes: 65536\n  on_output_limit: kill\n");
    std::fs::write(fleet.path("config/policy.yml"), policy).unwrap();
    let svc = service(&fleet);
    let tag = unique_tag();
    // Over max_output_bytes with on_output_limit: kill, the command is stopped.
    let task = start(&svc, "h1", &format!("yes flood-{tag}"), None).await.unwrap();
    assert_eq!(task.finished().await, TaskState::Cancelled { by: sshwarden::tasks::CancelledBy::OutputLimit });
    assert!(task.snapshot().truncated);
    gone_within(&format!("flood-{tag}"), Duration::from_secs(2)).unwrap();
    assert_eq!(svc.pool().connection_count(), 1);
    // Idle for longer than connection_idle_seconds: the reaper closes it.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(svc.pool().connection_count(), 0, "idle connection not closed");
    assert_eq!(run(&svc, "h1", "echo reconnected").await.1, "reconnected\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_with_sessions_the_server_refused_still_closes_when_idle() {
    // sshd allows 2 sessions per connection, the pool assumes 8: the slots sshd refused are
    // given up, and the connection must still count as idle once its sessions end.
    let fleet = Fleet::start(FleetOptions { hosts: 1, max_sessions: 2 });
    fleet.write_config("execution:\n  connection_idle_seconds: 1\n");
    let svc = service(&fleet);
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let svc = svc.clone();
            tokio::spawn(async move { run(&svc, "h1", &format!("sleep 1; echo {i}")).await })
        })
        .collect();
    let mut ok = 0;
    for h in handles {
        ok += usize::from(h.await.unwrap().0 == completed(0));
    }
    assert!(ok >= 2, "sshd ran at least its MaxSessions at once");
    assert!(svc.pool().connection_count() >= 1);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(svc.pool().connection_count(), 0, "a connection with refused sessions was kept forever");
}
