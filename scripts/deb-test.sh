#!/usr/bin/env bash
# The Debian package's test, run by scripts/docker-test.sh once its engine and the
# debootstrap base image (sshwarden-base:bookworm, no registry) are up: packages the debug
# binary (packaging/deb.sh dev), installs it with dpkg -i in a clean container with no
# network, and checks what the package promises: the binary, `sshwarden check` of the
# skeleton as the service user, the system user, modes and owners, tokens made once, the
# unit, man pages and completions; then a reinstall (the upgrade path) keeps the operator's
# edits and the tokens, and a purge removes the tokens but keeps the audit trail.
set -euo pipefail
cd "$(dirname "$0")/.."
docker image inspect sshwarden-base:bookworm >/dev/null 2>&1 \
  || { echo "deb-test: run through scripts/docker-test.sh (needs its engine and base image)"; exit 1; }
bash packaging/deb.sh dev >/dev/null 2>target/deb-build.log || { cat target/deb-build.log; exit 1; }
deb="$(ls target/debian/sshwarden_*_amd64.deb | head -1)"

docker run --rm --network none -v "$PWD/$deb:/tmp/sshwarden.deb:ro" sshwarden-base:bookworm sh -euc '
  fail() { echo "deb-test: FAIL: $*"; exit 1; }
  dpkg -i /tmp/sshwarden.deb >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; fail "dpkg -i"; }
  [ "$(command -v sshwarden)" = /usr/bin/sshwarden ] || fail "binary not in /usr/bin"
  getent passwd sshwarden | grep -q ":/var/lib/sshwarden:/usr/sbin/nologin$" || fail "system user: $(getent passwd sshwarden)"
  [ "$(stat -c "%a %U:%G" /etc/sshwarden)" = "750 root:sshwarden" ] || fail "/etc/sshwarden: $(stat -c "%a %U:%G" /etc/sshwarden)"
  for f in servers.yml credentials.yml policy.yml token approver-token metrics-token keys/known_hosts; do
    [ "$(stat -c "%a %U:%G" /etc/sshwarden/$f)" = "640 root:sshwarden" ] || fail "$f: $(stat -c "%a %U:%G" /etc/sshwarden/$f)"
  done
  [ "$(stat -c "%a %U:%G" /var/lib/sshwarden)" = "750 sshwarden:sshwarden" ] || fail "state dir"
  [ "$(wc -c < /etc/sshwarden/token)" -ge 40 ] || fail "token too short"
  [ "$(cat /etc/sshwarden/token)" != "$(cat /etc/sshwarden/metrics-token)" ] || fail "tokens are equal"
  su -s /bin/sh sshwarden -c "sshwarden check /etc/sshwarden" >/tmp/check.log 2>&1 || { cat /tmp/check.log; fail "check as the service user"; }
  grep -q "^audit: /var/lib/sshwarden/audit.jsonl" /tmp/check.log || fail "audit path: $(cat /tmp/check.log)"
  grep -q "^known_hosts: /etc/sshwarden/keys/known_hosts" /tmp/check.log || fail "known_hosts path"
  grep -q "^ExecStart=/usr/bin/sshwarden serve --config-dir /etc/sshwarden" /usr/lib/systemd/system/sshwarden.service || fail "unit"
  [ -s /usr/share/man/man1/sshwarden.1.gz ] && [ -s /usr/share/man/man1/sshwarden-run.1.gz ] || fail "man pages"
  [ -s /usr/share/bash-completion/completions/sshwarden ] || fail "bash completion"
  [ -s /usr/share/sshwarden/policies/readonly-diagnostics.yml ] || fail "policies"
  token="$(cat /etc/sshwarden/token)"
  echo "# edited by the operator" >> /etc/sshwarden/policy.yml
  echo "{\"seq\":1}" > /var/lib/sshwarden/audit.jsonl
  dpkg -i /tmp/sshwarden.deb >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; fail "reinstall"; }
  grep -q "^# edited by the operator" /etc/sshwarden/policy.yml || fail "the upgrade lost an edit of policy.yml"
  [ "$(cat /etc/sshwarden/token)" = "$token" ] || fail "the upgrade replaced the token"
  dpkg --purge sshwarden >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; fail "purge"; }
  [ ! -e /etc/sshwarden/token ] && [ ! -e /usr/bin/sshwarden ] || fail "purge left the token or the binary"
  [ -s /var/lib/sshwarden/audit.jsonl ] || fail "purge removed the audit trail"
'
echo "deb-test: ok ($(basename "$deb"): dpkg -i in a clean bookworm container, check as the service user, modes, tokens, unit, man pages, upgrade keeps edits and tokens, purge keeps the audit)"
