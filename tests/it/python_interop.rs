//! The official Python MCP SDK, 1.x (initialize, 2025-era protocol) and 2.x (default
//! `auto`, which speaks stateless 2026-07-28), each in its own virtualenv under
//! `target/interop-venvs`, driving the binary over stdio and HTTP (tests/interop/interop.py).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::mcp_e2e::http_server;
use crate::support::mcp::BIN;
use crate::support::sshd::{Fleet, FleetOptions};

pub fn venv(name: &str, requirement: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/interop-venvs").join(name);
    let python = dir.join("bin/python");
    let ready = dir.join(".installed");
    if !ready.exists() {
        let ok = Command::new("python3").args(["-m", "venv"]).arg(&dir).status().is_ok_and(|s| s.success());
        assert!(ok, "cannot create a virtualenv: apt-get install -y python3-venv");
        let ok =
            Command::new(&python).args(["-m", "pip", "install", "-q", requirement]).status().is_ok_and(|s| s.success());
        assert!(ok, "pip install {requirement:?} failed (needs access to the package index)");
        std::fs::write(&ready, requirement).unwrap();
    }
    python
}

fn run(python: &Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new(python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/interop.py"))
        .args(args)
        .env("SSHWARDEN_REMOTE_USER", "swtest")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{python:?} {args:?} failed:\n{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap()
}

#[test]
fn python_sdk_1x_and_2x_over_stdio_and_http() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let token = "py-interop-token-0123456789";
    let server = http_server(&fleet, token);
    let url = format!("http://127.0.0.1:{}/mcp", server.1);
    let config = fleet.config_dir();
    let config = config.to_str().unwrap();
    for (name, req, protocol) in [("mcp1", "mcp>=1.20,<2", "2025-11-25"), ("mcp2", "mcp>=2.3,<3", "2026-07-28")] {
        let python = venv(name, req);
        for args in [["stdio", BIN, config, "h1"], ["http", &url, token, "h1"]] {
            let seen = run(&python, &args);
            assert_eq!(
                (seen["ok"].as_bool(), seen["protocol"].as_str()),
                (Some(true), Some(protocol)),
                "{name} {}: {seen}",
                args[0]
            );
            assert!(seen["progress"].as_u64().unwrap_or(0) >= 1, "{name} {}: {seen}", args[0]);
        }
    }
}
