#!/usr/bin/env python3
"""imap-stress: a concurrent IMAP4rev1 stress client that checks protocol invariants on every response.

    scripts/imap-stress.py HOST:PORT --user alice@example.test --user bob@example.test --password pass \
        [--clients 10] [--seconds 10 | --ops 5000] [--seed 1] [--mailboxes 3] [--login-every 0] [--json]

Clients are spread over the users, so several clients share each account's mailboxes (INBOX plus
folders Stress1.. that it creates and seeds). Each client runs a random mix of LOGIN, LIST, STATUS,
SELECT/EXAMINE, FETCH/UID FETCH, STORE/UID STORE, EXPUNGE, APPEND, NOOP, IDLE, ENABLE CONDSTORE,
LOGOUT, reads every raw response (literals included), keeps the session's view of the selected
mailbox and checks, on every response:

  bounds       * N FETCH / * N EXPUNGE / SEARCH results with 1 <= N <= the session's message count
  exists       * N EXISTS never lower than the current count (RFC 3501 7.3.1, 7.4.1)
  expunge-in-fetch  no * N EXPUNGE while answering FETCH, STORE or SEARCH (RFC 3501 7.4.1)
  recent       \\Recent for one (mailbox, UID) seen by at most one read-write session (RFC 3501 2.3.2)
  flags        every flag in FETCH FLAGS announced in the session's latest * FLAGS (RFC 3501 7.2.6)
  no-bad       no tagged NO/BAD but the expected ones (STORE/EXPUNGE on a read-only mailbox)
  no-expunged  a NO to FETCH/STORE of messages the session still sees, some of which another
               session had expunged (RFC 2180 4.1 lets a server do this; counted all the same)
  missing      a FETCH returns every requested item for every requested visible message
  uid-order    UIDs strictly increase with sequence numbers; a seq keeps its UID until EXPUNGE;
               a new message's UID is above every UID seen before; below SELECT's UIDNEXT
  uidnext      UIDNEXT (and APPENDUID) never below a UIDNEXT/UID observed before the command was sent
  modseq       MODSEQ of a message never decreases in a session; HIGHESTMODSEQ never below a
               HIGHESTMODSEQ/MODSEQ observed before the command was sent
  immutable    RFC822.SIZE, INTERNALDATE, ENVELOPE, BODYSTRUCTURE and body sections of one
               (mailbox, UIDVALIDITY, UID) identical for every session
  uidvalidity  the UIDVALIDITY of a mailbox never changes (nothing here deletes mailboxes)
  tag          every tagged response carries the tag of the command in progress
  parse        every response parses; no unknown untagged response; no VANISHED without QRESYNC
  conn         no unexpected disconnect or BYE; every command answered within --timeout

Tolerated: a FETCH of a message another session has expunged (the session not yet told) that comes
back with other data (Dovecot answers NIL bodies and RFC822.SIZE 0) is counted, not a violation;
"expunged" is confirmed by an EXPUNGE some session saw or by the UID missing from a final
UID SEARCH ALL. STATUS of the selected mailbox is compared with the session's own view only
(RFC 3501 6.3.10; Dovecot answers it from that view). 0 violations against Dovecot 2.3.19.
--self-test feeds scripted bad responses to the checker and expects each invariant to fire.

Standard library only. Exit status 1 if any violation; the last line is
`imap-stress: N commands, X cmds/s, V violations`.
"""

import argparse
import bisect
import collections
import hashlib
import json
import random
import re
import socket
import sys
import threading
import time

SYSTEM_FLAGS = {"\\seen", "\\answered", "\\flagged", "\\deleted", "\\draft", "\\recent"}
LABELS = ["$Label1", "$Label2", "$Label3", "$Label4", "$Label5"]
LIT_RE = re.compile(rb"\{(\d+)(\+?)\}\r\n$")
UNTAGGED_NUM_RE = re.compile(rb"\* (\d+) ([A-Za-z]+)(?: (.*))?$", re.S)
STATUS_WORDS = {"OK", "NO", "BAD", "BYE", "PREAUTH"}
KNOWN_UNTAGGED = {
    "FLAGS", "CAPABILITY", "LIST", "LSUB", "STATUS", "SEARCH", "ESEARCH", "ENABLED", "VANISHED",
    "NAMESPACE", "ID", "QUOTA", "QUOTAROOT", "METADATA", "SORT", "THREAD", "XLIST",
}
FETCH_ITEMS = [
    "FLAGS", "UID", "ENVELOPE", "BODYSTRUCTURE", "RFC822.SIZE",
    "BODY.PEEK[HEADER.FIELDS (From Subject)]", "BODY.PEEK[1]", "BODY.PEEK[TEXT]", "INTERNALDATE",
]
IMMUTABLE = ("RFC822.SIZE", "INTERNALDATE", "ENVELOPE", "BODYSTRUCTURE")


class ParseError(Exception):
    pass


class ConnClosed(Exception):
    pass


class Timeout(Exception):
    pass


class Atom(str):
    pass


# ----------------------------------------------------------------------------------------------
# Response parser: bytes of one complete response (literals inlined after their {n}\r\n)
# -> values: Atom (str), bytes (quoted string or literal), None (NIL), list.


def parse_value(b, i):
    n = len(b)
    if i >= n:
        raise ParseError("value expected at end of line")
    c = b[i]
    if c == 0x28:  # (
        out = []
        i += 1
        if i < n and b[i] == 0x29:
            return out, i + 1
        while True:
            v, i = parse_value(b, i)
            out.append(v)
            if i >= n:
                raise ParseError("unterminated list")
            if b[i] == 0x29:
                return out, i + 1
            if b[i] == 0x28 and isinstance(v, list):
                continue  # body-type-mpart: 1*body with no space between the parts
            if b[i] != 0x20:
                raise ParseError("space or ')' expected at %d" % i)
            i += 1
    if c == 0x22:  # "
        out = bytearray()
        i += 1
        while True:
            if i >= n:
                raise ParseError("unterminated quoted string")
            ch = b[i]
            if ch == 0x5C:
                if i + 1 >= n or b[i + 1] not in (0x5C, 0x22):
                    raise ParseError("bad escape in quoted string")
                out.append(b[i + 1])
                i += 2
                continue
            if ch == 0x22:
                return bytes(out), i + 1
            if ch in (0x0D, 0x0A):
                raise ParseError("CR/LF in quoted string")
            out.append(ch)
            i += 1
    if c == 0x7B:  # {
        j = b.find(b"}", i)
        if j < 0:
            raise ParseError("bad literal")
        num = b[i + 1:j]
        if num.endswith(b"+"):
            num = num[:-1]
        if not num.isdigit() or b[j + 1:j + 3] != b"\r\n":
            raise ParseError("bad literal header")
        start = j + 3
        end = start + int(num)
        if end > n:
            raise ParseError("short literal")
        return bytes(b[start:end]), end
    start = i
    depth = 0
    while i < n:
        ch = b[i]
        if depth:
            if ch == 0x5B:
                depth += 1
            elif ch == 0x5D:
                depth -= 1
            elif ch in (0x0D, 0x0A):
                break
            i += 1
            continue
        if ch in (0x20, 0x28, 0x29, 0x0D, 0x0A):
            break
        if ch in (0x22, 0x7B, 0x7D):
            raise ParseError("bad character %r in atom" % chr(ch))
        if ch == 0x5B:
            depth += 1
        elif ch == 0x5D:
            raise ParseError("']' outside brackets")
        i += 1
    if i == start:
        raise ParseError("empty atom at %d" % i)
    if depth:
        raise ParseError("unbalanced '['")
    s = b[start:i].decode("latin-1")
    if s.upper() == "NIL":
        return None, i
    return Atom(s), i


def parse_all(b, i=0):
    """Space-separated values up to the end of b."""
    out = []
    n = len(b)
    if i >= n:
        return out
    while True:
        v, i = parse_value(b, i)
        out.append(v)
        if i >= n:
            return out
        if b[i] != 0x20:
            raise ParseError("space expected at %d" % i)
        i += 1
        if i >= n:  # tolerate one trailing space
            return out


