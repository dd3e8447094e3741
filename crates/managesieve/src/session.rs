//! One ManageSieve session over a connection (RFC 5804 §1.2, §2): greeting, STARTTLS, SASL
//! authentication, the script commands, limits and graceful shutdown.

use crate::command::{self, Command};
use crate::response::{respond, string, Code, Status};
use crate::Inner;
use base64::Engine as _;
use postern_directory::{
    advertised_mechanisms, ChannelBindings, ClientAuth, SaslError, SaslMechanism, SaslStep,
};
use postern_imap::parser::{literal_at_end, ParseError};
use postern_net::{
    trim_eol, CancellationToken, ChannelBindingKind, CleartextPolicy, Connection, IoSettings,
    LineError, LineIo, Registration, TlsContext,
};
use postern_store::names::check_script_name;
use postern_store::StoreError;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// How long a literal's octets may take to arrive.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(300);
/// Room for a command's words around its script literal.
const COMMAND_SLACK: u64 = 64 * 1024;

/// Whether the session goes on after a command.
enum Flow {
    Continue,
    Close,
}

/// Why the session cannot go on.
enum Stop {
    /// Closed, or an I/O error: nothing more can be said.
    Gone,
    /// The client said nothing for the login or idle timeout: say BYE (as IMAP's autologout).
    Timeout,
    /// The server is shutting down: say BYE.
    Shutdown,
}

impl From<LineError> for Stop {
    fn from(e: LineError) -> Self {
        match e {
            LineError::Stopped => Stop::Shutdown,
            LineError::Timeout => Stop::Timeout,
            _ => Stop::Gone,
        }
    }
}

/// What reading one command produced.
enum Read {
    Command(Vec<u8>),
    /// Refused while reading (a response is queued).
    Refused,
}

struct Session {
    inner: Arc<Inner>,
    io: LineIo,
    auth: Arc<ClientAuth>,
    cleartext: CleartextPolicy,
    tls: Option<TlsContext>,
    /// The authenticated account (RFC 5804 §1.2: the authenticated state).
    account: Option<String>,
    /// The server's shutdown; after login the connection stops on a child of it that an
    /// admin's kick cancels alone.
    server_shutdown: CancellationToken,
    /// The logged-in session's entry in the registry `postern kick` uses.
    registration: Option<Registration>,
    auth_failures: u32,
    bad_commands: u32,
    span: tracing::Span,
}

/// Runs a session to its end.
pub(crate) async fn run(inner: Arc<Inner>, conn: Connection) {
    let span = tracing::info_span!(
        "managesieve",
        peer = %conn.peer,
        user = tracing::field::Empty
    );
    let cleartext = CleartextPolicy {
        trust_loopback: inner.settings.trust_loopback,
        allow_plaintext: inner.config.auth.allow_plaintext,
    };
    let mut io = LineIo::new(conn.stream, conn.peer, IoSettings::default());
    io.set_stop(Some(conn.shutdown.clone()));
    let session = Session {
        auth: inner.gate.client("managesieve", conn.peer.ip()),
        inner,
        io,
        cleartext,
        tls: conn.tls,
        account: None,
        server_shutdown: conn.shutdown,
        registration: None,
        auth_failures: 0,
        bad_commands: 0,
        span: span.clone(),
    };
    session.main().instrument(span).await;
}

/// The refusal text and code for a store error (RFC 5804 §1.3).
fn store_no(e: &StoreError) -> (Option<Code>, String) {
    match e {
        StoreError::ScriptNotFound(_) => (Some(Code::NonExistent), e.to_string()),
        StoreError::ScriptExists(_) => (Some(Code::AlreadyExists), e.to_string()),
        StoreError::ScriptActive(_) => (Some(Code::Active), e.to_string()),
        StoreError::InvalidScriptName { .. } => (None, e.to_string()),
        e => {
            tracing::warn!("script store: {e}");
            (
                Some(Code::TryLater),
                "the script store is unavailable, try again later".into(),
            )
        }
    }
}

