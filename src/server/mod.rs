//! Wires config, service and MCP together and serves them: stdio and streamable HTTP with a
//! bearer token (`sshwarden serve`). `call.rs` is the client side.
//!
//! Owns: transports, HTTP authentication (constant-time token compare, Origin check,
//! loopback rules, body limit), graceful shutdown on stdin close, SIGINT and SIGTERM; SIGHUP reloads the configuration.
//! Never writes to stdout except through the MCP stdio transport and `call`'s result.

pub mod approvals_http;
pub mod approver_ui;
pub mod auth;
pub mod metrics_http;
mod tokens;

pub use tokens::HttpOptions;
pub(crate) use tokens::{HttpTokens, read_token, read_token_or_env};
pub mod rpc;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::ServiceExt;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::config::{Dirs, Secret};
use crate::mcp::SshWarden;
use crate::net::HickoryResolver;
use crate::service::{Service, ServiceError};

/// How long running tasks get to stop (remote commands signalled) on shutdown.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Largest HTTP request body accepted.
const MAX_BODY: usize = 1024 * 1024;
/// A client must send its request headers within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Loads the configuration and starts the service; `Err` is what to tell the operator (every
/// diagnostic, one per line).
pub(crate) fn start_service(cfg_dirs: Dirs) -> Result<Arc<Service>, String> {
    let resolver = match HickoryResolver::from_system(Duration::from_secs(2)) {
        Ok(r) => Arc::new(r),
        Err(e) => return Err(format!("error: {e}")),
    };
    match Service::start(cfg_dirs, resolver) {
        Ok(s) => {
            let cfg = s.config();
            for w in &cfg.warnings {
                tracing::warn!("{w}");
            }
            let lost = s.lost_tasks();
            if !lost.is_empty() {
                let ids: Vec<&str> = lost.iter().filter_map(|v| v["task_id"].as_str()).collect();
                tracing::warn!(
                    count = lost.len(),
                    ids = %ids.join(","),
                    "tasks were running when sshwarden last stopped (ssh_list_tasks shows them as lost); {}",
                    crate::service::lost::HOW_TO_CLEAR
                );
            }
            tracing::info!(hosts = cfg.hosts.len(), rules = cfg.policy.rules.len(), config_hash = %cfg.hash, "configuration loaded");
            Ok(s)
        }
        Err(ServiceError::Config(e)) => {
            Err(e.diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))
        }
        Err(e) => Err(format!("error: {e}")),
    }
}

/// SIGINT and SIGTERM, listened for from the moment this is made: `serve` makes it before
/// anything is served (a signal between READY=1 and the serving loop's first poll must stop
/// it gracefully, not kill it with the default action), the terminal commands before any
/// remote work starts.
pub(crate) struct Stop {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Stop {
    pub(crate) fn listen() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self { int: signal(SignalKind::interrupt())?, term: signal(SignalKind::terminate())? })
    }

    /// The exit code of the first signal: 128 + its number, as a shell reports it.
    pub(crate) async fn next(&mut self) -> u8 {
        tokio::select! {
            _ = self.int.recv() => 128 + 2,
            _ = self.term.recv() => 128 + 15,
        }
    }
}

/// The stop signal of a server, if listening for it worked (else only stdin closing or the
/// process being killed ends it).
async fn stopped(stop: Option<Stop>) {
    match stop {
        Some(mut s) => {
            s.next().await;
        }
        None => std::future::pending().await,
    }
}

/// `sshwarden serve`: stdio, or HTTP with `http.addr`. Returns when the session ends or a
/// signal stops it; `Err` is what to tell the operator (nothing was served, or serving failed).
pub async fn serve(dirs: Dirs, http: HttpOptions, tools: &str) -> Result<(), String> {
    let tools = crate::mcp::ToolSet::parse(tools, &SshWarden::all_tool_names()).map_err(|e| format!("error: {e}"))?;
    let http = http.tokens()?;
    let stop = Stop::listen().map_err(|e| tracing::warn!("cannot listen for SIGINT/SIGTERM: {e}")).ok();
    let svc = start_service(dirs)?;
    // Registered before serving: from here on SIGHUP reloads instead of killing us.
    let hangups = reload_on_sighup(svc.clone());
    let served = match http {
        Some((addr, tokens)) => serve_http(svc.clone(), addr, tokens, tools, stop).await,
        None => serve_stdio(svc.clone(), &tools, stop).await,
    };
    hangups.abort();
    systemd(&[sd_notify::NotifyState::Stopping]);
    svc.shutdown(SHUTDOWN_GRACE).await;
    tracing::info!("stopped");
    served
}

/// Tells systemd (`Type=notify`, `NOTIFY_SOCKET`) where the service is; without systemd it
/// does nothing. A failure to tell is logged, never fatal.
fn systemd(states: &[sd_notify::NotifyState]) {
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::warn!("cannot notify systemd: {e}");
    }
}

