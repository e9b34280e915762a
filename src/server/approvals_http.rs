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

/// A principal deciding through `/approvals` with its own token (`auth:`, the approve
/// scope), set by the guard; absent for the shared approver token.
#[derive(Clone)]
struct ApproverPrincipal(String);

/// The `/approvals` routes, guarded by `approver` (or, with `auth:`, a caller holding the
/// approve scope), for requests to one of `hosts`.
pub fn router(
    svc: Arc<Service>,
    approver: Secret,
    hosts: Vec<String>,
    auth: Arc<crate::server::auth::Authenticator>,
) -> axum::Router {
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
            let (approver, svc, hosts, auth) = (approver.clone(), guard_svc.clone(), hosts.clone(), auth.clone());
            async move { guard(req, next, &approver, &svc, &hosts, &auth).await }
        }))
}

async fn guard(
    mut req: Request,
    next: Next,
    approver: &Secret,
    svc: &Service,
    hosts: &[String],
    auth: &crate::server::auth::Authenticator,
) -> Response {
    if let Some(refused) =
        crate::server::foreign_origin(req.headers(), svc).or_else(|| crate::server::foreign_host(req.headers(), hosts))
    {
        return refused;
    }
    let offered = crate::server::bearer(req.headers()).to_owned();
    let cfg = svc.config();
    // With `auth:`, a person may decide with their own token (never the MCP token, which
    // agents hold), if it carries the approve scope; four eyes are checked per request.
    if let Some(settings) = cfg.policy.auth.as_ref()
        && !crate::server::bearer_matches(&offered, approver)
        && let Ok(caller) = auth.authenticate_own(settings, &offered).await
    {
        if !caller.scopes.contains(&settings.scopes.approve) {
            let challenge = crate::server::auth::challenge(
                settings,
                &crate::server::auth::Refusal::InsufficientScope(settings.scopes.approve.clone()),
            );
            let body = json!({ "error": "insufficient_scope" });
            return (StatusCode::FORBIDDEN, [(header::WWW_AUTHENTICATE, challenge)], axum::Json(body)).into_response();
        }
        req.extensions_mut().insert(ApproverPrincipal(caller.principal));
        return next.run(req).await;
    }
    if !crate::server::bearer_matches(&offered, approver) {
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

async fn approve(
    State(svc): State<Arc<Service>>,
    who: Option<axum::Extension<ApproverPrincipal>>,
    Path(id): Path<String>,
) -> Response {
    decide(&svc, &id, true, who.map(|axum::Extension(p)| p))
}

async fn deny(
    State(svc): State<Arc<Service>>,
    who: Option<axum::Extension<ApproverPrincipal>>,
    Path(id): Path<String>,
) -> Response {
    decide(&svc, &id, false, who.map(|axum::Extension(p)| p))
}

fn decide(svc: &Service, id: &str, approve: bool, who: Option<ApproverPrincipal>) -> Response {
    let decided = match &who {
        Some(ApproverPrincipal(p)) => svc.decide_approval_as(id, approve, p),
        None => svc.decide_approval(id, approve, BY),
    };
    match decided {
        // A rule wanting several approvers keeps the request pending until the last one.
        Ok(()) if approve && svc.approvals.pending().iter().any(|r| r.id == id) => {
            axum::Json(json!({ "approval_id": id, "decision": "counted", "more_approvers_needed": true }))
                .into_response()
        }
        Ok(()) => {
            let decision = if approve { "approved" } else { "denied" };
            axum::Json(json!({ "approval_id": id, "decision": decision })).into_response()
        }
        Err(e) => {
            let status = match e {
                DecideError::Unknown(_) => StatusCode::NOT_FOUND,
                DecideError::AlreadyDecided(_) => StatusCode::CONFLICT,
                DecideError::NotRecorded(_) => StatusCode::SERVICE_UNAVAILABLE,
                DecideError::OwnRequest(..) => StatusCode::FORBIDDEN,
                DecideError::NeedsApprovers(..) | DecideError::AlreadyApprovedBy(..) => StatusCode::CONFLICT,
            };
            (status, axum::Json(json!({ "error": e.to_string() }))).into_response()
        }
    }
}
