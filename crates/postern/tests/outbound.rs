//! Outbound delivery end to end: real `postern serve` processes on loopback, mail submitted with
//! Python's smtplib, relayed through static routes to a second postern or to scripted SMTP peers
//! (a small Rust server here). Never the internet, never real DNS.

mod common;
use common::Env;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Server = common::Running;

fn start(env: &Env) -> Server {
    env.serve()
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

/// Submits one message with smtplib from loopback (a trusted network: relaying allowed).
fn submit(port: u16, from: &str, to: &str, subject: &str) {
    python(&format!(
        r#"
import smtplib
from email.message import EmailMessage
m = EmailMessage()
m["From"] = "{from_hdr}"
m["To"] = "{to}"
m["Subject"] = "{subject}"
m["Message-ID"] = "<{subject}@test>"
m.set_content("Hello from the outbound test.\n" + "x" * 200 + "\n.leading dot line\n")
with smtplib.SMTP("127.0.0.1", {port}) as s:
    s.send_message(m, from_addr="{from}", to_addrs=["{to}"])
"#,
        from_hdr = if from.is_empty() {
            "nobody@a.test"
        } else {
            from
        },
    ));
}

/// Messages in an account's Maildir.
fn mailbox(env: &Env, account: &str) -> Vec<String> {
    let root = env.maildir(account);
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(dir) = std::fs::read_dir(root.join(sub)) {
            for e in dir.flatten() {
                out.push(
                    String::from_utf8_lossy(&std::fs::read(e.path()).unwrap_or_default())
                        .into_owned(),
                );
            }
        }
    }
    out
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn queued(data: &Path) -> usize {
    std::fs::read_dir(data.join("spool/q"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// A scripted SMTP server: `rcpt` decides the reply to each RCPT (given how many RCPTs it has
/// seen so far); accepted messages are recorded.
struct Peer {
    addr: SocketAddr,
    messages: Arc<Mutex<Vec<String>>>,
    rcpts: Arc<AtomicUsize>,
}

impl Peer {
    fn start(
        rcpt: impl Fn(usize) -> &'static str + Send + Sync + 'static,
        data_delay: Duration,
    ) -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let rcpts = Arc::new(AtomicUsize::new(0));
        let rcpt = Arc::new(rcpt);
        let (m, r) = (messages.clone(), rcpts.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (m, r, rcpt) = (m.clone(), r.clone(), rcpt.clone());
                std::thread::spawn(move || {
                    let _ = serve_peer(conn, &*rcpt, &m, &r, data_delay);
                });
            }
        });
        Peer {
            addr,
            messages,
            rcpts,
        }
    }
    fn count(&self) -> usize {
        self.messages.lock().unwrap().len()
    }
}

fn serve_peer(
    conn: TcpStream,
    rcpt: &dyn Fn(usize) -> &'static str,
    messages: &Mutex<Vec<String>>,
    rcpts: &AtomicUsize,
    data_delay: Duration,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut w = conn.try_clone()?;
    let mut r = BufReader::new(conn);
    w.write_all(b"220 peer.test ESMTP scripted\r\n")?;
    let mut ok_rcpts = 0;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let upper = line.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            "250-peer.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 10000000\r\n250 ENHANCEDSTATUSCODES\r\n".into()
        } else if upper.starts_with("MAIL") {
            ok_rcpts = 0;
            "250 2.1.0 ok\r\n".into()
        } else if upper.starts_with("RCPT") {
            let n = rcpts.fetch_add(1, Ordering::SeqCst);
            let answer = rcpt(n);
            if answer.starts_with('2') {
                ok_rcpts += 1;
            }
            format!("{answer}\r\n")
        } else if upper.starts_with("DATA") {
            if ok_rcpts == 0 {
                "554 5.5.1 no valid recipients\r\n".into()
            } else {
                w.write_all(b"354 go ahead\r\n")?;
                let mut msg = String::new();
                loop {
                    let mut l = String::new();
                    if r.read_line(&mut l)? == 0 {
                        return Ok(());
                    }
                    if l == ".\r\n" {
                        break;
                    }
                    msg.push_str(&l);
                }
                std::thread::sleep(data_delay);
                messages.lock().unwrap().push(msg);
                "250 2.0.0 queued\r\n".into()
            }
        } else if upper.starts_with("QUIT") {
            w.write_all(b"221 2.0.0 bye\r\n")?;
            return Ok(());
        } else if upper.starts_with("RSET") || upper.starts_with("NOOP") {
            "250 2.0.0 ok\r\n".into()
        } else {
            "502 5.5.2 not implemented\r\n".into()
        };
        w.write_all(reply.as_bytes())?;
    }
}