def parse_resp_text(b):
    """'[CODE args] text' or 'text' -> (CODE upper or None, args list, text)."""
    if b.startswith(b"["):
        depth = 0
        for j in range(len(b)):
            if b[j] == 0x5B:
                depth += 1
            elif b[j] == 0x5D:
                depth -= 1
                if depth == 0:
                    break
        else:
            raise ParseError("unterminated response code")
        vals = parse_all(b[1:j])
        if not vals or not isinstance(vals[0], Atom):
            raise ParseError("bad response code")
        return vals[0].upper(), vals[1:], b[j + 1:].strip()
    return None, [], b


def num(v):
    if isinstance(v, Atom) and v.isdigit():
        return int(v)
    raise ParseError("number expected, got %r" % (v,))


def astring(v):
    if isinstance(v, (bytes, Atom)):
        return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
    raise ParseError("string expected, got %r" % (v,))


def canon_mailbox(name):
    return "INBOX" if name.upper() == "INBOX" else name


def norm_key(k):
    k = k.upper().replace(".PEEK", "")
    k = re.sub(r"\s+", " ", k)
    return k


def quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def seqset(nums):
    nums = sorted(set(nums))
    out = []
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        out.append(str(nums[i]) if i == j else "%d:%d" % (nums[i], nums[j]))
        i = j + 1
    return ",".join(out)


def parse_uidset(s):
    out = set()
    for part in s.split(","):
        if ":" in part:
            a, b = part.split(":")
            a, b = int(a), int(b)
            out.update(range(min(a, b), max(a, b) + 1))
        else:
            out.add(int(part))
    return out


# ----------------------------------------------------------------------------------------------
# State shared by all clients


class History:
    """Values observed at (conservative) times; max of those recorded before a given time."""

    def __init__(self):
        self.times = []
        self.prefmax = []

    def add(self, t, v):
        m = max(v, self.prefmax[-1]) if self.prefmax else v
        self.times.append(t)
        self.prefmax.append(m)

    def max_before(self, t):
        i = bisect.bisect_left(self.times, t)
        return self.prefmax[i - 1] if i else None


class Shared:
    def __init__(self, max_violations):
        self.lock = threading.Lock()
        self.recent = {}  # (user, mbox, uidvalidity, uid) -> session id (read-write sessions)
        self.uidnext = collections.defaultdict(History)  # (user, mbox, uidvalidity) -> UIDNEXT lower bounds
        self.modseq = collections.defaultdict(History)  # (user, mbox, uidvalidity) -> HIGHESTMODSEQ lower bounds
        self.expunged = collections.defaultdict(set)  # (user, mbox, uidvalidity) -> UIDs seen expunged
        self.immutable = {}  # (user, mbox, uidvalidity, uid, item) -> (digest, client, line)
        self.uidvalidity = {}  # (user, mbox) -> uidvalidity
        self.no_checks = []  # deferred: NO on FETCH/STORE, classified at the end
        self.final = {}  # (user, mbox, uidvalidity) -> UIDs present after the run
        self.immutable_checks = []  # deferred: differing immutable data, classified at the end
        self.violations = []
        self.by_kind = collections.Counter()
        self.max_violations = max_violations
        self.stop = threading.Event()

    def violation(self, kind, client, command, line, detail, context=None):
        with self.lock:
            self.by_kind[kind] += 1
            if len(self.violations) < self.max_violations:
                self.violations.append({
                    "kind": kind, "client": client, "command": command, "line": line,
                    "detail": detail, "context": context,
                })


def clip(b, n=300):
    if isinstance(b, (bytes, bytearray)):
        b = b.decode("utf-8", "replace")
    b = b.replace("\r\n", "\\r\\n")
    return b if len(b) <= n else b[:n] + "...(%d chars)" % len(b)


# ----------------------------------------------------------------------------------------------
# One client: a connection, a session view, a random command mix


