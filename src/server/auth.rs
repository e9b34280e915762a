//! Who is calling: the HTTP server as an OAuth 2.1 resource server (MCP authorization,
//! RFC 9728 metadata, RFC 8707 audience binding) when `auth:` is configured, beside the
//! `--token-file` token and the named static tokens of `auth.tokens`.
//!
//! Owns: checking a bearer token (static tokens in constant time; JWT access tokens with
//! `jsonwebtoken`: signature by a key of the issuer's JWKS, `iss`, `aud`, `exp`/`nbf`, the
//! configured algorithms only), the JWKS cache (refreshed on an unknown `kid`, at most once
//! per [`REFRESH_EVERY`]), the `WWW-Authenticate` challenges, and the protected resource
//! metadata document. Never forwards, logs or audits a token (only a SHA-256 of its `jti`),
//! and never follows a redirect when fetching keys.

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::{AuthSettings, OidcSettings, Secret};
use crate::service::Caller;
use crate::service::Service;

/// How often an unknown `kid` may make us fetch the JWKS again (a flood of made-up key ids
/// must not turn into a flood of requests to the provider).
const REFRESH_EVERY: Duration = Duration::from_secs(10);
/// Largest metadata or JWKS document read.
const MAX_DOCUMENT: usize = 256 * 1024;

/// Why a request is refused: 401 (no or bad token) or 403 (a scope is missing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No token at all: the challenge only points at the metadata (RFC 6750 §3.1).
    Missing,
    Unauthorized(String),
    InsufficientScope(String),
}

#[derive(Default)]
struct Keys {
    set: Option<(String, JwkSet)>,
    refreshed: Option<Instant>,
}

/// Checks bearer tokens against `auth:`; holds the key cache between requests.
pub struct Authenticator {
    http: reqwest::Client,
    keys: tokio::sync::Mutex<Keys>,
}

impl Default for Authenticator {
    fn default() -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self { http, keys: Default::default() }
    }
}

/// RFC 9728: the metadata URL for `resource` inserts `/.well-known/oauth-protected-resource`
/// between its authority and its path.
pub fn metadata_url(resource: &str) -> String {
    let (scheme, rest) = resource.split_once("://").unwrap_or(("https", resource));
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let path = path.trim_end_matches('/');
    let suffix = if path.is_empty() { String::new() } else { format!("/{path}") };
    format!("{scheme}://{authority}/.well-known/oauth-protected-resource{suffix}")
}

/// The protected resource metadata document (RFC 9728).
pub fn metadata(settings: &AuthSettings) -> Option<Value> {
    let oidc = settings.oidc.as_ref()?;
    let s = &settings.scopes;
    Some(json!({
        "resource": oidc.audience,
        "authorization_servers": [oidc.issuer],
        "scopes_supported": [s.run, s.approve, s.admin],
        "bearer_methods_supported": ["header"],
        "resource_name": "sshwarden",
    }))
}

