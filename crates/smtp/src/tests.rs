//! Session state machine tests (no sockets) and driver tests over loopback TCP.

use crate::check::Verdict;
use crate::message::DataDecoder;
use crate::session::{Answer, Lookup, Outcome, Session, Settings, Step};
use crate::SmtpServer;
use postern_config::{Config, Service, Source};
use postern_directory::{
    AuthThrottle, DirectoryOptions, PasswordParams, SqliteDirectory, ThrottleConfig,
};
use postern_net::{Connection, MailStream, SessionHandler};
use postern_spool::{BodyType, Envelope, Notify, Ret, Spool};
use std::net::IpAddr;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn directory() -> Arc<SqliteDirectory> {
    let dir = SqliteDirectory::open_in_memory(DirectoryOptions {
        password_params: PasswordParams::insecure_fast_for_tests(),
        ..DirectoryOptions::default()
    })
    .unwrap();
    dir.add_domain("example.org").unwrap();
    dir.add_account("alice@example.org", "secret").unwrap();
    dir.add_account("bob@example.org", "hunter2").unwrap();
    dir.add_alias("info@example.org", &["alice@example.org"])
        .unwrap();
    dir.add_alias(
        "staff@example.org",
        &["alice@example.org", "bob@example.org"],
    )
    .unwrap();
    Arc::new(dir)
}

fn config(extra: &str) -> Config {
    Config::from_toml(
        &format!(
            "hostname = \"mx.test\"\n[smtp]\nmax_recipients = 3\nmax_bad_commands = 5\n{extra}"
        ),
        Source::Defaults,
    )
    .unwrap()
}

fn settings(extra: &str) -> Arc<Settings> {
    let c = config(extra);
    Arc::new(Settings {
        hostname: c.hostname,
        smtp: c.smtp,
        allow_plaintext: c.auth.allow_plaintext,
    })
}

std::thread_local! {
    /// The directory the sessions of this test ask (each test runs on its own thread).
    static DIR: std::cell::RefCell<Option<Arc<SqliteDirectory>>> = const { std::cell::RefCell::new(None) };
}

/// Answers a session's lookup from the test's directory, synchronously.
fn answer(lookup: &Lookup) -> Answer {
    let d = DIR
        .with(|d| d.borrow().clone())
        .expect("a session was made");
    match lookup {
        Lookup::Resolve(a) => Answer::Resolution(d.resolve(a).map_err(|e| e.to_string())),
        Lookup::Expand(a) => Answer::Resolution(d.expand(a).map_err(|e| e.to_string())),
        Lookup::PostmasterDomain(h) => Answer::Domain(if d.is_local_domain(h).unwrap() {
            h.clone()
        } else {
            d.list_domains()
                .unwrap()
                .first()
                .map_or_else(|| h.clone(), |x| x.name.clone())
        }),
    }
}

/// Answers lookups (and checks, accepting) until the session asks for something else.
fn drive(s: &mut Session, mut step: Step) -> Step {
    loop {
        step = match step {
            Step::Lookup(l) => s.answer(answer(&l)),
            Step::Check(_) => s.checked(Verdict::Accept),
            other => return other,
        };
    }
}

/// A command line, its lookups answered.
trait Run {
    fn run(&mut self, line: &[u8]) -> Step;
}

impl Run for Session {
    fn run(&mut self, line: &[u8]) -> Step {
        let step = self.command(line);
        drive(self, step)
    }
}

fn session_with(service: Service, peer: &str, extra: &str) -> Session {
    let peer: IpAddr = peer.parse().unwrap();
    DIR.with(|d| *d.borrow_mut() = Some(directory()));
    Session::new(
        settings(extra),
        service,
        peer,
        peer.is_loopback(),
        None,
        true,
    )
}

fn session(peer: &str) -> Session {
    session_with(Service::Smtp, peer, "")
}

/// Sends a command, returns the reply text.
fn say(s: &mut Session, line: &str) -> String {
    match s.run(line.as_bytes()) {
        Step::Reply(r) | Step::Close(r) => r,
        other => format!("{other:?}"),
    }
}

fn code(s: &mut Session, line: &str) -> String {
    say(s, line).chars().take(9).collect()
}

/// Runs DATA with `body` (wire form, terminator included) and returns the outcome.
fn data(s: &mut Session, body: &[u8]) -> Outcome {
    let Step::Data(mut decoder) = s.run(b"DATA") else {
        panic!("DATA refused")
    };
    assert!(decoder.feed(body).is_some(), "terminator not found");
    s.finish_data(*decoder)
}

fn enqueued(outcome: Outcome) -> (Envelope, Vec<u8>) {
    match outcome {
        Outcome::Enqueue(e, m, _) => (*e, m),
        Outcome::Reply(r) => panic!("not enqueued: {r}"),
        Outcome::Check(..) => panic!("no checks configured"),
        Outcome::Deliver(..) => panic!("an SMTP session does not deliver"),
    }
}

#[test]
fn ehlo_advertises_extensions_and_auth_only_when_safe() {
    let mut s = session("192.0.2.1");
    let r = say(&mut s, "EHLO client.example");
    for ext in [
        "250-mx.test\r\n",
        "PIPELINING",
        "SIZE 26214400",
        "8BITMIME",
        "CHUNKING",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "DSN",
        "STARTTLS",
        "250 HELP\r\n",
    ] {
        assert!(r.contains(ext), "{ext} missing in {r}");
    }
    // Not loopback, no TLS: only SCRAM (no password on the wire) is offered; PLAIN is
    // refused, and so is -PLUS, which needs a TLS channel to bind to.
    assert!(r.contains("250-AUTH SCRAM-SHA-256\r\n"), "{r}");
    assert_eq!(code(&mut s, "AUTH PLAIN AGFsaWNlAHNlY3JldA=="), "538 5.7.1");
    assert_eq!(code(&mut s, "AUTH SCRAM-SHA-256-PLUS"), "538 5.7.1");
    assert!(matches!(s.run(b"AUTH SCRAM-SHA-256"), Step::Auth { .. }));
    // Loopback may authenticate without TLS.
    let mut s = session("127.0.0.1");
    assert!(say(&mut s, "EHLO c").contains("AUTH SCRAM-SHA-256 PLAIN LOGIN"));
    assert!(matches!(
        s.run(b"AUTH PLAIN AGFsaWNlAHNlY3JldA=="),
        Step::Auth { .. }
    ));
    assert_eq!(code(&mut s, "AUTH CRAM-MD5"), "504 5.5.4");
    assert_eq!(code(&mut s, "AUTH PLAIN !!!"), "501 5.5.2");
    // ...or where the admin allows plaintext.
    let mut s = session_with(
        Service::Submission,
        "192.0.2.1",
        "[auth]\nallow_plaintext = true",
    );
    assert!(say(&mut s, "EHLO c").contains("AUTH SCRAM-SHA-256 PLAIN LOGIN"));
    // HELO: no extensions, no parameters.
    let mut s = session("192.0.2.1");
    assert_eq!(say(&mut s, "HELO c"), "250 mx.test\r\n");
    assert_eq!(code(&mut s, "MAIL FROM:<a@b.example> SIZE=10"), "555 5.5.4");
    assert_eq!(code(&mut s, "AUTH PLAIN"), "503 5.5.1");
}

