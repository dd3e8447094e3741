//! SMTP: the command line parser, the session state machine with its DATA and BDAT framing, and
//! the DATA decoder against the outbound client's dot-stuffing.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use base64::Engine;
use postern_config::{Config, Service, Source};
use postern_directory::{DirectoryOptions, PasswordParams, SaslSession, SaslStep, SqliteDirectory};
use postern_mail::wire::dot_stuff;
use postern_mail::xtext::decode as xtext_decode;
use postern_net::TlsInfo;
use postern_smtp::message::DataDecoder;
use postern_smtp::parse::{parse_command, parse_mailbox, Command, Param};
use postern_smtp::session::{Answer, Lookup, Outcome, Session, Settings, Step};
use postern_smtp::Verdict;
use postern_spool::QueueId;

use crate::directory::FakeAuthenticator;

/// One SMTP command line (RFC 5321 §4.1, without its CRLF) through
/// [`postern_smtp::parse::parse_command`].
///
/// Checks: no panic; a parsed command written back in its canonical wire form parses to the same
/// command (so the parser and [`Command`] agree on what was said); every mailbox reparses from its
/// `Display` form (the quoting of local parts); xtext parameter values (RFC 3461 §4) decode
/// without panicking.
pub fn smtp_command(data: &[u8]) {
    check_command_line(data);
}

fn check_command_line(line: &[u8]) {
    let Ok(cmd) = parse_command(line) else {
        return;
    };
    let wire = wire_form(&cmd);
    assert_eq!(
        parse_command(wire.as_bytes()).as_ref(),
        Ok(&cmd),
        "{wire:?} does not reparse to the command it was written from"
    );
    match &cmd {
        Command::Mail {
            sender: Some(m), ..
        }
        | Command::Rcpt { recipient: m, .. }
            if !m.domain.is_empty() =>
        {
            assert_eq!(parse_mailbox(&m.to_string()).as_ref(), Ok(m));
        }
        _ => {}
    }
    if let Command::Mail { params, .. } | Command::Rcpt { params, .. } = &cmd {
        for v in params.iter().filter_map(|p| p.value.as_deref()) {
            let _ = xtext_decode(v);
        }
    }
}

/// The canonical line for a command.
fn wire_form(cmd: &Command) -> String {
    fn params(ps: &[Param]) -> String {
        ps.iter()
            .map(|p| match &p.value {
                Some(v) => format!(" {}={v}", p.keyword),
                None => format!(" {}", p.keyword),
            })
            .collect()
    }
    match cmd {
        Command::Ehlo(n) => format!("EHLO {n}"),
        Command::Helo(n) => format!("HELO {n}"),
        Command::Lhlo(n) => format!("LHLO {n}"),
        Command::Mail { sender, params: p } => format!(
            "MAIL FROM:<{}>{}",
            sender.as_ref().map(|m| m.to_string()).unwrap_or_default(),
            params(p)
        ),
        // RFC 5321 §4.1.1.3: the bare "<Postmaster>" is the one mailbox without a domain.
        Command::Rcpt {
            recipient,
            params: p,
        } if recipient.domain.is_empty() => format!("RCPT TO:<Postmaster>{}", params(p)),
        Command::Rcpt {
            recipient,
            params: p,
        } => format!("RCPT TO:<{recipient}>{}", params(p)),
        Command::Data => "DATA".into(),
        Command::Bdat { size, last } => {
            format!("BDAT {size}{}", if *last { " LAST" } else { "" })
        }
        Command::Rset => "RSET".into(),
        Command::Vrfy(a) => format!("VRFY {a}"),
        Command::Expn(a) => format!("EXPN {a}"),
        Command::Help => "HELP".into(),
        Command::Noop => "NOOP".into(),
        Command::Quit => "QUIT".into(),
        Command::StartTls => "STARTTLS".into(),
        Command::Auth { mechanism, initial } => match initial {
            Some(i) => format!("AUTH {mechanism} {i}"),
            None => format!("AUTH {mechanism}"),
        },
    }
}

