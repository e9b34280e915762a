//! Allow/block list arithmetic over IPv4 and IPv6.
//!
//! Owns: the verdict for one address. Blocks beat allows; an empty allow list allows
//! every address not blocked. IPv4-mapped IPv6 addresses are judged as IPv4. Pure.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::config::Network;

/// What the lists say about one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpVerdict {
    Allowed,
    Blocked(IpNet),
    NotAllowed,
}

pub fn check_ip(network: &Network, ip: IpAddr) -> IpVerdict {
    let ip = ip.to_canonical();
    if let Some(net) = network.block.iter().find(|n| n.contains(&ip)) {
        return IpVerdict::Blocked(*net);
    }
    if network.allow.is_empty() || network.allow.iter().any(|n| n.contains(&ip)) {
        IpVerdict::Allowed
    } else {
        IpVerdict::NotAllowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(allow: &[&str], block: &[&str]) -> Network {
        let p = |v: &[&str]| v.iter().map(|s| s.parse::<IpNet>().unwrap()).collect();
        Network { allow: p(allow), block: p(block) }
    }

    fn check(allow: &[&str], block: &[&str], ip: &str, expect: &str) {
        let got = match check_ip(&net(allow, block), ip.parse().unwrap()) {
            IpVerdict::Allowed => "allowed".to_string(),
            IpVerdict::Blocked(n) => format!("blocked {n}"),
            IpVerdict::NotAllowed => "not-allowed".to_string(),
        };
        assert_eq!(got, expect, "{ip} allow={allow:?} block={block:?}");
    }

    #[test]
    fn verdicts() {
        check(&[], &[], "10.0.0.1", "allowed");
        check(&["10.0.0.0/8"], &[], "10.1.2.3", "allowed");
        check(&["10.0.0.0/8"], &[], "11.0.0.1", "not-allowed");
        check(&["10.0.0.0/8"], &["10.9.0.0/16"], "10.9.1.1", "blocked 10.9.0.0/16");
        check(&["10.0.0.0/8"], &["0.0.0.0/0"], "10.0.0.1", "blocked 0.0.0.0/0");
        check(&["127.0.0.0/8"], &[], "::ffff:127.0.0.1", "allowed");
        check(&[], &["127.0.0.0/8"], "::ffff:127.0.0.1", "blocked 127.0.0.0/8");
        check(&["::1/128"], &[], "::1", "allowed");
        check(&["fd00::/8"], &[], "fe80::1", "not-allowed");
        check(&["127.0.0.1/32"], &[], "::1", "not-allowed");
    }
}
