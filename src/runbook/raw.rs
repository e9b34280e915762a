//! The serde mirror of a runbook file (`runbooks/*.yml`): what `sshwarden schema runbook`
//! publishes. Unknown keys are refused. Never holds meaning beyond the shape.

use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunbookFile {
    /// Unique among runbooks; defaults to the file stem.
    pub name: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub params: Vec<RawParam>,
    #[serde(default)]
    pub steps: Vec<RawStep>,
    /// Run in order when the run aborts after a step ran commands.
    #[serde(default)]
    pub rollback: Vec<RawStep>,
    /// Rolling run (as Ansible's `serial`): a host count, a percentage like "25%", or a list
    /// of them whose last item repeats. Each batch of hosts goes through every step before
    /// the next batch starts.
    pub serial: Option<RawSerial>,
    /// With `serial`: no further batch starts once more than this share of the run's hosts
    /// failed (default 0: any failed host stops the run).
    pub max_fail_percentage: Option<f64>,
}

/// `serial:` as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawSerial {
    One(RawBatch),
    Many(Vec<RawBatch>),
}

/// One batch size: a host count or a percentage string.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawBatch {
    Count(u64),
    Text(String),
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawParam {
    pub name: String,
    /// string (default), integer, boolean or enum.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// For `type: enum`.
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default)]
    pub required: bool,
    pub default: Option<serde_json::Value>,
    /// A regex the whole value must match.
    pub pattern: Option<String>,
    /// Never logged or audited in clear.
    #[serde(default)]
    pub secret: bool,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    /// Unique within the runbook (steps and rollback).
    pub id: String,
    /// Host pattern, `{{ param }}` allowed (same algebra as ssh_run_on_tag).
    pub target: String,
    /// Shell command, `{{ param }}` inserted as one shell word.
    pub command: String,
    #[serde(default)]
    pub expect: RawExpect,
    pub batch_size: Option<usize>,
    pub concurrency: Option<usize>,
    pub max_fail_percentage: Option<f64>,
    pub timeout_seconds: Option<u64>,
    #[serde(default)]
    pub retries: u32,
    #[serde(default)]
    pub retry_delay_seconds: u64,
    /// abort (default) or continue.
    pub on_failure: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    /// Accepted exit codes (default [0]).
    pub exit: Option<Vec<u32>>,
    /// A regex stdout must contain a match of.
    pub stdout_regex: Option<String>,
}
