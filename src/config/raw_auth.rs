//! Serde mirror of policy.yml's `auth:` and `approvals:` keys: who may call (issuer,
//! audience, claims, scopes, named static tokens) and how approvers are reached (the
//! page's address, the notification hook).
//!
//! Owns: the on-disk shape of those keys, re-exported through `raw`. Never validates
//! (`validate_auth.rs` does) and never reads token files.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

/// `auth:` of policy.yml.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// The authorization server's issuer (`iss`, exact match).
    pub issuer: Option<String>,
    /// The resource URL clients ask tokens for (`aud`, RFC 8707).
    pub audience: Option<String>,
    /// Else discovered from the issuer's `/.well-known/openid-configuration`.
    pub jwks_uri: Option<String>,
    /// Signature algorithms accepted (asymmetric only); default `[RS256, ES256, EdDSA]`.
    #[serde(default)]
    pub algorithms: Vec<String>,
    /// Clock skew allowed on `exp` / `nbf` (default 60).
    pub leeway_seconds: Option<u64>,
    #[serde(default)]
    pub claims: RawAuthClaims,
    #[serde(default)]
    pub scopes: RawAuthScopes,
    /// Static bearer tokens, each with a name (the principal) and its groups and scopes.
    #[serde(default)]
    pub tokens: Vec<RawNamedToken>,
}

/// `auth.claims`: which claims name the caller and its groups.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAuthClaims {
    pub principal: Option<String>,
    pub groups: Option<String>,
}

/// `auth.scopes`: the scope each kind of use needs.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAuthScopes {
    pub run: Option<String>,
    pub approve: Option<String>,
    pub admin: Option<String>,
}

/// One of `auth.tokens`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNamedToken {
    pub name: String,
    /// A file holding the token (at least 16 characters); relative to the config directory.
    pub file: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// `approvals:` of policy.yml.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawApprovals {
    /// The approver page as approvers reach it (`https://gw.example/approvals/ui`); default
    /// `http://LISTEN-ADDRESS/approvals/ui` of `serve --http`.
    pub page_url: Option<String>,
    /// POST a JSON description of every new approval request here.
    pub notify: Option<RawNotify>,
}

/// `approvals.notify`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    /// `http://` or `https://` URL of the receiver (a chat bridge); https is verified against the system CA store.
    pub url: String,
    /// Extra request headers (an authorization header for the bridge); never logged.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}
