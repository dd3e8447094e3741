//! Message authentication of inbound mail end to end: the real `postern serve` with its `[dns]`
//! pointed at dnsmasq on loopback, clients coming from other loopback addresses (127.0.0.x,
//! outside `[smtp] trusted_networks`) with Python's smtplib, messages signed by dkimpy (DKIM
//! RSA and Ed25519, ARC), SPF compared with pyspf, and postern's own DKIM signatures checked
//! by dkimpy. The delivered messages are read back from the Maildir.

mod common;
use common::dnsmasq::{Dnsmasq, Record};
use common::Env;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Debian's python3 (the one with python3-dkim, python3-spf, python3-dnspython).
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

/// Every message under an account's Maildir (INBOX and the `.Folder`s): (folder, text).
fn messages(root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut dirs: Vec<(String, PathBuf)> = vec![("INBOX".into(), root.to_path_buf())];
    if let Ok(rd) = std::fs::read_dir(root) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(folder) = name.strip_prefix('.') {
                if e.path().is_dir() {
                    dirs.push((folder.to_string(), e.path()));
                }
            }
        }
    }
    for (folder, dir) in dirs {
        for sub in ["new", "cur"] {
            if let Ok(rd) = std::fs::read_dir(dir.join(sub)) {
                for e in rd.flatten() {
                    let text =
                        String::from_utf8_lossy(&std::fs::read(e.path()).unwrap_or_default())
                            .into_owned();
                    out.push((folder.clone(), text));
                }
            }
        }
    }
    out
}

