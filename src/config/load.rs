//! Reads a config directory: the one place in `config/` that touches the filesystem and env.
//!
//! Owns: file size caps, YAML parsing errors with line/column, secret lookup
//! (`MCP_SSH_SECRET_<NAME>`, then `<secrets-dir>/<name>`), key-path containment, the config
//! hash. Never logs a secret value and never returns a half-loaded config.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::raw::{CredentialsFile, PolicyFile, ServersFile};
use super::validate::{Environment, Source, Validator};
use super::{Config, ConfigError, Diagnostic, Secret, Severity};
use crate::runbook::Runbook;
use crate::runbook::raw::RunbookFile;

/// Largest YAML file accepted (the anchor's cap).
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// The three directories sshwarden reads.
#[derive(Debug, Clone)]
pub struct Dirs {
    pub config: PathBuf,
    pub keys: PathBuf,
    pub secrets: PathBuf,
    /// `*.yml` runbooks; a missing directory means no runbooks.
    pub runbooks: PathBuf,
}

impl Dirs {
    /// `keys`, `secrets` and `runbooks` default to `<config>/keys` (…) when that directory
    /// exists (an `/etc/sshwarden` layout), else to `<config>/../keys` (…), the layout of the
    /// anchor's `/app/{config,keys,secrets}`.
    pub fn new(config: PathBuf, keys: Option<PathBuf>, secrets: Option<PathBuf>) -> Self {
        let parent = config.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        let beside = |name: &str| {
            let inside = config.join(name);
            if inside.is_dir() { inside } else { parent.join(name) }
        };
        Self {
            keys: keys.unwrap_or_else(|| beside("keys")),
            secrets: secrets.unwrap_or_else(|| beside("secrets")),
            runbooks: beside("runbooks"),
            config,
        }
    }

    /// Overrides the runbooks directory (`--runbooks-dir`).
    pub fn with_runbooks(mut self, dir: Option<PathBuf>) -> Self {
        if let Some(d) = dir {
            self.runbooks = d;
        }
        self
    }
}

struct FsEnvironment<'a> {
    dirs: &'a Dirs,
}

impl Environment for FsEnvironment<'_> {
    fn secret(&self, name: &str) -> Result<Secret, String> {
        let var = format!("MCP_SSH_SECRET_{}", name.to_ascii_uppercase().replace('-', "_"));
        if let Ok(v) = std::env::var(&var) {
            return Ok(Secret::new(v));
        }
        let path = self.dirs.secrets.join(name);
        let inside = contained(&self.dirs.secrets, &path);
        match inside.and_then(|p| std::fs::read_to_string(&p).map_err(|e| e.to_string())) {
            Ok(text) => Ok(Secret::new(text.trim().to_owned())),
            Err(why) => Err(format!(
                "secret {name:?} not found: env {var} is unset and {} is unreadable ({why})",
                path.display()
            )),
        }
    }

    fn key_path(&self, raw: &str) -> Result<(PathBuf, Option<String>), String> {
        if raw.len() > 500 {
            return Err("key_path is longer than 500 characters".into());
        }
        let p = Path::new(raw);
        if p.components().any(|c| c == Component::ParentDir) {
            return Err(format!("key_path {raw:?} contains `..`"));
        }
        let joined = if p.is_absolute() { p.to_path_buf() } else { self.dirs.keys.join(p) };
        if !joined.starts_with(&self.dirs.keys) {
            return Err(format!("key_path {raw:?} is outside the keys dir {}", self.dirs.keys.display()));
        }
        if !joined.exists() {
            let warning = format!("key file {} does not exist; connections with it will fail", joined.display());
            return Ok((joined, Some(warning)));
        }
        // Symlinks are fine (Kubernetes secret mounts are symlinks) as long as the target
        // stays inside the keys dir.
        contained(&self.dirs.keys, &joined).map(|p| (p, None)).map_err(|why| format!("key_path {raw:?}: {why}"))
    }

    fn config_relative(&self, path: &str) -> PathBuf {
        let p = Path::new(path);
        if p.is_absolute() { p.to_path_buf() } else { self.dirs.config.join(p) }
    }

    fn token_file(&self, path: &Path) -> Result<Secret, String> {
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if meta.len() > 4096 {
            return Err(format!("{} is larger than 4 KiB; it should hold one token", path.display()));
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let token = text.trim();
        if token.len() < 16 {
            return Err(format!("the token in {} is shorter than 16 characters", path.display()));
        }
        Ok(Secret::new(token.to_owned()))
    }

    fn default_known_hosts(&self) -> PathBuf {
        std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root")).join(".ssh/known_hosts")
    }
}

