#!/usr/bin/env bash
# Issue #18's bar: outbound delivery rate postern -> postern with DANE enforced (TLSA answers
# cached) against the rate with opportunistic TLS, and Postfix's rate for the same job.
#   scripts/bench-dane.sh [MESSAGES=2000] [ROUNDS=3]
#
# DNS: bench.test, signed with ldns-keygen/ldns-signzone (ECDSA P-256), MX mx.bench.test ->
# 127.0.0.181 and "_25._tcp.mx.bench.test TLSA 3 1 1" of the receiver's key (openssl). One unbound
# serves the signed zone (auth-zone, 127.0.0.1, a free port); a second, validating unbound (the
# zone's DS as trust anchor) answers on port 53 of a loopback address of its own, because
# Postfix's resolver (libresolv) can only ask port 53 of the servers in /etc/resolv.conf: each
# Postfix runs in a private mount namespace (unshare -m) where a resolv.conf naming that address
# (with "options trust-ad", else glibc drops the AD bit) is bind-mounted over /etc/resolv.conf.
# postern's [dns] nameservers names the validator directly. Nothing leaves the machine.
#
# Receiver (the same one for every sender): one postern on 127.0.0.181:25 with a self-signed
# certificate for mx.bench.test, bench@bench.test delivered into its Maildir, inbound checks off.
# Senders, each given the same job: MESSAGES 4 KB messages submitted with smtp-source (10
# sessions) from 127.0.0.1 (a trusted network, so relayed by MX lookup); the time runs from the
# first submission until the receiver's Maildir holds all of them (delivery rate, msgs/s).
#   postern-dane: [dns] dnssec = "trust-ad", [outbound] dane = true (DANE enforced);
#   postern-opp:  [dns] dnssec = "off" (opportunistic TLS, certificate not checked);
#   postfix-dane: smtp_tls_security_level = dane, smtp_dns_support_level = dnssec (Postfix's
#                 default opens a new TLS connection for every message);
#   postfix-dane-reuse: the same with smtp_tls_connection_reuse = yes (tlsproxy(8) keeps TLS
#                 connections open for reuse, as postern does);
#   postfix-may:  smtp_tls_security_level = may (for context).
# Rounds are interleaved (the five modes in turn, ROUNDS times, each round starting one mode later); the medians and the ratios
# postern-dane/postern-opp (bar >= 0.80) and postern-dane/postfix-dane are printed. Before any
# figure, one message per sender proves the mode: postern's `tls-report bench.test` must show
# policy "tlsa" with successes (and none for the opportunistic sender), Postfix's log "Verified
# TLS connection established" (dane) / "TLS connection established" (may); else no figures.
# Also shown per mode: the sender's CPU per message (postern's process; every process under
# Postfix's master, exited ones included through the cumulative child times).
# Needs root, unbound, ldnsutils, openssl, postfix (smtp-source), util-linux (unshare); missing
# Debian packages are installed (package daemons kept from starting). NO_BUILD=1 skips
# `cargo build --release`; POSTERN_BIN overrides the binary; KEEP=1 leaves the temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
MSGS=${1:-2000} ROUNDS=${2:-3}
SESS=10 SIZE=4096
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3
die() { echo "bench-dane.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "bench-dane.sh: needs root (port 25 and 53, private Postfix, mount namespace)" >&2; exit 2; }
case "$MSGS$ROUNDS" in *[!0-9]*) echo "usage: bench-dane.sh [MESSAGES] [ROUNDS] (positive numbers)" >&2; exit 2 ;; esac
[ "$MSGS" -gt 0 ] && [ "$ROUNDS" -gt 0 ] || { echo "usage: bench-dane.sh [MESSAGES] [ROUNDS] (positive numbers)" >&2; exit 2; }

# Install what is missing; policy-rc.d keeps the packages' daemons from starting.
declare -A need=([unbound]=unbound [ldns-keygen]=ldnsutils [ldns-signzone]=ldnsutils [openssl]=openssl
  [postfix]=postfix [smtp-source]=postfix [unshare]=util-linux)
