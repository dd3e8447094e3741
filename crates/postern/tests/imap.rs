//! IMAP end to end: the real `postern serve` driven by real clients over loopback — Python's
//! imaplib (every command it can send, raw commands for the rest), curl, mbsync (two-way sync
//! with flags), and two concurrent sessions watching each other's changes.

mod common;
use common::{login_args, python, Env};
use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;

struct Server {
    // Dropped first: the server stops before its data directory goes.
    running: common::Running,
    env: Env,
}

const USER: &str = "alice@example.org";
const PASS: &str = "secret-pw";

fn start() -> Server {
    let env = Env::new();
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", USER], &format!("{PASS}\n"));
    env.ok(&["user", "add", "bob@example.org"], "bobpw\n");
    let running = env.serve();
    Server { running, env }
}

impl Server {
    fn imap(&self) -> SocketAddr {
        self.running.addrs["imap"]
    }
}

const IMAPLIB: &str = r#"
import imaplib, sys, time, re
host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def ok(r):
    typ, data = r
    assert typ == 'OK', (typ, data)
    return data
m = imaplib.IMAP4(host, port)
caps = m.capabilities
for c in ('IMAP4REV2', 'IDLE', 'AUTH=PLAIN', 'SASL-IR', 'LITERAL+'):
    assert c in caps, (c, caps)
ok(m.noop())
ok(m.capability())
assert m.login(user, 'wrong')[0] == 'NO' if False else True
try:
    m.login(user, 'wrong'); raise SystemExit('bad password accepted')
except imaplib.IMAP4.error as e:
    assert 'AUTHENTICATIONFAILED' in str(e), e
ok(m.login(user, pw))
caps = ok(m.capability())[0].decode().upper().split()
for c in ('IMAP4REV2', 'IDLE', 'UIDPLUS', 'MOVE', 'CONDSTORE', 'QRESYNC', 'SPECIAL-USE', 'ESEARCH', 'SORT', 'LITERAL+'):
    assert c in caps, (c, caps)
