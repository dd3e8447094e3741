//! IMAP RFC conformance end to end: the real `postern serve` driven by Python's imaplib over
//! loopback, for behaviour that spans the store and the protocol — SEARCH dates and decoded
//! headers (RFC 9051 §6.4.4), SORT and THREAD (RFC 5256, RFC 5957), LIST-EXTENDED
//! RECURSIVEMATCH and LSUB (RFC 5258, RFC 3501 §6.3.9), the grammar's corners (RFC 9051 §9,
//! RFC 7888) and CONDSTORE's HIGHESTMODSEQ (RFC 7162). Expected answers were checked
//! against Dovecot 2.3 for the same commands and messages.

mod common;
use common::{login_args, python, Env};

const USER: &str = "alice@example.org";
const PASS: &str = "secret-pw";

/// Starts a server with one account and runs `script` with host, port, user, password.
fn run(script: &str) -> String {
    let env = Env::new();
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", USER], &format!("{PASS}\n"));
    let running = env.serve();
    let a = running.addrs["imap"];
    let out = python(script, &login_args(a, USER, PASS));
    drop(running);
    out
}

const PRELUDE: &str = r#"
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
m.login(sys.argv[3], sys.argv[4])
def ok(r):
    typ, data = r
    assert typ == 'OK', (typ, data)
    return data
def nums(data):
    return data[0].decode().split()
MSGS = [
    ('"01-Jan-2024 23:30:00 +0000"', b"From: =?utf-8?q?J=C3=B6rg?= <joerg@x.test>\r\nTo: Zed <zed@x.test>\r\nDate: Mon, 1 Jan 2024 23:30:00 -0500\r\nSubject: Re: [list] Hello\r\nMessage-ID: <1@x>\r\n\r\nbody one\r\n"),
    ('"02-Jan-2024 01:30:00 +0100"', b"From: \"Alice A\" <alice@y.test>\r\nTo: bob@x.test\r\nCc: carol@x.test\r\nDate: Tue, 2 Jan 2024 00:30:00 +0100\r\nSubject: =?utf-8?q?Fwd=3A_h=C3=A9llo?= (fwd)\r\nMessage-ID: <2@x>\r\nReferences: <1@x>\r\n\r\nbody two, a little longer\r\n"),
    ('"03-Jan-2024 12:00:00 +0000"', b"From: bob@z.test\r\nSubject: hello\r\nMessage-ID: <3@x>\r\nIn-Reply-To: <9@x>\r\n\r\nno date\r\n"),
    ('"04-Jan-2024 12:00:00 +0000"', b"To: \"Zed\" <Aaron@x.test>\r\nDate: garbage\r\nMessage-ID: <4@x>\r\nReferences: <9@x>\r\n\r\nno from, no subject\r\n"),
]
ok(m.create('probe'))
for date, msg in MSGS:
    ok(m.append('probe', None, date, msg))
ok(m.select('probe'))
"#;

/// RFC 9051 §6.4.4: SENT* use the Date header's own calendar date, BEFORE/ON/SINCE the
/// internal date's; FROM/TO/SUBJECT match the RFC 2047-decoded field; "" matches presence.
#[test]
fn search_dates_and_decoded_headers() {
    let script = PRELUDE.to_string()
        + r#"
def s(*crit, charset=None):
    return nums(ok(m.search(charset, *crit)))
assert s('SENTON', '1-Jan-2024') == ['1'], s('SENTON', '1-Jan-2024')
assert s('SENTON', '2-Jan-2024') == ['2']
assert s('SENTBEFORE', '2-Jan-2024') == ['1', '3', '4']
assert s('SENTSINCE', '2-Jan-2024') == ['2']
assert s('ON', '2-Jan-2024') == ['2']
assert s('BEFORE', '2-Jan-2024') == ['1']
m.literal = 'Jörg'.encode()
assert s('FROM', charset='UTF-8') == ['1']
assert s('FROM', '"<joerg@x"') == ['1']
assert s('FROM', '"\\"Alice"') == ['2']
m.literal = 'HÉLLO'.encode()
assert s('SUBJECT', charset='UTF-8') == ['2']
assert s('SUBJECT', '"=?utf-8"') == []
assert s('FROM', '""') == ['1', '2', '3']
assert s('SUBJECT', '""') == ['1', '2', '3']
assert s('HEADER', 'X-None', '""') == []
assert s('HEADER', 'Message-ID', '""') == ['1', '2', '3', '4']
print('search ok')
"#;
    assert!(run(&script).contains("search ok"));
}

