#!/usr/bin/env bash
# Back-to-back SMTP benchmark: postern against the private Postfix of ../shared/peers, same command.
#   scripts/bench-smtp.sh [MESSAGES=2000] [SESSIONS=10] [ROUNDS=3]
# Each round runs ../shared/peers/bench-smtp.sh (smtp-source, 4 KB messages, new connection per
# message) against postern, then against Postfix, waiting until every message is in the Maildir.
# Prints per-round figures and the medians, then postern's RSS per idle SMTP connection.
#
# File systems: on ext4, creating a file right after many were deleted costs far more CPU (the
# allocator skips inodes freed in the last 5 minutes), so a server measured after another one, or
# after a previous run's clean-up, pays for their deletions. As root, each server therefore gets
# a fresh ext4 of its own (a loop-mounted image, journal on, the default options): postern's
# data_dir, and Postfix's queue and Maildirs (PEERS_DIR). FRESH_FS=0 turns this off.
set -euo pipefail
cd "$(dirname "$0")/.."
MSGS=${1:-2000} SESS=${2:-10} ROUNDS=${3:-3}
PEERS=${PEERS:-$(cd .. && pwd)/shared/peers}
export SIZE=${SIZE:-4096}

[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p postern
BIN=$PWD/target/release/postern
WORK=$(mktemp -d)
chmod 755 "$WORK" # the peers run as other users
MOUNTS=()
cleanup() {
  kill "${PID:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  [ -z "${OWN_POSTFIX:-}" ] || PEERS_DIR=$OWN_POSTFIX "$PEERS/stop-postfix.sh" >/dev/null 2>&1 || true
  for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
fresh_fs() { # DIR: a new ext4 mounted on DIR (the image is sparse, in $WORK)
  mkdir -p "$1"; truncate -s 8G "$1.img"; mkfs.ext4 -q -F "$1.img"; mount -o loop "$1.img" "$1"
  MOUNTS+=("$1")
}
DATA=$WORK/data
if [ "${FRESH_FS:-1}" = 1 ] && [ "$(id -u)" = 0 ] && command -v losetup >/dev/null; then
  fresh_fs "$WORK/postern-fs"; DATA=$WORK/postern-fs/data
  fresh_fs "$WORK/peers-fs"
  # A private Postfix of our own on its fresh file system (the shared one is stopped first).
  "$PEERS/stop-postfix.sh" >/dev/null 2>&1 || true
  export PEERS_DIR=$WORK/peers-fs; OWN_POSTFIX=$PEERS_DIR
  echo "fresh ext4 file systems: postern $WORK/postern-fs, postfix $PEERS_DIR"
fi

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SMTP_PORT=$(port)
cat > "$WORK/postern.toml" <<TOML
hostname = "bench.test"
data_dir = "$DATA"
[listen]
smtp = ["127.0.0.1:$SMTP_PORT"]
submission = []
submissions = []
imap = []
imaps = []
pop3 = []
pop3s = []
[smtp]
max_commands = 100000
TOML
"$BIN" -c "$WORK/postern.toml" domain add peers.test >/dev/null
echo pw | "$BIN" -c "$WORK/postern.toml" user add bench@peers.test >/dev/null
POSTERN_LOG=warn "$BIN" -c "$WORK/postern.toml" serve 2>"$WORK/serve.log" &
PID=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$SMTP_PORT") 2>/dev/null && break; sleep 0.1; done

"$PEERS/start-postfix.sh" >/dev/null
PF_MAILDIR=${PEERS_DIR:-/tmp/peers}/mail/bench

run() { # name target maildir -> "accepted delivered"
  WAIT_MAILDIR="$3" "$PEERS/bench-smtp.sh" "$2" "$MSGS" "$SESS" 2>&1 |
    awk '/msgs\/s$/ && /^bench-smtp/ {a=$(NF-1)} /end-to-end/ {d=$(NF-2)} END {print a, d}'
}
median() { sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

: > "$WORK/p"; : > "$WORK/f"
for r in $(seq "$ROUNDS"); do
  p=$(run postern "127.0.0.1:$SMTP_PORT" "$DATA/mail/peers.test/bench")
  f=$(run postfix "127.0.0.1:2525" "$PF_MAILDIR")
  echo "round $r: postern accepted/delivered $p msgs/s | postfix $f msgs/s"
  echo "$p" >> "$WORK/p"; echo "$f" >> "$WORK/f"
done
pa=$(cut -d' ' -f1 "$WORK/p" | median); pd=$(cut -d' ' -f2 "$WORK/p" | median)
fa=$(cut -d' ' -f1 "$WORK/f" | median); fd=$(cut -d' ' -f2 "$WORK/f" | median)
echo "median accepted:  postern $pa msgs/s, postfix $fa msgs/s, ratio $(awk -v a="$pa" -v b="$fa" 'BEGIN{printf "%.2f", a/b}')"
echo "median delivered: postern $pd msgs/s, postfix $fd msgs/s, ratio $(awk -v a="$pd" -v b="$fd" 'BEGIN{printf "%.2f", a/b}')"

# RSS per idle SMTP connection: 500 sessions that have said EHLO and wait.
rss() { awk '/VmRSS/ {print $2}' "/proc/$PID/status"; }
before=$(rss)
python3 - "$SMTP_PORT" <<'PY' &
import socket, sys, time
conns = []
for _ in range(500):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.recv(512); s.sendall(b"EHLO idle.test\r\n"); s.recv(4096)
    conns.append(s)
time.sleep(4)
PY
sleep 3
after=$(rss)
wait $! || true
echo "RSS per idle SMTP connection: $(( (after - before) * 1024 / 500 )) bytes (500 connections, $before -> $after KiB)"
