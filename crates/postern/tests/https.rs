//! The HTTPS listener (`[listen] https`) against real clients: curl fetches the MTA-STS policy
//! and the autoconfiguration documents, Python parses them (RFC 8461 §3.2 rules, xml.etree,
//! plistlib), OpenSSL computes the TLSA digest `postern dns` must print, and raw Python TLS
//! sockets send bad, concurrent and slow requests.

mod common;

use common::{python, Env, Running};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A certificate for every name the tests ask for, and the configuration that uses it.
struct Site {
    env: Env,
    cert: PathBuf,
}

const LISTEN: &[&str] = &[
    "smtp",
    "submission",
    "submissions",
    "imap",
    "imaps",
    "pop3",
    "pop3s",
    "managesieve",
    "https",
    "http",
];

fn site(extra: &str) -> Site {
    let certs = tempfile::tempdir().unwrap().keep();
    let key = rcgen::KeyPair::generate().unwrap();
    let names = [
        "mx.test",
        "a.test",
        "mta-sts.a.test",
        "autoconfig.a.test",
        "autodiscover.a.test",
        "b.test",
        "mta-sts.b.test",
        "autoconfig.b.test",
    ];
    let cert = rcgen::CertificateParams::new(names.map(String::from).to_vec())
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cert_path, key_path) = (certs.join("cert.pem"), certs.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let listen: String = LISTEN
        .iter()
        .map(|s| format!("{s} = [\"127.0.0.1:0\"]\n"))
        .collect();
    let env = Env::with_config(&format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n[limits]\nmax_connections = 1000\nmax_connections_per_ip = 500\n{extra}\n[listen]\n{listen}",
        cert_path.display(),
        key_path.display(),
    ));
    env.ok(&["domain", "add", "a.test"], "");
    Site {
        env,
        cert: cert_path,
    }
}

fn port(running: &Running, service: &str) -> u16 {
    running.addrs[service].port()
}

/// `curl` over HTTPS to `host` (resolved to the listener), trusting only the test's
/// certificate; returns (status, headers, body).
fn curl(
    cert: &Path,
    https: SocketAddr,
    host: &str,
    path: &str,
    extra: &[&str],
) -> (u16, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30", "--cacert"])
        .arg(cert)
        .arg("--resolve")
        .arg(format!("{host}:{}:127.0.0.1", https.port()))
        .args([
            "-D",
            "/dev/stderr",
            "-o",
            "/dev/stdout",
            "-w",
            "\n%{http_code}",
        ])
        .args(extra)
        .arg(format!("https://{host}:{}{path}", https.port()))
        .output()
        .expect("curl runs");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let (body, code) = stdout.rsplit_once('\n').unwrap();
    let code = code
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("curl failed: {}", String::from_utf8_lossy(&out.stderr)));
    (
        code,
        String::from_utf8_lossy(&out.stderr).to_ascii_lowercase(),
        body.to_string(),
    )
}

/// RFC 8461 §3.2, as a sending MTA reads it: CRLF-terminated `key: value` lines, `version`
/// first and `STSv1`, a mode of three, at least one `mx`, a `max_age` in range.
const PARSE_POLICY: &str = r#"
import sys, re, json
raw = sys.stdin.buffer.read()
assert raw.endswith(b"\r\n"), raw
lines = raw.decode("ascii").split("\r\n")[:-1]
fields = []
for line in lines:
    m = re.fullmatch(r"([A-Za-z0-9_]+):[ \t]*([\x21-\x7e]+)[ \t]*", line)
    assert m, line
    fields.append((m.group(1), m.group(2)))
assert fields[0] == ("version", "STSv1"), fields
d = {}
for k, v in fields:
    d.setdefault(k, []).append(v)
assert d["mode"][0] in ("enforce", "testing", "none"), d
assert 0 <= int(d["max_age"][0]) <= 31557600, d
assert d["mx"], d
print(json.dumps({"mode": d["mode"][0], "mx": d["mx"], "max_age": int(d["max_age"][0])}))
"#;

