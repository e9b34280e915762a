//! The differential oracle's sandbox: the real bash of the test hosts in a chroot, with no
//! network, an empty environment, and every program name (on `PATH` and in `/bin`,
//! `/usr/bin`, `/sbin`, `/usr/sbin`) a recorder that logs its argv instead of running.
//! Builtins are traced with xtrace. Many commands run in one bash process, each in its own
//! subshell, so tens of thousands of cases fit in seconds. The commands run as a uid of
//! their own (64123) with a process limit; everything of that uid is killed after each run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Names a recorder stands in for: everything a generated command can name.
pub const PROGRAMS: &[&str] = &[
    "uptime", "echo", "ls", "printf", "true", "false", "cat", "date", "sleep", "id", "df", "touch", "rm", "env",
    "nohup", "timeout", "nice", "watch", "xargs", "sh", "dash", "stdbuf", "setsid", "sudo", "find", "test", "[",
    "grep", "wc", "head", "du", "zcat", "hostname", "whoami", "curl", "python3", "awk", "su", "busybox", "ionice",
    "taskset", "time", "kill", "bash", "read", "mapfile", "getopts", "uname", "cp", "mv", "chmod",
];

/// What one case did: programs executed (argv, program as bash named it) and the names
/// xtrace saw run.
#[derive(Debug, Default, Clone)]
pub struct Observed {
    pub executed: Vec<Vec<String>>,
    pub traced: Vec<String>,
}

pub struct Sandbox {
    root: tempfile::TempDir,
}

impl Sandbox {
    /// Builds the chroot; `None` when not root (chroot needs it) — the caller fails then.
    pub fn new() -> Option<Self> {
        if !nix_is_root() {
            return None;
        }
        let root = tempfile::tempdir().ok()?;
        let r = root.path();
        for d in [
            "bin",
            "usr/bin",
            "sbin",
            "usr/sbin",
            "rec",
            "dev",
            "tmp",
            "work",
            "var/log/sub",
            "etc",
            "lib64",
            "lib/x86_64-linux-gnu",
        ] {
            std::fs::create_dir_all(r.join(d)).ok()?;
        }
        copy_with_libs(Path::new("/bin/bash"), r)?;
        std::fs::copy("/bin/bash", r.join("rec/.bash")).ok()?;
        let recorder = "#!/rec/.bash\nIFS=$'\\x1f'\nif (($#)); then printf '%s\\x1f%s\\x1e' \"$0\" \"$*\"; else printf '%s\\x1e' \"$0\"; fi >>/log\n";
        std::fs::write(r.join("rec/.recorder"), recorder).ok()?;
        set_mode(&r.join("rec/.recorder"), 0o755);
        for dir in ["rec", "bin", "usr/bin", "sbin", "usr/sbin"] {
            for name in PROGRAMS {
                let link = r.join(dir).join(name);
                if !link.exists() {
                    std::os::unix::fs::symlink("/rec/.recorder", link).ok()?;
                }
            }
        }
        let null = Command::new("mknod").args(["-m", "666"]).arg(r.join("dev/null")).args(["c", "1", "3"]).status();
        if !null.is_ok_and(|s| s.success()) {
            return None;
        }
        for f in ["log", "trace"] {
            std::fs::write(r.join(f), "").ok()?;
            set_mode(&r.join(f), 0o666);
        }
        set_mode(&r.join("tmp"), 0o1777);
        set_mode(&r.join("work"), 0o777);
        Some(Self { root })
    }

