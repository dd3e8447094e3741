//! TLS-RPT daily reports end to end (RFC 8460, issue #18): a sender postern delivers under an
//! MTA-STS `testing` policy to a receiver whose certificate does not verify, so a
//! `certificate-not-trusted` failure is recorded; `postern tls-report D --json` prints the
//! report, checked by Python's `json` against the RFC 8460 §4.4 field list; `--send` mails it
//! (received by a second postern, opened with Python's `email` and `gzip`) and POSTs it to a
//! Python HTTPS server trusting the test CA (§5.4). The report mail goes to a domain whose
//! MTA-STS policy is `enforce` and whose MX certificate does not verify: it is delivered all the
//! same (§5.3), while ordinary mail there waits (and `postern queue show` says why). DNS is an `unbound` on loopback; the receiver
//! listens on port 25 of 127.0.0.181 (the tests run as root); certificates come from `openssl`.

mod common;
use common::unbound::{Unbound, Zone};
use common::Env;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RECEIVER: &str = "127.0.0.181";
const WEB: &str = "127.0.0.182";

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

/// A test CA (ca.pem) and one server certificate it signs for `names`: (dir, cert, key).
fn pki(names: &[&str]) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(
        d,
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
    let sans: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
    std::fs::write(
        d.join("web.ext"),
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
            "web.key",
            "-out",
            "web.csr",
            "-subj",
            "/CN=web",
        ],
    );
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "web.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "web.pem",
            "-days",
            "30",
            "-extfile",
            "web.ext",
        ],
    );
    let (cert, key) = (d.join("web.pem"), d.join("web.key"));
    (dir, cert, key)
}

/// Python's http.server over TLS on WEB:443: MTA-STS policies by Host on GET, and POSTs to
/// `/tlsrpt` saved in `out` (body.gz and content-type).
struct WebServer(Child);

impl Drop for WebServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn web_server(cert: &Path, key: &Path, policies: &[(&str, String)], out: &Path) -> WebServer {
    let table: String = policies
        .iter()
        .map(|(host, body)| format!("{host:?}: {body:?},"))
        .collect();
    let script = format!(
        r#"
import http.server, ssl, os
POLICIES = {{{table}}}
OUT = "{out}"
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
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        if self.path != "/tlsrpt":
            self.send_error(404)
            return
        with open(os.path.join(OUT, "content-type"), "w") as f:
            f.write(self.headers.get("Content-Type") or "")
        with open(os.path.join(OUT, "body.tmp"), "wb") as f:
            f.write(body)
        os.rename(os.path.join(OUT, "body.tmp"), os.path.join(OUT, "body.gz"))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("{WEB}", 443), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain("{cert}", "{key}")
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("ready", flush=True)
srv.serve_forever()
"#,
        out = out.display(),
        cert = cert.display(),
        key = key.display(),
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
    assert_eq!(line.trim(), "ready", "the web server did not start");
    WebServer(child)
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn mailbox(env: &Env, account: &str) -> Vec<PathBuf> {
    let root = env.maildir(account);
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(dir) = std::fs::read_dir(root.join(sub)) {
            out.extend(dir.flatten().map(|e| e.path()));
        }
    }
    out
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
m.set_content("TLS report test\n")
with smtplib.SMTP("127.0.0.1", {port}) as s:
    s.send_message(m)
"#
        ),
        &[],
    );
}

/// Python: checks a report (JSON text in argv[1]) against RFC 8460 §4.4 and prints a summary.
const CHECK_REPORT: &str = r#"
import json, re, sys
r = json.loads(sys.argv[1])
need = {"organization-name", "date-range", "contact-info", "report-id", "policies"}
assert need <= set(r), sorted(r)
assert set(r["date-range"]) == {"start-datetime", "end-datetime"}, r["date-range"]
for k in ("start-datetime", "end-datetime"):
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["date-range"][k]), r["date-range"]
allowed = {"result-type", "sending-mta-ip", "receiving-mx-hostname", "receiving-mx-helo",
           "receiving-ip", "failed-session-count", "additional-information", "failure-reason-code"}
types = {"starttls-not-supported", "certificate-host-mismatch", "certificate-expired",
         "certificate-not-trusted", "validation-failure", "tlsa-invalid", "dnssec-invalid",
         "dane-required", "sts-policy-fetch-error", "sts-policy-invalid", "sts-webpki-invalid"}
for p in r["policies"]:
    assert set(p) <= {"policy", "summary", "failure-details"}, sorted(p)
    pol = p["policy"]
    assert pol["policy-type"] in ("tlsa", "sts", "no-policy-found"), pol
    assert set(pol) <= {"policy-type", "policy-string", "policy-domain", "mx-host"}, pol
    assert all(isinstance(s, str) for s in pol.get("policy-string", [])), pol
    s = p["summary"]
    assert set(s) == {"total-successful-session-count", "total-failure-session-count"}, s
    assert all(isinstance(v, int) and v >= 0 for v in s.values()), s
    fails = 0
    for f in p.get("failure-details", []):
        assert set(f) <= allowed, sorted(f)
        assert f["result-type"] in types, f
        assert isinstance(f["failed-session-count"], int), f
        fails += f["failed-session-count"]
    assert fails == s["total-failure-session-count"], (fails, s)
