//! Checked settings about callers rather than hosts: `auth:` (whose tokens the HTTP server
//! accepts and what each may do) and `limits.quotas` (how much each may start).
//!
//! Owns: the types and the one resolution rule of quotas (a principal's own entry, else the
//! strictest of its groups', else `default`). Never reads files: token values arrive already
//! read by `load.rs`.

use std::collections::BTreeMap;

/// `limits.quotas` checked.
#[derive(Debug, Clone, Default)]
pub struct Quotas {
    pub principals: BTreeMap<String, Quota>,
    pub groups: BTreeMap<String, Quota>,
    pub default: Quota,
}

/// A budget; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quota {
    pub commands_per_minute: Option<u32>,
    pub concurrent_tasks: Option<u32>,
    pub fanout_hosts_per_hour: Option<u32>,
}

impl Quotas {
    /// The budget of `who`, key by key: its own entry, else the strictest of its groups'
    /// entries, else `default`. `None` when nothing limits it.
    pub fn for_caller(&self, who: &crate::policy::Principal) -> Option<Quota> {
        let own = self.principals.get(&who.name);
        let groups: Vec<&Quota> = who.groups.iter().filter_map(|g| self.groups.get(g)).collect();
        let pick = |key: fn(&Quota) -> Option<u32>| {
            own.and_then(key).or_else(|| groups.iter().filter_map(|q| key(q)).min()).or(key(&self.default))
        };
        let q = Quota {
            commands_per_minute: pick(|q| q.commands_per_minute),
            concurrent_tasks: pick(|q| q.concurrent_tasks),
            fanout_hosts_per_hour: pick(|q| q.fanout_hosts_per_hour),
        };
        (q != Quota::default()).then_some(q)
    }
}

/// `auth:` checked: whose tokens the HTTP server accepts, and what they may do.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// An authorization server whose JWT access tokens are accepted.
    pub oidc: Option<OidcSettings>,
    /// The claim naming the caller (default `sub`) and the one listing its groups (`groups`).
    pub principal_claim: String,
    pub groups_claim: String,
    pub scopes: AuthScopes,
    pub tokens: Vec<NamedToken>,
}

#[derive(Debug, Clone)]
pub struct OidcSettings {
    pub issuer: String,
    pub audience: String,
    pub jwks_uri: Option<String>,
    pub algorithms: Vec<jsonwebtoken::Algorithm>,
    pub leeway_seconds: u64,
}

/// The scope each use needs: `run` for `/mcp` and `/rpc`, `approve` to decide approvals,
/// `admin` for other callers' tasks.
#[derive(Debug, Clone)]
pub struct AuthScopes {
    pub run: String,
    pub approve: String,
    pub admin: String,
}

/// A static bearer token with a name: the principal of whoever presents it.
#[derive(Debug, Clone)]
pub struct NamedToken {
    pub name: String,
    pub value: super::Secret,
    pub groups: Vec<String>,
    pub scopes: Vec<String>,
}