/// Waits for the message whose Subject is `subject`; returns (folder, text).
fn delivered(env: &Env, account: &str, subject: &str) -> (String, String) {
    let needle = format!("Subject: {subject}\r\n");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(m) = messages(&env.maildir(account))
            .into_iter()
            .find(|(_, t)| t.contains(&needle))
        {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "no message {subject:?} delivered to {account}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The header section of a message.
fn header(text: &str) -> &str {
    text.split("\r\n\r\n").next().unwrap()
}

/// The unfolded `Authentication-Results` fields of a message whose authserv-id is `id`.
fn auth_results(text: &str, id: &str) -> Vec<String> {
    let unfolded = header(text).replace("\r\n\t", " ").replace("\r\n ", " ");
    unfolded
        .lines()
        .filter_map(|l| l.strip_prefix("Authentication-Results: "))
        .filter(|v| v.split(';').next().unwrap().trim() == id)
        .map(str::to_string)
        .collect()
}

/// Keys made with openssl and dknewkey, as (file stem, DKIM TXT record).
const MAKE_KEYS: &str = r#"
import subprocess, base64, sys, os
d = sys.argv[1]
def rsa(name, bits):
    key = os.path.join(d, name + '.pem')
    subprocess.run(['openssl', 'genrsa', '-out', key, str(bits)], check=True, capture_output=True)
    der = subprocess.run(['openssl', 'rsa', '-in', key, '-pubout', '-outform', 'DER'],
                         check=True, capture_output=True).stdout
    print(name + '\tv=DKIM1; k=rsa; p=' + base64.b64encode(der).decode())
rsa('rsa2048', 2048)
rsa('rsa512', 512)
rsa('arc', 2048)
subprocess.run(['dknewkey', '--ktype', 'ed25519', os.path.join(d, 'ed')], check=True, capture_output=True)
print('ed\t' + open(os.path.join(d, 'ed.dns')).read().strip())
"#;

/// Builds each case's message (dkimpy signs and seals), sends it with smtplib from its
/// loopback address, and prints `case<TAB>ok` or `case<TAB><code> <text>` per case.
const SEND_CASES: &str = r#"
import sys, smtplib, dkim, os
d, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
def key(name): return open(os.path.join(d, name), 'rb').read()
def msg(frm, subject, extra=b''):
    s = subject.encode()
    return (extra + b'From: Sender <' + frm.encode() + b'>\r\nTo: alice@example.org\r\nSubject: ' + s
            + b'\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\nMessage-ID: <' + s + b'@test>\r\n\r\nHello '
            + s + b'.\r\nA second line.\r\n')
def sign(m, sel, dom, k, canon=(b'relaxed', b'relaxed'), length=False, alg=b'rsa-sha256'):
    return dkim.sign(m, sel, dom, k, canonicalize=canon, length=length, signature_algorithm=alg) + m
def seal(m):
    m = b'Authentication-Results: sealer.test; dkim=none; spf=pass smtp.mailfrom=list.test\r\n' + m
    return b''.join(dkim.arc_sign(m, b'arc', b'sealer.test', key('arc.pem'), b'sealer.test')) + m
def send(src, helo, mailfrom, m):
    try:
        with smtplib.SMTP(host, port, local_hostname=helo, source_address=(src, 0), timeout=60) as s:
            s.sendmail(mailfrom, ['alice@example.org'], m)
        return 'ok'
    except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused, smtplib.SMTPConnectError) as e:
        return '%d %s' % (e.smtp_code, e.smtp_error.decode())
    except smtplib.SMTPRecipientsRefused as e:
        return ' '.join('%d %s' % (c, t.decode()) for c, t in e.recipients.values())
forged = (b'Authentication-Results: mx.test; dkim=pass header.d=spf.test; dmarc=pass\r\n'
          + b'Authentication-Results: other.example; spf=pass smtp.mailfrom=spf.test\r\n'
          + b'X-Postern-Verdict: clean; score=-100\r\n')
rsa = key('rsa2048.pem')
out = {}
out['spf-pass'] = send('127.0.0.5', 'client.spf.test', 'a@spf.test', msg('a@spf.test', 'spf-pass', forged))
out['dkim-rsa-relaxed'] = send('127.0.0.3', 'h3.test', 'bounce@other.test',
    sign(msg('alice@signer.test', 'dkim-rsa-relaxed'), b'rsa', b'signer.test', rsa))
m = sign(msg('alice@signer.test', 'dkim-rsa-simple-l'), b'rsa', b'signer.test', rsa,
         canon=(b'simple', b'simple'), length=True)
out['dkim-rsa-simple-l'] = send('127.0.0.3', 'h3.test', 'bounce@other.test',
    m + b'\r\nA footer a mailing list appended after signing (l= covers only the above).\r\n')
out['dkim-ed25519'] = send('127.0.0.3', 'h3.test', 'bounce@other.test',
    sign(msg('alice@signer.test', 'dkim-ed25519'), b'ed', b'signer.test', key('ed.key'),
         canon=(b'relaxed', b'simple'), alg=b'ed25519-sha256'))
out['dkim-rsa512'] = send('127.0.0.3', 'h3.test', 'bounce@other.test',
    sign(msg('alice@weak.test', 'dkim-rsa512'), b'weak', b'weak.test', key('rsa512.pem')))
m = sign(msg('alice@signer.test', 'dkim-tampered'), b'rsa', b'signer.test', rsa)
out['dkim-tampered'] = send('127.0.0.3', 'h3.test', 'bounce@other.test',
    m.replace(b'A second line.', b'A forged line.'))
out['dmarc-reject'] = send('127.0.0.6', 'h6.test', 'x@reject.test', msg('boss@reject.test', 'dmarc-reject'))
out['dmarc-quarantine'] = send('127.0.0.6', 'h6.test', 'x@quar.test', msg('boss@quar.test', 'dmarc-quarantine'))
out['dmarc-pct0'] = send('127.0.0.6', 'h6.test', 'x@pct0.test', msg('boss@pct0.test', 'dmarc-pct0'))
out['dmarc-none'] = send('127.0.0.6', 'h6.test', 'x@none.test', msg('boss@none.test', 'dmarc-none'))
out['arc-pass'] = send('127.0.0.7', 'lists.sealer.test', 'bounce@sealer.test',
    seal(msg('boss@reject.test', 'arc-pass')))
m = seal(msg('boss@none.test', 'arc-broken'))
out['arc-broken'] = send('127.0.0.7', 'lists.sealer.test', 'bounce@sealer.test',
    m.replace(b'A second line.', b'A changed line.'))
import time
real_time = time.time
time.time = lambda: real_time() + 86400
m = sign(msg('alice@none.test', 'dkim-future'), b'rsa', b'signer.test', rsa)
time.time = real_time
out['dkim-future'] = send('127.0.0.3', 'h3.test', 'bounce@other.test', m)
out['forwarder'] = send('127.0.0.77', 'fwd.test', 'x@reject.test', msg('boss@reject.test', 'forwarder'))
for k, v in out.items():
    print(k + '\t' + v.replace('\n', ' '))
"#;

fn setup_dns(keys: &BTreeMap<String, String>) -> Dnsmasq {
    let mut records = vec![
        Record::txt("spf.test", "v=spf1 ip4:127.0.0.5 -all"),
        Record::txt("_dmarc.signer.test", "v=DMARC1; p=reject"),
        Record::txt("rsa._domainkey.signer.test", &keys["rsa2048"]),
        Record::txt("ed._domainkey.signer.test", &keys["ed"]),
        Record::txt("weak._domainkey.weak.test", &keys["rsa512"]),
        Record::txt("arc._domainkey.sealer.test", &keys["arc"]),
        Record::txt("reject.test", "v=spf1 -all"),
        Record::txt("_dmarc.reject.test", "v=DMARC1; p=reject"),
        Record::txt("_dmarc.quar.test", "v=DMARC1; p=quarantine"),
        Record::txt("_dmarc.none.test", "v=DMARC1; p=none"),
        Record::txt("_dmarc.pct0.test", "v=DMARC1; p=reject; pct=0"),
    ];
    records.sort_by_key(|r| format!("{r:?}"));
    Dnsmasq::start(&records)
}

fn policy_config(dns: &Dnsmasq, extra: &str) -> String {
    format!(
        "[smtp]\ntrusted_networks = [\"192.0.2.0/24\"]\n\
         [dns]\nnameservers = [\"{}\"]\ntimeout_secs = 2\nattempts = 1\n\
         [policy]\ntrusted_arc_sealers = [\"sealer.test\"]\ndmarc_forwarders = [\"127.0.0.77/32\"]\n{extra}",
        dns.nameserver()
    )
}

#[test]
fn dkim_arc_dmarc_spf_and_iprev_over_smtp() {
    let keys_dir = tempfile::tempdir().unwrap();
    let keys: BTreeMap<String, String> =
        system_python(MAKE_KEYS, &[keys_dir.path().display().to_string()])
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    assert_eq!(keys.len(), 4, "{keys:?}");
    let dns = setup_dns(&keys);
    let env = Env::with_config(&policy_config(&dns, ""));
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", "alice@example.org"], "secret\n");
    let server = env.serve();
    let mx = server.addrs["smtp"];
    let out = system_python(
        SEND_CASES,
        &[
            keys_dir.path().display().to_string(),
            mx.ip().to_string(),
            mx.port().to_string(),
        ],
    );
    let results: BTreeMap<String, String> = out
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(results.len(), 14, "{out}");
    let alice = "alice@example.org";

    // DMARC p=reject from a sender that is neither SPF- nor DKIM-aligned: 550 5.7.26.
    let r = &results["dmarc-reject"];
    assert!(r.starts_with("550 5.7.26 "), "{r}");
    assert!(r.contains("reject.test"), "{r}");
    // A body changed after signing fails DKIM, so signer.test's p=reject refuses it.
    let r = &results["dkim-tampered"];
    assert!(
        r.starts_with("550 5.7.26 ") && r.contains("signer.test"),
        "{r}"
    );
    for (case, r) in &results {
        if case != "dmarc-reject" && case != "dkim-tampered" {
            assert_eq!(r, "ok", "{case}: {r}");
        }
    }

    // SPF pass with iprev pass; the forged results claiming our authserv-id are gone, the
    // other ADMD's kept, the forged verdict replaced.
    let (folder, m) = delivered(&env, alice, "spf-pass");
    assert_eq!(folder, "INBOX");
    let ar = auth_results(&m, "mx.test");
    assert_eq!(ar.len(), 1, "{m}");
    let ar = &ar[0];
    assert!(ar.contains("spf=pass smtp.mailfrom=spf.test"), "{ar}");
    // iprev ran (hickory answers 127.in-addr.arpa itself, RFC 6761, so the PTR published
    // for 127.0.0.5 is not seen: FCrDNS passing is covered by the unit tests).
    assert!(ar.contains(" policy.iprev=127.0.0.5"), "{ar}");
    assert!(ar.contains("dkim=none"), "{ar}");
    assert!(
        !ar.contains("header.d=spf.test"),
        "forged result kept: {ar}"
    );
    assert_eq!(auth_results(&m, "other.example").len(), 1, "{m}");
    assert!(!m.contains("score=-100"), "{m}");
    assert_eq!(
        header(&m).matches("\r\nX-Postern-Score: ").count(),
        1,
        "{m}"
    );
    assert!(!m.contains("X-Postern-Verdict"), "{m}");

    // dkimpy's signatures: RSA-2048 relaxed, simple with l= (and a footer), Ed25519.
    for (case, selector) in [
        ("dkim-rsa-relaxed", "rsa"),
        ("dkim-rsa-simple-l", "rsa"),
        ("dkim-ed25519", "ed"),
    ] {
        let (folder, m) = delivered(&env, alice, case);
        assert_eq!(folder, "INBOX", "{case}");
        let ar = &auth_results(&m, "mx.test")[0];
        assert!(
            ar.contains(&format!(
                "dkim=pass header.d=signer.test header.s={selector} header.b="
            )),
            "{case}: {ar}"
        );
        assert!(
            ar.contains("dmarc=pass (p=reject dis=none) header.from=signer.test"),
            "{case}: {ar}"
        );
    }
    // A 512-bit RSA key never verifies (RFC 8301); a changed body fails.
    let (_, m) = delivered(&env, alice, "dkim-rsa512");
    let ar = &auth_results(&m, "mx.test")[0];
    assert!(ar.contains("dkim=fail"), "{ar}");
    assert!(ar.contains("header.d=weak.test header.s=weak"), "{ar}");
    // A signature dated tomorrow (RFC 6376 §3.5 t=) does not pass.
    let (_, m) = delivered(&env, alice, "dkim-future");
    let ar = &auth_results(&m, "mx.test")[0];
    assert!(
        ar.contains("dkim=neutral (signature timestamp in the future) header.d=signer.test"),
        "{ar}"
    );

    // DMARC p=quarantine: junk, filed in Junk; p=none: delivered with dmarc=fail.
    let (folder, m) = delivered(&env, alice, "dmarc-quarantine");
    assert_eq!(folder, "Junk", "{m}");
    assert!(m.contains("X-Postern-Verdict: junk; score="), "{m}");
    assert!(
        auth_results(&m, "mx.test")[0]
            .contains("dmarc=fail (p=quarantine dis=quarantine) header.from=quar.test"),
        "{m}"
    );
    // pct=0 (RFC 7489 §6.6.4): no message is sampled, so reject becomes quarantine.
    let (folder, m) = delivered(&env, alice, "dmarc-pct0");
    assert_eq!(folder, "Junk", "{m}");
    assert!(
        auth_results(&m, "mx.test")[0].contains(
            "dmarc=fail (p=reject dis=quarantine override=sampled_out) header.from=pct0.test"
        ),
        "{m}"
    );
    let (folder, m) = delivered(&env, alice, "dmarc-none");
    assert_eq!(folder, "INBOX", "{m}");
    assert!(
        auth_results(&m, "mx.test")[0]
            .contains("dmarc=fail (p=none dis=none) header.from=none.test"),
        "{m}"
    );

    // ARC: dkimpy's chain passes, and its trusted sealer overrides DMARC's reject; a changed
    // body breaks it.
    let (_, m) = delivered(&env, alice, "arc-pass");
    let ar = &auth_results(&m, "mx.test")[0];
    assert!(ar.contains("arc=pass smtp.remote-ip=127.0.0.7"), "{ar}");
    assert!(
        ar.contains("dmarc=fail (p=reject dis=none override=trusted_forwarder arc.sealer=sealer.test) header.from=reject.test"),
        "{ar}"
    );
    let (_, m) = delivered(&env, alice, "arc-broken");
    let ar = &auth_results(&m, "mx.test")[0];
    assert!(ar.contains("arc=fail"), "{ar}");
    // A configured forwarder is not refused for DMARC.
    let (_, m) = delivered(&env, alice, "forwarder");
    assert!(
        auth_results(&m, "mx.test")[0]
            .contains("dmarc=fail (p=reject dis=none override=forwarded)"),
        "{m}"
    );

    // The evaluations are recorded for aggregate reports.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = env.ok(&["dmarc", "records", "reject.test"], "");
        if out.contains("127.0.0.6") && out.contains("127.0.0.77") && out.contains("127.0.0.7 ") {
            let line = out.lines().find(|l| l.starts_with("127.0.0.6 ")).unwrap();
            assert!(line.contains("fail") && line.contains("reject"), "{out}");
            break;
        }
        assert!(Instant::now() < deadline, "records missing:\n{out}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(env.data().join("dmarc.db"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let e = env.fails(&["dmarc", "records", "bad domain"], "");
    assert!(e.contains("not a domain name"), "{e}");
    drop(server);
}

/// The SPF policies of the differential test: (domain, TXT records).
fn spf_policies() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        ("p1.spf.test", vec!["v=spf1 ip4:127.0.0.9 -all"]),
        ("p2.spf.test", vec!["v=spf1 ip4:127.0.0.8 -all"]),
        ("p3.spf.test", vec!["v=spf1 ~all"]),
        ("p4.spf.test", vec!["v=spf1 ?all"]),
        ("p5.spf.test", vec![]),
        ("p6.spf.test", vec!["v=spf1 include:inc.spf.test -all"]),
        ("p7.spf.test", vec!["v=spf1 redirect=red.spf.test"]),
        ("p8.spf.test", vec!["v=spf1 exists:%{i}.ex.spf.test -all"]),
        ("p9.spf.test", vec!["v=spf1 exists:%{ir}.rev.spf.test -all"]),
        ("p10.spf.test", vec!["v=spf1 exists:%{s}.sender.spf.test ~all"]),
        ("p11.spf.test", vec!["v=spf1 exists:%{d}.dom.spf.test -all"]),
        ("p12.spf.test", vec!["v=spf1 exists:%{h}.helo.spf.test -all"]),
        ("p13.spf.test", vec!["v=spf1 a -all"]),
        ("p14.spf.test", vec!["v=spf1 mx -all"]),
        ("p15.spf.test", vec!["v=spf1 -all"]),
        (
            "p16.spf.test",
            vec!["v=spf1 a:v1.spf.test a:v2.spf.test a:v3.spf.test ip4:127.0.0.9 -all"],
        ),
        (
            "p17.spf.test",
            vec!["v=spf1 a:n1.spf.test a:n2.spf.test a:n3.spf.test a:n4.spf.test a:n5.spf.test a:n6.spf.test a:n7.spf.test a:n8.spf.test a:n9.spf.test a:n10.spf.test a:n11.spf.test ip4:127.0.0.9 -all"],
        ),
        ("p18.spf.test", vec!["v=spf1 ip4:999.0.0.1 -all"]),
        ("p19.spf.test", vec!["v=spf1 foo:bar -all"]),
        ("p20.spf.test", vec!["v=spf1 -all", "v=spf1 +all"]),
        ("p21.spf.test", vec!["v=spf1 include:nothing.spf.test -all"]),
        ("p22.spf.test", vec!["v=spf1 a:n1.spf.test/8 -all"]),
        ("p23.spf.test", vec!["v=spf1 redirect=p15.spf.test"]),
        ("p24.spf.test", vec!["v=spf1 ip6:::1 ?ip4:127.0.0.9 -all"]),
        ("p25.spf.test", vec!["v=spf1 include:p3.spf.test -all"]),
        (
            "p26.spf.test",
            vec!["v=spf1 exists:%{l}.%{o}.local.spf.test -all"],
        ),
        ("p27.spf.test", vec!["v=spf1 ip4:127.0.0.9 exp=explain.spf.test -all"]),
        ("p28.spf.test", vec!["v=spf1 exists:%{i}.%{xyz}.spf.test -all"]),
        ("p29.spf.test", vec!["v=spf1 ptr -all"]),
        ("p30.spf.test", vec!["spf2.0/pra ip4:127.0.0.9 -all"]),
    ]
}

