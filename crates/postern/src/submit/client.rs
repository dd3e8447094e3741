//! The client side: `sendmail` reads the message and hands it to the running `serve` through
//! `submit.sock`, or, when none runs, to the maildrop. It starts no runtime, opens no database
//! and sets up no logging: a cron job's mail costs one process start and one socket round trip.

use super::options::{self, Mode, Options};
use super::request::{Rcpt, Request};
use super::{Refusal, EX_CONFIG, EX_DATAERR, EX_NOPERM, EX_TEMPFAIL, EX_UNAVAILABLE, EX_USAGE};
use postern_config::Config;
use std::io::{BufRead, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// How long the client waits for the server's answer (the server's own limits are shorter).
const REPLY_TIMEOUT: Duration = Duration::from_secs(600);

/// Runs `sendmail`/`mailq`/`newaliases` with the arguments after the program name.
pub(crate) fn main(
    prog: &str,
    mode: Mode,
    args: &[String],
    config_path: Option<PathBuf>,
) -> ExitCode {
    crate::private_data::restrict_umask();
    let opts = match mode {
        // mailq and newaliases take no sendmail options (newaliases passes its own on).
        Mode::Mailq => Options {
            mode,
            ..Options::default()
        },
        Mode::Newaliases => return newaliases(args, config_path),
        _ => match options::parse(args, mode) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("{prog}: {}", e.0);
                eprintln!(
                    "usage: {prog} [-t] [-i] [-f sender] [-F name] [-N notify] [-R full|hdrs] \
                     [-V envid] [-bm|-bs|-bp|-bi] [--] [recipient ...]"
                );
                return ExitCode::from(EX_USAGE);
            }
        },
    };
    let config = match Config::load(opts.config.as_deref().or(config_path.as_deref())) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{prog}: {e}");
            return ExitCode::from(EX_CONFIG);
        }
    };
    let result = match opts.mode {
        Mode::Deliver => deliver(&config, &opts),
        Mode::Smtp => super::bs::run(&config, &opts),
        Mode::Mailq => mailq(&config),
        // -bi, -I: sendmail's other options mean nothing to newaliases.
        Mode::Newaliases => return newaliases(&[], opts.config.or(config_path)),
        Mode::Flush => flush(&config),
        Mode::Nothing => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(r) => {
            eprintln!("{prog}: {}", r.text);
            ExitCode::from(r.code)
        }
    }
}

/// `-bm`: read, submit, say nothing unless asked (`-v`).
fn deliver(config: &Config, opts: &Options) -> Result<(), Refusal> {
    let message = read_message(
        &mut std::io::stdin().lock(),
        opts.ignore_dots,
        config.smtp.max_message_size,
    )?;
    let req = Request {
        from: opts.from.clone(),
        full_name: opts.full_name.clone(),
        recipients: opts
            .recipients
            .iter()
            .map(|a| Rcpt {
                address: a.clone(),
                notify: None,
            })
            .collect(),
        extract: opts.extract,
        notify: opts.notify,
        ret: opts.ret,
        envid: opts.envid.clone(),
        body: opts.body,
        message,
    };
    if req.recipients.is_empty() && !req.extract {
        return Err(Refusal::new(
            EX_USAGE,
            "no recipients: give addresses as arguments, or -t to take them from the header",
        ));
    }
    let where_ = submit(config, &req)?;
    if opts.verbose > 0 {
        eprintln!("sendmail: {where_}");
    }
    Ok(())
}

