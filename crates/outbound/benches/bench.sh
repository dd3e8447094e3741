#!/usr/bin/env bash
# Outbound relay benchmark, reproducible on one machine (loopback only):
#   crates/outbound/benches/bench.sh [MESSAGES=2000] [RUNS=3]
# 1. postern A relays to postern B: 10 concurrent smtplib submissions of 4 KB messages to A, which
#    relays them (static route, opportunistic STARTTLS, DKIM signing) to B, which delivers into a
#    Maildir. Throughput is end to end (first submission to last file in B's Maildir).
# 2. postern A relays to Postfix's smtp-sink (scripts/start-smtp-sink.sh), isolating the client's
#    cost. Throughput is until A's queue is empty. Skipped, saying so, when smtp-sink is not
#    installed (Debian package postfix).
# Prints each run and the median; CPU seconds of A (and B) during the run. Needs a release build.
set -euo pipefail
cd "$(dirname "$0")/../../.."
. scripts/bench-lib.sh
N=${1:-2000} RUNS=${2:-3} CONC=${CONC:-10} SIZE=${SIZE:-4096}
BIN=target/release/postern
[ -x "$BIN" ] || cargo build --release -p postern
LOAD=crates/outbound/benches/load.py
W=$(mktemp -d /tmp/postern-obench.XXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  scripts/start-smtp-sink.sh --stop "$W/sink" || true
  rm -rf "$W"
}
trap cleanup EXIT

conf() { # NAME SMTP_PORT ROUTE
  cat > "$W/$1.toml" <<TOML
hostname = "$1.bench.test"
data_dir = "$W/$1"
[limits]
max_connections = 5000
max_connections_per_ip = 5000
[smtp]
max_recipients = 1000
[queue]
concurrency = 64
[outbound]
max_connections_per_host = 10
[outbound.routes]
"b.test" = "$3"
[listen]
smtp = ["127.0.0.1:$2"]
submission = []
submissions = []
imap = []
imaps = []
pop3 = []
pop3s = []
TOML
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

PA=$(free_port) PB=$(free_port) SINK=$(free_port)
conf b "$PB" "127.0.0.1:1"
"$BIN" --config "$W/b.toml" domain add b.test >/dev/null 2>&1
echo pass | "$BIN" --config "$W/b.toml" user add bob@b.test >/dev/null 2>&1
conf a "$PA" "127.0.0.1:$PB"
"$BIN" --config "$W/a.toml" domain add a.test >/dev/null 2>&1
"$BIN" --config "$W/a.toml" dkim generate a.test >/dev/null 2>&1
POSTERN_LOG=warn "$BIN" --config "$W/b.toml" serve 2>"$W/b.log" & PB_PID=$!; PIDS+=($PB_PID)
POSTERN_LOG=warn "$BIN" --config "$W/a.toml" serve 2>"$W/a.log" & PA_PID=$!; PIDS+=($PA_PID)
sleep 1.5

echo "== postern A -> postern B: $N messages x $SIZE B, $CONC concurrent submissions, $RUNS runs"
echo "   (cpu_s: A then B)"
: > "$W/r1"
for r in $(seq "$RUNS"); do
  line=$(python3 "$LOAD" "$PA" "$N" "$CONC" "$SIZE" maildir "$W/b/mail/b.test/bob" "$PA_PID" "$PB_PID")
  echo "   run $r: $line"; echo "$line" | awk '{print $1}' >> "$W/r1"
done
echo "   median: $(median < "$W/r1") msg/s"

if have_peer smtp-sink postfix "postern A -> smtp-sink"; then
  scripts/start-smtp-sink.sh "$W/sink" "$SINK" >/dev/null
  kill "$PA_PID"; wait "$PA_PID" 2>/dev/null || true
  conf a "$PA" "127.0.0.1:$SINK"
  POSTERN_LOG=warn "$BIN" --config "$W/a.toml" serve 2>"$W/a2.log" & PA_PID=$!; PIDS+=($PA_PID)
  sleep 1.5
  echo "== postern A -> smtp-sink: $N messages x $SIZE B, $CONC concurrent submissions, $RUNS runs"
  echo "   (cpu_s: A)"
  : > "$W/r2"
  for r in $(seq "$RUNS"); do
    line=$(python3 "$LOAD" "$PA" "$N" "$CONC" "$SIZE" spool "$W/a/spool/q" "$PA_PID")
    echo "   run $r: $line"; echo "$line" | awk '{print $1}' >> "$W/r2"
  done
  echo "   median: $(median < "$W/r2") msg/s"
  scripts/start-smtp-sink.sh --stop "$W/sink"
fi
