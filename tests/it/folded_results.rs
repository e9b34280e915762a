//! Agent-sized results: fan-out and plan results folded by identical outcome
//! (`b[1-100]`), a result budget, and the sizes an MCP host can take. Sizes, not timings:
//! asserted. 100 and 1000 aliases share a few real sshd (each alias is its own pooled
//! connection; `ssh_plan` opens none).

use rmcp::model::CallToolResult;
use serde_json::{Value, json};

use crate::support::mcp::{self, Client, params};
use crate::support::sshd::{Fleet, FleetOptions};

/// `count` aliases `{prefix}1..` tagged `tag`, round-robin over the fleet's sshd.
fn aliases(fleet: &Fleet, prefix: &str, tag: &str, count: usize) -> String {
    (1..=count)
        .map(|i| {
            let ip = fleet.hosts[i % fleet.hosts.len()].addr.ip();
            format!(
                "  - alias: {prefix}{i}\n    host: {ip}\n    port: 24022\n    credentials: key\n    tags: [{tag}]\n"
            )
        })
        .collect()
}

async fn call_full(client: &Client, tool: &str, args: Value) -> CallToolResult {
    client.call_tool(params(tool, args)).await.unwrap()
}

fn compact_size(v: &Value) -> usize {
    serde_json::to_vec(v).unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_and_plan_fold_by_outcome_within_budget() {
    let fleet = Fleet::start(FleetOptions { hosts: 4, ..Default::default() });
    fleet.add_hosts(&aliases(&fleet, "b", "bench", 100));
    fleet.add_hosts(&aliases(&fleet, "k", "big", 1000));
    let (client, _) = mcp::stdio(&fleet.config_dir()).await;

    // 100 identical outputs: one group, no per-host rows, within 6 KB.
    let r = call_full(
        &client,
        "ssh_run_on_tag",
        json!({ "target": "bench", "command": "echo same-output", "concurrency": 50 }),
    )
    .await;
    let s = r.structured_content.clone().unwrap();
    assert_eq!(s["summary"]["ok"], 100, "{s}");
    assert_eq!(s["groups"].as_array().unwrap().len(), 1, "{s}");
    assert_eq!((s["groups"][0]["hosts"].as_str(), s["groups"][0]["count"].as_u64()), (Some("b[1-100]"), Some(100)));
    assert_eq!(s["groups"][0]["stdout"], "same-output\n");
    assert_eq!(s["results"], json!([]), "default detail lists only hosts that did not succeed");
    eprintln!("ssh_run_on_tag, 100 hosts, identical output: {} bytes", compact_size(&s));
    assert!(compact_size(&s) <= 6 * 1024, "ssh_run_on_tag result is {} bytes", compact_size(&s));
    let text = r.content.iter().filter_map(|c| c.as_text()).map(|t| t.text.as_str()).collect::<String>();
    assert!(text.contains("b[1-100] (100)\n---------------") && text.contains("same-output"), "{text}");
    // The group's task holds the full output.
    let tid = s["groups"][0]["task_id"].as_str().unwrap();
    let (err, out) = mcp::call(&client, "ssh_get_task_output", json!({ "task_id": tid, "stream": "stdout" })).await;
    assert!(!err && out["data"] == "same-output\n", "{out}");

    // detail=hosts: a row for every host, without the output already in the group.
    let (_, s) =
        mcp::call(&client, "ssh_run_on_tag", json!({ "target": "b[1-5]", "command": "echo x", "detail": "hosts" }))
            .await;
    let rows = s["results"].as_array().unwrap();
    assert_eq!(rows.len(), 5, "{s}");
    assert!(
        rows.iter().all(|r| r["task_id"].is_string() && r["duration_ms"].is_u64() && r.get("stdout").is_none()),
        "{s}"
    );

    // Folded patterns select, failures get rows and their own groups.
    let (_, s) = mcp::call(
        &client,
        "ssh_run_on_tag",
        // The substitution quoted: unquoted, its output could split into `-v NAME` for `test`.
        json!({ "target": "b[1-6]:!b[5-6]", "command": "test \"$(hostname)\" = never || echo ok; exit 3" }),
    )
    .await;
    assert_eq!((s["summary"]["failed"].as_u64(), s["groups"][0]["hosts"].as_str()), (Some(4), Some("b[1-4]")), "{s}");
    assert_eq!(s["results"].as_array().unwrap().len(), 4, "{s}");
    assert_eq!(s["results"][0]["reason"], "exit code 3", "no Rust Debug forms in reasons: {s}");

    // 100 distinct outputs of ~400 bytes: past max_result_bytes, groups are summarised
    // with a hash and the result says how to fetch the rest.
    let (_, s) = mcp::call(
        &client,
        "ssh_run_on_tag",
        json!({ "target": "bench", "command": "head -c 300 /dev/urandom | base64 -w0", "concurrency": 50 }),
    )
    .await;
    assert_eq!(s["summary"]["ok"], 100, "{s}");
    assert!(compact_size(&s) <= 24_576, "budget exceeded: {} bytes", compact_size(&s));
    assert_eq!(s["truncated"], true, "{s}");
    assert!(s["hint"].as_str().unwrap().contains("ssh_get_task_output"), "{s}");
    let groups = s["groups"].as_array().unwrap();
    let summarised: Vec<&Value> = groups.iter().filter(|g| g["truncated"] == true).collect();
    assert!(
        !summarised.is_empty()
            && summarised.iter().all(|g| g["output_sha256"].as_str().unwrap().len() == 64
                && g["task_id"].is_string()
                && g.get("stdout").is_none()),
        "{s}"
    );
    let shown: u64 =
        groups.iter().map(|g| g["count"].as_u64().unwrap()).sum::<u64>() + s["groups_omitted"].as_u64().unwrap_or(0);
    assert_eq!(shown, 100, "every host accounted for: {s}");

    // Plans: one group per outcome, limits once.
    let (_, p) = mcp::call(&client, "ssh_plan", json!({ "target": "bench", "command": "uptime" })).await;
    assert_eq!(
        (p["groups"][0]["hosts"].as_str(), p["groups"][0]["count"].as_u64()),
        (Some("b[1-100]"), Some(100)),
        "{p}"
    );
    assert_eq!(p["limits_sets"].as_array().unwrap().len(), 1, "{p}");
    assert_eq!(p["groups"][0]["limits"], json!({ "b[1-100]": 0 }), "{p}");
    assert!(p.get("hosts").is_none());
    eprintln!("ssh_plan, 100 hosts: {} bytes", compact_size(&p));
    assert!(compact_size(&p) <= 4 * 1024, "ssh_plan at 100 hosts is {} bytes", compact_size(&p));
    let (_, p) = mcp::call(&client, "ssh_plan", json!({ "target": "big", "command": "uptime" })).await;
    assert_eq!(p["summary"]["hosts"], 1000, "{p}");
    eprintln!("ssh_plan, 1000 hosts: {} bytes", compact_size(&p));
    assert!(compact_size(&p) <= 8 * 1024, "ssh_plan at 1000 hosts is {} bytes", compact_size(&p));
    let (_, mixed) =
        mcp::call(&client, "ssh_plan", json!({ "target": "b[1-3]", "command": "reboot now", "detail": "hosts" })).await;
    assert_eq!(mixed["groups"][0]["allowed"], false, "{mixed}");
    assert_eq!(mixed["hosts"].as_array().unwrap().len(), 3, "{mixed}");
    let (_, same) = mcp::call(&client, "ssh_plan", json!({ "target": "b[1-3]", "command": "reboot now" })).await;
    assert_eq!(same["plan_hash"], mixed["plan_hash"], "plan_hash does not depend on the result shape");
    mcp::close(client).await;
}
