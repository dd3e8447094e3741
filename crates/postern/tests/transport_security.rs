//! Outbound transport security end to end (issue #18): DANE (RFC 7672) against a DNSSEC-signed
//! zone that a validating `unbound` on loopback vouches for with the AD bit, and MTA-STS
//! (RFC 8461) with policies served by Python's `http.server` over TLS. The sender and the
//! receivers are real `postern serve` processes; receivers listen on port 25 of unused
//! 127.0.0.x addresses (MX delivery uses port 25; the tests run as root). Certificates come
//! from the `openssl` command line, TLSA digests too.

mod common;
use common::unbound::{Unbound, Zone};
use common::Env;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const R1: &str = "127.0.0.161";
const R2: &str = "127.0.0.162";
const POLICY_HOST: &str = "127.0.0.171";

fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
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
    out.stdout
}

/// A test CA and certificates it signs, made with the openssl command.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        openssl(
            dir.path(),
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-subj",
                "/CN=postern test CA",
                "-days",
                "30",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign",
            ],
        );
        Pki { dir }
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A certificate for `names`, signed by the CA: (certificate, key).
    fn leaf(&self, tag: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        let d = self.dir.path();
        let key = format!("{tag}.key");
        let csr = format!("{tag}.csr");
        let cert = format!("{tag}.pem");
        let ext = format!("{tag}.ext");
        let sans: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
        std::fs::write(
            d.join(&ext),
            format!(
                "subjectAltName={}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
                sans.join(",")
            ),
        )
        .unwrap();
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &format!("/CN={}", names[0]),
            ],
        );
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &cert,
                "-days",
                "30",
                "-extfile",
                &ext,
            ],
        );
        (d.join(cert), d.join(key))
    }
}

