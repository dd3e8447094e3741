#!/usr/bin/env bash
# Runs every test of postern. The end-to-end tests drive real, independent clients; this script first
# installs the ones that are missing (Debian packages, needs root or sudo), then runs the cargo tests.
set -euo pipefail
cd "$(dirname "$0")"

# command -> Debian package providing it
declare -A clients=(
  [python3]=python3
  [swaks]=swaks
  [curl]=curl
  [mbsync]=isync
  [fetchmail]=fetchmail
  [dovecot]=dovecot-imapd
)

missing=()
for cmd in "${!clients[@]}"; do
  PATH=$PATH:/usr/sbin:/sbin command -v "$cmd" >/dev/null 2>&1 || missing+=("${clients[$cmd]}")
done
if ((${#missing[@]})); then
  echo "test.sh: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  # Package scripts must not start system daemons (dovecot-core would start a Dovecot on 143):
  # the tests start their own, on ports they pick.
  prc=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    prc=1
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  [ -z "$prc" ] || $sudo rm -f /usr/sbin/policy-rc.d
fi

exec cargo test --workspace --locked "$@"
