//! Open sessions by account, so that an administrator can end them: `postern kick`, and an
//! account that is disabled or removed. A protocol registers a session once it knows the
//! account (after login) with a token its loop already watches; kicking cancels the tokens.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

type Map = HashMap<String, Vec<(u64, CancellationToken)>>;

/// The registry; cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct Sessions {
    map: Arc<Mutex<Map>>,
    next: Arc<AtomicU64>,
}

/// One registered session; dropping it (the session ends) unregisters it.
#[derive(Debug)]
pub struct Registration {
    sessions: Sessions,
    account: String,
    id: u64,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Map> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a session of `account` that ends when `token` is cancelled.
    pub fn register(&self, account: &str, token: CancellationToken) -> Registration {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock()
            .entry(account.to_string())
            .or_default()
            .push((id, token));
        Registration {
            sessions: self.clone(),
            account: account.to_string(),
            id,
        }
    }

    /// Ends every session of `account`; returns how many there were.
    pub fn kick(&self, account: &str) -> usize {
        let tokens = self.lock().remove(account).unwrap_or_default();
        for (_, t) in &tokens {
            t.cancel();
        }
        tokens.len()
    }

    /// How many sessions `account` has open.
    pub fn count(&self, account: &str) -> usize {
        self.lock().get(account).map_or(0, Vec::len)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut map = self.sessions.lock();
        if let Some(list) = map.get_mut(&self.account) {
            list.retain(|(id, _)| *id != self.id);
            if list.is_empty() {
                map.remove(&self.account);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kick_cancels_and_drop_unregisters() {
        let s = Sessions::default();
        let (a, b) = (CancellationToken::new(), CancellationToken::new());
        let ra = s.register("alice@example.org", a.clone());
        let rb = s.register("alice@example.org", b.clone());
        let other = CancellationToken::new();
        let _ro = s.register("bob@example.org", other.clone());
        drop(rb);
        assert_eq!(s.count("alice@example.org"), 1);
        assert_eq!(s.kick("alice@example.org"), 1);
        assert!(a.is_cancelled() && !b.is_cancelled() && !other.is_cancelled());
        drop(ra);
        assert_eq!(s.count("alice@example.org"), 0);
        assert_eq!(s.kick("nobody@example.org"), 0);
    }
}
