//! The per-message DNS budget (`[dns] max_lookups_per_message`): every DNS query the inbound
//! checks send for one SMTP transaction counts (SPF beyond its own RFC 7208 §4.6.4 limits,
//! DKIM and ARC keys, DMARC, and the connection's iprev and DNS lists, counted once per
//! connection). A message with a hundred signatures or an SPF tree built to amplify must not
//! make the MX ask a hundred questions. Once spent, further lookups are not sent and the checks
//! that needed them report `temperror` (RFC 6376 §6.1.2, RFC 7208 §2.6.6, RFC 8617 §5.2).
//!
//! Only lookups the caches cannot answer count: a query answered from a TTL cache sends
//! nothing. The count lives in the session's findings between stages (connection and
//! transaction notes), so MAIL's SPF and DATA's DKIM/ARC/DMARC draw on one budget.

use super::cache::TtlCache;
use mail_auth::{DnsError, Error, ResolverCache, Txt};
use postern_smtp::Context;
use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::atomic::{AtomicU32, Ordering};

/// The note key of the lookups of the connection (iprev, DNS lists).
pub(crate) const CONNECTION_NOTE: &str = "dns_lookups_connection";
/// The note key of the lookups of the transaction (SPF, DKIM, ARC, DMARC).
const TRANSACTION_NOTE: &str = "dns_lookups";

/// The words a refused lookup reports.
pub(crate) const SPENT: &str = "DNS lookup budget of this message spent";

/// What is left of one transaction's budget while a stage runs.
pub(crate) struct Budget {
    /// Lookups this stage may still send.
    left: u32,
    /// Lookups this stage asked for (sent or refused).
    asked: AtomicU32,
}

fn note_count(ctx: &Context, connection: bool) -> u32 {
    ctx.with_findings(|f| {
        let notes = if connection {
            &f.connection.notes
        } else {
            &f.transaction.notes
        };
        notes
            .get(if connection {
                CONNECTION_NOTE
            } else {
                TRANSACTION_NOTE
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    })
}

/// Adds `n` lookups to the connection's count (iprev, the DNS lists).
pub(crate) fn charge_connection(ctx: &Context, n: u32) {
    let total = note_count(ctx, true).saturating_add(n);
    ctx.with_findings(|f| {
        f.connection
            .notes
            .insert(CONNECTION_NOTE.into(), total.to_string());
    });
}

impl Budget {
    /// What remains of `limit` for the current transaction of `ctx`.
    pub(crate) fn for_transaction(ctx: &Context, limit: u32) -> Budget {
        let used = note_count(ctx, true).saturating_add(note_count(ctx, false));
        Budget {
            left: limit.saturating_sub(used),
            asked: AtomicU32::new(0),
        }
    }

    /// One more lookup: whether it may be sent.
    pub(crate) fn take(&self) -> bool {
        self.asked.fetch_add(1, Ordering::Relaxed) < self.left
    }

    /// Whether some lookup was refused.
    pub(crate) fn spent(&self) -> bool {
        self.asked.load(Ordering::Relaxed) > self.left
    }

    /// Adds the lookups sent in this stage to the transaction's count; logs once when the
    /// budget ran out in this stage.
    pub(crate) fn settle(&self, ctx: &Context, limit: u32, stage: &str) {
        let sent = self.asked.load(Ordering::Relaxed).min(self.left);
        let total = note_count(ctx, false).saturating_add(sent);
        ctx.with_findings(|f| {
            f.transaction
                .notes
                .insert(TRANSACTION_NOTE.into(), total.to_string());
        });
        if self.spent() {
            tracing::warn!(
                peer = %ctx.peer,
                stage,
                "DNS lookup budget of {limit} per message ran out: the remaining checks give temperror"
            );
        }
    }

    /// The error a refused TXT lookup answers (a resolver error: temperror, not "no record").
    pub(crate) fn refusal() -> Txt {
        Txt::Error(Error::Dns(DnsError::Resolver(SPENT.into())))
    }
}

/// The shared TXT cache, with lookups past the budget refused: a miss either counts (and
/// mail-auth sends the query) or answers [`Budget::refusal`].
pub(crate) struct Gated<'a> {
    pub(crate) inner: &'a TtlCache<Box<str>, Txt>,
    pub(crate) budget: &'a Budget,
}

impl ResolverCache<Box<str>, Txt> for Gated<'_> {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self.inner.get(name) {
            Some(v) => Some(v),
            None if self.budget.take() => None,
            None => Some(Budget::refusal()),
        }
    }

    fn remove<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.remove(name)
    }

    fn insert(&self, key: Box<str>, value: Txt, valid_until: std::time::Instant) {
        self.inner.insert(key, value, valid_until);
    }
}

/// A shared cache whose misses are counted (the record types mail-auth gives no error value
/// for: PTR, A, AAAA, MX of iprev, which runs first on a connection and cannot spend a sane
/// budget alone).
pub(crate) struct Counted<'a, K, V> {
    pub(crate) inner: &'a TtlCache<K, V>,
    pub(crate) count: &'a AtomicU32,
}

impl<K: Hash + Eq, V: Clone> ResolverCache<K, V> for Counted<'_, K, V> {
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let v = self.inner.get(name);
        if v.is_none() {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
        v
    }

    fn remove<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.remove(name)
    }

    fn insert(&self, key: K, value: V, valid_until: std::time::Instant) {
        self.inner.insert(key, value, valid_until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_budget() {
        let b = Budget {
            left: 2,
            asked: AtomicU32::new(0),
        };
        assert!(b.take());
        assert!(b.take());
        assert!(!b.spent());
        assert!(!b.take());
        assert!(b.spent());
        let cache: TtlCache<Box<str>, Txt> = TtlCache::new(16);
        let gated = Gated {
            inner: &cache,
            budget: &b,
        };
        assert!(matches!(
            gated.get("x._domainkey.a.test."),
            Some(Txt::Error(Error::Dns(DnsError::Resolver(_))))
        ));
    }
}
