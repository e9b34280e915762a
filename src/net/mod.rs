//! The network precheck: resolve a host once, judge every address, pick the one to dial.
//!
//! Owns: the `Resolve` seam, the hickory resolver (A+AAAA, bounded timeout, hickory's own
//! TTL-respecting bounded cache, failures cached a few seconds at most), and `precheck`.
//! The `Target` it returns is the only address the SSH layer may connect to; nothing
//! re-resolves. Never opens a TCP connection.

pub mod cidr;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures::future::BoxFuture;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::LookupIpStrategy;
use serde::Serialize;

use crate::config::{Host, Network};
use cidr::IpVerdict;

/// Name resolution, injectable for tests.
pub trait Resolve: Send + Sync {
    fn lookup<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, String>>;
}

/// The system resolver configuration (resolv.conf) through hickory.
pub struct HickoryResolver {
    inner: TokioResolver,
}

impl HickoryResolver {
    pub fn from_system(timeout: Duration) -> Result<Self, String> {
        let mut builder =
            TokioResolver::builder_tokio().map_err(|e| format!("cannot read resolver configuration: {e}"))?;
        let opts = builder.options_mut();
        opts.timeout = timeout;
        opts.attempts = 1;
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        opts.cache_size = 1024;
        opts.negative_max_ttl = Some(Duration::from_secs(5));
        let inner = builder.build().map_err(|e| format!("cannot build resolver: {e}"))?;
        Ok(Self { inner })
    }
}

impl Resolve for HickoryResolver {
    fn lookup<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, String>> {
        Box::pin(async move {
            let lookup = self.inner.lookup_ip(name).await.map_err(|e| dns_reason(&e))?;
            Ok(lookup.iter().collect())
        })
    }
}

/// Why a name did not resolve, the way a person reads it, from the error's kind (never
/// hickory's `Query { name: Name(…) }` debug text).
fn dns_reason(e: &hickory_resolver::net::NetError) -> String {
    if e.is_nx_domain() {
        "no such host".to_owned()
    } else if e.is_no_records_found() {
        "it has no address records".to_owned()
    } else {
        e.to_string()
    }
}

/// Where to connect for one host, decided once.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub alias: String,
    /// The configured name; known_hosts lookups use it.
    pub host_name: String,
    pub port: u16,
    /// The address to dial: exactly this, nothing else.
    pub addr: SocketAddr,
    /// Every address the name resolved to.
    pub resolved: Vec<IpAddr>,
    /// `resolve: remote`: the name the last jump host is asked to connect to (it resolves
    /// it; `addr` is then unspecified and no CIDR rule could be applied).
    pub remote_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrecheckError {
    #[error("host {alias:?}: cannot resolve {name:?}: {reason}")]
    Dns { alias: String, name: String, reason: String },
    #[error("host {alias:?}: resolving {name:?} took longer than {ms} ms")]
    DnsTimeout { alias: String, name: String, ms: u64 },
    #[error("host {alias:?}: {ip} is in block list entry {net}")]
    Blocked { alias: String, ip: IpAddr, net: String },
    #[error("host {alias:?}: no resolved address is inside allow_ips/allow_cidrs ({ips})")]
    NotAllowed { alias: String, ips: String },
}

/// Resolves `host` (literal IPs skip DNS) and checks every address against `network`.
/// Any blocked address denies the host; otherwise the first allowed address is the target
/// (IPv4 first, since most inventories are v4).
pub async fn precheck(
    host: &Host,
    network: &Network,
    resolver: &dyn Resolve,
    timeout: Duration,
) -> Result<Target, PrecheckError> {
    let alias = host.alias.clone();
    let name = host.host.clone();
    if host.resolve_remote {
        let addr = SocketAddr::new(IpAddr::from([0, 0, 0, 0]), host.port);
        return Ok(Target {
            alias,
            host_name: name.clone(),
            port: host.port,
            addr,
            resolved: Vec::new(),
            remote_name: Some(name),
        });
    }
    let mut resolved = match name.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => match tokio::time::timeout(timeout, resolver.lookup(&name)).await {
            Err(_) => {
                return Err(PrecheckError::DnsTimeout { alias, name, ms: timeout.as_millis() as u64 });
            }
            Ok(Err(reason)) => {
                return Err(PrecheckError::Dns { alias, name, reason });
            }
            Ok(Ok(ips)) if ips.is_empty() => {
                return Err(PrecheckError::Dns { alias, name, reason: "no addresses".into() });
            }
            Ok(Ok(ips)) => ips,
        },
    };
    resolved.dedup();
    let mut allowed = Vec::new();
    for ip in &resolved {
        match cidr::check_ip(network, *ip) {
            IpVerdict::Blocked(net) => {
                return Err(PrecheckError::Blocked { alias, ip: *ip, net: net.to_string() });
            }
            IpVerdict::Allowed => allowed.push(ip.to_canonical()),
            IpVerdict::NotAllowed => {}
        }
    }
    allowed.sort_by_key(|ip| ip.is_ipv6());
    let Some(ip) = allowed.first() else {
        let ips = resolved.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        return Err(PrecheckError::NotAllowed { alias, ips });
    };
    Ok(Target {
        alias,
        host_name: name,
        port: host.port,
        addr: SocketAddr::new(*ip, host.port),
        resolved,
        remote_name: None,
    })
}

#[cfg(test)]
mod tests {
    use hickory_resolver::net::{NetError, NoRecords};
    use hickory_resolver::proto::op::{Query, ResponseCode};

    #[test]
    fn dns_failures_read_as_a_person_says_them() {
        let query = || Query::default();
        let nx: NetError = NoRecords::new(query(), ResponseCode::NXDomain).into();
        assert_eq!(super::dns_reason(&nx), "no such host");
        let empty: NetError = NoRecords::new(query(), ResponseCode::NoError).into();
        assert_eq!(super::dns_reason(&empty), "it has no address records");
    }
}
