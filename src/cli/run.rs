//! `sshwarden run TARGET -- COMMAND`: a command on every host a pattern selects, for a person
//! at a terminal. In process, through the same gate as `ssh_run_on_tag` (`fanout::run_with`
//! → `Service::start_command`, one approval for the fan-out, durable audit records under the
//! client `sshwarden run`).
//!
//! Owns: what a person sees: output live as `host: line` (stdout lines on stdout, stderr lines
//! on stderr, the host coloured on a terminal), or per-host blocks when each host finishes
//! (`-i`, as `pssh -i`), then the `clush -b` fold of identical outputs and of failures (or the
//! structured result with `--json`); an `ask` decision asked at the terminal; Ctrl-C and
//! SIGTERM stop every remote command. Exit 0 all ok, 3 any host denied (or the approval
//! refused), 4 any host failed or unreachable, 130/143 interrupted, 1 usage or config error.
//! Never judges anything itself.

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use console::style;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::ConfigArgs;
use super::call::Stop;
use super::commands::{EXIT_DENIED, EXIT_ERROR, EXIT_FAILED, EXIT_OK, dirs};
use super::run_output::{Follower, host_block};
use crate::mcp::params::Detail;
use crate::service::Service;
use crate::service::approvals::{ApprovalRequest, AskHuman, Via};
use crate::service::fanout::{self, FanoutOptions, HostEntry, HostStatus};
use crate::tasks::Task;

/// The audit records' client for commands a person ran from the terminal.
const CLIENT: &str = "sshwarden run";

/// What to run and how to show it.
pub struct RunArgs {
    pub config: ConfigArgs,
    pub target: String,
    pub command: String,
    pub json: bool,
    pub inline: bool,
    pub concurrency: Option<usize>,
    pub timeout_seconds: Option<u64>,
}

/// `sshwarden run`.
pub async fn run(args: RunArgs) -> u8 {
    let mut stop = match Stop::listen() {
        Ok(s) => s,
        Err(e) => return fail(&format!("cannot listen for SIGINT/SIGTERM: {e}")),
    };
    let svc = match crate::server::start_service(dirs(&args.config)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_ERROR;
        }
    };
    let (code, prompt_abandoned) = match run_on(&svc, &args, &mut stop).await {
        Ok(code) => (code, false),
        Err(Interrupted(code)) => (code, true),
    };
    svc.shutdown(crate::server::SHUTDOWN_GRACE).await;
    if prompt_abandoned {
        // The terminal read of the abandoned question blocks a runtime thread that would
        // hold the exit: everything is audited and stopped, so leave now.
        std::process::exit(i32::from(code));
    }
    code
}

/// A signal came while the approval question was asked: the request is denied, nothing ran.
struct Interrupted(u8);

async fn run_on(svc: &Arc<Service>, args: &RunArgs, stop: &mut Stop) -> Result<u8, Interrupted> {
    let hosts = match fanout::targets(svc, &args.target) {
        Ok(h) => h,
        Err(e) => return Ok(fail(&e.to_string())),
    };
    let approval = match approve(svc, &hosts, &args.command, stop).await? {
        Ok(ticket) => ticket,
        Err(why) => {
            eprintln!("denied: {why}");
            return Ok(EXIT_DENIED);
        }
    };
    let opts = FanoutOptions {
        concurrency: args.concurrency.unwrap_or(8),
        batch_size: None,
        max_fail_percentage: 100.0,
        timeout_seconds: args.timeout_seconds,
        approval,
    };
    let (started, mut starts) = mpsc::unbounded_channel::<(String, Arc<Task>)>();
    let command = args.command.as_str();
    let start = |alias: String| -> futures::future::BoxFuture<'_, _> {
        let started = started.clone();
        let ticket = opts.approval.clone();
        Box::pin(async move {
            let (task, _) =
                svc.start_command(&alias, command, opts.timeout_seconds, Some(CLIENT), ticket.as_deref()).await?;
            let _ = started.send((alias, task.clone()));
            Ok(task)
        })
    };
    let cancel = CancellationToken::new();
    let live = !args.json && !args.inline;
    let mut follower = Follower::new(std::io::stdout().is_terminal());
    let mut finished = 0usize;
    let work = fanout::run_with(svc, &hosts, &opts, Some(CLIENT), &cancel, &start, |_, total, e: &HostEntry| {
        if args.inline && !args.json {
            finished += 1;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(host_block(finished, total, e).as_bytes());
            let _ = out.flush();
        }
    });
    tokio::pin!(work);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    let mut interrupted = None;
    let entries = loop {
        tokio::select! {
            r = &mut work => break r,
            Some((alias, task)) = starts.recv(), if live => follower.follow(alias, task),
            _ = tick.tick(), if live => follower.print_new(false),
            code = stop.next(), if interrupted.is_none() => {
                interrupted = Some(code);
                eprintln!("interrupted: stopping every remote command");
                cancel.cancel();
            }
        }
    };
    if live {
        while let Ok((alias, task)) = starts.try_recv() {
            follower.follow(alias, task);
        }
        follower.print_new(true);
    }
    let entries = match entries {
        Ok(e) => e,
        Err(e) => return Ok(fail(&e.to_string())),
    };
    report(svc, args, &entries);
    Ok(interrupted.unwrap_or_else(|| exit_code(&entries)))
}

