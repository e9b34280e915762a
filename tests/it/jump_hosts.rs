//! Jump hosts (`proxy_jump`): targets reached through one and two loopback bastions, each
//! hop's and the target's host key checked against its own known_hosts entry, one bastion
//! connection carrying a fan-out, refusals naming the hop, and load errors for unknown hops
//! and cycles.

use serde_json::json;

use crate::support::cfg::{CREDS, CfgDir, servers};
use crate::support::mcp;
use crate::support::sshd::{Fleet, FleetOptions, PORT};

fn behind(alias: &str, ip: std::net::IpAddr, jump: &str) -> String {
    format!(
        "  - alias: {alias}\n    host: {ip}\n    port: {PORT}\n    credentials: key\n    tags: [behind]\n    proxy_jump: {jump}\n"
    )
}

/// Why a run failed: a connection failure is the run's `error`; a refusal before any task
/// is the tool error's `message`.
fn failure(r: &serde_json::Value) -> String {
    r["error"].as_str().or(r["message"].as_str()).unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_behind_one_and_two_bastions() {
    let mut fleet = Fleet::start(FleetOptions { hosts: 3, ..Default::default() });
    let (ip2, ip3) = (fleet.hosts[1].addr.ip(), fleet.hosts[2].addr.ip());
    let mut yaml = behind("t2", ip2, "h1") + &behind("t3", ip3, "[h1, h2]");
    yaml += &format!("{}    resolve: remote\n", behind("tr", ip3, "h1"));
    for i in 1..=20 {
        yaml += &behind(&format!("j{i}"), ip3, "[h1]");
    }
    fleet.add_hosts(&yaml);
    let (client, _) = mcp::stdio(&fleet.config_dir()).await;

    // The target's own key is checked, not the bastion's: a changed target key behind a
    // good bastion is refused and not blamed on the hop (checked on a first connection).
    let kh = fleet.path("keys/known_hosts");
    let good = std::fs::read_to_string(&kh).unwrap();
    let h1_line = good.lines().find(|l| l.starts_with(&format!("[{}]", fleet.hosts[0].addr.ip()))).unwrap().to_owned();
    let h2_line = good.lines().find(|l| l.starts_with(&format!("[{ip2}]"))).unwrap().to_owned();
    let h1_key = h1_line.split_once(' ').unwrap().1;
    std::fs::write(&kh, good.replace(&h2_line, &format!("[{ip2}]:{PORT} {h1_key}"))).unwrap();
    let (_, r) = mcp::call(&client, "ssh_run", json!({ "alias": "t2", "command": "true" })).await;
    let msg = failure(&r);
    assert!(msg.contains("HOST KEY CHANGED") && msg.contains(&ip2.to_string()), "{r}");
    assert!(!msg.contains("via jump host"), "{r}");
    std::fs::write(&kh, &good).unwrap();

    let (err, r) = mcp::call(&client, "ssh_run", json!({ "alias": "t2", "command": "echo through-h1" })).await;
    assert!(!err && r["stdout"] == "through-h1\n", "{r}");
    let (err, r) = mcp::call(&client, "ssh_run", json!({ "alias": "t3", "command": "echo through-h1-h2" })).await;
    assert!(!err && r["stdout"] == "through-h1-h2\n", "{r}");
    // resolve: remote sends the name to the bastion and the audit says so.
    let (err, r) = mcp::call(&client, "ssh_run", json!({ "alias": "tr", "command": "echo resolved-remotely" })).await;
    assert!(!err && r["stdout"] == "resolved-remotely\n", "{r}");
    let audit = std::fs::read_to_string(fleet.path("audit.jsonl")).unwrap();
    assert!(
        audit.lines().any(|l| l.contains("\"alias\":\"tr\"") && l.contains("\"resolve\":\"remote")),
        "audit says who resolved"
    );
    assert!(
        audit.lines().any(|l| l.contains("\"task_start\"") && l.contains("\"via\":[\"h1\",\"h2\"]")),
        "audit names the hops"
    );

    // Twenty targets behind h1: one bastion connection carries them.
    let before = fleet.hosts[0].accepted_logins();
    let (_, fan) = mcp::call(
        &client,
        "ssh_run_on_tag",
        json!({ "target": "j[1-20]", "command": "echo fanned", "concurrency": 20 }),
    )
    .await;
    assert_eq!(fan["summary"]["ok"], 20, "{fan}");
    let bastion_logins = fleet.hosts[0].accepted_logins() - before;
    assert!(bastion_logins <= 2, "{bastion_logins} new bastion connections for 20 targets");

    // The bastion dies while a command runs behind it: the task fails naming the hop, and
    // the next run reconnects.
    let (_, started) = mcp::call(&client, "ssh_run_async", json!({ "alias": "t2", "command": "sleep 30" })).await;
    let task = started["task_id"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    fleet.hosts[0].kill_with_sessions();
    let mut result = serde_json::Value::Null;
    for _ in 0..100 {
        let (err, r) = mcp::call(&client, "ssh_get_task_result", json!({ "task_id": task })).await;
        if !err {
            result = r;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(failure(&result).contains("via jump host h1: connection lost"), "{result}");
    fleet.hosts[0].reconfigure("# back");
    let (err, r) = mcp::call(&client, "ssh_run", json!({ "alias": "t2", "command": "echo reconnected" })).await;
    assert!(!err && r["stdout"] == "reconnected\n", "{r}");

    // A bastion whose own key is unknown is refused, naming it (after a restart drops the
    // pooled connection).
    std::fs::write(&kh, good.replace(&h1_line, "")).unwrap();
    fleet.hosts[0].reconfigure("# restarted by the test");
    let (_, r) = mcp::call(&client, "ssh_run", json!({ "alias": "t3", "command": "true" })).await;
    let msg = failure(&r);
    assert!(msg.contains("via jump host h1") && msg.contains("unknown host key"), "{r}");
    std::fs::write(&kh, &good).unwrap();

    // A bastion that refuses to forward: the error names the hop and why.
    fleet.hosts[0].reconfigure("AllowTcpForwarding no");
    let (_, r) = mcp::call(&client, "ssh_run", json!({ "alias": "t2", "command": "true" })).await;
    let msg = failure(&r);
    assert!(msg.contains("via jump host h1") && msg.contains("AllowTcpForwarding"), "{r}");
    let (_, pre) = mcp::call(&client, "ssh_preflight", json!({ "target": "t3" })).await;
    assert_eq!(pre["hosts"][0]["stage"], "jump_host", "{pre}");
    let hops = pre["hosts"][0]["hops"].as_array().unwrap();
    assert_eq!(
        (hops[0]["alias"].as_str(), hops[0]["ok"].as_bool()),
        (Some("h1"), Some(true)),
        "each hop has a row: {pre}"
    );
    assert_eq!(hops[1]["alias"], "h2", "{pre}");
    let (_, d) = mcp::call(&client, "ssh_describe_host", json!({ "alias": "t3" })).await;
    assert_eq!(
        (d["route"][0]["alias"].as_str(), d["route"][1]["host_key_known"].as_bool()),
        (Some("h1"), Some(true)),
        "{d}"
    );
    mcp::close(client).await;
}

#[test]
fn unknown_hops_and_cycles_are_load_errors() {
    let base = servers(&[("a", &[]), ("b", &[])]);
    let unknown = base.replacen("  - alias: a\n", "  - alias: a\n    proxy_jump: nope\n", 1);
    let e = CfgDir::new(&unknown, CREDS, "").load().unwrap_err().to_string();
    assert!(e.contains("servers.yml:") && e.contains("jump host \"nope\" is not an inventory alias"), "{e}");
    let cycle = base.replacen("  - alias: a\n", "  - alias: a\n    proxy_jump: b\n", 1).replacen(
        "  - alias: b\n",
        "  - alias: b\n    proxy_jump: [a]\n",
        1,
    );
    let e = CfgDir::new(&cycle, CREDS, "").load().unwrap_err().to_string();
    assert!(e.contains("jump hosts form a cycle: a -> b -> a"), "{e}");
    let remote = base.replacen("  - alias: a\n", "  - alias: a\n    resolve: remote\n", 1);
    let e = CfgDir::new(&remote, CREDS, "").load().unwrap_err().to_string();
    assert!(e.contains("resolve: remote needs proxy_jump"), "{e}");
    let remote = base.replacen("  - alias: a\n", "  - alias: a\n    resolve: remote\n    proxy_jump: b\n", 1);
    let cfg = CfgDir::new(&remote, CREDS, "").load().unwrap();
    assert!(cfg.warnings.iter().any(|w| w.to_string().contains("cannot be enforced")), "check warns");
}
