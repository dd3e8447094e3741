//! The POP3 client: RFC 1939 (the protocol, APOP), RFC 2449 (CAPA, PIPELINING, response
//! codes), RFC 2595 (STLS), RFC 5034 (AUTH PLAIN), RFC 3206 (the SYS and AUTH response codes).
//!
//! Every read has a time-out ([`READ_TIMEOUT`]), every status or listing line is bounded
//! ([`MAX_LINE`]) and every message is bounded by the size the server announced in LIST (with
//! room for dot-stuffing) and by [`MAX_MESSAGE`].

use crate::account::{RemoteUrl, Secret, Security};
use crate::connect::{Connector, Stream};
use crate::error::{ErrorKind, FetchError};
use base64::Engine as _;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// Time allowed for any one read or write.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest status, CAPA, UIDL or LIST line accepted.
pub(crate) const MAX_LINE: usize = 64 * 1024;
/// The longest CAPA, UIDL or LIST answer accepted (a UIDL listing of a million messages is
/// about 30 MB).
pub(crate) const MAX_LISTING: usize = 128 * 1024 * 1024;
/// The largest message ever read, whatever the server announced.
pub(crate) const MAX_MESSAGE: u64 = 200 * 1024 * 1024;
/// RFC 5034 §4: a command line, initial response included, is at most 255 octets.
const MAX_COMMAND: usize = 255;

/// A status line: `+OK text` or `-ERR text`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reply {
    /// `+OK` or `-ERR`.
    pub(crate) ok: bool,
    /// The text after the status indicator (may be empty).
    pub(crate) text: String,
}

impl Reply {
    /// RFC 1939 §3: a status indicator, then optional text after a space.
    pub(crate) fn parse(line: &[u8]) -> Option<Reply> {
        let line = String::from_utf8_lossy(line);
        let (ok, rest) = if let Some(rest) = strip_prefix_ci(&line, "+OK") {
            (true, rest)
        } else if let Some(rest) = strip_prefix_ci(&line, "-ERR") {
            (false, rest)
        } else {
            return None;
        };
        if !rest.is_empty() && !rest.starts_with(' ') {
            return None;
        }
        Some(Reply {
            ok,
            text: rest.trim().to_string(),
        })
    }

    /// RFC 2449 §8: the extended response code in brackets that starts the text (`AUTH`,
    /// `IN-USE`, `SYS/TEMP`, ...), upper-cased.
    pub(crate) fn code(&self) -> Option<String> {
        let rest = self.text.strip_prefix('[')?;
        let end = rest.find(']')?;
        Some(rest[..end].to_ascii_uppercase())
    }

    /// The line as the server sent it, for messages.
    pub(crate) fn quoted(&self) -> String {
        let status = if self.ok { "+OK" } else { "-ERR" };
        if self.text.is_empty() {
            status.to_string()
        } else {
            format!("{status} {}", self.text)
        }
    }
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// The class of a `-ERR`: RFC 2449 §8.1.2 `IN-USE` and `LOGIN-DELAY`, RFC 3206 `SYS/TEMP` and
/// `SYS/PERM` say the server, not the credentials, is the problem; RFC 3206 `AUTH` says the
/// credentials are. Without a code, `default` (Auth for login commands).
pub(crate) fn error_kind(reply: &Reply, default: ErrorKind) -> ErrorKind {
    match reply.code().as_deref() {
        Some("AUTH") => ErrorKind::Auth,
        Some("IN-USE") | Some("LOGIN-DELAY") | Some("SYS/TEMP") | Some("SYS/PERM") => {
            ErrorKind::Remote
        }
        _ => default,
    }
}

/// What the server said it can do (RFC 2449 §6).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Capabilities {
    /// CAPA was answered at all (an RFC 1939-only server answers `-ERR`).
    pub(crate) known: bool,
    /// RFC 2595 §4.
    pub(crate) stls: bool,
    /// RFC 2449 §6.3: the SASL mechanisms, upper-cased.
    pub(crate) sasl: Vec<String>,
    /// RFC 2449 §6.6.
    pub(crate) pipelining: bool,
    /// RFC 2449 §6.7.
    pub(crate) uidl: bool,
    /// RFC 2449 §6.5.
    pub(crate) user: bool,
    /// RFC 2449 §6.4.
    pub(crate) resp_codes: bool,
    /// RFC 3206 §6.
    pub(crate) auth_resp_code: bool,
}

