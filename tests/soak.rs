//! Soak: a bounded mixed workload (sync, async + paging, fan-out, cancels, floods) against a
//! local sshd fleet for SSHWARDEN_SOAK_SECONDS (default 90). Afterwards: zero lost results,
//! no growth of file descriptors, connections, tasks or RSS beyond a bound. Its own test
//! binary (own process), so RSS and file descriptors measure only the soak.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sshwarden::service::fanout::{self, FanoutOptions, HostStatus};
use sshwarden::tasks::TaskState;
use sshwarden::tasks::ring::Stream;
use tokio_util::sync::CancellationToken;

#[path = "it/support/mod.rs"]
mod support;

use support::sshd::{Fleet, FleetOptions};
use support::svc::{service, start};

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_workload_soak_leaks_nothing() {
    let secs: u64 = std::env::var("SSHWARDEN_SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(90);
    let fleet = Fleet::start(FleetOptions { hosts: 3, max_sessions: 10 });
    fleet.write_config("execution:\n  output_memory_budget_bytes: 8388608\n");
    let policy = std::fs::read_to_string(fleet.path("config/policy.yml")).unwrap();
    std::fs::write(
        fleet.path("config/policy.yml"),
        policy.replace("  max_seconds: 30\n", "  max_seconds: 30\n  task_result_ttl: 2\n  max_output_bytes: 262144\n"),
    )
    .unwrap();
    let svc = service(&fleet);
    // Warm up: one connection per host, allocator pools.
    for h in ["h1", "h2", "h3"] {
        start(&svc, h, "true", None).await.unwrap().finished().await;
    }
    let (fd0, rss0) = (fds(), rss_kib());
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut workers = Vec::new();
    for w in 0..6u64 {
        let (svc, done) = (svc.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                let host = ["h1", "h2", "h3"][((w + i) % 3) as usize];
                match (w + i) % 5 {
                    0 => {
                        let t = start(&svc, host, &format!("echo sync-{w}-{i}"), None).await.unwrap();
                        assert_eq!(t.finished().await, TaskState::Completed { exit_code: Some(0), exit_signal: None });
                        assert_eq!(t.output().stdout.page(0, 100).data, format!("sync-{w}-{i}\n").into_bytes());
                    }
                    1 => {
                        let t = start(&svc, host, "for i in 1 2 3 4 5; do echo line $i; sleep 0.05; done", None)
                            .await
                            .unwrap();
                        let mut offset = 0;
                        let mut got = Vec::new();
                        loop {
                            let finished = t.state().is_finished();
                            let page = t.output().stdout.page(offset, 8);
                            offset = page.next_offset;
                            got.extend(page.data);
                            if finished && offset == t.output().stdout.total() {
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        assert_eq!(String::from_utf8(got).unwrap(), "line 1\nline 2\nline 3\nline 4\nline 5\n");
                    }
                    2 => {
                        let opts = FanoutOptions {
                            concurrency: 3,
                            batch_size: Some(2),
                            max_fail_percentage: 100.0,
                            timeout_seconds: None,
                            approval: None,
                        };
                        let r = fanout::run(
                            &svc,
                            &fanout::targets(&svc, "web").unwrap(),
                            "hostname",
                            &opts,
                            None,
                            &CancellationToken::new(),
                            |_, _, _| {},
                        )
                        .await
                        .unwrap();
                        assert_eq!(r.iter().filter(|e| e.status == HostStatus::Ok).count(), 3);
                    }
                    3 => {
                        let t = start(&svc, host, "sleep 20", None).await.unwrap();
                        tokio::time::sleep(Duration::from_millis(150)).await;
                        svc.cancel(&t.id, None).unwrap();
                        let s = tokio::time::timeout(Duration::from_secs(10), t.finished()).await.expect("cancel hung");
                        assert!(matches!(s, TaskState::Cancelled { .. }), "{s:?}");
                    }
                    _ => {
                        let t = start(&svc, host, "head -c 3000000 /dev/zero", None).await.unwrap();
                        t.finished().await;
                        let snap = t.snapshot();
                        assert_eq!((snap.stdout_bytes, snap.truncated), (3_000_000, true));
                        assert!(t.output().retained() <= 262_144);
                        let _ = t.output().stream(Stream::Combined).tail_lines(1);
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for w in workers {
        w.await.expect("a worker failed: a result was lost or wrong");
    }
    let ops = done.load(Ordering::Relaxed);
    assert!(ops > 20, "only {ops} operations in {secs} s");
    // Let TTLs (2 s) expire, then check that everything went back down.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let live: Vec<_> = svc.tasks().list();
    assert!(live.iter().all(|t| t.state.is_finished()), "tasks still running after the load");
    assert!(live.len() <= 6, "{} results not expired", live.len());
    assert!(svc.tasks().memory().0 <= 8 << 20);
    assert!(svc.pool().connection_count() <= 9, "connections: {}", svc.pool().connection_count());
    let (fd1, rss1) = (fds(), rss_kib());
    assert!(fd1 <= fd0 + 12, "file descriptors grew {fd0} -> {fd1}");
    assert!(rss1 <= rss0 + 64 * 1024, "RSS grew {rss0} KiB -> {rss1} KiB");
    eprintln!(
        "soak: {ops} operations in {secs} s; fds {fd0}->{fd1}; RSS {rss0}->{rss1} KiB; connections {}",
        svc.pool().connection_count()
    );
}
