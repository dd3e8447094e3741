//! Where mail for a domain goes: a static route, the smarthost, or the domain's MX hosts
//! (RFC 5321 §5.1), with implicit MX and null MX (RFC 7505).

use crate::settings::{Relay, Settings};
use async_trait::async_trait;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
pub use postern_dns::secure::SecureAnswer;
use rand::seq::SliceRandom;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One MX record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mx {
    /// Lower is tried first (RFC 5321 §5.1).
    pub preference: u16,
    /// The mail exchanger's host name (`.` or empty for a null MX, RFC 7505).
    pub exchange: String,
}

/// Answers from DNS, with how long they may be cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MxAnswer {
    /// MX records.
    Records(Vec<Mx>, Duration),
    /// The name exists but has no MX: implicit MX (RFC 5321 §5.1).
    NoRecords,
    /// The domain does not exist.
    NxDomain,
}

/// DNS failure kinds that matter to delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsError {
    /// SERVFAIL, timeouts: try later.
    Temporary(String),
}

/// The DNS lookups routing needs; tests supply their own.
#[async_trait]
pub trait Resolver: Send + Sync {
    /// The MX records of `domain`, or why there are none.
    async fn mx(&self, domain: &str) -> Result<MxAnswer, DnsError>;
    /// A and AAAA addresses; an empty list when the name has none.
    async fn addresses(&self, host: &str) -> Result<(Vec<IpAddr>, Duration), DnsError>;
    /// The TXT records at `name`, each's strings joined (RFC 7208 §3.3 style); empty when
    /// there are none. The default knows none.
    async fn txt(&self, _name: &str) -> Result<Vec<String>, DnsError> {
        Ok(Vec::new())
    }
    /// A DNSSEC-aware lookup (RFC 7672 §2.1) for DANE. The default: every answer insecure.
    async fn secure(&self, _name: &str, _rtype: RecordType) -> Result<SecureAnswer, DnsError> {
        Ok(SecureAnswer {
            records: Vec::new(),
            nxdomain: false,
            secure: false,
            ttl: NEGATIVE_TTL,
        })
    }
}

/// hickory-resolver with a TTL cache of our own (answers shared by every delivery).
pub struct DnsResolver {
    inner: TokioResolver,
    dns: postern_config::Dns,
    secure_cache: Mutex<HashMap<(String, RecordType), (Instant, SecureAnswer)>>,
    mx_cache: Mutex<HashMap<String, (Instant, MxAnswer)>>,
    ip_cache: Mutex<HashMap<String, (Instant, Vec<IpAddr>)>>,
}

/// Negative answers are cached this long.
const NEGATIVE_TTL: Duration = Duration::from_secs(300);

impl DnsResolver {
    /// The system's resolver configuration (/etc/resolv.conf).
    pub fn from_system() -> Result<DnsResolver, crate::OutboundError> {
        DnsResolver::from_config(&postern_config::Dns::default())
    }

    /// The resolver of `[dns]`, the one every lookup of the server uses.
    pub fn from_config(dns: &postern_config::Dns) -> Result<DnsResolver, crate::OutboundError> {
        let inner = postern_dns::resolver(dns).map_err(crate::OutboundError::Dns)?;
        Ok(DnsResolver {
            inner,
            dns: dns.clone(),
            secure_cache: Mutex::new(HashMap::new()),
            mx_cache: Mutex::new(HashMap::new()),
            ip_cache: Mutex::new(HashMap::new()),
        })
    }
}

fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

