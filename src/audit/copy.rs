//! Checking the copy a syslog collector wrote against the chain: only lines of this program
//! (its APP-NAME) are records, lines of other programs are skipped and counted, and with
//! the original audit file at hand every record of the file must be in the copy.
//!
//! Owns: `verify_copy` and the `sshwarden audit verify` command (`FILE`, or `--from-syslog
//! FILE [--app-name N] [--against AUDIT_FILE]`). Never writes either file.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use serde_json::Value;

/// What a check of a collector's copy found.
#[derive(Debug, Default)]
pub struct CopyReport {
    /// Records in the copy whose chain verified.
    pub records: u64,
    /// Lines from other programs (or with no record at all), skipped.
    pub skipped: u64,
    /// Sequence numbers of the audit file missing from (or different in) the copy.
    pub missing: Vec<u64>,
}

/// Whether the text before the record names `app_name` as its program: a token equal to
/// it, or `app_name[pid]`/`app_name:` (traditional and RFC 5424 layouts alike).
fn from_program(prefix: &str, app_name: &str) -> bool {
    prefix.split_whitespace().any(|token| {
        let token = token.trim_end_matches(':');
        token == app_name || token.strip_prefix(app_name).is_some_and(|rest| rest.starts_with('['))
    })
}

/// Verifies the copy at `path`; with `against`, also lists the audit file's records the copy
/// lacks (from the copy's first record on: a copy may start mid-chain, never end early).
pub fn verify_copy(path: &Path, app_name: &str, against: Option<&Path>) -> Result<CopyReport, String> {
    let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut report = CopyReport::default();
    let mut records: Vec<(usize, Result<String, String>)> = Vec::new();
    for (i, line) in BufReader::new(f).lines().enumerate() {
        match line {
            Ok(l) => match l.find('{') {
                Some(at) if from_program(&l[..at], app_name) => {
                    records.push((i + 1, Ok(l[at..].trim_end().to_owned())))
                }
                _ => report.skipped += 1,
            },
            Err(e) => records.push((i + 1, Err(e.to_string()))),
        }
    }
    let copied: BTreeMap<u64, String> = records
        .iter()
        .filter_map(|(_, l)| l.as_ref().ok())
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| Some((v.get("seq")?.as_u64()?, v.get("hash")?.as_str()?.to_owned())))
        .collect();
    report.records = crate::audit::verify_lines(records.into_iter(), true)?;
    if let Some(original) = against {
        let first = copied.keys().next().copied().unwrap_or(1);
        let f = File::open(original).map_err(|e| format!("{}: {e}", original.display()))?;
        for line in BufReader::new(f).lines() {
            let line = line.map_err(|e| format!("{}: {e}", original.display()))?;
            let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
            let (Some(seq), Some(hash)) = (v.get("seq").and_then(Value::as_u64), v.get("hash").and_then(Value::as_str))
            else {
                continue;
            };
            if seq >= first && copied.get(&seq).map(String::as_str) != Some(hash) {
                report.missing.push(seq);
            }
        }
    }
    Ok(report)
}

/// `sshwarden audit verify FILE` / `--from-syslog FILE [--app-name N] [--against FILE]`.
pub fn verify_command(file: Option<&Path>, from_syslog: Option<&Path>, app_name: &str, against: Option<&Path>) -> u8 {
    let result = match (file, from_syslog) {
        (_, Some(remote)) => verify_copy(remote, app_name, against).and_then(|r| {
            let skipped = format!("{} line(s) from other programs or without a record skipped", r.skipped);
            match r.missing.as_slice() {
                [] => Ok((r.records, skipped)),
                missing => Err(format!(
                    "{} record(s) of the audit file are missing from the copy (first: seq {}); {skipped}",
                    missing.len(),
                    missing[0]
                )),
            }
        }),
        (Some(path), None) => crate::audit::verify(path).map(|n| (n, String::new())),
        (None, None) => Err("name an audit file or --from-syslog FILE".into()),
    };
    match result {
        Ok((n, note)) => {
            let note = if note.is_empty() { String::new() } else { format!("; {note}") };
            let _ = writeln!(std::io::stdout(), "ok: {n} records, chain intact{note}");
            0
        }
        Err(e) => {
            eprintln!("audit chain broken: {e}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_names_are_read_in_both_layouts() {
        assert!(from_program("2026-12-04T06:00:00Z host sshwarden ", "sshwarden"));
        assert!(from_program("Dec  4 06:00:00 host sshwarden[42]: ", "sshwarden"));
        assert!(from_program("<110>1 2026-12-04T06:00:00Z host sshwarden 42 audit - ", "sshwarden"));
        assert!(!from_program("2026-12-04T06:00:00Z host cron[1]: ", "sshwarden"));
        assert!(!from_program("2026-12-04T06:00:00Z host sshwardenX ", "sshwarden"));
    }
}
