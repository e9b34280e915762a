//! The single expiry task: evicts finished results when their TTL passes.
//!
//! Owns: sleeping until the earliest deadline (mini-redis style: `Notify` +
//! `sleep_until`). Never touches running tasks.

use std::sync::Arc;

use tokio::time::Instant;

use super::{Inner, lock};

pub(super) async fn run(inner: Arc<Inner>) {
    loop {
        let next = {
            let mut deadlines = lock(&inner.deadlines);
            let now = Instant::now();
            while let Some(first) = deadlines.first().cloned() {
                if first.0 > now {
                    break;
                }
                deadlines.pop_first();
                inner.remove(&first.1);
            }
            deadlines.first().map(|d| d.0)
        };
        tokio::select! {
            _ = async {
                match next {
                    Some(when) => tokio::time::sleep_until(when).await,
                    None => std::future::pending().await,
                }
            } => {}
            _ = inner.expiry_notify.notified() => {}
            _ = inner.shutdown.cancelled() => return,
        }
    }
}
