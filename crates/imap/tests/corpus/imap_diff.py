#!/usr/bin/env python3
"""Differential test of two IMAP servers (postern and a reference, Dovecot) on a corpus.

    imap_diff.py --corpus DIR --a HOST:PORT:USER:PASS --b HOST:PORT:USER:PASS
                 [--accepted FILE] [--report FILE] [--only NAME-SUBSTRING]

A is the server under test (postern), B the reference (Dovecot). Both mailboxes (INBOX) must be
empty. Every DIR/*.eml is APPENDed, in name order, to both with the same flags and INTERNALDATE,
so sequence numbers match. Then, per message, the same FETCH commands go to both (ENVELOPE,
BODYSTRUCTURE, BODY, RFC822.SIZE, BODY.PEEK[section] for every section either BODYSTRUCTURE
shows, with .HEADER/.TEXT/.MIME/.HEADER.FIELDS where valid, BINARY.PEEK and BINARY.SIZE of the
leaves), then SEARCH, SORT and THREAD over the mailbox. Responses are parsed by our own reader
(literals kept exact) and normalised only where RFCs let servers differ (tags, human text after
OK/NO/BAD, untagged responses a command did not ask for, order of FETCH items, quoted string vs
literal, case of MIME type/subtype/parameter names/encoding (RFC 2045 §5.1, §6.1)).

A difference is accepted only if --accepted lists it:
    MESSAGE-GLOB <TAB> COMMAND-GLOB <TAB> reason naming the RFC
(MESSAGE-GLOB matches the .eml name, COMMAND-GLOB the command as printed, e.g.
`FETCH BODYSTRUCTURE`, `FETCH BODY.PEEK[2.1.MIME]`, `SORT (SUBJECT) UTF-8 ALL`; lines starting
with # are comments). Any other difference makes the exit status 1. Python 3 stdlib only.
"""

import argparse
import fnmatch
import os
import re
import socket
import sys
import time

# ---------------------------------------------------------------------------------------------
# Protocol: a client that keeps literals exact.


class Str(bytes):
    """An IMAP string (quoted or literal): compared by content only."""


class ImapError(Exception):
    pass


