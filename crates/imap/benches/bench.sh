#!/usr/bin/env bash
# Reproducible IMAP benchmark: postern vs the reference Dovecot, back to back, same machine.
#   crates/imap/benches/bench.sh [SECS=10] [CLIENTS=4]
# Needs a release build (built when missing). Prints scripts/imap-load.py commands/s for both
# servers, then the mbsync full sync (scripts/fetch-time.sh imap) of $SYNC_MSGS messages for both:
# $ROUNDS rounds each (default 3), alternating which server goes first, and the medians.
# Dovecot is a private instance (scripts/start-dovecot.sh) on a free loopback port; when it is not
# installed (Debian: dovecot-imapd) only postern's figures are printed, and the sync is skipped
# when mbsync is not (Debian: isync). SKIP_SYNC=1 skips the sync.
set -euo pipefail
cd "$(dirname "$0")/../../.."
. scripts/bench-lib.sh
SECS=${1:-10} CLIENTS=${2:-4} SYNC_MSGS=${SYNC_MSGS:-10000}
BIN=target/release/postern
[ -x "$BIN" ] || cargo build --release -p postern
W=$(mktemp -d /tmp/postern-bench.XXXX)
chmod 755 "$W"   # Dovecot's mail processes (nobody, as root) reach their Maildirs through it
PP=$(free_port) DP=$(free_port)
cat > "$W/postern.toml" <<TOML
hostname = "bench.test"
data_dir = "$W/data"
[limits]
max_connections = 5000
max_connections_per_ip = 5000
[listen]
imap = ["127.0.0.1:$PP"]
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
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; scripts/start-dovecot.sh --stop "$W/dovecot" || true; rm -rf "$W"' EXIT
wait_port "$PP"
# The servers, "name host:port user": postern, and Dovecot (user imapbench) when installed.
SERVERS=("postern 127.0.0.1:$PP bench@bench.test")
DUSER=imapbench
if have_peer dovecot dovecot-imapd "comparison with Dovecot"; then
  scripts/start-dovecot.sh "$W/dovecot" "$DP" >/dev/null
  SERVERS+=("dovecot 127.0.0.1:$DP $DUSER")
fi
ROUNDS=${ROUNDS:-3}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
# each_round FUNCTION: for every round, FUNCTION FILE HOST:PORT USER for every server, the order
# reversed every other round; FILE ($W/<name>.<function>) collects the figures.
each_round() {
  local fn=$1 r i n=${#SERVERS[@]} s
  for r in $(seq "$ROUNDS"); do
    for i in $(seq 0 $((n - 1))); do
      [ $((r % 2)) = 1 ] && s=${SERVERS[$((n - 1 - i))]} || s=${SERVERS[$i]}
      set -- $s
      "$fn" "$W/$1.$fn" "$2" "$3"
    done
  done
}
medians() { # FUNCTION UNIT LABEL
  local p d; p=$(median < "$W/postern.$1")
  if [ -s "$W/dovecot.$1" ]; then
    d=$(median < "$W/dovecot.$1")
    echo "median $3: postern $p$2, dovecot $d$2, ratio $(ratio "$p" "$d")"
  else
    echo "median $3: postern $p$2"
  fi
}
echo "== imap-load ($SECS s, $CLIENTS clients, $ROUNDS rounds, alternating order)"
py() { # FILE HOST:PORT USER: prints the client's line, appends cmds/s to FILE
  local line; line=$(python3 scripts/imap-load.py "$2" "$3" pass "$SECS" "$CLIENTS")
  echo "$line"; echo "$line" | awk '{for (i = 2; i <= NF; i++) if ($i == "cmds/s,") print $(i-1)}' >> "$1"; }
each_round py
medians py "" commands/s
if [ "${SKIP_SYNC:-0}" != 1 ] && have_peer mbsync isync "mbsync full sync"; then
  echo "== mbsync full sync of $SYNC_MSGS messages"
  # Fill both INBOXes by dropping files into their Maildirs (APPEND of 10,000 messages one by one
  # takes minutes on Dovecot), then SELECT once so each server has indexed them before the sync.
  python3 - "$SYNC_MSGS" "${SERVERS[@]}" <<PY
import imaplib, os, sys, time
n = int(sys.argv[1])
dirs = {"postern": "$W/data/mail/bench.test/bench", "dovecot": "$W/dovecot/mail/$DUSER"}
for server in sys.argv[2:]:
    name, target, user = server.split()
    d = dirs[name]
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    have = len(os.listdir(os.path.join(d, "new"))) + len(os.listdir(os.path.join(d, "cur")))
    for i in range(have, n):
        body = (b"From: a@b.test\r\nTo: bench@bench.test\r\nSubject: bench %d\r\n\r\n" % i) + b"x" * 1024 + b"\r\n"
        with open(os.path.join(d, "new", "%d.M%dP1.bench" % (int(time.time()), i)), "wb") as f:
            f.write(body)
    # Dovecot runs as the owner of its mail root: hand it the files.
    st = os.stat(os.path.dirname(d))
    for root, subdirs, files in os.walk(d):
        for x in [root] + [os.path.join(root, f) for f in files]:
            os.chown(x, st.st_uid, st.st_gid)
    host, port = target.rsplit(":", 1)
    m = imaplib.IMAP4(host, int(port)); m.login(user, "pass")
    print(user, "holds", int(m.select("INBOX")[1][0]), "messages")
    m.logout()
PY
  # mbsync fsyncs every message it writes. On ext4 creating files right after many were deleted
  # is slow (the allocator skips inodes freed in the last 5 minutes), so whichever server runs
  # second pays for the first run's clean-up. The client's Maildir therefore lives in tmpfs
  # ($FETCH_DIR) and the order alternates; medians of $ROUNDS.
  export FETCH_DIR=${FETCH_DIR:-/dev/shm}
  full_sync() { # FILE HOST:PORT USER: prints fetch-time's line, appends msgs/s to FILE
    local line; line=$(scripts/fetch-time.sh imap "$2" "$3" pass)
    echo "$line"; echo "$line" | awk '{for (i = 1; i < NF; i++) if ($(i+1) == "msgs/s,") print $i}' >> "$1"; }
  each_round full_sync
  medians full_sync " msgs/s" "mbsync sync"
fi
