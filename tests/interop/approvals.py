"""Answers sshwarden's approval requests with the official Python MCP SDK (1.x: classic
`elicitation/create`; 2.x: the 2026-07-28 input-required flow, driven by `Client`).

usage: approvals.py MODE BIN CONFIG_DIR ALIAS COMMAND [FANOUT_TARGET]
MODE: approve | decline | cancel | silent (answers after the server gave up) | late (accepts after 5 s) |
      none (declares no elicitation)

Calls ssh_run ALIAS COMMAND (and, when approving, ssh_run_on_tag FANOUT_TARGET COMMAND) and
prints one JSON line: what came back and the prompts the user saw.
"""
import json
import sys

import anyio
import mcp

try:
    from importlib.metadata import version
    MAJOR = int(version("mcp").split(".")[0])
except Exception:  # noqa: BLE001
    MAJOR = 1

MODE, BIN, CONFIG, ALIAS, COMMAND = sys.argv[1:6]
FANOUT = sys.argv[6] if len(sys.argv) > 6 else None
prompts = []


async def on_elicit(context, params):
    from mcp import types
    prompts.append(getattr(params, "message", ""))
    if MODE == "silent":
        # Longer than the server waits; the server must have given up by then.
        await anyio.sleep(8)
    if MODE == "late":
        await anyio.sleep(5)
    action = {"approve": "accept", "late": "accept", "decline": "decline", "cancel": "cancel"}[MODE]
    return types.ElicitResult(action=action)


def summary(result):
    structured = getattr(result, "structured_content", None) or getattr(result, "structuredContent", None) or {}
    is_error = getattr(result, "is_error", None)
    if is_error is None:
        is_error = getattr(result, "isError", False)
    body = {}
    for block in getattr(result, "content", []) or []:
        try:
            parsed = json.loads(getattr(block, "text", "") or "")
        except ValueError:
            continue
        if isinstance(parsed, dict) and "kind" in parsed:
            body = parsed
    return {"is_error": bool(is_error), "structured": structured, "error": body}


async def main():
    callback = None if MODE == "none" else on_elicit
    server = mcp.StdioServerParameters(command=BIN, args=["serve", "--config-dir", CONFIG])
    seen = {"mcp": MAJOR}
    if MAJOR >= 2:
        async with mcp.Client(server, elicitation_callback=callback) as client:
            seen["protocol"] = str(getattr(client, "protocol_version", "?"))
            seen["run"] = summary(await client.call_tool("ssh_run", {"alias": ALIAS, "command": COMMAND}))
            if FANOUT:
                seen["fanout"] = summary(await client.call_tool("ssh_run_on_tag", {"target": FANOUT, "command": COMMAND}))
    else:
        from mcp import ClientSession
        from mcp.client.stdio import stdio_client
        async with stdio_client(server) as (read, write):
            kwargs = {} if callback is None else {"elicitation_callback": callback}
            async with ClientSession(read, write, **kwargs) as session:
                init = await session.initialize()
                seen["protocol"] = str(init.protocolVersion)
                seen["run"] = summary(await session.call_tool("ssh_run", {"alias": ALIAS, "command": COMMAND}))
                if FANOUT:
                    seen["fanout"] = summary(await session.call_tool("ssh_run_on_tag", {"target": FANOUT, "command": COMMAND}))
    seen["prompts"] = prompts
    print(json.dumps(seen))


if __name__ == "__main__":
    anyio.run(main)
