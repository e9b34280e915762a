//! Runbooks end to end against real sshd, through the built binary (`sshwarden runbook`,
//! in process) and MCP: planned whole before anything runs, denials anywhere stop
//! everything, failing steps roll back, cancel stops remote commands and rolls back,
//! parameters never become a second command, `--plan-hash`, concurrent runs, reload, the
//! shipped runbooks, and secrets never in the audit log.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::mcp::{self, BIN};
use crate::support::sshd::{Fleet, FleetOptions, USER, gone_within, remote_processes};

/// A marker path the login user can create: only a refusal keeps it absent.
fn marker(name: &str) -> String {
    let p = format!("/tmp/sshwarden-rb-{}-{name}", std::process::id());
    let _ = std::fs::remove_file(&p);
    p
}

fn write_runbook(fleet: &Fleet, name: &str, yaml: &str) {
    let dir = fleet.path("runbooks");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.yml")), yaml).unwrap();
}

fn runbook_cli(fleet: &Fleet, args: &[&str]) -> (i32, Vec<Value>, String) {
    let out = Command::new(BIN)
        .args(["runbook"])
        .args(&args[..1])
        .arg("--config-dir")
        .arg(fleet.config_dir())
        .args(&args[1..])
        .env("SSHWARDEN_LOG", "sshwarden=warn")
        .output()
        .unwrap();
    let events = String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    (out.status.code().unwrap_or(-1), events, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn report(events: &[Value]) -> &Value {
    events.iter().rev().find(|e| e["event"] == "report").map(|e| &e["report"]).unwrap_or(&Value::Null)
}

fn step<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["steps"].as_array().and_then(|s| s.iter().find(|s| s["id"] == id)).unwrap_or(&Value::Null)
}

fn install_standin() {
    // A harmless stand-in for a service manager, in the login user's home.
    let script = "#!/bin/sh\ncase \"$1\" in\n  is-active) [ -f \"$HOME/svc-$2.down\" ] && exit 3; echo active ;;\n  restart) echo restart >> \"$HOME/svc-$2.log\" ;;\n  start) rm -f \"$HOME/svc-$2.down\"; echo start >> \"$HOME/svc-$2.log\" ;;\nesac\n";
    let path = format!("/home/{USER}/svcctl");
    std::fs::write(&path, script).unwrap();
    Command::new("chmod").args(["755", &path]).status().unwrap();
    Command::new("chown").args([USER, &path]).status().unwrap();
    let _ = std::fs::remove_file(format!("/home/{USER}/svc-rbtest.log"));
    let _ = std::fs::remove_file(format!("/home/{USER}/svc-rbtest.down"));
}

fn ship(fleet: &Fleet) {
    for name in ["rolling-restart", "disk-memory-report", "collect-logs"] {
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("runbooks/{name}.yml")))
            .unwrap();
        write_runbook(fleet, name, &text);
    }
}

