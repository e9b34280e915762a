//! Turns the raw YAML mirror into checked types, collecting every problem with its place.
//!
//! Owns: `Validator`, the hosts checks, cross-file checks (duplicate aliases, missing
//! credentials), warnings for unknown host keys. The credentials checks are in
//! `validate_credentials.rs`, the policy checks in `validate_policy.rs`. Pure: secrets and key paths are resolved through `Environment`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use super::locate::Locator;
use super::raw::{RawHost, ServersFile};
use super::types::*;
use super::{Diagnostic, Secret, Severity};

/// What validation needs from the outside world.
pub trait Environment {
    /// A secret by name, or a one-line reason it was not found. The name is already valid.
    fn secret(&self, name: &str) -> Result<Secret, String>;
    /// The checked absolute path of a key inside the keys dir (plus a warning, e.g. the
    /// file does not exist yet), or why it is refused.
    fn key_path(&self, path: &str) -> Result<(PathBuf, Option<String>), String>;
    /// Where a relative path in policy.yml points.
    fn config_relative(&self, path: &str) -> PathBuf;
    /// `~/.ssh/known_hosts` of the user running sshwarden.
    fn default_known_hosts(&self) -> PathBuf;
    /// A bearer token kept in a file (`auth.tokens[].file`): at least 16 characters.
    fn token_file(&self, path: &std::path::Path) -> Result<Secret, String>;
}

/// One source file: its name for messages and its text for locating keys.
pub struct Source<'a> {
    pub name: &'a str,
    pub text: &'a str,
}

pub(super) struct Validator<'a> {
    pub diags: Vec<Diagnostic>,
    /// Hosts' `become_password_secret` values by alias, collected by `hosts`.
    pub host_become: BTreeMap<String, Secret>,
    pub(super) env: &'a dyn Environment,
}

impl<'a> Validator<'a> {
    pub fn new(env: &'a dyn Environment) -> Self {
        Self { diags: Vec::new(), host_become: BTreeMap::new(), env }
    }

    /// A rule (command or file) whose `aliases`/`tags` match no host of the inventory.
    pub(super) fn warn_selects_no_host(&mut self, src: &Source, pos: super::Pos, key: String) {
        let message = "rule's aliases/tags select no host; it has no effect".to_owned();
        self.push(Severity::Warning, src, pos, key, message);
    }

    pub(super) fn push(&mut self, sev: Severity, src: &Source, pos: super::Pos, key: String, message: String) {
        self.diags.push(Diagnostic {
            severity: sev,
            file: src.name.to_owned(),
            line: pos.line,
            col: pos.col,
            key,
            message,
        });
    }

    pub fn hosts(
        &mut self,
        src: &Source,
        raw: ServersFile,
        creds: &BTreeMap<String, Credential>,
        cred_src: &str,
    ) -> Vec<Host> {
        let loc = Locator::new(src.text);
        let mut out: Vec<Host> = Vec::new();
        for (i, h) in raw.hosts.into_iter().enumerate() {
            let at = |key: &str| loc.key_after("alias", i, key);
            let key = |k: &str| format!("hosts[{i}].{k}");
            let alias_ok = !h.alias.is_empty()
                && h.alias.len() <= 100
                && h.alias.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !alias_ok {
                self.push(
                    Severity::Error,
                    src,
                    at("alias"),
                    key("alias"),
                    format!("alias {:?} must be 1-100 of A-Z a-z 0-9 . _ -", h.alias),
                );
                continue;
            }
            if out.iter().any(|o| o.alias == h.alias) {
                self.push(
                    Severity::Error,
                    src,
                    loc.key("alias", Some(&h.alias), 1),
                    key("alias"),
                    format!("duplicate alias {:?}", h.alias),
                );
                continue;
            }
            if h.host.trim().is_empty() {
                self.push(Severity::Error, src, at("host"), key("host"), "host is empty".into());
            }
            let port = self.host_port(src, &loc, i, h.port);
            let credentials = self.host_references(src, &loc, i, &h, creds, cred_src);
            let resolve_remote = self.host_resolve(src, &loc, i, &h);
            let become_password = self.become_secret(
                src,
                at("become_password_secret"),
                key("become_password_secret"),
                h.become_password_secret.as_deref(),
            );
            if let Some(pw) = become_password {
                self.host_become.insert(h.alias.clone(), pw);
            }
            out.push(Host {
                alias: h.alias,
                host: h.host.trim().trim_start_matches('[').trim_end_matches(']').to_owned(),
                port,
                credentials,
                tags: h.tags,
                description: h.description,
                max_concurrency: h.max_concurrency.unwrap_or(4).max(1),
                connect_timeout: Duration::from_secs(h.connect_timeout.unwrap_or(10).clamp(1, 300)),
                proxy_jump: h.proxy_jump.map(super::raw::OneOrMany::into_vec).unwrap_or_default(),
                resolve_remote,
            });
        }
        self.check_routes(src, &out);
        out
    }

