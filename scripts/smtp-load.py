#!/usr/bin/env python3
"""smtp-load.py HOST:PORT MESSAGES SESSIONS [--size BYTES] [--from ADDR] [--to ADDR]

SMTP load client for the benches when Postfix's smtp-source is not installed: SESSIONS threads
share MESSAGES messages of a BYTES-byte body (default 4096); each message has a connection of its
own (EHLO, MAIL, RCPT, DATA, QUIT), as smtp-source does without -d. Stops at the first refusal.
Prints one line ending in "= N msgs/s"."""
import argparse, smtplib, sys, threading, time


def main():
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("target")
    ap.add_argument("messages", type=int)
    ap.add_argument("sessions", type=int)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--from", dest="sender", default="bench@client.test")
    ap.add_argument("--to", default="bench@peers.test")
    a = ap.parse_args()
    host, port = a.target.rsplit(":", 1)
    line = b"x" * 78 + b"\r\n"
    body = (line * (a.size // len(line) + 1))[:a.size]
    left = [a.messages]
    lock = threading.Lock()
    errors = []

    def session(no):
        while not errors:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
                n = a.messages - left[0]
            msg = (b"From: <%s>\r\nTo: <%s>\r\nSubject: smtp-load %d\r\nMessage-ID: <%d.%d@client.test>\r\n\r\n"
                   % (a.sender.encode(), a.to.encode(), n, n, time.time_ns())) + body
            try:
                with smtplib.SMTP(host, int(port), local_hostname="client.test", timeout=60) as s:
                    s.sendmail(a.sender, [a.to], msg)
            except (OSError, smtplib.SMTPException) as e:
                errors.append("message %d: %s" % (n, e))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=session, args=(i,)) for i in range(a.sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.perf_counter() - t0
    if errors:
        sys.exit("smtp-load: " + errors[0])
    print("smtp-load %s: %d msgs (%d B) x %d sessions in %.2f s = %.1f msgs/s"
          % (a.target, a.messages, a.size, a.sessions, secs, a.messages / secs))


if __name__ == "__main__":
    main()