/// Compares postern's SPF result for MAIL FROM with pyspf's (`spf.check2`) on the same DNS.
const PYSPF: &str = r#"
import sys, dns.resolver
r = dns.resolver.Resolver(configure=False)
r.nameservers = ['127.0.0.1']
r.port = int(sys.argv[1])
r.lifetime = 5
dns.resolver.default_resolver = r
import spf
ip, helo = sys.argv[2], sys.argv[3]
for sender in sys.argv[4:]:
    res, _ = spf.check2(i=ip, s=sender, h=helo)
    print(sender + '\t' + res)
"#;

const SEND_MANY: &str = r#"
import sys, smtplib
host, port, src, helo = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
with smtplib.SMTP(host, port, local_hostname=helo, source_address=(src, 0), timeout=120) as s:
    for sender in sys.argv[5:]:
        m = ('From: ' + sender + '\r\nTo: alice@example.org\r\nSubject: spf ' + sender
             + '\r\n\r\nSPF case ' + sender + '\r\n').encode()
        s.sendmail(sender, ['alice@example.org'], m)
"#;

#[test]
fn spf_results_agree_with_pyspf() {
    let mut records = vec![
        Record::txt("inc.spf.test", "v=spf1 ip4:127.0.0.0/24 -all"),
        Record::txt("red.spf.test", "v=spf1 ip4:127.0.0.9 ~all"),
        Record::host("127.0.0.9.ex.spf.test", "127.0.0.2"),
        Record::host("9.0.0.127.rev.spf.test", "127.0.0.2"),
        Record::host("p11.spf.test.dom.spf.test", "127.0.0.2"),
        Record::host("helo.spf.test.helo.spf.test", "127.0.0.2"),
        Record::host("p13.spf.test", "127.0.0.9"),
        Record::mx("p14.spf.test", 10, "mx14.spf.test"),
        Record::host("mx14.spf.test", "127.0.0.9"),
        Record::host("user.p26.spf.test.local.spf.test", "127.0.0.2"),
        Record::txt("explain.spf.test", "not allowed from %{i}"),
        Record::txt("helo.spf.test", "v=spf1 ip4:127.0.0.9 -all"),
    ];
    for i in 1..=11 {
        records.push(Record::host(&format!("n{i}.spf.test"), "127.0.0.200"));
    }
    let policies = spf_policies();
    assert!(policies.len() >= 20);
    for (domain, txts) in &policies {
        for t in txts {
            records.push(Record::txt(domain, t));
        }
    }
    let dns = Dnsmasq::start(&records);
    let env = Env::with_config(&policy_config(&dns, ""));
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", "alice@example.org"], "secret\n");
    let server = env.serve();
    let mx = server.addrs["smtp"];
    let senders: Vec<String> = policies.iter().map(|(d, _)| format!("user@{d}")).collect();
    let mut args = vec![
        mx.ip().to_string(),
        mx.port().to_string(),
        "127.0.0.9".to_string(),
        "helo.spf.test".to_string(),
    ];
    args.extend(senders.iter().cloned());
    system_python(SEND_MANY, &args);
    let mut args = vec![
        dns.port().to_string(),
        "127.0.0.9".to_string(),
        "helo.spf.test".to_string(),
    ];
    args.extend(senders.iter().cloned());
    let reference: BTreeMap<String, String> = system_python(PYSPF, &args)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut table = Vec::new();
    let mut differ = Vec::new();
    for sender in &senders {
        let (_, m) = delivered(&env, "alice@example.org", &format!("spf {sender}"));
        let ar = &auth_results(&m, "mx.test")[0];
        let domain = sender.split_once('@').unwrap().1;
        let ours = ar
            .split(';')
            .map(str::trim)
            .find(|r| r.ends_with(&format!("smtp.mailfrom={domain}")))
            .and_then(|r| r.strip_prefix("spf="))
            .and_then(|r| r.split(' ').next())
            .unwrap_or("(missing)")
            .to_string();
        let theirs = reference.get(sender).cloned().unwrap_or_default();
        table.push(format!("{sender:<24} postern={ours:<10} pyspf={theirs}"));
        if ours != theirs {
            differ.push(sender.clone());
        }
    }
    let table = table.join("\n");
    println!("{table}");
    // The HELO identity of the session, from postern's first message.
    let (_, m) = delivered(&env, "alice@example.org", "spf user@p1.spf.test");
    assert!(
        auth_results(&m, "mx.test")[0].contains("spf=pass smtp.helo=helo.spf.test"),
        "{m}"
    );
    assert!(
        differ.is_empty(),
        "SPF results differ for {differ:?}:\n{table}"
    );

    // RFC 7208 §2.4: for the null sender the HELO identity is the one checked.
    system_python(
        r#"
import sys, smtplib
with smtplib.SMTP(sys.argv[1], int(sys.argv[2]), local_hostname='helo.spf.test',
                  source_address=('127.0.0.9', 0), timeout=60) as s:
    s.sendmail('', ['alice@example.org'], b'From: a@p1.spf.test\r\nSubject: null-sender\r\n\r\nx\r\n')
"#,
        &[mx.ip().to_string(), mx.port().to_string()],
    );
    let (_, m) = delivered(&env, "alice@example.org", "null-sender");
    let ar = &auth_results(&m, "mx.test")[0];
    assert!(ar.contains("spf=pass smtp.helo=helo.spf.test"), "{ar}");
    assert!(!ar.contains("smtp.mailfrom"), "{ar}");
    drop(server);

    // spf_reject_fail: MAIL FROM whose SPF fails is refused with 550 5.7.23.
    let strict = Env::with_config(&policy_config(&dns, "spf_reject_fail = true\n"));
    strict.ok(&["domain", "add", "example.org"], "");
    strict.ok(&["user", "add", "alice@example.org"], "secret\n");
    let server = strict.serve();
    let mx = server.addrs["smtp"];
    let out = system_python(
        r#"
import sys, smtplib
with smtplib.SMTP(sys.argv[1], int(sys.argv[2]), local_hostname='helo.spf.test',
                  source_address=('127.0.0.9', 0), timeout=60) as s:
    s.ehlo()
    for sender in ['user@p2.spf.test', 'user@p1.spf.test']:
        code, text = s.mail(sender)
        print(sender, code, text.decode())
        s.rset()
"#,
        &[mx.ip().to_string(), mx.port().to_string()],
    );
    assert!(out.contains("user@p2.spf.test 550 5.7.23 "), "{out}");
    assert!(out.contains("user@p1.spf.test 250 "), "{out}");
}

