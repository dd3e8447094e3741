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
  [/usr/lib/dovecot/pop3]=dovecot-pop3d
  [openssl]=openssl
  [sieve-connect]=sieve-connect
  [sieve-test]=dovecot-sieve
  [postconf]=postfix
  [bsd-mailx]=bsd-mailx
  [mutt]=mutt
  [dnsmasq]=dnsmasq-base
  [dknewkey]=python3-dkim
  [unbound]=unbound
  [ldns-signzone]=ldnsutils
  [xmllint]=libxml2-utils
)

missing=()
for cmd in "${!clients[@]}"; do
  PATH=$PATH:/usr/sbin:/sbin command -v "$cmd" >/dev/null 2>&1 || missing+=("${clients[$cmd]}")
done
# Debian's Python modules the policy tests import with /usr/bin/python3 (pyspf, dnspython).
for pkg in python3-spf python3-dnspython; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
if ((${#missing[@]})); then
  echo "test.sh: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  # Package scripts must not start system daemons (dovecot-core would start a Dovecot on 143):
  # the tests start their own, on ports they pick.
  prc=""
  # postfix: 'No configuration', so the package never sets up a system MTA on port 25 (the LMTP
  # test starts a private instance of its own).
  echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    prc=1
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  [ -z "$prc" ] || $sudo rm -f /usr/sbin/policy-rc.d
fi

# Python modules the end-to-end tests import (tests/scram.rs drives SCRAM with scramp), installed for
# the python3 the tests run. --break-system-packages is for Debian's python3 (PEP 668); the modules are
# test-only and touch nothing of Debian's.
py_modules=(scramp)
for mod in "${py_modules[@]}"; do
  if ! python3 -c "import $mod" 2>/dev/null; then
    echo "test.sh: installing Python module $mod" >&2
    if ! python3 -m pip --version >/dev/null 2>&1; then
      sudo=""
      [ "$(id -u)" = 0 ] || sudo="sudo"
      $sudo apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-pip
    fi
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
      --break-system-packages "$mod"
  fi
done

exec cargo test --workspace --locked "$@"
