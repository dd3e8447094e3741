//! `[policy]`: the inbound checks of the MX (message authentication, DNS lists, greylisting,
//! rate limits, access tables) and the verdict their scores add up to.

use crate::ConfigError;
use serde::{Deserialize, Serialize};

/// `[policy]`: which inbound checks run, and how they decide.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Policy {
    // --- message authentication and verdict (SPF, DKIM, DMARC, ARC, iprev) ---
    // --- screens (DNSBL/DNSWL, pre-greeting, greylisting, rate limits, access tables) ---
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    // --- message authentication and verdict ---
    // --- screens ---
}

impl RawPolicy {
    pub(crate) fn validate(self) -> Result<Policy, ConfigError> {
        Ok(Policy {
            // --- message authentication and verdict ---
            // --- screens ---
        })
    }
}