class Client:
    def __init__(self, host, port, user, password, timeout=30):
        self.label = "%s:%s" % (host, port)
        self.login = (host, port, user, password, timeout)
        self.connect()

    def connect(self):
        host, port, user, password, timeout = self.login
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.buf = b""
        self.n = 0
        greeting = self.readline()
        if not greeting.startswith(b"* OK"):
            raise ImapError("greeting: %r" % greeting)
        st, _, _ = self.cmd(b"LOGIN " + quote(user.encode()) + b" " + quote(password.encode()))
        if not st.startswith("OK"):
            raise ImapError("LOGIN failed")

    def readline(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ImapError("%s closed the connection" % self.label)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def readn(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ImapError("%s closed the connection" % self.label)
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self):
        """One response, literals inline (`{n}\\r\\n` + n octets)."""
        out = b""
        while True:
            line = self.readline()
            out += line
            m = re.search(rb"~?\{(\d+)\+?\}$", line)
            if not m:
                return out
            out += b"\r\n" + self.readn(int(m.group(1)))

    def reconnect(self):
        """After the server dropped us: a new session with INBOX selected again."""
        try:
            self.sock.close()
        except OSError:
            pass
        self.connect()
        self.cmd(b"SELECT INBOX")

    def send(self, data):
        self.sock.sendall(data)

    def cmd(self, text, literal=None):
        """Sends a command (with one optional synchronising literal appended after `text`)."""
        self.n += 1
        tag = b"D%d" % self.n
        if literal is not None:
            self.send(tag + b" " + text + b" {%d}\r\n" % len(literal))
            while True:
                r = self.read_response()
                if r.startswith(b"+"):
                    break
                if r.startswith(tag + b" "):
                    return parse_tagged(r, tag), [], r
            self.send(literal + b"\r\n")
        else:
            self.send(tag + b" " + text + b"\r\n")
        untagged = []
        while True:
            r = self.read_response()
            if r.startswith(tag + b" "):
                return parse_tagged(r, tag), untagged, r
            if r.startswith(b"* "):
                untagged.append(r)

    def close(self):
        try:
            self.cmd(b"LOGOUT")
        except Exception:
            pass
        self.sock.close()


def quote(b):
    return b'"' + b.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def parse_tagged(r, tag):
    rest = r[len(tag) + 1:].decode("utf-8", "replace")
    st = rest.split(" ", 1)[0].upper()
    code = re.match(r"\S+ \[([^\]]*)\]", rest)
    return st + (" [%s]" % code.group(1).split(" ")[0].upper() if code else "")


# ---------------------------------------------------------------------------------------------
# Parsing responses into values: atoms (str), NIL (None), strings (Str), lists.


def tokenize(data):
    """Parses the data of a response into a list of values."""
    pos = 0
    stack = [[]]
    n = len(data)
    while pos < n:
        c = data[pos:pos + 1]
        if c in b" \r\n":
            pos += 1
        elif c == b"(":
            stack.append([])
            pos += 1
        elif c == b")":
            if len(stack) > 1:
                v = stack.pop()
                stack[-1].append(v)
            pos += 1
        elif c == b'"':
            pos += 1
            s = bytearray()
            while pos < n and data[pos:pos + 1] != b'"':
                if data[pos:pos + 1] == b"\\" and pos + 1 < n:
                    pos += 1
                s += data[pos:pos + 1]
                pos += 1
            pos += 1
            stack[-1].append(Str(bytes(s)))
        elif c in (b"{", b"~") and re.match(rb"~?\{(\d+)\+?\}\r\n", data[pos:]):
            m = re.match(rb"~?\{(\d+)\+?\}\r\n", data[pos:])
            ln = int(m.group(1))
            start = pos + m.end()
            stack[-1].append(Str(data[start:start + ln]))
            pos = start + ln
        else:
            m = re.match(rb"[^ ()\r\n\[]+(\[[^\]]*\](<\d+>)?)?", data[pos:])
            if not m or m.end() == 0:
                # A stray character: keep it as an atom so nothing is silently dropped.
                stack[-1].append(data[pos:pos + 1].decode("latin-1"))
                pos += 1
                continue
            atom = m.group(0).decode("utf-8", "replace")
            stack[-1].append(None if atom.upper() == "NIL" else atom)
            pos += m.end()
    while len(stack) > 1:
        v = stack.pop()
        stack[-1].append(v)
    return stack[0]


def fetch_items(resp):
    """`* n FETCH (...)` -> (n, {ITEM: value})."""
    m = re.match(rb"\* (\d+) FETCH ", resp, re.I)
    if not m:
        return None
    vals = tokenize(resp[m.end():])
    items = {}
    if vals and isinstance(vals[0], list):
        lst = vals[0]
        for i in range(0, len(lst) - 1, 2):
            key = lst[i] if isinstance(lst[i], str) else repr(lst[i])
            items[key.upper()] = lst[i + 1]
    return int(m.group(1)), items


# ---------------------------------------------------------------------------------------------
# Normalisation of what may legitimately differ.


def lower_str(v):
    return Str(v.lower()) if isinstance(v, Str) else v


def norm_params(p):
    """Parameter names are case-insensitive (RFC 2045 §5.1); their order is not significant."""
    if not isinstance(p, list):
        return p
    pairs = [(lower_str(p[i]), p[i + 1]) for i in range(0, len(p) - 1, 2)]
    pairs.sort(key=lambda kv: (bytes(kv[0] or b""), bytes(kv[1] or b"")))
    return [x for kv in pairs for x in kv]


def norm_body(b):
    """BODY / BODYSTRUCTURE: type, subtype, parameter names, encoding and disposition type
    are case-insensitive (RFC 2045 §5.1, §6.1; RFC 2183 §2)."""
    if not isinstance(b, list) or not b:
        return b
    if isinstance(b[0], list):  # multipart
        i = 0
        out = []
        while i < len(b) and isinstance(b[i], list):
            out.append(norm_body(b[i]))
            i += 1
        rest = list(b[i:])
        if rest:
            rest[0] = lower_str(rest[0])
        if len(rest) > 1:
            rest[1] = norm_params(rest[1])
        if len(rest) > 2:
            rest[2] = norm_disp(rest[2])
        return out + rest
    out = list(b)
    for k in (0, 1, 5):
        if len(out) > k:
            out[k] = lower_str(out[k])
    if len(out) > 2:
        out[2] = norm_params(out[2])
    is_msg = len(out) > 1 and out[0] == b"message" and out[1] in (b"rfc822", b"global")
    if is_msg and len(out) > 8:
        out[8] = norm_body(out[8])
        ext = 10
    elif len(out) > 0 and out[0] == b"text":
        ext = 8
    else:
        ext = 7
    if len(out) > ext + 1:
        out[ext + 1] = norm_disp(out[ext + 1])
    return out


def norm_disp(d):
    if isinstance(d, list) and d:
        return [lower_str(d[0])] + [norm_params(x) for x in d[1:]]
    return d


def normalise_item(key, v):
    if key in ("BODY", "BODYSTRUCTURE"):
        return norm_body(v)
    if key == "FLAGS" and isinstance(v, list):
        # A flag list is a set (RFC 3501 §2.3.2); flag names are case-insensitive. \Recent is
        # per session (§2.3.2), and a session is new after a server dropped the connection.
        return sorted(str(f).lower() for f in v if str(f).lower() != "\\recent")
    return v


def render(v):
    """Values back to IMAP-like text for the report."""
    if v is None:
        return "NIL"
    if isinstance(v, Str):
        try:
            s = bytes(v).decode("utf-8")
        except UnicodeDecodeError:
            s = repr(bytes(v))[2:-1]
        if len(s) > 600:
            s = s[:600] + "...(%d octets)" % len(v)
        if "\n" in s or "\r" in s:
            return "{%d}%s" % (len(v), s.replace("\r", "\\r").replace("\n", "\\n"))
        return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')
    if isinstance(v, list):
        return "(" + " ".join(render(x) for x in v) + ")"
    return str(v)


# ---------------------------------------------------------------------------------------------
# Which sections a BODYSTRUCTURE shows.


def is_multipart(b):
    return isinstance(b, list) and b and isinstance(b[0], list)


def is_message(b):
    return (isinstance(b, list) and len(b) > 8 and isinstance(b[0], Str)
            and bytes(b[0]).lower() == b"message" and bytes(b[1]).lower() in (b"rfc822", b"global")
            and isinstance(b[8], list))


def sections(b, prefix=""):
    """(section-spec, is_leaf) for every part of a body structure, RFC 3501 §6.4.5."""
    out = []
    if is_multipart(b):
        i = 0
        while i < len(b) and isinstance(b[i], list):
            p = "%s%d" % (prefix, i + 1)
            out.append((p, "multipart" if is_multipart(b[i]) else ("message" if is_message(b[i]) else "leaf")))
            out += sections_of_part(b[i], p)
            i += 1
    elif prefix == "":
        out.append(("1", "message" if is_message(b) else "leaf"))
        out += sections_of_part(b, "1") if is_message(b) else []
    return out


def sections_of_part(b, p):
    if is_multipart(b):
        return sections(b, p + ".")
    if is_message(b):
        inner = b[8]
        if is_multipart(inner):
            return sections(inner, p + ".")
        kind = "message" if is_message(inner) else "leaf"
        return [(p + ".1", kind)] + (sections_of_part(inner, p + ".1") if kind == "message" else [])
    return []


# ---------------------------------------------------------------------------------------------


SEARCHES = [
    "SEARCH ALL", "SEARCH SEEN", "SEARCH UNSEEN FLAGGED", "SEARCH FROM alice", "SEARCH FROM \"example.org\"",
    "SEARCH TO bob", "SEARCH CC erin", "SEARCH BCC hidden", "SEARCH SUBJECT re", "SEARCH SUBJECT caf\u00e9",
    "SEARCH SUBJECT \"digest part\"", "SEARCH BODY bravo", "SEARCH BODY \"deep plain\"", "SEARCH TEXT zulu",
    "SEARCH TEXT J\u00fcrgen", "SEARCH HEADER Message-ID gen.test", "SEARCH HEADER X-Long \"\"",
    "SEARCH HEADER Content-Type multipart", "SEARCH LARGER 2000", "SEARCH SMALLER 300",
    "SEARCH SENTBEFORE 1-Jan-2022", "SEARCH SENTSINCE 1-Jan-2024", "SEARCH SENTON 6-Jan-2024",
    "SEARCH BEFORE 1-Jan-2024", "SEARCH OR FROM bob TO bob", "SEARCH NOT SUBJECT re",
    "SEARCH 1:10,200:*", "SEARCH UID 5:20", "SEARCH BODY caf\u00e9", "SEARCH TEXT \"hello\"",
]
SORTS = [
    "SORT (ARRIVAL) UTF-8 ALL", "SORT (DATE) UTF-8 ALL", "SORT (REVERSE DATE) UTF-8 ALL",
    "SORT (SUBJECT) UTF-8 ALL", "SORT (FROM) UTF-8 ALL", "SORT (TO) UTF-8 ALL", "SORT (CC) UTF-8 ALL",
    "SORT (SIZE) UTF-8 ALL", "SORT (REVERSE SIZE SUBJECT) UTF-8 ALL", "SORT (SUBJECT DATE) UTF-8 SEEN",
    "SORT (DISPLAYFROM) UTF-8 ALL", "SORT (DISPLAYTO) UTF-8 ALL",
]
THREADS = ["THREAD REFERENCES UTF-8 ALL", "THREAD ORDEREDSUBJECT UTF-8 ALL", "THREAD REFERENCES UTF-8 SUBJECT re"]


class Diff:
    def __init__(self, msg, cmd, a, b, va=None, vb=None):
        self.msg, self.cmd, self.a, self.b = msg, cmd, a, b
        self.va, self.vb = va, vb  # normalised (status, {item: value}) of a FETCH
        self.reason = None
        self.kind = "ACCEPTED"


def only_numbers_grow(a, b, steps):
    """a and b are equal but for numbers where b - a is in steps."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(only_numbers_grow(x, y, steps) for x, y in zip(a, b))
    if isinstance(a, str) and isinstance(b, str) and a.isdigit() and b.isdigit():
        return int(b) - int(a) in steps
    return a == b


def crlf_boundary(d):
    """RFC 2046 §5.1.1: "the CRLF preceding the boundary delimiter line is conceptually attached
    to the boundary". postern ends a part before it; Dovecot keeps it in a part whose content
    ended on a line of its own (a nested close-delimiter, or a header with no body), so its
    octets are CRLF longer, its size 2 more and its line count 1 more."""
    if d.va is None or d.va[0] != d.vb[0] or set(d.va[1]) != set(d.vb[1]):
        return False
    for k, a in d.va[1].items():
        b = d.vb[1][k]
        if a == b:
            continue
        if isinstance(a, Str) and isinstance(b, Str):
            if bytes(b) != bytes(a) + b"\r\n":
                return False
        elif isinstance(a, str) and isinstance(b, str) and a.isdigit() and b.isdigit():
            if int(b) - int(a) != 2:
                return False
        elif not only_numbers_grow(a, b, (0, 1, 2)):
            return False
    return True


# Every FETCH result, by (message, item), for classes that look at another item.
RESULTS = {}


def binary_size_self(d):
    """RFC 3516 §4.2: BINARY.SIZE is the size of what BINARY returns. Accepted when postern's
    BINARY.SIZE is the length of the reference's own BINARY of that section (which it
    contradicts)."""
    m = re.match(r"FETCH BINARY\.SIZE\[(.*)\]$", d.cmd)
    if not m or d.va is None:
        return False
    ref = RESULTS.get((d.msg, "BINARY.PEEK[%s]" % m.group(1)))
    if not ref:
        return False
    content = ref[1][1].get("BINARY[%s]" % m.group(1))
    size = d.va[1].get("BINARY.SIZE[%s]" % m.group(1))
    return isinstance(content, Str) and size == str(len(content))


CLASSES = {"crlf-boundary": crlf_boundary, "binary-size-self": binary_size_self}


def glob(pattern, text):
    """fnmatch with only * and ? special: brackets in IMAP commands are literal."""
    return fnmatch.fnmatchcase(text, pattern.replace("[", "[[]"))


def load_accepted(path):
    out = []
    if not path or not os.path.exists(path):
        return out
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [p.strip() for p in line.split("\t") if p.strip()]
        if len(parts) < 3:
            raise SystemExit("accepted: need MESSAGE<TAB>COMMAND<TAB>[class=NAME<TAB>]reason: %r" % line)
        cls = None
        if parts[2].startswith("class="):
            cls = parts.pop(2)[len("class="):]
            if cls not in CLASSES and cls != "open":
                raise SystemExit("accepted: unknown class %r" % cls)
            if len(parts) < 3:
                raise SystemExit("accepted: no reason: %r" % line)
        out.append([parts[0], parts[1], parts[2], 0, cls])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--a", required=True, help="server under test HOST:PORT:USER:PASS")
    ap.add_argument("--b", required=True, help="reference server HOST:PORT:USER:PASS")
    ap.add_argument("--accepted")
    ap.add_argument("--report")
    ap.add_argument("--only", help="only messages whose name contains this")
    ap.add_argument("--no-search", action="store_true")
    ap.add_argument("--reset", action="store_true", help="first expunge everything in both INBOXes")
    args = ap.parse_args()

    names = sorted(f for f in os.listdir(args.corpus) if f.endswith(".eml"))
    t0 = time.time()
    clients = []
    for spec in (args.a, args.b):
        host, port, user, pw = spec.split(":", 3)
        clients.append(Client(host, port, user, pw))
    A, B = clients

    # APPEND everything, same flags and INTERNALDATE, in order.
    for c in clients:
        if args.reset:
            c.cmd(b"SELECT INBOX")
            c.cmd(b"STORE 1:* +FLAGS.SILENT (\\Deleted)")
            c.cmd(b"EXPUNGE")
        st, unt, _ = c.cmd(b"SELECT INBOX")
        if not st.startswith("OK"):
            raise SystemExit("SELECT failed")
        if any(re.match(rb"\* [1-9]\d* EXISTS", u) for u in unt):
            raise SystemExit("the mailbox is not empty")
    flag_sets = [b"()", b"(\\Seen)", b"(\\Seen \\Flagged)", b"(\\Answered)", b"($Forwarded)"]
    for i, name in enumerate(names):
        data = open(os.path.join(args.corpus, name), "rb").read()
        flags = flag_sets[i % len(flag_sets)]
        date = b'"%02d-Mar-2024 %02d:%02d:00 +0000"' % (1 + i // 1440, (i // 60) % 24, i % 60)
        for c in clients:
            st, _, raw = c.cmd(b"APPEND INBOX " + flags + b" " + date, literal=data)
            if not st.startswith("OK"):
                raise SystemExit("APPEND %s failed: %r" % (name, raw))
    for c in clients:
        c.cmd(b"NOOP")
    t_append = time.time() - t0

    diffs = []
    ncmds = [0]

    def run(cmd):
        """Runs cmd on both; returns the two normalised results."""
        ncmds[0] += 1
        res = []
        for c in clients:
            try:
                st, unt, _ = c.cmd(cmd.encode("utf-8"))
            except (ImapError, OSError):
                # Recorded as a difference (when the other server answered), then go on.
                c.reconnect()
                st, unt = "DISCONNECTED", []
            res.append((st, unt))
        return res

    def fetch(seq, name, item):
        """FETCH seq (item) on both; records differences per FETCH item."""
        cmd = "FETCH %d (%s)" % (seq, item)
        (sa, ua), (sb, ub) = run(cmd)
        label = "FETCH " + item
        got = []
        for st, unt in ((sa, ua), (sb, ub)):
            items = {}
            for u in unt:
                f = fetch_items(u)
                if f and f[0] == seq:
                    for k, v in f[1].items():
                        if k in ("FLAGS", "UID") and k not in item.upper():
                            continue
                        items[k] = normalise_item(k, v)
            got.append((st, items))
        RESULTS[(name, item)] = got
        if got[0] != got[1]:
            def show(g):
                st, items = g
                return "%s %s" % (st, " ".join("%s %s" % (k, render(v)) for k, v in sorted(items.items())))
            diffs.append(Diff(name, label, show(got[0]), show(got[1]), got[0], got[1]))
        return got

    only = args.only
    for i, name in enumerate(names):
        seq = i + 1
        if only and only not in name:
            continue
        for item in ("ENVELOPE", "BODYSTRUCTURE", "BODY", "RFC822.SIZE", "RFC822.HEADER",
                     "INTERNALDATE", "FLAGS",
                     "BODY.PEEK[HEADER]", "BODY.PEEK[TEXT]", "BODY.PEEK[]",
                     "BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE X-NONE)]",
                     "BODY.PEEK[HEADER.FIELDS.NOT (FROM SUBJECT RECEIVED)]",
                     "BINARY.SIZE[]", "BODY.PEEK[1]<0.10>"):
            got = fetch(seq, name, item)
            if item == "BODYSTRUCTURE":
                structs = [g[1].get("BODYSTRUCTURE") for g in got]
        secs = []
        for s in structs:
            for spec in sections(s) if isinstance(s, list) else []:
                if spec not in secs:
                    secs.append(spec)
        secs.append(("99", "none"))
        for spec, kind in secs:
            items = ["BODY.PEEK[%s]" % spec]
            if spec != "99":
                items.append("BODY.PEEK[%s.MIME]" % spec)
            if kind == "message":
                items += ["BODY.PEEK[%s.HEADER]" % spec, "BODY.PEEK[%s.TEXT]" % spec,
                          "BODY.PEEK[%s.HEADER.FIELDS (SUBJECT FROM)]" % spec]
            if kind in ("leaf", "none"):
                items += ["BINARY.PEEK[%s]" % spec, "BINARY.SIZE[%s]" % spec]
            for it in items:
                fetch(seq, name, it)

    if not args.no_search and not only:
        for cmd in SEARCHES + SORTS + THREADS:
            if args.reset and "UID" in cmd:
                continue  # UIDs of earlier runs differ between the servers
            (sa, ua), (sb, ub) = run(cmd)
            word = cmd.split(" ", 1)[0]
            ra = [u for u in ua if u.upper().startswith(b"* " + word.encode())]
            rb = [u for u in ub if u.upper().startswith(b"* " + word.encode())]
            if word == "SEARCH":
                # SEARCH results are a set (RFC 3501 §7.2.5 does not order them).
                ra = [sorted(r.split()[2:], key=lambda x: int(x) if x.isdigit() else 0) for r in ra]
                rb = [sorted(r.split()[2:], key=lambda x: int(x) if x.isdigit() else 0) for r in rb]
            if (sa, ra) != (sb, rb):
                fmt = lambda st, r: "%s %s" % (st, b" ".join(x if isinstance(x, bytes) else b" ".join(x) for x in r).decode("utf-8", "replace"))
                diffs.append(Diff("*", cmd, fmt(sa, ra), fmt(sb, rb)))
    for c in clients:
        c.close()

    accepted = load_accepted(args.accepted)
    failing = []
    for d in diffs:
        for acc in accepted:
            if not (glob(acc[0], d.msg) and glob(acc[1], d.cmd)):
                continue
            cls = acc[4]
            if cls in CLASSES and not CLASSES[cls](d):
                continue
            d.reason = acc[2]
            d.kind = "OPEN    " if cls == "open" else "ACCEPTED"
            acc[3] += 1
            break
        if d.reason is None:
            failing.append(d)

    lines = []
    for d in diffs:
        lines.append("%s %s  [%s]" % (d.kind if d.reason else "DIFFERS ", d.msg, d.cmd))
        if d.reason:
            lines.append("    reason:   " + d.reason)
        lines.append("    postern:  " + d.a)
        lines.append("    reference:" + d.b)
    nopen = sum(1 for d in diffs if d.reason and d.kind.startswith("OPEN"))
    summary = ("%d messages, %d commands per server, %d differences (%d accepted, %d open, %d failing); "
               "append %.1fs, total %.1fs" % (len(names), ncmds[0], len(diffs), len(diffs) - len(failing) - nopen,
                                              nopen, len(failing), t_append, time.time() - t0))
    for acc in accepted:
        if acc[3] == 0:
            lines.append("note: accepted entry matched nothing: %s\t%s" % (acc[0], acc[1]))
    lines.append(summary)
    text = "\n".join(lines) + "\n"
    if args.report:
        open(args.report, "w", encoding="utf-8").write(text)
    # Failing differences first, in full; accepted ones are only counted on the terminal.
    for d in diffs:
        if d.kind.startswith("OPEN") and d.reason:
            sys.stdout.write("OPEN    %s  [%s]  (%s)\n" % (d.msg, d.cmd, d.reason))
    for d in failing:
        sys.stdout.write("DIFFERS %s  [%s]\n    postern:  %s\n    reference:%s\n" % (d.msg, d.cmd, d.a, d.b))
    for acc in accepted:
        if acc[3] == 0 and not (args.only or (args.no_search and not acc[1].startswith("FETCH"))):
            print("note: accepted entry matched nothing (remove it?): %s\t%s" % (acc[0], acc[1]))
    print(summary)
    sys.exit(1 if failing else 0)


if __name__ == "__main__":
    main()
