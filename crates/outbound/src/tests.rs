//! The client against scripted SMTP servers on loopback.

use super::*;
use postern_spool::{BodyType, Envelope, Notify, QueueId, RcptState, RcptStatus, Recipient};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// How the scripted server behaves.
#[derive(Clone)]
struct Script {
    greeting: &'static str,
    ehlo: Option<&'static str>,
    /// Reply to a RCPT whose line contains the key.
    rcpt: Vec<(&'static str, &'static str)>,
}

impl Default for Script {
    fn default() -> Script {
        Script {
            greeting: "220 scripted ESMTP",
            ehlo: Some(
                "250-scripted\r\n250-PIPELINING\r\n250-SIZE 100000\r\n250-8BITMIME\r\n250 DSN",
            ),
            rcpt: Vec::new(),
        }
    }
}

struct Scripted {
    addr: SocketAddr,
    /// Every line received, per connection.
    log: Arc<Mutex<Vec<Vec<String>>>>,
}

async fn scripted(script: Script) -> Scripted {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let l2 = log.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let script = script.clone();
            let log = l2.clone();
            let n = {
                let mut g = log.lock().unwrap();
                g.push(Vec::new());
                g.len() - 1
            };
            tokio::spawn(async move {
                let (r, mut w) = conn.into_split();
                let mut r = BufReader::new(r);
                let say = |s: &str| format!("{s}\r\n");
                if w.write_all(say(script.greeting).as_bytes()).await.is_err()
                    || !script.greeting.starts_with("220")
                {
                    return;
                }
                let mut in_data = false;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    log.lock().unwrap()[n].push(line.clone());
                    if in_data {
                        if line == ".\r\n" {
                            in_data = false;
                            let _ = w.write_all(b"250 2.0.0 accepted\r\n").await;
                        }
                        continue;
                    }
                    let u = line.to_ascii_uppercase();
                    let reply = if u.starts_with("EHLO") {
                        script.ehlo.map_or_else(|| say("500 5.5.1 what?"), say)
                    } else if u.starts_with("HELO") {
                        say("250 scripted")
                    } else if u.starts_with("RCPT") {
                        say(script
                            .rcpt
                            .iter()
                            .find(|(k, _)| line.contains(k))
                            .map_or("250 2.1.5 ok", |(_, v)| v))
                    } else if u.starts_with("DATA") {
                        in_data = true;
                        say("354 go")
                    } else if u.starts_with("AUTH PLAIN") {
                        say(if line.trim_end().ends_with("AHVzZXIAcGFzcw==") {
                            "235 2.7.0 ok"
                        } else {
                            "535 5.7.8 bad"
                        })
                    } else if u.starts_with("QUIT") {
                        let _ = w.write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        say("250 2.0.0 ok")
                    };
                    if w.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Scripted { addr, log }
}

fn entry(rcpts: &[&str]) -> QueueEntry {
    let recipients: Vec<Recipient> = rcpts.iter().map(|r| Recipient::new(*r)).collect();
    QueueEntry {
        id: QueueId::parse("ABCDEF").unwrap(),
        envelope: Envelope {
            sender: Some("alice@local.test".into()),
            recipients: recipients.clone(),
            ret: Some(Ret::Headers),
            envid: Some("id 1".into()),
            body: BodyType::EightBitMime,
            smtputf8: false,
            requiretls: false,
            authenticated: None,
            client_ip: None,
            helo: None,
        },
        arrived: 0,
        size: 0,
        recipients: recipients
            .into_iter()
            .map(|r| RcptState {
                recipient: r,
                status: RcptStatus::Pending,
                attempts: 0,
                next_attempt: 0,
                last_error: None,
                expanded_from: None,
                reported: false,
                delay_reported: false,
                scheduled: None,
            })
            .collect(),
        delivered_accounts: Default::default(),
        held: false,
    }
}

fn outbound(routes: &[(&str, SocketAddr)]) -> Outbound {
    let mut s = Settings::default();
    for (d, a) in routes {
        s.routes
            .insert(d.to_string(), (a.ip().to_string(), a.port()));
    }
    Outbound::new(s, Arc::new(NoResolver("no DNS in tests".into())), None)
}

const MSG: &[u8] = b"Subject: t\r\n\r\nline\r\n.dot\r\n";

#[tokio::test]
async fn one_pipelined_transaction_per_domain_with_dsn_parameters() {
    let server = scripted(Script {
        rcpt: vec![
            ("gone@", "550 5.1.1 no such user"),
            ("busy@", "452 4.2.2 mailbox full"),
        ],
        ..Script::default()
    })
    .await;
    let ob = outbound(&[("remote.test", server.addr)]);
    let mut e = entry(&["ok@remote.test", "gone@remote.test", "busy@remote.test"]);
    e.recipients[0].recipient.notify = Notify {
        success: true,
        failure: true,
        delay: false,
    };
    e.recipients[0].recipient.orcpt = Some("rfc822;list+x@local.test".into());
    let out = ob.deliver(&e, MSG.into(), &[0, 1, 2]).await;
    assert!(
        matches!(&out[0], Outcome::Delivered { note, .. } if note.text.contains("250 2.0.0 accepted") && note.text.contains(NOTE_DSN_PASSED_ON)),
        "{out:?}"
    );
    assert!(
        matches!(&out[1], Outcome::Failed(r) if r.text.contains("550 5.1.1 no such user") && r.code.to_string() == "5.1.1"),
        "{out:?}"
    );
    assert!(
        matches!(&out[2], Outcome::Deferred(r) if r.text.contains("452 4.2.2")),
        "{out:?}"
    );
    let log = server.log.lock().unwrap().clone();
    assert_eq!(log.len(), 1, "one connection");
    let lines = &log[0];
    let mail = lines.iter().find(|l| l.starts_with("MAIL")).unwrap();
    assert_eq!(
        mail,
        &format!(
            "MAIL FROM:<alice@local.test> SIZE={} BODY=8BITMIME RET=HDRS ENVID=id+201\r\n",
            MSG.len()
        )
    );
    assert!(
        lines.contains(
            &"RCPT TO:<ok@remote.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;list+2Bx@local.test\r\n"
                .to_string()
        ),
        "{lines:?}"
    );
    assert!(lines.contains(&"..dot\r\n".to_string()), "dot-stuffed");
    assert_eq!(lines.iter().filter(|l| l.starts_with("MAIL")).count(), 1);
}

#[tokio::test]
async fn connections_are_reused_and_helo_is_the_fallback() {
    let server = scripted(Script {
        ehlo: None,
        ..Script::default()
    })
    .await;
    let ob = outbound(&[("old.test", server.addr)]);
    for _ in 0..3 {
        let out = ob.deliver(&entry(&["x@old.test"]), MSG.into(), &[0]).await;
        assert!(
            matches!(&out[0], Outcome::Delivered { note, .. } if note.text.contains(NOTE_RELAYED)),
            "{out:?}"
        );
    }
    let log = server.log.lock().unwrap().clone();
    assert_eq!(log.len(), 1, "one connection for three messages: {log:?}");
    assert!(log[0].iter().any(|l| l.starts_with("HELO")));
    // No ESMTP: no SIZE or BODY parameters.
    assert!(log[0]
        .iter()
        .filter(|l| l.starts_with("MAIL"))
        .all(|l| l == "MAIL FROM:<alice@local.test>\r\n"));
}

#[tokio::test]
async fn size_and_smtputf8_are_refused_before_sending() {
    let server = scripted(Script {
        ehlo: Some("250-scripted\r\n250 SIZE 10"),
        ..Script::default()
    })
    .await;
    let ob = outbound(&[("small.test", server.addr), ("ünicode.test", server.addr)]);
    let out = ob
        .deliver(&entry(&["x@small.test"]), MSG.into(), &[0])
        .await;
    assert!(
        matches!(&out[0], Outcome::Failed(r) if r.text.starts_with("5.3.4")),
        "{out:?}"
    );
    let out = ob
        .deliver(&entry(&["x@ünicode.test"]), b"S".as_slice().into(), &[0])
        .await;
    assert!(
        matches!(&out[0], Outcome::Failed(r) if r.text.starts_with("5.6.7")),
        "{out:?}"
    );
    let log = server.log.lock().unwrap().clone();
    assert!(
        log.iter().flatten().all(|l| !l.starts_with("MAIL")),
        "{log:?}"
    );
}

#[tokio::test]
async fn unreachable_or_unwilling_hosts_defer() {
    // A port with nothing listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let busy = scripted(Script {
        greeting: "421 4.3.2 too busy",
        ..Script::default()
    })
    .await;
    let ob = outbound(&[("closed.test", closed), ("busy.test", busy.addr)]);
    let out = ob
        .deliver(
            &entry(&["a@closed.test", "b@busy.test"]),
            MSG.into(),
            &[0, 1],
        )
        .await;
    assert!(
        matches!(&out[0], Outcome::Deferred(r) if r.text.starts_with("4.4.2")),
        "{out:?}"
    );
    assert!(
        matches!(&out[1], Outcome::Deferred(r) if r.text.contains("421 4.3.2")),
        "{out:?}"
    );
    // No DNS: MX lookups defer.
    let out = ob
        .deliver(&entry(&["a@elsewhere.test"]), MSG.into(), &[0])
        .await;
    assert!(matches!(&out[0], Outcome::Deferred(_)), "{out:?}");
}