/// RFC 5321 §4.2: one or more reply lines, `xyz-text` then `xyz text`, each ending in CRLF, no
/// CR or LF anywhere else (a peer's bytes echoed into a reply must not start a new one).
fn check_reply(r: &str) {
    assert!(r.ends_with("\r\n"), "reply without CRLF: {r:?}");
    let lines: Vec<&str> = r[..r.len() - 2].split("\r\n").collect();
    let mut code = None;
    for (i, l) in lines.iter().enumerate() {
        let b = l.as_bytes();
        assert!(
            b.len() >= 3 && b[..3].iter().all(u8::is_ascii_digit),
            "reply line without a code: {r:?}"
        );
        assert!(
            !l.contains(['\r', '\n']),
            "bare CR or LF inside a reply: {r:?}"
        );
        let last = i + 1 == lines.len();
        match b.get(3) {
            None | Some(b' ') => {}
            Some(b'-') => {}
            Some(_) => panic!("reply code not followed by SP or '-': {r:?}"),
        }
        // Within one reply every line has the same code, and only the last one has no '-'.
        // (Several replies may be concatenated: a 5xx followed by the closing 421.)
        if b.get(3) == Some(&b'-') {
            assert!(!last, "last reply line continues: {r:?}");
            if let Some(c) = code {
                assert_eq!(c, &l[..3], "code changes inside a reply: {r:?}");
            }
            code = Some(&l[..3]);
        } else {
            if let Some(c) = code {
                assert_eq!(c, &l[..3], "code changes inside a reply: {r:?}");
            }
            code = None;
        }
    }
}

struct SessionWorld {
    settings: Arc<Settings>,
    directory: Arc<SqliteDirectory>,
}

fn world() -> &'static SessionWorld {
    static WORLD: OnceLock<SessionWorld> = OnceLock::new();
    WORLD.get_or_init(|| {
        let config = Config::from_toml(
            "hostname = \"mx.test\"\n[smtp]\nmax_recipients = 3\nmax_bad_commands = 8\n\
             max_message_size = 4096\nmax_line_length = 512\nmax_commands = 64\n\
             vrfy = \"authenticated\"\nexpn = \"authenticated\"\n",
            Source::Defaults,
        )
        .expect("fuzz SMTP configuration");
        let directory = SqliteDirectory::open_in_memory(DirectoryOptions {
            password_params: PasswordParams::insecure_fast_for_tests(),
            ..DirectoryOptions::default()
        })
        .expect("in-memory directory");
        directory.add_domain("example.org").expect("domain");
        directory
            .add_account("alice@example.org", "secret")
            .expect("account");
        directory
            .add_alias(
                "staff@example.org",
                &["alice@example.org", "bob@remote.test"],
            )
            .expect("alias");
        SessionWorld {
            settings: Arc::new(Settings {
                hostname: config.hostname,
                smtp: config.smtp,
                allow_plaintext: config.auth.allow_plaintext,
            }),
            directory: Arc::new(directory),
        }
    })
}