/// The text of a compile error, as Pigeonhole words it: `line N: error: MESSAGE.`, then
/// `error: validation failed.`
fn compile_error_text(e: &postern_sieve::CompileError) -> String {
    let message = e.message.trim_end_matches('.');
    format!(
        "line {}: error: {message}.\r\nerror: validation failed.",
        e.line
    )
}

impl Session {
    fn is_tls(&self) -> bool {
        self.io.is_tls()
    }

    /// Whether passwords may cross this connection.
    fn channel_secure(&self) -> bool {
        self.cleartext.allows(self.is_tls(), &self.io.peer().ip())
    }

    fn channel_bindings(&self) -> ChannelBindings {
        ChannelBindings::new(
            self.io.channel_binding(ChannelBindingKind::TlsExporter),
            self.io
                .channel_binding(ChannelBindingKind::TlsServerEndPoint),
        )
    }

    fn reply(&mut self, status: Status, code: Option<Code>, text: &str) {
        respond(self.io.out_mut(), status, code.as_ref(), text);
    }

    /// RFC 5804 §1.7 capabilities, one per line (without the final OK).
    fn capabilities(&mut self) {
        let secure = self.channel_secure();
        let offer_plus = self.is_tls() && self.channel_bindings().advertise_plus();
        let sasl: Vec<&str> = if self.account.is_some() {
            Vec::new()
        } else {
            advertised_mechanisms(secure, offer_plus)
                .into_iter()
                .map(SaslMechanism::name)
                .collect()
        };
        let settings = &self.inner.settings;
        let mut lines: Vec<(&str, Option<String>)> = vec![
            ("IMPLEMENTATION", Some(settings.implementation.clone())),
            ("SIEVE", Some(postern_sieve::EXTENSIONS.join(" "))),
            ("NOTIFY", Some(postern_sieve::NOTIFY_METHODS.join(" "))),
            ("SASL", Some(sasl.join(" "))),
        ];
        // RFC 5804 §2.2: STARTTLS only while it can be used (before TLS and before login).
        if !self.is_tls() && self.tls.is_some() && self.account.is_none() {
            lines.push(("STARTTLS", None));
        }
        lines.push((
            "MAXREDIRECTS",
            Some(settings.sieve_limits.max_redirects.to_string()),
        ));
        if let Some(user) = &self.account {
            // RFC 5804 §1.7 OWNER: the authenticated user, after login.
            lines.push(("OWNER", Some(user.clone())));
        }
        lines.push(("VERSION", Some("1.0".into())));
        // RFC 5804 §2.14.1: the extension is announced by this capability.
        lines.push(("UNAUTHENTICATE", None));
        for (name, value) in lines {
            let out = self.io.out_mut();
            string(out, name.as_bytes());
            if let Some(v) = value {
                out.push(b' ');
                string(out, v.as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
    }

    async fn main(mut self) {
        // RFC 5804 §1.7: the greeting is the capability list and OK.
        self.capabilities();
        self.reply(Status::Ok, None, "postern ManageSieve ready");
        if self.io.flush().await.is_err() {
            return;
        }
        loop {
            let read = match self.read_command().await {
                Ok(r) => r,
                Err(Stop::Gone) => return,
                Err(Stop::Timeout) => {
                    self.timed_out();
                    break;
                }
                Err(Stop::Shutdown) => {
                    self.say_bye();
                    break;
                }
            };
            let flow = match read {
                Read::Refused => self.bad_command(),
                Read::Command(buf) => match command::parse(&buf) {
                    Ok(cmd) => {
                        self.bad_commands = 0;
                        match self.dispatch(cmd).await {
                            Ok(flow) => flow,
                            Err(Stop::Gone) => return,
                            Err(Stop::Timeout) => {
                                self.timed_out();
                                break;
                            }
                            Err(Stop::Shutdown) => {
                                self.say_bye();
                                break;
                            }
                        }
                    }
                    Err(e) => {
                        let text = match &e {
                            ParseError::UnknownCommand(c) => format!("unknown command {c}"),
                            e => format!("syntax error: {e}"),
                        };
                        self.reply(Status::No, None, &text);
                        self.bad_command()
                    }
                },
            };
            if let Flow::Close = flow {
                break;
            }
            if self.io.flush_if_idle().await.is_err() {
                return;
            }
        }
        self.io.shutdown().await;
    }

    /// RFC 5804 §1.2 BYE for a client that stayed silent too long.
    fn timed_out(&mut self) {
        tracing::debug!("timeout");
        self.reply(Status::Bye, None, "disconnected for inactivity");
    }

    /// RFC 5804 §1.3 BYE when the server stops or an admin ends the session.
    fn say_bye(&mut self) {
        if self.server_shutdown.is_cancelled() {
            self.reply(
                Status::Bye,
                Some(Code::TryLater),
                "server shutting down, try again later",
            );
        } else {
            self.reply(Status::Bye, None, "session ended by the administrator");
        }
    }

    fn bad_command(&mut self) -> Flow {
        self.bad_commands += 1;
        if self.bad_commands >= self.inner.settings.max_bad_commands {
            self.reply(Status::Bye, None, "too many invalid commands");
            return Flow::Close;
        }
        Flow::Continue
    }

    /// The wait allowed for the client's next command: the login timeout before
    /// authentication, the idle timeout after.
    fn wait(&self) -> Duration {
        if self.account.is_some() {
            self.inner.settings.idle_timeout
        } else {
            self.inner.settings.login_timeout
        }
    }

    /// Reads one command with its literals (RFC 5804 §4: `{n+}` from clients; `{n}` is read
    /// the same way, without a continuation, as Pigeonhole does).
    async fn read_command(&mut self) -> Result<Read, Stop> {
        self.io.flush().await?;
        let max_line = self.inner.settings.max_line;
        let max_literal = self.inner.settings.max_script_size;
        let max_command = max_literal + COMMAND_SLACK;
        let mut cmd = Vec::new();
        let mut wait = self.wait();
        loop {
            let line = match self.io.read_line_raw(max_line, wait).await {
                Ok(l) => l,
                Err(LineError::TooLong) => {
                    self.reply(Status::No, None, "line too long");
                    return Ok(Read::Refused);
                }
                Err(e) => return Err(e.into()),
            };
            wait = TRANSFER_TIMEOUT;
            let start = cmd.len();
            cmd.extend_from_slice(line);
            let Some(lit) = literal_at_end(trim_eol(&cmd[start..])) else {
                return Ok(Read::Command(cmd));
            };
            if lit.literal8 {
                self.skip_literal_and_rest(lit.len, max_command).await?;
                self.reply(Status::No, None, "syntax error: literal8 is not allowed");
                return Ok(Read::Refused);
            }
            if lit.len > max_literal || cmd.len() as u64 + lit.len > max_command {
                self.skip_literal_and_rest(lit.len, max_command).await?;
                // RFC 5804 §2.6: a script over the size limit is QUOTA/MAXSIZE.
                self.reply(
                    Status::No,
                    Some(Code::QuotaMaxSize),
                    &format!("literal too large (at most {max_literal} octets)"),
                );
                return Ok(Read::Refused);
            }
            self.io
                .read_exact_into(lit.len, &mut cmd, TRANSFER_TIMEOUT)
                .await?;
        }
    }

    /// Drops a refused literal and the rest of its command; a literal far beyond any limit
    /// ends the session instead (reading it would let a client hold us for gigabytes).
    async fn skip_literal_and_rest(&mut self, len: u64, max_command: u64) -> Result<(), Stop> {
        if len > 4 * max_command {
            self.reply(Status::Bye, Some(Code::QuotaMaxSize), "literal too large");
            self.io.flush().await?;
            return Err(Stop::Gone);
        }
        self.io.skip(len, TRANSFER_TIMEOUT).await?;
        loop {
            let max_line = self.inner.settings.max_line;
            let line = match self.io.read_line_raw(max_line, TRANSFER_TIMEOUT).await {
                Ok(l) => l,
                Err(LineError::TooLong) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            match literal_at_end(trim_eol(line)) {
                Some(l) if l.len <= 4 * max_command => {
                    self.io.skip(l.len, TRANSFER_TIMEOUT).await?;
                }
                Some(_) => return Err(Stop::Gone),
                None => return Ok(()),
            }
        }
    }

    async fn dispatch(&mut self, cmd: Command) -> Result<Flow, Stop> {
        tracing::debug!(command = cmd.name(), "command");
        // Commands valid in any state (RFC 5804 §2.3, §2.4, §2.13).
        match cmd {
            Command::Logout => {
                self.reply(Status::Ok, None, "Logout completed");
                return Ok(Flow::Close);
            }
            Command::Capability => {
                self.capabilities();
                self.reply(Status::Ok, None, "Capability completed");
                return Ok(Flow::Continue);
            }
            Command::Noop(tag) => {
                let code = tag.map(Code::Tag);
                self.reply(Status::Ok, code, "NOOP completed");
                return Ok(Flow::Continue);
            }
            Command::StartTls => return self.starttls().await,
            _ => {}
        }
        let Some(account) = self.account.clone() else {
            return match cmd {
                Command::Authenticate { mechanism, initial } => {
                    self.authenticate(&mechanism, initial).await
                }
                other => {
                    self.reply(
                        Status::No,
                        None,
                        &format!("{} needs authentication first", other.name()),
                    );
                    Ok(self.bad_command())
                }
            };
        };
        match cmd {
            Command::Authenticate { .. } => {
                self.reply(Status::No, None, "already authenticated");
            }
            Command::Unauthenticate => {
                // RFC 5804 §2.14.1: back to the non-authenticated state.
                self.account = None;
                self.registration = None;
                self.io.set_stop(Some(self.server_shutdown.clone()));
                self.span.record("user", "");
                self.reply(Status::Ok, None, "Unauthenticate completed");
            }
            Command::HaveSpace { name, size } => self.have_space(&account, &name, size).await,
            Command::PutScript { name, script } => self.put_script(&account, &name, script).await,
            Command::CheckScript(script) => {
                if self.validate(&script).is_some() {
                    self.reply(Status::Ok, None, "script is valid");
                }
            }
            Command::ListScripts => self.list_scripts(&account).await,
            Command::SetActive(name) => {
                let target = (!name.is_empty()).then_some(name.as_str());
                match self.inner.scripts.activate_script(&account, target).await {
                    Ok(()) => self.reply(Status::Ok, None, "SETACTIVE completed"),
                    Err(e) => self.store_failed(&e),
                }
            }
            Command::GetScript(name) => {
                match self.inner.scripts.get_script(&account, &name).await {
                    Ok(Some(source)) => {
                        string(self.io.out_mut(), source.as_bytes());
                        self.io.write(b"\r\n");
                        self.reply(Status::Ok, None, "GETSCRIPT completed");
                    }
                    Ok(None) => self.reply(
                        Status::No,
                        Some(Code::NonExistent),
                        &format!("there is no script {name:?}"),
                    ),
                    Err(e) => self.store_failed(&e),
                }
            }
            Command::DeleteScript(name) => {
                match self.inner.scripts.delete_script(&account, &name).await {
                    Ok(()) => self.reply(Status::Ok, None, "DELETESCRIPT completed"),
                    Err(e) => self.store_failed(&e),
                }
            }
            Command::RenameScript { old, new } => {
                if !self.name_ok(&new) {
                    return Ok(Flow::Continue);
                }
                match self.inner.scripts.rename_script(&account, &old, &new).await {
                    Ok(()) => self.reply(Status::Ok, None, "RENAMESCRIPT completed"),
                    Err(e) => self.store_failed(&e),
                }
            }
            Command::Logout | Command::Capability | Command::Noop(_) | Command::StartTls => {}
        }
        Ok(Flow::Continue)
    }

    fn store_failed(&mut self, e: &StoreError) {
        let (code, text) = store_no(e);
        self.reply(Status::No, code, &text);
    }

    /// RFC 5804 §2.2 STARTTLS: only before authentication; the capabilities are sent again
    /// over TLS.
    async fn starttls(&mut self) -> Result<Flow, Stop> {
        if self.is_tls() {
            self.reply(Status::No, None, "TLS is already active");
            return Ok(Flow::Continue);
        }
        if self.account.is_some() {
            self.reply(
                Status::No,
                None,
                "STARTTLS is not allowed after authentication",
            );
            return Ok(Flow::Continue);
        }
        let Some(tls) = self.tls.clone() else {
            self.reply(Status::No, None, "STARTTLS is not available here");
            return Ok(Flow::Continue);
        };
        self.reply(Status::Ok, None, "Begin TLS negotiation now");
        // Anything pipelined after STARTTLS is dropped (RFC 3207 §4.2's command injection).
        self.io.starttls(&tls).await?;
        tracing::debug!("STARTTLS: TLS active");
        self.capabilities();
        self.reply(Status::Ok, None, "TLS negotiation successful");
        Ok(Flow::Continue)
    }

    /// RFC 5804 §2.1 AUTHENTICATE with an optional initial response; challenges as strings,
    /// `"*"` cancels.
    async fn authenticate(
        &mut self,
        mechanism: &str,
        initial: Option<Vec<u8>>,
    ) -> Result<Flow, Stop> {
        let Some(mech) = SaslMechanism::from_name(mechanism) else {
            self.reply(
                Status::No,
                None,
                &format!("unsupported SASL mechanism {mechanism}"),
            );
            return Ok(Flow::Continue);
        };
        let tls = self.is_tls();
        if !mech.usable(self.channel_secure(), tls) {
            let code = if mech.is_plaintext() {
                Code::EncryptNeeded
            } else {
                Code::AuthTooWeak
            };
            self.reply(
                Status::No,
                Some(code),
                "this mechanism needs TLS: use STARTTLS first",
            );
            return Ok(Flow::Continue);
        }
        let initial = match initial {
            None => None,
            Some(b) => match decode_base64(&b) {
                Some(v) => Some(v),
                None => {
                    self.reply(Status::No, None, "invalid base64 in the initial response");
                    return Ok(Flow::Continue);
                }
            },
        };
        if let Err(e) = self.auth.admit_client() {
            return Ok(self.refuse(e).await);
        }
        let mut session = self.auth.sasl(mech, self.channel_bindings());
        let (s, mut result) = tokio::task::spawn_blocking(move || {
            let r = session.start(initial.as_deref());
            (session, r)
        })
        .await
        .map_err(|_| Stop::Gone)?;
        session = s;
        let is_scram = matches!(
            mech,
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha256Plus
        );
        loop {
            match result {
                Ok(SaslStep::Done(credentials)) => {
                    return Ok(self.logged_in(credentials.account, mech, None));
                }
                // RFC 5804 §2.1: SCRAM's server-final goes with the OK as `(SASL "...")`, and
                // its error form (`e=`, RFC 5802 §7) with the NO.
                Ok(SaslStep::Challenge(c))
                    if is_scram && (c.starts_with(b"v=") || c.starts_with(b"e=")) =>
                {
                    let data = Some(Code::Sasl(encode_base64(&c)));
                    let (_, r) = tokio::task::spawn_blocking(move || {
                        let r = session.step(b"");
                        (session, r)
                    })
                    .await
                    .map_err(|_| Stop::Gone)?;
                    return match r {
                        Ok(SaslStep::Done(credentials)) => {
                            Ok(self.logged_in(credentials.account, mech, data))
                        }
                        Ok(SaslStep::Challenge(_)) => Ok(self
                            .refuse_with(SaslError::Malformed("unexpected challenge"), data)
                            .await),
                        Err(e) => Ok(self.refuse_with(e, data).await),
                    };
                }
                Ok(SaslStep::Challenge(challenge)) => {
                    string(self.io.out_mut(), encode_base64(&challenge).as_bytes());
                    self.io.write(b"\r\n");
                    let response = match self.read_command().await? {
                        Read::Command(buf) => buf,
                        Read::Refused => return Ok(Flow::Continue),
                    };
                    let Ok(text) = command::parse_sasl_response(&response) else {
                        self.reply(Status::No, None, "expected a string in the SASL exchange");
                        return Ok(Flow::Continue);
                    };
                    if text == b"*" {
                        if let Some(e) = session.cancel() {
                            return Ok(self.refuse(e).await);
                        }
                        self.reply(Status::No, None, "authentication cancelled");
                        return Ok(Flow::Continue);
                    }
                    let Some(bytes) = decode_base64(&text) else {
                        self.reply(Status::No, None, "invalid base64 in the SASL response");
                        return Ok(Flow::Continue);
                    };
                    let (s, r) = tokio::task::spawn_blocking(move || {
                        let r = session.step(&bytes);
                        (session, r)
                    })
                    .await
                    .map_err(|_| Stop::Gone)?;
                    session = s;
                    result = r;
                }
                Err(e) => return Ok(self.refuse(e).await),
            }
        }
    }

    fn logged_in(&mut self, account: String, mech: SaslMechanism, sasl: Option<Code>) -> Flow {
        self.span.record("user", account.as_str());
        tracing::info!(method = mech.name(), "authenticated");
        // From now on an admin can end this session alone (`postern kick`).
        let kick = self.server_shutdown.child_token();
        self.registration = Some(self.inner.sessions.register(&account, kick.clone()));
        self.io.set_stop(Some(kick));
        self.account = Some(account);
        self.auth_failures = 0;
        self.reply(Status::Ok, sasl, "Authenticate completed");
        Flow::Continue
    }

    /// Answers a failed login: after the throttle's delay for wrong credentials, TRYLATER
    /// for a throttled client or a directory failure; closes past the per-session limit.
    async fn refuse(&mut self, error: SaslError) -> Flow {
        self.refuse_with(error, None).await
    }

    /// [`Session::refuse`], with the mechanism's last words (`NO (SASL "...")`) for a
    /// failed credential check.
    async fn refuse_with(&mut self, error: SaslError, sasl: Option<Code>) -> Flow {
        self.auth_failures += 1;
        match error {
            e if e.is_auth_failure() => {
                tokio::time::sleep(self.auth.failure_delay()).await;
                self.reply(Status::No, sasl, "Authentication failed");
            }
            SaslError::Throttled { retry_after } => {
                let text = format!(
                    "too many failed logins, try again in {} seconds",
                    retry_after.as_secs().max(1)
                );
                self.reply(Status::No, Some(Code::TryLater), &text);
            }
            e @ SaslError::Directory(_) => {
                tracing::warn!("directory: {e}");
                self.reply(
                    Status::No,
                    Some(Code::TryLater),
                    "authentication is temporarily unavailable",
                );
            }
            e => self.reply(Status::No, None, &e.to_string()),
        }
        if self.auth_failures >= self.inner.settings.max_auth_failures {
            self.reply(Status::Bye, None, "too many failed logins");
            return Flow::Close;
        }
        Flow::Continue
    }

    /// The script as UTF-8 source if it compiles; otherwise the NO is queued.
    fn validate(&mut self, script: &[u8]) -> Option<String> {
        if script.len() as u64 > self.inner.settings.max_script_size {
            self.reply(
                Status::No,
                Some(Code::QuotaMaxSize),
                &format!(
                    "script too large (at most {} octets)",
                    self.inner.settings.max_script_size
                ),
            );
            return None;
        }
        let Ok(source) = String::from_utf8(script.to_vec()) else {
            // RFC 5228 §2.1: scripts are UTF-8.
            self.reply(Status::No, None, "the script is not valid UTF-8");
            return None;
        };
        match postern_sieve::compile(&source, &self.inner.settings.sieve_limits) {
            Ok(_) => Some(source),
            Err(e) => {
                self.reply(Status::No, None, &compile_error_text(&e));
                None
            }
        }
    }

    /// RFC 5804 §1.6: a name the store takes, in Net-Unicode (NFC, RFC 5198) so that two
    /// spellings of one name never make two scripts. `false` when refused (the NO is queued).
    fn name_ok(&mut self, name: &str) -> bool {
        if let Err(e) = check_script_name(name) {
            self.store_failed(&e);
            return false;
        }
        if !unicode_normalization::is_nfc(name) {
            self.reply(
                Status::No,
                None,
                "invalid script name: not in Unicode normalization form C (RFC 5804 §1.6)",
            );
            return false;
        }
        true
    }

    /// RFC 5804 §2.5 HAVESPACE: whether a script of this name and size would fit.
    async fn have_space(&mut self, account: &str, name: &str, size: u64) {
        if !self.name_ok(name) {
            return;
        }
        if size > self.inner.settings.max_script_size {
            self.reply(
                Status::No,
                Some(Code::QuotaMaxSize),
                &format!(
                    "script too large (at most {} octets)",
                    self.inner.settings.max_script_size
                ),
            );
            return;
        }
        match self.room_for(account, name).await {
            Ok(true) => self.reply(Status::Ok, None, "HAVESPACE completed"),
            Ok(false) => self.too_many_scripts(),
            Err(e) => self.store_failed(&e),
        }
    }

    /// Whether `name` may be stored: it exists already, or the account is under its count.
    async fn room_for(&self, account: &str, name: &str) -> Result<bool, StoreError> {
        let list = self.inner.scripts.list_scripts(account).await?;
        Ok(list.iter().any(|s| s.name == name) || list.len() < self.inner.settings.max_scripts)
    }

    fn too_many_scripts(&mut self) {
        let text = format!(
            "too many scripts (at most {})",
            self.inner.settings.max_scripts
        );
        self.reply(Status::No, Some(Code::QuotaMaxScripts), &text);
    }

    /// RFC 5804 §2.6 PUTSCRIPT: validated, then stored (replacing one of that name).
    async fn put_script(&mut self, account: &str, name: &str, script: Vec<u8>) {
        if !self.name_ok(name) {
            return;
        }
        let Some(source) = self.validate(&script) else {
            return;
        };
        match self.room_for(account, name).await {
            Ok(true) => {}
            Ok(false) => return self.too_many_scripts(),
            Err(e) => return self.store_failed(&e),
        }
        match self.inner.scripts.put_script(account, name, &source).await {
            Ok(()) => {
                tracing::info!(script = name, size = source.len(), "script stored");
                self.reply(Status::Ok, None, "PUTSCRIPT completed");
            }
            Err(e) => self.store_failed(&e),
        }
    }

    /// RFC 5804 §2.7 LISTSCRIPTS: one line per script, `ACTIVE` after the active one.
    async fn list_scripts(&mut self, account: &str) {
        match self.inner.scripts.list_scripts(account).await {
            Ok(list) => {
                for s in list {
                    let out = self.io.out_mut();
                    string(out, s.name.as_bytes());
                    if s.active {
                        out.extend_from_slice(b" ACTIVE");
                    }
                    out.extend_from_slice(b"\r\n");
                }
                self.reply(Status::Ok, None, "LISTSCRIPTS completed");
            }
            Err(e) => self.store_failed(&e),
        }
    }
}

fn decode_base64(b: &[u8]) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(b).ok()
}

fn encode_base64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}
