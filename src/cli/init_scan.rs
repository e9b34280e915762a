//! `sshwarden init --scan`: the host keys the new inventory's hosts offer, shown as
//! `alias  SHA256:…` for the operator to confirm before they are added to known_hosts.
//!
//! Owns: the rounds (a host behind a jump host can be asked only once the hop's key is
//! known: each confirmed round makes the next possible) and the confirmation. Never adds a
//! key nobody confirmed (`--yes` is the operator's confirmation for scripts), never
//! authenticates to a host whose key is unknown (`Service::offered_host_key` stops there).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use super::init::confirm;
use crate::config::Dirs;
use crate::service::Service;

/// Rounds of scanning: jump chains longer than this are scanned by running `init` again.
const MAX_ROUNDS: usize = 4;

pub async fn scan(config: &Path, known_hosts: &Path, yes: bool) -> Result<(), String> {
    for _ in 0..MAX_ROUNDS {
        let resolver =
            crate::net::HickoryResolver::from_system(std::time::Duration::from_secs(2)).map_err(|e| e.to_string())?;
        let svc = Service::start(Dirs::new(config.to_path_buf(), None, None), Arc::new(resolver))
            .map_err(|e| format!("the new configuration does not load: {e}"))?;
        let offered = offered(&svc).await;
        svc.shutdown(crate::server::SHUTDOWN_GRACE).await;
        if offered.is_empty() {
            return Ok(());
        }
        for (alias, fingerprint, _) in &offered {
            eprintln!("{alias:<24} {fingerprint}");
        }
        let question = format!("add these {} host keys to {}?", offered.len(), known_hosts.display());
        match (yes, confirm(&question)) {
            (true, _) | (false, Some(true)) => {}
            (false, Some(false)) => return Err("host keys not added".into()),
            (false, None) => {
                return Err(
                    "host keys not added: confirm them at a terminal, or pass --yes after checking the fingerprints"
                        .into(),
                );
            }
        }
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(known_hosts)
            .map_err(|e| format!("{}: {e}", known_hosts.display()))?;
        for (alias, _, line) in &offered {
            writeln!(file, "# {alias}, confirmed at sshwarden init --scan\n{line}")
                .map_err(|e| format!("{}: {e}", known_hosts.display()))?;
        }
    }
    Ok(())
}

/// (alias, fingerprint, known_hosts line) of every host whose key is not known yet; hosts
/// that cannot be asked (a jump host's key unknown, unreachable) are said and skipped.
async fn offered(svc: &Service) -> Vec<(String, String, String)> {
    let cfg = svc.config();
    let mut found: Vec<(String, String, String)> = Vec::new();
    for host in &cfg.hosts {
        match svc.offered_host_key(host).await {
            Ok(Some((fingerprint, line))) if !found.iter().any(|(_, _, l)| *l == line) => {
                found.push((host.alias.clone(), fingerprint, line));
            }
            Ok(_) => {}
            Err(e) => eprintln!("{}: not scanned: {e}", host.alias),
        }
    }
    found
}