#[async_trait]
impl Resolver for DnsResolver {
    async fn mx(&self, domain: &str) -> Result<MxAnswer, DnsError> {
        let key = domain.to_ascii_lowercase();
        if let Some((until, a)) = self
            .mx_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            if *until > Instant::now() {
                return Ok(a.clone());
            }
        }
        let (answer, until) = match self.inner.mx_lookup(fqdn(&key)).await {
            Ok(lookup) => {
                let records: Vec<Mx> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::MX(mx) => Some(Mx {
                            preference: mx.preference,
                            exchange: mx.exchange.to_utf8(),
                        }),
                        _ => None,
                    })
                    .collect();
                let until = lookup.valid_until();
                let ttl = until.saturating_duration_since(Instant::now());
                if records.is_empty() {
                    (MxAnswer::NoRecords, Instant::now() + NEGATIVE_TTL)
                } else {
                    (MxAnswer::Records(records, ttl), until)
                }
            }
            Err(e) if e.is_nx_domain() => (MxAnswer::NxDomain, Instant::now() + NEGATIVE_TTL),
            Err(e) if e.is_no_records_found() => {
                (MxAnswer::NoRecords, Instant::now() + NEGATIVE_TTL)
            }
            Err(e) => return Err(DnsError::Temporary(e.to_string())),
        };
        self.mx_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, (until, answer.clone()));
        Ok(answer)
    }

    async fn addresses(&self, host: &str) -> Result<(Vec<IpAddr>, Duration), DnsError> {
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            return Ok((vec![ip], Duration::MAX));
        }
        let key = host.to_ascii_lowercase();
        if let Some((until, a)) = self
            .ip_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            let now = Instant::now();
            if *until > now {
                return Ok((a.clone(), *until - now));
            }
        }
        let (ips, until) = match self.inner.lookup_ip(fqdn(&key)).await {
            Ok(l) => (l.iter().collect::<Vec<_>>(), l.valid_until()),
            Err(e) if e.is_nx_domain() || e.is_no_records_found() => {
                (Vec::new(), Instant::now() + NEGATIVE_TTL)
            }
            Err(e) => return Err(DnsError::Temporary(e.to_string())),
        };
        self.ip_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, (until, ips.clone()));
        Ok((ips, until.saturating_duration_since(Instant::now())))
    }

    async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        match self.inner.txt_lookup(fqdn(name)).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::TXT(txt) => Some(
                        txt.txt_data
                            .iter()
                            .map(|part| String::from_utf8_lossy(part).into_owned())
                            .collect::<String>(),
                    ),
                    _ => None,
                })
                .collect()),
            Err(e) if e.is_nx_domain() || e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(DnsError::Temporary(e.to_string())),
        }
    }

    async fn secure(&self, name: &str, rtype: RecordType) -> Result<SecureAnswer, DnsError> {
        if self.dns.dnssec == postern_config::Dnssec::Off {
            return Ok(SecureAnswer {
                records: Vec::new(),
                nxdomain: false,
                secure: false,
                ttl: NEGATIVE_TTL,
            });
        }
        let key = (name.to_ascii_lowercase(), rtype);
        if let Some((until, a)) = self
            .secure_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            if *until > Instant::now() {
                return Ok(a.clone());
            }
        }
        let answer = postern_dns::secure::query(&self.dns, &key.0, rtype)
            .await
            .map_err(|e| DnsError::Temporary(e.to_string()))?;
        let mut cache = self.secure_cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() > 10_000 {
            let now = Instant::now();
            cache.retain(|_, (until, _)| *until > now);
        }
        cache.insert(key, (Instant::now() + answer.ttl, answer.clone()));
        Ok(answer)
    }
}

/// MX records in preference order, random among equal preferences (RFC 5321 §5.1).
pub fn order_mx(mut records: Vec<Mx>, rng: &mut impl rand::Rng) -> Vec<Mx> {
    records.shuffle(rng);
    records.sort_by_key(|m| m.preference);
    records
}

/// Is this the null MX of RFC 7505 §3 (one record, preference 0, exchange ".")?
pub fn is_null_mx(records: &[Mx]) -> bool {
    records
        .iter()
        .any(|m| m.exchange.is_empty() || m.exchange == ".")
}

/// How to reach one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// Host name (for TLS SNI and logs).
    pub host: String,
    /// The address and port to connect to.
    pub addr: SocketAddr,
}

/// The plan for one destination domain.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Hosts to try in order.
    pub hops: Vec<Hop>,
    /// The smarthost settings when relaying.
    pub relay: Option<Relay>,
    /// STARTTLS must succeed (no plaintext fallback).
    pub require_tls: bool,
    /// The hosts are the domain's MX hosts (or its implicit MX): DANE and MTA-STS apply.
    pub via_mx: bool,
}

/// Why a domain cannot be routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// Retry later.
    Temporary(String),
    /// Never deliverable (null MX, no such domain).
    Permanent(String),
}

/// `host:port`, `[v6]:port` or `host` (port 25).
pub fn parse_host_port(s: &str, default_port: u16) -> Option<(String, u16)> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h.to_string(), p.parse().ok()?)),
        Some(_) => s
            .parse::<IpAddr>()
            .ok()
            .map(|_| (s.to_string(), default_port)),
        None if !s.is_empty() => Some((s.to_string(), default_port)),
        None => None,
    }
}