/// RFC 5256 §3 SORT and RFC 5957 DISPLAYFROM/DISPLAYTO, §4 THREAD, RFC 7162 §3.1.5 MODSEQ.
#[test]
fn sort_thread_and_modseq() {
    let script = PRELUDE.to_string()
        + r#"
caps = ok(m.capability())[0].decode().upper().split()
assert 'SORT=DISPLAY' in caps and 'THREAD=REFERENCES' in caps, caps
def srt(crit):
    return nums(ok(m.sort(crit, 'UTF-8', 'ALL')))
assert srt('(ARRIVAL)') == ['1', '2', '3', '4']
assert srt('(DATE)') == ['2', '1', '3', '4']
assert srt('(FROM)') == ['4', '2', '3', '1']
assert srt('(TO)') == ['3', '4', '2', '1']
assert srt('(CC)') == ['1', '3', '4', '2']
assert srt('(SUBJECT)') == ['4', '1', '3', '2']
assert srt('(DISPLAYFROM)') == ['4', '2', '3', '1']
assert srt('(DISPLAYTO)') == ['3', '2', '1', '4']
assert srt('(REVERSE SIZE)') == ['2', '1', '4', '3']
assert srt('(SUBJECT REVERSE ARRIVAL)') == ['4', '3', '1', '2']
try:
    m._simple_command('SORT', '(REVERSE)', 'UTF-8', 'ALL'); raise SystemExit('SORT (REVERSE) accepted')
except imaplib.IMAP4.error as e:
    assert 'BAD' in str(e), e
t = ok(m.thread('ORDEREDSUBJECT', 'UTF-8', 'ALL'))
assert t == [b'(2)(1 3)(4)'], t
t = ok(m.thread('REFERENCES', 'UTF-8', 'ALL'))
assert t == [b'((1 2)(3)(4))'], t
typ, data = m._simple_command('SEARCH', 'MODSEQ', '1')
assert typ == 'OK'
assert m.untagged_responses.get('OK') and any(b'HIGHESTMODSEQ' in x for x in m.untagged_responses['OK']), m.untagged_responses
line = m.untagged_responses['SEARCH'][-1]
assert line.startswith(b'1 2 3 4 (MODSEQ '), line
print('sort ok')
"#;
    assert!(run(&script).contains("sort ok"));
}

/// RFC 5258 §3.5 RECURSIVEMATCH with CHILDINFO; RFC 3501 §6.3.9 LSUB "%" with \Noselect.
#[test]
fn list_extended_recursivematch_and_lsub() {
    let script = r#"
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
m.login(sys.argv[3], sys.argv[4])
def ok(r):
    typ, data = r
    assert typ == 'OK', (typ, data)
    return data
for n in ('a', 'a/b', 'a/b/c', 'x', 'x/y'):
    ok(m.create(n))
for n in ('a/b/c', 'x', 'x/y'):
    ok(m.subscribe(n))
data = ok(m._simple_command('LIST', '(SUBSCRIBED RECURSIVEMATCH)', '""', '"%"')) and m.untagged_responses.pop('LIST')
assert b'(\\HasChildren) "/" "a" ("CHILDINFO" ("SUBSCRIBED"))' in data, data
assert any(b'"x" ("CHILDINFO" ("SUBSCRIBED"))' in d and b'\\Subscribed' in d for d in data), data
assert not any(b'"a/b' in d for d in data), data
data = ok(m.lsub('""', '%'))
assert b'(\\Noselect) "/" "a"' in data and b'() "/" "x"' in data, data
assert not any(b'a/b/c' in d for d in data), data
data = ok(m.lsub('""', 'a/%'))
assert data == [b'(\\Noselect) "/" "a/b"'], data
data = ok(m._simple_command('LIST', '""', '%', 'RETURN', '(CHILDREN SUBSCRIBED STATUS (MESSAGES HIGHESTMODSEQ))')) and m.untagged_responses.pop('LIST')
assert any(b'\\Subscribed' in d and b'"x"' in d for d in data), data
st = m.untagged_responses.pop('STATUS')
assert any(b'"a" (MESSAGES 0 HIGHESTMODSEQ ' in d for d in st), st
try:
    m._simple_command('LIST', '""', '%', 'RETURN', '(STATUS (BOGUS))'); raise SystemExit('BOGUS accepted')
except imaplib.IMAP4.error as e:
    assert 'BAD' in str(e), e
print('list ok')
"#;
    assert!(run(script).contains("list ok"));
}

