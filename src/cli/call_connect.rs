//! `sshwarden call`'s connection: an MCP client to a running `serve --http` (`--url`, the
//! `/mcp` endpoint by default, a token when given) or to an in-process server over an
//! in-memory duplex; re-exported by `call.rs`.
//!
//! Owns: `Client`, `Connected` (closing it shuts an in-process service down) and the
//! connect errors people read. Never calls a tool or prints a result.

use std::path::PathBuf;

use rmcp::{RoleClient, ServiceExt};

use crate::cli::ConfigArgs;
use crate::cli::call::CallClient;
use crate::mcp::SshWarden;
use crate::server::{SHUTDOWN_GRACE, read_token, start_service};
pub(crate) type Client = rmcp::service::RunningService<RoleClient, CallClient>;

/// A client connected to a running server (`--url`) or to an in-process one.
pub(crate) struct Connected {
    pub client: Client,
    svc: Option<std::sync::Arc<crate::service::Service>>,
}

impl Connected {
    /// The in-process service, when there is one (not with `--url`).
    pub(crate) fn local_service(&self) -> Option<&std::sync::Arc<crate::service::Service>> {
        self.svc.as_ref()
    }

    pub async fn close(self) {
        let _ = self.client.cancel().await;
        if let Some(svc) = self.svc {
            svc.shutdown(SHUTDOWN_GRACE).await;
        }
    }
}

pub(crate) async fn connect(
    args: &ConfigArgs,
    url: Option<String>,
    token_file: Option<PathBuf>,
) -> Result<Connected, String> {
    match url {
        Some(url) => {
            let token = read_token(token_file.as_ref())?;
            let url = mcp_url(&url);
            let cfg =
                rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(url.clone())
                    .auth_header(token.expose().to_owned());
            let transport = rmcp::transport::StreamableHttpClientTransport::from_config(cfg);
            let client = CallClient.serve(transport).await.map_err(|e| connect_error(&e, &url))?;
            Ok(Connected { client, svc: None })
        }
        None => {
            let svc = start_service(crate::cli::commands::dirs(args)).map_err(|e| {
                eprintln!("{e}");
                "the configuration did not load".to_owned()
            })?;
            let (server_io, client_io) = tokio::io::duplex(1 << 20);
            let server = SshWarden::new(svc.clone());
            tokio::spawn(async move {
                if let Ok(running) = server.serve(server_io).await {
                    let _ = running.waiting().await;
                }
            });
            let client = CallClient.serve(client_io).await.map_err(|e| e.to_string())?;
            Ok(Connected { client, svc: Some(svc) })
        }
    }
}

/// The MCP endpoint of a server URL: `http://h:p` and `http://h:p/` mean its `/mcp`.
pub(crate) fn mcp_url(url: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    let after_scheme = trimmed.split_once("://").map_or(trimmed, |(_, rest)| rest);
    if after_scheme.contains('/') { trimmed.to_owned() } else { format!("{trimmed}/mcp") }
}

/// What a person can act on when connecting failed, read from the error's type (never its
/// text): a refused token, a missing endpoint, a server that does not answer.
fn connect_error(e: &rmcp::service::ClientInitializeError, url: &str) -> String {
    use rmcp::transport::streamable_http_client::StreamableHttpError;
    // The transport's own error sits in `TransportError`'s field, not in the source chain.
    let mut source: Option<&(dyn std::error::Error + 'static)> = match e {
        rmcp::service::ClientInitializeError::TransportError { error, .. } => Some(error.error.as_ref()),
        other => Some(other),
    };
    while let Some(err) = source {
        if let Some(http) = err.downcast_ref::<StreamableHttpError<reqwest::Error>>() {
            return match http {
                StreamableHttpError::AuthRequired(_) => {
                    format!("401: {url} refused the token (check --token-file or SSHWARDEN_TOKEN)")
                }
                StreamableHttpError::InsufficientScope(_) => format!("403: {url} refused the token's scope"),
                StreamableHttpError::SessionExpired => {
                    format!("404: no MCP endpoint at {url} (the server serves /mcp)")
                }
                StreamableHttpError::Client(r) if r.is_connect() => {
                    format!("cannot connect to {url}: is `sshwarden serve --http` running there?")
                }
                StreamableHttpError::Client(r) if r.is_timeout() => format!("{url} did not answer in time"),
                StreamableHttpError::UnexpectedServerResponse(why) => format!("{url} answered unexpectedly: {why}"),
                other => format!("{url}: {other}"),
            };
        }
        source = err.source();
    }
    format!("{url}: {e}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_server_url_without_a_path_means_its_mcp_endpoint() {
        assert_eq!(super::mcp_url("http://127.0.0.1:8765"), "http://127.0.0.1:8765/mcp");
        assert_eq!(super::mcp_url("http://127.0.0.1:8765/"), "http://127.0.0.1:8765/mcp");
        assert_eq!(super::mcp_url("http://127.0.0.1:8765/mcp"), "http://127.0.0.1:8765/mcp");
        assert_eq!(super::mcp_url("https://h/prefix/mcp/"), "https://h/prefix/mcp");
    }
}
