//! SCRAM-SHA-256 and SCRAM-SHA-256-PLUS end to end (RFC 5802, RFC 7677, RFC 5929 §4,
//! RFC 9266): the real `postern serve` against an independent SCRAM client, Python's
//! `scramp` (installed by `./test.sh`), carried by imaplib, poplib and smtplib. The channel
//! bindings come from independent TLS stacks too: `tls-server-end-point` is computed by
//! scramp from the certificate Python's ssl received, `tls-exporter` is printed by
//! `openssl s_client -keymatexport`.
//!
//! curl cannot take part: SCRAM in curl needs libgsasl, which Debian's curl is not built
//! with (`curl -V` lists no `gsasl` feature).

mod common;
use common::{python, Env};

const USER: &str = "alice@example.org";
const PASS: &str = "pencil-and-paper";

struct Server {
    // Dropped first: the server stops before its data directory goes.
    running: common::Running,
    env: Env,
}

fn start(extra: &str) -> Server {
    let env = Env::with_config(extra);
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", USER], &format!("{PASS}\n"));
    let running = env.serve();
    Server { running, env }
}

impl Server {
    fn port(&self, service: &str) -> String {
        self.running.addrs[service].port().to_string()
    }

    fn cert(&self) -> String {
        self.env
            .data()
            .join("tls")
            .join("cert.pem")
            .display()
            .to_string()
    }
}

/// Python helpers shared by the scripts: a SASL callback driving a scramp client through
/// the exchange, whatever carries it. The last challenge is the server-final message; the
/// client answers it with an empty response (or `*` with `cancel_on_error`).
const PRELUDE: &str = r#"
import base64, imaplib, poplib, smtplib, ssl, subprocess, sys
import scramp

def scram(mech, user, pw, cb=None, cancel_on_error=False):
    c = scramp.ScramClient([mech], user, pw, channel_binding=cb)
    state = {'step': 0, 'error': None, 'verified': False}
    def step(challenge):
        n = state['step']
        state['step'] += 1
        if n == 0:
            return c.get_client_first().encode()
        if n == 1:
            c.set_server_first(challenge.decode())
            return c.get_client_final().encode()
        final = challenge.decode()
        if final.startswith('e='):
            state['error'] = final
            return None if cancel_on_error else b''
        c.set_server_final(final)   # checks the server's signature (v=)
        state['verified'] = True
        return b''
    step.state = state
    return step

def tls_context(cafile, version=None):
    ctx = ssl.create_default_context(cafile=cafile)
    if version is not None:
        ctx.minimum_version = version
        ctx.maximum_version = version
    return ctx

def imap_auth(m, mech, user, pw, cb=None, cancel_on_error=False):
    step = scram(mech, user, pw, cb, cancel_on_error)
    try:
        typ, _ = m.authenticate(mech, step)
        assert typ == 'OK'
        assert step.state['verified'], 'server signature not checked'
        return 'OK'
    except imaplib.IMAP4.error as e:
        return str(e) + ' ' + str(step.state['error'])
"#;

fn script(body: &str) -> String {
    format!("{PRELUDE}\n{body}")
}

const IMAP: &str = r#"
host, port, tport, cafile, user, pw = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]

# Plain IMAP (loopback): SCRAM-SHA-256, not -PLUS.
m = imaplib.IMAP4(host, port)
assert 'AUTH=SCRAM-SHA-256' in m.capabilities, m.capabilities
assert 'AUTH=SCRAM-SHA-256-PLUS' not in m.capabilities, m.capabilities
r = imap_auth(m, 'SCRAM-SHA-256', user, 'wrong password')
assert 'AUTHENTICATIONFAILED' in r and 'e=invalid-proof' in r, r
r = imap_auth(m, 'SCRAM-SHA-256', user, 'wrong password', cancel_on_error=True)
assert 'AUTHENTICATIONFAILED' in r and 'e=invalid-proof' in r, r
r = imap_auth(m, 'SCRAM-SHA-256', 'nobody@example.org', pw)
assert 'AUTHENTICATIONFAILED' in r and 'e=invalid-proof' in r, r
assert imap_auth(m, 'SCRAM-SHA-256', user, pw) == 'OK'
m.select('INBOX')
m.logout()

