//! `sshwarden init DIR`: a working configuration in one step. `DIR/config/` gets
//! `servers.yml` and `credentials.yml` (from `--from-ssh-config` or `--from-ansible`
//! through the importers, else empty) and a commented starter `policy.yml` (`--profile
//! readonly`: the read-only diagnostics rules; `ops`: those plus restarts that need a human's
//! approval); `DIR/keys/known_hosts` gets the known_hosts files the ssh_config names (or
//! ssh's defaults), and with `--scan` the keys the hosts offer, shown as `alias SHA256:…` for
//! the operator to confirm before anything is written (`--yes` for scripts); `DIR/secrets/`
//! is created 0700. `sshwarden check --config-dir DIR/config` passes right after.
//!
//! The key and certificate files the hosts name are copied into `DIR/keys/` (0600), since
//! sshwarden reads keys only from its keys directory.
//!
//! Owns: the starter files and the confirmation. Never overwrites a file without `--force`,
//! never trusts a host key nobody confirmed, never authenticates to a host whose key is not
//! known (a scan stops at the host key).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::commands::{EXIT_ERROR, EXIT_OK};
use crate::import::Imported;

/// The read-only diagnostics rules shipped in `policies/`.
const READONLY_RULES: &str = include_str!("../../policies/readonly-diagnostics.yml");

/// What to start from.
pub struct InitArgs {
    pub dir: PathBuf,
    /// `Some(None)`: `~/.ssh/config`.
    pub from_ssh_config: Option<Option<PathBuf>>,
    pub from_ansible: Option<PathBuf>,
    pub profile: String,
    pub scan: bool,
    pub yes: bool,
    pub force: bool,
}

/// `sshwarden init`.
pub async fn init(args: InitArgs) -> u8 {
    match write_all(&args).await {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_ERROR
        }
    }
}

async fn write_all(args: &InitArgs) -> Result<(), String> {
    let imported = match (&args.from_ssh_config, &args.from_ansible) {
        (Some(_), Some(_)) => return Err("give one of --from-ssh-config and --from-ansible".into()),
        (Some(file), None) => crate::import::ssh_config::import(file.as_deref())?,
        (None, Some(file)) => {
            let mut i = crate::import::ansible::import(file)?;
            i.known_hosts_files = vec![format!("{}/.ssh/known_hosts", home())];
            i
        }
        (None, None) => Imported::default(),
    };
    let policy = starter_policy(&args.profile)?;
    let (config, keys, secrets) = (args.dir.join("config"), args.dir.join("keys"), args.dir.join("secrets"));
    let policy_path = config.join("policy.yml");
    if policy_path.exists() && !args.force {
        return Err(format!("{} exists; --force overwrites it", policy_path.display()));
    }
    for dir in [&args.dir, &config, &keys] {
        create_dir(dir, 0o750)?;
    }
    create_dir(&secrets, 0o700)?;
    let mut imported = imported;
    adopt_keys(&mut imported, &keys)?;
    let summary = crate::import::write(&imported, &config, args.force)?;
    eprintln!("{summary}");
    write_file(&policy_path, &policy)?;
    let known = known_hosts(&imported.known_hosts_files);
    write_file(&keys.join("known_hosts"), &known)?;
    eprintln!("wrote {} ({} profile) and {}", policy_path.display(), args.profile, keys.join("known_hosts").display());
    if args.scan {
        super::init_scan::scan(&config, &keys.join("known_hosts"), args.yes).await?;
    }
    eprintln!("next: sshwarden check --config-dir {}", config.display());
    Ok(())
}

fn home() -> String {
    std::env::var("HOME").unwrap_or_else(|_| "/root".into())
}

/// A commented `policy.yml` for `profile`.
fn starter_policy(profile: &str) -> Result<String, String> {
    let rules = READONLY_RULES.split_once("rules:\n").map_or("", |(_, r)| r);
    let extra = match profile {
        "readonly" => "",
        "ops" => concat!(
            "  # Changes that need a human's approval (action: ask): asked at the terminal by\n",
            "  # `sshwarden run`, through MCP elicitation, or on the approver's endpoints.\n",
            "  - id: ops-restart\n",
            "    action: ask\n",
            "    commands: [\"systemctl restart *\", \"systemctl reload *\"]\n",
        ),
        other => return Err(format!("--profile {other:?}: use readonly or ops")),
    };
    Ok(format!(
        "# sshwarden policy, written by `sshwarden init` (profile: {profile}).\n\
         # Rules are tried in order; what no rule allows is denied. Reference: docs/configuration.md.\n\
         # Check it with: sshwarden check --config-dir <this directory>\n\
         known_hosts_path: ../keys/known_hosts\n\
         network:\n\
         \x20 # Hosts are reached only at these addresses (after DNS). Narrow them to your fleet.\n\
         \x20 allow_cidrs: [\"10.0.0.0/8\", \"172.16.0.0/12\", \"192.168.0.0/16\", \"127.0.0.0/8\", \"::1/128\"]\n\
         limits:\n\
         \x20 max_seconds: 60\n\
         audit:\n\
         \x20 path: ../audit.jsonl\n\
         rules:\n{rules}{extra}"
    ))
}

/// Copies the key and certificate files the hosts name into `keys` (0600; sshwarden reads
/// keys only from its keys directory) and points the hosts at the copies. A different file
/// of the same name already there is an error, never overwritten.
fn adopt_keys(imported: &mut Imported, keys: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    for host in &mut imported.hosts {
        for file in [&mut host.identity_file, &mut host.certificate_file].into_iter().flatten() {
            let source = PathBuf::from(&*file);
            let Some(name) = source.file_name().map(|n| n.to_string_lossy().into_owned()) else { continue };
            let dest = keys.join(&name);
            let bytes = std::fs::read(&source).map_err(|e| format!("{}: {e}", source.display()))?;
            match std::fs::read(&dest) {
                Ok(existing) if existing == bytes => {}
                Ok(_) => {
                    return Err(format!("{} and {} differ; rename one of them", source.display(), dest.display()));
                }
                Err(_) => {
                    std::fs::write(&dest, &bytes).map_err(|e| format!("{}: {e}", dest.display()))?;
                    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o600))
                        .map_err(|e| format!("{}: {e}", dest.display()))?;
                    eprintln!("copied {} to {}", source.display(), dest.display());
                }
            }
            *file = name;
        }
    }
    Ok(())
}

/// The known_hosts lines of `files` (those that exist), each file announced.
fn known_hosts(files: &[String]) -> String {
    let mut text = String::from("# Host keys sshwarden trusts (OpenSSH known_hosts format).\n");
    for file in files {
        match std::fs::read_to_string(file) {
            Ok(lines) => {
                let n = lines.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).count();
                eprintln!("known_hosts: {n} entries from {file}");
                text.push_str(&format!("# from {file}\n{lines}"));
                if !lines.ends_with('\n') {
                    text.push('\n');
                }
            }
            Err(_) => eprintln!("known_hosts: {file} not found, skipped"),
        }
    }
    text
}

fn create_dir(dir: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).map_err(|e| format!("{}: {e}", dir.display()))
}

pub(super) fn write_file(path: &Path, text: &str) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o640)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
}

/// Asks `question` at the terminal; `None` when there is none to ask at.
pub(super) fn confirm(question: &str) -> Option<bool> {
    if !super::call::at_terminal() {
        return None;
    }
    super::call::read_yes_no(&format!("{question} [y/N] "))
}