missing=()
for cmd in "${!need[@]}"; do command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}"); done
if ((${#missing[@]})); then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "installing ${missing[*]}"
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  prc=
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; prc=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || {
    [ -z "$prc" ] || rm -f /usr/sbin/policy-rc.d; echo "bench-dane.sh: apt-get install ${missing[*]} failed" >&2; exit 2; }
  [ -z "$prc" ] || rm -f /usr/sbin/policy-rc.d
fi
for cmd in "${!need[@]}"; do
  have_peer "$cmd" "${need[$cmd]}" "bench-dane.sh" >/dev/null || { echo "bench-dane.sh: $cmd is missing" >&2; exit 2; }
done

[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p postern
BIN=${POSTERN_BIN:-$PWD/target/release/postern}
[ -x "$BIN" ] || die "no postern binary at $BIN"
WORK=$(mktemp -d)
chmod 755 "$WORK" # Postfix's processes run as other users
PIDS=() POSTERNS=() PF_DIRS=()
cleanup() {
  for p in "${POSTERNS[@]}"; do kill "$p" 2>/dev/null || true; done
  for d in "${PF_DIRS[@]}"; do scripts/start-postfix.sh --stop "$d" >/dev/null 2>&1 || true; done
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "KEEP: $WORK kept" >&2; return; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# free_ip PREFIX PORT: a loopback address PREFIX.N whose TCP and UDP PORT are free.
free_ip() {
  local ip _
  for _ in $(seq 50); do
    ip=$1.$((RANDOM % 250 + 2))
    "$PY" -c 'import socket,sys; [socket.socket(socket.AF_INET, t).bind((sys.argv[1], int(sys.argv[2]))) for t in (socket.SOCK_DGRAM, socket.SOCK_STREAM)]' "$ip" "$2" 2>/dev/null && { echo "$ip"; return 0; }
  done
  return 1
}
free_udp_port() { # a port free on 127.0.0.1 for UDP and TCP (unbound listens on both)
  "$PY" -c '
import socket
while True:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0)); p = u.getsockname()[1]
    try:
        socket.socket().bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass'
}
MX_IP=127.0.0.181
# (SO_REUSEADDR, as servers bind: the previous run's connections may linger in TIME_WAIT.)
"$PY" -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.181", 25)); s.listen()' 2>/dev/null ||
  die "127.0.0.181:25 is in use"
DNS_IP=$(free_ip 127.0.53 53) || die "no free port 53 on 127.0.53.0/24"

# The receiver's certificate and its RFC 6698 "3 1 1" digest (SHA-256 of the SubjectPublicKeyInfo).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 -subj /CN=mx.bench.test \
  -addext subjectAltName=DNS:mx.bench.test -keyout "$WORK/mx.key" -out "$WORK/mx.crt" 2>/dev/null
TLSA=$(openssl x509 -in "$WORK/mx.crt" -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1)

# The signed zone, its authoritative unbound and the validating one.
Z=$WORK/dns
mkdir -p "$Z"
cat > "$Z/bench.test.zone" <<ZONE
\$TTL 3600
bench.test. IN SOA ns.bench.test. hostmaster.bench.test. 1 3600 600 86400 3600
bench.test. IN NS ns.bench.test.
ns.bench.test. IN A 127.0.0.1
bench.test. IN MX 10 mx.bench.test.
mx.bench.test. IN A $MX_IP
_25._tcp.mx.bench.test. IN TLSA 3 1 1 $TLSA
ZONE
( cd "$Z"
  ksk=$(ldns-keygen -a ECDSAP256SHA256 -k bench.test) zsk=$(ldns-keygen -a ECDSAP256SHA256 bench.test)
  ldns-signzone -n bench.test.zone "$ksk" "$zsk"
  cp "$ksk.ds" anchors.ds ) || die "signing the zone failed"
AUTH_PORT=$(free_udp_port)
unbound_common() { # INTERFACE
  cat <<CONF
server:
  interface: $1
  username: ""
  chroot: ""
  directory: "$Z"
  pidfile: ""
  do-daemonize: no
  use-syslog: no
  logfile: ""
  verbosity: 0
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  local-zone: "test." nodefault
  local-zone: "." static
  local-zone: "bench.test." transparent
CONF
}
{ unbound_common "127.0.0.1@$AUTH_PORT"
  printf 'auth-zone:\n  name: "bench.test"\n  zonefile: "%s"\n  for-downstream: yes\n  for-upstream: no\n' "$Z/bench.test.zone.signed"
} > "$Z/auth.conf"
{ unbound_common "$DNS_IP@53"
  printf '  module-config: "validator iterator"\n  trust-anchor-file: "%s"\n' "$Z/anchors.ds"
  printf 'stub-zone:\n  name: "bench.test"\n  stub-addr: 127.0.0.1@%s\n' "$AUTH_PORT"
} > "$Z/validator.conf"
unbound -d -c "$Z/auth.conf" >/dev/null 2>"$Z/auth.log" & PIDS+=($!)
unbound -d -c "$Z/validator.conf" >/dev/null 2>"$Z/validator.log" & PIDS+=($!)
# dnsq NAME TYPE: "RCODE AD ANSWERS" from the validator (a DNSSEC-OK query, as from a stub resolver).
dnsq() {
  "$PY" - "$DNS_IP" "$1" "$2" <<'PY'
import random, socket, struct, sys
ip, name, qtype = sys.argv[1], sys.argv[2], {"MX": 15, "A": 1, "TLSA": 52, "SOA": 6}[sys.argv[3]]
qid = random.randrange(65536)
q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 1)
q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0" + struct.pack(">HH", qtype, 1)
q += b"\0" + struct.pack(">HHIH", 41, 4096, 0x8000, 0)  # OPT with DO
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.5)
s.sendto(q, (ip, 53))
r = s.recv(4096)
flags, an = struct.unpack(">H", r[2:4])[0], struct.unpack(">H", r[6:8])[0]
assert r[:2] == q[:2]
print(flags & 15, "ad" if flags & 0x20 else "-", an)
PY
}
for _ in $(seq 100); do
  a=$(dnsq bench.test SOA 2>/dev/null) && [ "${a%% *}" = 0 ] && break
  sleep 0.2
done
for rr in "bench.test MX" "mx.bench.test A" "_25._tcp.mx.bench.test TLSA"; do
  # shellcheck disable=SC2086
  a=$(dnsq $rr 2>/dev/null) || die "the validating unbound on $DNS_IP:53 does not answer; logs in $Z"
  [[ $a == "0 ad "[1-9]* ]] || die "$rr: no validated answer (rcode, AD, answers: $a); logs in $Z"
done
echo "DNS: bench.test signed, validated by unbound on $DNS_IP:53 (MX, A and TLSA answers carry AD)"
printf 'nameserver %s\noptions trust-ad attempts:2 timeout:2\n' "$DNS_IP" > "$WORK/resolv.conf"
# "${IN_NS[@]}" CMD...: CMD in a private mount namespace that sees $WORK/resolv.conf as /etc/resolv.conf.
IN_NS=(unshare -m --propagation private sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$WORK/resolv.conf")

OTHERS=$(for s in submission submissions imap imaps pop3 pop3s managesieve; do echo "$s = []"; done)
# The receiver: bench@bench.test, a Maildir, no inbound checks (a sink that does the same work for all).
cat > "$WORK/receiver.toml" <<TOML
hostname = "mx.bench.test"
data_dir = "$WORK/receiver"
[listen]
smtp = ["$MX_IP:25"]
$OTHERS
[tls]
cert = "$WORK/mx.crt"
key = "$WORK/mx.key"
[smtp]
max_commands = 100000
trusted_networks = ["127.0.0.0/8"]
[dns]
nameservers = ["$DNS_IP:53"]
[policy]
enabled = false
TOML
POSTERN_LOG=warn "$BIN" -c "$WORK/receiver.toml" domain add bench.test >/dev/null
echo pw | POSTERN_LOG=warn "$BIN" -c "$WORK/receiver.toml" user add bench@bench.test >/dev/null
POSTERN_LOG=warn "$BIN" -c "$WORK/receiver.toml" serve 2>"$WORK/receiver.log" & POSTERNS+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/$MX_IP/25") 2>/dev/null && break; sleep 0.1; done
(exec 3<>"/dev/tcp/$MX_IP/25") 2>/dev/null || { cat "$WORK/receiver.log" >&2; die "the receiver does not listen on $MX_IP:25"; }
BOX=$WORK/receiver/mail/bench.test/bench

# The postern senders: relay for 127.0.0.0/8 by MX lookup through the validator.
declare -A PORT SPID
postern_sender() { # NAME DNSSEC
  local name=$1 d=$WORK/$1
  PORT[$name]=$(free_port)
  cat > "$WORK/$name.toml" <<TOML
hostname = "$name.sender.test"
data_dir = "$d"
[listen]
smtp = ["127.0.0.1:${PORT[$name]}"]
$OTHERS
[smtp]
max_commands = 100000
trusted_networks = ["127.0.0.0/8"]
[dns]
nameservers = ["$DNS_IP:53"]
dnssec = "$2"
[outbound]
dane = true
[policy]
enabled = false
TOML
  POSTERN_LOG=warn "$BIN" -c "$WORK/$name.toml" serve 2>"$WORK/$name.log" &
  SPID[$name]=$!; POSTERNS+=($!)
  wait_port "${PORT[$name]}" || { cat "$WORK/$name.log" >&2; die "$name did not start"; }
}
postern_sender postern-dane trust-ad
postern_sender postern-opp off

# The Postfix senders: start-postfix.sh's private instance, relaying from 127.0.0.0/8 with smtp(8).
postfix_sender() { # NAME LEVEL [REUSE]
  local name=$1 d=$WORK/$1 extra
  PORT[$name]=$(free_port)
  extra="smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
default_transport = smtp
relay_transport = smtp
smtp_tls_security_level = $2
smtp_tls_loglevel = 1
smtp_host_lookup = dns"
  [ "$2" != dane ] || extra+=$'\nsmtp_dns_support_level = dnssec'
  [ -z "${3:-}" ] || extra+=$'\nsmtp_tls_connection_reuse = yes'
  PF_DIRS+=("$d")
  POSTFIX_MAIN_EXTRA="$extra" POSTFIX_MASTER_EXTRA="smtp      unix - - n - - smtp
tlsmgr    unix - - n 1000? 1 tlsmgr
tlsproxy  unix - - n - 0 tlsproxy" \
    "${IN_NS[@]}" scripts/start-postfix.sh "$d" "${PORT[$name]}" nobody@sender.invalid >/dev/null ||
    die "$name: Postfix did not start"
  SPID[$name]=$(tr -d ' ' < "$d/queue/pid/master.pid")
}
postfix_sender postfix-dane dane
postfix_sender postfix-dane-reuse dane reuse
postfix_sender postfix-may may
MODES=(postern-dane postern-opp postfix-dane postfix-dane-reuse postfix-may)

# The message: 4 KB, LF line ends (smtp-source -F).
"$PY" - "$WORK/msg" "$SIZE" <<'PY'
import sys
line = "x" * 78 + "\n"
body = (line * (int(sys.argv[2]) // 79 + 1))[:int(sys.argv[2])].rsplit("\n", 1)[0] + "\n"
open(sys.argv[1], "w").write("From: <bench@sender.test>\nTo: <bench@bench.test>\nSubject: bench-dane\n"
                              "Date: Thu, 03 Dec 2026 10:00:00 +0000\nMessage-ID: <bench-dane@sender.test>\n\n" + body)
PY
count() { find "$1/new" "$1/cur" -type f 2>/dev/null | wc -l; }
send() { # MODE COUNT
  smtp-source -s "$SESS" -m "$2" -F "$WORK/msg" -f bench@sender.test -t bench@bench.test -M sender.test "127.0.0.1:${PORT[$1]}" >/dev/null
}
wait_box() { # COUNT: until the receiver's Maildir holds COUNT messages (at most 600 s)
  local _; for _ in $(seq 6000); do [ "$(count "$BOX")" -ge "$1" ] && return 0; sleep 0.1; done; return 1
}

# Does each sender do what its mode says? One message each, then its own record of the TLS used.
n=0
for m in "${MODES[@]}"; do
  n=$((n + 1)); send "$m" 1 || die "$m: smtp-source failed"
  wait_box "$n" || die "$m: the first message did not arrive in 600 s; logs: $WORK/$m.log $WORK/$m/maillog $WORK/receiver.log"
done
ok=1
# tls_rows NAME: postern's recorded TLS outcomes for bench.test as "policy result sessions" lines
# (data_dir/tlsrpt.db, written in half-second batches).
tls_rows() {
  local out
  out=$("$BIN" -c "$WORK/$1.toml" tls-report bench.test 2>&1) || { echo "$1: tls-report failed: $out" >&2; return 1; }
  awk -F'\t' 'NR > 1 && NF >= 5 {print $2, $4, $5}' <<< "$out"
}
# dane_sessions: successful DANE sessions of postern-dane; fails when any of its sessions was not DANE.
dane_sessions() {
  local rows
  rows=$(tls_rows postern-dane) || return 1
  if grep -qv '^tlsa success ' <<< "$rows"; then
    echo "postern-dane: sessions other than successful DANE recorded: $(tr '\n' ';' <<< "$rows")" >&2; return 1
  fi
  awk '{s += $3} END {print s + 0}' <<< "$rows"
}
for _ in $(seq 60); do s=$(dane_sessions 2>/dev/null) && [ "${s:-0}" -gt 0 ] && break; sleep 0.5; done
if s=$(dane_sessions) && [ "${s:-0}" -gt 0 ]; then
  echo "postern-dane tls-report bench.test: $(tls_rows postern-dane | tr '\n' ';')"
else
  ok=; echo "postern-dane: no successful DANE (tlsa) session recorded; log $WORK/postern-dane.log" >&2
fi
rows=$(tls_rows postern-opp) || { ok=; rows="tls-report failed"; }
echo "postern-opp tls-report bench.test: $(tr '\n' ';' <<< "$rows")"
! grep -q '^tlsa' <<< "$rows" || { ok=; echo "postern-opp: DANE was used, but this mode is opportunistic TLS" >&2; }
pf_tls() { grep -E 'TLS connection established to mx\.bench\.test' "$WORK/$1/maillog" | head -1 | sed 's/^.*postfix\/[a-z]*\[[0-9]*\]: //'; }
for m in postfix-dane postfix-dane-reuse postfix-may; do
  t=$(pf_tls "$m")
  echo "$m log: ${t:-no TLS connection logged}"
  case "$m:$t" in
    postfix-dane:Verified\ TLS* | postfix-dane-reuse:Verified\ TLS*) ;;
    postfix-may:Untrusted\ TLS* | postfix-may:Anonymous\ TLS*) ;;
    *) ok=; echo "$m: not the TLS its mode says; log $WORK/$m/maillog" >&2 ;;
  esac
done
# Every copy the receiver holds came over TLS (its Received: says "with ESMTPS"; smtp-source's hop is plain ESMTP).
plain() { grep -rL 'with ESMTPS' "$BOX/new" "$BOX/cur" 2>/dev/null | wc -l; }
[ "$(plain)" = 0 ] || { ok=; echo "$(plain) of the first messages reached the receiver without TLS" >&2; }
[ -n "$ok" ] || die "no figures: a sender did not use the TLS of its mode$([ -n "${KEEP:-}" ] || echo " (KEEP=1 keeps the logs)")"

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
        procs[int(p)] = (int(f[1]), sum(int(x) for x in f[11:15]))
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
run() { # MODE -> "delivered_msgs_per_s sender_cpu_us_per_msg", appended to $WORK/r-MODE
  local m=$1 before c0 t0 t1 line
  before=$(count "$BOX"); c0=$(tree_cpu "${SPID[$m]}"); t0=$(date +%s.%N)
  send "$m" "$MSGS" || die "$m: smtp-source failed (an unexpected reply)"
  wait_box $((before + MSGS)) || die "$m: $((before + MSGS - $(count "$BOX"))) messages missing after 600 s"
  t1=$(date +%s.%N)
  line=$(awk -v n="$MSGS" -v a="$t0" -v b="$t1" -v cpu="$(( $(tree_cpu "${SPID[$m]}") - c0 ))" -v hz="$TICKS" \
    'BEGIN {printf "%.1f %.0f\n", n/(b-a), cpu/hz*1e6/n}')
  echo "$line" >> "$WORK/r-$m"
  echo "$line"
}
for m in "${MODES[@]}"; do : > "$WORK/r-$m"; done
# Round r starts with mode r (the order rotates), so no mode always runs first or right after
# the same other one (the receiver's and the machine's state differ between those positions).
declare -A L
for r in $(seq "$ROUNDS"); do
  for i in $(seq 0 $((${#MODES[@]} - 1))); do
    m=${MODES[$(( (i + r - 1) % ${#MODES[@]} ))]}
    L[$m]=$(run "$m")
  done
  out="round $r (first: ${MODES[$(( (r - 1) % ${#MODES[@]} ))]}):"
  for m in "${MODES[@]}"; do out+=" $m $(cut -d' ' -f1 <<< "${L[$m]}") msgs/s ($(cut -d' ' -f2 <<< "${L[$m]}") µs CPU/msg);"; done
  echo "$out"
done
# Every round of the DANE modes went over DANE: postern's record counts every delivery.
sleep 1 # the last half-second batch of TLS outcomes
dane_ok=$(dane_sessions) || die "no ratio: postern-dane sent without DANE"
pf_verified() { grep -c 'Verified TLS connection established to mx\.bench\.test' "$WORK/$1/maillog" || true; }
pf_other() { grep -E 'TLS connection established to mx\.bench\.test' "$WORK/$1/maillog" | grep -vc Verified || true; }
echo "postern-dane: $dane_ok successful DANE sessions recorded; postfix-dane: $(pf_verified postfix-dane) verified TLS connections, $(pf_other postfix-dane) not verified; postfix-dane-reuse: $(pf_verified postfix-dane-reuse) verified, $(pf_other postfix-dane-reuse) not"
[ "$(pf_other postfix-dane)" = 0 ] && [ "$(pf_other postfix-dane-reuse)" = 0 ] || die "no ratio: Postfix made unverified TLS connections in a dane mode"
[ "$(plain)" = 0 ] || die "no ratio: $(plain) messages reached the receiver without TLS"
med() { cut -d' ' -f"$2" "$WORK/r-$1" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
for m in "${MODES[@]}"; do echo "median $m: $(med "$m" 1) msgs/s delivered, sender CPU $(med "$m" 2) µs/msg"; done
pd=$(med postern-dane 1) po=$(med postern-opp 1) fd=$(med postfix-dane 1)
r=$(ratio "$pd" "$po")
echo "ratio postern DANE/opportunistic: $r (bar >= 0.80: $(awk -v r="$r" 'BEGIN {print (r >= 0.8) ? "met" : "NOT met"}'))"
echo "sender CPU per message, postern DANE/opportunistic: $(ratio "$(med postern-dane 2)" "$(med postern-opp 2)")"
echo "ratio postern-dane/postfix-dane: $(ratio "$pd" "$fd"); postern-dane/postfix-dane-reuse: $(ratio "$pd" "$(med postfix-dane-reuse 1)")"
echo "($MSGS messages x $ROUNDS rounds, $SESS smtp-source sessions, $SIZE-byte messages, one postern receiver on $MX_IP:25, Postfix $(postconf -c "$WORK/postfix-dane/conf" -h mail_version), unbound $(dpkg-query -W -f '${Version}' unbound 2>/dev/null))"
