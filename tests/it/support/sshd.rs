//! Real OpenSSH sshd processes on 127.0.0.0/8 for tests: own host keys, a real
//! known_hosts (plain, hashed, `[host]:port`), a key user and a password, readiness polled,
//! killed on drop. Needs root (to create the login user) and `openssh-server`.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The dedicated login user: a clean home, so shell start-up costs nothing.
pub const USER: &str = "swtest";
pub const PORT: u16 = 24022;

static NEXT_FLEET: AtomicU32 = AtomicU32::new(0);

pub fn sshd_path() -> PathBuf {
    let p = PathBuf::from("/usr/sbin/sshd");
    assert!(p.exists(), "sshd not found: install it with `apt-get install -y openssh-server`");
    p
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The test user's password: one per machine (a root-only file), so test runs in two
/// checkouts at once do not change it under each other; set once per test process.
pub fn password() -> &'static str {
    static PW: OnceLock<String> = OnceLock::new();
    PW.get_or_init(|| {
        ensure_user();
        let dir = std::path::Path::new("/var/lib/sshwarden-test");
        std::fs::create_dir_all(dir).unwrap();
        let file = dir.join("password");
        if !file.exists() {
            // Written whole, then linked into place: a concurrent reader never sees half.
            let temp = dir.join(format!("password.{}", std::process::id()));
            std::fs::write(&temp, format!("pw-{:016x}", rand_u64())).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o600)).unwrap();
            let _ = std::fs::hard_link(&temp, &file);
            let _ = std::fs::remove_file(&temp);
        }
        let pw = std::fs::read_to_string(&file).unwrap().trim().to_owned();
        let mut child = Command::new("chpasswd").stdin(Stdio::piped()).spawn().expect("chpasswd");
        use std::io::Write;
        writeln!(child.stdin.as_mut().unwrap(), "{USER}:{pw}").unwrap();
        assert!(child.wait().unwrap().success(), "chpasswd failed");
        pw
    })
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    std::fs::File::open("/dev/urandom").unwrap().read_exact(&mut b).unwrap();
    u64::from_le_bytes(b)
}

pub fn ensure_user() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        assert!(
            run(Command::new("id").arg("-u")).trim() == "0",
            "the sshd fixture needs root (it creates the {USER} login user)"
        );
        if !Command::new("id").arg(USER).output().unwrap().status.success() {
            run(Command::new("useradd").args(["-m", "-s", "/bin/sh", USER]));
        }
        std::fs::create_dir_all("/run/sshd").unwrap();
    });
}

/// One sshd.
pub struct Sshd {
    pub alias: String,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    child: Option<Child>,
}