/// Works out where `domain`'s mail goes.
pub async fn plan(
    settings: &Settings,
    resolver: &dyn Resolver,
    domain: &str,
) -> Result<Plan, RouteError> {
    let domain = domain.to_ascii_lowercase();
    let require_tls = settings
        .require_tls
        .iter()
        .any(|d| d.eq_ignore_ascii_case(&domain));
    if let Some((host, port)) = settings.routes.get(&domain) {
        let hops = host_hops(resolver, host, *port, settings.families()).await?;
        return Ok(Plan {
            hops,
            relay: None,
            require_tls,
            via_mx: false,
        });
    }
    if let Some(relay) = &settings.relay {
        if relay.domains.is_empty()
            || relay
                .domains
                .iter()
                .any(|d| d.eq_ignore_ascii_case(&domain))
        {
            let hops = host_hops(resolver, &relay.host, relay.port, settings.families()).await?;
            return Ok(Plan {
                hops,
                relay: Some(relay.clone()),
                require_tls: require_tls || relay.tls != crate::settings::RelayTls::None,
                via_mx: false,
            });
        }
    }
    // A domain literal (RFC 5321 §4.1.3) goes straight to that address.
    if domain.starts_with('[') {
        let hops = host_hops(resolver, &domain, 25, settings.families()).await?;
        return Ok(Plan {
            hops,
            relay: None,
            require_tls,
            via_mx: false,
        });
    }
    let mx = resolver
        .mx(&domain)
        .await
        .map_err(|DnsError::Temporary(e)| {
            RouteError::Temporary(format!("4.4.3 DNS lookup of MX for {domain} failed: {e}"))
        })?;
    let hosts: Vec<String> = match mx {
        MxAnswer::NxDomain => {
            return Err(RouteError::Permanent(format!(
                "5.1.2 domain {domain} does not exist"
            )))
        }
        MxAnswer::Records(records, _) if is_null_mx(&records) => {
            return Err(RouteError::Permanent(format!(
                "5.1.10 domain {domain} accepts no mail (null MX, RFC 7505)"
            )))
        }
        MxAnswer::Records(records, _) => order_mx(records, &mut rand::thread_rng())
            .into_iter()
            .map(|m| m.exchange.trim_end_matches('.').to_string())
            .collect(),
        MxAnswer::NoRecords => vec![domain.clone()],
    };
    let mut hops = Vec::new();
    let mut temporary = None;
    for host in &hosts {
        match host_hops(resolver, host, 25, settings.families()).await {
            Ok(h) => hops.extend(h),
            Err(RouteError::Temporary(e)) => temporary = Some(e),
            Err(RouteError::Permanent(_)) => {}
        }
    }
    if hops.is_empty() {
        return Err(match temporary {
            Some(e) => RouteError::Temporary(e),
            None if hosts.len() == 1 && hosts[0] == domain => {
                RouteError::Permanent(format!("5.1.2 domain {domain} has no MX and no address"))
            }
            None => RouteError::Temporary(format!("4.4.4 no MX host of {domain} has an address")),
        });
    }
    Ok(Plan {
        hops,
        relay: None,
        require_tls,
        via_mx: true,
    })
}

async fn host_hops(
    resolver: &dyn Resolver,
    host: &str,
    port: u16,
    (ipv4, ipv6): (bool, bool),
) -> Result<Vec<Hop>, RouteError> {
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    let literal = literal.strip_prefix("IPv6:").unwrap_or(literal);
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return Ok(vec![Hop {
            host: literal.to_string(),
            addr: SocketAddr::new(ip, port),
        }]);
    }
    let (mut ips, _) = resolver
        .addresses(host)
        .await
        .map_err(|DnsError::Temporary(e)| {
            RouteError::Temporary(format!("4.4.3 DNS lookup of {host} failed: {e}"))
        })?;
    ips.retain(|ip| if ip.is_ipv4() { ipv4 } else { ipv6 });
    if ips.is_empty() {
        return Err(RouteError::Permanent(format!(
            "5.4.4 host {host} has no address"
        )));
    }
    // RFC 8305 §4: IPv6 and IPv4 interleaved, IPv6 first.
    let ips = crate::eyeballs::interleave(ips);
    Ok(ips
        .into_iter()
        .map(|ip| Hop {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            addr: SocketAddr::new(ip, port),
        })
        .collect())
}

/// A resolver for when the system has none configured: every lookup fails temporarily, so only
/// static routes and the relay work.
pub struct NoResolver(pub String);

