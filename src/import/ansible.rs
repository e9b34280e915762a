//! Ansible inventories (INI and YAML) for import: groups and their parents (`children`)
//! become tags; `ansible_host`, `ansible_port`, `ansible_user`,
//! `ansible_ssh_private_key_file` and `-J`/`ProxyJump` in `ansible_ssh_common_args` become
//! host fields; host ranges (`web[01:10].example.com`, `db-[a:c]`) are expanded. Group
//! `vars` apply to the group's hosts and its children's; host vars win.
//!
//! Owns: both inventory formats. Never runs Ansible, never evaluates Jinja (a value with
//! `{{` is skipped with a warning).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_norway::Value;

use super::{Imported, ImportedHost, safe_alias};

#[derive(Default)]
struct Inventory {
    /// host → (vars, first line seen)
    hosts: BTreeMap<String, (BTreeMap<String, String>, usize)>,
    /// group → members
    members: BTreeMap<String, BTreeSet<String>>,
    /// group → child groups
    children: BTreeMap<String, BTreeSet<String>>,
    group_vars: BTreeMap<String, BTreeMap<String, String>>,
}

/// `web[01:03].x` → `web01.x`, `web02.x`, `web03.x`; `db-[a:c]` → `db-a` … `db-c`.
pub fn expand_range(pattern: &str) -> Result<Vec<String>, String> {
    let Some(open) = pattern.find('[') else { return Ok(vec![pattern.to_owned()]) };
    let close = pattern[open..].find(']').map(|c| open + c).ok_or(format!("{pattern:?}: `[` without `]`"))?;
    let (lo, hi) = pattern[open + 1..close].split_once(':').ok_or(format!("{pattern:?}: a range is [start:end]"))?;
    let (head, tail) = (&pattern[..open], &pattern[close + 1..]);
    let mut out = Vec::new();
    if let (Ok(a), Ok(b)) = (lo.parse::<u64>(), hi.parse::<u64>()) {
        if b < a || b - a > 10_000 {
            return Err(format!("{pattern:?}: bad range"));
        }
        let width = if lo.starts_with('0') { lo.len() } else { 0 };
        for n in a..=b {
            for rest in expand_range(tail)? {
                out.push(format!("{head}{n:0width$}{rest}"));
            }
        }
    } else if let (Some(a), Some(b)) =
        (lo.chars().next().filter(|_| lo.len() == 1), hi.chars().next().filter(|_| hi.len() == 1))
    {
        for c in a..=b {
            for rest in expand_range(tail)? {
                out.push(format!("{head}{c}{rest}"));
            }
        }
    } else {
        return Err(format!("{pattern:?}: a range is numbers or single letters"));
    }
    Ok(out)
}

fn parse_vars(tokens: &str) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    let mut rest = tokens.trim();
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().to_owned();
        let after = &rest[eq + 1..];
        let (value, next) = match after.chars().next() {
            Some(q @ ('"' | '\'')) => match after[1..].find(q) {
                Some(end) => (after[1..=end].to_owned(), &after[end + 2..]),
                None => (after[1..].to_owned(), ""),
            },
            _ => {
                let end = after.find(char::is_whitespace).unwrap_or(after.len());
                (after[..end].to_owned(), &after[end..])
            }
        };
        vars.insert(key, value);
        rest = next.trim_start();
    }
    vars
}

fn read_ini(text: &str, inv: &mut Inventory) -> Result<(), String> {
    let mut section = ("ungrouped".to_owned(), "hosts");
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = match name.split_once(':') {
                Some((g, "children")) => (g.to_owned(), "children"),
                Some((g, "vars")) => (g.to_owned(), "vars"),
                _ => (name.to_owned(), "hosts"),
            };
            continue;
        }
        let (group, kind) = (&section.0, section.1);
        match kind {
            "children" => {
                inv.children.entry(group.clone()).or_default().insert(line.to_owned());
            }
            "vars" => {
                inv.group_vars.entry(group.clone()).or_default().extend(parse_vars(line));
            }
            _ => {
                let (pattern, vars) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
                for host in expand_range(pattern).map_err(|e| format!("line {}: {e}", i + 1))? {
                    let entry = inv.hosts.entry(host.clone()).or_insert_with(|| (BTreeMap::new(), i + 1));
                    entry.0.extend(parse_vars(vars));
                    inv.members.entry(group.clone()).or_default().insert(host);
                }
            }
        }
    }
    Ok(())
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn vars_of(v: &Value) -> BTreeMap<String, String> {
    v.as_mapping()
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.as_str()?.to_owned(), scalar(v)?))).collect())
        .unwrap_or_default()
}

fn read_yaml_group(name: &str, group: &Value, text: &str, inv: &mut Inventory) -> Result<(), String> {
    if let Some(hosts) = group.get("hosts").and_then(Value::as_mapping) {
        for (pattern, vars) in hosts {
            let pattern = pattern.as_str().unwrap_or_default();
            let line =
                text.lines().position(|l| l.trim_start().starts_with(&format!("{pattern}:"))).map_or(0, |i| i + 1);
            for host in expand_range(pattern)? {
                let entry = inv.hosts.entry(host.clone()).or_insert_with(|| (BTreeMap::new(), line));
                entry.0.extend(vars_of(vars));
                inv.members.entry(name.to_owned()).or_default().insert(host);
            }
        }
    }
    inv.group_vars.entry(name.to_owned()).or_default().extend(group.get("vars").map(vars_of).unwrap_or_default());
    if let Some(children) = group.get("children").and_then(Value::as_mapping) {
        for (child, body) in children {
            let child = child.as_str().unwrap_or_default().to_owned();
            inv.children.entry(name.to_owned()).or_default().insert(child.clone());
            read_yaml_group(&child, body, text, inv)?;
        }
    }
    Ok(())
}

