//! The async driver: reads lines and data from the [`Connection`], feeds the [`Session`], writes the
//! replies. Replies are batched while more pipelined input is already buffered and flushed before the
//! driver would wait for the client (RFC 2920 §3.2).

use crate::check::Checks;
use crate::message::DataDecoder;
use crate::reply;
use crate::session::{Outcome, Session, Settings, Step};
use crate::sink::{Sink, SpoolSink};
use async_trait::async_trait;
use base64::Engine;
use postern_config::{Config, Service};
use postern_directory::{
    AuthGate, AuthThrottle, ChannelBindings, Directory, SaslError, SaslMechanism, SaslStep,
};
use postern_net::{
    ChannelBindingKind, Connection, IoSettings, LineError, LineIo, MailStream, Refusal,
    SessionHandler,
};
use postern_spool::Queue;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Logs a 4xx or 5xx reply at INFO, one line with everything an admin greps for: the client,
/// its HELO, the sender and recipient, the command and the reply. (Failed AUTH is logged by
/// the authentication gate, in its own stable shape.)
fn log_refusal(session: &Session, peer: IpAddr, line: &[u8], reply: &str) {
    if !(reply.starts_with('4') || reply.starts_with('5')) {
        return;
    }
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end();
    let verb = text
        .split(' ')
        .next()
        .unwrap_or("")
        .to_ascii_uppercase()
        .chars()
        .take(12)
        .collect::<String>();
    if verb == "AUTH" {
        return;
    }
    let argument = |prefix: &str| {
        text.get(prefix.len()..)
            .filter(|_| {
                text.len() > prefix.len() && text[..prefix.len()].eq_ignore_ascii_case(prefix)
            })
            .map(|rest| {
                let rest = rest.trim_start();
                let end = rest.find('>').map_or(rest.len(), |i| i + 1);
                rest[..end].chars().take(320).collect::<String>()
            })
    };
    let (helo, txn_sender) = session.log_context();
    let from = argument("MAIL FROM:").or_else(|| txn_sender.map(str::to_string));
    let rcpt = argument("RCPT TO:");
    // The last line of a multi-line reply carries the code and the gist.
    let reply = reply.trim_end().lines().last().unwrap_or("");
    tracing::info!(
        client = %peer,
        helo,
        from = from.as_deref(),
        rcpt = rcpt.as_deref(),
        command = %verb,
        reply,
        "smtp refused"
    );
}

/// Longest line accepted during an AUTH exchange (base64 of a 1 KiB identity and password, and more).
const AUTH_LINE_LIMIT: usize = 12 * 1024;

/// The SMTP server: one per process, shared by the smtp, submission and submissions listeners.
#[derive(Clone)]
pub struct SmtpServer {
    settings: Arc<Settings>,
    pub(crate) directory: Arc<dyn Directory>,
    /// Every AUTH passes here (throttle, failure logs).
    gate: AuthGate,
    /// Where accepted mail goes.
    sink: Arc<dyn Sink>,
    /// Policy checks on the SMTP stages (none: every stage accepts).
    pub(crate) checks: Checks,
    /// The pre-greeting test: (wait, whether loopback clients wait too); see
    /// [`SmtpServer::with_pregreet`].
    pregreet: Option<(Duration, bool)>,
}

impl SmtpServer {
    /// A server handing accepted mail to the `spool`, without checks.
    pub fn new(
        config: &Config,
        directory: Arc<dyn Directory>,
        throttle: Arc<AuthThrottle>,
        spool: Arc<dyn Queue>,
    ) -> SmtpServer {
        SmtpServer {
            settings: Arc::new(Settings {
                hostname: config.hostname.clone(),
                smtp: config.smtp.clone(),
                allow_plaintext: config.auth.allow_plaintext,
            }),
            gate: AuthGate::new(directory.clone(), throttle),
            directory,
            sink: Arc::new(SpoolSink(spool)),
            checks: Checks::new(),
            pregreet: None,
        }
    }

