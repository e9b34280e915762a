//! Test fixtures: config directories, real sshd processes, the built binary.
#![allow(dead_code)]

pub mod cfg;
pub mod mcp;
pub mod oracle;
pub mod pty;
pub mod rsyslog;
pub mod sshd;
pub mod sudo;
pub mod svc;