#[async_trait]
impl Resolver for NoResolver {
    async fn mx(&self, _domain: &str) -> Result<MxAnswer, DnsError> {
        Err(DnsError::Temporary(self.0.clone()))
    }
    async fn addresses(&self, _host: &str) -> Result<(Vec<IpAddr>, Duration), DnsError> {
        Err(DnsError::Temporary(self.0.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    struct Fake;

    #[async_trait]
    impl Resolver for Fake {
        async fn mx(&self, domain: &str) -> Result<MxAnswer, DnsError> {
            let mx = |p, e: &str| Mx {
                preference: p,
                exchange: e.into(),
            };
            Ok(match domain {
                "multi.test" => MxAnswer::Records(
                    vec![
                        mx(20, "c.multi.test."),
                        mx(10, "a.multi.test."),
                        mx(10, "b.multi.test."),
                    ],
                    Duration::from_secs(60),
                ),
                "null.test" => MxAnswer::Records(vec![mx(0, ".")], Duration::from_secs(60)),
                "nomx.test" => MxAnswer::NoRecords,
                "broken.test" => return Err(DnsError::Temporary("SERVFAIL".into())),
                _ => MxAnswer::NxDomain,
            })
        }
        async fn addresses(&self, host: &str) -> Result<(Vec<IpAddr>, Duration), DnsError> {
            let ips = match host {
                "a.multi.test" => vec!["127.0.0.1".parse().unwrap()],
                "b.multi.test" => vec!["127.0.0.2".parse().unwrap()],
                "c.multi.test" => vec!["127.0.0.3".parse().unwrap(), "::1".parse().unwrap()],
                "nomx.test" => vec!["127.0.0.4".parse().unwrap()],
                _ => vec![],
            };
            Ok((ips, Duration::from_secs(60)))
        }
    }

    #[test]
    fn mx_order_is_by_preference_random_among_equals() {
        let recs = vec![
            Mx {
                preference: 30,
                exchange: "z".into(),
            },
            Mx {
                preference: 10,
                exchange: "a".into(),
            },
            Mx {
                preference: 10,
                exchange: "b".into(),
            },
            Mx {
                preference: 20,
                exchange: "m".into(),
            },
        ];
        let mut firsts = std::collections::HashSet::new();
        for seed in 0..64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let o = order_mx(recs.clone(), &mut rng);
            let prefs: Vec<u16> = o.iter().map(|m| m.preference).collect();
            assert_eq!(prefs, [10, 10, 20, 30]);
            assert_eq!(o[2].exchange, "m");
            firsts.insert(o[0].exchange.clone());
        }
        assert_eq!(
            firsts.len(),
            2,
            "both equal-preference hosts come first sometimes"
        );
    }

    #[tokio::test]
    async fn plans_mx_implicit_null_and_static_routes() {
        let mut s = Settings::default();
        let p = plan(&s, &Fake, "multi.test").await.unwrap();
        let last: Vec<String> = p.hops.iter().map(|h| h.addr.to_string()).collect();
        assert_eq!(last.len(), 4);
        assert_eq!(
            &last[2..],
            ["[::1]:25", "127.0.0.3:25"],
            "lowest preference last, IPv6 first"
        );
        let p = plan(&s, &Fake, "nomx.test").await.unwrap();
        assert_eq!(p.hops[0].addr.to_string(), "127.0.0.4:25");
        assert!(
            matches!(plan(&s, &Fake, "null.test").await, Err(RouteError::Permanent(e)) if e.starts_with("5.1.10"))
        );
        assert!(matches!(
            plan(&s, &Fake, "gone.test").await,
            Err(RouteError::Permanent(_))
        ));
        assert!(matches!(
            plan(&s, &Fake, "broken.test").await,
            Err(RouteError::Temporary(_))
        ));
        s.routes
            .insert("null.test".into(), ("127.0.0.9".into(), 2525));
        let p = plan(&s, &Fake, "NULL.test").await.unwrap();
        assert_eq!(p.hops[0].addr.to_string(), "127.0.0.9:2525");
    }

    #[test]
    fn host_port_syntax() {
        assert_eq!(
            parse_host_port("mx.test:2525", 25),
            Some(("mx.test".into(), 2525))
        );
        assert_eq!(parse_host_port("mx.test", 25), Some(("mx.test".into(), 25)));
        assert_eq!(parse_host_port("[::1]:26", 25), Some(("::1".into(), 26)));
        assert_eq!(parse_host_port("::1", 25), Some(("::1".into(), 25)));
        assert_eq!(parse_host_port("mx:x", 25), None);
    }
}