impl Capabilities {
    /// RFC 2449 §5: one capability per line, a tag and its arguments.
    pub(crate) fn parse(lines: &[Vec<u8>]) -> Capabilities {
        let mut capa = Capabilities {
            known: true,
            ..Capabilities::default()
        };
        for line in lines {
            let line = String::from_utf8_lossy(line);
            let mut words = line.split_ascii_whitespace();
            let Some(tag) = words.next() else { continue };
            match tag.to_ascii_uppercase().as_str() {
                "STLS" => capa.stls = true,
                "SASL" => capa.sasl = words.map(|w| w.to_ascii_uppercase()).collect(),
                "PIPELINING" => capa.pipelining = true,
                "UIDL" => capa.uidl = true,
                "USER" => capa.user = true,
                "RESP-CODES" => capa.resp_codes = true,
                "AUTH-RESP-CODE" => capa.auth_resp_code = true,
                _ => {}
            }
        }
        capa
    }
}

/// RFC 1939 §7: the timestamp of an APOP-capable greeting, `<...>` with an `@` inside.
pub(crate) fn apop_timestamp(greeting: &str) -> Option<&str> {
    let start = greeting.find('<')?;
    let end = start + greeting[start..].find('>')?;
    let stamp = &greeting[start..=end];
    (stamp.contains('@') && stamp.bytes().all(|b| (0x21..0x7f).contains(&b))).then_some(stamp)
}