impl Sshd {
    pub fn host_pub(&self) -> String {
        std::fs::read_to_string(self.dir.join("host_key.pub"))
            .unwrap()
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The pids of the sshd processes this listener forked (monitors and sessions).
    pub fn session_pids(&self) -> Vec<String> {
        let Some(c) = &self.child else { return Vec::new() };
        let mut pids = vec![c.id().to_string()];
        let mut i = 0;
        while i < pids.len() {
            let out = Command::new("pgrep").args(["-P", &pids[i]]).output().unwrap();
            pids.extend(String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned));
            i += 1;
        }
        pids.into_iter()
            .skip(1)
            .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim() == "sshd")
            .collect()
    }

    /// Sends `signal` to every per-connection sshd (e.g. STOP: a peer that went silent).
    pub fn signal_sessions(&self, signal: &str) {
        for pid in self.session_pids() {
            let _ = Command::new("kill").args([&format!("-{signal}"), &pid]).status();
        }
    }

    /// Kills the listener and every per-connection sshd it forked: live sessions drop. The
    /// command itself is left, to show what a real crash leaves behind.
    pub fn kill_with_sessions(&mut self) {
        self.signal_sessions("KILL");
        self.kill();
    }

    /// Appends `lines` to sshd_config and restarts (live sessions drop).
    pub fn reconfigure(&mut self, lines: &str) {
        let path = self.dir.join("sshd_config");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{text}{lines}\n")).unwrap();
        self.kill_with_sessions();
        self.start();
    }

    /// Successful logins this sshd has logged.
    pub fn accepted_logins(&self) -> usize {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default().matches("Accepted publickey").count()
    }

    /// Restarts with a fresh host key (the known_hosts entry becomes stale).
    pub fn restart_with_new_key(&mut self) {
        self.kill();
        std::fs::remove_file(self.dir.join("host_key")).unwrap();
        std::fs::remove_file(self.dir.join("host_key.pub")).unwrap();
        keygen(&self.dir.join("host_key"), "");
        self.start();
    }

    fn start(&mut self) {
        let child = Command::new(sshd_path())
            .args(["-D", "-e", "-f"])
            .arg(self.dir.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("sshd.log")).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
        wait_banner(self.addr, &self.dir);
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_banner(addr: SocketAddr, dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
            let mut buf = [0u8; 4];
            if s.read_exact(&mut buf).is_ok() && &buf == b"SSH-" {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "sshd on {addr} not ready after 10 s; see {}",
            dir.join("sshd.log").display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn keygen(path: &Path, passphrase: &str) {
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", passphrase, "-C", "sshwarden-test", "-f"])
        .arg(path));
}

/// A fleet of sshd hosts h1..hN plus a config directory that points at them.
pub struct Fleet {
    pub dir: tempfile::TempDir,
    pub hosts: Vec<Sshd>,
}

pub struct FleetOptions {
    pub hosts: usize,
    pub max_sessions: u32,
}

impl Default for FleetOptions {
    fn default() -> Self {
        Self { hosts: 2, max_sessions: 10 }
    }
}

impl Fleet {
    pub fn start(opts: FleetOptions) -> Self {
        ensure_user();
        let pw = password();
        let _ = pw;
        let dir = tempfile::Builder::new().prefix("sshwarden-fleet").tempdir().unwrap();
        let d = dir.path();
        for sub in ["config", "keys", "secrets", "hosts"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        // sshd reads authorized_keys as the login user: the path must be traversable.
        run(Command::new("chmod").args(["0755"]).arg(d));
        keygen(&d.join("keys/id_ed25519"), "");
        keygen(&d.join("keys/id_locked"), "correct horse");
        keygen(&d.join("keys/id_other"), "");
        let authorized = format!(
            "{}{}",
            std::fs::read_to_string(d.join("keys/id_ed25519.pub")).unwrap(),
            std::fs::read_to_string(d.join("keys/id_locked.pub")).unwrap()
        );
        std::fs::write(d.join("authorized_keys"), authorized).unwrap();
        run(Command::new("chmod").args(["0644"]).arg(d.join("authorized_keys")));
        let fleet_no = NEXT_FLEET.fetch_add(1, Ordering::SeqCst);
        let (second, third) = (20 + std::process::id() % 200, fleet_no % 250 + 1);
        let mut hosts = Vec::new();
        let mut known = String::new();
        for n in 1..=opts.hosts {
            let hd = d.join(format!("hosts/h{n}"));
            std::fs::create_dir_all(&hd).unwrap();
            keygen(&hd.join("host_key"), "");
            // Past 250 hosts (benchmarks) the next /24 up is used.
            let (third, fourth) = (third as usize + (n - 1) / 250, (n - 1) % 250 + 1);
            let addr: SocketAddr = format!("127.{second}.{third}.{fourth}:{PORT}").parse().unwrap();
            let config = format!(
                "ListenAddress {addr}\nHostKey {}\nPidFile none\nAuthorizedKeysFile {}\nPubkeyAuthentication yes\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\nAllowUsers {USER}\nUsePAM no\nStrictModes no\nUseDNS no\nPrintMotd no\nPrintLastLog no\nX11Forwarding no\nMaxStartups 200:30:400\nMaxSessions {}\nSubsystem sftp internal-sftp\nLoginGraceTime 20\nLogLevel INFO\n",
                hd.join("host_key").display(),
                d.join("authorized_keys").display(),
                opts.max_sessions
            );
            std::fs::write(hd.join("sshd_config"), config).unwrap();
            let mut sshd = Sshd { alias: format!("h{n}"), addr, dir: hd, child: None };
            sshd.start();
            known.push_str(&format!("[{}]:{PORT} {}\n", addr.ip(), sshd.host_pub()));
            hosts.push(sshd);
        }
        std::fs::write(d.join("keys/known_hosts"), &known).unwrap();
        std::fs::write(d.join("secrets/locked_passphrase"), "correct horse").unwrap();
        std::fs::write(d.join("secrets/swtest_password"), password()).unwrap();
        let fleet = Self { dir, hosts };
        fleet.write_config("");
        fleet
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn config_dir(&self) -> PathBuf {
        self.path("config")
    }

    /// The audit file (`audit.jsonl`) once it contains `needle`, polled up to 10 s: a record
    /// can land just after the state a client saw (a task shown cancelled, then its denial).
    pub async fn audit_once_it_has(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(self.path("audit.jsonl")).unwrap_or_default();
            if text.contains(needle) || std::time::Instant::now() > deadline {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// An address on this fleet's loopback net where nothing listens (`n` > hosts).
    pub fn spare_addr(&self, n: u8) -> std::net::IpAddr {
        let ip = self.hosts[0].addr.ip().to_string();
        let base = ip.rsplit_once('.').unwrap().0;
        format!("{base}.{n}").parse().unwrap()
    }

    /// Appends host entries (YAML list items) to servers.yml.
    pub fn add_hosts(&self, yaml: &str) {
        let path = self.path("config/servers.yml");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(path, format!("{text}{yaml}")).unwrap();
    }

    /// Writes servers/credentials/policy for the fleet; `extra_policy` is appended.
    pub fn write_config(&self, extra_policy: &str) {
        let mut servers = String::from("hosts:\n");
        for (i, h) in self.hosts.iter().enumerate() {
            let tags = if i == 0 { "[web, prod]" } else { "[web, staging]" };
            servers.push_str(&format!("  - alias: {}\n    host: {}\n    port: {PORT}\n    credentials: key\n    tags: {tags}\n    max_concurrency: 64\n    connect_timeout: 5\n", h.alias, h.addr.ip()));
        }
        for (alias, cred) in [
            ("pw", "password"),
            ("locked", "locked"),
            ("nopass", "locked_no_phrase"),
            ("wrongkey", "other"),
            ("wrongpw", "wrongpw"),
        ] {
            servers.push_str(&format!("  - alias: {alias}\n    host: {}\n    port: {PORT}\n    credentials: {cred}\n    tags: [auth]\n    connect_timeout: 5\n", self.hosts[0].addr.ip()));
        }
        std::fs::write(self.path("config/servers.yml"), servers).unwrap();
        let creds = format!(
            "entries:\n  - name: key\n    username: {USER}\n    key_path: id_ed25519\n  - name: password\n    username: {USER}\n    password_secret: swtest_password\n  - name: locked\n    username: {USER}\n    key_path: id_locked\n    key_passphrase_secret: locked_passphrase\n  - name: locked_no_phrase\n    username: {USER}\n    key_path: id_locked\n  - name: other\n    username: {USER}\n    key_path: id_other\n  - name: wrongpw\n    username: {USER}\n    password: not-the-password\n"
        );
        std::fs::write(self.path("config/credentials.yml"), creds).unwrap();
        let policy = format!(
            "known_hosts_path: ../keys/known_hosts\nlimits:\n  max_seconds: 30\n  task_progress_interval: 1\n  deny_substrings: []\nnetwork:\n  allow_cidrs: [\"127.0.0.0/8\"]\nrules:\n  - id: test-all\n    action: allow\n    commands: [\"*\"]\n    allow_constructs: [command_substitution, output_redirect, input_redirect, env_assignment, heredoc, interpreter_code, arithmetic]\n  - id: no-reboot\n    action: deny\n    commands: [\"reboot*\"]\naudit:\n  path: ../audit.jsonl\n{extra_policy}"
        );
        std::fs::write(self.path("config/policy.yml"), policy).unwrap();
    }
}

/// Processes of the test user whose command line contains `marker`.
pub fn remote_processes(marker: &str) -> Vec<String> {
    let out = Command::new("pgrep").args(["-u", USER, "-af", marker]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.contains("pgrep")).map(str::to_owned).collect()
}

/// Polls until no process of the test user matches `marker`, up to `within`.
pub fn gone_within(marker: &str, within: Duration) -> Result<Duration, Vec<String>> {
    let start = Instant::now();
    loop {
        let left = remote_processes(marker);
        if left.is_empty() {
            return Ok(start.elapsed());
        }
        if start.elapsed() > within {
            return Err(left);
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}
