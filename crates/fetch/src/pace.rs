//! The per-account rate limit (`rate_limit` messages per minute).

use std::time::Duration;
use tokio::time::Instant;

/// Spaces messages evenly to at most `per_minute` a minute, with a burst of one.
#[derive(Debug)]
pub struct Pacer {
    gap: Option<Duration>,
    next: Option<Instant>,
}

impl Pacer {
    /// A pacer for `per_minute` messages a minute; `None` or 0 never waits.
    pub fn new(per_minute: Option<u32>) -> Pacer {
        let gap = per_minute
            .filter(|n| *n > 0)
            .map(|n| Duration::from_secs(60) / n);
        Pacer { gap, next: None }
    }

    /// Waits until the next message may be fetched.
    pub async fn wait(&mut self) {
        let Some(gap) = self.gap else { return };
        let now = Instant::now();
        if let Some(next) = self.next {
            if next > now {
                tokio::time::sleep_until(next).await;
            }
        }
        self.next = Some(self.next.map_or(now, |n| n.max(now)) + gap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn spaces_messages_by_the_rate() {
        // 6,000 a minute: 10 ms apart, the first at once.
        let mut p = Pacer::new(Some(6000));
        let t0 = Instant::now();
        for _ in 0..5 {
            p.wait().await;
        }
        assert!(Instant::now() - t0 >= Duration::from_millis(40));
        assert_eq!(Pacer::new(Some(0)).gap, None);
        assert_eq!(Pacer::new(None).gap, None);
    }
}