#[tokio::test]
async fn the_relay_takes_everything_after_auth() {
    let server = scripted(Script {
        ehlo: Some("250-relay\r\n250 AUTH LOGIN PLAIN"),
        ..Script::default()
    })
    .await;
    let relay = |tls| Relay {
        host: "127.0.0.1".into(),
        port: server.addr.port(),
        domains: Vec::new(),
        username: Some("user".into()),
        password: Some("pass".into()),
        password_file: None,
        tls,
        verify_certificate: false,
    };
    let mut s = Settings {
        relay: Some(relay(RelayTls::None)),
        ..Settings::default()
    };
    let ob = Outbound::new(s.clone(), Arc::new(NoResolver("no DNS".into())), None);
    let out = ob
        .deliver(
            &entry(&["a@anywhere.test", "b@else.test"]),
            MSG.into(),
            &[0, 1],
        )
        .await;
    assert!(
        out.iter().all(|o| matches!(o, Outcome::Delivered { .. })),
        "{out:?}"
    );
    let log = server.log.lock().unwrap().clone();
    assert!(
        log.iter()
            .flatten()
            .any(|l| l == "AUTH PLAIN AHVzZXIAcGFzcw==\r\n"),
        "{log:?}"
    );
    // A relay that must use STARTTLS but does not offer it gets nothing, not even the password.
    s.relay = Some(relay(RelayTls::StartTls));
    let before = server.log.lock().unwrap().len();
    let ob = Outbound::new(s, Arc::new(NoResolver("no DNS".into())), None);
    let out = ob
        .deliver(&entry(&["a@anywhere.test"]), MSG.into(), &[0])
        .await;
    assert!(
        matches!(&out[0], Outcome::Deferred(r) if r.text.starts_with("4.7.10")),
        "{out:?}"
    );
    let log = server.log.lock().unwrap().clone();
    assert!(log[before..]
        .iter()
        .flatten()
        .all(|l| !l.starts_with("AUTH") && !l.starts_with("MAIL")));
}

