//! postern's IMAP server: IMAP4rev2 (RFC 9051) and IMAP4rev1 (RFC 3501) with the extensions
//! real clients use (IDLE, CONDSTORE/QRESYNC, UIDPLUS, MOVE, SORT/THREAD, LIST-EXTENDED,
//! SPECIAL-USE, BINARY, SEARCHRES, QUOTA, ...).
//!
//! How to read it, from the bytes in to the bytes out:
//! * [`parser`]: I/O-free, bytes in, a typed `Command` out (or a typed `ParseError`), one file
//!   per command family; its [`Lexer`] (atoms, quoted strings, literals) is shared with
//!   ManageSieve, which speaks the same string syntax.
//! * `session`: one connection's state machine (RFC 9051 §3): reads a command with its literals,
//!   dispatches it by state, writes the tagged reply, pipelines.
//! * `selected`: the selected mailbox as one session sees it (RFC 9051 §5.2), pure state;
//!   `select_cmds` holds the commands that change it (SELECT, the untagged update pump, IDLE,
//!   EXPUNGE), so that several sessions on one mailbox each keep a consistent view.
//! * one module per command group on top: `auth`, `mailbox` (LIST, STATUS, ...), `append`,
//!   `fetch` (with [`mime`] for BODYSTRUCTURE and sections), `store_cmds` (STORE, COPY, MOVE),
//!   `search` (SEARCH, SORT, THREAD), `quota`.
//! * [`response`]: every response is written through it: typed response codes and mailbox
//!   data, strings and literals.
//!
//! The crate talks to mail only through the [`postern_store::Store`] trait and to accounts
//! through [`postern_directory::Directory`]; it never touches SQL or a file path, so another
//! store backend plugs in without changing it. Tests: unit tests beside each module, and
//! `tests/commands.rs`, which drives real sessions over in-memory streams, one test per command.

pub mod mime;
pub mod parser;
pub mod response;
pub mod utf7;

mod append;
mod auth;
mod fetch;
mod mailbox;
mod quota;
mod search;
mod select_cmds;
mod selected;
mod session;
mod store_cmds;

pub use parser::lexer::Lexer;
/// SEARCH, SORT and THREAD over message text, for the fuzz targets (`postern-fuzz-targets`);
/// not an API.
#[doc(hidden)]
pub use search::{
    base_subject_of, body_has, casemap, compare as search_compare, decode_text, header_has,
    sent_day, sort_info_of, thread_ordered_subject, thread_references, ThreadItem,
};
pub use session::SessionError;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use postern_config::{Config, Service};
use postern_directory::{AuthGate, AuthThrottle, Directory};
use postern_net::{Connection, Refusal, SessionHandler, Sessions};
use postern_store::Store;

/// Limits of an IMAP server (RFC 9051 §5.4, RFC 7889, RFC 7888).
#[derive(Debug, Clone)]
pub struct ImapLimits {
    /// Longest command line (without literals).
    pub max_line: usize,
    /// Largest literal outside APPEND.
    pub max_literal: u64,
    /// Largest command outside APPEND literals.
    pub max_command: u64,
    /// Largest message APPEND accepts (RFC 7889 APPENDLIMIT).
    pub append_limit: u64,
    /// RFC 9051 §5.4 autologout timer after login (at least 30 minutes).
    pub autologout: Duration,
    /// Autologout before login.
    pub login_timeout: Duration,
    /// Concurrent sessions per account.
    pub max_per_user: usize,
    /// How often an IDLE session looks for changes made by other programs.
    pub idle_poll: Duration,
    /// Treat loopback peers as a protected channel for passwords (local programs, a webmail
    /// on the same host), as POP3's setting of the same name. Tests turn it off to see the
    /// remote policy.
    pub trust_loopback: bool,
}

impl Default for ImapLimits {
    fn default() -> Self {
        ImapLimits {
            max_line: 64 * 1024,
            max_literal: 1024 * 1024,
            max_command: 2 * 1024 * 1024,
            append_limit: 64 * 1024 * 1024,
            autologout: Duration::from_secs(30 * 60),
            login_timeout: Duration::from_secs(180),
            max_per_user: 200,
            idle_poll: Duration::from_millis(1000),
            trust_loopback: true,
        }
    }
}

impl ImapLimits {
    /// The limits `[imap]` sets; the rest keep their defaults.
    pub fn from_config(config: &Config) -> ImapLimits {
        let imap = &config.imap;
        ImapLimits {
            append_limit: imap.append_limit,
            autologout: Duration::from_secs(imap.idle_timeout_secs),
            login_timeout: Duration::from_secs(imap.login_timeout_secs),
            max_per_user: imap.max_connections_per_user,
            ..ImapLimits::default()
        }
    }
}

