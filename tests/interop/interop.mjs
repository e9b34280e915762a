// Drives the sshwarden binary with the official TypeScript MCP SDK (@modelcontextprotocol/sdk,
// the library Claude Code, VS Code and Cursor build on), which validates structuredContent
// against a tool's outputSchema, error results included.
//
// usage: node interop.mjs stdio BIN CONFIG_DIR ALIAS
//        node interop.mjs http URL TOKEN ALIAS
//
// Exercises: tools/list, ssh_run with progress, a denial read as an error result with its
// reason and hint, an unknown alias, ssh_run_async + ssh_get_task_output + ssh_cancel, an
// aborted request (AbortController) stopping the remote command, resources/list, and over
// HTTP a wrong bearer token refused. Prints one JSON line; exits non-zero on any mismatch.
import { execFileSync } from "node:child_process";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [kind, where, secret, alias] = process.argv.slice(2);
const REMOTE_USER = process.env.SSHWARDEN_REMOTE_USER ?? "swtest";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function check(cond, what) {
  if (!cond) {
    console.error(`interop (typescript sdk): ${what}`);
    process.exit(1);
  }
}

function remoteAlive(marker) {
  try {
    return execFileSync("pgrep", ["-u", REMOTE_USER, "-f", marker]).toString().trim() !== "";
  } catch {
    return false;
  }
}

async function waitFor(cond, ms) {
  for (let waited = 0; waited < ms; waited += 50) {
    if (cond()) return true;
    await sleep(50);
  }
  return cond();
}

/** The {kind, message, hint} object an error result carries as JSON text. */
function errorBody(result) {
  check(result.isError === true, `not an error result: ${JSON.stringify(result)}`);
  check(result.structuredContent === undefined, `error result with structuredContent: ${JSON.stringify(result)}`);
  for (const block of result.content ?? []) {
    try {
      const body = JSON.parse(block.text ?? "");
      if (body && typeof body === "object" && "kind" in body) return body;
    } catch {
      // not the JSON block
    }
  }
  return {};
}

function transport(token) {
  if (kind === "stdio") {
    return new StdioClientTransport({ command: where, args: ["serve", "--config-dir", secret], stderr: "ignore" });
  }
  return new StreamableHTTPClientTransport(new URL(where), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
}

async function exercise(client) {
  const seen = {};
  const { tools } = await client.listTools();
  const names = new Set(tools.map((t) => t.name));
  for (const n of ["ssh_run", "ssh_run_async", "ssh_get_task_output", "ssh_cancel"]) check(names.has(n), `tools: ${[...names]}`);
  seen.tools = names.size;

  const progress = [];
  let r = await client.callTool({ name: "ssh_run", arguments: { alias, command: "sleep 1.5; echo hi" } }, undefined, {
    onprogress: (p) => progress.push(p),
  });
  check(!r.isError && r.structuredContent?.stdout === "hi\n" && r.structuredContent?.exit_code === 0, `ssh_run: ${JSON.stringify(r)}`);
  check(progress.length >= 1, "no progress notifications");
  seen.progress = progress.length;

  r = await client.callTool({ name: "ssh_run", arguments: { alias, command: "reboot now" } });
  const denial = errorBody(r);
  check(denial.kind === "policy_denied" && denial.reason && denial.hint, `denial: ${JSON.stringify(r)}`);
  seen.denial = denial.reason;

  r = await client.callTool({ name: "ssh_run", arguments: { alias: "no-such-host", command: "true" } });
  check(errorBody(r).kind === "unknown_host", `unknown alias: ${JSON.stringify(r)}`);

  r = await client.callTool({ name: "ssh_run_async", arguments: { alias, command: "echo a; echo b >&2" } });
  let tid = r.structuredContent?.task_id;
  check(tid, `async: ${JSON.stringify(r)}`);
  let state;
  for (let i = 0; i < 100 && state !== "completed"; i++) {
    state = (await client.callTool({ name: "ssh_get_task_status", arguments: { task_id: tid } })).structuredContent?.state;
    if (state !== "completed") await sleep(50);
  }
  const out = await client.callTool({ name: "ssh_get_task_output", arguments: { task_id: tid, stream: "stdout" } });
  check(out.structuredContent?.data === "a\n" && out.structuredContent?.eof === true, `output: ${JSON.stringify(out)}`);

  let marker = `314.${String(Date.now() % 1000000).padStart(6, "0")}`;
  r = await client.callTool({ name: "ssh_run_async", arguments: { alias, command: `sleep ${marker}` } });
  tid = r.structuredContent?.task_id;
  check(await waitFor(() => remoteAlive(marker), 5000), "async command never started");
  const c = await client.callTool({ name: "ssh_cancel", arguments: { task_id: tid } });
  check(c.structuredContent?.cancelled === true, `cancel: ${JSON.stringify(c)}`);
  check(await waitFor(() => !remoteAlive(marker), 4000), "remote command survived ssh_cancel");

  marker = `315.${String(Date.now() % 1000000).padStart(6, "0")}`;
  const abort = new AbortController();
  const aborted = client
    .callTool({ name: "ssh_run", arguments: { alias, command: `sleep ${marker} | cat` } }, undefined, {
      signal: abort.signal,
    })
    .then(
      () => "finished",
      () => "aborted",
    );
  check(await waitFor(() => remoteAlive(marker), 5000), "sync command never started");
  abort.abort();
  check((await aborted) === "aborted", "the aborted call did not reject");
  check(await waitFor(() => !remoteAlive(marker), 4000), "remote command survived the aborted request");

  const { resources } = await client.listResources();
  check(resources.some((res) => res.uri.startsWith("ssh://")), `resources: ${JSON.stringify(resources)}`);
  seen.resources = resources.length;
  return seen;
}

async function main() {
  // ajv reports non-standard schema formats through console.warn; count them.
  const warnings = [];
  const warn = console.warn;
  console.warn = (...args) => {
    warnings.push(args.join(" "));
    warn(...args);
  };
  const client = new Client({ name: "sshwarden-interop", version: "0" });
  await client.connect(transport(secret));
  const seen = await exercise(client);
  seen.server = client.getServerVersion()?.name;
  await client.close();
  if (kind === "http") {
    const intruder = new Client({ name: "intruder", version: "0" });
    const refused = await intruder.connect(transport("wrong-token-0123456789abcdef")).then(
      () => false,
      (e) => /401|nauthori/i.test(String(e)),
    );
    check(refused, "a wrong bearer token was not refused with 401");
    seen.wrong_token_refused = true;
  }
  check(!warnings.some((w) => /unknown format/i.test(w)), `schema warnings: ${warnings.join("; ")}`);
  seen.schema_warnings = warnings.length;
  seen.ok = true;
  console.log(JSON.stringify(seen));
  process.exit(0);
}

main().catch((e) => {
  console.error(`interop (typescript sdk): ${e?.stack ?? e}`);
  process.exit(1);
});
