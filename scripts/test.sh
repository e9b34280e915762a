#!/usr/bin/env bash
# The test command (README, .ci/run): installs what the tests need, then fmt, clippy and
# every test. Fails on the first failure. Run as root (the sshd fixture creates a user).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v sshd >/dev/null 2>&1 || [[ -x /usr/sbin/sshd ]] || need+=(openssh-server)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
command -v pgrep >/dev/null 2>&1 || need+=(procps)
[[ -x /usr/sbin/rsyslogd ]] || need+=(rsyslog)
[[ -e /usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so || -n "$(find /usr/lib -name lmnsd_gtls.so 2>/dev/null | head -1)" ]] || need+=(rsyslog-gnutls)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
[[ -x /usr/bin/sudo ]] || need+=(sudo)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || need+=(prometheus)
# The approver page is driven in headless Chromium through Selenium (tests/it/approver_ui.rs).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
if ((${#need[@]})); then
  echo "test: installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

echo "test: cargo fmt --check"
cargo fmt --all -- --check
echo "test: cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings
echo "test: cargo test"
cargo test --lib --bins --tests -- --test-threads 4
# The doc tests: `service::Prepared` (admission) cannot be built outside the gate (E0451).
echo "test: cargo test --doc"
cargo test --doc
if [[ "${SSHWARDEN_DOCKER:-1}" == 1 ]]; then
  echo "test: docker-compose harness"
  bash scripts/docker-test.sh
fi
echo "test: all passed"
