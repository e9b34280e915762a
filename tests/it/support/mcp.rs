//! MCP clients driving the built `sshwarden` binary: rmcp over stdio (child process) and
//! over streamable HTTP, recording progress notifications.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation, NumberOrString,
    ProgressNotificationParam, ProgressToken, RequestMetaObject,
};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_sshwarden");

/// Records every progress notification.
#[derive(Clone, Default)]
pub struct Recorder {
    pub progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
    pub updated: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for Recorder {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(ClientCapabilities::default(), Implementation::new("sshwarden-it", "0"))
    }

    async fn on_progress(&self, p: ProgressNotificationParam, _: NotificationContext<RoleClient>) {
        self.progress.lock().unwrap().push(p);
    }

    async fn on_resource_updated(
        &self,
        p: rmcp::model::ResourceUpdatedNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.updated.lock().unwrap().push(p.uri);
    }
}

pub type Client = RunningService<RoleClient, Recorder>;

pub async fn stdio(config_dir: &Path) -> (Client, Recorder) {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("serve").arg("--config-dir").arg(config_dir).env("SSHWARDEN_LOG", "sshwarden=warn");
    let (transport, _stderr) = TokioChildProcess::builder(cmd).stderr(Stdio::inherit()).spawn().unwrap();
    let rec = Recorder::default();
    (rec.clone().serve(transport).await.unwrap(), rec)
}

pub async fn http(url: &str, token: &str) -> Result<(Client, Recorder), String> {
    let cfg = rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(url.to_owned())
        .auth_header(token.to_owned());
    let transport = rmcp::transport::StreamableHttpClientTransport::from_config(cfg);
    let rec = Recorder::default();
    let client = rec.clone().serve(transport).await.map_err(|e| e.to_string())?;
    Ok((client, rec))
}

pub fn params(tool: &str, args: Value) -> CallToolRequestParams {
    let Value::Object(map) = args else { panic!("arguments must be an object") };
    CallToolRequestParams::new(tool.to_owned()).with_arguments(map)
}

/// Calls a tool with a progress token; returns (is_error, structured content or, for an
/// error, the `{kind, message, hint}` body its text carries).
pub async fn call(client: &Client, tool: &str, args: Value) -> (bool, Value) {
    let mut p = params(tool, args);
    p.meta = Some(RequestMetaObject::with_progress_token(ProgressToken(NumberOrString::String(
        format!("{tool}-progress").into(),
    ))));
    let r: CallToolResult = client.call_tool(p).await.unwrap_or_else(|e| panic!("{tool}: {e}"));
    if let Some(err) = sshwarden::mcp::error_body(&r) {
        assert!(r.structured_content.is_none(), "{tool}: an error result must carry no structuredContent");
        return (true, err);
    }
    (r.is_error == Some(true), r.structured_content.unwrap_or(Value::Null))
}

/// Ends a client at the end of a test. The assertions are done by then; a client whose
/// service task already ended (the server closed first, or rmcp's own loop stopped) is
/// reported on stderr instead of failing a test whose behaviour was checked (CI saw one
/// such `JoinError` at teardown on 2026-12-04, never reproduced in 12 local runs).
pub async fn close(client: Client) {
    if let Err(e) = client.cancel().await {
        eprintln!("mcp client teardown: {e}");
    }
}
