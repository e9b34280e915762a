//! Secret runbook parameter values, kept only while their run lasts, and the one function
//! that masks them in audit records and in text returned to clients. Configured secret
//! values (credentials' passwords and passphrases, become passwords) are masked the same
//! way in every audit record and returned text; command output is masked as it streams
//! (`stream_mask.rs`).
//!
//! Owns: the registry (by run id) and masking. A command that held a secret is audited as
//! its SHA-256 (of what really ran) plus the masked text, never in clear. Never stores a
//! value past `forget_secrets`.

use dashmap::DashMap;
use serde_json::{Map, Value, json};

use crate::service::{Service, command_sha256};

const MASK: &str = "[secret]";

#[derive(Default)]
pub struct Secrets(DashMap<String, Vec<String>>);

impl Secrets {
    /// `text` with every registered value masked, or `None` when it holds none.
    fn masked(&self, text: &str) -> Option<String> {
        let mut out: Option<String> = None;
        for entry in self.0.iter() {
            for v in entry.value() {
                let current = out.as_deref().unwrap_or(text);
                if current.contains(v.as_str()) {
                    out = Some(current.replace(v.as_str(), MASK));
                }
            }
        }
        out
    }

    /// Masks string fields of an audit record; `command` becomes `command_sha256` plus
    /// `command_masked`.
    pub(crate) fn mask_record(&self, map: &mut Map<String, Value>) {
        if self.0.is_empty() {
            return;
        }
        if let Some(Value::String(cmd)) = map.get("command").cloned()
            && let Some(masked) = self.masked(&cmd)
        {
            map.remove("command");
            map.insert("command_sha256".into(), json!(command_sha256(&cmd)));
            map.insert("command_masked".into(), json!(masked));
        }
        for v in map.values_mut() {
            if let Value::String(s) = v
                && let Some(masked) = self.masked(s)
            {
                *v = Value::String(masked);
            }
        }
    }
}

impl Service {
    /// Registers secret values for the lifetime of a run (`forget_secrets` ends it).
    pub fn register_secrets(&self, run_id: &str, values: Vec<String>) {
        let values: Vec<String> = values.into_iter().filter(|v| !v.is_empty()).collect();
        if !values.is_empty() {
            self.secrets.0.insert(run_id.to_owned(), values);
        }
    }

    /// Masks registered secret values in text returned to clients (run reports), and every
    /// configured secret value.
    pub fn mask_text(&self, text: &mut String) {
        if let Some(masked) = self.secrets.masked(text) {
            *text = masked;
        }
        mask_values(text, &self.config().secret_values());
    }

    /// Masks configured secret values in every string of an audit record, nested ones too.
    pub(crate) fn mask_config_secrets(&self, map: &mut Map<String, Value>) {
        let values = self.config().secret_values();
        if values.is_empty() {
            return;
        }
        // As for runbook secrets: a command that held one is kept as the SHA-256 of what
        // really ran plus the masked text.
        if let Some(Value::String(cmd)) = map.get("command").cloned()
            && values.iter().any(|v| !v.is_empty() && cmd.contains(v.as_str()))
        {
            let mut masked = cmd.clone();
            mask_values(&mut masked, &values);
            map.remove("command");
            map.insert("command_sha256".into(), json!(command_sha256(&cmd)));
            map.insert("command_masked".into(), json!(masked));
        }
        for v in map.values_mut() {
            mask_json(v, &values);
        }
    }

    pub fn forget_secrets(&self, run_id: &str) {
        self.secrets.0.remove(run_id);
    }
}

/// `text` with each of `values` (longest first) replaced by the mask.
fn mask_values(text: &mut String, values: &[String]) {
    for v in values.iter().filter(|v| !v.is_empty()) {
        if text.contains(v.as_str()) {
            *text = text.replace(v.as_str(), MASK);
        }
    }
}

fn mask_json(value: &mut Value, values: &[String]) {
    match value {
        Value::String(s) => mask_values(s, values),
        Value::Array(items) => items.iter_mut().for_each(|v| mask_json(v, values)),
        Value::Object(map) => map.values_mut().for_each(|v| mask_json(v, values)),
        _ => {}
    }
}