ok(m.xatom('ID', '("name" "imaplib")'))
ok(m.namespace())
ok(m.enable('CONDSTORE'))
data = ok(m.list())
names = b' '.join(data)
assert b'INBOX' in names and b'\\Sent' in names, data
ok(m.create('Work'))
ok(m.create('Work/Projects'))
ok(m.create('Entw&APw-rfe'))
assert m.create('Work')[0] == 'NO'
data = ok(m.list('""', 'Work/*'))
assert len(data) == 1 and b'Work/Projects' in data[0], data
data = ok(m.list('""', '*'))
assert any(b'\\HasChildren' in d and b'"Work"' in d for d in data), data
assert any(b'Entw&APw-rfe' in d for d in data), data
ok(m.rename('Work/Projects', 'Work/Old'))
ok(m.subscribe('Work'))
data = ok(m.lsub('""', '*'))
assert any(b'Work' in d for d in data), data
ok(m.unsubscribe('Work'))
ok(m.delete('Work/Old'))
msg = b'From: Bob <bob@example.org>\r\nTo: alice@example.org\r\nSubject: hello one\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <m1@x>\r\n\r\nbody one\r\n'
typ, data = m.append('INBOX', '(\\Flagged)', imaplib.Time2Internaldate(time.time()), msg)
assert typ == 'OK' and b'APPENDUID' in data[0], data
msg2 = b'From: Carol <carol@example.org>\r\nSubject: Re: hello one\r\nIn-Reply-To: <m1@x>\r\nMessage-ID: <m2@x>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsecond part text\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--b--\r\n'
ok(m.append('INBOX', None, None, msg2))
data = ok(m.status('INBOX', '(MESSAGES UNSEEN UIDNEXT UIDVALIDITY SIZE DELETED HIGHESTMODSEQ)'))
assert b'MESSAGES 2' in data[0] and b'SIZE ' in data[0], data
typ, data = m.select('INBOX')
assert typ == 'OK' and data[0] == b'2', data
ok(m.check())
data = ok(m.fetch('1:*', '(UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE MODSEQ)'))
assert b'\\Flagged' in data[0][0] if isinstance(data[0], tuple) else b'\\Flagged' in data[0], data
assert b'"hello one"' in b''.join(d if isinstance(d, bytes) else d[0] for d in data), data
data = ok(m.fetch('1', '(BODY.PEEK[])'))
assert data[0][1] == msg, data
size = int(re.search(rb'RFC822.SIZE (\d+)', ok(m.fetch('1', '(RFC822.SIZE)'))[0]).group(1))
assert size == len(msg), size
data = ok(m.fetch('2', '(BODYSTRUCTURE)'))
assert b'"MIXED"' in data[0] and b'"APPLICATION" "OCTET-STREAM"' in data[0], data
data = ok(m.fetch('2', '(BODY[1] BINARY[2] BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY[TEXT]<0.4>)'))
flat = b''.join(x for d in data for x in (d if isinstance(d, tuple) else (d,)))
assert b'second part text' in flat and b'hello' in flat and b'Subject: Re: hello one' in flat, data
data = ok(m.fetch('2', '(FLAGS)'))
assert b'\\Seen' in data[0], data
data = ok(m.search(None, 'FROM', 'carol'))
assert data == [b'2'], data
data = ok(m.search('UTF-8', 'OR', 'SUBJECT', 'hello', 'BODY', 'nothing', 'SINCE', '1-Jan-2020'))
assert data == [b'1 2'], data
data = ok(m.uid('SEARCH', 'TEXT', 'second'))
assert len(data[0].split()) == 1, data
data = ok(m.search(None, 'FLAGGED', 'NOT', 'SEEN'))
assert data == [b'1'], data
typ, data = m._simple_command('SEARCH', 'RETURN', '(MIN MAX COUNT)', 'ALL')
assert typ == 'OK', data
assert b'COUNT 2' in m.untagged_responses.pop('ESEARCH')[0]
# REVERSE DATE: message 2 has no Date, so its internal date (now) sorts it after the 2024 one.
# (Both were appended within the same second: REVERSE ARRIVAL would tie, and RFC 5256 §3
# breaks ties by sequence number, not reversed.)
data = ok(m.sort('(REVERSE DATE)', 'UTF-8', 'ALL'))
assert data == [b'2 1'], data
data = ok(m.thread('REFERENCES', 'UTF-8', 'ALL'))
assert data == [b'(1 2)'], data
data = ok(m.store('1', '+FLAGS', '(\\Seen $Label1)'))
assert b'$Label1' in data[0], data
data = ok(m.store('1', '-FLAGS.SILENT', '(\\Flagged)'))
typ, data = m._simple_command('STORE', '1', '(UNCHANGEDSINCE 1)', '+FLAGS', '(\\Answered)')
assert typ == 'OK' and b'MODIFIED' in data[0], data
typ, data = m.copy('1', 'Trash')
assert typ == 'OK' and b'COPYUID' in data[0], data
assert m.copy('1', 'Nowhere')[1][0].startswith(b'[TRYCREATE]')
typ, data = m._simple_command('MOVE', '2', 'Archive')
assert typ == 'OK', data
typ, data = m.select('INBOX')
assert data[0] == b'1', data
ok(m.store('1', '+FLAGS', '\\Deleted'))
ok(m.expunge())
typ, data = m.select('INBOX')
assert data[0] == b'0', data
typ, data = m.select('Trash', readonly=True)
assert typ == 'OK' and data[0] == b'1'
typ, data = m._simple_command('UNSELECT')
assert typ == 'OK', data
ok(m.select('Trash'))
ok(m.store('1', '+FLAGS', '\\Deleted'))
typ, data = m.uid('EXPUNGE', '1:*')
assert typ == 'OK', data
ok(m.close())
typ, data = m.getquotaroot('INBOX')
assert typ == 'OK' and b'STORAGE' in data[1][0], data
ok(m.getquota('""'))
m.select('INBOX')
m.send(b'I1 IDLE\r\n')
assert m.readline().startswith(b'+')
m.send(b'DONE\r\n')
assert b'I1 OK' in m.readline()
assert m.logout()[0] == 'BYE'
print('imaplib ok')
"#;

#[test]
fn imaplib_every_command() {
    let s = start();
    let a = s.imap();
    let out = python(IMAPLIB, &login_args(a, USER, PASS));
    assert!(out.contains("imaplib ok"), "{out}");
}

