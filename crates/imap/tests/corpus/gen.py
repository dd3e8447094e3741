#!/usr/bin/env python3
"""Deterministic corpus of awkward RFC 5322 / MIME messages for the IMAP differential test.

    gen.py OUTDIR [--seed N] [--count N]

Writes OUTDIR/0001-NAME.eml ... : a fixed set of hand-written edge cases (groups, RFC 2047/2231,
missing headers, LF-only files, empty bodies, digests, nested message/rfc822 ...) followed by
randomly composed MIME trees (mixed/alternative/related/digest, 3-4 levels, message/rfc822 at
several depths, quoted-printable and base64 with odd line endings). Same seed, same bytes.
Python 3 standard library only.
"""

import argparse
import base64
import os
import random

CRLF = "\r\n"

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
         "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee "
         "zulu caf\u00e9 na\u00efve \u00fcber \u65e5\u672c stra\u00dfe").split()


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)
        self.n = 0

    def words(self, k):
        return " ".join(self.r.choice(WORDS[:26]) for _ in range(k))

    def uwords(self, k):
        return " ".join(self.r.choice(WORDS) for _ in range(k))

    def boundary(self):
        self.n += 1
        return "b%d_%08x" % (self.n, self.r.getrandbits(32))

    def date(self):
        d = self.r.randint(1, 28)
        h = self.r.randint(0, 23)
        m = self.r.choice(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"])
        y = self.r.choice([2019, 2021, 2023, 2024])
        tz = self.r.choice(["+0000", "-0500", "+0200", "+0530"])
        return "%s, %02d %s %d %02d:%02d:%02d %s" % (
            self.r.choice(["Mon", "Tue", "Wed", "Thu", "Fri"]), d, m, y, h, self.r.randint(0, 59),
            self.r.randint(0, 59), tz)

    def addr(self):
        local = self.r.choice(["alice", "bob", "carol", "dave", "erin", "frank", "x.y", "o'neil"])
        dom = self.r.choice(["example.org", "example.net", "x.test", "sub.example.com"])
        style = self.r.randint(0, 4)
        if style == 0:
            return "%s@%s" % (local, dom)
        if style == 1:
            return "%s <%s@%s>" % (local.capitalize(), local, dom)
        if style == 2:
            return '"%s, %s" <%s@%s>' % (local.upper(), "Jr", local, dom)
        if style == 3:
            return "=?utf-8?q?J=C3=BCrgen_%s?= <%s@%s>" % (local.replace("'", ""), local, dom)
        return "%s@%s (%s comment)" % (local, dom, local)

    def msgid(self):
        return "<%08x.%d@%s>" % (self.r.getrandbits(32), self.r.randint(1, 999), "gen.test")


def hdr(fields):
    return "".join("%s: %s%s" % (k, v, CRLF) for k, v in fields)


def qp_encode(text):
    """Quoted-printable with soft line breaks at 76, trailing whitespace encoded."""
    out, line = [], ""
    for ch in text.encode("utf-8"):
        c = chr(ch)
        if c == "\n":
            if line.endswith(" ") or line.endswith("\t"):
                line = line[:-1] + "=%02X" % ord(line[-1])
            out.append(line)
            line = ""
            continue
        enc = c if (33 <= ch <= 126 and c != "=") or c == " " else "=%02X" % ch
        if len(line) + len(enc) > 75:
            out.append(line + "=")
            line = ""
        line += enc
    out.append(line)
    return CRLF.join(out)


def b64_lines(data, width=76, final_newline=True):
    s = base64.b64encode(data).decode()
    lines = [s[i:i + width] for i in range(0, len(s), width)] or [""]
    return CRLF.join(lines) + (CRLF if final_newline else "")


def text_body(g, lines=None):
    lines = lines if lines is not None else g.r.randint(1, 6)
    return CRLF.join(g.words(g.r.randint(1, 12)) for _ in range(lines)) + CRLF


def leaf(g, depth=0):
    """A random leaf entity: (header fields, body)."""
    kind = g.r.randint(0, 9)
    extra = []
    if g.r.random() < 0.3:
        extra.append(("Content-ID", g.msgid()))
    if g.r.random() < 0.2:
        extra.append(("Content-Description", g.words(3)))
    if g.r.random() < 0.15:
        extra.append(("Content-Language", g.r.choice(["en", "en-US, fr", "de"])))
    if g.r.random() < 0.1:
        extra.append(("Content-Location", "http://example.org/%s" % g.words(1)))
    if g.r.random() < 0.1:
        extra.append(("Content-MD5", "Q2hlY2sgSW50ZWdyaXR5IQ=="))
    if kind <= 2:
        return [("Content-Type", "text/plain; charset=us-ascii")] + extra, text_body(g)
    if kind == 3:
        body = "\n".join(g.uwords(g.r.randint(3, 30)) for _ in range(g.r.randint(1, 4)))
        if g.r.random() < 0.5:
            body += "  \n  trailing spaces   \n"
        return [("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Transfer-Encoding", "quoted-printable")] + extra, qp_encode(body) + CRLF
    if kind == 4:
        return [("Content-Type", "text/html; charset=\"utf-8\""),
                ("Content-Transfer-Encoding", g.r.choice(["7bit", "8bit"]))] + extra, \
            "<p>%s</p>%s" % (g.uwords(5), CRLF)
    if kind == 5:
        data = bytes(g.r.getrandbits(8) for _ in range(g.r.randint(0, 300)))
        return [("Content-Type", "application/octet-stream; name=\"f%d.bin\"" % g.n),
                ("Content-Transfer-Encoding", "base64"),
                ("Content-Disposition", "attachment; filename=\"f%d.bin\"; size=%d" % (g.n, len(data)))] + extra, \
            b64_lines(data, g.r.choice([76, 64, 60]), g.r.random() < 0.7)
    if kind == 6:
        data = g.uwords(g.r.randint(5, 40)).encode()
        return [("Content-Type", "text/plain; charset=UTF-8"),
                ("Content-Transfer-Encoding", "BASE64")] + extra, b64_lines(data, 72, g.r.random() < 0.5)
    if kind == 7:
        return [("Content-Type", "image/png; name*=UTF-8''%E2%82%AC%20rates.png"),
                ("Content-Transfer-Encoding", "base64"),
                ("Content-Disposition", "inline; filename*=utf-8''%E2%82%AC%20rates.png")] + extra, \
            b64_lines(b"\x89PNG\r\n\x1a\n" + bytes(range(40)))
    if kind == 8:
        return [("Content-Type", "text/plain")] + extra, ""
    return [("Content-Type", "text/calendar; method=REQUEST; charset=utf-8")] + extra, \
        "BEGIN:VCALENDAR" + CRLF + "END:VCALENDAR" + CRLF


def entity(g, depth, maxdepth):
    """A random entity (header fields, body text)."""
    choice = g.r.random()
    if depth < maxdepth and choice < 0.45:
        sub = g.r.choice(["mixed", "mixed", "alternative", "related", "digest", "parallel"])
        b = g.boundary()
        parts = []
        for _ in range(g.r.randint(1, 4)):
            if sub == "digest":
                inner = message(g, depth + 1, maxdepth, top=False)
                if g.r.random() < 0.6:
                    parts.append(("", inner))  # default type: message/rfc822
                else:
                    parts.append(("Content-Type: message/rfc822" + CRLF, inner))
            else:
                h, body = entity(g, depth + 1, maxdepth)
                parts.append((hdr(h), body))
        params = "boundary=\"%s\"" % b
        if sub == "related":
            params = "type=\"text/html\"; " + params
        text = ""
        if g.r.random() < 0.4:
            text += "This is a multi-part message in MIME format." + CRLF
        for ph, pb in parts:
            text += "--" + b + CRLF + ph + CRLF + pb
            if not pb.endswith(CRLF) or g.r.random() < 0.3:
                text += CRLF
        text += "--" + b + "--" + CRLF
        if g.r.random() < 0.3:
            text += "epilogue text" + CRLF
        return [("Content-Type", "multipart/%s; %s" % (sub, params))], text
    if depth < maxdepth and choice < 0.6:
        inner = message(g, depth + 1, maxdepth, top=False)
        h = [("Content-Type", "message/rfc822")]
        if g.r.random() < 0.3:
            h.append(("Content-Disposition", "attachment; filename=\"fwd.eml\""))
        if g.r.random() < 0.2:
            h.append(("Content-Description", "forwarded message"))
        return h, inner
    return leaf(g, depth)


def message(g, depth, maxdepth, top=True):
    fields = [("From", g.addr()), ("To", ", ".join(g.addr() for _ in range(g.r.randint(1, 3))))]
    if g.r.random() < 0.3:
        fields.append(("Cc", g.addr()))
    fields.append(("Subject", g.r.choice(["", "Re: ", "Fwd: ", "RE: Re: "]) + g.words(g.r.randint(1, 5))))
    fields.append(("Date", g.date()))
    fields.append(("Message-ID", g.msgid()))
    if g.r.random() < 0.3:
        fields.append(("In-Reply-To", g.msgid()))
        fields.append(("References", " ".join(g.msgid() for _ in range(g.r.randint(1, 3)))))
    fields.append(("MIME-Version", "1.0"))
    h, body = entity(g, depth, maxdepth)
    return hdr(fields + h) + CRLF + body


def fixed(g):
    """Hand-written edge cases: (name, bytes)."""
    out = []

    def add(name, text, raw=False):
        out.append((name, text if raw else text.encode("utf-8")))

    base = "From: Alice <alice@example.org>\r\nTo: Bob <bob@example.org>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
    add("groups", base.replace("To: Bob <bob@example.org>\r\n", "To: undisclosed-recipients:;\r\n")
        + "Cc: team: a@x.test, \"B\" <b@y.test>;, carol@example.org\r\nSubject: groups\r\nMessage-ID: <g1@x>\r\n\r\nbody\r\n")
    add("group-only", "From: list: ;\r\nTo: team: a@x.test;\r\nBcc: empty:;, other: o@x.test;\r\nSubject: only groups\r\n\r\nx\r\n")
    add("malformed-addrs", "From: <>\r\nTo: \"unterminated <a@b\r\nCc: a@, @b, plainword, <c@d>, , \"q\" <>\r\nReply-To: @@@\r\nSender: a b c <d@e> f\r\nSubject: bad addresses\r\n\r\nx\r\n")
    add("route-addr", "From: \"Routed\" <@relay.test:user@example.org>\r\nTo: a@[127.0.0.1], \"x\\\"y\" <xy@example.org>\r\nSubject: route\r\n\r\nx\r\n")
    add("no-date", "From: a@example.org\r\nTo: b@example.org\r\nSubject: no date\r\n\r\nbody\r\n")
    add("no-from", "To: b@example.org\r\nDate: Tue, 2 Jan 2024 10:00:00 +0000\r\nSubject: no from\r\n\r\nbody\r\n")
    add("no-ctype", "From: a@example.org\r\nSubject: no content type\r\nMIME-Version: 1.0\r\n\r\nplain body\r\n")
    add("no-headers", "\r\njust a body\r\n")
    add("only-body-no-blank", "this is not a header line at all\r\nnor this\r\n")
    add("dup-headers", "From: a@example.org\r\nFrom: b@example.org\r\nSubject: first\r\nSubject: second\r\nTo: c@example.org\r\nTo: d@example.org\r\nDate: Wed, 3 Jan 2024 10:00:00 +0000\r\nDate: Thu, 4 Jan 2024 10:00:00 +0000\r\nMessage-ID: <d1@x>\r\nMessage-ID: <d2@x>\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Type: text/html\r\n\r\nbody\r\n")
    add("raw-utf8-headers", "From: J\u00fcrgen M\u00fcller <j@example.org>\r\nTo: \u00e9t\u00e9 <ete@example.org>\r\nSubject: caf\u00e9 \u65e5\u672c\u8a9e\r\nDate: Fri, 5 Jan 2024 10:00:00 +0100\r\n\r\nk\u00f6rper\r\n")
    add("rfc2047", "From: =?iso-8859-1?q?J=FCrgen?= <j@example.org>\r\nTo: =?UTF-8?B?w6l0w6k=?= <ete@example.org>, =?utf-8?q?a_b?= <ab@x.test>\r\n"
        "Subject: =?utf-8?q?caf=C3=A9?= =?utf-8?b?IOaXpeacrA==?= plain =?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=\r\nDate: Sat, 6 Jan 2024 10:00:00 -0800\r\n\r\nx\r\n")
    add("rfc2047-bad", "From: =?utf-8?q?broken <a@b.test>\r\nSubject: =?unknown-charset?q?abc?= =?utf-8?x?bad?= =?utf-8?q??=\r\n\r\nx\r\n")
    long_subject = " ".join(g.words(1) for _ in range(120))
    folded = "Subject: " + long_subject[:70] + "\r\n\t" + long_subject[70:200] + "\r\n " + long_subject[200:]
    add("long-folded", "From: a@example.org\r\n" + folded + "\r\nTo: " + ",\r\n ".join("u%d@example.org" % i for i in range(60)) + "\r\nX-Long: " + "x" * 1500 + "\r\n\r\nbody\r\n")
    add("lf-only", "From: a@example.org\nTo: b@example.org\nSubject: lf only\nContent-Type: multipart/mixed; boundary=LF\n\n--LF\nContent-Type: text/plain\n\none\ntwo\n--LF\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nsoft=\nbreak =C3=A9\n--LF--\n")
    add("lf-simple", "From: a@example.org\nSubject: lf simple\n\nline1\nline2\n")
    add("mixed-eol", "From: a@example.org\r\nSubject: mixed eol\n\r\nline1\nline2\r\nline3")
    add("empty-body", "From: a@example.org\r\nSubject: empty body\r\n\r\n")
    add("no-final-newline", "From: a@example.org\r\nSubject: no final newline\r\n\r\nlast line without newline")
    add("empty-parts", "From: a@example.org\r\nSubject: empty parts\r\nContent-Type: multipart/mixed; boundary=E\r\n\r\n--E\r\n\r\n--E\r\nContent-Type: text/plain\r\n\r\n\r\n--E\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n--E\r\nContent-Type: message/rfc822\r\n\r\n--E--\r\n")
    add("empty-multipart", "From: a@example.org\r\nSubject: empty multipart\r\nContent-Type: multipart/mixed; boundary=NONE\r\n\r\nno boundary ever\r\n")
    add("multipart-no-boundary", "From: a@example.org\r\nSubject: no boundary param\r\nContent-Type: multipart/mixed\r\n\r\n--x\r\n\r\nabc\r\n--x--\r\n")
    add("unclosed-multipart", "From: a@example.org\r\nSubject: unclosed\r\nContent-Type: multipart/mixed; boundary=U\r\n\r\n--U\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--U\r\nContent-Type: text/html\r\n\r\n<b>never closed</b>\r\n")
    add("qp-odd", "From: a@example.org\r\nSubject: qp odd\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nsoft break=\r\nhere =E9t=E9   \r\ntrailing tab\t\r\nbad =ZZ escape and =\r\n=3D=3d lower hex =e9\r\nends with equals=")
    add("qp-lf-soft", "From: a@example.org\nSubject: qp lf\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nsoft=\nbreak=20\n=C3=A9=\n")
    add("b64-odd", "From: a@example.org\r\nSubject: b64 odd\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\naGVs\r\nbG8g\r\nd29y\r\nbGQ=")
    add("b64-garbage", "From: a@example.org\r\nSubject: b64 garbage\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8g d29y*bGQ\r\n=\r\n")
    add("b64-no-pad", "From: a@example.org\r\nSubject: b64 nopad\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ\r\n")
    add("unknown-cte", "From: a@example.org\r\nSubject: unknown cte\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n")
    add("rfc2231", "From: a@example.org\r\nSubject: rfc2231\r\nContent-Type: multipart/mixed; boundary=R\r\n\r\n"
        "--R\r\nContent-Type: application/pdf; name*0*=UTF-8''%E2%82%AC%20long; name*1*=%20name; name*2=\".pdf\"\r\nContent-Disposition: attachment; filename*0*=UTF-8'en'%E2%82%AC%20long; filename*1=\" name.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n"
        "--R\r\nContent-Type: text/plain; charset*=us-ascii'en'us-ascii; format=flowed\r\nContent-Disposition: inline; filename*=iso-8859-1''%E9t%E9.txt\r\n\r\nhello\r\n"
        "--R\r\nContent-Type: application/octet-stream; name=\"=?utf-8?q?encoded_=E2=82=AC.bin?=\"\r\nContent-Disposition: attachment; filename=\"=?utf-8?q?encoded_=E2=82=AC.bin?=\"; creation-date=\"Mon, 1 Jan 2024 10:00:00 +0000\"\r\n\r\ndata\r\n"
        "--R\r\nContent-Type: application/octet-stream; name*1=\"second\"; name*0=\"first-\"\r\nContent-Disposition: ATTACHMENT; FILENAME=\"Upper.TXT\"\r\n\r\ndata\r\n"
        "--R\r\nContent-Type: text/plain; charset=\"utf-8\" ; format = flowed ; delsp=yes\r\nContent-Disposition: attachment\r\n\r\nx\r\n"
        "--R--\r\n")
    add("ext-fields", "From: a@example.org\r\nSubject: ext fields\r\nContent-Type: multipart/mixed; boundary=X\r\nContent-Language: en\r\nContent-Location: http://example.org/top\r\nContent-Disposition: inline\r\n\r\n"
        "--X\r\nContent-Type: text/plain; charset=utf-8\r\nContent-ID: <part1@x>\r\nContent-Description: the text\r\nContent-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\nContent-Language: en, de\r\nContent-Location: part1.txt\r\nContent-Disposition: inline; filename=part1.txt\r\n\r\ntext\r\n"
        "--X\r\nContent-Type: image/gif\r\nContent-Transfer-Encoding: base64\r\nContent-ID: <img@x>\r\nContent-Language: fr\r\n\r\nR0lGODlhAQABAAAAACw=\r\n"
        "--X--\r\n")
    add("ctype-odd", "From: a@example.org\r\nSubject: odd content types\r\nContent-Type: multipart/mixed; boundary=O\r\n\r\n"
        "--O\r\nContent-Type: text\r\n\r\nno subtype\r\n"
        "--O\r\nContent-Type: TEXT/PLAIN; CHARSET=UTF-8\r\n\r\nupper\r\n"
        "--O\r\nContent-Type: ;;;\r\n\r\ngarbage type\r\n"
        "--O\r\nContent-Type: text/plain; charset=\r\n\r\nempty charset\r\n"
        "--O\r\nContent-Type: application/x-thing; a=1; a=2; b=\"quoted \\\"inner\\\"\"\r\n\r\nparams\r\n"
        "--O\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\nFinal-Recipient: rfc822; a@b\r\n"
        "--O\r\nContent-Type: message/partial; id=\"abc\"; number=1; total=2\r\n\r\nSubject: partial\r\n\r\n"
        "--O\r\nContent-Type: text/rfc822-headers\r\n\r\nSubject: headers only\r\n"
        "--O--\r\n")
    inner2 = "From: deep@example.org\r\nSubject: innermost\r\nDate: Sun, 7 Jan 2024 10:00:00 +0000\r\nContent-Type: multipart/alternative; boundary=I2\r\n\r\n--I2\r\nContent-Type: text/plain\r\n\r\ndeep plain\r\n--I2\r\nContent-Type: text/html\r\n\r\n<i>deep</i>\r\n--I2--\r\n"
    inner1 = "From: mid@example.org\r\nTo: team: a@x.test;\r\nSubject: middle\r\nContent-Type: multipart/mixed; boundary=I1\r\n\r\n--I1\r\nContent-Type: text/plain\r\n\r\nmiddle text\r\n--I1\r\nContent-Type: message/rfc822\r\n\r\n" + inner2 + "\r\n--I1--\r\n"
    add("rfc822-in-rfc822", "From: top@example.org\r\nSubject: nested messages\r\nContent-Type: multipart/mixed; boundary=T\r\n\r\n--T\r\nContent-Type: text/plain\r\n\r\ntop text\r\n--T\r\nContent-Type: message/rfc822\r\n\r\n" + inner1 + "\r\n--T--\r\n")
    add("rfc822-top", "From: top@example.org\r\nSubject: body is a message\r\nContent-Type: message/rfc822\r\n\r\n" + inner1)
    add("rfc822-simple-inner", "From: top@example.org\r\nSubject: rfc822 with simple inner\r\nContent-Type: message/rfc822\r\n\r\nFrom: in@example.org\r\nSubject: simple inner\r\n\r\njust text\r\nline 2\r\n")
    add("rfc822-empty", "From: top@example.org\r\nSubject: rfc822 empty\r\nContent-Type: multipart/mixed; boundary=Z\r\n\r\n--Z\r\nContent-Type: message/rfc822\r\n\r\n\r\n--Z\r\nContent-Type: message/rfc822\r\n\r\nSubject: no body\r\n\r\n--Z--\r\n")
    add("rfc822-b64", "From: top@example.org\r\nSubject: rfc822 base64\r\nContent-Type: multipart/mixed; boundary=Q\r\n\r\n--Q\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64_lines(b"Subject: hidden\r\n\r\nhidden body\r\n") + "--Q--\r\n")
    add("message-global", "From: top@example.org\r\nSubject: message/global\r\nContent-Type: multipart/mixed; boundary=G\r\n\r\n--G\r\nContent-Type: message/global\r\n\r\nFrom: =?utf-8?q?x?= <x@example.org>\r\nSubject: gl\u00f6bal\r\n\r\nbody\r\n--G--\r\n")
    digest = "From: list@example.org\r\nSubject: digest\r\nContent-Type: multipart/digest; boundary=D\r\n\r\nDigest preamble\r\n"
    for i in range(3):
        digest += "--D\r\n\r\nFrom: m%d@example.org\r\nSubject: digest part %d\r\nMessage-ID: <dg%d@x>\r\n\r\ndigest body %d\r\n" % (i, i, i, i)
    digest += "--D\r\nContent-Type: text/plain\r\n\r\nexplicit text part\r\n--D--\r\n"
    add("digest", digest)
    add("digest-in-mixed", "From: a@example.org\r\nSubject: digest inside mixed\r\nContent-Type: multipart/mixed; boundary=M\r\n\r\n--M\r\nContent-Type: text/plain\r\n\r\nintro\r\n--M\r\n" + digest.split("\r\n", 2)[2] + "\r\n--M--\r\n")
    add("alt-related", "From: a@example.org\r\nSubject: alternative with related\r\nContent-Type: multipart/alternative; boundary=A\r\n\r\n--A\r\nContent-Type: text/plain\r\n\r\nplain\r\n--A\r\nContent-Type: multipart/related; boundary=B; type=\"text/html\"; start=\"<h@x>\"\r\n\r\n--B\r\nContent-Type: text/html\r\nContent-ID: <h@x>\r\n\r\n<img src=cid:i@x>\r\n--B\r\nContent-Type: image/png\r\nContent-ID: <i@x>\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: inline\r\n\r\niVBORw0KGgo=\r\n--B--\r\n--A--\r\n")
    add("boundary-tricks", "From: a@example.org\r\nSubject: boundary tricks\r\nContent-Type: multipart/mixed; boundary=\"tr ick\"\r\n\r\n--tr ick   \r\nContent-Type: text/plain\r\n\r\n--tr ickNOT a boundary\r\n--tr ick\r\n\r\nimplicit text\r\n--tr ick--   \r\n")
    add("nested-same-prefix", "From: a@example.org\r\nSubject: boundary prefixes\r\nContent-Type: multipart/mixed; boundary=P\r\n\r\n--P\r\nContent-Type: multipart/alternative; boundary=PP\r\n\r\n--PP\r\n\r\ninner one\r\n--PP\r\n\r\ninner two\r\n--PP--\r\n--P\r\n\r\nouter two\r\n--P--\r\n")
    add("header-odd", "From: a@example.org\r\nSubject:no space\r\nX-Empty:\r\nX-Spaces:    \r\nx-lower: v\r\nIn-Reply-To: <irt@x> (comment)\r\nMessage-ID:   <spaced@x>   \r\nReferences: <r1@x>\r\n <r2@x>\r\nBcc: hidden@example.org\r\nReply-To: replies@example.org\r\nSender: sender@example.org\r\n\r\nx\r\n")
    add("8bit-body", "From: a@example.org\r\nSubject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\u00e9\u00e8\u00ea \u65e5\u672c\r\n")
    add("binary-nul", b"From: a@example.org\r\nSubject: nul\r\nContent-Type: multipart/mixed; boundary=N\r\n\r\n--N\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAwAA\r\n--N--\r\n", raw=True)
    add("addr-edge", "From: \"john doe\"@example.org (Comment (nested) here)\r\n"
        "To: J. R. Smith <jrs@x.test>, \"a@b\" <c@d.test>, =?utf-8?q?Doe=2C_J?= <jd@x.test>, Name <open@x.test\r\n"
        "Cc: <only@angle.test> trailing, (lead) lead@x.test, friends: (c) f1@x.test (one), f2@x.test;\r\n"
        "Reply-To: team:;, reply@x.test\r\nSender: \r\nSubject: address edge cases\r\n\r\nx\r\n")
    add("param-edge", "From: a@example.org\r\nSubject: parameter edge cases\r\nContent-Type: multipart/mixed (comment); boundary=\"P E\" (c); x-raw=\"caf\u00e9\"\r\n\r\n"
        "--P E\r\nContent-Type: text/plain (plain text); charset = \"utf-8\" (c)\r\nContent-Transfer-Encoding:  Base64 \r\n\r\naMOpbGxv\r\n"
        "--P E\r\nContent-Type: application/octet-stream; name*1=\"two\"; name*2=\"three\"\r\nContent-Disposition: attachment; filename*1*=%41; filename*0*=us-ascii'en'%42\r\n\r\nx\r\n"
        "--P E\r\nContent-Type: text/plain; charset=utf-8; name=unquoted.txt; flag\r\nContent-Disposition: inline;\r\n\tfilename=\"folded\r\n name.txt\"\r\nContent-Language: (c) en-GB ,, fr\r\n\r\nx\r\n"
        "--P E--\r\n")
    add("ext-edge", "From: a@example.org\r\nSubject: extension field edge cases\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n"
        "--X\r\nContent-Type: text/plain\r\nContent-ID:   <id1@x> (comment)\r\nContent-Description: =?utf-8?q?caf=C3=A9?=\r\n folded  description \r\n"
        "Content-MD5:  Q2hlY2s=  \r\nContent-Location: http://example.org/a\r\n /b.txt\r\nContent-Transfer-Encoding: 7BIT (comment)\r\n\r\nx\r\n"
        "--X\r\nContent-Type: text/plain\r\nContent-Disposition: (c) attachment (c) ; (c) filename=a.txt\r\nContent-ID:\r\nContent-Description:\r\n"
        "Content-Language:\r\nContent-Transfer-Encoding:\r\n\r\ny\r\n"
        "--X--\r\n")
    add("whitespace", "From: a \u00e9\t b <a@example.org>\r\nSubject:  a  b \r\n\tc\t d \r\nDate:\tMon, 1 Jan 2024\r\n 10:00:00 +0000 \r\n"
        "Message-ID: <w@x>\t \r\nIn-Reply-To:\r\n <r@x>\r\nContent-Type: text/plain\r\nContent-Description: a \r\n  b\tc \r\n\r\nx\r\n")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--count", type=int, default=220)
    a = ap.parse_args()
    g = Gen(a.seed)
    os.makedirs(a.outdir, exist_ok=True)
    msgs = fixed(g)
    while len(msgs) < a.count:
        maxdepth = g.r.choice([1, 2, 3, 3, 4])
        text = message(g, 0, maxdepth)
        if g.r.random() < 0.08:
            text = text.replace(CRLF, "\n")
        msgs.append(("gen-d%d" % maxdepth, text.encode("utf-8")))
    for i, (name, data) in enumerate(msgs, 1):
        with open(os.path.join(a.outdir, "%04d-%s.eml" % (i, name)), "wb") as f:
            f.write(data)
    print("%d messages in %s" % (len(msgs), a.outdir))


if __name__ == "__main__":
    main()
