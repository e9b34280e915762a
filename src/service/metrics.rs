//! Prometheus metrics of the service (`GET /metrics`): what the gate decided, how tasks
//! ran, what streamed, the connection pool, approvals, the audit trail and reloads.
//!
//! Owns: the metric families (counters and histograms updated as things happen) and the
//! scrape-time gauges read from the live service (tasks by state, pool, pending approvals,
//! spool bytes). Encoding is `prometheus-client`'s OpenMetrics text, never hand-written.
//! Never labels a series with a command, a host, a client or anything else a caller
//! chooses: label values come from fixed sets or from the configuration's rule names, so
//! a caller cannot grow the series count.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::policy::Decision;
use crate::service::Service;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    decision: &'static str,
    /// The rule's `id`, else `#N` (its position in `rules:`), else `none`.
    rule: String,
    /// `command` or `transfer`.
    what: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
}

fn seconds_histogram() -> Histogram {
    // 50 ms … ~14 min: a quick `uptime` to a long package upgrade.
    Histogram::new(exponential_buckets(0.05, 2.0, 15))
}

/// The families updated as events happen; cloned (they share their values) into a fresh
/// registry on each scrape.
pub struct Metrics {
    decisions: Family<DecisionLabels, Counter>,
    task_duration: Family<StateLabel, Histogram, fn() -> Histogram>,
    approvals_decided: Family<ResultLabel, Counter>,
    approval_latency: Family<ResultLabel, Histogram, fn() -> Histogram>,
    audit_records: Counter,
    reloads: Family<ResultLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            decisions: Family::default(),
            task_duration: Family::new_with_constructor(seconds_histogram),
            approvals_decided: Family::default(),
            approval_latency: Family::new_with_constructor(seconds_histogram),
            audit_records: Counter::default(),
            reloads: Family::default(),
        }
    }
}

impl Metrics {
    pub(crate) fn decision(&self, decision: &Decision, what: &'static str) {
        let rule = match &decision.rule {
            Some(r) => r.id.clone().unwrap_or_else(|| format!("#{}", r.index)),
            None => "none".to_owned(),
        };
        self.decisions.get_or_create(&DecisionLabels { decision: decision.action(), rule, what }).inc();
    }

    pub(crate) fn task_finished(&self, state: &'static str, seconds: f64) {
        self.task_duration.get_or_create(&StateLabel { state }).observe(seconds);
    }

    pub(crate) fn approval_decided(&self, approved: bool, seconds: f64) {
        let result = ResultLabel { result: if approved { "approved" } else { "denied" } };
        self.approvals_decided.get_or_create(&result).inc();
        self.approval_latency.get_or_create(&result).observe(seconds);
    }

    pub(crate) fn audit_record_written(&self) {
        self.audit_records.inc();
    }

    pub(crate) fn reloaded(&self, ok: bool) {
        self.reloads.get_or_create(&ResultLabel { result: if ok { "ok" } else { "failed" } }).inc();
    }
}

/// What a scrape reads off the live service, at the moment of the scrape.
#[derive(Debug, Default)]
struct Snapshot {
    tasks_by_state: Vec<(&'static str, i64)>,
    streamed: [(&'static str, u64); 2],
    pooled_connections: i64,
    handshakes_in_flight: i64,
    approvals_pending: i64,
    spool_bytes: Option<i64>,
}

const TASK_STATES: [&str; 7] = ["queued", "connecting", "running", "completed", "failed", "timed_out", "cancelled"];

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "sshwarden_tasks",
            "Tasks kept, by state",
            None,
            ConstGauge::new(0i64).metric_type(),
        )?;
        for (state, n) in &self.tasks_by_state {
            ConstGauge::new(*n).encode(family.encode_family(&StateLabel { state })?)?;
        }
        let mut bytes = encoder.encode_descriptor(
            "sshwarden_streamed",
            "Output bytes received from hosts, by stream",
            Some(&Unit::Bytes),
            ConstCounter::new(0u64).metric_type(),
        )?;
        for (stream, n) in &self.streamed {
            #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
            struct StreamLabel {
                stream: &'static str,
            }
            ConstCounter::new(*n).encode(bytes.encode_family(&StreamLabel { stream })?)?;
        }
        let gauges = [
            ("sshwarden_ssh_pooled_connections", "Open SSH connections in the pool", self.pooled_connections),
            (
                "sshwarden_ssh_handshakes_in_flight",
                "SSH handshakes (TCP, key exchange, auth) in progress",
                self.handshakes_in_flight,
            ),
            ("sshwarden_approvals_pending", "Approval requests waiting for a human", self.approvals_pending),
        ];
        for (name, help, value) in gauges {
            let g = ConstGauge::new(value);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        if let Some(v) = self.spool_bytes {
            let g = ConstGauge::new(v);
            g.encode(encoder.encode_descriptor(
                "sshwarden_audit_spool",
                "Audit bytes spooled for the syslog collector, not yet delivered",
                Some(&Unit::Bytes),
                g.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

impl Service {
    /// The metrics page in the OpenMetrics text format.
    pub fn metrics_text(&self) -> Result<String, std::fmt::Error> {
        let m = &self.metrics;
        let mut registry = Registry::default();
        registry.register(
            "sshwarden_decisions",
            "Policy decisions, by decision and deciding rule",
            m.decisions.clone(),
        );
        registry.register_with_unit(
            "sshwarden_task_duration",
            "Time from a task's creation to its end, by final state",
            Unit::Seconds,
            m.task_duration.clone(),
        );
        registry.register(
            "sshwarden_approvals_decided",
            "Approval requests decided by a human",
            m.approvals_decided.clone(),
        );
        registry.register_with_unit(
            "sshwarden_approval_decision",
            "Time from an approval request to its decision",
            Unit::Seconds,
            m.approval_latency.clone(),
        );
        registry.register("sshwarden_audit_records", "Audit records written", m.audit_records.clone());
        registry.register("sshwarden_config_reloads", "Configuration reloads, by result", m.reloads.clone());
        // A gauge at 1, not OpenMetrics' `info` type: the classic text parsers (`promtool
        // check metrics`, older scrapers) reject `info`.
        let build: Family<VersionLabel, prometheus_client::metrics::gauge::Gauge> = Family::default();
        build.get_or_create(&VersionLabel { version: env!("CARGO_PKG_VERSION") }).set(1);
        registry.register("sshwarden_build_info", "The running build (always 1)", build);
        registry.register_collector(Box::new(self.metrics_snapshot()));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry)?;
        Ok(text)
    }

    fn metrics_snapshot(&self) -> Snapshot {
        let listed = self.tasks.list();
        let tasks_by_state =
            TASK_STATES.iter().map(|s| (*s, listed.iter().filter(|t| t.state.name() == *s).count() as i64)).collect();
        let (stdout, stderr) = self.tasks.streamed_bytes();
        let (pooled, handshaking) = (self.pool.connection_count(), self.pool.handshakes_in_flight());
        Snapshot {
            tasks_by_state,
            streamed: [("stdout", stdout), ("stderr", stderr)],
            pooled_connections: pooled as i64,
            handshakes_in_flight: handshaking as i64,
            approvals_pending: self.approvals.pending().len() as i64,
            spool_bytes: self.audit_spool().map(|s| s.pending() as i64),
        }
    }
}