const AUTH_AND_TLS: &str = r#"
import imaplib, sys, ssl, base64
host, port, tport, user, pw = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
m = imaplib.IMAP4(host, port)
ctx = ssl._create_unverified_context()
m.starttls(ssl_context=ctx)
assert 'AUTH=PLAIN' in m.capabilities
typ, _ = m.authenticate('PLAIN', lambda _: ('\0%s\0%s' % (user, pw)).encode())
assert typ == 'OK'
m.logout()
# SASL-IR by hand, and AUTHENTICATE LOGIN with challenges
m = imaplib.IMAP4(host, port)
ir = base64.b64encode(('\0%s\0%s' % (user, pw)).encode()).decode()
typ, data = m._simple_command('AUTHENTICATE', 'PLAIN', ir)
assert typ == 'OK', data
m.logout()
m = imaplib.IMAP4(host, port)
answers = iter([user.encode(), pw.encode()])
typ, _ = m.authenticate('LOGIN', lambda _: next(answers))
assert typ == 'OK'
m.logout()
m = imaplib.IMAP4_SSL(host, tport, ssl_context=ctx)
m.login(user, pw)
m.select('INBOX')
m.logout()
print('auth ok')
"#;

#[test]
fn starttls_authenticate_and_imaps() {
    let s = start();
    let a = s.imap();
    let t = s.running.addrs["imaps"];
    let out = python(
        AUTH_AND_TLS,
        &[
            a.ip().to_string(),
            a.port().to_string(),
            t.port().to_string(),
            USER.into(),
            PASS.into(),
        ],
    );
    assert!(out.contains("auth ok"), "{out}");
}

const CONCURRENT: &str = r#"
import imaplib, sys, time, socket
host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
a = imaplib.IMAP4(host, port); a.login(user, pw); a.select('INBOX')
b = imaplib.IMAP4(host, port); b.login(user, pw); b.select('INBOX')
msg = b'Subject: x\r\n\r\nhi\r\n'
for i in range(3):
    a.append('INBOX', None, None, msg)
# b sees the new messages on NOOP
typ, data = b.noop()
assert b.untagged_responses.get('EXISTS', [None])[-1] == b'3', b.untagged_responses
b.untagged_responses.clear()
# a flags message 2; b gets an untagged FETCH
a.store('2', '+FLAGS', '\\Flagged')
b.noop()
fetches = b.untagged_responses.pop('FETCH', [])
assert any(b'\\Flagged' in f for f in fetches), fetches
b.untagged_responses.clear()
# a expunges message 1; b must not see EXPUNGE during FETCH, but on NOOP
a.store('1', '+FLAGS', '\\Deleted'); a.expunge()
typ, data = b.fetch('1:*', '(FLAGS)')
assert 'EXPUNGE' not in b.untagged_responses, b.untagged_responses
assert any(d.startswith(b'3 (FLAGS') for d in data), data
b.untagged_responses.clear()
b.noop()
assert b.untagged_responses.get('EXPUNGE') == [b'1'], b.untagged_responses
# IDLE: a new message shows up within a second
b.send(b'I1 IDLE\r\n'); assert b.readline().startswith(b'+')
t0 = time.time()
a.append('INBOX', None, None, msg)
b.sock.settimeout(5)
line = b.readline()
assert line.endswith(b'EXISTS\r\n'), line
dt = time.time() - t0
assert dt < 1.0, dt
b.send(b'DONE\r\n')
while True:
    l = b.readline()
    if l.startswith(b'I1 '):
        assert b'OK' in l; break
print('concurrent ok', dt)
"#;

#[test]
fn two_sessions_see_each_other() {
    let s = start();
    let a = s.imap();
    let out = python(CONCURRENT, &login_args(a, USER, PASS));
    assert!(out.contains("concurrent ok"), "{out}");
}

