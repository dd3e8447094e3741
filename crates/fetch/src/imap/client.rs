//! One IMAP connection: greeting, STARTTLS, login, tagged commands and the responses they
//! get, each read under a time-out.

use super::mutf7;
use super::response::{self, Code, Incomplete, Parsed, Response, Status, StatusText, Untagged};
use crate::account::Security;
use crate::{FetchError, Run, Stream};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Time allowed for any read or write of a command's exchange (IDLE excepted).
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(120);

/// A logged-in (or logging-in) IMAP session.
pub(crate) struct Client {
    stream: Option<Stream>,
    buf: Vec<u8>,
    start: usize,
    next_tag: u32,
    /// Capabilities, upper-cased (RFC 9051 §7.2.2).
    pub(crate) caps: Vec<String>,
    /// The largest literal accepted now (lowered while fetching messages of known size).
    pub(crate) literal_limit: u64,
    /// The remote, for messages (`imaps://bob@host:993`).
    pub(crate) url: String,
    /// The selected mailbox's message count, from the last EXISTS.
    pub(crate) exists: u32,
    /// An EXISTS announced more messages than the count at SELECT time.
    pub(crate) grew: bool,
    io_timeout: Duration,
}

impl Client {
    /// Connects, reads the greeting, runs STARTTLS where the URL says so, and logs in.
    pub(crate) async fn login(run: &Run<'_>) -> Result<Client, FetchError> {
        Client::login_with_timeout(run, IO_TIMEOUT).await
    }

    /// [`Client::login`] with another per-read time-out (tests).
    pub(crate) async fn login_with_timeout(
        run: &Run<'_>,
        io_timeout: Duration,
    ) -> Result<Client, FetchError> {
        let url = &run.account.url;
        let implicit = url.security == Security::Implicit;
        let stream = run.connector.open(&url.host, url.port, implicit).await?;
        let mut c = Client {
            stream: Some(stream),
            buf: Vec::with_capacity(64 * 1024),
            start: 0,
            next_tag: 1,
            caps: Vec::new(),
            literal_limit: response::MAX_LINE as u64,
            url: url.to_string(),
            exists: 0,
            grew: false,
            io_timeout,
        };
        // RFC 9051 §7.1.4/§7.1.5: the greeting is OK, PREAUTH or BYE.
        let preauth = match c.read().await? {
            Response::Untagged(Untagged::Status(st)) => {
                if let Some(Code::Capability(caps)) = &st.code {
                    c.caps = upper(caps);
                }
                match st.status {
                    Status::Ok => false,
                    Status::PreAuth => true,
                    _ => return Err(FetchError::protocol(format!("{} greeted with {st}", c.url))),
                }
            }
            other => {
                return Err(FetchError::protocol(format!(
                    "{} sent no IMAP greeting but {other:?}",
                    c.url
                )))
            }
        };
        if c.caps.is_empty() {
            c.capability().await?;
        }
        if url.security == Security::StartTls {
            if preauth {
                return Err(FetchError::tls(format!(
                    "{} logged us in before TLS (PREAUTH): refusing a session without TLS",
                    c.url
                )));
            }
            if c.has("STARTTLS") {
                c.starttls(run).await?;
            } else if !run.account.options.allow_plaintext {
                return Err(FetchError::tls(format!(
                    "{} offers no STARTTLS; set allow_plaintext to log in without TLS",
                    c.url
                )));
            }
        }
        if !preauth {
            c.authenticate(run).await?;
        }
        c.literal_limit = response::MAX_LITERAL;
        tracing::debug!(
            tls = c.stream.as_ref().is_some_and(Stream::is_tls),
            capabilities = %c.caps.join(" "),
            "logged in"
        );
        Ok(c)
    }

    fn closed(&self) -> FetchError {
        FetchError::network(format!("the connection to {} is closed", self.url))
    }

    /// Whether the server announced a capability (`IDLE`, `UIDPLUS`, `AUTH=PLAIN`).
    pub(crate) fn has(&self, cap: &str) -> bool {
        self.caps.iter().any(|c| c.eq_ignore_ascii_case(cap))
    }

    /// RFC 9051 §6.1.1 CAPABILITY.
    async fn capability(&mut self) -> Result<(), FetchError> {
        let (data, done) = self.command("CAPABILITY").await?;
        self.ok("CAPABILITY", &done)?;
        for u in data {
            if let Untagged::Capability(caps) = u {
                self.caps = caps;
            }
        }
        Ok(())
    }

    /// RFC 9051 §6.2.1 STARTTLS: the handshake starts right after the tagged OK; anything the
    /// server sent after it was sent before TLS and is refused (STARTTLS command injection,
    /// RFC 2595 §3.1 / CVE-2011-0411-style).
    async fn starttls(&mut self, run: &Run<'_>) -> Result<(), FetchError> {
        let (_, done) = self.command("STARTTLS").await?;
        if done.status != Status::Ok {
            return Err(FetchError::tls(format!(
                "{} refused STARTTLS: {done}",
                self.url
            )));
        }
        if self.start < self.buf.len() {
            return Err(FetchError::protocol(format!(
                "{} sent data after its STARTTLS go-ahead, before TLS: refusing it (command injection)",
                self.url
            )));
        }
        let plain = self.stream.take().ok_or_else(|| self.closed())?;
        self.stream = Some(run.connector.tls(plain, &run.account.url.host).await?);
        // RFC 9051 §6.2.1: capabilities may change after TLS; forget the old ones.
        self.caps.clear();
        self.capability().await
    }

