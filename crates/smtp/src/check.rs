//! Policy hooks on the SMTP stages (the shape maddy uses): a [`Check`] may look at the
//! connection, MAIL, each RCPT and the message, and answer with a [`Verdict`]. DNSBL, SPF,
//! DKIM, DMARC, greylisting and rate limits live here as `Check`s. [`Checks`] runs a list in
//! order; the first verdict that is not [`Verdict::Accept`] wins. No checks: today's behaviour.
//!
//! Checks that judge rather than decide (SPF for DMARC later, a DNSBL weight, a score) write
//! [`Findings`]: what was found on the connection (connect stage) stays for the whole session,
//! what was found on a transaction is dropped at the next MAIL. After every DATA check accepted
//! a message, [`Check::edit`] lets each check change it (an `Authentication-Results:` field, a
//! verdict header) before it is queued.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use postern_config::Service;
use postern_mail::EnhancedCode;
use postern_spool::Envelope;

use crate::reply;

/// The stage a session asks checks for (DATA's checks come with the message, see
/// [`crate::Outcome::Check`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// A new connection, before the greeting (RFC 5321 §3.1).
    Connect,
    /// MAIL FROM (RFC 5321 §4.1.1.2); `None` is the null sender `<>`.
    Mail {
        /// The reverse-path.
        sender: Option<String>,
    },
    /// RCPT TO (RFC 5321 §4.1.1.3), after the directory accepted the recipient.
    Rcpt {
        /// The forward-path.
        recipient: String,
    },
}

/// What a check decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go on (the next check, then the command's normal answer).
    Accept,
    /// Refuse permanently with this reply (a `5xx` line with CRLF).
    Reject(String),
    /// Refuse for now with this reply (a `4xx` line with CRLF).
    Tempfail(String),
}

impl Verdict {
    /// A permanent refusal: `code` 5xx, `enhanced` its RFC 3463 code (e.g. 5.7.1).
    pub fn reject(code: u16, enhanced: EnhancedCode, text: &str) -> Verdict {
        Verdict::Reject(reply::line(code, &enhanced.to_string(), text))
    }

    /// A temporary refusal: `code` 4xx, `enhanced` its RFC 3463 code (e.g. 4.7.1).
    pub fn tempfail(code: u16, enhanced: EnhancedCode, text: &str) -> Verdict {
        Verdict::Tempfail(reply::line(code, &enhanced.to_string(), text))
    }
}

/// One contribution to a message's score.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// The check that scored (its [`Check::name`]).
    pub check: String,
    /// Points: positive is suspicious, negative is trusted.
    pub points: f64,
    /// Why, in words for the log and the verdict header.
    pub reason: String,
}

/// What checks found, for later stages and for the message's header.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Findings {
    /// RFC 8601 §2.7 method results, in the order found (`spf=pass smtp.mailfrom=example.org`).
    pub results: Vec<String>,
    /// Score contributions.
    pub scores: Vec<Score>,
    /// What a check keeps for a later stage (the SPF result for DMARC), by key.
    pub notes: BTreeMap<String, String>,
}

/// The findings of one session: of its connection (kept until it closes) and of its current
/// transaction (cleared when MAIL starts a new one).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionFindings {
    /// Found at connect (client address, reverse DNS, DNSBL).
    pub connection: Findings,
    /// Found since the last MAIL.
    pub transaction: Findings,
}

impl SessionFindings {
    /// Every score of the connection and the transaction.
    pub fn scores(&self) -> impl Iterator<Item = &Score> {
        self.connection
            .scores
            .iter()
            .chain(self.transaction.scores.iter())
    }

    /// The total score.
    pub fn total(&self) -> f64 {
        self.scores().map(|s| s.points).sum()
    }

    /// Every method result, the connection's first.
    pub fn results(&self) -> impl Iterator<Item = &String> {
        self.connection
            .results
            .iter()
            .chain(self.transaction.results.iter())
    }

    /// A note of the transaction, else of the connection.
    pub fn note(&self, key: &str) -> Option<&str> {
        self.transaction
            .notes
            .get(key)
            .or_else(|| self.connection.notes.get(key))
            .map(String::as_str)
    }
}

