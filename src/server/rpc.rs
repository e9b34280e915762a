//! `POST /rpc`: plain JSON-RPC 2.0 for scripts and ops runbooks. `method` is a tool name,
//! `params` its arguments, `result` the tool's structured result. No MCP headers, no
//! `_meta`, no session: each call goes through one in-process MCP client connected to the
//! same server handler as `/mcp`, so tools, gates and audit are exactly those of `/mcp`.
//! The HTTP layer in front (bearer token, Origin, Host allow-list, body cap) is shared.
//!
//! Errors: a tool-level failure is code -32000 with `data: {kind, message, hint, …}`;
//! -32601 unknown method, -32602 invalid params, -32600 invalid request, -32700 parse
//! error. Batches are answered as arrays; notifications (no `id`) get no answer.
//!
//! Owns: the JSON-RPC envelope. Never calls a tool another way than `/mcp` would.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};

use crate::mcp::SshWarden;
use crate::service::Service;

#[derive(Clone)]
struct RpcClient;

impl ClientHandler for RpcClient {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("sshwarden-rpc", env!("CARGO_PKG_VERSION")),
        )
    }
}

/// The `/rpc` state: the client and the tool names it may call.
pub struct Rpc {
    client: rmcp::service::RunningService<RoleClient, RpcClient>,
    tools: HashSet<String>,
    allowed_hosts: Vec<String>,
}

impl Rpc {
    pub async fn start(
        svc: Arc<Service>,
        allowed_hosts: Vec<String>,
        tools: &crate::mcp::ToolSet,
    ) -> Result<Arc<Self>, String> {
        let (server_io, client_io) = tokio::io::duplex(1 << 20);
        let server = SshWarden::new(svc).exposing(tools);
        tokio::spawn(async move {
            if let Ok(running) = server.serve(server_io).await {
                let _ = running.waiting().await;
            }
        });
        let client = RpcClient.serve(client_io).await.map_err(|e| e.to_string())?;
        let tools = client.list_all_tools().await.map_err(|e| e.to_string())?;
        let tools = tools.into_iter().map(|t| t.name.to_string()).collect();
        Ok(Arc::new(Self { client, tools, allowed_hosts }))
    }

    /// One JSON-RPC request, as `caller` (the HTTP guard's, with `auth:`) when there is one.
    async fn one(&self, request: Value, caller: Option<&crate::service::Caller>) -> Option<Value> {
        let id = request.get("id").cloned();
        let reply = |body: Value| id.clone().map(|id| json!({ "jsonrpc": "2.0", "id": id, "result": body }));
        let fail = |code: i64, message: String, data: Option<Value>| {
            let mut error = json!({ "code": code, "message": message });
            if let Some(d) = data {
                error["data"] = d;
            }
            Some(json!({ "jsonrpc": "2.0", "id": id.clone().unwrap_or(Value::Null), "error": error }))
        };
        let (Some("2.0"), Some(method)) = (request["jsonrpc"].as_str(), request["method"].as_str()) else {
            return fail(-32600, "invalid request: needs \"jsonrpc\": \"2.0\" and a string \"method\"".into(), None);
        };
        let args = match request.get("params") {
            None | Some(Value::Null) => serde_json::Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return id.as_ref().and(fail(-32602, "params must be an object of tool arguments".into(), None)),
        };
        if !self.tools.contains(method) {
            let known: Vec<&str> = self.tools.iter().map(String::as_str).collect();
            return id.as_ref().and(fail(
                -32601,
                format!("method not found: {method:?} is not a tool"),
                Some(json!({ "tools": known })),
            ));
        }
        let mut params = CallToolRequestParams::new(method.to_owned()).with_arguments(args);
        if let Some(c) = caller {
            let mut meta = rmcp::model::RequestMetaObject::default();
            meta.0.0.insert(crate::service::caller::CALLER_META.to_owned(), c.to_meta());
            params.meta = Some(meta);
        }
        let result = self.client.call_tool(params).await;
        let response = match result {
            Err(rmcp::ServiceError::McpError(e)) if e.code == rmcp::model::ErrorCode::INVALID_PARAMS => {
                fail(-32602, e.message.to_string(), e.data.clone())
            }
            Err(e) => fail(-32603, format!("internal error: {e}"), None),
            Ok(r) => match crate::mcp::error_body(&r) {
                Some(body) => {
                    let message = body["message"].as_str().unwrap_or("tool failed").to_owned();
                    fail(-32000, message, Some(body))
                }
                // rmcp answers arguments that do not fit the tool's parameters with an error
                // result in plain text: that is invalid params.
                None if r.is_error == Some(true) => {
                    let text: Vec<&str> =
                        r.content.iter().filter_map(|c| c.as_text()).map(|t| t.text.as_str()).collect();
                    fail(-32602, format!("invalid params: {}", text.join(" ")), None)
                }
                None => reply(r.structured_content.clone().unwrap_or_else(|| json!({ "content": r.content }))),
            },
        };
        // A notification is executed but never answered.
        id.as_ref().and(response)
    }

    fn host_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else { return false };
        let name = if host.starts_with('[') {
            host.split(']').next().map(|h| h.trim_start_matches('[')).unwrap_or("")
        } else {
            host.rsplit_once(':').map_or(host, |(h, _)| h)
        };
        self.allowed_hosts.iter().any(|a| a == name)
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// `POST /rpc` (behind the bearer-token middleware).
pub async fn handle(
    State(rpc): State<Arc<Rpc>>,
    caller: Option<axum::Extension<crate::service::Caller>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = caller.map(|axum::Extension(c)| c);
    let caller = caller.as_ref();
    if !rpc.host_allowed(&headers) {
        return (StatusCode::FORBIDDEN, "host not allowed").into_response();
    }
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            let err = json!({ "jsonrpc": "2.0", "id": null, "error": { "code": -32700, "message": format!("parse error: {e}") } });
            return json_response(StatusCode::OK, &err);
        }
    };
    match parsed {
        Value::Array(items) if items.is_empty() => {
            let err = json!({ "jsonrpc": "2.0", "id": null, "error": { "code": -32600, "message": "invalid request: empty batch" } });
            json_response(StatusCode::OK, &err)
        }
        Value::Array(items) => {
            let answers: Vec<Value> = futures::future::join_all(items.into_iter().map(|r| rpc.one(r, caller)))
                .await
                .into_iter()
                .flatten()
                .collect();
            if answers.is_empty() {
                StatusCode::NO_CONTENT.into_response()
            } else {
                json_response(StatusCode::OK, &Value::Array(answers))
            }
        }
        single => match rpc.one(single, caller).await {
            Some(answer) => json_response(StatusCode::OK, &answer),
            None => StatusCode::NO_CONTENT.into_response(),
        },
    }
}