    /// Logs in: AUTHENTICATE PLAIN (RFC 4616, with SASL-IR per RFC 4959 when offered) where the
    /// server offers it, else LOGIN (RFC 9051 §6.2.3), never when LOGINDISABLED.
    async fn authenticate(&mut self, run: &Run<'_>) -> Result<(), FetchError> {
        let user = &run.account.url.user;
        let pass = run.password.expose();
        let done = if self.has("AUTH=PLAIN") {
            let mut blob = Vec::with_capacity(user.len() + pass.len() + 2);
            blob.push(0);
            blob.extend_from_slice(user.as_bytes());
            blob.push(0);
            blob.extend_from_slice(pass.as_bytes());
            let b64 = mutf7::base64(&blob);
            if self.has("SASL-IR") {
                let (_, done) = self.command(&format!("AUTHENTICATE PLAIN {b64}")).await?;
                done
            } else {
                let tag = self.tag();
                self.send(format!("{tag} AUTHENTICATE PLAIN\r\n").as_bytes())
                    .await?;
                match self.read().await? {
                    Response::Continue(_) => {
                        self.send(format!("{b64}\r\n").as_bytes()).await?;
                        self.finish(&tag).await?.1
                    }
                    Response::Tagged(t, done) if t == tag => done,
                    other => {
                        return Err(FetchError::protocol(format!(
                            "{} answered AUTHENTICATE with {other:?}",
                            self.url
                        )))
                    }
                }
            }
        } else if self.has("LOGINDISABLED") {
            return Err(FetchError::auth(format!(
                "{} allows no login here (LOGINDISABLED, and no AUTH=PLAIN)",
                self.url
            )));
        } else {
            let tag = self.tag();
            self.send(format!("{tag} LOGIN ").as_bytes()).await?;
            self.astring(user).await?;
            self.send(b" ").await?;
            self.astring(pass).await?;
            self.send(b"\r\n").await?;
            self.finish(&tag).await?.1
        };
        match done.status {
            Status::Ok => {}
            Status::No => {
                return Err(FetchError::auth(format!(
                    "login refused by {}: {done}",
                    self.url
                )))
            }
            _ => {
                return Err(FetchError::protocol(format!(
                    "{} rejected our login command: {done}",
                    self.url
                )))
            }
        }
        // RFC 9051 §6.2.3: capabilities may change after login.
        match done.code {
            Some(Code::Capability(caps)) => self.caps = upper(&caps),
            _ => self.capability().await?,
        }
        Ok(())
    }