# IMAPS over TLS 1.3: -PLUS is offered first; tls-server-end-point as scramp computes it
# from the certificate it received (RFC 5929 §4.1).
m = imaplib.IMAP4_SSL(host, tport, ssl_context=tls_context(cafile))
assert m.sock.version() == 'TLSv1.3', m.sock.version()
caps = [c for c in m.capabilities if c.startswith('AUTH=')]
assert caps == ['AUTH=SCRAM-SHA-256-PLUS', 'AUTH=SCRAM-SHA-256', 'AUTH=PLAIN', 'AUTH=LOGIN'], caps
assert imap_auth(m, 'SCRAM-SHA-256-PLUS', user, pw, cb=('tls-server-end-point', m.sock)) == 'OK'
m.logout()
# Another channel's binding data (a man in the middle's) fails.
m = imaplib.IMAP4_SSL(host, tport, ssl_context=tls_context(cafile))
r = imap_auth(m, 'SCRAM-SHA-256-PLUS', user, pw, cb=('tls-server-end-point', b'\x01' * 32))
assert 'AUTHENTICATIONFAILED' in r and 'e=channel-bindings-dont-match' in r, r
# RFC 5802 §6: a client able to bind that says 'y' while -PLUS is offered was downgraded.
r = imap_auth(m, 'SCRAM-SHA-256', user, pw, cb=('tls-server-end-point', m.sock))
assert 'AUTHENTICATIONFAILED' in r, r
# Without binding ('n'), plain SCRAM works over TLS too.
assert imap_auth(m, 'SCRAM-SHA-256', user, pw) == 'OK'
m.logout()

# TLS 1.2: no tls-exporter, so -PLUS is not advertised ('y' is then honest), but a client
# may still bind with tls-server-end-point.
m = imaplib.IMAP4_SSL(host, tport, ssl_context=tls_context(cafile, ssl.TLSVersion.TLSv1_2))
assert m.sock.version() == 'TLSv1.2', m.sock.version()
assert 'AUTH=SCRAM-SHA-256-PLUS' not in m.capabilities, m.capabilities
assert imap_auth(m, 'SCRAM-SHA-256', user, pw, cb=('tls-server-end-point', m.sock)) == 'OK'
m.logout()
m = imaplib.IMAP4_SSL(host, tport, ssl_context=tls_context(cafile, ssl.TLSVersion.TLSv1_2))
assert imap_auth(m, 'SCRAM-SHA-256-PLUS', user, pw, cb=('tls-server-end-point', m.sock)) == 'OK'
m.logout()

# STARTTLS: the binding is the TLS channel's, taken after the upgrade.
m = imaplib.IMAP4(host, port)
m.starttls(ssl_context=tls_context(cafile))
assert 'AUTH=SCRAM-SHA-256-PLUS' in m.capabilities, m.capabilities
assert imap_auth(m, 'SCRAM-SHA-256-PLUS', user, pw, cb=('tls-server-end-point', m.sock)) == 'OK'
m.logout()
print('imap scram ok')
"#;

#[test]
fn imaplib_scram_and_plus_with_tls_server_end_point() {
    let s = start("");
    let out = python(
        &script(IMAP),
        &[
            "127.0.0.1".into(),
            s.port("imap"),
            s.port("imaps"),
            s.cert(),
            USER.into(),
            PASS.into(),
        ],
    );
    assert!(out.contains("imap scram ok"), "{out}");
}

/// RFC 9266 tls-exporter from OpenSSL's `s_client -keymatexport` (Python's ssl cannot
/// export keying material), with scramp doing SCRAM-SHA-256-PLUS over that IMAPS
/// connection. scramp refuses the name "tls-exporter" for want of a way to compute it, so
/// the script lets it through: the data comes from OpenSSL.
const EXPORTER: &str = r#"
host, tport, cafile, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
scramp.core.CbName.SUPPORTED_TYPES = scramp.core.CbName.SUPPORTED_TYPES | {'tls-exporter'}
scramp.core.CbName.UNSUPPORTED_TYPES = frozenset()