#[test]
fn sequence_errors() {
    let mut s = session("192.0.2.1");
    assert_eq!(code(&mut s, "MAIL FROM:<a@b.example>"), "503 5.5.1");
    assert_eq!(code(&mut s, "EHLO c"), "250-mx.te");
    assert_eq!(code(&mut s, "RCPT TO:<alice@example.org>"), "503 5.5.1");
    assert_eq!(code(&mut s, "DATA"), "503 5.5.1");
    assert_eq!(code(&mut s, "MAIL FROM:<a@b.example>"), "250 2.1.0");
    assert_eq!(code(&mut s, "MAIL FROM:<a@b.example>"), "503 5.5.1");
    assert_eq!(code(&mut s, "DATA"), "554 5.5.1");
    assert_eq!(code(&mut s, "RSET"), "250 2.0.0");
    assert_eq!(code(&mut s, "NOOP"), "250 2.0.0");
    assert_eq!(code(&mut s, "HELP"), "214 2.0.0");
    assert_eq!(code(&mut s, "BOGUS"), "500 5.5.2");
    assert_eq!(code(&mut s, "QUIT"), "221 2.0.0");
}

#[test]
fn mx_accepts_only_local_recipients_from_untrusted_clients() {
    let mut s = session("192.0.2.1");
    say(&mut s, "EHLO c");
    say(&mut s, "MAIL FROM:<someone@remote.example>");
    assert_eq!(code(&mut s, "RCPT TO:<alice@example.org>"), "250 2.1.5");
    assert_eq!(code(&mut s, "RCPT TO:<Alice+tag@EXAMPLE.org>"), "250 2.1.5");
    assert_eq!(code(&mut s, "RCPT TO:<nobody@example.org>"), "550 5.1.1");
    assert_eq!(code(&mut s, "RCPT TO:<victim@remote.example>"), "554 5.7.1");
    assert_eq!(code(&mut s, "RCPT TO:<Postmaster>"), "550 5.1.1");
}

#[test]
fn routing_tricks_never_relay() {
    for (rcpt, expected) in [
        ("<victim@remote.example>", "554 5.7.1"),
        ("<victim%remote.example@example.org>", "550 5.1.1"),
        ("<remote.example!victim@example.org>", "550 5.1.1"),
        ("<victim%remote.example>", "501 5.1.3"),
        ("<remote.example!victim>", "501 5.1.3"),
        ("<@example.org:victim@remote.example>", "554 5.7.1"),
        ("<@example.org,@mx.test:victim@remote.example>", "554 5.7.1"),
        ("<\"victim@remote.example\"@example.org>", "550 5.1.1"),
        ("<\"victim@remote.example\">", "501 5.1.3"),
        ("<victim@remote.example@example.org>", "501 5.1.3"),
        ("<victim@[192.0.2.99]>", "554 5.7.1"),
        ("<victim@[127.0.0.1]>", "554 5.7.1"),
        ("<victim@[IPv6:::1]>", "554 5.7.1"),
        ("<victim@remote.example.>", "501 5.1.3"),
        ("<victim@example.org.remote.example>", "554 5.7.1"),
        ("<\"victim%remote.example\"@example.org>", "550 5.1.1"),
        ("<victim@remote.example> NOTIFY=NEVER", "554 5.7.1"),
        ("victim@remote.example", "501 5.1.3"),
        (
            "<victim@remote.example>\u{0}<alice@example.org>",
            "501 5.1.3",
        ),
        (
            "<alice@example.org>\r\nRCPT TO:<victim@remote.example>",
            "501 5.5.4",
        ),
    ] {
        let mut s = session("192.0.2.1");
        say(&mut s, "EHLO c");
        say(&mut s, "MAIL FROM:<spammer@remote.example>");
        let r = say(&mut s, &format!("RCPT TO:{rcpt}"));
        let prefix: String = r.chars().take(9).collect();
        let allowed = if expected == "501 5.5.4" {
            prefix.starts_with("501") || prefix.starts_with("555")
        } else {
            prefix == expected
        };
        assert!(allowed, "RCPT TO:{rcpt} -> {r} (expected {expected})");
        // Whatever the reply, nothing remote ended up in the envelope.
        assert!(!r.starts_with("250"), "RCPT TO:{rcpt} accepted");
    }
    // A source route to a local mailbox is ignored, not followed: local delivery.
    let mut s = session("192.0.2.1");
    say(&mut s, "EHLO c");
    say(&mut s, "MAIL FROM:<x@remote.example>");
    assert_eq!(
        code(&mut s, "RCPT TO:<@remote.example:alice@example.org>"),
        "250 2.1.5"
    );
}

#[test]
fn trusted_and_authenticated_clients_may_relay() {
    let mut s = session("127.0.0.1");
    say(&mut s, "EHLO c");
    say(&mut s, "MAIL FROM:<local@example.org>");
    assert_eq!(code(&mut s, "RCPT TO:<friend@remote.example>"), "250 2.1.5");
    // Unknown local users are still refused.
    assert_eq!(code(&mut s, "RCPT TO:<nobody@example.org>"), "550 5.1.1");
    // 127.0.0.2 excluded from trusted networks: no relay.
    let mut s = session_with(
        Service::Smtp,
        "127.0.0.2",
        "trusted_networks = [\"127.0.0.1/32\"]",
    );
    say(&mut s, "EHLO c");
    say(&mut s, "MAIL FROM:<x@remote.example>");
    assert_eq!(code(&mut s, "RCPT TO:<friend@remote.example>"), "554 5.7.1");
    // Authenticated client from anywhere.
    let mut s = session("192.0.2.1");
    say(&mut s, "EHLO c");
    s.authenticated("alice@example.org".into());
    say(&mut s, "MAIL FROM:<alice@example.org>");
    assert_eq!(code(&mut s, "RCPT TO:<friend@remote.example>"), "250 2.1.5");
}

#[test]
fn submission_requires_auth_and_owned_sender() {
    let mut s = session_with(Service::Submission, "192.0.2.1", "");
    say(&mut s, "EHLO c");
    assert_eq!(code(&mut s, "MAIL FROM:<alice@example.org>"), "530 5.7.0");
    s.authenticated("alice@example.org".into());
    assert_eq!(code(&mut s, "MAIL FROM:<bob@example.org>"), "553 5.7.1");
    assert_eq!(code(&mut s, "MAIL FROM:<ceo@remote.example>"), "553 5.7.1");
    assert_eq!(code(&mut s, "MAIL FROM:<staff@example.org>"), "553 5.7.1");
    for own in [
        "<alice@example.org>",
        "<ALICE@Example.ORG>",
        "<alice+x@example.org>",
        "<info@example.org>",
        "<>",
    ] {
        assert_eq!(
            code(&mut s, &format!("MAIL FROM:{own}")),
            "250 2.1.0",
            "{own}"
        );
        say(&mut s, "RSET");
    }
    // Configurable.
    let mut s = session_with(
        Service::Submission,
        "192.0.2.1",
        "sender_must_match_login = false",
    );
    say(&mut s, "EHLO c");
    s.authenticated("alice@example.org".into());
    assert_eq!(code(&mut s, "MAIL FROM:<bob@example.org>"), "250 2.1.0");
}

#[test]
fn limits_recipients_size_and_errors() {
    let mut s = session("127.0.0.1");
    say(&mut s, "EHLO c");
    assert_eq!(
        code(&mut s, "MAIL FROM:<a@remote.example> SIZE=26214401"),
        "552 5.3.4"
    );
    assert_eq!(
        code(&mut s, "MAIL FROM:<a@remote.example> SIZE=26214400"),
        "250 2.1.0"
    );
    for i in 0..3 {
        assert_eq!(
            code(&mut s, &format!("RCPT TO:<r{i}@remote.example>")),
            "250 2.1.5"
        );
    }
    assert_eq!(code(&mut s, "RCPT TO:<r9@remote.example>"), "452 4.5.3");
    // max_bad_commands = 5: the fifth error is followed by 421 and the close.
    // One error so far (the 552).
    for _ in 0..3 {
        assert!(matches!(s.run(b"BOGUS"), Step::Reply(_)));
    }
    match s.run(b"BOGUS") {
        Step::Close(r) => assert!(
            r.starts_with("500 5.5.2") && r.contains("\r\n421 4.7.0"),
            "{r}"
        ),
        other => panic!("{other:?}"),
    }
    let mut s = session_with(Service::Smtp, "192.0.2.1", "max_commands = 3");
    say(&mut s, "NOOP");
    say(&mut s, "NOOP");
    say(&mut s, "NOOP");
    assert!(matches!(s.run(b"NOOP"), Step::Close(r) if r.starts_with("421 4.7.0")));
}

