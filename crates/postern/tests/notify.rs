//! New-mail hooks end to end: a real `postern serve` with `[notify]`, mail sent with Python's
//! smtplib, and independent receivers — a Python `http.server` webhook that checks the
//! HMAC signature with Python's `hmac` module, a shell script as the command hook, a UDP socket
//! standing for comsat — plus a webhook that accepts and never answers, which must not hold
//! delivery (checked by ordering: the queue is empty and the mail readable over IMAP while the
//! hook's connection is still open).

mod common;
use common::{login_args, python, Env};
use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const ALICE: &str = "alice@example.org";
const PASS: &str = "secret-pw";

/// The webhook receiver: Python's http.server, verifying each request's signature with hmac
/// (over `timestamp + "." + body`, timestamp within 5 minutes) and recording it as a JSON line.
const RECEIVER: &str = r#"
import hashlib, hmac, http.server, json, os, sys, time
port_file, out_file = sys.argv[1], sys.argv[2]
secret = open(sys.argv[3], 'rb').read().rstrip(b'\r\n')
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        ts = self.headers.get('X-Postern-Timestamp', '')
        sig = self.headers.get('X-Postern-Signature', '')
        want = 'sha256=' + hmac.new(secret, ts.encode() + b'.' + body, hashlib.sha256).hexdigest()
        fresh = ts.isdigit() and abs(time.time() - int(ts)) < 300
        valid = hmac.compare_digest(sig, want) and fresh
        record = {
            'valid': valid,
            'path': self.path,
            'content_type': self.headers.get('Content-Type'),
            'delivery': self.headers.get('X-Postern-Delivery'),
            'event': self.headers.get('X-Postern-Event'),
            'body': json.loads(body),
        }
        with open(out_file, 'a') as f:
            f.write(json.dumps(record) + '\n')
        self.send_response(204 if valid else 401)
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(('127.0.0.1', 0), Hook)
if len(sys.argv) > 5:
    import ssl
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[4], sys.argv[5])
    server.socket = context.wrap_socket(server.socket, server_side=True)
with open(port_file + '.tmp', 'w') as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + '.tmp', port_file)
server.serve_forever()
"#;

/// A child process killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts the Python receiver; returns it and its port.
fn receiver(dir: &Path, secret: &Path) -> (Child, u16) {
    receiver_with(dir, secret, &[])
}