/// The canonical form of `path`, which must be a regular file inside `dir`.
fn contained(dir: &Path, path: &Path) -> Result<PathBuf, String> {
    let real = path.canonicalize().map_err(|e| format!("{}: {e}", path.display()))?;
    let real_dir = dir.canonicalize().map_err(|e| format!("{}: {e}", dir.display()))?;
    if !real.starts_with(&real_dir) {
        return Err(format!("{} resolves outside {}", path.display(), dir.display()));
    }
    if !real.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    Ok(real)
}

/// Loads and validates `servers.yml`, `credentials.yml` and `policy.yml` from `dirs.config`.
pub fn load(dirs: &Dirs) -> Result<Config, ConfigError> {
    let mut diags = Vec::new();
    let mut read = |name: &str| -> String {
        let path = dirs.config.join(name);
        let fail = |message: String| Diagnostic {
            severity: Severity::Error,
            file: path.display().to_string(),
            line: 0,
            col: 0,
            key: "(file)".into(),
            message,
        };
        match std::fs::metadata(&path) {
            Ok(m) if m.len() > MAX_FILE_BYTES => {
                diags.push(fail(format!("{} is {} bytes, more than the 10 MiB limit", path.display(), m.len())))
            }
            Ok(_) => match std::fs::read_to_string(&path) {
                Ok(text) => return text,
                Err(e) => diags.push(fail(format!("cannot read {}: {e}", path.display()))),
            },
            Err(e) => diags.push(fail(format!("cannot read {}: {e}", path.display()))),
        }
        String::new()
    };
    let servers = read("servers.yml");
    let credentials = read("credentials.yml");
    let policy = read("policy.yml");
    if !diags.is_empty() {
        return Err(ConfigError { diagnostics: diags });
    }
    let names = [
        dirs.config.join("servers.yml").display().to_string(),
        dirs.config.join("credentials.yml").display().to_string(),
        dirs.config.join("policy.yml").display().to_string(),
    ];
    let env = FsEnvironment { dirs };
    let mut cfg = load_from_sources(&env, [(&names[0], &servers), (&names[1], &credentials), (&names[2], &policy)])?;
    cfg.runbooks = load_runbooks(&env, &dirs.runbooks)?;
    Ok(cfg)
}

/// Every `*.yml` of `dir` as a runbook, in file-name order; a name used twice is an error.
fn load_runbooks(env: &FsEnvironment, dir: &Path) -> Result<BTreeMap<String, Runbook>, ConfigError> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yml"))
            .collect(),
        Err(_) => return Ok(BTreeMap::new()),
    };
    files.sort();
    let mut diags = Vec::new();
    let mut v = Validator::new(env);
    let mut out: BTreeMap<String, Runbook> = BTreeMap::new();
    for path in files {
        let name = path.display().to_string();
        let text = match std::fs::metadata(&path) {
            Ok(m) if m.len() > MAX_FILE_BYTES => {
                Err(format!("{name} is {} bytes, more than the 10 MiB limit", m.len()))
            }
            _ => std::fs::read_to_string(&path).map_err(|e| format!("cannot read {name}: {e}")),
        };
        let text = match text {
            Ok(t) => t,
            Err(message) => {
                diags.push(Diagnostic {
                    severity: Severity::Error,
                    file: name,
                    line: 0,
                    col: 0,
                    key: "(file)".into(),
                    message,
                });
                continue;
            }
        };
        let src = Source { name: &name, text: &text };
        let Some(raw) = parse::<RunbookFile>(&src, &mut diags) else { continue };
        let sha = hex::encode(Sha256::digest(text.as_bytes()));
        if let Some(rb) = v.runbook(&src, raw, &path, sha) {
            if let Some(first) = out.get(&rb.name) {
                let message = format!("runbook name {:?} is also used by {}", rb.name, first.file.display());
                diags.push(Diagnostic {
                    severity: Severity::Error,
                    file: name,
                    line: 1,
                    col: 1,
                    key: "name".into(),
                    message,
                });
                continue;
            }
            out.insert(rb.name.clone(), rb);
        }
    }
    diags.extend(v.diags);
    if diags.iter().any(|d| d.severity == Severity::Error) {
        return Err(ConfigError { diagnostics: diags });
    }
    Ok(out)
}

