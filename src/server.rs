//! Wires config, service and MCP together and serves them: stdio, streamable HTTP with a
//! bearer token, and `sshwarden call` (one tool, in process or against a running server).
//!
//! Owns: transports, HTTP authentication (constant-time token compare, Origin check,
//! loopback rules, body limit), graceful shutdown on stdin close, SIGINT and SIGTERM.
//! Never writes to stdout except through the MCP stdio transport and `call`'s result.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation, NumberOrString,
    ProgressNotificationParam, ProgressToken, RequestMetaObject,
};
use rmcp::service::NotificationContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::cli::ConfigArgs;
use crate::commands::{EXIT_DENIED, EXIT_ERROR, EXIT_FAILED, EXIT_OK, dirs};
use crate::config::Secret;
use crate::mcp::SshWarden;
use crate::net::HickoryResolver;
use crate::service::{Service, ServiceError};

/// How long running tasks get to stop (remote commands signalled) on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Largest HTTP request body accepted.
const MAX_BODY: usize = 1024 * 1024;
/// A client must send its request headers within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

fn start_service(args: &ConfigArgs) -> Option<Arc<Service>> {
    let cfg_dirs = dirs(args);
    let resolver = match HickoryResolver::from_system(Duration::from_secs(2)) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            eprintln!("error: {e}");
            return None;
        }
    };
    match Service::start(cfg_dirs, resolver) {
        Ok(s) => {
            let cfg = s.config();
            for w in &cfg.warnings {
                tracing::warn!("{w}");
            }
            if !s.lost_tasks().is_empty() {
                tracing::warn!(
                    count = s.lost_tasks().len(),
                    "tasks were running when sshwarden last stopped; ssh_list_tasks shows them as lost"
                );
            }
            tracing::info!(hosts = cfg.hosts.len(), rules = cfg.policy.rules.len(), config_hash = %cfg.hash, "configuration loaded");
            Some(s)
        }
        Err(ServiceError::Config(e)) => {
            for d in &e.diagnostics {
                eprintln!("{d}");
            }
            None
        }
        Err(e) => {
            eprintln!("error: {e}");
            None
        }
    }
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

fn read_token(token_file: Option<&PathBuf>) -> Result<Secret, String> {
    if let Some(p) = token_file {
        let t = std::fs::read_to_string(p).map_err(|e| format!("cannot read token file {}: {e}", p.display()))?;
        let t = t.trim().to_owned();
        if t.len() < 16 {
            return Err(format!("token in {} is shorter than 16 characters", p.display()));
        }
        return Ok(Secret::new(t));
    }
    match std::env::var("SSHWARDEN_TOKEN") {
        Ok(t) if t.trim().len() >= 16 => Ok(Secret::new(t.trim().to_owned())),
        Ok(_) => Err("SSHWARDEN_TOKEN is shorter than 16 characters".into()),
        Err(_) => Err("HTTP needs a bearer token: --token-file FILE or env SSHWARDEN_TOKEN".into()),
    }
}

/// `sshwarden serve`.
pub async fn serve(args: &ConfigArgs, http: Option<SocketAddr>, token_file: Option<PathBuf>) -> u8 {
    let token = match http.map(|_| read_token(token_file.as_ref())) {
        Some(Err(e)) => {
            eprintln!("error: refusing to serve HTTP: {e}");
            return EXIT_ERROR;
        }
        Some(Ok(t)) => Some(t),
        None => None,
    };
    let Some(svc) = start_service(args) else {
        return EXIT_ERROR;
    };
    let code = match (http, token) {
        (Some(addr), Some(token)) => serve_http(svc.clone(), addr, token).await,
        _ => serve_stdio(svc.clone()).await,
    };
    svc.shutdown(SHUTDOWN_GRACE).await;
    tracing::info!("stopped");
    code
}

async fn serve_stdio(svc: Arc<Service>) -> u8 {
    let running = match SshWarden::new(svc).serve(rmcp::transport::stdio()).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: MCP stdio session failed to start: {e}");
            return EXIT_ERROR;
        }
    };
    tracing::info!("serving MCP on stdio");
    let ct = running.cancellation_token();
    tokio::spawn(async move {
        shutdown_signal().await;
        ct.cancel();
    });
    // Returns when stdin closes or a signal cancelled the session.
    let _ = running.waiting().await;
    EXIT_OK
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