/// The receiver, over TLS (Python's ssl, that is OpenSSL) with `tls` = [certificate, key].
fn receiver_with(dir: &Path, secret: &Path, tls: &[&Path]) -> (Child, u16) {
    let port_file = dir.join("port");
    let child = std::process::Command::new("python3")
        .arg("-c")
        .arg(RECEIVER)
        .arg(&port_file)
        .arg(dir.join("requests.jsonl"))
        .arg(secret)
        .args(tls)
        .spawn()
        .expect("python3 runs");
    let child = Child(child);
    wait_for("the webhook receiver's port", 30, || port_file.exists());
    let port = std::fs::read_to_string(&port_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (child, port)
}

fn requests(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("requests.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The login name of the user the tests run as (a real Unix user, for comsat).
fn my_login() -> String {
    // SAFETY: getpwuid returns a pointer into static storage or null; read at once.
    unsafe {
        let pw = libc::getpwuid(libc::geteuid());
        assert!(!pw.is_null(), "the test user has a passwd entry");
        std::ffi::CStr::from_ptr((*pw).pw_name)
            .to_string_lossy()
            .into_owned()
    }
}

fn send(port: u16, to: &[&str], subject: &str) {
    python(
        r#"
import smtplib, sys
port, subject, rcpts = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
msg = ("From: Bob <bob@remote.test>\r\nTo: " + ", ".join(rcpts) + "\r\n"
       "Subject: " + subject + "\r\n\r\nHello.\r\n")
with smtplib.SMTP("127.0.0.1", port) as s:
    s.sendmail("bob@remote.test", rcpts, msg)
"#,
        &[
            vec![port.to_string(), subject.to_string()],
            to.iter().map(|s| s.to_string()).collect(),
        ]
        .concat(),
    );
}

fn spool_empty(env: &Env) -> bool {
    std::fs::read_dir(env.data().join("spool").join("q")).map_or(true, |d| d.count() == 0)
}

fn executable(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn env_file(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn var<'a>(vars: &'a [(String, String)], name: &str) -> &'a str {
    vars.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in {vars:?}"))
}

#[test]
fn webhook_command_and_comsat_get_each_new_message() {
    let hooks = tempfile::tempdir().unwrap();
    let dir = hooks.path();
    let secret = dir.join("webhook.secret");
    std::fs::write(&secret, "correct horse battery staple\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (_receiver, port) = receiver(dir, &secret);
    // The command hook: a script that writes its whole environment, one file per account.
    let script = dir.join("hook.sh");
    executable(
        &script,
        &format!(
            "#!/bin/sh\nenv > \"{d}/env.tmp.$$\"\nmv \"{d}/env.tmp.$$\" \"{d}/env-$POSTERN_ACCOUNT\"\n",
            d = dir.display()
        ),
    );
    let biff = UdpSocket::bind("127.0.0.1:0").unwrap();
    biff.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let login = my_login();
    let local_user = format!("{login}@example.org");

    let env = Env::with_config(&format!(
        r#"
[notify]
comsat = true
comsat_port = {biff}
[[notify.command]]
program = "{script}"
[[notify.webhook]]
url = "http://127.0.0.1:{port}/new-mail?src=postern"
secret_file = "{secret}"
accounts = ["{ALICE}"]
retries = 0
"#,
        biff = biff.local_addr().unwrap().port(),
        script = script.display(),
        secret = secret.display(),
    ));
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", ALICE], &format!("{PASS}\n"));
    env.ok(&["user", "add", &local_user], &format!("{PASS}\n"));
    let server = env.serve();

    // A subject with shell syntax, in an RFC 2047 encoded word and around it: it must reach
    // the hook as text, never be run.
    let pwned = dir.join("pwned");
    let subject_raw = format!(
        "=?UTF-8?Q?Caf=C3=A9?= $(touch {p}); touch {p}; `touch {p}`",
        p = pwned.display()
    );
    let subject = format!(
        "Café $(touch {p}); touch {p}; `touch {p}`",
        p = pwned.display()
    );
    send(
        server.addrs["smtp"].port(),
        &[ALICE, &local_user],
        &subject_raw,
    );

    // The webhook: alice only (its accounts list), signature valid per Python's hmac.
    wait_for("the webhook request", 60, || !requests(dir).is_empty());
    let got = requests(dir);
    assert_eq!(got.len(), 1, "{got:#?}");
    let r = &got[0];
    assert_eq!(r["valid"], true, "signature or timestamp refused: {r}");
    assert_eq!(r["path"], "/new-mail?src=postern");
    assert_eq!(r["content_type"], "application/json");
    assert_eq!(r["event"], "new-mail");
    let body = &r["body"];
    assert_eq!(body["account"], ALICE);
    assert_eq!(body["mailbox"], "INBOX");
    assert_eq!(body["uid"], 1);
    assert_eq!(body["sender"], "bob@remote.test");
    assert_eq!(body["subject"], subject.as_str());
    assert_eq!(body["id"], r["delivery"]);
    let date = body["date"].as_str().unwrap();
    assert!(
        date.len() == 20 && date.ends_with('Z') && date.as_bytes()[10] == b'T',
        "{date}"
    );

    // The command ran for both accounts, directly: the variables are the event, the subject
    // literal, nothing else in the environment but PATH.
    let alice_env = dir.join(format!("env-{ALICE}"));
    wait_for("the command hook for alice", 60, || alice_env.exists());
    let vars = env_file(&alice_env);
    assert_eq!(var(&vars, "POSTERN_ACCOUNT"), ALICE);
    assert_eq!(var(&vars, "POSTERN_MAILBOX"), "INBOX");
    assert_eq!(var(&vars, "POSTERN_SENDER"), "bob@remote.test");
    assert_eq!(var(&vars, "POSTERN_SUBJECT"), subject);
    assert_eq!(var(&vars, "POSTERN_UID"), "1");
    let path = PathBuf::from(var(&vars, "POSTERN_PATH"));
    assert!(
        path.starts_with(env.maildir(ALICE)),
        "{} is not in alice's Maildir",
        path.display()
    );
    let stored = std::fs::read(&path).unwrap();
    assert_eq!(var(&vars, "POSTERN_SIZE"), stored.len().to_string());
    assert_eq!(body["size"], stored.len());
    assert!(String::from_utf8_lossy(&stored).contains("Caf=C3=A9"));
    for (k, _) in &vars {
        assert!(
            k.starts_with("POSTERN_") || ["PATH", "PWD", "SHLVL", "_"].contains(&k.as_str()),
            "unexpected variable {k} in {vars:?}"
        );
    }
    assert!(!pwned.exists(), "the subject was run by a shell");
    let local_env = dir.join(format!("env-{local_user}"));
    wait_for("the command hook for the local user", 60, || {
        local_env.exists()
    });

    // comsat: one datagram, for the account that is a Unix login, naming its new file.
    let mut buf = [0u8; 2048];
    let n = biff.recv(&mut buf).unwrap();
    let datagram = String::from_utf8_lossy(&buf[..n]).into_owned();
    let (who, file) = datagram
        .strip_suffix('\n')
        .and_then(|d| d.split_once("@0:"))
        .unwrap_or_else(|| panic!("not user@0:path: {datagram:?}"));
    assert_eq!(who, login);
    let file = Path::new(file);
    assert!(file.starts_with(env.maildir(&local_user)), "{datagram}");
    assert!(std::fs::read_to_string(file).unwrap().contains("Hello."));
    biff.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    assert!(
        biff.recv(&mut buf).is_err(),
        "a second datagram: alice is no Unix login here"
    );
    drop(server);
}

/// A webhook endpoint that accepts and never answers: the message is delivered (the queue is
/// empty) and readable over IMAP while the hook's connection is still open and unanswered.
#[test]
fn a_hung_webhook_does_not_hold_delivery() {
    let hooks = tempfile::tempdir().unwrap();
    let secret = hooks.path().join("secret");
    std::fs::write(&secret, "k\n").unwrap();
    let hung = TcpListener::bind("127.0.0.1:0").unwrap();
    let env = Env::with_config(&format!(
        "[[notify.webhook]]\nurl = \"http://{}/\"\nsecret_file = \"{}\"\ntimeout_secs = 3600\nretries = 0\n",
        hung.local_addr().unwrap(),
        secret.display()
    ));
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", ALICE], &format!("{PASS}\n"));
    let server = env.serve();
    send(server.addrs["smtp"].port(), &[ALICE], "first");

    // The hook's request arrives (so the message was stored) ...
    hung.set_nonblocking(true).unwrap();
    let mut conn = accept_within(&hung, 60);
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(conn.read(&mut byte).unwrap(), 1, "request cut short");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"POST / HTTP/1.1\r\n"));
    let head = String::from_utf8(head).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    let mut body = vec![0; len];
    conn.read_exact(&mut body).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["subject"], "first");
    // ... and delivery finishes without its answer: the spool empties, and a second message
    // is delivered too, all while this connection waits.
    wait_for("the queue to empty", 60, || spool_empty(&env));
    send(server.addrs["smtp"].port(), &[ALICE], "second");
    let _second = accept_within(&hung, 60);
    wait_for("the queue to empty again", 60, || spool_empty(&env));
    let out = python(
        r#"
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
m.login(sys.argv[3], sys.argv[4])
typ, data = m.select('INBOX')
print('EXISTS', data[0].decode())
typ, data = m.fetch('1:*', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
print(data)
m.logout()
"#,
        &login_args(server.addrs["imap"], ALICE, PASS),
    );
    assert!(out.contains("EXISTS 2"), "{out}");
    assert!(out.contains("first") && out.contains("second"), "{out}");
    // The first hook is still waiting for its answer: no EOF on its connection.
    conn.set_nonblocking(true).unwrap();
    match conn.read(&mut byte) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the hung webhook's connection ended early: {other:?}"),
    }
}

/// The next connection on a non-blocking listener, within `secs`.
fn accept_within(listener: &TcpListener, secs: u64) -> std::net::TcpStream {
    let mut conn = None;
    wait_for("the webhook's connection", secs, || {
        conn = listener.accept().ok().map(|(c, _)| c);
        conn.is_some()
    });
    conn.unwrap()
}

fn wait_for_log(run: &common::Running, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(line) = run.log.recv_timeout(Duration::from_millis(200)) {
            if line.contains(needle) {
                return line;
            }
        }
    }
    panic!("no log line with {needle:?}");
}

