//! `postern deliver`: the local delivery agent (LDA) for another MTA. It reads one message on
//! standard input and delivers it to each `-d` address exactly as the queue delivers a local
//! recipient (aliases, plus-addressing, Sieve, quota, duplicates; see `lmtp.rs`), then exits
//! with a sysexits(3) code the MTA understands:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | delivered to every recipient (alias forwards are durably queued) |
//! | 64 `EX_USAGE` | bad command line (a `-d` or `-f` that is no address) |
//! | 65 `EX_DATAERR` | bad input: empty, or larger than the message size limit |
//! | 67 `EX_NOUSER` | no such recipient (permanent) |
//! | 69 `EX_UNAVAILABLE` | refused for good otherwise (Sieve reject, mailbox full, loop) |
//! | 75 `EX_TEMPFAIL` | try again later (mailbox or directory unavailable, locked) |
//! | 77 `EX_NOPERM` | run by a user who may not write the data directory |
//! | 78 `EX_CONFIG` | the configuration cannot be read, or there is no data directory |
//!
//! With several `-d`, a temporary failure for any of them wins (75): the MTA tries again and
//! the others may get a second copy, as with every LDA; give one recipient per call (Postfix:
//! `transport_destination_recipient_limit = 1`, or `${recipient}` in a pipe transport, which
//! does that).
//!
//! It must run as the data directory's owner (the server user), so that every file it creates
//! stays readable by `serve`; started as root with `[server] user` set, it becomes that user
//! first. Running beside `serve` is safe: the Maildir index serialises UID allocation across
//! processes (SQLite `BEGIN IMMEDIATE` in WAL mode), the directory is SQLite too, and the spool
//! takes messages from other processes as `q/` files. Postfix's master.cf:
//!
//! ```text
//! postern unix - n n - - pipe flags=hu user=postern
//!   argv=/usr/bin/postern deliver -f ${sender} -a ${original_recipient} -d ${recipient}
//! ```
//!
//! Without pipe's `D` and `R` flags: delivery writes `Return-Path:` and `Delivered-To:` itself,
//! and a `Delivered-To:` naming the recipient already is how it recognises a forwarding loop.

use crate::lmtp::LocalSink;
use crate::privileges;
use clap::Args;
use postern_config::Config;
use postern_delivery::{FileTracker, LocalDelivery, ScriptCache, SieveSetup, Srs, SrsDirectory};
use postern_directory::Address;
use postern_mail::Status;
use postern_spool::{Envelope, QueueId, Recipient, Spool};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// sysexits.h codes.
mod ex {
    pub(super) const USAGE: u8 = 64;
    pub(super) const DATAERR: u8 = 65;
    pub(super) const NOUSER: u8 = 67;
    pub(super) const UNAVAILABLE: u8 = 69;
    pub(super) const IOERR: u8 = 74;
    pub(super) const TEMPFAIL: u8 = 75;
    pub(super) const NOPERM: u8 = 77;
    pub(super) const CONFIG: u8 = 78;
}

/// `postern deliver`'s command line.
#[derive(Debug, Args)]
pub(crate) struct DeliverArgs {
    /// The envelope sender (Return-Path); empty or <> for a bounce
    #[arg(short = 'f', long = "from", value_name = "SENDER")]
    pub sender: Option<String>,
    /// The original recipient, before the MTA rewrote it (Sieve's envelope :orig)
    #[arg(short = 'a', long = "original-recipient", value_name = "ADDRESS")]
    pub original: Option<String>,
    /// A local recipient; repeat for several
    #[arg(
        short = 'd',
        long = "destination",
        value_name = "ADDRESS",
        required = true
    )]
    pub recipients: Vec<String>,
}

/// Why delivery stopped before or instead of delivering: the exit code and one plain line.
#[derive(Debug)]
struct Failure {
    code: u8,
    message: String,
}

fn fail(code: u8, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

/// Whether the command line names the `deliver` command (for the usage-error exit code).
pub(crate) fn invoked(args: &[String]) -> bool {
    let mut skip_value = false;
    for a in args.iter().skip(1) {
        if skip_value {
            skip_value = false;
            continue;
        }
        match a.as_str() {
            "-c" | "--config" => skip_value = true,
            a if a.starts_with('-') => {}
            a => return a == "deliver",
        }
    }
    false
}

/// The usage error of `postern deliver ...`: clap's message, exit 64 (`EX_USAGE`).
pub(crate) fn usage_error(e: &clap::Error) -> ExitCode {
    let _ = e.print();
    ExitCode::from(ex::USAGE)
}

/// Runs `postern deliver`; the exit code says how it went.
pub(crate) fn main(config: Option<&Path>, args: &DeliverArgs) -> ExitCode {
    init_logging();
    match run(config, args) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("postern deliver: {}", one_line(&f.message));
            ExitCode::from(f.code)
        }
    }
}