/// RFC 6698 `3 1 1` data of a certificate: SHA-256 of its SubjectPublicKeyInfo, by openssl.
fn tlsa_311(cert: &Path) -> String {
    let dir = cert.parent().unwrap();
    let spki = dir.join("spki.der");
    let pubkey = openssl(
        dir,
        &["x509", "-in", cert.to_str().unwrap(), "-noout", "-pubkey"],
    );
    let pem = dir.join("pub.pem");
    std::fs::write(&pem, pubkey).unwrap();
    openssl(
        dir,
        &[
            "pkey",
            "-pubin",
            "-in",
            pem.to_str().unwrap(),
            "-outform",
            "DER",
            "-out",
            spki.to_str().unwrap(),
        ],
    );
    let out = openssl(dir, &["dgst", "-sha256", "-r", spki.to_str().unwrap()]);
    String::from_utf8(out)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// RFC 6698 `2 0 1` data of a CA certificate: SHA-256 of its DER, by openssl.
fn tlsa_201(cert: &Path) -> String {
    let dir = cert.parent().unwrap();
    let der = dir.join("ta.der");
    openssl(
        dir,
        &[
            "x509",
            "-in",
            cert.to_str().unwrap(),
            "-outform",
            "DER",
            "-out",
            der.to_str().unwrap(),
        ],
    );
    let out = openssl(dir, &["dgst", "-sha256", "-r", der.to_str().unwrap()]);
    String::from_utf8(out)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn zone(name: &str, signed: bool, records: &str) -> Zone {
    Zone {
        name: name.into(),
        records: records.into(),
        signed,
    }
}

/// A receiving postern on port 25 of `ip`, local domains `domains`, with `bob@` each.
fn receiver(
    ip: &str,
    domains: &[&str],
    tls: Option<&(PathBuf, PathBuf)>,
) -> (Env, common::Running) {
    let tls = tls
        .map(|(c, k)| {
            format!(
                "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
                c.display(),
                k.display()
            )
        })
        .unwrap_or_default();
    let others: String = [
        "submission",
        "submissions",
        "imap",
        "imaps",
        "pop3",
        "pop3s",
        "managesieve",
    ]
    .iter()
    .map(|s| format!("{s} = []\n"))
    .collect();
    let env = Env::with_config(&format!("{tls}[listen]\nsmtp = [\"{ip}:25\"]\n{others}"));
    for d in domains {
        env.ok(&["domain", "add", d], "");
        env.ok(&["user", "add", &format!("bob@{d}")], "secret\n");
    }
    let running = env.serve();
    (env, running)
}

/// The sender: a.test, fast retries, the validating resolver, the test CA for MTA-STS.
fn sender(dns_port: u16, ca: &Path) -> Env {
    let env = Env::with_config(&format!(
        "[queue]\nretry_delays_secs = [1]\ndelay_warning_secs = 0\n[dns]\nnameservers = [\"127.0.0.1:{dns_port}\"]\ndnssec = \"trust-ad\"\ntimeout_secs = 3\n[outbound]\nidle_timeout_secs = 1\nextra_ca_file = \"{}\"\n",
        ca.display()
    ));
    env.ok(&["domain", "add", "a.test"], "");
    env.ok(&["user", "add", "alice@a.test"], "secret\n");
    env
}

fn submit(port: u16, to: &str, subject: &str) {
    common::python(
        &format!(
            r#"
import smtplib
from email.message import EmailMessage
m = EmailMessage()
m["From"] = "alice@a.test"
m["To"] = "{to}"
m["Subject"] = "{subject}"
m.set_content("transport security test\n")
with smtplib.SMTP("127.0.0.1", {port}) as s:
    s.send_message(m)
"#
        ),
        &[],
    );
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

fn delivered(env: &Env, account: &str, subject: &str) -> String {
    wait_for(&format!("{subject} for {account}"), 60, || {
        mailbox(env, account).iter().any(|m| m.contains(subject))
    });
    mailbox(env, account)
        .into_iter()
        .find(|m| m.contains(subject))
        .unwrap()
}

/// Waits until `mailq` shows `needle` (a deferral reason), and returns it.
fn deferred(env: &Env, needle: &str) -> String {
    let mut last = String::new();
    wait_for(&format!("mailq showing {needle:?}"), 60, || {
        last = env.ok(&["mailq"], "");
        last.contains(needle)
    });
    last
}

/// Collects the log lines that arrived so far, waiting until one contains all of `needles`.
fn logged(server: &common::Running, lines: &mut Vec<String>, needles: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if lines.iter().any(|l| needles.iter().all(|n| l.contains(n))) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {needles:?}:\n{}",
            lines.join("\n")
        );
        if let Ok(l) = server.log.recv_timeout(Duration::from_millis(200)) {
            lines.push(l);
        }
    }
}

fn skip_without(tools: &[&str]) -> bool {
    let missing: Vec<&&str> = tools.iter().filter(|t| !common::on_path(t)).collect();
    if !missing.is_empty() {
        eprintln!("skipped: {missing:?} not installed (test.sh installs them)");
        return true;
    }
    false
}

/// Python's http.server over TLS on POLICY_HOST:443, one policy per Host header.
struct PolicyServer(Child);

impl Drop for PolicyServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn policy_server(cert: &(PathBuf, PathBuf), policies: &[(&str, &str)]) -> PolicyServer {
    let table: String = policies
        .iter()
        .map(|(host, body)| format!("{host:?}: {body:?},"))
        .collect();
    let script = format!(
        r#"
import http.server, ssl, sys
POLICIES = {{{table}}}
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        host = (self.headers.get("Host") or "").split(":")[0]
        body = POLICIES.get(host)
        if self.path != "/.well-known/mta-sts.txt" or body is None:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("{POLICY_HOST}", 443), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain("{cert}", "{key}")
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("ready", flush=True)
srv.serve_forever()
"#,
        cert = cert.0.display(),
        key = cert.1.display(),
    );
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "ready", "the policy server did not start");
    PolicyServer(child)
}