class Client:
    def __init__(self, cid, args, shared, user, rng, end_time, max_ops):
        self.cid = cid
        self.args = args
        self.shared = shared
        self.user = user
        self.rng = rng
        self.end_time = end_time
        self.max_ops = max_ops
        self.host, self.port = args.host, args.port
        self.sock = None
        self.buf = bytearray()
        self.tagn = 0
        self.conn_no = 0
        self.lat = collections.defaultdict(list)
        self.ops = 0
        self.trace = collections.deque(maxlen=args.context) if args.context else None
        self.mailboxes = args.mailbox_names
        self.new_keywords = args.new_keywords
        self.reset_conn()

    # -- reporting
    def v(self, kind, line, detail):
        cmd = self.cur_line if self.cur_line else "(none)"
        ctx = list(self.trace) if self.trace is not None else None
        self.shared.violation(kind, "c%d.%d" % (self.cid, self.conn_no), cmd, clip(line), detail, ctx)

    # -- connection
    def reset_conn(self):
        self.caps = set()
        self.logged_in = False
        self.condstore = False
        self.since_login = 0
        self.cur_line = None
        self.cmd = None
        self.deselect()

    def deselect(self):
        self.selected = None
        self.readonly = False
        self.uidvalidity = None
        self.count = 0
        self.uids = []
        self.bounds = []
        self.ceil = []  # per seq: the UIDNEXT announced by SELECT for messages already there, else None
        self.flags_ok = None
        self.perm_star = False
        self.msmap = {}
        self.maxuid = 0

    def mkey(self):
        return (self.user, self.selected, self.uidvalidity)

    def connect(self):
        self.close()
        self.conn_no += 1
        self.reset_conn()
        self.session = "c%d.%d" % (self.cid, self.conn_no)
        self.sock = socket.create_connection((self.host, self.port), timeout=self.args.timeout)
        self.buf = bytearray()
        greeting = self.read_response()
        self.cur_line = "(greeting)"
        if not greeting.startswith(b"* OK"):
            self.v("conn", greeting, "greeting is not * OK")
            raise ConnClosed()
        self.untagged(greeting)

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def read_line(self, deadline=None):
        start = 0
        while True:
            i = self.buf.find(b"\r\n", start)
            if i >= 0:
                line = bytes(self.buf[:i + 2])
                del self.buf[:i + 2]
                return line
            start = max(0, len(self.buf) - 1)
            self.fill(deadline)

    def fill(self, deadline=None):
        if deadline is not None:
            rem = deadline - time.monotonic()
            if rem <= 0:
                raise Timeout()
            self.sock.settimeout(rem)
        else:
            self.sock.settimeout(self.args.timeout)
        try:
            data = self.sock.recv(262144)
        except socket.timeout:
            if deadline is not None:
                raise Timeout()
            raise ConnClosed("no response within %ss" % self.args.timeout)
        if not data:
            raise ConnClosed("connection closed by server")
        self.buf += data

    def read_response(self, deadline=None):
        out = bytearray()
        while True:
            line = self.read_line(deadline if not out else None)
            out += line
            m = LIT_RE.search(line)
            if not m:
                break
            n = int(m.group(1))
            while len(self.buf) < n:
                self.fill()
            out += self.buf[:n]
            del self.buf[:n]
        resp = bytes(out[:-2])
        if self.trace is not None:
            self.trace.append("S: " + clip(resp, 200))
        return resp

    def send(self, data):
        if self.trace is not None:
            self.trace.append("C: " + clip(data.rstrip(b"\r\n"), 200))
        self.sock.sendall(data)

    # -- untagged responses
    def untagged(self, r):
        try:
            self._untagged(r)
        except ParseError as e:
            self.v("parse", r, "unparseable untagged response: %s" % e)

    def _untagged(self, r):
        m = UNTAGGED_NUM_RE.match(r)
        if m:
            n = int(m.group(1))
            word = m.group(2).decode().upper()
            rest = m.group(3)
            if word == "EXISTS":
                self.on_exists(n, r)
            elif word == "RECENT":
                if n > self.count:
                    self.v("bounds", r, "RECENT %d > message count %d" % (n, self.count))
            elif word == "EXPUNGE":
                self.on_expunge(n, r)
            elif word == "FETCH":
                if rest is None:
                    raise ParseError("FETCH without data")
                vals = parse_all(rest)
                if len(vals) != 1 or not isinstance(vals[0], list) or len(vals[0]) % 2:
                    raise ParseError("FETCH data is not one even list")
                self.on_fetch(n, vals[0], r)
            else:
                raise ParseError("unknown numeric response %s" % word)
            return
        if not r.startswith(b"* "):
            raise ParseError("not an untagged response")
        sp = r.find(b" ", 2)
        word = (r[2:] if sp < 0 else r[2:sp]).decode("latin-1").upper()
        rest = b"" if sp < 0 else r[sp + 1:]
        if word in STATUS_WORDS:
            code, cargs, text = parse_resp_text(rest)
            if word == "BYE" and (self.cmd is None or self.cmd["name"] != "LOGOUT"):
                self.v("conn", r, "unexpected BYE")
            if word in ("NO", "BAD"):
                self.v("no-bad", r, "untagged %s" % word)
            if code:
                self.on_code(code, cargs, r)
            return
        if word not in KNOWN_UNTAGGED:
            raise ParseError("unknown untagged response %s" % word)
        vals = parse_all(rest)
        if word == "FLAGS":
            if len(vals) != 1 or not isinstance(vals[0], list):
                raise ParseError("FLAGS wants one list")
            if self.cmd and self.cmd.get("pending_reset"):
                self.apply_reset()
            self.flags_ok = {astring(f).lower() for f in vals[0]}
        elif word == "CAPABILITY":
            self.caps = {str(c).upper() for c in vals}
        elif word == "LIST" or word == "LSUB":
            if len(vals) != 3 or not isinstance(vals[0], list):
                raise ParseError("LIST wants (flags) delimiter name")
            if self.cmd is not None:
                self.cmd.setdefault("listed", set()).add(canon_mailbox(astring(vals[2])))
        elif word == "STATUS":
            if len(vals) != 2 or not isinstance(vals[1], list) or len(vals[1]) % 2:
                raise ParseError("STATUS wants name (pairs)")
            items = {str(vals[1][i]).upper(): num(vals[1][i + 1]) for i in range(0, len(vals[1]), 2)}
            self.on_status(canon_mailbox(astring(vals[0])), items, r)
        elif word == "SEARCH":
            uid_search = self.cmd is not None and self.cmd["name"] == "UID SEARCH"
            for x in vals:
                if isinstance(x, list):
                    continue
                n = num(x)
                if self.cmd is not None:
                    self.cmd.setdefault("search", set()).add(n)
                if not uid_search and not 1 <= n <= self.count:
                    self.v("bounds", r, "SEARCH result %d outside 1..%d" % (n, self.count))
                if uid_search and n <= 0:
                    self.v("bounds", r, "UID SEARCH result %d" % n)
        elif word == "ENABLED":
            if any(str(x).upper() == "CONDSTORE" for x in vals):
                self.condstore = True
        elif word == "VANISHED":
            self.v("parse", r, "VANISHED without QRESYNC enabled")
            uidset = vals[-1]
            for u in sorted(parse_uidset(str(uidset)), reverse=True):
                if u in self.uids and not (vals and isinstance(vals[0], list)):
                    self.on_expunge(self.uids.index(u) + 1, r)

    def on_code(self, code, cargs, r):
        if code == "CAPABILITY":
            self.caps = {str(c).upper() for c in cargs}
        elif code == "CLOSED":
            if self.cmd and self.cmd.get("pending_reset"):
                self.apply_reset()
        elif code == "PERMANENTFLAGS":
            if not cargs or not isinstance(cargs[0], list):
                raise ParseError("PERMANENTFLAGS wants a list")
            if self.cmd and self.cmd.get("pending_reset"):
                self.apply_reset()
            self.perm_star = any(str(f) == "\\*" for f in cargs[0])
        elif code == "UIDVALIDITY" and self.selecting():
            if self.cmd.get("pending_reset"):
                self.apply_reset()
            self.uidvalidity = num(cargs[0])
            self.check_uidvalidity(self.selected, self.uidvalidity, r)
        elif code == "UIDNEXT" and self.selecting():
            self.cmd["uidnext"] = num(cargs[0])
        elif code == "HIGHESTMODSEQ" and self.selecting():
            self.cmd["highestmodseq"] = num(cargs[0])
        elif code == "READ-ONLY" and self.selecting():
            self.readonly = True
        elif code == "APPENDUID":
            if self.cmd is not None:
                self.cmd["appenduid"] = (num(cargs[0]), str(cargs[1]))
        elif code == "UNSEEN" and self.selecting():
            n = num(cargs[0])
            if self.cmd.get("pending_reset"):
                self.apply_reset()
            if not 1 <= n <= self.count:
                self.v("bounds", r, "UNSEEN %d outside 1..%d" % (n, self.count))

    def selecting(self):
        return self.cmd is not None and self.cmd["name"] in ("SELECT", "EXAMINE")

    def apply_reset(self):
        mbox = self.cmd["mailbox"]
        self.deselect()
        self.selected = mbox
        self.readonly = self.cmd["name"] == "EXAMINE"
        self.cmd["pending_reset"] = False

    def check_uidvalidity(self, mbox, uv, r):
        with self.shared.lock:
            old = self.shared.uidvalidity.setdefault((self.user, mbox), uv)
        if old != uv:
            self.v("uidvalidity", r, "UIDVALIDITY of %s changed %d -> %d" % (mbox, old, uv))

    def on_exists(self, n, r):
        if self.cmd and self.cmd.get("pending_reset"):
            self.apply_reset()
        if self.selected is None:
            self.v("bounds", r, "EXISTS without a selected mailbox")
            return
        if n < self.count:
            self.v("exists", r, "EXISTS %d lower than the current count %d (only EXPUNGE shrinks)" % (n, self.count))
            del self.uids[n:]
            del self.bounds[n:]
            del self.ceil[n:]
        else:
            grow = n - self.count
            self.uids.extend([None] * grow)
            self.bounds.extend([self.maxuid] * grow)
            self.ceil.extend([None] * grow)
        self.count = n

    def on_expunge(self, n, r):
        if self.selected is None:
            self.v("bounds", r, "EXPUNGE without a selected mailbox")
            return
        if not 1 <= n <= self.count:
            self.v("bounds", r, "EXPUNGE %d outside 1..%d" % (n, self.count))
            return
        if self.cmd is not None and self.cmd["name"] in ("FETCH", "STORE", "SEARCH"):
            self.v("expunge-in-fetch", r, "EXPUNGE while answering %s (RFC 3501 7.4.1)" % self.cmd["name"])
        uid = self.uids.pop(n - 1)
        self.bounds.pop(n - 1)
        self.ceil.pop(n - 1)
        self.count -= 1
        if uid is not None:
            self.msmap.pop(uid, None)
            with self.shared.lock:
                self.shared.expunged[self.mkey()].add(uid)
            if self.cmd is not None:
                self.cmd.setdefault("expunged_uids", set()).add(uid)
        if self.cmd is not None:
            # sequence numbers above n shift down while this command runs
            seqs = self.cmd.get("want_seqs")
            if seqs:
                self.cmd["want_seqs"] = {s - 1 if s > n else s for s in seqs if s != n}

    def on_fetch(self, n, att, r):
        if self.cmd and self.cmd.get("pending_reset"):
            self.apply_reset()
        if self.selected is None:
            self.v("bounds", r, "FETCH without a selected mailbox")
            return
        if not 1 <= n <= self.count:
            self.v("bounds", r, "FETCH %d outside 1..%d (FETCH before EXISTS?)" % (n, self.count))
            return
        items = {}
        for i in range(0, len(att), 2):
            k = att[i]
            if not isinstance(k, Atom):
                raise ParseError("FETCH item name expected")
            items[norm_key(k)] = att[i + 1]
        uid = None
        if "UID" in items:
            uid = num(items["UID"])
            self.set_uid(n, uid, r)
        else:
            uid = self.uids[n - 1]
        if "FLAGS" in items:
            fl = items["FLAGS"]
            if not isinstance(fl, list) or not all(isinstance(f, Atom) for f in fl):
                raise ParseError("FLAGS wants a list of atoms")
            self.check_flags(n, uid, fl, r)
        if "MODSEQ" in items:
            ms = items["MODSEQ"]
            if not isinstance(ms, list) or len(ms) != 1:
                raise ParseError("MODSEQ wants (n)")
            ms = num(ms[0])
            if uid is not None:
                old = self.msmap.get(uid)
                if old is not None and ms < old:
                    self.v("modseq", r, "MODSEQ of UID %d went back %d -> %d" % (uid, old, ms))
                self.msmap[uid] = ms
                with self.shared.lock:
                    self.shared.modseq[self.mkey()].add(time.monotonic(), ms)
        if "RFC822.SIZE" in items:
            num(items["RFC822.SIZE"])
        if "ENVELOPE" in items and not (isinstance(items["ENVELOPE"], list) and len(items["ENVELOPE"]) == 10):
            raise ParseError("ENVELOPE wants 10 fields")
        if "INTERNALDATE" in items and not isinstance(items["INTERNALDATE"], bytes):
            raise ParseError("INTERNALDATE wants a string")
        if uid is not None and self.uidvalidity is not None:
            for k, val in items.items():
                if k in IMMUTABLE or k.startswith("BODY["):
                    self.check_immutable(uid, k, val, r)
        if self.cmd is not None:
            self.cmd.setdefault("got", collections.defaultdict(set))
            self.cmd["got"][n].update(items.keys())
            if uid is not None:
                self.cmd.setdefault("got_uid", collections.defaultdict(set))[uid].update(items.keys())

    def set_uid(self, n, uid, r):
        if uid <= 0:
            self.v("uid-order", r, "UID %d" % uid)
            return
        old = self.uids[n - 1]
        if old is not None and old != uid:
            self.v("uid-order", r, "seq %d had UID %d, now UID %d without EXPUNGE" % (n, old, uid))
        if old is None:
            if uid <= self.bounds[n - 1]:
                self.v("uid-order", r, "new message seq %d has UID %d, not above UID %d seen before it arrived"
                       % (n, uid, self.bounds[n - 1]))
        if self.ceil[n - 1] is not None and uid >= self.ceil[n - 1]:
            self.v("uid-order", r, "UID %d of seq %d not below UIDNEXT %d announced by SELECT" % (uid, n, self.ceil[n - 1]))
        for j in range(n - 2, -1, -1):
            if self.uids[j] is not None:
                if uid - self.uids[j] < n - 1 - j:
                    self.v("uid-order", r, "UID %d at seq %d not above UID %d at seq %d" % (uid, n, self.uids[j], j + 1))
                break
        for j in range(n, self.count):
            if self.uids[j] is not None:
                if self.uids[j] - uid < j + 1 - n:
                    self.v("uid-order", r, "UID %d at seq %d not below UID %d at seq %d" % (uid, n, self.uids[j], j + 1))
                break
        self.uids[n - 1] = uid
        if uid > self.maxuid:
            self.maxuid = uid
        with self.shared.lock:
            self.shared.uidnext[self.mkey()].add(time.monotonic(), uid + 1)

    def check_flags(self, n, uid, fl, r):
        allowed = self.flags_ok
        for f in fl:
            lf = f.lower()
            if lf in SYSTEM_FLAGS:
                continue
            if allowed is None or lf not in allowed:
                self.v("flags", r, "flag %s not announced in the latest * FLAGS" % f)
        if "\\recent" in (f.lower() for f in fl) and uid is not None and not self.readonly:
            key = (self.user, self.selected, self.uidvalidity, uid)
            with self.shared.lock:
                other = self.shared.recent.setdefault(key, self.session)
            if other != self.session:
                self.v("recent", r, "\\Recent for %s UID %d also seen by read-write session %s" % (self.selected, uid, other))

    def check_immutable(self, uid, k, val, r):
        d = hashlib.sha1(repr(val).encode()).hexdigest()
        key = (self.user, self.selected, self.uidvalidity, uid, k)
        with self.shared.lock:
            old = self.shared.immutable.setdefault(key, (d, self.session, clip(r, 200)))
        if old[0] != d:
            # classified at the end: a message some session saw expunged may come back empty (Dovecot
            # answers FETCH of a message expunged meanwhile with NIL bodies and RFC822.SIZE 0)
            detail = "%s of %s UID %d differs from what %s got: %s" % (k, self.selected, uid, old[1], old[2])
            with self.shared.lock:
                self.shared.immutable_checks.append((self.mkey(), uid, self.session, self.cur_line, clip(r), detail,
                                                     list(self.trace) if self.trace is not None else None))

    def on_status(self, mbox, items, r):
        if self.cmd is None or self.cmd["name"] != "STATUS":
            return  # unsolicited STATUS (NOTIFY) is not requested here
        uv = items.get("UIDVALIDITY")
        if uv is None:
            return
        self.check_uidvalidity(mbox, uv, r)
        if mbox == self.selected:
            # RFC 3501 6.3.10: STATUS on the selected mailbox may answer from the session's own (not yet
            # updated) view, as Dovecot does; so only compare with that view
            un, hms = items.get("UIDNEXT"), items.get("HIGHESTMODSEQ")
            if un is not None and un <= self.maxuid:
                self.v("uidnext", r, "UIDNEXT %d of the selected mailbox not above UID %d in the session" % (un, self.maxuid))
            top = max(self.msmap.values(), default=None)
            if hms is not None and top is not None and hms < top:
                self.v("modseq", r, "HIGHESTMODSEQ %d of the selected mailbox below MODSEQ %d in the session" % (hms, top))
            return
        self.check_monotonic((self.user, mbox, uv), items.get("UIDNEXT"), items.get("HIGHESTMODSEQ"), r)

    def check_monotonic(self, key, uidnext, hms, r, record_uidnext=None):
        t0 = self.cmd["t_send"]
        sh = self.shared
        with sh.lock:
            bu = sh.uidnext[key].max_before(t0) if uidnext is not None else None
            bm = sh.modseq[key].max_before(t0) if hms is not None else None
        if bu is not None and uidnext < bu:
            self.v("uidnext", r, "UIDNEXT %d of %s below %d observed before the command" % (uidnext, key[1], bu))
        if bm is not None and hms < bm:
            self.v("modseq", r, "HIGHESTMODSEQ %d of %s below %d observed before the command" % (hms, key[1], bm))
        with sh.lock:
            now = time.monotonic()
            if uidnext is not None:
                sh.uidnext[key].add(now, record_uidnext or uidnext)
            if hms is not None:
                sh.modseq[key].add(now, hms)

    # -- commands
    def command(self, name, text, literal=None, expect_no=False, idle=None):
        """Sends one command, reads to its tagged response, runs every check. Returns (status, code, cargs)."""
        self.tagn += 1
        tag = "c%da%d" % (self.cid, self.tagn)
        line = "%s %s" % (tag, text)
        self.cur_line = line if literal is None else line + " <%d octets>" % len(literal)
        self.cmd = cmd = {"name": name, "tag": tag, "t_send": time.monotonic()}
        t0 = time.perf_counter()
        sync_lit = literal is not None and not text.endswith("+}")
        if literal is not None and not sync_lit:
            self.send((line + "\r\n").encode() + literal + b"\r\n")
        else:
            self.send((line + "\r\n").encode())
        return cmd, t0, tag, sync_lit

    def finish(self, name, cmd, t0, tag, sync_lit=False, literal=None, idle=None, expect_no=False):
        waiting_plus = sync_lit or idle is not None
        done_sent = False
        status = None
        while True:
            if idle is not None and not waiting_plus and not done_sent:
                try:
                    r = self.read_response(deadline=idle)
                except Timeout:
                    self.send(b"DONE\r\n")
                    done_sent = True
                    continue
            else:
                r = self.read_response()
            if r.startswith(b"+"):
                if not waiting_plus:
                    self.v("parse", r, "unexpected continuation request")
                    continue
                waiting_plus = False
                if sync_lit:
                    self.send(literal + b"\r\n")
                continue
            if r.startswith(b"* "):
                self.untagged(r)
                continue
            sp = r.find(b" ")
            rtag = r[:sp].decode("latin-1") if sp > 0 else r.decode("latin-1")
            if rtag != tag:
                self.v("tag", r, "tagged response with tag %r, command tag %r" % (rtag, tag))
                if sp < 0:
                    continue
            rest = r[sp + 1:]
            sp2 = rest.find(b" ")
            status = (rest if sp2 < 0 else rest[:sp2]).decode("latin-1").upper()
            if status not in ("OK", "NO", "BAD"):
                self.v("parse", r, "tagged response status %r" % status)
                if rtag != tag:
                    continue
                status = "BAD"
            try:
                code, cargs, _ = parse_resp_text(b"" if sp2 < 0 else rest[sp2 + 1:])
            except ParseError as e:
                self.v("parse", r, "unparseable tagged response: %s" % e)
                code, cargs = None, []
            if code:
                try:
                    self.on_code(code, cargs, r)
                except ParseError as e:
                    self.v("parse", r, "bad response code: %s" % e)
            if rtag != tag:
                continue
            cmd["final"] = r
            break
        dt = time.perf_counter() - t0
        self.lat[name].append(dt)
        self.ops += 1
        self.since_login += 1
        cmd["status"] = status
        cmd["code"] = code
        if status != "OK" and not expect_no:
            self.on_no(name, cmd, r)
        self.cmd = None
        return status, code, cmd

    def on_no(self, name, cmd, r):
        if name in ("STORE", "UID STORE", "EXPUNGE") and self.readonly and cmd["status"] == "NO":
            return
        if name in ("FETCH", "UID FETCH", "STORE", "UID STORE") and cmd["status"] == "NO" and self.selected:
            # RFC 2180 4.1.1-style refusal; a violation either way, but classified at the end by whether
            # any requested message was in fact expunged by some session
            uids = cmd.get("want_uids") or set()
            with self.shared.lock:
                self.shared.no_checks.append((self.mkey(), set(uids), "c%d.%d" % (self.cid, self.conn_no),
                                              self.cur_line, clip(r), list(self.trace) if self.trace is not None else None))
            return
        self.v("no-bad", r, "tagged %s" % cmd["status"])

    def run_cmd(self, name, text, literal=None, expect_no=False, idle=None, setup=None):
        cmd, t0, tag, sync_lit = self.command(name, text, literal)
        if setup:
            setup(cmd)
        return self.finish(name, cmd, t0, tag, sync_lit, literal, idle, expect_no)

    # -- high-level operations
    def login(self):
        self.connect()
        st, _, _ = self.run_cmd("LOGIN", "LOGIN %s %s" % (quote(self.user), quote(self.args.password)))
        if st != "OK":
            raise ConnClosed("LOGIN failed")
        self.logged_in = True
        self.since_login = 0
        if not self.caps or "IMAP4REV1" not in self.caps:
            self.run_cmd("CAPABILITY", "CAPABILITY")

    def logout(self):
        try:
            self.run_cmd("LOGOUT", "LOGOUT")
        finally:
            self.close()
            self.logged_in = False

    def do_select(self, mbox, examine=False):
        name = "EXAMINE" if examine else "SELECT"
        prev = self.selected

        def setup(cmd):
            cmd["mailbox"] = mbox
            if prev is None:
                self.deselect()
                self.selected = mbox
                self.readonly = examine
            else:
                cmd["pending_reset"] = True

        st, _, cmd = self.run_cmd(name, "%s %s" % (name, quote(mbox)), setup=setup)
        self.cmd = None
        if cmd.get("pending_reset"):
            if st == "OK":
                self.apply_reset_from(cmd)
        if st != "OK":
            self.deselect()
            return
        if self.flags_ok is None:
            self.v("flags", cmd["final"], "SELECT without * FLAGS")
        if self.uidvalidity is None:
            self.v("parse", cmd["final"], "SELECT without UIDVALIDITY")
            return
        self.cmd = cmd
        self.check_monotonic(self.mkey(), cmd.get("uidnext"), cmd.get("highestmodseq"), cmd["final"])
        self.cmd = None
        if cmd.get("uidnext") is not None:
            self.ceil = [cmd["uidnext"]] * self.count
            for i, u in enumerate(self.uids):
                if u is not None and u >= cmd["uidnext"]:
                    self.v("uid-order", cmd["final"], "UID %d at seq %d not below UIDNEXT %d" % (u, i + 1, cmd["uidnext"]))
        if self.count:
            items = "(UID FLAGS MODSEQ)" if self.condstore else "(UID FLAGS)"
            self.fetch("1:*", items, list(range(1, self.count + 1)), ["UID", "FLAGS"] + (["MODSEQ"] if self.condstore else []))

    def apply_reset_from(self, cmd):
        self.cmd = cmd
        self.apply_reset()
        self.cmd = None

    def fetch(self, set_text, items_text, want_seqs, want_items, uid=False, want_uids=None):
        name = "UID FETCH" if uid else "FETCH"

        def setup(cmd):
            cmd["want_seqs"] = set(want_seqs) if want_seqs else set()
            if want_uids is None and want_seqs:
                cmd["want_uids"] = {self.uids[s - 1] for s in want_seqs if self.uids[s - 1] is not None}
            else:
                cmd["want_uids"] = set(want_uids or ())
            cmd["want_items"] = [norm_key(x) for x in want_items]

        st, _, cmd = self.run_cmd(name, "%s %s %s" % (name, set_text, items_text), setup=setup)
        if st != "OK":
            return
        want = set(cmd["want_items"])
        if uid:
            want.add("UID")
            got = cmd.get("got_uid", {})
            gone = cmd.get("expunged_uids", set())
            for u in sorted(cmd["want_uids"]):
                if u in gone:
                    continue
                missing = want - got.get(u, set())
                if missing:
                    self.v("missing", cmd["final"], "no %s for visible UID %d" % (" ".join(sorted(missing)), u))
        else:
            got = cmd.get("got", {})
            for s in sorted(cmd["want_seqs"]):
                missing = want - got.get(s, set())
                if missing:
                    self.v("missing", cmd["final"], "no %s for visible message %d" % (" ".join(sorted(missing)), s))

    def rand_items(self):
        k = self.rng.randint(1, 4)
        items = self.rng.sample(FETCH_ITEMS, k)
        if self.condstore and self.rng.random() < 0.5:
            items.append("MODSEQ")
        return items

    def op_fetch(self, uid):
        if not self.count:
            return self.op_noop()
        items = self.rand_items()
        if not uid:
            if self.rng.random() < 0.7 and "UID" not in items:
                items.append("UID")
            a = self.rng.randint(1, self.count)
            r = self.rng.random()
            if r < 0.3:
                seqs, text = [a], str(a)
            elif r < 0.8:
                b = min(self.count, a + self.rng.randint(0, 6))
                seqs, text = list(range(a, b + 1)), "%d:%d" % (a, b)
            else:
                seqs, text = list(range(a, self.count + 1)), "%d:*" % a
            self.fetch(text, "(%s)" % " ".join(items), seqs, items)
        else:
            known = [u for u in self.uids if u is not None]
            r = self.rng.random()
            if not known or r < 0.2:
                text, want = "1:*", known
            else:
                i = self.rng.randrange(len(known))
                j = min(len(known) - 1, i + self.rng.randint(0, 6))
                text = "%d:%d" % (known[i], known[j]) if i != j else str(known[i])
                want = known[i:j + 1]
            self.fetch(text, "(%s)" % " ".join(items), None, items, uid=True, want_uids=want)

    def rand_flags(self):
        pool = ["\\Seen", "\\Flagged", "\\Answered", "\\Deleted"] + LABELS
        if self.perm_star and self.new_keywords:
            pool += self.new_keywords
        k = self.rng.randint(1, 3)
        fl = self.rng.sample(pool, k)
        if self.count > 30 and "\\Deleted" not in fl and self.rng.random() < 0.4:
            fl.append("\\Deleted")
        return fl

    def op_store(self, uid):
        if not self.count:
            return self.op_noop()
        fl = self.rand_flags()
        mode = self.rng.choice(["+FLAGS", "+FLAGS", "-FLAGS", "FLAGS"])
        if mode == "FLAGS" and "\\Deleted" not in fl and self.rng.random() < 0.5:
            mode = "+FLAGS"
        silent = ".SILENT" if self.rng.random() < 0.2 else ""
        a = self.rng.randint(1, self.count)
        b = min(self.count, a + self.rng.randint(0, 3))
        if uid:
            known = [u for u in self.uids[a - 1:b] if u is not None]
            if not known:
                return self.op_fetch(False)
            text = "UID STORE %s %s%s (%s)" % (seqset(known), mode, silent, " ".join(fl))
            name = "UID STORE"
            want_uids = known
        else:
            text = "STORE %d:%d %s%s (%s)" % (a, b, mode, silent, " ".join(fl))
            name = "STORE"
            want_uids = [u for u in self.uids[a - 1:b] if u is not None]

        def setup(cmd):
            cmd["want_uids"] = set(want_uids)

        # (no check that every stored message comes back in a FETCH: servers, Dovecot among them,
        # leave out the messages whose flags did not change)
        self.run_cmd(name, text, setup=setup)

    def op_search(self, uid):
        crit = self.rng.choice(["ALL", "UNSEEN", "FLAGGED", "DELETED", "KEYWORD $Label1", "NOT SEEN FLAGGED",
                                "OR ANSWERED KEYWORD $Label2", "1:%d" % max(1, self.count)])
        if not self.count and crit.startswith("1:"):
            crit = "ALL"
        name = "UID SEARCH" if uid else "SEARCH"
        st, _, cmd = self.run_cmd(name, "%s %s" % (name, crit))

    def op_expunge(self):
        self.run_cmd("EXPUNGE", "EXPUNGE")

    def op_noop(self):
        self.run_cmd("NOOP", "NOOP")

    def op_idle(self):
        if "IDLE" not in self.caps:
            return self.op_noop()
        lo, hi = self.args.idle_ms
        dur = self.rng.uniform(lo, hi) / 1000.0
        cmd, t0, tag, _ = self.command("IDLE", "IDLE")
        # the deadline counts from the continuation; close enough to take it from now
        self.finish("IDLE", cmd, t0, tag, idle=time.monotonic() + dur)

    def op_status(self):
        mbox = self.rng.choice(self.mailboxes)
        items = "MESSAGES UIDNEXT UNSEEN RECENT UIDVALIDITY"
        if "CONDSTORE" in self.caps:
            items += " HIGHESTMODSEQ"
        self.run_cmd("STATUS", "STATUS %s (%s)" % (quote(mbox), items))

    def op_list(self):
        st, _, cmd = self.run_cmd("LIST", 'LIST "" "*"')
        if st == "OK":
            missing = set(self.mailboxes) - cmd.get("listed", set())
            if missing:
                self.v("missing", cmd["final"], "LIST lacks %s" % ", ".join(sorted(missing)))

    def op_enable(self):
        if "ENABLE" in self.caps and "CONDSTORE" in self.caps:
            self.run_cmd("ENABLE", "ENABLE CONDSTORE")
        else:
            self.op_noop()

    def op_append(self):
        mbox = self.rng.choice(self.mailboxes) if self.rng.random() < 0.5 or not self.selected else self.selected
        msg = make_message(self.rng, self.user)
        flags = ""
        if self.rng.random() < 0.5:
            pool = ["\\Seen", "\\Flagged", "\\Answered", "\\Draft"] + LABELS
            flags = " (%s)" % " ".join(self.rng.sample(pool, self.rng.randint(0, 3)))
        plus = "+" if "LITERAL+" in self.caps and self.rng.random() < 0.5 else ""
        text = "APPEND %s%s {%d%s}" % (quote(mbox), flags, len(msg), plus)
        key_mbox = canon_mailbox(mbox)
        st, _, cmd = self.run_cmd("APPEND", text, literal=msg)
        au = cmd.get("appenduid")
        if st == "OK" and au:
            uv, uids = au
            try:
                u = max(parse_uidset(uids))
            except ValueError:
                self.v("parse", cmd["final"], "bad APPENDUID")
                return
            self.check_uidvalidity(key_mbox, uv, cmd["final"])
            self.cmd = cmd
            self.check_monotonic((self.user, key_mbox, uv), u, None, cmd["final"], record_uidnext=u + 1)
            self.cmd = None

    def op_logout_login(self):
        self.logout()
        self.login()

    def step(self):
        if not self.logged_in:
            self.login()
            return
        if self.args.login_every and self.since_login >= self.args.login_every:
            self.op_logout_login()
            return
        rng = self.rng
        if self.selected is None:
            ops = [("select", 10), ("examine", 3), ("status", 4), ("list", 2), ("append", 2), ("noop", 1), ("enable", 1)]
        else:
            big = self.count > 40
            small = self.count < 10
            ops = [
                ("fetch", 20), ("uid fetch", 12), ("store", 10), ("uid store", 8),
                ("search", 2), ("uid search", 1), ("expunge", 6 if big else 2), ("append", 1 if big else (10 if small else 5)), ("noop", 5),
                ("idle", 3), ("status", 5), ("list", 2), ("select", 4), ("examine", 2), ("enable", 1),
                ("logout", 1 if not (self.args.login_every or self.args.stay) else 0),
            ]
        total = sum(w for _, w in ops)
        x = rng.uniform(0, total)
        for op, w in ops:
            x -= w
            if x <= 0:
                break
        if op == "select" or op == "examine":
            self.do_select(rng.choice(self.mailboxes), examine=(op == "examine"))
        elif op == "fetch":
            self.op_fetch(False)
        elif op == "uid fetch":
            self.op_fetch(True)
        elif op == "store":
            self.op_store(False)
        elif op == "uid store":
            self.op_store(True)
        elif op == "expunge":
            self.op_expunge()
        elif op == "search":
            self.op_search(False)
        elif op == "uid search":
            self.op_search(True)
        elif op == "append":
            self.op_append()
        elif op == "noop":
            self.op_noop()
        elif op == "idle":
            self.op_idle()
        elif op == "status":
            self.op_status()
        elif op == "list":
            self.op_list()
        elif op == "enable":
            if self.condstore:
                self.op_noop()
            else:
                self.op_enable()
        elif op == "logout":
            self.op_logout_login()

    def run(self):
        failures = 0
        while failures < 3:
            try:
                while not self.shared.stop.is_set():
                    if time.monotonic() >= self.end_time or (self.max_ops and self.ops >= self.max_ops):
                        break
                    self.step()
                if self.logged_in:
                    self.logout()
                break
            except ConnClosed as e:
                self.v("conn", "", "connection failed: %s" % (e or "closed"))
            except OSError as e:
                self.v("conn", "", "error: %r" % e)
            except Exception:  # a checker bug must not go unnoticed
                import traceback
                self.v("internal", "", "checker exception: %s" % traceback.format_exc())
            failures += 1
            self.close()
            self.logged_in = False
        self.close()


