#!/usr/bin/env bash
# Retrieval benchmark (issue #16): postern's built-in fetch against fetchmail, back to back.
#   scripts/bench-fetch.sh [MESSAGES=10000] [ROUNDS=3]
# A private Dovecot (scripts/start-dovecot.sh, POP3 and IMAP on free loopback ports, no TLS) holds
# MESSAGES messages of mixed realistic sizes (most a few KB, some tens of KB, a few hundred KB;
# 8-bit bodies, one Message-ID each), written straight into its Maildir. A postern `serve` (SMTP
# only, a temporary data directory) receives fetchmail's mail. Each round, one after the other:
#   - `postern fetch run` over POP3, then over IMAP: a fresh local account each time with its
#     remote account added by `postern fetch add ... --password-stdin` (so no state, empty
#     mailbox); timed until the command returns (every message is then delivered and fsynced);
#   - Debian's fetchmail over POP3, then over IMAP, in its usual setup (`keep`, `fetchall`,
#     `smtphost` = postern's SMTP port, `--nosyslog`), into a fresh local account; timed until
#     every message is in the account's Maildir.
# Every run keeps the messages on the remote, so each one fetches all MESSAGES. Prints each run's
# messages/s, the medians and the ratios postern/fetchmail. Needs dovecot-imapd, dovecot-pop3d
# and fetchmail (fetchmail's runs are skipped without it).
# NO_BUILD=1 skips `cargo build --release`; POSTERN_BIN overrides the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
MSGS=${1:-10000} ROUNDS=${2:-3}

have_peer dovecot dovecot-imapd "the remote Dovecot" || exit 2
[ -x /usr/lib/dovecot/pop3 ] || { echo "bench-fetch.sh: needs Dovecot's POP3 server (apt-get install dovecot-pop3d)" >&2; exit 2; }
FETCHMAIL=
have_peer fetchmail fetchmail "comparison with fetchmail" && FETCHMAIL=1

