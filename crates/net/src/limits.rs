//! Connection limits: in total and per client address.

use postern_config::Service;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The server holds `limits.max_connections` already.
    TooManyConnections,
    /// This client address holds `limits.max_connections_per_ip` already.
    TooManyFromAddress,
    /// The server is shutting down.
    ShuttingDown,
}

impl Refusal {
    /// The reason in words, the same for every protocol; each wraps it in its own syntax
    /// (SMTP `421 4.7.0`, IMAP `* BYE [UNAVAILABLE]`, POP3 `-ERR [SYS/TEMP]`).
    pub fn text(self) -> &'static str {
        match self {
            Refusal::TooManyConnections => "too many connections, try again later",
            Refusal::TooManyFromAddress => {
                "too many connections from your address, try again later"
            }
            Refusal::ShuttingDown => "shutting down, try again later",
        }
    }

    /// The whole "come back later" line of `service`'s protocol, for a connection turned away
    /// before its greeting: SMTP a 421 greeting (RFC 5321 §3.8, RFC 3463 4.7.0 policy), IMAP a
    /// BYE greeting (RFC 9051 §7.1.5), POP3 `-ERR [SYS/TEMP]` (RFC 3206 §4).
    pub fn line(self, service: Service, hostname: &str) -> Vec<u8> {
        let text = self.text();
        match service {
            Service::Smtp | Service::Submission | Service::Submissions | Service::Lmtp => {
                format!("421 4.7.0 {hostname} {text}\r\n").into_bytes()
            }
            Service::Imap | Service::Imaps => {
                format!("* BYE [UNAVAILABLE] {text}\r\n").into_bytes()
            }
            Service::Pop3 | Service::Pop3s => format!("-ERR [SYS/TEMP] {text}\r\n").into_bytes(),
            // RFC 5804 §1.3 TRYLATER, §2.1.1 BYE.
            Service::ManageSieve => format!("BYE (TRYLATER) \"{text}\"\r\n").into_bytes(),
            // RFC 9110 §15.6.4: 503 with Retry-After, then close.
            Service::Https | Service::Http => crate::unavailable::http_503(text),
        }
    }
}

/// Counts open connections; cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct ConnectionLimiter {
    inner: Arc<Mutex<Counts>>,
    max_total: usize,
    max_per_ip: usize,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Holds one connection's place; dropping it frees the place.
#[derive(Debug)]
pub struct ConnectionGuard {
    limiter: ConnectionLimiter,
    key: IpAddr,
}

/// IPv6 clients are grouped by /64, the unit one subscriber usually holds.
fn group(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

impl ConnectionLimiter {
    /// A limiter allowing `max_total` open connections in all, and `max_per_ip` from one client
    /// address (IPv6 addresses counted per /64).
    pub fn new(max_total: usize, max_per_ip: usize) -> ConnectionLimiter {
        ConnectionLimiter {
            inner: Arc::default(),
            max_total,
            max_per_ip,
        }
    }

    /// Takes a place for a connection from `ip`, or says why not.
    pub fn try_acquire(&self, ip: IpAddr) -> Result<ConnectionGuard, Refusal> {
        let key = group(ip);
        let mut counts = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if counts.total >= self.max_total {
            return Err(Refusal::TooManyConnections);
        }
        let n = counts.per_ip.entry(key).or_insert(0);
        if *n >= self.max_per_ip {
            return Err(Refusal::TooManyFromAddress);
        }
        *n += 1;
        counts.total += 1;
        Ok(ConnectionGuard {
            limiter: self.clone(),
            key,
        })
    }

    /// Open connections in total.
    pub fn open(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut counts = self.limiter.inner.lock().unwrap_or_else(|p| p.into_inner());
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_ip.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_address_and_in_total() {
        let l = ConnectionLimiter::new(3, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let g1 = l.try_acquire(a).unwrap();
        let _g2 = l.try_acquire(a).unwrap();
        assert_eq!(l.try_acquire(a).unwrap_err(), Refusal::TooManyFromAddress);
        let _g3 = l.try_acquire(b).unwrap();
        assert_eq!(l.try_acquire(b).unwrap_err(), Refusal::TooManyConnections);
        drop(g1);
        assert_eq!(l.open(), 2);
        let _g4 = l.try_acquire(a).unwrap();
    }

    #[test]
    fn http_refusal_is_a_whole_503_response() {
        for service in [Service::Https, Service::Http] {
            let line = Refusal::TooManyFromAddress.line(service, "mx.test");
            let text = String::from_utf8(line).unwrap();
            assert!(
                text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
                "{text}"
            );
            assert!(text.contains("\r\nRetry-After: 60\r\n"), "{text}");
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(
                head.contains(&format!("\r\nContent-Length: {}\r\n", body.len())),
                "{text}"
            );
            assert_eq!(body, format!("{}\n", Refusal::TooManyFromAddress.text()));
        }
    }

    #[test]
    fn ipv6_grouped_by_64_and_mapped_v4_as_v4() {
        let l = ConnectionLimiter::new(10, 1);
        let _g = l.try_acquire("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(l
            .try_acquire("2001:db8:1:2::ffff".parse().unwrap())
            .is_err());
        assert!(l.try_acquire("2001:db8:1:3::1".parse().unwrap()).is_ok());
        let _v4 = l.try_acquire("192.0.2.9".parse().unwrap()).unwrap();
        assert!(l.try_acquire("::ffff:192.0.2.9".parse().unwrap()).is_err());
    }
}