p = r["policies"][0]
f = p["failure-details"][0]
print(r["organization-name"], r["contact-info"], p["policy"]["policy-type"],
      p["policy"]["policy-domain"], ",".join(p["policy"]["mx-host"]),
      "|".join(p["policy"]["policy-string"]), f["result-type"], f["receiving-ip"],
      f["receiving-mx-hostname"], f["failed-session-count"], f["sending-mta-ip"])
"#;

#[test]
fn tls_reports_are_built_mailed_and_posted() {
    let missing: Vec<&str> = ["unbound", "ldns-signzone", "openssl", "python3"]
        .into_iter()
        .filter(|t| !common::on_path(t))
        .collect();
    if !missing.is_empty() {
        eprintln!("skipped: {missing:?} not installed (test.sh installs them)");
        return;
    }
    let (pki_dir, web_cert, web_key) = pki(&[
        "mta-sts.ststest.test",
        "mta-sts.rua.test",
        "reports.rua.test",
    ]);
    let dns = Unbound::start(&[
        Zone {
            name: "ststest.test".into(),
            records: format!(
                "ststest.test. IN MX 10 mx.ststest.test.\nmx.ststest.test. IN A {RECEIVER}\n_mta-sts.ststest.test. IN TXT \"v=STSv1; id=one\"\nmta-sts.ststest.test. IN A {WEB}\n_smtp._tls.ststest.test. IN TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@rua.test,https://reports.rua.test/tlsrpt\"\n"
            ),
            signed: false,
        },
        Zone {
            name: "rua.test".into(),
            records: format!(
                "rua.test. IN MX 10 mx.rua.test.\nmx.rua.test. IN A {RECEIVER}\n_mta-sts.rua.test. IN TXT \"v=STSv1; id=one\"\nmta-sts.rua.test. IN A {WEB}\nreports.rua.test. IN A {WEB}\n"
            ),
            signed: false,
        },
    ]);
    let policy = |mode: &str, mx: &str| {
        format!("version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: 86400\r\n")
    };
    let posted = tempfile::tempdir().unwrap();
    let _web = web_server(
        &web_cert,
        &web_key,
        &[
            ("mta-sts.ststest.test", policy("testing", "mx.ststest.test")),
            ("mta-sts.rua.test", policy("enforce", "mx.rua.test")),
        ],
        posted.path(),
    );
    // The receiver: no [tls] section, so its own self-signed certificate (not trusted).
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
    let r = Env::with_config(&format!("[listen]\nsmtp = [\"{RECEIVER}:25\"]\n{others}"));
    for (d, u) in [("ststest.test", "bob"), ("rua.test", "tlsrpt")] {
        r.ok(&["domain", "add", d], "");
        r.ok(&["user", "add", &format!("{u}@{d}")], "secret\n");
    }
    let _r_run = r.serve();
    let a = Env::with_config(&format!(
        "[queue]\nretry_delays_secs = [1]\ndelay_warning_secs = 0\n[dns]\nnameservers = [\"127.0.0.1:{}\"]\ntimeout_secs = 3\n[outbound]\nidle_timeout_secs = 1\nextra_ca_file = \"{}\"\ntls_report_org = \"Postern Test Org\"\ntls_report_from = \"tls-reports@a.test\"\n",
        dns.port(),
        pki_dir.path().join("ca.pem").display()
    ));
    a.ok(&["domain", "add", "a.test"], "");
    a.ok(&["user", "add", "alice@a.test"], "secret\n");
    let sa = a.serve();
    let port = sa.addrs["smtp"].port();

    // Testing mode: delivered, the untrusted certificate recorded.
    submit(port, "bob@ststest.test", "sts-testing");
    wait_for("delivery to bob@ststest.test", 60, || {
        !mailbox(&r, "bob@ststest.test").is_empty()
    });
    wait_for("the failure in tlsrpt.db", 30, || {
        a.ok(&["tls-report", "ststest.test"], "")
            .contains("certificate-not-trusted")
    });
    // Ordinary mail to rua.test (enforce, untrusted certificate) waits.
    submit(port, "bob@rua.test", "enforced");
    wait_for("the enforce deferral", 60, || {
        a.ok(&["mailq"], "").contains("MTA-STS")
    });
    // queue show takes the last attempt apart: host, the TLS policy that failed, the reason.
    let q = a.ok(&["mailq"], "");
    let id = q
        .lines()
        .find(|l| l.starts_with(|c: char| c.is_ascii_hexdigit()))
        .and_then(|l| l.split_whitespace().next())
        .map(|w| w.trim_end_matches(['*', '!']).to_string())
        .unwrap_or_else(|| panic!("no queue id in {q}"));
    let shown = a.ok(&["queue", "show", &id], "");
    assert!(
        shown.contains(&format!("last host: mx.rua.test [{RECEIVER}]")),
        "{shown}"
    );
    assert!(
        shown.contains("TLS policy failed: MTA-STS (RFC 8461): certificate-not-trusted"),
        "{shown}"
    );
    assert!(
        shown.contains("reason: the server's certificate does not chain to a trusted CA"),
        "{shown}"
    );

    let today = String::from_utf8(
        Command::new("date")
            .args(["-u", "+%F"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    let json = a.ok(
        &["tls-report", "ststest.test", "--json", "--date", &today],
        "",
    );
    let summary = common::python(CHECK_REPORT, std::slice::from_ref(&json));
    assert_eq!(
        summary.trim(),
        format!(
            "Postern Test Org tls-reports@a.test sts ststest.test mx.ststest.test version: STSv1|mode: testing|mx: mx.ststest.test|max_age: 86400 certificate-not-trusted {RECEIVER} mx.ststest.test 1 127.0.0.1"
        ),
        "{json}"
    );
    // Bad input: a clear error.
    let e = a.fails(
        &[
            "tls-report",
            "ststest.test",
            "--json",
            "--date",
            "2026-02-30",
        ],
        "",
    );
    assert!(e.contains("is not a date"), "{e}");
    let e = a.fails(
        &["tls-report", "nothing.test", "--json", "--date", &today],
        "",
    );
    assert!(e.contains("no TLS outcomes recorded"), "{e}");

    // --send: mailed to the mailto: rua through the queue, POSTed to the https: one.
    let sent = a.ok(
        &["tls-report", "ststest.test", "--send", "--date", &today],
        "",
    );
    assert!(
        sent.contains("queued") && sent.contains("for mailto:tlsrpt@rua.test"),
        "{sent}"
    );
    assert!(
        sent.contains("posted to https://reports.rua.test/tlsrpt"),
        "{sent}"
    );
    assert_eq!(
        std::fs::read_to_string(posted.path().join("content-type")).unwrap(),
        "application/tlsrpt+gzip"
    );
    let body = posted.path().join("body.gz");
    let out = common::python(
        &format!(
            "import gzip\nprint(gzip.open({:?}).read().decode())",
            body.display().to_string()
        ),
        &[],
    );
    let summary = common::python(CHECK_REPORT, &[out.trim().to_string()]);
    assert!(summary.contains("certificate-not-trusted"), "{summary}");
    // Sent once per day and domain.
    let again = a.ok(
        &["tls-report", "ststest.test", "--send", "--date", &today],
        "",
    );
    assert!(again.contains("sent already"), "{again}");

    // The report mail arrives although rua.test enforces MTA-STS with an untrusted MX
    // certificate (RFC 8460 §5.3), while the ordinary message to bob@rua.test still waits.
    wait_for("the report mail", 60, || {
        !mailbox(&r, "tlsrpt@rua.test").is_empty()
    });
    let file = mailbox(&r, "tlsrpt@rua.test").remove(0);
    let parsed = common::python(
        r#"
import email, gzip, json, re, sys
from email import policy
m = email.message_from_bytes(open(sys.argv[1], "rb").read(), policy=policy.default)
assert m["TLS-Report-Domain"] == "ststest.test", m["TLS-Report-Domain"]
assert m["TLS-Report-Submitter"], m
assert re.fullmatch(r"Report Domain: ststest\.test Submitter: \S+ Report-ID: <\S+>", m["Subject"]), m["Subject"]
assert m.get_content_type() == "multipart/report", m.get_content_type()
assert m.get_param("report-type") == "tlsrpt", m.get_param("report-type")
parts = [p for p in m.iter_attachments()]
gz = [p for p in parts if p.get_content_type() == "application/tlsrpt+gzip"]
assert len(gz) == 1, [p.get_content_type() for p in parts]
name = gz[0].get_filename()
assert re.fullmatch(r"[^!]+!ststest\.test!\d+!\d+![0-9a-f]+\.json\.gz", name), name
print(gzip.decompress(gz[0].get_content()).decode())
"#,
        &[file.display().to_string()],
    );
    let summary = common::python(CHECK_REPORT, &[parsed.trim().to_string()]);
    assert!(summary.contains("certificate-not-trusted"), "{summary}");
    assert!(mailbox(&r, "bob@rua.test").is_empty());

    // Our own domains are never reported.
    wait_for("the report delivery's outcome in tlsrpt.db", 30, || {
        a.ok(&["tls-report", "rua.test"], "")
            .contains("sts\tmx.rua.test")
    });
    a.ok(&["domain", "add", "rua.test"], "");
    let local = a.ok(&["tls-report", "rua.test", "--send", "--date", &today], "");
    assert!(local.contains("a local domain, not reported"), "{local}");
    drop(sa);
}
