//! Per-destination limits: connections at once per destination domain, an optional rate
//! (messages per minute) per domain, and a back-off when a receiver complains about the rate
//! (`421`, or a `4.7.x` enhanced code about rates, RFC 5321 §4.2.5 / RFC 3463 §3.8): no new attempt to that
//! domain for a while (1 minute, doubling up to an hour, cleared by the next delivery), so a
//! busy receiver sees postern slow down instead of a retry storm.

use postern_spool::Outcome;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

const FIRST_BACKOFF: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

struct Domain {
    sem: Arc<Semaphore>,
    /// Token bucket: messages that may start now (up to the rate).
    tokens: f64,
    refilled: Instant,
    /// No new attempt before this, and why.
    backoff_until: Option<(Instant, String)>,
    backoff: Duration,
}

/// The limits of every destination domain.
pub(crate) struct Limits {
    per_domain: usize,
    default_rate: u32,
    rates: HashMap<String, u32>,
    domains: Mutex<HashMap<String, Domain>>,
}

/// Whether a deferral's words are a receiver asking us to slow down: its reply (`said` or
/// `refused`) with `421`, or with a `4.7.x` code and words about rates (a greylisting `4.7.1`
/// is not one: it wants the retry).
pub(crate) fn is_rate_complaint(text: &str) -> bool {
    let remote = text.contains(" said") || text.contains(" refused ");
    let lower = text.to_ascii_lowercase();
    let about_rate = [
        "rate",
        "too many",
        "too fast",
        "slow down",
        "throttl",
        "limit",
        "exceeded",
    ]
    .iter()
    .any(|w| lower.contains(w));
    remote && (text.contains(": 421 ") || (text.contains(" 4.7.") && about_rate))
}

impl Limits {
    pub(crate) fn new(per_domain: usize, default_rate: u32, rates: HashMap<String, u32>) -> Limits {
        Limits {
            per_domain: per_domain.max(1),
            default_rate,
            rates: rates
                .into_iter()
                .map(|(d, r)| (d.to_ascii_lowercase(), r))
                .collect(),
            domains: Mutex::new(HashMap::new()),
        }
    }

    fn rate(&self, domain: &str) -> u32 {
        self.rates.get(domain).copied().unwrap_or(self.default_rate)
    }

    /// Waits for a connection slot and (with a rate) a message slot for `domain`. `Err`: the
    /// domain asked us to slow down; the words to defer with.
    pub(crate) async fn admit(&self, domain: &str) -> Result<OwnedSemaphorePermit, String> {
        let sem = {
            let mut domains = self.domains.lock().unwrap_or_else(|p| p.into_inner());
            let d = self.entry(&mut domains, domain);
            if let Some((until, why)) = &d.backoff_until {
                let now = Instant::now();
                if *until > now {
                    return Err(format!(
                        "4.4.5 {domain} asked us to slow down ({why}); no new attempt for {} s",
                        (*until - now).as_secs().max(1)
                    ));
                }
            }
            d.sem.clone()
        };
        let permit = sem
            .acquire_owned()
            .await
            .map_err(|_| "4.3.0 outbound delivery is shutting down".to_string())?;
        let rate = self.rate(domain);
        if rate > 0 {
            loop {
                let wait = {
                    let mut domains = self.domains.lock().unwrap_or_else(|p| p.into_inner());
                    let d = self.entry(&mut domains, domain);
                    let per_sec = f64::from(rate) / 60.0;
                    let now = Instant::now();
                    d.tokens = (d.tokens + (now - d.refilled).as_secs_f64() * per_sec)
                        .min(f64::from(rate));
                    d.refilled = now;
                    if d.tokens >= 1.0 {
                        d.tokens -= 1.0;
                        None
                    } else {
                        Some(Duration::from_secs_f64((1.0 - d.tokens) / per_sec))
                    }
                };
                match wait {
                    None => break,
                    Some(w) => tokio::time::sleep(w).await,
                }
            }
        }
        Ok(permit)
    }

