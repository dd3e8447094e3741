//! Sieve at local delivery end to end: a real `postern serve`, scripts put through the store
//! (as ManageSieve and the CLI do), mail sent with Python's smtplib, folders and flags read back
//! with imaplib; vacation replies and redirects leave through the queue to a scripted SMTP peer
//! (a static route), never the internet.

mod common;
use common::{login_args, python, Env};
use postern_store::maildir::MaildirStore;
use postern_store::ScriptStore;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ALICE: &str = "alice@example.org";
const PASS: &str = "secret-pw";

/// One message the peer received: MAIL FROM, RCPT TOs, content.
#[derive(Clone, Debug)]
struct Received {
    from: String,
    to: Vec<String>,
    data: String,
}

/// A minimal SMTP server standing for the remote domain.
struct Peer {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Peer {
    fn start() -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let g = g.clone();
                std::thread::spawn(move || {
                    let _ = serve_peer(conn, &g);
                });
            }
        });
        Peer { addr, got }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

fn path_of(line: &str) -> String {
    let start = line.find('<').map_or(0, |i| i + 1);
    let end = line.find('>').unwrap_or(line.len());
    line[start..end].to_string()
}

fn serve_peer(conn: TcpStream, got: &Mutex<Vec<Received>>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut w = conn.try_clone()?;
    let mut r = BufReader::new(conn);
    w.write_all(b"220 peer.test ESMTP\r\n")?;
    let mut current = Received {
        from: String::new(),
        to: Vec::new(),
        data: String::new(),
    };
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let upper = line.to_ascii_uppercase();
        let reply = if upper.starts_with("EHLO") {
            "250-peer.test\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n"
        } else if upper.starts_with("MAIL") {
            current.from = path_of(&line);
            current.to.clear();
            "250 2.1.0 ok\r\n"
        } else if upper.starts_with("RCPT") {
            current.to.push(path_of(&line));
            "250 2.1.5 ok\r\n"
        } else if upper.starts_with("DATA") {
            w.write_all(b"354 go ahead\r\n")?;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if r.read_line(&mut l)? == 0 {
                    return Ok(());
                }
                if l == ".\r\n" {
                    break;
                }
                data.push_str(&l);
            }
            current.data = data;
            got.lock().unwrap().push(current.clone());
            "250 2.0.0 queued\r\n"
        } else if upper.starts_with("QUIT") {
            w.write_all(b"221 2.0.0 bye\r\n")?;
            return Ok(());
        } else {
            "250 2.0.0 ok\r\n"
        };
        w.write_all(reply.as_bytes())?;
    }
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends one message from bob@remote.test to alice over SMTP with smtplib.
fn send(port: u16, subject: &str) {
    python(
        &format!(
            r#"
import smtplib, sys
msg = ("From: Bob <bob@remote.test>\r\nTo: Alice <alice@example.org>\r\n"
       "Subject: {subject}\r\nMessage-ID: <{id}@remote.test>\r\n\r\nHello Alice.\r\n")
with smtplib.SMTP("127.0.0.1", int(sys.argv[1])) as s:
    s.sendmail("bob@remote.test", ["alice@example.org"], msg)
"#,
            id = subject.replace(' ', "-"),
        ),
        &[port.to_string()],
    );
}

/// Puts scripts for alice through the Maildir script store, as ManageSieve would.
fn put_scripts(env: &Env) {
    let store: Arc<dyn ScriptStore> =
        Arc::new(MaildirStore::open(env.data().join("mail"), "mx.test").unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        store
            .put_script(
                ALICE,
                "filters",
                r#"require ["fileinto", "imap4flags", "mailbox", "copy"];
if header :contains "subject" "rust" {
    fileinto :create :flags ["\\Flagged", "$rust"] "Lists/rust";
    stop;
}
if header :contains "subject" "forward" {
    redirect :copy "carol@remote.test";
}
"#,
            )
            .await
            .unwrap();
        store.activate_script(ALICE, Some("filters")).await.unwrap();
        store
            .set_vacation_script(
                ALICE,
                Some(r#"require "vacation"; vacation :days 1 :subject "Away" "I am away this week.";"#),
            )
            .await
            .unwrap();
    });
}