/// SIGHUP reloads the configuration as `ssh_reload_config` does (`Service::reload`: all
/// files validated, the old config kept on any error) and logs the outcome.
fn reload_on_sighup(svc: Arc<Service>) -> tokio::task::JoinHandle<()> {
    let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    tokio::spawn(async move {
        let mut hup = match hup {
            Ok(h) => h,
            Err(e) => return tracing::warn!(error = %e, "cannot listen for SIGHUP; reload with ssh_reload_config"),
        };
        while hup.recv().await.is_some() {
            // systemd 253+ wants the reload's monotonic time with RELOADING=1.
            let mut reloading = vec![sd_notify::NotifyState::Reloading];
            reloading.extend(sd_notify::NotifyState::monotonic_usec_now().ok());
            systemd(&reloading);
            let reloaded = svc.reload(Some("signal SIGHUP"));
            systemd(&[sd_notify::NotifyState::Ready]);
            match reloaded {
                Ok((old, new)) => {
                    for w in &new.warnings {
                        tracing::warn!("{w}");
                    }
                    tracing::info!(config_hash = %new.hash, previous_hash = %old.hash, hosts = new.hosts.len(), rules = new.policy.rules.len(), "SIGHUP: configuration reloaded");
                }
                Err(ServiceError::Config(e)) => {
                    for d in &e.diagnostics {
                        tracing::warn!("{d}");
                    }
                    tracing::error!(config_hash = %svc.config().hash, "SIGHUP: configuration not reloaded; the previous configuration stays active");
                }
                Err(e) => tracing::error!("SIGHUP: configuration not reloaded: {e}"),
            }
        }
    })
}

async fn serve_stdio(svc: Arc<Service>, tools: &crate::mcp::ToolSet, stop: Option<Stop>) -> Result<(), String> {
    let running = SshWarden::new(svc)
        .exposing(tools)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| format!("error: MCP stdio session failed to start: {e}"))?;
    tracing::info!("serving MCP on stdio");
    systemd(&[sd_notify::NotifyState::Ready, sd_notify::NotifyState::Status("serving MCP on stdio")]);
    let ct = running.cancellation_token();
    tokio::spawn(async move {
        stopped(stop).await;
        ct.cancel();
    });
    // Returns when stdin closes or a signal cancelled the session.
    let _ = running.waiting().await;
    Ok(())
}

fn is_loopback_origin(origin: &str) -> bool {
    let rest = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")).unwrap_or("");
    let host = if rest.starts_with('[') {
        rest.split(']').next().map(|h| format!("{h}]")).unwrap_or_default()
    } else {
        rest.split(':').next().unwrap_or("").to_owned()
    };
    host == "localhost" || host == "[::1]" || host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// The Origin check of `/mcp`, `/rpc` and the approvals routes: a browser request from a
/// page that is not on a loopback origin is refused (and audited). `None`: go on.
pub(crate) fn foreign_origin(headers: &HeaderMap, svc: &Service) -> Option<Response> {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())?;
    if is_loopback_origin(origin) {
        return None;
    }
    svc.audit_or_warn(None, "http_auth_failure", json!({ "reason": "origin not allowed", "origin": origin }));
    Some((StatusCode::FORBIDDEN, "origin not allowed").into_response())
}

/// The Host check rmcp applies to `/mcp` (DNS rebinding), for the routes outside it: the
/// Host header must name one of `hosts` (the loopback names and the listen address).
pub(crate) fn foreign_host(headers: &HeaderMap, hosts: &[String]) -> Option<Response> {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    if hosts.iter().any(|h| h.eq_ignore_ascii_case(name)) {
        return None;
    }
    Some((StatusCode::FORBIDDEN, "host not allowed").into_response())
}