/// The message on `input`: all of it with `-i`, else up to a line holding a single `.`.
/// Refused once it exceeds `limit` octets (`[smtp] max_message_size`).
pub(crate) fn read_message(
    input: &mut impl BufRead,
    ignore_dots: bool,
    limit: u64,
) -> Result<Vec<u8>, Refusal> {
    let too_big = || {
        Refusal::new(
            EX_DATAERR,
            format!("the message is larger than {limit} octets (smtp.max_message_size)"),
        )
    };
    let read_err = |e: std::io::Error| {
        Refusal::new(
            EX_DATAERR,
            format!("reading the message on standard input: {e}"),
        )
    };
    let mut out = Vec::new();
    if ignore_dots {
        input
            .take(limit.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(read_err)?;
        if out.len() as u64 > limit {
            return Err(too_big());
        }
        return Ok(out);
    }
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = input.read_until(b'\n', &mut line).map_err(read_err)?;
        if n == 0 || matches!(line.as_slice(), b".\n" | b".\r\n" | b".") {
            break;
        }
        out.extend_from_slice(&line);
        if out.len() as u64 > limit {
            return Err(too_big());
        }
    }
    Ok(out)
}

/// Hands a request to `serve` (or the maildrop); returns what happened, for `-v`.
pub(crate) fn submit(config: &Config, req: &Request) -> Result<String, Refusal> {
    let path = super::socket_path(&config.data_dir);
    let stream = match std::os::unix::net::UnixStream::connect(&path) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            let name = super::maildrop::write(config, req)?;
            return Ok(format!(
                "postern serve is not running: the message waits in the maildrop ({name}) \
                 and is sent when it starts"
            ));
        }
        Err(e) => {
            return Err(Refusal::new(
                EX_UNAVAILABLE,
                format!("cannot reach postern serve through {}: {e}", path.display()),
            ))
        }
    };
    let reply = exchange(stream, b"SUBMIT\n", &req.encode())?;
    let line = reply.lines().next().unwrap_or("");
    match parse_reply(line) {
        Ok(id) => Ok(format!("queued as {id}")),
        Err(r) => Err(r),
    }
}

/// Sends one request and reads the whole answer.
fn exchange(
    mut stream: std::os::unix::net::UnixStream,
    verb: &[u8],
    body: &[u8],
) -> Result<String, Refusal> {
    let lost = |e: std::io::Error| {
        Refusal::new(
            EX_TEMPFAIL,
            format!("the connection to postern serve failed: {e}; try again"),
        )
    };
    stream.set_read_timeout(Some(REPLY_TIMEOUT)).map_err(lost)?;
    stream.write_all(verb).map_err(lost)?;
    stream.write_all(body).map_err(lost)?;
    stream.shutdown(std::net::Shutdown::Write).map_err(lost)?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).map_err(lost)?;
    if reply.is_empty() {
        return Err(Refusal::new(
            EX_TEMPFAIL,
            "postern serve closed the connection without an answer; try again",
        ));
    }
    Ok(reply)
}

/// `ok ID` or `error CODE TEXT`.
pub(crate) fn parse_reply(line: &str) -> Result<String, Refusal> {
    if let Some(id) = line.strip_prefix("ok ") {
        return Ok(id.to_string());
    }
    if let Some(rest) = line.strip_prefix("error ") {
        let (code, text) = rest.split_once(' ').unwrap_or((rest, "refused"));
        return Err(Refusal::new(
            code.parse().unwrap_or(EX_TEMPFAIL),
            text.to_string(),
        ));
    }
    Err(Refusal::new(
        EX_TEMPFAIL,
        format!("unexpected answer from postern serve: {line:?}"),
    ))
}

/// Whether this process may read the spool itself: root, or the user `serve` runs as.
fn owns_spool(config: &Config) -> bool {
    let uid = crate::privileges::current_uid();
    if uid == 0 {
        return true;
    }
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(&config.data_dir).is_ok_and(|m| m.uid() == uid)
}

/// As root with `[server] user`: become that user, as the admin commands do, so that nothing
/// in the spool is created as root.
fn become_server_user(config: &Config) -> Result<(), Refusal> {
    if crate::privileges::current_uid() != 0 {
        return Ok(());
    }
    if let Some(user) = &config.server.user {
        let who = crate::privileges::resolve(user, config.server.group.as_deref())
            .map_err(|e| Refusal::new(EX_CONFIG, crate::describe_error(&e)))?;
        crate::privileges::drop_to(&who)
            .map_err(|e| Refusal::new(EX_NOPERM, crate::describe_error(&e)))?;
    }
    Ok(())
}