/// Validates the three sources (servers, credentials, policy) as `(file name, text)`.
pub fn load_from_sources(env: &dyn Environment, files: [(&str, &str); 3]) -> Result<Config, ConfigError> {
    let [servers, creds, policy] = files.map(|(name, text)| Source { name, text });
    let mut diags = Vec::new();
    let raw_servers: Option<ServersFile> = parse(&servers, &mut diags);
    let raw_creds: Option<CredentialsFile> = parse(&creds, &mut diags);
    let raw_policy: Option<PolicyFile> = parse(&policy, &mut diags);
    let (Some(raw_servers), Some(raw_creds), Some(raw_policy)) = (raw_servers, raw_creds, raw_policy) else {
        return Err(ConfigError { diagnostics: diags });
    };
    let mut v = Validator::new(env);
    let credentials = v.credentials(&creds, raw_creds);
    let hosts = v.hosts(&servers, raw_servers, &credentials, creds.name);
    let policy_checked = v.policy(&policy, raw_policy, &hosts);
    let host_become_passwords = std::mem::take(&mut v.host_become);
    diags.extend(v.diags);
    if diags.iter().any(|d| d.severity == Severity::Error) {
        return Err(ConfigError { diagnostics: diags });
    }
    let mut hasher = Sha256::new();
    for s in [&servers, &creds, &policy] {
        hasher.update(s.text.len().to_le_bytes());
        hasher.update(s.text.as_bytes());
    }
    Ok(Config {
        hosts,
        credentials,
        policy: policy_checked,
        warnings: diags,
        hash: hex::encode(hasher.finalize()),
        runbooks: BTreeMap::new(),
        host_become_passwords,
    })
}

/// Parses one file; an empty file is the empty document, as in the anchor.
fn parse<T: DeserializeOwned + Default + schemars::JsonSchema>(src: &Source, diags: &mut Vec<Diagnostic>) -> Option<T> {
    if src.text.trim().is_empty() || src.text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
        return Some(T::default());
    }
    match serde_norway::from_str::<T>(src.text) {
        Ok(v) => Some(v),
        Err(e) => {
            // serde names the first unknown key; the schema walk names them all. Anything
            // else (a bad value, broken YAML) is serde's one diagnostic.
            let schema = serde_json::to_value(schemars::schema_for!(T)).unwrap_or_default();
            let unknown = super::unknown_keys::unknown_keys(src.text, &schema);
            if unknown.is_empty() {
                diags.push(parse_error(src, &e));
                return None;
            }
            let loc = super::locate::Locator::new(src.text);
            let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
            let first = diags.len();
            for (path, field) in &unknown {
                let nth = seen.entry(field.as_str()).or_insert(0);
                let at = loc.key(field, None, *nth);
                *nth += 1;
                let key = if path.is_empty() { field.clone() } else { format!("{path}.{field}") };
                let message = format!(
                    "unknown key `{field}`{}",
                    if path.is_empty() { String::new() } else { format!(" in {path}") }
                );
                diags.push(Diagnostic {
                    severity: Severity::Error,
                    file: src.name.to_owned(),
                    line: at.line,
                    col: at.col,
                    key,
                    message,
                });
            }
            // Reported in the order a reader meets them in the file.
            diags[first..].sort_by_key(|d| (d.line, d.col));
            None
        }
    }
}

/// The one diagnostic of a file serde could not read: its position, key and message.
fn parse_error(src: &Source, e: &serde_norway::Error) -> Diagnostic {
    let duplicate =
        e.to_string().split("duplicate field `").nth(1).and_then(|r| r.split('`').next()).map(str::to_owned);
    let (line, col) = match (e.location(), duplicate) {
        (Some(l), _) => (l.line(), l.column()),
        // serde_norway gives no position for duplicate keys: point at the second one.
        (None, Some(field)) => {
            let p = super::locate::Locator::new(src.text).key(&field, None, 1);
            (p.line, p.col)
        }
        (None, None) => (0, 0),
    };
    let message = e.to_string();
    let path = message.split(':').next().filter(|k| !k.contains(' ')).unwrap_or("(document)");
    let unknown = message.split("unknown field `").nth(1).and_then(|r| r.split('`').next());
    let key = match unknown {
        Some(field) if path == "(document)" => field.to_owned(),
        Some(field) => format!("{path}.{field}"),
        None => path.to_owned(),
    };
    Diagnostic { severity: Severity::Error, file: src.name.to_owned(), line, col, key, message }
}
