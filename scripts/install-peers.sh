#!/usr/bin/env bash
# Install the real peers the integration tests talk to (see docs/testing.md).
# Runs apt only when we are root and a peer binary is missing; otherwise it
# says what is missing and leaves the decision to the tests (skip, or fail
# under PYFIX_REQUIRE_PEERS=1).
set -euo pipefail

# tlsrpt-collectd (PyPI tlsrpt-reporter), the TLSRPT datagram receiver: in a
# virtualenv of its own under .peers/, never among pyfix_smtp's dependencies.
TLSRPT_VENV="$(cd "$(dirname "$0")/.." && pwd)/.peers/tlsrpt-venv"
if [ ! -x "$TLSRPT_VENV/bin/tlsrpt-collectd" ]; then
  echo "install-peers: installing tlsrpt-reporter into $TLSRPT_VENV"
  python3 -m venv "$TLSRPT_VENV" && "$TLSRPT_VENV/bin/pip" install -q tlsrpt-reporter \
    || echo "install-peers: tlsrpt-reporter could not be installed" >&2
fi

need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }
for bin in postfix smtp-sink smtp-source dovecot unbound nsd ldns-signzone dig openssl; do
  have "$bin" || need+=("$bin")
done
if [ ${#need[@]} -eq 0 ]; then
  echo "install-peers: all peers present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-peers: missing ${need[*]}; not root or no apt-get, skipping install" >&2
  exit 0
fi
echo "install-peers: installing for ${need[*]}"
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
# Stop package scripts from starting daemons: the tests run private instances.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq -o DPkg::Lock::Timeout=600
apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends \
  postfix dovecot-core dovecot-lmtpd unbound nsd ldnsutils bind9-dnsutils openssl >/dev/null
echo "install-peers: done"