/// The `WWW-Authenticate` value for `refusal`.
pub fn challenge(settings: &AuthSettings, refusal: &Refusal) -> String {
    let meta = settings.oidc.as_ref().map(|o| format!(", resource_metadata=\"{}\"", metadata_url(&o.audience)));
    let meta = meta.unwrap_or_default();
    match refusal {
        Refusal::Missing => format!("Bearer{}", meta.replacen(',', "", 1)),
        Refusal::Unauthorized(_) => format!("Bearer error=\"invalid_token\"{meta}"),
        Refusal::InsufficientScope(scope) => format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\"{meta}"),
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        Value::Array(a) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

impl Authenticator {
    /// The caller `offered` identifies, or why not. `legacy` is the `--token-file` token,
    /// which keeps every scope, as before `auth:` existed.
    pub async fn authenticate(
        &self,
        settings: &AuthSettings,
        legacy: &Secret,
        offered: &str,
    ) -> Result<Caller, Refusal> {
        if offered.is_empty() {
            return Err(Refusal::Missing);
        }
        if super::bearer_matches(offered, legacy) {
            let s = &settings.scopes;
            let scopes = vec![s.run.clone(), s.approve.clone(), s.admin.clone()];
            return Ok(Caller { principal: "token".into(), groups: Vec::new(), scopes, jti_sha256: None, admin: true });
        }
        // Every named token is compared, so the time taken does not tell which one matched.
        let mut named = None;
        for t in &settings.tokens {
            if super::bearer_matches(offered, &t.value) {
                named = Some(t);
            }
        }
        if let Some(t) = named {
            return Ok(Caller {
                principal: t.name.clone(),
                groups: t.groups.clone(),
                scopes: t.scopes.clone(),
                jti_sha256: None,
                admin: t.scopes.contains(&settings.scopes.admin),
            });
        }
        let Some(oidc) = settings.oidc.as_ref() else {
            return Err(Refusal::Unauthorized("wrong bearer token".into()));
        };
        let claims = self.verify(oidc, offered).await.map_err(Refusal::Unauthorized)?;
        let principal = match &claims[&settings.principal_claim] {
            Value::String(s) if !s.is_empty() => s.clone(),
            _ => return Err(Refusal::Unauthorized(format!("the token has no {:?} claim", settings.principal_claim))),
        };
        let mut scopes = strings(&claims["scope"]);
        scopes.extend(strings(&claims["scp"]));
        let jti_sha256 = claims["jti"].as_str().map(|j| format!("{:x}", Sha256::digest(j.as_bytes())));
        let admin = scopes.contains(&settings.scopes.admin);
        Ok(Caller { principal, groups: strings(&claims[&settings.groups_claim]), scopes, jti_sha256, admin })
    }

    /// The caller of a named token or a JWT access token, never the `--token-file` token
    /// (agents hold that one): who may decide approvals with their own token.
    pub async fn authenticate_own(&self, settings: &AuthSettings, offered: &str) -> Result<Caller, Refusal> {
        // A token no one holds stands in for the legacy one, so only named tokens and JWTs pass.
        let nobody = Secret::new(format!("{:032x}{:032x}", rand::random::<u128>(), rand::random::<u128>()));
        self.authenticate(settings, &nobody, offered).await
    }

    /// The claims of a JWT access token that passes every check, or a reason for the audit
    /// (never the token).
    async fn verify(&self, oidc: &OidcSettings, token: &str) -> Result<Value, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("not a JWT access token: {e}"))?;
        if !oidc.algorithms.contains(&header.alg) {
            return Err(format!("algorithm {:?} is not accepted", header.alg));
        }
        let key = self.key_for(oidc, header.kid.as_deref()).await?;
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.set_issuer(&[&oidc.issuer]);
        validation.set_audience(&[&oidc.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = oidc.leeway_seconds;
        jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| format!("token refused: {e}"))
    }

    async fn key_for(&self, oidc: &OidcSettings, kid: Option<&str>) -> Result<DecodingKey, String> {
        let mut keys = self.keys.lock().await;
        let find = |set: &JwkSet| match kid {
            Some(k) => set.find(k).cloned(),
            None if set.keys.len() == 1 => set.keys.first().cloned(),
            None => None,
        };
        let cached = keys.set.as_ref().filter(|(iss, _)| *iss == oidc.issuer).and_then(|(_, set)| find(set));
        let jwk = match cached {
            Some(j) => j,
            None => {
                // Throttled whether the last fetch worked or not: a failing provider must not
                // be hit once per made-up `kid`.
                if keys.refreshed.is_some_and(|t| t.elapsed() < REFRESH_EVERY) {
                    return Err(format!("unknown key id {kid:?} (keys were refreshed moments ago)"));
                }
                keys.refreshed = Some(Instant::now());
                let set = self.fetch_keys(oidc).await?;
                let found = find(&set);
                keys.set = Some((oidc.issuer.clone(), set));
                found.ok_or_else(|| format!("unknown key id {kid:?}"))?
            }
        };
        DecodingKey::from_jwk(&jwk).map_err(|e| format!("unusable key {kid:?}: {e}"))
    }

    async fn fetch_keys(&self, oidc: &OidcSettings) -> Result<JwkSet, String> {
        let uri = match &oidc.jwks_uri {
            Some(u) => u.clone(),
            None => {
                let discovery = format!("{}/.well-known/openid-configuration", oidc.issuer.trim_end_matches('/'));
                let doc: Value = self.get_json(&discovery).await?;
                if doc["issuer"] != oidc.issuer.as_str() {
                    return Err(format!("{discovery} names issuer {}, not {:?}", doc["issuer"], oidc.issuer));
                }
                let uri = doc["jwks_uri"].as_str().unwrap_or_default().to_owned();
                if !crate::config::acceptable_key_url(&uri) {
                    return Err(format!("{discovery}: jwks_uri {uri:?} must be https:// (http:// only on loopback)"));
                }
                uri
            }
        };
        let set: Value = self.get_json(&uri).await?;
        serde_json::from_value(set).map_err(|e| format!("{uri}: not a JWK set: {e}"))
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let mut resp = self.http.get(url).send().await.map_err(|e| format!("{url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("{url}: HTTP {}", resp.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| format!("{url}: {e}"))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_DOCUMENT {
                return Err(format!("{url}: larger than {MAX_DOCUMENT} bytes"));
            }
        }
        serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON: {e}"))
    }
}

