//! `[policy]`, DMARC aggregate report keys (RFC 7489 §7.2): whether the server sends daily
//! reports to the domains whose mail it evaluated, who it says it is, and how long the
//! evaluations are kept. The keys sit directly in `[policy]`; this module types and checks them.

use crate::ConfigError;
use serde::Serialize;

/// The DMARC aggregate reports this server sends.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DmarcReports {
    /// `dmarc_reports`: send a report a day to each domain whose DMARC record asks for one.
    #[serde(rename = "dmarc_reports")]
    pub enabled: bool,
    /// `dmarc_report_org`: the `org_name` of the reports (default: the host name).
    #[serde(rename = "dmarc_report_org")]
    pub org: Option<String>,
    /// `dmarc_report_from`: the `From:` address and the `email` of the reports (default:
    /// `postmaster@<hostname>`).
    #[serde(rename = "dmarc_report_from")]
    pub from: Option<String>,
    /// `dmarc_report_keep_days`: evaluations older than this are deleted.
    #[serde(rename = "dmarc_report_keep_days")]
    pub keep_days: u32,
}

impl Default for DmarcReports {
    fn default() -> DmarcReports {
        DmarcReports {
            enabled: true,
            org: None,
            from: None,
            keep_days: 30,
        }
    }
}

impl DmarcReports {
    /// The `org_name` reports carry.
    pub fn org_name(&self, hostname: &str) -> String {
        self.org.clone().unwrap_or_else(|| hostname.to_string())
    }

    /// The address reports come from.
    pub fn from_address(&self, hostname: &str) -> String {
        self.from
            .clone()
            .unwrap_or_else(|| format!("postmaster@{hostname}"))
    }
}

/// The keys as read, before checks.
pub(crate) struct RawDmarcReports {
    pub enabled: Option<bool>,
    pub org: Option<String>,
    pub from: Option<String>,
    pub keep_days: Option<u32>,
}

impl RawDmarcReports {
    pub(crate) fn validate(self) -> Result<DmarcReports, ConfigError> {
        let d = DmarcReports::default();
        let org = self.org.map(|o| o.trim().to_string());
        if let Some(o) = &org {
            if o.is_empty() || o.chars().any(char::is_control) {
                return Err(ConfigError::invalid(format!(
                    "policy.dmarc_report_org: {o:?} must be a non-empty name without control characters"
                )));
            }
        }
        let from = self.from.map(|f| f.trim().to_string());
        if let Some(f) = &from {
            let ok = f
                .rsplit_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && (d.contains('.') || d == "localhost"))
                && !f
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "<>\",;".contains(c));
            if !ok {
                return Err(ConfigError::invalid(format!(
                    "policy.dmarc_report_from: {f:?} is not a mail address (local@domain)"
                )));
            }
        }
        let keep_days = self.keep_days.unwrap_or(d.keep_days);
        if keep_days == 0 || keep_days > 3650 {
            return Err(ConfigError::invalid(format!(
                "policy.dmarc_report_keep_days: {keep_days} must be between 1 and 3650"
            )));
        }
        Ok(DmarcReports {
            enabled: self.enabled.unwrap_or(d.enabled),
            org,
            from,
            keep_days,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawDmarcReports {
        RawDmarcReports {
            enabled: None,
            org: None,
            from: None,
            keep_days: None,
        }
    }

    #[test]
    fn defaults_and_checks() {
        let d = raw().validate().unwrap();
        assert!(d.enabled);
        assert_eq!(d.keep_days, 30);
        assert_eq!(d.org_name("mx.example.org"), "mx.example.org");
        assert_eq!(
            d.from_address("mx.example.org"),
            "postmaster@mx.example.org"
        );
        let e = RawDmarcReports {
            from: Some("not an address".into()),
            ..raw()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("dmarc_report_from"), "{e}");
        let e = RawDmarcReports {
            keep_days: Some(0),
            ..raw()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("dmarc_report_keep_days"), "{e}");
    }
}
