//! DMARC aggregate reports (RFC 7489 §7.2) end to end, between two real `postern serve`
//! instances and dnsmasq on loopback: instance A (MX for a.test, its `[dns]` at dnsmasq)
//! evaluates mail from untrusted loopback clients (Python's smtplib, DKIM signatures by
//! dkimpy), `postern dmarc send-reports` queues the reports, A's queue delivers them by static
//! route to instance B, which owns the policy domains, stores the reports and summarises them.
//! The XML is validated against the RFC 7489 Appendix C schema with xmllint and read back
//! with Python's gzip, email and xml.etree; a report zipped by Python's zipfile is imported.

mod common;
use common::dnsmasq::{Dnsmasq, Record};
use common::Env;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Debian's python3 (the one with python3-dkim).
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

/// An RSA key made with openssl: prints the DKIM TXT record.
const MAKE_KEY: &str = r#"
import subprocess, base64, sys, os
key = os.path.join(sys.argv[1], 'sender.pem')
subprocess.run(['openssl', 'genrsa', '-out', key, '2048'], check=True, capture_output=True)
der = subprocess.run(['openssl', 'rsa', '-in', key, '-pubout', '-outform', 'DER'],
                     check=True, capture_output=True).stdout
print('v=DKIM1; k=rsa; p=' + base64.b64encode(der).decode())
"#;

/// The mail A evaluates: two messages of sender.test from its SPF-listed address, signed by
/// dkimpy; one from an address outside its SPF, unsigned (a forgery); one each of unauth.test
/// and inside.test.
const SEND: &str = r#"
import sys, smtplib, dkim, os
d, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
key = open(os.path.join(d, 'sender.pem'), 'rb').read()
def msg(frm, subject):
    s = subject.encode()
    return (b'From: <' + frm.encode() + b'>\r\nTo: alice@a.test\r\nSubject: ' + s
            + b'\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\nMessage-ID: <' + s + b'@test>\r\n\r\nHello.\r\n')
def send(src, helo, mailfrom, m):
    with smtplib.SMTP(host, port, local_hostname=helo, source_address=(src, 0), timeout=60) as s:
        s.sendmail(mailfrom, ['alice@a.test'], m)
for i in range(2):
    m = msg('x@sender.test', 'signed-%d' % i)
    send('127.0.0.5', 'out.sender.test', 'bounce@sender.test',
         dkim.sign(m, b's1', b'sender.test', key, canonicalize=(b'relaxed', b'relaxed')) + m)
# A bounce (null sender): SPF is of the HELO name (RFC 7208 §2.3), scope helo in the report.
m = msg('x@sender.test', 'bounce')
send('127.0.0.5', 'out.sender.test', '',
     dkim.sign(m, b's1', b'sender.test', key, canonicalize=(b'relaxed', b'relaxed')) + m)
send('127.0.0.9', 'forger.test', 'x@sender.test', msg('x@sender.test', 'forged'))
send('127.0.0.6', 'h6.test', 'y@unauth.test', msg('y@unauth.test', 'unauth'))
send('127.0.0.6', 'h6.test', 'z@inside.test', msg('z@inside.test', 'inside'))
print('sent')
"#;

/// Reads the report message B received: the gzip attachment, its name, and the XML's fields.
const READ_REPORT: &str = r#"
import sys, email, gzip, xml.etree.ElementTree as ET
m = email.message_from_bytes(open(sys.argv[1], 'rb').read())
print('subject\t' + m['Subject'])
for part in m.walk():
    if part.get_content_type() == 'application/gzip':
        print('filename\t' + part.get_filename())
        data = gzip.decompress(part.get_payload(decode=True))
        open(sys.argv[2], 'wb').write(data)
        root = ET.fromstring(data)
        print('root\t' + root.tag)
        print('org\t' + root.findtext('report_metadata/org_name'))
        print('domain\t' + root.findtext('policy_published/domain'))
        print('p\t' + root.findtext('policy_published/p'))
        for rec in root.findall('record'):
            row = rec.find('row')
            dk = ','.join(d.findtext('domain') + '/' + (d.findtext('selector') or '') + '=' + d.findtext('result')
                          for d in rec.findall('auth_results/dkim'))
            sp = ','.join(s.findtext('domain') + '/' + s.findtext('scope') + '=' + s.findtext('result')
                          for s in rec.findall('auth_results/spf'))
            print('row\t%s %s %s %s %s %s' % (row.findtext('source_ip'), row.findtext('count'),
                  row.findtext('policy_evaluated/dkim'), row.findtext('policy_evaluated/spf'), dk, sp))