    /// Sends a string as a quoted string, or as a synchronizing literal (RFC 9051 §4.3) when
    /// it holds bytes a quoted string cannot.
    async fn astring(&mut self, s: &str) -> Result<(), FetchError> {
        if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            let q = s.replace('\\', "\\\\").replace('"', "\\\"");
            self.send(format!("\"{q}\"").as_bytes()).await
        } else {
            self.send(format!("{{{}}}\r\n", s.len()).as_bytes()).await?;
            match self.read().await? {
                Response::Continue(_) => self.send(s.as_bytes()).await,
                Response::Tagged(_, done) => Err(FetchError::protocol(format!(
                    "{} refused a literal: {done}",
                    self.url
                ))),
                other => Err(FetchError::protocol(format!(
                    "{} answered a literal with {other:?}",
                    self.url
                ))),
            }
        }
    }

    /// A new command tag.
    pub(crate) fn tag(&mut self) -> String {
        let t = format!("f{}", self.next_tag);
        self.next_tag += 1;
        t
    }

    /// Writes bytes, with a time-out.
    pub(crate) async fn send(&mut self, bytes: &[u8]) -> Result<(), FetchError> {
        let w = async {
            let io = self
                .stream
                .as_mut()
                .ok_or(std::io::ErrorKind::NotConnected)?;
            io.write_all(bytes).await?;
            io.flush().await
        };
        match tokio::time::timeout(self.io_timeout, w).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(FetchError::network(format!("writing to {}: {e}", self.url))),
            Err(_) => Err(FetchError::network(format!(
                "{} took no data for {:?}",
                self.url, self.io_timeout
            ))),
        }
    }

    /// Sends `tag command` and collects the untagged data until the tagged status.
    pub(crate) async fn command(
        &mut self,
        command: &str,
    ) -> Result<(Vec<Untagged>, StatusText), FetchError> {
        let tag = self.tag();
        self.send(format!("{tag} {command}\r\n").as_bytes()).await?;
        self.finish(&tag).await
    }

    /// Reads until the tagged status of `tag`, collecting untagged data.
    pub(crate) async fn finish(
        &mut self,
        tag: &str,
    ) -> Result<(Vec<Untagged>, StatusText), FetchError> {
        let mut data = Vec::new();
        loop {
            match self.read().await? {
                Response::Untagged(u) => data.push(u),
                Response::Tagged(t, done) if t == tag => return Ok((data, done)),
                Response::Tagged(t, done) => {
                    return Err(FetchError::protocol(format!(
                        "{} answered tag {t} we never sent: {done}",
                        self.url
                    )))
                }
                Response::Continue(text) => {
                    return Err(FetchError::protocol(format!(
                        "{} asked for data nobody offered (+ {text})",
                        self.url
                    )))
                }
            }
        }
    }

    /// `Ok` for a tagged OK; NO is a [`crate::ErrorKind::Remote`] error and BAD a
    /// [`crate::ErrorKind::Protocol`] one, both quoting the server.
    pub(crate) fn ok(&self, what: &str, done: &StatusText) -> Result<(), FetchError> {
        match done.status {
            Status::Ok => Ok(()),
            Status::No => Err(FetchError::remote(format!(
                "{} refused {what}: {done}",
                self.url
            ))),
            _ => Err(FetchError::protocol(format!(
                "{} rejected {what} as bad: {done}",
                self.url
            ))),
        }
    }

    /// The next response, with the normal time-out. A BYE is a [`crate::ErrorKind::Remote`]
    /// error with its text (RFC 9051 §7.1.5).
    pub(crate) async fn read(&mut self) -> Result<Response, FetchError> {
        self.read_within(self.io_timeout).await
    }

    /// [`Client::read`] waiting at most `limit` for each read (IDLE waits longer).
    /// Cancel-safe: what was read stays in the buffer.
    pub(crate) async fn read_within(&mut self, limit: Duration) -> Result<Response, FetchError> {
        let r = self.read_raw(limit).await?;
        if let Response::Untagged(Untagged::Status(st)) = &r {
            if st.status == Status::Bye {
                return Err(FetchError::remote(format!(
                    "{} closed the session: {st}",
                    self.url
                )));
            }
        }
        Ok(r)
    }

    /// The next response, BYE included.
    async fn read_raw(&mut self, limit: Duration) -> Result<Response, FetchError> {
        loop {
            let parsed =
                response::parse(&self.buf[self.start..], self.literal_limit).map_err(|e| {
                    FetchError::protocol(format!("{} sent a bad response: {}", self.url, e.0))
                })?;
            let need = match parsed {
                Parsed::Done(r, n) => {
                    self.start += n;
                    if self.start == self.buf.len() {
                        self.buf.clear();
                        self.start = 0;
                    }
                    match &r {
                        Response::Untagged(Untagged::Exists(n)) => {
                            if *n > self.exists {
                                self.grew = true;
                            }
                            self.exists = *n;
                        }
                        Response::Untagged(Untagged::Expunge(_)) => {
                            self.exists = self.exists.saturating_sub(1);
                        }
                        _ => {}
                    }
                    return Ok(r);
                }
                Parsed::Incomplete(Incomplete::Bytes(n)) => n,
                Parsed::Incomplete(Incomplete::Line(_)) => self.buf.len() - self.start + 1,
            };
            // `need` counts from `start`, which compaction moves.
            while self.buf.len() - self.start < need {
                self.fill(limit, need).await?;
            }
        }
    }

    /// Reads more bytes (at least one) towards `need` bytes after `start`, or compacts the
    /// buffer.
    async fn fill(&mut self, limit: Duration, need: usize) -> Result<(), FetchError> {
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
            return Ok(());
        }
        let have = self.buf.len() - self.start;
        let want = need.saturating_sub(have).clamp(64 * 1024, 4 * 1024 * 1024);
        self.buf.reserve(want);
        let Some(io) = self.stream.as_mut() else {
            return Err(self.closed());
        };
        // `read_buf` appends only what it read: cancelling it (IDLE's select) loses nothing.
        let r = tokio::time::timeout(limit, io.read_buf(&mut self.buf)).await;
        let n = match r {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                return Err(FetchError::network(format!(
                    "reading from {}: {e}",
                    self.url
                )));
            }
            Err(_) => {
                return Err(FetchError::network(format!(
                    "{} sent nothing for {limit:?}",
                    self.url
                )));
            }
        };
        if n == 0 {
            return Err(FetchError::network(format!(
                "{} closed the connection",
                self.url
            )));
        }
        Ok(())
    }

    /// RFC 9051 §6.1.3 LOGOUT: best effort, the session is over either way.
    pub(crate) async fn logout(mut self) {
        let tag = self.tag();
        if self
            .send(format!("{tag} LOGOUT\r\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
        let limit = Duration::from_secs(10).min(self.io_timeout);
        while let Ok(r) = self.read_raw(limit).await {
            if matches!(r, Response::Tagged(t, _) if t == tag) {
                break;
            }
        }
        if let Some(io) = self.stream.as_mut() {
            let _ = tokio::time::timeout(limit, io.shutdown()).await;
        }
    }
}

fn upper(caps: &[String]) -> Vec<String> {
    caps.iter().map(|c| c.to_ascii_uppercase()).collect()
}
