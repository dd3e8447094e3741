#!/usr/bin/env bash
# Back-to-back SMTP benchmark: postern against a private Postfix (scripts/start-postfix.sh), same client.
#   scripts/bench-smtp.sh [MESSAGES=2000] [SESSIONS=10] [ROUNDS=3]
# Each round sends MESSAGES messages of SIZE (4 KB) bytes over SESSIONS parallel sessions, a new
# connection per message, with Postfix's smtp-source to postern, then to Postfix, and waits until
# every message is in the recipient's Maildir. Prints per-round figures and the medians, then
# postern's RSS per idle SMTP connection.
# Postfix is compared when it is installed (Debian: postfix) and this runs as root; otherwise only
# postern is measured, and, smtp-source coming with Postfix, with scripts/smtp-load.py (smtplib,
# the same message count, size and sessions, but a client that is slower than smtp-source, so the
# figures are lower and not comparable with runs that had it).
#
# File systems: on ext4, creating a file right after many were deleted costs far more CPU (the
# allocator skips inodes freed in the last 5 minutes), so a server measured after another one, or
# after a previous run's clean-up, pays for their deletions. As root, each server therefore gets
# a fresh ext4 of its own (a loop-mounted image, journal on, the default options): postern's
# data_dir, and Postfix's queue and Maildirs. FRESH_FS=0 turns this off.
# NO_BUILD=1 skips `cargo build --release`; POSTERN_BIN overrides the binary (to compare two builds).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
MSGS=${1:-2000} SESS=${2:-10} ROUNDS=${3:-3}
SIZE=${SIZE:-4096}

[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p postern
BIN=${POSTERN_BIN:-$PWD/target/release/postern}
WORK=$(mktemp -d)
chmod 755 "$WORK" # the peers run as other users
MOUNTS=()
POSTFIX=
have_peer postfix postfix "comparison with Postfix" && POSTFIX=$WORK/postfix
cleanup() {
  kill "${PID:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  [ -z "$POSTFIX" ] || scripts/start-postfix.sh --stop "$POSTFIX" || true
  for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
fresh_fs() { # DIR: a new ext4 mounted on DIR (the image is sparse, in $WORK)
  mkdir -p "$1"; truncate -s 8G "$1.img"; mkfs.ext4 -q -F "$1.img"
  mount -o loop "$1.img" "$1" 2>/dev/null || { rm -f "$1.img"; return 1; }
  MOUNTS+=("$1")
}
DATA=$WORK/data
if [ "${FRESH_FS:-1}" = 1 ] && [ "$(id -u)" = 0 ] && command -v losetup >/dev/null && command -v mkfs.ext4 >/dev/null; then
  if fresh_fs "$WORK/postern-fs" && { [ -z "$POSTFIX" ] || fresh_fs "$WORK/postfix"; }; then
    DATA=$WORK/postern-fs/data
    echo "fresh ext4 file systems: postern $WORK/postern-fs${POSTFIX:+, postfix $POSTFIX}"
  else
    echo "no loop mount here: both servers share $WORK's file system"
  fi
fi

SMTP_PORT=$(free_port) PF_PORT=$(free_port)
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
wait_port "$SMTP_PORT"

[ -z "$POSTFIX" ] || scripts/start-postfix.sh "$POSTFIX" "$PF_PORT" bench@peers.test >/dev/null
if have_peer smtp-source postfix smtp-source >/dev/null; then CLIENT=smtp-source; else
  CLIENT=smtp-load.py; echo "client: scripts/smtp-load.py (smtp-source not installed: apt-get install postfix)"
fi

count() { find "$1/new" "$1/cur" -type f 2>/dev/null | wc -l; }
run() { # target maildir -> "accepted delivered" msgs/s
  local before t0 t1 t2 got
  before=$(count "$2"); t0=$(date +%s.%N)
  if [ "$CLIENT" = smtp-source ]; then
    smtp-source -s "$SESS" -m "$MSGS" -l "$SIZE" -f bench@client.test -t bench@peers.test -M client.test \
      -S "bench-smtp $(date +%s)" "$1" >/dev/null || return 1
  else
    python3 scripts/smtp-load.py "$1" "$MSGS" "$SESS" --size "$SIZE" --to bench@peers.test >/dev/null || return 1
  fi
  t1=$(date +%s.%N)
  for _ in $(seq 3000); do [ "$(count "$2")" -ge $((before + MSGS)) ] && break; sleep 0.1; done   # at most 300 s
  t2=$(date +%s.%N); got=$(( $(count "$2") - before ))
  awk -v n="$MSGS" -v g="$got" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {printf "%.1f %.1f\n", n/(b-a), g/(c-a)}'
}

: > "$WORK/p"; : > "$WORK/f"; : > "$WORK/c"
# postern's CPU (user + system, every thread, in clock ticks): a figure the machine's other load
# moves far less than msgs/s.
cpu() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
TICKS=$(getconf CLK_TCK)
for r in $(seq "$ROUNDS"); do
  c0=$(cpu)
  p=$(run "127.0.0.1:$SMTP_PORT" "$DATA/mail/peers.test/bench")
  echo "$p" >> "$WORK/p"
  awk -v t="$(( $(cpu) - c0 ))" -v hz="$TICKS" -v n="$MSGS" 'BEGIN {printf "%.1f\n", t / hz * 1000000 / n}' >> "$WORK/c"
  if [ -n "$POSTFIX" ]; then
    f=$(run "127.0.0.1:$PF_PORT" "$POSTFIX/mail/bench")
    echo "round $r: postern accepted/delivered $p msgs/s | postfix $f msgs/s"
    echo "$f" >> "$WORK/f"
  else
    echo "round $r: postern accepted/delivered $p msgs/s"
  fi
done
pa=$(cut -d' ' -f1 "$WORK/p" | median); pd=$(cut -d' ' -f2 "$WORK/p" | median)
echo "median postern CPU per message (receive, queue, deliver): $(median < "$WORK/c") µs"
if [ -n "$POSTFIX" ]; then
  fa=$(cut -d' ' -f1 "$WORK/f" | median); fd=$(cut -d' ' -f2 "$WORK/f" | median)
  echo "median accepted:  postern $pa msgs/s, postfix $fa msgs/s, ratio $(awk -v a="$pa" -v b="$fa" 'BEGIN{printf "%.2f", a/b}')"
  echo "median delivered: postern $pd msgs/s, postfix $fd msgs/s, ratio $(awk -v a="$pd" -v b="$fd" 'BEGIN{printf "%.2f", a/b}')"
else
  echo "median accepted:  postern $pa msgs/s"
  echo "median delivered: postern $pd msgs/s"
fi

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
