#!/usr/bin/env bash
# The IMAP stress mix (scripts/imap-stress.py: concurrent clients, every response checked against the
# protocol invariants) against postern and the reference Dovecot back to back, two ways:
#   scripts/bench-imap-stress.sh [SECONDS=30] [CLIENTS=10]
# 1. clients stay logged in; 2. LOGOUT and LOGIN again every 5 commands (login-heavy).
# Prints commands/s, latency and violations of each server and the ratio postern/Dovecot.
# Both verify the same argon2id hash at LOGIN: Dovecot gets postern's hash from directory.db.
# Clients are spread over CLIENTS/5 accounts (Dovecot allows 10 connections per user and address).
# Dovecot is started by scripts/start-dovecot.sh (installed with apt-get when missing).
# NO_BUILD=1 skips `cargo build --release`; POSTERN_BIN overrides the binary.
set -euo pipefail
export POSTERN_LOG=warn
cd "$(dirname "$0")/.."
SECS=${1:-30} CLIENTS=${2:-10}
# An IDLE lasts IDLE_MS (MIN:MAX ms); short by default so the figures measure the servers, not the
# clients' waits (the test uses the stress client's default of 50-300 ms).
IDLE_MS=${IDLE_MS:-0:5}
NUSERS=$(( (CLIENTS + 4) / 5 )); [ "$NUSERS" -ge 2 ] || NUSERS=2
[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p postern
BIN=${POSTERN_BIN:-$PWD/target/release/postern}
W=$(mktemp -d /tmp/postern-stress.XXXX)
DW=$(mktemp -d /tmp/dovecot-stress.XXXX)
chmod 755 "$DW"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P=$(port) DP=$(port)
cat > "$W/postern.toml" <<TOML
hostname = "bench.test"
data_dir = "$W/data"
[listen]
imap = ["127.0.0.1:$P"]
smtp = []
submission = []
submissions = []
imaps = []
pop3 = []
pop3s = []
TOML
"$BIN" -c "$W/postern.toml" domain add bench.test >/dev/null
for mode in stay login; do
  for i in $(seq "$NUSERS"); do echo pass | "$BIN" -c "$W/postern.toml" user add "$mode$i@bench.test" >/dev/null; done
done
HASH=$(python3 - "$W/data/directory.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
print(db.execute("SELECT password_hash FROM accounts WHERE address = 'stay1@bench.test'").fetchone()[0])
PY
)
"$BIN" -c "$W/postern.toml" serve 2>"$W/postern.log" & PID=$!
PEER_PASS_HASH="{ARGON2ID}$HASH" scripts/start-dovecot.sh "$DW/dovecot" "$DP" >/dev/null
stop_dovecot() { scripts/start-dovecot.sh --stop "$DW/dovecot"; }
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; stop_dovecot || true; rm -rf "$W" "$DW"' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$P") 2>/dev/null && break; sleep 0.1; done

declare -A RATE
run() { # label server-name addr mode login-every
  local label=$1 name=$2 addr=$3 mode=$4 every=$5 users=() i stay=
  [ "$every" != 0 ] || stay=--stay
  for i in $(seq "$NUSERS"); do
    if [ "$name" = postern ]; then users+=(--user "$mode$i@bench.test"); else users+=(--user "$mode$i-$$"); fi
  done
  python3 scripts/imap-stress.py "$addr" "${users[@]}" --password pass --clients "$CLIENTS" --seconds "$SECS" \
    --login-every "$every" $stay --idle-ms "$IDLE_MS" --json --show 5 >"$W/$label.json" 2>"$W/$label.log" || true
  RATE[$label]=$(python3 - "$W/$label.json" "$name" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
kinds = ", ".join("%s=%d" % kv for kv in sorted(s["violations_by_kind"].items()))
login = s["per_type"].get("LOGIN", {})
print("%-8s %8.1f cmds/s  p50 %6.2f ms  p99 %7.2f ms  LOGIN p50 %6.1f ms  %d violations%s"
      % (sys.argv[2], s["cmds_per_sec"], s["p50_ms"], s["p99_ms"], login.get("p50_ms", 0), s["violations"],
         " (%s)" % kinds if kinds else ""), file=sys.stderr)
print(s["cmds_per_sec"])
PY
  )
  grep -A2 '^VIOLATION' "$W/$label.log" | head -9 | cut -c1-300 | sed 's/^/    /' || true
}
for spec in "stay:0:clients stay logged in" "login:5:LOGOUT + LOGIN every 5 commands"; do
  IFS=: read -r mode every title <<<"$spec"
  echo "== $title ($CLIENTS clients over $NUSERS accounts, $SECS s each, IDLE $IDLE_MS ms)"
  run "dovecot-$mode" dovecot "127.0.0.1:$DP" "$mode" "$every"
  run "postern-$mode" postern "127.0.0.1:$P" "$mode" "$every"
  python3 -c 'import sys; p, d = float(sys.argv[1]), float(sys.argv[2]); print("ratio postern/dovecot: %.2f" % (p / d if d else 0))' \
    "${RATE[postern-$mode]}" "${RATE[dovecot-$mode]}"
done
