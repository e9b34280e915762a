#!/bin/sh
# Starts sshd for the harness. Host key and authorized_keys come from the /etc/sshwarden
# mount (so known_hosts can be written before the container starts); LISTEN picks the address.
set -eu
cat > /etc/ssh/sshd_config.harness <<CFG
ListenAddress ${LISTEN:-0.0.0.0}:${PORT:-22}
HostKey /etc/sshwarden/host_key
AuthorizedKeysFile /etc/sshwarden/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowUsers swdocker
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
MaxSessions 10
CFG
exec /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config.harness