#[test]
fn message_size_is_checked_during_data() {
    let mut s = session_with(Service::Smtp, "192.0.2.1", "max_message_size = 100");
    say(&mut s, "EHLO c");
    say(&mut s, "MAIL FROM:<a@remote.example>");
    say(&mut s, "RCPT TO:<alice@example.org>");
    let big = format!("Subject: x\r\n\r\n{}\r\n.\r\n", "y".repeat(200));
    match data(&mut s, big.as_bytes()) {
        Outcome::Reply(r) => assert!(r.starts_with("552 5.3.4"), "{r}"),
        Outcome::Enqueue(..) | Outcome::Check(..) | Outcome::Deliver(..) => {
            panic!("too big a message accepted")
        }
    }
    // The transaction is gone.
    assert_eq!(code(&mut s, "DATA"), "503 5.5.1");
}

#[test]
fn envelope_keeps_dsn_body_and_session_facts() {
    let mut s = session("192.0.2.1");
    say(&mut s, "EHLO client.example");
    assert_eq!(
        code(
            &mut s,
            "MAIL FROM:<sender@remote.example> BODY=8BITMIME RET=HDRS ENVID=abc+2Bdef SMTPUTF8"
        ),
        "250 2.1.0"
    );
    assert_eq!(
        code(
            &mut s,
            "RCPT TO:<alice@example.org> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;Alice+2Bx@example.org"
        ),
        "250 2.1.5"
    );
    assert_eq!(
        code(&mut s, "RCPT TO:<bob@example.org> NOTIFY=NEVER"),
        "250 2.1.5"
    );
    assert_eq!(
        code(&mut s, "RCPT TO:<bob@example.org> NOTIFY=SOMETIMES"),
        "501 5.5.4"
    );
    assert_eq!(
        code(&mut s, "RCPT TO:<bob@example.org> FOO=BAR"),
        "555 5.5.4"
    );
    assert_eq!(
        code(&mut s, "RCPT TO:<bob@example.org> ORCPT=bad"),
        "501 5.5.4"
    );
    let (env, msg) = enqueued(data(&mut s, b"Subject: hi\r\n\r\n..body\r\n.\r\n"));
    assert_eq!(env.sender.as_deref(), Some("sender@remote.example"));
    assert_eq!(env.body, BodyType::EightBitMime);
    assert_eq!(env.ret, Some(Ret::Headers));
    assert_eq!(env.envid.as_deref(), Some("abc+def"));
    assert!(env.smtputf8);
    assert_eq!(env.recipients.len(), 2);
    assert_eq!(env.recipients[0].address, "alice@example.org");
    assert_eq!(
        env.recipients[0].notify,
        Notify {
            success: true,
            failure: false,
            delay: true
        }
    );
    assert_eq!(
        env.recipients[0].orcpt.as_deref(),
        Some("rfc822;Alice+x@example.org")
    );
    assert_eq!(env.recipients[1].notify, Notify::NEVER);
    assert_eq!(env.client_ip, Some("192.0.2.1".parse().unwrap()));
    assert_eq!(env.helo.as_deref(), Some("client.example"));
    assert_eq!(env.authenticated, None);
    let text = String::from_utf8(msg).unwrap();
    let head =
        "Received: from client.example ([192.0.2.1])\r\n\tby mx.test (postern) with UTF8SMTP id ";
    assert!(text.starts_with(head), "{text}");
    // The id is a queue id: the one the message is queued under (see the server tests).
    let id: String = text[head.len()..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != ';')
        .collect();
    assert!(postern_spool::QueueId::parse(&id).is_some(), "{id}");
    assert!(text.ends_with("Subject: hi\r\n\r\n.body\r\n"), "{text}");
    // MX does not add Message-ID or Date.
    assert!(!text.contains("Message-ID:"));
    // A null sender, and the session goes on.
    assert_eq!(code(&mut s, "MAIL FROM:<>"), "250 2.1.0");
    assert_eq!(code(&mut s, "RCPT TO:<alice@example.org>"), "250 2.1.5");
    let (env, _) = enqueued(data(&mut s, b"x\r\n.\r\n"));
    assert_eq!(env.sender, None);
    assert_eq!(env.recipients[0].notify, Notify::default());
}

#[test]
fn submission_completes_headers_and_marks_esmtpa() {
    let mut s = session_with(Service::Submission, "127.0.0.1", "");
    say(&mut s, "EHLO c");
    s.authenticated("alice@example.org".into());
    say(&mut s, "MAIL FROM:<alice@example.org>");
    say(&mut s, "RCPT TO:<friend@remote.example>");
    let (env, msg) = enqueued(data(&mut s, b"Subject: no id\r\n\r\nbody\r\n.\r\n"));
    assert_eq!(env.authenticated.as_deref(), Some("alice@example.org"));
    let text = String::from_utf8(msg).unwrap();
    assert!(text.contains("with ESMTPA id"), "{text}");
    assert!(text.contains("(authenticated sender)"), "{text}");
    assert!(text.contains("\r\nDate: "), "{text}");
    assert!(
        text.contains("\r\nMessage-ID: <") && text.contains("@mx.test>\r\n"),
        "{text}"
    );
    say(&mut s, "MAIL FROM:<alice@example.org>");
    say(&mut s, "RCPT TO:<friend@remote.example>");
    let (_, msg) = enqueued(data(
        &mut s,
        b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-Id: <x@y>\r\n\r\nbody\r\n.\r\n",
    ));
    let text = String::from_utf8(msg).unwrap();
    assert_eq!(text.matches("Date:").count(), 1, "{text}");
    assert!(!text.contains("Message-ID:"), "{text}");
}

#[test]
fn mail_loops_are_refused() {
    let mut s = session("192.0.2.1");
    say(&mut s, "EHLO c");
    say(&mut s, "MAIL FROM:<a@remote.example>");
    say(&mut s, "RCPT TO:<alice@example.org>");
    let mut body = "Received: from x by y; now\r\n".repeat(51);
    body.push_str("\r\nbody\r\n.\r\n");
    match data(&mut s, body.as_bytes()) {
        Outcome::Reply(r) => assert!(r.starts_with("554 5.4.6"), "{r}"),
        Outcome::Enqueue(..) | Outcome::Check(..) | Outcome::Deliver(..) => panic!("loop accepted"),
    }
}

#[test]
fn smtputf8_is_required_for_utf8_addresses() {
    let mut s = session("192.0.2.1");
    say(&mut s, "EHLO c");
    assert_eq!(code(&mut s, "MAIL FROM:<jösé@remote.example>"), "553 5.6.7");
    assert_eq!(code(&mut s, "MAIL FROM:<jose@remote.example>"), "250 2.1.0");
    assert_eq!(code(&mut s, "RCPT TO:<ålice@example.org>"), "553 5.6.7");
    say(&mut s, "RSET");
    assert_eq!(
        code(&mut s, "MAIL FROM:<jösé@bücher.example> SMTPUTF8"),
        "250 2.1.0"
    );
    assert_eq!(code(&mut s, "RCPT TO:<ålice@example.org>"), "550 5.1.1");
    assert_eq!(code(&mut s, "RCPT TO:<alice@example.org>"), "250 2.1.5");
}