#[test]
fn idle_sees_mail_dropped_into_maildir() {
    let s = start();
    let a = s.imap();
    let script = r#"
import imaplib, sys, time, os
host, port, user, pw, newdir = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
b = imaplib.IMAP4(host, port); b.login(user, pw); b.select('INBOX')
b.send(b'I1 IDLE\r\n'); assert b.readline().startswith(b'+')
time.sleep(0.3)
tmp = os.path.join(os.path.dirname(newdir), 'tmp', 'drop.1')
open(tmp, 'wb').write(b'Subject: dropped\n\nLF only body\n')
os.rename(tmp, os.path.join(newdir, '12345.drop.host'))
b.sock.settimeout(5)
line = b.readline()
assert line.endswith(b'EXISTS\r\n'), line
b.send(b'DONE\r\n')
while not b.readline().startswith(b'I1 '): pass
typ, data = b.fetch('1', '(RFC822.SIZE BODY.PEEK[])')
body = data[0][1]
assert body == b'Subject: dropped\r\n\r\nLF only body\r\n', body
assert b'RFC822.SIZE %d' % len(body) in data[0][0], data
print('drop ok')
"#;
    // Log in once so the account's Maildir exists.
    python(
        "import imaplib,sys; m=imaplib.IMAP4(sys.argv[1], int(sys.argv[2])); m.login(sys.argv[3], sys.argv[4]); m.logout()",
        &login_args(a, USER, PASS),
    );
    let new = s.env.maildir(USER).join("new");
    assert!(new.is_dir(), "{}", new.display());
    let out = python(
        script,
        &[
            a.ip().to_string(),
            a.port().to_string(),
            USER.into(),
            PASS.into(),
            new.display().to_string(),
        ],
    );
    assert!(out.contains("drop ok"), "{out}");
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn curl_list_fetch_search() {
    if !have("curl") {
        panic!("curl is not installed (./test.sh installs it)");
    }
    let s = start();
    let a = s.imap();
    python(
        "import imaplib,sys; m=imaplib.IMAP4(sys.argv[1], int(sys.argv[2])); m.login(sys.argv[3], sys.argv[4]); m.append('INBOX', None, None, b'Subject: curl test\\r\\n\\r\\ncurl body\\r\\n'); m.logout()",
        &login_args(a, USER, PASS),
    );
    let url = format!("imap://{}:{}", a.ip(), a.port());
    let curl = |path: &str, extra: &[&str]| -> String {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "20", "-u", &format!("{USER}:{PASS}")])
            .args(extra)
            .arg(format!("{url}{path}"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "curl {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let list = curl("/", &[]);
    assert!(list.contains("INBOX") && list.contains("Sent"), "{list}");
    let body = curl("/INBOX;UID=1", &[]);
    assert!(body.contains("curl body"), "{body}");
    let search = curl("/INBOX?SUBJECT%20curl", &[]);
    assert!(search.contains("SEARCH 1"), "{search}");
    let status = curl("/INBOX", &["-X", "STATUS INBOX (MESSAGES UIDNEXT)"]);
    assert!(status.contains("MESSAGES 1"), "{status}");
}

#[test]
fn mbsync_two_way_sync_with_flags() {
    if !have("mbsync") {
        panic!("mbsync is not installed (./test.sh installs isync)");
    }
    let s = start();
    let a = s.imap();
    python(
        "import imaplib,sys\nm=imaplib.IMAP4(sys.argv[1], int(sys.argv[2])); m.login(sys.argv[3], sys.argv[4])\nfor i in range(20): m.append('INBOX', '(\\\\Seen)' if i % 2 else None, None, b'Subject: m%d\\n\\nbody %d\\n' % (i, i))\nm.logout()",
        &login_args(a, USER, PASS),
    );
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("mail");
    std::fs::create_dir_all(&local).unwrap();
    let rc = dir.path().join("mbsyncrc");
    std::fs::write(
        &rc,
        format!(
            "IMAPAccount a\nHost {}\nPort {}\nUser {USER}\nPass {PASS}\nSSLType None\nAuthMechs LOGIN PLAIN\n\n\
             IMAPStore r\nAccount a\n\nMaildirStore l\nPath {}/\nInbox {}/INBOX\nSubFolders Verbatim\n\n\
             Channel c\nFar :r:\nNear :l:\nPatterns *\nCreate Both\nExpunge Both\nSyncState *\n",
            a.ip(),
            a.port(),
            local.display(),
            local.display()
        ),
    )
    .unwrap();
    let sync = || {
        let out = Command::new("mbsync")
            .arg("-c")
            .arg(&rc)
            .arg("-a")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mbsync failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sync();
    let files = |sub: &str| -> Vec<std::path::PathBuf> {
        let mut v = Vec::new();
        for d in ["cur", "new"] {
            if let Ok(rd) = std::fs::read_dir(local.join(sub).join(d)) {
                v.extend(rd.map(|e| e.unwrap().path()));
            }
        }
        v
    };
    let inbox = files("INBOX");
    assert_eq!(inbox.len(), 20, "{inbox:?}");
    let seen = inbox
        .iter()
        .filter(|p| {
            p.to_string_lossy()
                .rsplit(":2,")
                .next()
                .unwrap_or("")
                .contains('S')
        })
        .count();
    assert_eq!(seen, 10);
    // Local changes go back: flag one message, add one, delete one.
    let first = &inbox[0];
    let name = first.file_name().unwrap().to_string_lossy().into_owned();
    let (base, flags) = name.split_once(":2,").unwrap_or((&name, ""));
    let mut f: Vec<char> = flags.chars().collect();
    f.push('F');
    f.sort();
    let flagged: String = f.into_iter().collect();
    std::fs::rename(
        first,
        local.join("INBOX/cur").join(format!("{base}:2,{flagged}")),
    )
    .unwrap();
    std::fs::write(
        local.join("INBOX/new/1700000000.local.host"),
        "Subject: from local\n\nlocal body\n",
    )
    .unwrap();
    let victim = inbox[1].clone();
    let vname = victim.file_name().unwrap().to_string_lossy().into_owned();
    let (vbase, vflags) = vname.split_once(":2,").unwrap_or((&vname, ""));
    std::fs::rename(
        &victim,
        local.join("INBOX/cur").join(format!("{vbase}:2,{vflags}T")),
    )
    .unwrap();
    sync();
    let script = r#"
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2])); m.login(sys.argv[3], sys.argv[4])
typ, data = m.select('INBOX')
assert data[0] == b'20', data
typ, data = m.search(None, 'FLAGGED'); assert len(data[0].split()) == 1, data
typ, data = m.search(None, 'SUBJECT', '"from local"'); assert len(data[0].split()) == 1, data
print('mbsync ok')
"#;
    let out = python(script, &login_args(a, USER, PASS));
    assert!(out.contains("mbsync ok"), "{out}");
}

