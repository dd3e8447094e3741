//! One POP3 session over a connection: greeting, the AUTHORIZATION and TRANSACTION states, the
//! UPDATE state at QUIT (RFC 1939 §3–§6), limits and graceful shutdown.

use crate::authorization::{
    apop_digest, apop_timestamp, capabilities, decode_base64, digest_matches, encode_base64,
    Authorization, CapaContext, Policy, Step as AuthStep,
};
use crate::command::{self, Command, ParseError};
use crate::lock::MaildropGuard;
use crate::maildrop::{encode_message, Maildrop, Step as TransStep};
use crate::open::{open_maildrop, MAILDROP};
use crate::{Inner, Pop3Error};
use postern_directory::{ChannelBindings, ClientAuth, SaslError, SaslMechanism, SaslStep};
use postern_net::{
    CancellationToken, ChannelBindingKind, CleartextPolicy, Connection, IoSettings, LineError,
    LineIo, TlsContext,
};
use postern_store::{StoreError, UidSet};
use std::sync::Arc;
use tracing::Instrument;

/// Whether the session goes on after a command.
enum Flow {
    Continue,
    Close,
}

/// The two interactive states (UPDATE is the end of QUIT).
enum Phase {
    Authorization(Authorization),
    Transaction {
        account: String,
        maildrop: Maildrop,
        _lock: MaildropGuard,
    },
}

/// What waiting for the client's next line produced.
enum Next {
    Line(Vec<u8>),
    TooLong,
    /// Closed by the client, an I/O error, or the idle timer (RFC 1939 §3: close without
    /// response and without UPDATE).
    Gone,
    /// The server is shutting down.
    Shutdown,
}

struct Session {
    inner: Arc<Inner>,
    io: LineIo,
    /// This client's door to the directory (every login path, one throttle).
    auth: Arc<ClientAuth>,
    /// When passwords may be sent (TLS, trusted loopback, or the admin's choice).
    cleartext: CleartextPolicy,
    tls: Option<TlsContext>,
    shutdown: CancellationToken,
    /// The server's own shutdown token: `shutdown` is a child of it once in TRANSACTION,
    /// which an admin's kick cancels alone.
    server_shutdown: CancellationToken,
    /// The session's entry in the registry `postern kick` uses.
    registration: Option<postern_net::Registration>,
    timestamp: Option<String>,
    auth_failures: u32,
    bad_commands: u32,
    span: tracing::Span,
}

/// Runs a session to its end.
pub(crate) async fn run(inner: Arc<Inner>, conn: Connection) {
    let span = tracing::info_span!("pop3", user = tracing::field::Empty);
    let cleartext = CleartextPolicy {
        trust_loopback: inner.settings.trust_loopback,
        allow_plaintext: inner.config.auth.allow_plaintext,
    };
    let io_settings = IoSettings {
        write_timeout: inner.settings.idle_timeout,
        ..IoSettings::default()
    };
    let session = Session {
        timestamp: inner
            .settings
            .apop
            .then(|| apop_timestamp(&inner.config.hostname)),
        auth: inner.gate.client("pop3", conn.peer.ip()),
        inner,
        io: LineIo::new(conn.stream, conn.peer, io_settings),
        cleartext,
        tls: conn.tls,
        server_shutdown: conn.shutdown.clone(),
        shutdown: conn.shutdown,
        registration: None,
        auth_failures: 0,
        bad_commands: 0,
        span: span.clone(),
    };
    session.main().instrument(span).await;
}

