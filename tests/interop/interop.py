"""Drives the sshwarden binary with the official Python MCP SDK (1.x or 2.x).

usage: interop.py stdio BIN CONFIG_DIR ALIAS
       interop.py http URL TOKEN ALIAS

Exercises: list tools, ssh_run with a progress callback, ssh_run_async + output + result,
a cancel, a denial, and a client-side cancellation (notifications/cancelled) whose remote
command must be gone afterwards. Prints one JSON line with what it saw; exits non-zero on
any mismatch.
"""
import asyncio
import json
import os
import subprocess
import sys
import time

import anyio
import mcp

MAJOR = int(getattr(mcp, "__version__", "0").split(".")[0] or 0)
try:
    from importlib.metadata import version
    MAJOR = int(version("mcp").split(".")[0])
except Exception:  # noqa: BLE001
    pass


def check(cond, what):
    if not cond:
        raise SystemExit(f"interop (mcp {MAJOR}.x): {what}")


def structured(result):
    return getattr(result, "structured_content", None) or getattr(result, "structuredContent", None) or {}


def error_body(result):
    """The {kind, message, hint} object an error result carries as JSON text (no structuredContent)."""
    check(structured(result) == {}, f"error result with structuredContent: {structured(result)}")
    for block in getattr(result, "content", []) or []:
        try:
            body = json.loads(getattr(block, "text", "") or "")
        except ValueError:
            continue
        if isinstance(body, dict) and "kind" in body:
            return body
    return {}


def is_error(result):
    v = getattr(result, "is_error", None)
    return v if v is not None else getattr(result, "isError", False)


REMOTE_USER = os.environ.get("SSHWARDEN_REMOTE_USER", "swtest")


def remote_alive(marker):
    out = subprocess.run(["pgrep", "-u", REMOTE_USER, "-f", marker], capture_output=True, text=True)
    return out.stdout.strip() != ""


async def exercise(call, list_tools, alias):
    seen = {}
    tools = await list_tools()
    names = {t.name for t in tools}
    check({"ssh_run", "ssh_run_async", "ssh_get_task_output", "ssh_cancel"} <= names, f"tools: {names}")

    progress = []

    async def on_progress(p, total, message):
        progress.append((p, total, message))

    r = await call("ssh_run", {"alias": alias, "command": "sleep 1.5; echo hi"}, on_progress)
    s = structured(r)
    check(not is_error(r) and s.get("stdout") == "hi\n" and s.get("exit_code") == 0, f"ssh_run: {s}")
    check(len(progress) >= 1, f"no progress callbacks: {progress}")
    seen["progress"] = len(progress)

    r = await call("ssh_run_async", {"alias": alias, "command": "echo a; echo b >&2"}, None)
    tid = structured(r)["task_id"]
    for _ in range(100):
        st = structured(await call("ssh_get_task_status", {"task_id": tid}, None))
        if st.get("state") == "completed":
            break
        await anyio.sleep(0.05)
    out = structured(await call("ssh_get_task_output", {"task_id": tid, "stream": "stdout"}, None))
    check(out.get("data") == "a\n" and out.get("eof") is True, f"output: {out}")
    res = structured(await call("ssh_get_task_result", {"task_id": tid}, None))
    check(res.get("stderr") == "b\n" and res.get("status") == "completed", f"result: {res}")

    marker = f"312.{int(time.time() * 1000) % 1000000:06d}"
    r = await call("ssh_run_async", {"alias": alias, "command": f"sleep {marker}"}, None)
    tid = structured(r)["task_id"]
    for _ in range(100):
        if remote_alive(marker):
            break
        await anyio.sleep(0.05)
    check(remote_alive(marker), "async command never started")
    c = structured(await call("ssh_cancel", {"task_id": tid}, None))
    check(c.get("cancelled") is True, f"cancel: {c}")
    for _ in range(80):
        if not remote_alive(marker):
            break
        await anyio.sleep(0.05)
    check(not remote_alive(marker), "remote command survived ssh_cancel")

    r = await call("ssh_run", {"alias": alias, "command": "reboot now"}, None)
    check(is_error(r) and error_body(r).get("kind") == "policy_denied" and error_body(r).get("hint"), f"denial: {r}")

    if MAJOR < 2:
        # mcp 1.x never sends notifications/cancelled when a call is abandoned; ssh_cancel
        # above is the way such clients stop a command.
        seen["ok"] = True
        return seen
    marker = f"313.{int(time.time() * 1000) % 1000000:06d}"
    started = []

    async def watch(p, total, message):
        started.append(remote_alive(marker))

    with anyio.move_on_after(2.5):
        await call("ssh_run", {"alias": alias, "command": f"sleep {marker} | cat"}, watch)
    check(any(started), "sync command never seen running before the cancel")
    for _ in range(80):
        if not remote_alive(marker):
            break
        await anyio.sleep(0.05)
    check(not remote_alive(marker), "remote command survived notifications/cancelled")
    seen["ok"] = True
    return seen


async def main():
    kind = sys.argv[1]
    if MAJOR >= 2:
        if kind == "stdio":
            server = mcp.StdioServerParameters(command=sys.argv[2], args=["serve", "--config-dir", sys.argv[3]])
        else:
            import httpx2
            from mcp.client.streamable_http import streamable_http_client
            server = streamable_http_client(sys.argv[2], http_client=httpx2.AsyncClient(headers={"Authorization": f"Bearer {sys.argv[3]}"}, timeout=30))
        async with mcp.Client(server) as client:
            async def call(name, args, cb):
                return await client.call_tool(name, args, progress_callback=cb)
            seen = await exercise(call, lambda: _tools(client), sys.argv[4])
            seen["protocol"] = str(getattr(client, "protocol_version", "?"))
    else:
        from mcp import ClientSession
        if kind == "stdio":
            from mcp.client.stdio import stdio_client
            ctx = stdio_client(mcp.StdioServerParameters(command=sys.argv[2], args=["serve", "--config-dir", sys.argv[3]]))
        else:
            from mcp.client.streamable_http import streamablehttp_client
            ctx = streamablehttp_client(sys.argv[2], headers={"Authorization": f"Bearer {sys.argv[3]}"})
        async with ctx as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                init = await session.initialize()
                async def call(name, args, cb):
                    return await session.call_tool(name, args, progress_callback=cb)
                async def tools():
                    return (await session.list_tools()).tools
                seen = await exercise(call, tools, sys.argv[4])
                seen["protocol"] = str(init.protocolVersion)
    seen["mcp"] = MAJOR
    print(json.dumps(seen))


async def _tools(client):
    r = await client.list_tools()
    return r.tools


if __name__ == "__main__":
    anyio.run(main)