#[test]
fn bdat_chunks_and_binarymime() {
    let mut s = session("192.0.2.1");
    say(&mut s, "EHLO c");
    say(&mut s, "MAIL FROM:<a@remote.example> BODY=BINARYMIME");
    say(&mut s, "RCPT TO:<alice@example.org>");
    // RFC 3030 §3: BINARYMIME cannot use DATA.
    assert_eq!(code(&mut s, "DATA"), "503 5.5.1");
    assert_eq!(
        s.run(b"BDAT 5"),
        Step::Bdat {
            size: 5,
            last: false
        }
    );
    match s.bdat_chunk(5, b"Sub: ".to_vec(), false) {
        Outcome::Reply(r) => assert!(r.starts_with("250 2.0.0"), "{r}"),
        Outcome::Enqueue(..) | Outcome::Check(..) | Outcome::Deliver(..) => panic!(),
    }
    let (env, msg) = enqueued(s.bdat_chunk(6, b"x\r\n\r\n.".to_vec(), true));
    assert_eq!(env.body, BodyType::BinaryMime);
    assert!(msg.ends_with(b"Sub: x\r\n\r\n."));
    // BDAT without a transaction: the chunk is consumed and refused.
    match s.bdat_chunk(3, b"abc".to_vec(), true) {
        Outcome::Reply(r) => assert!(r.starts_with("503 5.5.1"), "{r}"),
        Outcome::Enqueue(..) | Outcome::Check(..) | Outcome::Deliver(..) => panic!(),
    }
    // Too big across chunks.
    let mut s = session_with(Service::Smtp, "192.0.2.1", "max_message_size = 10");
    say(&mut s, "EHLO c");
    say(&mut s, "MAIL FROM:<a@remote.example>");
    say(&mut s, "RCPT TO:<alice@example.org>");
    assert!(
        matches!(s.bdat_chunk(8, vec![b'a'; 8], false), Outcome::Reply(r) if r.starts_with("250"))
    );
    assert_eq!(s.bdat_room(), 2);
    assert!(
        matches!(s.bdat_chunk(8, Vec::new(), true), Outcome::Reply(r) if r.starts_with("552 5.3.4"))
    );
}

#[test]
fn vrfy_and_expn_policies() {
    let mut s = session("192.0.2.1");
    say(&mut s, "EHLO c");
    assert_eq!(code(&mut s, "VRFY alice@example.org"), "252 2.5.2");
    assert_eq!(code(&mut s, "EXPN staff@example.org"), "502 5.5.1");
    s.authenticated("alice@example.org".into());
    assert_eq!(code(&mut s, "EXPN staff@example.org"), "502 5.5.1");

    let extra = "vrfy = \"authenticated\"\nexpn = \"authenticated\"";
    let mut s = session_with(Service::Smtp, "192.0.2.1", extra);
    say(&mut s, "EHLO c");
    assert_eq!(code(&mut s, "VRFY <nobody@example.org>"), "252 2.5.2");
    assert_eq!(code(&mut s, "EXPN staff@example.org"), "502 5.5.1");
    s.authenticated("alice@example.org".into());
    assert_eq!(code(&mut s, "VRFY <alice@example.org>"), "250 2.1.5");
    assert_eq!(code(&mut s, "VRFY nobody@example.org"), "550 5.1.1");
    let r = say(&mut s, "EXPN <staff@example.org>");
    assert_eq!(
        r,
        "250-2.1.5 <alice@example.org>\r\n250 2.1.5 <bob@example.org>\r\n"
    );
    assert_eq!(code(&mut s, "EXPN nobody@example.org"), "550 5.1.1");

    let mut s = session_with(Service::Smtp, "192.0.2.1", "vrfy = \"off\"");
    assert_eq!(code(&mut s, "VRFY alice"), "502 5.5.1");
}

#[test]
fn starttls_resets_the_session() {
    let mut s = session("192.0.2.1");
    say(&mut s, "EHLO c");
    say(&mut s, "MAIL FROM:<a@remote.example>");
    assert_eq!(s.run(b"STARTTLS"), Step::StartTls);
    s.tls_started(Some(postern_net::TlsInfo {
        version: "TLSv1.3".into(),
        cipher: "TLS13_AES_128_GCM_SHA256".into(),
        server_name: None,
    }));
    // EHLO needed again; transaction forgotten; STARTTLS no longer offered; AUTH PLAIN now
    // offered, and -PLUS where the driver says the channel has tls-exporter.
    assert_eq!(code(&mut s, "MAIL FROM:<a@remote.example>"), "503 5.5.1");
    let r = say(&mut s, "EHLO c");
    assert!(
        !r.contains("STARTTLS") && r.contains("AUTH SCRAM-SHA-256 PLAIN LOGIN"),
        "{r}"
    );
    s.set_offer_plus(true);
    let r = say(&mut s, "EHLO c");
    assert!(
        r.contains("AUTH SCRAM-SHA-256-PLUS SCRAM-SHA-256 PLAIN LOGIN"),
        "{r}"
    );
    assert_eq!(code(&mut s, "STARTTLS"), "503 5.5.1");
    say(&mut s, "MAIL FROM:<a@remote.example>");
    say(&mut s, "RCPT TO:<alice@example.org>");
    let (_, msg) = enqueued(data(&mut s, b"x\r\n.\r\n"));
    let text = String::from_utf8(msg).unwrap();
    assert!(
        text.contains("with ESMTPS id")
            && text.contains("version=TLSv1.3 cipher=TLS13_AES_128_GCM_SHA256"),
        "{text}"
    );
}

/// RFC 8689 §4.1: REQUIRETLS is advertised and accepted only over TLS, and kept in the envelope.
#[test]
fn requiretls_only_over_tls() {
    let mut s = session("192.0.2.1");
    let r = say(&mut s, "EHLO c");
    assert!(!r.contains("REQUIRETLS"), "{r}");
    let r = say(&mut s, "MAIL FROM:<a@remote.example> REQUIRETLS");
    assert!(r.starts_with("530 5.7.10 "), "{r}");
    assert_eq!(s.run(b"STARTTLS"), Step::StartTls);
    s.tls_started(Some(postern_net::TlsInfo {
        version: "TLSv1.3".into(),
        cipher: "TLS13_AES_128_GCM_SHA256".into(),
        server_name: None,
    }));
    let r = say(&mut s, "EHLO c");
    assert!(r.contains("250-REQUIRETLS\r\n"), "{r}");
    assert_eq!(
        code(&mut s, "MAIL FROM:<a@remote.example> REQUIRETLS=yes"),
        "555 5.5.4"
    );
    say(&mut s, "MAIL FROM:<a@remote.example> REQUIRETLS");
    say(&mut s, "RCPT TO:<alice@example.org>");
    let (env, msg) = enqueued(data(&mut s, b"x\r\n.\r\n"));
    assert!(env.requiretls);
    assert!(String::from_utf8(msg)
        .unwrap()
        .contains("\t(REQUIRETLS)\r\n"));
    // The next transaction without the parameter does not have it.
    say(&mut s, "MAIL FROM:<a@remote.example>");
    say(&mut s, "RCPT TO:<alice@example.org>");
    let (env, _) = enqueued(data(&mut s, b"x\r\n.\r\n"));
    assert!(!env.requiretls);
}

// ----- the driver over loopback TCP -----------------------------------------------------------

struct Harness {
    addr: std::net::SocketAddr,
    spool_dir: tempfile::TempDir,
}

/// Starts an SmtpServer on 127.0.0.1:0 (service `service`), serving every accepted connection.
async fn harness(service: Service, extra: &str) -> Harness {
    harness_with(service, extra, |s| s).await
}

