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
        description = "List inventory hosts with alias, tags and description (no secrets). Optional `pattern` selects hosts (tag, alias, glob, `a:&b`, `a:!b`).",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn ssh_list_hosts(&self, Parameters(p): Parameters<ListHostsParams>) -> ToolResult {
        Ok(ops::list_hosts(&self.svc, p.pattern.as_deref()))
    }

    #[tool(
        description = "Describe one host: sanitized inventory entry, effective limits, whether its host key is known, and which probe commands the policy allows.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn ssh_describe_host(&self, Parameters(p): Parameters<AliasParams>) -> ToolResult {
        Ok(ops::describe_host(&self.svc, &p.alias))
    }

    #[tool(
        description = "Dry run: for each host the target selects, whether the policy allows the command (rule and reason), the network precheck result and the effective limits, plus a plan_hash. Opens no SSH connection. Call this before ssh_run when unsure.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn ssh_plan(&self, Parameters(p): Parameters<PlanParams>) -> ToolResult {
        Ok(ops::plan(&self.svc, &p.target, &p.command, p.detail).await)
    }

    #[tool(description = "Run a command on one host and wait for it. Sends progress notifications while it runs; cancelling the request stops the remote command. Output inline is capped (head+tail); page the rest with ssh_get_task_output using the task_id.", output_schema = schema_for_output::<RunResult>(), annotations(destructive_hint = true, idempotent_hint = false, open_world_hint = true))]
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
        description = "Run a command on every host a pattern selects (the anchor's `tag` works too), in parallel within `concurrency`, batch by batch; stops starting batches past max_fail_percentage. Returns a summary (ok, failed, denied, unreachable, skipped) and per-host results, with progress notifications per host.",
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

    #[tool(description = "Start a command on one host and return a task_id at once (or the result if it finishes within wait_seconds). Poll with ssh_get_task_status, read live output with ssh_get_task_output, stop with ssh_cancel.", output_schema = schema_for_output::<AsyncStarted>(), annotations(destructive_hint = true, idempotent_hint = false, open_world_hint = true))]
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
        description = "Upload a file to one host (`alias`) or to every host a pattern selects (`target`, batches as ssh_run_on_tag) over SFTP. `remote_path` must match a `files:` write rule of the policy; the host's resolved path (symlinks) must match too. The bytes come from `content` (UTF-8), `content_base64`, or `local_path` under the policy's files.transfer_dir. Atomic: a temporary file is fsynced and renamed over the target; the result has bytes and SHA-256.",
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
        description = "Download a file from one host over SFTP. `remote_path` must match a `files:` read rule (its resolved path too). With `local_path` (under files.transfer_dir) the file is stored there atomically; without it the content comes back inline (UTF-8, or base64 when binary; at most max_output_bytes). The result has bytes and SHA-256.",
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
        description = "State of a task: queued, connecting, running, completed, failed, timed_out, cancelled (or expired), with byte and line counts so far.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn ssh_get_task_status(
        &self,
        Parameters(p): Parameters<TaskIdParams>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult {
        Ok(ops::status(&self.svc, &p.task_id, &ops::client_of(&ctx)))
    }

    #[tool(description = "Result of a finished task (exit code, signal, inline output). While it runs, says so; use ssh_get_task_output for live output.", output_schema = schema_for_output::<RunResult>(), annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn ssh_get_task_result(
        &self,
        Parameters(p): Parameters<TaskIdParams>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult {
        Ok(ops::result(&self.svc, &p.task_id, &ops::client_of(&ctx)))
    }

    #[tool(description = "Page a task's retained output by byte offset (offset+limit, follow next_offset) or take the last lines (tail_lines); works while the task runs. stream: stdout, stderr or combined.", output_schema = schema_for_output::<OutputPage>(), annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
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
        description = "List tasks (running and retained results), filtered by state and/or alias; includes tasks lost in a restart (from the audit log).",
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
        description = "Acknowledge a finished task: free its result and output now instead of at TTL expiry. A lost task (running when the server last stopped) is cleared from ssh_list_tasks once you checked its host.",
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
        description = "Re-read servers.yml, credentials.yml and policy.yml. Validates everything first: on any error the old config stays and every error is returned. Running tasks are unaffected.",
        annotations(destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn ssh_reload_config(&self, ctx: RequestContext<RoleServer>) -> ToolResult {
        Ok(ops::reload(&self.svc, &ctx))
    }

    #[tool(
        description = "List the runbooks this server has: name, description, parameters (type, required, default, pattern) and steps.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn ssh_list_runbooks(&self) -> ToolResult {
        Ok(runbooks::list(&self.svc))
    }

    #[tool(
        description = "Plan a whole runbook without connecting: every step and rollback step rendered with the parameters, judged by policy and network precheck on every host it selects (hosts folded by outcome), and a plan_hash to pass to ssh_run_runbook.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn ssh_plan_runbook(&self, Parameters(p): Parameters<RunbookPlanParams>) -> ToolResult {
        Ok(runbooks::plan(&self.svc, p).await)
    }

    #[tool(
        description = "Run a runbook as one task: it is planned first and nothing runs if any step is denied anywhere (or plan_hash differs). Returns a task_id at once (wait_seconds to watch it with progress). ssh_get_task_status shows step states, ssh_get_task_output the event log, ssh_get_task_result the report; ssh_cancel stops it and runs the rollback.",
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