/// A whole SMTP session (RFC 5321, RFC 3030 BDAT, RFC 4954 AUTH, RFC 3207 STARTTLS) through
/// the I/O-free [`Session`], driven as the server's driver drives it: lines split at LF (CR
/// stripped, over-long lines refused), the DATA phase fed to the [`DataDecoder`] until its
/// terminator, BDAT chunks taken as the next `size` octets, SASL exchanges over the following
/// base64 lines (a fake authenticator knows `alice@example.org` / `secret`), STARTTLS as an
/// immediate successful handshake, and every queued message acknowledged.
///
/// The first octet picks the listener (MX, submission, implicit-TLS submission) and whether the
/// peer is loopback. Checks: no panic; every reply is a well-formed RFC 5321 §4.2 reply with no
/// CR or LF of the client's inside; a queued message has 1 to `max_recipients` recipients and
/// stays within the size limit (plus our trace header); each command line also passes
/// [`smtp_command`]'s checks.
pub fn smtp_session(data: &[u8]) {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let w = world();
    let service = match mode % 3 {
        0 => Service::Smtp,
        1 => Service::Submission,
        _ => Service::Submissions,
    };
    let loopback = mode & 0x04 != 0;
    let peer: IpAddr = if loopback {
        [127, 0, 0, 1].into()
    } else {
        [192, 0, 2, 7].into()
    };
    let tls = (service == Service::Submissions).then(tls_info);
    let mut s = Session::new(
        w.settings.clone(),
        service,
        peer,
        loopback,
        tls,
        mode & 0x08 == 0,
    );
    check_reply(&s.greeting());
    let limit = w.settings.smtp.max_line_length;
    let max_size = w.settings.smtp.max_message_size;
    while let Some(line) = take_line(&mut rest) {
        let step = if line.len() + 2 > limit {
            s.error_reply(reply(500, "5.5.2", "Line too long"))
        } else {
            check_command_line(line);
            let step = s.command(line);
            settle(&w.directory, &mut s, step)
        };
        let outcome = match step {
            // `settle` answered these.
            Step::Lookup(_) | Step::Check(_) => return,
            Step::Reply(r) => {
                check_reply(&r);
                continue;
            }
            Step::Close(r) => {
                check_reply(&r);
                return;
            }
            Step::StartTls => {
                // RFC 3207 §4.2: what was pipelined after STARTTLS is discarded; here the
                // handshake succeeds and the rest of the input is the TLS session's.
                s.tls_started(Some(tls_info()));
                continue;
            }
            Step::Auth { mechanism, initial } => {
                let mut sasl = SaslSession::new(mechanism, Arc::new(FakeAuthenticator));
                let mut step = sasl.start(initial.as_deref());
                let r = loop {
                    match step {
                        Ok(SaslStep::Challenge(_)) => {
                            let Some(l) = take_line(&mut rest) else {
                                return;
                            };
                            if l == b"*" {
                                break reply(501, "5.0.0", "Authentication cancelled");
                            }
                            match base64::engine::general_purpose::STANDARD.decode(l) {
                                Ok(answer) => step = sasl.step(&answer),
                                Err(_) => break reply(501, "5.5.2", "Invalid base64 data"),
                            }
                        }
                        Ok(SaslStep::Done(c)) => {
                            s.authenticated(c.account);
                            break reply(235, "2.7.0", "Authentication successful");
                        }
                        Err(_) => break reply(535, "5.7.8", "Authentication credentials invalid"),
                    }
                };
                if r.starts_with('5') {
                    match s.error_reply(r) {
                        Step::Close(_) => return,
                        _ => continue,
                    }
                }
                continue;
            }
            Step::Data(mut decoder) => {
                let Some(n) = decoder.feed(rest) else {
                    return;
                };
                rest = &rest[n..];
                s.finish_data(*decoder)
            }
            Step::Bdat { size, last } => {
                let room = s.bdat_room();
                let Ok(size_usize) = usize::try_from(size) else {
                    return;
                };
                if rest.len() < size_usize {
                    return;
                }
                let chunk = if size <= room {
                    rest[..size_usize].to_vec()
                } else {
                    Vec::new()
                };
                rest = &rest[size_usize..];
                s.bdat_chunk(size, chunk, last)
            }
        };
        match outcome {
            Outcome::Reply(r) => {
                check_reply(&r);
                if r.starts_with('5') {
                    if let Step::Close(r) = s.error_reply(r) {
                        check_reply(&r);
                        return;
                    }
                }
            }
            Outcome::Enqueue(envelope, message, id) => {
                let n = envelope.recipients.len();
                assert!(
                    (1..=w.settings.smtp.max_recipients).contains(&n),
                    "{n} recipients queued"
                );
                // Our Received header is at most a few hundred octets on top of the limit.
                assert!(
                    message.len() as u64 <= max_size + 2048,
                    "a {} octet message passed the {max_size} octet limit",
                    message.len()
                );
                // The id the Received header names is a queue id.
                assert!(QueueId::parse(id.as_str()).is_some(), "{id}");
                let message_id = postern_smtp::message::header_value(&message, "Message-ID");
                check_reply(&s.enqueued(Ok(id), &envelope, message.len(), message_id.as_deref()));
            }
            Outcome::Check(..) => panic!("no checks are configured"),
            Outcome::Deliver(..) => panic!("an SMTP session never delivers itself"),
        }
    }
}

