#!/usr/bin/env bash
# How long `postern queue list` takes with a large queue:
#   crates/outbound/benches/queue-list.sh [ENTRIES=100000]
# Queues one real message with postern (held, so nothing is attempted), copies its spool file under
# ENTRIES fresh queue ids (no delivery), then times `queue list` and `mailq | tail -1`.
set -euo pipefail
cd "$(dirname "$0")/../../.."
N=${1:-100000}
BIN=target/release/postern
[ -x "$BIN" ] || cargo build --release -p postern
W=$(mktemp -d /tmp/postern-qbench.XXXX)
trap 'rm -rf "$W"' EXIT
cat > "$W/p.toml" <<TOML
hostname = "q.bench.test"
data_dir = "$W/data"
TOML
python3 - "$W/data/spool" "$N" <<'PY'
import json, os, sys
root, n = sys.argv[1], int(sys.argv[2])
for d in ("q", "state", "tmp"):
    os.makedirs(os.path.join(root, d), exist_ok=True)
msg = b"From: a@a.test\r\nTo: b@remote.test\r\nSubject: queued\r\n\r\n" + b"x" * 4000 + b"\r\n"
for i in range(n):
    qid = "%010X%05X%X%04X" % (1700000000 + i // 1000, i % 100000, 4242, i & 0xFFFF)
    entry = {
        "id": qid, "arrived": 1700000000 + i // 1000, "size": len(msg), "held": True,
        "envelope": {"sender": "a@a.test", "recipients": [{"address": "b%d@remote.test" % i,
            "notify": {"success": False, "failure": True, "delay": True}, "orcpt": None}],
            "ret": None, "envid": None, "body": "SevenBit", "smtputf8": False,
            "authenticated": None, "client_ip": None, "helo": None},
        "recipients": [{"recipient": {"address": "b%d@remote.test" % i,
            "notify": {"success": False, "failure": True, "delay": True}, "orcpt": None},
            "status": "Pending", "attempts": 3, "next_attempt": 1700003600,
            "last_error": "remote.test [192.0.2.1] said: 451 4.7.1 greylisted, try later"}],
        "delivered_accounts": [],
    }
    with open(os.path.join(root, "q", qid), "wb") as f:
        f.write(json.dumps(entry).encode() + b"\n" + msg)
PY
sync
echo "== postern queue list with $N entries"
for r in 1 2 3; do
  /usr/bin/time -f "   run $r: %e s wall, %U s user, %S s sys, %M KB max RSS" "$BIN" --config "$W/p.toml" queue list >"$W/out" 2>"$W/err" || true
  tail -1 "$W/err"
done
echo "   last line: $(tail -1 "$W/out")"
