//! The HTTP server as an OAuth 2.1 resource server (`auth:`), against a real OpenID provider
//! (oidc-provider, run by node from tests/interop/oidc.mjs) issuing JWT access tokens by
//! client credentials: metadata (RFC 9728) and challenges, valid tokens work and name their
//! principal in the audit, every kind of bad token is refused with 401 (wrong audience,
//! wrong issuer, expired, unknown `kid`, `alg: none`, tampered signature), a missing scope is
//! 403 naming it, named static tokens and `--token-file` keep working, and one principal
//! cannot see another's task.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::mcp_e2e::{free_port, http_server_at};
use crate::support::mcp;
use crate::support::sshd::{Fleet, FleetOptions};

const LEGACY: &str = "legacy-token-0123456789abcdef";

/// oidc-provider on loopback; killed on drop.
struct Provider(Child, u16);

impl Provider {
    fn start(resources: &str) -> Self {
        let project = crate::ts_interop::node_project();
        let port = free_port();
        let mut child = Command::new("node")
            .arg(project.join("oidc.mjs"))
            .args([&port.to_string(), resources])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node (scripts/test.sh installs nodejs)");
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
        assert!(line.contains("\"ready\":true"), "oidc-provider did not start: {line}");
        Self(child, port)
    }

    fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.1)
    }

    /// An access token for `client` (client credentials) for `resource`.
    async fn token(&self, client: &str, scope: &str, resource: &str) -> String {
        let form = format!(
            "grant_type=client_credentials&scope={}&resource={}",
            scope.replace(' ', "%20").replace(':', "%3A"),
            resource.replace(':', "%3A").replace('/', "%2F")
        );
        let resp = reqwest::Client::new()
            .post(format!("{}/token", self.issuer()))
            .basic_auth(client, Some(format!("{client}-secret-0123456789")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap();
        let body: Value = resp.json().await.unwrap();
        body["access_token"].as_str().unwrap_or_else(|| panic!("no token for {client}: {body}")).to_owned()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn status(url: &str, token: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let challenge = resp.headers().get("www-authenticate").map(|v| v.to_str().unwrap_or("").to_owned());
    (resp.status().as_u16(), challenge.unwrap_or_default())
}

async fn run_as(client: &mcp::Client, command: &str) -> (bool, Value) {
    mcp::call(client, "ssh_run", json!({ "alias": "h1", "command": command })).await
}

fn b64(v: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_from_a_real_provider_are_checked_and_name_the_principal() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let port = free_port();
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let other = "http://127.0.0.1:1/other-mcp";
    let provider = Provider::start(&format!("{resource},{other}"));
    let stranger = Provider::start(&resource);
    std::fs::write(fleet.path("ci.token"), "ci-bot-token-0123456789abcdef").unwrap();
    std::fs::write(fleet.path("viewer.token"), "viewer-token-0123456789abcdef").unwrap();
    std::fs::write(fleet.path("admin.token"), "ops-admin-token-0123456789abcdef").unwrap();
    fleet.write_config(&format!(
        "auth:\n  issuer: {}\n  audience: {resource}\n  leeway_seconds: 0\n  tokens:\n    - {{name: ci-bot, file: ../ci.token, groups: [ci], scopes: [\"ssh:run\"]}}\n    - {{name: viewer, file: ../viewer.token}}\n    - {{name: ops-admin, file: ../admin.token, scopes: [\"ssh:run\", \"ssh:admin\"]}}\n",
        provider.issuer()
    ));
    // Rules for callers: bob may not echo restart-*, the interns group may not run date.
    let policy = fleet.path("config/policy.yml");
    let text = std::fs::read_to_string(&policy).unwrap().replacen(
        "rules:\n",
        "rules:\n  - {id: bob-no-restart, action: deny, principals: [bob], commands: ['echo restart-*']}\n  - {id: interns-no-date, action: deny, groups: [interns], commands: [date]}\n",
        1,
    );
    std::fs::write(&policy, text).unwrap();
    let _server = http_server_at(&fleet, port, LEGACY, &[], None);

    // Metadata, and the challenge that points at it.
    let meta: Value = reqwest::get(format!("http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["resource"], resource.as_str());
    assert_eq!(meta["authorization_servers"][0], provider.issuer().as_str());
    let metadata_url =
        format!("resource_metadata=\"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp\"");
    let (code, challenge) = status(&resource, None).await;
    assert!(code == 401 && challenge.starts_with("Bearer ") && challenge.contains(&metadata_url), "{code} {challenge}");

    // Good tokens: the provider's, a named static token, the --token-file token.
    let alice = provider.token("alice", "ssh:run", &resource).await;
    let bob = provider.token("bob", "ssh:run", &resource).await;
    for good in [alice.as_str(), bob.as_str(), "ci-bot-token-0123456789abcdef", LEGACY] {
        // Past the guard, a ping without a session is the MCP layer's 400, not a 401/403.
        let (code, challenge) = status(&resource, Some(good)).await;
        assert!(code != 401 && code != 403 && challenge.is_empty(), "{code} {challenge}");
    }
    let (ci_bot, _) = mcp::http(&resource, "ci-bot-token-0123456789abcdef").await.unwrap();
    let (err, r) = mcp::call(&ci_bot, "ssh_run", json!({ "alias": "h1", "command": "echo as-ci-bot" })).await;
    assert!(!err, "{r}");
    mcp::close(ci_bot).await;

    // Bad tokens, each refused with 401 and an invalid_token challenge.
    let for_other = provider.token("alice", "ssh:run", other).await;
    let foreign = stranger.token("alice", "ssh:run", &resource).await;
    let parts: Vec<&str> = alice.split('.').collect();
    let header: Value = {
        use base64::Engine;
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap()
    };
    let mut unknown_kid = header.clone();
    unknown_kid["kid"] = json!("made-up");
    let mut none = header.clone();
    none["alg"] = json!("none");
    let flipped = if parts[2].ends_with('A') { "B" } else { "A" };
    let tampered = format!("{}.{}.{}{flipped}", parts[0], parts[1], &parts[2][..parts[2].len() - 1]);
    let bad = [
        ("wrong audience", for_other),
        ("wrong issuer", foreign),
        ("unknown kid", format!("{}.{}.{}", b64(&unknown_kid), parts[1], parts[2])),
        ("alg none", format!("{}.{}.", b64(&none), parts[1])),
        ("tampered signature", tampered),
        ("not a token", "x".repeat(40)),
    ];
    for (what, token) in &bad {
        let (code, challenge) = status(&resource, Some(token)).await;
        assert!(code == 401 && challenge.contains("error=\"invalid_token\""), "{what}: {code} {challenge}");
    }
    // A token without ssh:run, from the provider or static: 403 naming the scope.
    let carol = provider.token("carol", "ssh:approve", &resource).await;
    for token in [carol.as_str(), "viewer-token-0123456789abcdef"] {
        let (code, challenge) = status(&resource, Some(token)).await;
        assert!(
            code == 403 && challenge.contains("error=\"insufficient_scope\", scope=\"ssh:run\""),
            "{code} {challenge}"
        );
    }

    // The principal is who the token says; one principal does not see another's task.
    let (as_alice, _) = mcp::http(&resource, &alice).await.unwrap();
    let (as_bob, _) = mcp::http(&resource, &bob).await.unwrap();
    let (err, started) =
        mcp::call(&as_alice, "ssh_run_async", json!({ "alias": "h1", "command": "sleep 0.3; echo alice-was-here" }))
            .await;
    assert!(!err, "{started}");
    let id = started["task_id"].as_str().unwrap().to_owned();
    let (err, seen) = mcp::call(&as_bob, "ssh_get_task_status", json!({ "task_id": id })).await;
    assert!(err, "bob must not see alice's task: {seen}");
    let (err, seen) = mcp::call(&as_alice, "ssh_get_task_status", json!({ "task_id": id })).await;
    assert!(!err && seen["started_by"] == "alice", "{seen}");
    // The admin scope sees every caller's tasks.
    let (as_admin, _) = mcp::http(&resource, "ops-admin-token-0123456789abcdef").await.unwrap();
    let (err, seen) = mcp::call(&as_admin, "ssh_get_task_status", json!({ "task_id": id })).await;
    assert!(!err && seen["started_by"] == "alice", "admin: {seen}");
    mcp::close(as_admin).await;
    // Rules see the principal and its groups: the same command on the same host.
    assert!(!run_as(&as_alice, "echo restart-now").await.0);
    let (err, denied) = run_as(&as_bob, "echo restart-now").await;
    assert!(err && denied.to_string().contains("bob-no-restart"), "{denied}");
    assert!(!run_as(&as_alice, "date").await.0);
    let (err, denied) = run_as(&as_bob, "date").await;
    assert!(err && denied.to_string().contains("interns-no-date"), "{denied}");
    // /rpc judges for the same principal (its in-process client carries the caller).
    for (token, want_denied) in [(&bob, true), (&alice, false)] {
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "ssh_run", "params": { "alias": "h1", "command": "echo restart-via-rpc" } });
        let answer: Value = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/rpc"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let denied = answer["error"].to_string().contains("bob-no-restart");
        assert_eq!(denied, want_denied, "/rpc: {answer}");
    }
    let (_, plan) =
        mcp::call(&as_alice, "ssh_plan", json!({ "target": "h1", "command": "date", "as": "bob:interns" })).await;
    assert_eq!(plan["groups"][0]["decision"], "deny", "{plan}");
    let out = Command::new(mcp::BIN)
        .args(["plan", "--json", "--as", "bob:interns", "--config-dir"])
        .arg(fleet.config_dir())
        .args(["h1", "--", "date"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("interns-no-date"), "plan --as: {said}");
    let out = Command::new(mcp::BIN)
        .args(["plan", "--json", "--config-dir"])
        .arg(fleet.config_dir())
        .args(["h1", "--", "date"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("interns-no-date"), "local is no intern");
    mcp::close(as_alice).await;
    mcp::close(as_bob).await;
    let audit = std::fs::read_to_string(fleet.path("audit.jsonl")).unwrap();
    let start = audit.lines().find(|l| l.contains("\"task_start\"") && l.contains("alice-was-here")).unwrap();
    assert!(start.contains("principal=alice") && start.contains("\"principal\":\"alice\""), "{start}");
    let ci = audit.lines().find(|l| l.contains("\"task_start\"") && l.contains("as-ci-bot")).unwrap();
    assert!(ci.contains("principal=ci-bot"), "{ci}");
    assert!(!audit.contains(&alice), "a token must never reach the audit");

    // Expired: a token checked after its `exp` (leeway 0) is refused.
    let brief = provider.token("brief", "ssh:run", &resource).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (code, _) = status(&resource, Some(&brief)).await;
    assert_eq!(code, 401, "expired token");
}

#[test]
fn check_refuses_unsound_auth_settings_with_their_place() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    std::fs::write(fleet.path("short.token"), "short").unwrap();
    fleet.write_config(
        "auth:\n  issuer: http://idp.example.com\n  audience: https://sshwarden.example.com/mcp\n  algorithms: [none, HS256, RS256]\n  tokens:\n    - {name: a, file: ../short.token}\n    - {name: 'x y', file: ../short.token}\n",
    );
    let out = Command::new(mcp::BIN).arg("check").arg("--config-dir").arg(fleet.config_dir()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    for want in [
        "auth.issuer: \"http://idp.example.com\" must be an https:// URL",
        "auth.algorithms: \"none\" is refused",
        "auth.algorithms: \"HS256\" is refused",
        "auth.tokens[0].file: the token in",
        "auth.tokens[1].name",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    // Each error at its own line: issuer is line 2 of the block, the second token its item.
    let auth_line =
        std::fs::read_to_string(fleet.path("config/policy.yml")).unwrap().lines().position(|l| l == "auth:").unwrap()
            + 1;
    assert!(err.contains(&format!("policy.yml:{}:3: auth.issuer", auth_line + 1)), "{err}");
    assert!(err.contains(&format!("policy.yml:{}:", auth_line + 6)) && err.contains("auth.tokens[1].name"), "{err}");
    fleet.write_config("overrides:\n  aliases:\n    h1: {quotas: {default: {commands_per_minute: 5}}}\n");
    let policy = fleet.path("config/policy.yml");
    let zero = "limits:\n  quotas: {groups: {interns: {commands_per_minute: 0}}}\n";
    std::fs::write(&policy, std::fs::read_to_string(&policy).unwrap().replacen("limits:\n", zero, 1)).unwrap();
    let out = Command::new(mcp::BIN).arg("check").arg("--config-dir").arg(fleet.config_dir()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("limits.quotas.groups.interns.commands_per_minute: must be at least 1"), "{err}");
    assert!(err.contains("overrides.aliases.h1.quotas: quotas belong to callers"), "{err}");
    fleet.write_config("");
    let text = std::fs::read_to_string(&policy).unwrap().replacen(
        "rules:\n",
        "rules:\n  - {action: allow, approvals: 2, commands: [id]}\n  - {action: ask, approvals: 9, commands: [w]}\n",
        1,
    );
    std::fs::write(&policy, text).unwrap();
    let out = Command::new(mcp::BIN).arg("check").arg("--config-dir").arg(fleet.config_dir()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rules[0].approvals: approvals applies to `action: ask` rules only"), "{err}");
    assert!(err.contains("rules[1].approvals: 9: between 1 and 5"), "{err}");
    fleet.write_config("auth:\n  tokens: []\n  claim: {principal: email}\n");
    let out = Command::new(mcp::BIN).arg("check").arg("--config-dir").arg(fleet.config_dir()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("auth.claim: unknown key `claim` in auth"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_refuse_with_retry_after_and_show_what_is_left() {
    let fleet = Fleet::start(FleetOptions { hosts: 2, ..Default::default() });
    let port = free_port();
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let provider = Provider::start(&resource);
    std::fs::write(fleet.path("ci.token"), "ci-bot-token-0123456789abcdef").unwrap();
    fleet.write_config(&format!(
        "auth:\n  issuer: {}\n  audience: {resource}\n  tokens:\n    - {{name: ci-bot, file: ../ci.token, scopes: [\"ssh:run\"]}}\n",
        provider.issuer()
    ));
    let policy = fleet.path("config/policy.yml");
    let quotas = "limits:\n  quotas:\n    principals: {alice: {commands_per_minute: 2}}\n    groups: {interns: {concurrent_tasks: 1}}\n    default: {fanout_hosts_per_hour: 3}\n";
    std::fs::write(&policy, std::fs::read_to_string(&policy).unwrap().replacen("limits:\n", quotas, 1)).unwrap();
    let _server = http_server_at(&fleet, port, LEGACY, &[], None);
    let alice = provider.token("alice", "ssh:run", &resource).await;
    let bob = provider.token("bob", "ssh:run", &resource).await;
    let (as_alice, _) = mcp::http(&resource, &alice).await.unwrap();
    let (as_bob, _) = mcp::http(&resource, &bob).await.unwrap();
    let (as_ci, _) = mcp::http(&resource, "ci-bot-token-0123456789abcdef").await.unwrap();

    // alice: two commands a minute.
    assert!(!run_as(&as_alice, "echo one").await.0);
    assert!(!run_as(&as_alice, "echo two").await.0);
    let (err, refused) = run_as(&as_alice, "echo three").await;
    let retry = refused["retry_after_seconds"].as_u64().unwrap_or(0);
    assert!(err && refused["kind"] == "rate_limited" && (1..=60).contains(&retry), "{refused}");
    let (_, described) = mcp::call(&as_alice, "ssh_describe_host", json!({ "alias": "h1" })).await;
    assert_eq!(described["quota"]["commands_this_minute_left"], 0, "{described}");

    // bob (group interns): one task at a time.
    let (err, started) = mcp::call(&as_bob, "ssh_run_async", json!({ "alias": "h1", "command": "sleep 2" })).await;
    assert!(!err, "{started}");
    let (err, refused) = run_as(&as_bob, "echo while-busy").await;
    assert!(err && refused["kind"] == "rate_limited", "{refused}");

    // ci-bot (default): three fan-out hosts an hour; the second two-host fan-out is refused whole.
    let (err, r) = mcp::call(&as_ci, "ssh_run_on_tag", json!({ "target": "web", "command": "echo fan" })).await;
    assert!(!err, "{r}");
    let (err, refused) = mcp::call(&as_ci, "ssh_run_on_tag", json!({ "target": "web", "command": "echo fan" })).await;
    assert!(
        err && refused["kind"] == "rate_limited" && refused["retry_after_seconds"].as_u64() > Some(60),
        "{refused}"
    );
    let audit = std::fs::read_to_string(fleet.path("audit.jsonl")).unwrap();
    assert_eq!(audit.lines().filter(|l| l.contains("\"rate_limited\"")).count(), 3, "every refusal is audited");
    for c in [as_alice, as_bob, as_ci] {
        mcp::close(c).await;
    }
}

/// Four eyes: with `auth:`, a person with the approve scope decides with their own token,
/// never a request they asked for themselves; the MCP token and a token without the scope
/// cannot decide; the audit names both sides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_eyes_an_approver_is_never_the_requester() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let port = free_port();
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let provider = Provider::start(&resource);
    fleet.write_config(&format!("auth:\n  issuer: {}\n  audience: {resource}\n", provider.issuer()));
    let policy = fleet.path("config/policy.yml");
    let text = std::fs::read_to_string(&policy)
        .unwrap()
        .replacen(
            "rules:\n",
            "rules:\n  - {id: needs-human, action: ask, approvals: 2, commands: ['echo approve-me*']}\n",
            1,
        )
        .replace("  task_progress_interval: 1\n", "  task_progress_interval: 1\n  approval_timeout_seconds: 30\n");
    std::fs::write(&policy, text).unwrap();
    std::fs::write(fleet.path("approver"), "approver-token-0123456789abcdef").unwrap();
    let approver_file = fleet.path("approver");
    let _server =
        http_server_at(&fleet, port, LEGACY, &["--approver-token-file", approver_file.to_str().unwrap()], None);
    let alice = provider.token("alice", "ssh:run ssh:approve", &resource).await;
    let bob = provider.token("bob", "ssh:run", &resource).await;
    let carol = provider.token("carol", "ssh:approve", &resource).await;
    let (as_alice, _) = mcp::http(&resource, &alice).await.unwrap();
    let waiting = tokio::spawn(async move {
        let r = run_as(&as_alice, "echo approve-me please").await;
        mcp::close(as_alice).await;
        r
    });
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}/approvals");
    let mut id = String::new();
    for _ in 0..100 {
        let listed: Value = http.get(&base).bearer_auth(&carol).send().await.unwrap().json().await.unwrap();
        if let Some(found) = listed["approvals"][0]["id"].as_str() {
            id = found.to_owned();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!id.is_empty(), "the request never appeared to an approver");
    let decide = |token: String, verb: &'static str| {
        let (http, url) = (http.clone(), format!("{base}/{id}/{verb}"));
        async move { http.post(url).bearer_auth(token).send().await.unwrap() }
    };
    let own = decide(alice.clone(), "approve").await;
    assert_eq!(own.status().as_u16(), 403, "alice approved her own request");
    assert!(own.text().await.unwrap().contains("its approver must be someone else"));
    let unscoped = decide(bob.clone(), "approve").await;
    assert_eq!(unscoped.status().as_u16(), 403, "bob has no ssh:approve");
    assert_eq!(decide(LEGACY.to_owned(), "approve").await.status().as_u16(), 401, "the MCP token decides nothing");
    // `approvals: 2`: carol counts once, then the approver token makes two.
    let first = decide(carol.clone(), "approve").await;
    assert_eq!(first.status().as_u16(), 200);
    assert!(first.text().await.unwrap().contains("counted"));
    assert_eq!(decide(carol.clone(), "approve").await.status().as_u16(), 409, "carol cannot count twice");
    assert!(!waiting.is_finished(), "one approver of two ran nothing");
    assert_eq!(decide("approver-token-0123456789abcdef".to_owned(), "approve").await.status().as_u16(), 200);
    let (err, done) = waiting.await.unwrap();
    assert!(!err, "{done}");
    let audit = std::fs::read_to_string(fleet.path("audit.jsonl")).unwrap();
    let decided = audit.lines().find(|l| l.contains("\"approval_decided\"")).unwrap();
    assert!(decided.contains("principal carol + approver token") && decided.contains("principal=alice"), "{decided}");
    assert!(audit.contains("\"approval_partial\""), "the first of two approvals is audited");
    assert!(audit.contains("\"approval_refused\""), "the refused self-approval is audited");
}

/// The official TypeScript SDK's own OAuth flow (client credentials): challenge → metadata →
/// discovery → token for this resource → a tool call that runs as the client's principal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_does_the_oauth_flow_itself() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let port = free_port();
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let provider = Provider::start(&resource);
    fleet.write_config(&format!("auth:\n  issuer: {}\n  audience: {resource}\n", provider.issuer()));
    let _server = http_server_at(&fleet, port, LEGACY, &[], None);
    let project = crate::ts_interop::node_project();
    let out = Command::new("node")
        .arg(project.join("oauth_client.mjs"))
        .args([&resource, &provider.issuer(), "alice", "alice-secret-0123456789", "h1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap();
    assert!(seen["ok"] == true && seen["stdout"] == "via-oauth\n" && seen["got_token"] == true, "{seen}");
    let audit = std::fs::read_to_string(fleet.path("audit.jsonl")).unwrap();
    let start = audit.lines().find(|l| l.contains("\"task_start\"") && l.contains("via-oauth")).unwrap();
    assert!(start.contains("principal=alice"), "{start}");
}
