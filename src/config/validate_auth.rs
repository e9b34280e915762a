//! Validation of what policy.yml says about callers: `auth:` (the issuer, audience and keys
//! of an OAuth 2.1 authorization server whose access tokens the HTTP server accepts, the
//! claims and scopes it reads, named static tokens), `limits.quotas`, and how many approvers
//! an `ask` rule wants. Errors carry file:line:col.
//!
//! Owns: turning `RawAuth` into `AuthSettings`, including the refusals that keep token
//! validation sound: no `none`, no HMAC (a shared secret is not a public key), an issuer and
//! key URL over https (plain http only on loopback, for a provider on the same machine),
//! distinct token names and values. Never fetches anything (the server does, when a token
//! arrives) and never logs a token.

use std::collections::BTreeSet;

use jsonwebtoken::Algorithm;

use super::Severity;
use super::callers::{AuthScopes, AuthSettings, NamedToken, OidcSettings};
use super::locate::Locator;
use super::raw::RawAuth;
use super::validate::{Source, Validator};
use crate::policy::Action;

const DEFAULT_ALGORITHMS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];
const ASYMMETRIC: [(&str, Algorithm); 10] = [
    ("RS256", Algorithm::RS256),
    ("RS384", Algorithm::RS384),
    ("RS512", Algorithm::RS512),
    ("PS256", Algorithm::PS256),
    ("PS384", Algorithm::PS384),
    ("PS512", Algorithm::PS512),
    ("ES256", Algorithm::ES256),
    ("ES384", Algorithm::ES384),
    ("EdDSA", Algorithm::EdDSA),
    ("Ed25519", Algorithm::EdDSA),
];

/// `https://…`, or `http://` to a loopback host (a provider on this machine).
pub fn acceptable_url(url: &str) -> bool {
    if url.starts_with("https://") && url.len() > "https://".len() {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else { return false };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(h, port)| if port.parse::<u16>().is_ok() { h } else { host });
    host == "localhost" || host == "[::1]" || host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

impl Validator<'_> {
    pub(super) fn auth(&mut self, src: &Source, loc: &Locator, raw: &RawAuth) -> AuthSettings {
        // The key's own line under `auth:` (a token's: its list item), else `auth:` itself.
        let bad = |this: &mut Self, key: &str, msg: String| {
            let at = match key.strip_prefix("tokens[").and_then(|k| k.split(']').next()?.parse::<usize>().ok()) {
                Some(i) => loc.item_under("auth", "tokens", i),
                None => loc.key_after("auth", 0, key),
            };
            this.push(Severity::Error, src, at, format!("auth.{key}"), msg);
        };
        let oidc = match (&raw.issuer, &raw.audience) {
            (None, None) => None,
            (Some(_), None) | (None, Some(_)) => {
                bad(self, "audience", "issuer and audience go together: tokens are checked for both".into());
                None
            }
            (Some(issuer), Some(audience)) => {
                if !acceptable_url(issuer) {
                    bad(self, "issuer", format!("{issuer:?} must be an https:// URL (http:// only on loopback)"));
                }
                if audience.trim().is_empty() {
                    bad(self, "audience", "must name this server's resource URL".into());
                }
                if let Some(j) = raw.jwks_uri.as_deref().filter(|j| !acceptable_url(j)) {
                    bad(self, "jwks_uri", format!("{j:?} must be an https:// URL (http:// only on loopback)"));
                }
                let mut algorithms = Vec::new();
                for name in &raw.algorithms {
                    match ASYMMETRIC.iter().find(|(n, _)| n == name) {
                        Some((_, a)) if !algorithms.contains(a) => algorithms.push(*a),
                        Some(_) => {}
                        None if name.eq_ignore_ascii_case("none") || name.to_ascii_uppercase().starts_with("HS") => {
                            bad(
                                self,
                                "algorithms",
                                format!(
                                    "{name:?} is refused: tokens must be signed with a private key the server never holds"
                                ),
                            );
                        }
                        None => {
                            let known: Vec<&str> = ASYMMETRIC.iter().map(|(n, _)| *n).collect();
                            bad(self, "algorithms", format!("{name:?} is not one of {}", known.join(", ")));
                        }
                    }
                }
                if algorithms.is_empty() {
                    algorithms = DEFAULT_ALGORITHMS.to_vec();
                }
                Some(OidcSettings {
                    issuer: issuer.clone(),
                    audience: audience.clone(),
                    jwks_uri: raw.jwks_uri.clone(),
                    algorithms,
                    leeway_seconds: raw.leeway_seconds.unwrap_or(60).min(600),
                })
            }
        };
        if raw.issuer.is_none() && (raw.jwks_uri.is_some() || !raw.algorithms.is_empty()) {
            bad(self, "jwks_uri", "jwks_uri and algorithms need issuer and audience".into());
        }
        let mut names = BTreeSet::new();
        let mut tokens: Vec<NamedToken> = Vec::new();
        for (i, t) in raw.tokens.iter().enumerate() {
            let key = |k: &str| format!("tokens[{i}].{k}");
            let valid_name = !t.name.is_empty()
                && t.name.len() <= 64
                && t.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
            if !valid_name {
                bad(self, &key("name"), format!("{:?}: 1-64 letters, digits, '-', '_', '.', '@'", t.name));
                continue;
            }
            if !names.insert(t.name.clone()) {
                bad(self, &key("name"), format!("{:?} is used by an earlier token", t.name));
                continue;
            }
            let path = self.env.config_relative(&t.file);
            match self.env.token_file(&path) {
                Ok(value) if tokens.iter().any(|o| o.value.expose() == value.expose()) => {
                    bad(self, &key("file"), "holds the same token as an earlier entry; each name needs its own".into());
                }
                Ok(value) => tokens.push(NamedToken {
                    name: t.name.clone(),
                    value,
                    groups: t.groups.clone(),
                    scopes: t.scopes.clone(),
                }),
                Err(e) => bad(self, &key("file"), e),
            }
        }
        let scope = |v: &Option<String>, default: &str| v.clone().unwrap_or_else(|| default.to_owned());
        AuthSettings {
            oidc,
            principal_claim: raw.claims.principal.clone().unwrap_or_else(|| "sub".into()),
            groups_claim: raw.claims.groups.clone().unwrap_or_else(|| "groups".into()),
            scopes: AuthScopes {
                run: scope(&raw.scopes.run, "ssh:run"),
                approve: scope(&raw.scopes.approve, "ssh:approve"),
                admin: scope(&raw.scopes.admin, "ssh:admin"),
            },
            tokens,
        }
    }
}

