//! postern's ManageSieve server (RFC 5804): users upload, check, list, activate, download,
//! rename and delete their Sieve scripts from Thunderbird, Roundcube, SOGo or `sieve-connect`.
//!
//! * [`command`] — the I/O-free command parser (strings and literals by the IMAP lexer).
//! * [`response`] — `OK`/`NO`/`BYE` lines, response codes, strings.
//! * [`ManageSieveServer`] — the [`SessionHandler`] running sessions over `postern-net`.
//!
//! Scripts are validated with `postern_sieve::compile` before they are stored, and live in the
//! account's [`ScriptStore`]. Authentication goes through the directory's [`AuthGate`] (one
//! throttle for every protocol); passwords are refused off TLS except from loopback, as
//! [`CleartextPolicy`](postern_net::CleartextPolicy) says.

pub mod command;
pub mod response;
mod session;

use async_trait::async_trait;
use postern_config::{Config, Service};
use postern_directory::{AuthGate, AuthThrottle, Directory};
use postern_net::{Connection, Refusal, SessionHandler, Sessions};
use postern_store::ScriptStore;
use std::sync::Arc;
use std::time::Duration;

/// Tunables of the ManageSieve server (from `[managesieve]`; tests shorten the timeouts).
#[derive(Debug, Clone)]
pub struct ManageSieveSettings {
    /// Inactivity after login before the session is closed.
    pub idle_timeout: Duration,
    /// Time to log in before the session is closed.
    pub login_timeout: Duration,
    /// Longest command line, CRLF included (literals do not count).
    pub max_line: usize,
    /// Scripts one account may keep (RFC 5804 QUOTA/MAXSCRIPTS).
    pub max_scripts: usize,
    /// Largest script in octets (RFC 5804 QUOTA/MAXSIZE).
    pub max_script_size: u64,
    /// Failed logins in one session before it is closed.
    pub max_auth_failures: u32,
    /// Invalid or unknown commands in one session before it is closed.
    pub max_bad_commands: u32,
    /// The RFC 5804 §1.7 IMPLEMENTATION capability.
    pub implementation: String,
    /// Treat loopback peers as a protected channel for passwords. Tests turn it off.
    pub trust_loopback: bool,
    /// The limits scripts are compiled under (MAXREDIRECTS comes from here).
    pub sieve_limits: postern_sieve::Limits,
}

impl Default for ManageSieveSettings {
    fn default() -> Self {
        ManageSieveSettings {
            idle_timeout: Duration::from_secs(30 * 60),
            login_timeout: Duration::from_secs(180),
            max_line: 8 * 1024,
            max_scripts: 20,
            max_script_size: 1024 * 1024,
            max_auth_failures: 3,
            max_bad_commands: 20,
            implementation: concat!("postern ", env!("CARGO_PKG_VERSION")).into(),
            trust_loopback: true,
            sieve_limits: postern_sieve::Limits::default(),
        }
    }
}

impl ManageSieveSettings {
    /// The settings `[managesieve]` sets, with the quotas and compile limits of `[sieve]`
    /// (the same for delivery, the admin commands and ManageSieve); the rest keep their
    /// defaults.
    pub fn from_config(config: &Config) -> ManageSieveSettings {
        let m = &config.managesieve;
        let s = &config.sieve;
        let sieve_limits = postern_sieve::Limits {
            max_script_bytes: s.max_script_bytes,
            max_actions: s.max_actions,
            max_redirects: s.max_redirects,
            max_include_depth: s.max_include_depth,
            max_regex_bytes: s.max_regex_bytes,
            vacation_min_period: s.vacation_min_period_secs,
            vacation_default_period: s.vacation_default_period_secs,
            vacation_max_period: s.vacation_max_period_secs,
        };
        ManageSieveSettings {
            idle_timeout: Duration::from_secs(m.idle_timeout_secs),
            login_timeout: Duration::from_secs(m.login_timeout_secs),
            max_scripts: s.max_scripts,
            max_script_size: u64::try_from(s.max_script_bytes).unwrap_or(u64::MAX),
            max_auth_failures: m.max_auth_failures,
            max_bad_commands: m.max_bad_commands,
            sieve_limits,
            ..ManageSieveSettings::default()
        }
    }
}

/// What every ManageSieve session of the process shares.
pub(crate) struct Inner {
    pub(crate) config: Arc<Config>,
    /// Every login passes here (throttle, failure logs).
    pub(crate) gate: AuthGate,
    pub(crate) scripts: Arc<dyn ScriptStore>,
    pub(crate) settings: ManageSieveSettings,
    /// Logged-in sessions by account, for `postern kick` (shared with IMAP and POP3 by serve).
    pub(crate) sessions: Sessions,
}

/// The ManageSieve (port 4190, STARTTLS) session handler.
#[derive(Clone)]
pub struct ManageSieveServer {
    inner: Arc<Inner>,
}

impl ManageSieveServer {
    /// A server with the settings of `config`'s `[managesieve]` section.
    pub fn new(
        config: Arc<Config>,
        directory: Arc<dyn Directory>,
        scripts: Arc<dyn ScriptStore>,
        throttle: Arc<AuthThrottle>,
    ) -> ManageSieveServer {
        let settings = ManageSieveSettings::from_config(&config);
        ManageSieveServer::with_settings(config, directory, scripts, throttle, settings)
    }

    /// A server with explicit settings.
    pub fn with_settings(
        config: Arc<Config>,
        directory: Arc<dyn Directory>,
        scripts: Arc<dyn ScriptStore>,
        throttle: Arc<AuthThrottle>,
        settings: ManageSieveSettings,
    ) -> ManageSieveServer {
        ManageSieveServer {
            inner: Arc::new(Inner {
                config,
                gate: AuthGate::new(directory, throttle),
                scripts,
                settings,
                sessions: Sessions::default(),
            }),
        }
    }

    /// The same server, registering logged-in sessions in `sessions` (so that an admin can end
    /// them: `postern kick`, and disabling or removing the account); call before it serves.
    pub fn with_sessions(self, sessions: Sessions) -> ManageSieveServer {
        let old = &self.inner;
        ManageSieveServer {
            inner: Arc::new(Inner {
                config: old.config.clone(),
                gate: old.gate.clone(),
                scripts: old.scripts.clone(),
                settings: old.settings.clone(),
                sessions,
            }),
        }
    }

    /// The same server with a new configuration (a reload): new sessions use it and its
    /// `[managesieve]` settings; open sessions keep theirs.
    pub fn reconfigured(&self, config: Arc<Config>) -> ManageSieveServer {
        let old = &self.inner;
        let settings = ManageSieveSettings {
            trust_loopback: old.settings.trust_loopback,
            implementation: old.settings.implementation.clone(),
            ..ManageSieveSettings::from_config(&config)
        };
        ManageSieveServer {
            inner: Arc::new(Inner {
                config,
                gate: old.gate.clone(),
                scripts: old.scripts.clone(),
                settings,
                sessions: old.sessions.clone(),
            }),
        }
    }
}

#[async_trait]
impl SessionHandler for ManageSieveServer {
    async fn handle(&self, conn: Connection) {
        session::run(self.inner.clone(), conn).await;
    }

    fn refusal(&self, service: Service, why: Refusal) -> Vec<u8> {
        why.line(service, "")
    }
}
