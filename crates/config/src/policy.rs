//! `[policy]`: the inbound checks of the MX (message authentication, DNS lists, greylisting,
//! rate limits, access tables) and the verdict their scores add up to.

use crate::ConfigError;
use serde::{Deserialize, Serialize};

/// `[policy]`: which inbound checks run, and how they decide.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Policy {
    // --- message authentication and verdict (SPF, DKIM, DMARC, ARC, iprev) ---
    // --- screens (DNSBL/DNSWL, pre-greeting, greylisting, rate limits, access tables) ---
    /// DNS lists, pre-greeting, greylisting, rate limits, access tables (flat in `[policy]`).
    #[serde(flatten)]
    pub screens: crate::screens::Screens,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    // --- message authentication and verdict ---
    // --- screens ---
    dnsbl: Option<Vec<String>>,
    dnsbl_list: Option<Vec<crate::screens::RawDnsList>>,
    dnsbl_reject_at: Option<String>,
    dnsbl_timeout_ms: Option<u64>,
    pregreet_wait_ms: Option<u64>,
    pregreet_loopback: Option<bool>,
    greylist: Option<bool>,
    greylist_delay_secs: Option<u64>,
    greylist_expire_secs: Option<u64>,
    greylist_auto_allow: Option<u32>,
    rate_limit: Option<Vec<crate::screens::RawRateLimit>>,
    access: Option<Vec<crate::screens::RawAccess>>,
    access_file: Option<std::path::PathBuf>,
}

impl RawPolicy {
    pub(crate) fn validate(self) -> Result<Policy, ConfigError> {
        Ok(Policy {
            // --- message authentication and verdict ---
            // --- screens ---
            screens: crate::screens::RawScreens {
                dnsbl: self.dnsbl,
                dnsbl_list: self.dnsbl_list,
                dnsbl_reject_at: self.dnsbl_reject_at,
                dnsbl_timeout_ms: self.dnsbl_timeout_ms,
                pregreet_wait_ms: self.pregreet_wait_ms,
                pregreet_loopback: self.pregreet_loopback,
                greylist: self.greylist,
                greylist_delay_secs: self.greylist_delay_secs,
                greylist_expire_secs: self.greylist_expire_secs,
                greylist_auto_allow: self.greylist_auto_allow,
                rate_limit: self.rate_limit,
                access: self.access,
                access_file: self.access_file,
            }
            .validate()?,
        })
    }
}
