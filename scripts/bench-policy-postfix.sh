#!/usr/bin/env bash
# Issue #17's bar: MX accept rate with SPF + DKIM + DMARC checks and one DNSBL on, postern against Postfix with
# the opendkim and opendmarc milters and policyd-spf, on the same machine and the same DNS.
#   scripts/bench-policy-postfix.sh [MESSAGES=2000] [SESSIONS=10] [ROUNDS=3]
#   (also scripts/bench-policy.sh --vs-postfix ...)
# Both sides get the same client (Postfix's smtp-source), the same DKIM-signed 4 KB message from
# bench@client.example (policy_fixture in bench-lib.sh), the same sessions and count, in interleaved
# rounds (postern, Postfix, postern, ...), each on a fresh ext4 of its own when run as root.
#
# DNS: one dnsmasq (TTL 300 records) on a loopback address of its own, port 53 (opendmarc's
# resolver, libresolv, can only ask port 53 of the servers in /etc/resolv.conf). postern's [dns]
# nameservers names it, opendkim (libunbound) its Nameservers;
# opendmarc and policyd-spf (pyspf + dnspython) read /etc/resolv.conf, so the whole Postfix side
# runs in a private mount namespace (unshare -m) where a resolv.conf naming that address is bind-
# mounted over /etc/resolv.conf: the machine's own file is neither changed nor seen by anyone else.
#
# Postfix side (scripts/start-postfix.sh, private config/queue/data dirs under the temp dir, MX
# only, every non-local transport error:): smtpd_milters = opendkim (Mode v), opendmarc; SPF by
# policyd-spf as a spawn(8) policy service (check_policy_service). opendmarc takes SPF from
# policyd-spf's Received-SPF and DKIM from opendkim's Authentication-Results (SPFSelfValidate off,
# SPFIgnoreResults off), so each check runs once. Nothing is skipped for 127.0.0.1 (opendkim
# InternalHosts, opendmarc IgnoreHosts and policyd-spf skip_addresses name 192.0.2.1 only), as
# postern's [smtp] trusted_networks leaves 127.0.0.1 out.
# Before measuring, one message goes to each side and the bench prints what its delivered copy
# says; it refuses to give a ratio unless SPF, DKIM and DMARC passed on both sides.
# CPU per message: postern's process; for Postfix every process under its master (smtpd, cleanup,
# virtual, policyd-spf, ... including those that exited, through the cumulative child times) plus
# opendkim and opendmarc. dnsmasq's CPU is shown apart (both sides ask it).
# Needs root, postfix, opendkim, opendmarc, postfix-policyd-spf-python, dnsmasq-base, python3-dkim,
# openssl, util-linux (unshare); missing Debian packages are installed (package daemons kept from
# starting). NO_BUILD=1 and POSTERN_BIN as in bench-smtp.sh; FRESH_FS=0 keeps both servers on the
# temp dir's file system; PROFILE=1 adds CPU per message by process name (perf); KEEP=1 leaves the
# temp dir (configs, logs, Maildirs) in place at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
MSGS=${1:-2000} SESS=${2:-10} ROUNDS=${3:-3}
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3
[ "$(id -u)" = 0 ] || { echo "bench-policy-postfix.sh: needs root (private Postfix, mount namespace, DNS on port 53)" >&2; exit 2; }

# Install what is missing; policy-rc.d keeps the packages' daemons from starting.
declare -A need=([postfix]=postfix [opendkim]=opendkim [opendmarc]=opendmarc [policyd-spf]=postfix-policyd-spf-python
  [dnsmasq]=dnsmasq-base [unshare]=util-linux [openssl]=openssl)
