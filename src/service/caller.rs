//! Who a request comes from, as the fronts tell the service: the authenticated caller of an
//! HTTP request (`auth:`), and the one rule that turns a client label into a task owner.
//!
//! Owns: [`Caller`] (set by the HTTP guard after the token was verified, read by the MCP
//! layer from the request's extensions), the `principal=`/`groups=` words of a client label
//! and reading them back ([`principal_of`]), [`task_owner`], and [`TaskView`]: what a caller
//! may see and free of the task manager (its own tasks; every task with the admin scope). Never trusts a principal named by the client itself: only the guard
//! builds a `Caller`, and a label's principal is the last `principal=` word, which the MCP
//! layer appends after everything the client declared.

use std::sync::Arc;

use crate::policy::Principal;
use crate::tasks::{self, Task, TaskError, TaskManager};

/// The verified caller of one HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The mapped claim's raw value (e.g. `sub`), the static token's name, or `token` for
    /// the `--token-file` token.
    pub principal: String,
    pub groups: Vec<String>,
    pub scopes: Vec<String>,
    /// SHA-256 of the access token's `jti`, when it has one (audit may carry it).
    pub jti_sha256: Option<String>,
    /// Holds the `admin` scope: sees and cancels every caller's tasks. Set by the guard.
    pub admin: bool,
}

/// `text` as one label word: every byte outside `[A-Za-z0-9._@:+/-]` percent-encoded, so
/// nothing a client or a claim says can add words (a space and `req=` or `principal=`).
pub fn label_word(text: &str) -> String {
    let mut word = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"._@:+/-".contains(&b) {
            word.push(b as char);
        } else {
            word.push_str(&format!("%{b:02X}"));
        }
    }
    word
}

fn unlabel(word: &str) -> String {
    let bytes = word.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Caller {
    /// The words the MCP layer appends to a client label, after everything the client
    /// declared: `principal=NAME` and, when the caller has groups, `groups=A,B`.
    pub fn label_words(&self) -> String {
        let mut words = format!("principal={}", label_word(&self.principal));
        if !self.groups.is_empty() {
            let groups: Vec<String> = self.groups.iter().map(|g| label_word(g)).collect();
            words.push_str(&format!(" groups={}", groups.join(",")));
        }
        if self.admin {
            words.push_str(" role=admin");
        }
        words
    }
}

/// The `_meta` key under which `/rpc` hands its verified caller to its in-process MCP
/// client. Honoured only with this process's [`in_process_key`], which never leaves it: a
/// client that sends this key itself is ignored.
pub const CALLER_META: &str = "sshwarden/caller";

/// A random key made once per process (128 bits), proving a `_meta` caller came from
/// inside this process.
pub fn in_process_key() -> &'static str {
    static KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    KEY.get_or_init(|| format!("{:032x}", rand::random::<u128>()))
}

impl Caller {
    /// The caller as `/rpc` passes it in `_meta` to its in-process client.
    pub fn to_meta(&self) -> serde_json::Value {
        serde_json::json!({ "key": in_process_key(), "principal": self.principal, "groups": self.groups, "scopes": self.scopes, "admin": self.admin })
    }

    /// A caller from `_meta`, only when it carries this process's key.
    pub fn from_meta(v: &serde_json::Value) -> Option<Self> {
        use subtle::ConstantTimeEq;
        let key = v["key"].as_str()?;
        if !bool::from(key.as_bytes().ct_eq(in_process_key().as_bytes())) {
            return None;
        }
        let strings = |k: &str| -> Vec<String> {
            v[k].as_array()
                .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
                .unwrap_or_default()
        };
        Some(Self {
            principal: v["principal"].as_str()?.to_owned(),
            groups: strings("groups"),
            scopes: strings("scopes"),
            jti_sha256: None,
            admin: v["admin"] == true,
        })
    }
}

/// The principal a client label carries: its last `principal=` and `groups=` words after
/// the first word (the first is the client's own name, one encoded word), else `local`.
pub fn principal_of(client: Option<&str>) -> Principal {
    let words: Vec<&str> = client.unwrap_or("").split(' ').skip(1).collect();
    let last = |key: &str| words.iter().rev().find_map(|w| w.strip_prefix(key));
    match last("principal=") {
        Some(name) => Principal {
            name: unlabel(name),
            groups: last("groups=").map(|g| g.split(',').map(unlabel).collect()).unwrap_or_default(),
        },
        None => Principal::local(),
    }
}