/// [`harness`] with a server changed by `customize` (checks, sink).
async fn harness_with(
    service: Service,
    extra: &str,
    customize: impl FnOnce(SmtpServer) -> SmtpServer,
) -> Harness {
    let spool_dir = tempfile::tempdir().unwrap();
    let spool = Arc::new(Spool::open(spool_dir.path().join("spool")).unwrap());
    let server = SmtpServer::new(
        &config(extra),
        directory(),
        Arc::new(AuthThrottle::new(ThrottleConfig {
            base_delay: std::time::Duration::from_millis(10),
            max_delay: std::time::Duration::from_millis(50),
            account_limit: 3,
            ..ThrottleConfig::default()
        })),
        spool,
    );
    let server = customize(server);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut id = 0;
        while let Ok((tcp, peer)) = listener.accept().await {
            id += 1;
            let conn = Connection {
                local: tcp.local_addr().unwrap(),
                stream: MailStream::Plain(tcp),
                peer,
                service,
                session_id: id,
                tls: None,
                shutdown: postern_net::CancellationToken::new(),
            };
            let server = server.clone();
            tokio::spawn(async move { server.handle(conn).await });
        }
    });
    Harness { addr, spool_dir }
}

struct Client {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Client {
    async fn connect(addr: std::net::SocketAddr) -> Client {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (r, w) = tcp.into_split();
        let mut c = Client {
            reader: BufReader::new(r),
            writer: w,
        };
        assert!(c.reply().await.starts_with("220 mx.test"));
        c
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.unwrap();
    }

    /// One complete (possibly multi-line) reply.
    async fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                self.reader.read_line(&mut line),
            )
            .await
            .expect("reply in time")
            .unwrap();
            if n == 0 {
                return all;
            }
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    async fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }
}

fn spooled(h: &Harness) -> Vec<Vec<u8>> {
    // The server's handle owns the spool journal, where a message in its first attempt lives:
    // read it through a second handle, as queue administration does.
    let spool = Spool::open(h.spool_dir.path().join("spool")).unwrap();
    let ids = spool.ids().unwrap();
    ids.iter().map(|id| spool.message(id).unwrap()).collect()
}

#[tokio::test]
async fn pipelined_transaction_gets_batched_replies_and_is_spooled() {
    let h = harness(Service::Smtp, "").await;
    let mut c = Client::connect(h.addr).await;
    assert!(c.cmd("EHLO c").await.contains("PIPELINING"));
    c.send(b"MAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<nobody@example.org>\r\nDATA\r\n")
        .await;
    assert!(c.reply().await.starts_with("250 2.1.0"));
    assert!(c.reply().await.starts_with("250 2.1.5"));
    assert!(c.reply().await.starts_with("550 5.1.1"));
    assert!(c.reply().await.starts_with("354"));
    // Message and the next commands in one write.
    c.send(b"Subject: t\r\n\r\n..hi\r\n.\r\nNOOP\r\n").await;
    let r = c.reply().await;
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    assert!(c.reply().await.starts_with("250 2.0.0 Ok"));
    let files = spooled(&h);
    assert_eq!(files.len(), 1);
    let text = String::from_utf8_lossy(&files[0]);
    assert!(text.contains("Received: from c ([127.0.0.1])"), "{text}");
    assert!(text.ends_with("Subject: t\r\n\r\n.hi\r\n"), "{text}");
    assert!(c.cmd("QUIT").await.starts_with("221 2.0.0"));
}

#[tokio::test]
async fn bdat_over_the_wire() {
    let h = harness(Service::Smtp, "").await;
    let mut c = Client::connect(h.addr).await;
    assert!(c.cmd("EHLO c").await.contains("CHUNKING"));
    c.send(b"MAIL FROM:<a@remote.example> BODY=BINARYMIME\r\nRCPT TO:<alice@example.org>\r\nBDAT 12\r\nSubject: b\r\nBDAT 11 LAST\r\n\r\n\0body\n.\r\n")
        .await;
    assert!(c.reply().await.starts_with("250 2.1.0"));
    assert!(c.reply().await.starts_with("250 2.1.5"));
    assert!(c.reply().await.starts_with("250 2.0.0 12 octets"));
    assert!(c.reply().await.starts_with("250 2.0.0 Ok: queued"));
    let files = spooled(&h);
    assert!(files[0].ends_with(b"Subject: b\r\n\r\n\0body\n.\r\n"));
    // An unexpected BDAT is consumed and refused; the session goes on.
    c.send(b"BDAT 4\r\nQUITBDAT 0 LAST\r\nNOOP\r\n").await;
    assert!(c.reply().await.starts_with("503 5.5.1"));
    assert!(c.reply().await.starts_with("503 5.5.1"));
    assert!(c.reply().await.starts_with("250 2.0.0"));
}

#[tokio::test]
async fn long_lines_bare_lf_and_smuggling() {
    let h = harness(Service::Smtp, "").await;
    let mut c = Client::connect(h.addr).await;
    let long = format!("NOOP {}", "x".repeat(5000));
    assert!(c.cmd(&long).await.starts_with("500 5.5.2"));
    assert!(c.cmd("NOOP").await.starts_with("250"));
    c.cmd("EHLO c").await;
    c.cmd("MAIL FROM:<a@remote.example>").await;
    c.cmd("RCPT TO:<alice@example.org>").await;
    assert!(c.cmd("DATA").await.starts_with("354"));
    // "\n.\n" and "\r\n.\n" are not the end of data: the smuggled commands stay in the body.
    c.send(b"Subject: s\r\n\r\nx\n.\nMAIL FROM:<evil@remote.example>\r\nRCPT TO:<victim@remote.example>\r\nDATA\r\n.\nsmuggled\r\n.\r\n")
        .await;
    let r = c.reply().await;
    assert!(r.starts_with("250 2.0.0 Ok: queued"), "{r}");
    assert!(c.cmd("NOOP").await.starts_with("250 2.0.0"));
    let files = spooled(&h);
    assert_eq!(files.len(), 1);
    let text = String::from_utf8_lossy(&files[0]);
    assert!(
        text.contains("x\r\n\r\nMAIL FROM:<evil@remote.example>\r\n"),
        "{text}"
    );
    assert!(text.ends_with("DATA\r\n\r\nsmuggled\r\n"), "{text}");
}

#[tokio::test]
async fn auth_plain_login_cancel_and_throttle() {
    let h = harness(Service::Submission, "").await;
    let mut c = Client::connect(h.addr).await;
    c.cmd("EHLO c").await;
    // Wrong password, with the throttle's delay.
    assert!(c
        .cmd("AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHdyb25n")
        .await
        .starts_with("535 5.7.8"));
    // Cancel with "*".
    assert!(c.cmd("AUTH LOGIN").await.starts_with("334 VXNlcm5hbWU6"));
    assert!(c.cmd("*").await.starts_with("501 5.0.0"));
    // Not base64.
    assert!(c.cmd("AUTH PLAIN").await.starts_with("334 "));
    assert!(c.cmd("%%%").await.starts_with("501 5.5.2"));
    // LOGIN, step by step.
    assert!(c.cmd("AUTH LOGIN").await.starts_with("334 VXNlcm5hbWU6"));
    assert!(c
        .cmd("YWxpY2VAZXhhbXBsZS5vcmc=")
        .await
        .starts_with("334 UGFzc3dvcmQ6"));
    assert!(c.cmd("c2VjcmV0").await.starts_with("235 2.7.0"));
    assert!(c.cmd("AUTH PLAIN").await.starts_with("503 5.5.1"));
    assert!(c
        .cmd("MAIL FROM:<alice@example.org>")
        .await
        .starts_with("250"));
    assert!(c
        .cmd("RCPT TO:<friend@remote.example>")
        .await
        .starts_with("250"));

    // Throttle: account_limit = 3 failures, then refused even with the right password.
    let mut c = Client::connect(h.addr).await;
    c.cmd("EHLO c").await;
    // bob: PLAIN "\0bob@example.org\0wrong"
    let wrong = "AUTH PLAIN AGJvYkBleGFtcGxlLm9yZwB3cm9uZw==";
    for _ in 0..3 {
        assert!(c.cmd(wrong).await.starts_with("535 5.7.8"));
    }
    let right = "AUTH PLAIN AGJvYkBleGFtcGxlLm9yZwBodW50ZXIy";
    let r = c.cmd(right).await;
    assert!(r.starts_with("454 4.7.0"), "{r}");
}

