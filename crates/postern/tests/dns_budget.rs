//! The per-message DNS budget (`[dns] max_lookups_per_message`) end to end: the real `postern
//! serve` asks a dnsmasq on loopback that logs every query it receives (`--log-queries`), so
//! the test counts what postern actually sent for one message, independently of postern's
//! own accounting. Messages come from 127.0.0.3 (outside `[smtp] trusted_networks`) with
//! Python's smtplib; the DKIM signatures are dkimpy's.

mod common;
use common::dnsmasq::{Dnsmasq, Record};
use common::Env;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The budget of this test's server.
const BUDGET: usize = 6;

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

/// Makes an RSA key (openssl) in argv[1]; prints its DKIM TXT record.
const MAKE_KEY: &str = r#"
import subprocess, base64, sys, os
key = os.path.join(sys.argv[1], 'k.pem')
subprocess.run(['openssl', 'genrsa', '-out', key, '2048'], check=True, capture_output=True)
der = subprocess.run(['openssl', 'rsa', '-in', key, '-pubout', '-outform', 'DER'],
                     check=True, capture_output=True).stdout
print('v=DKIM1; k=rsa; p=' + base64.b64encode(der).decode())
"#;

/// Sends one message from 127.0.0.3 (argv: key dir, host, port, dns port, case), then asks
/// dnsmasq for `marker-<case>.test` so the test knows every earlier query is in the log.
/// Cases: `dkim` (12 signatures, d=d1.test .. d12.test) and `spf` (MAIL FROM a domain whose
/// SPF record is a chain of includes).
const SEND: &str = r#"
import sys, smtplib, dkim, os, dns.resolver
d, host, port, dns_port, case = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
key = open(os.path.join(d, 'k.pem'), 'rb').read()
frm = 'boss@d1.test' if case == 'dkim' else 'boss@chain.test'
m = (b'From: Boss <' + frm.encode() + b'>\r\nTo: alice@example.org\r\nSubject: budget-' + case.encode()
     + b'\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\nMessage-ID: <budget-' + case.encode()
     + b'@test>\r\n\r\nHello.\r\n')
if case == 'dkim':
    for i in range(1, 13):
        m = dkim.sign(m, b's', ('d%d.test' % i).encode(), key) + m
with smtplib.SMTP(host, port, local_hostname='h3.test', source_address=('127.0.0.3', 0),
                  timeout=60) as s:
    s.sendmail(frm, ['alice@example.org'], m)
r = dns.resolver.Resolver(configure=False)
r.nameservers = ['127.0.0.1']
r.port = dns_port
try:
    r.resolve('marker-' + case + '.test.', 'TXT')
except Exception:
    pass
print('sent')
"#;

