# Helpers sourced by the bench scripts (not run directly).
# Reference peers (Dovecot, Postfix, smtp-sink) and download clients (fetchmail, mbsync) are
# optional: a bench asks have_peer before each comparison and skips it, with one line saying which
# Debian package would enable it, when the program is missing. SKIP_PEERS="dovecot postfix ..."
# treats the listed programs as missing (to check a bench's output without them).
export PATH=$PATH:/usr/sbin:/sbin

# free_port: a free TCP port on 127.0.0.1 (binds port 0 and prints what the kernel picked).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_port PORT [SECONDS=10]: until 127.0.0.1:PORT accepts a connection.
wait_port() {
  local _; for _ in $(seq $(( ${2:-10} * 10 ))); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing listens on 127.0.0.1:$1" >&2; return 1
}

# median: the median of the numbers on stdin, one a line.
median() { sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

# have_peer PROGRAM PACKAGE WHAT: true when PROGRAM (a name on PATH or a path) is installed and
# neither it nor PACKAGE is listed in SKIP_PEERS; otherwise prints "skipped: WHAT (apt-get install
# PACKAGE)" and is false. Postfix also needs root.
have_peer() {
  local prog=$1 pkg=$2 what=$3 skip=${SKIP_PEERS:-} missing= path
  # command -v also names a file on PATH that cannot be run: ask for an executable one.
  path=$(command -v "$prog" 2>/dev/null) && [ -x "$path" ] || missing=1
  case " ${skip//,/ } " in *" ${prog##*/} "*|*" $pkg "*) missing=1 ;; esac
  if [ -n "$missing" ]; then echo "skipped: $what (apt-get install $pkg)"; return 1; fi
  if [ "$prog" = postfix ] && [ "$(id -u)" != 0 ]; then echo "skipped: $what (a private Postfix needs root)"; return 1; fi
  return 0
}

# policy_fixture DIR [PYTHON=python3] [DOMAIN=client.test]: the policy benches' signing key and
# signed message. Writes DIR/bench.pem (RSA-2048), DIR/dnsmasq.conf (SPF "ip4:127.0.0.0/8 -all",
# DMARC p=reject and the DKIM key bench._domainkey of DOMAIN; DOMAIN's top-level domain, *.test
# and in-addr.arpa answered locally), and the same DKIM-signed (dkimpy, relaxed/relaxed) 4 KB
# message from bench@DOMAIN to bench@peers.test as DIR/msg (LF line ends, for smtp-source -F)
# and DIR/msg.crlf. Needs python3-dkim and openssl.
policy_fixture() {
"${2:-python3}" - "$1" "${3:-client.test}" <<'PY'
import base64, dkim, os, subprocess, sys
d, dom = sys.argv[1], sys.argv[2]
tld = dom.rsplit(".", 1)[-1]
key = os.path.join(d, "bench.pem")
subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
der = subprocess.run(["openssl", "rsa", "-in", key, "-pubout", "-outform", "DER"],
                     check=True, capture_output=True).stdout
record = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
chunks = ",".join('"%s"' % record[i:i + 255] for i in range(0, len(record), 255))
open(os.path.join(d, "dnsmasq.conf"), "w").write(
    "".join("local=/%s/\n" % z for z in sorted({"test", tld})) + "local=/in-addr.arpa/\n"
    'txt-record=%s,"v=spf1 ip4:127.0.0.0/8 -all"\n' % dom
    + 'txt-record=_dmarc.%s,"v=DMARC1; p=reject"\n' % dom
    + "txt-record=bench._domainkey.%s,%s\n" % (dom, chunks))
line = b"x" * 78 + b"\r\n"
body = (line * 53)[:4096].rsplit(b"\r\n", 1)[0] + b"\r\n"
msg = (b"From: Bench <bench@%s>\r\nTo: <bench@peers.test>\r\nSubject: bench-policy\r\n"
       b"Date: Thu, 03 Dec 2026 10:00:00 +0000\r\nMessage-ID: <bench-policy@%s>\r\n\r\n"
       % (dom.encode(), dom.encode()) + body)
signed = dkim.sign(msg, b"bench", dom.encode(), open(key, "rb").read(),
                   canonicalize=(b"relaxed", b"relaxed")) + msg
open(os.path.join(d, "msg"), "wb").write(signed.replace(b"\r\n", b"\n"))
open(os.path.join(d, "msg.crlf"), "wb").write(signed)
PY
}
