//! ARC sealing of forwarded mail (RFC 8617 §5.1) end to end: postern A is the MX of
//! example.org with its `[dns]` on a loopback dnsmasq; clients on 127.0.0.3 (outside A's
//! trusted networks) send with Python's smtplib to an alias of example.org that points to a
//! remote address, and to a mailbox whose Sieve script redirects; A forwards to postern B
//! (remote.test). dkimpy's ARC verifier, an independent implementation, then checks the chain
//! on the copies B stored, asking dnsmasq for A's key.

mod common;
use common::dnsmasq::{Dnsmasq, Record};
use common::Env;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Debian's python3 (the one with python3-dkim and python3-dnspython).
fn system_python(script: &str, args: &[String]) -> String {
    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python3 failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The message whose Subject is `subject` in an account's INBOX, waited for.
fn delivered(env: &Env, account: &str, subject: &str) -> String {
    let needle = format!("Subject: {subject}\r\n");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for sub in ["new", "cur"] {
            if let Ok(rd) = std::fs::read_dir(env.maildir(account).join(sub)) {
                for e in rd.flatten() {
                    let text =
                        String::from_utf8_lossy(&std::fs::read(e.path()).unwrap_or_default())
                            .into_owned();
                    if text.contains(&needle) {
                        return text;
                    }
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no message {subject:?} delivered to {account}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The unfolded header fields named `name` (case-insensitive), in order.
fn fields(text: &str, name: &str) -> Vec<String> {
    let head = text.split("\r\n\r\n").next().unwrap();
    let unfolded = head.replace("\r\n\t", " ").replace("\r\n ", " ");
    unfolded
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

/// An RSA key for the upstream sealer (openssl), printed as its DKIM TXT record.
const MAKE_KEY: &str = r#"
import subprocess, base64, sys, os
key = os.path.join(sys.argv[1], 'arc.pem')
subprocess.run(['openssl', 'genrsa', '-out', key, '2048'], check=True, capture_output=True)
der = subprocess.run(['openssl', 'rsa', '-in', key, '-pubout', '-outform', 'DER'],
                     check=True, capture_output=True).stdout
print('v=DKIM1; k=rsa; p=' + base64.b64encode(der).decode())
"#;

/// Sends the three cases from 127.0.0.3: a plain message to the alias, one already sealed by
/// dkimpy (i=1, sealer.test) to the alias, and one to the mailbox whose Sieve redirects.
const SEND: &str = r#"
import sys, smtplib, dkim, os
d, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
def msg(subject, to):
    s = subject.encode()
    return (b'From: Boss <boss@other.test>\r\nTo: ' + to.encode() + b'\r\nSubject: ' + s
            + b'\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\nMessage-ID: <' + s + b'@other.test>\r\n'
            + b'MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nHello ' + s + b'.\r\n'
            + b'A second line.\r\n')
def send(rcpt, m):
    with smtplib.SMTP(host, port, local_hostname='client.other.test',
                      source_address=('127.0.0.3', 0), timeout=60) as s:
        s.sendmail('boss@other.test', [rcpt], m)
send('fwd@example.org', msg('arc-alias-plain', 'fwd@example.org'))
m = msg('arc-alias-sealed', 'list@sealer.test')
m = b'Authentication-Results: sealer.test; dkim=none; spf=pass smtp.mailfrom=other.test\r\n' + m
key = open(os.path.join(d, 'arc.pem'), 'rb').read()
m = b''.join(dkim.arc_sign(m, b'arc', b'sealer.test', key, b'sealer.test')) + m
send('fwd@example.org', m)
send('bob@example.org', msg('arc-sieve-redirect', 'bob@example.org'))
m = msg('arc-alias-broken', 'list@sealer.test')
m = b'Authentication-Results: sealer.test; dkim=none; spf=pass smtp.mailfrom=other.test\r\n' + m
m = b''.join(dkim.arc_sign(m, b'arc', b'sealer.test', key, b'sealer.test')) + m
send('fwd@example.org', m.replace(b'A second line.', b'A changed line.'))
print('sent')
"#;

/// dkimpy's ARC verifier on the message in argv[2], DNS from dnsmasq (port argv[1]); prints
/// `cv=<result> <comment>`.
const ARC_VERIFY: &str = r#"
import sys, dkim, dns.resolver
r = dns.resolver.Resolver(configure=False)
r.nameservers = ['127.0.0.1']
r.port = int(sys.argv[1])
def txt(name, timeout=5):
    try:
        answers = r.resolve(name.decode().rstrip('.') + '.', 'TXT')
    except Exception:
        return None
    return b''.join(b''.join(a.strings) for a in answers)
msg = open(sys.argv[2], 'rb').read()
cv, results, comment = dkim.arc_verify(msg, dnsfunc=txt)
print('cv=%s %s' % (cv.decode() if cv else cv, comment))
"#;

/// RFC 8617 §5.1.2, checked with dkimpy's canonicalization and RSA: the topmost ARC-Seal
/// (argv[2]'s message) says i=2 cv=fail and signs its own set alone; prints `True`/`False`.
const FAILED_SEAL_VERIFY: &str = r#"
import sys, re, base64, hashlib, dkim, dns.resolver
from dkim.canonicalization import Relaxed
from dkim.crypto import parse_public_key, RSASSA_PKCS1_v1_5_verify
from dkim.util import parse_tag_value
r = dns.resolver.Resolver(configure=False)
r.nameservers = ['127.0.0.1']
r.port = int(sys.argv[1])
msg = open(sys.argv[2], 'rb').read()
top = {}
for name, value in dkim.DKIM(msg).headers:
    n = name.lower()
    if n in (b'arc-seal', b'arc-message-signature', b'arc-authentication-results') and n not in top:
        top[n] = (name, value)
seal = parse_tag_value(top[b'arc-seal'][1])
assert seal[b'i'] == b'2' and seal[b'cv'] == b'fail', seal
h = hashlib.sha256()
for x, y in Relaxed.canonicalize_headers([top[b'arc-authentication-results'], top[b'arc-message-signature']]):
    h.update(x + b':' + y)
for x, y in Relaxed.canonicalize_headers([(b'arc-seal', dkim.RE_BTAG.sub(b'\\1', top[b'arc-seal'][1]))]):
    h.update(x + b':' + y.rstrip())
name = (seal[b's'] + b'._domainkey.' + seal[b'd']).decode() + '.'
record = b''.join(b''.join(a.strings) for a in r.resolve(name, 'TXT'))
pk = parse_public_key(base64.b64decode(parse_tag_value(record)[b'p']))
print(RSASSA_PKCS1_v1_5_verify(h, base64.b64decode(re.sub(rb'\s', b'', seal[b'b'])), pk))
"#;

#[test]
fn forwards_are_sealed_and_dkimpy_verifies_the_chain() {
    // A: the MX of example.org; 127.0.0.3 is outside its trusted networks. Its DNS and its
    // route to B are filled in once dnsmasq and B run.
    let a = Env::with_config(
        "[smtp]\ntrusted_networks = [\"127.0.0.1/32\"]\n\
         [dns]\nnameservers = [\"127.0.0.1:2\"]\ntimeout_secs = 2\nattempts = 1\n\
         [outbound]\nidle_timeout_secs = 2\n[outbound.routes]\n\"remote.test\" = \"127.0.0.1:1\"\n",
    );
    a.ok(&["domain", "add", "example.org"], "");
    a.ok(&["user", "add", "bob@example.org"], "secret\n");
    a.ok(
        &["alias", "add", "fwd@example.org", "carol@remote.test"],
        "",
    );
    a.ok(&["dkim", "generate", "example.org", "--selector", "k1"], "");
    a.ok(
        &["sieve", "put", "bob@example.org", "fwd"],
        "redirect \"dave@remote.test\";\n",
    );
    a.ok(&["sieve", "activate", "bob@example.org", "fwd"], "");
    let mut records: Vec<Record> = a
        .ok(&["dkim", "list"], "")
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() >= 3).then(|| Record::txt(f[0].trim_end_matches('.'), f[2]))
        })
        .collect();
    assert_eq!(records.len(), 2, "{records:?}");
    let keys = tempfile::tempdir().unwrap();
    let sealer_key = system_python(MAKE_KEY, &[keys.path().display().to_string()]);
    records.push(Record::txt("arc._domainkey.sealer.test", sealer_key.trim()));
    let dns = Dnsmasq::start(&records);

    // B: remote.test, takes A's mail from loopback (trusted there by default).
    let b = Env::new();
    b.ok(&["domain", "add", "remote.test"], "");
    b.ok(&["user", "add", "carol@remote.test"], "secret\n");
    b.ok(&["user", "add", "dave@remote.test"], "secret\n");
    let sb = b.serve();
    let text = std::fs::read_to_string(&a.config)
        .unwrap()
        .replace("127.0.0.1:1", &sb.addrs["smtp"].to_string())
        .replace("127.0.0.1:2", &dns.nameserver());
    std::fs::write(&a.config, text).unwrap();
    let sa = a.serve();
    let mx = sa.addrs["smtp"];
    let out = system_python(
        SEND,
        &[
            keys.path().display().to_string(),
            mx.ip().to_string(),
            mx.port().to_string(),
        ],
    );
    assert_eq!(out.trim(), "sent");

    let verify = |name: &str, m: &str| -> String {
        let file = b.dir.path().join(format!("{name}.eml"));
        std::fs::write(&file, m).unwrap();
        system_python(
            ARC_VERIFY,
            &[dns.port().to_string(), file.display().to_string()],
        )
    };

    // (a) A plain message through the alias: the first set, i=1 cv=none, by example.org, with
    // the results A's MX computed.
    let m = delivered(&b, "carol@remote.test", "arc-alias-plain");
    let seals = fields(&m, "ARC-Seal");
    assert_eq!(seals.len(), 1, "{m}");
    assert!(
        seals[0].contains("i=1;") && seals[0].contains("cv=none"),
        "{m}"
    );
    assert!(
        seals[0].contains("d=example.org") && seals[0].contains("s=k1-rsa"),
        "{m}"
    );
    let aar = fields(&m, "ARC-Authentication-Results");
    assert_eq!(aar.len(), 1, "{m}");
    assert!(aar[0].starts_with("i=1; mx.test;"), "{m}");
    assert!(aar[0].contains("arc=none smtp.remote-ip=127.0.0.3"), "{m}");
    let v = verify("plain", &m);
    assert!(v.starts_with("cv=pass "), "dkimpy: {v}\n{m}");

    // (b) dkimpy's chain (i=1, valid at A's MX) gets i=2 cv=pass on top, and dkimpy checks the
    // whole chain.
    let m = delivered(&b, "carol@remote.test", "arc-alias-sealed");
    let seals = fields(&m, "ARC-Seal");
    assert_eq!(seals.len(), 2, "{m}");
    let ours = seals.iter().find(|s| s.contains("d=example.org")).unwrap();
    assert!(ours.contains("i=2;") && ours.contains("cv=pass"), "{m}");
    let aar = fields(&m, "ARC-Authentication-Results");
    assert!(
        aar.iter()
            .any(|v| v.starts_with("i=2; mx.test;") && v.contains("arc=pass")),
        "{m}"
    );
    let v = verify("sealed", &m);
    assert!(v.starts_with("cv=pass "), "dkimpy: {v}\n{m}");

    // (c) Sieve redirect: sealed too (the redirecting mailbox's domain), SRS sender kept.
    let m = delivered(&b, "dave@remote.test", "arc-sieve-redirect");
    let seals = fields(&m, "ARC-Seal");
    assert_eq!(seals.len(), 1, "{m}");
    assert!(
        seals[0].contains("i=1;") && seals[0].contains("d=example.org"),
        "{m}"
    );
    assert!(
        fields(&m, "Return-Path")
            .iter()
            .any(|p| p.to_ascii_uppercase().contains("SRS0")),
        "{m}"
    );
    let v = verify("redirect", &m);
    assert!(v.starts_with("cv=pass "), "dkimpy: {v}\n{m}");

    // (d) dkimpy's chain broken before A (body changed): A says arc=fail at reception and seals
    // i=2 cv=fail over its own set alone (RFC 8617 §5.1.2); dkimpy ends the chain there.
    let m = delivered(&b, "carol@remote.test", "arc-alias-broken");
    let seals = fields(&m, "ARC-Seal");
    assert_eq!(seals.len(), 2, "{m}");
    let ours = seals.iter().find(|s| s.contains("d=example.org")).unwrap();
    assert!(ours.contains("i=2;") && ours.contains("cv=fail"), "{m}");
    let v = verify("broken", &m);
    assert!(
        !v.starts_with("cv=pass") && v.contains("ARC-Seal[2] reported failure"),
        "dkimpy: {v}\n{m}"
    );
    let file = b.dir.path().join("broken.eml");
    let ok = system_python(
        FAILED_SEAL_VERIFY,
        &[dns.port().to_string(), file.display().to_string()],
    );
    assert_eq!(ok.trim(), "True", "{m}");
    drop(sa);
}

/// `[policy] arc_seal = false`: the forward leaves without a set.
#[test]
fn arc_seal_off_leaves_forwards_unsealed() {
    let a = Env::with_config(
        "[smtp]\ntrusted_networks = [\"127.0.0.1/32\"]\n\
         [dns]\nnameservers = [\"127.0.0.1:2\"]\ntimeout_secs = 2\nattempts = 1\n\
         [policy]\narc_seal = false\n\
         [outbound]\nidle_timeout_secs = 2\n[outbound.routes]\n\"remote.test\" = \"127.0.0.1:1\"\n",
    );
    a.ok(&["domain", "add", "example.org"], "");
    a.ok(
        &["alias", "add", "fwd@example.org", "carol@remote.test"],
        "",
    );
    a.ok(&["dkim", "generate", "example.org", "--selector", "k1"], "");
    let dns = Dnsmasq::start(&[Record::txt("other.test", "v=spf1 ?all")]);
    let b = Env::new();
    b.ok(&["domain", "add", "remote.test"], "");
    b.ok(&["user", "add", "carol@remote.test"], "secret\n");
    let sb = b.serve();
    let text = std::fs::read_to_string(&a.config)
        .unwrap()
        .replace("127.0.0.1:1", &sb.addrs["smtp"].to_string())
        .replace("127.0.0.1:2", &dns.nameserver());
    std::fs::write(&a.config, text).unwrap();
    let sa = a.serve();
    system_python(
        r#"
import sys, smtplib
m = (b'From: boss@other.test\r\nTo: fwd@example.org\r\nSubject: unsealed\r\n'
     + b'Message-ID: <unsealed@other.test>\r\n\r\nHello.\r\n')
with smtplib.SMTP('127.0.0.1', int(sys.argv[1]), source_address=('127.0.0.3', 0)) as s:
    s.sendmail('boss@other.test', ['fwd@example.org'], m)
"#,
        &[sa.addrs["smtp"].port().to_string()],
    );
    let m = delivered(&b, "carol@remote.test", "unsealed");
    assert!(fields(&m, "ARC-Seal").is_empty(), "{m}");
    // A's own results went along (the forward was checked), only the seal is missing.
    assert!(m.contains("Authentication-Results: mx.test;"), "{m}");
    drop(sa);
}
