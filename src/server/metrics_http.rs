//! `GET /metrics`: the Prometheus scrape endpoint (`serve --http … --metrics-token-file`).
//!
//! Owns: the route and its guard. It accepts only the metrics token (a secret of its own,
//! distinct from the MCP and approver tokens), so a scraper's credential can read counters
//! and nothing else. Never exposes a command, host name or client: the page is what
//! `service::metrics` encodes. Never serves without a token.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::config::Secret;
use crate::service::Service;

/// OpenMetrics 1.0, what `prometheus-client` writes; Prometheus asks for it by default.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The classic text format, for whoever does not ask for OpenMetrics (`curl`, `promtool
/// check metrics`, older scrapers).
const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `/metrics` route, guarded by `token`.
pub fn router(svc: Arc<Service>, token: Secret) -> axum::Router {
    let token = Arc::new(token);
    let guard_svc = svc.clone();
    axum::Router::new().route("/metrics", axum::routing::get(page)).with_state(svc).layer(axum::middleware::from_fn(
        move |req: Request, next: Next| {
            let (token, svc) = (token.clone(), guard_svc.clone());
            async move { guard(req, next, &token, &svc).await }
        },
    ))
}

async fn guard(req: Request, next: Next, token: &Secret, svc: &Service) -> Response {
    if !crate::server::bearer_matches(crate::server::bearer(req.headers()), token) {
        svc.audit_or_warn(None, "http_auth_failure", json!({ "reason": "/metrics needs the metrics token" }));
        let body =
            "the metrics endpoint needs the metrics token (--metrics-token-file), not the MCP or approver token\n";
        return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], body).into_response();
    }
    next.run(req).await
}

async fn page(axum::extract::State(svc): axum::extract::State<Arc<Service>>, headers: HeaderMap) -> Response {
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    match svc.metrics_text() {
        Ok(text) if openmetrics => ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response(),
        Ok(text) => ([(header::CONTENT_TYPE, CLASSIC)], classic_text(&text)).into_response(),
        Err(e) => {
            tracing::warn!("cannot encode metrics: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "metrics could not be encoded\n").into_response()
        }
    }
}

/// OpenMetrics text as the classic format says it: a counter family is named after its
/// samples (`x_total`, where OpenMetrics names it `x`), and `# UNIT` / `# EOF` (which the
/// classic format does not have) are dropped. Everything else is the same text.
fn classic_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut descriptor: Vec<&str> = Vec::new();
    let mut counter = false;
    let flush = |descriptor: &mut Vec<&str>, counter: bool, out: &mut String| {
        for line in descriptor.drain(..) {
            let renamed = match line.splitn(4, ' ').collect::<Vec<_>>().as_slice() {
                ["#", kind @ ("HELP" | "TYPE"), name, rest] if counter && !name.ends_with("_total") => {
                    format!("# {kind} {name}_total {rest}")
                }
                _ => line.to_owned(),
            };
            out.push_str(&renamed);
            out.push('\n');
        }
    };
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            if line.starts_with("# HELP ") && !descriptor.is_empty() {
                flush(&mut descriptor, counter, &mut out);
            }
            if line.starts_with("# HELP ") {
                counter = false;
            }
            counter |= line.starts_with("# TYPE ") && line.ends_with(" counter");
            descriptor.push(line);
            continue;
        }
        flush(&mut descriptor, counter, &mut out);
        out.push_str(line);
        out.push('\n');
    }
    flush(&mut descriptor, counter, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::classic_text;

    #[test]
    fn counters_take_their_samples_name_and_openmetrics_only_lines_go() {
        let om = "# HELP a_seconds Time.\n# TYPE a_seconds histogram\n# UNIT a_seconds seconds\na_seconds_count 1\n\
                  # HELP b Things.\n# TYPE b counter\nb_total{x=\"1\"} 2\n# HELP c Now.\n# TYPE c gauge\nc 3\n# EOF\n";
        let want = "# HELP a_seconds Time.\n# TYPE a_seconds histogram\na_seconds_count 1\n\
                    # HELP b_total Things.\n# TYPE b_total counter\nb_total{x=\"1\"} 2\n# HELP c Now.\n# TYPE c gauge\nc 3\n";
        assert_eq!(classic_text(om), want);
    }
}
