//! ARC sealing of forwarded mail (RFC 8617 §5.1), on the way out through the outbound client.
//!
//! Every message leaving for a remote domain passes the [`crate::router::DkimSigning`] signer;
//! the ones postern received from outside and checked carry its `Authentication-Results`
//! (authserv-id = `[policy] authserv_id` or the host name) and are therefore forwards: an alias
//! to a remote address (same queue entry, recipients `expanded_from` the alias) or a Sieve
//! `redirect` (a new entry whose message starts with the redirecting mailbox's `Delivered-To:`).
//! Mail of our own users (submission) never carries that field: the MX removes it.
//!
//! The seal is computed at each delivery attempt from the spooled message and the results in
//! it, so nothing is added to the queue entry and no DNS is asked at send time.

use postern_config::Config;
use postern_directory::SqliteDirectory;
use postern_policy::arc_seal::NotSealed;
use postern_policy::DkimKeys;
use postern_spool::{QueueEntry, RcptStatus};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// What sealing needs beyond the keys: our authserv-id, the host name, the local domains.
pub(crate) struct ArcSealing {
    authserv_id: String,
    hostname: String,
    directory: Arc<SqliteDirectory>,
    /// Domains already logged as having no key (logged once each).
    keyless: Mutex<HashSet<String>>,
}

/// The domain of an address, lower-case.
fn domain_of(address: &str) -> Option<String> {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('>').trim().to_ascii_lowercase())
        .filter(|d| !d.is_empty())
}

/// The header fields of a message, unfolded: (name, value).
fn fields(message: &[u8]) -> Vec<(String, String)> {
    let end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(message.len());
    let mut out: Vec<(String, String)> = Vec::new();
    for line in String::from_utf8_lossy(&message[..end]).split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = out.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            out.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    out
}

/// The first `Delivered-To:` of the header section (what a Sieve redirect puts on top).
fn first_delivered_to(message: &[u8]) -> Option<String> {
    fields(message)
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("Delivered-To"))
        .map(|(_, value)| value.trim_start_matches('<').to_string())
}

/// Whether the message's topmost field, past the ones delivery adds, is an
/// `Authentication-Results` of `authserv_id` (RFC 8601 §2.2): written by our MX at reception
/// (see [`postern_policy::arc_seal::ABOVE_RESULTS`]).
fn checked_by(message: &[u8], authserv_id: &str) -> bool {
    fields(message)
        .iter()
        .find(|(name, _)| {
            !postern_policy::arc_seal::ABOVE_RESULTS
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n))
        })
        .is_some_and(|(name, value)| {
            name.eq_ignore_ascii_case("Authentication-Results")
                && value
                    .split(';')
                    .next()
                    .and_then(|id| id.split_whitespace().next())
                    .is_some_and(|id| id.eq_ignore_ascii_case(authserv_id))
        })
}

impl ArcSealing {
    pub(crate) fn new(config: &Config, directory: Arc<SqliteDirectory>) -> ArcSealing {
        ArcSealing {
            authserv_id: config
                .policy
                .auth
                .authserv_id
                .clone()
                .unwrap_or_else(|| config.hostname.to_ascii_lowercase()),
            hostname: config.hostname.to_ascii_lowercase(),
            directory,
            keyless: Mutex::new(HashSet::new()),
        }
    }

    /// The forwarding domain (RFC 8617 §5.1: the ADMD that forwards): the local domain of the
    /// alias the pending remote recipients were expanded from, else of the mailbox whose Sieve
    /// redirected the message; when that domain has no key, the host name's domain.
    fn domain(&self, keys: &DkimKeys, entry: &QueueEntry, message: &[u8]) -> Option<String> {
        let local = |d: &String| self.directory.is_local_domain(d).unwrap_or(false);
        let forwarder = entry
            .recipients
            .iter()
            .filter(|r| matches!(r.status, RcptStatus::Pending))
            .find_map(|r| r.expanded_from.as_deref().and_then(domain_of))
            .or_else(|| first_delivered_to(message).as_deref().and_then(domain_of))
            .filter(local);
        let host_parent = self
            .hostname
            .split_once('.')
            .map(|(_, p)| p.to_string())
            .filter(|p| p.contains('.'));
        let candidates = forwarder
            .iter()
            .cloned()
            .chain(std::iter::once(self.hostname.clone()))
            .chain(host_parent);
        let mut tried = Vec::new();
        for d in candidates {
            if keys.has(&d) {
                return Some(d);
            }
            tried.push(d);
        }
        let name = tried.join(", ");
        let mut logged = self.keyless.lock().unwrap_or_else(|e| e.into_inner());
        if logged.insert(name.clone()) {
            tracing::warn!(
                queue_id = %entry.id,
                "forwarded mail leaves without an ARC seal: no DKIM key for {name} (postern dkim generate)"
            );
        }
        None
    }

    /// The ARC set (header lines) for `message` (already DKIM-signed if it is to be), or
    /// `None` when it is not a forward of received mail or cannot be sealed (logged).
    pub(crate) fn seal(
        &self,
        keys: &DkimKeys,
        entry: &QueueEntry,
        message: &[u8],
    ) -> Option<Vec<u8>> {
        if entry.envelope.authenticated.is_some() {
            // Submitted by one of our users: originated here, DKIM's business.
            return None;
        }
        if !checked_by(message, &self.authserv_id) {
            // Not received from outside through our checks: nothing of ours to vouch for.
            return None;
        }
        let domain = self.domain(keys, entry, message)?;
        match keys.arc_seal(&domain, &self.authserv_id, message) {
            Ok(set) => {
                tracing::info!(queue_id = %entry.id, domain = %domain, "ARC-sealed the forwarded message");
                Some(set)
            }
            Err(NotSealed::NoResults(_)) => None,
            Err(e @ NotSealed::Signing(_)) => {
                tracing::warn!(queue_id = %entry.id, "forwarded without an ARC seal: {e}");
                None
            }
            Err(e) => {
                tracing::info!(queue_id = %entry.id, "forwarded without an ARC seal: {e}");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_redirecting_mailbox() {
        let m = b"Delivered-To: bob@example.org\r\nReceived: x\r\nDelivered-To: other@x.test\r\n\r\nDelivered-To: body@x\r\n";
        assert_eq!(first_delivered_to(m).as_deref(), Some("bob@example.org"));
        assert_eq!(
            first_delivered_to(b"From: a@b\r\n\r\nDelivered-To: x@y\r\n"),
            None
        );
        assert_eq!(domain_of("Bob@Example.ORG").as_deref(), Some("example.org"));
        let m = b"Delivered-To: bob@example.org\r\nAuthentication-Results:\r\n\tmx.test;\r\n\tspf=none\r\nReceived: x\r\n\r\n";
        assert!(checked_by(m, "mx.test"));
        assert!(!checked_by(m, "mx2.test"));
        let fetched = b"Received: by mx.test (postern fetch)\r\nAuthentication-Results: mx.test; arc=pass\r\n\r\n";
        assert!(!checked_by(fetched, "mx.test"));
    }
}