/// The guard of `/mcp` and `/rpc`: Origin first, then, with `auth:`, the caller (token,
/// named token or JWT) with the run scope, left in the request for the MCP layer; without
/// `auth:`, the `--token-file` token as before.
pub(super) async fn authorize(
    mut req: Request,
    next: Next,
    token: &Secret,
    svc: &Service,
    auth: &Authenticator,
) -> Response {
    let headers: &HeaderMap = req.headers();
    if let Some(refused) = super::foreign_origin(headers, svc) {
        return refused;
    }
    let cfg = svc.config();
    if let Some(settings) = cfg.policy.auth.as_ref() {
        let refusal = match auth.authenticate(settings, token, super::bearer(headers)).await {
            Ok(caller) if caller.scopes.contains(&settings.scopes.run) => {
                req.extensions_mut().insert(caller);
                return next.run(req).await;
            }
            Ok(caller) => {
                let reason = format!("{} lacks scope {}", caller.principal, settings.scopes.run);
                svc.audit_or_warn(
                    None,
                    "http_auth_failure",
                    json!({ "reason": reason, "principal": caller.principal, "jti_sha256": caller.jti_sha256 }),
                );
                Refusal::InsufficientScope(settings.scopes.run.clone())
            }
            Err(refusal) => {
                let reason = match &refusal {
                    Refusal::Missing => "missing bearer token".to_owned(),
                    Refusal::Unauthorized(why) | Refusal::InsufficientScope(why) => why.clone(),
                };
                svc.audit_or_warn(None, "http_auth_failure", json!({ "reason": reason }));
                refusal
            }
        };
        let status = match refusal {
            Refusal::InsufficientScope(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        };
        let body =
            json!({ "error": if status == StatusCode::FORBIDDEN { "insufficient_scope" } else { "invalid_token" } });
        return (status, [(header::WWW_AUTHENTICATE, challenge(settings, &refusal))], axum::Json(body)).into_response();
    }
    let offered = super::bearer(headers);
    if !super::bearer_matches(offered, token) {
        let reason = if offered.is_empty() { "missing bearer token" } else { "wrong bearer token" };
        svc.audit_or_warn(None, "http_auth_failure", json!({ "reason": reason }));
        return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], "unauthorized").into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::metadata_url;

    #[test]
    fn metadata_url_inserts_the_well_known_path_before_the_resource_path() {
        assert_eq!(
            metadata_url("https://sshwarden.example.com/mcp"),
            "https://sshwarden.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            metadata_url("http://127.0.0.1:8765/"),
            "http://127.0.0.1:8765/.well-known/oauth-protected-resource"
        );
    }
}