/// `mailq`, `sendmail -bp`: through the socket when `serve` runs (any local user may list the
/// queue, as with Postfix), else from the spool for root and the server's user.
fn mailq(config: &Config) -> Result<(), Refusal> {
    let path = super::socket_path(&config.data_dir);
    match std::os::unix::net::UnixStream::connect(&path) {
        Ok(stream) => {
            let text = exchange(stream, b"MAILQ\n", b"")?;
            if let Some(line) = text.strip_prefix("error ") {
                return Err(parse_reply(&format!("error {line}"))
                    .err()
                    .unwrap_or_else(|| Refusal::new(EX_TEMPFAIL, line.to_string())));
            }
            print!("{text}");
            Ok(())
        }
        Err(_) if owns_spool(config) => {
            become_server_user(config)?;
            crate::mailq::run(config)
                .map_err(|e| Refusal::new(EX_TEMPFAIL, crate::describe_error(&e)))
        }
        Err(e) => Err(Refusal::new(
            EX_UNAVAILABLE,
            format!(
                "postern serve is not running ({}: {e}), and only root or the server's user \
                 may read the queue directly",
                path.display()
            ),
        )),
    }
}

/// `sendmail -q`: every queued message due now (root and the server's user, as `postern
/// queue flush`).
fn flush(config: &Config) -> Result<(), Refusal> {
    if !owns_spool(config) {
        return Err(Refusal::new(
            EX_NOPERM,
            "only root or the server's user may flush the queue",
        ));
    }
    become_server_user(config)?;
    crate::queue::run(config, crate::cli::QueueCommand::Flush)
        .map_err(|e| Refusal::new(EX_TEMPFAIL, crate::describe_error(&e)))
}

/// `newaliases`, `sendmail -bi`: the `postern newaliases` command, with these arguments.
fn newaliases(args: &[String], config: Option<PathBuf>) -> ExitCode {
    let mut argv: Vec<String> = vec!["postern".into()];
    if let Some(c) = config {
        argv.push("--config".into());
        argv.push(c.to_string_lossy().into_owned());
    }
    argv.push("newaliases".into());
    argv.extend(args.iter().cloned());
    use clap::Parser as _;
    match crate::cli::Cli::try_parse_from(&argv) {
        Ok(cli) => {
            crate::init_logging();
            match crate::run(cli) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("newaliases: {}", crate::describe_error(&e));
                    ExitCode::from(super::EX_SOFTWARE)
                }
            }
        }
        Err(e) => {
            let _ = e.print();
            ExitCode::from(EX_USAGE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_ends_the_message_unless_told() {
        let input = b"Subject: x\n\nline\n.\nafter\n";
        let got = read_message(&mut &input[..], false, 1000).unwrap();
        assert_eq!(got, b"Subject: x\n\nline\n");
        let got = read_message(&mut &input[..], true, 1000).unwrap();
        assert_eq!(got, input);
        let crlf = b"a\r\n.\r\nb\r\n";
        assert_eq!(read_message(&mut &crlf[..], false, 1000).unwrap(), b"a\r\n");
        let dots = b"..\n.x\n";
        assert_eq!(read_message(&mut &dots[..], false, 1000).unwrap(), dots);
        assert_eq!(
            read_message(&mut &b"aaaa\nbbbb\n"[..], false, 5)
                .unwrap_err()
                .code,
            EX_DATAERR
        );
        assert_eq!(
            read_message(&mut &b"aaaaaa"[..], true, 5).unwrap_err().code,
            EX_DATAERR
        );
    }

    #[test]
    fn replies() {
        assert_eq!(parse_reply("ok ABC").unwrap(), "ABC");
        let e = parse_reply("error 77 not yours").unwrap_err();
        assert_eq!((e.code, e.text.as_str()), (77, "not yours"));
        assert_eq!(parse_reply("what").unwrap_err().code, EX_TEMPFAIL);
    }
}