#[test]
fn shipped_runbooks_run_against_real_hosts() {
    let fleet = Fleet::start(FleetOptions { hosts: 2, ..Default::default() });
    ship(&fleet);
    install_standin();
    let (code, events, err) = runbook_cli(
        &fleet,
        &["run", "rolling-restart", "--param", "target=web", "--param", "service=rbtest", "--param", "ctl=./svcctl"],
    );
    let r = report(&events);
    assert_eq!((code, r["outcome"].as_str()), (0, Some("ok")), "{err}\n{events:?}");
    assert_eq!(step(r, "restart")["hosts"].as_array().unwrap().len(), 2, "{r}");
    assert_eq!(step(r, "before")["groups"][0]["hosts"], "h[1-2]", "step results fold by outcome: {r}");
    let log = std::fs::read_to_string(format!("/home/{USER}/svc-rbtest.log")).unwrap();
    assert_eq!(log.lines().filter(|l| *l == "restart").count(), 2, "one restart per host: {log}");
    assert!(
        events.iter().any(|e| e["event"] == "step" && e["step"] == "health"),
        "one JSON event per step when stdout is not a terminal"
    );

    let (code, events, err) = runbook_cli(&fleet, &["run", "disk-memory-report", "--param", "target=h[1-2]"]);
    assert_eq!(code, 0, "{err}");
    let out = &step(report(&events), "disk")["hosts"][0]["stdout"];
    assert!(out.as_str().unwrap().contains("Filesystem"), "{out}");

    let log = "/var/log/sshwarden-runbook-test.log";
    std::fs::write(log, "line one\nline two\n").unwrap();
    let (code, events, err) = runbook_cli(
        &fleet,
        &["run", "collect-logs", "--param", "target=h1", "--param", &format!("file={log}"), "--param", "lines=1"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(step(report(&events), "tail")["hosts"][0]["stdout"], "line two\n");
    let (code, _, err) = runbook_cli(
        &fleet,
        &["plan", "collect-logs", "--param", "target=h1", "--param", "file=/var/log/../../etc/shadow"],
    );
    assert_eq!(code, 1, "a path outside /var/log fails its pattern: {err}");
    assert!(err.contains("does not match pattern"), "{err}");
    let _ = std::fs::remove_file(log);
}

#[test]
fn a_denial_anywhere_runs_nothing_and_a_failing_step_rolls_back() {
    let fleet = Fleet::start(FleetOptions { hosts: 2, ..Default::default() });
    let first = marker("first");
    write_runbook(
        &fleet,
        "denied-later",
        &format!(
            "steps:\n  - id: touch\n    target: web\n    command: touch {first}\n  - id: bad\n    target: h2\n    command: reboot now\n"
        ),
    );
    let (code, _, err) = runbook_cli(&fleet, &["run", "denied-later"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("bad on h2") && err.contains("no-reboot"), "the denial names step, host and rule: {err}");
    assert!(!Path::new(&first).exists(), "the first step ran although a later one is denied");

    let (undo, later) = (marker("undo"), marker("later"));
    write_runbook(
        &fleet,
        "fails",
        &format!(
            "steps:\n  - id: ok\n    target: web\n    command: echo fine\n  - id: broken\n    target: h1\n    command: exit 7\n  - id: later\n    target: web\n    command: touch {later}\nrollback:\n  - id: undo\n    target: h1\n    command: touch {undo}\n"
        ),
    );
    let (code, events, err) = runbook_cli(&fleet, &["run", "fails"]);
    let r = report(&events);
    assert_eq!(code, 4, "{err}");
    assert_eq!((r["outcome"].as_str(), r["rollback_ran"].as_bool()), (Some("failed"), Some(true)), "{r}");
    assert_eq!(step(r, "broken")["hosts"][0]["reason"], "exit code 7, expected one of [0]", "{r}");
    assert_eq!(step(r, "later")["status"], "skipped", "{r}");
    assert!(Path::new(&undo).exists() && !Path::new(&later).exists());
    let _ = std::fs::remove_file(&undo);
}

#[test]
fn parameters_never_become_a_second_command_and_plan_hash_is_checked() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let pwned = marker("pwned");
    write_runbook(
        &fleet,
        "echo",
        "params:\n  - {name: msg, type: string, required: true}\nsteps:\n  - id: say\n    target: h1\n    command: \"echo {{ msg }}\"\n",
    );
    for value in [
        format!("x; touch {pwned}"),
        format!("x\ntouch {pwned}"),
        format!("$(touch {pwned})"),
        format!("`touch {pwned}`"),
        format!("x' ; touch {pwned}; echo '"),
        format!("x\" && touch {pwned} && \""),
    ] {
        let (code, events, err) = runbook_cli(&fleet, &["run", "echo", "--param", &format!("msg={value}")]);
        assert_eq!(code, 0, "{value:?}: {err}");
        assert_eq!(step(report(&events), "say")["hosts"][0]["stdout"], format!("{value}\n"), "printed literally");
        assert!(!Path::new(&pwned).exists(), "{value:?} became a command");
    }
    let (code, events, _) = runbook_cli(&fleet, &["plan", "echo", "--json", "--param", "msg=a"]);
    assert_eq!(code, 0);
    let hash = events[0]["plan_hash"].as_str().unwrap().to_owned();
    let (code, _, err) = runbook_cli(&fleet, &["run", "echo", "--param", "msg=b", "--plan-hash", &hash]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("plan_hash mismatch, nothing ran"), "{err}");
    let (code, _, err) = runbook_cli(&fleet, &["run", "echo", "--param", "msg=a", "--plan-hash", &hash]);
    assert_eq!(code, 0, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_runs_cancel_with_rollback_concurrency_reload_and_secrets() {
    let fleet = Fleet::start(FleetOptions { hosts: 2, ..Default::default() });
    let undo = marker("cancel-undo");
    let tag = format!("{}.{}", 4000 + std::process::id() % 1000, Instant::now().elapsed().subsec_nanos() % 1000);
    write_runbook(
        &fleet,
        "slow",
        &format!(
            "params:\n  - {{name: token, type: string, secret: true, required: true}}\nsteps:\n  - id: wait\n    target: web\n    command: \"echo {{{{ token }}}} >/dev/null; sleep {tag}\"\nrollback:\n  - id: undo\n    target: h1\n    command: touch {undo}\n"
        ),
    );
    write_runbook(&fleet, "quick", "steps:\n  - id: hi\n    target: web\n    command: echo quick\n");
    let (client, _) = mcp::stdio(&fleet.config_dir()).await;

    let (_, list) = mcp::call(&client, "ssh_list_runbooks", json!({})).await;
    assert_eq!(list["count"], 2, "{list}");
    let secret = "s3cr3t-token-value-42";
    let (err, started) =
        mcp::call(&client, "ssh_run_runbook", json!({ "name": "slow", "params": { "token": secret } })).await;
    assert!(!err, "{started}");
    let slow_id = started["task_id"].as_str().unwrap().to_owned();
    // A second runbook runs at the same time.
    let (err, quick) = mcp::call(&client, "ssh_run_runbook", json!({ "name": "quick", "wait_seconds": 20 })).await;
    assert!(!err && quick["status"] == "completed", "{quick}");
    let start = Instant::now();
    while remote_processes(&tag).len() < 2 {
        assert!(start.elapsed() < Duration::from_secs(10), "the slow step never started on both hosts");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, status) = mcp::call(&client, "ssh_get_task_status", json!({ "task_id": slow_id })).await;
    assert_eq!(status["detail"]["steps"][0]["status"], "running", "status shows step states: {status}");
    let (err, c) = mcp::call(&client, "ssh_cancel", json!({ "task_id": slow_id })).await;
    assert!(!err, "{c}");
    gone_within(&tag, Duration::from_secs(5)).expect("remote sleep survived the cancel");
    let start = Instant::now();
    let result = loop {
        let (err, r) = mcp::call(&client, "ssh_get_task_result", json!({ "task_id": slow_id })).await;
        if !err {
            break r;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "run never ended: {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (result["runbook"]["outcome"].as_str(), result["runbook"]["rollback_ran"].as_bool()),
        (Some("cancelled"), Some(true)),
        "{result}"
    );
    assert!(Path::new(&undo).exists(), "rollback did not run after cancel");
    let _ = std::fs::remove_file(&undo);
    let audit = std::fs::read_to_string(fleet.path("audit.jsonl")).unwrap();
    assert!(!audit.contains(secret), "a secret parameter reached the audit log");
    let run_id = result["runbook"]["run_id"].as_str().unwrap();
    let tagged = audit.lines().filter(|l| l.contains(&format!("run={run_id}"))).count();
    assert!(
        audit.contains("\"runbook_start\"") && audit.contains("\"runbook_end\"") && tagged >= 4,
        "step records carry the run id"
    );

    // A broken runbook on reload keeps the old set.
    write_runbook(
        &fleet,
        "broken",
        "steps:\n  - id: a\n    target: web\n    command: \"echo {{ nope }}\"\n    bogus: 1\n",
    );
    let (err, r) = mcp::call(&client, "ssh_reload_config", json!({})).await;
    assert!(err && r["errors"].as_array().unwrap().iter().any(|e| e.as_str().unwrap().contains("broken.yml:")), "{r}");
    let (_, list) = mcp::call(&client, "ssh_list_runbooks", json!({})).await;
    assert_eq!(list["count"], 2, "old set kept: {list}");
    mcp::close(client).await;
}

/// A stand-in service manager that knows which host it runs on (the address sshd listens
/// on) and breaks the service on the hosts that have a `.breaks-ADDR` file.
fn install_host_aware_standin(service: &str) {
    let script = "#!/bin/sh\nhost=$(echo \"$SSH_CONNECTION\" | cut -d' ' -f3)\ncase \"$1\" in\n  is-active) [ -f \"$HOME/svc-$2.down-$host\" ] && exit 3; echo active ;;\n  restart) echo \"restart $host\" >> \"$HOME/svc-$2.log\"; if [ -f \"$HOME/svc-$2.breaks-$host\" ]; then touch \"$HOME/svc-$2.down-$host\"; fi ;;\n  start) rm -f \"$HOME/svc-$2.down-$host\"; echo \"start $host\" >> \"$HOME/svc-$2.log\" ;;\nesac\n";
    let path = format!("/home/{USER}/svcroll");
    std::fs::write(&path, script).unwrap();
    Command::new("chmod").args(["755", &path]).status().unwrap();
    Command::new("chown").args([USER, &path]).status().unwrap();
    for entry in std::fs::read_dir(format!("/home/{USER}")).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with(&format!("svc-{service}.")) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[test]
fn a_rolling_run_checks_each_batch_before_the_next_and_stops_at_a_broken_host() {
    let fleet = Fleet::start(FleetOptions { hosts: 4, ..Default::default() });
    ship(&fleet);
    let service = format!("roll{}", std::process::id());
    install_host_aware_standin(&service);
    let addr = |n: usize| fleet.hosts[n - 1].addr.ip().to_string();
    // Host 2 comes back broken from its restart.
    std::fs::write(format!("/home/{USER}/svc-{service}.breaks-{}", addr(2)), "").unwrap();
    let args = ["--param", "target=h[1-4]", "--param", &format!("service={service}"), "--param", "ctl=./svcroll"];

    let (code, events, err) = runbook_cli(&fleet, &[&["plan", "rolling-restart", "--json"][..], &args[..]].concat());
    assert_eq!(code, 0, "{err}");
    let planned = events.last().cloned().unwrap_or_default();
    assert_eq!(planned["batches"], json!(["h1", "h[2-3]", "h4"]), "serial: [1, 2, \"25%\"] of 4 hosts: {planned}");

    let (code, events, err) = runbook_cli(&fleet, &[&["run", "rolling-restart"][..], &args[..]].concat());
    let r = report(&events);
    assert_eq!((code, r["outcome"].as_str()), (4, Some("failed")), "{err}\n{r}");
    let log = std::fs::read_to_string(format!("/home/{USER}/svc-{service}.log")).unwrap();
    let restarted: Vec<&str> = log.lines().filter_map(|l| l.strip_prefix("restart ")).collect();
    assert!(restarted.contains(&addr(1).as_str()) && restarted.contains(&addr(2).as_str()), "{log}\n{r}");
    assert!(!restarted.contains(&addr(4).as_str()), "the batch after the broken host's never started: {log}");
    let statuses: Vec<&str> = r["batches"].as_array().unwrap().iter().map(|b| b["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["ok", "failed", "skipped"], "{r}");
    assert_eq!(r["rollback_ran"], true, "{r}");
    assert!(log.lines().any(|l| l == format!("start {}", addr(2))), "rollback started it again: {log}");

    // With room for one failed host in four, the run goes on to the last batch.
    let tolerant = std::fs::read_to_string(fleet.path("runbooks/rolling-restart.yml"))
        .unwrap()
        .replace("max_fail_percentage: 0\n", "max_fail_percentage: 25\n")
        .replace("    retries: 2\n", "    retries: 2\n    on_failure: continue\n");
    write_runbook(&fleet, "rolling-tolerant", &tolerant.replace("name: rolling-restart", "name: rolling-tolerant"));
    std::fs::write(format!("/home/{USER}/svc-{service}.log"), "").unwrap();
    let (code, events, err) = runbook_cli(&fleet, &[&["run", "rolling-tolerant"][..], &args[..]].concat());
    let r = report(&events);
    assert_eq!((code, r["outcome"].as_str()), (4, Some("failed")), "{err}\n{r}");
    let log = std::fs::read_to_string(format!("/home/{USER}/svc-{service}.log")).unwrap();
    assert!(log.lines().any(|l| l == format!("restart {}", addr(4))), "25% tolerated: the last batch ran: {log}");
    assert_eq!(r["rollback_ran"], false, "on_failure: continue and within the threshold: {r}");
    for entry in std::fs::read_dir(format!("/home/{USER}")).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with(&format!("svc-{service}.")) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[test]
fn ctrl_c_cancels_the_cli_run_and_rolls_back_and_url_mode_works() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    // SIGTERM (a supervisor, CI) stops a run the way Ctrl-C does: before, it killed the CLI
    // and left the step running with no rollback.
    for (n, signal) in ["-INT", "-TERM"].into_iter().enumerate() {
        let undo = marker(&format!("ctrlc-undo{n}"));
        let tag = format!("{}.{}", 5000 + std::process::id() % 1000, 7 + n);
        write_runbook(
            &fleet,
            "long",
            &format!(
                "steps:\n  - id: wait\n    target: h1\n    command: sleep {tag}\nrollback:\n  - id: undo\n    target: h1\n    command: touch {undo}\n"
            ),
        );
        let child = Command::new(BIN)
            .args(["runbook", "run", "--config-dir"])
            .arg(fleet.config_dir())
            .arg("long")
            .env("SSHWARDEN_LOG", "sshwarden=warn")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while remote_processes(&tag).is_empty() {
            assert!(start.elapsed() < Duration::from_secs(10), "the step never started");
            std::thread::sleep(Duration::from_millis(50));
        }
        Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(4), "{signal}: {}", String::from_utf8_lossy(&out.stdout));
        assert!(remote_processes(&tag).is_empty(), "remote command survived {signal}");
        assert!(Path::new(&undo).exists(), "rollback did not run after {signal}");
        let _ = std::fs::remove_file(&undo);
    }

    // The same CLI against a running server.
    write_runbook(&fleet, "quick", "steps:\n  - id: hi\n    target: h1\n    command: echo via-url\n");
    let server = crate::mcp_e2e::http_server(&fleet, "runbook-url-token-0123456789");
    let url = format!("http://127.0.0.1:{}/mcp", server.1);
    let token = fleet.path("token");
    let (code, events, err) =
        runbook_cli(&fleet, &["run", "--url", &url, "--token-file", token.to_str().unwrap(), "quick"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(step(report(&events), "hi")["hosts"][0]["stdout"], "via-url\n");
}

#[test]
fn a_missing_config_file_is_named_without_a_fake_position() {
    let out = Command::new(BIN).args(["check", "--config-dir", "/nonexistent-sshwarden"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot read /nonexistent-sshwarden/servers.yml: No such file or directory"), "{err}");
    assert!(!err.contains(":0:0"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_whose_fanout_is_refused_fails_and_rolls_back() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let undo = marker("fanout-undo");
    write_runbook(
        &fleet,
        "refused",
        &format!(
            "steps:\n  - id: first\n    target: h1\n    command: echo one\n  - id: second\n    target: h1\n    command: echo two\nrollback:\n  - id: undo\n    target: h1\n    command: touch {undo}\n"
        ),
    );
    let svc = crate::support::svc::service(&fleet);
    let rb = svc.config().runbooks["refused"].clone();
    let (mut plan, values) = sshwarden::service::runner::exec::start(
        &svc,
        &rb,
        &Default::default(),
        &sshwarden::policy::Principal::local(),
        None,
    )
    .await
    .unwrap();
    // A command the fan-out refuses before any host starts (the plan judged another one).
    plan.steps[1].rendered.as_mut().unwrap().command = " ".into();
    let cancel = tokio_util::sync::CancellationToken::new();
    let report =
        sshwarden::service::runner::exec::execute(&svc, &rb, &plan, &values, "test", &cancel, |_, _| {}).await.unwrap();
    let r = serde_json::to_value(&report).unwrap();
    assert_eq!(step(&r, "first")["status"], "ok", "{r}");
    let second = step(&r, "second");
    assert_eq!(second["status"], "failed", "zero hosts ran: not a success: {r}");
    assert_eq!(
        (second["hosts"][0]["status"].as_str(), second["hosts"][0]["reason"].as_str()),
        (Some("failed"), Some("command is empty")),
        "{r}"
    );
    assert_eq!((r["outcome"].as_str(), r["rollback_ran"].as_bool()), (Some("failed"), Some(true)), "{r}");
    assert!(Path::new(&undo).exists(), "rollback did not run");
    let _ = std::fs::remove_file(&undo);
}

#[test]
fn runbook_plan_shows_an_ask_step_as_ask() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let path = fleet.path("config/policy.yml");
    let ask = "rules:\n  - id: needs-human\n    action: ask\n    commands: [\"echo approve-me*\"]\n";
    std::fs::write(&path, std::fs::read_to_string(&path).unwrap().replacen("rules:\n", ask, 1)).unwrap();
    write_runbook(
        &fleet,
        "asks",
        "steps:\n  - id: check\n    target: h1\n    command: uptime\n  - id: change\n    target: h1\n    command: echo approve-me\n",
    );
    let out = Command::new(BIN)
        .args(["runbook", "plan", "--config-dir"])
        .arg(fleet.config_dir())
        .arg("asks")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.lines().any(|l| l.starts_with("ASK") && l.contains("change")), "{text}");
    assert!(!text.contains("DENY"), "an ask step is not a denial: {text}");
}

/// On a terminal, a failed run's summary names the failing host and shows the tail of its
/// stderr; each finished step shows its own frozen duration.
#[test]
fn the_terminal_view_shows_a_failing_hosts_stderr_tail() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    write_runbook(&fleet, "breaks", "steps:\n  - id: look\n    target: h1\n    command: ls /nonexistent-rb-dir\n");
    let config = fleet.config_dir();
    let (code, screen) =
        crate::support::pty::run(BIN, &["runbook", "run", "--config-dir", config.to_str().unwrap(), "breaks"], "");
    assert_eq!(code, Some(4), "{screen}");
    assert!(screen.contains("step look h1: failed"), "{screen}");
    assert!(screen.contains("stderr: ls: cannot access"), "the failing host's stderr tail: {screen}");
    assert!(screen.contains("s]"), "the finished step's duration: {screen}");
}

/// `runbook run` in process at a terminal: the operator is asked about an `ask` step
/// (they hold the configuration); yes runs it, no fails the step.
#[test]
fn an_ask_step_is_asked_at_the_terminal() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let path = fleet.path("config/policy.yml");
    let ask = "rules:\n  - id: needs-human\n    action: ask\n    commands: [\"echo approve-me*\"]\n";
    std::fs::write(&path, std::fs::read_to_string(&path).unwrap().replacen("rules:\n", ask, 1)).unwrap();
    write_runbook(&fleet, "asks", "steps:\n  - id: change\n    target: h1\n    command: echo approve-me step\n");
    let config = fleet.config_dir();
    let args = ["runbook", "run", "--config-dir", config.to_str().unwrap(), "asks"];
    let (code, screen) = crate::support::pty::run(BIN, &args, "y");
    assert!(screen.contains("echo approve-me step") && screen.contains("[y/N]"), "{screen}");
    assert_eq!(code, Some(0), "{screen}");
    let (code, screen) = crate::support::pty::run(BIN, &args, "n");
    assert_eq!(code, Some(4), "declined: {screen}");
    let audit = std::fs::read_to_string(fleet.path("audit.jsonl")).unwrap();
    assert!(audit.contains("\"by\":\"terminal\""), "{audit}");
}
