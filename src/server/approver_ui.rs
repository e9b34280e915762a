//! The approver page, `GET /approvals/ui` (served with `--approver-token-file`): one HTML
//! page, one script and one stylesheet, compiled into the binary (`include_str!`, no build
//! step, no external assets).
//!
//! Owns: serving those three files with the page's security headers: a strict
//! Content-Security-Policy (only this server's own script, style and `fetch` targets; no
//! inline script; `frame-ancestors 'none'`), `X-Frame-Options: DENY`, `nosniff`, no
//! referrer, no caching. The files carry no data, so they need no token; every data call
//! the script makes (`GET /approvals`, the POSTs that decide) goes to `approvals_http.rs`,
//! which requires the approver token as a bearer header. Never reads or sets a cookie,
//! never embeds a request or a token in what it serves, and never decides anything.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::service::Service;

/// Where the page is served (links in notifications point here).
pub const PAGE: &str = "/approvals/ui";

const HTML: &str = include_str!("approver_ui/index.html");
const JS: &str = include_str!("approver_ui/app.js");
const CSS: &str = include_str!("approver_ui/app.css");

/// Only this server's own files and `fetch` to itself; nothing inline, no frames, no forms
/// that navigate, no `<base>` rewriting.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                       img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page and its two assets, with the security headers, for requests to one of `hosts`
/// from no origin or a loopback one (as `/mcp`).
pub fn router(svc: Arc<Service>, hosts: Vec<String>) -> axum::Router {
    let hosts = Arc::new(hosts);
    axum::Router::new()
        .route(PAGE, axum::routing::get(|| async { asset(HTML, "text/html; charset=utf-8") }))
        .route("/approvals/ui/app.js", axum::routing::get(|| async { asset(JS, "text/javascript; charset=utf-8") }))
        .route("/approvals/ui/app.css", axum::routing::get(|| async { asset(CSS, "text/css; charset=utf-8") }))
        .layer(axum::middleware::from_fn(move |req: Request, next: Next| {
            let (svc, hosts) = (svc.clone(), hosts.clone());
            async move {
                let refused = crate::server::foreign_origin(req.headers(), &svc)
                    .or_else(|| crate::server::foreign_host(req.headers(), &hosts));
                match refused {
                    Some(r) => r,
                    None => secured(next.run(req).await),
                }
            }
        }))
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Adds the page's security headers to every response of these routes (404s included).
fn secured(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The page needs nothing of the browser's powerful features.
    h.insert(
        header::HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
    );
    h.insert(header::HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_assets_have_no_inline_script_and_no_external_reference() {
        // CSP would block them anyway; this keeps the page working under it.
        assert!(!HTML.contains("<script>") && !HTML.contains("onclick=") && !HTML.contains("style="));
        for text in [HTML, JS, CSS] {
            assert!(!text.contains("https://") && !text.contains("http://"), "no external asset");
        }
        assert!(!JS.contains("innerHTML") && !JS.contains("document.write") && !JS.contains("eval("));
        assert!(!JS.contains("document.cookie") && !JS.contains("localStorage"), "token in the session only");
        assert!(CSP.contains("frame-ancestors 'none'") && CSP.contains("script-src 'self'"));
    }
}