    fn entry<'a>(&self, domains: &'a mut HashMap<String, Domain>, domain: &str) -> &'a mut Domain {
        let rate = self.rate(domain);
        domains.entry(domain.to_string()).or_insert_with(|| Domain {
            sem: Arc::new(Semaphore::new(self.per_domain)),
            tokens: f64::from(rate.max(1)),
            refilled: Instant::now(),
            backoff_until: None,
            backoff: FIRST_BACKOFF,
        })
    }

    /// After an attempt: a delivery clears the back-off; a rate complaint starts or doubles it.
    pub(crate) fn observe(&self, domain: &str, outcomes: &[Outcome]) {
        let complaint = outcomes.iter().find_map(|o| match o {
            Outcome::Deferred(s) if is_rate_complaint(&s.text) => Some(s.text.clone()),
            _ => None,
        });
        let delivered = outcomes
            .iter()
            .any(|o| matches!(o, Outcome::Delivered { .. }));
        let mut domains = self.domains.lock().unwrap_or_else(|p| p.into_inner());
        let d = self.entry(&mut domains, domain);
        if let Some(why) = complaint {
            let now = Instant::now();
            let active = d.backoff_until.as_ref().is_some_and(|(u, _)| *u > now);
            if !active {
                tracing::info!(
                    "{domain} asked us to slow down; no new attempt there for {} s: {why}",
                    d.backoff.as_secs()
                );
                d.backoff_until = Some((now + d.backoff, why));
                d.backoff = (d.backoff * 2).min(MAX_BACKOFF);
            }
        } else if delivered {
            d.backoff_until = None;
            d.backoff = FIRST_BACKOFF;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_mail::{EnhancedCode, Status};

    fn deferred(text: &str) -> Outcome {
        Outcome::Deferred(Status::with_text(EnhancedCode::TEMPORARY, text.to_string()))
    }

    #[test]
    fn rate_complaints() {
        assert!(is_rate_complaint(
            "mx.example [192.0.2.1] said: 421 4.7.0 too many connections"
        ));
        assert!(is_rate_complaint(
            "mx.example [192.0.2.1] said after RCPT TO: 450 4.7.1 slow down"
        ));
        assert!(is_rate_complaint(
            "4.4.2 mx.example: 192.0.2.1:25 refused the connection during the greeting: 421 busy"
        ));
        assert!(!is_rate_complaint(
            "mx.example [192.0.2.1] said: 452 4.2.2 mailbox full"
        ));
        assert!(!is_rate_complaint(
            "mx.example [192.0.2.1] said after RCPT TO: 450 4.7.1 greylisted, try again later"
        ));
        assert!(is_rate_complaint(
            "mx.example [192.0.2.1] said after MAIL FROM: 451 4.7.28 rate limited"
        ));
        assert!(!is_rate_complaint(
            "4.7.5 no MX host of example matches its MTA-STS policy"
        ));
    }

    #[tokio::test]
    async fn back_off_after_a_complaint_until_a_delivery() {
        let l = Limits::new(2, 0, HashMap::new());
        drop(l.admit("example.test").await.unwrap());
        l.observe(
            "example.test",
            &[deferred("mx [192.0.2.1] said: 421 4.7.0 try later")],
        );
        let e = l.admit("example.test").await.unwrap_err();
        assert!(e.contains("asked us to slow down"), "{e}");
        assert!(l.admit("other.test").await.is_ok());
        l.observe(
            "example.test",
            &[Outcome::Delivered {
                note: Status::with_text(EnhancedCode::SUCCESS, "250 ok".to_string()),
                accounts: vec![],
                forward: vec![],
            }],
        );
        assert!(l.admit("example.test").await.is_ok());
    }

    #[tokio::test]
    async fn connections_per_domain() {
        let l = Limits::new(2, 0, HashMap::new());
        let a = l.admit("example.test").await.unwrap();
        let _b = l.admit("example.test").await.unwrap();
        let third = tokio::time::timeout(Duration::from_millis(50), l.admit("example.test"));
        assert!(third.await.is_err(), "a third connection was admitted");
        drop(a);
        assert!(l.admit("example.test").await.is_ok());
    }

    #[tokio::test]
    async fn the_rate_spaces_messages() {
        let mut rates = HashMap::new();
        rates.insert("Fast.Test".to_string(), 60);
        let l = Limits::new(100, 0, rates);
        let start = Instant::now();
        // The bucket holds a minute's worth; the 61st waits for a second's refill.
        for _ in 0..61 {
            drop(l.admit("fast.test").await.unwrap());
        }
        assert!(start.elapsed() >= Duration::from_millis(900));
    }
}
