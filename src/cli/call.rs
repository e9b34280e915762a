//! `sshwarden call`: one MCP tool call through a real client, against an in-process server
//! (over an in-memory duplex) or a running `sshwarden serve --http`.
//!
//! Owns: argument typing from the tool's input schema, printing the structured result on
//! stdout, progress on stderr, exit codes, and stopping what the call started on SIGINT or
//! SIGTERM (the request cancelled, the in-process service shut down; exit 130 or 143), and,
//! at a terminal, the operator's answer to an approval question (`elicitation/create` or an
//! `input_required` round, the call made again with the answer). The connection itself is
//! `call_connect.rs` (re-exported here). Never bypasses the MCP layer.

use std::io::Write;
use std::path::PathBuf;

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResult, CancelledNotificationParam, ClientCapabilities,
    ClientConfig, ClientRequest, Implementation, NumberOrString, ProgressNotificationParam, ProgressToken,
    RequestMetaObject, ServerResult,
};
use rmcp::service::{NotificationContext, PeerRequestOptions};
use rmcp::{ClientHandler, RoleClient};
use serde_json::{Value, json};

use crate::cli::ConfigArgs;
pub(crate) use crate::cli::call_connect::{Client, Connected, connect};
use crate::cli::commands::{EXIT_DENIED, EXIT_ERROR, EXIT_FAILED, EXIT_OK};

/// Exit codes after SIGINT and SIGTERM (128 + the signal number).
pub const EXIT_SIGINT: u8 = 130;
pub const EXIT_SIGTERM: u8 = 143;

/// A client that prints progress notifications to stderr.
#[derive(Clone)]
pub(crate) struct CallClient;

impl ClientHandler for CallClient {
    fn get_info(&self) -> ClientConfig {
        // At a terminal the operator can answer an approval question: declare it, and the
        // server asks (input_required) instead of refusing or waiting for an approver.
        let mut capabilities = ClientCapabilities::default();
        if at_terminal() {
            capabilities.elicitation = Some(
                rmcp::model::ElicitationCapability::new().with_form(rmcp::model::FormElicitationCapability::new()),
            );
        }
        ClientConfig::new(capabilities, Implementation::new("sshwarden-call", env!("CARGO_PKG_VERSION")))
    }

    /// A server on an `initialize`-era protocol asks with `elicitation/create`.
    async fn create_elicitation(
        &self,
        request: rmcp::model::ElicitRequestParams,
        _: rmcp::service::RequestContext<RoleClient>,
    ) -> Result<rmcp::model::ElicitResult, rmcp::ErrorData> {
        use rmcp::model::{ElicitRequestParams, ElicitResult, ElicitationAction};
        let yes = match request {
            ElicitRequestParams::FormElicitationParams { message, .. } if at_terminal() => {
                ask_at_terminal(message).await
            }
            _ => false,
        };
        Ok(ElicitResult::new(if yes { ElicitationAction::Accept } else { ElicitationAction::Decline }))
    }

    async fn on_progress(&self, p: ProgressNotificationParam, _: NotificationContext<RoleClient>) {
        eprintln!("progress: {}", p.message.unwrap_or_else(|| p.progress.to_string()));
    }
}

/// `key=value` pairs typed by the tool's input schema (so `command=true` stays a string and
/// `timeout_seconds=5` is a number), merged over `--json`.
fn parse_args(
    json_arg: Option<String>,
    kv: &[String],
    schema: &serde_json::Map<String, Value>,
) -> Result<serde_json::Map<String, Value>, String> {
    let mut map = match json_arg {
        Some(j) => match serde_json::from_str::<Value>(&j) {
            Ok(Value::Object(m)) => m,
            _ => return Err("--json must be a JSON object".into()),
        },
        None => serde_json::Map::new(),
    };
    let props = schema.get("properties").and_then(Value::as_object);
    for pair in kv {
        let (k, v) =
            pair.split_once('=').ok_or_else(|| format!("invalid_input: argument {pair:?} is not key=value"))?;
        // The anchor's name for a fan-out's pattern (`tag=web`), as the tool itself accepts.
        let k = if k == "tag" && props.is_some_and(|p| p.contains_key("target") && !p.contains_key("tag")) {
            "target"
        } else {
            k
        };
        let prop = props.and_then(|p| p.get(k)).ok_or_else(|| {
            let known: Vec<&String> = props.map(|p| p.keys().collect()).unwrap_or_default();
            format!("invalid_input: unknown parameter {k:?}; this tool takes: {known:?}")
        })?;
        let value = typed(k, v, prop).map_err(|e| format!("invalid_input: parameter {k}: {e}"))?;
        map.insert(k.to_owned(), value);
    }
    Ok(map)
}