async fn serve_http(svc: Arc<Service>, addr: SocketAddr, token: Secret) -> u8 {
    let mut hosts = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    hosts.push(addr.ip().to_string());
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_max_request_body_bytes(MAX_BODY)
        .disable_allowed_origins();
    let svc2 = svc.clone();
    let service: StreamableHttpService<SshWarden, LocalSessionManager> = StreamableHttpService::new(
        move || Ok(SshWarden::new(svc2.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let token = Arc::new(token);
    let audit_svc = svc.clone();
    let app = axum::Router::new().nest_service("/mcp", service).layer(axum::middleware::from_fn(
        move |req: Request, next: Next| {
            let (token, svc) = (token.clone(), audit_svc.clone());
            async move { authorize(req, next, &token, &svc).await }
        },
    ));
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return EXIT_ERROR;
        }
    };
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "listening on a non-loopback address; every request still needs the bearer token");
    }
    tracing::info!(%addr, "serving MCP over streamable HTTP at /mcp");
    serve_connections(listener, app).await;
    EXIT_OK
}

/// Accepts connections until SIGINT/SIGTERM. Unlike `axum::serve`, connections get a header
/// read timeout (hyper needs a timer for it), so a client that trickles its headers
/// (slowloris) is dropped instead of holding a connection forever.
async fn serve_connections(listener: tokio::net::TcpListener, app: axum::Router) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use tower::Service;

    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let shutdown = shutdown_signal();
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

async fn authorize(req: Request, next: Next, token: &Secret, svc: &Service) -> Response {
    let headers: &HeaderMap = req.headers();
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
        && !is_loopback_origin(origin)
    {
        let _ =
            svc.audit(None, "http_auth_failure", json!({ "reason": "origin not allowed", "origin": origin }), false);
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
    let offered = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let ok: bool = offered.as_bytes().ct_eq(token.expose().as_bytes()).into();
    if !ok {
        let reason = if offered.is_empty() { "missing bearer token" } else { "wrong bearer token" };
        let _ = svc.audit(None, "http_auth_failure", json!({ "reason": reason }), false);
        return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], "unauthorized").into_response();
    }
    next.run(req).await
}

/// A client that prints progress notifications to stderr.
#[derive(Clone)]
struct CallClient;

impl ClientHandler for CallClient {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("sshwarden-call", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn on_progress(&self, p: ProgressNotificationParam, _: NotificationContext<RoleClient>) {
        eprintln!("progress: {}", p.message.unwrap_or_else(|| p.progress.to_string()));
    }
}

/// `key=value` pairs typed by the tool's input schema (so `command=true` stays a string and
/// `timeout_seconds=5` is a number), merged over `--json`.
fn parse_args(
    json_arg: Option<String>,
    kv: &[String],
    schema: &serde_json::Map<String, Value>,
) -> Result<serde_json::Map<String, Value>, String> {
    let mut map = match json_arg {
        Some(j) => match serde_json::from_str::<Value>(&j) {
            Ok(Value::Object(m)) => m,
            _ => return Err("--json must be a JSON object".into()),
        },
        None => serde_json::Map::new(),
    };
    let props = schema.get("properties").and_then(Value::as_object);
    for pair in kv {
        let (k, v) = pair.split_once('=').ok_or_else(|| format!("argument {pair:?} is not key=value"))?;
        let prop = props.and_then(|p| p.get(k)).ok_or_else(|| {
            let known: Vec<&String> = props.map(|p| p.keys().collect()).unwrap_or_default();
            format!("unknown parameter {k:?}; this tool takes: {known:?}")
        })?;
        let types = serde_json::to_string(prop).unwrap_or_default();
        let value = if types.contains("\"string\"") {
            Value::String(v.to_owned())
        } else if types.contains("\"integer\"") || types.contains("\"number\"") {
            v.parse::<u64>()
                .map(Value::from)
                .or_else(|_| v.parse::<f64>().map(Value::from))
                .map_err(|_| format!("{k} must be a number, got {v:?}"))?
        } else if types.contains("\"boolean\"") {
            v.parse::<bool>().map(Value::Bool).map_err(|_| format!("{k} must be true or false"))?
        } else {
            serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned()))
        };
        map.insert(k.to_owned(), value);
    }
    Ok(map)
}

