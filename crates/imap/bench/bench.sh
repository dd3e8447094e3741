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
  # Fill both INBOXes by dropping files into their Maildirs (APPEND of 10,000 messages one by one
  # takes minutes on Dovecot), then SELECT once so each server has indexed them before the sync.
  python3 - "$SYNC_MSGS" "${PEERS_DIR:-/tmp/peers}/mail/$DUSER" "$W/data/mail/bench.test/bench" <<'PY'
import imaplib, os, sys, time
n, dovecot_dir, postern_dir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
for d in (dovecot_dir, postern_dir):
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    have = len(os.listdir(os.path.join(d, "new"))) + len(os.listdir(os.path.join(d, "cur")))
    for i in range(have, n):
        body = (b"From: a@b.test\r\nTo: bench@bench.test\r\nSubject: bench %d\r\n\r\n" % i) + b"x" * 1024 + b"\r\n"
        with open(os.path.join(d, "new", "%d.M%dP1.bench" % (int(time.time()), i)), "wb") as f:
            f.write(body)
# Dovecot runs as the owner of its mail root: hand it the files.
st = os.stat(os.path.dirname(dovecot_dir))
for root, dirs, files in os.walk(dovecot_dir):
    for x in [root] + [os.path.join(root, f) for f in files]:
        os.chown(x, st.st_uid, st.st_gid)
for host, port, user in (("127.0.0.1", 14300, "imapbench"), ("127.0.0.1", 14533, "bench@bench.test")):
    m = imaplib.IMAP4(host, port); m.login(user, "pass")
    print(user, "holds", int(m.select("INBOX")[1][0]), "messages")
    m.logout()
PY
  echo "-- dovecot"; "$PEERS/bench-fetch.sh" imap 127.0.0.1:14300 "$DUSER" pass
  echo "-- postern"; "$PEERS/bench-fetch.sh" imap 127.0.0.1:14533 bench@bench.test pass
fi