/// The query lines dnsmasq logged, up to (not including) the marker of `case`; waits for it.
fn queries_before(log: &Path, case: &str) -> Vec<String> {
    let marker = format!("marker-{case}.test");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<String> = text
            .lines()
            .filter(|l| l.contains("query["))
            .map(str::to_string)
            .collect();
        if let Some(pos) = lines.iter().position(|l| l.contains(&marker)) {
            return lines[..pos].to_vec();
        }
        assert!(
            Instant::now() < deadline,
            "no marker in the dnsmasq log:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The stored message whose Subject is `subject`, waited for.
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
        assert!(Instant::now() < deadline, "no message {subject:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Our `Authentication-Results` (authserv-id mx.test), unfolded.
fn our_results(text: &str) -> String {
    let head = text.split("\r\n\r\n").next().unwrap();
    head.replace("\r\n\t", " ")
        .replace("\r\n ", " ")
        .lines()
        .find_map(|l| l.strip_prefix("Authentication-Results: mx.test;"))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_message_never_sends_more_queries_than_its_budget() {
    let keys = tempfile::tempdir().unwrap();
    let key = system_python(MAKE_KEY, &[keys.path().display().to_string()]);
    let mut records: Vec<Record> = (1..=12)
        .map(|i| Record::txt(&format!("s._domainkey.d{i}.test"), key.trim()))
        .collect();
    // An SPF chain of eight includes (within RFC 7208's own limit of 10), ending in a pass.
    records.push(Record::txt(
        "chain.test",
        "v=spf1 include:c1.chain.test -all",
    ));
    for i in 1..8 {
        records.push(Record::txt(
            &format!("c{i}.chain.test"),
            &format!("v=spf1 include:c{}.chain.test -all", i + 1),
        ));
    }
    records.push(Record::txt("c8.chain.test", "v=spf1 ip4:127.0.0.3 -all"));
    let log = keys.path().join("queries.log");
    let dns = Dnsmasq::start_logged(&records, &log);
    let env = Env::with_config(&format!(
        "[smtp]\ntrusted_networks = [\"192.0.2.0/24\"]\n\
         [dns]\nnameservers = [\"{}\"]\ntimeout_secs = 2\nattempts = 1\nmax_lookups_per_message = {BUDGET}\n\
         [policy]\ndkim_max_signatures = 20\n",
        dns.nameserver()
    ));
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", "alice@example.org"], "secret\n");
    let server = env.serve();
    let mx = server.addrs["smtp"];
    let send = |case: &str| {
        let out = system_python(
            SEND,
            &[
                keys.path().display().to_string(),
                mx.ip().to_string(),
                mx.port().to_string(),
                dns.port().to_string(),
                case.to_string(),
            ],
        );
        assert_eq!(out.trim(), "sent");
    };

    // Twelve signatures with twelve keys to fetch: the first ones verify, the rest are
    // temperror, and dnsmasq saw no more than the budget.
    send("dkim");
    let sent = queries_before(&log, "dkim");
    assert!(
        sent.len() <= BUDGET,
        "{} queries for one message:\n{}",
        sent.len(),
        sent.join("\n")
    );
    eprintln!(
        "12 DKIM signatures: {} queries reached dnsmasq (budget {BUDGET}, the dnsmasq readiness probe included)",
        sent.len()
    );
    let m = delivered(&env, "alice@example.org", "budget-dkim");
    let ar = our_results(&m);
    assert!(ar.contains("dkim=pass header.d="), "{ar}");
    assert!(ar.contains("dkim=temperror"), "{ar}");
    assert_eq!(
        ar.matches("dkim=pass").count() + ar.matches("dkim=temperror").count(),
        12,
        "{ar}"
    );

    // The SPF chain needs 10 queries (HELO and chain.test, c1..c8): past the budget SPF is
    // temperror, though the chain itself is valid.
    let before = queries_before(&log, "dkim").len() + 1;
    send("spf");
    let sent: Vec<String> = queries_before(&log, "spf").split_off(before);
    assert!(
        sent.len() <= BUDGET,
        "{} queries for one message:\n{}",
        sent.len(),
        sent.join("\n")
    );
    assert!(sent.iter().any(|l| l.contains("chain.test")), "{sent:?}");
    eprintln!(
        "SPF chain of 10 lookups: {} queries reached dnsmasq (budget {BUDGET})",
        sent.len()
    );
    let m = delivered(&env, "alice@example.org", "budget-spf");
    let ar = our_results(&m);
    assert!(
        ar.contains(
            "spf=temperror (DNS lookup budget of this message spent) smtp.mailfrom=chain.test"
        ),
        "{ar}"
    );

    // The log says why.
    let mut said = false;
    while let Ok(line) = server.log.recv_timeout(Duration::from_secs(5)) {
        if line.contains("DNS lookup budget of 6 per message ran out") {
            said = true;
            break;
        }
    }
    assert!(said, "no log line about the budget");
}

/// `dkim_max_signatures`: signatures past it are `policy`, with no key lookup.
#[test]
fn signatures_past_the_cap_are_policy() {
    let keys = tempfile::tempdir().unwrap();
    let key = system_python(MAKE_KEY, &[keys.path().display().to_string()]);
    let records: Vec<Record> = (1..=12)
        .map(|i| Record::txt(&format!("s._domainkey.d{i}.test"), key.trim()))
        .collect();
    let log = keys.path().join("queries.log");
    let dns = Dnsmasq::start_logged(&records, &log);
    let env = Env::with_config(&format!(
        "[smtp]\ntrusted_networks = [\"192.0.2.0/24\"]\n\
         [dns]\nnameservers = [\"{}\"]\ntimeout_secs = 2\nattempts = 1\n\
         [policy]\ndkim_max_signatures = 3\n",
        dns.nameserver()
    ));
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", "alice@example.org"], "secret\n");
    let server = env.serve();
    let mx = server.addrs["smtp"];
    let out = system_python(
        SEND,
        &[
            keys.path().display().to_string(),
            mx.ip().to_string(),
            mx.port().to_string(),
            dns.port().to_string(),
            "dkim".to_string(),
        ],
    );
    assert_eq!(out.trim(), "sent");
    let sent = queries_before(&log, "dkim");
    let m = delivered(&env, "alice@example.org", "budget-dkim");
    let ar = our_results(&m);
    assert_eq!(ar.matches("dkim=pass").count(), 3, "{ar}");
    // RFC 8601 §2.7.1 "policy": the next three named, the other six summed up.
    assert_eq!(
        ar.matches("dkim=policy (more than 3 signatures, not verified) header.d=")
            .count(),
        3,
        "{ar}"
    );
    assert!(
        ar.contains("dkim=policy (6 further signatures, not verified)"),
        "{ar}"
    );
    // Only the three verified signatures' keys were asked for (dnsmasq's records have TTL 0,
    // so a key can be asked twice: once to verify, once for its size).
    let keys_asked: std::collections::BTreeSet<&str> = sent
        .iter()
        .filter_map(|l| l.split_whitespace().find(|w| w.contains("._domainkey.")))
        .collect();
    assert_eq!(keys_asked.len(), 3, "{sent:?}");
}

/// The control: with the default budget (50) the same twelve-signature message makes postern
/// ask for every key, so the bound above is the budget's doing.
#[test]
fn with_the_default_budget_every_signature_is_verified() {
    let keys = tempfile::tempdir().unwrap();
    let key = system_python(MAKE_KEY, &[keys.path().display().to_string()]);
    let records: Vec<Record> = (1..=12)
        .map(|i| Record::txt(&format!("s._domainkey.d{i}.test"), key.trim()))
        .collect();
    let log = keys.path().join("queries.log");
    let dns = Dnsmasq::start_logged(&records, &log);
    let env = Env::with_config(&format!(
        "[smtp]\ntrusted_networks = [\"192.0.2.0/24\"]\n\
         [dns]\nnameservers = [\"{}\"]\ntimeout_secs = 2\nattempts = 1\n\
         [policy]\ndkim_max_signatures = 20\n",
        dns.nameserver()
    ));
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", "alice@example.org"], "secret\n");
    let server = env.serve();
    let mx = server.addrs["smtp"];
    let out = system_python(
        SEND,
        &[
            keys.path().display().to_string(),
            mx.ip().to_string(),
            mx.port().to_string(),
            dns.port().to_string(),
            "dkim".to_string(),
        ],
    );
    assert_eq!(out.trim(), "sent");
    let sent = queries_before(&log, "dkim");
    eprintln!(
        "12 DKIM signatures, default budget: {} queries reached dnsmasq",
        sent.len()
    );
    assert!(sent.len() > BUDGET, "{sent:?}");
    let ar = our_results(&delivered(&env, "alice@example.org", "budget-dkim"));
    assert_eq!(ar.matches("dkim=pass").count(), 12, "{ar}");
}
