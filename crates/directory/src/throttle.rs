//! Authentication failure accounting.
//!
//! [`AuthThrottle`] counts failed logins over a sliding window, by client network (an
//! IPv4 /24, an IPv6 /64: one attacker usually holds a whole block) and by account:
//!
//! * per account *and* source network: past `account_limit` the account is blocked,
//!   but only for that network, so a guesser cannot lock the owner out from elsewhere
//!   (nor colleagues behind the same NAT out of other accounts);
//! * per source network: past `network_limit` the network is blocked whatever account
//!   it tries (password spraying);
//! * per account from anywhere: a distributed guess only earns a delay, never a block.
//!
//! Callers ask it before checking a password: it answers with a delay to apply
//! (growing exponentially with recent failures, capped) or with `Blocked`. A success
//! clears the account's failures from that source (not the network's, so one valid
//! login cannot whitewash a password-spraying client).
//!
//! It is in memory and per process: it slows guessing down, it is not an audit log
//! (the log line of every failure, with the client address, is; see [`crate::gate`]).

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::address::Address;

/// Thresholds of an [`AuthThrottle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Failures older than this are forgotten.
    pub window: Duration,
    /// Failures allowed without delay.
    pub free_failures: u32,
    /// Delay after the first failure beyond the free ones; doubles with each further one.
    pub base_delay: Duration,
    /// Longest delay suggested.
    pub max_delay: Duration,
    /// Failures for one account within the window after which it is blocked.
    pub account_limit: u32,
    /// Failures from one client network within the window after which it is blocked.
    pub network_limit: u32,
    /// Most accounts plus networks tracked at once (memory bound).
    pub max_tracked: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            window: Duration::from_secs(15 * 60),
            free_failures: 1,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(15),
            account_limit: 10,
            network_limit: 30,
            max_tracked: 100_000,
        }
    }
}

/// What the caller should do with a login attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleDecision {
    /// Go ahead, after waiting `delay` (zero when there were no recent failures).
    Allow {
        /// Suggested wait before answering.
        delay: Duration,
    },
    /// Refuse without checking the password; failures expire in `retry_after`.
    Blocked {
        /// Time until the attempt would be allowed again.
        retry_after: Duration,
    },
}

impl ThrottleDecision {
    /// Whether the attempt must be refused.
    pub fn is_blocked(&self) -> bool {
        matches!(self, ThrottleDecision::Blocked { .. })
    }

