#!/usr/bin/env bash
# Builds the Debian package: generated assets (man pages, shell completions, the
# /etc/sshwarden skeleton from `sshwarden init`'s starter policy), then `cargo deb`.
#   packaging/deb.sh            release build → target/debian/sshwarden_VERSION_ARCH.deb
#   packaging/deb.sh dev        package the debug binary already built (the tests do this)
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-release}"
case "$profile" in
  release) bin=target/release/sshwarden ;;
  dev) bin=target/debug/sshwarden ;;
  *) echo "usage: packaging/deb.sh [release|dev]" >&2; exit 2 ;;
esac
[[ -x $bin ]] || cargo build --profile "$profile" --bin sshwarden
command -v cargo-deb >/dev/null 2>&1 || cargo install --locked --quiet cargo-deb --version 3.8.0
command -v dpkg-shlibdeps >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dpkg-dev >/dev/null; }

assets=target/deb-assets
rm -rf "$assets"
mkdir -p "$assets"/{man,completions,etc}
"$bin" man "$assets/man" >/dev/null
gzip -9n "$assets"/man/*.1
"$bin" completions bash > "$assets/completions/sshwarden"
"$bin" completions zsh > "$assets/completions/_sshwarden"
"$bin" completions fish > "$assets/completions/sshwarden.fish"
# The skeleton is what `init` writes, with the packaged locations: keys under
# /etc/sshwarden/keys, the audit trail in the state directory the unit may write.
"$bin" init "$assets/init" --profile readonly >/dev/null 2>&1
for f in servers credentials policy; do cp "$assets/init/config/$f.yml" "$assets/etc/$f.yml"; done
sed -i -e 's|^known_hosts_path: .*|known_hosts_path: /etc/sshwarden/keys/known_hosts|' \
       -e 's|^  path: \.\./audit\.jsonl|  path: /var/lib/sshwarden/audit.jsonl|' "$assets/etc/policy.yml"
grep -q '^known_hosts_path: /etc/sshwarden/keys/known_hosts' "$assets/etc/policy.yml"
grep -q '^  path: /var/lib/sshwarden/audit.jsonl' "$assets/etc/policy.yml"

cargo deb --no-build --profile "$profile" --output target/debian/ "${@:2}"
