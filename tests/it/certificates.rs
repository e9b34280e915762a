//! OpenSSH user certificates (`certificate_path`) against a real sshd trusting a CA made by
//! `ssh-keygen -s`: a valid certificate logs in (its key is in no authorized_keys), an
//! expired one is refused with its validity window before any connection, a wrong principal
//! is refused by sshd with a clear error, and `check` warns about one expiring within 24 h.

use std::process::Command;

use serde_json::json;

use crate::support::mcp::{self, BIN};
use crate::support::sshd::{Fleet, FleetOptions, PORT, USER};

fn keygen(args: &[&str], dir: &std::path::Path) {
    let out = Command::new("ssh-keygen").args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "ssh-keygen {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_valid_expired_and_wrong_principal() {
    let mut fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let keys = fleet.path("keys");
    keygen(&["-q", "-t", "ed25519", "-N", "", "-C", "test-ca", "-f", "ca"], &keys);
    for (name, validity, principal) in
        [("id_cert", "-5m:+1h", USER), ("id_expired", "20200101:20200102", USER), ("id_wrong", "-5m:+1h", "nobody")]
    {
        keygen(&["-q", "-t", "ed25519", "-N", "", "-f", name], &keys);
        keygen(&["-q", "-s", "ca", "-I", name, "-n", principal, "-V", validity, &format!("{name}.pub")], &keys);
    }
    fleet.hosts[0].reconfigure(&format!("TrustedUserCAKeys {}", keys.join("ca.pub").display()));
    let ip = fleet.hosts[0].addr.ip();
    let mut hosts = String::new();
    let mut creds = std::fs::read_to_string(fleet.path("config/credentials.yml")).unwrap();
    for name in ["id_cert", "id_expired", "id_wrong"] {
        hosts += &format!("  - alias: {name}\n    host: {ip}\n    port: {PORT}\n    credentials: {name}\n");
        creds += &format!(
            "  - name: {name}\n    username: {USER}\n    key_path: {name}\n    certificate_path: {name}-cert.pub\n"
        );
    }
    fleet.add_hosts(&hosts);
    std::fs::write(fleet.path("config/credentials.yml"), creds).unwrap();

    let check = Command::new(BIN).arg("check").arg("--config-dir").arg(fleet.config_dir()).output().unwrap();
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(text.contains("\"id_cert\": certificate") && text.contains("expires in"), "{text}");
    assert!(text.contains("\"id_expired\": certificate") && text.contains("has expired"), "{text}");

    let (client, _) = mcp::stdio(&fleet.config_dir()).await;
    let (err, r) = mcp::call(&client, "ssh_run", json!({ "alias": "id_cert", "command": "whoami" })).await;
    assert!(!err && r["stdout"] == format!("{USER}\n"), "{r}");

    let logins = fleet.hosts[0].accepted_logins();
    let (_, r) = mcp::call(&client, "ssh_run", json!({ "alias": "id_expired", "command": "true" })).await;
    let e = r["error"].as_str().unwrap_or_default();
    assert!(e.contains("has expired: valid from 2020-01-01") && e.contains("to 2020-01-02"), "{r}");
    let sshd_log = std::fs::read_to_string(fleet.hosts[0].dir.join("sshd.log")).unwrap();
    assert_eq!(fleet.hosts[0].accepted_logins(), logins, "no login tried");
    assert!(!sshd_log.contains("id_expired"), "the expired certificate never reached sshd");

    let (_, r) = mcp::call(&client, "ssh_run", json!({ "alias": "id_wrong", "command": "true" })).await;
    let e = r["error"].as_str().unwrap_or_default();
    assert!(
        e.contains(&format!("authentication as \"{USER}\" failed"))
            && e.contains("rejected by server (principal or CA"),
        "{r}"
    );
    mcp::close(client).await;
}