"#;

/// A report as another reporter would send it, zipped with Python's zipfile.
const MAKE_ZIP: &str = r#"
import sys, zipfile
xml = open(sys.argv[1], 'rb').read()
xml = xml.replace(b'<org_name>mx.test</org_name>', b'<org_name>other.example</org_name>')
with zipfile.ZipFile(sys.argv[2], 'w', zipfile.ZIP_DEFLATED) as z:
    z.writestr('other.example!sender.test!1!2.xml', xml)
"#;

fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every message in an account's INBOX.
fn inbox(env: &Env, account: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(rd) = std::fs::read_dir(env.maildir(account).join(sub)) {
            out.extend(rd.flatten().map(|e| e.path()));
        }
    }
    out
}

fn utc_today() -> String {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The XML of the report for `domain` in `send-reports --dry-run` output.
fn dry_run_xml(out: &str, domain: &str) -> String {
    let start = out
        .find(&format!("report for {domain} to "))
        .unwrap_or_else(|| panic!("no report for {domain}: {out}"));
    let rest = &out[start..];
    let xml_start = rest.find("<?xml").unwrap();
    let xml_end = rest.find("</feedback>").unwrap() + "</feedback>".len();
    rest[xml_start..xml_end].to_string()
}

#[test]
fn reports_are_sent_to_authorized_destinations_received_and_summarised() {
    if !common::on_path("xmllint") {
        panic!("xmllint is missing: install libxml2-utils (test.sh does)");
    }
    let keys = tempfile::tempdir().unwrap();
    let dkim_key = system_python(MAKE_KEY, &[keys.path().display().to_string()]);
    let mut records = vec![
        Record::txt("sender.test", "v=spf1 ip4:127.0.0.5 -all"),
        Record::txt("out.sender.test", "v=spf1 ip4:127.0.0.5 -all"),
        Record::txt("s1._domainkey.sender.test", dkim_key.trim()),
        Record::txt(
            "_dmarc.sender.test",
            "v=DMARC1; p=none; sp=quarantine; rua=mailto:reports@b.test",
        ),
        // RFC 7489 §7.1: b.test accepts reports about sender.test.
        Record::txt("sender.test._report._dmarc.b.test", "v=DMARC1"),
        // unauth.test asks for reports at b.test, which never agreed to take them.
        Record::txt(
            "_dmarc.unauth.test",
            "v=DMARC1; p=none; rua=mailto:reports@b.test",
        ),
        // inside.test's destination is within the domain: no authorization needed.
        Record::txt(
            "_dmarc.inside.test",
            "v=DMARC1; p=quarantine; pct=50; rua=mailto:dmarc@inside.test",
        ),
    ];
    records.sort_by_key(|r| format!("{r:?}"));
    let dns = Dnsmasq::start(&records);
    let dns_conf = format!(
        "[dns]\nnameservers = [\"{}\"]\ntimeout_secs = 2\nattempts = 1\n",
        dns.nameserver()
    );

    // B owns the policy domains and the report mailboxes.
    let b = Env::with_config(&dns_conf);
    for d in ["b.test", "sender.test", "inside.test"] {
        b.ok(&["domain", "add", d], "");
    }
    b.ok(&["user", "add", "reports@b.test"], "secret\n");
    b.ok(&["user", "add", "dmarc@inside.test"], "secret\n");
    let sb = b.serve();
    let b_smtp = sb.addrs["smtp"];

    // A: the MX of a.test; 127.0.0.x clients are outside its trusted networks.
    let a = Env::with_config(&format!(
        "[smtp]\ntrusted_networks = [\"192.0.2.0/24\"]\n{dns_conf}\
         [queue]\nretry_delays_secs = [1]\ndelay_warning_secs = 0\n\
         [outbound]\nidle_timeout_secs = 2\n[outbound.routes]\n\"b.test\" = \"{b_smtp}\"\n\"inside.test\" = \"{b_smtp}\"\n"
    ));
    a.ok(&["domain", "add", "a.test"], "");
    a.ok(&["user", "add", "alice@a.test"], "secret\n");
    // The reports come from postmaster@mx.test: a local domain of A with a DKIM key, so they
    // are signed like A's other mail.
    a.ok(&["domain", "add", "mx.test"], "");
    a.ok(&["dkim", "generate", "mx.test", "--selector", "r1"], "");
    let sa = a.serve();
    let mx = sa.addrs["smtp"];
    let today = utc_today();
    let sent = system_python(
        SEND,
        &[
            keys.path().display().to_string(),
            mx.ip().to_string(),
            mx.port().to_string(),
        ],
    );
    assert_eq!(sent.trim(), "sent");
    // The evaluations reach dmarc.db in batches.
    wait_for("A's DMARC records", 30, || {
        let out = a.ok(&["dmarc", "records", "sender.test"], "");
        let total: u64 = out
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        (total == 4).then_some(())
    });
    wait_for("A's inside.test record", 30, || {
        a.ok(&["dmarc", "records", "inside.test"], "")
            .contains("127.0.0.6")
            .then_some(())
    });

    // Dry run: the XML and the destinations, nothing queued. unauth.test's rua is refused.
    let dry = a.ok(
        &["dmarc", "send-reports", "--dry-run", "--date", &today],
        "",
    );
    assert!(
        dry.contains("report for sender.test to mailto:reports@b.test"),
        "{dry}"
    );
    assert!(
        dry.contains("report for inside.test to mailto:dmarc@inside.test"),
        "{dry}"
    );
    assert!(
        dry.contains("not sent: unauth.test: mailto:reports@b.test skipped:")
            && dry.contains("unauth.test._report._dmarc.b.test publishes no v=DMARC1 record"),
        "{dry}"
    );
    assert!(!dry.contains("report for unauth.test"), "{dry}");
    let work = tempfile::tempdir().unwrap();
    let xsd = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rfc7489-appendix-c.xsd");
    for domain in ["sender.test", "inside.test"] {
        let file = work.path().join(format!("{domain}.xml"));
        std::fs::write(&file, dry_run_xml(&dry, domain)).unwrap();
        let out = Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(&xsd)
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{domain}: the report does not validate against RFC 7489 Appendix C:\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            dry_run_xml(&dry, domain)
        );
    }

    // The real run queues two reports (sender.test to b.test, inside.test to itself).
    let run = a.ok(&["dmarc", "send-reports", "--date", &today], "");
    assert_eq!(
        run.lines().filter(|l| l.starts_with("queued ")).count(),
        2,
        "{run}"
    );
    // A restart or a second run never sends the same day twice.
    let again = a.ok(&["dmarc", "send-reports", "--date", &today], "");
    assert!(!again.lines().any(|l| l.starts_with("queued ")), "{again}");
    assert!(
        again.contains("sender.test: the report of this day was sent already"),
        "{again}"
    );

    // B receives the report, delivered normally, and Python reads it back.
    let report_file = wait_for("the report in reports@b.test's mailbox", 60, || {
        inbox(&b, "reports@b.test").into_iter().next()
    });
    let xml_copy = work.path().join("received.xml");
    let read = system_python(
        READ_REPORT,
        &[
            report_file.display().to_string(),
            xml_copy.display().to_string(),
        ],
    );
    let field = |k: &str| -> Vec<&str> {
        read.lines()
            .filter_map(|l| l.strip_prefix(&format!("{k}\t")))
            .collect()
    };
    let raw = String::from_utf8_lossy(&std::fs::read(&report_file).unwrap()).into_owned();
    let head = raw
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .replace("\r\n\t", " ")
        .replace("\r\n ", " ");
    assert!(
        head.lines()
            .any(|l| l.starts_with("DKIM-Signature:") && l.contains("d=mx.test")),
        "the report is not DKIM-signed by mx.test:\n{head}"
    );
    assert!(
        head.contains("\nFrom: postmaster@mx.test\r")
            || head.contains("\nFrom: postmaster@mx.test\n"),
        "{head}"
    );
    let subject = field("subject")[0];
    assert!(
        subject.starts_with("Report Domain: sender.test Submitter: mx.test Report-ID: <"),
        "{read}"
    );
    let filename = field("filename")[0];
    assert!(
        filename.starts_with("mx.test!sender.test!") && filename.ends_with(".xml.gz"),
        "{read}"
    );
    assert_eq!(field("root"), ["feedback"]);
    assert_eq!(field("org"), ["mx.test"]);
    assert_eq!(field("domain"), ["sender.test"]);
    assert_eq!(field("p"), ["none"]);
    let mut rows = field("row");
    rows.sort();
    assert_eq!(
        rows,
        [
            "127.0.0.5 1 pass pass sender.test/s1=pass out.sender.test/helo=pass",
            "127.0.0.5 2 pass pass sender.test/s1=pass sender.test/mfrom=pass",
            "127.0.0.9 1 fail fail  sender.test/mfrom=fail",
        ],
        "{read}"
    );
    // Nothing about unauth.test went to b.test.
    let inside = wait_for("the inside.test report", 60, || {
        inbox(&b, "dmarc@inside.test").into_iter().next()
    });
    assert!(String::from_utf8_lossy(&std::fs::read(inside).unwrap())
        .contains("Subject: Report Domain: inside.test "));
    for m in inbox(&b, "reports@b.test") {
        let text = String::from_utf8_lossy(&std::fs::read(m).unwrap()).into_owned();
        assert!(!text.contains("unauth.test"), "{text}");
    }
    assert_eq!(inbox(&b, "reports@b.test").len(), 1);

    // B stored it (after delivery): the admin's summary names the forgery.
    let summary = wait_for("B's stored report", 30, || {
        let out = b.run(&["dmarc", "report", "sender.test"], "");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !text.contains("127.0.0.9") {
            // Shown if the wait times out.
            eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
        }
        text.contains("127.0.0.9").then_some(text)
    });
    let first = summary.lines().next().unwrap();
    assert!(
        first.starts_with("sender.test: 4 messages from 2 sources; 1 failed DMARC: 127.0.0.9 (1: not in sender.test's SPF and not DKIM-signed"),
        "{summary}"
    );
    let line5 = summary.lines().find(|l| l.contains("127.0.0.5")).unwrap();
    let cols: Vec<&str> = line5.split_whitespace().collect();
    assert_eq!(
        &cols[..5],
        ["mx.test", "127.0.0.5", "2", "pass", "pass"],
        "{summary}"
    );
    assert!(
        summary
            .lines()
            .any(|l| l.contains("127.0.0.9") && l.ends_with("DMARC FAIL")),
        "{summary}"
    );
    // --resolve adds each source's reverse-DNS name (the resolver names loopback sources
    // "localhost" itself, RFC 6761 §6.3).
    let resolved = b.ok(&["dmarc", "report", "sender.test", "--resolve"], "");
    assert!(resolved.contains("127.0.0.9 (localhost)"), "{resolved}");
    let inside_summary = wait_for("B's inside.test report", 30, || {
        let out = b.run(&["dmarc", "report", "inside.test"], "");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("127.0.0.6").then_some(text)
    });
    assert!(
        inside_summary.contains("1 message from 1 source; 1 failed DMARC"),
        "{inside_summary}"
    );

    // Import: the same report again is stored once; another reporter's, zipped by Python, is added.
    let gz_copy = work.path().join("again.xml");
    std::fs::copy(&xml_copy, &gz_copy).unwrap();
    let out = b.ok(&["dmarc", "import", &gz_copy.display().to_string()], "");
    assert!(out.contains("already stored"), "{out}");
    let zip = work.path().join("other.zip");
    system_python(
        MAKE_ZIP,
        &[xml_copy.display().to_string(), zip.display().to_string()],
    );
    let out = b.ok(&["dmarc", "import", &zip.display().to_string()], "");
    assert!(
        out.contains("stored report") && out.contains("other.example"),
        "{out}"
    );
    let summary = b.ok(&["dmarc", "report", "sender.test"], "");
    assert!(
        summary.starts_with("sender.test: 8 messages from 2 sources; 2 failed DMARC"),
        "{summary}"
    );
    assert!(
        summary.lines().any(|l| l.starts_with("other.example")),
        "{summary}"
    );
    // Not a report, or about someone else's domain: refused in plain words.
    let junk = work.path().join("junk.xml");
    std::fs::write(&junk, "<html><body>hello</body></html>").unwrap();
    let err = b.fails(&["dmarc", "import", &junk.display().to_string()], "");
    assert!(err.contains("not a DMARC aggregate report"), "{err}");
    let err = a.fails(&["dmarc", "import", &xml_copy.display().to_string()], "");
    assert!(
        err.contains("sender.test, which is not a local domain"),
        "{err}"
    );
    let err = a.fails(&["dmarc", "send-reports", "--date", "2026-13-01"], "");
    assert!(err.contains("is not a date (YYYY-MM-DD)"), "{err}");
    drop(sa);
    drop(sb);
}
