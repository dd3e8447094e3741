//! `[managesieve]`: the ManageSieve server (RFC 5804). Its quotas (scripts per account, script
//! size) are `[sieve]`'s `max_scripts` and `max_script_bytes`: one limit for delivery, the
//! admin commands and ManageSieve alike.

use crate::check::{at_least, positive};
use crate::ConfigError;
use serde::{Deserialize, Serialize};

/// `[managesieve]`: ManageSieve session limits.
#[derive(Debug, Clone, Serialize)]
pub struct ManageSieve {
    /// Inactivity before the session is closed (as IMAP's autologout: at least 30 minutes).
    pub idle_timeout_secs: u64,
    /// Time to log in before the session is closed.
    pub login_timeout_secs: u64,
    /// Failed logins in one session before it is closed.
    pub max_auth_failures: u32,
    /// Invalid or unknown commands in one session before it is closed.
    pub max_bad_commands: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawManageSieve {
    idle_timeout_secs: Option<u64>,
    login_timeout_secs: Option<u64>,
    max_auth_failures: Option<u32>,
    max_bad_commands: Option<u32>,
}

impl RawManageSieve {
    pub(crate) fn validate(self) -> Result<ManageSieve, ConfigError> {
        Ok(ManageSieve {
            idle_timeout_secs: at_least(
                "managesieve.idle_timeout_secs",
                self.idle_timeout_secs,
                30 * 60,
                30 * 60,
                "RFC 9051 §5.4, as IMAP",
            )?,
            login_timeout_secs: positive(
                "managesieve.login_timeout_secs",
                self.login_timeout_secs,
                180,
            )?,
            max_auth_failures: positive(
                "managesieve.max_auth_failures",
                self.max_auth_failures,
                3,
            )?,
            max_bad_commands: positive("managesieve.max_bad_commands", self.max_bad_commands, 20)?,
        })
    }
}