/// RFC 1939 §7: the APOP digest, MD5 of the timestamp and the shared secret, in lower-case hex.
pub(crate) fn apop_digest(timestamp: &str, password: &str) -> String {
    use md5::Digest as _;
    let mut h = md5::Md5::new();
    h.update(timestamp.as_bytes());
    h.update(password.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 1939 §7: a unique-id is 1 to 70 characters in 0x21..0x7E.
fn valid_uid(uid: &str) -> bool {
    (1..=70).contains(&uid.len()) && uid.bytes().all(|b| (0x21..0x7f).contains(&b))
}

/// RFC 1939 §7: a unique-id listing, `msg-number SP unique-id`.
pub(crate) fn parse_uidl_line(line: &[u8]) -> Option<(u32, String)> {
    let text = std::str::from_utf8(line).ok()?;
    let mut words = text.split(' ');
    match (words.next(), words.next(), words.next()) {
        (Some(n), Some(uid), None) if valid_uid(uid) => {
            let n = n.parse::<u32>().ok().filter(|n| *n > 0)?;
            Some((n, uid.to_string()))
        }
        _ => None,
    }
}

/// RFC 1939 §5: a scan listing, `msg-number SP size`, possibly followed by more information.
pub(crate) fn parse_list_line(line: &[u8]) -> Option<Listed> {
    let text = std::str::from_utf8(line).ok()?;
    let mut words = text.split(' ');
    let number = words.next()?.parse::<u32>().ok().filter(|n| *n > 0)?;
    let size = words.next()?.parse::<u64>().ok()?;
    Some(Listed { number, size })
}

/// One listed message: its number in this session and its size (RFC 1939 §5 LIST).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Listed {
    /// The message number.
    pub(crate) number: u32,
    /// Its size in octets, as the server counts it.
    pub(crate) size: u64,
}

/// A POP3 session with one server.
pub(crate) struct Client {
    io: BufReader<Stream>,
    /// The remote URL, to name the server in every error.
    url: String,
    timeout: Duration,
    greeting: String,
    /// What the server announced (after STLS: what it announced over TLS).
    pub(crate) capa: Capabilities,
}

impl Client {
    /// Reads the greeting (RFC 1939 §4) on a fresh connection and asks for the capabilities.
    pub(crate) async fn start(stream: Stream, url: &RemoteUrl) -> Result<Client, FetchError> {
        Client::start_with_timeout(stream, url, READ_TIMEOUT).await
    }

    /// [`Client::start`] with another time-out for every read and write.
    pub(crate) async fn start_with_timeout(
        stream: Stream,
        url: &RemoteUrl,
        timeout: Duration,
    ) -> Result<Client, FetchError> {
        let mut client = Client {
            io: BufReader::with_capacity(64 * 1024, stream),
            url: url.to_string(),
            timeout,
            greeting: String::new(),
            capa: Capabilities::default(),
        };
        let line = client.read_line("the greeting").await?;
        let reply = client.parse_reply(&line, "the greeting")?;
        if !reply.ok {
            return Err(FetchError::new(
                error_kind(&reply, ErrorKind::Remote),
                format!("{} refused the connection: {}", client.url, reply.quoted()),
            ));
        }
        client.greeting = reply.text;
        client.capabilities().await?;
        Ok(client)
    }

    /// Connects to the account's server, with TLS (implicit, or STLS for `pop3://` unless the
    /// server offers none and `allow_plaintext` is set), and logs in.
    pub(crate) async fn connect(
        connector: &Connector,
        url: &RemoteUrl,
        password: &Secret,
        apop: bool,
        allow_plaintext: bool,
    ) -> Result<Client, FetchError> {
        let implicit = url.security == Security::Implicit;
        let stream = connector.open(&url.host, url.port, implicit).await?;
        let mut client = Client::start(stream, url).await?;
        if !implicit {
            if client.capa.stls {
                client = client.starttls(connector, &url.host).await?;
            } else if !allow_plaintext {
                return Err(FetchError::tls(format!(
                    "{} offers no STLS; set allow_plaintext to log in without TLS",
                    client.url
                )));
            }
        }
        client.login(&url.user, password, apop).await?;
        Ok(client)
    }

    /// RFC 2449 §5 CAPA; a server that answers `-ERR` has only RFC 1939's commands.
    pub(crate) async fn capabilities(&mut self) -> Result<(), FetchError> {
        let reply = self.command("CAPA", "CAPA").await?;
        self.capa = if reply.ok {
            let lines = self.read_multiline("CAPA").await?;
            Capabilities::parse(&lines)
        } else {
            Capabilities::default()
        };
        Ok(())
    }

    /// RFC 2595 §4: STLS, then the TLS handshake (certificate verified for `host`), then CAPA
    /// again since what was announced in plaintext may not be trusted.
    pub(crate) async fn starttls(
        mut self,
        connector: &Connector,
        host: &str,
    ) -> Result<Client, FetchError> {
        let reply = self.command("STLS", "STLS").await?;
        if !reply.ok {
            return Err(FetchError::tls(format!(
                "{} refused STLS: {}",
                self.url,
                reply.quoted()
            )));
        }
        if !self.io.buffer().is_empty() {
            // Anything already buffered was sent before TLS: a man in the middle's injection.
            return Err(FetchError::protocol(format!(
                "{} sent data after its +OK to STLS, before the TLS handshake",
                self.url
            )));
        }
        let stream = connector.tls(self.io.into_inner(), host).await?;
        self.io = BufReader::with_capacity(64 * 1024, stream);
        self.capabilities().await?;
        Ok(self)
    }

    /// Logs in: APOP (RFC 1939 §7) when `apop` and the greeting has a timestamp, else AUTH
    /// PLAIN (RFC 5034) when CAPA lists it, else USER/PASS (RFC 1939 §7).
    pub(crate) async fn login(
        &mut self,
        user: &str,
        password: &Secret,
        apop: bool,
    ) -> Result<(), FetchError> {
        let plain = self.capa.sasl.iter().any(|m| m == "PLAIN");
        let plain_words = !user.bytes().any(|b| b <= b' ' || b == 0x7f);
        if apop && plain_words {
            if let Some(stamp) = apop_timestamp(&self.greeting).map(str::to_string) {
                let digest = apop_digest(&stamp, password.expose());
                let reply = self
                    .command(&format!("APOP {user} {digest}"), "APOP")
                    .await?;
                return self.login_outcome(reply, "APOP login");
            }
        }
        if plain {
            return self.auth_plain(user, password).await;
        }
        if !plain_words || password.expose().contains(['\r', '\n']) {
            return Err(FetchError::config(format!(
                "the user name or password has spaces or line breaks, which only AUTH PLAIN can send, and {} does not offer it",
                self.url
            )));
        }
        let reply = self.command(&format!("USER {user}"), "USER").await?;
        self.login_outcome(reply, "USER")?;
        let reply = self
            .command(&format!("PASS {}", password.expose()), "PASS")
            .await?;
        self.login_outcome(reply, "login")
    }

    /// RFC 5034 §4: AUTH PLAIN with the initial response on the command line when it fits in
    /// 255 octets, else after the server's empty challenge.
    async fn auth_plain(&mut self, user: &str, password: &Secret) -> Result<(), FetchError> {
        let response = base64::engine::general_purpose::STANDARD
            .encode(format!("\0{user}\0{}", password.expose()));
        let inline = format!("AUTH PLAIN {response}");
        let line = if inline.len() + 2 <= MAX_COMMAND {
            self.send(format!("{inline}\r\n").as_bytes(), "AUTH PLAIN")
                .await?;
            self.read_line("AUTH PLAIN").await?
        } else {
            self.send(b"AUTH PLAIN\r\n", "AUTH PLAIN").await?;
            let challenge = self.read_line("AUTH PLAIN").await?;
            if challenge.first() != Some(&b'+') || challenge.starts_with(b"+OK") {
                let reply = self.parse_reply(&challenge, "AUTH PLAIN")?;
                return self.login_outcome(reply, "AUTH PLAIN");
            }
            self.send(format!("{response}\r\n").as_bytes(), "AUTH PLAIN")
                .await?;
            self.read_line("AUTH PLAIN").await?
        };
        if line.first() == Some(&b'+') && !line.starts_with(b"+OK") {
            // A challenge PLAIN does not have: cancel (RFC 5034 §4) and give up.
            self.send(b"*\r\n", "AUTH PLAIN").await?;
            let _ = self.read_line("AUTH PLAIN").await;
            return Err(FetchError::protocol(format!(
                "{} sent a second AUTH PLAIN challenge: {}",
                self.url,
                String::from_utf8_lossy(&line)
            )));
        }
        let reply = self.parse_reply(&line, "AUTH PLAIN")?;
        self.login_outcome(reply, "AUTH PLAIN login")
    }

    fn login_outcome(&self, reply: Reply, what: &str) -> Result<(), FetchError> {
        if reply.ok {
            return Ok(());
        }
        Err(FetchError::new(
            error_kind(&reply, ErrorKind::Auth),
            format!("{what} refused by {}: {}", self.url, reply.quoted()),
        ))
    }

    /// RFC 1939 §7 UIDL without argument: `None` when the server has no UIDL.
    pub(crate) async fn uidl(&mut self) -> Result<Option<Vec<(u32, String)>>, FetchError> {
        let reply = self.command("UIDL", "UIDL").await?;
        if !reply.ok {
            // A server that announced UIDL, or says why it fails, is failing, not lacking it.
            if self.capa.uidl || reply.code().is_some() {
                return Err(self.refused("UIDL", &reply));
            }
            return Ok(None);
        }
        let lines = self.read_multiline("UIDL").await?;
        let mut out = Vec::with_capacity(lines.len());
        for line in lines {
            match parse_uidl_line(&line) {
                Some(entry) => out.push(entry),
                None => {
                    return Err(FetchError::protocol(format!(
                        "{} sent a bad UIDL line: {:?}",
                        self.url,
                        String::from_utf8_lossy(&line)
                    )))
                }
            }
        }
        Ok(Some(out))
    }

    /// RFC 1939 §5 LIST without argument: every message's number and size.
    pub(crate) async fn list(&mut self) -> Result<Vec<Listed>, FetchError> {
        let reply = self.command("LIST", "LIST").await?;
        if !reply.ok {
            return Err(self.refused("LIST", &reply));
        }
        let lines = self.read_multiline("LIST").await?;
        let mut out = Vec::with_capacity(lines.len());
        for line in lines {
            match parse_list_line(&line) {
                Some(entry) => out.push(entry),
                None => {
                    return Err(FetchError::protocol(format!(
                        "{} sent a bad LIST line: {:?}",
                        self.url,
                        String::from_utf8_lossy(&line)
                    )))
                }
            }
        }
        Ok(out)
    }

    /// Sends RETR commands (RFC 1939 §5) without waiting: several at once only when the server
    /// announced PIPELINING (RFC 2449 §6.6).
    pub(crate) async fn send_retr(&mut self, numbers: &[u32]) -> Result<(), FetchError> {
        let mut out = Vec::with_capacity(numbers.len() * 16);
        for n in numbers {
            out.extend_from_slice(format!("RETR {n}\r\n").as_bytes());
        }
        self.send(&out, "RETR").await
    }

    /// Reads the answer to a RETR sent before: the status line, then the message, dot-unstuffed
    /// (RFC 1939 §3), lines ending in CRLF, at most about `size` octets (as LIST announced).
    pub(crate) async fn read_retr(
        &mut self,
        number: u32,
        size: u64,
    ) -> Result<Vec<u8>, FetchError> {
        let what = format!("RETR {number}");
        let line = self.read_line(&what).await?;
        let reply = self.parse_reply(&line, &what)?;
        if !reply.ok {
            return Err(self.refused(&what, &reply));
        }
        // Dot-stuffing adds at most one octet to a line of at least two ("..\r\n" for "."), and
        // a server may count bare newlines: room for twice the size, never past the hard cap.
        let limit = size
            .saturating_mul(2)
            .saturating_add(64 * 1024)
            .min(MAX_MESSAGE);
        let mut out = Vec::with_capacity(size.min(MAX_MESSAGE) as usize + 2);
        loop {
            let start = out.len();
            let room = limit.saturating_sub(start as u64);
            let timeout = self.timeout;
            let io = &mut self.io;
            let read = async {
                let mut limited = io.take(room + 1);
                limited.read_until(b'\n', &mut out).await
            };
            let n = match tokio::time::timeout(timeout, read).await {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => return Err(self.io_error(&what, e)),
                Err(_) => return Err(self.timed_out(&what)),
            };
            if n == 0 {
                return Err(self.closed(&what));
            }
            if out.len() as u64 > limit {
                return Err(FetchError::protocol(format!(
                    "message {number} of {} is longer than the {size} octets LIST announced (read {} so far)",
                    self.url,
                    out.len()
                )));
            }
            if out.last() != Some(&b'\n') {
                return Err(self.closed(&what));
            }
            let line = &out[start..];
            if line == b".\r\n" || line == b".\n" {
                out.truncate(start);
                return Ok(out);
            }
            if line.first() == Some(&b'.') {
                out.remove(start);
            }
            let len = out.len();
            if len < 2 || out[len - 2] != b'\r' {
                out.insert(len - 1, b'\r');
            }
        }
    }

    /// Sends DELE for these messages (RFC 1939 §5; pipelined when the server allows) and returns
    /// those the server marked deleted. They are gone only once QUIT says `+OK`.
    pub(crate) async fn dele(&mut self, numbers: &[u32]) -> Result<Vec<u32>, FetchError> {
        let mut marked = Vec::with_capacity(numbers.len());
        let chunk = if self.capa.pipelining { 64 } else { 1 };
        for group in numbers.chunks(chunk) {
            let mut out = Vec::with_capacity(group.len() * 16);
            for n in group {
                out.extend_from_slice(format!("DELE {n}\r\n").as_bytes());
            }
            self.send(&out, "DELE").await?;
            for n in group {
                let what = format!("DELE {n}");
                let line = self.read_line(&what).await?;
                let reply = self.parse_reply(&line, &what)?;
                if reply.ok {
                    marked.push(*n);
                } else {
                    tracing::warn!(url = %self.url, "{what} refused: {}", reply.quoted());
                }
            }
        }
        Ok(marked)
    }

    /// RFC 1939 §6 QUIT: the UPDATE state; `+OK` means the deletions are done. A `-ERR` (some
    /// deleted messages not removed) is an error of class Remote.
    pub(crate) async fn quit(mut self) -> Result<(), FetchError> {
        let reply = self.command("QUIT", "QUIT").await?;
        let _ = self.io.get_mut().shutdown().await;
        if reply.ok {
            Ok(())
        } else {
            Err(self.refused("QUIT", &reply))
        }
    }

    /// Sends one command and reads its status line.
    pub(crate) async fn command(&mut self, line: &str, what: &str) -> Result<Reply, FetchError> {
        self.send(format!("{line}\r\n").as_bytes(), what).await?;
        let line = self.read_line(what).await?;
        self.parse_reply(&line, what)
    }

    /// A `-ERR` to `what` as an error (Remote unless its response code says otherwise).
    pub(crate) fn refused(&self, what: &str, reply: &Reply) -> FetchError {
        FetchError::new(
            error_kind(reply, ErrorKind::Remote),
            format!("{} refused {what}: {}", self.url, reply.quoted()),
        )
    }

    async fn send(&mut self, bytes: &[u8], what: &str) -> Result<(), FetchError> {
        let stream = self.io.get_mut();
        let write = async {
            stream.write_all(bytes).await?;
            stream.flush().await
        };
        match tokio::time::timeout(self.timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.io_error(what, e)),
            Err(_) => Err(self.timed_out(what)),
        }
    }

    fn parse_reply(&self, line: &[u8], what: &str) -> Result<Reply, FetchError> {
        Reply::parse(line).ok_or_else(|| {
            FetchError::protocol(format!(
                "{} answered {what} with neither +OK nor -ERR: {:?}",
                self.url,
                String::from_utf8_lossy(line)
            ))
        })
    }

    /// One line without its CRLF (or bare LF), at most [`MAX_LINE`] octets.
    async fn read_line(&mut self, what: &str) -> Result<Vec<u8>, FetchError> {
        let mut line = Vec::new();
        let timeout = self.timeout;
        let io = &mut self.io;
        let read = async {
            let mut limited = io.take(MAX_LINE as u64 + 1);
            limited.read_until(b'\n', &mut line).await
        };
        match tokio::time::timeout(timeout, read).await {
            Ok(Ok(0)) => return Err(self.closed(what)),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(self.io_error(what, e)),
            Err(_) => return Err(self.timed_out(what)),
        }
        if line.last() != Some(&b'\n') {
            if line.len() > MAX_LINE {
                return Err(FetchError::protocol(format!(
                    "{} sent a line longer than {MAX_LINE} octets in answer to {what}",
                    self.url
                )));
            }
            return Err(self.closed(what));
        }
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(line)
    }

    /// The lines of a multi-line response up to the terminating `.`, dot-unstuffed (RFC 1939 §3).
    /// At most [`MAX_LISTING`] octets in all.
    async fn read_multiline(&mut self, what: &str) -> Result<Vec<Vec<u8>>, FetchError> {
        let mut lines = Vec::new();
        let mut total = 0;
        loop {
            let mut line = self.read_line(what).await?;
            if line == b"." {
                return Ok(lines);
            }
            total += line.len() + 2;
            if total > MAX_LISTING {
                return Err(FetchError::protocol(format!(
                    "{} answered {what} with more than {MAX_LISTING} octets",
                    self.url
                )));
            }
            if line.first() == Some(&b'.') {
                line.remove(0);
            }
            lines.push(line);
        }
    }

    fn io_error(&self, what: &str, e: std::io::Error) -> FetchError {
        FetchError::network(format!(
            "connection to {} failed during {what}: {e}",
            self.url
        ))
    }

    fn closed(&self, what: &str) -> FetchError {
        FetchError::network(format!("{} closed the connection during {what}", self.url))
    }

    fn timed_out(&self, what: &str) -> FetchError {
        FetchError::network(format!(
            "{} did not answer {what} within {} s",
            self.url,
            self.timeout.as_secs()
        ))
    }
}
