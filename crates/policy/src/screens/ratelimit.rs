//! Rate limits: messages and recipients per window, counted by client address, client network
//! (/24, /64), envelope sender or authenticated account (`[[policy.rate_limit]]`).
//!
//! Counting is in memory, a sliding window approximated from two fixed ones (the current
//! window's count plus the previous window's, weighted by how much of it still overlaps, rounded
//! up so that a limit is never exceeded by rounding). Each key costs a few dozen bytes; at most
//! [`MAX_KEYS`] are kept, the stale and then the least recently used evicted first.
//!
//! Only SMTP sessions count (the MX and submission): local delivery, the queue's retries,
//! `sendmail` and LMTP never pass through the SMTP checks. A message is counted when its
//! DATA is checked, with all of its recipients; MAIL is refused (`451 4.7.1`) once the messages
//! of a window are used up, RCPT (`452 4.5.3`, RFC 5321 §4.5.3.1.10) once the recipients are.

use super::{client_net, passed, screened, unix_now};
use async_trait::async_trait;
use postern_config::{Network, RateKey, RateLimit};
use postern_mail::EnhancedCode;
use postern_smtp::{Check, Context, Verdict};
use postern_spool::Envelope;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The most keys counted at once (about 100 bytes each).
pub const MAX_KEYS: usize = 200_000;

/// Transaction note: the recipients accepted so far in this transaction.
const NOTE_RCPTS: &str = "screens.rate.rcpts";

/// The counts of one key.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    /// The fixed window `cur` counts in (time / window length).
    window: u64,
    messages: [u32; 2],
    recipients: [u32; 2],
    /// Last use, in milliseconds.
    last: u64,
}

impl Counts {
    /// Moves the windows to the one `now_ms` falls in.
    fn roll(&mut self, window: u64) {
        if window == self.window {
            return;
        }
        if window == self.window + 1 {
            self.messages = [self.messages[1], 0];
            self.recipients = [self.recipients[1], 0];
        } else {
            self.messages = [0, 0];
            self.recipients = [0, 0];
        }
        self.window = window;
    }
}

/// The estimate of a sliding window from two fixed ones: `current + ceil(previous * overlap)`.
fn estimate(pair: [u32; 2], overlap: f64) -> u64 {
    u64::from(pair[1]) + (f64::from(pair[0]) * overlap).ceil() as u64
}

/// Which counter: the rule's key kind, window, and the key's value.
type Key = (RateKey, u64, String);

/// Every key's counts.
pub struct RateCounters {
    map: Mutex<HashMap<Key, Counts>>,
    max: usize,
}

impl RateCounters {
    /// Counters keeping at most `max` keys.
    pub fn new(max: usize) -> RateCounters {
        RateCounters {
            map: Mutex::new(HashMap::new()),
            max,
        }
    }

    /// The (messages, recipients) in the sliding window of `window_secs` ending at `now_ms`.
    pub fn usage(&self, kind: RateKey, window_secs: u64, key: &str, now_ms: u64) -> (u64, u64) {
        let len = window_secs.max(1) * 1000;
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let Some(c) = map.get(&(kind, window_secs, key.to_string())) else {
            return (0, 0);
        };
        let mut c = *c;
        c.roll(now_ms / len);
        let overlap = 1.0 - (now_ms % len) as f64 / len as f64;
        (
            estimate(c.messages, overlap),
            estimate(c.recipients, overlap),
        )
    }

    /// Counts one message with `recipients` recipients at `now_ms`.
    pub fn add(&self, kind: RateKey, window_secs: u64, key: &str, recipients: u32, now_ms: u64) {
        let len = window_secs.max(1) * 1000;
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let k = (kind, window_secs, key.to_string());
        if !map.contains_key(&k) && map.len() >= self.max {
            evict(&mut map, now_ms, self.max);
        }
        let c = map.entry(k).or_default();
        c.roll(now_ms / len);
        c.messages[1] = c.messages[1].saturating_add(1);
        c.recipients[1] = c.recipients[1].saturating_add(recipients);
        c.last = now_ms;
    }

