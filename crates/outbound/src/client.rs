//! The SMTP client connection: replies, EHLO capabilities, STARTTLS, AUTH, and one mail
//! transaction with PIPELINING. I/O goes through [`Conn`]; nothing here trusts the peer's input.

use crate::OutboundError;
use base64::Engine;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::client::TlsStream;

/// Longest reply line accepted (RFC 5321 §4.5.3.1.5 says 512; we are lenient).
const MAX_REPLY_LINE: usize = 4096;
/// Most lines in one multi-line reply.
const MAX_REPLY_LINES: usize = 100;

/// RFC 5321 §4.5.3.2 timeouts.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// TCP connect (not in RFC 5321; ours): 30 seconds by default.
    pub connect: Duration,
    /// §4.5.3.2.1 initial 220 message: 5 minutes.
    pub greeting: Duration,
    /// §4.5.3.2.2/3 MAIL and RCPT: 5 minutes (also EHLO, STARTTLS, AUTH, RSET).
    pub command: Duration,
    /// §4.5.3.2.4 DATA initiation: 2 minutes.
    pub data_init: Duration,
    /// §4.5.3.2.5 data block: 3 minutes.
    pub data_block: Duration,
    /// §4.5.3.2.6 DATA termination: 10 minutes.
    pub data_end: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(30),
            greeting: Duration::from_secs(300),
            command: Duration::from_secs(300),
            data_init: Duration::from_secs(120),
            data_block: Duration::from_secs(180),
            data_end: Duration::from_secs(600),
        }
    }
}

/// One SMTP reply (RFC 5321 §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code (200..=599; the same on every line).
    pub code: u16,
    /// The text of each line, after the code and its separator, without CRLF.
    pub lines: Vec<String>,
}

impl Reply {
    /// A 2xx or 3xx reply.
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }
    /// A 5xx reply (permanent negative completion).
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }
    /// The reply as one line: `550 5.1.1 no such user`.
    pub fn text(&self) -> String {
        format!("{} {}", self.code, self.lines.join(" / "))
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// What the server announced in its EHLO reply (RFC 5321 §4.1.1.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// False after a HELO fallback: no extensions at all.
    pub esmtp: bool,
    /// RFC 3207 STARTTLS.
    pub starttls: bool,
    /// RFC 2920 PIPELINING.
    pub pipelining: bool,
    /// RFC 1870 SIZE; `Some(0)` means no fixed limit.
    pub size: Option<u64>,
    /// RFC 6152 8BITMIME.
    pub eightbitmime: bool,
    /// RFC 6531 SMTPUTF8.
    pub smtputf8: bool,
    /// RFC 3461 DSN.
    pub dsn: bool,
    /// RFC 8689 REQUIRETLS.
    pub requiretls: bool,
    /// RFC 3030 CHUNKING (the BDAT command).
    pub chunking: bool,
    /// RFC 3030 BINARYMIME (with CHUNKING).
    pub binarymime: bool,
    /// RFC 4954 AUTH with the PLAIN mechanism (RFC 4616).
    pub auth_plain: bool,
    /// RFC 4954 AUTH with the LOGIN mechanism.
    pub auth_login: bool,
}

