#!/usr/bin/env bash
# Local submission benchmark: `postern sendmail` against Postfix's sendmail, same loop, back to back.
#   scripts/bench-sendmail.sh [MESSAGES=1000] [ROUNDS=3]
# Each round runs MESSAGES sendmail commands one after the other (a shell loop: one process per
# message, as cron and scripts do), each with a 4 KB message for a local mailbox, first with
# postern's (serve running, so through data_dir/public/submit.sock), then with Postfix's
# (/usr/sbin/sendmail -C DIR/conf into a private Postfix from scripts/start-postfix.sh: postdrop,
# pickup, cleanup). It prints the submission rate (the loop alone) and the delivery rate (until
# every message is in the recipient's Maildir), per round, then the medians and their ratios.
# Postfix is compared when it is installed (Debian: postfix) and this runs as root; otherwise only
# postern is measured. NO_BUILD=1 skips `cargo build --release`; POSTERN_BIN overrides the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
MSGS=${1:-1000} ROUNDS=${2:-3}
SIZE=${SIZE:-4096}

[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p postern
BIN=${POSTERN_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/postern}
WORK=$(mktemp -d)
chmod 755 "$WORK" # the peers run as other users
POSTFIX=
if have_peer postfix postfix "comparison with Postfix" && have_peer sendmail postfix "Postfix's sendmail"; then
  # /usr/sbin/sendmail must be Postfix's (not a link to postern installed by install-links).
  if [ "$(readlink -f "$(command -v sendmail)")" = "$(readlink -f "$BIN")" ]; then
    echo "skipped: comparison with Postfix (/usr/sbin/sendmail is postern here)"
  else
    POSTFIX=$WORK/postfix
  fi
fi
cleanup() {
  kill "${PID:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  [ -z "$POSTFIX" ] || scripts/start-postfix.sh --stop "$POSTFIX" || true
  rm -rf "$WORK"
}
trap cleanup EXIT

DATA=$WORK/data
cat > "$WORK/postern.toml" <<TOML
hostname = "bench.test"
data_dir = "$DATA"
[listen]
smtp = []
submission = []
submissions = []
imap = []
imaps = []
pop3 = []
pop3s = []
managesieve = []
TOML
POSTERN_LOG=warn "$BIN" -c "$WORK/postern.toml" domain add peers.test >/dev/null
echo pw | POSTERN_LOG=warn "$BIN" -c "$WORK/postern.toml" user add bench@peers.test >/dev/null
POSTERN_LOG=warn "$BIN" -c "$WORK/postern.toml" serve 2>"$WORK/serve.log" &
PID=$!
for _ in $(seq 100); do [ -S "$DATA/public/submit.sock" ] && break; sleep 0.1; done
[ -S "$DATA/public/submit.sock" ] || { echo "serve did not start:"; cat "$WORK/serve.log"; exit 1; }

if [ -n "$POSTFIX" ]; then
  scripts/start-postfix.sh "$POSTFIX" "$(free_port)" bench@peers.test >/dev/null
fi

# The message: a header and SIZE octets of text in 76-character lines.
{
  printf 'From: bench@bench.test\nTo: bench@peers.test\nSubject: bench-sendmail\n\n'
  head -c "$SIZE" /dev/zero | tr '\0' 'x' | fold -w 76
  echo
} > "$WORK/message"

count() { find "$1/new" "$1/cur" -type f 2>/dev/null | wc -l; }
run() { # postern|postfix maildir -> "submitted delivered" msgs/s
  local before t0 t1 t2 got i
  before=$(count "$2"); t0=$(date +%s.%N)
  if [ "$1" = postern ]; then
    for ((i = 0; i < MSGS; i++)); do
      "$BIN" sendmail -C "$WORK/postern.toml" -i bench@peers.test < "$WORK/message" || return 1
    done
  else
    for ((i = 0; i < MSGS; i++)); do
      sendmail -C "$POSTFIX/conf" -i bench@peers.test < "$WORK/message" || return 1
    done
  fi
  t1=$(date +%s.%N)
  for _ in $(seq 3000); do [ "$(count "$2")" -ge $((before + MSGS)) ] && break; sleep 0.1; done   # at most 300 s
  t2=$(date +%s.%N); got=$(( $(count "$2") - before ))
  awk -v n="$MSGS" -v g="$got" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {printf "%.1f %.1f\n", n/(b-a), g/(c-a)}'
}

: > "$WORK/p"; : > "$WORK/f"
for r in $(seq "$ROUNDS"); do
  p=$(run postern "$DATA/mail/peers.test/bench")
  echo "$p" >> "$WORK/p"
  if [ -n "$POSTFIX" ]; then
    f=$(run postfix "$POSTFIX/mail/bench")
    echo "round $r: postern submitted/delivered $p msgs/s | postfix $f msgs/s"
    echo "$f" >> "$WORK/f"
  else
    echo "round $r: postern submitted/delivered $p msgs/s"
  fi
done
pa=$(cut -d' ' -f1 "$WORK/p" | median); pd=$(cut -d' ' -f2 "$WORK/p" | median)
if [ -n "$POSTFIX" ]; then
  fa=$(cut -d' ' -f1 "$WORK/f" | median); fd=$(cut -d' ' -f2 "$WORK/f" | median)
  echo "median submitted: postern $pa msgs/s, postfix $fa msgs/s, ratio $(awk -v a="$pa" -v b="$fa" 'BEGIN{printf "%.2f", a/b}')"
  echo "median delivered: postern $pd msgs/s, postfix $fd msgs/s, ratio $(awk -v a="$pd" -v b="$fd" 'BEGIN{printf "%.2f", a/b}')"
else
  echo "median submitted: postern $pa msgs/s"
  echo "median delivered: postern $pd msgs/s"
fi
