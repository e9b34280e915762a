//! File transfers (`ssh_upload` / `ssh_download`) against real sshd (internal-sftp) through
//! the built binary: `files:` rules, normalized paths, a symlink out of the allowed tree,
//! `local_path` confined to `transfer_dir`, atomic uploads that leave the old file intact on
//! failure (max_bytes mid-stream, disk full, permission denied), 256 MiB both ways with equal
//! SHA-256 and bounded server memory, a fan-out upload, `ssh_plan upload:PATH` and the audit.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::support::mcp::{self, call};
use crate::support::sshd::{Fleet, FleetOptions, USER};

/// A directory tree under the test user's home, removed on drop.
struct Tree(PathBuf);

impl Tree {
    fn new() -> Self {
        let base = PathBuf::from(format!("/home/{USER}/xfer-{:x}", rand::random::<u64>()));
        for sub in ["logs", "releases/small", "releases/ro", "releases/full", "outside"] {
            std::fs::create_dir_all(base.join(sub)).unwrap();
        }
        assert!(Command::new("chown").args(["-R", USER]).arg(&base).status().unwrap().success());
        // Owned by root and not writable for the login user.
        assert!(Command::new("chown").args(["root"]).arg(base.join("releases/ro")).status().unwrap().success());
        Self(base)
    }
    fn p(&self, rel: &str) -> String {
        self.0.join(rel).display().to_string()
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.join("releases/full")).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn leftovers(dir: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".sshwarden-"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_download_under_files_rules() {
    let fleet = Fleet::start(FleetOptions { hosts: 3, ..Default::default() });
    let t = Tree::new();
    let transfer = fleet.path("transfer");
    std::fs::create_dir_all(&transfer).unwrap();
    let b = t.0.display();
    fleet.write_config(&format!(
        "files:\n  transfer_dir: ../transfer\n  rules:\n    - action: allow\n      tags: [web]\n      read: [\"{b}/logs/**\", \"{b}/releases/**\"]\n      write: [\"{b}/releases/**\"]\n      max_bytes: 300000000\n    - action: deny\n      read: [\"{b}/logs/secret*\"]\n    - action: allow\n      write: [\"{b}/releases/small/*\"]\n      max_bytes: 1000\n"
    ));
    let (client, rec) = mcp::stdio(&fleet.config_dir()).await;

    // Small UTF-8 round trip; bytes and SHA-256 on both sides.
    let a = t.p("releases/a.txt");
    let (err, up) =
        call(&client, "ssh_upload", json!({ "alias": "h1", "remote_path": a, "content": "hello\n", "mode": "0640" }))
            .await;
    assert!(!err && up["bytes"] == 6 && up["sha256"] == sha(b"hello\n"), "{up}");
    assert_eq!(std::fs::read_to_string(&a).unwrap(), "hello\n");
    assert_eq!(std::fs::metadata(&a).unwrap().permissions().mode() & 0o7777, 0o640);
    let (err, down) = call(&client, "ssh_download", json!({ "alias": "h1", "remote_path": a })).await;
    assert!(
        !err && down["content"] == "hello\n" && down["encoding"] == "utf-8" && down["sha256"] == up["sha256"],
        "{down}"
    );

    // `sshwarden call` reaches both tools as it does every tool; a denial exits 3.
    let cli = |args: &[&str]| {
        let out =
            Command::new(mcp::BIN).arg("call").arg("--config-dir").arg(fleet.config_dir()).args(args).output().unwrap();
        (out.status.code(), serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or_default())
    };
    let (code, r) = cli(&["ssh_download", "alias=h1", &format!("remote_path={a}")]);
    assert!(code == Some(0) && r["content"] == "hello\n", "{code:?} {r}");
    let (code, _) = cli(&["ssh_upload", "alias=h1", "remote_path=/etc/motd", "content=x"]);
    assert_eq!(code, Some(3));

    // Binary content goes base64 both ways.
    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&binary);
    let bin = t.p("releases/bin.dat");
    let (err, up) =
        call(&client, "ssh_upload", json!({ "alias": "h2", "remote_path": bin, "content_base64": b64 })).await;
    assert!(!err && up["sha256"] == sha(&binary), "{up}");
    let (_, down) = call(&client, "ssh_download", json!({ "alias": "h2", "remote_path": bin })).await;
    assert_eq!((down["encoding"].as_str(), down["content"].as_str()), (Some("base64"), Some(b64.as_str())));

    // Outside the rules, climbing, unnormalized, denied by a deny rule.
    std::fs::write(t.p("logs/secret.key"), "k").unwrap();
    for (tool, path, kind) in [
        ("ssh_upload", t.p("logs/x"), "policy_denied"),
        ("ssh_download", "/etc/shadow".to_owned(), "policy_denied"),
        ("ssh_download", t.p("logs/secret.key"), "policy_denied"),
        ("ssh_download", format!("{b}/releases/../../../etc/shadow"), "policy_denied"),
        ("ssh_download", format!("{b}//releases/a.txt"), "invalid_input"),
        ("ssh_download", "releases/a.txt".to_owned(), "invalid_input"),
    ] {
        let args = match tool {
            "ssh_upload" => json!({ "alias": "h1", "remote_path": path, "content": "x" }),
            _ => json!({ "alias": "h1", "remote_path": path }),
        };
        let (err, r) = call(&client, tool, args).await;
        assert!(err && r["kind"] == kind, "{tool} {path}: {r}");
    }

    // A symlink inside the allowed tree pointing out of it: resolved on the host, refused.
    std::fs::write(t.p("outside/secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(t.p("outside/secret.txt"), t.p("releases/escape")).unwrap();
    std::os::unix::fs::symlink(t.p("outside"), t.p("releases/linkdir")).unwrap();
    let (err, r) = call(&client, "ssh_download", json!({ "alias": "h1", "remote_path": t.p("releases/escape") })).await;
    assert!(
        err && r["kind"] == "policy_denied" && r["message"].as_str().unwrap().contains("resolves on the host to"),
        "{r}"
    );
    let (err, r) =
        call(&client, "ssh_upload", json!({ "alias": "h1", "remote_path": t.p("releases/linkdir/x"), "content": "x" }))
            .await;
    assert!(err && r["message"].as_str().unwrap().contains("resolves on the host to"), "{r}");
    assert!(!Path::new(&t.p("outside/x")).exists());

    // local_path only under transfer_dir, symlinks resolved first.
    std::os::unix::fs::symlink("/etc/passwd", transfer.join("sneaky")).unwrap();
    for local in [
        "/etc/passwd".to_owned(),
        transfer.join("sneaky").display().to_string(),
        transfer.join("../config/policy.yml").display().to_string(),
    ] {
        let (err, r) = call(
            &client,
            "ssh_upload",
            json!({ "alias": "h1", "remote_path": t.p("releases/p"), "local_path": local }),
        )
        .await;
        // A path the policy's transfer_dir does not cover is a policy denial like any other.
        assert!(err && r["message"].as_str().unwrap().contains("outside files.transfer_dir"), "{local}: {r}");
        assert_eq!(r["kind"], "policy_denied", "{local}: {r}");
    }
    let audit = fleet.audit_once_it_has("outside files.transfer_dir").await;
    assert!(
        audit.lines().any(|l| l.contains("\"event\":\"decision\"")
            && l.contains("\"allowed\":false")
            && l.contains("outside files.transfer_dir")),
        "a local path outside transfer_dir is an audited denial"
    );

    // Failures mid-upload leave the old file and no temporary file: the rule's max_bytes
    // reached while streaming, permission denied, disk full.
    let small = t.p("releases/small/current");
    std::fs::write(&small, "old").unwrap();
    std::fs::write(transfer.join("big.bin"), vec![7u8; 5000]).unwrap();
    let (err, r) = call(
        &client,
        "ssh_upload",
        json!({ "alias": "h1", "remote_path": small, "local_path": transfer.join("big.bin") }),
    )
    .await;
    assert!(err && r["message"].as_str().unwrap().contains("max_bytes"), "{r}");
    assert_eq!((std::fs::read_to_string(&small).unwrap(), leftovers(&t.p("releases/small"))), ("old".into(), vec![]));
    let ro = t.p("releases/ro/current");
    std::fs::write(&ro, "old").unwrap();
    let (err, r) = call(&client, "ssh_upload", json!({ "alias": "h1", "remote_path": ro, "content": "new" })).await;
    assert!(
        err && r["kind"] == "transfer_failed" && r["message"].as_str().unwrap().contains("Permission denied"),
        "{r}"
    );
    assert_eq!((std::fs::read_to_string(&ro).unwrap(), leftovers(&t.p("releases/ro"))), ("old".into(), vec![]));
    let full = t.p("releases/full");
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=256k", "tmpfs", &full]).status().unwrap();
    assert!(mounted.success(), "the disk-full case needs `mount -t tmpfs` (root)");
    assert!(Command::new("chown").args([USER, &full]).status().unwrap().success());
    std::fs::write(format!("{full}/current"), "old").unwrap();
    std::fs::write(transfer.join("1m.bin"), vec![1u8; 1 << 20]).unwrap();
    let (err, r) = call(
        &client,
        "ssh_upload",
        json!({ "alias": "h1", "remote_path": format!("{full}/current"), "local_path": transfer.join("1m.bin") }),
    )
    .await;
    let msg = r["message"].as_str().unwrap();
    assert!(err && msg.contains("SFTP write") && msg.contains("disk may be full"), "{r}");
    assert_eq!((std::fs::read_to_string(format!("{full}/current")).unwrap(), leftovers(&full)), ("old".into(), vec![]));

    // 256 MiB each way through local_path: equal SHA-256, server memory bounded.
    let big: Vec<u8> = (0..256u32 << 20).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let want = sha(&big);
    std::fs::write(transfer.join("256m.bin"), &big).unwrap();
    drop(big);
    let remote = t.p("releases/256m.bin");
    let (err, up) = call(
        &client,
        "ssh_upload",
        json!({ "alias": "h3", "remote_path": remote, "local_path": transfer.join("256m.bin") }),
    )
    .await;
    assert!(!err && up["sha256"] == want && up["bytes"] == 256u64 << 20, "{up}");
    let (err, down) = call(
        &client,
        "ssh_download",
        json!({ "alias": "h3", "remote_path": remote, "local_path": transfer.join("back.bin") }),
    )
    .await;
    assert!(!err && down["sha256"] == want, "{down}");
    assert_eq!(sha(&std::fs::read(transfer.join("back.bin")).unwrap()), want);
    assert!(rec.progress.lock().unwrap().iter().any(|p| p.total == Some((256u64 << 20) as f64)));
    let (_, ping) = call(&client, "ssh_ping", json!({})).await;
    let rss = ping["memory"]["rss_bytes"].as_u64().unwrap();
    assert!(rss < 96 << 20, "server RSS {} MiB after 512 MiB of transfers", rss >> 20);

    // Fan-out upload to the three hosts; plan without connecting; audit records.
    let (err, fan) = call(
        &client,
        "ssh_upload",
        json!({ "target": "web", "remote_path": t.p("releases/fan.txt"), "content": "same\n", "concurrency": 2 }),
    )
    .await;
    assert!(!err && fan["summary"]["ok"] == 3 && fan["groups"][0]["hosts"] == "h[1-3]", "{fan}");
    let (_, plan) =
        call(&client, "ssh_plan", json!({ "target": "web", "command": format!("upload:{}", t.p("logs/x")) })).await;
    assert!(plan["summary"]["denied"] == 3 && plan["groups"][0]["decision"] == "deny", "{plan}");
    let (_, plan) =
        call(&client, "ssh_plan", json!({ "target": "h1", "command": format!("download:{}", t.p("logs/app.log")) }))
            .await;
    assert!(plan["summary"]["allowed"] == 1, "{plan}");
    let audit = std::fs::read_to_string(fleet.path("audit.jsonl")).unwrap();
    let ends: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["event"] == "transfer_end")
        .collect();
    assert!(
        ends.iter().any(|e| e["sha256"] == want && e["transfer"] == "write" && e["bytes"] == 256u64 << 20),
        "{ends:?}"
    );
    assert!(audit.contains("\"event\":\"transfer_start\""));
    mcp::close(client).await;
}

/// A link from an `allow` tree into an `ask` tree: the resolved path gets the full decision,
/// so the upload needs a human (and none is there), instead of running with no one asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_into_an_ask_tree_is_not_an_allow() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let t = Tree::new();
    let b = t.0.display();
    fleet.write_config(&format!(
        "files:\n  rules:\n    - action: allow\n      write: [\"{b}/releases/**\"]\n    - action: ask\n      write: [\"{b}/outside/**\"]\n"
    ));
    std::os::unix::fs::symlink(t.p("outside"), t.p("releases/linkdir")).unwrap();
    let (client, _rec) = mcp::stdio(&fleet.config_dir()).await;
    let (err, r) =
        call(&client, "ssh_upload", json!({ "alias": "h1", "remote_path": t.p("releases/linkdir/x"), "content": "x" }))
            .await;
    let message = r["message"].as_str().unwrap_or_default();
    assert!(err && message.contains("needs a human's approval"), "{r}");
    assert!(!Path::new(&t.p("outside/x")).exists(), "nothing was written into the ask tree");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_found_while_transferring_are_denials() {
    let fleet = Fleet::start(FleetOptions { hosts: 2, ..Default::default() });
    let t = Tree::new();
    let b = t.0.display();
    fleet.write_config(&format!(
        "files:\n  rules:\n    - action: allow\n      read: [\"{b}/releases/**\"]\n      write: [\"{b}/releases/**\"]\n"
    ));
    std::fs::write(t.p("outside/secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(t.p("outside/secret.txt"), t.p("releases/escape")).unwrap();
    std::os::unix::fs::symlink(t.p("outside"), t.p("releases/linkdir")).unwrap();
    let cli = |args: &[&str]| {
        let out =
            Command::new(mcp::BIN).arg("call").arg("--config-dir").arg(fleet.config_dir()).args(args).output().unwrap();
        (out.status.code(), serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or_default())
    };
    // A `..` in the path and a path the host resolves outside the rules: denied, exit 3.
    for path in [format!("{b}/releases/../outside/secret.txt"), t.p("releases/escape")] {
        let (code, r) = cli(&["ssh_download", "alias=h1", &format!("remote_path={path}")]);
        assert_eq!((code, r["kind"].as_str()), (Some(3), Some("policy_denied")), "{path}: {r}");
    }
    let (code, r) =
        cli(&["ssh_upload", "alias=h1", &format!("remote_path={}", t.p("releases/linkdir/x")), "content=x"]);
    assert_eq!((code, r["kind"].as_str()), (Some(3), Some("policy_denied")), "{r}");
    // A fan-out reports those hosts as denied, not failed.
    let (client, _) = mcp::stdio(&fleet.config_dir()).await;
    let (_, r) = call(
        &client,
        "ssh_upload",
        json!({ "target": "web", "remote_path": t.p("releases/linkdir/y"), "content": "y" }),
    )
    .await;
    let statuses: Vec<&str> = r["results"].as_array().unwrap().iter().filter_map(|h| h["status"].as_str()).collect();
    assert_eq!(statuses, ["denied", "denied"], "{r}");
    assert!(!Path::new(&t.p("outside/x")).exists() && !Path::new(&t.p("outside/y")).exists());
    mcp::close(client).await;
}