/// The fold (or the JSON result) after the run.
fn report(svc: &Service, args: &RunArgs, entries: &[HostEntry]) {
    let (body, text) = crate::mcp::fanout_report(svc, &args.target, &args.command, entries, Detail::Groups);
    let mut out = std::io::stdout().lock();
    if args.json {
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&body).unwrap_or_default());
    } else {
        let _ = writeln!(out, "\n{}", crate::policy::text::printable(&text));
    }
}

/// 3 when a host was denied, else 4 when one failed or was unreachable, else 0.
fn exit_code(entries: &[HostEntry]) -> u8 {
    if entries.iter().any(|e| e.status == HostStatus::Denied) {
        EXIT_DENIED
    } else if entries.iter().any(|e| matches!(e.status, HostStatus::Failed | HostStatus::Unreachable)) {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

fn fail(e: &str) -> u8 {
    eprintln!("error: {e}");
    EXIT_ERROR
}

/// The approval an `ask` decision needs: asked at this terminal, else refused with the way
/// to get it. `Ok(None)`: nothing to ask. A signal while asking denies the request.
async fn approve(
    svc: &Arc<Service>,
    hosts: &[String],
    command: &str,
    stop: &mut Stop,
) -> Result<Result<Option<String>, String>, Interrupted> {
    let Some(request) = svc.approval_needed(hosts, command, CLIENT) else { return Ok(Ok(None)) };
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Ok(Err(format!(
            "`{command}` on {} needs a human's approval (rule {}); run it at a terminal to be asked, or through `sshwarden serve --approver-token-file` and an approver",
            request.hosts,
            request.rule.as_deref().unwrap_or("-")
        )));
    }
    let cancel = CancellationToken::new();
    let asked = svc.obtain_approval_or_cancel(&request, Via::Human(&Terminal), &cancel);
    tokio::pin!(asked);
    tokio::select! {
        verdict = &mut asked => Ok(verdict.map(Some).map_err(|e| e.to_string())),
        code = stop.next() => {
            cancel.cancel();
            let _ = asked.await;
            eprintln!("\ninterrupted: the approval request was denied; nothing ran");
            Err(Interrupted(code))
        }
    }
}

/// Asks the person at this terminal: `approve "CMD" on HOSTS? [y/N]`.
struct Terminal;

impl AskHuman for Terminal {
    fn ask<'a>(&'a self, request: &'a ApprovalRequest) -> futures::future::BoxFuture<'a, Option<bool>> {
        let question = format!(
            "{}\napprove \"{}\" on {}? [y/N] ",
            style(format!("rule {}: {}", request.rule.as_deref().unwrap_or("-"), request.reason)).dim(),
            request.what,
            request.hosts
        );
        Box::pin(super::call::ask_yes_no(question))
    }
}