#[tokio::test]
async fn idle_timeout_says_421() {
    let h = harness(Service::Smtp, "command_timeout_secs = 1").await;
    let mut c = Client::connect(h.addr).await;
    let r = c.reply().await;
    assert!(r.starts_with("421 4.4.2"), "{r}");
}

#[test]
fn decoder_limit_is_the_configured_size() {
    let d = DataDecoder::new(1);
    assert!(!d.too_big());
}

/// Refuses bob at RCPT (RFC 5321 §4.1.1.3 with a policy reply).
struct RejectBob;

#[async_trait::async_trait]
impl crate::Check for RejectBob {
    fn name(&self) -> &str {
        "reject-bob"
    }

    async fn rcpt(&self, _: &crate::Context, recipient: &str) -> Verdict {
        if recipient.starts_with("bob@") {
            Verdict::reject(
                550,
                postern_mail::EnhancedCode::new(5, 7, 1),
                "bob does not take mail from you",
            )
        } else {
            Verdict::Accept
        }
    }
}

/// Greylists every message at DATA.
struct GreylistData;

#[async_trait::async_trait]
impl crate::Check for GreylistData {
    fn name(&self) -> &str {
        "greylist"
    }

    async fn data(&self, ctx: &crate::Context, envelope: &Envelope, message: &[u8]) -> Verdict {
        assert_eq!(envelope.recipients.len(), 1);
        assert!(message.starts_with(b"Received: "));
        assert!(ctx.helo.as_deref() == Some("c"));
        Verdict::tempfail(
            451,
            postern_mail::EnhancedCode::new(4, 7, 1),
            "Greylisted, try again later",
        )
    }
}

/// Keeps what it is given, in memory.
#[derive(Default)]
struct MemorySink(std::sync::Mutex<Vec<(Envelope, Vec<u8>)>>);

#[async_trait::async_trait]
impl crate::Sink for MemorySink {
    async fn accept(
        &self,
        id: postern_spool::QueueId,
        envelope: &Envelope,
        message: Vec<u8>,
    ) -> Result<postern_spool::QueueId, crate::SinkError> {
        self.0.lock().unwrap().push((envelope.clone(), message));
        Ok(id)
    }
}

#[tokio::test]
async fn a_check_rejects_at_rcpt_and_another_tempfails_at_data() {
    let checks = crate::Checks::new()
        .with(Arc::new(RejectBob))
        .with(Arc::new(GreylistData));
    let h = harness_with(Service::Smtp, "", |s| s.with_checks(checks)).await;
    let mut c = Client::connect(h.addr).await;
    c.cmd("EHLO c").await;
    assert!(c
        .cmd("MAIL FROM:<a@remote.example>")
        .await
        .starts_with("250 2.1.0"));
    let r = c.cmd("RCPT TO:<bob@example.org>").await;
    assert!(r.starts_with("550 5.7.1 bob does not take mail"), "{r}");
    // The directory still decides first: an unknown user is the directory's 550 5.1.1.
    assert!(c
        .cmd("RCPT TO:<nobody@example.org>")
        .await
        .starts_with("550 5.1.1"));
    assert!(c
        .cmd("RCPT TO:<alice@example.org>")
        .await
        .starts_with("250 2.1.5"));
    assert!(c.cmd("DATA").await.starts_with("354"));
    c.send(b"Subject: t\r\n\r\nhi\r\n.\r\n").await;
    let r = c.reply().await;
    assert!(r.starts_with("451 4.7.1 Greylisted"), "{r}");
    assert!(spooled(&h).is_empty(), "a refused message was spooled");
    // The transaction is over: a new one may start.
    assert!(c
        .cmd("MAIL FROM:<a@remote.example>")
        .await
        .starts_with("250 2.1.0"));
    assert!(c.cmd("QUIT").await.starts_with("221 2.0.0"));
}

#[tokio::test]
async fn a_connect_check_refuses_before_the_greeting() {
    struct Blocklist;
    #[async_trait::async_trait]
    impl crate::Check for Blocklist {
        fn name(&self) -> &str {
            "dnsbl"
        }
        async fn connect(&self, ctx: &crate::Context) -> Verdict {
            assert!(ctx.peer.is_loopback());
            Verdict::reject(554, postern_mail::EnhancedCode::new(5, 7, 1), "Listed")
        }
    }
    let checks = crate::Checks::new().with(Arc::new(Blocklist));
    let h = harness_with(Service::Smtp, "", |s| s.with_checks(checks)).await;
    let tcp = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    let mut reader = BufReader::new(tcp);
    let mut line = String::new();
    reader.read_line(&mut line).await.unwrap();
    assert!(line.starts_with("554 5.7.1 Listed"), "{line}");
}

#[tokio::test]
async fn accepted_mail_goes_to_the_configured_sink() {
    let sink = Arc::new(MemorySink::default());
    let to_server: Arc<dyn crate::Sink> = sink.clone();
    let h = harness_with(Service::Smtp, "", |s| s.with_sink(to_server)).await;
    let mut c = Client::connect(h.addr).await;
    c.cmd("EHLO c").await;
    c.cmd("MAIL FROM:<a@remote.example>").await;
    c.cmd("RCPT TO:<staff@example.org>").await;
    assert!(c.cmd("DATA").await.starts_with("354"));
    c.send(b"Subject: t\r\n\r\nhi\r\n.\r\n").await;
    assert!(c.reply().await.starts_with("250 2.0.0 Ok: queued as "));
    let got = sink.0.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0.recipients[0].address, "staff@example.org");
    assert!(got[0].1.ends_with(b"Subject: t\r\n\r\nhi\r\n"));
    assert!(spooled(&h).is_empty(), "the spool is not the sink here");
}

#[test]
fn without_checks_the_session_never_asks_for_them() {
    let mut s = session("192.0.2.1");
    assert!(matches!(s.start(), Step::Reply(r) if r.starts_with("220 mx.test")));
    s.command(b"EHLO c");
    assert!(
        matches!(s.command(b"MAIL FROM:<a@remote.example>"), Step::Reply(r) if r.starts_with("250"))
    );
    assert!(matches!(
        s.command(b"RCPT TO:<alice@example.org>"),
        Step::Lookup(Lookup::Resolve(_))
    ));
}

#[test]
fn with_checks_the_session_asks_at_each_stage() {
    let mut s = session("192.0.2.1");
    s.set_checks(true);
    assert_eq!(s.start(), Step::Check(crate::Stage::Connect));
    assert!(matches!(s.checked(Verdict::Accept), Step::Reply(r) if r.starts_with("220 mx.test")));
    s.command(b"EHLO c");
    assert_eq!(
        s.command(b"MAIL FROM:<a@remote.example>"),
        Step::Check(crate::Stage::Mail {
            sender: Some("a@remote.example".into())
        })
    );
    assert!(matches!(
        s.checked(Verdict::tempfail(450, postern_mail::EnhancedCode::new(4, 7, 1), "Slow down")),
        Step::Reply(r) if r.starts_with("450 4.7.1")
    ));
    // Refused: no transaction.
    assert!(say(&mut s, "RCPT TO:<alice@example.org>").starts_with("503"));
}

// ----- LMTP (RFC 2033) ------------------------------------------------------------------------

