//! Maildrop locks (RFC 1939 §8): one POP3 session at a time per account in TRANSACTION state.
//! The lock is in process memory; a crashed session cannot leave it behind.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// The accounts whose maildrop a session holds; cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct MaildropLocks {
    held: Arc<Mutex<HashSet<String>>>,
}

/// Holds one account's lock; dropping it releases the lock.
#[derive(Debug)]
pub struct MaildropGuard {
    locks: MaildropLocks,
    account: String,
}

impl MaildropLocks {
    /// Takes the lock of `account`, or `None` if another session holds it.
    pub fn try_lock(&self, account: &str) -> Option<MaildropGuard> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if !held.insert(account.to_owned()) {
            return None;
        }
        Some(MaildropGuard {
            locks: self.clone(),
            account: account.to_owned(),
        })
    }

    /// Whether a session holds `account`'s maildrop.
    pub fn is_locked(&self, account: &str) -> bool {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(account)
    }
}

impl Drop for MaildropGuard {
    fn drop(&mut self) {
        self.locks
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_per_account() {
        let locks = MaildropLocks::default();
        let g = locks.try_lock("a@example.org").expect("free");
        assert!(locks.try_lock("a@example.org").is_none());
        assert!(locks.is_locked("a@example.org"));
        let _other = locks.try_lock("b@example.org").expect("other account free");
        drop(g);
        assert!(!locks.is_locked("a@example.org"));
        assert!(locks.try_lock("a@example.org").is_some());
    }
}