#[test]
fn raw_protocol_edges() {
    let s = start();
    let a = s.imap();
    let script = r#"
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
f = s.makefile('rb')
def cmd(line, lit=None):
    s.sendall(line)
    out = []
    while True:
        l = f.readline()
        out.append(l)
        if l.startswith(b'+') and lit is not None:
            s.sendall(lit); lit = None; continue
        if l[:2] not in (b'* ', b'+ ') and b' ' in l and not l.startswith(b'{'):
            if l.split(b' ')[0] == line.split(b' ')[0]:
                return out
greet = f.readline(); assert b'CAPABILITY' in greet, greet
r = cmd(b'a1 BOGUS\r\n'); assert r[-1].startswith(b'a1 BAD'), r
r = cmd(b'a2 SELECT INBOX\r\n'); assert r[-1].startswith(b'a2 BAD'), r
r = cmd(b'a3 LOGIN {%d+}\r\n%s {%d}\r\n' % (len(sys.argv[3]), sys.argv[3].encode(), len(sys.argv[4])), sys.argv[4].encode() + b'\r\n')
assert r[-1].startswith(b'a3 OK'), r
r = cmd(b'a4 ENABLE IMAP4rev2 QRESYNC\r\n'); assert any(b'ENABLED' in l for l in r), r
r = cmd(b'a5 APPEND INBOX {999999999999}\r\n'); assert b'TOOBIG' in r[-1], r
r = cmd(b'a6 APPEND INBOX (\\Seen) {5+}\r\nhello\r\n'); assert b'APPENDUID' in r[-1], r
r = cmd(b'a7 SELECT INBOX (QRESYNC (1 1))\r\n'); assert r[-1].startswith(b'a7 OK'), r
r = cmd(b'a8 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)\r\n'); assert r[-1].startswith(b'a8 OK'), r
r = cmd(b'a9 SEARCH ALL\r\n'); assert any(l.startswith(b'* ESEARCH') for l in r), r
r = cmd(b'b1 FETCH 99 FLAGS\r\n'); assert r[-1].startswith(b'b1 BAD'), r
r = cmd(b'b2 STORE 1 +FLAGS (\\Deleted)\r\n'); assert r[-1].startswith(b'b2 OK'), r
r = cmd(b'b3 EXPUNGE\r\n'); assert any(l.startswith(b'* VANISHED') for l in r), r
r = cmd(b'b4 LIST "" "*" RETURN (STATUS (MESSAGES SIZE) SPECIAL-USE)\r\n'); assert any(l.startswith(b'* STATUS') for l in r), r
r = cmd(b'b5 CREATE "Caf\xc3\xa9"\r\n'); assert r[-1].startswith(b'b5 OK'), r
r = cmd(b'b6 LIST "" "Caf*"\r\n'); assert any('Café'.encode() in l for l in r), r
r = cmd(b'b7 CREATE Junk2 (USE (\\Junk))\r\n'); assert r[-1].startswith(b'b7 OK'), r
s.sendall(b'c1 NOOP ' + b'x' * 70000 + b'\r\n')
l = f.readline(); assert b'BYE' in l or b'BAD' in l, l
print('raw ok')
"#;
    let out = python(script, &login_args(a, USER, PASS));
    assert!(out.contains("raw ok"), "{out}");
    let _ = std::io::stdout().flush();
}