impl Session {
    fn policy(&self) -> Policy {
        let tls = self.io.is_tls();
        Policy {
            plaintext_ok: self.cleartext.allows(tls, &self.io.peer().ip()),
            stls_available: !tls && self.tls.is_some(),
            apop: self.timestamp.is_some(),
            tls,
            offer_plus: tls && self.channel_bindings().advertise_plus(),
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

    async fn main(mut self) {
        // RFC 1939 §4 greeting; §7 APOP timestamp.
        let greeting = match &self.timestamp {
            Some(ts) => format!("+OK postern POP3 server ready {ts}\r\n"),
            None => "+OK postern POP3 server ready\r\n".to_owned(),
        };
        self.io.write(greeting.as_bytes());
        if self.io.flush().await.is_err() {
            return;
        }
        let mut phase = Phase::Authorization(Authorization::default());
        loop {
            let line = match self.next_line().await {
                Next::Line(l) => l,
                Next::TooLong => {
                    self.io.write(b"-ERR line too long\r\n");
                    if let Flow::Close = self.bad_command() {
                        break;
                    }
                    if self.io.flush_if_idle().await.is_err() {
                        return;
                    }
                    continue;
                }
                Next::Gone => {
                    tracing::debug!("connection closed without QUIT; nothing deleted");
                    return;
                }
                Next::Shutdown => {
                    // Graceful stop or a kick: no UPDATE, deletions are kept for the next
                    // session.
                    let why: &[u8] = if self.server_shutdown.is_cancelled() {
                        b"-ERR [SYS/TEMP] server shutting down, try again later\r\n"
                    } else {
                        b"-ERR session ended by the administrator\r\n"
                    };
                    self.io.write(why);
                    break;
                }
            };
            let flow = match command::parse(&line) {
                Ok(cmd) => {
                    self.bad_commands = 0;
                    self.dispatch(&mut phase, cmd).await
                }
                Err(e) => {
                    let msg = match e {
                        ParseError::Empty => "-ERR empty command\r\n".to_owned(),
                        ParseError::Unknown => "-ERR unknown command\r\n".to_owned(),
                        ParseError::Syntax(m) => format!("-ERR {m}\r\n"),
                    };
                    self.io.write(msg.as_bytes());
                    Ok(self.bad_command())
                }
            };
            match flow {
                Ok(Flow::Continue) => {}
                Ok(Flow::Close) => break,
                Err(e) => {
                    tracing::debug!("session ended: {e}");
                    return;
                }
            }
            if self.io.flush_if_idle().await.is_err() {
                return;
            }
        }
        self.io.shutdown().await;
    }

    fn bad_command(&mut self) -> Flow {
        self.bad_commands += 1;
        if self.bad_commands >= self.inner.settings.max_bad_commands {
            self.io
                .write(b"-ERR too many invalid commands, closing\r\n");
            return Flow::Close;
        }
        Flow::Continue
    }

    /// Waits for the next line, flushing pending output first; honours the idle timer and
    /// shutdown.
    async fn next_line(&mut self) -> Next {
        if self.io.flush().await.is_err() {
            return Next::Gone;
        }
        let max = self.inner.settings.max_line;
        let idle = self.inner.settings.idle_timeout;
        if !self.io.has_buffered_input() && self.shutdown.is_cancelled() {
            return Next::Shutdown;
        }
        let read = tokio::select! {
            _ = self.shutdown.cancelled(), if !self.io.has_buffered_input() => return Next::Shutdown,
            r = tokio::time::timeout(idle, self.io.read_line_raw(max, idle)) => r,
        };
        match read {
            Ok(Ok(l)) => Next::Line(l.to_vec()),
            Ok(Err(LineError::TooLong)) => Next::TooLong,
            Ok(Err(_)) => Next::Gone,
            Err(_) => {
                tracing::debug!("idle timeout (RFC 1939 §3 autologout)");
                Next::Gone
            }
        }
    }

    async fn dispatch(&mut self, phase: &mut Phase, cmd: Command) -> Result<Flow, Pop3Error> {
        if cmd == Command::Capa {
            let authorization = matches!(phase, Phase::Authorization(_));
            let text = capabilities(&CapaContext {
                authorization,
                policy: self.policy(),
                implementation: &self.inner.settings.implementation,
            });
            self.io.write(text.as_bytes());
            return Ok(Flow::Continue);
        }
        match phase {
            Phase::Authorization(auth) => {
                let policy = self.policy();
                let step = auth.handle(cmd, &policy);
                let account = match step {
                    AuthStep::Reply(r) => {
                        self.io.write(r.as_bytes());
                        return Ok(Flow::Continue);
                    }
                    AuthStep::Capa => return Ok(Flow::Continue),
                    AuthStep::Quit => {
                        self.io.write(b"+OK postern POP3 server signing off\r\n");
                        return Ok(Flow::Close);
                    }
                    AuthStep::StartTls => {
                        let Some(tls) = self.tls.clone() else {
                            self.io.write(b"-ERR STLS is not available here\r\n");
                            return Ok(Flow::Continue);
                        };
                        self.io.write(b"+OK begin TLS negotiation\r\n");
                        // RFC 2595 §4: what the client pipelined after STLS is dropped.
                        self.io
                            .starttls(&tls)
                            .await
                            .map_err(|e| Pop3Error::Io(std::io::Error::other(e)))?;
                        // RFC 2595 §4: forget what was learned before TLS.
                        auth.reset();
                        tracing::debug!("STLS: TLS active");
                        return Ok(Flow::Continue);
                    }
                    AuthStep::CheckPassword { user, password } => {
                        self.check_password(user, password).await?
                    }
                    AuthStep::CheckApop { name, digest } => self.check_apop(name, digest).await?,
                    AuthStep::Sasl {
                        mechanism,
                        initial_response,
                    } => self.sasl(mechanism, initial_response).await?,
                };
                let Some((account, method)) = account else {
                    return Ok(self.after_failure());
                };
                self.enter_transaction(phase, account, method).await
            }
            Phase::Transaction {
                account, maildrop, ..
            } => {
                let step = maildrop.handle(&cmd);
                match step {
                    TransStep::Reply(r) => {
                        self.io.write(r.as_bytes());
                        Ok(Flow::Continue)
                    }
                    TransStep::Retrieve {
                        msg,
                        uid,
                        size,
                        top,
                    } => {
                        let account = account.clone();
                        self.retrieve(&account, msg, uid, size, top).await?;
                        Ok(Flow::Continue)
                    }
                    TransStep::Update(uids) => {
                        let account = account.clone();
                        self.update(&account, uids).await;
                        Ok(Flow::Close)
                    }
                }
            }
        }
    }

    /// After a failed login: close the session past the per-session limit.
    fn after_failure(&mut self) -> Flow {
        if self.auth_failures >= self.inner.settings.max_auth_failures {
            self.io
                .write(b"-ERR [AUTH] too many failed logins, closing\r\n");
            return Flow::Close;
        }
        Flow::Continue
    }

    /// Answers an attempt that did not log in: `-ERR [AUTH]` after the throttle's delay
    /// for wrong credentials, `[SYS/TEMP]` (RFC 3206 §4) for a throttled client or a
    /// directory failure.
    async fn refuse(&mut self, error: SaslError) {
        self.auth_failures += 1;
        match error {
            e if e.is_auth_failure() => {
                tokio::time::sleep(self.auth.failure_delay()).await;
                self.io
                    .write(b"-ERR [AUTH] invalid user name or password\r\n");
            }
            SaslError::Throttled { retry_after } => {
                let msg = format!(
                    "-ERR [SYS/TEMP] too many failed logins, try again in {} seconds\r\n",
                    retry_after.as_secs().max(1)
                );
                self.io.write(msg.as_bytes());
            }
            e @ SaslError::Directory(_) => {
                tracing::warn!("directory: {e}");
                self.io
                    .write(b"-ERR [SYS/TEMP] authentication is temporarily unavailable\r\n");
            }
            e => {
                let msg = format!("-ERR [AUTH] {e}\r\n");
                self.io.write(msg.as_bytes());
            }
        }
    }

    /// RFC 1939 §7 USER/PASS.
    async fn check_password(
        &mut self,
        user: String,
        password: Vec<u8>,
    ) -> Result<Option<(String, &'static str)>, Pop3Error> {
        let auth = self.auth.clone();
        let result =
            tokio::task::spawn_blocking(move || auth.login("USER", &user, &password)).await?;
        match result {
            Ok(account) => Ok(Some((account, "USER"))),
            Err(e) => {
                self.refuse(e).await;
                Ok(None)
            }
        }
    }

    /// RFC 1939 §7 APOP: MD5(timestamp + secret), the secret being the account's separate APOP
    /// secret.
    async fn check_apop(
        &mut self,
        name: String,
        digest: String,
    ) -> Result<Option<(String, &'static str)>, Pop3Error> {
        let Some(timestamp) = self.timestamp.clone() else {
            self.io.write(b"-ERR APOP is not available\r\n");
            return Ok(None);
        };
        let auth = self.auth.clone();
        let result = tokio::task::spawn_blocking(move || {
            auth.apop(&name, |secret| {
                digest_matches(&apop_digest(&timestamp, secret), &digest)
            })
        })
        .await?;
        match result {
            Ok(account) => Ok(Some((account, "APOP"))),
            Err(e) => {
                self.refuse(e).await;
                Ok(None)
            }
        }
    }

    /// RFC 5034 §4 AUTH: challenges as `+ base64`, `*` cancels.
    async fn sasl(
        &mut self,
        mechanism: SaslMechanism,
        initial_response: Option<Vec<u8>>,
    ) -> Result<Option<(String, &'static str)>, Pop3Error> {
        if let Err(e) = self.auth.admit_client() {
            self.refuse(e).await;
            return Ok(None);
        }
        let mut session = self.auth.sasl(mechanism, self.channel_bindings());
        let (s, mut result) = tokio::task::spawn_blocking(move || {
            let r = session.start(initial_response.as_deref());
            (session, r)
        })
        .await?;
        session = s;
        loop {
            match result {
                Ok(SaslStep::Done(credentials)) => {
                    return Ok(Some((credentials.account, mechanism.name())));
                }
                Ok(SaslStep::Challenge(challenge)) => {
                    let line = format!("+ {}\r\n", encode_base64(&challenge));
                    self.io.write(line.as_bytes());
                    let response = match self.next_line().await {
                        Next::Line(l) => l,
                        Next::TooLong => {
                            self.io.write(b"-ERR SASL response too long\r\n");
                            return Ok(None);
                        }
                        Next::Gone | Next::Shutdown => {
                            return Err(Pop3Error::Io(std::io::Error::new(
                                std::io::ErrorKind::ConnectionAborted,
                                "connection ended during AUTH",
                            )))
                        }
                    };
                    let text = String::from_utf8_lossy(&response);
                    let text = text.trim_end_matches(['\r', '\n']);
                    if text == "*" {
                        // After SCRAM's e= the exchange has already failed: say so.
                        if let Some(e) = session.cancel() {
                            self.refuse(e).await;
                        } else {
                            self.io.write(b"-ERR authentication cancelled\r\n");
                        }
                        return Ok(None);
                    }
                    let Some(bytes) = decode_base64(text) else {
                        self.io.write(b"-ERR invalid base64 in SASL response\r\n");
                        return Ok(None);
                    };
                    let (s, r) = tokio::task::spawn_blocking(move || {
                        let r = session.step(&bytes);
                        (session, r)
                    })
                    .await?;
                    session = s;
                    result = r;
                }
                Err(e) => {
                    self.refuse(e).await;
                    return Ok(None);
                }
            }
        }
    }

    /// Locks and opens the maildrop (RFC 1939 §4, §8) and enters TRANSACTION.
    async fn enter_transaction(
        &mut self,
        phase: &mut Phase,
        account: String,
        method: &str,
    ) -> Result<Flow, Pop3Error> {
        self.span.record("user", account.as_str());
        let Some(lock) = self.inner.locks.try_lock(&account) else {
            tracing::info!(method, "maildrop in use by another session");
            // RFC 2449 §8.1.2 IN-USE.
            self.io
                .write(b"-ERR [IN-USE] maildrop already locked by another POP3 session\r\n");
            return Ok(Flow::Continue);
        };
        let opened = open_maildrop(self.inner.store.as_ref(), &account).await;
        let maildrop = match opened {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("cannot open the maildrop: {e}");
                self.io
                    .write(b"-ERR [SYS/TEMP] cannot open the maildrop, try again later\r\n");
                return Ok(Flow::Continue);
            }
        };
        let (n, size) = maildrop.stat();
        tracing::info!(method, messages = n, "authenticated");
        // From now on an admin can end this session alone (`postern kick`).
        let kick = self.server_shutdown.child_token();
        self.registration = Some(self.inner.sessions.register(&account, kick.clone()));
        self.shutdown = kick;
        let reply = format!("+OK maildrop has {n} messages ({size} octets)\r\n");
        self.io.write(reply.as_bytes());
        *phase = Phase::Transaction {
            account,
            maildrop,
            _lock: lock,
        };
        Ok(Flow::Continue)
    }

    /// RFC 1939 §5 RETR / §7 TOP.
    async fn retrieve(
        &mut self,
        account: &str,
        msg: u32,
        uid: u32,
        size: u64,
        top: Option<u32>,
    ) -> Result<(), Pop3Error> {
        match self.inner.store.fetch(account, MAILDROP, uid).await {
            Ok(data) => {
                let status = match top {
                    None => format!("+OK {size} octets\r\n"),
                    Some(_) => "+OK top of message follows\r\n".to_owned(),
                };
                self.io.write(status.as_bytes());
                encode_message(self.io.out_mut(), &data, top);
            }
            Err(StoreError::MessageNotFound(_)) => {
                let reply =
                    format!("-ERR message {msg} no longer exists (removed by another session)\r\n");
                self.io.write(reply.as_bytes());
            }
            Err(e) => {
                tracing::warn!(uid, "cannot read message: {e}");
                self.io
                    .write(b"-ERR [SYS/TEMP] cannot read the message, try again later\r\n");
            }
        }
        Ok(())
    }

    /// RFC 1939 §6 UPDATE: removes the marked messages durably, then answers.
    async fn update(&mut self, account: &str, uids: Vec<u32>) {
        if uids.is_empty() {
            self.io.write(b"+OK postern POP3 server signing off\r\n");
            return;
        }
        let set: UidSet = uids.iter().copied().collect();
        match self
            .inner
            .store
            .remove_messages(account, MAILDROP, set)
            .await
        {
            Ok(removed) => {
                tracing::info!(
                    marked = uids.len(),
                    removed = removed.len(),
                    "UPDATE: messages removed"
                );
                let reply = format!(
                    "+OK postern POP3 server signing off ({} messages deleted)\r\n",
                    uids.len()
                );
                self.io.write(reply.as_bytes());
            }
            Err(e) => {
                tracing::warn!("UPDATE failed: {e}");
                // RFC 1939 §6: "-ERR some deleted messages not removed".
                self.io
                    .write(b"-ERR [SYS/TEMP] some deleted messages not removed\r\n");
            }
        }
    }
}
