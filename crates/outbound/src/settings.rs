//! What the outbound client is told by the configuration.

use crate::client::Timeouts;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

/// The smarthost: the configuration's own type, so that a new `[relay]` key needs no copy here.
pub use postern_config::{Relay, RelayTls};

/// The outbound client's settings (`[outbound]` and `[relay]` of the configuration).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The name given in EHLO.
    pub helo_name: String,
    /// Static routes: lower-case domain to (host, port); they win over the relay and MX.
    pub routes: HashMap<String, (String, u16)>,
    /// The smarthost for domains without a static route (all of them, or only those in its
    /// `domains`); `None`: deliver to the MX hosts.
    pub relay: Option<Relay>,
    /// Domains whose mail must go over TLS (no plaintext fallback).
    pub require_tls: Vec<String>,
    /// Verify certificates of hosts where TLS is required.
    pub verify_required_tls: bool,
    /// Connections open at once, in total.
    pub max_connections: usize,
    /// Connections open at once to one destination host.
    pub max_connections_per_host: usize,
    /// Transactions on one connection before it is closed (1 = no reuse).
    pub max_messages_per_connection: u32,
    /// How long an idle connection waits for another message.
    pub idle_timeout: Duration,
    /// Try IPv6 addresses as well as IPv4.
    pub ipv6: bool,
    /// Try IPv4 addresses (`[outbound] ip_version = "ipv6"` turns this off).
    pub ipv4: bool,
    /// Race the addresses of one host (RFC 8305); the delay before the next attempt.
    pub happy_eyeballs: Option<Duration>,
    /// Connections at once to one destination domain.
    pub max_connections_per_domain: usize,
    /// Messages per minute to one destination domain (0: no limit).
    pub domain_rate: u32,
    /// Per-domain rates replacing `domain_rate`.
    pub domain_rates: HashMap<String, u32>,
    /// SMTP client timeouts (RFC 5321 §4.5.3.2).
    pub timeouts: Timeouts,
    /// DANE (RFC 7672) for MX delivery; it acts only where the resolver vouches for answers
    /// (`[dns] dnssec = "trust-ad"`).
    pub dane: bool,
    /// MTA-STS (RFC 8461) for MX delivery.
    pub mta_sts: bool,
    /// Where MTA-STS policies are cached (`data_dir/mta-sts`); `None`: in memory only.
    pub sts_cache_dir: Option<PathBuf>,
    /// PEM CA certificates trusted besides the system's for MTA-STS.
    pub extra_ca_file: Option<PathBuf>,
}

impl Settings {
    /// The settings `[outbound]` and `[relay]` give; the EHLO name defaults to `hostname`.
    pub fn from_config(config: &postern_config::Config) -> Settings {
        let o = &config.outbound;
        Settings {
            helo_name: o
                .helo_name
                .clone()
                .unwrap_or_else(|| config.hostname.clone()),
            routes: o
                .route_targets()
                .map(|(domain, host, port)| (domain.to_string(), (host, port)))
                .collect(),
            relay: config.relay.clone(),
            require_tls: o.require_tls.clone(),
            verify_required_tls: o.verify_required_tls,
            max_connections: o.max_connections,
            max_connections_per_host: o.max_connections_per_host,
            max_messages_per_connection: o.max_messages_per_connection,
            idle_timeout: Duration::from_secs(o.idle_timeout_secs),
            ipv6: o.ipv6 && o.ip_version != postern_config::IpVersion::Ipv4,
            ipv4: o.ip_version != postern_config::IpVersion::Ipv6,
            happy_eyeballs: Some(crate::eyeballs::ATTEMPT_DELAY),
            max_connections_per_domain: o.max_connections_per_domain,
            domain_rate: o.domain_rate,
            domain_rates: o
                .domain_rates
                .iter()
                .map(|(d, r)| (d.clone(), *r))
                .collect(),
            timeouts: Timeouts {
                connect: Duration::from_secs(o.connect_timeout_secs),
                ..Timeouts::default()
            },
            dane: o.dane,
            mta_sts: o.mta_sts,
            sts_cache_dir: Some(config.data_dir.join("mta-sts")),
            extra_ca_file: o.extra_ca_file.clone(),
        }
    }
}

impl Settings {
    /// (IPv4, IPv6): the address families used.
    pub fn families(&self) -> (bool, bool) {
        (self.ipv4, self.ipv6)
    }
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            helo_name: "localhost".into(),
            routes: HashMap::new(),
            relay: None,
            require_tls: Vec::new(),
            verify_required_tls: true,
            max_connections: 64,
            max_connections_per_host: 8,
            max_messages_per_connection: 100,
            idle_timeout: Duration::from_secs(5),
            ipv6: true,
            ipv4: true,
            happy_eyeballs: Some(crate::eyeballs::ATTEMPT_DELAY),
            max_connections_per_domain: 20,
            domain_rate: 0,
            domain_rates: HashMap::new(),
            timeouts: Timeouts::default(),
            dane: true,
            mta_sts: true,
            sts_cache_dir: None,
            extra_ca_file: None,
        }
    }
}
