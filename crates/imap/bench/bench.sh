#!/usr/bin/env bash
# Reproducible IMAP benchmark: postern vs the reference Dovecot, back to back, same machine.
#   crates/imap/bench/bench.sh [SECS=10] [CLIENTS=4]
# Needs ../shared/peers (or $PEERS) and a release build (cargo build --release -p postern).
# Prints bench-imap-py.py commands/s for both servers, then the mbsync full sync (bench-fetch.sh imap)
# of $SYNC_MSGS messages for both: $ROUNDS rounds each (default 3), alternating which server goes
# first, and the medians.
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
ROUNDS=${ROUNDS:-3}
median() { sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
echo "== bench-imap-py ($SECS s, $CLIENTS clients, $ROUNDS rounds, alternating order)"
py() { # FILE HOST:PORT USER: prints the bench's line, appends cmds/s to FILE
  local line; line=$(python3 "$PEERS/bench-imap-py.py" "$2" "$3" pass "$SECS" "$CLIENTS")
  echo "$line"; echo "$line" | awk '{for (i = 2; i <= NF; i++) if ($i == "cmds/s,") print $(i-1)}' >> "$1"; }
: > "$W/pyd"; : > "$W/pyp"
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then
    py "$W/pyd" 127.0.0.1:14300 "$DUSER"; py "$W/pyp" 127.0.0.1:14533 bench@bench.test
  else
    py "$W/pyp" 127.0.0.1:14533 bench@bench.test; py "$W/pyd" 127.0.0.1:14300 "$DUSER"
  fi
done
d=$(median < "$W/pyd"); p=$(median < "$W/pyp")
echo "median commands/s: postern $p, dovecot $d, ratio $(ratio "$p" "$d")"
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
  # mbsync fsyncs every message it writes. On this ext4 (no journal) creating files right
  # after many were deleted is slow (the allocator skips inodes freed in the last 5 minutes),
  # so whichever server runs second pays for the first run's clean-up. The client's Maildir
  # therefore lives in tmpfs ($FETCH_DIR) and the order alternates; medians of $ROUNDS.
  FETCH_DIR=${FETCH_DIR:-/dev/shm/postern-bench-fetch}
  mkdir -p "$FETCH_DIR"
  fetch() { # FILE HOST:PORT USER: prints bench-fetch's line, appends msgs/s to FILE
    local line; line=$(PEERS_DIR=$FETCH_DIR "$PEERS/bench-fetch.sh" imap "$2" "$3" pass)
    echo "$line"; echo "$line" | awk '{for (i = 1; i < NF; i++) if ($(i+1) == "msgs/s,") print $i}' >> "$1"; }
  : > "$W/d"; : > "$W/p"
  for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then
      fetch "$W/d" 127.0.0.1:14300 "$DUSER"; fetch "$W/p" 127.0.0.1:14533 bench@bench.test
    else
      fetch "$W/p" 127.0.0.1:14533 bench@bench.test; fetch "$W/d" 127.0.0.1:14300 "$DUSER"
    fi
  done
  d=$(median < "$W/d"); p=$(median < "$W/p")
  echo "median mbsync sync: postern $p msgs/s, dovecot $d msgs/s, ratio $(ratio "$p" "$d")"
fi