    /// Runs every command (in order) in one bash, `extglob` on or off; returns what each did.
    pub fn run(&self, commands: &[String], extglob: bool) -> Vec<Observed> {
        let r = self.root.path();
        let mut cases = Vec::new();
        for c in commands {
            cases.extend_from_slice(c.as_bytes());
            cases.push(0);
        }
        std::fs::write(r.join("cases"), cases).unwrap();
        std::fs::write(r.join("log"), "").unwrap();
        std::fs::write(r.join("trace"), "").unwrap();
        let driver = format!(
            "{}ulimit -u 128 -t 120\ncd /work\nexec 7>>/trace\ni=0\nwhile IFS= read -r -d '' c; do\n  printf 'C%d\\x1f\\x1e' \"$i\" >>/log\n  printf '\\x1dC%d\\n' \"$i\" >&7\n  ( BASH_XTRACEFD=7; PS4=$'\\x1d '; set -x; eval \"$c\"; {{ set +x; }} 2>/dev/null; wait ) </dev/null >/dev/null 2>&1\n  i=$((i+1))\ndone </cases\n",
            if extglob { "shopt -s extglob\n" } else { "" }
        );
        std::fs::write(r.join("driver"), driver).unwrap();
        let mut child = Command::new("/usr/bin/unshare")
            .args(["--net", "--ipc", "--pid", "--fork", "--kill-child", "/usr/sbin/chroot", "--userspec=64123:64123"])
            .arg(r)
            .args(["/bin/bash", "/driver"])
            .env_clear()
            .env("PATH", "/rec")
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(240);
        let finished = loop {
            if child.try_wait().unwrap().is_some() {
                break true;
            }
            if std::time::Instant::now() > deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // Whatever the commands left behind (background jobs, a runaway loop) ends here:
        // the oracle's uid owns nothing else.
        for signal in ["-STOP", "-KILL"] {
            let _ = Command::new("/usr/bin/pkill").args([signal, "-U", "64123"]).status();
        }
        let _ = child.wait();
        assert!(finished, "the oracle's bash did not finish within 240 s");
        let log = std::fs::read(r.join("log")).unwrap();
        let trace = std::fs::read(r.join("trace")).unwrap();
        let mut out: BTreeMap<usize, Observed> = BTreeMap::new();
        let mut case = 0usize;
        for record in String::from_utf8_lossy(&log).split('\u{1e}').filter(|r| !r.is_empty()) {
            let fields: Vec<String> = record.split('\u{1f}').map(str::to_owned).collect();
            if fields.len() == 2 && fields[1].is_empty() && fields[0].starts_with('C') {
                case = fields[0][1..].parse().unwrap_or(case);
                continue;
            }
            out.entry(case).or_default().executed.push(fields);
        }
        let mut case = 0usize;
        let mut first = true;
        for line in String::from_utf8_lossy(&trace).lines() {
            let Some(body) = line.strip_prefix('\u{1d}') else { continue };
            if let Some(n) = body.strip_prefix('C') {
                case = n.parse().unwrap_or(case);
                first = true;
                continue;
            }
            let body = body.trim_start_matches('\u{1d}').trim_start();
            if std::mem::take(&mut first) || body == "set +x" {
                continue; // the driver's own `eval` and `set +x`
            }
            out.entry(case).or_default().traced.push(first_word(body));
        }
        (0..commands.len()).map(|i| out.remove(&i).unwrap_or_default()).collect()
    }
}

/// The command word of an xtrace line, with xtrace's own quoting removed.
fn first_word(line: &str) -> String {
    if let Some(rest) = line.strip_prefix('\'') {
        return rest.split('\'').next().unwrap_or_default().to_owned();
    }
    line.split([' ', '\t']).next().unwrap_or_default().to_owned()
}

fn nix_is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Copies `binary` and the shared objects `ldd` names into the same paths under `root`.
fn copy_with_libs(binary: &Path, root: &Path) -> Option<()> {
    let ldd = Command::new("ldd").arg(binary).output().ok()?;
    let mut files: Vec<PathBuf> = vec![binary.to_path_buf()];
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        if let Some(path) = line.split_whitespace().find(|w| w.starts_with('/')) {
            files.push(PathBuf::from(path));
        }
    }
    for f in files {
        let target = root.join(f.strip_prefix("/").ok()?);
        std::fs::create_dir_all(target.parent()?).ok()?;
        std::fs::copy(&f, &target).ok()?;
    }
    Some(())
}
