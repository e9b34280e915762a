//! Host patterns in the spirit of Ansible: `all`, `web1`, `web*`, `prod`, `web:db`,
//! `web:&prod`, `web:!db1`; `,` works like `:`. A term may be a folded host set in
//! ClusterShell notation (`h[1-20]:&prod`, `web[01-40,42]`): brackets holding only digits,
//! `-` and `,` are ranges (`hostset.rs`); other brackets (`web[ab]`) stay glob classes.
//!
//! Owns: turning a pattern into hosts in inventory order. Terms name an alias or a tag (or
//! glob over both). Unions apply first, then intersections, then exclusions, whatever their
//! order in the pattern. A name that matches nothing is an error, never an empty set. Pure.

use globset::GlobBuilder;

use crate::config::Host;
use crate::inventory::hostset;

/// Longest pattern accepted.
pub const MAX_PATTERN_LEN: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("host pattern is empty")]
    Empty,
    #[error("host pattern is longer than {MAX_PATTERN_LEN} characters")]
    TooLong,
    #[error("host pattern term {0:?} is empty or malformed")]
    BadTerm(String),
    #[error("{0:?} is neither a host alias nor a tag")]
    Unknown(String),
    #[error("glob {0:?} matches no alias or tag")]
    NoMatch(String),
    #[error("pattern {0:?} selects no host")]
    Nothing(String),
    #[error("{0}")]
    HostSet(#[from] hostset::HostSetError),
    #[error("host set {0:?} names hosts that are neither aliases nor tags: {1}")]
    UnknownInSet(String, String),
}

/// The hosts `pattern` selects, in inventory order.
pub fn select<'a>(hosts: &'a [Host], pattern: &str) -> Result<Vec<&'a Host>, SelectError> {
    let pattern = pattern.trim();
    if pattern.is_empty() {
        return Err(SelectError::Empty);
    }
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(SelectError::TooLong);
    }
    let mut union: Option<Vec<bool>> = None;
    let mut intersections = Vec::new();
    let mut exclusions = Vec::new();
    for raw in hostset::split_outside_brackets(pattern, &[':'])? {
        let term = raw.trim();
        let (kind, name) = match term.chars().next() {
            Some('&') => (1, &term[1..]),
            Some('!') => (2, &term[1..]),
            _ => (0, term),
        };
        let set = term_set(hosts, name.trim())?;
        match kind {
            1 => intersections.push(set),
            2 => exclusions.push(set),
            _ => {
                let u = union.get_or_insert_with(|| vec![false; hosts.len()]);
                u.iter_mut().zip(set).for_each(|(a, b)| *a |= b);
            }
        }
    }
    // `!db` alone means "all but db", as in Ansible.
    let mut chosen = union.unwrap_or_else(|| vec![true; hosts.len()]);
    for set in intersections {
        chosen.iter_mut().zip(set).for_each(|(a, b)| *a &= b);
    }
    for set in exclusions {
        chosen.iter_mut().zip(set).for_each(|(a, b)| *a &= !b);
    }
    let out: Vec<&Host> = hosts.iter().zip(chosen).filter_map(|(h, c)| c.then_some(h)).collect();
    if out.is_empty() {
        return Err(SelectError::Nothing(pattern.to_owned()));
    }
    Ok(out)
}

fn term_set(hosts: &[Host], name: &str) -> Result<Vec<bool>, SelectError> {
    if hostset::is_folded(name) {
        return folded_set(hosts, name);
    }
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '*' | '?' | '[' | ']'));
    if !valid {
        return Err(SelectError::BadTerm(name.to_owned()));
    }
    if name == "all" || name == "*" {
        return Ok(vec![true; hosts.len()]);
    }
    if name.contains(['*', '?', '[']) {
        let glob = GlobBuilder::new(name).build().map_err(|_| SelectError::BadTerm(name.to_owned()))?.compile_matcher();
        let set: Vec<bool> =
            hosts.iter().map(|h| glob.is_match(&h.alias) || h.tags.iter().any(|t| glob.is_match(t))).collect();
        return if set.contains(&true) { Ok(set) } else { Err(SelectError::NoMatch(name.to_owned())) };
    }
    let set: Vec<bool> = hosts.iter().map(|h| h.alias == name || h.tags.iter().any(|t| t == name)).collect();
    if set.contains(&true) { Ok(set) } else { Err(SelectError::Unknown(name.to_owned())) }
}

