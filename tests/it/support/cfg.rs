//! A config directory in a tempdir, written from strings.

use std::path::PathBuf;

use sshwarden::config::{self, Config, ConfigError, Dirs};

pub struct CfgDir {
    pub dir: tempfile::TempDir,
}

impl CfgDir {
    pub fn new(servers: &str, credentials: &str, policy: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["config", "keys", "secrets"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        let c = dir.path().join("config");
        std::fs::write(c.join("servers.yml"), servers).unwrap();
        std::fs::write(c.join("credentials.yml"), credentials).unwrap();
        std::fs::write(c.join("policy.yml"), policy).unwrap();
        std::fs::write(dir.path().join("keys/id_ed25519"), "placeholder").unwrap();
        Self { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn config_dir(&self) -> PathBuf {
        self.path("config")
    }

    pub fn dirs(&self) -> Dirs {
        Dirs::new(self.config_dir(), None, None)
    }

    pub fn load(&self) -> Result<Config, ConfigError> {
        config::load(&self.dirs())
    }

    pub fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.path(rel), text).unwrap();
    }
}

pub const CREDS: &str = "entries:\n  - name: c\n    username: u\n    key_path: id_ed25519\n";

pub fn servers(hosts: &[(&str, &[&str])]) -> String {
    let mut s = String::from("hosts:\n");
    for (i, (alias, tags)) in hosts.iter().enumerate() {
        s.push_str(&format!(
            "  - alias: {alias}\n    host: 127.0.0.{}\n    credentials: c\n    tags: [{}]\n",
            i + 1,
            tags.join(", ")
        ));
    }
    s
}

/// A copy of tests/fixtures/anchor (the anchor's documented examples) with its keys dir and
/// the secrets it names: deploy_key_passphrase, db_password, ops_password.
pub fn anchor_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["config", "keys", "secrets"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    for f in ["servers.yml", "credentials.yml", "policy.yml"] {
        std::fs::copy(format!("tests/fixtures/anchor/{f}"), dir.path().join("config").join(f)).unwrap();
    }
    std::fs::write(dir.path().join("keys/id_ed25519"), "k").unwrap();
    std::fs::write(dir.path().join("secrets/deploy_key_passphrase"), "pass-phrase-1\n").unwrap();
    std::fs::write(dir.path().join("secrets/db_password"), "db-secret-2").unwrap();
    std::fs::write(dir.path().join("secrets/ops_password"), "ops-secret-3").unwrap();
    dir
}