#[test]
fn dane_and_mta_sts_when_sending() {
    if skip_without(&[
        "unbound",
        "ldns-signzone",
        "ldns-keygen",
        "openssl",
        "python3",
    ]) {
        return;
    }
    let pki = Pki::new();
    let r1_cert = pki.leaf(
        "r1",
        &[
            "mx.dane.test",
            "mxbad.dane.test",
            "mxta.dane.test",
            "mx.plain.test",
            "mx.sts.test",
        ],
    );
    // The receiver sends its chain (leaf, then the CA) so DANE-TA can find the anchor.
    let chain = r1_cert.0.with_extension("chain.pem");
    std::fs::write(
        &chain,
        [
            std::fs::read(&r1_cert.0).unwrap(),
            std::fs::read(pki.ca()).unwrap(),
        ]
        .concat(),
    )
    .unwrap();
    let r1_cert = (chain, r1_cert.1);
    let ta = tlsa_201(&pki.ca());
    let web = pki.leaf(
        "web",
        &[
            "mta-sts.sts.test",
            "mta-sts.stsbad.test",
            "mta-sts.ststest.test",
        ],
    );
    let good = tlsa_311(&r1_cert.0);
    let wrong = "00".repeat(32);
    let dns = Unbound::start(&[
        zone(
            "dane.test",
            true,
            &format!(
                "dane.test. IN MX 10 mx.dane.test.\nmx.dane.test. IN A {R1}\n_25._tcp.mx.dane.test. IN TLSA 3 1 1 {good}\nbad.dane.test. IN MX 10 mxbad.dane.test.\nmxbad.dane.test. IN A {R1}\n_25._tcp.mxbad.dane.test. IN TLSA 3 1 1 {wrong}\nta.dane.test. IN MX 10 mxta.dane.test.\nmxta.dane.test. IN A {R1}\n_25._tcp.mxta.dane.test. IN TLSA 2 0 1 {ta}\n_25._tcp.mxta.dane.test. IN TLSA 1 1 1 {wrong}\npkix.dane.test. IN MX 10 mxpkix.dane.test.\nmxpkix.dane.test. IN A {R2}\n_25._tcp.mxpkix.dane.test. IN TLSA 0 0 1 {wrong}\n"
            ),
        ),
        // The same host and a TLSA record that would fail, but unsigned: never DANE.
        zone(
            "plain.test",
            false,
            &format!("plain.test. IN MX 10 mx.plain.test.\nmx.plain.test. IN A {R1}\n_25._tcp.mx.plain.test. IN TLSA 3 1 1 {wrong}\n"),
        ),
        zone(
            "sts.test",
            false,
            &format!("sts.test. IN MX 10 mx.sts.test.\nmx.sts.test. IN A {R1}\n_mta-sts.sts.test. IN TXT \"v=STSv1; id=one\"\nmta-sts.sts.test. IN A {POLICY_HOST}\n"),
        ),
        zone(
            "stsbad.test",
            false,
            &format!("stsbad.test. IN MX 10 mx.stsbad.test.\nmx.stsbad.test. IN A {R2}\n_mta-sts.stsbad.test. IN TXT \"v=STSv1; id=one\"\nmta-sts.stsbad.test. IN A {POLICY_HOST}\n"),
        ),
        zone(
            "ststest.test",
            false,
            &format!("ststest.test. IN MX 10 mx.ststest.test.\nmx.ststest.test. IN A {R2}\n_mta-sts.ststest.test. IN TXT \"v=STSv1; id=one\"\nmta-sts.ststest.test. IN A {POLICY_HOST}\n"),
        ),
    ]);
    let policy = |mode: &str, mx: &str| {
        format!("version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: 86400\r\n")
    };
    let web_server = policy_server(
        &web,
        &[
            ("mta-sts.sts.test", &policy("enforce", "mx.sts.test")),
            ("mta-sts.stsbad.test", &policy("enforce", "*.stsbad.test")),
            (
                "mta-sts.ststest.test",
                &policy("testing", "mx.ststest.test"),
            ),
        ],
    );
    // R1: a certificate from the test CA; R2: its own self-signed one (not trusted).
    let (r1, _r1_run) = receiver(
        R1,
        &[
            "dane.test",
            "bad.dane.test",
            "ta.dane.test",
            "plain.test",
            "sts.test",
        ],
        Some(&r1_cert),
    );
    let (r2, _r2_run) = receiver(R2, &["stsbad.test", "ststest.test", "pkix.dane.test"], None);
    let a = sender(dns.port(), &pki.ca());
    let sa = a.serve();
    let port = sa.addrs["smtp"].port();
    let mut log = Vec::new();

    // DANE: the certificate matches the secure TLSA record.
    submit(port, "bob@dane.test", "dane-good");
    let m = delivered(&r1, "bob@dane.test", "dane-good");
    assert!(m.contains("with ESMTPS"), "{m}");
    // DANE: a secure TLSA record that matches nothing: deferred, reason in the queue.
    submit(port, "bob@bad.dane.test", "dane-wrong");
    let q = deferred(&a, "tlsa-invalid");
    assert!(q.contains("does not satisfy DANE"), "{q}");
    // DANE-TA: the chain leads to the CA of the 2 0 1 record, the name is the MX host's (the
    // unusable PKIX-EE record beside it is ignored).
    submit(port, "bob@ta.dane.test", "dane-ta");
    delivered(&r1, "bob@ta.dane.test", "dane-ta");
    // Only unusable (PKIX) records: TLS is still mandatory, but unauthenticated (RFC 7672
    // §2.2), so R2's self-signed certificate is accepted.
    submit(port, "bob@pkix.dane.test", "dane-unusable");
    delivered(&r2, "bob@pkix.dane.test", "dane-unusable");
    // Insecure zone: its TLSA record is not used; opportunistic TLS as before.
    submit(port, "bob@plain.test", "insecure-zone");
    let m = delivered(&r1, "bob@plain.test", "insecure-zone");
    assert!(m.contains("with ESMTPS"), "{m}");

    // MTA-STS enforce, a matching MX with a certificate the test CA signed: delivered.
    submit(port, "bob@sts.test", "sts-good");
    delivered(&r1, "bob@sts.test", "sts-good");
    // Enforce, a certificate that does not verify: deferred.
    submit(port, "bob@stsbad.test", "sts-untrusted");
    let q = deferred(&a, "MTA-STS");
    assert!(q.contains("certificate-not-trusted"), "{q}");
    // Testing mode: delivered anyway, the failure reported.
    submit(port, "bob@ststest.test", "sts-testing");
    delivered(&r2, "bob@ststest.test", "sts-testing");
    logged(
        &sa,
        &mut log,
        &[
            "TLS policy failure",
            "ststest.test",
            "certificate-not-trusted",
        ],
    );
    assert!(mailbox(&r1, "bob@bad.dane.test").is_empty());
    assert!(mailbox(&r2, "bob@stsbad.test").is_empty());
    assert!(a.data().join("mta-sts/sts.test.json").is_file());

    // Every outcome is recorded for TLS reporting (RFC 8460 result types).
    for (domain, line) in [
        ("dane.test", "tlsa\tmx.dane.test\tsuccess\t"),
        ("bad.dane.test", "tlsa\tmxbad.dane.test\ttlsa-invalid\t"),
        ("ta.dane.test", "tlsa\tmxta.dane.test\tsuccess\t"),
        ("pkix.dane.test", "tlsa\tmxpkix.dane.test\tsuccess\t"),
        ("plain.test", "no-policy-found\tmx.plain.test\tsuccess\t"),
        ("sts.test", "sts\tmx.sts.test\tsuccess\t"),
        (
            "stsbad.test",
            "sts\tmx.stsbad.test\tcertificate-not-trusted\t",
        ),
        (
            "ststest.test",
            "sts\tmx.ststest.test\tcertificate-not-trusted\t",
        ),
    ] {
        wait_for(&format!("tls-report {domain} listing {line:?}"), 30, || {
            a.ok(&["tls-report", domain], "").contains(line)
        });
    }
    let e = a.fails(&["tls-report", "not a domain"], "");
    assert!(e.contains("not a domain name"), "{e}");

    // The policy cache survives a restart: with the policy server gone, stsbad.test's cached
    // enforce policy still keeps its mail from the untrusted MX.
    drop(sa);
    drop(web_server);
    let sa = a.serve();
    let mut log = Vec::new();
    submit(sa.addrs["smtp"].port(), "bob@stsbad.test", "after-restart");
    logged(
        &sa,
        &mut log,
        &["mx.stsbad.test", "does not satisfy the MTA-STS policy"],
    );
    // sts.test still delivers under its cached policy.
    submit(sa.addrs["smtp"].port(), "bob@sts.test", "sts-cached");
    delivered(&r1, "bob@sts.test", "sts-cached");
    assert!(mailbox(&r2, "bob@stsbad.test").is_empty());

    // RFC 8689 §4.2.2: `TLS-Required: No` waives MTA-STS and DANE for its message: the
    // untrusted MX and the mismatching TLSA record no longer hold it back.
    for (to, subject, receiver) in [
        ("bob@stsbad.test", "sts-waived", &r2),
        ("bob@bad.dane.test", "dane-waived", &r1),
    ] {
        submit_tls_required_no(sa.addrs["smtp"].port(), to, subject);
        delivered(receiver, to, subject);
    }
}

/// As [`submit`], with a `TLS-Required: No` header field (RFC 8689 §5.1).
fn submit_tls_required_no(port: u16, to: &str, subject: &str) {
    common::python(
        &format!(
            r#"
import smtplib
from email.message import EmailMessage
m = EmailMessage()
m["From"] = "alice@a.test"
m["To"] = "{to}"
m["Subject"] = "{subject}"
m["TLS-Required"] = "No"
m.set_content("transport security test\n")
with smtplib.SMTP("127.0.0.1", {port}) as s:
    s.send_message(m)
"#
        ),
        &[],
    );
}
