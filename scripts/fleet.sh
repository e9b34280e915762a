#!/usr/bin/env bash
# scripts/fleet.sh - local OpenSSH hosts on loopback for the demo (the Rust tests carry their
# own fixture in tests/it/support/sshd.rs).
#
#   scripts/fleet.sh up DIR [N]   start N (default 3) sshd on 127.0.7.1..N:24022, write a config
#   scripts/fleet.sh down DIR     stop them
#
# Writes DIR/config/{servers,credentials,policy}.yml, DIR/keys/{id_ed25519,known_hosts}.
# Logs in as the dedicated user `swdemo` (clean home). Needs root and openssh-server.
set -euo pipefail
cmd="${1:-}"; DIR="$(realpath -m "${2:-/tmp/sshwarden-demo}")"; N="${3:-3}"
NET=127.0.7; PORT=24022; USER_NAME=swdemo; SSHD=/usr/sbin/sshd

down() {
  for pidf in "$DIR"/hosts/*/sshd.pid; do
    [[ -s "$pidf" ]] && kill "$(cat "$pidf")" 2>/dev/null || true
    rm -f "$pidf"
  done
}

up() {
  [[ $EUID -eq 0 ]] || { echo "fleet: run as root" >&2; exit 1; }
  [[ -x $SSHD ]] || { echo "fleet: sshd missing: apt-get install -y openssh-server" >&2; exit 1; }
  down
  mkdir -p "$DIR"/{config,keys,secrets,hosts} /run/sshd
  chmod 0755 "$DIR"
  id "$USER_NAME" >/dev/null 2>&1 || useradd -m -s /bin/bash "$USER_NAME"
  usermod -p '*' "$USER_NAME"
  [[ -f $DIR/keys/id_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C sshwarden-demo -f "$DIR/keys/id_ed25519"
  cp "$DIR/keys/id_ed25519.pub" "$DIR/authorized_keys"; chmod 0644 "$DIR/authorized_keys"
  : > "$DIR/keys/known_hosts"
  {
    echo "hosts:"
  } > "$DIR/config/servers.yml"
  for i in $(seq 1 "$N"); do
    local h="$DIR/hosts/h$i" addr="$NET.$i" alias tags
    mkdir -p "$h"
    [[ -f $h/host_key ]] || ssh-keygen -q -t ed25519 -N '' -C "h$i" -f "$h/host_key"
    cat > "$h/sshd_config" <<CFG
ListenAddress $addr:$PORT
HostKey $h/host_key
PidFile $h/sshd.pid
AuthorizedKeysFile $DIR/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowUsers $USER_NAME
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
MaxSessions 10
MaxStartups 100:30:200
CFG
    "$SSHD" -f "$h/sshd_config" -E "$h/sshd.log"
    read -r kt kv _ < "$h/host_key.pub"
    echo "[$addr]:$PORT $kt $kv" >> "$DIR/keys/known_hosts"
    if (( i == N )); then alias="db$i"; tags="[db, prod]"; else alias="web$i"; tags="[web, prod]"; fi
    (( i == 2 )) && tags="[web, staging]"
    printf '  - alias: %s\n    host: %s\n    port: %s\n    credentials: demo\n    tags: %s\n    description: "demo host %s"\n' "$alias" "$addr" "$PORT" "$tags" "$i" >> "$DIR/config/servers.yml"
  done
  cat > "$DIR/config/credentials.yml" <<CFG
entries:
  - name: demo
    username: $USER_NAME
    key_path: id_ed25519
CFG
  cat > "$DIR/config/policy.yml" <<'CFG'
known_hosts_path: ../keys/known_hosts
limits:
  max_seconds: 60
  task_progress_interval: 1
  task_result_ttl: 600
network:
  allow_cidrs: ["127.0.0.0/8"]
rules:
  - id: diagnostics
    action: allow
    simple_binaries: [uptime, hostname, whoami, id, date, df, free, uname, cat, head, tail, wc, sleep, echo, seq, ls, ps]
  - id: no-secrets
    action: deny
    commands: ["cat /etc/shadow*", "* /root/*"]
audit:
  path: ../audit.jsonl
CFG
  for i in $(seq 1 "$N"); do
    for _ in $(seq 100); do
      [[ -s $DIR/hosts/h$i/sshd.pid ]] && (exec 3<>"/dev/tcp/$NET.$i/$PORT") 2>/dev/null && break
      sleep 0.05
    done
    [[ -s $DIR/hosts/h$i/sshd.pid ]] || { echo "fleet: sshd h$i did not start (address in use?):" >&2; cat "$DIR/hosts/h$i/sshd.log" >&2; exit 1; }
  done
  echo "fleet: $N sshd up on $NET.1-$N:$PORT, config in $DIR/config"
}

case "$cmd" in
  up) up ;;
  down) down ;;
  *) sed -n '2,9p' "$0"; exit 2 ;;
esac