#[test]
fn scripts_file_flag_redirect_and_answer_once() {
    let peer = Peer::start();
    let env = Env::with_config(&format!(
        "[queue]\nretry_delays_secs = [1]\ndelay_warning_secs = 0\n[outbound]\nidle_timeout_secs = 1\n[outbound.routes]\n\"remote.test\" = \"{}\"\n",
        peer.addr
    ));
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", ALICE], &format!("{PASS}\n"));
    let server = env.serve();
    // While serving, as ManageSieve does (opening the store first would create the data
    // directory with the test's umask, which serve refuses).
    put_scripts(&env);
    let smtp = server.addrs["smtp"];
    let imap = server.addrs["imap"];

    send(smtp.port(), "rust news");
    send(smtp.port(), "please forward");

    // The vacation reply goes once to bob (two messages, one :days period), from <>; the
    // redirect goes to carol with an SRS sender of ours.
    wait_for("the reply and the redirect at the peer", 30, || {
        peer.received().len() >= 2
    });
    std::thread::sleep(Duration::from_secs(2));
    let got = peer.received();
    let replies: Vec<_> = got.iter().filter(|m| m.to == ["bob@remote.test"]).collect();
    assert_eq!(replies.len(), 1, "one vacation reply: {got:#?}");
    assert_eq!(replies[0].from, "");
    assert!(
        replies[0].data.contains("Auto-Submitted: auto-replied"),
        "{}",
        replies[0].data
    );
    assert!(
        replies[0].data.contains("Subject: Away"),
        "{}",
        replies[0].data
    );
    let redirects: Vec<_> = got
        .iter()
        .filter(|m| m.to == ["carol@remote.test"])
        .collect();
    assert_eq!(redirects.len(), 1, "{got:#?}");
    assert!(
        redirects[0].from.starts_with("SRS0=") && redirects[0].from.ends_with("@example.org"),
        "{}",
        redirects[0].from
    );
    assert!(redirects[0].data.contains("Subject: please forward"));

    // A bounce to that SRS address goes back to the original sender.
    python(
        r#"
import smtplib, sys
with smtplib.SMTP("127.0.0.1", int(sys.argv[1])) as s:
    s.sendmail("", [sys.argv[2]], "From: MAILER-DAEMON@remote.test\r\nSubject: bounce of the redirect\r\n\r\nundeliverable\r\n")
"#,
        &[smtp.port().to_string(), redirects[0].from.clone()],
    );
    wait_for("the bounce back at the original sender", 30, || {
        peer.received()
            .iter()
            .any(|m| m.to == ["bob@remote.test"] && m.data.contains("bounce of the redirect"))
    });

    // The filed message and its flags, and the redirected copy kept in INBOX, over IMAP.
    let out = python(
        r#"
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
m.login(sys.argv[3], sys.argv[4])
typ, data = m.select('"Lists/rust"')
assert typ == 'OK', data
assert data[0] == b'1', data
typ, data = m.fetch('1', '(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
print(data)
typ, data = m.select('INBOX')
print('INBOX', data[0].decode())
typ, data = m.fetch('1:*', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
print(data)
m.logout()
"#,
        &login_args(imap, ALICE, PASS),
    );
    assert!(out.contains("\\Flagged") && out.contains("$rust"), "{out}");
    assert!(out.contains("rust news"), "{out}");
    assert!(out.contains("INBOX 1"), "{out}");
    assert!(out.contains("please forward"), "{out}");
}

/// RFC 5429 §2.2: a single local recipient whose script rejects gets a `550 5.7.1` at DATA,
/// with the reason; nothing is queued or stored.
#[test]
fn ereject_refuses_in_the_smtp_dialogue() {
    let env = Env::new();
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", ALICE], &format!("{PASS}\n"));
    let server = env.serve();
    let store: Arc<dyn ScriptStore> =
        Arc::new(MaildirStore::open(env.data().join("mail"), "mx.test").unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        store
            .put_script(
                ALICE,
                "no-spam",
                r#"require "ereject"; if header :contains "subject" "spam" { ereject "No spam here."; }"#,
            )
            .await
            .unwrap();
        store.activate_script(ALICE, Some("no-spam")).await.unwrap();
    });
    let out = python(
        r#"
import smtplib, sys
msg = "From: bob@remote.test\r\nTo: alice@example.org\r\nSubject: {}\r\n\r\nbody\r\n"
with smtplib.SMTP("127.0.0.1", int(sys.argv[1])) as s:
    try:
        s.sendmail("bob@remote.test", ["alice@example.org"], msg.format("cheap spam"))
        print("accepted")
    except smtplib.SMTPDataError as e:
        print("refused", e.smtp_code, e.smtp_error.decode())
    s.sendmail("bob@remote.test", ["alice@example.org"], msg.format("hello"))
    print("second accepted")
"#,
        &[server.addrs["smtp"].port().to_string()],
    );
    assert!(out.contains("refused 550 5.7.1 No spam here."), "{out}");
    assert!(out.contains("second accepted"), "{out}");
}

/// RFC 5260 §4.1, §5: `currentdate` without `:zone` is in the server's local zone (the C
/// library's, from `TZ`); with `:zone` in the one given. POSIX `TZ` strings need no zone
/// database: `IST-5:30` is +0530, `EST5` is -0500.
#[test]
fn sieve_test_currentdate_uses_the_local_zone() {
    let env = Env::new();
    let script = env.dir.path().join("zone.sieve");
    std::fs::write(
        &script,
        r#"require ["date", "variables", "fileinto"];
if currentdate :matches "zone" "*" { set "local" "${1}"; }
if currentdate :zone "+0000" :matches "zone" "*" { set "utc" "${1}"; }
fileinto "local-${local}";
fileinto "utc-${utc}";
"#,
    )
    .unwrap();
    let message = env.dir.path().join("m.eml");
    std::fs::write(
        &message,
        "From: bob@remote.test\r\nSubject: hi\r\n\r\nbody\r\n",
    )
    .unwrap();
    for (tz, zone) in [("IST-5:30", "+0530"), ("EST5", "-0500"), ("UTC0", "+0000")] {
        let out = common::run_command(
            env.command().env("TZ", tz).args([
                "sieve",
                "test",
                "--json",
                "--from",
                "bob@remote.test",
                "--to",
                ALICE,
                script.to_str().unwrap(),
                message.to_str().unwrap(),
            ]),
            "",
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "TZ={tz}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains(&format!("local-{zone}")),
            "TZ={tz}: {stdout}"
        );
        assert!(stdout.contains("utc-+0000"), "TZ={tz}: {stdout}");
    }
}

/// RFC 5260 §4.1 at delivery: `postern serve` gives scripts the local zone (here `TZ`), so
/// `currentdate "zone"` files into a folder named after it.
#[test]
fn delivery_currentdate_uses_the_local_zone() {
    let env = Env::new();
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", ALICE], &format!("{PASS}\n"));
    let server = env.serve_with_env(&[("TZ", "IST-5:30")]);
    let store: Arc<dyn ScriptStore> =
        Arc::new(MaildirStore::open(env.data().join("mail"), "mx.test").unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        store
            .put_script(
                ALICE,
                "zone",
                r#"require ["date", "variables", "fileinto", "mailbox"];
if currentdate :matches "zone" "*" { fileinto :create "zone${1}"; }
"#,
            )
            .await
            .unwrap();
        store.activate_script(ALICE, Some("zone")).await.unwrap();
    });
    send(server.addrs["smtp"].port(), "what time");
    let out = python(
        r#"
import imaplib, sys, time
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
m.login(sys.argv[3], sys.argv[4])
deadline = time.time() + 30
while True:
    typ, data = m.select('"zone+0530"')
    if typ == 'OK' and data[0] == b'1':
        break
    assert time.time() < deadline, (typ, data, m.list())
    time.sleep(0.2)
print('filed', data[0].decode())
m.logout()
"#,
        &login_args(server.addrs["imap"], ALICE, PASS),
    );
    assert!(out.contains("filed 1"), "{out}");
}
