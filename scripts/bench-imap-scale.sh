#!/usr/bin/env bash
# IMAP at scale, postern and the reference Dovecot back to back with the same client code:
#   scripts/bench-imap-scale.sh [MESSAGES=100000] [IDLERS=1000]
# 1. SELECT time on a mailbox of MESSAGES messages (files written straight into the Maildir, then
#    indexed once: by `postern reindex` and by Dovecot's first SELECT); median of 7 SELECTs.
# 2. RSS per IDLE-ing connection with IDLERS connections open (postern: the server process;
#    Dovecot: every process of its instance, since it runs one imap process per connection).
# Dovecot is a private instance (scripts/start-dovecot.sh) on a free loopback port; when it is not
# installed (Debian: dovecot-imapd) only postern's figures are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
N=${1:-100000} IDLERS=${2:-1000}
[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p postern
BIN=$PWD/target/release/postern
W=$(mktemp -d /tmp/postern-scale.XXXX)
chmod 755 "$W"   # Dovecot's mail processes (nobody, as root) reach their Maildirs through it
PID=
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; scripts/start-dovecot.sh --stop "$W/dovecot" || true; rm -rf "$W"' EXIT
ulimit -n 65536 2>/dev/null || true
P=$(free_port) DP=$(free_port)
cat > "$W/postern.toml" <<TOML
hostname = "bench.test"
data_dir = "$W/data"
[limits]
max_connections = 20000
max_connections_per_ip = 20000
[listen]
imap = ["127.0.0.1:$P"]
smtp = []
submission = []
submissions = []
imaps = []
pop3 = []
pop3s = []
TOML
"$BIN" -c "$W/postern.toml" domain add bench.test >/dev/null
USERS=$(( (IDLERS + 99) / 100 ))   # postern allows 200 sessions per user; use 100 each
for u in big $(seq -f "idle%g" 1 "$USERS"); do echo pass | "$BIN" -c "$W/postern.toml" user add "$u@bench.test" >/dev/null; done
DOVECOT=
if have_peer dovecot dovecot-imapd "comparison with Dovecot"; then
  scripts/start-dovecot.sh "$W/dovecot" "$DP" >/dev/null
  DOVECOT=$(cat "$W/dovecot/run/master.pid")
fi
MAILDIRS=("$W/data/mail/bench.test/big/cur")
[ -z "$DOVECOT" ] || MAILDIRS+=("$W/dovecot/mail/scalebig/cur")

echo "== writing $N messages into ${#MAILDIRS[@]} Maildir(s)"
python3 - "$N" "${MAILDIRS[@]}" <<'PY'
import os, sys
n, dirs = int(sys.argv[1]), sys.argv[2:]
for d in dirs:
    os.makedirs(d, exist_ok=True)
    for sub in ("new", "tmp"):
        os.makedirs(os.path.join(os.path.dirname(d), sub), exist_ok=True)
for i in range(n):
    body = (f"From: sender{i%97}@example.net\r\nTo: big@bench.test\r\nSubject: message {i}\r\n"
            f"Message-ID: <{i}@bench.test>\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n\r\n"
            + "x" * (200 + i % 800) + "\r\n").encode()
    for d in dirs:
        with open(os.path.join(d, f"1700000000.M{i}P1.bench:2,{'S' if i % 3 else ''}"), "wb") as f:
            f.write(body)
PY
[ -z "$DOVECOT" ] || chown -R "$(stat -c %u:%g "$W/dovecot/mail")" "$W/dovecot/mail/scalebig"
"$BIN" -c "$W/postern.toml" reindex big@bench.test
POSTERN_LOG=warn "$BIN" -c "$W/postern.toml" serve 2>"$W/log" & PID=$!
wait_port "$P"

select_time() { # host port user
python3 - "$@" <<'PY'
import imaplib, statistics, sys, time
host, port, user = sys.argv[1], int(sys.argv[2]), sys.argv[3]
m = imaplib.IMAP4(host, port); m.login(user, "pass")
t = time.perf_counter(); typ, data = m.select("INBOX", readonly=True); first = time.perf_counter() - t
times = []
for _ in range(7):
    m.unselect() if hasattr(m, "unselect") else m.close()
    t = time.perf_counter(); typ, data = m.select("INBOX", readonly=True); times.append(time.perf_counter() - t)
print(f"{user}: {int(data[0])} messages, first SELECT {first*1000:.1f} ms, median SELECT {statistics.median(times)*1000:.1f} ms")
m.logout()
PY
}
echo "== SELECT of a $N-message mailbox"
[ -z "$DOVECOT" ] || { echo -n "dovecot  "; select_time 127.0.0.1 "$DP" scalebig; }
echo -n "postern  "; select_time 127.0.0.1 "$P" big@bench.test

idle_rss() { # label port user-prefix users server-pid idlers
python3 - "$@" <<'PY'
import os, socket, sys, time
label, port, prefix, users, root = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
n = int(sys.argv[6])
def tree():
    # the server's process and all its descendants (Dovecot's master forks a process per connection)
    kids = {}
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            ppid = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1]
        except (OSError, IndexError):
            continue
        kids.setdefault(ppid, []).append(p)
    todo, seen = [root], []
    while todo:
        p = todo.pop(); seen.append(p); todo.extend(kids.get(p, []))
    return seen
def rss_kib():
    pids = tree()
    total = 0
    for p in pids:
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total
before = rss_kib()
conns = []
for i in range(n):
    # users == 0: one user per connection (Dovecot limits connections per user and address).
    user = f"{prefix}{i}" if users == 0 else f"{prefix}{i % users + 1}@bench.test"
    s = socket.create_connection(("127.0.0.1", port)); s.settimeout(60)
    f = s.makefile("rb")
    f.readline()
    s.sendall(f'a LOGIN "{user}" "pass"\r\nb SELECT INBOX\r\nc IDLE\r\n'.encode())
    while True:
        line = f.readline()
        if line.startswith(b"+"):
            break
        if not line or line.startswith((b"a NO", b"a BAD", b"b NO", b"b BAD", b"c NO", b"c BAD")):
            sys.exit(f"{label}: connection {i} refused: {line!r}")
    conns.append((s, f))
time.sleep(3)
after = rss_kib()
print(f"{label}: {n} IDLE connections, RSS {before} -> {after} KiB = {(after-before)*1024/n/1024:.1f} KiB per connection")
PY
}
echo "== RSS per IDLE connection"
[ -z "$DOVECOT" ] || idle_rss dovecot "$DP" idler 0 "$DOVECOT" "$IDLERS" || true
idle_rss postern "$P" idle "$USERS" "$PID" "$IDLERS"
