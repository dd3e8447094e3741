//! The SMTP session state machine, free of I/O: a command line in, a [`Step`] out. The async driver
//! (`server.rs`) does the reading, writing, TLS, SASL exchanges and spooling the steps ask for.
//!
//! The session never calls the directory or a policy check itself: it asks its driver with a
//! [`Step::Lookup`] (answered by [`Session::answer`]) or a [`Step::Check`] (answered by
//! [`Session::checked`]), so the state machine stays free of I/O and of any backend.

use crate::check::{Findings, SessionFindings, Stage, Verdict};
use crate::message::{self, DataDecoder, Trace};
use crate::parse::{parse_command, Command, Mailbox, Param, ParseError};
use crate::reply;
use base64::Engine;
use postern_config::{ExpnPolicy, Service, Smtp as SmtpConfig, VrfyPolicy};
use postern_directory::{Address, Destination, Resolution, SaslMechanism};
use postern_mail::xtext::decode as xtext_decode;
use postern_mail::{EnhancedCode, Status};
use postern_net::TlsInfo;
use postern_spool::{BodyType, Envelope, Notify, QueueId, Recipient, Ret};
use std::net::IpAddr;
use std::sync::Arc;

/// What a session needs to know about the server, shared by every session.
#[derive(Debug)]
pub struct Settings {
    /// The server's name: in the greeting, the EHLO reply and the `Received:` header.
    pub hostname: String,
    /// The `[smtp]` section of the configuration.
    pub smtp: SmtpConfig,
    /// `[auth] allow_plaintext`: passwords over unencrypted non-loopback connections.
    pub allow_plaintext: bool,
}

/// What the driver must do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this reply (possibly several lines) and read the next command.
    Reply(String),
    /// Send this reply, then close the connection.
    Close(String),
    /// Send `220 2.0.0` and perform the TLS handshake (RFC 3207 §4), then call [`Session::tls_started`].
    StartTls,
    /// Run the SASL exchange (RFC 4954 §4), then call [`Session::authenticated`] on success.
    Auth {
        /// The mechanism the client chose.
        mechanism: SaslMechanism,
        /// The initial response, base64-decoded (empty for `=`); `None` when the client sent none.
        initial: Option<Vec<u8>>,
    },
    /// Send `354` and read the message into a [`DataDecoder`], then call [`Session::finish_data`].
    Data(Box<DataDecoder>),
    /// Read exactly `size` octets (RFC 3030 §2), then call [`Session::bdat_chunk`].
    Bdat {
        /// The chunk's length in octets.
        size: u64,
        /// The chunk ends the message (`LAST`).
        last: bool,
    },
    /// Ask the directory, then call [`Session::answer`].
    Lookup(Lookup),
    /// Run the configured checks of this stage, then call [`Session::checked`].
    Check(Stage),
}

/// A directory question of the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Resolve a recipient (RCPT, VRFY, the sender check of MAIL).
    Resolve(Address),
    /// Expand an address for EXPN (RFC 5321 §3.5.2): exact accounts and aliases only.
    Expand(Address),
    /// RFC 5321 §4.1.1.3: the domain `<Postmaster>` means: `hostname` if it is a local domain,
    /// else the first local domain (else `hostname`).
    PostmasterDomain(String),
}

/// The driver's answer to a [`Lookup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// For [`Lookup::Resolve`] and [`Lookup::Expand`]; `Err` holds the reason for the log.
    Resolution(Result<Resolution, String>),
    /// For [`Lookup::PostmasterDomain`].
    Domain(String),
}

/// Error of a [`crate::Sink`] as the session sees it.
pub type SinkError = Box<dyn std::error::Error + Send + Sync>;

/// What the session was doing when it asked its driver.
#[derive(Debug)]
enum Pending {
    /// The connect checks, before the greeting.
    Connect,
    /// MAIL waits for the sender's resolution (does the login own it?).
    MailOwner(Transaction),
    /// MAIL waits for its checks.
    MailCheck(Transaction),
    /// RCPT `<Postmaster>` waits for its domain.
    RcptDomain(Mailbox, Notify, Option<String>),
    /// RCPT waits for the recipient's resolution.
    RcptResolve(Mailbox, Notify, Option<String>),
    /// RCPT waits for its checks.
    RcptCheck(String, Notify, Option<String>),
    /// VRFY waits for the resolution.
    Vrfy(Address),
    /// EXPN waits for the expansion.
    Expn,
}

/// After the message data: reply at once, or spool this and then call [`Session::enqueued`].
#[derive(Debug)]
pub enum Outcome {
    /// Send this reply (the message is refused or the transaction is not complete).
    Reply(String),
    /// Queue the message under this id (the one its `Received:` header names).
    Enqueue(Box<Envelope>, Vec<u8>, QueueId),
    /// Run the DATA checks on this message, then call [`Session::data_checked`].
    Check(Box<Envelope>, Vec<u8>, QueueId),
    /// LMTP (RFC 2033 §4.2): deliver the message to each recipient now, then call
    /// [`Session::delivered`] with one status per recipient.
    Deliver(Box<Envelope>, Vec<u8>, QueueId),
}

#[derive(Debug)]
struct Transaction {
    sender: Option<String>,
    body: BodyType,
    smtputf8: bool,
    /// RFC 8689 §4.1 REQUIRETLS.
    requiretls: bool,
    ret: Option<Ret>,
    envid: Option<String>,
    recipients: Vec<Recipient>,
    /// BDAT chunks received so far (RFC 3030).
    chunks: Option<Vec<u8>>,
    /// Octets of BDAT data counted (including any beyond the limit).
    chunk_size: u64,
}

/// One client's session.
#[derive(Debug)]
pub struct Session {
    settings: Arc<Settings>,
    service: Service,
    peer: IpAddr,
    loopback: bool,
    trusted: bool,
    tls_available: bool,
    tls: Option<TlsInfo>,
    /// SCRAM-SHA-256-PLUS is advertised: the TLS channel has `tls-exporter` (TLS 1.3).
    offer_plus: bool,
    helo: Option<String>,
    esmtp: bool,
    account: Option<String>,
    txn: Option<Transaction>,
    messages: u32,
    commands: u32,
    errors: u32,
    /// Checks are configured: ask for them at each stage.
    checks: bool,
    /// What the checks found (connection and current transaction).
    findings: Arc<std::sync::Mutex<SessionFindings>>,
    pending: Option<Pending>,
}

