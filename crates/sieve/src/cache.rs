//! Compiled scripts keyed by a hash of their text, so delivery compiles each script once
//! (issue #14: "parse and compile once").

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::{compile, CompileError, Limits, Script};

/// A bounded cache of compiled scripts, shared between deliveries. The key is the SHA-256 of
/// the source, so an edited script is compiled afresh and an unchanged one never again. When
/// full, the oldest entry goes.
#[derive(Debug)]
pub struct ScriptCache {
    limits: Limits,
    capacity: usize,
    inner: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    scripts: HashMap<[u8; 32], Arc<Script>>,
    order: VecDeque<[u8; 32]>,
}

impl ScriptCache {
    /// A cache of at most `capacity` scripts compiled under `limits`.
    pub fn new(limits: Limits, capacity: usize) -> ScriptCache {
        ScriptCache {
            limits,
            capacity: capacity.max(1),
            inner: Mutex::new(Entries::default()),
        }
    }

    /// The compiled form of `source`, compiled now if it is not cached. Errors are not cached
    /// (a broken script is rare and its error must stay visible each time).
    pub fn get_or_compile(&self, source: &str) -> Result<Arc<Script>, CompileError> {
        let key: [u8; 32] = Sha256::digest(source.as_bytes()).into();
        if let Some(script) = self.lock().scripts.get(&key) {
            return Ok(Arc::clone(script));
        }
        let script = Arc::new(compile(source, &self.limits)?);
        let mut entries = self.lock();
        if !entries.scripts.contains_key(&key) {
            while entries.scripts.len() >= self.capacity {
                let Some(old) = entries.order.pop_front() else {
                    break;
                };
                entries.scripts.remove(&old);
            }
            entries.order.push_back(key);
            entries.scripts.insert(key, Arc::clone(&script));
        }
        Ok(script)
    }

    /// How many scripts are cached.
    pub fn len(&self) -> usize {
        self.lock().scripts.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock leaves consistent entries; keep using them.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_once_and_stays_bounded() {
        let cache = ScriptCache::new(Limits::default(), 2);
        let a = cache.get_or_compile("keep;").unwrap();
        let b = cache.get_or_compile("keep;").unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        cache.get_or_compile("discard;").unwrap();
        cache.get_or_compile("stop;").unwrap();
        assert_eq!(cache.len(), 2);
        let c = cache.get_or_compile("keep;").unwrap();
        assert!(!Arc::ptr_eq(&a, &c), "the oldest entry was evicted");
        assert!(cache.get_or_compile("bogus;").is_err());
        assert_eq!(cache.len(), 2);
    }
}