/// dkimpy verifies every DKIM-Signature of the message in argv[2], asking dnsmasq (port
/// argv[1]) for the keys; prints one line per signature: `d=<domain> s=<selector> <True|False>`.
const DKIMPY_VERIFY: &str = r#"
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
d = dkim.DKIM(msg)
count = len([h for h in d.headers if h[0].lower() == b'dkim-signature'])
for i in range(count):
    ok = d.verify(idx=i, dnsfunc=txt)
    sig = d.signature_fields
    print('d=%s s=%s %s' % (sig[b'd'].decode(), sig[b's'].decode(), ok))
"#;

#[test]
fn postern_signs_and_dkimpy_and_postern_verify() {
    // A signs for a.test and routes b.test to B; B checks A's mail (127.0.0.1 is not in B's
    // trusted networks) with DNS from dnsmasq publishing A's keys.
    let a = Env::with_config(
        "[outbound]\nidle_timeout_secs = 2\n[outbound.routes]\n\"b.test\" = \"127.0.0.1:1\"\n",
    );
    a.ok(&["domain", "add", "a.test"], "");
    a.ok(&["user", "add", "alice@a.test"], "secret\n");
    a.ok(&["dkim", "generate", "a.test", "--selector", "k1"], "");
    let mut records: Vec<Record> = a
        .ok(&["dkim", "list"], "")
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() >= 3).then(|| Record::txt(f[0].trim_end_matches('.'), f[2]))
        })
        .collect();
    assert_eq!(records.len(), 2, "{records:?}");
    records.push(Record::txt("a.test", "v=spf1 ip4:127.0.0.1 -all"));
    records.push(Record::txt("_dmarc.a.test", "v=DMARC1; p=reject; adkim=s"));
    let dns = Dnsmasq::start(&records);
    let b = Env::with_config(&policy_config(&dns, ""));
    b.ok(&["domain", "add", "b.test"], "");
    b.ok(&["user", "add", "bob@b.test"], "secret\n");
    let sb = b.serve();
    // Point A's route at B now that B's port is known.
    let text = std::fs::read_to_string(&a.config)
        .unwrap()
        .replace("127.0.0.1:1", &sb.addrs["smtp"].to_string());
    std::fs::write(&a.config, text).unwrap();
    let sa = a.serve();
    system_python(
        r#"
import sys, smtplib
from email.message import EmailMessage
m = EmailMessage()
m['From'] = 'Alice <alice@a.test>'
m['To'] = 'bob@b.test'
m['Subject'] = 'signed-by-postern'
m['Message-ID'] = '<signed-by-postern@a.test>'
m.set_content('Signed on the way out.\n' + 'x' * 100 + '\n')
with smtplib.SMTP('127.0.0.1', int(sys.argv[1])) as s:
    s.send_message(m, from_addr='alice@a.test', to_addrs=['bob@b.test'])
"#,
        &[sa.addrs["smtp"].port().to_string()],
    );
    let (folder, m) = delivered(&b, "bob@b.test", "signed-by-postern");
    assert_eq!(folder, "INBOX", "{m}");
    let ar = &auth_results(&m, "mx.test")[0];
    for s in ["k1-ed25519", "k1-rsa"] {
        assert!(
            ar.contains(&format!("dkim=pass header.d=a.test header.s={s} ")),
            "{ar}"
        );
    }
    assert!(ar.contains("spf=pass smtp.mailfrom=a.test"), "{ar}");
    assert!(
        ar.contains("dmarc=pass (p=reject dis=none) header.from=a.test"),
        "{ar}"
    );
    // dkimpy, an independent verifier, agrees on B's stored copy.
    let file = b.dir.path().join("stored.eml");
    std::fs::write(&file, &m).unwrap();
    let out = system_python(
        DKIMPY_VERIFY,
        &[dns.port().to_string(), file.display().to_string()],
    );
    assert_eq!(out.matches(" True").count(), 2, "{out}");
    drop(sa);
}
