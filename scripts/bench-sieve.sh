#!/usr/bin/env bash
# Sieve delivery benchmark: SMTP in -> Sieve -> Maildir, back to back on this machine.
#   scripts/bench-sieve.sh [MESSAGES=1000] [SESSIONS=10] [ROUNDS=3]
# Each round sends MESSAGES messages of SIZE (4 KB) bytes over SESSIONS parallel sessions (a new
# connection per message) to three targets, and waits until every message is in its Maildir:
#   1. postern, account bench@peers.test whose active script is the 30-rule script below
#      (header, address, envelope and body tests, fileinto, imap4flags); the last rule files the
#      message into "Bench" with a flag, so every rule runs for every message;
#   2. postern, account plain@peers.test without a script (same server, same file system);
#   3. Postfix handing each message to dovecot-lda, with Pigeonhole running the same script
#      (Debian: postfix, dovecot-core, dovecot-sieve), when installed and running as root.
# Prints per-round figures (accepted msgs/s over SMTP, delivered msgs/s end to end), the medians,
# and the two ratios issue #14 asks about: postern-with-script / Postfix+Pigeonhole (goal >= 3)
# and postern-with-script / postern-without (goal >= 0.8). It prints figures, it asserts nothing.
# The client is Postfix's smtp-source when installed, else scripts/smtp-load.py (slower).
# NO_BUILD=1 skips `cargo build --release`; POSTERN_BIN names another postern binary.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
MSGS=${1:-1000} SESS=${2:-10} ROUNDS=${3:-3}
SIZE=${SIZE:-4096}

[ -n "${NO_BUILD:-}" ] || [ -n "${POSTERN_BIN:-}" ] || cargo build --release -q -p postern
BIN=${POSTERN_BIN:-$PWD/target/release/postern}
WORK=$(mktemp -d)
chmod 755 "$WORK" # Postfix and dovecot-lda run as other users
PF=
LDA=/usr/lib/dovecot/dovecot-lda
if have_peer postfix postfix "comparison with Postfix + dovecot-lda" \
  && have_peer "$LDA" dovecot-core "comparison with Postfix + dovecot-lda" \
  && have_peer sieve-test dovecot-sieve "comparison with Postfix + dovecot-lda (Pigeonhole)"; then
  PF=$WORK/postfix