/// `v` as the JSON type `prop` (a property of the input schema) declares, within its
/// `minimum`: integers stay integers (`-5`, not `-5.0`).
fn typed(k: &str, v: &str, prop: &Value) -> Result<Value, String> {
    let types = serde_json::to_string(prop).unwrap_or_default();
    let value = if types.contains("\"string\"") {
        Value::String(v.to_owned())
    } else if types.contains("\"integer\"") {
        v.parse::<i64>().map(Value::from).map_err(|_| format!("{k} must be an integer, got {v:?}"))?
    } else if types.contains("\"number\"") {
        v.parse::<f64>().map(Value::from).map_err(|_| format!("{k} must be a number, got {v:?}"))?
    } else if types.contains("\"boolean\"") {
        v.parse::<bool>().map(Value::Bool).map_err(|_| format!("{k} must be true or false, got {v:?}"))?
    } else {
        serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned()))
    };
    let minimum = prop.get("minimum").and_then(Value::as_f64).or_else(|| {
        // `Option<u64>` publishes `anyOf: [{type: integer, minimum: 0}, {type: null}]`.
        prop.get("anyOf")?.as_array()?.iter().find_map(|t| t.get("minimum").and_then(Value::as_f64))
    });
    if let (Some(min), Some(n)) = (minimum, value.as_f64())
        && n < min
    {
        return Err(format!("{v} is below its minimum {min}"));
    }
    Ok(value)
}

/// Exit code for a tool result: denied 3; failed 4 (error result, a run that did not
/// complete with exit code 0, a fan-out with failures); otherwise 0.
fn exit_code_of(r: &CallToolResult) -> u8 {
    if let Some(err) = crate::mcp::error_body(r) {
        return if matches!(err["kind"].as_str(), Some("policy_denied" | "network_denied")) {
            EXIT_DENIED
        } else {
            EXIT_FAILED
        };
    }
    if r.is_error == Some(true) {
        return EXIT_FAILED;
    }
    let s = r.structured_content.clone().unwrap_or(Value::Null);
    let run_failed = |run: &Value| match run["status"].as_str() {
        Some("completed") => run["exit_code"].as_u64() != Some(0),
        Some("queued" | "connecting" | "running") => false,
        _ => true,
    };
    // A run result (ssh_run, ssh_get_task_result) or an async start that already finished.
    let run = if s.get("exit_code").is_some() { Some(&s) } else { s.get("result").filter(|r| r.is_object()) };
    if run.is_some_and(run_failed) {
        return EXIT_FAILED;
    }
    let summary = &s["summary"];
    let count = |k: &str| summary[k].as_u64().unwrap_or(0);
    if count("denied") > 0 && count("ok") == 0 && count("failed") == 0 {
        return EXIT_DENIED;
    }
    if count("failed") > 0 || count("unreachable") > 0 || count("denied") > 0 {
        return EXIT_FAILED;
    }
    EXIT_OK
}

/// `sshwarden call`.
pub async fn call(
    args: &ConfigArgs,
    url: Option<String>,
    token_file: Option<PathBuf>,
    json_arg: Option<String>,
    tool: &str,
    kv: &[String],
) -> u8 {
    let request = CallRequest { tool: tool.to_owned(), json_arg, kv: kv.to_vec() };
    // Listening from the start: a signal that comes while connecting waits in the stream and
    // cancels the call as soon as it is sent, instead of killing us with the command running.
    let mut stop = match Stop::listen() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot listen for SIGINT/SIGTERM: {e}");
            return EXIT_ERROR;
        }
    };
    let result = match connect(args, url, token_file).await {
        Ok(conn) => {
            let r = run_call(&conn.client, request, &mut stop).await;
            // In process, closing shuts the service down: its tasks are cancelled and their
            // remote commands stopped, within SHUTDOWN_GRACE.
            conn.close().await;
            r
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(Called::Interrupted(code)) => {
            eprintln!("interrupted: the call was cancelled and its remote command stopped");
            // Everything is closed and stopped; a terminal question left unanswered blocks a
            // runtime thread that would hold the exit.
            std::process::exit(i32::from(code))
        }
        Ok(Called::Done(r)) => {
            let body = crate::mcp::error_body(&r)
                .or_else(|| r.structured_content.clone())
                .unwrap_or_else(|| json!({ "content": r.content }));
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", serde_json::to_string_pretty(&body).unwrap_or_default());
            exit_code_of(&r)
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_ERROR
        }
    }
}

