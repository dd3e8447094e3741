//! `[managesieve]`: the ManageSieve server (RFC 5804) and its per-account quotas.

use crate::check::{at_least, positive};
use crate::ConfigError;
use serde::{Deserialize, Serialize};

/// `[managesieve]`: ManageSieve limits (RFC 5804 §1.3 QUOTA/MAXSCRIPTS, QUOTA/MAXSIZE).
#[derive(Debug, Clone, Serialize)]
pub struct ManageSieve {
    /// Scripts one account may keep (RFC 5804 §2.6 QUOTA/MAXSCRIPTS past it).
    pub max_scripts: usize,
    /// Largest script, in octets (RFC 5804 §2.6 QUOTA/MAXSIZE past it).
    pub max_script_size: u64,
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
    max_scripts: Option<usize>,
    max_script_size: Option<u64>,
    idle_timeout_secs: Option<u64>,
    login_timeout_secs: Option<u64>,
    max_auth_failures: Option<u32>,
    max_bad_commands: Option<u32>,
}

impl RawManageSieve {
    pub(crate) fn validate(self) -> Result<ManageSieve, ConfigError> {
        Ok(ManageSieve {
            max_scripts: positive("managesieve.max_scripts", self.max_scripts, 20)?,
            max_script_size: positive(
                "managesieve.max_script_size",
                self.max_script_size,
                1024 * 1024,
            )?,
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
