//! The MCP tools. Each method only translates parameters and delegates to `ops`/`service`;
//! results and errors leave through `errors::ok` / `errors::*_error`.
//!
//! Owns: tool names, descriptions and annotations. Never holds logic.

use rmcp::handler::server::tool::{InputResponses, RequestState, schema_for_output};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResponse, CallToolResult};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, tool, tool_router};

use super::params::*;
use super::{SshWarden, ops, runbooks, transfers};

type ToolResult = Result<CallToolResult, McpError>;

#[tool_router(vis = "pub(super)")]
impl SshWarden {
    #[tool(
        description = "Server name, version, config hash and uptime. Does not contact any host.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn ssh_ping(&self) -> ToolResult {
        Ok(ops::ping(&self.svc))
    }

    #[tool(
        description = "List inventory hosts: alias, tags, description. Optional `pattern` (tag, alias, glob, `a:&b`, `a:!b`).",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn ssh_list_hosts(&self, Parameters(p): Parameters<ListHostsParams>) -> ToolResult {
        Ok(ops::list_hosts(&self.svc, p.pattern.as_deref()))
    }

    #[tool(
        description = "One host: inventory entry, limits, whether its host key is known, which probe commands the policy allows.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn ssh_describe_host(
        &self,
        Parameters(p): Parameters<AliasParams>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult {
        Ok(ops::describe_host(&self.svc, &p.alias, &ops::client_of(&ctx)))
    }

    #[tool(
        description = "Dry run, no SSH: per host the target selects, whether the policy allows the command (rule, reason), the network precheck and limits. Use it before ssh_run when unsure.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn ssh_plan(&self, Parameters(p): Parameters<PlanParams>, ctx: RequestContext<RoleServer>) -> ToolResult {
        let who = match p.as_principal.as_deref().map(crate::policy::Principal::parse) {
            Some(Ok(who)) => who,
            Some(Err(e)) => {
                return Ok(super::errors::service_error(&crate::service::ServiceError::InvalidInput(format!(
                    "as: {e}"
                ))));
            }
            None => crate::service::principal_of(Some(&ops::client_of(&ctx))),
        };
        Ok(ops::plan(&self.svc, &p.target, &p.command, &who, p.detail).await)
    }

    #[tool(description = "Run a command on one host and wait, with progress notifications; cancelling stops it. Inline output is capped (head+tail); page the rest with ssh_get_task_output.", output_schema = schema_for_output::<RunResult>(), annotations(destructive_hint = true, idempotent_hint = false, open_world_hint = true))]
    async fn ssh_run(
        &self,
        Parameters(p): Parameters<RunParams>,
        RequestState(state): RequestState,
        InputResponses(responses): InputResponses,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        Ok(ops::run(&self.svc, p, ctx, (state, responses)).await)
    }

    #[tool(
        description = "Run a command on every host a pattern selects, in parallel batches; stops past max_fail_percentage. Returns a summary and hosts folded by identical outcome.",
        annotations(destructive_hint = true, idempotent_hint = false, open_world_hint = true)
    )]
    async fn ssh_run_on_tag(
        &self,
        Parameters(p): Parameters<FanoutParams>,
        RequestState(state): RequestState,
        InputResponses(responses): InputResponses,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        Ok(ops::run_on_tag(&self.svc, p, ctx, (state, responses)).await)
    }

    #[tool(description = "Start a command on one host; returns a task_id at once (or the result within wait_seconds). Then ssh_get_task_status, ssh_get_task_output, ssh_cancel.", output_schema = schema_for_output::<AsyncStarted>(), annotations(destructive_hint = true, idempotent_hint = false, open_world_hint = true))]
    async fn ssh_run_async(
        &self,
        Parameters(p): Parameters<RunAsyncParams>,
        RequestState(state): RequestState,
        InputResponses(responses): InputResponses,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        Ok(ops::run_async(&self.svc, p, &ctx, (state, responses)).await)
    }

    #[tool(
        description = "Upload over SFTP to `alias` or every host `target` selects; `remote_path` (and its resolved path) must match a `files:` write rule. Atomic; returns bytes and SHA-256.",
        annotations(destructive_hint = true, idempotent_hint = true, open_world_hint = true)
    )]
    async fn ssh_upload(
        &self,
        Parameters(p): Parameters<UploadParams>,
        RequestState(state): RequestState,
        InputResponses(responses): InputResponses,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        Ok(transfers::upload(&self.svc, p, ctx, (state, responses)).await)
    }

    #[tool(
        description = "Download over SFTP from one host. `remote_path` (and its resolved path) must match a `files:` read rule. Stored under files.transfer_dir with `local_path`, else inline (base64 when binary). Returns bytes and SHA-256.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = true)
    )]
    async fn ssh_download(
        &self,
        Parameters(p): Parameters<DownloadParams>,
        RequestState(state): RequestState,
        InputResponses(responses): InputResponses,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        Ok(transfers::download(&self.svc, p, ctx, (state, responses)).await)
    }

    #[tool(
        description = "A task's state (queued, running, completed, failed, timed_out, cancelled, …) and byte counts.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn ssh_get_task_status(
        &self,
        Parameters(p): Parameters<TaskIdParams>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult {
        Ok(ops::status(&self.svc, &p.task_id, &ops::client_of(&ctx)))
    }

    #[tool(description = "Result of a finished task: exit code, signal, inline output.", output_schema = schema_for_output::<RunResult>(), annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn ssh_get_task_result(
        &self,
        Parameters(p): Parameters<TaskIdParams>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult {
        Ok(ops::result(&self.svc, &p.task_id, &ops::client_of(&ctx)))
    }

    #[tool(description = "Page a task's output by byte offset (follow next_offset) or its last lines (tail_lines), also while it runs.", output_schema = schema_for_output::<OutputPage>(), annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn ssh_get_task_output(
        &self,
        Parameters(p): Parameters<OutputParams>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult {
        Ok(ops::output(&self.svc, p, &ops::client_of(&ctx)))
    }

    #[tool(
        description = "Cancel an async task; the remote command is stopped (TERM, then KILL).",
        annotations(destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    async fn ssh_cancel_async_task(
        &self,
        Parameters(p): Parameters<TaskIdParams>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult {
        Ok(ops::cancel(&self.svc, &p.task_id, &ctx))
    }

    #[tool(
        description = "Cancel any task by id (sync or async); the remote command is stopped.",
        annotations(destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    async fn ssh_cancel(&self, Parameters(p): Parameters<TaskIdParams>, ctx: RequestContext<RoleServer>) -> ToolResult {
        Ok(ops::cancel(&self.svc, &p.task_id, &ctx))
    }

    #[tool(
        description = "List your tasks (running and retained), by state and/or alias, and tasks lost in a restart.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn ssh_list_tasks(
        &self,
        Parameters(p): Parameters<ListTasksParams>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult {
        Ok(ops::list_tasks(&self.svc, p, &ops::client_of(&ctx)))
    }

    #[tool(
        description = "Free a finished task's result now instead of at TTL expiry; clears a lost task (running when the server stopped) once you checked its host.",
        annotations(destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn ssh_ack_task(
        &self,
        Parameters(p): Parameters<TaskIdParams>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult {
        Ok(ops::ack(&self.svc, &p.task_id, &ops::client_of(&ctx)))
    }

    #[tool(
        description = "Check that hosts are reachable without running anything: DNS and network policy, host key, authentication.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = true)
    )]
    async fn ssh_preflight(&self, Parameters(p): Parameters<TargetParams>) -> ToolResult {
        Ok(ops::preflight(&self.svc, &p.target).await)
    }

    #[tool(
        description = "Re-read the configuration; on any error the old one stays and every error is returned.",
        annotations(destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn ssh_reload_config(&self, ctx: RequestContext<RoleServer>) -> ToolResult {
        Ok(ops::reload(&self.svc, &ctx))
    }

    #[tool(
        description = "List runbooks: name, description, parameters, steps.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn ssh_list_runbooks(&self) -> ToolResult {
        Ok(runbooks::list(&self.svc))
    }

    #[tool(
        description = "Plan a whole runbook without connecting: every step and rollback step on every host, judged by policy and precheck, and the plan_hash for ssh_run_runbook.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn ssh_plan_runbook(
        &self,
        Parameters(p): Parameters<RunbookPlanParams>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult {
        Ok(runbooks::plan(&self.svc, p, &crate::service::principal_of(Some(&ops::client_of(&ctx)))).await)
    }

    #[tool(
        description = "Run a runbook as one task; nothing runs if any step is denied anywhere or plan_hash differs. Returns a task_id: ssh_get_task_status shows steps, ssh_get_task_result the report; ssh_cancel stops it and rolls back.",
        annotations(destructive_hint = true, idempotent_hint = false, open_world_hint = true)
    )]
    async fn ssh_run_runbook(
        &self,
        Parameters(p): Parameters<RunbookRunParams>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult {
        Ok(runbooks::run(&self.svc, p, &ctx).await)
    }
}
