//! postern's POP3 server: RFC 1939 with APOP, CAPA (RFC 2449), UIDL, TOP, STLS (RFC 2595),
//! SASL PLAIN/LOGIN with initial responses (RFC 5034), response codes (RFC 2449 §8, RFC 3206)
//! and UTF8 (RFC 6856).
//!
//! * [`command`] — the I/O-free command parser.
//! * [`authorization`] — the AUTHORIZATION state, CAPA, APOP digests.
//! * [`maildrop`] — the TRANSACTION state, sizes and the byte-stuffed message encoding.
//! * [`Pop3Server`] — the [`SessionHandler`] that runs sessions over `postern-net` connections.
//!
//! RPOP (RFC 1939 §9's host-based login) is not offered: it trusts the client's source port and
//! is insecure. APOP works only for accounts with a separate APOP secret (`postern user apop`),
//! so login passwords are never stored reversibly. Sessions work on a snapshot of INBOX; DELE
//! marks are applied at QUIT only, durably, before the `+OK` (RFC 1939 §6); a connection that
//! drops deletes nothing.

pub mod authorization;
pub mod command;
mod error;
pub mod lock;
pub mod maildrop;
mod open;
mod session;

pub use error::Pop3Error;
pub use lock::MaildropLocks;

use async_trait::async_trait;
use postern_config::{Config, Service};
use postern_directory::{AuthGate, AuthThrottle, Directory};
use postern_net::{Connection, Refusal, SessionHandler, Sessions};
use postern_store::Store;
use std::sync::Arc;
use std::time::Duration;

/// Tunables of the POP3 server (the defaults follow the RFCs; tests shorten the timeouts).
#[derive(Debug, Clone)]
pub struct Pop3Settings {
    /// Inactivity before the session is dropped without UPDATE (RFC 1939 §3: at least 10 minutes).
    pub idle_timeout: Duration,
    /// Longest command line accepted, CRLF included. RFC 2449 §4 sets 255 octets for commands;
    /// SASL responses (RFC 5034 §4) may be longer, so the default is generous.
    pub max_line: usize,
    /// Offer APOP (timestamp in the greeting, RFC 1939 §7).
    pub apop: bool,
    /// Failed logins in one session before it is closed.
    pub max_auth_failures: u32,
    /// Invalid or unknown commands in one session before it is closed.
    pub max_bad_commands: u32,
    /// The RFC 2449 §6.9 IMPLEMENTATION capability.
    pub implementation: String,
    /// Treat loopback peers as a protected channel for passwords (local programs such as
    /// fetchmail or a webmail on the same host). Tests turn it off to see the remote policy.
    pub trust_loopback: bool,
}

impl Default for Pop3Settings {
    fn default() -> Self {
        Pop3Settings {
            idle_timeout: Duration::from_secs(10 * 60),
            max_line: 8 * 1024,
            apop: true,
            max_auth_failures: 3,
            max_bad_commands: 20,
            implementation: "postern".into(),
            trust_loopback: true,
        }
    }
}

impl Pop3Settings {
    /// The settings `[pop3]` sets; the rest keep their defaults.
    pub fn from_config(config: &Config) -> Pop3Settings {
        let pop3 = &config.pop3;
        Pop3Settings {
            idle_timeout: Duration::from_secs(pop3.idle_timeout_secs),
            apop: pop3.apop,
            max_auth_failures: pop3.max_auth_failures,
            max_bad_commands: pop3.max_bad_commands,
            ..Pop3Settings::default()
        }
    }
}

/// What every POP3 session of the process shares.
pub(crate) struct Inner {
    pub(crate) config: Arc<Config>,
    /// Every login passes here (throttle, failure logs).
    pub(crate) gate: AuthGate,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) settings: Pop3Settings,
    pub(crate) locks: MaildropLocks,
    /// Sessions in TRANSACTION by account, for `postern kick` (shared with IMAP by serve).
    pub(crate) sessions: Sessions,
}

/// The POP3 (port 110, STLS) and POP3S (port 995, implicit TLS) session handler.
#[derive(Clone)]
pub struct Pop3Server {
    inner: Arc<Inner>,
}

impl Pop3Server {
    /// A server with the settings of `config`'s `[pop3]` section.
    pub fn new(
        config: Arc<Config>,
        directory: Arc<dyn Directory>,
        store: Arc<dyn Store>,
        throttle: Arc<AuthThrottle>,
    ) -> Pop3Server {
        let settings = Pop3Settings::from_config(&config);
        Pop3Server::with_settings(config, directory, store, throttle, settings)
    }

    /// A server with explicit settings.
    pub fn with_settings(
        config: Arc<Config>,
        directory: Arc<dyn Directory>,
        store: Arc<dyn Store>,
        throttle: Arc<AuthThrottle>,
        settings: Pop3Settings,
    ) -> Pop3Server {
        Pop3Server {
            inner: Arc::new(Inner {
                config,
                gate: AuthGate::new(directory, throttle),
                store,
                settings,
                locks: MaildropLocks::default(),
                sessions: Sessions::default(),
            }),
        }
    }

    /// The same server with a new configuration (a reload): new sessions use it and its
    /// `[pop3]` settings, open ones keep theirs, and the maildrop locks (RFC 1939 §8) carry over.
    pub fn reconfigured(&self, config: Arc<Config>) -> Pop3Server {
        let mut next = self.derive(config, self.inner.sessions.clone());
        if let Some(inner) = Arc::get_mut(&mut next.inner) {
            let trust_loopback = inner.settings.trust_loopback;
            inner.settings = Pop3Settings {
                trust_loopback,
                ..Pop3Settings::from_config(&inner.config)
            };
        }
        next
    }

    /// The same server, registering sessions in `sessions` (so that an admin can end them);
    /// call before it serves.
    pub fn with_sessions(self, sessions: Sessions) -> Pop3Server {
        self.derive(self.inner.config.clone(), sessions)
    }

    fn derive(&self, config: Arc<Config>, sessions: Sessions) -> Pop3Server {
        let old = &self.inner;
        Pop3Server {
            inner: Arc::new(Inner {
                config,
                gate: old.gate.clone(),
                store: old.store.clone(),
                settings: old.settings.clone(),
                locks: old.locks.clone(),
                sessions,
            }),
        }
    }

    /// The maildrop locks (RFC 1939 §8), e.g. for status displays and tests.
    pub fn locks(&self) -> &MaildropLocks {
        &self.inner.locks
    }
}

#[async_trait]
impl SessionHandler for Pop3Server {
    async fn handle(&self, conn: Connection) {
        session::run(self.inner.clone(), conn).await;
    }

    fn refusal(&self, service: Service, why: Refusal) -> Vec<u8> {
        why.line(service, "")
    }
}