/// RFC 9051 §9: list-mailbox takes every list-char ("~", "]", wildcards); "~{" is a literal8
/// only in APPEND; non-synchronising literals (RFC 7888); malformed commands get BAD and the
/// connection lives on.
#[test]
fn grammar_corners_over_the_wire() {
    let script = r#"
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
f = s.makefile('rb')
def cmd(raw, tag):
    s.sendall(raw)
    out = []
    while True:
        l = f.readline()
        assert l, ('connection closed', raw, out)
        out.append(l)
        if tag is None and l.startswith(b'* BAD'):
            return out
        if tag is not None and l.startswith(tag + b' '):
            return out
f.readline()
r = cmd(b'l LOGIN %s %s\r\n' % (sys.argv[3].encode(), sys.argv[4].encode()), b'l'); assert r[-1].startswith(b'l OK'), r
r = cmd(b'c1 CREATE ~peter\r\n', b'c1'); assert r[-1].startswith(b'c1 OK'), r
r = cmd(b'c2 CREATE a]b\r\n', b'c2'); assert r[-1].startswith(b'c2 OK'), r
r = cmd(b'c3 LIST "" ~pe%\r\n', b'c3'); assert r[-1].startswith(b'c3 OK') and b'"~peter"' in r[0], r
r = cmd(b'c4 LIST "" a]*\r\n', b'c4'); assert r[-1].startswith(b'c4 OK') and b'"a]b"' in r[0], r
r = cmd(b'c5 LIST "" {3+}\r\n~p*\r\n', b'c5'); assert b'"~peter"' in r[0], r
r = cmd(b'c6 SELECT ~{3+}\r\nabc\r\n', b'c6'); assert r[-1].startswith(b'c6 BAD'), r
r = cmd(b'c7 APPEND ~peter ~{5+}\r\nab\x00cd\r\n', b'c7'); assert r[-1].startswith(b'c7 OK'), r
for i, bad in enumerate([b'NOOP]', b'FETCH 1 (FLAGS', b'SEARCH SUBJECT "a\\x"', b'SEARCH SUBJECT "a\x00"',
                         b'LIST "" "a', b'SORT (DATE REVERSE) UTF-8 ALL', b'SEARCH MODSEQ "/flags/x" bogus 1',
                         b'STATUS INBOX (BOGUS)', b'UID', b'SEARCH \xff']):
    tag = b'b%d' % i
    r = cmd(tag + b' ' + bad + b'\r\n', tag)
    assert r[-1].startswith(tag + b' BAD'), (bad, r)
r = cmd(b'(((\r\n', None); assert r[-1].startswith(b'* BAD'), r
r = cmd(b's1 SELECT ~peter\r\n', b's1'); assert r[-1].startswith(b's1 OK'), r
# RFC 9051 §6.4.4: an unknown charset is NO [BADCHARSET], not BAD.
for i, q in enumerate([b'SEARCH CHARSET KOI8-R ALL', b'SORT (DATE) FOO ALL', b'THREAD REFERENCES FOO ALL']):
    tag = b'n%d' % i
    r = cmd(tag + b' ' + q + b'\r\n', tag)
    assert r[-1].startswith(tag + b' NO [BADCHARSET'), (q, r)
r = cmd(b'z NOOP\r\n', b'z'); assert r[-1].startswith(b'z OK'), r
print('grammar ok')
"#;
    assert!(run(script).contains("grammar ok"));
}