    /// How many keys are counted.
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no key is counted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Makes room: drops the keys whose two windows are over, then, if that freed less than a
/// tenth, the least recently used.
fn evict(map: &mut HashMap<Key, Counts>, now_ms: u64, max: usize) {
    map.retain(|(_, secs, _), c| now_ms.saturating_sub(c.last) < 2 * (*secs).max(1) * 1000);
    let goal = max - max / 10;
    if map.len() > goal {
        let mut ages: Vec<u64> = map.values().map(|c| c.last).collect();
        ages.sort_unstable();
        let cut = ages[map.len() - goal];
        map.retain(|_, c| c.last > cut);
    }
}

/// The key of `rule` for this session, if it applies: address, network and sender for the
/// screened clients (the MX's strangers), account for authenticated sessions.
fn key_of(kind: RateKey, ctx: &Context, screened: bool) -> Option<String> {
    match kind {
        RateKey::Account => ctx.account.as_ref().map(|a| a.to_ascii_lowercase()),
        _ if !screened => None,
        RateKey::Ip => Some(super::canonical(ctx.peer).to_string()),
        RateKey::Net => Some(client_net(ctx.peer)),
        RateKey::Sender => ctx
            .sender
            .as_ref()
            .filter(|s| !s.is_empty())
            .map(|s| s.to_ascii_lowercase()),
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(unix_now() * 1000, |d| d.as_millis() as u64)
}

/// The rate limits as a check.
pub struct RateLimitCheck {
    counters: Arc<RateCounters>,
    rules: Vec<RateLimit>,
    trusted: Vec<Network>,
}

impl RateLimitCheck {
    /// `rules` counted in `counters` (shared across reloads).
    pub fn new(
        counters: Arc<RateCounters>,
        rules: Vec<RateLimit>,
        trusted: Vec<Network>,
    ) -> RateLimitCheck {
        RateLimitCheck {
            counters,
            rules,
            trusted,
        }
    }

    /// The rules that apply with their keys.
    fn keys<'a>(&'a self, ctx: &'a Context) -> impl Iterator<Item = (&'a RateLimit, String)> + 'a {
        let screened = screened(ctx, &self.trusted) && !passed(ctx, None);
        self.rules
            .iter()
            .filter_map(move |r| key_of(r.key, ctx, screened).map(|k| (r, k)))
    }
}

fn describe(kind: RateKey) -> &'static str {
    match kind {
        RateKey::Ip => "client address",
        RateKey::Net => "client network",
        RateKey::Sender => "sender",
        RateKey::Account => "account",
    }
}

#[async_trait]
impl Check for RateLimitCheck {
    fn name(&self) -> &str {
        "ratelimit"
    }

    /// RFC 5321 §4.1.1.2: a new transaction, refused `451 4.7.1` once the window's messages
    /// are used up (the sender is known here, so the MAIL check is where all keys apply).
    async fn mail(&self, ctx: &Context, sender: Option<&str>) -> Verdict {
        let mut ctx = ctx.clone();
        ctx.sender = Some(sender.unwrap_or("").to_string());
        let now = now_ms();
        for (rule, key) in self.keys(&ctx) {
            let Some(limit) = rule.messages else { continue };
            let (messages, _) = self.counters.usage(rule.key, rule.window_secs, &key, now);
            if messages >= u64::from(limit) {
                tracing::info!(key = %key, kind = ?rule.key, limit, window = rule.window_secs, "message rate limit reached");
                return Verdict::tempfail(
                    451,
                    EnhancedCode::new(4, 7, 1),
                    &format!(
                        "Rate limit reached: at most {limit} messages per {} seconds from this {}, try again later",
                        rule.window_secs,
                        describe(rule.key)
                    ),
                );
            }
        }
        Verdict::Accept
    }