/// Instance A: local domain a.test with alice, fast retries, the given static routes.
fn instance_a(routes: &[(&str, SocketAddr)], extra: &str) -> Env {
    let mut cfg = String::from("[queue]\nretry_delays_secs = [1]\ndelay_warning_secs = 0\n");
    cfg.push_str(extra);
    cfg.push_str("\n[outbound]\nidle_timeout_secs = 2\n[outbound.routes]\n");
    for (d, a) in routes {
        cfg.push_str(&format!("\"{d}\" = \"{a}\"\n"));
    }
    let env = Env::with_config(&cfg);
    env.ok(&["domain", "add", "a.test"], "");
    env.ok(&["user", "add", "alice@a.test"], "secret\n");
    env
}

/// The queue id of the first message `mailq` lists (its line after the header).
fn first_queue_id(mailq: &str) -> String {
    let line = mailq.lines().nth(1).expect("mailq lists a message");
    line.split_whitespace().next().unwrap().to_string()
}

/// Waits (up to 30 s) for a message containing `needle` in `account`'s mailbox; returns it.
fn wait_for_message(env: &Env, account: &str, needle: &str) -> String {
    wait_for(&format!("{needle} in {account}'s mailbox"), 30, || {
        mailbox(env, account).iter().any(|m| m.contains(needle))
    });
    mailbox(env, account)
        .into_iter()
        .find(|m| m.contains(needle))
        .unwrap()
}

#[test]
fn two_postern_instances_relay_with_dkim_that_verifies() {
    let b = Env::new();
    b.ok(&["domain", "add", "b.test"], "");
    b.ok(&["user", "add", "bob@b.test"], "secret\n");
    let sb = start(&b);
    let a = instance_a(&[("b.test", sb.addrs["smtp"])], "");
    let made = a.ok(&["dkim", "generate", "a.test", "--selector", "t1"], "");
    assert!(made.contains("t1-ed25519._domainkey.a.test"), "{made}");
    let sa = start(&a);
    submit(
        sa.addrs["smtp"].port(),
        "alice@a.test",
        "bob@b.test",
        "relayed-1",
    );
    let msg = wait_for_message(&b, "bob@b.test", "relayed-1");
    assert_eq!(msg.matches("DKIM-Signature:").count(), 2, "{msg}");
    assert!(
        msg.contains("with ESMTPS id"),
        "A used opportunistic STARTTLS: {msg}"
    );
    assert!(
        msg.contains("\r\n.leading dot line\r\n"),
        "dot-stuffing undone at the receiver"
    );
    wait_for("A's queue to empty", 10, || queued(&a.data()) == 0);

    // The receiver's copy verifies against the records `postern dkim list` prints.
    let list = a.ok(&["dkim", "list"], "");
    let records: Vec<(String, String)> = list
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), f[2].to_string())
        })
        .collect();
    assert_eq!(records.len(), 2);
    // B added trace headers above the signatures; DKIM verification ignores them.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let results = rt.block_on(postern_policy::verify_with_records(
        msg.as_bytes(),
        &records,
    ));
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(results.iter().all(|r| r.2), "DKIM must verify: {results:?}");

    // `postern dns` shows both selectors.
    let dns = a.ok(&["dns", "a.test"], "");
    assert!(
        dns.contains("t1-rsa._domainkey.a.test.") && dns.contains("v=spf1 mx -all"),
        "{dns}"
    );

    // Rotation: new keys sign after a reload, without a restart; the old ones are retired.
    let e = a.fails(&["dkim", "generate", "elsewhere.test"], "");
    assert!(e.contains("not a local domain"), "{e}");
    let rotated = a.ok(&["dkim", "rotate", "a.test", "--selector", "t2"], "");
    assert!(
        rotated.contains("retired: t1-rsa._domainkey.a.test"),
        "{rotated}"
    );
    a.ok(&["reload"], "");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !sa.log.try_iter().any(|l| l.contains("reloaded")) {
        assert!(std::time::Instant::now() < deadline, "no reload logged");
        std::thread::sleep(Duration::from_millis(100));
    }
    submit(
        sa.addrs["smtp"].port(),
        "alice@a.test",
        "bob@b.test",
        "relayed-2",
    );
    let msg = wait_for_message(&b, "bob@b.test", "relayed-2");
    assert!(
        msg.contains("s=t2-ed25519") && msg.contains("s=t2-rsa"),
        "{msg}"
    );
    assert!(!msg.contains("s=t1-"), "{msg}");
    let list = a.ok(&["dkim", "list"], "");
    assert_eq!(list.matches("retired").count(), 2, "{list}");
    a.ok(&["dkim", "remove", "a.test", "t1"], "");
    assert!(!a.ok(&["dkim", "list"], "").contains("retired"));
}