/// Warnings and errors only, unless POSTERN_LOG says otherwise: an MTA shows what an LDA
/// writes on standard error in its bounce or log.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("POSTERN_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false)
        .without_time()
        .init();
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn run(config_path: Option<&Path>, args: &DeliverArgs) -> Result<u8, Failure> {
    let sender = parse_sender(args.sender.as_deref())?;
    let mut recipients = Vec::with_capacity(args.recipients.len());
    for d in &args.recipients {
        let address = Address::parse(strip_brackets(d))
            .map_err(|e| fail(ex::USAGE, format!("-d {d:?}: not an address: {e}")))?;
        let mut r = Recipient::new(address.to_string());
        if let Some(a) = args.original.as_deref().map(strip_brackets) {
            if !a.is_empty() {
                r.orcpt = Some(format!("rfc822;{a}"));
            }
        }
        recipients.push(r);
    }
    let config = postern_config::Config::load(config_path)
        .map_err(|e| fail(ex::CONFIG, format!("configuration: {e}")))?;
    become_owner(&config)?;
    let max = config
        .lmtp
        .max_message_size
        .unwrap_or(config.smtp.max_message_size);
    let message = read_message(&mut std::io::stdin().lock(), max)?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(ex::TEMPFAIL, format!("starting the runtime: {e}")))?;
    let statuses = runtime.block_on(deliver(&config, sender, recipients.clone(), message))?;

    let mut code = 0;
    for (rcpt, status) in recipients.iter().zip(&statuses) {
        if status.code.is_success() {
            continue;
        }
        eprintln!(
            "postern deliver: {}",
            one_line(&postern_smtp::session::rcpt_reply(&rcpt.address, status))
        );
        code = worse(code, exit_code(status));
    }
    Ok(code)
}

/// The exit code of one recipient's status.
fn exit_code(status: &Status) -> u8 {
    let c = status.code;
    if c.is_success() {
        0
    } else if c.is_temporary() {
        ex::TEMPFAIL
    } else if c.subject == 1 && matches!(c.detail, 1..=3) {
        // RFC 3463 5.1.1 bad mailbox, 5.1.2 bad system, 5.1.3 bad address syntax.
        ex::NOUSER
    } else {
        ex::UNAVAILABLE
    }
}

