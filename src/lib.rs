//! sshwarden: a policy-gated async SSH orchestrator served over MCP.
//!
//! # Layers (dependencies point down only; `modgraph` finds no cycle)
//! - [`cli`], [`server`]: the terminal commands (the only code that prints for humans) and
//!   the transports (stdio, HTTP, `/mcp`, `/rpc`, `/approvals`).
//! - [`mcp`]: the MCP surface; the only module naming rmcp besides the client in `cli`.
//! - [`service`]: the gate and the domain operations: admission (`service::Prepared`, built
//!   only by the gate), approvals, plans, fan-out, transfers, runbook runs, readiness.
//! - [`audit`], [`ssh`], [`tasks`], [`net`]: the hash-chained log, SSH sessions, the task
//!   manager, the DNS-to-CIDR precheck.
//! - [`policy`], [`inventory`], [`runbook`], [`config`], [`import`]: pure judgement, host
//!   patterns, the runbook format, the YAML files and their importers.

pub mod audit;
pub mod cli;
pub mod config;
pub mod import;
pub mod inventory;
pub mod mcp;
pub mod net;
pub mod policy;
pub mod runbook;
pub mod server;
pub mod service;
pub mod ssh;
pub mod tasks;