impl Session {
    /// A new session. `tls` is set for implicit-TLS ports; `tls_available` says STARTTLS can be offered.
    pub fn new(
        settings: Arc<Settings>,
        service: Service,
        peer: IpAddr,
        loopback: bool,
        tls: Option<TlsInfo>,
        tls_available: bool,
    ) -> Session {
        let trusted = settings
            .smtp
            .trusted_networks
            .iter()
            .any(|n| n.contains(peer));
        Session {
            settings,
            service,
            peer,
            loopback,
            trusted,
            tls_available: tls_available && tls.is_none(),
            tls,
            offer_plus: false,
            helo: None,
            esmtp: false,
            account: None,
            txn: None,
            messages: 0,
            commands: 0,
            errors: 0,
            checks: false,
            findings: Arc::default(),
            pending: None,
        }
    }

    /// Whether the driver has checks to run: the session then asks with [`Step::Check`] at
    /// connect, MAIL, RCPT and ([`Outcome::Check`]) DATA. Without, it behaves as before.
    pub fn set_checks(&mut self, on: bool) {
        self.checks = on;
    }

    /// The first step of the connection: the connect checks if any, else the greeting.
    pub fn start(&mut self) -> Step {
        if self.checks {
            self.pending = Some(Pending::Connect);
            return Step::Check(Stage::Connect);
        }
        Step::Reply(self.greeting())
    }

    /// The client's address.
    pub fn peer(&self) -> IpAddr {
        self.peer
    }

    /// What the checks found on this session (shared: checks write into it).
    pub fn findings(&self) -> Arc<std::sync::Mutex<SessionFindings>> {
        Arc::clone(&self.findings)
    }

    /// The service (MX, submission) of this session.
    pub fn service(&self) -> Service {
        self.service
    }

    /// The HELO/EHLO name, if one was given.
    pub fn helo(&self) -> Option<&str> {
        self.helo.as_deref()
    }

    /// Whether the channel is TLS.
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The sender of the open transaction (`Some("")` for `<>`), if one is open.
    pub fn sender(&self) -> Option<&str> {
        let txn = match &self.pending {
            Some(Pending::MailCheck(t)) => Some(t),
            _ => self.txn.as_ref(),
        };
        txn.map(|t| t.sender.as_deref().unwrap_or(""))
    }

    /// RFC 5321 §4.2: the opening `220` (RFC 2033 §4: the same in LMTP, which it names).
    pub fn greeting(&self) -> String {
        let protocol = if self.lmtp() { "LMTP" } else { "ESMTP" };
        reply::line(
            220,
            "",
            &format!("{} {protocol} postern", self.settings.hostname),
        )
    }

    /// Whether this is an LMTP session (RFC 2033): LHLO, local recipients only, one reply per
    /// recipient after the message.
    pub fn lmtp(&self) -> bool {
        self.service == Service::Lmtp
    }

    /// In LMTP, a refusal of the whole message after its data is said once for each accepted
    /// recipient (RFC 2033 §4.2: the client waits for as many replies); in SMTP once.
    fn for_each_rcpt(&self, reply: String, accepted: usize) -> String {
        if self.lmtp() && accepted > 1 {
            reply.repeat(accepted)
        } else {
            reply
        }
    }

    /// The authenticated account, if any.
    pub fn account(&self) -> Option<&str> {
        self.account.as_deref()
    }

    fn hostname(&self) -> &str {
        &self.settings.hostname
    }

    /// Whether passwords may be sent now: over TLS, from loopback, or where the admin allows it.
    fn channel_secure(&self) -> bool {
        self.tls.is_some() || self.loopback || self.settings.allow_plaintext
    }

    fn submission(&self) -> bool {
        matches!(self.service, Service::Submission | Service::Submissions)
    }