missing=()
for cmd in "${!need[@]}"; do command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}"); done
"$PY" -c 'import dkim' 2>/dev/null || missing+=(python3-dkim)
if ((${#missing[@]})); then
  echo "installing ${missing[*]}"
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  prc=
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; prc=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || {
    [ -z "$prc" ] || rm -f /usr/sbin/policy-rc.d; echo "bench-policy-postfix.sh: apt-get install ${missing[*]} failed" >&2; exit 2; }
  [ -z "$prc" ] || rm -f /usr/sbin/policy-rc.d
fi
for cmd in postfix opendkim opendmarc policyd-spf dnsmasq smtp-source; do
  have_peer "$cmd" "${need[$cmd]:-postfix}" "bench-policy-postfix.sh" >/dev/null || { echo "bench-policy-postfix.sh: $cmd is missing" >&2; exit 2; }
done

[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p postern
BIN=${POSTERN_BIN:-$PWD/target/release/postern}
WORK=$(mktemp -d)
chmod 755 "$WORK" # the peers run as other users
PIDS=() MOUNTS=() PFDIR=$WORK/postfix PID=
cleanup() {
  [ -z "$PID" ] || kill "$PID" 2>/dev/null || true
  scripts/start-postfix.sh --stop "$PFDIR" >/dev/null 2>&1 || true
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "KEEP: $WORK kept${MOUNTS:+, umount ${MOUNTS[*]} when done}" >&2; return; fi
  for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
fresh_fs() { # DIR: a new ext4 mounted on DIR (see bench-smtp.sh: ext4 makes creating files after many deletions dear)
  mkdir -p "$1"; truncate -s 8G "$1.img"; mkfs.ext4 -q -F "$1.img"
  mount -o loop "$1.img" "$1" 2>/dev/null || { rm -f "$1.img"; return 1; }
  MOUNTS+=("$1")
}
DATA=$WORK/data
if [ "${FRESH_FS:-1}" = 1 ] && command -v mkfs.ext4 >/dev/null && fresh_fs "$WORK/postern-fs" && fresh_fs "$PFDIR"; then
  DATA=$WORK/postern-fs/data; chmod 755 "$PFDIR"
  echo "fresh ext4 file systems: postern $WORK/postern-fs, postfix $PFDIR"
fi

# The sender's domain is client.example, not client.test as in bench-policy.sh: libunbound (opendkim)
# answers *.test itself (an RFC 6761 default local zone), and the only way around that, an unbound
# config file (ResolverConfiguration), makes opendkim 2.11 re-read it from concurrent threads,
# which crashes it ("fatal flex scanner internal error") within a few hundred messages.
DOM=client.example
policy_fixture "$WORK" "$PY" "$DOM"

# A loopback address of our own whose port 53 is free.
DNS_IP=
for _ in $(seq 50); do
  ip=127.0.53.$((RANDOM % 250 + 2))
  if "$PY" -c 'import socket,sys; [socket.socket(socket.AF_INET, t).bind((sys.argv[1], 53)) for t in (socket.SOCK_DGRAM, socket.SOCK_STREAM)]' "$ip" 2>/dev/null; then
    DNS_IP=$ip; break
  fi
done
[ -n "$DNS_IP" ] || { echo "bench-policy-postfix.sh: no free port 53 on 127.0.53.0/24" >&2; exit 1; }
dnsmasq --keep-in-foreground --no-resolv --no-hosts --listen-address="$DNS_IP" --bind-interfaces \
  --user=root --cache-size=0 --local-ttl=300 --neg-ttl=300 --port=53 --pid-file="$WORK/dnsmasq.pid" \
  --conf-file="$WORK/dnsmasq.conf" 2>"$WORK/dnsmasq.log" &
DNS_PID=$!; PIDS+=("$DNS_PID")
printf 'nameserver %s\noptions attempts:2 timeout:2\n' "$DNS_IP" > "$WORK/resolv.conf"
# "${IN_NS[@]}" CMD...: CMD in a private mount namespace that sees $WORK/resolv.conf as /etc/resolv.conf.
IN_NS=(unshare -m --propagation private sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$WORK/resolv.conf")
# Until dnsmasq answers (any reply to a TXT query, sent from inside such a namespace).
for _ in $(seq 50); do
  "${IN_NS[@]}" "$PY" -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.2)
s.sendto(bytes.fromhex("beef01000001000000000000") + b"\x06client\x04test\x00\x00\x10\x00\x01",
         (open("/etc/resolv.conf").read().split()[1], 53))
assert s.recv(512)[:2] == bytes.fromhex("beef")' 2>/dev/null && break
  sleep 0.1
done

# postern: the checks on, 127.0.0.1 not trusted.
SMTP_PORT=$(free_port) PF_PORT=$(free_port) DKIM_PORT=$(free_port) DMARC_PORT=$(free_port)
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
trusted_networks = ["192.0.2.0/24"]
[dns]
nameservers = ["$DNS_IP:53"]
[policy]
enabled = true
dnsbl = ["bl.test"]         # one DNS block list on both sides; dnsmasq lists nobody
TOML
"$BIN" -c "$WORK/postern.toml" domain add peers.test >/dev/null
echo pw | "$BIN" -c "$WORK/postern.toml" user add bench@peers.test >/dev/null
POSTERN_LOG=warn "$BIN" -c "$WORK/postern.toml" serve 2>"$WORK/serve.log" &
PID=$!
wait_port "$SMTP_PORT"

# The milters and policyd-spf, from config files here, on loopback.
AUTHSERV=postfix.bench.test
echo 192.0.2.1 > "$WORK/not-localhost"
chmod 644 "$WORK/not-localhost"
cat > "$WORK/opendkim.conf" <<CONF
Mode v
Socket inet:$DKIM_PORT@127.0.0.1
PidFile $WORK/opendkim.pid
Syslog no
UserID opendkim
AuthservID $AUTHSERV
InternalHosts $WORK/not-localhost
Nameservers $DNS_IP
CONF
PSL=; [ -r /usr/share/publicsuffix/public_suffix_list.dat ] && PSL="PublicSuffixList /usr/share/publicsuffix/public_suffix_list.dat"
cat > "$WORK/opendmarc.conf" <<CONF
Socket inet:$DMARC_PORT@127.0.0.1
PidFile $WORK/opendmarc.pid
Syslog false
UserID opendmarc
AuthservID $AUTHSERV
TrustedAuthservIDs $AUTHSERV
IgnoreHosts $WORK/not-localhost
SPFIgnoreResults false
SPFSelfValidate false
RejectFailures true
FailureReports false
$PSL
CONF
cat > "$WORK/policyd-spf.conf" <<CONF
debugLevel = 0
TestOnly = 1
HELO_reject = Fail
Mail_From_reject = Fail
PermError_reject = False
TempError_Defer = False
skip_addresses = 192.0.2.1/32
CONF
chmod 644 "$WORK"/*.conf
touch "$WORK/opendkim.pid" "$WORK/opendmarc.pid"; chown opendkim "$WORK/opendkim.pid"; chown opendmarc "$WORK/opendmarc.pid"
opendkim -f -x "$WORK/opendkim.conf" 2>"$WORK/opendkim.log" &
DKIM_PID=$!; PIDS+=("$DKIM_PID")
"${IN_NS[@]}" opendmarc -f -c "$WORK/opendmarc.conf" 2>"$WORK/opendmarc.log" &
DMARC_PID=$!; PIDS+=("$DMARC_PID")
wait_port "$DKIM_PORT" || { cat "$WORK/opendkim.log" >&2; exit 1; }
wait_port "$DMARC_PORT" || { cat "$WORK/opendmarc.log" >&2; exit 1; }

POSTFIX_MAIN_EXTRA="smtpd_milters = inet:127.0.0.1:$DKIM_PORT, inet:127.0.0.1:$DMARC_PORT
milter_default_action = tempfail
smtpd_recipient_restrictions = reject_unauth_destination, reject_rbl_client bl.test, check_policy_service unix:private/policyd-spf
policyd-spf_time_limit = 3600" \
POSTFIX_MASTER_EXTRA="policyd-spf unix - n n - 0 spawn user=nobody argv=/usr/bin/policyd-spf $WORK/policyd-spf.conf" \
  "${IN_NS[@]}" scripts/start-postfix.sh "$PFDIR" "$PF_PORT" bench@peers.test >/dev/null
PF_MASTER=$(tr -d ' ' < "$PFDIR/queue/pid/master.pid")

POSTERN_BOX=$DATA/mail/peers.test/bench PF_BOX=$PFDIR/mail/bench
count() { find "$1/new" "$1/cur" -type f 2>/dev/null | wc -l; }
# tree_cpu PID...: user + system clock ticks of the PIDs, every thread and every descendant, the
# exited (reaped) ones included through the cumulative child times.
tree_cpu() {
  "$PY" - "$@" <<'PY'
import os, sys
procs = {}
for p in os.listdir("/proc"):
    if p.isdigit():
        try:
            f = open("/proc/%s/stat" % p).read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        procs[int(p)] = (int(f[1]), sum(int(x) for x in f[11:15]))  # ppid; utime stime cutime cstime
todo, seen, total = [int(a) for a in sys.argv[1:]], set(), 0
while todo:
    p = todo.pop()
    if p in seen or p not in procs:
        continue
    seen.add(p); total += procs[p][1]
    todo += [c for c, (pp, _) in procs.items() if pp == p]
print(total)
PY
}
TICKS=$(getconf CLK_TCK)
send() { # PORT COUNT
  smtp-source -s "$SESS" -m "$2" -F "$WORK/msg" -f "bench@$DOM" -t bench@peers.test -M "$DOM" "127.0.0.1:$1" >/dev/null
}
wait_box() { # MAILDIR COUNT: until it holds COUNT messages (at most 300 s)
  local _; for _ in $(seq 3000); do [ "$(count "$1")" -ge "$2" ] && return 0; sleep 0.1; done; return 1
}

# Did each side check? One message each; the delivered copy's headers say.
send "$SMTP_PORT" 1; send "$PF_PORT" 1
wait_box "$POSTERN_BOX" 1 || true; wait_box "$PF_BOX" 1 || true
hdrs() { # MAILDIR -> the header of its first message, folded lines joined
  local f; f=$(find "$1/new" "$1/cur" -type f -print -quit 2>/dev/null)
  [ -n "$f" ] && sed '/^\r\?$/q' "$f" | tr -d '\r' | awk '/^[ \t]/ {sub(/^[ \t]+/, " "); printf "%s", $0; next} NR > 1 {print ""} {printf "%s", $0} END {print ""}'
}
ok=1
p_ar=$(hdrs "$POSTERN_BOX" | grep -i '^Authentication-Results:' || true)
p_seen=$(for m in spf dkim dmarc; do grep -qiE "\b$m=pass\b" <<< "$p_ar" && echo -n "$m=pass "; done)
echo "postern checked: ${p_seen:-nothing} | ${p_ar:0:300}"
[ "$p_seen" = "spf=pass dkim=pass dmarc=pass " ] || { ok=; echo "postern did not pass all three checks; see $WORK/serve.log" >&2; }
f_h=$(hdrs "$PF_BOX")
f_spf=$(grep -i '^Received-SPF:' <<< "$f_h" || true)
f_dkim=$(grep -i '^Authentication-Results:' <<< "$f_h" | grep -iE '\bdkim=pass\b' || true)
f_dmarc=$(grep -i '^Authentication-Results:' <<< "$f_h" | grep -iE '\bdmarc=pass\b' || true)
f_seen=$(grep -qiE '^Received-SPF: Pass' <<< "$f_spf" && echo -n "policyd-spf Received-SPF: Pass, ")$([ -n "$f_dkim" ] && echo -n "opendkim dkim=pass, ")$([ -n "$f_dmarc" ] && echo -n "opendmarc dmarc=pass")
echo "postfix checked: ${f_seen:-nothing} | ${f_spf:0:120} | ${f_dkim:0:120} | ${f_dmarc:0:120}"
[ "$f_seen" = "policyd-spf Received-SPF: Pass, opendkim dkim=pass, opendmarc dmarc=pass" ] || {
  ok=; echo "Postfix did not pass all three checks; logs: $PFDIR/maillog $WORK/opendkim.log $WORK/opendmarc.log" >&2; }
if [ -z "$ok" ]; then
  echo "no ratio: a side did not check SPF, DKIM and DMARC$([ -n "${KEEP:-}" ] || echo " (KEEP=1 keeps the logs)")" >&2
  exit 1
fi

# PROFILE=1 (needs perf): each round also samples every CPU with perf at PERF_HZ, and the end
# shows each side's CPU per message by process name (Postfix's smtpd, cleanup, policyd-spf,
# opendkim, ...; postern's threads), exited processes included.
PERF_HZ=499
declare -A SIDE_COMMS=([postern]='^(postern|tokio-)' [postfix]='^(smtpd|cleanup|qmgr|virtual|master|postlogd|trivial-rewrite|anvil|spawn|policyd-spf|opendkim|opendmarc|pickup|proxymap|scache|bounce)$')
if [ -n "${PROFILE:-}" ] && ! command -v perf >/dev/null; then echo "PROFILE: perf is missing (Debian: linux-perf)" >&2; exit 2; fi
run() { # NAME PORT MAILDIR CPU_PIDS... -> appends "accepted delivered cpu_us dns_us" to $WORK/r-NAME
  local name=$1 port=$2 box=$3 before c0 d0 t0 t1 t2 got line perf=; shift 3
  if [ -n "${PROFILE:-}" ]; then
    perf record -a -q -F "$PERF_HZ" -o "$WORK/perf.data" -- sleep 100000 >/dev/null 2>&1 & perf=$!
    sleep 1 # perf is sampling
  fi
  before=$(count "$box"); c0=$(tree_cpu "$@"); d0=$(tree_cpu "$DNS_PID"); t0=$(date +%s.%N)
  send "$port" "$MSGS" || { echo "$name: smtp-source failed (an unexpected reply)" >&2; return 1; }
  t1=$(date +%s.%N)
  wait_box "$box" $((before + MSGS)) || true
  t2=$(date +%s.%N); got=$(( $(count "$box") - before ))
  if [ -n "$perf" ]; then
    kill -INT "$perf"; wait "$perf" || true
    perf script -i "$WORK/perf.data" -F comm 2>/dev/null | sed 's/^ *//; s/ *$//' | grep -E "${SIDE_COMMS[$name]}" >> "$WORK/prof-$name" || true
  fi
  line=$(awk -v n="$MSGS" -v g="$got" -v a="$t0" -v b="$t1" -v c="$t2" -v cpu="$(( $(tree_cpu "$@") - c0 ))" \
    -v dns="$(( $(tree_cpu "$DNS_PID") - d0 ))" -v hz="$TICKS" \
    'BEGIN {printf "%.1f %.1f %.1f %.1f\n", n/(b-a), g/(c-a), cpu/hz*1e6/n, dns/hz*1e6/n}')
  echo "$line" >> "$WORK/r-$name"
  echo "$line"
}
: > "$WORK/r-postern"; : > "$WORK/r-postfix"
show() { awk '{printf "accepted %s msgs/s, delivered %s msgs/s, CPU %s µs/msg (dnsmasq %s)", $1, $2, $3, $4}' <<< "$1"; }
for r in $(seq "$ROUNDS"); do
  p=$(run postern "$SMTP_PORT" "$POSTERN_BOX" "$PID")
  f=$(run postfix "$PF_PORT" "$PF_BOX" "$PF_MASTER" "$DKIM_PID" "$DMARC_PID")
  echo "round $r: postern $(show "$p") | postfix $(show "$f")"
done
# Every delivered message, not just the first, must show the three passes (a DNS time-out under
# load would leave dkim=temperror, and DMARC could still pass on SPF alone).
unchecked() { # MAILDIR PATTERN...: how many of its messages lack one of the patterns
  local pat; for pat in "${@:2}"; do grep -rLE "$pat" "$1/new" "$1/cur" 2>/dev/null || true; done | sort -u | wc -l
}
pu=$(unchecked "$POSTERN_BOX" 'spf=pass smtp\.mailfrom' 'dkim=pass' 'dmarc=pass')
fu=$(unchecked "$PF_BOX" '^Received-SPF: Pass' 'dkim=pass' 'dmarc=pass')
echo "delivered without spf, dkim and dmarc pass: postern $pu of $(count "$POSTERN_BOX"), postfix $fu of $(count "$PF_BOX")"
[ "$pu" = 0 ] && [ "$fu" = 0 ] || { echo "no ratio: some messages were not fully checked" >&2; exit 1; }
med() { cut -d" " -f"$2" "$WORK/r-$1" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
pa=$(med postern 1) fa=$(med postfix 1) pd=$(med postern 2) fd=$(med postfix 2) pc=$(med postern 3) fc=$(med postfix 3)
echo "median accepted:  postern $pa msgs/s, postfix+milters $fa msgs/s, ratio postern/postfix $(ratio "$pa" "$fa")"
echo "median delivered: postern $pd msgs/s, postfix+milters $fd msgs/s, ratio $(ratio "$pd" "$fd")"
echo "median CPU per message: postern $pc µs, postfix+milters $fc µs, ratio postfix/postern $(ratio "$fc" "$pc")"
if [ -n "${PROFILE:-}" ]; then
  for side in postern postfix; do
    echo "$side CPU per message by process (perf, $PERF_HZ Hz): $(sort "$WORK/prof-$side" | uniq -c | sort -rn |
      awk -v hz="$PERF_HZ" -v n=$((MSGS * ROUNDS)) '{printf "%s%s %.0f µs", (NR > 1 ? ", " : ""), $2, $1 / hz * 1e6 / n}')"
  done
fi
echo "($MSGS messages x $ROUNDS rounds, $SESS sessions, smtp-source, Postfix $(postconf -c "$PFDIR/conf" -h mail_version), opendkim $(dpkg-query -W -f '${Version}' opendkim), opendmarc $(dpkg-query -W -f '${Version}' opendmarc), policyd-spf $(dpkg-query -W -f '${Version}' postfix-policyd-spf-python))"
