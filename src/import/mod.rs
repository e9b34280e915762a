//! `sshwarden import ssh-config|ansible`: an existing inventory turned into `servers.yml`
//! and `credentials.yml`, every entry traceable (`description: imported from FILE:LINE`),
//! deterministic order, and a summary of what was skipped and why.
//!
//! Owns: the imported entry model, writing the two files (never over existing ones without
//! `--force`) and the summary. The parsers live in `ssh_config.rs` and `ansible.rs`. Never
//! connects, never reads a private key.

pub mod ansible;
pub mod ssh_config;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// What one credential entry is made of: user, key path, certificate path.
type CredKey = (String, Option<String>, Option<String>);

/// One imported host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImportedHost {
    pub alias: String,
    pub host: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub identity_file: Option<String>,
    pub certificate_file: Option<String>,
    pub proxy_jump: Vec<String>,
    pub tags: Vec<String>,
    /// `FILE:LINE` it came from.
    pub origin: String,
}

/// What an import produced.
#[derive(Debug, Default)]
pub struct Imported {
    pub hosts: Vec<ImportedHost>,
    /// `FILE:LINE: why` for everything left out.
    pub skipped: Vec<String>,
    /// The known_hosts files the source names for its hosts (`UserKnownHostsFile`,
    /// `GlobalKnownHostsFile`, else ssh's defaults), in order: what `init` copies.
    pub known_hosts_files: Vec<String>,
}

fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// Aliases must be `[A-Za-z0-9._-]`; anything else becomes `-`.
pub fn safe_alias(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' }).collect()
}

impl Imported {
    /// `servers.yml` and `credentials.yml` texts: one credential per distinct (user, key,
    /// certificate), hosts sorted by alias.
    pub fn render(&self, default_user: &str) -> (String, String) {
        let mut creds: BTreeMap<CredKey, String> = BTreeMap::new();
        let mut hosts = self.hosts.clone();
        hosts.sort_by(|a, b| a.alias.cmp(&b.alias));
        let mut servers = String::from("# Imported by `sshwarden import`; review before use.\nhosts:\n");
        for h in &hosts {
            let user = h.user.clone().unwrap_or_else(|| default_user.to_owned());
            let key = (user.clone(), h.identity_file.clone(), h.certificate_file.clone());
            let next = creds.len() + 1;
            let cred = creds.entry(key).or_insert_with(|| safe_alias(&format!("{user}-{next}"))).clone();
            servers += &format!("  - alias: {}\n    host: {}\n", yaml_str(&h.alias), yaml_str(&h.host));
            if let Some(p) = h.port {
                servers += &format!("    port: {p}\n");
            }
            servers += &format!("    credentials: {}\n", yaml_str(&cred));
            if !h.tags.is_empty() {
                let tags: Vec<String> = h.tags.iter().map(|t| yaml_str(t)).collect();
                servers += &format!("    tags: [{}]\n", tags.join(", "));
            }
            if !h.proxy_jump.is_empty() {
                let hops: Vec<String> = h.proxy_jump.iter().map(|t| yaml_str(t)).collect();
                servers += &format!("    proxy_jump: [{}]\n", hops.join(", "));
            }
            servers += &format!("    description: {}\n", yaml_str(&format!("imported from {}", h.origin)));
        }
        let mut credentials =
            String::from("# Imported by `sshwarden import`; key paths must lie inside --keys-dir.\nentries:\n");
        let mut by_name: Vec<(&String, &CredKey)> = creds.iter().map(|(k, v)| (v, k)).collect();
        by_name.sort();
        for (name, (user, key, cert)) in by_name {
            credentials += &format!("  - name: {}\n    username: {}\n", yaml_str(name), yaml_str(user));
            match key {
                Some(k) => credentials += &format!("    key_path: {}\n", yaml_str(k)),
                None => credentials += "    use_agent: true\n",
            }
            if let Some(c) = cert {
                credentials += &format!("    certificate_path: {}\n", yaml_str(c));
            }
        }
        (servers, credentials)
    }
}

/// Writes both files into `out` (refusing to overwrite without `force`) and prints a summary.
pub fn write(imported: &Imported, out: &Path, force: bool) -> Result<String, String> {
    let default_user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let (servers, credentials) = imported.render(&default_user);
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    for (name, text) in [("servers.yml", &servers), ("credentials.yml", &credentials)] {
        let path = out.join(name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true);
        if force {
            options.create(true).truncate(true);
        } else {
            options.create_new(true);
        }
        let mut f = options.open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => format!("{} exists; pass --force to overwrite it", path.display()),
            _ => format!("{}: {e}", path.display()),
        })?;
        f.write_all(text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let mut summary = format!("imported {} hosts into {}", imported.hosts.len(), out.display());
    for s in &imported.skipped {
        summary += &format!("\nskipped: {s}");
    }
    Ok(summary)
}
