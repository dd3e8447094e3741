#!/usr/bin/env python3
"""imap-load.py HOST:PORT USER PASSWORD [SECONDS=10] [CLIENTS=4]

IMAP load client for the benches (Python's imaplib only): CLIENTS processes each LOGIN and SELECT
INBOX, then for SECONDS repeat two commands: UID FETCH <a random message> (BODY.PEEK[]) and NOOP.
A mailbox holding fewer than 50 messages is first filled to 50 by APPEND (200 B to 4 KB bodies).
Prints one line: fetches/s, cmds/s (FETCH and NOOP) and the mean LOGIN time."""
import imaplib, multiprocessing, random, sys, time


def client(job):
    host, port, user, password, seconds, seed = job
    t = time.perf_counter()
    m = imaplib.IMAP4(host, port)
    m.login(user, password)
    login = time.perf_counter() - t
    m.select("INBOX")
    uids = m.uid("SEARCH", None, "ALL")[1][0].split()
    rng = random.Random(seed)
    fetches = 0
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        typ, _ = m.uid("FETCH", rng.choice(uids), "(BODY.PEEK[])")
        if typ != "OK":
            raise SystemExit("imap-load: UID FETCH answered %s" % typ)
        m.noop()
        fetches += 1
    m.logout()
    return fetches, login


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    target, user, password = sys.argv[1:4]
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 10.0
    clients = int(sys.argv[5]) if len(sys.argv) > 5 else 4
    host, port = target.rsplit(":", 1)
    port = int(port)
    m = imaplib.IMAP4(host, port)
    m.login(user, password)
    have = int(m.select("INBOX")[1][0])
    for i in range(have, 50):
        text = "From: load@client.test\r\nTo: %s\r\nSubject: imap-load %d\r\n\r\n%s\r\n" % (user, i, "y" * (200 * (1 + i % 20)))
        m.append("INBOX", None, None, text.encode())
    m.logout()
    jobs = [(host, port, user, password, seconds, n) for n in range(clients)]
    with multiprocessing.Pool(clients) as pool:
        results = pool.map(client, jobs)
    fetches = sum(r[0] for r in results)
    login_ms = 1000 * sum(r[1] for r in results) / clients
    print("imap-load %s: %d clients x %g s: %.1f fetches/s, %.1f cmds/s, login avg %.1f ms"
          % (target, clients, seconds, fetches / seconds, 2 * fetches / seconds, login_ms))


if __name__ == "__main__":
    main()