    /// The delay to apply (for `Blocked`, zero: refuse at once or after a fixed
    /// delay of the caller's choosing).
    pub fn delay(&self) -> Duration {
        match self {
            ThrottleDecision::Allow { delay } => *delay,
            ThrottleDecision::Blocked { .. } => Duration::ZERO,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// One account, tried from one network.
    Account(String, IpAddr),
    /// One account, tried from anywhere: delays only.
    AccountAnywhere(String),
    /// One client network.
    Network(IpAddr),
}

/// How much an account's failures from all sources weigh against one source's: a
/// distributed guess slows down without locking the owner out.
const ANYWHERE_WEIGHT: usize = 5;
/// The longest delay failures from elsewhere can impose on a login.
const ANYWHERE_MAX_DELAY: Duration = Duration::from_secs(4);

/// Failure counters; `Send + Sync`, share it in an `Arc`.
#[derive(Debug)]
pub struct AuthThrottle {
    config: ThrottleConfig,
    failures: Mutex<HashMap<Key, VecDeque<Instant>>>,
}

/// The client network an address is counted in: IPv4 (including IPv4-mapped IPv6)
/// by /24, IPv6 by /64.
pub fn network_of(ip: IpAddr) -> IpAddr {
    let v4_net = |v4: std::net::Ipv4Addr| IpAddr::V4((u32::from(v4) & 0xffff_ff00).into());
    match ip {
        IpAddr::V4(v4) => v4_net(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4_net(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(bits))
            }
        },
    }
}

/// Canonical throttle key for a login name: the normalised address when it is
/// one, else the lowercased name; bounded in size.
fn account_key(login: &str) -> String {
    let mut key = match Address::parse(login) {
        Ok(a) => a.to_string(),
        Err(_) => login.to_lowercase(),
    };
    if key.len() > 320 {
        let mut end = 320;
        while !key.is_char_boundary(end) {
            end -= 1;
        }
        key.truncate(end);
    }
    key
}

impl Default for AuthThrottle {
    fn default() -> Self {
        AuthThrottle::new(ThrottleConfig::default())
    }
}

impl AuthThrottle {
    /// A throttle with these thresholds.
    pub fn new(config: ThrottleConfig) -> Self {
        AuthThrottle {
            config,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// The thresholds.
    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, VecDeque<Instant>>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks before an attempt. `account` is the login name if known yet.
    pub fn check(&self, account: Option<&str>, ip: IpAddr) -> ThrottleDecision {
        self.check_at(account, ip, Instant::now())
    }

    /// Records a failed attempt and returns the decision for the *next* attempt
    /// (callers typically wait `delay()` before sending the failure reply).
    pub fn record_failure(&self, account: Option<&str>, ip: IpAddr) -> ThrottleDecision {
        self.record_failure_at(account, ip, Instant::now())
    }

    /// Records a success: the account's failures from this client's network are forgotten.
    pub fn record_success(&self, account: &str, ip: IpAddr) {
        self.record_success_at(account, ip, Instant::now());
    }

    /// [`AuthThrottle::check`] at a given instant (for tests and simulations).
    pub fn check_at(&self, account: Option<&str>, ip: IpAddr, now: Instant) -> ThrottleDecision {
        let mut map = self.lock();
        let keys = self.keys(account, ip);
        self.decide(&mut map, &keys, now)
    }

    /// [`AuthThrottle::record_failure`] at a given instant.
    pub fn record_failure_at(
        &self,
        account: Option<&str>,
        ip: IpAddr,
        now: Instant,
    ) -> ThrottleDecision {
        let mut map = self.lock();
        let keys = self.keys(account, ip);
        for key in &keys {
            if !map.contains_key(key) && map.len() >= self.config.max_tracked {
                self.make_room(&mut map, now);
            }
            let capacity = self.capacity_of(key);
            let entry = map.entry(key.clone()).or_default();
            prune(entry, now, self.config.window);
            entry.push_back(now);
            // Only the newest `capacity` failures can matter.
            while entry.len() > capacity {
                entry.pop_front();
            }
        }
        self.decide(&mut map, &keys, now)
    }

    /// [`AuthThrottle::record_success`] at a given instant.
    pub fn record_success_at(&self, account: &str, ip: IpAddr, _now: Instant) {
        let mut map = self.lock();
        map.remove(&Key::Account(account_key(account), network_of(ip)));
    }

    /// Recent failures counted for an account, from all sources (for status displays).
    pub fn account_failures(&self, account: &str) -> usize {
        self.count_at(&Key::AccountAnywhere(account_key(account)), Instant::now())
    }

    /// Recent failures counted for a client's network.
    pub fn network_failures(&self, ip: IpAddr) -> usize {
        self.count_at(&Key::Network(network_of(ip)), Instant::now())
    }

    fn count_at(&self, key: &Key, now: Instant) -> usize {
        let map = self.lock();
        map.get(key).map_or(0, |q| {
            q.iter()
                .filter(|t| now.saturating_duration_since(**t) < self.config.window)
                .count()
        })
    }

    /// Forgets expired failures everywhere (callers may run it periodically;
    /// it also runs when the table is full).
    pub fn purge_expired(&self) {
        self.purge_expired_at(Instant::now());
    }

    /// [`AuthThrottle::purge_expired`] at a given instant.
    pub fn purge_expired_at(&self, now: Instant) {
        let mut map = self.lock();
        let window = self.config.window;
        map.retain(|_, q| {
            prune(q, now, window);
            !q.is_empty()
        });
    }

    fn keys(&self, account: Option<&str>, ip: IpAddr) -> Vec<Key> {
        let network = network_of(ip);
        let mut keys = vec![Key::Network(network)];
        if let Some(a) = account {
            let a = account_key(a);
            keys.push(Key::Account(a.clone(), network));
            keys.push(Key::AccountAnywhere(a));
        }
        keys
    }

    /// Failures past which the key blocks (0: never blocks).
    fn limit_of(&self, key: &Key) -> u32 {
        match key {
            Key::Account(..) => self.config.account_limit,
            Key::AccountAnywhere(_) => 0,
            Key::Network(_) => self.config.network_limit,
        }
    }

    /// Most failures worth remembering for a key.
    fn capacity_of(&self, key: &Key) -> usize {
        match key {
            Key::AccountAnywhere(_) => {
                (self.config.account_limit as usize + 1).saturating_mul(ANYWHERE_WEIGHT)
            }
            _ => self.limit_of(key) as usize + 1,
        }
    }

    fn decide(
        &self,
        map: &mut HashMap<Key, VecDeque<Instant>>,
        keys: &[Key],
        now: Instant,
    ) -> ThrottleDecision {
        let window = self.config.window;
        let mut delay = Duration::ZERO;
        let mut retry_after: Option<Duration> = None;
        for key in keys {
            let Some(q) = map.get_mut(key) else { continue };
            prune(q, now, window);
            let count = q.len();
            let limit = self.limit_of(key) as usize;
            if limit > 0 && count >= limit {
                // The attempt is allowed again once count - limit + 1 failures expire.
                let idx = count - limit;
                let wait = q
                    .get(idx)
                    .map_or(window, |t| (*t + window).saturating_duration_since(now));
                retry_after = Some(retry_after.map_or(wait, |r| r.max(wait)));
            }
            // Network failures weigh less: a shared NAT should not delay everyone
            // as much as attacks on a single account do; failures from elsewhere
            // weigh least and their delay is capped lower.
            let key_delay = match key {
                Key::Account(..) => self.delay_for(count),
                Key::Network(_) => self.delay_for(count / 3),
                Key::AccountAnywhere(_) => self
                    .delay_for(count / ANYWHERE_WEIGHT)
                    .min(ANYWHERE_MAX_DELAY),
            };
            delay = delay.max(key_delay);
            if q.is_empty() {
                map.remove(key);
            }
        }
        if let Some(retry_after) = retry_after {
            return ThrottleDecision::Blocked { retry_after };
        }
        ThrottleDecision::Allow { delay }
    }

    fn delay_for(&self, failures: usize) -> Duration {
        let free = self.config.free_failures as usize;
        if failures <= free {
            return Duration::ZERO;
        }
        let exponent = u32::try_from(failures - free - 1)
            .unwrap_or(u32::MAX)
            .min(30);
        self.config
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.config.max_delay)
    }

    fn make_room(&self, map: &mut HashMap<Key, VecDeque<Instant>>, now: Instant) {
        let window = self.config.window;
        map.retain(|_, q| {
            prune(q, now, window);
            !q.is_empty()
        });
        if map.len() < self.config.max_tracked {
            return;
        }
        // Still full of live entries: evict the one whose latest failure is oldest.
        let oldest = map
            .iter()
            .min_by_key(|(_, q)| q.back().copied())
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            map.remove(&k);
        }
    }
}

fn prune(q: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while let Some(front) = q.front() {
        if now.saturating_duration_since(*front) >= window {
            q.pop_front();
        } else {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn cfg() -> ThrottleConfig {
        ThrottleConfig {
            window: Duration::from_secs(600),
            free_failures: 1,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(8),
            account_limit: 5,
            network_limit: 9,
            max_tracked: 1000,
        }
    }

    #[test]
    fn fresh_client_is_allowed_without_delay() {
        let t = AuthThrottle::new(cfg());
        assert_eq!(
            t.check(Some("a@example.org"), ip("192.0.2.1")),
            ThrottleDecision::Allow {
                delay: Duration::ZERO
            }
        );
    }

    #[test]
    fn delay_grows_and_is_capped_then_blocks() {
        let t = AuthThrottle::new(cfg());
        let now = Instant::now();
        let a = Some("alice@example.org");
        let mut delays = Vec::new();
        for i in 0..4 {
            let d = t.record_failure_at(a, ip("192.0.2.1"), now + Duration::from_secs(i));
            delays.push(d.delay());
        }
        assert_eq!(delays, [0, 1, 2, 4].map(Duration::from_secs).to_vec());
        let d = t.record_failure_at(a, ip("192.0.2.1"), now + Duration::from_secs(4));
        assert!(d.is_blocked());
        // Blocked for this account from the same /24, whatever the spelling.
        let d = t.check_at(
            Some("ALICE@Example.org"),
            ip("192.0.2.200"),
            now + Duration::from_secs(5),
        );
        assert_eq!(
            d,
            ThrottleDecision::Blocked {
                retry_after: Duration::from_secs(595)
            }
        );
        // The owner elsewhere is not locked out: at most a short delay.
        let d = t.check_at(
            Some("alice@example.org"),
            ip("198.51.100.7"),
            now + Duration::from_secs(5),
        );
        assert!(!d.is_blocked());
        assert!(d.delay() <= ANYWHERE_MAX_DELAY);
        // Other accounts from a clean IP are unaffected.
        assert_eq!(
            t.check_at(Some("bob@example.org"), ip("198.51.100.7"), now)
                .delay(),
            Duration::ZERO
        );
    }

    #[test]
    fn cap_applies() {
        let mut c = cfg();
        c.account_limit = 100;
        c.network_limit = 100;
        let t = AuthThrottle::new(c);
        let now = Instant::now();
        let mut last = ThrottleDecision::Allow {
            delay: Duration::ZERO,
        };
        for _ in 0..20 {
            last = t.record_failure_at(Some("x@example.org"), ip("192.0.2.9"), now);
        }
        assert_eq!(last.delay(), Duration::from_secs(8));
    }

    #[test]
    fn failures_decay_with_the_window() {
        let t = AuthThrottle::new(cfg());
        let now = Instant::now();
        for _ in 0..5 {
            t.record_failure_at(Some("a@example.org"), ip("192.0.2.1"), now);
        }
        assert!(t
            .check_at(Some("a@example.org"), ip("192.0.2.1"), now)
            .is_blocked());
        let later = now + Duration::from_secs(601);
        assert_eq!(
            t.check_at(Some("a@example.org"), ip("192.0.2.1"), later)
                .delay(),
            Duration::ZERO
        );
    }

    #[test]
    fn success_resets_account_but_not_network() {
        let t = AuthThrottle::new(cfg());
        let now = Instant::now();
        for i in 0..9 {
            t.record_failure_at(Some(&format!("u{i}@example.org")), ip("192.0.2.1"), now);
        }
        for _ in 0..4 {
            t.record_failure_at(Some("a@example.org"), ip("203.0.113.1"), now);
        }
        t.record_success_at("a@example.org", ip("203.0.113.1"), now);
        assert_eq!(
            t.check_at(Some("a@example.org"), ip("203.0.113.1"), now)
                .delay(),
            Duration::ZERO
        );
        // The spraying network is blocked whatever account it tries.
        t.record_success_at("u0@example.org", ip("192.0.2.1"), now);
        assert!(t
            .check_at(Some("new@example.org"), ip("192.0.2.1"), now)
            .is_blocked());
        assert!(t.check_at(None, ip("192.0.2.1"), now).is_blocked());
    }

    #[test]
    fn ipv6_grouped_by_64() {
        let t = AuthThrottle::new(cfg());
        let now = Instant::now();
        for i in 0..9 {
            let addr = format!("2001:db8:1:2::{i:x}");
            t.record_failure_at(None, ip(&addr), now);
        }
        assert!(t
            .check_at(None, ip("2001:db8:1:2:ffff::1"), now)
            .is_blocked());
        assert!(!t.check_at(None, ip("2001:db8:1:3::1"), now).is_blocked());
        assert_eq!(network_of(ip("::ffff:192.0.2.1")), ip("192.0.2.0"));
        assert_eq!(network_of(ip("192.0.2.77")), ip("192.0.2.0"));
        assert_eq!(
            network_of(ip("2001:db8::1234:5678:9abc:def0")),
            ip("2001:db8::")
        );
    }

    #[test]
    fn distributed_guessing_delays_but_never_blocks() {
        let t = AuthThrottle::new(cfg());
        let now = Instant::now();
        for i in 0..200u32 {
            let source = IpAddr::V4((0x0a00_0000 + (i << 8)).into());
            t.record_failure_at(Some("alice@example.org"), source, now);
        }
        let d = t.check_at(Some("alice@example.org"), ip("203.0.113.9"), now);
        assert_eq!(
            d,
            ThrottleDecision::Allow {
                delay: ANYWHERE_MAX_DELAY
            }
        );
        assert!(t.account_failures("alice@example.org") <= 30);
    }

    #[test]
    fn memory_is_bounded() {
        let mut c = cfg();
        c.max_tracked = 50;
        let t = AuthThrottle::new(c);
        let now = Instant::now();
        for i in 0..500u32 {
            t.record_failure_at(Some(&format!("u{i}@example.org")), ip("192.0.2.1"), now);
        }
        assert!(t.lock().len() <= 50);
        // The very long name does not bloat keys.
        t.record_failure_at(Some(&"x".repeat(100_000)), ip("192.0.2.2"), now);
        assert!(t.lock().keys().all(|k| match k {
            Key::Account(a, _) | Key::AccountAnywhere(a) => a.len() <= 320,
            Key::Network(_) => true,
        }));
    }

    #[test]
    fn purge_forgets_expired() {
        let t = AuthThrottle::new(cfg());
        let now = Instant::now();
        t.record_failure_at(Some("a@example.org"), ip("192.0.2.1"), now);
        assert_eq!(t.account_failures("a@example.org"), 1);
        t.purge_expired_at(now + Duration::from_secs(599));
        assert_eq!(t.lock().len(), 3);
        t.purge_expired_at(now + Duration::from_secs(700));
        assert!(t.lock().is_empty());
        assert_eq!(t.account_failures("a@example.org"), 0);
        assert_eq!(t.network_failures(ip("192.0.2.1")), 0);
    }

    #[test]
    fn thread_safe() {
        fn assert_sync<T: Send + Sync>() {}
        assert_sync::<AuthThrottle>();
        let t = std::sync::Arc::new(AuthThrottle::new(cfg()));
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let t = t.clone();
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        t.record_failure(Some(&format!("t{i}@example.org")), ip("192.0.2.1"));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(t.account_failures("t0@example.org"), 30);
    }
}
