//! The SMTP client's extensions end to end: a `postern serve` relays through static routes to
//! small SMTP servers written in Python here (independent of postern's server), one with
//! CHUNKING, 8BITMIME and SMTPUTF8, one with none of them. Mail is submitted with Python's
//! smtplib; bounces are read with Python's email parser.

mod common;
use common::Env;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An SMTP server in Python: EHLO lists `keywords`; MAIL, RCPT, DATA and BDAT (RFC 3030) are
/// accepted; every command line and every message as received goes to the log file.
const PEER: &str = r#"
import socket, sys, threading
keywords = [k for k in sys.argv[2].split(",") if k]
log_path = sys.argv[1]
lock = threading.Lock()
def log(kind, data):
    with lock, open(log_path, "ab") as f:
        if kind == "CMD":
            f.write(b"CMD " + data + b"\n")
        else:
            f.write(b"MSG " + str(len(data)).encode() + b"\n" + data + b"\n")
def serve(conn):
    f = conn.makefile("rb")
    def say(line):
        conn.sendall(line.encode() + b"\r\n")
    say("220 peer.test ESMTP python")
    chunks = b""
    while True:
        line = f.readline()
        if not line:
            return
        log("CMD", line.rstrip(b"\r\n"))
        verb = line.split(b" ")[0].strip().upper()
        if verb == b"EHLO":
            lines = ["peer.test"] + keywords
            for i, k in enumerate(lines):
                say(("250 " if i == len(lines) - 1 else "250-") + k)
        elif verb == b"DATA":
            say("354 go ahead")
            body = b""
            while True:
                l = f.readline()
                if l in (b".\r\n", b""):
                    break
                body += l[1:] if l.startswith(b".") else l
            log("MSG", body)
            say("250 2.0.0 queued")
        elif verb == b"BDAT":
            parts = line.split()
            data = f.read(int(parts[1]))
            chunks += data
            if len(parts) > 2 and parts[2].upper() == b"LAST":
                log("MSG", chunks)
                chunks = b""
                say("250 2.0.0 queued")
            else:
                say("250 2.0.0 chunk")
        elif verb == b"QUIT":
            say("221 bye")
            return
        else:
            say("250 2.0.0 ok")
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(8)
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

struct Peer {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Peer {
    fn start(dir: &Path, name: &str, keywords: &str) -> Peer {
        let log = dir.join(format!("{name}.log"));
        std::fs::write(&log, b"").unwrap();
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(PEER)
            .arg(&log)
            .arg(keywords)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the peer prints its port");
        Peer { child, port, log }
    }

    fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap()).into_owned()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
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

/// Submits one message with smtplib: `extra` header lines first, `body` as UTF-8 text,
/// `SMTPUTF8` when asked.
fn submit(port: u16, to: &str, subject: &str, body: &str, extra: &str, smtputf8: bool) {
    common::python(
        &format!(
            r#"
import smtplib
msg = ("{extra}From: alice@a.test\r\nTo: {to}\r\nSubject: {subject}\r\n"
       "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
       "Content-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n").encode()
opts = ["SMTPUTF8", "BODY=8BITMIME"] if {utf8} else ["BODY=8BITMIME"]
with smtplib.SMTP("127.0.0.1", {port}) as s:
    s.sendmail("alice@a.test", ["{to}"], msg, mail_options=opts)
"#,
            utf8 = if smtputf8 { "True" } else { "False" },
        ),
        &[],
    );
}

/// The status of the bounce about `subject` in alice's mailbox, read by Python's email parser.
fn bounce_status(sender: &Env, subject: &str) -> String {
    wait_for(&format!("the bounce of {subject}"), 60, || {
        mailbox(sender, "alice@a.test")
            .iter()
            .any(|m| m.contains(subject))
    });
    let bounce = mailbox(sender, "alice@a.test")
        .into_iter()
        .find(|m| m.contains(subject))
        .unwrap();
    let out = common::run_command(
        Command::new("python3").arg("-c").arg(
            r#"
import email, sys
from email import policy
m = email.message_from_string(sys.stdin.read(), policy=policy.default)
assert m.get_content_type() == "multipart/report", m.get_content_type()
for part in m.walk():
    if part.get_content_type() == "message/delivery-status":
        for block in part.get_payload():
            if block.get("Status"):
                print(block["Action"], block["Status"], block["Diagnostic-Code"])
"#,
        ),
        &bounce,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn bdat_8bitmime_and_smtputf8_to_other_servers() {
    let dir = tempfile::tempdir().unwrap();
    let modern = Peer::start(
        dir.path(),
        "modern",
        "PIPELINING,8BITMIME,CHUNKING,SMTPUTF8,DSN,SIZE 10000000",
    );
    let old = Peer::start(dir.path(), "old", "PIPELINING,SIZE 10000000");
    let sender = Env::with_config(&format!(
        "[queue]\nretry_delays_secs = [1]\ndelay_warning_secs = 0\n[outbound]\nidle_timeout_secs = 1\n[outbound.routes]\n\"new.test\" = \"127.0.0.1:{}\"\n\"old.test\" = \"127.0.0.1:{}\"\n",
        modern.port, old.port
    ));
    sender.ok(&["domain", "add", "a.test"], "");
    sender.ok(&["user", "add", "alice@a.test"], "secret\n");
    let s = sender.serve();
    let port = s.addrs["smtp"].port();

    // CHUNKING and 8BITMIME offered: BODY=8BITMIME and one BDAT LAST chunk, content intact.
    submit(port, "x@new.test", "to-modern", "café ☕", "", false);
    wait_for("the message at the modern peer", 60, || {
        modern.log().contains("to-modern")
    });
    let log = modern.log();
    assert!(
        log.lines()
            .any(|l| l.starts_with("CMD MAIL FROM:<alice@a.test>") && l.contains(" BODY=8BITMIME")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.starts_with("CMD BDAT ") && l.ends_with(" LAST")),
        "{log}"
    );
    assert!(!log.contains("CMD DATA"), "{log}");
    assert!(log.contains("café ☕\r\n"), "{log}");

    // No 8BITMIME (RFC 6152 §3): an unsigned 8-bit message goes as quoted-printable, without
    // BODY; a DKIM-signed one is returned with 5.6.3 (converting would break the signature).
    submit(port, "x@old.test", "eight-bit-to-old", "naïve", "", false);
    wait_for("the converted message at the old peer", 60, || {
        old.log().contains("eight-bit-to-old")
    });
    let log = old.log();
    assert!(
        log.contains("Content-Transfer-Encoding: quoted-printable\r\n\r\nna=C3=AFve\r\n"),
        "{log}"
    );
    assert!(!log.contains("Content-Transfer-Encoding: 8bit"), "{log}");
    // Python's email parser decodes the converted body back to the original text.
    let at = log.find("Subject: eight-bit-to-old").unwrap();
    let msg_line = log[..at].rfind("MSG ").unwrap();
    let header_end = msg_line + log[msg_line..].find('\n').unwrap() + 1;
    let len: usize = log[msg_line + 4..header_end - 1].parse().unwrap();
    let converted = &log.as_bytes()[header_end..header_end + len];
    let out = common::run_command(
        Command::new("python3").arg("-c").arg(
            "import email, sys\nfrom email import policy\nm = email.message_from_bytes(sys.stdin.buffer.read(), policy=policy.default)\nprint(m.get_content().strip())",
        ),
        std::str::from_utf8(converted).unwrap(),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "naïve");
    let signed = "DKIM-Signature: v=1; a=rsa-sha256; d=origin.test; s=s; h=from; bh=x; b=y\\r\\n";
    submit(port, "x@old.test", "signed-to-old", "naïve", signed, false);
    let status = bounce_status(&sender, "signed-to-old");
    assert!(status.starts_with("failed 5.6.3 "), "{status}");
    // No SMTPUTF8: a UTF-8 address is returned with 5.6.7 (RFC 6531 §3.5).
    submit(port, "jörg@old.test", "utf8-to-old", "hello", "", true);
    let status = bounce_status(&sender, "utf8-to-old");
    assert!(status.starts_with("failed 5.6.7 "), "{status}");
    // 7-bit content goes with DATA and no BODY parameter.
    submit(port, "x@old.test", "seven-bit-to-old", "plain", "", false);
    wait_for("the message at the old peer", 60, || {
        old.log().contains("seven-bit-to-old")
    });
    let log = old.log();
    assert!(log.contains("CMD DATA"), "{log}");
    assert!(!log.contains("BDAT") && !log.contains("BODY="), "{log}");
    assert!(
        !log.contains("signed-to-old") && !log.contains("utf8-to-old"),
        "{log}"
    );

    // RFC 3461: DSN parameters go on to a server that offers DSN; to one that does not, a
    // requested success notice is given here, as "relayed" (§4.1 / RFC 3464 §2.3.3).
    for (to, subject) in [
        ("x@new.test", "dsn-to-modern"),
        ("x@old.test", "dsn-to-old"),
    ] {
        common::python(
            &format!(
                r#"
import smtplib
msg = "From: alice@a.test\r\nTo: {to}\r\nSubject: {subject}\r\n\r\ndsn\r\n"
with smtplib.SMTP("127.0.0.1", {port}) as s:
    s.sendmail("alice@a.test", ["{to}"], msg, mail_options=["RET=HDRS", "ENVID=env+2Did"],
               rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;orig@a.test"])
"#
            ),
            &[],
        );
    }
    wait_for("the DSN message at the modern peer", 60, || {
        modern.log().contains("dsn-to-modern")
    });
    let log = modern.log();
    assert!(
        log.contains(" RET=HDRS ENVID=env-id")
            && log.contains(
                "CMD RCPT TO:<x@new.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;orig@a.test"
            ),
        "{log}"
    );
    let status = bounce_status(&sender, "dsn-to-old");
    assert!(status.starts_with("relayed 2."), "{status}");
    let log = old.log();
    assert!(!log.contains("NOTIFY=") && !log.contains("RET="), "{log}");
    drop(s);
}

/// A private Postfix instance (`postfix -c DIR`, queue and log in a temp directory) whose smtpd
/// (which offers CHUNKING) relays `example.org` to `next_hop`. Stopped when dropped.
struct Postfix {
    conf: PathBuf,
    log: PathBuf,
    port: u16,
}

impl Postfix {
    fn start(root: &Path, next_hop: &str) -> Result<Postfix, String> {
        let dir = root.join("postfix");
        let (conf, queue, data) = (dir.join("conf"), dir.join("queue"), dir.join("data"));
        for d in [&conf, &queue, &data] {
            std::fs::create_dir_all(d).unwrap();
        }
        let chown = Command::new("chown").arg("postfix").arg(&data).status();
        if !chown.is_ok_and(|s| s.success()) {
            return Err("cannot give Postfix its data directory (no postfix user?)".into());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join("maillog");
        std::fs::write(
            conf.join("main.cf"),
            format!(
                "compatibility_level = 3.6\nqueue_directory = {queue}\ndata_directory = {data}\n\
                 maillog_file = {log}\nmaillog_file_prefixes = {dir}\n\
                 myhostname = relay.postfix.test\nmydomain = postfix.test\n\
                 inet_interfaces = 127.0.0.1\ninet_protocols = ipv4\nmydestination =\n\
                 mynetworks = 127.0.0.0/8\nalias_maps =\nalias_database =\nbiff = no\n\
                 relay_domains = example.org\nrelay_recipient_maps =\n\
                 smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n\
                 transport_maps = texthash:{conf}/transport\n\
                 local_transport = error:local delivery disabled in the test instance\n\
                 default_transport = error:outbound delivery disabled in the test instance\n\
                 relay_transport = error:relay disabled in the test instance\n\
                 smtp_dns_support_level = disabled\nnotify_classes =\n",
                queue = queue.display(),
                data = data.display(),
                log = log.display(),
                dir = dir.display(),
                conf = conf.display(),
            ),
        )
        .unwrap();
        std::fs::write(conf.join("transport"), format!("example.org {next_hop}\n")).unwrap();
        let services = [
            "pickup unix n - n 60 1 pickup",
            "cleanup unix n - n - 0 cleanup",
            "qmgr unix n - n 300 1 qmgr",
            "rewrite unix - - n - - trivial-rewrite",
            "bounce unix - - n - 0 bounce",
            "defer unix - - n - 0 bounce",
            "trace unix - - n - 0 bounce",
            "verify unix - - n - 1 verify",
            "flush unix n - n 1000? 0 flush",
            "proxymap unix - - n - - proxymap",
            "showq unix n - n - - showq",
            "error unix - - n - - error",
            "retry unix - - n - - error",
            "discard unix - - n - - discard",
            "smtp unix - - n - - smtp",
            "anvil unix - - n - 1 anvil",
            "scache unix - - n - 1 scache",
            "postlog unix-dgram n - n - 1 postlogd",
        ];
        std::fs::write(
            conf.join("master.cf"),
            format!(
                "127.0.0.1:{port} inet n - n - - smtpd\n{}\n",
                services.join("\n")
            ),
        )
        .unwrap();
        let out = Command::new("postfix")
            .arg("-c")
            .arg(&conf)
            .arg("start")
            .output()
            .map_err(|e| format!("cannot run postfix: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "postfix start failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let pf = Postfix { conf, log, port };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if start.elapsed() > Duration::from_secs(30) {
                return Err("Postfix's smtpd did not start listening".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(pf)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix")
            .arg("-c")
            .arg(&self.conf)
            .arg("stop")
            .output();
    }
}

/// RFC 3030 against an independent server: postern sends with BDAT to Postfix's smtpd, which
/// relays the message on to the Python peer; it arrives there intact.
#[test]
fn bdat_to_postfix() {
    // SAFETY: geteuid has no preconditions.
    if !common::on_path("postfix") || unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs Postfix and root (test.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let peer = Peer::start(dir.path(), "after-postfix", "PIPELINING,8BITMIME");
    let postfix = match Postfix::start(dir.path(), &format!("smtp:[127.0.0.1]:{}", peer.port)) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    let sender = Env::with_config(&format!(
        "[queue]\nretry_delays_secs = [1]\ndelay_warning_secs = 0\n[outbound]\nidle_timeout_secs = 1\n[outbound.routes]\n\"example.org\" = \"127.0.0.1:{}\"\n",
        postfix.port
    ));
    sender.ok(&["domain", "add", "a.test"], "");
    sender.ok(&["user", "add", "alice@a.test"], "secret\n");
    let s = sender.serve();
    let body = format!("naïve\\r\\n.leading dot\\r\\n{}", "x".repeat(900));
    submit(
        s.addrs["smtp"].port(),
        "bob@example.org",
        "via-postfix",
        &body,
        "",
        false,
    );
    wait_for("the message relayed by Postfix", 90, || {
        peer.log().contains("via-postfix")
    });
    let log = peer.log();
    assert!(log.contains("naïve\r\n.leading dot\r\n"), "{log}");
    assert!(log.contains(&"x".repeat(900)), "{log}");
    assert!(log.contains("relay.postfix.test"), "{log}");
    let pf = postfix.log();
    assert!(pf.contains("status=sent"), "{pf}");
    // smtpd's command counts on disconnect: the message came with BDAT, not DATA.
    wait_for("Postfix's disconnect line", 30, || {
        postfix.log().contains(" bdat=")
    });
    let pf = postfix.log();
    assert!(pf.contains(" bdat=1") && !pf.contains(" data="), "{pf}");
    drop(s);
}
