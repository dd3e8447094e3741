//! `[queue]`, `[outbound]` and `[relay]`: retries and notifications, the SMTP client, the smarthost.

use crate::check::{domain_ok, domains, host_port, positive};
use crate::ConfigError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `[queue]`: retry schedule, notifications and queue runner concurrency.
#[derive(Debug, Clone, Serialize)]
pub struct Queue {
    /// Waits after the 1st, 2nd, ... failed attempt; the last one repeats.
    pub retry_delays_secs: Vec<u64>,
    /// A message still undelivered this long after arrival is bounced.
    pub give_up_after_secs: u64,
    /// A delay warning goes to the sender after this long (0: never).
    pub delay_warning_secs: u64,
    /// Messages processed at once.
    pub concurrency: usize,
    /// How often the spool directory is re-read for mail queued by other processes.
    pub rescan_interval_secs: u64,
}

/// `[outbound]`: the SMTP client.
#[derive(Debug, Clone, Serialize)]
pub struct Outbound {
    /// Name given in EHLO; defaults to `hostname`.
    pub helo_name: Option<String>,
    /// Connections open at once, in total (default 64).
    pub max_connections: usize,
    /// Connections open at once to one destination host (default 8).
    pub max_connections_per_host: usize,
    /// Messages sent over one connection before it is closed (default 100; 1: no reuse).
    pub max_messages_per_connection: u32,
    /// Seconds an idle connection is kept open for another message (default 5).
    pub idle_timeout_secs: u64,
    /// Seconds to wait for a TCP connection to be established (default 30).
    pub connect_timeout_secs: u64,
    /// Also try the IPv6 addresses of a destination (default true).
    pub ipv6: bool,
    /// Domains whose mail must go over TLS: never in plaintext.
    pub require_tls: Vec<String>,
    /// Verify the certificate where TLS is required.
    pub verify_required_tls: bool,
    /// Static routes: domain to `host:port`, before the relay and MX records.
    pub routes: BTreeMap<String, String>,
    /// DANE (RFC 7672) for MX delivery when `[dns] dnssec = "trust-ad"` (default true).
    pub dane: bool,
    /// MTA-STS (RFC 8461) for MX delivery (default true).
    pub mta_sts: bool,
    /// PEM certificates trusted besides the system's roots when verifying MTA-STS policy
    /// servers and MX hosts under an MTA-STS policy.
    pub extra_ca_file: Option<std::path::PathBuf>,
    // --- TLS-RPT daily reports (RFC 8460) ---
    /// Send the daily TLS reports to the destinations that ask for them (default true).
    pub tls_reports: bool,
    /// `organization-name` of the reports (default: the hostname).
    pub tls_report_org: Option<String>,
    /// `contact-info` and From: of the reports (default: `postmaster@<hostname>`).
    pub tls_report_from: Option<String>,
    // --- happy eyeballs (RFC 8305) ---
    /// Address families to connect over: `both` (default), `ipv4` or `ipv6`.
    pub ip_version: IpVersion,
    // --- per-destination limits ---
    /// Connections at once to one destination domain (default 20).
    pub max_connections_per_domain: usize,
    /// Messages per minute to one destination domain (default 0: no limit).
    pub domain_rate: u32,
    /// Per-domain rates (messages per minute) that replace `domain_rate`.
    pub domain_rates: BTreeMap<String, u32>,
}

/// `[outbound] ip_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IpVersion {
    /// IPv6 and IPv4, interleaved (RFC 8305).
    #[default]
    Both,
    /// IPv4 addresses only.
    Ipv4,
    /// IPv6 addresses only.
    Ipv6,
}

impl Outbound {
    /// The static routes as (domain, host, port); every target was checked at load.
    pub fn route_targets(&self) -> impl Iterator<Item = (&str, String, u16)> {
        self.routes.iter().filter_map(|(domain, target)| {
            let (host, port) = host_port(target.trim())?;
            Some((domain.as_str(), host, port))
        })
    }
}

/// How the connection to the smarthost is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RelayTls {
    /// STARTTLS (RFC 3207) required, typically port 587.
    StartTls,
    /// Implicit TLS (RFC 8314), typically port 465.
    Implicit,
    /// Plaintext (only sensible on loopback); AUTH is then refused.
    None,
}

/// `[relay]`: a smarthost for all (or some) outbound mail. The outbound client uses this type
/// as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relay {
    /// Host name or address literal, without the port.
    pub host: String,
    /// TCP port (the file writes `host:port`).
    pub port: u16,
    /// Only these destination domains are relayed; empty means all.
    pub domains: Vec<String>,
    /// SASL identity for AUTH at the relay.
    pub username: Option<String>,
    /// Never printed by `check-config`.
    pub password: Option<String>,
    /// Where the password was read from, if from a file (kept private: 0600).
    pub password_file: Option<std::path::PathBuf>,
    /// How the connection is protected.
    pub tls: RelayTls,
    /// Verify the relay's certificate against the system's roots.
    pub verify_certificate: bool,
}