fn parse_policy(text: &str) -> serde_json::Value {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(PARSE_POLICY)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the policy does not parse: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The `id=` of the `_mta-sts` record in `postern dns` output.
fn dns_id(dns: &str) -> String {
    let line = dns
        .lines()
        .find(|l| l.starts_with("_mta-sts.a.test."))
        .unwrap_or_else(|| panic!("no _mta-sts record: {dns}"));
    let id = line.split("id=").nth(1).unwrap().trim_end_matches('"');
    assert!(
        !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{line}"
    );
    id.to_string()
}

#[test]
fn mta_sts_policy_over_https_and_its_records_in_postern_dns() {
    let site = site("[mta_sts]\nmx = [\"mx.test\", \"*.mx.a.test\"]\n");
    let running = site.env.serve();
    let https = running.addrs["https"];

    let (code, headers, body) = curl(
        &site.cert,
        https,
        "mta-sts.a.test",
        "/.well-known/mta-sts.txt",
        &[],
    );
    assert_eq!(code, 200, "{headers}{body}");
    assert!(headers.contains("content-type: text/plain"), "{headers}");
    let policy = parse_policy(&body);
    assert_eq!(policy["mode"], "testing");
    assert_eq!(policy["mx"], serde_json::json!(["mx.test", "*.mx.a.test"]));
    assert_eq!(policy["max_age"], 604800);
    // Not one of our domains, or not the mta-sts host: not found.
    let (code, _, _) = curl(
        &site.cert,
        https,
        "mta-sts.b.test",
        "/.well-known/mta-sts.txt",
        &[],
    );
    assert_eq!(code, 404);
    let (code, _, _) = curl(&site.cert, https, "a.test", "/.well-known/mta-sts.txt", &[]);
    assert_eq!(code, 404);
    // HEAD: the same status and type, no body.
    let (code, headers, body) = curl(
        &site.cert,
        https,
        "mta-sts.a.test",
        "/.well-known/mta-sts.txt",
        &["-I"],
    );
    assert_eq!(code, 200);
    assert!(headers.contains("content-type: text/plain"), "{headers}");
    assert!(!body.contains("STSv1"), "{body}");

    // postern dns: the policy served, its id, and the TLSA of the certificate's key.
    let dns = site.env.ok(&["dns", "a.test"], "");
    let testing_id = dns_id(&dns);
    for line in body_lines(
        &curl(
            &site.cert,
            https,
            "mta-sts.a.test",
            "/.well-known/mta-sts.txt",
            &[],
        )
        .2,
    ) {
        assert!(
            dns.contains(&format!(";   {line}\n")),
            "{line} not in\n{dns}"
        );
    }
    let digest = openssl_spki_sha256(&site.cert);
    assert_eq!(digest.len(), 64);
    assert!(
        dns.contains(&format!("_25._tcp.mx.test.\tIN TLSA\t3 1 1 {digest}\n")),
        "{digest} not in\n{dns}"
    );
    assert!(dns.contains("publish the next key's TLSA"), "{dns}");

    // A changed mode is a changed policy and a new id; the same policy keeps its id. A reload
    // (SIGHUP) serves the new policy.
    let config = std::fs::read_to_string(&site.env.config).unwrap();
    std::fs::write(
        &site.env.config,
        config.replace("[mta_sts]\n", "[mta_sts]\nmode = \"enforce\"\n"),
    )
    .unwrap();
    let enforce = site.env.ok(&["dns", "a.test"], "");
    assert_ne!(dns_id(&enforce), testing_id);
    assert_eq!(
        dns_id(&site.env.ok(&["dns", "a.test"], "")),
        dns_id(&enforce)
    );
    // SAFETY: kill(2) on the server process this test started.
    assert_eq!(
        unsafe { libc::kill(running.child.id() as i32, libc::SIGHUP) },
        0
    );
    loop {
        let line = running
            .log
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the server logs the reload");
        assert!(!line.contains("reload refused"), "{line}");
        if line.contains("SIGHUP: configuration") {
            break;
        }
    }
    let (_, _, body) = curl(
        &site.cert,
        https,
        "mta-sts.a.test",
        "/.well-known/mta-sts.txt",
        &[],
    );
    assert_eq!(parse_policy(&body)["mode"], "enforce");
    for line in body_lines(&body) {
        assert!(
            enforce.contains(&format!(";   {line}\n")),
            "{line} not in\n{enforce}"
        );
    }
}

fn body_lines(body: &str) -> Vec<String> {
    body.split("\r\n")
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// Thunderbird's file, parsed by xml.etree: the servers and ports of the listeners.
const THUNDERBIRD: &str = r#"
import sys, json, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.buffer.read())
assert root.tag == "clientConfig" and root.get("version") == "1.1", root.tag
p = root.find("emailProvider")
out = {"domain": p.find("domain").text, "servers": []}
for s in list(p.findall("incomingServer")) + list(p.findall("outgoingServer")):
    out["servers"].append([s.get("type"), s.find("hostname").text, int(s.find("port").text), s.find("socketType").text, s.find("username").text])
print(json.dumps(out))
"#;

/// Outlook's Autodiscover response, parsed by xml.etree with its namespaces.
const AUTODISCOVER: &str = r#"
import sys, json, xml.etree.ElementTree as ET
ns = {"a": "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006",
      "o": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"}
root = ET.fromstring(sys.stdin.buffer.read())
acct = root.find("o:Response/o:Account", ns)
assert acct.find("o:AccountType", ns).text == "email"
out = []
for p in acct.findall("o:Protocol", ns):
    out.append([p.find("o:Type", ns).text, p.find("o:Server", ns).text, int(p.find("o:Port", ns).text),
                p.find("o:Encryption", ns).text, p.find("o:LoginName", ns).text])
print(json.dumps(out))
"#;

/// Apple's profile, read by plistlib.
const MOBILECONFIG: &str = r#"
import sys, json, plistlib
p = plistlib.loads(sys.stdin.buffer.read())
assert p["PayloadType"] == "Configuration" and p["PayloadVersion"] == 1
m = p["PayloadContent"][0]
assert m["PayloadType"] == "com.apple.mail.managed"
keys = ["EmailAccountType", "EmailAddress", "IncomingMailServerHostName", "IncomingMailServerPortNumber",
        "IncomingMailServerUseSSL", "IncomingMailServerUsername", "OutgoingMailServerHostName",
        "OutgoingMailServerPortNumber", "OutgoingMailServerUseSSL", "PayloadUUID"]
print(json.dumps({k: m[k] for k in keys}))
"#;

fn run_python(script: &str, input: &str) -> serde_json::Value {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python: {}\ninput:\n{input}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn autoconfiguration_documents_name_the_listeners() {
    let site = site("");
    let running = site.env.serve();
    let https = running.addrs["https"];
    let (imaps, pop3s, submissions) = (
        port(&running, "imaps"),
        port(&running, "pop3s"),
        port(&running, "submissions"),
    );

    // Thunderbird: on autoconfig.<domain>, and in .well-known on the domain itself.
    for (host, path) in [
        (
            "autoconfig.a.test",
            "/mail/config-v1.1.xml?emailaddress=joe%40a.test",
        ),
        ("autoconfig.a.test", "/mail/config-v1.1.xml"),
        (
            "a.test",
            "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=joe@a.test",
        ),
    ] {
        let (code, headers, body) = curl(&site.cert, https, host, path, &[]);
        assert_eq!(code, 200, "{host}{path}: {body}");
        assert!(
            headers.contains("content-type: application/xml"),
            "{headers}"
        );
        let doc = run_python(THUNDERBIRD, &body);
        assert_eq!(doc["domain"], "a.test");
        assert_eq!(
            doc["servers"],
            serde_json::json!([
                ["imap", "mx.test", imaps, "SSL", "%EMAILADDRESS%"],
                ["pop3", "mx.test", pop3s, "SSL", "%EMAILADDRESS%"],
                ["smtp", "mx.test", submissions, "SSL", "%EMAILADDRESS%"],
            ])
        );
    }
    let (code, _, _) = curl(
        &site.cert,
        https,
        "autoconfig.b.test",
        "/mail/config-v1.1.xml",
        &[],
    );
    assert_eq!(code, 404);
    let (code, _, _) = curl(
        &site.cert,
        https,
        "autoconfig.a.test",
        "/mail/config-v1.1.xml?emailaddress=joe@b.test",
        &[],
    );
    assert_eq!(code, 404);

    // Autodiscover (POX), both spellings; the address comes back escaped and intact.
    let request = |address: &str| {
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\">\n<Request><EMailAddress>{address}</EMailAddress>\n<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>"
        )
    };
    for path in [
        "/autodiscover/autodiscover.xml",
        "/Autodiscover/Autodiscover.xml",
    ] {
        let body = request("o&amp;x@a.test");
        let (code, headers, answer) = curl(
            &site.cert,
            https,
            "autodiscover.a.test",
            path,
            &["-H", "Content-Type: text/xml", "--data-binary", &body],
        );
        assert_eq!(code, 200, "{answer}");
        assert!(
            headers.contains("content-type: application/xml"),
            "{headers}"
        );
        assert_eq!(
            run_python(AUTODISCOVER, &answer),
            serde_json::json!([
                ["IMAP", "mx.test", imaps, "SSL", "o&x@a.test"],
                ["POP3", "mx.test", pop3s, "SSL", "o&x@a.test"],
                ["SMTP", "mx.test", submissions, "SSL", "o&x@a.test"],
            ])
        );
    }
    let (code, _, _) = curl(
        &site.cert,
        https,
        "autodiscover.a.test",
        "/autodiscover/autodiscover.xml",
        &["--data-binary", &request("u@b.test")],
    );
    assert_eq!(code, 404);

    // Apple's profile.
    let (code, headers, body) = curl(
        &site.cert,
        https,
        "mx.test",
        "/apple/mobileconfig?email=joe%2Btag%40a.test",
        &[],
    );
    assert_eq!(code, 200, "{body}");
    assert!(
        headers.contains("content-type: application/x-apple-aspen-config"),
        "{headers}"
    );
    let profile = run_python(MOBILECONFIG, &body);
    assert_eq!(profile["EmailAccountType"], "EmailTypeIMAP");
    assert_eq!(profile["EmailAddress"], "joe+tag@a.test");
    assert_eq!(profile["IncomingMailServerHostName"], "mx.test");
    assert_eq!(profile["IncomingMailServerPortNumber"], imaps);
    assert_eq!(profile["IncomingMailServerUseSSL"], true);
    assert_eq!(profile["IncomingMailServerUsername"], "joe+tag@a.test");
    assert_eq!(profile["OutgoingMailServerPortNumber"], submissions);
    assert_eq!(profile["OutgoingMailServerUseSSL"], true);
    let (code, _, _) = curl(
        &site.cert,
        https,
        "mx.test",
        "/apple/mobileconfig?email=joe@b.test",
        &[],
    );
    assert_eq!(code, 404);
    let (code, _, _) = curl(&site.cert, https, "mx.test", "/apple/mobileconfig", &[]);
    assert_eq!(code, 400);
}

/// Without implicit-TLS listeners the documents name the STARTTLS ports.
#[test]
fn autoconfiguration_falls_back_to_starttls_ports() {
    let site = site("");
    let config = std::fs::read_to_string(&site.env.config).unwrap();
    let mut config = config;
    for s in ["submissions", "imaps", "pop3s"] {
        config = config.replace(&format!("{s} = [\"127.0.0.1:0\"]"), &format!("{s} = []"));
    }
    std::fs::write(&site.env.config, config).unwrap();
    let running = site.env.serve();
    let (code, _, body) = curl(
        &site.cert,
        running.addrs["https"],
        "autoconfig.a.test",
        "/mail/config-v1.1.xml",
        &[],
    );
    assert_eq!(code, 200);
    assert_eq!(
        run_python(THUNDERBIRD, &body)["servers"],
        serde_json::json!([
            [
                "imap",
                "mx.test",
                port(&running, "imap"),
                "STARTTLS",
                "%EMAILADDRESS%"
            ],
            [
                "pop3",
                "mx.test",
                port(&running, "pop3"),
                "STARTTLS",
                "%EMAILADDRESS%"
            ],
            [
                "smtp",
                "mx.test",
                port(&running, "submission"),
                "STARTTLS",
                "%EMAILADDRESS%"
            ],
        ])
    );
}

/// Raw requests over Python's TLS: each line of stdin is a request (Python bytes literal);
/// prints the status code of each answer.
const RAW: &str = r#"
import sys, ssl, socket, ast
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
def status(req):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        with ctx.wrap_socket(raw, server_hostname="mta-sts.a.test") as s:
            s.sendall(req)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            head = data.split(b"\r\n\r\n")[0].decode("latin-1")
            return head
for line in sys.stdin.read().splitlines():
    if line.strip():
        head = status(ast.literal_eval(line))
        code = head.split(" ")[1] if head.startswith("HTTP/1.1 ") else "closed"
        allow = [h.split(":", 1)[1].strip() for h in head.split("\r\n") if h.lower().startswith("allow:")]
        print(code + (" allow=" + allow[0] if allow else ""))
"#;

#[test]
fn bad_requests_get_the_right_status() {
    let site = site("");
    let running = site.env.serve();
    let https = running.addrs["https"];
    let h = "Host: mta-sts.a.test\\r\\n";
    let xml_head = "Host: autodiscover.a.test\\r\\nContent-Type: text/xml\\r\\n";
    let big = "x".repeat(20_000);
    let cases: Vec<(String, &str)> = vec![
        (format!("b'GET /.well-known/mta-sts.txt HTTP/1.1\\r\\n{h}\\r\\n'"), "200"),
        (format!("b'DELETE /.well-known/mta-sts.txt HTTP/1.1\\r\\n{h}\\r\\n'"), "405 allow=GET, HEAD"),
        (format!("b'POST /.well-known/mta-sts.txt HTTP/1.1\\r\\n{h}Content-Length: 0\\r\\n\\r\\n'"), "405 allow=GET, HEAD"),
        (format!("b'GET /autodiscover/autodiscover.xml HTTP/1.1\\r\\n{h}\\r\\n'"), "405 allow=POST"),
        (format!("b'GET /index.html HTTP/1.1\\r\\n{h}\\r\\n'"), "404"),
        (format!("b'GET /.well-known/../etc/passwd HTTP/1.1\\r\\n{h}\\r\\n'"), "400"),
        (format!("b'GET /.well-known/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\\r\\n{h}\\r\\n'"), "400"),
        (format!("b'GET /.well-known/mta-sts.txt/.. HTTP/1.1\\r\\n{h}\\r\\n'"), "400"),
        (format!("b'GET /.well-known%2fmta-sts.txt%ff HTTP/1.1\\r\\n{h}\\r\\n'"), "400"),
        (format!("b'GET /caf\\xe9 HTTP/1.1\\r\\n{h}\\r\\n'"), "400"),
        ("b'GET /mail/config-v1.1.xml?emailaddress=%ff%fe@a.test HTTP/1.1\\r\\nHost: autoconfig.a.test\\r\\n\\r\\n'".to_string(), "400"),
        ("b'GET /mail/config-v1.1.xml?emailaddress=not-an-address HTTP/1.1\\r\\nHost: autoconfig.a.test\\r\\n\\r\\n'".to_string(), "400"),
        ("b'GET /.well-known/mta-sts.txt HTTP/1.1\\r\\n\\r\\n'".to_string(), "400"),
        ("b'GET /.well-known/mta-sts.txt HTTP/1.1\\r\\nHost: mta-sts.b.test\\r\\n\\r\\n'".to_string(), "404"),
        (format!("b'GET /.well-known/mta-sts.txt HTTP/1.1\\r\\n{h}X-Big: {big}\\r\\n\\r\\n'"), "431"),
        (format!("b'POST /autodiscover/autodiscover.xml HTTP/1.1\\r\\n{xml_head}Content-Length: 20000\\r\\n\\r\\n{big}'"), "413"),
        (format!("b'POST /autodiscover/autodiscover.xml HTTP/1.1\\r\\n{xml_head}Transfer-Encoding: chunked\\r\\n\\r\\n4e20\\r\\n{big}\\r\\n0\\r\\n\\r\\n'"), "413"),
        (format!("b'POST /autodiscover/autodiscover.xml HTTP/1.1\\r\\n{xml_head}Content-Length: 4\\r\\n\\r\\n\\xff\\xfe<a'"), "400"),
        (format!("b'POST /autodiscover/autodiscover.xml HTTP/1.1\\r\\n{xml_head}Content-Length: 14\\r\\n\\r\\n<Autodiscover>'"), "400"),
        (format!("b'POST /autodiscover/autodiscover.xml HTTP/1.1\\r\\n{xml_head}Content-Length: 29\\r\\n\\r\\n<Autodiscover></Autodiscover>'"), "400"),
        (format!("b'GET /apple/mobileconfig?email=x%40b.test HTTP/1.1\\r\\n{h}\\r\\n'"), "404"),
        ("b'NONSENSE\\r\\n\\r\\n'".to_string(), "400"),
    ];
    let input: String = cases.iter().map(|(req, _)| format!("{req}\n")).collect();
    let out = {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(RAW)
            .arg(https.port().to_string())
            .arg(&site.cert)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(got.len(), cases.len());
    for ((req, want), got) in cases.iter().zip(&got) {
        assert_eq!(got, want, "{}", &req[..req.len().min(120)]);
    }
}

/// 200 clients at once all get the policy; clients that stall in the header, in the body
/// or before sending anything are closed by the timeouts while others are served.
const LOAD: &str = r#"
import sys, ssl, socket, threading, time
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
def connect():
    raw = socket.create_connection(("127.0.0.1", port), timeout=120)
    return ctx.wrap_socket(raw, server_hostname="mta-sts.a.test")
def get(s):
    s.sendall(b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.a.test\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk
# All connected first, then all asking: 200 sessions open at once.
socks = [None] * 200
def open_one(i):
    socks[i] = connect()
threads = [threading.Thread(target=open_one, args=(i,)) for i in range(200)]
[t.start() for t in threads]; [t.join() for t in threads]
answers = [None] * 200
def ask(i):
    answers[i] = get(socks[i])
threads = [threading.Thread(target=ask, args=(i,)) for i in range(200)]
[t.start() for t in threads]; [t.join() for t in threads]
ok = sum(1 for a in answers if a.startswith(b"HTTP/1.1 200 ") and a.endswith(b"max_age: 604800\r\n"))
print("concurrent ok", ok)
# Slow clients: silent after the handshake, a header never finished, a body never finished.
silent = connect()
header = connect(); header.sendall(b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-")
body = connect(); body.sendall(b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: a.test\r\nContent-Length: 100\r\n\r\n<Auto")
# Meanwhile the server answers others.
print("while slow", get(connect()).split(b"\r\n")[0].decode())
def outcome(s):
    try:
        data = s.recv(65536)
        while data and not data.endswith(b"\n"):
            more = s.recv(65536)
            if not more:
                break
            data += more
    except (ConnectionResetError, ssl.SSLError):
        return "closed"
    return data.split(b"\r\n")[0].decode() or "closed"
print("silent", outcome(silent))
print("header", outcome(header))
print("body", outcome(body))
"#;

#[test]
fn survives_200_concurrent_and_slow_clients() {
    let site = site("");
    let running = site.env.serve();
    let out = python(
        LOAD,
        &[
            running.addrs["https"].port().to_string(),
            site.cert.display().to_string(),
        ],
    );
    assert!(out.contains("concurrent ok 200\n"), "{out}");
    assert!(out.contains("while slow HTTP/1.1 200 OK\n"), "{out}");
    assert!(out.contains("silent closed\n"), "{out}");
    assert!(
        out.contains("header closed\n") || out.contains("header HTTP/1.1 408"),
        "{out}"
    );
    assert!(out.contains("body HTTP/1.1 408 Request Timeout\n"), "{out}");
    // Still serving afterwards.
    let (code, _, _) = curl(
        &site.cert,
        running.addrs["https"],
        "mta-sts.a.test",
        "/.well-known/mta-sts.txt",
        &[],
    );
    assert_eq!(code, 200);
}

/// `[listen] http`: every request is redirected to the same host and target over HTTPS
/// (301, or 308 keeping the method); curl follows it to the policy.
#[test]
fn plain_http_redirects_to_https() {
    let site = site("");
    let running = site.env.serve();
    let (http, https) = (running.addrs["http"], running.addrs["https"]);
    let fetch = |extra: &[&str]| {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "30", "--cacert"])
            .arg(&site.cert)
            .arg("--resolve")
            .arg(format!("mta-sts.a.test:{}:127.0.0.1", http.port()))
            .arg("--resolve")
            .arg(format!("mta-sts.a.test:{}:127.0.0.1", https.port()))
            .args(["-w", "\n%{http_code} %{redirect_url}"])
            .args(extra)
            .arg(format!(
                "http://mta-sts.a.test:{}/.well-known/mta-sts.txt?x=1",
                http.port()
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let location = format!(
        "https://mta-sts.a.test:{}/.well-known/mta-sts.txt?x=1",
        https.port()
    );
    let got = fetch(&[]);
    assert!(got.ends_with(&format!("\n301 {location}")), "{got}");
    let got = fetch(&["-X", "POST", "--data", "x"]);
    assert!(got.ends_with(&format!("\n308 {location}")), "{got}");
    let got = fetch(&["-L"]);
    assert!(got.starts_with("version: STSv1\r\n"), "{got}");
    assert!(got.ends_with("\n200 "), "{got}");
}

/// The SHA-256 of a certificate's SubjectPublicKeyInfo, as OpenSSL computes it.
fn openssl_spki_sha256(cert: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl x509 -in '{}' -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum",
            cert.display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let digest = String::from_utf8(out.stdout).unwrap();
    digest.split_whitespace().next().unwrap().to_string()
}

/// Without `[tls]`, the TLSA record is that of the self-signed certificate `serve` generates;
/// before the first start `postern dns` says there is none yet.
#[test]
fn tlsa_of_the_generated_certificate() {
    let env = Env::new();
    env.ok(&["domain", "add", "a.test"], "");
    let before = env.ok(&["dns", "a.test"], "");
    assert!(
        before.contains("; DANE: no TLSA record: no certificate yet"),
        "{before}"
    );
    assert!(!before.contains("IN TLSA"), "{before}");
    drop(env.serve());
    let digest = openssl_spki_sha256(&env.data().join("tls").join("cert.pem"));
    let after = env.ok(&["dns", "a.test"], "");
    assert!(
        after.contains(&format!("_25._tcp.mx.test.\tIN TLSA\t3 1 1 {digest}\n")),
        "{digest} not in\n{after}"
    );
    // No [listen] https: the record says how to serve the policy.
    assert!(after.contains("set [listen] https"), "{after}");
}