async fn serve_http(
    svc: Arc<Service>,
    addr: SocketAddr,
    tokens: HttpTokens,
    tools: crate::mcp::ToolSet,
    stop: Option<Stop>,
) -> Result<(), String> {
    let HttpTokens { mcp: token, approver, metrics } = tokens;
    let mut hosts = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    hosts.push(addr.ip().to_string());
    let rpc = crate::server::rpc::Rpc::start(svc.clone(), hosts.clone(), &tools)
        .await
        .map_err(|e| format!("error: cannot start the /rpc endpoint: {e}"))?;
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts.clone())
        .with_max_request_body_bytes(MAX_BODY)
        .disable_allowed_origins();
    let svc2 = svc.clone();
    let mcp_tasks = crate::mcp::McpTasks::default();
    let service: StreamableHttpService<SshWarden, LocalSessionManager> = StreamableHttpService::new(
        move || Ok(SshWarden::with_tasks(svc2.clone(), mcp_tasks.clone()).exposing(&tools)),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let token = Arc::new(token);
    let audit_svc = svc.clone();
    let authenticator = Arc::new(auth::Authenticator::default());
    let approvals_auth = authenticator.clone();
    let rpc_route = axum::routing::post(crate::server::rpc::handle)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(rpc);
    let app = axum::Router::new().nest_service("/mcp", service).route("/rpc", rpc_route).layer(
        axum::middleware::from_fn(move |req: Request, next: Next| {
            let (token, svc, authenticator) = (token.clone(), audit_svc.clone(), authenticator.clone());
            async move { auth::authorize(req, next, &token, &svc, &authenticator).await }
        }),
    );
    let with_approvals = approver.is_some();
    let with_metrics = metrics.is_some();
    let ready_svc = svc.clone();
    let meta = svc.clone();
    let metadata_svc = move || {
        let svc = meta.clone();
        async move { resource_metadata(&svc) }
    };
    let app = match approver {
        Some(a) => {
            // Links in notifications point here unless `approvals.page_url` says otherwise.
            svc.approvals.set_page_url(format!("http://{addr}{}", crate::server::approver_ui::PAGE));
            app.merge(crate::server::approvals_http::router(svc.clone(), a, hosts.clone(), approvals_auth))
                .merge(crate::server::approver_ui::router(svc.clone(), hosts.clone()))
        }
        None => app,
    };
    let app = match metrics {
        Some(m) => app.merge(crate::server::metrics_http::router(svc.clone(), m)),
        None => app,
    };
    // Added after the guards' layers, so neither needs a token: liveness tells nothing, and an
    // unknown path is told which paths exist (not a 401 from whichever guard came last).
    let app = app
        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
        .route("/readyz", axum::routing::get(move || async move { ready(&ready_svc) }))
        .route("/.well-known/oauth-protected-resource", axum::routing::get(metadata_svc.clone()))
        .route("/.well-known/oauth-protected-resource/{*resource}", axum::routing::get(metadata_svc))
        .fallback(move |uri: axum::http::Uri| async move { not_found(&uri, with_approvals, with_metrics) });
    let listener =
        tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("error: cannot listen on {addr}: {e}"))?;
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "listening on a non-loopback address; every request still needs the bearer token");
    }
    tracing::info!(%addr, "serving MCP over streamable HTTP at /mcp and JSON-RPC 2.0 at /rpc");
    // Ready only now: the configuration is loaded and the listener is bound.
    let status = format!("serving MCP at http://{addr}/mcp");
    systemd(&[sd_notify::NotifyState::Ready, sd_notify::NotifyState::Status(&status)]);
    serve_connections(listener, app, stop).await;
    Ok(())
}

/// `GET /.well-known/oauth-protected-resource[/…]` (RFC 9728): where MCP clients learn which
/// authorization server issues tokens for this server. No token; 404 without `auth.issuer`.
fn resource_metadata(svc: &Service) -> Response {
    match svc.config().policy.auth.as_ref().and_then(auth::metadata) {
        Some(doc) => axum::Json(doc).into_response(),
        None => (StatusCode::NOT_FOUND, axum::Json(json!({ "error": "no auth.issuer is configured" }))).into_response(),
    }
}

/// `GET /readyz`: 200 when the server can take work, 503 naming the failing check. No token
/// (a load balancer asks), and nothing beyond check names and their state.
fn ready(svc: &Service) -> Response {
    let r = svc.readiness();
    let status = if r.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(json!({ "ready": r.ready, "checks": r.checks }))).into_response()
}

/// Accepts connections until SIGINT/SIGTERM. Unlike `axum::serve`, connections get a header
/// read timeout (hyper needs a timer for it), so a client that trickles its headers
/// (slowloris) is dropped instead of holding a connection forever.
async fn serve_connections(listener: tokio::net::TcpListener, app: axum::Router, stop: Option<Stop>) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use tower::Service;

    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let shutdown = stopped(stop);
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let app = app.clone();
        let service =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| app.clone().call(req));
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
        let watched = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = watched.await;
        });
    }
    // Open SSE streams never end on their own: give in-flight requests a bounded grace.
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
}

/// The bearer token a request offers (`""` when none).
pub(crate) fn bearer(headers: &HeaderMap) -> &str {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
}

/// Constant-time comparison of an offered token with the expected one.
pub(crate) fn bearer_matches(offered: &str, token: &Secret) -> bool {
    offered.as_bytes().ct_eq(token.expose().as_bytes()).into()
}

/// 404 with the paths this server answers, as JSON.
fn not_found(uri: &axum::http::Uri, with_approvals: bool, with_metrics: bool) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut paths =
        vec!["/mcp (MCP streamable HTTP, bearer token)", "/rpc (JSON-RPC, bearer token)", "/healthz", "/readyz"];
    if with_approvals {
        paths.push("/approvals (approver token)");
        paths.push("/approvals/ui (the approver page)");
    }
    if with_metrics {
        paths.push("/metrics (Prometheus, metrics token)");
    }
    let hint = if uri.path() == "/" { " (MCP clients connect to /mcp)" } else { "" };
    let body = serde_json::json!({ "error": format!("no such path: {}{hint}", uri.path()), "paths": paths });
    (axum::http::StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}