/// Every group `host` belongs to, directly or through `children`.
fn groups_of(inv: &Inventory, host: &str) -> Vec<String> {
    let mut groups: BTreeSet<String> =
        inv.members.iter().filter(|(_, m)| m.contains(host)).map(|(g, _)| g.clone()).collect();
    loop {
        let parents: BTreeSet<String> =
            inv.children.iter().filter(|(_, c)| c.iter().any(|x| groups.contains(x))).map(|(p, _)| p.clone()).collect();
        let before = groups.len();
        groups.extend(parents);
        if groups.len() == before {
            break;
        }
    }
    groups.remove("all");
    groups.remove("ungrouped");
    groups.into_iter().collect()
}

/// The hop aliases of `-J a,b` or `-o ProxyJump=a,b` in ssh common args.
fn jumps(args: &str) -> Vec<String> {
    let words: Vec<&str> = args.split_whitespace().collect();
    for (i, w) in words.iter().enumerate() {
        let value = match *w {
            "-J" => words.get(i + 1).copied(),
            w if w.starts_with("-J") => Some(&w[2..]),
            w if w.to_ascii_lowercase().starts_with("proxyjump=") => Some(&w[10..]),
            "-o" => words
                .get(i + 1)
                .and_then(|o| o.split_once('=').filter(|(k, _)| k.eq_ignore_ascii_case("proxyjump")).map(|(_, v)| v)),
            _ => None,
        };
        if let Some(v) = value {
            return v
                .trim_matches(['"', '\''])
                .split(',')
                .map(|h| safe_alias(h.rsplit('@').next().unwrap_or(h)))
                .collect();
        }
    }
    Vec::new()
}

/// Reads an INI or YAML inventory.
pub fn import(path: &Path) -> Result<Imported, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut inv = Inventory::default();
    let yaml = matches!(path.extension().and_then(|e| e.to_str()), Some("yml" | "yaml"));
    if yaml {
        let doc: Value = serde_norway::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        for (name, group) in doc.as_mapping().into_iter().flatten() {
            read_yaml_group(name.as_str().unwrap_or("all"), group, &text, &mut inv)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
    } else {
        read_ini(&text, &mut inv).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let mut imported = Imported::default();
    for (host, (host_vars, line)) in &inv.hosts {
        let origin = format!("{}:{line}", path.display());
        let groups = groups_of(&inv, host);
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        for g in std::iter::once("all".to_owned()).chain(groups.iter().cloned()) {
            vars.extend(inv.group_vars.get(&g).cloned().unwrap_or_default());
        }
        vars.extend(host_vars.clone());
        if let Some((k, _)) = vars.iter().find(|(_, v)| v.contains("{{")) {
            imported.skipped.push(format!("{origin}: host {host}: {k} is a Jinja template; host skipped"));
            continue;
        }
        let port = match vars.get("ansible_port").or(vars.get("ansible_ssh_port")).map(|p| p.parse::<u16>()) {
            Some(Err(_)) => {
                imported.skipped.push(format!("{origin}: host {host}: ansible_port is not a port; host skipped"));
                continue;
            }
            Some(Ok(p)) => Some(p),
            None => None,
        };
        imported.hosts.push(ImportedHost {
            alias: safe_alias(host),
            host: vars.get("ansible_host").or(vars.get("ansible_ssh_host")).cloned().unwrap_or_else(|| host.clone()),
            port,
            user: vars.get("ansible_user").or(vars.get("ansible_ssh_user")).cloned(),
            identity_file: vars.get("ansible_ssh_private_key_file").map(|p| super::ssh_config::expand_tilde(p)),
            certificate_file: None,
            proxy_jump: vars.get("ansible_ssh_common_args").map(|a| jumps(a)).unwrap_or_default(),
            tags: groups.iter().map(|g| safe_alias(g)).collect(),
            origin,
        });
    }
    let known: BTreeSet<String> = imported.hosts.iter().map(|h| h.alias.clone()).collect();
    for h in &mut imported.hosts {
        if let Some(bad) = h.proxy_jump.iter().find(|j| !known.contains(*j)) {
            imported.skipped.push(format!(
                "{}: host {}: jump host {bad} is not in the inventory; proxy_jump dropped",
                h.origin, h.alias
            ));
            h.proxy_jump.clear();
        }
    }
    Ok(imported)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_jump_args() {
        assert_eq!(expand_range("web[01:03].x").unwrap(), ["web01.x", "web02.x", "web03.x"]);
        assert_eq!(expand_range("db-[a:c]").unwrap(), ["db-a", "db-b", "db-c"]);
        assert!(expand_range("h[3:1]").is_err());
        assert_eq!(jumps("-o StrictHostKeyChecking=yes -J ops@bastion,b2"), ["bastion", "b2"]);
        assert_eq!(jumps("-o ProxyJump=bastion"), ["bastion"]);
        assert_eq!(
            parse_vars("a=1 b='x y' c=\"z\""),
            BTreeMap::from([("a".into(), "1".into()), ("b".into(), "x y".into()), ("c".into(), "z".into())])
        );
    }
}