    /// Handles one command line (without CRLF).
    pub fn command(&mut self, line: &[u8]) -> Step {
        self.commands += 1;
        if self.commands > self.settings.smtp.max_commands {
            return Step::Close(reply::line(
                421,
                "4.7.0",
                &format!("{} too many commands, closing connection", self.hostname()),
            ));
        }
        // LHLO is LMTP's alone: in SMTP it stays an unknown command, whatever follows it.
        let lhlo = line.len() >= 4
            && line[..4].eq_ignore_ascii_case(b"LHLO")
            && line.get(4).is_none_or(|&b| b == b' ' || b == b'\t');
        if lhlo && !self.lmtp() {
            return self.count_errors(Step::Reply(reply::line(
                500,
                "5.5.2",
                "Command not recognised",
            )));
        }
        let step = match parse_command(line) {
            Ok(cmd) => self.dispatch(cmd),
            Err(ParseError::Unknown) => {
                Step::Reply(reply::line(500, "5.5.2", "Command not recognised"))
            }
            Err(ParseError::Syntax(why)) => Step::Reply(reply::line(501, "5.5.4", why)),
            Err(ParseError::Address(why)) => {
                let is_mail = line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"MAIL");
                let code = if is_mail { "5.1.7" } else { "5.1.3" };
                Step::Reply(reply::line(501, code, why))
            }
        };
        self.count_errors(step)
    }

    /// Counts a rejected command; past the limit the reply is followed by `421` and the close.
    fn count_errors(&mut self, step: Step) -> Step {
        if let Step::Reply(r) = &step {
            if r.starts_with('5') {
                return self.error_reply(r.clone());
            }
        }
        step
    }

    /// A `5xx` reply that counts towards `max_bad_commands`.
    pub fn error_reply(&mut self, reply: String) -> Step {
        self.errors += 1;
        if self.errors >= self.settings.smtp.max_bad_commands {
            return Step::Close(format!(
                "{reply}{}",
                reply::line(
                    421,
                    "4.7.0",
                    &format!("{} too many errors, closing connection", self.hostname())
                )
            ));
        }
        Step::Reply(reply)
    }

    fn dispatch(&mut self, cmd: Command) -> Step {
        match cmd {
            // RFC 2033 §4.1: HELO and EHLO are refused in LMTP.
            Command::Ehlo(_) | Command::Helo(_) if self.lmtp() => Step::Reply(reply::line(
                500,
                "5.5.1",
                "This is LMTP: use LHLO (RFC 2033)",
            )),
            Command::Ehlo(name) => self.hello(name, true),
            Command::Helo(name) => self.hello(name, false),
            Command::Lhlo(name) if self.lmtp() => self.lhlo(name),
            Command::Lhlo(_) => Step::Reply(reply::line(500, "5.5.2", "Command not recognised")),
            Command::Mail { sender, params } => self.mail(sender, params),
            Command::Rcpt { recipient, params } => self.rcpt(recipient, params),
            Command::Data => self.data(),
            Command::Bdat { size, last } => Step::Bdat { size, last },
            Command::Rset => {
                self.txn = None;
                Step::Reply(reply::line(250, "2.0.0", "Ok"))
            }
            Command::Noop => Step::Reply(reply::line(250, "2.0.0", "Ok")),
            Command::Quit => Step::Close(reply::line(
                221,
                "2.0.0",
                &format!("{} closing connection", self.hostname()),
            )),
            Command::Help if self.lmtp() => Step::Reply(reply::line(
                214,
                "2.0.0",
                "Commands: LHLO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY STARTTLS (RFC 2033)",
            )),
            Command::Help => Step::Reply(reply::line(
                214,
                "2.0.0",
                "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY EXPN STARTTLS AUTH (RFC 5321)",
            )),
            Command::Vrfy(arg) => self.vrfy(&arg),
            Command::Expn(arg) => self.expn(&arg),
            Command::StartTls => self.starttls(),
            // A local delivery agent trusts its socket, not passwords.
            Command::Auth { .. } if self.lmtp() => Step::Reply(reply::line(
                502,
                "5.5.1",
                "AUTH is not available in LMTP",
            )),
            Command::Auth { mechanism, initial } => self.auth(&mechanism, initial),
        }
    }

    /// RFC 2033 §4.1 LHLO: EHLO's reply with LMTP's extensions (RFC 2033 §5: PIPELINING and
    /// ENHANCEDSTATUSCODES; 8BITMIME, SMTPUTF8, CHUNKING and SIZE as in SMTP).
    fn lhlo(&mut self, name: String) -> Step {
        self.txn = None;
        self.helo = Some(name);
        self.esmtp = true;
        let mut lines = vec![
            self.hostname().to_string(),
            "PIPELINING".to_string(),
            format!("SIZE {}", self.settings.smtp.max_message_size),
            "8BITMIME".to_string(),
            "CHUNKING".to_string(),
            "SMTPUTF8".to_string(),
            "ENHANCEDSTATUSCODES".to_string(),
        ];
        if self.tls_available {
            lines.push("STARTTLS".to_string());
        }
        Step::Reply(reply::multiline(250, &lines))
    }

    /// RFC 5321 §4.1.1.1 EHLO/HELO; EHLO lists the extensions (RFC 5321 §4.1.4 resets the transaction).
    fn hello(&mut self, name: String, esmtp: bool) -> Step {
        self.txn = None;
        self.helo = Some(name);
        self.esmtp = esmtp;
        let host = self.hostname().to_string();
        if !esmtp {
            return Step::Reply(reply::line(250, "", &host));
        }
        let mut lines = vec![
            host,
            "PIPELINING".to_string(),
            format!("SIZE {}", self.settings.smtp.max_message_size),
            "8BITMIME".to_string(),
            "BINARYMIME".to_string(),
            "CHUNKING".to_string(),
            "SMTPUTF8".to_string(),
            "ENHANCEDSTATUSCODES".to_string(),
            "DSN".to_string(),
        ];
        if self.tls_available {
            lines.push("STARTTLS".to_string());
        }
        if self.offers_requiretls() {
            lines.push("REQUIRETLS".to_string());
        }
        // SCRAM sends no password: AUTH is offered on every channel, PLAIN and LOGIN only on
        // secure ones (RFC 4954 §4).
        if self.account.is_none() {
            let mechs: Vec<&str> =
                postern_directory::advertised_mechanisms(self.channel_secure(), self.offer_plus)
                    .iter()
                    .map(|m| m.name())
                    .collect();
            lines.push(format!("AUTH {}", mechs.join(" ")));
        }
        lines.push("HELP".to_string());
        Step::Reply(reply::multiline(250, &lines))
    }

    /// RFC 5321 §4.1.1.2 MAIL, with SIZE (RFC 1870), BODY (RFC 6152, RFC 3030), SMTPUTF8 (RFC 6531),
    /// RET/ENVID (RFC 3461) and AUTH= (RFC 4954 §5).
    fn mail(&mut self, sender: Option<Mailbox>, params: Vec<Param>) -> Step {
        match self.mail_transaction(sender, params) {
            Err(reply) => Step::Reply(reply),
            Ok((txn, None)) => self.mail_accept(txn),
            Ok((txn, Some(address))) => {
                self.pending = Some(Pending::MailOwner(txn));
                Step::Lookup(Lookup::Resolve(address))
            }
        }
    }

    /// MAIL's checks if any, else its `250`.
    fn mail_accept(&mut self, txn: Transaction) -> Step {
        if self.checks {
            // A new transaction: what was found on the previous one no longer applies.
            self.findings
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .transaction = Findings::default();
            let sender = txn.sender.clone();
            self.pending = Some(Pending::MailCheck(txn));
            return Step::Check(Stage::Mail { sender });
        }
        self.txn = Some(txn);
        Step::Reply(reply::line(250, "2.1.0", "Ok"))
    }

    /// MAIL's syntax and limits: the transaction, and the sender address when the
    /// directory must say whether the authenticated account owns it.
    fn mail_transaction(
        &mut self,
        sender: Option<Mailbox>,
        params: Vec<Param>,
    ) -> Result<(Transaction, Option<Address>), String> {
        if self.helo.is_none() {
            return Err(reply::line(503, "5.5.1", "Send EHLO or HELO first"));
        }
        if self.txn.is_some() {
            return Err(reply::line(503, "5.5.1", "Nested MAIL command"));
        }
        if self.submission() && self.account.is_none() {
            return Err(reply::line(530, "5.7.0", "Authentication required"));
        }
        let mut txn = Transaction {
            sender: None,
            body: BodyType::SevenBit,
            smtputf8: false,
            requiretls: false,
            ret: None,
            envid: None,
            recipients: Vec::new(),
            chunks: None,
            chunk_size: 0,
        };
        if !params.is_empty() && !self.esmtp {
            return Err(reply::line(555, "5.5.4", "Parameters need EHLO"));
        }
        for p in params {
            let value = p.value.as_deref();
            match (p.keyword.as_str(), value) {
                ("SIZE", Some(v)) => {
                    let Some(size) = v
                        .parse::<u64>()
                        .ok()
                        .filter(|_| v.bytes().all(|b| b.is_ascii_digit()))
                    else {
                        return Err(reply::line(501, "5.5.4", "Bad SIZE value"));
                    };
                    if size > self.settings.smtp.max_message_size {
                        return Err(reply::line(
                            552,
                            "5.3.4",
                            "Message size exceeds fixed maximum message size",
                        ));
                    }
                }
                ("BODY", Some(v)) if v.eq_ignore_ascii_case("7BIT") => {
                    txn.body = BodyType::SevenBit
                }
                ("BODY", Some(v)) if v.eq_ignore_ascii_case("8BITMIME") => {
                    txn.body = BodyType::EightBitMime
                }
                ("BODY", Some(v)) if v.eq_ignore_ascii_case("BINARYMIME") => {
                    txn.body = BodyType::BinaryMime
                }
                ("SMTPUTF8", None) => txn.smtputf8 = true,
                ("REQUIRETLS", None) => txn.requiretls = self.requiretls_param()?,
                ("RET", Some(v)) if v.eq_ignore_ascii_case("FULL") => txn.ret = Some(Ret::Full),
                ("RET", Some(v)) if v.eq_ignore_ascii_case("HDRS") => txn.ret = Some(Ret::Headers),
                ("ENVID", Some(v)) => match xtext_decode(v) {
                    Some(id) if id.len() <= 100 => txn.envid = Some(id),
                    _ => return Err(reply::line(501, "5.5.4", "Bad ENVID value")),
                },
                // RFC 4954 §5: accepted; we do not trust another server's claim.
                ("AUTH", Some(_)) => {}
                _ => return Err(reply::line(555, "5.5.4", "Unsupported MAIL parameter")),
            }
        }
        if let Some(s) = &sender {
            if s.is_utf8() && !txn.smtputf8 {
                return Err(reply::line(553, "5.6.7", "Non-ASCII sender needs SMTPUTF8"));
            }
            let Ok(address) = Address::new(&s.local, &s.domain) else {
                return Err(reply::line(553, "5.1.7", "Bad sender address"));
            };
            txn.sender = Some(s.to_string());
            if let Some(account) = &self.account {
                if self.settings.smtp.sender_must_match_login && address.to_string() != *account {
                    return Ok((txn, Some(address)));
                }
            }
        }
        Ok((txn, None))
    }

    /// Whether the sender belongs to the authenticated account: an address (alias,
    /// plus-address) that resolves to that account alone.
    fn owns(&self, resolution: &Result<Resolution, String>) -> bool {
        let Some(account) = &self.account else {
            return false;
        };
        match resolution {
            Ok(Resolution::Deliver(dests)) => dests
                .iter()
                .all(|d| matches!(d, Destination::Local { account: a, .. } if a == account)),
            _ => false,
        }
    }

    /// RFC 5321 §4.1.1.3 RCPT, with NOTIFY and ORCPT (RFC 3461 §4.1, §4.2). Relay control: the domain
    /// must be local, else the client must be authenticated or trusted.
    fn rcpt(&mut self, recipient: Mailbox, params: Vec<Param>) -> Step {
        let Some(txn) = &self.txn else {
            return Step::Reply(reply::line(503, "5.5.1", "Need MAIL before RCPT"));
        };
        if txn.recipients.len() >= self.settings.smtp.max_recipients {
            return Step::Reply(reply::line(452, "4.5.3", "Too many recipients"));
        }
        if !params.is_empty() && !self.esmtp {
            return Step::Reply(reply::line(555, "5.5.4", "Parameters need EHLO"));
        }
        let mut notify = Notify::default();
        let mut orcpt = None;
        for p in params {
            match (p.keyword.as_str(), p.value.as_deref()) {
                ("NOTIFY", Some(v)) => match parse_notify(v) {
                    Some(n) => notify = n,
                    None => return Step::Reply(reply::line(501, "5.5.4", "Bad NOTIFY value")),
                },
                ("ORCPT", Some(v)) => {
                    let decoded = v.split_once(';').and_then(|(kind, addr)| {
                        let kind_ok = !kind.is_empty()
                            && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
                        let addr = xtext_decode(addr)?;
                        (kind_ok && !addr.is_empty() && addr.len() <= 500)
                            .then(|| format!("{kind};{addr}"))
                    });
                    match decoded {
                        Some(o) => orcpt = Some(o),
                        None => return Step::Reply(reply::line(501, "5.5.4", "Bad ORCPT value")),
                    }
                }
                _ => return Step::Reply(reply::line(555, "5.5.4", "Unsupported RCPT parameter")),
            }
        }
        if recipient.is_utf8() && !txn.smtputf8 {
            return Step::Reply(reply::line(
                553,
                "5.6.7",
                "Non-ASCII recipient needs SMTPUTF8",
            ));
        }
        if recipient.domain.is_empty() {
            // RFC 5321 §4.1.1.3: "<Postmaster>" means our postmaster: at our host name if that is a
            // local domain, else at the first local domain.
            let host = self.hostname().to_string();
            self.pending = Some(Pending::RcptDomain(recipient, notify, orcpt));
            return Step::Lookup(Lookup::PostmasterDomain(host));
        }
        self.rcpt_resolve(recipient, notify, orcpt)
    }

    /// RCPT: asks for the recipient's resolution.
    fn rcpt_resolve(&mut self, recipient: Mailbox, notify: Notify, orcpt: Option<String>) -> Step {
        let Ok(address) = Address::new(&recipient.local, &recipient.domain) else {
            return Step::Reply(reply::line(501, "5.1.3", "Bad recipient address"));
        };
        self.pending = Some(Pending::RcptResolve(recipient, notify, orcpt));
        Step::Lookup(Lookup::Resolve(address))
    }

    /// RCPT: the resolution decides (relay control), then the checks if any.
    fn rcpt_resolved(
        &mut self,
        recipient: Mailbox,
        notify: Notify,
        orcpt: Option<String>,
        resolution: Result<Resolution, String>,
    ) -> Step {
        match resolution {
            Ok(Resolution::Deliver(_)) => {}
            Ok(Resolution::NotFound) => {
                return Step::Reply(reply::line(550, "5.1.1", "No such user here"));
            }
            // RFC 2033 §4.2: LMTP delivers here or nowhere.
            Ok(Resolution::NotLocal) if self.lmtp() => {
                return Step::Reply(reply::line(
                    550,
                    "5.1.2",
                    &format!("<{recipient}> not a local domain"),
                ));
            }
            Ok(Resolution::NotLocal) => {
                if self.account.is_none() && !self.trusted {
                    return Step::Reply(reply::line(554, "5.7.1", "Relay access denied"));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "recipient lookup failed");
                return Step::Reply(reply::line(
                    451,
                    "4.3.0",
                    "Temporary lookup failure, try again later",
                ));
            }
        }
        let address = recipient.to_string();
        if self.checks {
            self.pending = Some(Pending::RcptCheck(address.clone(), notify, orcpt));
            return Step::Check(Stage::Rcpt { recipient: address });
        }
        self.rcpt_accept(address, notify, orcpt)
    }

    /// RCPT accepted: the recipient joins the transaction.
    fn rcpt_accept(&mut self, address: String, notify: Notify, orcpt: Option<String>) -> Step {
        let Some(txn) = &mut self.txn else {
            return Step::Reply(reply::line(503, "5.5.1", "Need MAIL before RCPT"));
        };
        if !txn.recipients.iter().any(|r| r.address == address) {
            txn.recipients.push(Recipient {
                address,
                notify,
                orcpt,
            });
        }
        Step::Reply(reply::line(250, "2.1.5", "Ok"))
    }

    /// RFC 5321 §4.1.1.4 DATA.
    fn data(&mut self) -> Step {
        let Some(txn) = &self.txn else {
            return Step::Reply(reply::line(503, "5.5.1", "Need MAIL and RCPT before DATA"));
        };
        if txn.recipients.is_empty() {
            // RFC 2033 §4.2: 503 in LMTP.
            let code = if self.lmtp() { 503 } else { 554 };
            return Step::Reply(reply::line(code, "5.5.1", "No valid recipients"));
        }
        if txn.body == BodyType::BinaryMime || txn.chunks.is_some() {
            // RFC 3030 §3: BINARYMIME needs BDAT; DATA may not follow BDAT.
            return Step::Reply(reply::line(503, "5.5.1", "Use BDAT for this message"));
        }
        Step::Data(Box::new(DataDecoder::new(
            self.settings.smtp.max_message_size,
        )))
    }

    /// The end of DATA: check size and loops, build the spooled message.
    pub fn finish_data(&mut self, decoder: DataDecoder) -> Outcome {
        if decoder.too_big() {
            let accepted = self.txn.take().map_or(0, |t| t.recipients.len());
            return Outcome::Reply(self.for_each_rcpt(
                reply::line(
                    552,
                    "5.3.4",
                    "Message size exceeds fixed maximum message size",
                ),
                accepted,
            ));
        }
        self.finish_message(decoder.into_message())
    }

    /// The largest BDAT chunk worth keeping now (the driver discards what is beyond).
    pub fn bdat_room(&self) -> u64 {
        let used = self.txn.as_ref().map_or(0, |t| t.chunk_size);
        self.settings.smtp.max_message_size.saturating_sub(used)
    }

    /// RFC 3030 §2: one BDAT chunk was read (`data` is empty when it was too big to keep).
    pub fn bdat_chunk(&mut self, size: u64, data: Vec<u8>, last: bool) -> Outcome {
        let max = self.settings.smtp.max_message_size;
        let Some(txn) = &mut self.txn else {
            return Outcome::Reply(reply::line(503, "5.5.1", "Need MAIL and RCPT before BDAT"));
        };
        if txn.recipients.is_empty() {
            self.txn = None;
            let code = if self.lmtp() { 503 } else { 554 };
            return Outcome::Reply(reply::line(code, "5.5.1", "No valid recipients"));
        }
        txn.chunk_size = txn.chunk_size.saturating_add(size);
        if txn.chunk_size > max {
            let accepted = txn.recipients.len();
            self.txn = None;
            let r = reply::line(
                552,
                "5.3.4",
                "Message size exceeds fixed maximum message size",
            );
            // RFC 2033 §4.2 with RFC 3030: the last chunk is answered per recipient.
            return Outcome::Reply(if last {
                self.for_each_rcpt(r, accepted)
            } else {
                r
            });
        }
        let chunks = txn.chunks.get_or_insert_with(Vec::new);
        chunks.extend_from_slice(&data);
        if !last {
            return Outcome::Reply(reply::line(
                250,
                "2.0.0",
                &format!("{size} octets received"),
            ));
        }
        let message = std::mem::take(chunks);
        self.finish_message(message)
    }

    fn finish_message(&mut self, data: Vec<u8>) -> Outcome {
        let Some(txn) = self.txn.take() else {
            return Outcome::Reply(reply::line(503, "5.5.1", "No transaction"));
        };
        if message::received_count(&data) > self.settings.smtp.max_received_headers {
            return Outcome::Reply(self.for_each_rcpt(
                reply::line(554, "5.4.6", "Too many Received headers: mail loop"),
                txn.recipients.len(),
            ));
        }
        self.messages += 1;
        let queue_id = QueueId::generate();
        let id = queue_id.to_string();
        // RFC 3848 §2 (LMTP, LMTPS), RFC 6531 §3.7.3 (UTF8SMTP).
        let protocol = format!(
            "{}{}{}",
            if self.lmtp() {
                "LMTP"
            } else if txn.smtputf8 {
                "UTF8SMTP"
            } else if self.esmtp {
                "ESMTP"
            } else {
                "SMTP"
            },
            if self.tls.is_some() { "S" } else { "" },
            if self.account.is_some() { "A" } else { "" },
        );
        let now = message::now_unix();
        let single = (txn.recipients.len() == 1).then(|| txn.recipients[0].address.as_str());
        let received = message::received_header(&Trace {
            helo: self.helo.as_deref(),
            client_ip: self.peer,
            hostname: &self.settings.hostname,
            protocol,
            tls: self
                .tls
                .as_ref()
                .map(|t| (t.version.as_str(), t.cipher.as_str())),
            authenticated: self.account.is_some(),
            requiretls: txn.requiretls,
            id: &id,
            single_recipient: single,
            date: postern_mail::date::rfc5322(now),
        });
        let mut out = Vec::with_capacity(received.len() + data.len() + 128);
        out.extend_from_slice(received.as_bytes());
        if self.submission() {
            // RFC 6409 §8.2, §8.3: complete the message.
            if !message::has_field(&data, "date") {
                out.extend_from_slice(
                    format!("Date: {}\r\n", postern_mail::date::rfc5322(now)).as_bytes(),
                );
            }
            if !message::has_field(&data, "message-id") {
                let random: u64 = rand::random();
                out.extend_from_slice(
                    format!(
                        "Message-ID: <{now:x}.{random:016x}@{}>\r\n",
                        self.settings.hostname
                    )
                    .as_bytes(),
                );
            }
        }
        out.extend_from_slice(&data);
        let envelope = Envelope {
            sender: txn.sender,
            recipients: txn.recipients,
            ret: txn.ret,
            envid: txn.envid,
            body: txn.body,
            smtputf8: txn.smtputf8,
            requiretls: txn.requiretls,
            authenticated: self.account.clone(),
            client_ip: Some(self.peer),
            helo: self.helo.clone(),
        };
        if self.lmtp() {
            return Outcome::Deliver(Box::new(envelope), out, queue_id);
        }
        if self.checks {
            return Outcome::Check(Box::new(envelope), out, queue_id);
        }
        Outcome::Enqueue(Box::new(envelope), out, queue_id)
    }

    /// The verdict of the DATA checks on a message of [`Outcome::Check`]: enqueue it, or the
    /// refusal (the transaction is over either way, RFC 5321 §4.1.1.4).
    pub fn data_checked(
        &mut self,
        verdict: Verdict,
        envelope: Box<Envelope>,
        message: Vec<u8>,
        queue_id: QueueId,
    ) -> Outcome {
        match verdict {
            Verdict::Accept if self.lmtp() => Outcome::Deliver(envelope, message, queue_id),
            Verdict::Accept => Outcome::Enqueue(envelope, message, queue_id),
            Verdict::Reject(r) | Verdict::Tempfail(r) => Outcome::Reply(r),
        }
    }

    /// The sink's answer: `250` only once the message is durable.
    pub fn enqueued(
        &mut self,
        result: Result<QueueId, SinkError>,
        envelope: &Envelope,
        size: usize,
        message_id: Option<&str>,
    ) -> String {
        match result {
            Ok(id) => {
                tracing::info!(
                    queue_id = %id,
                    client = %self.peer,
                    sender = envelope.sender.as_deref().unwrap_or("<>"),
                    recipients = %envelope.recipients.iter().map(|r| r.address.as_str()).collect::<Vec<_>>().join(","),
                    size,
                    message_id = message_id.unwrap_or(""),
                    tls = self.tls.as_ref().map_or("none", |t| t.version.as_str()),
                    "message queued"
                );
                reply::line(250, "2.0.0", &format!("Ok: queued as {id}"))
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot spool message");
                reply::line(
                    451,
                    "4.3.0",
                    "Cannot queue the message now, try again later",
                )
            }
        }
    }

    /// RFC 2033 §4.2: after the message, one reply per accepted recipient, in RCPT order, each
    /// saying how that recipient's delivery went (`250 2.0.0 <a@b> stored in ...`,
    /// `452 4.2.2 <b@b> mailbox full`, `550 5.7.1 <c@b> rejected by Sieve: ...`).
    pub fn delivered(&mut self, envelope: &Envelope, results: Vec<Status>, size: usize) -> String {
        let mut out = String::new();
        let mut results = results.into_iter();
        for rcpt in &envelope.recipients {
            let status = results.next().unwrap_or_else(|| {
                tracing::error!(to = %rcpt.address, "the sink gave no result for this recipient");
                Status::new(
                    EnhancedCode::new(4, 3, 0),
                    "delivery result missing, try again later",
                )
            });
            tracing::info!(
                client = %self.peer,
                from = envelope.sender.as_deref().unwrap_or("<>"),
                to = %rcpt.address,
                size,
                status = %status.text,
                "lmtp delivery"
            );
            out.push_str(&rcpt_reply(&rcpt.address, &status));
        }
        out
    }

    /// The HELO name and the transaction's sender, for the log line of a refusal.
    pub fn log_context(&self) -> (&str, Option<&str>) {
        let sender = self
            .txn
            .as_ref()
            .map(|t| t.sender.as_deref().unwrap_or("<>"));
        (self.helo.as_deref().unwrap_or(""), sender)
    }

    /// RFC 5321 §3.5.3 VRFY, by policy.
    fn vrfy(&mut self, arg: &str) -> Step {
        match self.settings.smtp.vrfy {
            VrfyPolicy::Off => Step::Reply(reply::line(502, "5.5.1", "VRFY is disabled")),
            VrfyPolicy::Ambiguous => Step::Reply(vrfy_ambiguous()),
            VrfyPolicy::Authenticated if self.account.is_none() => Step::Reply(vrfy_ambiguous()),
            VrfyPolicy::Authenticated => match lookup_arg(arg) {
                None => Step::Reply(reply::line(501, "5.1.3", "Bad address")),
                Some(address) => {
                    self.pending = Some(Pending::Vrfy(address.clone()));
                    Step::Lookup(Lookup::Resolve(address))
                }
            },
        }
    }

    /// VRFY's answer.
    fn vrfy_resolved(address: &Address, resolution: Result<Resolution, String>) -> String {
        match resolution {
            Ok(Resolution::Deliver(_)) => reply::line(250, "2.1.5", &format!("<{address}>")),
            Ok(Resolution::NotFound) => reply::line(550, "5.1.1", "No such user here"),
            Ok(Resolution::NotLocal) => vrfy_ambiguous(),
            Err(_) => reply::line(451, "4.3.0", "Temporary lookup failure"),
        }
    }

    /// RFC 5321 §3.5.3 EXPN, by policy: only authenticated clients, if at all.
    fn expn(&mut self, arg: &str) -> Step {
        if self.settings.smtp.expn == ExpnPolicy::Off || self.account.is_none() {
            return Step::Reply(reply::line(502, "5.5.1", "EXPN is not available"));
        }
        let Some(address) = lookup_arg(arg) else {
            return Step::Reply(reply::line(501, "5.1.3", "Bad address"));
        };
        self.pending = Some(Pending::Expn);
        Step::Lookup(Lookup::Expand(address))
    }

    /// EXPN's answer.
    fn expn_resolved(resolution: Result<Resolution, String>) -> String {
        match resolution {
            Ok(Resolution::Deliver(dests)) => {
                let lines: Vec<String> = dests
                    .iter()
                    .map(|d| match d {
                        Destination::Local { account, .. } => format!("<{account}>"),
                        Destination::Remote(r) => format!("<{r}>"),
                        // A command or file target is local delivery at the alias itself;
                        // its command line or path is not for the client to see.
                        Destination::Command { alias, .. } | Destination::File { alias, .. } => {
                            format!("<{alias}>")
                        }
                    })
                    .fold(Vec::new(), |mut v: Vec<String>, l| {
                        if !v.contains(&l) {
                            v.push(l);
                        }
                        v
                    });
                reply::multiline_enhanced(250, "2.1.5", &lines)
            }
            Ok(Resolution::NotFound) => reply::line(550, "5.1.1", "No such user or list here"),
            Ok(Resolution::NotLocal) => reply::line(550, "5.1.2", "Not a local domain"),
            Err(_) => reply::line(451, "4.3.0", "Temporary lookup failure"),
        }
    }

    /// The driver's answer to the last [`Step::Lookup`]; the next step.
    pub fn answer(&mut self, answer: Answer) -> Step {
        let step = match (self.pending.take(), answer) {
            (Some(Pending::MailOwner(txn)), Answer::Resolution(r)) => {
                if self.owns(&r) {
                    self.mail_accept(txn)
                } else {
                    Step::Reply(reply::line(
                        553,
                        "5.7.1",
                        "Sender address is not owned by the authenticated user",
                    ))
                }
            }
            (Some(Pending::RcptDomain(mut rcpt, notify, orcpt)), Answer::Domain(d)) => {
                rcpt.domain = d;
                self.rcpt_resolve(rcpt, notify, orcpt)
            }
            (Some(Pending::RcptResolve(rcpt, notify, orcpt)), Answer::Resolution(r)) => {
                self.rcpt_resolved(rcpt, notify, orcpt, r)
            }
            (Some(Pending::Vrfy(address)), Answer::Resolution(r)) => {
                Step::Reply(Self::vrfy_resolved(&address, r))
            }
            (Some(Pending::Expn), Answer::Resolution(r)) => Step::Reply(Self::expn_resolved(r)),
            (pending, answer) => {
                tracing::error!(?pending, ?answer, "directory answer out of turn");
                Step::Reply(reply::line(451, "4.3.0", "Temporary lookup failure"))
            }
        };
        self.count_errors(step)
    }

    /// The verdict of the checks of the last [`Step::Check`]; the next step.
    pub fn checked(&mut self, verdict: Verdict) -> Step {
        let step = match (self.pending.take(), verdict) {
            (Some(Pending::Connect), Verdict::Accept) => Step::Reply(self.greeting()),
            // RFC 5321 §3.1: a refused connection is answered instead of the greeting; the
            // client may only QUIT, so we close.
            (Some(Pending::Connect), Verdict::Reject(r) | Verdict::Tempfail(r)) => Step::Close(r),
            (Some(Pending::MailCheck(txn)), Verdict::Accept) => {
                self.txn = Some(txn);
                Step::Reply(reply::line(250, "2.1.0", "Ok"))
            }
            (Some(Pending::RcptCheck(address, notify, orcpt)), Verdict::Accept) => {
                self.rcpt_accept(address, notify, orcpt)
            }
            (Some(Pending::MailCheck(_) | Pending::RcptCheck(..)), Verdict::Reject(r)) => {
                Step::Reply(r)
            }
            (Some(Pending::MailCheck(_) | Pending::RcptCheck(..)), Verdict::Tempfail(r)) => {
                Step::Reply(r)
            }
            (pending, verdict) => {
                tracing::error!(?pending, ?verdict, "check verdict out of turn");
                Step::Reply(reply::line(
                    451,
                    "4.3.0",
                    "Temporary failure, try again later",
                ))
            }
        };
        self.count_errors(step)
    }

    /// RFC 8689 §4.1: REQUIRETLS is advertised only on a TLS connection (after STARTTLS or on
    /// implicit TLS), and not over LMTP (final delivery, not relaying).
    fn offers_requiretls(&self) -> bool {
        self.tls.is_some() && !self.lmtp()
    }

    /// RFC 8689 §4.1: the REQUIRETLS MAIL parameter, accepted only where it is advertised;
    /// over a connection without TLS it is refused with `530 5.7.10`.
    fn requiretls_param(&self) -> Result<bool, String> {
        if self.tls.is_none() {
            return Err(reply::line(
                530,
                "5.7.10",
                "REQUIRETLS needs a TLS connection (RFC 8689)",
            ));
        }
        if self.lmtp() {
            return Err(reply::line(555, "5.5.4", "Unsupported MAIL parameter"));
        }
        Ok(true)
    }

    /// RFC 3207 §4 STARTTLS.
    fn starttls(&mut self) -> Step {
        if self.tls.is_some() {
            return Step::Reply(reply::line(503, "5.5.1", "TLS already active"));
        }
        if !self.tls_available {
            return Step::Reply(reply::line(502, "5.5.1", "STARTTLS not available"));
        }
        Step::StartTls
    }

    /// Whether SCRAM-SHA-256-PLUS is advertised (the driver knows the channel: TLS 1.3 with
    /// `tls-exporter`, RFC 9266).
    pub fn set_offer_plus(&mut self, offer: bool) {
        self.offer_plus = offer;
    }

    /// RFC 3207 §4.2: after the handshake, forget everything the client told us.
    pub fn tls_started(&mut self, info: Option<TlsInfo>) {
        self.tls = info;
        self.tls_available = false;
        self.helo = None;
        self.esmtp = false;
        self.account = None;
        self.txn = None;
    }

    /// RFC 4954 §4 AUTH.
    fn auth(&mut self, mechanism: &str, initial: Option<String>) -> Step {
        if !self.esmtp {
            return Step::Reply(reply::line(503, "5.5.1", "Send EHLO first"));
        }
        if self.account.is_some() {
            return Step::Reply(reply::line(503, "5.5.1", "Already authenticated"));
        }
        if self.txn.is_some() {
            return Step::Reply(reply::line(
                503,
                "5.5.1",
                "AUTH not allowed during a mail transaction",
            ));
        }
        let Some(mechanism) = SaslMechanism::from_name(mechanism) else {
            return Step::Reply(reply::line(
                504,
                "5.5.4",
                "Unrecognised authentication mechanism",
            ));
        };
        // RFC 4954 §6: 538 for a plaintext mechanism without TLS, and for -PLUS, which binds
        // to a TLS channel.
        if !mechanism.usable(self.channel_secure(), self.tls.is_some()) {
            return Step::Reply(reply::line(
                538,
                "5.7.11",
                "Encryption required for requested authentication mechanism",
            ));
        }
        let initial = match initial.as_deref() {
            None => None,
            Some("=") => Some(Vec::new()),
            Some(text) => match base64::engine::general_purpose::STANDARD.decode(text) {
                Ok(bytes) => Some(bytes),
                Err(_) => return Step::Reply(reply::line(501, "5.5.2", "Invalid base64 data")),
            },
        };
        Step::Auth { mechanism, initial }
    }

    /// The SASL exchange succeeded.
    pub fn authenticated(&mut self, account: String) {
        tracing::info!(account = %account, "authenticated");
        self.account = Some(account);
    }
}

