//! The audit log gates what it records: a gating record that cannot be written refuses its
//! action (`runbook_start`: nothing runs; `approval_decided`: nothing is approved), and a
//! log whose last record cannot be read is refused, never restarted at seq 1.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use sshwarden::audit::{Audit, AuditError, verify};
use sshwarden::service::approvals::DecideError;
use sshwarden::service::runner::exec;
use tokio_util::sync::CancellationToken;

use crate::support::sshd::{Fleet, FleetOptions};
use crate::support::svc::service;

fn note(audit: &Audit, n: u64) -> Result<(), AuditError> {
    let Value::Object(m) = json!({ "n": n }) else { unreachable!() };
    audit.record("note", m, false)
}

#[test]
fn an_unreadable_last_record_is_refused_not_restarted_at_seq_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let audit = Audit::open(&path, false, None).unwrap();
    note(&audit, 1).unwrap();
    note(&audit, 2).unwrap();
    let good = std::fs::read(&path).unwrap();
    let at = good.len();
    let long = format!("{{\"seq\":3,\"hash\":\"h\",\"pad\":\"{}\"}}\n", "x".repeat(70 * 1024));
    let long_start = good.len() + long.len() - 64 * 1024;
    let mut cut = b"{\"seq\":3,\"note\":\"caf".to_vec();
    cut.push(0xc3); // the first byte of a two-byte character, cut by a crash
    let cases: [(&str, Vec<u8>, String); 4] = [
        ("too long", long.into_bytes(), format!("starts before byte offset {long_start}: longer than the 65536-byte")),
        ("cut UTF-8", cut, format!("at byte offset {at} is not valid UTF-8")),
        ("garbage", b"\x00\x01 not json\n".to_vec(), format!("at byte offset {at} is not a JSON record")),
        ("no chain fields", b"{\"event\":\"x\"}\n".to_vec(), format!("at byte offset {at} has no seq or hash")),
    ];
    for (what, tail, expected) in cases {
        let bytes = [good.clone(), tail].concat();
        std::fs::write(&path, &bytes).unwrap();
        let reopened = Audit::open(&path, false, None).unwrap();
        let err = note(&reopened, 3).expect_err(what).to_string();
        assert!(err.contains(&path.display().to_string()), "{what}: names the file: {err}");
        assert!(err.contains(&expected) && err.contains("refusing to restart the chain"), "{what}: {err}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{what}: nothing was appended");
    }
    // A whole last record (a trailing blank line too) continues the chain.
    std::fs::write(&path, [good, b"\n".to_vec()].concat()).unwrap();
    note(&audit, 3).unwrap();
    let text = std::fs::read_to_string(&path).unwrap().replace("\n\n", "\n");
    std::fs::write(&path, text).unwrap();
    assert_eq!(verify(&path), Ok(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runbook_or_an_approval_whose_record_cannot_be_written_is_refused() {
    let fleet = Fleet::start(FleetOptions { hosts: 1, ..Default::default() });
    let marker = format!("/tmp/sshwarden-gates-{}", std::process::id());
    let _ = std::fs::remove_file(&marker);
    let runbooks = fleet.path("runbooks");
    std::fs::create_dir_all(&runbooks).unwrap();
    let book = format!("steps:\n  - id: touch\n    target: h1\n    command: touch {marker}\n");
    std::fs::write(runbooks.join("touch.yml"), book).unwrap();
    let policy_path = fleet.path("config/policy.yml");
    let ask = "rules:\n  - id: needs-human\n    action: ask\n    commands: [\"echo approve-me*\"]\n";
    let policy = std::fs::read_to_string(&policy_path).unwrap().replacen("rules:\n", ask, 1);
    std::fs::write(&policy_path, policy).unwrap();
    let svc = service(&fleet);
    let rb = svc.config().runbooks["touch"].clone();
    let (plan, values) =
        exec::start(&svc, &rb, &BTreeMap::new(), &sshwarden::policy::Principal::local(), None).await.unwrap();
    let request = svc.approval_needed(&["h1".to_owned()], "echo approve-me", "test").unwrap();
    svc.open_approval(&request);

    std::fs::remove_file(fleet.path("audit.jsonl")).unwrap();
    let mut events = Vec::new();
    let refused = exec::execute(&svc, &rb, &plan, &values, "test", &CancellationToken::new(), |e, _| {
        events.push(e.clone());
    })
    .await;
    let err = refused.expect_err("a run without its runbook_start record").to_string();
    assert!(err.contains("audit.jsonl"), "{err}");
    assert!(events.is_empty(), "no step started: {events:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!Path::new(&marker).exists(), "a step ran without its runbook_start record");

    let e = svc.decide_approval(&request.id, true, "test").expect_err("an approval nobody can audit");
    assert!(matches!(e, DecideError::NotRecorded(_)), "{e}");
    // Still pending, so a denial lands (a denial stands even unrecorded) and the ticket is refused.
    svc.decide_approval(&request.id, false, "test").unwrap();
    assert!(svc.approval_verdict(&request.id).await.is_err(), "approved without its record");
}
