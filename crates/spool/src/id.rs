use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A queued message's id: sortable by arrival, unique across processes (time, pid, counter),
/// and safe as a file name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QueueId(String);

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl QueueId {
    /// A new id, before the message is queued: SMTP puts it in the `Received:` header, so
    /// that one id names the message in the header, the log and the queue.
    pub fn generate() -> QueueId {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        QueueId(format!(
            "{:010X}{:05X}{:X}{:04X}",
            now.as_secs(),
            now.subsec_micros(),
            std::process::id(),
            n & 0xFFFF
        ))
    }

    /// Parses an id given by an admin or read from a file name; `None` unless it is one of ours.
    pub fn parse(s: &str) -> Option<QueueId> {
        let ok = !s.is_empty() && s.len() <= 40 && s.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| QueueId(s.to_ascii_uppercase()))
    }

    /// The id as text (upper-case hex), as used in file names and logs.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_sortable_and_parse_back() {
        let a = QueueId::generate();
        let b = QueueId::generate();
        assert_ne!(a, b);
        assert_eq!(QueueId::parse(a.as_str()), Some(a.clone()));
        assert_eq!(QueueId::parse("../etc/passwd"), None);
        assert_eq!(QueueId::parse(""), None);
    }
}
