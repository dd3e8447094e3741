//! REQUIRETLS (RFC 8689) end to end: two `postern serve` processes on loopback, a sender with
//! static routes to a receiver (one route with a verified certificate, one opportunistic),
//! messages submitted with Python's smtplib, the bounce read by Python's email parser.

mod common;
use common::Env;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test CA and a certificate it signs for 127.0.0.1 and localhost: (CA, certificate, key).
fn pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=requiretls test CA",
        "-days",
        "30",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    openssl(dir, &ca);
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let mut req = vec!["req"];
    req.extend(ec);
    req.extend([
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(dir, &req);
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "30",
            "-extfile",
            "leaf.ext",
        ],
    );
    (
        dir.join("ca.pem"),
        dir.join("leaf.pem"),
        dir.join("leaf.key"),
    )
}

fn mailbox(env: &Env, account: &str) -> Vec<String> {
    let root = env.maildir(account);
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(dir) = std::fs::read_dir(root.join(sub)) {
            for e in dir.flatten() {
                out.push(String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned());
            }
        }
    }
    out
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn delivered(env: &Env, account: &str, needle: &str) -> String {
    wait_for(&format!("{needle} for {account}"), 60, || {
        mailbox(env, account).iter().any(|m| m.contains(needle))
    });
    mailbox(env, account)
        .into_iter()
        .find(|m| m.contains(needle))
        .unwrap()
}

/// Sends one message with smtplib over STARTTLS (`tls`) or plaintext, with these MAIL options
/// and extra header lines; prints the outcome (`sent` or the refusal's code and text).
fn smtplib(
    port: u16,
    tls: bool,
    to: &str,
    subject: &str,
    options: &[&str],
    headers: &str,
) -> String {
    common::python(
        &format!(
            r#"
import smtplib, sys
msg = "From: alice@a.test\r\nTo: {to}\r\nSubject: {subject}\r\n{headers}\r\nrequiretls test\r\n"
with smtplib.SMTP("127.0.0.1", {port}) as s:
    s.ehlo("client.test")
    if {tls}:
        s.starttls()
        s.ehlo("client.test")
    print("advertised" if s.has_extn("requiretls") else "not advertised")
    try:
        s.sendmail("alice@a.test", ["{to}"], msg, mail_options={options:?})
        print("sent")
    except smtplib.SMTPSenderRefused as e:
        print(e.smtp_code, e.smtp_error.decode())
"#,
            tls = if tls { "True" } else { "False" },
        ),
        &[],
    )
}

#[test]
fn requiretls_end_to_end() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = pki(certs.path());
    let tls = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        cert.display(),
        key.display()
    );
    // The receiver: b.test and c.test, one account each.
    let receiver = Env::with_config(&tls);
    for d in ["b.test", "c.test"] {
        receiver.ok(&["domain", "add", d], "");
        receiver.ok(&["user", "add", &format!("bob@{d}")], "secret\n");
    }
    let r = receiver.serve();
    let rport = r.addrs["smtp"].port();
    // The sender: b.test over a verified required-TLS route (the test CA is the system's
    // roots for it, by SSL_CERT_FILE), c.test over an opportunistic one.
    // d.test: a verified route to a port where nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sender = Env::with_config(&format!(
        "{tls}[queue]\nretry_delays_secs = [1]\ndelay_warning_secs = 0\n[outbound]\nidle_timeout_secs = 1\nrequire_tls = [\"b.test\", \"d.test\"]\nverify_required_tls = true\n[outbound.routes]\n\"b.test\" = \"127.0.0.1:{rport}\"\n\"c.test\" = \"127.0.0.1:{rport}\"\n\"d.test\" = \"127.0.0.1:{closed}\"\n"
    ));
    sender.ok(&["domain", "add", "a.test"], "");
    sender.ok(&["user", "add", "alice@a.test"], "secret\n");
    let s = sender.serve_with_env(&[("SSL_CERT_FILE", ca.to_str().unwrap())]);
    let sport = s.addrs["smtp"].port();

    // RFC 8689 §4.1: not advertised and refused without TLS.
    let out = smtplib(sport, false, "bob@b.test", "plain", &["REQUIRETLS"], "");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "not advertised",
            "530 5.7.10 REQUIRETLS needs a TLS connection (RFC 8689)"
        ],
        "{out}"
    );

    // Verified route, server advertises REQUIRETLS: delivered, the flag passed on and noted
    // in the receiver's Received field.
    let out = smtplib(
        sport,
        true,
        "bob@b.test",
        "verified-route",
        &["REQUIRETLS"],
        "",
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["advertised", "sent"],
        "{out}"
    );
    let m = delivered(&receiver, "bob@b.test", "verified-route");
    assert_eq!(
        m.matches("(REQUIRETLS)").count(),
        2,
        "both hops noted it:\n{m}"
    );

    // Opportunistic route: 5.7.30, bounced at once; `TLS-Required: No` does not lift the
    // parameter (RFC 8689 §4.2.2).
    let out = smtplib(
        sport,
        true,
        "bob@c.test",
        "unverified-route",
        &["REQUIRETLS"],
        "TLS-Required: No\\r\\n",
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["advertised", "sent"],
        "{out}"
    );
    let bounce = delivered(&sender, "alice@a.test", "unverified-route");
    let dsn = python_stdin(
        r#"
import email, sys
from email import policy
m = email.message_from_string(sys.stdin.read(), policy=policy.default)
assert m.get_content_type() == "multipart/report", m.get_content_type()
for part in m.walk():
    if part.get_content_type() == "message/delivery-status":
        for block in part.get_payload():
            if block.get("Final-Recipient"):
                print(block["Final-Recipient"].split(";")[-1].strip(), block["Action"], block["Status"])
"#,
        &bounce,
    );
    assert_eq!(dsn.trim(), "bob@c.test failed 5.7.30", "{bounce}");
    // RFC 8689 §5: the bounce returns the headers only.
    assert!(
        bounce.contains("text/rfc822-headers") && !bounce.contains("message/rfc822"),
        "{bounce}"
    );
    assert!(mailbox(&receiver, "bob@c.test").is_empty());

    // Without REQUIRETLS the same route delivers (opportunistic TLS).
    let out = smtplib(
        sport,
        true,
        "bob@c.test",
        "no-requiretls",
        &[],
        "TLS-Required: No\\r\\n",
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["advertised", "sent"],
        "{out}"
    );
    let m = delivered(&receiver, "bob@c.test", "no-requiretls");
    assert!(!m.contains("(REQUIRETLS)"), "{m}");

    // A verified route whose server is down: the message waits (a connection failure is no
    // TLS downgrade), its REQUIRETLS flag in the queue.
    let out = smtplib(sport, true, "bob@d.test", "down-route", &["REQUIRETLS"], "");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["advertised", "sent"],
        "{out}"
    );
    let mut list = String::new();
    wait_for("the deferral", 60, || {
        list = sender.ok(&["queue", "list"], "");
        list.contains("bob@d.test") && list.contains("4.4.")
    });
    let id = list
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let id = id.trim_end_matches(['*', '!']);
    let show = sender.ok(&["queue", "show", id], "");
    assert!(show.contains("REQUIRETLS: yes"), "{show}");
    drop(s);
    drop(r);
}

fn python_stdin(script: &str, stdin: &str) -> String {
    let out = common::run_command(Command::new("python3").arg("-c").arg(script), stdin);
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
