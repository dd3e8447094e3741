//! Who is on the other end, and whether a password may cross the connection.

use std::net::IpAddr;

/// Whether `ip` is a loopback address (127.0.0.0/8, `::1`, or `::ffff:127.x.y.z`, the form an
/// IPv4 client takes on a dual-stack listener).
pub fn is_loopback(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// The one "may a password be sent here" rule of every protocol (RFC 3207 §6, RFC 9051 §11.1,
/// RFC 2595 §2.2): over TLS, from a trusted loopback peer, or where the admin allows cleartext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleartextPolicy {
    /// Treat loopback peers (local programs) as a protected channel.
    pub trust_loopback: bool,
    /// `[auth] allow_plaintext`: passwords over unencrypted connections from anywhere.
    pub allow_plaintext: bool,
}

impl CleartextPolicy {
    /// Whether a peer at `peer` counts as protected without TLS by being on loopback.
    pub fn trusts_peer(&self, peer: &IpAddr) -> bool {
        self.trust_loopback && is_loopback(peer)
    }

    /// Whether a password may be sent by `peer` on a connection that is (or is not) TLS.
    pub fn allows(&self, tls: bool, peer: &IpAddr) -> bool {
        tls || self.trusts_peer(peer) || self.allow_plaintext
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn loopback_in_all_its_forms() {
        assert!(is_loopback(&ip("127.0.0.1")));
        assert!(is_loopback(&ip("127.3.2.1")));
        assert!(is_loopback(&ip("::1")));
        assert!(is_loopback(&ip("::ffff:127.0.0.1")));
        assert!(!is_loopback(&ip("192.0.2.1")));
        assert!(!is_loopback(&ip("::ffff:192.0.2.1")));
        assert!(!is_loopback(&ip("2001:db8::1")));
    }

    #[test]
    fn passwords_over_tls_trusted_loopback_or_by_admin_choice() {
        let strict = CleartextPolicy {
            trust_loopback: false,
            allow_plaintext: false,
        };
        let local = CleartextPolicy {
            trust_loopback: true,
            ..strict
        };
        let open = CleartextPolicy {
            allow_plaintext: true,
            ..strict
        };
        let lo = ip("127.0.0.1");
        let remote = ip("192.0.2.1");
        assert!(strict.allows(true, &remote));
        assert!(!strict.allows(false, &lo));
        assert!(local.allows(false, &lo));
        assert!(!local.allows(false, &remote));
        assert!(open.allows(false, &remote));
    }
}
