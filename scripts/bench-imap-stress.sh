#!/usr/bin/env bash
# The IMAP stress mix (scripts/imap-stress.py: concurrent clients, every response checked against the
# protocol invariants) against postern and the reference Dovecot back to back, two ways:
#   scripts/bench-imap-stress.sh [SECONDS=30] [CLIENTS=12]   (env PROCS=3 client processes)
# 1. clients stay logged in; 2. LOGOUT and LOGIN again every 5 commands (login-heavy).
# Prints commands/s, latency and violations of each server and the ratio postern/Dovecot, and the
# server's capacity: commands per CPU second of the server's processes. On two cores the Python
# client saturates one, so cmds/s is partly the client's limit; the capacity is the server's.
# Both verify the same argon2id hash at LOGIN: Dovecot gets postern's hash from directory.db.
# Dovecot is started by scripts/start-dovecot.sh when it is installed (Debian: dovecot-imapd);
# otherwise only postern's figures are printed.
# NO_BUILD=1 skips `cargo build --release`; POSTERN_BIN overrides the binary.
set -euo pipefail
export POSTERN_LOG=warn
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
SECS=${1:-30} CLIENTS=${2:-12}
# An IDLE lasts IDLE_MS (MIN:MAX ms); short by default so the figures measure the servers, not the
# clients' waits (the test uses the stress client's default of 50-300 ms).
IDLE_MS=${IDLE_MS:-0:5}
# The clients run in PROCS processes (the Python client is bound by its interpreter lock: one
# process cannot load a server that answers in well under a millisecond), each with CLIENTS/PROCS
# clients over accounts of its own, NUSERS per process (Dovecot allows 10 connections per user).
PROCS=${PROCS:-3}
PER=$(( (CLIENTS + PROCS - 1) / PROCS ))
NUSERS=$(( (PER + 4) / 5 )); [ "$NUSERS" -ge 2 ] || NUSERS=2
[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p postern
BIN=${POSTERN_BIN:-$PWD/target/release/postern}
W=$(mktemp -d /tmp/postern-stress.XXXX)
DW=$(mktemp -d /tmp/dovecot-stress.XXXX)
chmod 755 "$DW"
P=$(free_port) DP=$(free_port)
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
  for p in $(seq "$PROCS"); do
    for i in $(seq "$NUSERS"); do echo pass | "$BIN" -c "$W/postern.toml" user add "$mode$p-$i@bench.test" >/dev/null; done
  done
done
HASH=$(python3 - "$W/data/directory.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
print(db.execute("SELECT password_hash FROM accounts WHERE address = 'stay1-1@bench.test'").fetchone()[0])
PY
)
"$BIN" -c "$W/postern.toml" serve 2>"$W/postern.log" & PID=$!
stop_dovecot() { scripts/start-dovecot.sh --stop "$DW/dovecot"; }
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; stop_dovecot || true; rm -rf "$W" "$DW"' EXIT
DOVECOT=
if have_peer dovecot dovecot-imapd "comparison with Dovecot"; then
  PEER_PASS_HASH="{ARGON2ID}$HASH" scripts/start-dovecot.sh "$DW/dovecot" "$DP" >/dev/null
  DOVECOT=$(cat "$DW/dovecot/run/master.pid")
fi
wait_port "$P"

# CPU seconds used so far by a process and all its descendants (Dovecot's master forks the imap,
# login, auth processes): the server's side of the work, whatever the client can drive.
tree_cpu() {
  python3 - "$1" <<'PY'
import os, sys
hz = os.sysconf("SC_CLK_TCK")
kids, cpu = {}, {}
for p in os.listdir("/proc"):
    if not p.isdigit():
        continue
    try:
        f = open("/proc/%s/stat" % p).read().rsplit(")", 1)[1].split()
    except OSError:
        continue
    kids.setdefault(int(f[1]), []).append(int(p))
    cpu[int(p)] = int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
todo, total = [int(sys.argv[1])], 0
while todo:
    p = todo.pop()
    total += cpu.get(p, 0)
    todo.extend(kids.get(p, []))
print(total / hz)
PY
}

declare -A RATE CAP
run() { # label server-name addr mode login-every server-pid
  local label=$1 name=$2 addr=$3 mode=$4 every=$5 users i p stay= pids=()
  [ "$every" != 0 ] || stay=--stay
  local cpu0; cpu0=$(tree_cpu "$6")
  for p in $(seq "$PROCS"); do
    users=()
    for i in $(seq "$NUSERS"); do
      if [ "$name" = postern ]; then users+=(--user "$mode$p-$i@bench.test"); else users+=(--user "$mode$p-$i-$$"); fi
    done
    python3 scripts/imap-stress.py "$addr" "${users[@]}" --password pass --clients "$PER" --seconds "$SECS" \
      --seed "$p" --login-every "$every" $stay --idle-ms "$IDLE_MS" --json --show 5 \
      >"$W/$label.$p.json" 2>"$W/$label.$p.log" &
    pids+=($!)
  done
  wait "${pids[@]}" || true
  local cpu1; cpu1=$(tree_cpu "$6")
  read -r "RATE[$label]" "CAP[$label]" < <(python3 - "$name" "$cpu0" "$cpu1" "$W/$label".*.json <<'PY'
import json, sys
runs = [json.load(open(f)) for f in sys.argv[4:]]
cmds = sum(r["commands"] for r in runs)
secs = max(r["seconds"] for r in runs)
rate = cmds / secs if secs else 0
cpu = float(sys.argv[3]) - float(sys.argv[2])
cap = cmds / cpu if cpu > 0 else 0
kinds = {}
for r in runs:
    for k, v in r["violations_by_kind"].items():
        kinds[k] = kinds.get(k, 0) + v
viol = sum(r["violations"] for r in runs)
p50 = max(r["p50_ms"] for r in runs)
p99 = max(r["p99_ms"] for r in runs)
login = max(r["per_type"].get("LOGIN", {}).get("p50_ms", 0) for r in runs)
print("%-8s %8.1f cmds/s  %7.0f cmds per server CPU second  p50 %6.2f ms  p99 %7.2f ms  LOGIN p50 %6.1f ms  %d violations%s"
      % (sys.argv[1], rate, cap, p50, p99, login, viol,
         " (%s)" % ", ".join("%s=%d" % kv for kv in sorted(kinds.items())) if kinds else ""), file=sys.stderr)
print(rate, cap)
PY
  )
  cat "$W/$label".*.log | grep -A2 '^VIOLATION' | head -9 | cut -c1-300 | sed 's/^/    /' || true
}
for spec in "stay:0:clients stay logged in" "login:5:LOGOUT + LOGIN every 5 commands"; do
  IFS=: read -r mode every title <<<"$spec"
  echo "== $title ($PROCS client processes x $PER clients over $NUSERS accounts each, $SECS s each, IDLE $IDLE_MS ms)"
  [ -z "$DOVECOT" ] || run "dovecot-$mode" dovecot "127.0.0.1:$DP" "$mode" "$every" "$DOVECOT"
  run "postern-$mode" postern "127.0.0.1:$P" "$mode" "$every" "$PID"
  [ -z "$DOVECOT" ] || python3 -c 'import sys; r, c = [float(sys.argv[i]) / float(sys.argv[i + 1]) if float(sys.argv[i + 1]) else 0 for i in (1, 3)]; print("ratio postern/dovecot: %.2f cmds/s, %.2f commands per server CPU second" % (r, c))' \
    "${RATE[postern-$mode]}" "${RATE[dovecot-$mode]}" "${CAP[postern-$mode]}" "${CAP[dovecot-$mode]}"
done
