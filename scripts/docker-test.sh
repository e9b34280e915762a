#!/usr/bin/env bash
# The docker-compose harness's own test: builds an sshd target image without a registry
# (debootstrap + docker import), starts three targets with host networking on 127.0.5.1-3,
# and drives sshwarden against them (fan-out, async + cancel, denial). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
WORK="$(mktemp -d /tmp/sshwarden-docker.XXXXXX)"
BIN="$ROOT/target/debug/sshwarden"
STARTED_DOCKERD=""

need=()
command -v docker >/dev/null 2>&1 || need+=(docker.io)
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if ((${#need[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  dockerd >"$WORK/dockerd.log" 2>&1 &
  STARTED_DOCKERD=$!
  for _ in $(seq 100); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
  docker info >/dev/null 2>&1 || { echo "docker-test: dockerd did not start"; cat "$WORK/dockerd.log"; exit 1; }
fi

compose() { (cd docker && docker-compose -p sshwarden-test -f docker-compose.yml -f docker-compose.test.yml "$@"); }
cleanup() {
  compose down -t 2 >/dev/null 2>&1 || true
  rm -rf docker/keys "$WORK"
  [[ -n $STARTED_DOCKERD ]] && kill "$STARTED_DOCKERD" 2>/dev/null || true
}
trap cleanup EXIT

if ! docker image inspect sshwarden-base:bookworm >/dev/null 2>&1; then
  MIRROR="$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)"
  echo "docker-test: building base image with debootstrap from ${MIRROR:-http://deb.debian.org/debian}"
  debootstrap --variant=minbase --include=openssh-server bookworm "$WORK/rootfs" "${MIRROR:-http://deb.debian.org/debian}" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log"; exit 1; }
  tar -C "$WORK/rootfs" -c . | docker import - sshwarden-base:bookworm >/dev/null
fi

[[ -x $BIN ]] || cargo build --quiet
mkdir -p "$WORK"/{config,keys,secrets}
ssh-keygen -q -t ed25519 -N '' -C docker-test -f "$WORK/keys/id_ed25519"
: > "$WORK/keys/known_hosts"
echo "hosts:" > "$WORK/config/servers.yml"
for i in 1 2 3; do
  k="docker/keys/target$i"; mkdir -p "$k"
  ssh-keygen -q -t ed25519 -N '' -C "target$i" -f "$k/host_key"
  cp "$WORK/keys/id_ed25519.pub" "$k/authorized_keys"
  chmod 0600 "$k/host_key"; chmod 0644 "$k/authorized_keys"
  read -r kt kv _ < "$k/host_key.pub"
  echo "[127.0.5.$i]:24022 $kt $kv" >> "$WORK/keys/known_hosts"
  printf '  - alias: target%s\n    host: 127.0.5.%s\n    port: 24022\n    credentials: docker\n    tags: [docker]\n' "$i" "$i" >> "$WORK/config/servers.yml"
done
# target1 is the bastion for the others (ProxyJump through a container).
for i in 2 3; do
  printf '  - alias: behind%s\n    host: 127.0.5.%s\n    port: 24022\n    credentials: docker\n    tags: [behind]\n    proxy_jump: target1\n' "$i" "$i" >> "$WORK/config/servers.yml"
done
printf 'entries:\n  - name: docker\n    username: swdocker\n    key_path: id_ed25519\n' > "$WORK/config/credentials.yml"
cat > "$WORK/config/policy.yml" <<'CFG'
known_hosts_path: ../keys/known_hosts
limits: { task_progress_interval: 1, deny_substrings: [] }
network: { allow_cidrs: ["127.0.5.0/24"] }
rules:
  - { id: basics, action: allow, simple_binaries: [hostname, cat, sleep, echo, "true"] }
audit: { path: ../audit.jsonl }
CFG

compose up -d --build >"$WORK/compose.log" 2>&1 || { cat "$WORK/compose.log"; exit 1; }
for i in 1 2 3; do
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.5.$i/24022") 2>/dev/null && break; sleep 0.1; done
done

fail() { echo "docker-test: FAIL: $*"; compose logs --tail 20 || true; exit 1; }
call() { "$BIN" call --config-dir "$WORK/config" "$@" 2>/dev/null; }

out="$(call ssh_run_on_tag target=docker command='cat /etc/hostname')" || fail "fan-out exit $?: $out"
echo "$out" | grep -q '"ok": 3' || fail "fan-out did not succeed on 3 containers: $out"

out="$(call ssh_run_on_tag target=behind command='cat /etc/hostname' detail=hosts)" || fail "fan-out through the bastion container: exit $?: $out"
echo "$out" | grep -q '"ok": 2' || fail "targets behind target1 did not answer: $out"
grep -q '"via":\["target1"\]' "$WORK/audit.jsonl" || fail "audit does not name the jump host"

out="$(call ssh_run alias=target2 command='sleep 0.2; echo from-container')" || fail "ssh_run: $out"
echo "$out" | grep -q '"stdout": "from-container\\n"' || fail "ssh_run output: $out"

code=0; out="$(call ssh_run alias=target1 command='rm -rf /tmp/x')" || code=$?
[[ $code -eq 3 ]] && echo "$out" | grep -q policy_denied || fail "denial: exit $code: $out"

# A wrong host key in known_hosts must refuse the container.
sed -i '1s/ssh-ed25519 .*/ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB7cNfMKe8ygMZqvqfOdmPtTBGZ6f6XJ3hOQe5qmsYcb/' "$WORK/keys/known_hosts"
code=0; out="$(call ssh_run alias=target1 command=true)" || code=$?
[[ $code -eq 4 ]] && echo "$out" | grep -q "HOST KEY CHANGED" || fail "changed host key: exit $code: $out"

"$BIN" audit verify "$WORK/audit.jsonl" >/dev/null || fail "audit chain broken"
bash scripts/deb-test.sh
echo "docker-test: ok (3 sshd containers on 127.0.5.1-3: fan-out, through a bastion container, run, denial, changed host key, audit chain)"
