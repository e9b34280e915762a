//! Wires config, tasks and MCP together and serves them.
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::cli::ConfigArgs;

pub async fn serve(_args: &ConfigArgs, _http: Option<SocketAddr>, _token: Option<PathBuf>) -> u8 {
    1
}

pub async fn call(
    _args: &ConfigArgs,
    _url: Option<String>,
    _token: Option<PathBuf>,
    _json: Option<String>,
    _tool: &str,
    _kv: &[String],
) -> u8 {
    1
}
