//! The resolver of `[dns]`: MX routing (outbound) and the inbound checks (SPF, DKIM keys,
//! DMARC, DNSBLs) all ask the same name servers with the same time-outs, so a test or an
//! operator points every lookup at one server with one setting.
//!
//! Empty `nameservers` means the system's configuration (`/etc/resolv.conf`); otherwise the
//! listed servers, asked over UDP with TCP for truncated answers (RFC 7766), in order.

pub mod secure;

use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::TokioResolver;
use postern_config::Dns;
use std::time::Duration;

/// The resolver configuration and options of `[dns]`, for code that builds its own resolver
/// from them (the message-authentication crate does).
pub fn resolver_parts(dns: &Dns) -> Result<(ResolverConfig, ResolverOpts), String> {
    let (config, mut opts) = if dns.nameservers.is_empty() {
        hickory_resolver::system_conf::read_system_conf()
            .map_err(|e| format!("cannot read the system's DNS configuration: {e}"))?
    } else {
        let servers = dns
            .nameservers
            .iter()
            .map(|addr| {
                let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                for connection in &mut server.connections {
                    connection.port = addr.port();
                }
                server
            })
            .collect();
        (
            ResolverConfig::from_name_servers(servers),
            ResolverOpts::default(),
        )
    };
    opts.timeout = Duration::from_secs(dns.timeout_secs);
    opts.attempts = dns.attempts;
    opts.cache_size = dns.cache_size;
    Ok((config, opts))
}

/// A resolver for `[dns]` (its own TTL cache included).
pub fn resolver(dns: &Dns) -> Result<TokioResolver, String> {
    let (config, opts) = resolver_parts(dns)?;
    TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(opts)
        .build()
        .map_err(|e| format!("cannot set up the DNS resolver: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_servers_keep_their_ports() {
        let dns = Dns {
            nameservers: vec![
                "127.0.0.1:5353".parse().unwrap(),
                "[::1]:53".parse().unwrap(),
            ],
            timeout_secs: 3,
            attempts: 1,
            cache_size: 10,
            dnssec: postern_config::Dnssec::Off,
            max_lookups_per_message: 50,
        };
        let (config, opts) = resolver_parts(&dns).unwrap();
        let servers = config.name_servers();
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0].ip.to_string(), "127.0.0.1");
        assert!(servers[0].connections.iter().all(|c| c.port == 5353));
        assert!(servers[1].connections.iter().all(|c| c.port == 53));
        assert_eq!((opts.timeout, opts.attempts), (Duration::from_secs(3), 1));
    }
}