/// Of two exit codes, the one the MTA must act on: a temporary failure (the MTA retries) over
/// a permanent one over success.
fn worse(a: u8, b: u8) -> u8 {
    let rank = |c: u8| match c {
        0 => 0,
        ex::TEMPFAIL => 3,
        ex::NOUSER => 1,
        _ => 2,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

fn strip_brackets(s: &str) -> &str {
    let t = s.trim();
    t.strip_prefix('<')
        .and_then(|t| t.strip_suffix('>'))
        .unwrap_or(t)
}

/// `-f`: absent, empty or `<>` is the null sender (a bounce).
fn parse_sender(sender: Option<&str>) -> Result<Option<String>, Failure> {
    let Some(s) = sender.map(strip_brackets).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    // MAILER-DAEMON is how some MTAs write the null sender.
    if s.eq_ignore_ascii_case("mailer-daemon") {
        return Ok(None);
    }
    Address::parse(s)
        .map(|a| Some(a.to_string()))
        .map_err(|e| fail(ex::USAGE, format!("-f {s:?}: not an address: {e}")))
}

/// Started as root with `[server] user`: become that user. Then the caller must own the data
/// directory, so that `serve` can read everything delivery creates.
fn become_owner(config: &Config) -> Result<(), Failure> {
    if privileges::current_uid() == 0 {
        if let Some(user) = &config.server.user {
            let who = privileges::resolve(user, config.server.group.as_deref())
                .map_err(|e| fail(ex::CONFIG, e.to_string()))?;
            privileges::drop_to(&who).map_err(|e| fail(ex::NOPERM, e.to_string()))?;
        }
    }
    let dir = &config.data_dir;
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(fail(
                ex::CONFIG,
                format!(
                    "there is no data directory at {} (start postern serve once, or give --config)",
                    dir.display()
                ),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(fail(ex::NOPERM, not_owner(dir, None)))
        }
        Err(e) => {
            return Err(fail(
                ex::TEMPFAIL,
                format!("cannot open {}: {e}", dir.display()),
            ))
        }
    };
    if meta.uid() != privileges::current_uid() {
        return Err(fail(ex::NOPERM, not_owner(dir, Some(meta.uid()))));
    }
    Ok(())
}

fn not_owner(dir: &Path, owner: Option<u32>) -> String {
    let whose = owner.map_or(String::new(), |uid| format!(" (it belongs to uid {uid})"));
    format!(
        "user {} (uid {}) may not deliver into {}{whose}: run postern deliver as the server user, \
         e.g. in Postfix's master.cf: flags=hu user=postern argv=/usr/bin/postern deliver \
         -f ${{sender}} -a ${{original_recipient}} -d ${{recipient}}",
        privileges::current_user_name(),
        privileges::current_uid(),
        dir.display()
    )
}

/// Reads the message: at most `max` octets; an mbox `From ` line at the top is dropped (as
/// dovecot-lda does) and line ends become CRLF (RFC 5322 §2.1), as the store keeps them.
fn read_message(input: &mut impl Read, max: u64) -> Result<Vec<u8>, Failure> {
    let mut raw = Vec::new();
    input
        .take(max.saturating_add(1))
        .read_to_end(&mut raw)
        .map_err(|e| fail(ex::IOERR, format!("reading standard input: {e}")))?;
    if raw.len() as u64 > max {
        return Err(fail(
            ex::DATAERR,
            format!("the message is larger than the limit of {max} bytes"),
        ));
    }
    let body = match raw.strip_prefix(b"From ") {
        Some(_) => match raw.iter().position(|&b| b == b'\n') {
            Some(nl) => &raw[nl + 1..],
            None => &[][..],
        },
        None => &raw[..],
    };
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(fail(ex::DATAERR, "the message on standard input is empty"));
    }
    Ok(to_crlf(body))
}

/// Every line end as CRLF: a bare LF gets its CR, a CRLF stays, a lone CR is left as it is.
fn to_crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 32 + 2);
    let mut prev = 0u8;
    for &b in data {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    if !out.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Opens the directory, the store and the spool as `serve` does, and delivers.
async fn deliver(
    config: &Config,
    sender: Option<String>,
    recipients: Vec<Recipient>,
    message: Vec<u8>,
) -> Result<Vec<Status>, Failure> {
    let open_error = |what: &str, e: &dyn std::fmt::Display| {
        let text = format!("{what}: {e}");
        let code = if text.contains("ermission denied") {
            ex::NOPERM
        } else {
            ex::TEMPFAIL
        };
        fail(code, text)
    };
    let ctx = crate::admin::Context::open(config)
        .map_err(|e| open_error("opening the data directory", &crate::describe_error(&e)))?;
    let data_dir = &config.data_dir;
    let spool_dir = data_dir.join("spool");
    let spool = Arc::new(Spool::open(&spool_dir).map_err(|e| open_error("opening the spool", &e))?);
    let srs = Arc::new(
        Srs::load_or_create(&data_dir.join("srs.key"))
            .map_err(|e| open_error("reading the SRS key", &e))?,
    );
    let directory: Arc<dyn postern_directory::Directory> =
        Arc::new(SrsDirectory::new(Arc::new(ctx.directory), srs.clone()));
    let store = Arc::new(ctx.store);
    let sieve = process_sieve(config, store.clone(), spool.clone(), srs, 16);
    let mut local = LocalDelivery::new(directory, store)
        .with_sieve(sieve)
        .with_alias_targets(postern_delivery::AliasTargets::from_config(&config.aliases));
    // [notify]: the same new-mail hooks as serve's deliveries; waited for before exiting.
    let hub = postern_notify::Hub::from_config(&config.notify)
        .map_err(|e| fail(ex::CONFIG, format!("[notify]: {e}")))?;
    if let Some(hub) = &hub {
        local = local.with_notifier(hub.clone());
    }
    let sink = LocalSink::new(local, spool.clone());
    let id = QueueId::generate();
    let single = (recipients.len() == 1).then(|| recipients[0].address.clone());
    let envelope = Envelope {
        sender,
        recipients,
        ret: None,
        envid: None,
        body: postern_spool::BodyType::EightBitMime,
        smtputf8: false,
        requiretls: false,
        authenticated: None,
        client_ip: None,
        helo: None,
    };
    let mut content = received(config, &id, single.as_deref()).into_bytes();
    content.extend_from_slice(&message);
    let statuses = sink.deliver_all(id.as_str(), &envelope, &content).await;
    if sink.forwarded() {
        // A running serve's queue runner picks the forwarded copy up now rather than at its
        // next rescan.
        if let Err(e) = spool.request_wake() {
            tracing::warn!("cannot wake the queue runner: {e}");
        }
    }
    if let Some(hub) = hub {
        // Hooks have their own timeouts; this bounds the wait for all of them together.
        if !hub.wait_idle(std::time::Duration::from_secs(60)).await {
            tracing::warn!("new-mail hooks still running after 60 s; not waiting for them");
        }
    }
    Ok(statuses)
}

/// Our trace line (RFC 5321 §4.4): handed over by a local program.
fn received(config: &Config, id: &QueueId, rcpt: Option<&str>) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let date = postern_mail::date::rfc5322(now);
    let mut out = format!(
        "Received: by {} (postern deliver, uid {})\r\n\tid {id}",
        config.hostname,
        privileges::current_uid()
    );
    if let Some(r) = rcpt {
        out.push_str(&format!("\r\n\tfor <{r}>"));
    }
    out.push_str(&format!("; {date}\r\n"));
    out
}