/// Exit code for a tool result: denied 3; failed 4 (error result, a run that did not
/// complete with exit code 0, a fan-out with failures); otherwise 0.
fn exit_code_of(r: &CallToolResult) -> u8 {
    let s = r.structured_content.clone().unwrap_or(Value::Null);
    if r.is_error == Some(true) {
        return if matches!(s["kind"].as_str(), Some("policy_denied" | "network_denied")) {
            EXIT_DENIED
        } else {
            EXIT_FAILED
        };
    }
    let run_failed = |run: &Value| match run["status"].as_str() {
        Some("completed") => run["exit_code"].as_u64() != Some(0),
        Some("queued" | "connecting" | "running") => false,
        _ => true,
    };
    // A run result (ssh_run, ssh_get_task_result) or an async start that already finished.
    let run = if s.get("exit_code").is_some() { Some(&s) } else { s.get("result").filter(|r| r.is_object()) };
    if run.is_some_and(run_failed) {
        return EXIT_FAILED;
    }
    let summary = &s["summary"];
    let count = |k: &str| summary[k].as_u64().unwrap_or(0);
    if count("denied") > 0 && count("ok") == 0 && count("failed") == 0 {
        return EXIT_DENIED;
    }
    if count("failed") > 0 || count("unreachable") > 0 || count("denied") > 0 {
        return EXIT_FAILED;
    }
    EXIT_OK
}

/// `sshwarden call`.
pub async fn call(
    args: &ConfigArgs,
    url: Option<String>,
    token_file: Option<PathBuf>,
    json_arg: Option<String>,
    tool: &str,
    kv: &[String],
) -> u8 {
    let request = CallRequest { tool: tool.to_owned(), json_arg, kv: kv.to_vec() };
    let result = match url {
        Some(url) => {
            let token = match read_token(token_file.as_ref()) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: {e}");
                    return EXIT_ERROR;
                }
            };
            let cfg = rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(url)
                .auth_header(token.expose().to_owned());
            let transport = rmcp::transport::StreamableHttpClientTransport::from_config(cfg);
            run_call(CallClient.serve(transport).await.map_err(|e| e.to_string()), request).await
        }
        None => {
            let Some(svc) = start_service(args) else {
                return EXIT_ERROR;
            };
            let (server_io, client_io) = tokio::io::duplex(1 << 20);
            let server = SshWarden::new(svc.clone());
            tokio::spawn(async move {
                if let Ok(running) = server.serve(server_io).await {
                    let _ = running.waiting().await;
                }
            });
            let r = run_call(CallClient.serve(client_io).await.map_err(|e| e.to_string()), request).await;
            svc.shutdown(SHUTDOWN_GRACE).await;
            r
        }
    };
    match result {
        Ok(r) => {
            let body = r.structured_content.clone().unwrap_or_else(|| json!({ "content": r.content }));
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", serde_json::to_string_pretty(&body).unwrap_or_default());
            exit_code_of(&r)
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_ERROR
        }
    }
}

struct CallRequest {
    tool: String,
    json_arg: Option<String>,
    kv: Vec<String>,
}

async fn run_call<S>(
    client: Result<rmcp::service::RunningService<RoleClient, S>, String>,
    req: CallRequest,
) -> Result<CallToolResult, String>
where
    S: rmcp::service::Service<RoleClient>,
{
    let client = client?;
    let tools = client.list_all_tools().await.map_err(|e| e.to_string())?;
    let Some(tool) = tools.iter().find(|t| t.name == req.tool) else {
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        return Err(format!("unknown tool {:?}; tools: {}", req.tool, names.join(", ")));
    };
    let arguments = parse_args(req.json_arg, &req.kv, &tool.input_schema)?;
    let mut params = CallToolRequestParams::new(req.tool.clone()).with_arguments(arguments);
    params.meta = Some(RequestMetaObject::with_progress_token(ProgressToken(NumberOrString::String("call".into()))));
    let r = client.call_tool(params).await.map_err(|e| e.to_string());
    let _ = client.cancel().await;
    r
}
