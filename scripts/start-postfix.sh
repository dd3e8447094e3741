#!/usr/bin/env bash
# start-postfix.sh DIR PORT [ADDRESS=bench@peers.test]   start a private Postfix on 127.0.0.1:PORT
# start-postfix.sh --stop DIR                             stop it (waits until it has exited)
#
# The reference MTA of scripts/bench-smtp.sh. Its configuration (DIR/conf), queue (DIR/queue), data
# and log (DIR/maillog) live under DIR; /etc/postfix is neither read nor changed (postfix -c). It
# accepts mail for ADDRESS only and delivers it with virtual(8) into the Maildir DIR/mail/<local>/
# (owned by nobody); any other recipient is refused and nothing leaves the machine. No TLS.
# Needs root (Postfix's master runs as root) and the Debian package postfix; DIR must be reachable
# by the postfix and nobody users. Prints the master pid on success.
# Env POSTFIX_MAIN_EXTRA: more main.cf settings, one "name = value" a line (milters, restrictions);
# POSTFIX_MASTER_EXTRA: more master.cf lines (a policy service). Used by bench-policy-postfix.sh.
set -euo pipefail
usage="usage: start-postfix.sh DIR PORT [ADDRESS] | start-postfix.sh --stop DIR"
export PATH=$PATH:/usr/sbin:/sbin
if [ "${1:-}" = --stop ]; then
  DIR=${2:?$usage}
  pid=$(tr -d ' ' < "$DIR/queue/pid/master.pid" 2>/dev/null || true)
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || exit 0
  postfix -c "$DIR/conf" stop >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done
  echo "start-postfix.sh: pid $pid still running" >&2
  exit 1
fi
DIR=${1:?$usage} PORT=${2:?$usage} ADDRESS=${3:-bench@peers.test}
command -v postfix >/dev/null || { echo "start-postfix.sh: postfix is not installed (Debian: postfix)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "start-postfix.sh: needs root" >&2; exit 2; }
LOCAL=${ADDRESS%@*} DOMAIN=${ADDRESS#*@}
mkdir -p "$DIR/conf" "$DIR/queue" "$DIR/data" "$DIR/mail"
DIR=$(cd "$DIR" && pwd)
chmod 755 "$DIR"
chown postfix "$DIR/data"
chown nobody:nogroup "$DIR/mail"
C=$DIR/conf
: > "$C/main.cf"
postconf -c "$C" -e \
  "compatibility_level = 3.6" \
  "queue_directory = $DIR/queue" \
  "data_directory = $DIR/data" \
  "maillog_file = $DIR/maillog" \
  "maillog_file_prefixes = $DIR" \
  "myhostname = postfix.bench.test" \
  "inet_interfaces = loopback-only" \
  "inet_protocols = ipv4" \
  "mynetworks = 127.0.0.0/8" \
  "mydestination =" \
  "alias_maps =" \
  "alias_database =" \
  "biff = no" \
  "smtpd_relay_restrictions = reject_unauth_destination" \
  "virtual_mailbox_domains = $DOMAIN" \
  "virtual_mailbox_base = $DIR/mail" \
  "virtual_mailbox_maps = texthash:$C/mailboxes" \
  "virtual_uid_maps = static:65534" \
  "virtual_gid_maps = static:65534" \
  "default_transport = error:this instance delivers locally only" \
  "relay_transport = error:this instance delivers locally only" \
  "local_transport = error:this instance delivers locally only"
if [ -n "${POSTFIX_MAIN_EXTRA:-}" ]; then
  mapfile -t extra < <(grep . <<< "$POSTFIX_MAIN_EXTRA")
  postconf -c "$C" -e "${extra[@]}"
fi
echo "$ADDRESS $LOCAL/" > "$C/mailboxes"   # the trailing slash asks virtual(8) for a Maildir
# The services a receiving MTA needs, none chrooted (the queue directory holds no copy of /etc).
cat > "$C/master.cf" <<CONF
127.0.0.1:$PORT inet n - n - - smtpd
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
virtual   unix - n n - - virtual
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
${POSTFIX_MASTER_EXTRA:-}
CONF
# Postfix reports start-up errors to syslog only: on failure, show its own check and the log.
postfix -c "$C" start >"$DIR/start.log" 2>&1 || {
  cat "$DIR/start.log" >&2; postfix -c "$C" check >&2 || true; cat "$DIR/maillog" >&2 2>/dev/null || true; exit 1
}
for _ in $(seq 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    tr -d ' ' < "$DIR/queue/pid/master.pid"
    exit 0
  fi
  sleep 0.1
done
echo "start-postfix.sh: postfix did not listen on 127.0.0.1:$PORT; log:" >&2
cat "$DIR/maillog" >&2 || true
exit 1