    /// A host's `port`: 22 by default, refused outside 1-65535.
    fn host_port(&mut self, src: &Source, loc: &Locator, i: usize, port: Option<i64>) -> u16 {
        let at = |key: &str| loc.key_after("alias", i, key);
        let key = |k: &str| format!("hosts[{i}].{k}");
        match port {
            None => 22,
            Some(p) => match u16::try_from(p) {
                Ok(p) if p > 0 => p,
                _ => {
                    self.push(Severity::Error, src, at("port"), key("port"), format!("port {p} is outside 1-65535"));
                    22
                }
            },
        }
    }

    /// A host's `resolve:` (`local` or `remote`, which needs `proxy_jump`).
    fn host_resolve(&mut self, src: &Source, loc: &Locator, i: usize, h: &RawHost) -> bool {
        let at = |key: &str| loc.key_after("alias", i, key);
        let key = |k: &str| format!("hosts[{i}].{k}");
        match h.resolve.as_deref() {
            None | Some("local") => false,
            Some("remote") if h.proxy_jump.is_some() => {
                self.push(Severity::Warning, src, at("resolve"), key("resolve"), format!("host {:?} is resolved by its jump host: the network precheck (allow/block CIDRs) cannot be enforced for it", h.alias));
                true
            }
            Some("remote") => {
                self.push(
                    Severity::Error,
                    src,
                    at("resolve"),
                    key("resolve"),
                    "resolve: remote needs proxy_jump (the jump host resolves the name)".into(),
                );
                false
            }
            Some(other) => {
                self.push(
                    Severity::Error,
                    src,
                    at("resolve"),
                    key("resolve"),
                    format!("{other:?} is not local or remote"),
                );
                false
            }
        }
    }

    /// A host's references and shape: its credentials entry, unknown keys, tags, concurrency.
    /// Returns the credentials name.
    fn host_references(
        &mut self,
        src: &Source,
        loc: &Locator,
        i: usize,
        h: &RawHost,
        creds: &BTreeMap<String, Credential>,
        cred_src: &str,
    ) -> String {
        let at = |key: &str| loc.key_after("alias", i, key);
        let key = |k: &str| format!("hosts[{i}].{k}");
        let credentials = h.credentials.clone().unwrap_or_default();
        if credentials.is_empty() {
            self.push(
                Severity::Error,
                src,
                at("alias"),
                key("credentials"),
                format!("host {:?} has no credentials reference", h.alias),
            );
        } else if !creds.contains_key(&credentials) {
            self.push(
                Severity::Error,
                src,
                at("credentials"),
                key("credentials"),
                format!("credentials {credentials:?} not found in {cred_src}"),
            );
        }
        for extra in h.extra.keys() {
            self.push(
                Severity::Warning,
                src,
                at(extra),
                key(extra),
                format!("unknown host key {extra:?} is kept but has no effect"),
            );
        }
        if let Some(tag) = h.tags.iter().find(|t| {
            t.is_empty()
                || t.len() > 50
                || !t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        }) {
            self.push(
                Severity::Error,
                src,
                at("tags"),
                key("tags"),
                format!("tag {tag:?} must be 1-50 of A-Z a-z 0-9 . _ -"),
            );
        }
        if h.max_concurrency == Some(0) {
            self.push(
                Severity::Error,
                src,
                at("max_concurrency"),
                key("max_concurrency"),
                "max_concurrency must be at least 1".into(),
            );
        }
        credentials
    }

    /// Every `proxy_jump` names an inventory alias, and following first hops never comes
    /// back to a host already on the way (a cycle).
    fn check_routes(&mut self, src: &Source, hosts: &[Host]) {
        let loc = Locator::new(src.text);
        for (i, h) in hosts.iter().enumerate() {
            let at = loc.key_after("alias", i, "proxy_jump");
            let key = format!("hosts[{i}].proxy_jump");
            if let Some(bad) = h.proxy_jump.iter().find(|a| !hosts.iter().any(|x| x.alias == **a)) {
                self.push(Severity::Error, src, at, key, format!("jump host {bad:?} is not an inventory alias"));
                continue;
            }
            let mut seen = vec![h.alias.as_str()];
            let mut next = h.proxy_jump.first();
            while let Some(hop) = next {
                if seen.contains(&hop.as_str()) {
                    let path =
                        seen.iter().chain(std::iter::once(&hop.as_str())).copied().collect::<Vec<_>>().join(" -> ");
                    self.push(Severity::Error, src, at, key.clone(), format!("jump hosts form a cycle: {path}"));
                    break;
                }
                seen.push(hop);
                next = hosts.iter().find(|x| x.alias == *hop).and_then(|x| x.proxy_jump.first());
            }
            if h.proxy_jump.contains(&h.alias) {
                self.push(Severity::Error, src, at, key, "a host cannot be its own jump host".into());
            }
        }
    }
}

/// Names of every tag used by any host, for summaries.
pub fn all_tags(hosts: &[Host]) -> BTreeSet<String> {
    hosts.iter().flat_map(|h| h.tags.iter().cloned()).collect()
}
