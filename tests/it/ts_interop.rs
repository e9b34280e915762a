//! The official TypeScript MCP SDK (`@modelcontextprotocol/sdk` 1.32, what Claude Code,
//! VS Code and Cursor build on) driving the binary over stdio and over HTTP with a bearer
//! token (tests/interop/interop.mjs). This SDK validates `structuredContent` against a
//! tool's `outputSchema` even on error results and warns on non-standard schema formats,
//! which the Rust and Python clients do not. Installed with npm into `target/interop-node`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::mcp_e2e::http_server;
use crate::support::mcp::BIN;
use crate::support::sshd::{Fleet, FleetOptions};

/// The npm project the script runs in (ESM resolves packages next to the script).
pub fn node_project() -> PathBuf {
    // Two tests (this one and oauth.rs) may ask at once: one npm install at a time.
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/interop-node");
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = std::fs::read_to_string(src.join("package.json")).unwrap();
    let ready = dir.join(".installed");
    if std::fs::read_to_string(&ready).ok().as_deref() != Some(manifest.as_str()) {
        std::fs::write(dir.join("package.json"), &manifest).unwrap();
        let ok = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "npm install failed in {dir:?} (needs nodejs, npm and the npm registry)");
        std::fs::write(&ready, &manifest).unwrap();
    }
    std::fs::copy(src.join("interop.mjs"), dir.join("interop.mjs")).unwrap();
    std::fs::copy(src.join("oidc.mjs"), dir.join("oidc.mjs")).unwrap();
    std::fs::copy(src.join("oauth_client.mjs"), dir.join("oauth_client.mjs")).unwrap();
    dir
}

fn run(project: &Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new("node")
        .arg(project.join("interop.mjs"))
        .args(args)
        .env("SSHWARDEN_REMOTE_USER", "swtest")
        .output()
        .expect("node not found: apt-get install -y nodejs npm");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "typescript sdk {args:?} failed:\n{stderr}\n{stdout}");
    assert!(!stderr.contains("unknown format"), "schema warnings on stderr:\n{stderr}");
    serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap()
}

#[test]
fn typescript_sdk_over_stdio_and_http() {
    let project = node_project();
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let token = "ts-interop-token-0123456789";
    let server = http_server(&fleet, token);
    let url = format!("http://127.0.0.1:{}/mcp", server.1);
    let config = fleet.config_dir();
    let config = config.to_str().unwrap();
    for args in [["stdio", BIN, config, "h1"], ["http", &url, token, "h1"]] {
        let seen = run(&project, &args);
        assert_eq!(seen["ok"], true, "{}: {seen}", args[0]);
        assert!(seen["progress"].as_u64().unwrap_or(0) >= 1, "{}: {seen}", args[0]);
        assert!(seen["denial"].as_str().is_some_and(|r| !r.is_empty()), "{}: {seen}", args[0]);
        assert_eq!(seen["schema_warnings"], 0, "{}: {seen}", args[0]);
    }
}