    /// An LMTP server (RFC 2033) for the `lmtp` service: sessions answer LHLO, accept local
    /// recipients only and hand each message to `sink`'s [`Sink::deliver_each`]. The limits
    /// are `[smtp]`'s, with `[lmtp]`'s message size, recipient count and timeouts. No AUTH is
    /// offered, so the throttle is its own.
    pub fn lmtp(config: &Config, directory: Arc<dyn Directory>, sink: Arc<dyn Sink>) -> SmtpServer {
        let mut smtp = config.smtp.clone();
        if let Some(size) = config.lmtp.max_message_size {
            smtp.max_message_size = size;
        }
        smtp.max_recipients = config.lmtp.max_recipients;
        smtp.command_timeout_secs = config.lmtp.command_timeout_secs;
        smtp.data_timeout_secs = config.lmtp.data_timeout_secs;
        SmtpServer {
            settings: Arc::new(Settings {
                hostname: config.hostname.clone(),
                smtp,
                allow_plaintext: false,
            }),
            gate: AuthGate::new(
                directory.clone(),
                Arc::new(AuthThrottle::new(Default::default())),
            ),
            directory,
            sink,
            checks: Checks::new(),
            pregreet: None,
        }
    }

    /// The same server handing accepted mail to `sink` instead.
    pub fn with_sink(mut self, sink: Arc<dyn Sink>) -> SmtpServer {
        self.sink = sink;
        self
    }

    /// The same server running `checks` on every session.
    pub fn with_checks(mut self, checks: Checks) -> SmtpServer {
        self.checks = checks;
        self
    }

    /// The pre-greeting test (as Postfix's postscreen): on the MX service, a client outside
    /// the trusted networks (and off loopback unless `loopback`) waits `wait` for the banner;
    /// one that talks first breaks RFC 5321 §3.1 (the client waits for the greeting) and is
    /// answered `554 5.5.1` and dropped.
    pub fn with_pregreet(mut self, wait: Duration, loopback: bool) -> SmtpServer {
        self.pregreet = Some((wait, loopback));
        self
    }

    /// The pre-greeting wait for this client, if any.
    fn pregreet_wait(&self, service: Service, peer: IpAddr) -> Option<Duration> {
        let (wait, loopback) = self.pregreet?;
        let applies = service == Service::Smtp
            && !wait.is_zero()
            && (loopback || !postern_net::is_loopback(&peer))
            && !self
                .settings
                .smtp
                .trusted_networks
                .iter()
                .any(|n| n.contains(peer));
        applies.then_some(wait)
    }
}

#[async_trait]
impl SessionHandler for SmtpServer {
    async fn handle(&self, conn: Connection) {
        // No TLS over a Unix socket: STARTTLS is not offered there.
        let unix = matches!(conn.stream, MailStream::Unix(_));
        let io_settings = IoSettings {
            write_timeout: Duration::from_secs(self.settings.smtp.command_timeout_secs),
            ..IoSettings::default()
        };
        let mut driver = Driver {
            server: self,
            io: LineIo::new(conn.stream, conn.peer, io_settings),
            peer: conn.peer.ip(),
        };
        let tls_info = driver.io.tls_info();
        let loopback = postern_net::is_loopback(&conn.peer.ip());
        let mut session = Session::new(
            self.settings.clone(),
            conn.service,
            conn.peer.ip(),
            loopback,
            tls_info,
            conn.tls.is_some() && conn.service != Service::Submissions && !unix,
        );
        session.set_offer_plus(driver.channel_bindings().advertise_plus());
        session.set_checks(!self.checks.is_empty());
        let pregreet = self.pregreet_wait(conn.service, conn.peer.ip());
        driver
            .run(session, &conn.tls, &conn.shutdown, pregreet)
            .await;
        driver.io.shutdown().await;
    }

    fn refusal(&self, service: Service, why: Refusal) -> Vec<u8> {
        why.line(service, &self.settings.hostname)
    }
}

struct Driver<'a> {
    server: &'a SmtpServer,
    /// The connection; replies gather in it until the driver waits for the client.
    io: LineIo,
    peer: IpAddr,
}

