#!/usr/bin/env bash
# bench-import.sh [N]    import an mbox of N generated messages (default 100000; 2-20 KB each, a
#                        tenth flagged, some with quoted "From " lines) into a fresh data directory
#                        with the release binary, then export it again as a Maildir; prints
#                        messages/s, MB/s and the peak RSS of each command (from getrusage).
# POSTERN_BIN picks the binary (default: $CARGO_TARGET_DIR or target, release/postern, built if
# missing). Everything lives in a temporary directory, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
BIN=${POSTERN_BIN:-${CARGO_TARGET_DIR:-target}/release/postern}
[ -x "$BIN" ] || cargo build --release -p postern
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-import.XXXXXX")
trap 'rm -rf "$work"' EXIT

python3 - "$work/bench.mbox" "$N" <<'PY'
import random, sys, time
path, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(15)
words = ("mail import export mbox maildir message folder flag keyword server client "
         "postern dovecot mutt python queue spool index batch flush uid").split()
line = lambda: " ".join(rnd.choice(words) for _ in range(11)) + "\n"
t0 = 1_600_000_000
with open(path, "w") as f:
    for i in range(n):
        size = rnd.randint(2_000, 20_000)
        when = time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime(t0 + i * 60))
        f.write(f"From sender{i % 97}@example.org {when}\n")
        f.write(f"From: Sender {i % 97} <sender{i % 97}@example.org>\nTo: bench@example.org\n"
                f"Subject: bench message {i}\nMessage-ID: <{i}@bench.example.org>\n")
        if i % 10 == 0:
            f.write("Status: RO\nX-Status: F\nX-Keywords: $Label1\n")
        f.write("\n")
        written = 0
        while written < size:
            l = line()
            if rnd.random() < 0.002:
                l = ">From " + l
            f.write(l)
            written += len(l)
        f.write("\n")
PY
mbox_bytes=$(stat -c %s "$work/bench.mbox")

cat > "$work/postern.toml" <<CONF
hostname = "bench.test"
data_dir = "$work/data"
[listen]
CONF
"$BIN" --config "$work/postern.toml" domain add example.org >/dev/null
printf 'bench-pw\n' | "$BIN" --config "$work/postern.toml" user add bench@example.org >/dev/null

# Runs a command; prints its wall time and peak RSS (the child's ru_maxrss).
measure() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t = time.monotonic()
p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
wall = time.monotonic() - t
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
sys.stdout.write(p.stdout.decode())
print(f"WALL {wall:.2f} RSS {rss:.1f}")
sys.exit(p.returncode)
PY
}

echo "mbox: $N messages, $((mbox_bytes / 1048576)) MiB"
out=$(measure "$BIN" --config "$work/postern.toml" import mbox "$work/bench.mbox" bench@example.org)
echo "$out" | grep -v '^WALL' | head -3
read -r _ wall _ rss <<<"$(echo "$out" | grep '^WALL')"
python3 -c "import sys; n,w,b,r=int(sys.argv[1]),float(sys.argv[2]),int(sys.argv[3]),float(sys.argv[4]); print(f'import: {w:.1f} s, {n/w:.0f} messages/s, {b/w/1048576:.1f} MiB/s, peak RSS {r:.1f} MiB')" "$N" "$wall" "$mbox_bytes" "$rss"

out=$(measure "$BIN" --config "$work/postern.toml" export bench@example.org "$work/export" --format maildir)
read -r _ wall _ rss <<<"$(echo "$out" | grep '^WALL')"
python3 -c "import sys; n,w,r=int(sys.argv[1]),float(sys.argv[2]),float(sys.argv[3]); print(f'export (maildir): {w:.1f} s, {n/w:.0f} messages/s, peak RSS {r:.1f} MiB')" "$N" "$wall" "$rss"