fn lmtp_session() -> Session {
    session_with(Service::Lmtp, "127.0.0.1", "")
}

#[test]
fn lmtp_answers_lhlo_and_refuses_helo_and_ehlo() {
    let mut s = lmtp_session();
    assert!(s.greeting().starts_with("220 mx.test LMTP"));
    // RFC 2033 §4.1.
    assert_eq!(code(&mut s, "EHLO c"), "500 5.5.1");
    assert_eq!(code(&mut s, "HELO c"), "500 5.5.1");
    assert_eq!(code(&mut s, "MAIL FROM:<a@b.example>"), "503 5.5.1");
    let r = say(&mut s, "LHLO mta.example");
    assert!(r.starts_with("250-mx.test\r\n"), "{r}");
    for ext in [
        "PIPELINING",
        "ENHANCEDSTATUSCODES",
        "8BITMIME",
        "SMTPUTF8",
        "CHUNKING",
        "SIZE ",
        "STARTTLS",
    ] {
        assert!(r.contains(ext), "{ext} missing: {r}");
    }
    assert!(!r.contains("AUTH"), "{r}");
    assert!(!r.contains("DSN"), "{r}");
    assert_eq!(code(&mut s, "AUTH PLAIN AGFAYg=="), "502 5.5.1");
    assert!(say(&mut s, "HELP").contains("LHLO"));
}

#[test]
fn smtp_still_does_not_know_lhlo() {
    let mut s = session("192.0.2.1");
    assert_eq!(
        say(&mut s, "LHLO c"),
        "500 5.5.2 Command not recognised\r\n"
    );
    assert_eq!(say(&mut s, "LHLO"), "500 5.5.2 Command not recognised\r\n");
    assert!(!say(&mut s, "EHLO c").contains("LMTP"));
}

#[test]
fn lmtp_takes_local_recipients_only() {
    let mut s = lmtp_session();
    say(&mut s, "LHLO mta");
    assert_eq!(code(&mut s, "DATA"), "503 5.5.1");
    assert_eq!(code(&mut s, "MAIL FROM:<a@remote.example>"), "250 2.1.0");
    // Loopback is trusted to relay in SMTP; LMTP never relays.
    let r = say(&mut s, "RCPT TO:<x@remote.example>");
    assert_eq!(r, "550 5.1.2 <x@remote.example> not a local domain\r\n");
    assert_eq!(code(&mut s, "RCPT TO:<nobody@example.org>"), "550 5.1.1");
    // RFC 2033 §4.2: DATA without an accepted recipient is 503.
    assert_eq!(code(&mut s, "DATA"), "503 5.5.1");
    assert_eq!(code(&mut s, "RCPT TO:<bob@example.org>"), "250 2.1.5");
    assert_eq!(code(&mut s, "RCPT TO:<staff@example.org>"), "250 2.1.5");
    let Outcome::Deliver(envelope, message, id) = data(&mut s, b"Subject: t\r\n\r\nhi\r\n.\r\n")
    else {
        panic!("not handed to delivery")
    };
    let rcpts: Vec<&str> = envelope
        .recipients
        .iter()
        .map(|r| r.address.as_str())
        .collect();
    assert_eq!(rcpts, ["bob@example.org", "staff@example.org"]);
    let text = String::from_utf8_lossy(&message);
    assert!(
        text.starts_with("Received: from mta ([127.0.0.1])"),
        "{text}"
    );
    assert!(text.contains("with LMTP id "), "{text}");
    assert!(text.contains(&id.to_string()), "{text}");
    assert!(text.ends_with("Subject: t\r\n\r\nhi\r\n"), "{text}");
}

#[test]
fn lmtp_replies_once_per_recipient_in_rcpt_order() {
    use postern_mail::{EnhancedCode, Status};
    let mut s = lmtp_session();
    say(&mut s, "LHLO mta");
    say(&mut s, "MAIL FROM:<a@remote.example>");
    say(&mut s, "RCPT TO:<alice@example.org>");
    say(&mut s, "RCPT TO:<bob@example.org>");
    say(&mut s, "RCPT TO:<info@example.org>");
    let Outcome::Deliver(envelope, _, _) = data(&mut s, b"\r\nhi\r\n.\r\n") else {
        panic!("not handed to delivery")
    };
    let replies = s.delivered(
        &envelope,
        vec![
            Status::with_text(
                EnhancedCode::SUCCESS,
                "stored in alice@example.org INBOX as UID 7",
            ),
            Status::new(
                EnhancedCode::new(5, 2, 2),
                "<bob@example.org>: mailbox full (10 of 10 bytes used)",
            ),
            Status::new(
                EnhancedCode::new(4, 2, 0),
                "<info@example.org>: mailbox unavailable: locked",
            ),
        ],
        3,
    );
    assert_eq!(
        replies,
        "250 2.0.0 <alice@example.org> stored in alice@example.org INBOX as UID 7\r\n\
         552 5.2.2 <bob@example.org> mailbox full (10 of 10 bytes used)\r\n\
         451 4.2.0 <info@example.org> mailbox unavailable: locked\r\n"
    );
    // A sink that says too little: the missing ones are temporary failures, never silence.
    let short = s.delivered(&envelope, Vec::new(), 3);
    assert_eq!(short.matches("451 4.3.0").count(), 3, "{short}");
}

#[test]
fn lmtp_refuses_a_whole_message_once_per_recipient() {
    let mut s = session_with(Service::Lmtp, "127.0.0.1", "max_message_size = 100");
    say(&mut s, "LHLO mta");
    say(&mut s, "MAIL FROM:<a@remote.example>");
    say(&mut s, "RCPT TO:<alice@example.org>");
    say(&mut s, "RCPT TO:<bob@example.org>");
    let big = format!("Subject: x\r\n\r\n{}\r\n.\r\n", "y".repeat(200));
    let Outcome::Reply(r) = data(&mut s, big.as_bytes()) else {
        panic!("too big a message accepted")
    };
    assert_eq!(r.matches("552 5.3.4").count(), 2, "{r}");
    // BDAT: a middle chunk is answered once, the last one per recipient.
    say(&mut s, "MAIL FROM:<a@remote.example>");
    say(&mut s, "RCPT TO:<alice@example.org>");
    say(&mut s, "RCPT TO:<bob@example.org>");
    let Outcome::Reply(r) = s.bdat_chunk(10, b"Subject: x".to_vec(), false) else {
        panic!()
    };
    assert!(r.starts_with("250 2.0.0 10 octets"), "{r}");
    let Outcome::Reply(r) = s.bdat_chunk(200, Vec::new(), true) else {
        panic!()
    };
    assert_eq!(r.matches("552 5.3.4").count(), 2, "{r}");
}

#[test]
fn reply_codes_follow_the_enhanced_codes() {
    use crate::session::{rcpt_reply, reply_code};
    use postern_mail::{EnhancedCode, Status};
    assert_eq!(reply_code(EnhancedCode::new(2, 0, 0)), 250);
    assert_eq!(reply_code(EnhancedCode::new(4, 2, 2)), 452);
    assert_eq!(reply_code(EnhancedCode::new(4, 3, 0)), 451);
    assert_eq!(reply_code(EnhancedCode::new(5, 2, 2)), 552);
    assert_eq!(reply_code(EnhancedCode::new(5, 7, 1)), 550);
    assert_eq!(reply_code(EnhancedCode::new(5, 1, 1)), 550);
    let st = Status::new(
        EnhancedCode::new(5, 7, 1),
        "rejected by Sieve: go away\r\nnow",
    );
    assert_eq!(
        rcpt_reply("a@b.example", &st),
        "550 5.7.1 <a@b.example> rejected by Sieve: go away  now\r\n"
    );
}

/// Says, for each recipient, what a real local delivery would: stored, full, or try later.
#[derive(Default)]
struct PerRecipientSink(std::sync::Mutex<Vec<Vec<u8>>>);

