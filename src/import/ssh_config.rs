//! A strict reader of OpenSSH client configuration (ssh_config(5)) for import: `Host`
//! blocks, options before any `Host` (global), `Include` (globs, relative to `~/.ssh`),
//! `Keyword value` and `Keyword=value`, quoted values, case-insensitive keywords, first
//! obtained value wins, all matching blocks apply (`Host *` included), `!` negation.
//!
//! One host entry per concrete alias (a `Host` pattern without `*`, `?` or `!`); patterns
//! are skipped with a warning naming the line, as are `Match` blocks (their conditions
//! depend on the connection). Never connects, never reads a key.

use std::path::{Path, PathBuf};

use super::{Imported, ImportedHost, safe_alias};

struct Opt {
    key: String,
    value: String,
    origin: String,
}

struct Block {
    /// `None`: before any `Host` (applies to every host).
    patterns: Option<Vec<String>>,
    origin: String,
    options: Vec<Opt>,
    is_match: bool,
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from)
}

pub(super) fn expand_tilde(p: &str) -> String {
    match p.strip_prefix("~/") {
        Some(rest) => home().join(rest).display().to_string(),
        None => p.to_owned(),
    }
}

/// `keyword value`, `keyword=value`, `keyword = "quoted value"`.
fn split_line(line: &str) -> Option<(String, String)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let end = line.find(|c: char| c.is_whitespace() || c == '=').unwrap_or(line.len());
    let key = line[..end].to_ascii_lowercase();
    let rest = line[end..].trim_start().trim_start_matches('=').trim();
    let value = rest.strip_prefix('"').and_then(|r| r.strip_suffix('"')).unwrap_or(rest).to_owned();
    Some((key, value))
}