/// A folded set selects each of its names; a name that is neither alias nor tag is an error
/// (listed, folded), never silently dropped.
fn folded_set(hosts: &[Host], set: &str) -> Result<Vec<bool>, SelectError> {
    let mut chosen = vec![false; hosts.len()];
    let mut unknown = Vec::new();
    for name in hostset::unfold(set)? {
        match term_set(hosts, &name) {
            Ok(s) => chosen.iter_mut().zip(s).for_each(|(a, b)| *a |= b),
            Err(SelectError::Unknown(n)) => unknown.push(n),
            Err(e) => return Err(e),
        }
    }
    if unknown.is_empty() {
        Ok(chosen)
    } else {
        Err(SelectError::UnknownInSet(set.to_owned(), hostset::fold(&unknown)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn host(alias: &str, tags: &[&str]) -> Host {
        Host {
            alias: alias.into(),
            host: "127.0.0.1".into(),
            port: 22,
            credentials: "c".into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            description: String::new(),
            max_concurrency: 1,
            connect_timeout: Duration::from_secs(1),
            proxy_jump: Vec::new(),
            resolve_remote: false,
        }
    }

    fn check(pattern: &str, expect: Result<&str, SelectError>) {
        let hosts = vec![
            host("web1", &["web", "prod"]),
            host("web2", &["web", "staging"]),
            host("db1", &["db", "prod"]),
            host("a.b-c", &[]),
        ];
        let got = select(&hosts, pattern).map(|v| v.iter().map(|h| h.alias.as_str()).collect::<Vec<_>>().join(" "));
        assert_eq!(got.as_deref().map_err(Clone::clone), expect, "pattern {pattern:?}");
    }

    #[test]
    fn patterns() {
        check("all", Ok("web1 web2 db1 a.b-c"));
        check("*", Ok("web1 web2 db1 a.b-c"));
        check("web1", Ok("web1"));
        check("a.b-c", Ok("a.b-c"));
        check("web", Ok("web1 web2"));
        check("web*", Ok("web1 web2"));
        check("web:db", Ok("web1 web2 db1"));
        check("web,db", Ok("web1 web2 db1"));
        check("web:&prod", Ok("web1"));
        check("&prod:web", Ok("web1"));
        check("all:!prod", Ok("web2 a.b-c"));
        check("!prod", Ok("web2 a.b-c"));
        check("prod:!db1", Ok("web1"));
        check("web:db:&prod:!web1", Ok("db1"));
        check("w?b2", Ok("web2"));
        check("web[1-2]", Ok("web1 web2"));
        check("web[1-2]:&prod", Ok("web1"));
        check("web[1,2],db1", Ok("web1 web2 db1"));
        check("web[12]x:db1", Err(SelectError::UnknownInSet("web[12]x".into(), "web12x".into())));
        check("web[1-4]", Err(SelectError::UnknownInSet("web[1-4]".into(), "web[3-4]".into())));
        check("web[ab]", Err(SelectError::NoMatch("web[ab]".into())));
        check("web[1-", Err(SelectError::HostSet(hostset::HostSetError::Unbalanced("web[1-".into()))));
        check("nope", Err(SelectError::Unknown("nope".into())));
        check("web:nope", Err(SelectError::Unknown("nope".into())));
        check("zz*", Err(SelectError::NoMatch("zz*".into())));
        check("web:&db", Err(SelectError::Nothing("web:&db".into())));
        check("", Err(SelectError::Empty));
        check("web::db", Err(SelectError::BadTerm(String::new())));
        check("we b", Err(SelectError::BadTerm("we b".into())));
        check("$(id)", Err(SelectError::BadTerm("$(id)".into())));
    }
}