def session(binding):
    p = subprocess.Popen(
        ['openssl', 's_client', '-connect', '%s:%d' % (host, tport), '-tls1_3',
         '-CAfile', cafile, '-verify_return_error', '-nocommands', '-ign_eof',
         '-keymatexport', 'EXPORTER-Channel-Binding', '-keymatexportlen', '32'],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    exported = None
    while True:
        line = p.stdout.readline()
        assert line, 'no IMAP greeting through s_client'
        line = line.decode(errors='replace').strip()
        if line.startswith('Keying material:'):
            exported = bytes.fromhex(line.split(':', 1)[1].strip())
        if line.startswith('* OK'):
            break
    assert exported is not None and len(exported) == 32, exported
    def send(text):
        p.stdin.write(text.encode() + b'\r\n')
        p.stdin.flush()
    def read():
        while True:
            line = p.stdout.readline().decode().rstrip('\r\n')
            assert line, 'connection closed'
            if line.startswith('+') or line.startswith('a1 '):
                return line
    cb = ('tls-exporter', exported if binding is None else binding)
    step = scram('SCRAM-SHA-256-PLUS', user, pw, cb)
    send('a1 AUTHENTICATE SCRAM-SHA-256-PLUS')
    while True:
        line = read()
        if line.startswith('a1 '):
            break
        challenge = base64.b64decode(line[2:] if len(line) > 1 else '')
        answer = step(challenge)
        send(base64.b64encode(answer).decode() if answer is not None else '*')
    send('a2 LOGOUT')
    p.stdin.close()
    p.wait(timeout=10)
    return line, step.state

line, state = session(None)
assert line.startswith('a1 OK'), line
assert state['verified'], state
line, state = session(b'\x02' * 32)
assert line.startswith('a1 NO [AUTHENTICATIONFAILED]'), line
assert state['error'] == 'e=channel-bindings-dont-match', state
print('tls-exporter ok')
"#;

#[test]
fn scram_plus_with_tls_exporter_from_openssl() {
    assert!(
        common::on_path("openssl"),
        "openssl (Debian package openssl) is needed"
    );
    let s = start("");
    let out = python(
        &script(EXPORTER),
        &[
            "127.0.0.1".into(),
            s.port("imaps"),
            s.cert(),
            USER.into(),
            PASS.into(),
        ],
    );
    assert!(out.contains("tls-exporter ok"), "{out}");
}

const POP3_SMTP: &str = r#"
host, pop, pops, sub, subs, cafile, user, pw = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], sys.argv[7], sys.argv[8]

def pop_auth(p, mech, user, pw, cb=None):
    # RFC 5034: AUTH with an initial response, "+ " challenges, base64 answers.
    step = scram(mech, user, pw, cb)
    first = base64.b64encode(step(None)).decode()
    p._putcmd('AUTH %s %s' % (mech, first))
    while True:
        line = p._getline()[0].decode()
        if not line.startswith('+ ') and line != '+':
            return line, step.state
        answer = step(base64.b64decode(line[2:]))
        p._putcmd(base64.b64encode(answer).decode())

p = poplib.POP3(host, pop)
assert 'SCRAM-SHA-256' in p.capa()['SASL'], p.capa()
line, state = pop_auth(p, 'SCRAM-SHA-256', user, 'wrong')
assert line.startswith('-ERR [AUTH]') and state['error'] == 'e=invalid-proof', (line, state)
line, state = pop_auth(p, 'SCRAM-SHA-256', user, pw)
assert line.startswith('+OK') and state['verified'], (line, state)
assert p.stat()[0] == 0
p.quit()
p = poplib.POP3_SSL(host, pops, context=tls_context(cafile))
assert p.capa()['SASL'][0] == 'SCRAM-SHA-256-PLUS', p.capa()
line, state = pop_auth(p, 'SCRAM-SHA-256-PLUS', user, pw, cb=('tls-server-end-point', p.sock))
assert line.startswith('+OK') and state['verified'], (line, state)
p.quit()

def smtp_auth(s, mech, user, pw, cb=None):
    step = scram(mech, user, pw, cb)
    def authobject(challenge=None):
        answer = step(challenge)
        return answer.decode() if answer is not None else '*'
    try:
        code, _ = s.auth(mech, authobject)
        assert step.state['verified']
        return code, step.state
    except smtplib.SMTPAuthenticationError as e:
        return e.smtp_code, step.state