fn read(path: &Path, blocks: &mut Vec<Block>, imported: &mut Imported, depth: usize) -> Result<(), String> {
    if depth > 16 {
        return Err(format!("{}: Include nested more than 16 deep", path.display()));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    for (i, line) in text.lines().enumerate() {
        let origin = format!("{}:{}", path.display(), i + 1);
        let Some((key, value)) = split_line(line) else { continue };
        match key.as_str() {
            "host" => blocks.push(Block {
                patterns: Some(value.split_whitespace().map(str::to_owned).collect()),
                origin,
                options: Vec::new(),
                is_match: false,
            }),
            "match" => {
                imported.skipped.push(format!("{origin}: Match blocks are not imported (their options are ignored)"));
                blocks.push(Block { patterns: Some(Vec::new()), origin, options: Vec::new(), is_match: true });
            }
            "include" => {
                for pattern in value.split_whitespace() {
                    let expanded = expand_tilde(pattern);
                    let full = if Path::new(&expanded).is_absolute() {
                        PathBuf::from(expanded)
                    } else {
                        home().join(".ssh").join(expanded)
                    };
                    for file in glob_files(&full) {
                        read(&file, blocks, imported, depth + 1)?;
                    }
                }
            }
            _ => {
                if blocks.is_empty() {
                    blocks.push(Block { patterns: None, origin: origin.clone(), options: Vec::new(), is_match: false });
                }
                if let Some(b) = blocks.last_mut() {
                    b.options.push(Opt { key, value, origin });
                }
            }
        }
    }
    Ok(())
}

/// Files an Include pattern names, sorted (ssh reads them in order).
fn glob_files(pattern: &Path) -> Vec<PathBuf> {
    let text = pattern.display().to_string();
    if !text.contains(['*', '?', '[']) {
        return vec![pattern.to_path_buf()];
    }
    let (Some(dir), Some(name)) = (pattern.parent(), pattern.file_name()) else { return Vec::new() };
    let Ok(glob) = globset::Glob::new(&name.to_string_lossy()) else { return Vec::new() };
    let matcher = glob.compile_matcher();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.file_name().is_some_and(|n| matcher.is_match(n)))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn pattern_matches(pattern: &str, alias: &str) -> bool {
    globset::GlobBuilder::new(pattern)
        .literal_separator(false)
        .build()
        .is_ok_and(|g| g.compile_matcher().is_match(alias))
}

fn applies(block: &Block, alias: &str) -> bool {
    let Some(patterns) = &block.patterns else { return true };
    if block.is_match {
        return false;
    }
    let negated = patterns.iter().filter_map(|p| p.strip_prefix('!')).any(|p| pattern_matches(p, alias));
    !negated && patterns.iter().filter(|p| !p.starts_with('!')).any(|p| pattern_matches(p, alias))
}

fn is_concrete(pattern: &str) -> bool {
    !pattern.contains(['*', '?', '!'])
}

/// Reads `path` (default `~/.ssh/config`) into imported hosts.
pub fn import(path: Option<&Path>) -> Result<Imported, String> {
    let path = path.map_or_else(|| home().join(".ssh/config"), Path::to_path_buf);
    let mut imported = Imported::default();
    let mut blocks = Vec::new();
    read(&path, &mut blocks, &mut imported, 0)?;
    let mut aliases: Vec<(String, String)> = Vec::new();
    for b in blocks.iter().filter(|b| !b.is_match) {
        for p in b.patterns.iter().flatten() {
            if !is_concrete(p) {
                imported.skipped.push(format!("{}: Host pattern {p:?} is not a concrete host", b.origin));
            } else if !aliases.iter().any(|(a, _)| a == p) {
                aliases.push((p.clone(), b.origin.clone()));
            }
        }
    }
    let concrete: Vec<String> = aliases.iter().map(|(a, _)| a.clone()).collect();
    let mut extra_hops: Vec<ImportedHost> = Vec::new();
    for (alias, origin) in &aliases {
        let first = |key: &str| {
            blocks
                .iter()
                .filter(|b| applies(b, alias))
                .flat_map(|b| &b.options)
                .find(|o| o.key == key)
                .map(|o| (o.value.clone(), o.origin.clone()))
        };
        let host = first("hostname").map_or_else(|| alias.clone(), |(v, _)| v.replace("%h", alias));
        let port = match first("port") {
            Some((p, at)) => match p.parse::<u16>() {
                Ok(p) => Some(p),
                Err(_) => {
                    imported.skipped.push(format!("{at}: Port {p:?} is not a port; host {alias} skipped"));
                    continue;
                }
            },
            None => None,
        };
        let mut proxy_jump = Vec::new();
        if let Some((jumps, at)) = first("proxyjump").filter(|(v, _)| !v.eq_ignore_ascii_case("none")) {
            for hop in jumps.split(',').map(str::trim) {
                if concrete.iter().any(|c| c == hop) {
                    proxy_jump.push(hop.to_owned());
                    continue;
                }
                // `[user@]host[:port]` that is not an alias gets its own host entry.
                let (user, rest) = hop.rsplit_once('@').map_or((None, hop), |(u, r)| (Some(u.to_owned()), r));
                let (name, port) = match rest.rsplit_once(':') {
                    Some((n, p)) if p.parse::<u16>().is_ok() => (n, p.parse::<u16>().ok()),
                    _ => (rest, None),
                };
                let hop_alias = safe_alias(name);
                if !extra_hops.iter().any(|h| h.alias == hop_alias) {
                    extra_hops.push(ImportedHost {
                        alias: hop_alias.clone(),
                        host: name.to_owned(),
                        port,
                        user,
                        origin: at.clone(),
                        ..Default::default()
                    });
                }
                proxy_jump.push(hop_alias);
            }
        }
        for key in ["userknownhostsfile", "globalknownhostsfile"] {
            let named = first(key).map(|(v, _)| v);
            for file in named.iter().flat_map(|v| v.split_whitespace()).map(expand_tilde) {
                if file != "/dev/null" && !imported.known_hosts_files.contains(&file) {
                    imported.known_hosts_files.push(file);
                }
            }
        }
        let certificate_file = first("certificatefile").map(|(v, _)| expand_tilde(&v));
        // ssh pairs a lone CertificateFile with its key by name (`id-cert.pub` → `id`).
        let identity_file = first("identityfile")
            .map(|(v, _)| expand_tilde(&v))
            .or_else(|| certificate_file.as_deref().and_then(|c| c.strip_suffix("-cert.pub")).map(str::to_owned));
        imported.hosts.push(ImportedHost {
            alias: safe_alias(alias),
            host,
            port,
            user: first("user").map(|(v, _)| v),
            identity_file,
            certificate_file,
            proxy_jump,
            tags: Vec::new(),
            origin: origin.clone(),
        });
    }
    imported.hosts.extend(extra_hops.into_iter().filter(|h| !concrete.contains(&h.alias)));
    if imported.known_hosts_files.is_empty() {
        // ssh's own defaults when the file names none.
        imported.known_hosts_files = vec![expand_tilde("~/.ssh/known_hosts"), "/etc/ssh/ssh_known_hosts".to_owned()];
    }
    Ok(imported)
}