impl Driver<'_> {
    fn settings(&self) -> &Settings {
        &self.server.settings
    }

    async fn run(
        &mut self,
        mut session: Session,
        tls: &Option<postern_net::TlsContext>,
        shutdown: &postern_net::CancellationToken,
        pregreet: Option<Duration>,
    ) {
        let first = session.start();
        let server = self.server;
        let settled = match pregreet {
            None => crate::steps::settle(server, &mut session, first).await,
            Some(wait) => {
                // The connect checks run during the wait; the banner waits for both.
                let (settled, quiet) = tokio::join!(
                    crate::steps::settle(server, &mut session, first),
                    self.io.fill(wait)
                );
                match quiet {
                    Err(LineError::Timeout) => settled,
                    Ok(()) => {
                        tracing::info!(client = %self.peer, "pregreet: client talked before the greeting; dropped");
                        self.queue(&reply::line(554, "5.5.1", "Protocol error"));
                        let _ = self.flush().await;
                        return;
                    }
                    Err(_) => return,
                }
            }
        };
        match settled {
            Step::Reply(r) => self.queue(&r),
            Step::Close(r) => {
                self.queue(&r);
                let _ = self.flush().await;
                return;
            }
            _ => return,
        }
        let command_timeout = Duration::from_secs(self.settings().smtp.command_timeout_secs);
        let line_limit = self.settings().smtp.max_line_length;
        loop {
            let line = tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    let bye = reply::line(421, "4.3.2", &format!("{} shutting down, try again later", self.settings().hostname));
                    self.queue(&bye);
                    let _ = self.flush().await;
                    return;
                }
                r = self.read_line(line_limit, command_timeout) => r,
            };
            let line = match line {
                Ok(l) => l,
                Err(LineError::Closed | LineError::Stopped | LineError::Io(_)) => return,
                Err(LineError::Timeout) => {
                    self.say_timeout().await;
                    return;
                }
                Err(LineError::TooLong) => {
                    match session.error_reply(reply::line(500, "5.5.2", "Line too long")) {
                        Step::Reply(r) => {
                            self.queue(&r);
                            continue;
                        }
                        Step::Close(r) => {
                            self.queue(&r);
                            let _ = self.flush().await;
                            return;
                        }
                        _ => return,
                    }
                }
            };
            let step = session.command(&line);
            let step = crate::steps::settle(self.server, &mut session, step).await;
            if let Step::Reply(r) | Step::Close(r) = &step {
                log_refusal(&session, self.peer, &line, r);
            }
            match step {
                Step::Reply(r) => self.queue(&r),
                // `settle` answered these.
                Step::Lookup(_) | Step::Check(_) => return,
                Step::Close(r) => {
                    self.queue(&r);
                    let _ = self.flush().await;
                    return;
                }
                Step::StartTls => {
                    let Some(tls) = tls else { return };
                    self.queue(&reply::line(220, "2.0.0", "Ready to start TLS"));
                    // RFC 3207 §4.2: anything the client pipelined after STARTTLS is discarded.
                    match self.io.starttls(tls).await {
                        Ok(_) => {
                            let info = self.io.tls_info();
                            tracing::debug!(?info, "STARTTLS done");
                            session.tls_started(info);
                            session.set_offer_plus(self.channel_bindings().advertise_plus());
                        }
                        Err(e) => {
                            tracing::debug!("STARTTLS failed: {e}");
                            return;
                        }
                    }
                }
                Step::Auth { mechanism, initial } => {
                    let r = self.authenticate(&mut session, mechanism, initial).await;
                    match r {
                        Some(r) if r.starts_with('5') => match session.error_reply(r) {
                            Step::Close(r) => {
                                self.queue(&r);
                                let _ = self.flush().await;
                                return;
                            }
                            Step::Reply(r) => self.queue(&r),
                            _ => return,
                        },
                        Some(r) => self.queue(&r),
                        None => return,
                    }
                }
                Step::Data(decoder) => {
                    self.queue("354 End data with <CR><LF>.<CR><LF>\r\n");
                    let Some(decoder) = self.read_data(*decoder).await else {
                        return;
                    };
                    let outcome = session.finish_data(decoder);
                    if !self.deliver(&mut session, outcome).await {
                        return;
                    }
                }
                Step::Bdat { size, last } => {
                    let room = session.bdat_room();
                    let Some(data) = self.read_exact(size, room).await else {
                        return;
                    };
                    let outcome = session.bdat_chunk(size, data, last);
                    if !self.deliver(&mut session, outcome).await {
                        return;
                    }
                }
            }
        }
    }

    /// Spools a finished message (in a blocking thread: it fsyncs) and queues the reply.
    async fn deliver(&mut self, session: &mut Session, outcome: Outcome) -> bool {
        let outcome = crate::steps::data_outcome(self.server, session, outcome).await;
        match outcome {
            Outcome::Reply(r) => {
                log_refusal(session, self.peer, b"DATA", &r);
                if r.starts_with('5') {
                    match session.error_reply(r) {
                        Step::Reply(r) => self.queue(&r),
                        Step::Close(r) => {
                            self.queue(&r);
                            let _ = self.flush().await;
                            return false;
                        }
                        _ => return false,
                    }
                } else {
                    self.queue(&r);
                }
                true
            }
            Outcome::Enqueue(envelope, message, queue_id) => {
                let size = message.len();
                let message_id = crate::message::header_value(&message, "Message-ID");
                let result = self.server.sink.accept(queue_id, &envelope, message).await;
                let r = session.enqueued(result, &envelope, size, message_id.as_deref());
                self.queue(&r);
                true
            }
            Outcome::Deliver(envelope, message, queue_id) => {
                let size = message.len();
                let results = self
                    .server
                    .sink
                    .deliver_each(queue_id, &envelope, message)
                    .await;
                let r = session.delivered(&envelope, results, size);
                self.queue(&r);
                true
            }
            // `data_outcome` ran the checks.
            Outcome::Check(..) => {
                self.queue(&reply::line(451, "4.3.0", "Try again later"));
                true
            }
        }
    }

    /// Runs a SASL exchange (RFC 4954 §4) through the client's [`ClientAuth`], which
    /// applies the failure throttle; `None` when the connection is lost.
    async fn authenticate(
        &mut self,
        session: &mut Session,
        mechanism: SaslMechanism,
        initial: Option<Vec<u8>>,
    ) -> Option<String> {
        let auth = self.server.gate.client("smtp", self.peer);
        let refused = |e: SaslError| match e {
            SaslError::Throttled { .. } => reply::line(
                454,
                "4.7.0",
                "Too many failed authentications, try again later",
            ),
            SaslError::Malformed(why) => reply::line(501, "5.5.2", why),
            SaslError::UnsupportedMechanism(_) => {
                reply::line(504, "5.5.4", "Unrecognised authentication mechanism")
            }
            e => {
                tracing::warn!(error = %e, "authentication error");
                reply::line(454, "4.7.0", "Temporary authentication failure")
            }
        };
        if let Err(e) = auth.admit_client() {
            return Some(refused(e));
        }
        let sasl = auth.sasl(mechanism, self.channel_bindings());
        let (mut sasl, mut step) = tokio::task::spawn_blocking(move || {
            let mut sasl = sasl;
            let r = sasl.start(initial.as_deref());
            (sasl, r)
        })
        .await
        .ok()?;
        let timeout = Duration::from_secs(self.settings().smtp.command_timeout_secs);
        loop {
            match step {
                Ok(SaslStep::Challenge(c)) => {
                    let encoded = base64::engine::general_purpose::STANDARD.encode(c);
                    self.queue(&format!("334 {encoded}\r\n"));
                    let line = match self.read_line(AUTH_LINE_LIMIT, timeout).await {
                        Ok(l) => l,
                        Err(LineError::TooLong) => {
                            return Some(reply::line(
                                500,
                                "5.5.6",
                                "Authentication exchange line is too long",
                            ))
                        }
                        Err(_) => return None,
                    };
                    if line == b"*" {
                        // After SCRAM's e= the exchange has already failed: say so.
                        if let Some(e) = sasl.cancel() {
                            step = Err(e);
                            continue;
                        }
                        return Some(reply::line(501, "5.0.0", "Authentication cancelled"));
                    }
                    let Ok(response) = base64::engine::general_purpose::STANDARD.decode(&line)
                    else {
                        return Some(reply::line(501, "5.5.2", "Invalid base64 data"));
                    };
                    let (s, r) = tokio::task::spawn_blocking(move || {
                        let r = sasl.step(&response);
                        (sasl, r)
                    })
                    .await
                    .ok()?;
                    sasl = s;
                    step = r;
                }
                Ok(SaslStep::Done(credentials)) => {
                    session.authenticated(credentials.account);
                    return Some(reply::line(235, "2.7.0", "Authentication successful"));
                }
                Err(e) if e.is_auth_failure() => {
                    self.flush().await.ok()?;
                    tokio::time::sleep(auth.failure_delay()).await;
                    return Some(reply::line(
                        535,
                        "5.7.8",
                        "Authentication credentials invalid",
                    ));
                }
                Err(e) => return Some(refused(e)),
            }
        }
    }

    /// The connection's channel binding data (RFC 5056), for SCRAM-SHA-256-PLUS.
    fn channel_bindings(&self) -> ChannelBindings {
        ChannelBindings::new(
            self.io.channel_binding(ChannelBindingKind::TlsExporter),
            self.io
                .channel_binding(ChannelBindingKind::TlsServerEndPoint),
        )
    }

    fn queue(&mut self, text: &str) {
        self.io.write(text.as_bytes());
    }

    async fn flush(&mut self) -> Result<(), LineError> {
        self.io.flush().await
    }

    /// One line without its line end (CRLF, or a bare LF: RFC 5321 §2.3.8 leniency for commands).
    /// A line longer than `limit` is consumed up to its end and reported as [`LineError::TooLong`].
    /// Waiting for it sends the replies gathered so far (RFC 2920 §3.2).
    async fn read_line(&mut self, limit: usize, timeout: Duration) -> Result<Vec<u8>, LineError> {
        Ok(self.io.read_line(limit, timeout).await?.to_vec())
    }

    /// The DATA phase; `None` when the connection is lost or times out.
    async fn read_data(&mut self, mut decoder: DataDecoder) -> Option<DataDecoder> {
        let timeout = Duration::from_secs(self.settings().smtp.data_timeout_secs);
        match self.io.feed(timeout, |input| decoder.feed(input)).await {
            Ok(()) => Some(decoder),
            Err(LineError::Timeout) => {
                self.say_timeout().await;
                None
            }
            Err(_) => None,
        }
    }

    /// RFC 5321 §4.5.3.2: an idle client is told `421 4.4.2` before the connection closes.
    async fn say_timeout(&mut self) {
        let bye = reply::line(
            421,
            "4.4.2",
            &format!("{} timeout, closing connection", self.settings().hostname),
        );
        self.queue(&bye);
        let _ = self.flush().await;
    }

    /// Reads exactly `size` octets of a BDAT chunk, keeping at most `room` (the rest is discarded).
    async fn read_exact(&mut self, size: u64, room: u64) -> Option<Vec<u8>> {
        let timeout = Duration::from_secs(self.settings().smtp.data_timeout_secs);
        let keep = size <= room;
        let mut data = Vec::with_capacity(if keep { size.min(1 << 20) as usize } else { 0 });
        let read = if keep {
            self.io.read_exact_into(size, &mut data, timeout).await
        } else {
            self.io.skip(size, timeout).await
        };
        match read {
            Ok(()) => Some(data),
            Err(LineError::Timeout) => {
                self.say_timeout().await;
                None
            }
            Err(_) => None,
        }
    }
}