/// Whether the label's caller holds the `admin` scope (a `role=admin` word after the first,
/// which only the server writes).
pub fn is_admin(client: &str) -> bool {
    client.split(' ').skip(1).any(|w| w == "role=admin")
}

/// Who a task belongs to. With a verified principal in the label, the principal (the last
/// `principal=` word), so a person sees their tasks from any client; otherwise the client's
/// identity without the words that change per request (`req=`) or per runbook run (`run=`),
/// so a runbook's caller sees its steps' tasks.
pub fn task_owner(client: &str) -> String {
    if let Some(p) = client.split(' ').rev().find(|w| w.starts_with("principal=")) {
        return p.to_owned();
    }
    client.split(' ').filter(|w| !w.starts_with("req=") && !w.starts_with("run=")).collect::<Vec<_>>().join(" ")
}

fn owned_by(owner: &str, client: &str) -> bool {
    owner.is_empty() || owner == task_owner(client) || is_admin(client)
}

/// What the protocol layer may do with the task manager: look, list, free. Starting work is
/// `Service::launch` / `launch_transfer` / the runbook runner only.
pub struct TaskView<'a>(pub(super) &'a TaskManager);

impl TaskView<'_> {
    pub fn get(&self, id: &str) -> Result<Arc<Task>, TaskError> {
        self.0.get(id)
    }

    /// Task `id` as `client` may see it: another client's task is unknown to it (a task id
    /// is not a capability to pass around).
    pub fn get_for(&self, id: &str, client: &str) -> Result<Arc<Task>, TaskError> {
        let task = self.0.get(id)?;
        if owned_by(&task.spec.owner, client) { Ok(task) } else { Err(TaskError::Unknown(id.to_owned())) }
    }

    pub fn list(&self) -> Vec<tasks::TaskSnapshot> {
        self.0.list()
    }

    /// The tasks `client` started (and those nobody in particular did).
    pub fn list_for(&self, client: &str) -> Vec<tasks::TaskSnapshot> {
        self.0
            .list()
            .into_iter()
            .filter(|s| self.0.get(&s.task_id).is_ok_and(|t| owned_by(&t.spec.owner, client)))
            .collect()
    }

    /// (output bytes held, tasks held)
    pub fn memory(&self) -> (i64, usize) {
        self.0.memory()
    }

    /// Frees a finished task's result.
    pub fn ack(&self, id: &str) -> Result<(), TaskError> {
        self.0.ack(id)
    }
}

#[cfg(test)]
mod tests {
    use super::{Caller, principal_of, task_owner};

    fn caller(p: &str, groups: &[&str]) -> Caller {
        let groups = groups.iter().map(|g| g.to_string()).collect();
        Caller { principal: p.into(), groups, scopes: vec![], jti_sha256: None, admin: false }
    }

    #[test]
    fn a_principal_cannot_add_words_to_the_label_and_reads_back_as_it_was() {
        assert_eq!(caller("alice", &[]).label_words(), "principal=alice");
        let odd = caller("x req=1 principal=root", &["on call", "a,b"]);
        assert_eq!(odd.label_words(), "principal=x%20req%3D1%20principal%3Droot groups=on%20call,a%2Cb");
        let back = principal_of(Some(&format!("client/1 {} req=4", odd.label_words())));
        assert_eq!((back.name.as_str(), back.groups), ("x req=1 principal=root", vec!["on call".into(), "a,b".into()]));
    }

    #[test]
    fn a_meta_caller_counts_only_with_this_process_key() {
        let alice = caller("alice", &["oncall"]);
        assert_eq!(Caller::from_meta(&alice.to_meta()), Some(alice.clone()));
        let mut forged = alice.to_meta();
        forged["key"] = serde_json::json!("0".repeat(32));
        assert_eq!(Caller::from_meta(&forged), None);
        assert_eq!(Caller::from_meta(&serde_json::json!({ "principal": "alice" })), None);
    }

    #[test]
    fn only_words_after_the_clients_own_name_count_and_none_is_local() {
        assert_eq!(principal_of(Some("principal=alice req=1")).name, "local");
        assert_eq!(principal_of(Some("sshwarden run")).name, "local");
        assert_eq!(principal_of(None).name, "local");
    }

    #[test]
    fn the_owner_is_the_last_principal_else_the_client_without_request_words() {
        assert_eq!(task_owner("claude/1 principal=alice req=7"), "principal=alice");
        // A client that declares a principal in its own name still ends with the verified one.
        assert_eq!(task_owner("x principal=alice/1 principal=bob req=7"), "principal=bob");
        assert_eq!(task_owner("claude/1 req=7 run=r1"), "claude/1");
    }
}