fi
cleanup() {
  kill "${PID:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  [ -z "$PF" ] || postfix -c "$PF/conf" stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# The 30 rules. Rules 1-29 test what a real user's filters test (lists, spam, senders, bodies) and
# do not match the benchmark's messages; rule 30 matches them all.
cat > "$WORK/bench.sieve" <<'SIEVE'
require ["fileinto", "mailbox", "imap4flags", "envelope", "body", "relational", "comparator-i;ascii-numeric", "subaddress"];
if header :contains "list-id" "announce.example.org" { fileinto "Lists.Announce"; stop; }
if header :contains "list-id" "dev.example.org" { addflag "$List"; fileinto "Lists.Dev"; stop; }
if header :is "precedence" ["bulk", "junk"] { fileinto "Bulk"; stop; }
if header :value "ge" :comparator "i;ascii-numeric" "x-spam-score" "5" { fileinto "Junk"; stop; }
if header :contains "x-spam-flag" "YES" { fileinto "Junk"; stop; }
if address :is "from" ["boss@corp.example", "ceo@corp.example"] { addflag "\\Flagged"; fileinto "Boss"; stop; }
if address :domain :is "from" "billing.example.com" { fileinto "Invoices"; stop; }
if address :domain :is "from" ["facebook.com", "twitter.com", "linkedin.com"] { fileinto "Social"; stop; }
if address :localpart :is "from" ["noreply", "no-reply", "donotreply"] { addflag "\\Seen"; fileinto "Notifications"; stop; }
if envelope :detail "to" "shop" { fileinto "Shopping"; stop; }
if envelope :is "from" "alerts@monitoring.example" { fileinto "Alerts"; stop; }
if header :matches "subject" "[JIRA]*" { fileinto "Jira"; stop; }
if header :matches "subject" "*[GitHub]*" { fileinto "GitHub"; stop; }
if header :contains "subject" ["invoice", "receipt", "payment due"] { fileinto "Invoices"; stop; }
if header :contains "subject" ["webinar", "newsletter", "digest"] { addflag "\\Seen"; fileinto "Newsletters"; stop; }
if anyof (header :contains "x-mailer" "MassMailer", header :contains "x-campaign" "") { fileinto "Marketing"; stop; }
if allof (header :contains "from" "calendar", header :contains "content-type" "text/calendar") { fileinto "Calendar"; stop; }
if exists "x-github-reason" { fileinto "GitHub"; stop; }
if header :contains "auto-submitted" "auto-replied" { fileinto "AutoReplies"; stop; }
if size :over 5M { addflag "$Big"; fileinto "Large"; stop; }
if address :is ["to", "cc"] "team@corp.example" { fileinto "Team"; stop; }
if header :contains "received" "untrusted.example.net" { fileinto "Suspicious"; stop; }
if body :contains "unsubscribe from this list" { fileinto "Lists.Other"; stop; }
if body :contains ["wire transfer", "western union", "bitcoin wallet"] { fileinto "Junk"; stop; }
if body :contains "lottery winner" { discard; stop; }
if header :contains "subject" "urgent" { addflag "\\Flagged"; }
if address :domain :is "from" "partner.example" { fileinto "Partners"; stop; }
if header :contains "reply-to" "support@vendor.example" { fileinto "Support"; stop; }
if not exists "message-id" { addflag "$NoMsgId"; }
if address :domain :is "to" "peers.test" { addflag "$Bench"; fileinto :create "Bench"; stop; }
SIEVE

SMTP_PORT=$(free_port) PF_PORT=$(free_port)
DATA=$WORK/data
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
managesieve = []
[smtp]
max_commands = 100000
TOML
P() { "$BIN" -c "$WORK/postern.toml" "$@"; }
P domain add peers.test >/dev/null
echo pw | P user add bench@peers.test >/dev/null
echo pw | P user add plain@peers.test >/dev/null
P sieve put bench@peers.test bench "$WORK/bench.sieve" >/dev/null
P sieve activate bench@peers.test bench >/dev/null
# The binary itself, not the P function, goes to the background: $! must be its pid for cleanup.
POSTERN_LOG=warn "$BIN" -c "$WORK/postern.toml" serve 2>"$WORK/serve.log" &
PID=$!
wait_port "$SMTP_PORT" 30 || { cat "$WORK/serve.log" >&2; exit 1; }

# Postfix -> pipe(8) -> dovecot-lda (as nobody) -> Pigeonhole -> Maildir: the usual Debian setup,
# private to $PF (nothing in /etc is read or changed).
start_postfix() {
  local C=$PF/conf
  mkdir -p "$C" "$PF/queue" "$PF/data" "$PF/mail" "$PF/sieve"
  chmod 755 "$PF"
  chown postfix "$PF/data"
  cp "$WORK/bench.sieve" "$PF/sieve/bench.sieve"
  chown -R nobody:nogroup "$PF/mail" "$PF/sieve"
  cat > "$PF/dovecot.conf" <<CONF
base_dir = $PF/dovecot-run
log_path = $PF/lda.log
mail_location = maildir:$PF/mail/bench
lda_mailbox_autocreate = yes
lda_mailbox_autosubscribe = no
plugin {
  sieve = file:$PF/sieve;active=$PF/sieve/bench.sieve
}
protocol lda {
  mail_plugins = sieve
}
CONF
  mkdir -p "$PF/dovecot-run"; chown nobody:nogroup "$PF/dovecot-run"; touch "$PF/lda.log"; chown nobody "$PF/lda.log"
  : > "$C/main.cf"
  postconf -c "$C" -e \
    "compatibility_level = 3.6" \
    "queue_directory = $PF/queue" \
    "data_directory = $PF/data" \
    "maillog_file = $PF/maillog" \
    "maillog_file_prefixes = $PF" \
    "myhostname = postfix.bench.test" \
    "inet_interfaces = loopback-only" \
    "inet_protocols = ipv4" \
    "mynetworks = 127.0.0.0/8" \
    "mydestination =" \
    "alias_maps =" \
    "alias_database =" \
    "biff = no" \
    "smtpd_relay_restrictions = reject_unauth_destination" \
    "virtual_mailbox_domains = peers.test" \
    "virtual_mailbox_maps = texthash:$C/mailboxes" \
    "virtual_transport = dovecot" \
    "dovecot_destination_recipient_limit = 1" \
    "default_transport = error:this instance delivers locally only" \
    "relay_transport = error:this instance delivers locally only" \
    "local_transport = error:this instance delivers locally only"
  echo "bench@peers.test bench/" > "$C/mailboxes"
  cat > "$C/master.cf" <<CONF
127.0.0.1:$PF_PORT inet n - n - - smtpd
pickup    unix n - n 60 1 pickup
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n - - proxymap
showq     unix n - n - - showq
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
dovecot   unix - n n - - pipe
  flags=DRhu user=nobody:nogroup argv=$LDA -c $PF/dovecot.conf -f \${sender} -a \${original_recipient}
CONF
  postfix -c "$C" start >"$PF/start.log" 2>&1 || {
    cat "$PF/start.log" >&2; cat "$PF/maillog" >&2 2>/dev/null || true; return 1
  }
  wait_port "$PF_PORT"
}
if [ -n "$PF" ] && ! start_postfix; then
  echo "skipped: comparison with Postfix + dovecot-lda (it did not start)"; PF=
fi

if have_peer smtp-source postfix smtp-source >/dev/null; then CLIENT=smtp-source; else
  CLIENT=smtp-load.py; echo "client: scripts/smtp-load.py (smtp-source not installed: apt-get install postfix)"
fi

count() { find "$1/new" "$1/cur" -type f 2>/dev/null | wc -l; }
run() { # HOST:PORT RCPT MAILDIR -> "accepted delivered" msgs/s
  local before t0 t1 t2 got
  before=$(count "$3"); t0=$(date +%s.%N)
  if [ "$CLIENT" = smtp-source ]; then
    smtp-source -s "$SESS" -m "$MSGS" -l "$SIZE" -f sender@client.test -t "$2" -M client.test \
      -S "bench-sieve $(date +%s)" "$1" >/dev/null || return 1
  else
    python3 scripts/smtp-load.py "$1" "$MSGS" "$SESS" --size "$SIZE" --from sender@client.test --to "$2" >/dev/null || return 1
  fi
  t1=$(date +%s.%N)
  for _ in $(seq 3000); do [ "$(count "$3")" -ge $((before + MSGS)) ] && break; sleep 0.1; done   # at most 300 s
  t2=$(date +%s.%N); got=$(( $(count "$3") - before ))
  [ "$got" -ge "$MSGS" ] || echo "warning: only $got of $MSGS messages reached $3" >&2
  awk -v n="$MSGS" -v g="$got" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {printf "%.1f %.1f\n", n/(b-a), g/(c-a)}'
}

MAIL=$DATA/mail/peers.test
: > "$WORK/with"; : > "$WORK/without"; : > "$WORK/pf"
for r in $(seq "$ROUNDS"); do
  w=$(run "127.0.0.1:$SMTP_PORT" bench@peers.test "$MAIL/bench/.Bench"); echo "$w" >> "$WORK/with"
  n=$(run "127.0.0.1:$SMTP_PORT" plain@peers.test "$MAIL/plain"); echo "$n" >> "$WORK/without"
  line="round $r: accepted/delivered msgs/s: postern+sieve $w | postern $n"
  if [ -n "$PF" ]; then
    f=$(run "127.0.0.1:$PF_PORT" bench@peers.test "$PF/mail/bench/.Bench"); echo "$f" >> "$WORK/pf"
    line="$line | postfix+dovecot-lda+sieve $f"
  fi
  echo "$line"
done
med() { cut -d' ' -f"$2" "$WORK/$1" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", (b > 0) ? a/b : 0}'; }
wd=$(med with 2) nd=$(med without 2)
echo "median delivered: postern+sieve $wd msgs/s, postern without script $nd msgs/s (accepted $(med with 1) / $(med without 1))"
echo "postern+sieve / postern without: $(ratio "$wd" "$nd") (goal >= 0.80)"
if [ -n "$PF" ]; then
  fd=$(med pf 2)
  echo "median delivered: postfix+dovecot-lda+sieve $fd msgs/s (accepted $(med pf 1))"
  echo "postern+sieve / postfix+dovecot-lda+sieve: $(ratio "$wd" "$fd") (goal >= 3)"
fi
