//! `sshwarden import ssh-config|ansible`: sample files checked field by field, then the
//! imported inventory used to run a real command against the sshd fixture.

use std::process::Command;

use serde_json::Value;

use crate::support::mcp::BIN;
use crate::support::sshd::{Fleet, FleetOptions, PORT, USER};

fn sshwarden(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).env("SSHWARDEN_LOG", "sshwarden=warn").output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn yaml(path: &std::path::Path) -> Value {
    serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn host<'a>(servers: &'a Value, alias: &str) -> &'a Value {
    servers["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["alias"] == alias)
        .unwrap_or_else(|| panic!("no {alias}: {servers:?}"))
}

/// A policy that allows everything and knows the fleet's host keys.
fn write_policy(fleet: &Fleet, dir: &std::path::Path) {
    let policy = format!(
        "known_hosts_path: {}\nnetwork:\n  allow_cidrs: [\"127.0.0.0/8\"]\nrules:\n  - action: allow\n    commands: [\"*\"]\naudit:\n  path: {}\n",
        fleet.path("keys/known_hosts").display(),
        dir.join("audit.jsonl").display()
    );
    std::fs::write(dir.join("policy.yml"), policy).unwrap();
}

/// The imported inventory in `out` runs `whoami` on the alias `real` as the login user.
fn runs_whoami(fleet: &Fleet, out: &std::path::Path) {
    write_policy(fleet, out);
    let keys = fleet.path("keys");
    let (code, text, err) = sshwarden(&[
        "call",
        "--config-dir",
        out.to_str().unwrap(),
        "--keys-dir",
        keys.to_str().unwrap(),
        "ssh_run",
        "alias=real",
        "command=whoami",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains(&format!("\"stdout\": \"{USER}\\n\"")), "{text}");
}

#[test]
fn ssh_config_import_field_by_field_and_a_real_command() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let dir = fleet.path("import-ssh");
    std::fs::create_dir_all(&dir).unwrap();
    let ip = fleet.hosts[0].addr.ip();
    std::fs::write(
        dir.join("extra.conf"),
        format!(
            "Host real\n  HostName {ip}\n  Port {PORT}\n  User {USER}\n  IdentityFile {}\n",
            fleet.path("keys/id_ed25519").display()
        ),
    )
    .unwrap();
    let config = format!(
        "# sample\n# defaults come last: the first value obtained wins, as in ssh\nInclude {}\nHost web1\n  HostName 10.0.0.11\n  Port=2222\n  IdentityFile ~/.ssh/id_web\nHost web2 db\n  HostName \"10.0.0.12\"\nHost db\n  User dba\n  ProxyJump web1\n  CertificateFile ~/.ssh/id_web-cert.pub\nHost edge\n  HostName 10.9.9.9\n  ProxyJump ops@jump.example.com:2200\nHost *.example !x\n  User x\nMatch host foo\n  User y\nHost *\n  Port 22\n  User globaluser\n",
        dir.join("extra.conf").display()
    );
    std::fs::write(dir.join("config"), config).unwrap();
    let out = dir.join("out");
    let (code, _, err) =
        sshwarden(&["import", "ssh-config", dir.join("config").to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("Host pattern \"*.example\" is not a concrete host") && err.contains("config:17: Host pattern"),
        "{err}"
    );
    assert!(err.contains("Match blocks are not imported"), "{err}");
    let servers = yaml(&out.join("servers.yml"));
    let web1 = host(&servers, "web1");
    assert_eq!((web1["host"].as_str(), web1["port"].as_u64()), (Some("10.0.0.11"), Some(2222)));
    assert!(web1["description"].as_str().unwrap().ends_with("config:4"), "{web1:?}");
    let web2 = host(&servers, "web2");
    assert_eq!((web2["host"].as_str(), web2["port"].as_u64()), (Some("10.0.0.12"), Some(22)), "Host * applies last");
    let db = host(&servers, "db");
    assert_eq!((db["host"].as_str(), db["proxy_jump"][0].as_str()), (Some("10.0.0.12"), Some("web1")));
    let edge = host(&servers, "edge");
    assert_eq!(edge["proxy_jump"][0], "jump.example.com", "{edge:?}");
    let jump = host(&servers, "jump.example.com");
    assert_eq!(jump["port"].as_u64(), Some(2200));
    let creds = yaml(&out.join("credentials.yml"));
    let cred_of = |alias: &str| {
        let name = host(&servers, alias)["credentials"].as_str().unwrap().to_owned();
        creds["entries"].as_array().unwrap().iter().find(|c| c["name"] == name.as_str()).cloned().unwrap()
    };
    assert_eq!(cred_of("db")["username"], "dba");
    assert!(cred_of("db")["certificate_path"].as_str().unwrap().ends_with("/.ssh/id_web-cert.pub"));
    assert_eq!(cred_of("web2")["username"], "globaluser");
    assert_eq!(cred_of("jump.example.com")["username"], "ops");
    let (code, _, err) =
        sshwarden(&["import", "ssh-config", dir.join("config").to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(code == 1 && err.contains("exists; pass --force"), "{err}");

    assert!(
        cred_of("db")["key_path"].as_str().unwrap().ends_with("/.ssh/id_web"),
        "a lone CertificateFile implies its key"
    );

    // An imported entry runs a real command (the sample's ~/.ssh keys are not in the
    // fleet's keys dir, so this imports the included file alone).
    let out = dir.join("out-real");
    let (code, _, err) =
        sshwarden(&["import", "ssh-config", dir.join("extra.conf").to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    runs_whoami(&fleet, &out);
}

#[test]
fn ansible_ini_and_yaml_field_by_field_and_a_real_command() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let dir = fleet.path("import-ansible");
    std::fs::create_dir_all(&dir).unwrap();
    let ip = fleet.hosts[0].addr.ip();
    let ini = format!(
        "bastion ansible_host=10.0.0.1\n[web]\nweb[01:03].example.com ansible_user=deploy\n[db]\ndb1 ansible_host=10.0.0.5 ansible_port=2222 ansible_ssh_common_args='-J bastion'\nreal ansible_host={ip} ansible_port={PORT} ansible_user={USER} ansible_ssh_private_key_file={}\n[prod:children]\nweb\ndb\n[db:vars]\nansible_user=dba\n",
        fleet.path("keys/id_ed25519").display()
    );
    std::fs::write(dir.join("hosts.ini"), ini).unwrap();
    let out = dir.join("ini");
    let (code, _, err) =
        sshwarden(&["import", "ansible", dir.join("hosts.ini").to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let servers = yaml(&out.join("servers.yml"));
    assert_eq!(servers["hosts"].as_array().unwrap().len(), 6, "{servers:?}");
    let web02 = host(&servers, "web02.example.com");
    assert_eq!(web02["tags"], serde_json::json!(["prod", "web"]));
    let db1 = host(&servers, "db1");
    assert_eq!(
        (db1["host"].as_str(), db1["port"].as_u64(), db1["proxy_jump"][0].as_str()),
        (Some("10.0.0.5"), Some(2222), Some("bastion"))
    );
    let creds = yaml(&out.join("credentials.yml"));
    let name = db1["credentials"].as_str().unwrap();
    let cred = creds["entries"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap();
    assert_eq!(cred["username"], "dba", "group vars apply");
    runs_whoami(&fleet, &out);

    let yml = "all:\n  vars:\n    ansible_user: ops\n  children:\n    app:\n      hosts:\n        app[1:2]:\n          ansible_port: 2200\n      children:\n        canary:\n          hosts:\n            app9:\n              ansible_host: 10.1.1.9\n              ansible_ssh_common_args: \"-o ProxyJump=app1\"\n";
    std::fs::write(dir.join("inv.yml"), yml).unwrap();
    let out = dir.join("yml");
    let (code, _, err) =
        sshwarden(&["import", "ansible", dir.join("inv.yml").to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let servers = yaml(&out.join("servers.yml"));
    assert_eq!(host(&servers, "app2")["port"].as_u64(), Some(2200));
    let app9 = host(&servers, "app9");
    assert_eq!((app9["host"].as_str(), app9["proxy_jump"][0].as_str()), (Some("10.1.1.9"), Some("app1")));
    assert_eq!(app9["tags"], serde_json::json!(["app", "canary"]), "parent groups become tags");
    assert!(app9["description"].as_str().unwrap().contains("inv.yml:"), "{app9:?}");
}