/// RFC 9051 §6.3.9: a folder another program made without its parent lists the parent as a
/// level of hierarchy that cannot be selected.
#[test]
fn list_shows_missing_parents_as_noselect() {
    let s = start();
    let a = s.imap();
    let login = "import imaplib,sys; m=imaplib.IMAP4(sys.argv[1], int(sys.argv[2])); m.login(sys.argv[3], sys.argv[4]); m.logout()";
    let args = [
        a.ip().to_string(),
        a.port().to_string(),
        USER.into(),
        PASS.into(),
    ];
    python(login, &args);
    let folder = s.env.maildir(USER).join(".Lists.rust");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(folder.join(sub)).unwrap();
    }
    let script = r#"
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2])); m.login(sys.argv[3], sys.argv[4])
typ, data = m.list('""', '%')
assert b'(\\Noselect \\HasChildren) "/" "Lists"' in data, data
typ, data = m.list('""', 'Lists/%')
assert data == [b'(\\HasNoChildren) "/" "Lists/rust"'], data
typ, data = m.select('Lists')
assert typ == 'NO' and b'NONEXISTENT' in data[0], (typ, data)
m._simple_command('ENABLE', 'IMAP4rev2')
typ, data = m.list('""', '%')
assert b'(\\NonExistent \\HasChildren) "/" "Lists"' in data, data
print('list ok')
"#;
    let out = python(script, &args);
    assert!(out.contains("list ok"), "{out}");
}

