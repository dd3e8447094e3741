//! The SMTP server end to end: the real `postern serve` on loopback, driven by independent clients —
//! Python's smtplib (plain, STARTTLS, AUTH, SMTPUTF8, raw BDAT), swaks (pipelining, AUTH) and curl
//! (STARTTLS, AUTH) — and the delivered messages read back from the Maildir.

mod common;
use common::Env;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

type Server = common::Running;

/// Starts `serve` and collects the listening addresses from its log.
fn start(env: &Env) -> Server {
    env.serve()
}

fn setup(extra: &str) -> (Env, Server) {
    let env = Env::with_config(extra);
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", "alice@example.org"], "secret\n");
    env.ok(&["user", "add", "bob@example.org"], "hunter2\n");
    let server = start(&env);
    (env, server)
}

fn ca(env: &Env) -> PathBuf {
    env.data().join("tls").join("cert.pem")
}

fn python(script: &str) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python3 failed:\n{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Waits until a message containing `needle` is in the account's Maildir; returns it.
fn delivered(env: &Env, account: &str, needle: &str) -> String {
    let root = env.maildir(account);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for sub in ["new", "cur"] {
            if let Ok(dir) = std::fs::read_dir(root.join(sub)) {
                for e in dir.flatten() {
                    let text =
                        String::from_utf8_lossy(&std::fs::read(e.path()).unwrap_or_default())
                            .into_owned();
                    if text.contains(needle) {
                        return text;
                    }
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no message with {needle:?} delivered to {account}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn headers(message: &str) -> &str {
    message.split("\r\n\r\n").next().unwrap()
}

#[test]
fn python_smtplib_plain_starttls_auth_smtputf8_and_bdat() {
    let (env, server) = setup("");
    let mx = server.addrs["smtp"];
    let sub = server.addrs["submission"];
    let subs = server.addrs["submissions"];
    let ca = ca(&env);
    let out = python(&format!(
        r#"
import smtplib, ssl, socket
ctx = ssl.create_default_context(cafile={ca:?})
# MX, plaintext, from a remote sender to a local user.
with smtplib.SMTP("127.0.0.1", {mxp}) as s:
    s.ehlo("client.example")
    assert s.has_extn("pipelining") and s.has_extn("chunking") and s.has_extn("dsn")
    s.sendmail("carol@remote.example", ["alice@example.org"],
               "Subject: plain-mx\r\nFrom: carol@remote.example\r\n\r\nhello\r\n.leading dot\r\n")
    try:
        s.sendmail("carol@remote.example", ["nobody@example.org"], "Subject: x\r\n\r\nx\r\n")
        raise SystemExit("unknown user accepted")
    except smtplib.SMTPRecipientsRefused as e:
        assert e.recipients["nobody@example.org"][0] == 550, e.recipients
# MX with STARTTLS.
with smtplib.SMTP("127.0.0.1", {mxp}) as s:
    s.starttls(context=ctx)
    s.ehlo("client.example")
    s.sendmail("carol@remote.example", ["alice@example.org"], "Subject: mx-tls\r\n\r\nsecret stuff\r\n")
# Submission: STARTTLS then AUTH; Message-ID and Date get added.
with smtplib.SMTP("127.0.0.1", {subp}) as s:
    s.ehlo("laptop")
    code, _ = s.mail("alice@example.org")
    assert code == 530, code
    s.rset()
    s.starttls(context=ctx)
    s.login("alice@example.org", "secret")
    s.sendmail("alice@example.org", ["bob@example.org"], "Subject: submitted\r\n\r\nfrom alice\r\n")
    try:
        s.sendmail("bob@example.org", ["alice@example.org"], "Subject: forged\r\n\r\nx\r\n")
        raise SystemExit("forged sender accepted")
    except smtplib.SMTPSenderRefused as e:
        assert e.smtp_code == 553, e
# Submissions (implicit TLS), AUTH PLAIN, SMTPUTF8.
with smtplib.SMTP_SSL("127.0.0.1", {subsp}, context=ctx) as s:
    s.login("bob@example.org", "hunter2")
    s.sendmail("bob@example.org", ["alice@example.org"],
               "Subject: utf8\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGrüße\r\n".encode(),
               mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    code, _ = s.docmd("AUTH", "PLAIN AGJvYkBleGFtcGxlLm9yZwBodW50ZXIy")
    assert code == 503, code
# BDAT over a raw socket (RFC 3030).
def reply(f):
    lines = []
    while True:
        l = f.readline().decode()
        lines.append(l)
        if l[3:4] != "-":
            return "".join(lines)
with socket.create_connection(("127.0.0.1", {mxp})) as raw:
    f = raw.makefile("rb")
    assert reply(f).startswith("220")
    raw.sendall(b"EHLO raw\r\n"); assert "CHUNKING" in reply(f)
    body = b"Subject: chunked\r\n\r\nbinary\x00safe\r\n"
    raw.sendall(b"MAIL FROM:<dave@remote.example> BODY=BINARYMIME\r\nRCPT TO:<alice@example.org>\r\n"
                + b"BDAT 20\r\n" + body[:20] + b"BDAT %d LAST\r\n" % (len(body) - 20) + body[20:])
    for expect in ("250 2.1.0", "250 2.1.5", "250 2.0.0", "250 2.0.0 Ok: queued"):
        r = reply(f)
        assert r.startswith(expect), r
    raw.sendall(b"QUIT\r\n"); assert reply(f).startswith("221")
print("ok")
"#,
        ca = ca.display().to_string(),
        mxp = mx.port(),
        subp = sub.port(),
        subsp = subs.port(),
    ));
    assert_eq!(out.trim(), "ok");

    let m = delivered(&env, "alice@example.org", "Subject: plain-mx");
    let h = headers(&m);
    assert!(
        h.starts_with("Return-Path: <carol@remote.example>\r\n"),
        "{h}"
    );
    assert!(h.contains("Delivered-To: alice@example.org"), "{h}");
    assert!(
        h.contains(
            "Received: from client.example ([127.0.0.1])\r\n\tby mx.test (postern) with ESMTP id"
        ),
        "{h}"
    );
    assert!(m.ends_with("\r\n\r\nhello\r\n.leading dot\r\n"), "{m}");

    let m = delivered(&env, "alice@example.org", "Subject: mx-tls");
    assert!(
        m.contains("with ESMTPS id") && m.contains("(version=TLSv1.3 cipher="),
        "{m}"
    );

    let m = delivered(&env, "bob@example.org", "Subject: submitted");
    let h = headers(&m);
    assert!(h.contains("with ESMTPSA id"), "{h}");
    assert!(
        h.contains("\r\nMessage-ID: <") && h.contains("\r\nDate: "),
        "{h}"
    );
    assert!(
        !m.contains("secret"),
        "the password leaked into the message"
    );

    let m = delivered(&env, "alice@example.org", "Subject: utf8");
    assert!(
        m.contains("with UTF8SMTPSA id") && m.contains("Grüße"),
        "{m}"
    );

    let m = delivered(&env, "alice@example.org", "Subject: chunked");
    assert!(m.ends_with("binary\0safe\r\n"), "{m:?}");
}

#[test]
fn swaks_pipelining_and_auth_and_curl_starttls() {
    let (env, server) = setup("");
    let mx = server.addrs["smtp"];
    let sub = server.addrs["submission"];
    // swaks with PIPELINING on the MX port.
    let out = Command::new("swaks")
        .args([
            "--server",
            &mx.to_string(),
            "--pipeline",
            "--ehlo",
            "swaks.example",
        ])
        .args(["--from", "erin@remote.example", "--to", "alice@example.org"])
        .args(["--header", "Subject: swaks-pipelined"])
        .output()
        .expect("swaks runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("250 2.0.0 Ok: queued as"), "{text}");
    // swaks AUTH LOGIN on submission: allowed without TLS from loopback only.
    let out = Command::new("swaks")
        .args(["--server", &sub.to_string(), "--auth", "LOGIN"])
        .args([
            "--auth-user",
            "alice@example.org",
            "--auth-password",
            "secret",
        ])
        .args([
            "--from",
            "alice@example.org",
            "--to",
            "someone@remote.example,bob@example.org",
        ])
        .args(["--header", "Subject: swaks-auth"])
        .output()
        .expect("swaks runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("235 2.7.0") && text.contains("Ok: queued as"),
        "{text}"
    );
    // swaks with a wrong password.
    let out = Command::new("swaks")
        .args(["--server", &sub.to_string(), "--auth", "PLAIN"])
        .args([
            "--auth-user",
            "alice@example.org",
            "--auth-password",
            "wrong",
        ])
        .args(["--from", "alice@example.org", "--to", "bob@example.org"])
        .output()
        .expect("swaks runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && text.contains("535 5.7.8"),
        "{text}"
    );

    // curl: submission with STARTTLS required, certificate verified, AUTH.
    let mail = env.dir.path().join("curl.eml");
    std::fs::write(
        &mail,
        "From: bob@example.org\r\nSubject: curl-tls\r\n\r\nvia curl\r\n",
    )
    .unwrap();
    let out = Command::new("curl")
        .args(["-sS", "--ssl-reqd", "--cacert"])
        .arg(ca(&env))
        .arg(format!("smtp://127.0.0.1:{}", sub.port()))
        .args([
            "--user",
            "bob@example.org:hunter2",
            "--login-options",
            "AUTH=PLAIN",
        ])
        .args([
            "--mail-from",
            "bob@example.org",
            "--mail-rcpt",
            "alice@example.org",
        ])
        .arg("--upload-file")
        .arg(&mail)
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // curl plain on the MX port.
    let out = Command::new("curl")
        .args(["-sS"])
        .arg(format!("smtp://127.0.0.1:{}/curl.example", mx.port()))
        .args([
            "--mail-from",
            "frank@remote.example",
            "--mail-rcpt",
            "bob@example.org",
        ])
        .arg("--upload-file")
        .arg(&mail)
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let m = delivered(&env, "alice@example.org", "Subject: swaks-pipelined");
    assert!(
        m.contains("Received: from swaks.example ([127.0.0.1])"),
        "{m}"
    );
    let m = delivered(&env, "bob@example.org", "Subject: swaks-auth");
    assert!(m.contains("with ESMTPA id"), "{m}");
    let m = delivered(&env, "alice@example.org", "Subject: curl-tls");
    assert!(
        m.contains("with ESMTPSA id") && m.contains("version=TLSv1.3"),
        "{m}"
    );
    let m = delivered(&env, "bob@example.org", "via curl");
    assert!(m.contains("Received: from curl.example"), "{m}");
}

/// A raw SMTP conversation; returns each reply.
struct Raw {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Raw {
    fn connect_from(local: &str, addr: SocketAddr) -> Raw {
        let socket = socket2_like_bind(local, addr);
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let reader = BufReader::new(socket.try_clone().unwrap());
        let mut raw = Raw {
            stream: socket,
            reader,
        };
        let greeting = raw.reply();
        assert!(greeting.starts_with("220"), "{greeting}");
        raw
    }

    fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).unwrap_or(0) == 0 {
                return all;
            }
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    fn cmd(&mut self, line: &str) -> String {
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
        self.reply()
    }
}

/// Connects to `addr` from the loopback address `local` (e.g. 127.0.0.2) using Python-free std
/// APIs: bind through a throwaway listener is not possible with std, so use libc directly.
fn socket2_like_bind(local: &str, addr: SocketAddr) -> TcpStream {
    use std::os::fd::FromRawFd;
    let local: std::net::Ipv4Addr = local.parse().unwrap();
    let SocketAddr::V4(remote) = addr else {
        panic!("IPv4 only")
    };
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_addr.s_addr = u32::from(local).to_be();
        sa.sin_port = 0;
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(
            libc::bind(fd, &sa as *const _ as *const libc::sockaddr, len),
            0
        );
        let mut ra: libc::sockaddr_in = std::mem::zeroed();
        ra.sin_family = libc::AF_INET as libc::sa_family_t;
        ra.sin_addr.s_addr = u32::from(*remote.ip()).to_be();
        ra.sin_port = remote.port().to_be();
        assert_eq!(
            libc::connect(fd, &ra as *const _ as *const libc::sockaddr, len),
            0,
            "connect from {local}"
        );
        TcpStream::from_raw_fd(fd)
    }
}

#[test]
fn relay_attempts_from_an_untrusted_address_are_refused() {
    // Relay control only: the inbound checks would ask DNS about attacker.example, and tests
    // never ask DNS servers off this machine.
    let (env, server) = setup(
        "[smtp]\ntrusted_networks = [\"127.0.0.1/32\"]\nmax_bad_commands = 100\n[policy]\nenabled = false\n",
    );
    env.ok(
        &["alias", "add", "info@example.org", "alice@example.org"],
        "",
    );
    let mx = server.addrs["smtp"];
    let mut c = Raw::connect_from("127.0.0.2", mx);
    assert!(c.cmd("EHLO attacker.example").starts_with("250"));
    // No AUTH for a non-loopback plaintext client.
    assert!(c
        .cmd("MAIL FROM:<spam@attacker.example>")
        .starts_with("250 2.1.0"));
    for rcpt in [
        "<victim@remote.example>",
        "<VICTIM@REMOTE.EXAMPLE>",
        "<victim%remote.example@example.org>",
        "<victim%remote.example@[127.0.0.1]>",
        "<remote.example!victim@example.org>",
        "<@example.org:victim@remote.example>",
        "<@example.org,@mx.test:victim@remote.example>",
        "<\"victim@remote.example\"@example.org>",
        "<\"victim%remote.example\"@example.org>",
        "<victim@remote.example@example.org>",
        "<victim@[192.0.2.1]>",
        "<victim@[127.0.0.1]>",
        "<victim@[IPv6:::1]>",
        "<victim@mx.test>",
        "<victim@localhost>",
        "<victim@example.org.remote.example>",
        "<victim@remote.example.>",
        "<victim@remote.example> NOTIFY=NEVER ORCPT=rfc822;alice@example.org",
        "victim@remote.example",
        "<victim%remote.example>",
        "<remote.example!victim>",
        "<info@example.org\u{0}victim@remote.example>",
    ] {
        let r = c.cmd(&format!("RCPT TO:{rcpt}"));
        assert!(
            r.starts_with("554 5.7.1") || r.starts_with("550 5.1.1") || r.starts_with("501 5."),
            "RCPT TO:{rcpt} -> {r}"
        );
    }
    // A local recipient still works (no relay needed), so the transaction has exactly one.
    assert!(c.cmd("RCPT TO:<info@example.org>").starts_with("250 2.1.5"));
    assert!(c.cmd("DATA").starts_with("354"));
    let r = c.cmd("Subject: relay-probe\r\n\r\nx\r\n.");
    assert!(r.starts_with("250 2.0.0 Ok: queued"), "{r}");
    let m = delivered(&env, "alice@example.org", "Subject: relay-probe");
    assert!(
        m.contains("Received: from attacker.example ([127.0.0.2])"),
        "{m}"
    );
    // Only that one message exists anywhere in the spool or the mail store.
    assert!(c.cmd("QUIT").starts_with("221"));

    // Every refusal is in the log at INFO, one line with all an admin greps for.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let log: Vec<String> = server.log.try_iter().collect();
    let refused: Vec<&String> = log.iter().filter(|l| l.contains("smtp refused")).collect();
    assert!(refused.len() >= 22, "{refused:#?}");
    assert!(
        refused.iter().any(|l| l.contains("client=127.0.0.2")
            && l.contains("helo=\"attacker.example\"")
            && l.contains("from=\"spam@attacker.example\"")
            && l.contains("rcpt=\"<victim@remote.example>\"")
            && l.contains("command=RCPT")
            && l.contains("reply=\"554 5.7.1")),
        "{refused:#?}"
    );
    assert!(!log.iter().any(|l| l.contains("Some(")), "{log:#?}");
    // One id tells the story: the Received header names the queue id the log uses.
    let id = m
        .split(" id ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| c.is_whitespace() || c == ';').next())
        .unwrap();
    assert!(
        log.iter()
            .any(|l| l.contains("message queued") && l.contains(&format!("queue_id={id}"))),
        "{id}: {log:#?}"
    );

    // 127.0.0.1 is trusted in this configuration: it may relay (queued for the outbound side).
    let mut c = Raw::connect_from("127.0.0.1", mx);
    c.cmd("EHLO local");
    c.cmd("MAIL FROM:<app@example.org>");
    assert!(c
        .cmd("RCPT TO:<friend@remote.example>")
        .starts_with("250 2.1.5"));
}

#[test]
fn limits_end_sessions_with_the_right_replies() {
    let (_env, server) = setup(
        "[smtp]\nmax_message_size = 2000\nmax_recipients = 2\nmax_bad_commands = 4\ncommand_timeout_secs = 1\n",
    );
    let mx = server.addrs["smtp"];
    let mut c = Raw::connect_from("127.0.0.1", mx);
    assert!(c.cmd("EHLO c").contains("SIZE 2000"));
    assert!(c
        .cmd("MAIL FROM:<a@remote.example> SIZE=5000")
        .starts_with("552 5.3.4"));
    c.cmd("MAIL FROM:<a@remote.example>");
    c.cmd("RCPT TO:<alice@example.org>");
    c.cmd("RCPT TO:<bob@example.org>");
    assert!(c.cmd("RCPT TO:<x@remote.example>").starts_with("452 4.5.3"));
    assert!(c.cmd("DATA").starts_with("354"));
    let big = format!("Subject: big\r\n\r\n{}\r\n.", "z".repeat(3000));
    assert!(c.cmd(&big).starts_with("552 5.3.4"));
    assert!(c.cmd("BOGUS").starts_with("500 5.5.2"));
    assert!(c.cmd("BOGUS").starts_with("500 5.5.2"));
    let r = c.reply();
    assert!(r.starts_with("421 4.7.0"), "{r}");
    // Idle timeout.
    let mut c = Raw::connect_from("127.0.0.1", mx);
    let r = c.reply();
    assert!(r.starts_with("421 4.4.2"), "{r}");
    let mut rest = Vec::new();
    let _ = c.stream.read_to_end(&mut rest);
    assert!(rest.is_empty());
}

fn spool_ids(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("spool").join("q")).map_or(0, |d| d.count())
}

#[test]
fn sigkill_while_sending_loses_nothing_acknowledged() {
    let (env, mut server) = setup("");
    let mx = server.addrs["smtp"];
    // Several clients send numbered messages; each records the numbers that got a 250.
    let mut handles = Vec::new();
    for t in 0..4 {
        handles.push(std::thread::spawn(move || {
            let mut acked = Vec::new();
            for i in 0..1000 {
                let Ok(s) = TcpStream::connect(mx) else { break };
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut w = s.try_clone().unwrap();
                let mut r = BufReader::new(s);
                let mut line = String::new();
                let mut step = |send: &str, r: &mut BufReader<TcpStream>| -> Option<String> {
                    if !send.is_empty() && w.write_all(send.as_bytes()).is_err() {
                        return None;
                    }
                    line.clear();
                    match r.read_line(&mut line) {
                        Ok(n) if n > 0 => Some(line.clone()),
                        _ => None,
                    }
                };
                let tag = format!("kill-{t}-{i}");
                let ok = (|| {
                    step("", &mut r)?;
                    step("HELO k\r\n", &mut r)?;
                    step("MAIL FROM:<k@remote.example>\r\n", &mut r)?;
                    step("RCPT TO:<alice@example.org>\r\n", &mut r)?;
                    step("DATA\r\n", &mut r)?;
                    step(&format!("Subject: {tag}\r\n\r\nx\r\n.\r\n"), &mut r)
                })();
                match ok {
                    Some(reply) if reply.starts_with("250") => acked.push(tag),
                    _ => break,
                }
            }
            acked
        }));
    }
    std::thread::sleep(Duration::from_millis(700));
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let acked: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert!(!acked.is_empty(), "nothing was sent before the kill");

    // Restart: the queue runner delivers what the spool holds.
    let _server = start(&env);
    let deadline = Instant::now() + Duration::from_secs(30);
    while spool_ids(&env.data()) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    for sub in ["new", "cur"] {
        if let Ok(dir) = std::fs::read_dir(env.maildir("alice@example.org").join(sub)) {
            for e in dir.flatten() {
                let text = String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned();
                if let Some(subject) = text.lines().find_map(|l| l.strip_prefix("Subject: ")) {
                    *seen.entry(subject.to_string()).or_default() += 1;
                }
            }
        }
    }
    // Acknowledged means durable: every message that got its 250 reached the mailbox.
    for tag in &acked {
        assert!(
            seen.contains_key(tag),
            "{tag} acknowledged but never delivered"
        );
    }
    // ...and none twice: a delivery interrupted between the store append and the spool update is
    // retried with the same key, which the store recognises.
    let twice: Vec<_> = seen.iter().filter(|(_, &n)| n > 1).collect();
    assert!(
        twice.is_empty(),
        "delivered more than once after SIGKILL: {twice:?}"
    );
}