impl Relay {
    /// `host:port` as written in the file (an IPv6 literal in brackets).
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl Serialize for Relay {
    /// The `[relay]` section as the file writes it, the password left out.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Relay", 6)?;
        s.serialize_field("host", &self.host_port())?;
        s.serialize_field("domains", &self.domains)?;
        if let Some(user) = &self.username {
            s.serialize_field("username", user)?;
        }
        if let Some(path) = &self.password_file {
            s.serialize_field("password_file", path)?;
        }
        s.serialize_field("tls", &self.tls)?;
        s.serialize_field("verify_certificate", &self.verify_certificate)?;
        s.end()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQueue {
    retry_delays_secs: Option<Vec<u64>>,
    give_up_after_secs: Option<u64>,
    delay_warning_secs: Option<u64>,
    concurrency: Option<usize>,
    rescan_interval_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOutbound {
    helo_name: Option<String>,
    max_connections: Option<usize>,
    max_connections_per_host: Option<usize>,
    max_messages_per_connection: Option<u32>,
    idle_timeout_secs: Option<u64>,
    connect_timeout_secs: Option<u64>,
    ipv6: Option<bool>,
    require_tls: Option<Vec<String>>,
    verify_required_tls: Option<bool>,
    routes: Option<BTreeMap<String, String>>,
    dane: Option<bool>,
    mta_sts: Option<bool>,
    extra_ca_file: Option<std::path::PathBuf>,
    // --- TLS-RPT daily reports ---
    tls_reports: Option<bool>,
    tls_report_org: Option<String>,
    tls_report_from: Option<String>,
    // --- happy eyeballs ---
    ip_version: Option<String>,
    // --- per-destination limits ---
    max_connections_per_domain: Option<usize>,
    domain_rate: Option<u32>,
    domain_rates: Option<BTreeMap<String, u32>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRelay {
    host: Option<String>,
    domains: Option<Vec<String>>,
    username: Option<String>,
    password: Option<String>,
    password_file: Option<std::path::PathBuf>,
    tls: Option<String>,
    verify_certificate: Option<bool>,
}

impl RawQueue {
    pub(crate) fn validate(self) -> Result<Queue, ConfigError> {
        let retry_delays_secs = match self.retry_delays_secs {
            None => vec![300, 600, 1200, 2400, 3600],
            Some(v) if v.is_empty() => {
                return Err(ConfigError::invalid(
                    "queue.retry_delays_secs: give at least one delay",
                ))
            }
            Some(v) if v.contains(&0) => {
                return Err(ConfigError::invalid(
                    "queue.retry_delays_secs: delays must be greater than zero",
                ))
            }
            Some(v) => v,
        };
        Ok(Queue {
            retry_delays_secs,
            give_up_after_secs: positive(
                "queue.give_up_after_secs",
                self.give_up_after_secs,
                5 * 24 * 3600,
            )?,
            delay_warning_secs: self.delay_warning_secs.unwrap_or(4 * 3600),
            concurrency: positive("queue.concurrency", self.concurrency, 64)?,
            rescan_interval_secs: positive(
                "queue.rescan_interval_secs",
                self.rescan_interval_secs,
                60,
            )?,
        })
    }
}

impl RawOutbound {
    pub(crate) fn validate(self) -> Result<Outbound, ConfigError> {
        let helo_name = match self.helo_name {
            Some(h) if !crate::check::hostname(h.trim()) => {
                return Err(ConfigError::invalid(format!(
                    "outbound.helo_name: {h:?} is not a valid host name"
                )))
            }
            other => other.map(|h| h.trim().to_ascii_lowercase()),
        };
        let max_connections = positive("outbound.max_connections", self.max_connections, 64)?;
        let max_connections_per_host = positive(
            "outbound.max_connections_per_host",
            self.max_connections_per_host,
            8,
        )?;
        if max_connections_per_host > max_connections {
            return Err(ConfigError::invalid(
                "outbound.max_connections_per_host: larger than outbound.max_connections",
            ));
        }
        let mut routes = BTreeMap::new();
        for (domain, target) in self.routes.unwrap_or_default() {
            let d = domain.trim().trim_end_matches('.').to_lowercase();
            if !domain_ok(&d) {
                return Err(ConfigError::invalid(format!(
                    "outbound.routes: {domain:?} is not a domain name"
                )));
            }
            if host_port(target.trim()).is_none() {
                return Err(ConfigError::invalid(format!(
                    "outbound.routes.\"{domain}\": {target:?} is not host:port (e.g. \"mx.example.org:25\" or \"[::1]:2525\")"
                )));
            }
            routes.insert(d, target.trim().to_string());
        }
        Ok(Outbound {
            helo_name,
            max_connections,
            max_connections_per_host,
            max_messages_per_connection: positive(
                "outbound.max_messages_per_connection",
                self.max_messages_per_connection,
                100,
            )?,
            idle_timeout_secs: self.idle_timeout_secs.unwrap_or(5),
            connect_timeout_secs: positive(
                "outbound.connect_timeout_secs",
                self.connect_timeout_secs,
                30,
            )?,
            ipv6: self.ipv6.unwrap_or(true),
            require_tls: domains("outbound.require_tls", self.require_tls)?,
            verify_required_tls: self.verify_required_tls.unwrap_or(true),
            routes,
            dane: self.dane.unwrap_or(true),
            mta_sts: self.mta_sts.unwrap_or(true),
            extra_ca_file: match self.extra_ca_file {
                Some(path) if !path.is_file() => {
                    return Err(ConfigError::invalid(format!(
                        "outbound.extra_ca_file: {} is not a readable file",
                        path.display()
                    )))
                }
                other => other,
            },
            // --- TLS-RPT daily reports ---
            tls_reports: self.tls_reports.unwrap_or(true),
            tls_report_org: self
                .tls_report_org
                .map(|o| o.trim().to_string())
                .filter(|o| !o.is_empty()),
            max_connections_per_domain: positive(
                "outbound.max_connections_per_domain",
                self.max_connections_per_domain,
                20,
            )?,
            domain_rate: self.domain_rate.unwrap_or(0),
            domain_rates: match self.domain_rates {
                Some(rates) => {
                    if let Some((d, _)) = rates.iter().find(|(_, r)| **r == 0) {
                        return Err(ConfigError::invalid(format!(
                            "outbound.domain_rates: {d:?} = 0 (leave the domain out for no limit)"
                        )));
                    }
                    rates
                        .into_iter()
                        .map(|(d, r)| (d.trim().trim_end_matches('.').to_ascii_lowercase(), r))
                        .collect()
                }
                None => BTreeMap::new(),
            },
            ip_version: match self.ip_version.as_deref().map(str::trim) {
                None | Some("both") => IpVersion::Both,
                Some("ipv4") => IpVersion::Ipv4,
                Some("ipv6") if self.ipv6 == Some(false) => {
                    return Err(ConfigError::invalid(
                        "outbound.ip_version = \"ipv6\" contradicts ipv6 = false".to_string(),
                    ))
                }
                Some("ipv6") => IpVersion::Ipv6,
                Some(other) => {
                    return Err(ConfigError::invalid(format!(
                        "outbound.ip_version: {other:?} is not \"both\", \"ipv4\" or \"ipv6\""
                    )))
                }
            },
            tls_report_from: match self.tls_report_from.map(|f| f.trim().to_string()) {
                Some(f)
                    if f.split_once('@').is_none_or(|(l, d)| {
                        l.is_empty() || d.is_empty() || f.contains(char::is_whitespace)
                    }) =>
                {
                    return Err(ConfigError::invalid(format!(
                        "outbound.tls_report_from: {f:?} is not a mail address"
                    )))
                }
                other => other,
            },
        })
    }
}

impl RawRelay {
    /// `None` when the section is absent or has no host.
    pub(crate) fn validate(self) -> Result<Option<Relay>, ConfigError> {
        let Some(host) = self.host.map(|h| h.trim().to_string()) else {
            if self.username.is_some()
                || self.password.is_some()
                || self.password_file.is_some()
                || self.domains.is_some()
            {
                return Err(ConfigError::invalid(
                    "relay.host: missing (the other relay keys need it)",
                ));
            }
            return Ok(None);
        };
        let Some((host_name, port)) = host_port(&host) else {
            return Err(ConfigError::invalid(format!(
                "relay.host: {host:?} is not host:port (e.g. \"smtp.example.net:587\")"
            )));
        };
        let tls = match self.tls.as_deref() {
            None | Some("starttls") => RelayTls::StartTls,
            Some("implicit") => RelayTls::Implicit,
            Some("none") => RelayTls::None,
            Some(other) => {
                return Err(ConfigError::invalid(format!(
                    "relay.tls: {other:?} must be \"starttls\", \"implicit\" or \"none\""
                )))
            }
        };
        let password = match (self.password, &self.password_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::invalid(
                    "relay.password_file: give relay.password or relay.password_file, not both",
                ))
            }
            (Some(p), None) => Some(p),
            (None, Some(path)) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| ConfigError::Unreadable {
                        key: "relay.password_file",
                        path: path.clone(),
                        source,
                    })?;
                // The file's one line; its line ending is not part of the password.
                let line = text.lines().next().unwrap_or("").to_string();
                if line.is_empty() {
                    return Err(ConfigError::invalid(format!(
                        "relay.password_file: {} is empty",
                        path.display()
                    )));
                }
                Some(line)
            }
            (None, None) => None,
        };
        if self.username.is_some() != password.is_some() {
            return Err(ConfigError::invalid(
                "relay.password: give both relay.username and relay.password (or \
                 relay.password_file), or neither",
            ));
        }
        Ok(Some(Relay {
            host: host_name,
            port,
            domains: domains("relay.domains", self.domains)?,
            username: self.username,
            password,
            password_file: self.password_file,
            tls,
            verify_certificate: self.verify_certificate.unwrap_or(true),
        }))
    }
}