/// Three sessions on one mailbox, as a phone and two desktops would be (RFC 3501 §5.2, §7.4.1,
/// §2.3.2, §7.2.6; RFC 2180 §4.1.1): another session's expunge and append reach a session as
/// EXPUNGE then EXISTS even when the count ends where it was; a message expunged elsewhere can
/// still be fetched until the expunge is reported; a new keyword comes in a FLAGS response
/// before a FETCH shows it; one session only sees a new message as \Recent.
#[test]
fn concurrent_sessions_see_a_consistent_view() {
    let s = start();
    let a = s.imap();
    let script = r#"
import socket, sys, re
host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
class C:
    n = 0
    def __init__(self):
        self.s = socket.create_connection((host, port), timeout=10)
        self.f = self.s.makefile('rb')
        self.f.readline()
    def cmd(self, text, literal=None):
        C.n += 1
        tag = 't%d' % C.n
        if literal is None:
            self.s.sendall(('%s %s\r\n' % (tag, text)).encode())
        else:
            self.s.sendall(('%s %s {%d+}\r\n' % (tag, text, len(literal))).encode() + literal + b'\r\n')
        lines = []
        while True:
            l = self.f.readline()
            assert l, 'connection closed'
            m = re.search(rb'\{(\d+)\}\r\n$', l)
            if m:
                l += self.f.read(int(m.group(1))) + self.f.readline()
            if l.startswith(tag.encode() + b' '):
                assert l.split()[1] == b'OK', (text, l, lines)
                return [x.decode('utf-8', 'replace').rstrip('\r\n') for x in lines]
            lines.append(l)
msg = lambda i: b'Subject: m%d\r\n\r\nbody %d\r\n' % (i, i)
a, b, c = C(), C(), C()
for x in (a, b, c):
    x.cmd('LOGIN %s %s' % (user, pw))
c.cmd('APPEND INBOX', msg(1)); c.cmd('APPEND INBOX', msg(2))
a.cmd('SELECT INBOX'); b.cmd('SELECT INBOX')
# b expunges message 1 and a new one arrives: a's count stays 2, yet it must hear both.
b.cmd('STORE 1 +FLAGS.SILENT (\\Deleted)'); b.cmd('EXPUNGE')
c.cmd('APPEND INBOX', msg(3))
got = a.cmd('NOOP')
assert got.index('* 1 EXPUNGE') < got.index('* 2 EXISTS'), got
# Expunged elsewhere, not yet reported here (no EXPUNGE during FETCH): still readable.
b.cmd('STORE 1 +FLAGS.SILENT (\\Deleted)'); b.cmd('EXPUNGE')
got = a.cmd('FETCH 1 (UID BODY.PEEK[])')
assert any('body 2' in l for l in got), got
assert not any('EXPUNGE' in l for l in got), got
assert a.cmd('NOOP') == ['* 1 EXPUNGE'], got
c.cmd('APPEND INBOX', msg(4))
a.cmd('NOOP')
# A keyword new to the mailbox: FLAGS first, then the FETCH that uses it.
b.cmd('STORE 1 +FLAGS.SILENT ($Phone)')
got = a.cmd('NOOP')
fl = [i for i, l in enumerate(got) if l.startswith('* FLAGS') and '$Phone' in l]
fe = [i for i, l in enumerate(got) if 'FETCH' in l and '$Phone' in l]
assert fl and fe and fl[0] < fe[0], got
assert any('PERMANENTFLAGS' in l and '$Phone' in l for l in got), got
# \Recent for exactly one of the two selected sessions.
c.cmd('APPEND INBOX', msg(5))
a.cmd('NOOP'); b.cmd('NOOP')
seen = [l for x in (a, b) for l in x.cmd('FETCH * (UID FLAGS)') if '\\Recent' in l]
assert len(seen) == 1, seen
st = c.cmd('STATUS INBOX (RECENT MESSAGES)')
assert 'RECENT 0' in st[0] and 'MESSAGES 3' in st[0], st
print('ok')
"#;
    let out = python(script, &login_args(a, USER, PASS));
    assert!(out.contains("ok"), "{out}");
}

/// RFC 7162 §3.1: MODSEQs never go backwards. Flag changes commit without waiting for the
/// disk, so after a crash the server raises HIGHESTMODSEQ past anything it may have lost; after
/// a clean stop it does not.
#[test]
fn modseqs_never_go_backwards_across_a_crash() {
    let env = Env::new();
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", USER], &format!("{PASS}\n"));
    let highest = |addr: SocketAddr, store: bool| -> u64 {
        let out = python(
            "import imaplib,sys,re\nm=imaplib.IMAP4(sys.argv[1], int(sys.argv[2])); m.login(sys.argv[3], sys.argv[4])\nif sys.argv[5] == '1':\n    m.append('INBOX', None, None, b'Subject: x\\r\\n\\r\\nbody\\r\\n')\n    m.select('INBOX'); m.store('1', '+FLAGS', '(\\\\Flagged)')\ntyp, data = m.status('INBOX', '(HIGHESTMODSEQ)')\nprint(re.search(rb'HIGHESTMODSEQ (\\d+)', data[0]).group(1).decode())\nm.logout()",
            &[
                addr.ip().to_string(),
                addr.port().to_string(),
                USER.into(),
                PASS.into(),
                if store { "1" } else { "0" }.into(),
            ],
        );
        out.trim().parse().unwrap()
    };
    let mut running = env.serve();
    let before = highest(running.addrs["imap"], true);
    // SIGKILL: the index is not closed.
    running.child.kill().unwrap();
    running.child.wait().unwrap();
    drop(running);
    let running = env.serve();
    let after_crash = highest(running.addrs["imap"], false);
    assert!(
        after_crash >= before + 1_000_000,
        "{before} -> {after_crash}"
    );
    // A clean stop (SIGTERM) closes the index: no raise.
    let pid = running.child.id().to_string();
    assert!(Command::new("kill").arg(&pid).status().unwrap().success());
    let mut running = running;
    running.child.wait().unwrap();
    drop(running);
    let running = env.serve();
    assert_eq!(highest(running.addrs["imap"], false), after_crash);
}