    /// RFC 5321 §4.5.3.1.10: `452 4.5.3` for a recipient over the window's limit.
    async fn rcpt(&self, ctx: &Context, _recipient: &str) -> Verdict {
        let now = now_ms();
        let in_txn: u64 = ctx.with_findings(|f| {
            f.transaction
                .notes
                .get(NOTE_RCPTS)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        });
        for (rule, key) in self.keys(ctx) {
            let Some(limit) = rule.recipients else {
                continue;
            };
            let (_, recipients) = self.counters.usage(rule.key, rule.window_secs, &key, now);
            if recipients + in_txn >= u64::from(limit) {
                tracing::info!(key = %key, kind = ?rule.key, limit, window = rule.window_secs, "recipient rate limit reached");
                return Verdict::tempfail(
                    452,
                    EnhancedCode::new(4, 5, 3),
                    &format!(
                        "Too many recipients: at most {limit} per {} seconds from this {}, try again later",
                        rule.window_secs,
                        describe(rule.key)
                    ),
                );
            }
        }
        ctx.with_findings(|f| {
            f.transaction
                .notes
                .insert(NOTE_RCPTS.into(), (in_txn + 1).to_string())
        });
        Verdict::Accept
    }

    /// Counts the message and its recipients under every key that applies.
    async fn data(&self, ctx: &Context, envelope: &Envelope, _message: &[u8]) -> Verdict {
        let now = now_ms();
        let n = u32::try_from(envelope.recipients.len()).unwrap_or(u32::MAX);
        for (rule, key) in self.keys(ctx) {
            self.counters.add(rule.key, rule.window_secs, &key, n, now);
        }
        Verdict::Accept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_windows() {
        let c = RateCounters::new(100);
        let t0 = 7_200_000; // the start of a 3600 s window
        for i in 0..3 {
            c.add(RateKey::Ip, 3600, "192.0.2.1", 2, t0 + i * 1000);
        }
        assert_eq!(c.usage(RateKey::Ip, 3600, "192.0.2.1", t0 + 5000), (3, 6));
        assert_eq!(c.usage(RateKey::Ip, 3600, "192.0.2.2", t0 + 5000), (0, 0));
        assert_eq!(c.usage(RateKey::Net, 3600, "192.0.2.1", t0 + 5000), (0, 0));
        // Just into the next window the previous one still counts in full (rounded up)...
        assert_eq!(
            c.usage(RateKey::Ip, 3600, "192.0.2.1", t0 + 3_600_100),
            (3, 6)
        );
        // ... half way through, half of it...
        assert_eq!(
            c.usage(RateKey::Ip, 3600, "192.0.2.1", t0 + 5_400_000),
            (2, 3)
        );
        // ... and two windows later, nothing.
        assert_eq!(
            c.usage(RateKey::Ip, 3600, "192.0.2.1", t0 + 7_200_000),
            (0, 0)
        );
        // New counts go in the new window.
        c.add(RateKey::Ip, 3600, "192.0.2.1", 1, t0 + 5_400_000);
        assert_eq!(
            c.usage(RateKey::Ip, 3600, "192.0.2.1", t0 + 5_400_000),
            (3, 4)
        );
    }

    #[test]
    fn memory_is_bounded() {
        let c = RateCounters::new(100);
        for i in 0..1000u64 {
            c.add(
                RateKey::Sender,
                60,
                &format!("s{i}@x.test"),
                1,
                1_000_000 + i,
            );
        }
        assert!(c.len() <= 100, "{}", c.len());
        // The most recent keys were kept.
        assert_eq!(c.usage(RateKey::Sender, 60, "s999@x.test", 1_001_000).0, 1);
        // Stale keys go first.
        let c = RateCounters::new(10);
        for i in 0..10u64 {
            c.add(RateKey::Ip, 1, &format!("old{i}"), 1, 0);
        }
        c.add(RateKey::Ip, 1, "new", 1, 10_000);
        assert_eq!(c.len(), 1);
    }
}
