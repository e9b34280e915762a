//! Secret hygiene: passwords, passphrases and bearer tokens never appear in logs, errors,
//! audit records or tool results (everything a run produced is searched); output redaction;
//! ssh-agent authentication.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::mcp_e2e::http_server;
use crate::support::mcp::{self, BIN, call};
use crate::support::sshd::{Fleet, FleetOptions, password};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_logs_audit_or_results_and_redaction_applies() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    fleet.write_config("redact_output: [\"token-[0-9a-f]{8}\"]\n");
    let token = "hygiene-bearer-token-5f3a9c1e77";
    let secrets = [password(), "correct horse", "not-the-password", token];
    // A debug-level stdio server whose stderr we keep.
    let log = fleet.path("server.log");
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("serve").arg("--config-dir").arg(fleet.config_dir()).env("SSHWARDEN_LOG", "debug");
    let (transport, _) =
        rmcp::transport::TokioChildProcess::builder(cmd).stderr(std::fs::File::create(&log).unwrap()).spawn().unwrap();
    let rec = mcp::Recorder::default();
    let client = rmcp::ServiceExt::serve(rec, transport).await.unwrap();
    let mut results: Vec<Value> = Vec::new();
    for (tool, args) in [
        ("ssh_run", json!({ "alias": "pw", "command": "echo token-deadbeef in output" })),
        ("ssh_run", json!({ "alias": "wrongpw", "command": "true" })),
        ("ssh_run", json!({ "alias": "locked", "command": "true" })),
        ("ssh_run", json!({ "alias": "nopass", "command": "true" })),
        ("ssh_describe_host", json!({ "alias": "pw" })),
        ("ssh_list_hosts", json!({})),
        ("ssh_plan", json!({ "target": "auth", "command": "true" })),
        ("ssh_preflight", json!({ "target": "auth" })),
        ("ssh_reload_config", json!({})),
        ("ssh_list_tasks", json!({})),
    ] {
        results.push(call(&client, tool, args).await.1);
    }
    assert_eq!(results[0]["stdout"], "[REDACTED] in output\n", "redact_output applies: {}", results[0]);
    assert!(results[1]["error"].as_str().unwrap().contains("password: rejected"), "{}", results[1]);
    let res = client.read_resource(rmcp::model::ReadResourceRequestParams::new("ssh://hosts")).await.unwrap();
    results.push(json!(format!("{res:?}")));
    mcp::close(client).await;
    // HTTP with a wrong and the right token.
    let server = http_server(&fleet, token);
    let url = format!("http://127.0.0.1:{}/mcp", server.1);
    assert!(mcp::http(&url, "not-the-password-either").await.is_err());
    let (c, _) = mcp::http(&url, token).await.unwrap();
    results.push(call(&c, "ssh_ping", json!({})).await.1);
    mcp::close(c).await;
    drop(server);
    // `sshwarden check` output too.
    let check = Command::new(BIN).args(["check", "--config-dir"]).arg(fleet.config_dir()).output().unwrap();
    let produced = [
        std::fs::read_to_string(&log).unwrap(),
        std::fs::read_to_string(fleet.path("audit.jsonl")).unwrap(),
        serde_json::to_string(&results).unwrap(),
        String::from_utf8_lossy(&check.stdout).into_owned() + &String::from_utf8_lossy(&check.stderr),
    ];
    assert!(produced[0].contains("DEBUG"), "the server log is at debug level");
    for (i, text) in produced.iter().enumerate() {
        for s in secrets {
            assert!(!text.contains(s), "secret {s:?} found in output #{i}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_agent_authentication() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let sock = fleet.path("agent.sock");
    let agent = Command::new("ssh-agent").arg("-D").arg("-a").arg(&sock).stdout(Stdio::null()).spawn().unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _agent = Kill(agent);
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let added =
        Command::new("ssh-add").arg(fleet.path("keys/id_ed25519")).env("SSH_AUTH_SOCK", &sock).output().unwrap();
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let creds = std::fs::read_to_string(fleet.path("config/credentials.yml")).unwrap();
    std::fs::write(
        fleet.path("config/credentials.yml"),
        format!("{creds}  - name: agent\n    username: swtest\n    use_agent: true\n"),
    )
    .unwrap();
    fleet.add_hosts(&format!(
        "  - alias: viaagent\n    host: {}\n    port: 24022\n    credentials: agent\n",
        fleet.hosts[0].addr.ip()
    ));
    let run = |sock: Option<&std::path::Path>| {
        let mut c = Command::new(BIN);
        c.args(["call", "--config-dir"])
            .arg(fleet.config_dir())
            .args(["ssh_run", "alias=viaagent", "command=whoami"])
            .env_remove("SSH_AUTH_SOCK");
        if let Some(s) = sock {
            c.env("SSH_AUTH_SOCK", s);
        }
        let out = c.output().unwrap();
        (out.status.code(), serde_json::from_slice::<Value>(&out.stdout).unwrap_or(Value::Null))
    };
    let (code, v) = run(Some(&sock));
    assert_eq!((code, v["stdout"].as_str()), (Some(0), Some("swtest\n")), "{v}");
    let (code, v) = run(None);
    assert_eq!(code, Some(4));
    assert!(v["error"].as_str().unwrap().contains("agent: cannot reach SSH_AUTH_SOCK"), "{v}");
}
