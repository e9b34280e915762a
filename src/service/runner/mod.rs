//! Runbooks through the service gates: the whole runbook is planned (every step and rollback
//! step, rendered, on every host its pattern selects, judged by policy and the network
//! precheck) before anything runs; a run refuses to start if anything is denied anywhere.
//!
//! Owns: `plan` (rows, folded groups, `plan_hash`) and, in `exec.rs`, the run itself. Never
//! talks to hosts except through `Service` (prepare → durable audit → task), never speaks a
//! protocol.

pub mod exec;
pub mod launch;
pub mod report;
mod step;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::net::Resolve;
use crate::runbook::{RenderedStep, Runbook};
use crate::service::plan::{FoldedPlan, PlanRow};

/// One step (or rollback step) of a plan.
#[derive(Debug, Clone, Serialize)]
pub struct StepPlan {
    pub id: String,
    /// `step` or `rollback`.
    pub phase: &'static str,
    pub target: String,
    /// The command as judged, secret values masked.
    pub command: String,
    /// Why the target selects no host, if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
    pub rows: Vec<PlanRow>,
    #[serde(skip)]
    pub rendered: Option<RenderedStep>,
    #[serde(flatten)]
    pub folded: Option<FoldedPlan>,
}

/// The whole runbook, planned.
#[derive(Debug, Clone, Serialize)]
pub struct RunbookPlan {
    pub runbook: String,
    pub runbook_sha256: String,
    /// Parameter values as bound (defaults filled), secrets masked.
    pub params: BTreeMap<String, String>,
    pub plan_hash: String,
    /// Every step allowed on every host and every target valid.
    pub allowed: bool,
    pub steps: Vec<StepPlan>,
    /// A rolling run's batches (`serial:`), each folded (`h[1-4]`); empty when not rolling.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub batches: Vec<String>,
    #[serde(skip)]
    pub batch_hosts: Vec<Vec<String>>,
}

impl RunbookPlan {
    /// The first denial, as one line (step, host, rule and reason).
    pub fn first_denial(&self) -> Option<String> {
        self.steps.iter().find_map(|s| {
            if let Some(e) = &s.error {
                return Some(format!("{} {}: {e}", s.phase, s.id));
            }
            s.rows.iter().find(|r| !r.runnable()).map(|r| {
                let reason = crate::service::plan::reason_line(r.policy_allowed, &r.reason, r.network.as_deref());
                let rule = r.rule.as_deref().map(|x| format!(" ({x})")).unwrap_or_default();
                format!("{} {} on {}: {reason}{rule}", s.phase, s.id, r.alias)
            })
        })
    }
}

/// Every host some step (not rollback) selects, in the order steps first name them: the
/// hosts a rolling run splits into batches.
fn run_hosts(steps: &[StepPlan]) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    steps
        .iter()
        .filter(|s| s.phase == "step")
        .flat_map(|s| s.rows.iter().map(|r| r.alias.clone()))
        .filter(|alias| seen.insert(alias.clone()))
        .collect()
}

/// `plan_hash` over the config, the runbook's bytes and the bound parameters (secret values
/// are not hashed: they are never shown, so they cannot be reviewed).
pub fn plan_hash(cfg: &Config, runbook: &Runbook, shown_params: &BTreeMap<String, String>) -> String {
    let text = format!("{}\n{}\n{}", cfg.hash, runbook.sha256, json!(shown_params));
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Parameter values with secrets masked.
pub fn shown_params(runbook: &Runbook, values: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    values
        .iter()
        .map(|(k, v)| {
            let secret = runbook.params.iter().any(|p| p.name == *k && p.secret);
            (k.clone(), if secret { "[secret]".to_owned() } else { v.clone() })
        })
        .collect()
}

/// Renders and judges every step and rollback step; opens no connection.
pub async fn plan(
    cfg: &Config,
    runbook: &Runbook,
    values: &BTreeMap<String, String>,
    who: &crate::policy::Principal,
    resolver: &dyn Resolve,
) -> RunbookPlan {
    let mut steps = Vec::new();
    let secrets = runbook.secrets(values);
    let phases = [("step", &runbook.steps), ("rollback", &runbook.rollback)];
    for (phase, list) in phases {
        for rendered in runbook.render(list, values) {
            let mut sp = StepPlan {
                id: rendered.id.clone(),
                phase,
                target: rendered.target.clone(),
                command: rendered.shown_command.clone(),
                error: None,
                rows: Vec::new(),
                rendered: None,
                folded: None,
            };
            match crate::inventory::select::select(&cfg.hosts, &rendered.target) {
                Err(e) => sp.error = Some(e.to_string()),
                Ok(hosts) => {
                    let mut rows = crate::service::plan::plan(cfg, &hosts, who, &rendered.command, resolver).await;
                    for r in &mut rows {
                        // Reasons quote the command: never show a secret in them.
                        for secret in &secrets {
                            r.reason = r.reason.replace(secret.as_str(), "[secret]");
                            r.denied_command = r.denied_command.take().map(|c| c.replace(secret.as_str(), "[secret]"));
                        }
                    }
                    sp.folded = Some(crate::service::plan::fold(&rows));
                    sp.rows = rows;
                }
            }
            sp.rendered = Some(rendered);
            steps.push(sp);
        }
    }
    let allowed = steps.iter().all(|s| s.error.is_none() && s.rows.iter().all(|r| r.runnable()));
    let params = shown_params(runbook, values);
    let batch_hosts = if runbook.serial.is_rolling() { runbook.serial.batches(&run_hosts(&steps)) } else { Vec::new() };
    RunbookPlan {
        batches: batch_hosts.iter().map(|b| crate::inventory::hostset::fold(b)).collect(),
        batch_hosts,
        runbook: runbook.name.clone(),
        runbook_sha256: runbook.sha256.clone(),
        plan_hash: plan_hash(cfg, runbook, &params),
        params,
        allowed,
        steps,
    }
}