/// The Sieve setup of a process that delivers on its own, outside `serve` (`postern deliver`,
/// `postern fetch run`): its scripts, queue for redirects and vacation replies, tracker and SRS
/// from the data directory, and a compiled-script cache of `cached_scripts` entries.
pub(crate) fn process_sieve(
    config: &Config,
    scripts: Arc<dyn postern_store::ScriptStore>,
    queue: Arc<dyn postern_spool::Queue>,
    srs: Arc<Srs>,
    cached_scripts: usize,
) -> SieveSetup {
    SieveSetup {
        scripts,
        queue,
        tracker: Arc::new(FileTracker::new(config.data_dir.join("sieve-state"))),
        srs,
        config: config.sieve.clone(),
        separator: config.mail.hierarchy_separator,
        hostname: config.hostname.clone(),
        cache: Arc::new(ScriptCache::new(
            postern_delivery::sieve::limits(&config.sieve),
            cached_scripts,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_mail::EnhancedCode;

    #[test]
    fn from_line_removed_and_line_ends_made_crlf() {
        let msg = read_message(
            &mut &b"From alice@example.org Thu Dec  3 10:00:00 2026\nSubject: x\n\nbody\r\nend"[..],
            1000,
        )
        .unwrap();
        assert_eq!(msg, b"Subject: x\r\n\r\nbody\r\nend\r\n");
        // Not a From_ line: kept.
        let msg = read_message(&mut &b"From: a@b\n\nx\n"[..], 1000).unwrap();
        assert_eq!(msg, b"From: a@b\r\n\r\nx\r\n");
    }

    #[test]
    fn bad_input_is_a_data_error() {
        for input in [&b""[..], b"\n\n", b"From a@b Thu Dec  3 10:00:00 2026\n"] {
            let e = read_message(&mut &input[..], 1000).unwrap_err();
            assert_eq!(e.code, ex::DATAERR, "{input:?}");
        }
        let e = read_message(&mut &[b'x'; 20][..], 10).unwrap_err();
        assert_eq!(e.code, ex::DATAERR);
        assert!(e.message.contains("larger than the limit"), "{}", e.message);
    }

    #[test]
    fn senders() {
        assert_eq!(parse_sender(None).unwrap(), None);
        assert_eq!(parse_sender(Some("<>")).unwrap(), None);
        assert_eq!(parse_sender(Some("")).unwrap(), None);
        assert_eq!(parse_sender(Some("MAILER-DAEMON")).unwrap(), None);
        assert_eq!(
            parse_sender(Some("<a@b.example>")).unwrap().as_deref(),
            Some("a@b.example")
        );
        assert_eq!(parse_sender(Some("a b")).unwrap_err().code, ex::USAGE);
    }

    #[test]
    fn exit_codes_by_status() {
        let st = |c: EnhancedCode| Status::new(c, "x");
        assert_eq!(exit_code(&st(EnhancedCode::SUCCESS)), 0);
        assert_eq!(exit_code(&st(EnhancedCode::new(5, 1, 1))), ex::NOUSER);
        assert_eq!(exit_code(&st(EnhancedCode::new(5, 7, 1))), ex::UNAVAILABLE);
        assert_eq!(exit_code(&st(EnhancedCode::new(4, 2, 0))), ex::TEMPFAIL);
        assert_eq!(worse(0, ex::NOUSER), ex::NOUSER);
        assert_eq!(worse(ex::TEMPFAIL, ex::NOUSER), ex::TEMPFAIL);
        assert_eq!(worse(ex::NOUSER, ex::UNAVAILABLE), ex::UNAVAILABLE);
    }

    #[test]
    fn the_deliver_command_is_recognised() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(invoked(&v(&["postern", "deliver", "-d", "a@b"])));
        assert!(invoked(&v(&["postern", "-c", "x.toml", "deliver"])));
        assert!(!invoked(&v(&["postern", "-c", "deliver", "serve"])));
        assert!(!invoked(&v(&["postern", "serve"])));
    }
}