#[async_trait::async_trait]
impl crate::Sink for PerRecipientSink {
    async fn accept(
        &self,
        _id: postern_spool::QueueId,
        _envelope: &Envelope,
        _message: Vec<u8>,
    ) -> Result<postern_spool::QueueId, crate::SinkError> {
        Err("LMTP only".into())
    }

    async fn deliver_each(
        &self,
        _id: postern_spool::QueueId,
        envelope: &Envelope,
        message: Vec<u8>,
    ) -> Vec<postern_mail::Status> {
        use postern_mail::{EnhancedCode, Status};
        self.0.lock().unwrap().push(message);
        envelope
            .recipients
            .iter()
            .map(|r| match r.address.as_str() {
                "bob@example.org" => Status::new(
                    EnhancedCode::new(4, 2, 2),
                    format!("<{}>: mailbox full", r.address),
                ),
                a => Status::with_text(EnhancedCode::SUCCESS, format!("stored in {a} INBOX")),
            })
            .collect()
    }
}

async fn lmtp_harness(sink: Option<Arc<dyn crate::Sink>>) -> Harness {
    harness_with(Service::Lmtp, "", move |s| match sink {
        Some(sink) => s.with_sink(sink),
        None => s,
    })
    .await
}

#[tokio::test]
async fn lmtp_pipelined_over_the_wire_gets_one_reply_per_recipient() {
    let sink = Arc::new(PerRecipientSink::default());
    let h = lmtp_harness(Some(sink.clone())).await;
    let mut c = Client::connect(h.addr).await;
    assert!(c.cmd("LHLO mta").await.contains("PIPELINING"));
    c.send(
        b"MAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<x@remote.example>\r\n\
          RCPT TO:<bob@example.org>\r\nRCPT TO:<nobody@example.org>\r\nDATA\r\n",
    )
    .await;
    assert!(c.reply().await.starts_with("250 2.1.0"));
    assert!(c.reply().await.starts_with("250 2.1.5"));
    assert!(c.reply().await.starts_with("550 5.1.2"));
    assert!(c.reply().await.starts_with("250 2.1.5"));
    assert!(c.reply().await.starts_with("550 5.1.1"));
    assert!(c.reply().await.starts_with("354"));
    c.send(b"Subject: t\r\n\r\nhi\r\n.\r\nNOOP\r\n").await;
    assert_eq!(
        c.reply().await,
        "250 2.0.0 <alice@example.org> stored in alice@example.org INBOX\r\n"
    );
    assert_eq!(
        c.reply().await,
        "452 4.2.2 <bob@example.org> mailbox full\r\n"
    );
    assert!(c.reply().await.starts_with("250 2.0.0 Ok"));
    // BDAT: one reply per chunk, then per recipient after the last.
    c.cmd("MAIL FROM:<>").await;
    c.cmd("RCPT TO:<alice@example.org>").await;
    c.cmd("RCPT TO:<staff@example.org>").await;
    c.send(b"BDAT 5\r\nSubje").await;
    assert!(c.reply().await.starts_with("250 2.0.0 5 octets"));
    c.send(b"BDAT 13 LAST\r\nct: t\r\n\r\nhi\r\n").await;
    assert!(c.reply().await.starts_with("250 2.0.0 <alice@example.org>"));
    assert!(c.reply().await.starts_with("250 2.0.0 <staff@example.org>"));
    let got = sink.0.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    assert!(got[1].ends_with(b"Subject: t\r\n\r\nhi\r\n"));
    assert!(c.cmd("QUIT").await.starts_with("221 2.0.0"));
}

#[tokio::test]
async fn lmtp_into_the_spool_sink_reports_each_recipient_queued() {
    let h = lmtp_harness(None).await;
    let mut c = Client::connect(h.addr).await;
    c.cmd("LHLO mta").await;
    c.cmd("MAIL FROM:<a@remote.example>").await;
    c.cmd("RCPT TO:<alice@example.org>").await;
    c.cmd("RCPT TO:<bob@example.org>").await;
    assert!(c.cmd("DATA").await.starts_with("354"));
    c.send(b"Subject: t\r\n\r\nhi\r\n.\r\n").await;
    let a = c.reply().await;
    let b = c.reply().await;
    assert!(
        a.starts_with("250 2.0.0 <alice@example.org> queued as "),
        "{a}"
    );
    assert!(
        b.starts_with("250 2.0.0 <bob@example.org> queued as "),
        "{b}"
    );
    assert_eq!(spooled(&h).len(), 1);
}

/// Findings carry from stage to stage: the connection's for the session, the transaction's
/// until the next MAIL; `edit` adds a header field from them to the message that is queued.
#[tokio::test]
async fn findings_reach_data_and_edit_adds_a_header_field() {
    struct Judge;
    #[async_trait::async_trait]
    impl crate::Check for Judge {
        fn name(&self) -> &str {
            "judge"
        }
        async fn connect(&self, ctx: &crate::Context) -> Verdict {
            ctx.with_findings(|f| {
                f.connection.results.push("iprev=pass".into());
                f.connection.scores.push(crate::Score {
                    check: "judge".into(),
                    points: -1.0,
                    reason: "known client".into(),
                });
            });
            Verdict::Accept
        }
        async fn mail(&self, ctx: &crate::Context, sender: Option<&str>) -> Verdict {
            ctx.with_findings(|f| {
                assert!(
                    f.transaction.notes.is_empty(),
                    "a previous transaction leaked"
                );
                f.transaction
                    .notes
                    .insert("sender".into(), sender.unwrap_or("").into());
                f.transaction.scores.push(crate::Score {
                    check: "judge".into(),
                    points: 3.5,
                    reason: "sender".into(),
                });
            });
            Verdict::Accept
        }
        async fn data(&self, ctx: &crate::Context, _: &Envelope, _: &[u8]) -> Verdict {
            let total = ctx.with_findings(|f| f.total());
            assert_eq!(total, 2.5);
            Verdict::Accept
        }
        async fn edit(&self, ctx: &crate::Context, _: &Envelope, message: &mut Vec<u8>) {
            let field = ctx.with_findings(|f| {
                format!(
                    "X-Judge: {}; sender={}; score={}\r\n",
                    f.results().cloned().collect::<Vec<_>>().join("; "),
                    f.note("sender").unwrap_or("?"),
                    f.total()
                )
            });
            message.splice(0..0, field.into_bytes());
        }
    }
    let sink = Arc::new(MemorySink::default());
    let to_server: Arc<dyn crate::Sink> = sink.clone();
    let checks = crate::Checks::new().with(Arc::new(Judge));
    let h = harness_with(Service::Smtp, "", |s| {
        s.with_checks(checks).with_sink(to_server)
    })
    .await;
    let mut c = Client::connect(h.addr).await;
    c.cmd("EHLO c").await;
    for sender in ["a@remote.example", "b@remote.example"] {
        assert!(c
            .cmd(&format!("MAIL FROM:<{sender}>"))
            .await
            .starts_with("250"));
        assert!(c
            .cmd("RCPT TO:<alice@example.org>")
            .await
            .starts_with("250"));
        assert!(c.cmd("DATA").await.starts_with("354"));
        c.send(b"Subject: t\r\n\r\nhi\r\n.\r\n").await;
        assert!(c.reply().await.starts_with("250 2.0.0"));
    }
    let got = sink.0.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    for (message, sender) in got.iter().map(|g| &g.1).zip(["a", "b"]) {
        let expected =
            format!("X-Judge: iprev=pass; sender={sender}@remote.example; score=2.5\r\nReceived: ");
        assert!(
            message.starts_with(expected.as_bytes()),
            "{}",
            String::from_utf8_lossy(message)
        );
    }
}
