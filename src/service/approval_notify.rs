//! The approval notification hook (`approvals.notify` in policy.yml): every new approval
//! request is POSTed as JSON to a receiver (a chat bridge) so an approver can be paged.
//!
//! Owns: the notification's body (`approval_requested`: id, hosts, what, rule, reason,
//! client, timeout, a link to the approver page), its delivery (one detached task per
//! request, a bounded number of attempts with exponential backoff, each with a timeout, no
//! redirects followed) and warnings about failures. Never blocks, delays or fails the request
//! it announces, never decides anything, and never logs a header value (they are usually the
//! bridge's credentials) or the body (the command is the approver's business, not the log's).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};

use crate::config::NotifySettings;
use crate::service::Service;
use crate::service::approvals::ApprovalRequest;

/// Attempts per notification: the first and three retries.
const ATTEMPTS: u32 = 4;
/// The wait before the first retry; doubled before each next one (0.5 s, 1 s, 2 s).
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// One attempt's bound (connect, send, response): a stuck receiver costs at most this.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends the notification for `request` in the background when `approvals.notify` is set.
/// Returns at once; without a Tokio runtime (tests of the pure parts) nothing is sent.
pub fn announce(svc: &Arc<Service>, request: &ApprovalRequest) {
    let cfg = svc.config();
    let Some(notify) = cfg.policy.approvals.notify.clone() else { return };
    let page = page_url(cfg.policy.approvals.page_url.as_deref(), svc.approvals.served_page_url().as_deref());
    let body = body(request, page.as_deref());
    let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
    let id = request.id.clone();
    // Detached by design: delivery outlives nothing it could harm (it only talks to the
    // receiver), and its attempts are bounded in number and time.
    rt.spawn(async move { deliver(&notify, &body, &id).await });
}

/// The approver page's address: the configured one, else the one derived from the listen
/// address, as `.../approvals/ui`.
pub fn page_url(configured: Option<&str>, served: Option<&str>) -> Option<String> {
    configured.or(served).map(str::to_owned)
}

/// The JSON a receiver gets for one new request.
pub fn body(request: &ApprovalRequest, page: Option<&str>) -> Value {
    json!({
        "event": "approval_requested",
        "id": request.id,
        "hosts": request.hosts,
        "host_count": request.aliases.len(),
        "what": request.what,
        "rule": request.rule,
        "reason": request.reason,
        "client": request.client,
        "requested_at_ms": request.requested_at_ms,
        "timeout_seconds": request.timeout_seconds,
        "link": page,
    })
}

fn client() -> Option<&'static reqwest::Client> {
    static CLIENT: OnceLock<Option<reqwest::Client>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            // No redirects: the configured headers must reach the configured receiver only.
            let built =
                reqwest::Client::builder().timeout(ATTEMPT_TIMEOUT).redirect(reqwest::redirect::Policy::none()).build();
            built.map_err(|e| tracing::warn!(error = %e, "approval notifications are off: no HTTP client")).ok()
        })
        .as_ref()
}

/// Tries up to `ATTEMPTS` times; a 2xx answer ends it. Failures are warnings naming the
/// request, the attempt and the status or error kind, nothing else.
async fn deliver(notify: &NotifySettings, body: &Value, id: &str) {
    let Some(client) = client() else { return };
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        let mut req = client.post(&notify.url).json(body);
        for (name, value) in &notify.headers {
            req = req.header(name.as_str(), value.expose());
        }
        let failure = match req.send().await {
            Ok(resp) if resp.status().is_success() => {
                tracing::debug!(approval_id = id, attempt, "approval notification delivered");
                return;
            }
            Ok(resp) => format!("receiver answered {}", resp.status()),
            // Without the URL: reqwest's error text would repeat it, query secrets and all.
            Err(e) => describe(&e.without_url()),
        };
        if attempt == ATTEMPTS {
            tracing::warn!(approval_id = id, attempts = ATTEMPTS, "approval notification not delivered: {failure}");
            return;
        }
        tracing::warn!(
            approval_id = id,
            attempt,
            retry_in_ms = backoff.as_millis() as u64,
            "approval notification failed: {failure}"
        );
        tokio::time::sleep(backoff).await;
        backoff *= 2;
    }
}

fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    format!("{kind}: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ApprovalRequest {
        ApprovalRequest {
            id: "a01".into(),
            hosts: "web[1-2]".into(),
            aliases: vec!["web1".into(), "web2".into()],
            what: "systemctl restart nginx".into(),
            rule: Some("restarts".into()),
            reason: "restarts need a human".into(),
            client: "claude-code".into(),
            requested_at_ms: 1,
            timeout_seconds: 300,
            uses_per_host: 1,
            answerable_in_band: false,
            approvals_required: 1,
        }
    }

    #[test]
    fn the_body_names_the_request_and_links_the_page() {
        let page = page_url(None, Some("http://127.0.0.1:8080/approvals/ui"));
        let b = body(&request(), page.as_deref());
        assert_eq!(b["id"], "a01");
        assert_eq!(b["hosts"], "web[1-2]");
        assert_eq!(b["host_count"], 2);
        assert_eq!(b["what"], "systemctl restart nginx");
        assert_eq!(b["rule"], "restarts");
        assert_eq!(b["link"], "http://127.0.0.1:8080/approvals/ui");
        let configured = page_url(Some("https://gw.example/approvals/ui"), Some("http://127.0.0.1:1/approvals/ui"));
        assert_eq!(configured.as_deref(), Some("https://gw.example/approvals/ui"), "the configured page wins");
    }
}