#[test]
fn temporary_failures_are_retried_until_accepted() {
    // 4xx for the first two RCPTs, then 250.
    let peer = Peer::start(
        |n| {
            if n < 2 {
                "451 4.3.0 try again later"
            } else {
                "250 2.1.5 ok"
            }
        },
        Duration::ZERO,
    );
    let a = instance_a(&[("retry.test", peer.addr)], "");
    let sa = start(&a);
    submit(
        sa.addrs["smtp"].port(),
        "alice@a.test",
        "someone@retry.test",
        "retried-1",
    );
    wait_for("the retried delivery", 30, || peer.count() == 1);
    assert!(peer.rcpts.load(Ordering::SeqCst) >= 3);
    wait_for("A's queue to empty", 10, || queued(&a.data()) == 0);
    assert!(
        mailbox(&a, "alice@a.test").is_empty(),
        "no bounce for a delivered message"
    );
    // `queue list` says so.
    assert!(a.ok(&["queue", "list"], "").contains("Mail queue is empty"));
}

#[test]
fn permanent_failure_bounces_to_the_sender_as_rfc3464() {
    let peer = Peer::start(
        |_| "550 5.1.1 <nobody@reject.test>: no such user",
        Duration::ZERO,
    );
    let a = instance_a(&[("reject.test", peer.addr)], "");
    let sa = start(&a);
    submit(
        sa.addrs["smtp"].port(),
        "alice@a.test",
        "nobody@reject.test",
        "bounced-1",
    );
    wait_for("the bounce in alice's INBOX", 30, || {
        !mailbox(&a, "alice@a.test").is_empty()
    });
    let bounce = mailbox(&a, "alice@a.test").remove(0);
    let parsed = mail_parser::MessageParser::default()
        .parse(bounce.as_bytes())
        .unwrap();
    use mail_parser::MimeHeaders;
    let ct = parsed.content_type().unwrap();
    assert_eq!((ct.ctype(), ct.subtype()), ("multipart", Some("report")));
    assert_eq!(ct.attribute("report-type"), Some("delivery-status"));
    assert_eq!(
        parsed.from().unwrap().first().unwrap().address(),
        Some("MAILER-DAEMON@mx.test")
    );
    assert!(
        bounce.contains("Return-Path: <>"),
        "a bounce has the null sender"
    );
    assert!(
        bounce.contains(
            "Final-Recipient: rfc822; nobody@reject.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        ),
        "{bounce}"
    );
    assert!(
        bounce.contains("Diagnostic-Code: smtp; 550 5.1.1"),
        "{bounce}"
    );
    assert!(
        bounce.contains("Subject: bounced-1"),
        "the original comes back"
    );
    wait_for("A's queue to empty", 10, || queued(&a.data()) == 0);
    assert_eq!(peer.count(), 0);
}

#[test]
fn a_failing_null_sender_message_makes_no_bounce() {
    let peer = Peer::start(|_| "550 5.1.1 no such user", Duration::ZERO);
    let a = instance_a(&[("reject.test", peer.addr)], "");
    let sa = start(&a);
    submit(
        sa.addrs["smtp"].port(),
        "",
        "nobody@reject.test",
        "nullsender-1",
    );
    wait_for("the attempt", 30, || peer.rcpts.load(Ordering::SeqCst) >= 1);
    wait_for("A's queue to empty", 10, || queued(&a.data()) == 0);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(queued(&a.data()), 0);
    assert!(mailbox(&a, "alice@a.test").is_empty());
    assert_eq!(
        peer.rcpts.load(Ordering::SeqCst),
        1,
        "tried once, never retried or bounced"
    );
}

#[test]
fn queue_admin_hold_release_and_flush_while_serving() {
    // 4xx but for the second RCPT: a message stays queued; retries are an hour apart.
    let peer = Peer::start(
        |n| {
            if n != 1 {
                "451 4.4.1 later"
            } else {
                "250 2.1.5 ok"
            }
        },
        Duration::ZERO,
    );
    let a = instance_a(&[("slow.test", peer.addr)], "");
    std::fs::write(
        &a.config,
        std::fs::read_to_string(&a.config)
            .unwrap()
            .replace("retry_delays_secs = [1]", "retry_delays_secs = [3600]"),
    )
    .unwrap();
    let sa = start(&a);
    submit(
        sa.addrs["smtp"].port(),
        "alice@a.test",
        "x@slow.test",
        "admin-1",
    );
    wait_for("the first attempt", 30, || {
        peer.rcpts.load(Ordering::SeqCst) == 1
    });
    std::thread::sleep(Duration::from_millis(300));
    // `queue list` is the listing with next attempt times (`mailq` is Postfix's format).
    let list = a.ok(&["queue", "list"], "");
    assert!(
        list.contains("x@slow.test")
            && list.contains("451 4.4.1 later")
            && list.contains("(next attempt: ")
            && !list.contains("due now")
            && list.contains("1 Request."),
        "{list}"
    );
    let id = first_queue_id(&list);
    let show = a.ok(&["queue", "show", &id], "");
    assert!(
        show.contains("Subject: admin-1") && show.contains("pending"),
        "{show}"
    );
    a.ok(&["queue", "hold", &id], "");
    assert!(a.ok(&["queue", "list"], "").contains(&format!("{id}!")));
    a.ok(&["queue", "flush"], "");
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(peer.count(), 0, "a held message is not attempted");
    a.ok(&["queue", "release", &id], "");
    wait_for("delivery after release", 10, || peer.count() == 1);
    wait_for("A's queue to empty", 10, || queued(&a.data()) == 0);
    assert!(a
        .fails(&["queue", "show", &id], "")
        .contains("no queued message"));

    // `queue bounce` returns a deferred message to its sender now, with a DSN.
    submit(
        sa.addrs["smtp"].port(),
        "alice@a.test",
        "y@slow.test",
        "admin-2",
    );
    wait_for("the attempt of the second message", 30, || {
        peer.rcpts.load(Ordering::SeqCst) >= 3
    });
    std::thread::sleep(Duration::from_millis(300));
    let list = a.ok(&["mailq"], "");
    let id = first_queue_id(&list);
    let out = a.ok(&["queue", "bounce", &id], "");
    assert!(out.contains("returned to alice@a.test"), "{out}");
    wait_for("the notice in alice's mailbox", 20, || {
        mailbox(&a, "alice@a.test")
            .iter()
            .any(|m| m.contains("returned to the sender by the mail administrator"))
    });
    wait_for("A's queue to empty again", 10, || queued(&a.data()) == 0);
}

#[test]
fn sigkill_during_deliveries_loses_nothing() {
    // Every message is accepted, slowly: deliveries are in flight when the server dies.
    let peer = Peer::start(|_| "250 2.1.5 ok", Duration::from_millis(300));
    let a = instance_a(&[("sink.test", peer.addr)], "");
    let mut sa = start(&a);
    let port = sa.addrs["smtp"].port();
    let n = 12;
    python(&format!(
        r#"
import smtplib
with smtplib.SMTP("127.0.0.1", {port}) as s:
    for i in range({n}):
        s.sendmail("alice@a.test", ["r@sink.test"], "Subject: kill-%d\r\nMessage-ID: <kill-%d@test>\r\n\r\nbody\r\n" % (i, i))
"#
    ));
    wait_for("some deliveries", 30, || peer.count() >= 2);
    sa.child.kill().unwrap(); // SIGKILL
    sa.child.wait().unwrap();
    drop(sa);
    let _sa = start(&a);
    wait_for("A's queue to empty after restart", 60, || {
        queued(&a.data()) == 0
    });
    let got = peer.messages.lock().unwrap().clone();
    for i in 0..n {
        let copies = got
            .iter()
            .filter(|m| m.contains(&format!("Subject: kill-{i}\r\n")))
            .count();
        // At least once; a second copy only for a message whose 250 was in flight at the kill.
        assert!((1..=2).contains(&copies), "kill-{i}: {copies} copies");
    }
    assert!(got.len() <= n + 8, "{} copies of {n} messages", got.len());
}
