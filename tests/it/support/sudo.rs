//! A real sudo for `become` tests: the sudoers rules of the dedicated test user, installed
//! once per machine in `/etc/sudoers.d/sshwarden-test` (idempotent, checked with `visudo -cf`
//! before it is moved into place, mode 0440). Needs root and Debian's `sudo`.
//!
//! The rules: `/usr/bin/id` and `/usr/bin/sleep` without a password, `/usr/bin/whoami` with
//! the user's password, and nothing else (`cat`, `/bin/sh` have no line: the refusal cases).
//! `Defaults` changes are scoped to the test user.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use super::sshd::{USER, ensure_user};

pub const SUDOERS: &str = "/etc/sudoers.d/sshwarden-test";

/// The sudoers text the tests rely on.
pub fn sudoers_text() -> String {
    format!(
        "# sshwarden integration tests (tests/it/support/sudo.rs); safe to delete.\n\
         Defaults:{USER} lecture=never\n\
         {USER} ALL=(root) NOPASSWD: /usr/bin/id, /usr/bin/sleep\n\
         {USER} ALL=(root) PASSWD: /usr/bin/whoami\n"
    )
}

/// Installs the test sudoers once per machine; panics with the reason when it cannot.
pub fn ensure_sudoers() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        ensure_user();
        assert!(
            Path::new("/usr/bin/sudo").exists(),
            "sudo not found: install it with `apt-get install -y sudo` (scripts/test.sh does)"
        );
        let text = sudoers_text();
        if std::fs::read_to_string(SUDOERS).is_ok_and(|t| t == text) {
            return;
        }
        // A name with a dot: sudo's includedir skips it until the rename.
        let temp = format!("{SUDOERS}.{}.tmp", std::process::id());
        std::fs::write(&temp, &text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o440)).unwrap();
        let check = Command::new("visudo").args(["-cf", &temp]).output().expect("visudo");
        if !check.status.success() {
            let _ = std::fs::remove_file(&temp);
            panic!("visudo refused the test sudoers: {}", String::from_utf8_lossy(&check.stderr));
        }
        std::fs::rename(&temp, SUDOERS).unwrap();
    });
}

/// Root processes whose command line contains `marker` (the `become` cancel test).
pub fn root_processes(marker: &str) -> Vec<String> {
    let out = Command::new("pgrep").args(["-u", "root", "-af", marker]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.contains("pgrep") && !l.contains("sshwarden"))
        .map(str::to_owned)
        .collect()
}

/// Polls until no root process matches `marker`, up to `within`.
pub fn root_gone_within(marker: &str, within: std::time::Duration) -> Result<(), Vec<String>> {
    let start = std::time::Instant::now();
    loop {
        let left = root_processes(marker);
        if left.is_empty() {
            return Ok(());
        }
        if start.elapsed() > within {
            return Err(left);
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

/// Whether `visudo` accepts the text (used to check the fixture itself).
pub fn valid(text: &str, dir: &Path) -> bool {
    let path = dir.join("sudoers-check");
    std::fs::write(&path, text).unwrap();
    Command::new("visudo").arg("-cf").arg(&path).output().is_ok_and(|o| o.status.success())
}
