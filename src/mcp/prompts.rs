//! The six guidance prompts of mcp-ssh-orchestrator, with its bugs fixed (top-level
//! `hosts:`/`entries:` keys, both rule generations, our deny-wins semantics).
//!
//! Owns: prompt text. Never calls the service.

use rmcp::model::{GetPromptResult, PromptMessage, Role};
use rmcp::{ErrorData as McpError, prompt, prompt_router};

use super::SshWarden;

fn text(description: &str, body: &str) -> Result<GetPromptResult, McpError> {
    Ok(GetPromptResult::new(vec![PromptMessage::new_text(Role::User, body.to_owned())])
        .with_description(description.to_owned()))
}

#[prompt_router(vis = "pub(super)")]
impl SshWarden {
    #[prompt(name = "ssh_orchestrator_usage", description = "How to use sshwarden's tools safely")]
    async fn ssh_orchestrator_usage(&self) -> Result<GetPromptResult, McpError> {
        text(
            "How to use sshwarden",
            "You can run shell commands on inventory hosts through sshwarden.\n1. ssh_list_hosts to see hosts and tags; never guess addresses.\n2. ssh_plan {target, command} before running anything you are unsure of: it shows the policy decision, the rule and the reason, and opens no connection.\n3. ssh_run for short commands (you get progress and can cancel); ssh_run_async for long ones, then ssh_get_task_status / ssh_get_task_output (pages by offset, works while running) / ssh_cancel.\n4. ssh_run_on_tag to fan out over a host pattern (`web`, `web:&prod`, `all:!db1`).\n5. Results are kept for task_result_ttl seconds; ssh_ack_task frees them early.\nNever try to work around a denial.",
        )
    }

    #[prompt(name = "ssh_policy_denied_guidance", description = "What to do when the policy denies a command")]
    async fn ssh_policy_denied_guidance(&self) -> Result<GetPromptResult, McpError> {
        text(
            "Policy denial",
            "A command was denied by policy. Do not retry variants, wrappers (sh -c, env, sudo, busybox), encodings or substitutions to get around it: every simple command in the string is checked, and any matching deny rule wins.\nExplain to the user which rule denied it and why (the `reason` and `rule` fields), then ask whether the policy should change. If they want a change, propose the smallest rule that allows exactly what is needed, labelled as a suggestion for a human to apply in policy.yml, for example:\n\nrules:\n  - id: allow-nginx-status\n    action: allow\n    tags: [web]\n    binary: systemctl\n    arg_prefix: [status, nginx]\n    allow_extra_args: false\n\nPatterns in `commands:` are fnmatch globs over one simple command, not regexes. After a human applies it, call ssh_reload_config. Never claim you applied it yourself.",
        )
    }

    #[prompt(name = "ssh_network_denied_guidance", description = "What to do when the network precheck denies a host")]
    async fn ssh_network_denied_guidance(&self) -> Result<GetPromptResult, McpError> {
        text(
            "Network denial",
            "The host's resolved address is outside policy.yml `network` (allow_ips/allow_cidrs), inside a block entry, or its name did not resolve. Blocks always win over allows. Tell the user the address and list from the message. If the host should be reachable, suggest the narrowest CIDR that contains it (a /32 for one host, never 0.0.0.0/0) as a change for a human to make, then ssh_reload_config.",
        )
    }

    #[prompt(name = "ssh_missing_host_guidance", description = "What to do when a host alias is unknown")]
    async fn ssh_missing_host_guidance(&self) -> Result<GetPromptResult, McpError> {
        text(
            "Unknown host",
            "The alias is not in servers.yml. Call ssh_list_hosts and pick an existing alias. If the host really is missing, propose an entry for a human to add under the top-level `hosts:` list:\n\nhosts:\n  - alias: web3\n    host: 10.0.0.13\n    port: 22\n    credentials: deploy\n    tags: [web, prod]\n\nIts host key must also be added to known_hosts after the operator verified it (ssh-keyscan and compare fingerprints); sshwarden never adds keys on its own.",
        )
    }

    #[prompt(
        name = "ssh_missing_credentials_guidance",
        description = "What to do when a host has no usable credentials"
    )]
    async fn ssh_missing_credentials_guidance(&self) -> Result<GetPromptResult, McpError> {
        text(
            "Missing credentials",
            "The host's credentials entry is missing or cannot authenticate. Propose an entry for a human to add under the top-level `entries:` list of credentials.yml, preferring a key with a passphrase secret or a password secret over inline values:\n\nentries:\n  - name: deploy\n    username: deploy\n    key_path: id_ed25519\n    key_passphrase_secret: deploy_key_passphrase\n\nSecrets come from the env var MCP_SSH_SECRET_<NAME> or the file <secrets-dir>/<name>. Never ask the user to paste a secret into the chat.",
        )
    }

    #[prompt(name = "ssh_config_change_workflow", description = "How to propose configuration changes")]
    async fn ssh_config_change_workflow(&self) -> Result<GetPromptResult, McpError> {
        text(
            "Config change workflow",
            "1. Explain what is blocked and why (from the tool result).\n2. Propose a minimal, least-privilege YAML change, clearly labelled as a suggestion.\n3. A human edits servers.yml / credentials.yml / policy.yml (top-level keys `hosts:`, `entries:`, `rules:`).\n4. They run `sshwarden check` or you call ssh_reload_config: it validates everything and keeps the old config on any error, listing each error with file:line:column.\n5. Verify with ssh_plan before running anything.",
        )
    }
}