impl Capabilities {
    fn parse(reply: &Reply) -> Capabilities {
        let mut caps = Capabilities {
            esmtp: true,
            ..Capabilities::default()
        };
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "STARTTLS" => caps.starttls = true,
                "PIPELINING" => caps.pipelining = true,
                "8BITMIME" => caps.eightbitmime = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "DSN" => caps.dsn = true,
                "REQUIRETLS" => caps.requiretls = true,
                "CHUNKING" => caps.chunking = true,
                "BINARYMIME" => caps.binarymime = true,
                "SIZE" => caps.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                "AUTH" => {
                    for m in words {
                        match m.to_ascii_uppercase().as_str() {
                            "PLAIN" => caps.auth_plain = true,
                            "LOGIN" => caps.auth_login = true,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        caps
    }
}

/// An open SMTP connection after the greeting.
pub struct Conn {
    io: BufReader<Stream>,
    /// The peer as named in logs and errors: `host [addr:port]`.
    pub peer: String,
    /// What the last EHLO reply announced (none before EHLO; reset by STARTTLS).
    pub caps: Capabilities,
    /// The connection is encrypted (implicit TLS or after STARTTLS).
    pub tls: bool,
    /// The timeouts each stage is held to.
    pub timeouts: Timeouts,
    /// Transactions done on this connection.
    pub transactions: u32,
}

/// Why the server will not take a message at all, or the connection broke.
#[derive(Debug)]
pub enum SessionError {
    /// A reply that refuses the whole session or transaction (4xx/5xx to greeting, EHLO, MAIL,
    /// DATA...).
    Reply(Reply, &'static str),
    /// The connection failed, timed out, or the peer broke the protocol.
    Io(OutboundError),
}

impl From<OutboundError> for SessionError {
    fn from(e: OutboundError) -> SessionError {
        SessionError::Io(e)
    }
}

impl Conn {
    /// Connects and reads the greeting (RFC 5321 §3.1).
    pub async fn connect(
        addr: std::net::SocketAddr,
        peer: String,
        timeouts: Timeouts,
    ) -> Result<Conn, SessionError> {
        let tcp = timeout(timeouts.connect, TcpStream::connect(addr))
            .await
            .map_err(|_| OutboundError::Timeout("connect", peer.clone()))?
            .map_err(|e| OutboundError::Io("connect", peer.clone(), e))?;
        Conn::greet(tcp, peer, timeouts).await
    }

    /// Reads the greeting on a connection already established (by happy eyeballs).
    pub async fn greet(
        tcp: TcpStream,
        peer: String,
        timeouts: Timeouts,
    ) -> Result<Conn, SessionError> {
        let _ = tcp.set_nodelay(true);
        let mut conn = Conn {
            io: BufReader::new(Stream::Plain(tcp)),
            peer,
            caps: Capabilities::default(),
            tls: false,
            timeouts,
            transactions: 0,
        };
        let greeting = conn.read_reply(timeouts.greeting, "greeting").await?;
        if greeting.code != 220 {
            return Err(SessionError::Reply(greeting, "greeting"));
        }
        Ok(conn)
    }

    /// Connects with implicit TLS (RFC 8314, port 465) and reads the greeting.
    pub async fn connect_tls(
        addr: std::net::SocketAddr,
        peer: String,
        server_name: &str,
        verify: bool,
        timeouts: Timeouts,
    ) -> Result<Conn, SessionError> {
        let tcp = timeout(timeouts.connect, TcpStream::connect(addr))
            .await
            .map_err(|_| OutboundError::Timeout("connect", peer.clone()))?
            .map_err(|e| OutboundError::Io("connect", peer.clone(), e))?;
        let _ = tcp.set_nodelay(true);
        let tls = handshake(
            tcp,
            server_name,
            tls_config(verify),
            &peer,
            timeouts.command,
        )
        .await?;
        let mut conn = Conn {
            io: BufReader::new(Stream::Tls(Box::new(tls))),
            peer,
            caps: Capabilities::default(),
            tls: true,
            timeouts,
            transactions: 0,
        };
        let greeting = conn.read_reply(timeouts.greeting, "greeting").await?;
        if greeting.code != 220 {
            return Err(SessionError::Reply(greeting, "greeting"));
        }
        Ok(conn)
    }

    async fn write(
        &mut self,
        bytes: &[u8],
        limit: Duration,
        what: &'static str,
    ) -> Result<(), OutboundError> {
        let peer = self.peer.clone();
        let io = self.io.get_mut();
        timeout(limit, async {
            io.write_all(bytes).await?;
            io.flush().await
        })
        .await
        .map_err(|_| OutboundError::Timeout(what, peer.clone()))?
        .map_err(|e| OutboundError::Io(what, peer, e))
    }

    /// Reads one (possibly multi-line) reply (RFC 5321 §4.2.1).
    pub async fn read_reply(
        &mut self,
        limit: Duration,
        what: &'static str,
    ) -> Result<Reply, OutboundError> {
        let peer = self.peer.clone();
        timeout(limit, read_reply(&mut self.io, &peer, what))
            .await
            .map_err(|_| OutboundError::Timeout(what, peer.clone()))?
    }

    async fn command(
        &mut self,
        line: &str,
        limit: Duration,
        what: &'static str,
    ) -> Result<Reply, OutboundError> {
        self.write(format!("{line}\r\n").as_bytes(), limit, what)
            .await?;
        self.read_reply(limit, what).await
    }

    /// EHLO, falling back to HELO when the server does not know EHLO (RFC 5321 §3.2).
    pub async fn hello(&mut self, name: &str) -> Result<(), SessionError> {
        let t = self.timeouts.command;
        let reply = self.command(&format!("EHLO {name}"), t, "EHLO").await?;
        if reply.code == 250 {
            self.caps = Capabilities::parse(&reply);
            return Ok(());
        }
        if reply.code == 421 {
            return Err(SessionError::Reply(reply, "EHLO"));
        }
        let helo = self.command(&format!("HELO {name}"), t, "HELO").await?;
        if helo.code != 250 {
            return Err(SessionError::Reply(helo, "HELO"));
        }
        self.caps = Capabilities::default();
        Ok(())
    }

    /// RFC 3207 STARTTLS, then EHLO again. The connection is unusable after an error.
    pub async fn starttls(
        self,
        server_name: &str,
        verify: bool,
        helo: &str,
    ) -> Result<Conn, SessionError> {
        self.starttls_with(server_name, tls_config(verify), helo)
            .await
    }

    /// RFC 3207 STARTTLS with a given TLS client configuration (its certificate verifier is
    /// the destination's policy: DANE, MTA-STS...), then EHLO again.
    pub async fn starttls_with(
        mut self,
        server_name: &str,
        config: Arc<rustls::ClientConfig>,
        helo: &str,
    ) -> Result<Conn, SessionError> {
        let t = self.timeouts.command;
        let reply = self.command("STARTTLS", t, "STARTTLS").await?;
        if reply.code != 220 {
            return Err(SessionError::Reply(reply, "STARTTLS"));
        }
        if !self.io.buffer().is_empty() {
            return Err(SessionError::Io(OutboundError::Protocol(
                self.peer.clone(),
                "data pipelined after the STARTTLS reply".into(),
            )));
        }
        let Stream::Plain(tcp) = self.io.into_inner() else {
            return Err(SessionError::Io(OutboundError::Protocol(
                self.peer,
                "STARTTLS on a TLS connection".into(),
            )));
        };
        let tls = handshake(tcp, server_name, config, &self.peer, t).await?;
        let mut conn = Conn {
            io: BufReader::new(Stream::Tls(Box::new(tls))),
            peer: self.peer,
            caps: Capabilities::default(),
            tls: true,
            timeouts: self.timeouts,
            transactions: 0,
        };
        conn.hello(helo).await?;
        Ok(conn)
    }

    /// RFC 4954 AUTH with PLAIN (RFC 4616) or LOGIN.
    pub async fn auth(&mut self, user: &str, password: &str) -> Result<(), SessionError> {
        let t = self.timeouts.command;
        let b64 = base64::engine::general_purpose::STANDARD;
        let reply = if self.caps.auth_plain {
            let token = b64.encode(format!("\0{user}\0{password}"));
            self.command(&format!("AUTH PLAIN {token}"), t, "AUTH")
                .await?
        } else if self.caps.auth_login {
            let r = self.command("AUTH LOGIN", t, "AUTH").await?;
            if r.code != 334 {
                return Err(SessionError::Reply(r, "AUTH"));
            }
            let r = self.command(&b64.encode(user), t, "AUTH").await?;
            if r.code != 334 {
                return Err(SessionError::Reply(r, "AUTH"));
            }
            self.command(&b64.encode(password), t, "AUTH").await?
        } else {
            return Err(SessionError::Reply(
                Reply {
                    code: 454,
                    lines: vec!["4.7.0 the relay offers neither AUTH PLAIN nor AUTH LOGIN".into()],
                },
                "AUTH",
            ));
        };
        if reply.code != 235 {
            return Err(SessionError::Reply(reply, "AUTH"));
        }
        Ok(())
    }

    /// One mail transaction (RFC 5321 §3.3): MAIL, the RCPTs, DATA, pipelined when the server
    /// offers PIPELINING (RFC 2920). Returns one reply per recipient: the RCPT refusal, or the
    /// final reply to the data.
    pub async fn transaction(
        &mut self,
        mail_from: &str,
        rcpt_to: &[String],
        message: &[u8],
    ) -> Result<Vec<Reply>, SessionError> {
        let t = self.timeouts;
        self.transactions += 1;
        let mut rcpt_replies = Vec::with_capacity(rcpt_to.len());
        if self.caps.pipelining {
            let mut batch = format!("{mail_from}\r\n");
            for r in rcpt_to {
                batch.push_str(r);
                batch.push_str("\r\n");
            }
            batch.push_str("DATA\r\n");
            self.write(batch.as_bytes(), t.command, "MAIL").await?;
            let mail = self.read_reply(t.command, "MAIL").await?;
            for _ in rcpt_to {
                rcpt_replies.push(self.read_reply(t.command, "RCPT").await?);
            }
            let data = self.read_reply(t.data_init, "DATA").await?;
            if mail.code != 250 {
                if data.code == 354 {
                    // The server accepted DATA despite refusing MAIL: end the (empty) data.
                    self.write(b".\r\n", t.data_end, "DATA").await?;
                    self.read_reply(t.data_end, "DATA").await?;
                }
                return Err(SessionError::Reply(mail, "MAIL"));
            }
            let any_ok = rcpt_replies.iter().any(|r| r.code == 250 || r.code == 251);
            if data.code != 354 {
                if !any_ok {
                    return Ok(rcpt_replies);
                }
                return Err(SessionError::Reply(data, "DATA"));
            }
            if !any_ok {
                // RFC 2920 §3.1: no valid recipient, yet DATA was accepted: send an empty message.
                self.write(b".\r\n", t.data_end, "DATA").await?;
                self.read_reply(t.data_end, "DATA").await?;
                return Ok(rcpt_replies);
            }
        } else {
            let mail = self.command(mail_from, t.command, "MAIL").await?;
            if mail.code != 250 {
                return Err(SessionError::Reply(mail, "MAIL"));
            }
            for r in rcpt_to {
                rcpt_replies.push(self.command(r, t.command, "RCPT").await?);
            }
            if !rcpt_replies.iter().any(|r| r.code == 250 || r.code == 251) {
                let _ = self.command("RSET", t.command, "RSET").await?;
                return Ok(rcpt_replies);
            }
            let data = self.command("DATA", t.data_init, "DATA").await?;
            if data.code != 354 {
                return Err(SessionError::Reply(data, "DATA"));
            }
        }
        let stuffed = dot_stuff(message);
        self.write(&stuffed, t.data_block, "DATA").await?;
        let done = self.read_reply(t.data_end, "end of data").await?;
        Ok(rcpt_replies
            .into_iter()
            .map(|r| {
                if r.code == 250 || r.code == 251 {
                    done.clone()
                } else {
                    r
                }
            })
            .collect())
    }

    /// One mail transaction with RFC 3030 CHUNKING: MAIL, the RCPTs (pipelined when the server
    /// offers PIPELINING), then the whole message as one `BDAT n LAST` chunk, sent as it is (no
    /// dot-stuffing, RFC 3030 §2). `message` must already be what goes on the wire (CRLF line
    /// ends unless it is BINARYMIME). Returns one reply per recipient, as
    /// [`Conn::transaction`] does.
    pub async fn transaction_bdat(
        &mut self,
        mail_from: &str,
        rcpt_to: &[String],
        message: &[u8],
    ) -> Result<Vec<Reply>, SessionError> {
        let t = self.timeouts;
        self.transactions += 1;
        let mut rcpt_replies = Vec::with_capacity(rcpt_to.len());
        let mail = if self.caps.pipelining {
            let mut batch = format!("{mail_from}\r\n");
            for r in rcpt_to {
                batch.push_str(r);
                batch.push_str("\r\n");
            }
            self.write(batch.as_bytes(), t.command, "MAIL").await?;
            let mail = self.read_reply(t.command, "MAIL").await?;
            for _ in rcpt_to {
                rcpt_replies.push(self.read_reply(t.command, "RCPT").await?);
            }
            mail
        } else {
            let mail = self.command(mail_from, t.command, "MAIL").await?;
            if mail.code == 250 {
                for r in rcpt_to {
                    rcpt_replies.push(self.command(r, t.command, "RCPT").await?);
                }
            }
            mail
        };
        if mail.code != 250 {
            return Err(SessionError::Reply(mail, "MAIL"));
        }
        if !rcpt_replies.iter().any(|r| r.code == 250 || r.code == 251) {
            let _ = self.command("RSET", t.command, "RSET").await?;
            return Ok(rcpt_replies);
        }
        let mut chunk = format!("BDAT {} LAST\r\n", message.len()).into_bytes();
        chunk.extend_from_slice(message);
        self.write(&chunk, t.data_block, "BDAT").await?;
        let done = self.read_reply(t.data_end, "BDAT").await?;
        Ok(rcpt_replies
            .into_iter()
            .map(|r| {
                if r.code == 250 || r.code == 251 {
                    done.clone()
                } else {
                    r
                }
            })
            .collect())
    }

    /// RFC 5321 §4.1.1.10 QUIT, best effort.
    pub async fn quit(mut self) {
        let t = Duration::from_secs(5);
        if self.write(b"QUIT\r\n", t, "QUIT").await.is_ok() {
            let _ = self.read_reply(t, "QUIT").await;
        }
        let _ = self.io.get_mut().shutdown().await;
    }

    /// RFC 5321 §4.1.1.5 RSET before reusing a connection.
    pub async fn reset(&mut self) -> Result<(), SessionError> {
        let t = self.timeouts.command;
        let r = self.command("RSET", t, "RSET").await?;
        if r.code != 250 {
            return Err(SessionError::Reply(r, "RSET"));
        }
        Ok(())
    }
}

async fn read_reply<R: tokio::io::AsyncBufRead + Unpin>(
    io: &mut R,
    peer: &str,
    what: &'static str,
) -> Result<Reply, OutboundError> {
    let mut lines = Vec::new();
    let mut code = 0u16;
    loop {
        let mut line = Vec::new();
        let n = tokio::io::AsyncReadExt::take(&mut *io, MAX_REPLY_LINE as u64)
            .read_until(b'\n', &mut line)
            .await
            .map_err(|e| OutboundError::Io(what, peer.to_string(), e))?;
        if n == 0 {
            return Err(OutboundError::Closed(what, peer.to_string()));
        }
        if line.last() != Some(&b'\n') {
            return Err(OutboundError::Protocol(
                peer.to_string(),
                "reply line too long".into(),
            ));
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        let bytes = text.as_bytes();
        if bytes.len() < 3 || !bytes[..3].iter().all(u8::is_ascii_digit) {
            return Err(OutboundError::Protocol(
                peer.to_string(),
                format!("malformed reply {:?}", truncate(text)),
            ));
        }
        let this: u16 = text[..3].parse().unwrap_or(0);
        if !(200..600).contains(&this) || (code != 0 && this != code) {
            return Err(OutboundError::Protocol(
                peer.to_string(),
                format!("malformed reply {:?}", truncate(text)),
            ));
        }
        code = this;
        let more = bytes.get(3) == Some(&b'-');
        lines.push(text.get(4..).unwrap_or("").to_string());
        if !more {
            return Ok(Reply { code, lines });
        }
        if lines.len() >= MAX_REPLY_LINES {
            return Err(OutboundError::Protocol(
                peer.to_string(),
                "reply too long".into(),
            ));
        }
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

/// RFC 5321 §4.5.2 transparency: a leading dot is doubled; line ends become CRLF; the message
/// ends with `CRLF.CRLF`.
use postern_mail::wire::dot_stuff;

async fn handshake(
    tcp: TcpStream,
    server_name: &str,
    config: Arc<rustls::ClientConfig>,
    peer: &str,
    limit: Duration,
) -> Result<TlsStream<TcpStream>, OutboundError> {
    let name = ServerName::try_from(server_name.to_string())
        .or_else(|_| ServerName::try_from("localhost".to_string()))
        .map_err(|e| OutboundError::Tls(peer.to_string(), e.to_string()))?;
    let connector = tokio_rustls::TlsConnector::from(config);
    timeout(limit, connector.connect(name, tcp))
        .await
        .map_err(|_| OutboundError::Timeout("TLS handshake", peer.to_string()))?
        .map_err(|e| OutboundError::Tls(peer.to_string(), e.to_string()))
}

/// The shared configurations: WebPKI-verified against the system's roots, or opportunistic.
pub(crate) fn tls_config(verify: bool) -> Arc<rustls::ClientConfig> {
    use std::sync::OnceLock;
    static OPPORTUNISTIC: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    static VERIFIED: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    let provider = || Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    if verify {
        VERIFIED
            .get_or_init(|| {
                let mut roots = rustls::RootCertStore::empty();
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
                let config = rustls::ClientConfig::builder_with_provider(provider())
                    .with_safe_default_protocol_versions()
                    .map(|b| b.with_root_certificates(roots).with_no_client_auth());
                Arc::new(config.unwrap_or_else(|_| opportunistic(provider())))
            })
            .clone()
    } else {
        OPPORTUNISTIC
            .get_or_init(|| Arc::new(opportunistic(provider())))
            .clone()
    }
}

/// RFC 7435 opportunistic security: encrypt, but accept any certificate.
fn opportunistic(provider: Arc<rustls::crypto::CryptoProvider>) -> rustls::ClientConfig {
    let verifier = Arc::new(AcceptAny(provider.clone()));
    with_verifier(provider, verifier)
}

/// A client configuration on `provider` whose certificate check is `verifier` (the default
/// protocol versions; rustls' own defaults if the provider refuses them).
pub(crate) fn with_verifier(
    provider: Arc<rustls::crypto::CryptoProvider>,
    verifier: Arc<dyn ServerCertVerifier>,
) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| {
            b.dangerous()
                .with_custom_certificate_verifier(verifier.clone())
                .with_no_client_auth()
        })
        .unwrap_or_else(|_| {
            rustls::ClientConfig::builder()
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth()
        })
}

#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing_and_line_ends() {
        assert_eq!(dot_stuff(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(dot_stuff(b".x\nend"), b"..x\r\nend\r\n.\r\n");
        assert_eq!(dot_stuff(b""), b".\r\n");
    }

    #[tokio::test]
    async fn multiline_replies_and_capabilities() {
        let data = b"250-mx.example Hello\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-STARTTLS\r\n250-AUTH LOGIN PLAIN\r\n250 DSN\r\n";
        let mut r = BufReader::new(&data[..]);
        let reply = read_reply(&mut r, "p", "EHLO").await.unwrap();
        assert_eq!(reply.code, 250);
        let caps = Capabilities::parse(&reply);
        assert!(caps.pipelining && caps.starttls && caps.dsn && caps.auth_plain && caps.auth_login);
        assert_eq!(caps.size, Some(1000));
        assert!(!caps.smtputf8);
        let mut bad = BufReader::new(&b"250-a\r\n550 b\r\n"[..]);
        assert!(read_reply(&mut bad, "p", "x").await.is_err());
        let mut junk = BufReader::new(&b"hello\r\n"[..]);
        assert!(read_reply(&mut junk, "p", "x").await.is_err());
    }
}

/// Property tests of the DATA writer (RFC 5321 §4.5.2); the server's decoder reads it back in
/// `postern-fuzz-targets` (which depends on both crates) and its `smtp_data` fuzz target.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    /// The receiver's side of §4.5.2, written plainly over CRLF lines: up to the "." line, a
    /// leading dot removed. `None` if the data is not CRLF lines ending with "." CRLF.
    fn unstuff(wire: &[u8]) -> Option<Vec<u8>> {
        let body = wire.strip_suffix(b"\r\n")?;
        let mut out = Vec::new();
        let mut lines = body.split(|&b| b == b'\n').peekable();
        while let Some(line) = lines.next() {
            let line = if lines.peek().is_some() {
                line.strip_suffix(b"\r")?
            } else {
                line
            };
            if line == b"." {
                return lines.peek().is_none().then_some(out);
            }
            out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
            out.extend_from_slice(b"\r\n");
        }
        None
    }

    proptest! {
        /// Any message, stuffed, is CRLF lines whose only "." line is the last one, and
        /// unstuffs to the message with canonical line ends (bare LF as CRLF, a final CRLF).
        #[test]
        fn stuffing_is_undone_by_unstuffing(message in proptest::collection::vec(
            prop_oneof![Just(b'.'), Just(b'\r'), Just(b'\n'), any::<u8>()], 0..80)) {
            let wire = dot_stuff(&message);
            let mut canonical = Vec::new();
            let mut prev = 0u8;
            for &b in &message {
                if b == b'\n' && prev != b'\r' {
                    canonical.push(b'\r');
                }
                canonical.push(b);
                prev = b;
            }
            if !message.is_empty() && prev != b'\n' {
                canonical.extend_from_slice(b"\r\n");
            }
            prop_assert_eq!(unstuff(&wire), Some(canonical));
            // No bare LF on the wire (RFC 5321 §2.3.8).
            for (i, &b) in wire.iter().enumerate() {
                if b == b'\n' {
                    prop_assert!(i > 0 && wire[i - 1] == b'\r');
                }
            }
        }
    }
}
