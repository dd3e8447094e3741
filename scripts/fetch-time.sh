#!/usr/bin/env bash
# fetch-time.sh pop3|imap HOST:PORT USER PASSWORD
# Times the download of a whole mailbox by a real client: fetchmail for POP3 (every message
# RETRieved and kept on the server, handed to an MDA that discards it) or mbsync for IMAP (INBOX
# pulled into an empty Maildir). The client's files live in a temporary directory under
# $FETCH_DIR (default: $TMPDIR or /tmp), removed on exit.
# Prints: "fetch-time PROTO HOST:PORT: N msgs in T s = R msgs/s" (and ", M MB/s" for IMAP).
# Needs the Debian package fetchmail (pop3) or isync (imap).
set -euo pipefail
[ $# -ge 4 ] || { sed -n '2,8p' "$0"; exit 2; }
PROTO=$1 TARGET=$2 USER_=$3 PASS=$4
HOST=${TARGET%:*} PORT=${TARGET##*:}
case $PROTO in
  pop3) prog=fetchmail pkg=fetchmail ;;
  imap) prog=mbsync pkg=isync ;;
  *) echo "fetch-time.sh: pop3 or imap, not '$PROTO'" >&2; exit 2 ;;
esac
command -v "$prog" >/dev/null || { echo "fetch-time.sh: $prog is not installed (Debian: $pkg)" >&2; exit 2; }
base=${FETCH_DIR:-${TMPDIR:-/tmp}}
mkdir -p "$base"
W=$(mktemp -d "$base/fetch-time.XXXXXX")
trap 'rm -rf "$W"' EXIT
start=$(date +%s.%N)
if [ "$PROTO" = pop3 ]; then
  # fetchmail wants its run control file private to the user.
  umask 077
  printf 'poll "%s" service %s protocol pop3 user "%s" password "%s" keep fetchall sslproto "" mda "cat >/dev/null"\n' \
    "$HOST" "$PORT" "$USER_" "$PASS" > "$W/fetchmailrc"
  fetchmail -f "$W/fetchmailrc" -i "$W/ids" --pidfile "$W/pid" --nosyslog --fetchlimit 0 >"$W/log" 2>&1 ||
    { echo "fetch-time.sh: fetchmail failed:" >&2; tail -5 "$W/log" >&2; exit 1; }
  end=$(date +%s.%N)
  n=$(grep -c '^reading message' "$W/log" || true) bytes=0
else
  mkdir "$W/mail"
  cat > "$W/mbsyncrc" <<RC
IMAPAccount server
Host $HOST
Port $PORT
User $USER_
Pass $PASS
SSLType None
AuthMechs LOGIN PLAIN

IMAPStore far
Account server

MaildirStore near
Path $W/mail/
Inbox $W/mail/INBOX

Channel pull
Far :far:
Near :near:
Patterns INBOX
Create Near
Sync Pull
SyncState *
RC
  mbsync -q -c "$W/mbsyncrc" -a >"$W/log" 2>&1 ||
    { echo "fetch-time.sh: mbsync failed:" >&2; tail -5 "$W/log" >&2; exit 1; }
  end=$(date +%s.%N)
  n=$(find "$W/mail/INBOX/cur" "$W/mail/INBOX/new" -type f | wc -l)
  bytes=$(find "$W/mail/INBOX/cur" "$W/mail/INBOX/new" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}')
fi
awk -v p="$PROTO" -v t="$TARGET" -v n="$n" -v b="$bytes" -v s="$start" -v e="$end" 'BEGIN {
  d = e - s; printf "fetch-time %s %s: %d msgs in %.2f s = %.1f msgs/s%s\n", p, t, n, d, n / d,
  (b > 0 ? sprintf(", %.1f MB/s", b / d / 1e6) : "") }'
