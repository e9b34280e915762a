//! sshwarden's own known_hosts matcher (russh's ignores `@revoked`, `@cert-authority`,
//! patterns and negation, and breaks on tabs).
//!
//! Owns: parsing known_hosts text as OpenSSH does (any whitespace, comments, markers,
//! hashed `|1|salt|hash` names, `*`/`?` patterns, `!` negation, `[host]:port`) and the
//! verdict for one offered key. `@revoked` is checked first and always wins. Pure: the
//! caller reads the file.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use russh::keys::ssh_key::public::KeyData;
use russh::keys::{Certificate, HashAlg, PublicKey};

/// What known_hosts says about an offered host key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A plain entry (line) lists this key for the host.
    Trusted { line: usize },
    /// A `@cert-authority` entry (line) signed the offered certificate.
    TrustedByCa { line: usize },
    /// A `@revoked` entry (line) lists this key.
    Revoked { line: usize },
    /// The host has entries, none with this key: it changed (or is an impostor).
    Changed { lines: Vec<usize> },
    /// No entry names the host.
    Unknown,
}

#[derive(Debug, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

struct Entry<'a> {
    line: usize,
    marker: Marker,
    hosts: &'a str,
    key: Option<KeyData>,
}

fn parse(text: &str) -> impl Iterator<Item = Entry<'_>> {
    text.lines().enumerate().filter_map(|(i, raw)| {
        let mut fields = raw.split_whitespace().peekable();
        let first = *fields.peek()?;
        if first.starts_with('#') {
            return None;
        }
        let marker = match first {
            "@revoked" => Marker::Revoked,
            "@cert-authority" => Marker::CertAuthority,
            m if m.starts_with('@') => return None,
            _ => Marker::None,
        };
        if marker != Marker::None {
            fields.next();
        }
        let hosts = fields.next()?;
        let algo = fields.next()?;
        let b64 = fields.next()?;
        let key = PublicKey::from_openssh(&format!("{algo} {b64}")).ok().map(|k| k.key_data().clone());
        Some(Entry { line: i + 1, marker, hosts, key })
    })
}

/// The names OpenSSH looks a host up under: `host` on port 22, `[host]:port` otherwise.
pub fn lookup_name(host: &str, port: u16) -> String {
    if port == 22 { host.to_owned() } else { format!("[{host}]:{port}") }
}

/// Does the comma-separated pattern list `hosts` match `name`? A matching `!` pattern
/// vetoes the whole list, as in OpenSSH's `match_hostname`.
fn hosts_match(hosts: &str, name: &str) -> bool {
    if let Some(hashed) = hosts.strip_prefix("|1|") {
        return hashed_match(hashed, name);
    }
    let mut positive = false;
    for pattern in hosts.split(',') {
        if let Some(neg) = pattern.strip_prefix('!') {
            if wildcard(neg, name) {
                return false;
            }
        } else if wildcard(pattern, name) {
            positive = true;
        }
    }
    positive
}