impl Validator<'_> {
    /// `approvals: N` of rule `i`: 1-5, and only on an `ask` rule.
    pub(super) fn approvals_wanted(
        &mut self,
        src: &Source,
        pos: super::Pos,
        i: usize,
        n: Option<u32>,
        action: Action,
    ) -> u32 {
        let Some(n) = n else { return 1 };
        let key = format!("rules[{i}].approvals");
        if action != Action::Ask {
            self.push(Severity::Error, src, pos, key, "approvals applies to `action: ask` rules only".into());
            return 1;
        }
        if !(1..=5).contains(&n) {
            self.push(Severity::Error, src, pos, key, format!("{n}: between 1 and 5 distinct approvers"));
            return 1;
        }
        n
    }

    pub(super) fn quotas(
        &mut self,
        src: &Source,
        loc: &Locator,
        raw: &super::raw::RawQuotas,
    ) -> super::callers::Quotas {
        let pos = loc.key("quotas", None, 0);
        let one = |this: &mut Self, key: String, q: &super::raw::RawQuota| {
            for (k, v) in [
                ("commands_per_minute", q.commands_per_minute),
                ("concurrent_tasks", q.concurrent_tasks),
                ("fanout_hosts_per_hour", q.fanout_hosts_per_hour),
            ] {
                if v == Some(0) {
                    let msg = "must be at least 1 (to forbid a caller everything, deny it with a rule)".to_owned();
                    this.push(Severity::Error, src, pos, format!("{key}.{k}"), msg);
                }
            }
            super::callers::Quota {
                commands_per_minute: q.commands_per_minute,
                concurrent_tasks: q.concurrent_tasks,
                fanout_hosts_per_hour: q.fanout_hosts_per_hour,
            }
        };
        let principals = raw
            .principals
            .iter()
            .map(|(p, q)| (p.clone(), one(self, format!("limits.quotas.principals.{p}"), q)))
            .collect();
        let groups =
            raw.groups.iter().map(|(g, q)| (g.clone(), one(self, format!("limits.quotas.groups.{g}"), q))).collect();
        let default = raw.default.as_ref().map(|q| one(self, "limits.quotas.default".into(), q)).unwrap_or_default();
        super::callers::Quotas { principals, groups, default }
    }
}

#[cfg(test)]
mod tests {
    use super::acceptable_url;

    #[test]
    fn https_anywhere_http_only_on_loopback() {
        assert!(acceptable_url("https://idp.example.com"));
        assert!(acceptable_url("http://127.0.0.1:4444/oidc"));
        assert!(acceptable_url("http://localhost:8080"));
        assert!(!acceptable_url("http://idp.example.com"));
        assert!(!acceptable_url("http://127.0.0.1.evil.example/"));
        assert!(!acceptable_url("https://"));
        assert!(!acceptable_url("ftp://127.0.0.1/"));
    }
}