with smtplib.SMTP(host, sub) as s:
    s.ehlo('laptop')
    assert 'SCRAM-SHA-256' in s.esmtp_features['auth'].split(), s.esmtp_features
    code, state = smtp_auth(s, 'SCRAM-SHA-256', user, 'wrong')
    assert code == 535 and state['error'] == 'e=invalid-proof', (code, state)
    code, state = smtp_auth(s, 'SCRAM-SHA-256', user, pw)
    assert code == 235, code
    s.sendmail(user, [user], 'Subject: via scram\r\n\r\nhi\r\n')
with smtplib.SMTP_SSL(host, subs, context=tls_context(cafile)) as s:
    s.ehlo('laptop')
    assert s.esmtp_features['auth'].split()[0] == 'SCRAM-SHA-256-PLUS', s.esmtp_features
    code, state = smtp_auth(s, 'SCRAM-SHA-256-PLUS', user, pw, cb=('tls-server-end-point', s.sock))
    assert code == 235, code
print('pop3 smtp scram ok')
"#;

#[test]
fn poplib_and_smtplib_scram_and_plus() {
    let s = start("");
    let out = python(
        &script(POP3_SMTP),
        &[
            "127.0.0.1".into(),
            s.port("pop3"),
            s.port("pop3s"),
            s.port("submission"),
            s.port("submissions"),
            s.cert(),
            USER.into(),
            PASS.into(),
        ],
    );
    assert!(out.contains("pop3 smtp scram ok"), "{out}");
}

const IMPORTED: &str = r#"
host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
m = imaplib.IMAP4(host, port)
# An imported hash has no SCRAM keys: SCRAM fails like a wrong password...
r = imap_auth(m, 'SCRAM-SHA-256', user, pw)
assert 'AUTHENTICATIONFAILED' in r, r
# ...until a plaintext login derives them.
m.login(user, pw)
m.logout()
m = imaplib.IMAP4(host, port)
assert imap_auth(m, 'SCRAM-SHA-256', user, pw) == 'OK'
m.logout()
print('imported ok')
"#;

#[test]
fn imported_hash_gains_scram_at_first_plaintext_login() {
    let s = start("");
    // SHA-512 crypt of "password" with salt "saltsalt", as /etc/shadow stores it.
    let shadow = "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/\n";
    s.env
        .ok(&["user", "add", "--hash", "old@example.org"], shadow);
    let listed = s.env.ok(&["user", "list"], "");
    assert!(listed.contains("no SCRAM keys yet"), "{listed}");
    let out = python(
        &script(IMPORTED),
        &[
            "127.0.0.1".into(),
            s.port("imap"),
            "old@example.org".into(),
            "password".into(),
        ],
    );
    assert!(out.contains("imported ok"), "{out}");
    let listed = s.env.ok(&["user", "list"], "");
    assert!(!listed.contains("no SCRAM keys yet"), "{listed}");
}

const THROTTLE: &str = r#"
host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
m = imaplib.IMAP4(host, port)
for _ in range(3):
    r = imap_auth(m, 'SCRAM-SHA-256', user, 'wrong')
    assert 'AUTHENTICATIONFAILED' in r, r
# Blocked now: SCRAM with the right password is refused, and so is LOGIN.
r = imap_auth(m, 'SCRAM-SHA-256', user, pw)
assert 'UNAVAILABLE' in r, r
try:
    m.login(user, pw)
    raise SystemExit('LOGIN accepted while blocked')
except imaplib.IMAP4.error as e:
    assert 'UNAVAILABLE' in str(e), e
print('throttle ok')
"#;

/// SCRAM failures count in the one failure throttle shared with every other path.
#[test]
fn scram_failures_count_in_the_shared_throttle() {
    let s = start("[auth]\nmax_failures = 3\n");
    let out = python(
        &script(THROTTLE),
        &["127.0.0.1".into(), s.port("imap"), USER.into(), PASS.into()],
    );
    assert!(out.contains("throttle ok"), "{out}");
}
