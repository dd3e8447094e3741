//! `[imap]` and `[pop3]`: the limits of the mail access protocols.

use crate::check::{at_least, positive};
use crate::ConfigError;
use serde::{Deserialize, Serialize};

/// `[imap]`: IMAP limits (RFC 9051 §5.4, RFC 7889).
#[derive(Debug, Clone, Serialize)]
pub struct Imap {
    /// Sessions one account may have open at once, over IMAP and IMAPS.
    pub max_connections_per_user: usize,
    /// Largest message APPEND accepts, in octets (RFC 7889 APPENDLIMIT).
    pub append_limit: u64,
    /// Inactivity after login before the session is logged out (RFC 9051 §5.4: at least
    /// 30 minutes). IDLE counts as activity only until this long.
    pub idle_timeout_secs: u64,
    /// Time to log in before the session is closed.
    pub login_timeout_secs: u64,
}

/// `[pop3]`: POP3 limits (RFC 1939).
#[derive(Debug, Clone, Serialize)]
pub struct Pop3 {
    /// Inactivity before the session is closed without UPDATE (RFC 1939 §3: at least 10 minutes).
    pub idle_timeout_secs: u64,
    /// Offer APOP (a timestamp in the greeting, RFC 1939 §7) to accounts with an APOP secret.
    pub apop: bool,
    /// Failed logins in one session before it is closed.
    pub max_auth_failures: u32,
    /// Invalid or unknown commands in one session before it is closed.
    pub max_bad_commands: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawImap {
    max_connections_per_user: Option<usize>,
    append_limit: Option<u64>,
    idle_timeout_secs: Option<u64>,
    login_timeout_secs: Option<u64>,
}

impl RawImap {
    pub(crate) fn validate(self) -> Result<Imap, ConfigError> {
        Ok(Imap {
            max_connections_per_user: positive(
                "imap.max_connections_per_user",
                self.max_connections_per_user,
                200,
            )?,
            append_limit: positive("imap.append_limit", self.append_limit, 64 * 1024 * 1024)?,
            idle_timeout_secs: at_least(
                "imap.idle_timeout_secs",
                self.idle_timeout_secs,
                30 * 60,
                30 * 60,
                "RFC 9051 §5.4",
            )?,
            login_timeout_secs: positive("imap.login_timeout_secs", self.login_timeout_secs, 180)?,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPop3 {
    idle_timeout_secs: Option<u64>,
    apop: Option<bool>,
    max_auth_failures: Option<u32>,
    max_bad_commands: Option<u32>,
}

impl RawPop3 {
    pub(crate) fn validate(self) -> Result<Pop3, ConfigError> {
        Ok(Pop3 {
            idle_timeout_secs: at_least(
                "pop3.idle_timeout_secs",
                self.idle_timeout_secs,
                10 * 60,
                10 * 60,
                "RFC 1939 §3",
            )?,
            apop: self.apop.unwrap_or(true),
            max_auth_failures: positive("pop3.max_auth_failures", self.max_auth_failures, 3)?,
            max_bad_commands: positive("pop3.max_bad_commands", self.max_bad_commands, 20)?,
        })
    }
}