/// The SMTP reply code of an enhanced status code (RFC 3463 §3 subjects to RFC 5321 §4.2.3
/// codes): storage trouble is 452/552, other failures 451/550 (554 for a loop), success 250.
pub fn reply_code(code: EnhancedCode) -> u16 {
    match (code.class, code.subject, code.detail) {
        (2, _, _) => 250,
        (4, 2, 2) | (4, 3, 1) | (4, 5, 3) => 452,
        (4, _, _) => 451,
        (5, 2, 2) | (5, 2, 3) | (5, 3, 4) => 552,
        (5, 4, 6) => 554,
        _ => 550,
    }
}

/// One recipient's reply after LMTP's data: `code status <address> text`, where the text is the
/// status's own without its leading code and any `<address>:` it starts with.
pub fn rcpt_reply(address: &str, status: &Status) -> String {
    let code = status.code;
    let mut text = status.text.trim();
    let shown = code.to_string();
    if let Some(rest) = text.strip_prefix(shown.as_str()) {
        text = rest.trim_start();
    }
    let bracketed = format!("<{address}>");
    if let Some(rest) = text.strip_prefix(bracketed.as_str()) {
        text = rest.trim_start_matches(':').trim_start();
    }
    // One line: a reply text has no line breaks.
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(400)
        .collect();
    let text = if text.is_empty() {
        "done"
    } else {
        text.as_str()
    };
    reply::line(reply_code(code), &shown, &format!("{bracketed} {text}"))
}