#[tokio::test]
async fn a_broken_starttls_falls_back_to_plaintext_only_where_allowed() {
    // The server offers STARTTLS but answers it with 250 instead of 220.
    let server = scripted(Script {
        ehlo: Some("250-broken\r\n250 STARTTLS"),
        ..Script::default()
    })
    .await;
    let ob = outbound(&[("lax.test", server.addr), ("strict.test", server.addr)]);
    let out = ob.deliver(&entry(&["a@lax.test"]), MSG.into(), &[0]).await;
    assert!(matches!(&out[0], Outcome::Delivered { .. }), "{out:?}");
    let log = server.log.lock().unwrap().clone();
    assert_eq!(log.len(), 2, "a second, plaintext connection: {log:?}");
    assert!(log[0].iter().any(|l| l.starts_with("STARTTLS")));
    assert!(!log[1].iter().any(|l| l.starts_with("STARTTLS")));

    let mut s = Settings::default();
    s.routes.insert(
        "strict.test".into(),
        ("127.0.0.1".into(), server.addr.port()),
    );
    s.require_tls = vec!["strict.test".into()];
    let ob = Outbound::new(s, Arc::new(NoResolver("no DNS".into())), None);
    let before = server.log.lock().unwrap().len();
    let out = ob
        .deliver(&entry(&["a@strict.test"]), MSG.into(), &[0])
        .await;
    assert!(
        matches!(&out[0], Outcome::Deferred(r) if r.text.starts_with("4.7.5")),
        "{out:?}"
    );
    let log = server.log.lock().unwrap().clone();
    assert!(
        log[before..]
            .iter()
            .flatten()
            .all(|l| !l.starts_with("MAIL")),
        "{log:?}"
    );
}

