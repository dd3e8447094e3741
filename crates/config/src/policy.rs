//! `[policy]`: the inbound checks of the MX (message authentication, DNS lists, greylisting,
//! rate limits, access tables) and the verdict their scores add up to.

use crate::ConfigError;
use serde::{Deserialize, Serialize};

/// `[policy]`: which inbound checks run, and how they decide.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Policy {
    // --- message authentication and verdict (SPF, DKIM, DMARC, ARC, iprev) ---
    /// SPF, DKIM, DMARC, ARC, iprev and the verdict (keys directly in `[policy]`).
    #[serde(flatten)]
    pub auth: crate::policy_auth::AuthPolicy,
    // --- screens (DNSBL/DNSWL, pre-greeting, greylisting, rate limits, access tables) ---
    /// DNS lists, pre-greeting, greylisting, rate limits, access tables (flat in `[policy]`).
    #[serde(flatten)]
    pub screens: crate::screens::Screens,
    // --- DMARC aggregate reports (RFC 7489 §7.2) ---
    /// `dmarc_reports`, `dmarc_report_org`, `dmarc_report_from`, `dmarc_report_keep_days`.
    #[serde(flatten)]
    pub reports: crate::dmarc_reports::DmarcReports,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    // --- message authentication and verdict ---
    enabled: Option<bool>,
    authserv_id: Option<String>,
    junk_score: Option<f64>,
    reject_score: Option<f64>,
    spf_reject_fail: Option<bool>,
    iprev_reject: Option<bool>,
    dmarc_forwarders: Option<Vec<String>>,
    trusted_arc_sealers: Option<Vec<String>>,
    dkim_min_rsa_bits: Option<u32>,
    verify_timeout_secs: Option<u64>,
    spf_pass_score: Option<f64>,
    spf_fail_score: Option<f64>,
    spf_softfail_score: Option<f64>,
    spf_neutral_score: Option<f64>,
    spf_none_score: Option<f64>,
    spf_temperror_score: Option<f64>,
    spf_permerror_score: Option<f64>,
    dkim_pass_score: Option<f64>,
    dkim_fail_score: Option<f64>,
    dkim_none_score: Option<f64>,
    dmarc_pass_score: Option<f64>,
    dmarc_fail_score: Option<f64>,
    dmarc_quarantine_score: Option<f64>,
    iprev_pass_score: Option<f64>,
    iprev_fail_score: Option<f64>,
    iprev_temperror_score: Option<f64>,
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
    // --- DMARC aggregate reports ---
    dmarc_reports: Option<bool>,
    dmarc_report_org: Option<String>,
    dmarc_report_from: Option<String>,
    dmarc_report_keep_days: Option<u32>,
}

impl RawPolicy {
    pub(crate) fn validate(self) -> Result<Policy, ConfigError> {
        Ok(Policy {
            // --- message authentication and verdict ---
            auth: crate::policy_auth::RawAuthPolicy {
                enabled: self.enabled,
                authserv_id: self.authserv_id,
                junk_score: self.junk_score,
                reject_score: self.reject_score,
                spf_reject_fail: self.spf_reject_fail,
                iprev_reject: self.iprev_reject,
                dmarc_forwarders: self.dmarc_forwarders,
                trusted_arc_sealers: self.trusted_arc_sealers,
                dkim_min_rsa_bits: self.dkim_min_rsa_bits,
                verify_timeout_secs: self.verify_timeout_secs,
                scores: vec![
                    ("spf_pass_score", self.spf_pass_score),
                    ("spf_fail_score", self.spf_fail_score),
                    ("spf_softfail_score", self.spf_softfail_score),
                    ("spf_neutral_score", self.spf_neutral_score),
                    ("spf_none_score", self.spf_none_score),
                    ("spf_temperror_score", self.spf_temperror_score),
                    ("spf_permerror_score", self.spf_permerror_score),
                    ("dkim_pass_score", self.dkim_pass_score),
                    ("dkim_fail_score", self.dkim_fail_score),
                    ("dkim_none_score", self.dkim_none_score),
                    ("dmarc_pass_score", self.dmarc_pass_score),
                    ("dmarc_fail_score", self.dmarc_fail_score),
                    ("dmarc_quarantine_score", self.dmarc_quarantine_score),
                    ("iprev_pass_score", self.iprev_pass_score),
                    ("iprev_fail_score", self.iprev_fail_score),
                    ("iprev_temperror_score", self.iprev_temperror_score),
                ],
            }
            .validate()?,
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
            // --- DMARC aggregate reports ---
            reports: crate::dmarc_reports::RawDmarcReports {
                enabled: self.dmarc_reports,
                org: self.dmarc_report_org,
                from: self.dmarc_report_from,
                keep_days: self.dmarc_report_keep_days,
            }
            .validate()?,
        })
    }
}
