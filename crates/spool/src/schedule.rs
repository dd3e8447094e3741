//! When to try again after a temporary failure.

use std::time::Duration;

/// Back-off for temporary failures: the listed delays, then the last one repeated, until
/// `give_up_after` has passed since arrival.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    /// The delay after the 1st, 2nd, ... failed attempt; the last one repeats.
    pub delays: Vec<Duration>,
    /// Time since arrival after which a temporary failure becomes permanent (the
    /// recipient fails with RFC 3463 5.4.7).
    pub give_up_after: Duration,
}

impl Default for RetrySchedule {
    /// 5, 10, 20, 40 minutes, then hourly; give up after 5 days (like Postfix's
    /// maximal_queue_lifetime).
    fn default() -> RetrySchedule {
        RetrySchedule {
            delays: [5, 10, 20, 40, 60]
                .into_iter()
                .map(|m| Duration::from_secs(m * 60))
                .collect(),
            give_up_after: Duration::from_secs(5 * 24 * 3600),
        }
    }
}

impl RetrySchedule {
    /// The delay after the `attempts`-th failed attempt (1-based).
    pub fn delay_after(&self, attempts: u32) -> Duration {
        let i = (attempts.max(1) as usize - 1).min(self.delays.len().saturating_sub(1));
        self.delays
            .get(i)
            .copied()
            .unwrap_or(Duration::from_secs(3600))
    }

    /// Whether a message that arrived `age` ago should be given up.
    pub fn expired(&self, age: Duration) -> bool {
        age >= self.give_up_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_then_stays_hourly() {
        let s = RetrySchedule::default();
        let mins: Vec<u64> = (1..=7).map(|a| s.delay_after(a).as_secs() / 60).collect();
        assert_eq!(mins, [5, 10, 20, 40, 60, 60, 60]);
        assert!(!s.expired(Duration::from_secs(4 * 24 * 3600)));
        assert!(s.expired(Duration::from_secs(5 * 24 * 3600)));
    }
}
