#!/usr/bin/env python3
"""Relay benchmark driver: CONC smtplib clients submit N messages of SIZE bytes to postern A, then
waits until they have all left (DONE_KIND=maildir: DIR holds N files; spool: DIR is empty).
Prints messages/s and the CPU seconds the given PIDs used meanwhile."""
import os, smtplib, sys, threading, time

port, n, conc, size, done_kind, done_dir = sys.argv[1:7]
port, n, conc, size = int(port), int(n), int(conc), int(size)
pids = [int(p) for p in sys.argv[7:]]
tick = os.sysconf("SC_CLK_TCK")

def cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick

def count(d):
    total = 0
    for sub in ("new", "cur") if done_kind == "maildir" else ("",):
        try:
            total += len(os.listdir(os.path.join(d, sub)))
        except FileNotFoundError:
            pass
    return total

base = count(done_dir) if done_kind == "maildir" else 0
body = "x" * 76 + "\r\n"
filler = body * max(1, (size - 300) // len(body))

def worker(k):
    s = smtplib.SMTP("127.0.0.1", port)
    for i in range(k, n, conc):
        msg = (f"From: alice@a.test\r\nTo: bob@b.test\r\nSubject: bench {i}\r\n"
               f"Message-ID: <bench-{i}-{time.time()}@a.test>\r\n\r\n{filler}")
        s.sendmail("alice@a.test", ["bob@b.test"], msg)
    s.quit()

c0 = [cpu(p) for p in pids]
t0 = time.time()
threads = [threading.Thread(target=worker, args=(k,)) for k in range(conc)]
for t in threads: t.start()
for t in threads: t.join()
t_sub = time.time() - t0
deadline = time.time() + 600
while True:
    c = count(done_dir)
    if (done_kind == "maildir" and c - base >= n) or (done_kind == "spool" and c == 0):
        break
    if time.time() > deadline:
        sys.exit(f"timed out: {c} in {done_dir}")
    time.sleep(0.01)
elapsed = time.time() - t0
c1 = [cpu(p) for p in pids]
cpus = " ".join(f"{b - a:.2f}" for a, b in zip(c0, c1))
print(f"{n / elapsed:.1f} msg/s relayed end to end ({n} x {size} B, {conc} clients; submission took {t_sub:.2f}s) cpu_s: {cpus}")
