#!/usr/bin/env bash
# bench-pop3.sh [MESSAGES=10000] [ROUNDS=3]
# POP3 download throughput, postern vs Dovecot, back to back in one run on the same mailbox content:
#   1. builds postern (release), starts it on a free loopback port with a throw-away data_dir;
#   2. starts a private Dovecot with POP3 (scripts/start-dovecot.sh) on a free loopback port;
#   3. writes the same MESSAGES mixed-size messages (LF line ends, as an MDA writes them) into both
#      Maildirs, reindexes postern's and warms both servers up with one UIDL session;
#   4. for each round: scripts/fetch-time.sh pop3 (fetchmail, keep) against postern then Dovecot,
#      and a Python poplib loop (LIST, RETR every message, QUIT) against postern then Dovecot;
#   5. prints every figure and the medians.
# Dovecot is skipped, saying so, unless its POP3 server is installed (Debian: dovecot-pop3d), and
# the fetchmail figures unless fetchmail is; postern's other figures are printed either way.
# Env: POSTERN (binary to use).
set -euo pipefail
N=${1:-10000}; ROUNDS=${2:-3}
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../../.." && pwd)
. "$ROOT/scripts/bench-lib.sh"
if [ -z "${POSTERN:-}" ]; then
  (cd "$ROOT" && cargo build --release -q -p postern); POSTERN=$ROOT/target/release/postern
fi
W=$(mktemp -d /tmp/bench-pop3.XXXXXX); PID=
chmod 755 "$W"   # Dovecot's mail processes (nobody, as root) reach their Maildirs through it
cleanup() {
  [ -z "$PID" ] || { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; } || true
  "$ROOT/scripts/start-dovecot.sh" --stop "$W/dovecot" || true
  rm -rf "$W"
}
trap cleanup EXIT
PORT=$(free_port) DPORT=$(free_port) DIPORT=$(free_port)
cat > "$W/postern.toml" <<TOML
hostname = "bench.test"
data_dir = "$W/data"
[listen]
pop3 = ["127.0.0.1:$PORT"]
pop3s = []
smtp = []
submission = []
submissions = []
imap = []
imaps = []
TOML
P() { POSTERN_LOG=warn "$POSTERN" --config "$W/postern.toml" "$@"; }
P domain add bench.test >/dev/null
echo pass | P user add bench@bench.test >/dev/null

echo "generating $N messages" >&2
python3 - "$N" "$W/msgs" <<'PY'
import os, random, sys
n, out = int(sys.argv[1]), sys.argv[2]
os.makedirs(out)
rnd = random.Random(42)
words = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor".split()
for i in range(n):
    size = rnd.choice([600, 1000, 1500, 2500, 4000, 8000])
    body, line = [], []
    total = 0
    while total < size:
        w = rnd.choice(words); line.append(w); total += len(w) + 1
        if len(line) == 12:
            body.append(" ".join(line)); line = []
    body.append(".starts with a dot" if i % 7 == 0 else " ".join(line))
    msg = (f"From: sender{i % 50}@example.net\nTo: bench@bench.test\nSubject: bench message {i}\n"
           f"Message-ID: <{i}@bench>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n\n" + "\n".join(body) + "\n")
    with open(os.path.join(out, f"{1700000000 + i}.M{i}P1.bench"), "w") as f:
        f.write(msg)
PY

# postern: files into new/, then an index rebuild (as after an rsync).
PM=$W/data/mail/bench.test/bench
cp "$W"/msgs/* "$PM/new/"
P reindex bench@bench.test >/dev/null 2>&1
POSTERN_LOG=warn "$POSTERN" --config "$W/postern.toml" serve 2>"$W/serve.log" & PID=$!
for _ in $(seq 100); do python3 -c "import socket; socket.create_connection(('127.0.0.1',$PORT),1)" 2>/dev/null && break; sleep 0.1; done

# Dovecot: the same files in its Maildir for the user "pop3bench".
TARGETS=("postern 127.0.0.1:$PORT bench@bench.test")
if have_peer dovecot dovecot-pop3d "comparison with Dovecot" &&
   have_peer /usr/lib/dovecot/pop3 dovecot-pop3d "comparison with Dovecot"; then
  POP3_PORT=$DPORT "$ROOT/scripts/start-dovecot.sh" "$W/dovecot" "$DIPORT" >/dev/null
  DM=$W/dovecot/mail/pop3bench
  mkdir -p "$DM/new" "$DM/cur" "$DM/tmp"; cp "$W"/msgs/* "$DM/new/"
  chown -R "$(stat -c %u:%g "$W/dovecot/mail")" "$DM"
  TARGETS+=("dovecot 127.0.0.1:$DPORT pop3bench")
fi
FETCHMAIL=1; have_peer fetchmail fetchmail "fetchmail downloads" || FETCHMAIL=

cat > "$W/loop.py" <<'PY'
import poplib, sys, time
h, p = sys.argv[1].rsplit(":", 1); user, pw = sys.argv[2], sys.argv[3]
t0 = time.perf_counter()
c = poplib.POP3(h, int(p)); c.user(user); c.pass_(pw)
n = len(c.list()[1]); total = 0
for i in range(1, n + 1):
    total += c.retr(i)[2]
c.quit()
d = time.perf_counter() - t0
print(f"poplib {sys.argv[1]}: {n} msgs in {d:.2f} s = {n/d:.1f} msgs/s, {total/d/1e6:.1f} MB/s")
PY
# Warm-up: both servers build their indexes / size caches once.
for t in "${TARGETS[@]}"; do
  set -- $t; shift
  python3 -c 'import poplib,sys; h,p=sys.argv[1].rsplit(":",1); c=poplib.POP3(h,int(p)); c.user(sys.argv[2]); c.pass_("pass"); print(sys.argv[1], "warm-up:", c.stat()); c.uidl(); c.quit()' "$1" "$2"
done

R=$W/results; : > "$R"
for r in $(seq "$ROUNDS"); do
  echo "--- round $r" >&2
  for t in "${TARGETS[@]}"; do
    [ -n "$FETCHMAIL" ] || break
    set -- $t
    line=$("$ROOT/scripts/fetch-time.sh" pop3 "$2" "$3" pass); echo "$1 $line" >&2
    echo "$1 fetchmail $(echo "$line" | sed -E 's/.*= ([0-9.]+) msgs\/s.*/\1/')" >> "$R"
  done
  for t in "${TARGETS[@]}"; do
    set -- $t
    line=$(python3 "$W/loop.py" "$2" "$3" pass); echo "$1 $line" >&2
    echo "$1 poplib $(echo "$line" | sed -E 's/.*= ([0-9.]+) msgs\/s.*/\1/')" >> "$R"
  done
done
echo "=== medians over $ROUNDS rounds, $N messages (msgs/s)"
for client in fetchmail poplib; do
  for server in postern dovecot; do
    grep -q "^$server $client " "$R" || continue
    awk -v s=$server -v c=$client '$1==s && $2==c {print $3}' "$R" | sort -n |
      awk -v s=$server -v c=$client '{a[NR]=$1} END {m = NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; printf "%-9s %-8s median %8.1f msgs/s  (runs: %d)\n", c, s, m, NR}'
  done
done