#[test]
fn xtext_encodes_plus_equals_and_controls() {
    assert_eq!(xtext("a+b=c d"), "a+2Bb+3Dc+20d");
}

#[test]
fn settings_from_the_configuration() {
    let config = postern_config::Config::from_toml(
        "hostname = \"mx.example.org\"\n\
         [outbound]\nmax_connections = 7\nmax_connections_per_host = 2\n\
         [outbound.routes]\n\"b.test\" = \"127.0.0.1:2525\"\n\"c.test\" = \"[::1]:25\"\n\
         [relay]\nhost = \"smart.example.net:465\"\ntls = \"implicit\"\n",
        postern_config::Source::Defaults,
    )
    .unwrap();
    let s = Settings::from_config(&config);
    assert_eq!(s.helo_name, "mx.example.org");
    assert_eq!(s.max_connections, 7);
    assert_eq!(s.routes["b.test"], ("127.0.0.1".to_string(), 2525));
    assert_eq!(s.routes["c.test"], ("::1".to_string(), 25));
    let relay = s.relay.unwrap();
    assert_eq!(
        (relay.host.as_str(), relay.port),
        ("smart.example.net", 465)
    );
    assert_eq!(relay.tls, RelayTls::Implicit);
}

/// RFC 8689 §5: a REQUIRETLS message to a route without verified TLS fails with 5.7.30 before
/// any connection; with `TLS-Required: No` (and no REQUIRETLS) the same route delivers.
#[tokio::test]
async fn requiretls_needs_a_verified_route() {
    let server = scripted(Script::default()).await;
    let ob = outbound(&[("plain.test", server.addr)]);
    let mut e = entry(&["x@plain.test"]);
    e.envelope.requiretls = true;
    let out = ob.deliver(&e, MSG.into(), &[0]).await;
    assert!(
        matches!(&out[0], Outcome::Failed(r) if r.text.starts_with("5.7.30")),
        "{out:?}"
    );
    assert!(server.log.lock().unwrap().is_empty(), "no connection");
    let mut e = entry(&["x@plain.test"]);
    e.envelope.requiretls = false;
    let msg = b"TLS-Required: No\r\nSubject: s\r\n\r\nbody\r\n";
    let out = ob.deliver(&e, msg.as_slice().into(), &[0]).await;
    assert!(matches!(&out[0], Outcome::Delivered { .. }), "{out:?}");
    let log = server.log.lock().unwrap().clone();
    assert!(
        log.iter().flatten().all(|l| !l.contains("REQUIRETLS")),
        "{log:?}"
    );
}