struct CallRequest {
    tool: String,
    json_arg: Option<String>,
    kv: Vec<String>,
}

/// How a call ended: with the tool's result, or cancelled by a signal (the exit code).
enum Called {
    Done(CallToolResult),
    Interrupted(u8),
}

/// SIGINT and SIGTERM while a call (or a runbook run) runs: the server's listener.
pub(crate) use crate::server::Stop;

/// Whether a person can be asked here: stdin and stderr are both terminals.
pub(crate) fn at_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Shows `question` on stderr and reads one answer from stdin: `Some(true)` only for y or
/// yes; `None` when nothing could be read. The one y/N question of every terminal command.
pub(crate) fn read_yes_no(question: &str) -> Option<bool> {
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).ok()?;
    Some(matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

/// `read_yes_no` off the runtime's threads (the read blocks until the person answers).
pub(crate) async fn ask_yes_no(question: String) -> Option<bool> {
    tokio::task::spawn_blocking(move || read_yes_no(&question)).await.ok().flatten()
}

/// Shows the server's question (escaped) and reads y/N from the terminal.
pub(crate) async fn ask_at_terminal(message: String) -> bool {
    let question = format!("{}\napprove? [y/N] ", crate::policy::text::printable(&message));
    ask_yes_no(question).await.unwrap_or(false)
}

/// Asks at the terminal what an `input_required` round's elicitation asks; the answers, by
/// request key (`accept` only on y/yes).
async fn answer_at_terminal(asked: &rmcp::model::InputRequiredResult) -> rmcp::model::InputResponses {
    let mut answers = rmcp::model::InputResponses::new();
    for (key, request) in asked.input_requests.iter().flatten() {
        let message = serde_json::to_value(request)
            .ok()
            .and_then(|v| v["params"]["message"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let yes = ask_at_terminal(message).await;
        answers.insert(key.clone(), json!({ "action": if yes { "accept" } else { "decline" } }));
    }
    answers
}

async fn run_call(client: &Client, req: CallRequest, stop: &mut Stop) -> Result<Called, String> {
    let tools = client.list_all_tools().await.map_err(|e| e.to_string())?;
    let Some(tool) = tools.iter().find(|t| t.name == req.tool) else {
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        return Err(format!("unknown tool {:?}; tools: {}", req.tool, names.join(", ")));
    };
    let arguments = parse_args(req.json_arg, &req.kv, &tool.input_schema)?;
    let mut params = CallToolRequestParams::new(req.tool.clone()).with_arguments(arguments);
    params.meta = Some(RequestMetaObject::with_progress_token(ProgressToken(NumberOrString::String("call".into()))));
    // An approval question is one round: answered at the terminal, the call is made again
    // with the answer (the server checks it is this client's own question).
    for _ in 0..3 {
        match send_call(client, params.clone(), stop).await? {
            Round::Asked(asked) if at_terminal() => {
                let answers = tokio::select! {
                    a = answer_at_terminal(&asked) => a,
                    code = stop.next() => return Ok(Called::Interrupted(code)),
                };
                params.request_state = asked.request_state;
                params.input_responses = Some(answers);
            }
            Round::Asked(_) => return Err("the server asked for input this terminal cannot give".into()),
            Round::Ended(called) => return Ok(called),
        }
    }
    Err("the server kept asking for input; giving up".into())
}

/// One exchange of a call: its end, or a question for the operator.
enum Round {
    Ended(Called),
    Asked(rmcp::model::InputRequiredResult),
}

async fn send_call(client: &Client, params: CallToolRequestParams, stop: &mut Stop) -> Result<Round, String> {
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
    let handle = client
        .peer()
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .map_err(|e| e.to_string())?;
    let id = handle.id.clone();
    tokio::select! {
        r = handle.await_response() => match r.map_err(|e| e.to_string())? {
            ServerResult::CallToolResult(r) => Ok(Round::Ended(Called::Done(r))),
            ServerResult::InputRequiredResult(asked) => Ok(Round::Asked(asked)),
            other => Err(format!("unexpected answer to tools/call: {other:?}")),
        },
        code = stop.next() => {
            // notifications/cancelled: the server cancels the task behind the request (its
            // remote command is signalled TERM then KILL), as for any MCP client.
            let cancelled = CancelledNotificationParam::new(Some(id), Some(format!("sshwarden call: signal (exit {code})")));
            if let Err(e) = client.peer().notify_cancelled(cancelled).await {
                tracing::warn!("could not tell the server to cancel the call: {e}");
            }
            Ok(Round::Ended(Called::Interrupted(code)))
        }
    }
}
