//! Out-of-band approval over HTTP: the `/approvals` endpoints of `serve --http` (the
//! `sshwarden approvals list|approve|deny` client is `cli/approvals.rs`).
//!
//! Owns: the approver's side. Its routes accept only the approver token (a separate secret,
//! `--approver-token-file`); the normal bearer token, which agents hold, is refused there,
//! so an agent can never approve its own request. A browser request from a foreign origin
//! or to a foreign Host name is refused as on `/mcp` (the approver page calls these routes
//! with the token as a bearer header; no cookie is ever accepted, so there is nothing for
//! a cross-site request to ride on). Decisions go to `Service::approvals`; the waiting call
//! writes the audit record. Never runs anything.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::config::Secret;
use crate::service::Service;
use crate::service::approvals::DecideError;

const BY: &str = "approver token";

/// The `/approvals` routes, guarded by `approver`, for requests to one of `hosts`.
pub fn router(svc: Arc<Service>, approver: Secret, hosts: Vec<String>) -> axum::Router {
    svc.approvals.enable_out_of_band();
    let approver = Arc::new(approver);
    let hosts = Arc::new(hosts);
    let guard_svc = svc.clone();
    axum::Router::new()
        .route("/approvals", axum::routing::get(list))
        .route("/approvals/{id}/approve", axum::routing::post(approve))
        .route("/approvals/{id}/deny", axum::routing::post(deny))
        .with_state(svc)
        .layer(axum::middleware::from_fn(move |req: Request, next: Next| {
            let (approver, svc, hosts) = (approver.clone(), guard_svc.clone(), hosts.clone());
            async move { guard(req, next, &approver, &svc, &hosts).await }
        }))
}

async fn guard(req: Request, next: Next, approver: &Secret, svc: &Service, hosts: &[String]) -> Response {
    if let Some(refused) =
        crate::server::foreign_origin(req.headers(), svc).or_else(|| crate::server::foreign_host(req.headers(), hosts))
    {
        return refused;
    }
    if !crate::server::bearer_matches(crate::server::bearer(req.headers()), approver) {
        svc.audit_or_warn(None, "http_auth_failure", json!({ "reason": "approvals need the approver token" }));
        let body = json!({ "error": "the approvals endpoints need the approver token (not the MCP bearer token)" });
        return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], axum::Json(body)).into_response();
    }
    next.run(req).await
}

async fn list(State(svc): State<Arc<Service>>) -> Response {
    // `decided` and `now_ms` (the page's clock for ages) were added for the approver page;
    // `approvals` keeps its shape for `sshwarden approvals list`.
    let body = json!({
        "approvals": svc.approvals.pending(),
        "decided": svc.approvals.recently_decided(),
        "now_ms": crate::tasks::now_ms(),
    });
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
}

async fn approve(State(svc): State<Arc<Service>>, Path(id): Path<String>) -> Response {
    decide(&svc, &id, true)
}

async fn deny(State(svc): State<Arc<Service>>, Path(id): Path<String>) -> Response {
    decide(&svc, &id, false)
}

fn decide(svc: &Service, id: &str, approve: bool) -> Response {
    match svc.decide_approval(id, approve, BY) {
        Ok(()) => {
            let decision = if approve { "approved" } else { "denied" };
            axum::Json(json!({ "approval_id": id, "decision": decision })).into_response()
        }
        Err(e) => {
            let status = match e {
                DecideError::Unknown(_) => StatusCode::NOT_FOUND,
                DecideError::AlreadyDecided(_) => StatusCode::CONFLICT,
                DecideError::NotRecorded(_) => StatusCode::SERVICE_UNAVAILABLE,
            };
            (status, axum::Json(json!({ "error": e.to_string() }))).into_response()
        }
    }
}
