//! `[dns]`: the one resolver every lookup goes through (MX routing, and the inbound checks:
//! SPF, DKIM keys, DMARC, DNSBLs). Default: the system's (`/etc/resolv.conf`); tests and
//! operators with a local resolver name theirs.

use crate::ConfigError;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// `[dns]`: which name servers to ask, and how patiently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dns {
    /// Name servers as `IP:PORT` (`[::1]:53` for IPv6), asked in order; empty: the system's
    /// (`/etc/resolv.conf`).
    pub nameservers: Vec<SocketAddr>,
    /// Seconds to wait for one answer.
    pub timeout_secs: u64,
    /// Tries per query and server.
    pub attempts: usize,
    /// Answers kept in the resolver's cache (by TTL).
    pub cache_size: u64,
    /// Whether answers may be taken as DNSSEC-validated (for DANE, RFC 7672).
    pub dnssec: Dnssec,
    /// DNS queries the inbound checks may send for one message (SPF, DKIM and ARC keys, DMARC,
    /// and the connection's iprev and DNS lists); past it their results are `temperror`.
    pub max_lookups_per_message: u32,
}

/// `[dns] dnssec`: whose word an answer's DNSSEC status is taken on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dnssec {
    /// No answer counts as validated: DANE is never used (the default).
    #[default]
    Off,
    /// Trust the AD bit (RFC 4035 §3.2.3, RFC 6840 §5.7) of the configured name servers, as
    /// Postfix's `smtp_dns_support_level = dnssec`: they must be a validating resolver on this
    /// machine (or reached over a trusted path), since the bit itself is not protected.
    TrustAd,
}

impl Default for Dns {
    fn default() -> Dns {
        Dns {
            nameservers: Vec::new(),
            timeout_secs: 5,
            attempts: 2,
            cache_size: 8192,
            dnssec: Dnssec::Off,
            max_lookups_per_message: 50,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDns {
    nameservers: Option<Vec<String>>,
    timeout_secs: Option<u64>,
    attempts: Option<usize>,
    cache_size: Option<u64>,
    dnssec: Option<String>,
    max_lookups_per_message: Option<u32>,
}

impl RawDns {
    pub(crate) fn validate(self) -> Result<Dns, ConfigError> {
        let d = Dns::default();
        let mut nameservers = Vec::new();
        for text in self.nameservers.unwrap_or_default() {
            let addr = text
                .parse::<SocketAddr>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|_| {
                    ConfigError::invalid(format!(
                        "dns.nameservers: {text:?} is not IP:PORT (e.g. \"127.0.0.1:53\" or \"[::1]:53\")"
                    ))
                })?;
            nameservers.push(addr);
        }
        let timeout_secs = self.timeout_secs.unwrap_or(d.timeout_secs);
        if timeout_secs == 0 || timeout_secs > 60 {
            return Err(ConfigError::invalid(
                "dns.timeout_secs must be between 1 and 60",
            ));
        }
        let attempts = self.attempts.unwrap_or(d.attempts);
        if attempts == 0 || attempts > 10 {
            return Err(ConfigError::invalid(
                "dns.attempts must be between 1 and 10",
            ));
        }
        let dnssec = match self.dnssec.as_deref().map(str::trim) {
            None | Some("off") => Dnssec::Off,
            Some("trust-ad") => Dnssec::TrustAd,
            Some(other) => {
                return Err(ConfigError::invalid(format!(
                    "dns.dnssec: {other:?} is neither \"off\" nor \"trust-ad\""
                )))
            }
        };
        let max_lookups_per_message = self
            .max_lookups_per_message
            .unwrap_or(d.max_lookups_per_message);
        if !(1..=1000).contains(&max_lookups_per_message) {
            return Err(ConfigError::invalid(
                "dns.max_lookups_per_message must be between 1 and 1000",
            ));
        }
        Ok(Dns {
            nameservers,
            timeout_secs,
            attempts,
            cache_size: self.cache_size.unwrap_or(d.cache_size),
            dnssec,
            max_lookups_per_message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_budget_is_bounded() {
        assert_eq!(
            RawDns::default()
                .validate()
                .unwrap()
                .max_lookups_per_message,
            50
        );
        for bad in [0, 1001] {
            let raw = RawDns {
                max_lookups_per_message: Some(bad),
                ..RawDns::default()
            };
            assert!(raw
                .validate()
                .unwrap_err()
                .to_string()
                .contains("dns.max_lookups_per_message"));
        }
    }
}
