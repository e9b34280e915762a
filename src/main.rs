//! The `sshwarden` binary: parse the command line, log to stderr, dispatch, exit.

use std::process::ExitCode;

use clap::Parser;
use sshwarden::cli::commands;
use sshwarden::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // stdout belongs to JSON-RPC (serve) and to results (check/plan/call): logs go to stderr.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SSHWARDEN_LOG")
                .unwrap_or_else(|_| cli.default_log_filter().into()),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(async move {
        match cli.command {
            Command::Check { mut config, dir } => {
                if let Some(dir) = dir {
                    // `init DIR` writes DIR/config: `check DIR` means that.
                    let inner = dir.join("config");
                    config.config_dir = if inner.join("servers.yml").exists() { inner } else { dir };
                }
                commands::check(&config)
            }
            Command::Completions { shell } => sshwarden::cli::completions(shell),
            Command::Man { dir } => sshwarden::cli::man_pages(&dir),
            Command::Plan { config, json, per_host, as_principal, pattern, command } => {
                commands::plan(&config, json, per_host, as_principal.as_deref(), &pattern, &command.join(" ")).await
            }
            Command::Schema { file } => commands::schema(file.as_deref()),
            Command::Init { dir, from_ssh_config, from_ansible, profile, scan, yes, force } => {
                use sshwarden::cli::init::{InitArgs, init};
                init(InitArgs { dir, from_ssh_config, from_ansible, profile, scan, yes, force }).await
            }
            Command::Run { config, json, inline, concurrency, timeout_seconds, target, command } => {
                use sshwarden::cli::run::{RunArgs, run};
                let command = command.join(" ");
                run(RunArgs { config, target, command, json, inline, concurrency, timeout_seconds }).await
            }
            Command::Import { source, out, force } => {
                use sshwarden::cli::ImportSource;
                let imported = match source {
                    ImportSource::SshConfig { file } => sshwarden::import::ssh_config::import(file.as_deref()),
                    ImportSource::Ansible { file } => sshwarden::import::ansible::import(&file),
                };
                match imported.and_then(|i| sshwarden::import::write(&i, &out, force)) {
                    Ok(summary) => {
                        eprintln!("{summary}");
                        commands::EXIT_OK
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        commands::EXIT_ERROR
                    }
                }
            }
            Command::Runbook { command } => {
                use sshwarden::cli::RunbookCommand;
                use sshwarden::cli::runbook::{RunbookArgs, plan, run};
                let args = |t: sshwarden::cli::RunbookTarget, plan_hash| RunbookArgs {
                    config: t.config,
                    url: t.url,
                    token_file: t.token_file,
                    runbook: t.runbook,
                    params: t.params,
                    plan_hash,
                    json: t.json,
                };
                match command {
                    RunbookCommand::Plan { target } => plan(args(target, None)).await,
                    RunbookCommand::Run { target, plan_hash } => run(args(target, plan_hash)).await,
                }
            }
            Command::Serve { config, http, token_file, approver_token_file, metrics_token_file, tools } => {
                let http =
                    sshwarden::server::HttpOptions { addr: http, token_file, approver_token_file, metrics_token_file };
                commands::serve(&config, http, &tools).await
            }
            Command::Approvals { command, url, token_file } => {
                use sshwarden::cli::ApprovalsCommand;
                use sshwarden::cli::approvals::{Action, cli};
                let action = match command {
                    ApprovalsCommand::List => Action::List,
                    ApprovalsCommand::Approve { id } => Action::Approve(id),
                    ApprovalsCommand::Deny { id } => Action::Deny(id),
                };
                match url {
                    Some(url) => cli(action, &url, token_file).await,
                    None => {
                        eprintln!("error: --url is required (the running `sshwarden serve --http` server)");
                        sshwarden::cli::commands::EXIT_ERROR
                    }
                }
            }
            Command::Call { config, url, token_file, json, tool, args } => {
                commands::call(&config, url, token_file, json, &tool, &args).await
            }
            Command::Audit {
                command: sshwarden::cli::AuditCommand::Verify { file, from_syslog, app_name, against },
            } => commands::audit_verify(file.as_deref(), from_syslog.as_deref(), &app_name, against.as_deref()),
        }
    });
    ExitCode::from(code)
}
