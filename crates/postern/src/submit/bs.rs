//! `sendmail -bs`: an SMTP session (RFC 5321) on standard input and output, run by the SMTP
//! crate's own I/O-free session state machine. Each accepted message is submitted like any
//! other `sendmail` message (socket, else maildrop), under the caller's identity: MAIL FROM is
//! the `-f` of the request, so the same sender policy applies.
//!
//! The peer is the local user, not the network: recipients are not resolved here (the queue
//! resolves them), and bare LF line ends are taken as CRLF (a script writing to a pipe is not
//! the SMTP smuggling risk a network peer is).

use super::client::submit;
use super::options::Options;
use super::request::{Rcpt, Request};
use super::{Refusal, EX_NOPERM, EX_TEMPFAIL};
use postern_config::{Config, Network, Service};
use postern_directory::Resolution;
use postern_smtp::{Answer, Lookup, Outcome, Session, Settings, Step};
use std::io::{BufRead, Read, Write};
use std::sync::Arc;

/// The SMTP reply to a refused submission (RFC 3463 codes).
fn refusal_reply(r: &Refusal) -> String {
    let text = r.text.replace(['\r', '\n'], " ");
    match r.code {
        EX_NOPERM => format!("553 5.7.1 {text}\r\n"),
        EX_TEMPFAIL | super::EX_UNAVAILABLE | super::EX_CANTCREAT => {
            format!("451 4.3.0 {text}\r\n")
        }
        _ => format!("554 5.6.0 {text}\r\n"),
    }
}

/// A line (or chunk) from the client, with a bare LF made CRLF.
fn crlf(mut line: Vec<u8>) -> Vec<u8> {
    if line.ends_with(b"\n") && !line.ends_with(b"\r\n") {
        line.pop();
        line.extend_from_slice(b"\r\n");
    }
    line
}

/// Runs the session until QUIT or the end of input.
pub(crate) fn run(config: &Config, opts: &Options) -> Result<(), Refusal> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    session(
        config,
        opts,
        &mut stdin.lock(),
        &mut stdout.lock(),
        &|c, r| submit(c, r),
    )
}