[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p postern
BIN=${POSTERN_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/postern}
[ -x "$BIN" ] || { echo "bench-fetch.sh: no postern binary at $BIN" >&2; exit 2; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-fetch.XXXXXX")
chmod 755 "$WORK" # Dovecot's mail processes run as nobody when this runs as root
DOVECOT=$WORK/dovecot
cleanup() {
  kill "${PID:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  scripts/start-dovecot.sh --stop "$DOVECOT" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

SMTP_PORT=$(free_port) IMAP_PORT=$(free_port) POP3_PORT=$(free_port)
DATA=$WORK/data
CONF=$WORK/postern.toml
cat > "$CONF" <<TOML
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
managesieve = []
[smtp]
max_commands = 100000
# Only the runs measured here fetch: serve's own schedule stays off.
[fetch]
enabled = false
TOML
P() { POSTERN_LOG=warn "$BIN" -c "$CONF" "$@"; }
P domain add peers.test >/dev/null
POSTERN_LOG=warn "$BIN" -c "$CONF" serve 2>"$WORK/serve.log" &
PID=$!
wait_port "$SMTP_PORT"

# The remote mailbox: user "remote" (password "pass"), Maildir $DOVECOT/mail/remote.
mkdir -p "$DOVECOT/mail/remote"/{cur,new,tmp}
python3 - "$DOVECOT/mail/remote" "$MSGS" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(16)
words = ("fetch mail remote server postern dovecot message folder account inbox poll idle "
         "deliver spool queue header body size nothing lost twice über café naïve").split()
def size():
    r = rnd.random()
    if r < 0.70: return rnd.randint(1_000, 8_000)
    if r < 0.92: return rnd.randint(8_000, 40_000)
    if r < 0.99: return rnd.randint(40_000, 200_000)
    return rnd.randint(200_000, 500_000)
total = 0
for i in range(n):
    head = (f"Return-Path: <sender{i % 89}@remote.test>\n"
            f"Received: from client{i % 13}.remote.test by mx.remote.test; Mon, 2 Nov 2026 10:00:00 +0000\n"
            f"From: Sender {i % 89} <sender{i % 89}@remote.test>\nTo: remote@remote.test\n"
            f"Subject: fetch bench message {i}\nMessage-ID: <{i}.fetch-bench@remote.test>\n"
            f"Date: Mon, 2 Nov 2026 10:{i // 60 % 60:02d}:{i % 60:02d} +0000\n"
            "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
            "Content-Transfer-Encoding: 8bit\n\n")
    body, want = [], size()
    written = len(head)
    while written < want:
        line = " ".join(rnd.choice(words) for _ in range(12)) + "\n"
        body.append(line)
        written += len(line.encode())
    data = (head + "".join(body)).encode()
    total += len(data)
    name = f"{1790000000 + i}.M{i}P1.bench,S={len(data)}:2,"
    with open(os.path.join(root, "cur", name), "wb") as f:
        f.write(data)
print(f"remote mailbox: {n} messages, {total / 1048576:.0f} MiB", file=sys.stderr)
PY
[ "$(id -u)" != 0 ] || chown -R nobody:nogroup "$DOVECOT/mail"
POP3_PORT=$POP3_PORT scripts/start-dovecot.sh "$DOVECOT" "$IMAP_PORT" >/dev/null
wait_port "$POP3_PORT"
# Dovecot indexes the Maildir (and assigns UIDs) once, before anything is timed.
python3 - "$IMAP_PORT" "$POP3_PORT" "$MSGS" <<'PY'
import imaplib, poplib, sys
imap_port, pop3_port, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
m = imaplib.IMAP4("127.0.0.1", imap_port)
m.login("remote", "pass")
typ, data = m.select("INBOX", readonly=True)
assert int(data[0]) == n, f"Dovecot sees {data[0]} messages, not {n}"
m.uid("FETCH", "1:*", "(RFC822.SIZE)")
m.logout()
p = poplib.POP3("127.0.0.1", pop3_port)
p.user("remote"); p.pass_("pass")
assert p.stat()[0] == n
p.uidl()
p.quit()
PY

count() { find "$DATA/mail/peers.test/$1/new" "$DATA/mail/peers.test/$1/cur" -type f 2>/dev/null | wc -l; }
now() { date +%s.%N; }
rate() { awk -v n="$MSGS" -v a="$1" -v b="$2" 'BEGIN {printf "%.0f", n / (b - a)}'; }
url() { # PROTO: the remote account's URL
  case $1 in
    pop3) echo "pop3://remote@127.0.0.1:$POP3_PORT" ;;
    imap) echo "imap://remote@127.0.0.1:$IMAP_PORT" ;;
  esac
}
fresh_user() { # NAME: a new, empty local account
  echo pw | P user add "$1@peers.test" >/dev/null
}
drop_user() { # NAME: remove it and its mail (keeps the next runs' disk and indexes small)
  P user remove "$1@peers.test" --purge >/dev/null
}

postern_run() { # PROTO ROUND -> messages/s
  local user=postern-$1-$2 t0 t1 got id
  fresh_user "$user"
  printf 'pass\n' | P fetch add "$user@peers.test" --url "$(url "$1")" --keep --allow-plaintext \
    --password-stdin >"$WORK/add.log" 2>&1 || { cat "$WORK/add.log" >&2; return 1; }
  t0=$(now)
  P fetch run "$user@peers.test" </dev/null >"$WORK/run.log" 2>&1 ||
    { echo "postern fetch run ($1) failed:" >&2; tail -5 "$WORK/run.log" >&2; return 1; }
  t1=$(now)
  got=$(count "$user")
  [ "$got" = "$MSGS" ] || { echo "postern ($1) delivered $got of $MSGS messages" >&2; return 1; }
  # Removing the remote account drops its state; removing the user its mail.
  id=$(awk '$1 == "added" {print $2; exit}' "$WORK/add.log")
  P fetch remove "$id" >/dev/null
  drop_user "$user"
  rate "$t0" "$t1"
}

fetchmail_run() { # PROTO ROUND -> messages/s
  local user=fetchmail-$1-$2 port t0 t1 got
  port=$POP3_PORT; [ "$1" = pop3 ] || port=$IMAP_PORT
  fresh_user "$user"
  local fm=$WORK/fetchmail-$1-$2
  mkdir -m 700 "$fm"
  # fetchmail wants its run control file private to the user.
  (umask 077; printf 'poll 127.0.0.1 service %s protocol %s user "remote" password "pass" sslproto "" smtphost 127.0.0.1/%s smtpname "%s" keep fetchall\n' \
    "$port" "$1" "$SMTP_PORT" "$user@peers.test" > "$fm/fetchmailrc")
  t0=$(now)
  FETCHMAILHOME=$fm fetchmail -f "$fm/fetchmailrc" -i "$fm/ids" --pidfile "$fm/pid" --nosyslog \
    --fetchlimit 0 </dev/null >"$fm/log" 2>&1 ||
    { echo "fetchmail ($1) failed:" >&2; tail -5 "$fm/log" >&2; return 1; }
  for _ in $(seq 36000); do [ "$(count "$user")" -ge "$MSGS" ] && break; sleep 0.05; done # at most 30 min
  t1=$(now)
  got=$(count "$user")
  [ "$got" = "$MSGS" ] || { echo "fetchmail ($1) delivered $got of $MSGS messages" >&2; return 1; }
  drop_user "$user"
  rm -rf "$fm"
  rate "$t0" "$t1"
}

for proto in pop3 imap; do : > "$WORK/postern-$proto"; : > "$WORK/fetchmail-$proto"; done
for r in $(seq "$ROUNDS"); do
  line="round $r:"
  for proto in pop3 imap; do
    p=$(postern_run "$proto" "$r")
    echo "$p" >> "$WORK/postern-$proto"
    line+=" postern $proto $p msgs/s"
    if [ -n "$FETCHMAIL" ]; then
      f=$(fetchmail_run "$proto" "$r")
      echo "$f" >> "$WORK/fetchmail-$proto"
      line+=", fetchmail $proto $f msgs/s;"
    fi
  done
  echo "$line"
done
for proto in pop3 imap; do
  p=$(median < "$WORK/postern-$proto")
  if [ -n "$FETCHMAIL" ]; then
    f=$(median < "$WORK/fetchmail-$proto")
    echo "median $proto: postern $p msgs/s, fetchmail $f msgs/s, ratio $(awk -v a="$p" -v b="$f" 'BEGIN {printf "%.2f", a / b}')"
  else
    echo "median $proto: postern $p msgs/s"
  fi
done