pub(crate) struct Inner {
    pub(crate) config: Arc<Config>,
    pub(crate) directory: Arc<dyn Directory>,
    pub(crate) store: Arc<dyn Store>,
    /// Every login passes here (throttle, failure logs).
    pub(crate) gate: AuthGate,
    pub(crate) limits: ImapLimits,
    /// Shared with the servers a reload makes, so the per-account limit holds across it.
    user_conns: Arc<Mutex<HashMap<String, usize>>>,
    /// Logged-in sessions by account, for `postern kick` (shared with POP3 by serve).
    pub(crate) sessions: Sessions,
}

impl Inner {
    /// Registers one more session of `account`; `None` past the limit.
    pub(crate) fn acquire_user(self: &Arc<Self>, account: &str) -> Option<UserGuard> {
        let mut m = self.user_conns.lock().ok()?;
        let n = m.entry(account.to_string()).or_insert(0);
        if *n >= self.limits.max_per_user {
            return None;
        }
        *n += 1;
        Some(UserGuard {
            inner: self.clone(),
            account: account.to_string(),
        })
    }
}

/// Holds one of an account's session slots.
pub(crate) struct UserGuard {
    inner: Arc<Inner>,
    account: String,
}

impl Drop for UserGuard {
    fn drop(&mut self) {
        if let Ok(mut m) = self.inner.user_conns.lock() {
            if let Some(n) = m.get_mut(&self.account) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    m.remove(&self.account);
                }
            }
        }
    }
}

/// The IMAP [`SessionHandler`] for the `imap` and `imaps` listeners.
#[derive(Clone)]
pub struct ImapServer {
    inner: Arc<Inner>,
}

impl ImapServer {
    /// A server with the limits of `config`'s `[imap]` section.
    pub fn new(
        config: Arc<Config>,
        directory: Arc<dyn Directory>,
        store: Arc<dyn Store>,
        throttle: Arc<AuthThrottle>,
    ) -> ImapServer {
        let limits = ImapLimits::from_config(&config);
        ImapServer::with_limits(config, directory, store, throttle, limits)
    }

    /// A server with explicit limits.
    pub fn with_limits(
        config: Arc<Config>,
        directory: Arc<dyn Directory>,
        store: Arc<dyn Store>,
        throttle: Arc<AuthThrottle>,
        limits: ImapLimits,
    ) -> ImapServer {
        ImapServer {
            inner: Arc::new(Inner {
                config,
                gate: AuthGate::new(directory.clone(), throttle),
                directory,
                store,
                limits,
                user_conns: Arc::default(),
                sessions: Sessions::default(),
            }),
        }
    }
}

impl ImapServer {
    /// The same server with a new configuration (a reload): new sessions use it and its
    /// `[imap]` limits, open ones keep theirs, and the per-account session counts carry over.
    pub fn reconfigured(&self, config: Arc<Config>) -> ImapServer {
        let mut next = self.derive(config, self.inner.sessions.clone());
        if let Some(inner) = Arc::get_mut(&mut next.inner) {
            let trust_loopback = inner.limits.trust_loopback;
            inner.limits = ImapLimits {
                trust_loopback,
                ..ImapLimits::from_config(&inner.config)
            };
        }
        next
    }

    /// The same server, registering logged-in sessions in `sessions` (so that an admin can
    /// end them); call before it serves.
    pub fn with_sessions(self, sessions: Sessions) -> ImapServer {
        self.derive(self.inner.config.clone(), sessions)
    }

    fn derive(&self, config: Arc<Config>, sessions: Sessions) -> ImapServer {
        let old = &self.inner;
        ImapServer {
            inner: Arc::new(Inner {
                config,
                gate: old.gate.clone(),
                directory: old.directory.clone(),
                store: old.store.clone(),
                limits: old.limits.clone(),
                user_conns: old.user_conns.clone(),
                sessions,
            }),
        }
    }
}

#[async_trait]
impl SessionHandler for ImapServer {
    async fn handle(&self, conn: Connection) {
        let mut s = session::Session::new(
            self.inner.clone(),
            conn.stream,
            conn.peer,
            conn.tls,
            conn.shutdown,
        );
        s.run().await;
    }

    fn refusal(&self, service: Service, why: Refusal) -> Vec<u8> {
        why.line(service, "")
    }
}