/// RFC 3461 §4.1: `NEVER` alone, or any of `SUCCESS`, `FAILURE`, `DELAY`.
fn parse_notify(v: &str) -> Option<Notify> {
    if v.eq_ignore_ascii_case("NEVER") {
        return Some(Notify::NEVER);
    }
    let mut n = Notify {
        success: false,
        failure: false,
        delay: false,
    };
    for word in v.split(',') {
        match word.to_ascii_uppercase().as_str() {
            "SUCCESS" => n.success = true,
            "FAILURE" => n.failure = true,
            "DELAY" => n.delay = true,
            _ => return None,
        }
    }
    Some(n)
}

/// RFC 5321 §3.5.3: `252` when VRFY will not say.
fn vrfy_ambiguous() -> String {
    reply::line(
        252,
        "2.5.2",
        "Cannot VRFY user, but will accept message and attempt delivery",
    )
}

/// A VRFY/EXPN argument: `<addr>`, `addr` or `Name <addr>`.
fn lookup_arg(arg: &str) -> Option<Address> {
    let inner = match (arg.rfind('<'), arg.rfind('>')) {
        (Some(a), Some(b)) if a < b => &arg[a + 1..b],
        _ => arg.trim(),
    };
    let mailbox = crate::parse::parse_mailbox(inner).ok()?;
    Address::new(&mailbox.local, &mailbox.domain).ok()
}