/// What a check knows of the session.
#[derive(Debug, Clone)]
pub struct Context {
    /// The client's address.
    pub peer: IpAddr,
    /// MX or submission.
    pub service: Service,
    /// The HELO/EHLO name, if given.
    pub helo: Option<String>,
    /// The authenticated account, if any.
    pub account: Option<String>,
    /// Whether the channel is TLS.
    pub tls: bool,
    /// The transaction's sender (`""` for `<>`), once MAIL was accepted.
    pub sender: Option<String>,
    /// What the checks found so far (shared with the session: writes are kept).
    pub findings: Arc<Mutex<SessionFindings>>,
}

impl Context {
    /// The context of `session` now.
    pub fn of(session: &crate::Session) -> Context {
        Context {
            peer: session.peer(),
            service: session.service(),
            helo: session.helo().map(str::to_string),
            account: session.account().map(str::to_string),
            tls: session.tls(),
            sender: session.sender().map(str::to_string),
            findings: session.findings(),
        }
    }

    /// Runs `f` on the findings (a poisoned lock is taken over: findings are plain data).
    pub fn with_findings<T>(&self, f: impl FnOnce(&mut SessionFindings) -> T) -> T {
        let mut guard = self.findings.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }
}

/// One policy check. Every stage defaults to [`Verdict::Accept`]: implement the ones that
/// matter to the check.
#[async_trait]
pub trait Check: Send + Sync {
    /// A short name, for the logs.
    fn name(&self) -> &str;

    /// RFC 5321 §3.1: a client connected.
    async fn connect(&self, ctx: &Context) -> Verdict {
        let _ = ctx;
        Verdict::Accept
    }

    /// RFC 5321 §4.1.1.2: MAIL FROM `sender` (`None` = `<>`).
    async fn mail(&self, ctx: &Context, sender: Option<&str>) -> Verdict {
        let _ = (ctx, sender);
        Verdict::Accept
    }

    /// RFC 5321 §4.1.1.3: RCPT TO `recipient`.
    async fn rcpt(&self, ctx: &Context, recipient: &str) -> Verdict {
        let _ = (ctx, recipient);
        Verdict::Accept
    }

    /// RFC 5321 §4.1.1.4: the whole message (with our `Received:` header) before it is queued.
    async fn data(&self, ctx: &Context, envelope: &Envelope, message: &[u8]) -> Verdict {
        let _ = (ctx, envelope, message);
        Verdict::Accept
    }

    /// After every check accepted the message at DATA: changes it before it is queued (adds
    /// header fields at the top, removes forged ones). Runs in the order of the checks.
    async fn edit(&self, ctx: &Context, envelope: &Envelope, message: &mut Vec<u8>) {
        let _ = (ctx, envelope, message);
    }
}

/// The checks of a server, run in order.
#[derive(Clone, Default)]
pub struct Checks(Vec<Arc<dyn Check>>);

impl std::fmt::Debug for Checks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|c| c.name()))
            .finish()
    }
}

impl Checks {
    /// No checks.
    pub fn new() -> Checks {
        Checks::default()
    }

    /// Adds a check after the others.
    pub fn with(mut self, check: Arc<dyn Check>) -> Checks {
        self.0.push(check);
        self
    }

    /// Whether there are none (the session then never asks).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Runs the checks of `stage` in order; the first refusal wins.
    pub async fn stage(&self, stage: &Stage, ctx: &Context) -> Verdict {
        for check in &self.0 {
            let verdict = match stage {
                Stage::Connect => check.connect(ctx).await,
                Stage::Mail { sender } => check.mail(ctx, sender.as_deref()).await,
                Stage::Rcpt { recipient } => check.rcpt(ctx, recipient).await,
            };
            if verdict != Verdict::Accept {
                tracing::info!(check = check.name(), ?stage, ?verdict, "check refused");
                return verdict;
            }
        }
        Verdict::Accept
    }

    /// Runs the DATA checks in order; the first refusal wins. When all accept, every check
    /// may then [`Check::edit`] the message.
    pub async fn data(&self, ctx: &Context, envelope: &Envelope, message: &mut Vec<u8>) -> Verdict {
        for check in &self.0 {
            let verdict = check.data(ctx, envelope, message).await;
            if verdict != Verdict::Accept {
                tracing::info!(check = check.name(), ?verdict, "check refused the message");
                return verdict;
            }
        }
        for check in &self.0 {
            check.edit(ctx, envelope, message).await;
        }
        Verdict::Accept
    }
}