/// A webhook the receiver refuses (wrong secret: 401) is logged once at INFO with the reason,
/// not retried; a reload re-reads the secret file and the next message is accepted.
#[test]
fn a_refused_webhook_is_logged_and_a_reload_rereads_the_secret() {
    let hooks = tempfile::tempdir().unwrap();
    let dir = hooks.path();
    let right = dir.join("receiver.secret");
    std::fs::write(&right, "the right secret\n").unwrap();
    let (_receiver, port) = receiver(dir, &right);
    let ours = dir.join("postern.secret");
    std::fs::write(&ours, "a stale secret\n").unwrap();
    let env = Env::with_config(&format!(
        "[[notify.webhook]]\nurl = \"http://127.0.0.1:{port}/\"\nsecret_file = \"{}\"\nretries = 3\n",
        ours.display()
    ));
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", ALICE], &format!("{PASS}\n"));
    let server = env.serve();
    send(server.addrs["smtp"].port(), &[ALICE], "one");
    let line = wait_for_log(&server, "notify: webhook");
    assert!(line.contains("INFO"), "{line}");
    assert!(line.contains("failed: 401"), "{line}");
    assert!(line.contains(ALICE), "{line}");
    let got = requests(dir);
    assert_eq!(got.len(), 1, "a 4xx is not retried: {got:#?}");
    assert_eq!(got[0]["valid"], false);

    std::fs::copy(&right, &ours).unwrap();
    env.ok(&["reload"], "");
    wait_for_log(&server, "reloaded");
    send(server.addrs["smtp"].port(), &[ALICE], "two");
    wait_for("the second request", 60, || requests(dir).len() == 2);
    let got = requests(dir);
    assert_eq!(got[1]["valid"], true, "{got:#?}");
    assert_eq!(got[1]["body"]["subject"], "two");
    assert_eq!(got[1]["body"]["uid"], 2);
}

