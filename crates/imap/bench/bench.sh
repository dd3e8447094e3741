#!/usr/bin/env bash
# Reproducible IMAP benchmark: postern vs the reference Dovecot, back to back, same machine.
#   crates/imap/bench/bench.sh [SECS=10] [CLIENTS=4]
# Needs ../shared/peers (or $PEERS) and a release build (cargo build --release -p postern).
# Prints bench-imap-py.py commands/s for both servers, then the mbsync full sync (bench-fetch.sh imap)
# of $SYNC_MSGS messages for both.
set -euo pipefail
cd "$(dirname "$0")/../../.."
PEERS=${PEERS:-$(cd .. && pwd)/shared/peers}
SECS=${1:-10} CLIENTS=${2:-4} SYNC_MSGS=${SYNC_MSGS:-10000}
BIN=target/release/postern
[ -x "$BIN" ] || cargo build --release -p postern
W=$(mktemp -d /tmp/postern-bench.XXXX)
cat > "$W/postern.toml" <<TOML
hostname = "bench.test"
data_dir = "$W/data"
[limits]
max_connections = 5000
max_connections_per_ip = 5000
[listen]
imap = ["127.0.0.1:14533"]
smtp = []
submission = []
submissions = []
imaps = []
pop3 = []
pop3s = []
TOML
"$BIN" --config "$W/postern.toml" domain add bench.test >/dev/null
echo pass | "$BIN" --config "$W/postern.toml" user add bench@bench.test >/dev/null
POSTERN_LOG=warn "$BIN" --config "$W/postern.toml" serve 2>"$W/log" & PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$W"' EXIT
sleep 1
"$PEERS/start-dovecot.sh" >/dev/null
# A Dovecot user of our own, emptied first, so both servers hold the same messages (the shared
# "bench" user also receives the Postfix benchmark's mail).
DUSER=imapbench
rm -rf "${PEERS_DIR:-/tmp/peers}/mail/$DUSER"
echo "== bench-imap-py ($SECS s, $CLIENTS clients)"
echo "-- dovecot";  python3 "$PEERS/bench-imap-py.py" 127.0.0.1:14300 "$DUSER" pass "$SECS" "$CLIENTS"
echo "-- postern";  python3 "$PEERS/bench-imap-py.py" 127.0.0.1:14533 bench@bench.test pass "$SECS" "$CLIENTS"
if [ "${SKIP_SYNC:-0}" != 1 ]; then
  echo "== mbsync full sync of $SYNC_MSGS messages"
  python3 - "$SYNC_MSGS" <<'PY'
import imaplib, sys
n = int(sys.argv[1])
for host, port, user in (("127.0.0.1", 14300, "imapbench"), ("127.0.0.1", 14533, "bench@bench.test")):
    m = imaplib.IMAP4(host, port); m.login(user, "pass"); m.select("INBOX")
    have = int(m.select("INBOX")[1][0])
    for i in range(have, n):
        body = (b"From: a@b.test\r\nTo: bench@bench.test\r\nSubject: bench %d\r\n\r\n" % i) + b"x" * 1024 + b"\r\n"
        m.append("INBOX", None, None, body)
    m.logout()
PY
  echo "-- dovecot"; "$PEERS/bench-fetch.sh" imap 127.0.0.1:14300 "$DUSER" pass
  echo "-- postern"; "$PEERS/bench-fetch.sh" imap 127.0.0.1:14533 bench@bench.test pass
fi
