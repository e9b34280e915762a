//! The operator's terminal through the built binary: `sshwarden run TARGET -- COMMAND` with
//! live `host: line` output, the folded summary, `--json`, `-i`, exit codes, Ctrl-C stopping
//! every remote command, and an `ask` command asked at a real pseudo-terminal.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::ssh_exec::unique_tag;
use crate::support::mcp::BIN;
use crate::support::sshd::{Fleet, FleetOptions, gone_within, remote_processes};

fn run(fleet: &Fleet, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("run")
        .arg("--config-dir")
        .arg(fleet.config_dir())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[test]
fn run_streams_host_lines_folds_the_summary_and_exits_by_outcome() {
    let fleet = Fleet::start(FleetOptions { hosts: 2, ..Default::default() });
    let (code, out, err) = run(&fleet, &["h[1-2]", "--", "echo", "hello"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("h1: hello\n") && out.contains("h2: hello\n"), "live host: line output: {out}");
    assert!(out.contains("h[1-2] (2)"), "identical outputs folded as clush -b does: {out}");
    assert!(!err.contains("INFO"), "quiet by default: {err}");

    let (code, out, err) = run(&fleet, &["h[1-2]", "--", "ls", "/nonexistent-sshwarden"]);
    assert_eq!(code, 4, "a failed host: {out}\n{err}");
    assert!(err.contains("h1: ls: cannot access"), "remote stderr lines on stderr, host first: {err}");

    let (code, out, err) = run(&fleet, &["h1", "--", "reboot"]);
    assert_eq!(code, 3, "a denial: {out}\n{err}");
    assert!(out.contains("no-reboot"), "the denying rule is named: {out}");

    let (code, out, err) = run(&fleet, &["--json", "h[1-2]", "--", "echo", "hi"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["summary"]["ok"], 2, "{v}");
    assert!(!out.contains("h1: hi"), "--json prints the result, not live lines");

    let (code, out, _) = run(&fleet, &["-i", "h[1-2]", "--", "echo", "block"]);
    assert_eq!(code, 0);
    assert!(out.contains("[SUCCESS] h1\nblock\n") || out.contains("[SUCCESS] h2\nblock\n"), "pssh -i blocks: {out}");
}

#[test]
fn ctrl_c_stops_every_remote_command_of_a_run() {
    let fleet = Fleet::start(FleetOptions { hosts: 2, ..Default::default() });
    let marker = format!("313.{}", unique_tag());
    let child = Command::new(BIN)
        .args(["run", "--config-dir"])
        .arg(fleet.config_dir())
        .args(["h[1-2]", "--", "sleep", &marker])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while remote_processes(&marker).len() < 2 {
        assert!(start.elapsed() < Duration::from_secs(10), "the commands never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    gone_within(&marker, Duration::from_secs(3)).unwrap_or_else(|left| panic!("Ctrl-C left {left:?}"));
}

/// At a terminal an `ask` command is asked (`approve "…" on h1? [y/N]`); piped, it is refused
/// with the way to get it approved.
#[test]
fn an_ask_command_is_asked_at_the_terminal_and_refused_when_piped() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let path = fleet.path("config/policy.yml");
    let ask = "rules:\n  - id: needs-human\n    action: ask\n    commands: [\"echo approve-me*\"]\n";
    std::fs::write(&path, std::fs::read_to_string(&path).unwrap().replacen("rules:\n", ask, 1)).unwrap();

    let (code, out, err) = run(&fleet, &["h1", "--", "echo", "approve-me"]);
    assert_eq!(code, 3, "{out}\n{err}");
    assert!(err.contains("at a terminal"), "{err}");

    let config = fleet.config_dir();
    let at_terminal = |answer: &str| {
        let args = ["run", "--config-dir", config.to_str().unwrap(), "h1", "--", "echo", "approve-me", answer];
        crate::support::pty::run(BIN, &args, answer)
    };
    // The answer is the last argument of the command too (`echo approve-me y`): the question
    // must name it, and only `y` runs it.
    let (code, screen) = at_terminal("y");
    assert!(screen.contains("approve \"echo approve-me y\" on h1? [y/N]"), "{screen}");
    assert_eq!(code, Some(0), "{screen}");
    assert!(screen.contains("approve-me y"), "{screen}");
    let (code, screen) = at_terminal("n");
    assert_eq!(code, Some(3), "declined at the terminal: {screen}");
    // `call` in process asks the same way (the server's input_required round, answered here).
    let call = |answer: &str| {
        let command = format!("command=echo approve-me {answer}");
        let args = ["call", "--config-dir", config.to_str().unwrap(), "ssh_run", "alias=h1", command.as_str()];
        crate::support::pty::run(BIN, &args, answer)
    };
    let (code, screen) = call("y");
    assert!(screen.contains("echo approve-me y") && screen.contains("[y/N]"), "{screen}");
    assert_eq!(code, Some(0), "{screen}");
    let (code, screen) = call("n");
    assert_eq!(code, Some(3), "declined: {screen}");
    let audit = std::fs::read_to_string(fleet.path("audit.jsonl")).unwrap();
    assert!(audit.contains("\"decision\":\"approved\"") && audit.contains("\"decision\":\"denied\""), "{audit}");
}

/// `call --url` speaks to people: a server URL without `/mcp` works, a refused token says so
/// in one line without Rust internals.
#[test]
fn call_url_without_mcp_works_and_a_refused_token_says_so() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let server = crate::mcp_e2e::http_server(&fleet, "terminal-url-token-0123456789");
    let base = format!("http://127.0.0.1:{}", server.1);
    let call = |token_file: &std::path::Path| {
        Command::new(BIN)
            .args(["call", "--url", &base, "--token-file"])
            .arg(token_file)
            .args(["ssh_run", "alias=h1", "command=echo via-base-url"])
            .output()
            .unwrap()
    };
    let out = call(&fleet.path("token"));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("via-base-url"));
    // Task rows say where and what (the command as shown, secrets masked).
    let out = Command::new(BIN)
        .args(["call", "--url", &base, "--token-file"])
        .arg(fleet.path("token"))
        .arg("ssh_list_tasks")
        .output()
        .unwrap();
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = listed["tasks"].as_array().and_then(|t| t.iter().find(|r| r["command"] == "echo via-base-url"));
    assert!(row.is_some_and(|r| r["alias"] == "h1" && r["started_at"].is_string()), "{listed}");
    let wrong = fleet.path("wrong-token");
    std::fs::write(&wrong, "not-the-token-0123456789").unwrap();
    let out = call(&wrong);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("401") && err.contains("refused the token"), "{err}");
    assert!(!err.contains("rmcp::") && !err.contains("reqwest"), "no Rust internals: {err}");
}

/// `call` types each key=value by the tool's input schema, takes the README's `tag=` for
/// ssh_run_on_tag, and names a bad parameter (`invalid_input`, exit 1).
#[test]
fn call_types_arguments_by_the_tool_schema_and_names_a_bad_one() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let call = |args: &[&str]| {
        let out =
            Command::new(BIN).arg("call").arg("--config-dir").arg(fleet.config_dir()).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = call(&["ssh_run", "alias=h1", "command=echo 1", "timeout_seconds=-5"]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    let text = format!("{out}{err}");
    assert!(text.contains("invalid_input") && text.contains("timeout_seconds"), "the parameter is named: {text}");
    assert!(!text.contains("-5.0"), "an integer stays an integer: {text}");
    let (code, out, err) = call(&["ssh_run_on_tag", "tag=web", "command=echo tagged"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("tagged"), "{out}");
    let (code, out, err) = call(&["ssh_run", "alias=h1", "command=echo 1", "no_such_param=1"]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(format!("{out}{err}").contains("no_such_param"), "{out}{err}");
}

/// `init` writes a configuration that `check` accepts and `run` uses at once: hosts and
/// credentials from an ssh_config, its known_hosts files, a starter policy; `--scan` shows
/// each offered host key as `alias SHA256:…` and adds it only when confirmed (`--yes`).
#[test]
fn init_writes_a_working_configuration_and_scan_asks_before_trusting_keys() {
    use crate::support::sshd::{PORT, USER};
    let fleet = Fleet::start(FleetOptions { hosts: 2, ..Default::default() });
    let key = fleet.path("keys/id_ed25519");
    let ssh_config = |known: &str| {
        fleet
            .hosts
            .iter()
            .map(|h| {
                format!(
                    "Host {}\n  HostName {}\n  Port {PORT}\n  User {USER}\n  IdentityFile {}\n  UserKnownHostsFile {known}\n",
                    h.alias,
                    h.addr.ip(),
                    key.display()
                )
            })
            .collect::<String>()
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ssh_config");
    std::fs::write(&file, ssh_config(&fleet.path("keys/known_hosts").display().to_string())).unwrap();
    let sw = |args: &[&str]| {
        let out = Command::new(BIN).args(args).stdin(Stdio::null()).output().unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let target = dir.path().join("sw");
    let t = target.to_str().unwrap();
    let (code, _, err) = sw(&["init", t, "--from-ssh-config", file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let config = format!("{t}/config");
    let (code, out, err) = sw(&["check", "--config-dir", &config]);
    assert_eq!(code, Some(0), "check passes right after init: {out}{err}");
    let (code, out, err) = sw(&["check", t]);
    assert_eq!(code, Some(0), "`check DIR` checks what init wrote: {out}{err}");
    let (code, out, err) = sw(&["run", "--config-dir", &config, "h[1-2]", "--", "uptime"]);
    assert_eq!(code, Some(0), "the starter policy allows diagnostics: {out}{err}");
    let (code, _, err) = sw(&["init", t, "--from-ssh-config", file.to_str().unwrap()]);
    assert_eq!(code, Some(1), "an existing configuration is kept: {err}");

    // No known_hosts to copy: --scan asks, and nothing is trusted without a yes.
    std::fs::write(&file, ssh_config("/nonexistent/known_hosts")).unwrap();
    let scanned = dir.path().join("scanned");
    let s = scanned.to_str().unwrap();
    let (code, _, err) = sw(&["init", s, "--from-ssh-config", file.to_str().unwrap(), "--scan"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("pass --yes"), "{err}");
    let known = std::fs::read_to_string(format!("{s}/keys/known_hosts")).unwrap();
    assert!(!known.contains("ssh-ed25519"), "no key trusted without confirmation: {known}");
    let fingerprint = |n: usize| {
        let out = Command::new("ssh-keygen").arg("-lf").arg(fleet.hosts[n].dir.join("host_key.pub")).output().unwrap();
        String::from_utf8_lossy(&out.stdout).split_whitespace().nth(1).unwrap_or_default().to_owned()
    };
    let (code, _, err) = sw(&["init", s, "--from-ssh-config", file.to_str().unwrap(), "--scan", "--yes", "--force"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains(&fingerprint(0)) && err.contains(&fingerprint(1)), "alias SHA256:… shown: {err}");
    let (code, out, err) = sw(&["run", "--config-dir", &format!("{s}/config"), "h1", "--", "uptime"]);
    assert_eq!(code, Some(0), "the confirmed keys are trusted: {out}{err}");
}

/// `check` says where it looked (keys, secrets, runbooks) and warns about a configuration
/// that loads but cannot do anything.
#[test]
fn check_prints_resolved_paths_and_warns_when_nothing_can_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir_all(config.join("keys")).unwrap();
    std::fs::write(config.join("servers.yml"), "hosts: []\n").unwrap();
    std::fs::write(config.join("credentials.yml"), "entries: []\n").unwrap();
    std::fs::write(config.join("policy.yml"), "known_hosts_path: keys/known_hosts\nrules: []\n").unwrap();
    let out = Command::new(BIN).args(["check", "--config-dir"]).arg(&config).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&format!("keys: {}", config.join("keys").display())), "<config>/keys when it exists: {text}");
    assert!(text.contains(&format!("secrets: {}", dir.path().join("secrets").display())), "{text}");
    assert!(text.contains("no host can be reached") && text.contains("every command is denied"), "{text}");
}

/// `call --url` waiting for an approver says so: the approval id and how to decide it come
/// as a progress line, and the approver's decision ends the wait.
#[test]
fn call_url_says_which_approval_it_waits_for() {
    use std::io::BufRead;
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let path = fleet.path("config/policy.yml");
    let ask = "rules:\n  - id: needs-human\n    action: ask\n    commands: [\"echo approve-me*\"]\n";
    std::fs::write(&path, std::fs::read_to_string(&path).unwrap().replacen("rules:\n", ask, 1)).unwrap();
    let approver = fleet.path("approver-token");
    std::fs::write(&approver, "approver-secret-0123456789abcdef").unwrap();
    let server = crate::mcp_e2e::http_server_with(
        &fleet,
        "terminal-wait-token-0123456789",
        &["--approver-token-file", approver.to_str().unwrap()],
    );
    let url = format!("http://127.0.0.1:{}", server.1);
    let mut call = Command::new(BIN)
        .args(["call", "--url", &url, "--token-file"])
        .arg(fleet.path("token"))
        .args(["ssh_run", "alias=h1", "command=echo approve-me waited"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(call.stderr.take().unwrap()).lines();
    let said = lines.by_ref().map_while(Result::ok).find(|l| l.contains("waiting for approval")).unwrap_or_default();
    let id = said.split_whitespace().skip_while(|w| *w != "approval").nth(1).unwrap_or_default().to_owned();
    assert!(id.starts_with('a') && said.contains("sshwarden approvals approve"), "{said}");
    let decided = Command::new(BIN)
        .args(["approvals", "approve", &id, "--url", &url, "--token-file"])
        .arg(&approver)
        .output()
        .unwrap();
    assert!(decided.status.success(), "{}", String::from_utf8_lossy(&decided.stderr));
    let out = call.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("approve-me waited"));
}