/// Answers the session's lookups from the directory, synchronously, as the driver does.
fn settle(d: &SqliteDirectory, s: &mut Session, mut step: Step) -> Step {
    loop {
        step = match step {
            Step::Lookup(l) => s.answer(match &l {
                Lookup::Resolve(a) => Answer::Resolution(d.resolve(a).map_err(|e| e.to_string())),
                Lookup::Expand(a) => Answer::Resolution(d.expand(a).map_err(|e| e.to_string())),
                Lookup::PostmasterDomain(h) => Answer::Domain(match d.is_local_domain(h) {
                    Ok(true) => h.clone(),
                    _ => d
                        .list_domains()
                        .ok()
                        .and_then(|l| l.into_iter().next())
                        .map_or_else(|| h.clone(), |x| x.name),
                }),
            }),
            Step::Check(_) => s.checked(Verdict::Accept),
            other => return other,
        };
    }
}

fn tls_info() -> TlsInfo {
    TlsInfo {
        version: "TLSv1.3".into(),
        cipher: "TLS13_AES_128_GCM_SHA256".into(),
        server_name: None,
    }
}

fn reply(code: u16, enhanced: &str, text: &str) -> String {
    format!("{code} {enhanced} {text}\r\n")
}

/// The next line (without LF or CRLF) as the driver reads it; `None` at the end of input without
/// a final LF (the connection closed mid-line).
fn take_line<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let pos = rest.iter().position(|&b| b == b'\n')?;
    let line = &rest[..pos];
    *rest = &rest[pos + 1..];
    Some(line.strip_suffix(b"\r").unwrap_or(line))
}

/// The DATA decoder (RFC 5321 §4.1.1.4, §4.5.2) on its own and against the outbound client's
/// dot-stuffing ([`postern_mail::wire::dot_stuff`]).
///
/// Checks: no panic; feeding the input in chunks (sizes taken from the first octet) gives the
/// same terminator position and message as feeding it at once; a decoder with a small limit
/// reports `too_big` exactly when the message is larger and keeps a prefix of it; and the input
/// taken as a message, dot-stuffed, is read back by the decoder as that message with canonical
/// CRLF line ends, the terminator found at the very end and nowhere earlier (no smuggled end of
/// data, RFC 5321 §2.3.8).
pub fn smtp_data(data: &[u8]) {
    let Some((&step, input)) = data.split_first() else {
        return;
    };
    const LIMIT: u64 = 1 << 20;
    // Whole.
    let mut whole = DataDecoder::new(LIMIT);
    let end = whole.feed(input);
    // In chunks.
    let chunk = usize::from(step % 17) + 1;
    let mut chunked = DataDecoder::new(LIMIT);
    let mut chunked_end = None;
    let mut at = 0;
    while at < input.len() {
        let piece = &input[at..(at + chunk).min(input.len())];
        if let Some(n) = chunked.feed(piece) {
            chunked_end = Some(at + n);
            break;
        }
        at += piece.len();
    }
    assert_eq!(end, chunked_end, "chunking changed the end of data");
    let whole_message = whole.into_message();
    assert_eq!(whole_message, chunked.into_message());
    // A small limit: too_big exactly past it, and what is kept is a prefix.
    let small = u64::from(step);
    let mut limited = DataDecoder::new(small);
    limited.feed(input);
    let too_big = limited.too_big();
    let kept = limited.into_message();
    assert_eq!(too_big, whole_message.len() as u64 > small);
    assert!(whole_message.starts_with(&kept));
    assert!(kept.len() as u64 <= small);
    // The outbound writer's stuffing, read back by the server's decoder.
    let stuffed = dot_stuff(input);
    let mut back = DataDecoder::new(LIMIT);
    assert_eq!(
        back.feed(&stuffed),
        Some(stuffed.len()),
        "the terminator of a dot-stuffed message was not found at its end"
    );
    assert_eq!(back.into_message(), canonical_crlf(input));
}

/// The message as it should arrive: bare LF as CRLF, and a CRLF after an unterminated last line
/// (RFC 5321 §4.1.1.4: the data ends with a line).
pub(crate) fn canonical_crlf(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 2);
    let mut prev = 0u8;
    for &b in message {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    if !message.is_empty() && prev != b'\n' {
        out.extend_from_slice(b"\r\n");
    }
    out
}
