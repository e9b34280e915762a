//! sshwarden: a policy-gated async SSH orchestrator served over MCP.
//!
//! # Layout
//! - [`config`]: the three YAML files of mcp-ssh-orchestrator, validated with file:line:col.
//! - [`policy`]: pure, sync command policy over a real shell AST (brush-parser).
//! - [`select`]: host patterns (`web:&prod:!db`), pure.
//! - [`net`]: DNS-to-CIDR precheck; the only resolver of target names.
//! - [`cli`]: clap definitions and the `check`/`plan`/`schema` commands.

pub mod approvals;
pub mod approvals_http;
pub mod audit;
pub mod audit_copy;
pub mod audit_syslog;
pub mod call;
pub mod cli;
pub mod commands;
pub mod config;
pub mod fanout;
pub mod hostset;
pub mod import;
pub mod json_schema;
pub mod lost;
pub mod masking;
pub mod mcp;
pub mod net;
pub mod plan;
pub mod policy;
pub mod readiness;
pub mod rpc;
pub mod runbook;
pub mod runbook_cli;
pub mod runner;
pub mod select;
pub mod server;
pub mod service;
pub mod ssh;
pub mod tasks;
pub mod transfer;
pub mod transfer_io;