/// `postern notify test ADDRESS` runs each applicable hook once and reports it; a failing one
/// makes it exit non-zero with the reason.
#[test]
fn notify_test_tries_the_hooks() {
    let hooks = tempfile::tempdir().unwrap();
    let dir = hooks.path();
    let script = dir.join("hook.sh");
    let out = dir.join("env.txt");
    executable(
        &script,
        &format!("#!/bin/sh\nenv > \"{}\"\n", out.display()),
    );
    let secret = dir.join("secret");
    std::fs::write(&secret, "k\n").unwrap();
    // A port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let env = Env::with_config(&format!(
        "[[notify.command]]\nprogram = \"{}\"\n[[notify.webhook]]\nurl = \"http://{closed}/\"\nsecret_file = \"{}\"\nretries = 0\naccounts = [\"@example.net\"]\n",
        script.display(),
        secret.display()
    ));
    let ok = env.ok(&["notify", "test", ALICE, "--subject", "try; $(me)"], "");
    assert_eq!(
        ok.trim(),
        format!("command {}: ok (exit status 0)", script.display())
    );
    let vars = env_file(&out);
    assert_eq!(var(&vars, "POSTERN_SUBJECT"), "try; $(me)");
    assert_eq!(var(&vars, "POSTERN_ACCOUNT"), ALICE);

    let run = env.run(&["notify", "test", "bob@example.net"], "");
    assert!(!run.status.success());
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stdout.contains("command ") && stdout.contains(": ok"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("webhook http://{closed}/: FAILED: ")),
        "{stdout}"
    );
    assert!(stderr.contains("1 of 2 hook(s) failed"), "{stderr}");
}

