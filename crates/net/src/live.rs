//! Values a reload replaces while the server runs (SIGHUP): the TLS identity and each
//! service's session handler. A connection takes the value current when it is accepted
//! and keeps it to its end, so a reload never disturbs an open session.

use std::sync::{Arc, RwLock};

/// A shared, replaceable value.
#[derive(Debug)]
pub struct Live<T: ?Sized>(RwLock<Arc<T>>);

impl<T: ?Sized> Live<T> {
    /// Holds `value` until the first [`Live::set`].
    pub fn new(value: Arc<T>) -> Live<T> {
        Live(RwLock::new(value))
    }

    /// The current value.
    pub fn get(&self) -> Arc<T> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the value for everyone who asks from now on.
    pub fn set(&self, value: Arc<T>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_keep_what_they_took() {
        let live: Live<str> = Live::new(Arc::from("old"));
        let taken = live.get();
        live.set(Arc::from("new"));
        assert_eq!(&*taken, "old");
        assert_eq!(&*live.get(), "new");
    }
}