/// The session over any reader and writer; `send` submits a message (tests replace it).
pub(crate) fn session(
    config: &Config,
    opts: &Options,
    input: &mut impl BufRead,
    output: &mut impl Write,
    send: &dyn Fn(&Config, &Request) -> Result<String, Refusal>,
) -> Result<(), Refusal> {
    let io_err = |e: std::io::Error| Refusal::new(EX_TEMPFAIL, format!("-bs: {e}"));
    let mut smtp = config.smtp.clone();
    // The local user may send anywhere, as with the command line: the pipe is trusted.
    smtp.trusted_networks = Network::parse("127.0.0.0/8").into_iter().collect();
    let settings = Arc::new(Settings {
        hostname: config.hostname.clone(),
        smtp,
        allow_plaintext: false,
    });
    let max_line = config.smtp.max_line_length;
    let mut s = Session::new(
        settings,
        Service::Smtp,
        std::net::IpAddr::from([127, 0, 0, 1]),
        true,
        None,
        false,
    );
    let domain = super::compose::local_domain(config).to_string();
    let mut step = s.start();
    loop {
        let reply = match step {
            Step::Reply(r) => r,
            Step::Close(r) => {
                output.write_all(r.as_bytes()).map_err(io_err)?;
                output.flush().map_err(io_err)?;
                return Ok(());
            }
            Step::StartTls => "454 4.7.0 TLS is not available on a local pipe\r\n".to_string(),
            Step::Auth { .. } => match s.error_reply(
                "503 5.5.1 AUTH is not needed on a local pipe: you are known by your login\r\n"
                    .to_string(),
            ) {
                Step::Reply(r) => r,
                other => {
                    step = other;
                    continue;
                }
            },
            Step::Lookup(l) => {
                let answer = match l {
                    // Resolved by the queue, as for the command line.
                    Lookup::Resolve(_) => Answer::Resolution(Ok(Resolution::NotLocal)),
                    Lookup::Expand(_) => Answer::Resolution(Ok(Resolution::NotFound)),
                    Lookup::PostmasterDomain(_) => Answer::Domain(domain.clone()),
                };
                step = s.answer(answer);
                continue;
            }
            Step::Check(_) => unreachable!("no checks are configured on -bs sessions"),
            Step::Data(mut decoder) => {
                output
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .map_err(io_err)?;
                output.flush().map_err(io_err)?;
                loop {
                    let mut line = Vec::new();
                    if input.read_until(b'\n', &mut line).map_err(io_err)? == 0 {
                        return Ok(()); // the client went away mid-message: nothing accepted
                    }
                    if decoder.feed(&crlf(line)).is_some() {
                        break;
                    }
                }
                let outcome = s.finish_data(*decoder);
                finish(config, opts, &mut s, outcome, send)
            }
            Step::Bdat { size, last } => {
                let room = s.bdat_room();
                let mut data = Vec::new();
                (&mut *input)
                    .take(size)
                    .read_to_end(&mut data)
                    .map_err(io_err)?;
                if (data.len() as u64) < size {
                    return Ok(());
                }
                if size > room {
                    data.clear();
                }
                let outcome = s.bdat_chunk(size, data, last);
                finish(config, opts, &mut s, outcome, send)
            }
        };
        output.write_all(reply.as_bytes()).map_err(io_err)?;
        output.flush().map_err(io_err)?;
        let mut line = Vec::new();
        let n = (&mut *input)
            .take(max_line as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(io_err)?;
        if n == 0 {
            return Ok(());
        }
        if n > max_line {
            output
                .write_all(b"500 5.5.6 Line too long\r\n")
                .map_err(io_err)?;
            return Ok(());
        }
        let line = crlf(line);
        step = s.command(line.strip_suffix(b"\r\n").unwrap_or(&line));
    }
}

/// The end of a message: submit it and answer.
fn finish(
    config: &Config,
    opts: &Options,
    s: &mut Session,
    outcome: Outcome,
    send: &dyn Fn(&Config, &Request) -> Result<String, Refusal>,
) -> String {
    let (envelope, message) = match outcome {
        Outcome::Reply(r) => return r,
        // Deliver is LMTP's; this session is SMTP, so it never comes, but it is a message too.
        Outcome::Enqueue(e, m, _) | Outcome::Check(e, m, _) | Outcome::Deliver(e, m, _) => (e, m),
    };
    // The session's own Received field (a network view: "from HELO ([127.0.0.1])") is
    // replaced by the local submission's.
    let body = {
        let mut end = 0;
        let mut lines = message.split_inclusive(|&b| b == b'\n');
        if let Some(first) = lines.next() {
            end = first.len();
            for l in lines {
                if l.first().is_some_and(|&b| b == b' ' || b == b'\t') {
                    end += l.len();
                } else {
                    break;
                }
            }
        }
        message[end..].to_vec()
    };
    let req = Request {
        from: Some(envelope.sender.clone().unwrap_or_default()),
        full_name: opts.full_name.clone(),
        recipients: envelope
            .recipients
            .iter()
            .map(|r| Rcpt {
                address: r.address.clone(),
                notify: Some(r.notify),
            })
            .collect(),
        extract: false,
        notify: None,
        ret: envelope.ret,
        envid: envelope.envid.clone(),
        body: Some(envelope.body),
        message: body,
    };
    let size = req.message.len();
    match send(config, &req) {
        Ok(what) => {
            let id = what.strip_prefix("queued as ").unwrap_or("maildrop");
            match postern_spool::QueueId::parse(id) {
                Some(qid) => s.enqueued(Ok(qid), &envelope, size, None),
                // Dropped into the maildrop: durable, queued when serve starts.
                None => {
                    "250 2.0.0 Ok: in the maildrop, sent when postern serve runs\r\n".to_string()
                }
            }
        }
        Err(r) => refusal_reply(&r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_config::Source;
    use std::sync::Mutex;

    #[test]
    fn a_scripted_dialogue() {
        let config = Config::from_toml("hostname = \"host.example\"\n", Source::Defaults).unwrap();
        let sent: Mutex<Vec<Request>> = Mutex::new(Vec::new());
        let send = |_: &Config, r: &Request| -> Result<String, Refusal> {
            sent.lock().unwrap().push(r.clone());
            if r.from.as_deref() == Some("boss@host.example") {
                return Err(Refusal::new(EX_NOPERM, "not yours"));
            }
            Ok(format!("queued as {}", postern_spool::QueueId::generate()))
        };
        let input = "EHLO me\nMAIL FROM:<ann@host.example>\nRCPT TO:<bob@else.example> NOTIFY=NEVER\nDATA\nSubject: hi\n\n..dot\n.\nMAIL FROM:<boss@host.example>\nRCPT TO:<bob@else.example>\nDATA\nx\n.\nAUTH PLAIN AGFAYg==\nQUIT\n";
        let mut out = Vec::new();
        session(
            &config,
            &Options::default(),
            &mut input.as_bytes(),
            &mut out,
            &send,
        )
        .unwrap();
        let out = String::from_utf8(out).unwrap();
        let codes: Vec<&str> = out.lines().map(|l| &l[..4]).collect();
        assert!(out.starts_with("220 host.example ESMTP"), "{out}");
        assert!(codes.contains(&"354 "), "{out}");
        assert!(out.contains("250 2.0.0 Ok: queued as "), "{out}");
        assert!(out.contains("553 5.7.1 not yours"), "{out}");
        assert!(out.contains("503 5.5.1 AUTH"), "{out}");
        assert!(
            out.ends_with("221 2.0.0 host.example closing connection\r\n"),
            "{out}"
        );
        let sent = sent.into_inner().unwrap();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0].from.as_deref(), Some("ann@host.example"));
        assert_eq!(sent[0].recipients[0].address, "bob@else.example");
        assert_eq!(
            sent[0].recipients[0].notify,
            Some(postern_spool::Notify::NEVER)
        );
        assert_eq!(sent[0].message, b"Subject: hi\r\n\r\n.dot\r\n");
    }
}
