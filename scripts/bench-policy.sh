#!/usr/bin/env bash
# Message authentication cost on the MX: accept rate with [policy] SPF + DKIM + DMARC + one DNSBL
# (+ ARC, iprev) on versus off, same client as scripts/bench-smtp.sh (Postfix's smtp-source, else
# scripts/smtp-load.py), the same DKIM-signed (RSA-2048, dkimpy) 4 KB message every time.
#   scripts/bench-policy.sh [MESSAGES=2000] [SESSIONS=10] [ROUNDS=3]
#   scripts/bench-policy.sh --vs-postfix [MESSAGES=2000] [SESSIONS=10] [ROUNDS=3]   (scripts/bench-policy-postfix.sh)
# dnsmasq (Debian: dnsmasq-base) answers on loopback: SPF, the DKIM key and DMARC p=reject of
# client.test, with a TTL of 300 s as real records have (so the resolver caches them). The
# client connects from 127.0.0.1, which the config takes out of [smtp] trusted_networks so the
# checks run. Prints per-round accepted/delivered msgs/s, the
# medians, and on/off. Needs python3-dkim and openssl. NO_BUILD=1, POSTERN_BIN as bench-smtp.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
# --vs-postfix: the same checks in postern against Postfix with opendkim, opendmarc and policyd-spf.
[ "${1:-}" != --vs-postfix ] || { shift; exec scripts/bench-policy-postfix.sh "$@"; }
. scripts/bench-lib.sh
MSGS=${1:-2000} SESS=${2:-10} ROUNDS=${3:-3}
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3
have_peer dnsmasq dnsmasq-base "the policy bench (a DNS server for the checks)" || exit 1

[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p postern
BIN=${POSTERN_BIN:-$PWD/target/release/postern}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

policy_fixture "$WORK" "$PY"

DNS_PORT=$(free_port)
dnsmasq --keep-in-foreground --no-resolv --no-hosts --listen-address=127.0.0.1 --bind-interfaces \
  --user=root --cache-size=0 --local-ttl=300 --neg-ttl=300 --port="$DNS_PORT" --pid-file="$WORK/dnsmasq.pid" \
  --conf-file="$WORK/dnsmasq.conf" 2>"$WORK/dnsmasq.log" &
PIDS+=($!)

if have_peer smtp-source postfix smtp-source >/dev/null; then CLIENT=smtp-source; else
  CLIENT=smtp-load.py; echo "client: scripts/smtp-load.py (smtp-source not installed: apt-get install postfix)"
fi
count() { find "$1/new" "$1/cur" -type f 2>/dev/null | wc -l; }
# postern's CPU (user + system, every thread, in clock ticks): steadier than msgs/s on a busy machine.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }

bench() { # MODE(true|false) -> rounds into $WORK/MODE
  local mode=$1 port data pid
  port=$(free_port); data=$WORK/data-$mode
  cat > "$WORK/$mode.toml" <<TOML
hostname = "bench.test"
data_dir = "$data"
[listen]
smtp = ["127.0.0.1:$port"]
submission = []
submissions = []
imap = []
imaps = []
pop3 = []
pop3s = []
[smtp]
max_commands = 100000
trusted_networks = ["192.0.2.0/24"]
[dns]
nameservers = ["127.0.0.1:$DNS_PORT"]
[policy]
enabled = $mode
dnsbl = ["bl.test"]         # one DNS block list (issue #17's bar); dnsmasq lists nobody
TOML
  "$BIN" -c "$WORK/$mode.toml" domain add peers.test >/dev/null 2>&1
  echo pw | "$BIN" -c "$WORK/$mode.toml" user add bench@peers.test >/dev/null 2>&1
  POSTERN_LOG=warn "$BIN" -c "$WORK/$mode.toml" serve 2>"$WORK/serve-$mode.log" &
  pid=$!; PIDS+=("$pid")
  wait_port "$port"
  local box=$data/mail/peers.test/bench
  : > "$WORK/$mode"
  for r in $(seq "$ROUNDS"); do
    local before t0 t1 t2 got c0
    before=$(count "$box"); t0=$(date +%s.%N); c0=$(cpu "$pid")
    if [ "$CLIENT" = smtp-source ]; then
      smtp-source -s "$SESS" -m "$MSGS" -F "$WORK/msg" -f bench@client.test -t bench@peers.test \
        -M client.test "127.0.0.1:$port" >/dev/null
    else
      "$PY" scripts/smtp-load.py "127.0.0.1:$port" "$MSGS" "$SESS" --to bench@peers.test >/dev/null
    fi
    t1=$(date +%s.%N)
    for _ in $(seq 3000); do [ "$(count "$box")" -ge $((before + MSGS)) ] && break; sleep 0.1; done
    t2=$(date +%s.%N); got=$(( $(count "$box") - before ))
    awk -v n="$MSGS" -v g="$got" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {printf "%.1f %.1f\n", n/(b-a), g/(c-a)}' >> "$WORK/$mode"
    awk -v t="$(( $(cpu "$pid") - c0 ))" -v hz="$(getconf CLK_TCK)" -v n="$MSGS" 'BEGIN {printf "%.1f\n", t / hz * 1000000 / n}' >> "$WORK/$mode.cpu"
    echo "policy $mode, round $r: accepted/delivered $(tail -1 "$WORK/$mode") msgs/s, CPU $(tail -1 "$WORK/$mode.cpu") µs/msg"
  done
  local one; one=$(find "$box/new" "$box/cur" -type f -print -quit)
  echo "policy $mode: $( (grep -m1 -A6 '^Authentication-Results' "$one" || echo 'no Authentication-Results') | tr -d '\r\t' | tr '\n' ' ' | cut -c1-220)"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

bench true
bench false
on=$(cut -d' ' -f1 "$WORK/true" | median); off=$(cut -d' ' -f1 "$WORK/false" | median)
don=$(cut -d' ' -f2 "$WORK/true" | median); doff=$(cut -d' ' -f2 "$WORK/false" | median)
echo "median accepted:  checks on $on msgs/s, off $off msgs/s, on/off $(awk -v a="$on" -v b="$off" 'BEGIN{printf "%.2f", a/b}')"
echo "median CPU per message (receive, check, queue, deliver): on $(median < "$WORK/true.cpu") µs, off $(median < "$WORK/false.cpu") µs"
echo "median delivered: checks on $don msgs/s, off $doff msgs/s, on/off $(awk -v a="$don" -v b="$doff" 'BEGIN{printf "%.2f", a/b}')"
