//! The MCP server: the only module that names rmcp.
//!
//! Owns: the `ServerHandler` (tools, resources, prompts, SEP-2663 tasks), its capabilities
//! and protocol versions. Tool methods translate and delegate; `errors.rs` is the single
//! mapping from domain errors to tool results. Never touches SSH directly.

mod approval;
mod deferred;
mod errors;
mod fanout_result;
pub use errors::error_body;
pub use ops::fanout_report;
pub use tasks_ext::McpTasks;
pub use toolset::ToolSet;
mod inspect;
mod ops;
pub mod params;
mod progress;
mod prompts;
mod render;
mod resources;
mod runbooks;
mod task_tools;
mod tasks_ext;
mod tools;
mod toolset;
mod transfers;

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::*;
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, prompt_handler, tool_handler};

use crate::service::Service;

/// The sshwarden MCP handler; cheap to clone (one per HTTP session shares the service).
#[derive(Clone)]
pub struct SshWarden {
    svc: Arc<Service>,
    tool_router: ToolRouter<SshWarden>,
    mcp_tasks: McpTasks,
    subscriptions: resources::Subscriptions,
}

/// A tool schema as `tools/list` publishes it: standard vocabulary, compact.
fn listed_schema(schema: &JsonObject, keep_descriptions: bool) -> JsonObject {
    let mut v = serde_json::Value::Object(crate::config::json_schema::standardize_object(schema));
    crate::config::json_schema::compact(&mut v, keep_descriptions);
    match v {
        serde_json::Value::Object(m) => m,
        _ => JsonObject::new(),
    }
}

impl SshWarden {
    pub fn new(svc: Arc<Service>) -> Self {
        Self::with_tasks(svc, McpTasks::default())
    }

    /// A handler sharing `tasks` with the others of a server: over streamable HTTP on
    /// 2026-07-28 each request gets its own handler, and a task started by one request must
    /// be found by the next (`tasks/get`, `tasks/update`, `tasks/cancel`).
    pub fn with_tasks(svc: Arc<Service>, tasks: McpTasks) -> Self {
        let mut tool_router = Self::tool_router();
        for route in tool_router.map.values_mut() {
            let tool = &mut route.attr;
            tool.input_schema = Arc::new(listed_schema(&tool.input_schema, true));
            tool.output_schema = tool.output_schema.as_ref().map(|s| Arc::new(listed_schema(s, false)));
            // Hints equal to the spec's defaults say nothing (idempotent: false, open world: true).
            if let Some(a) = tool.annotations.as_mut() {
                a.idempotent_hint = a.idempotent_hint.filter(|h| *h);
                a.open_world_hint = a.open_world_hint.filter(|h| !*h);
            }
        }
        Self { svc, tool_router, mcp_tasks: tasks, subscriptions: resources::Subscriptions::default() }
    }

    /// Every tool this server can expose (for `--tools`).
    pub fn all_tool_names() -> Vec<String> {
        Self::tool_router().list_all().into_iter().map(|t| t.name.to_string()).collect()
    }

    /// Only the tools `set` names stay: the others are neither listed nor callable.
    pub fn exposing(mut self, set: &ToolSet) -> Self {
        self.tool_router.map.retain(|name, _| set.exposes(name));
        self
    }

    /// Names of all tools, for `--help` texts and tests.
    pub fn tool_names(&self) -> Vec<String> {
        self.tool_router.list_all().into_iter().map(|t| t.name.to_string()).collect()
    }
}

#[tool_handler(router = self.tool_router)]
#[prompt_handler]
impl ServerHandler for SshWarden {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_prompts().enable_resources().enable_resources_subscribe().enable_tasks().build())
            .with_server_info(Implementation::new("sshwarden", env!("CARGO_PKG_VERSION")))
            .with_instructions("sshwarden runs shell commands on inventory hosts behind a policy. Start with ssh_list_hosts and ssh_plan; use ssh_run (waits, with progress) or ssh_run_async + ssh_get_task_output for long commands. Files move with ssh_upload / ssh_download under the policy's files: rules (check with ssh_plan command=upload:PATH). Some commands need a human's approval (decision ask): the user is asked through elicitation. Denials carry the rule and a hint; do not work around them.".to_owned())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        // A hidden tool is unknown on every path: the router refuses it, and it never
        // reaches the task-augmented path that would start it itself.
        if self.tool_router.map.contains_key(request.name.as_ref())
            && let Some(task) = self.mcp_tasks.maybe_spawn(self, &request, &context).await
        {
            return task;
        }
        let tcc = rmcp::handler::server::tool::ToolCallContext::new(self, request, context);
        self.tool_router.call(tcc).await
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(resources::list(&self.svc))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(resources::templates())
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        resources::read(&self.svc, &request.uri, &ops::client_of(&context)).map(Into::into)
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let client = ops::client_of(&context);
        self.subscriptions.subscribe(&self.svc, &request.uri, &client, context.peer)
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.subscriptions.unsubscribe(&request.uri);
        Ok(())
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, McpError> {
        self.mcp_tasks.get(&self.svc, &request, &context).await
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.mcp_tasks.update(&request, &context)
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.mcp_tasks.cancel(&self.svc, &request, &context).await
    }
}