/// HTTPS to an OpenSSL server (Python's ssl) whose certificate comes from a private CA given
/// as `ca_file`: the request arrives, signed; without the CA the certificate is refused.
#[test]
fn webhook_over_https_with_a_private_ca() {
    let hooks = tempfile::tempdir().unwrap();
    let dir = hooks.path();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "postern test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let (cert, key, ca_file) = (
        dir.join("cert.pem"),
        dir.join("key.pem"),
        dir.join("ca.pem"),
    );
    std::fs::write(&cert, leaf.pem()).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let secret = dir.join("secret");
    std::fs::write(&secret, "tls secret\n").unwrap();
    let (_receiver, port) = receiver_with(dir, &secret, &[&cert, &key]);

    let hook = |ca: &str| {
        Env::with_config(&format!(
            "[[notify.webhook]]\nurl = \"https://localhost:{port}/tls\"\nsecret_file = \"{}\"\nretries = 0\n{ca}",
            secret.display()
        ))
    };
    let env = hook(&format!("ca_file = \"{}\"\n", ca_file.display()));
    let out = env.ok(&["notify", "test", ALICE], "");
    assert!(out.contains("webhook https://localhost:"), "{out}");
    assert!(out.contains(": ok (204"), "{out}");
    let got = requests(dir);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["valid"], true);
    assert_eq!(got[0]["path"], "/tls");
    assert_eq!(got[0]["body"]["subject"], "postern notify test");

    let env = hook("");
    let run = env.run(&["notify", "test", ALICE], "");
    assert!(!run.status.success());
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("FAILED: TLS: "), "{stdout}");
    assert_eq!(requests(dir).len(), 1);
}

/// Sieve's fileinto and keep each store a copy: each is announced with its own mailbox.
#[test]
fn sieve_copies_are_announced_with_their_folder() {
    use postern_store::ScriptStore;
    let hooks = tempfile::tempdir().unwrap();
    let dir = hooks.path();
    let secret = dir.join("secret");
    std::fs::write(&secret, "sieve secret\n").unwrap();
    let (_receiver, port) = receiver(dir, &secret);
    let env = Env::with_config(&format!(
        "[[notify.webhook]]\nurl = \"http://127.0.0.1:{port}/\"\nsecret_file = \"{}\"\n",
        secret.display()
    ));
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", ALICE], &format!("{PASS}\n"));
    let server = env.serve();
    // Put through the store while serving, as ManageSieve does.
    let store: std::sync::Arc<dyn ScriptStore> = std::sync::Arc::new(
        postern_store::maildir::MaildirStore::open(env.data().join("mail"), "mx.test").unwrap(),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        store
            .put_script(
                ALICE,
                "filters",
                r#"require ["fileinto", "mailbox", "copy"];
if header :contains "subject" "rust" { fileinto :copy :create "Lists/rust"; }
"#,
            )
            .await
            .unwrap();
        store.activate_script(ALICE, Some("filters")).await.unwrap();
    });
    send(server.addrs["smtp"].port(), &[ALICE], "rust news");
    wait_for("two webhook requests", 60, || requests(dir).len() == 2);
    let got = requests(dir);
    let mut mailboxes: Vec<String> = got
        .iter()
        .map(|r| {
            assert_eq!(r["valid"], true);
            assert_eq!(r["body"]["subject"], "rust news");
            r["body"]["mailbox"].as_str().unwrap().to_string()
        })
        .collect();
    mailboxes.sort();
    assert_eq!(mailboxes, ["INBOX", "Lists/rust"]);
    // Two copies, two events: each with its own id.
    assert_ne!(got[0]["delivery"], got[1]["delivery"]);
}