fn hashed_match(hashed: &str, name: &str) -> bool {
    let Some((salt, hash)) = hashed.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (STANDARD.decode(salt), STANDARD.decode(hash)) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(&salt) else {
        return false;
    };
    mac.update(name.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

/// `*` and `?` glob, case-insensitive, as OpenSSH's `match_pattern`.
fn wildcard(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let n: Vec<char> = name.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Whether any plain or CA entry names `host:port` (the key itself is not checked).
pub fn has_entry(text: &str, host: &str, port: u16) -> bool {
    let name = lookup_name(host, port);
    parse(text).any(|e| e.marker != Marker::Revoked && hosts_match(e.hosts, &name))
}

/// Judges a plain host key offered by `host:port`.
pub fn check_key(text: &str, host: &str, port: u16, key: &KeyData) -> Verdict {
    let name = lookup_name(host, port);
    let entries: Vec<Entry> = parse(text).collect();
    if let Some(e) = entries.iter().find(|e| e.marker == Marker::Revoked && e.key.as_ref() == Some(key)) {
        return Verdict::Revoked { line: e.line };
    }
    let for_host: Vec<&Entry> =
        entries.iter().filter(|e| e.marker == Marker::None && hosts_match(e.hosts, &name)).collect();
    if let Some(e) = for_host.iter().find(|e| e.key.as_ref() == Some(key)) {
        return Verdict::Trusted { line: e.line };
    }
    if for_host.is_empty() {
        Verdict::Unknown
    } else {
        Verdict::Changed { lines: for_host.iter().map(|e| e.line).collect() }
    }
}

/// Judges a host certificate: signed by a `@cert-authority` key for this host, currently
/// valid, naming the host among its principals, and neither it nor its CA revoked.
pub fn check_certificate(text: &str, host: &str, port: u16, cert: &Certificate) -> Verdict {
    let name = lookup_name(host, port);
    let entries: Vec<Entry> = parse(text).collect();
    for revoked in entries.iter().filter(|e| e.marker == Marker::Revoked) {
        if revoked.key.as_ref() == Some(cert.signature_key()) || revoked.key.as_ref() == Some(cert.public_key()) {
            return Verdict::Revoked { line: revoked.line };
        }
    }
    let principal_ok = cert.valid_principals().is_empty() || cert.valid_principals().iter().any(|p| p == host);
    for ca in entries.iter().filter(|e| e.marker == Marker::CertAuthority && hosts_match(e.hosts, &name)) {
        if ca.key.as_ref() == Some(cert.signature_key()) {
            let fp = PublicKey::from(cert.signature_key().clone()).fingerprint(HashAlg::Sha256);
            if principal_ok && cert.cert_type().is_host() && cert.validate([&fp]).is_ok() {
                return Verdict::TrustedByCa { line: ca.line };
            }
        }
    }
    Verdict::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    const K2: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB7cNfMKe8ygMZqvqfOdmPtTBGZ6f6XJ3hOQe5qmsYcb";

    fn key(s: &str) -> KeyData {
        PublicKey::from_openssh(s).unwrap().key_data().clone()
    }

    fn check(text: &str, host: &str, port: u16, offered: &str, expect: Verdict) {
        assert_eq!(check_key(text, host, port, &key(offered)), expect, "{text:?} {host}:{port}");
    }

    #[test]
    fn plain_ports_patterns_negation_tabs() {
        check(&format!("[10.0.0.1]:2222 {K1}\n"), "10.0.0.1", 2222, K1, Verdict::Trusted { line: 1 });
        check(&format!("10.0.0.1 {K1}\n"), "10.0.0.1", 2222, K1, Verdict::Unknown);
        check(&format!("10.0.0.1 {K1}\n"), "10.0.0.1", 22, K1, Verdict::Trusted { line: 1 });
        check(&format!("# c\n\nweb*.example.com,db? {K1}\n"), "web7.example.com", 22, K1, Verdict::Trusted { line: 3 });
        check(&format!("db? {K1}\n"), "db1", 22, K1, Verdict::Trusted { line: 1 });
        check(&format!("db? {K1}\n"), "db12", 22, K1, Verdict::Unknown);
        check(&format!("*.example.com,!bad.example.com {K1}\n"), "bad.example.com", 22, K1, Verdict::Unknown);
        check(&format!("WEB1\t\t{}\n", K1.replace(' ', "\t")), "web1", 22, K1, Verdict::Trusted { line: 1 });
        check(&format!("[h]:24022  {K1}  comment here\n"), "h", 24022, K1, Verdict::Trusted { line: 1 });
        check(&format!("h {K2}\nh {K1}\n"), "h", 22, K1, Verdict::Trusted { line: 2 });
        check(&format!("# comment\nh {K2}\n"), "h", 22, K1, Verdict::Changed { lines: vec![2] });
        check("", "h", 22, K1, Verdict::Unknown);
        check("garbage line\n@weird h k\n", "h", 22, K1, Verdict::Unknown);
    }

    #[test]
    fn revoked_wins_over_a_matching_line() {
        check(&format!("h {K1}\n@revoked * {K1}\n"), "h", 22, K1, Verdict::Revoked { line: 2 });
        check(&format!("h {K1}\n@revoked * {K2}\n"), "h", 22, K1, Verdict::Trusted { line: 1 });
    }

    #[test]
    fn hashed_entries() {
        // `ssh-keygen -H` form of "[127.0.0.1]:24022", salt/hash computed independently.
        let salt = [7u8; 20];
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&salt).unwrap();
        mac.update(b"[127.0.0.1]:24022");
        let hash = mac.finalize().into_bytes();
        let line = format!("|1|{}|{} {K1}\n", STANDARD.encode(salt), STANDARD.encode(hash));
        check(&line, "127.0.0.1", 24022, K1, Verdict::Trusted { line: 1 });
        check(&line, "127.0.0.1", 22, K1, Verdict::Unknown);
        check(&line, "127.0.0.1", 24022, K2, Verdict::Changed { lines: vec![1] });
    }
}
