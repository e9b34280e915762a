//! Integration tests: pure cores through the public API, then real sshd and the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]

mod approval_hook;
mod approvals;
mod approver_ui;
mod audit_gates;
mod audit_offhost;
mod bash_oracle;
mod become_sudo;
mod bypass_corpus;
mod certificates;
mod cli_net_audit;
mod config_load;
mod faults;
mod folded_results;
mod gate_holes;
mod gate_holes2;
mod gate_holes3;
mod import;
mod jump_hosts;
mod mcp_e2e;
mod mcp_tasks;
mod metrics;
mod oauth;
mod path_rules;
mod policy_table;
mod python_interop;
mod rpc;
mod runbooks;
mod secrets;
mod serve_signals;
mod ssh_exec;
mod support;
mod tasks_engine;
mod terminal;
mod transfers;
mod ts_interop;