def make_message(rng, user):
    n = rng.randrange(1 << 30)
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
    head = ("From: Sender %d <s%d@example.net>\r\nTo: %s\r\nSubject: stress %d %s\r\nDate: %s\r\n"
            "Message-ID: <%d.%d@stress.test>\r\nMIME-Version: 1.0\r\n"
            % (n % 97, n % 97, user, n, rng.choice(["hello", "report", "=?utf-8?q?caf=C3=A9?="]), date, n, time.time_ns()))
    text = "".join("line %d of message %d\r\n" % (i, n) for i in range(rng.randint(1, 20)))
    if rng.random() < 0.5:
        return (head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text).encode()
    b = "b%d" % n
    return (head + 'Content-Type: multipart/mixed; boundary="%s"\r\n\r\nPreamble.\r\n'
            "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s"
            "--%s\r\nContent-Type: application/octet-stream; name=\"a%d.bin\"\r\n"
            "Content-Disposition: attachment; filename=\"a%d.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            "AAECAwQFBgcICQ==\r\n--%s--\r\n" % (b, b, text, b, n, n, b)).encode()


def seed(args, shared, user, rng):
    """Creates the folders and tops every mailbox up to --seed-messages (checked like any session)."""
    c = Client(900 + args.users.index(user), args, shared, user, rng, time.monotonic() + 3600, 0)
    c.login()
    for mbox in args.mailbox_names:
        if mbox != "INBOX":
            c.run_cmd("CREATE", "CREATE %s" % quote(mbox), expect_no=True)  # may exist already
        c.do_select(mbox)
        for _ in range(max(0, args.seed_messages - c.count)):
            msg = make_message(c.rng, c.user)
            c.run_cmd("APPEND", "APPEND %s {%d}" % (quote(mbox), len(msg)), literal=msg)
    c.logout()


def final_uids(args, shared, user, rng):
    """After the run: the UIDs still in each mailbox, so that a UID requested earlier and missing now
    is known to have been expunged even if no session learnt its UID before the EXPUNGE."""
    c = Client(950 + args.users.index(user), args, shared, user, rng, time.monotonic() + 3600, 0)
    c.login()
    for mbox in args.mailbox_names:
        c.do_select(mbox, examine=True)
        if c.selected is None or c.uidvalidity is None:
            continue
        key = c.mkey()
        st, _, cmd = c.run_cmd("UID SEARCH", "UID SEARCH ALL")
        if st == "OK":
            with shared.lock:
                shared.final[key] = cmd.get("search", set())
    c.logout()


def gone_uids(shared, key, uids):
    """Those of uids some session saw expunged, or that are no longer there at the end."""
    final = shared.final.get(key)
    return {u for u in uids if u in shared.expunged.get(key, ()) or (final is not None and u not in final)}


class _FakeSock:
    def sendall(self, data):
        pass

    def recv(self, n):
        return b""

    def settimeout(self, t):
        pass

    def close(self):
        pass


def self_test():
    """Feeds scripted server responses to the checker: every invariant must fire on its bad case
    and stay quiet on the good one."""
    args = argparse.Namespace(host="", port=0, timeout=1, context=0, mailbox_names=["INBOX"], new_keywords=[],
                              password="p", login_every=0, stay=False)
    ok = True

    def session(shared, cid=0, count=3, uids=(1, 2, 3), readonly=False):
        c = Client(cid, args, shared, "u", random.Random(1), 0, 0)
        c.sock = _FakeSock()
        c.session = "c%d.1" % cid
        c.logged_in = True
        c.selected, c.readonly, c.uidvalidity = "INBOX", readonly, 7
        c.count, c.uids, c.bounds, c.ceil = count, list(uids), [0] * count, [None] * count
        c.maxuid = max([u for u in uids if u is not None], default=0)
        c.flags_ok = {f for f in SYSTEM_FLAGS} | {"$label1"}
        return c

    def case(name, want, script, run=None, shared=None, **kw):
        nonlocal ok
        shared = shared or Shared(100)
        c = session(shared, **kw)
        c.buf = bytearray(script.replace("TAG", "c%da1" % c.cid).encode())
        try:
            (run or (lambda c: c.run_cmd("NOOP", "NOOP")))(c)
        except ConnClosed:
            pass
        got = set(shared.by_kind) | ({"no-deferred"} if shared.no_checks else set())
        good = (want in got) if want else not got
        ok &= good
        print("self-test %-34s %s (want %s, got %s)" % (name, "ok" if good else "FAILED", want or "nothing",
                                                        ",".join(sorted(got)) or "nothing"))
        return shared

    case("clean NOOP", None, "* 4 EXISTS\r\n* 1 RECENT\r\n* 4 FETCH (UID 9 FLAGS (\\Recent $Label1))\r\nTAG OK done\r\n")
    case("FETCH beyond count", "bounds", "* 4 FETCH (FLAGS ())\r\nTAG OK done\r\n")
    case("EXPUNGE 0", "bounds", "* 0 EXPUNGE\r\nTAG OK done\r\n")
    case("EXISTS shrinks", "exists", "* 2 EXISTS\r\nTAG OK done\r\n")
    case("keyword before FLAGS", "flags", "* 1 FETCH (FLAGS (\\Seen newkw))\r\nTAG OK done\r\n")
    case("keyword after FLAGS", None, "* FLAGS (\\Seen newkw)\r\n* 1 FETCH (FLAGS (\\Seen newkw))\r\nTAG OK done\r\n")
    sh = case("\\Recent in session 1", None, "* 1 FETCH (UID 1 FLAGS (\\Recent))\r\nTAG OK done\r\n")
    c2 = session(sh, cid=1)
    c2.buf = bytearray(b"* 1 FETCH (UID 1 FLAGS (\\Recent))\r\nc1a1 OK done\r\n")
    c2.run_cmd("NOOP", "NOOP")
    good = sh.by_kind.get("recent") == 1
    ok &= good
    print("self-test %-34s %s" % ("\\Recent in two sessions", "ok" if good else "FAILED"))
    case("NO on FETCH", "no-deferred", "TAG NO [EXPUNGEISSUED] gone\r\n",
         run=lambda c: c.fetch("1", "(FLAGS)", [1], ["FLAGS"]))
    case("NO on NOOP", "no-bad", "TAG NO what\r\n")
    case("STORE NO when read-only", None, "TAG NO read-only\r\n", run=lambda c: c.run_cmd("STORE", "STORE 1 +FLAGS (\\Seen)"),
         readonly=True)
    case("missing FETCH data", "missing", "* 1 FETCH (FLAGS ())\r\nTAG OK done\r\n",
         run=lambda c: c.fetch("1:2", "(FLAGS)", [1, 2], ["FLAGS"]))
    case("missing UID FETCH data", "missing", "* 1 FETCH (UID 1 FLAGS ())\r\nTAG OK done\r\n",
         run=lambda c: c.fetch("1:2", "(FLAGS)", None, ["FLAGS"], uid=True, want_uids=[1, 2]))
    case("UID FETCH, one expunged", None, "* 2 EXPUNGE\r\n* 1 FETCH (UID 1 FLAGS ())\r\nTAG OK done\r\n",
         run=lambda c: c.fetch("1:2", "(FLAGS)", None, ["FLAGS"], uid=True, want_uids=[1, 2]))
    case("EXPUNGE during FETCH", "expunge-in-fetch", "* 3 EXPUNGE\r\n* 1 FETCH (FLAGS ())\r\nTAG OK done\r\n",
         run=lambda c: c.fetch("1", "(FLAGS)", [1], ["FLAGS"]))
    case("UID order", "uid-order", "* 2 FETCH (UID 7)\r\nTAG OK done\r\n", uids=(1, None, 5))
    case("UID order, no room", "uid-order", "* 3 FETCH (UID 2)\r\nTAG OK done\r\n", uids=(1, None, None))
    case("UID changes", "uid-order", "* 2 FETCH (UID 5)\r\nTAG OK done\r\n")
    case("new message UID too low", "uid-order", "* 4 EXISTS\r\n* 4 FETCH (UID 3)\r\nTAG OK done\r\n", uids=(1, 2, 5))
    case("MODSEQ back", "modseq", "* 1 FETCH (UID 1 MODSEQ (5))\r\n* 1 FETCH (UID 1 MODSEQ (4))\r\nTAG OK done\r\n")
    case("wrong tag", "tag", "x1 OK done\r\nTAG OK done\r\n")
    case("unparseable FETCH", "parse", "* 1 FETCH (FLAGS (\\Seen)\r\nTAG OK done\r\n")
    case("unknown untagged", "parse", "* FOO bar\r\nTAG OK done\r\n")
    case("literal in FETCH", None, "* 1 FETCH (UID 1 BODY[HEADER.FIELDS (FROM)] {9}\r\nFrom: x\r\n BODY[TEXT] \"a \\\" b\")\r\nTAG OK done\r\n")
    case("unexpected BYE", "conn", "* BYE bye\r\n")
    sh = Shared(100)
    c = session(sh)
    c.cmd = {"name": "STATUS", "t_send": time.monotonic()}
    c.untagged(b"* STATUS Other (UIDNEXT 10 UIDVALIDITY 3 HIGHESTMODSEQ 50)")
    time.sleep(0.01)
    c.cmd = {"name": "STATUS", "t_send": time.monotonic()}
    c.untagged(b"* STATUS Other (UIDNEXT 9 UIDVALIDITY 3 HIGHESTMODSEQ 49)")
    good = sh.by_kind.get("uidnext") == 1 and sh.by_kind.get("modseq") == 1
    ok &= good
    print("self-test %-34s %s" % ("UIDNEXT/HIGHESTMODSEQ go back", "ok" if good else "FAILED"))
    print("self-test:", "all ok" if ok else "FAILED")
    return ok


def percentile(sorted_vals, p):
    if not sorted_vals:
        return 0.0
    k = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * (len(sorted_vals) - 1)))))
    return sorted_vals[k]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    if "--self-test" in sys.argv[1:]:
        sys.exit(0 if self_test() else 1)
    ap.add_argument("server", help="HOST:PORT")
    ap.add_argument("--user", action="append", dest="users", required=True, help="account (repeat for several)")
    ap.add_argument("--password", default="pass")
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--ops", type=int, default=None, help="total commands over all clients (instead of --seconds)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mailboxes", default="3", help="a count (INBOX + Stress1..) or a comma-separated list")
    ap.add_argument("--seed-messages", type=int, default=15, help="messages each mailbox has at start")
    ap.add_argument("--login-every", type=int, default=0, help="LOGOUT and LOGIN again every K commands (0: never)")
    ap.add_argument("--stay", action="store_true",
                    help="clients stay logged in: no LOGOUT in the mix (one LOGIN per client)")
    ap.add_argument("--idle-ms", default="50:300", type=lambda v: tuple(float(x) for x in v.split(":")),
                    help="how long an IDLE lasts, MIN:MAX milliseconds (benches use a short one, so that "
                         "the figures measure the server rather than the client's waits)")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for any response")
    ap.add_argument("--max-violations", type=int, default=1000, help="violations kept (all are counted)")
    ap.add_argument("--show", type=int, default=40, help="violations printed")
    ap.add_argument("--context", type=int, default=0, help="keep and print the last N lines of a client's traffic per violation")
    ap.add_argument("--json", action="store_true", help="print a JSON summary on standard output")
    ap.add_argument("--self-test", action="store_true", help="check the checker on scripted responses, then exit")
    args = ap.parse_args()
    host, _, port = args.server.rpartition(":")
    args.host, args.port = host.strip("[]"), int(port)
    if args.mailboxes.isdigit():
        args.mailbox_names = ["INBOX"] + ["Stress%d" % i for i in range(1, int(args.mailboxes))]
    else:
        args.mailbox_names = [canon_mailbox(m.strip()) for m in args.mailboxes.split(",") if m.strip()]
    if args.seconds is None and args.ops is None:
        args.seconds = 10.0
    rng = random.Random(args.seed)
    args.new_keywords = ["kw%s_%d" % (format(rng.randrange(36 ** 4), "x"), i) for i in range(6)]
    shared = Shared(args.max_violations)
    log = sys.stderr if args.json else sys.stdout

    for user in args.users:
        try:
            seed(args, shared, user, random.Random(rng.random()))
        except (ConnClosed, OSError) as e:
            print("imap-stress: setup for %s on %s failed: %s" % (user, args.server, e or "connection closed"), file=sys.stderr)
            for v in shared.violations[:args.show]:
                print("  [%s] %s: %s / %s" % (v["kind"], v["detail"], v["command"], v["line"]), file=sys.stderr)
            sys.exit(2)
    seed_violations = sum(shared.by_kind.values())

    start = time.monotonic()
    end = start + args.seconds if args.seconds is not None else start + 10 ** 9
    per_client_ops = 0
    if args.ops is not None:
        per_client_ops = max(1, (args.ops + args.clients - 1) // args.clients)
    clients = [Client(i, args, shared, args.users[i % len(args.users)], random.Random(rng.random()), end, per_client_ops)
               for i in range(args.clients)]
    threads = [threading.Thread(target=c.run, daemon=True) for c in clients]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join()
    except KeyboardInterrupt:
        shared.stop.set()
        for t in threads:
            t.join(5)
    elapsed = time.monotonic() - start

    for user in args.users:
        try:
            final_uids(args, shared, user, random.Random(rng.random()))
        except (ConnClosed, OSError) as e:
            shared.violation("conn", "final", "(final UID SEARCH)", "", "failed: %s" % (e or "closed"))

    # deferred classification of NO answers to FETCH/STORE
    for key, uids, client, cmdline, line, ctx in shared.no_checks:
        gone = gone_uids(shared, key, uids)
        if gone:
            shared.violation("no-expunged", client, cmdline, line,
                             "NO for messages still visible to the session (UID %s expunged by another session: "
                             "RFC 2180 4.1.1 style)" % seqset(gone), ctx)
        else:
            shared.violation("no-bad", client, cmdline, line,
                             "NO for visible messages none of which was ever seen expunged", ctx)

    ghosts = 0
    for key, uid, client, cmdline, line, detail, ctx in shared.immutable_checks:
        if gone_uids(shared, key, [uid]):
            ghosts += 1
        else:
            shared.violation("immutable", client, cmdline, line, detail + " (and no session saw it expunged)", ctx)

    lat = collections.defaultdict(list)
    for c in clients:
        for k, v in c.lat.items():
            lat[k].extend(v)
    allv = sorted(x for v in lat.values() for x in v)
    total = len(allv)
    nviol = sum(shared.by_kind.values())
    per_type = {}
    for k in sorted(lat):
        v = sorted(lat[k])
        per_type[k] = {"count": len(v), "per_sec": len(v) / elapsed if elapsed else 0,
                       "p50_ms": percentile(v, 50) * 1000, "p99_ms": percentile(v, 99) * 1000}
    summary = {
        "server": args.server, "clients": args.clients, "users": args.users, "mailboxes": args.mailbox_names,
        "login_every": args.login_every, "seed": args.seed, "seconds": elapsed, "commands": total,
        "cmds_per_sec": total / elapsed if elapsed else 0,
        "p50_ms": percentile(allv, 50) * 1000, "p99_ms": percentile(allv, 99) * 1000,
        "per_type": per_type, "violations": nviol, "violations_by_kind": dict(shared.by_kind),
        "seed_violations": seed_violations, "expunged_ghosts": ghosts,
        "recent_uids_seen": len(shared.recent), "violation_list": shared.violations,
    }
    print("imap-stress: %s, %d clients over %d users, mailboxes %s, login-every %d, seed %d, %.1f s"
          % (args.server, args.clients, len(args.users), ",".join(args.mailbox_names), args.login_every, args.seed, elapsed),
          file=log)
    print("  %-10s %8s %9s %8s %8s" % ("command", "count", "cmds/s", "p50 ms", "p99 ms"), file=log)
    for k, s in per_type.items():
        print("  %-10s %8d %9.1f %8.2f %8.2f" % (k, s["count"], s["per_sec"], s["p50_ms"], s["p99_ms"]), file=log)
    print("  %-10s %8d %9.1f %8.2f %8.2f" % ("all", total, summary["cmds_per_sec"], summary["p50_ms"], summary["p99_ms"]), file=log)
    if ghosts:
        print("  (tolerated: %d FETCH answers with other data for a message another session had expunged)" % ghosts, file=log)
    if nviol:
        print("violations by kind: %s" % ", ".join("%s=%d" % kv for kv in shared.by_kind.most_common()), file=log)
        for v in shared.violations[:args.show]:
            print("VIOLATION [%s] client %s: %s\n    command: %s\n    line:    %s"
                  % (v["kind"], v["client"], v["detail"], v["command"], v["line"]), file=log)
            if v.get("context"):
                for l in v["context"]:
                    print("      | " + l, file=log)
        if nviol > args.show:
            print("... %d more violations" % (nviol - min(args.show, len(shared.violations))), file=log)
    if args.json:
        json.dump(summary, sys.stdout, indent=1)
        print()
    print("imap-stress: %d commands, %.1f cmds/s, %d violations" % (total, summary["cmds_per_sec"], nviol), file=log)
    sys.exit(1 if nviol else 0)


if __name__ == "__main__":
    main()
