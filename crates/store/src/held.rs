//! [`Held`]: keeps an expunged message readable for the sessions not yet told of the expunge.

use std::any::Any;
use std::sync::Arc;

/// A handle keeping one expunged message readable until every session that still shows it has
/// reported the expunge (RFC 2180 §4.1.1; IMAP may not report an expunge during FETCH, STORE
/// or SEARCH, RFC 9051 §7.5.1). It travels inside [`MailboxEvent::Expunged`](crate::MailboxEvent);
/// what it holds is the backend's business (the Maildir backend: a hard link, removed when the
/// last handle is dropped).
#[derive(Clone)]
pub struct Held {
    /// Never read: holding it is the point.
    _guard: Arc<dyn Any + Send + Sync>,
}

impl Held {
    /// A handle owning `guard` (dropped with the last clone of the handle).
    pub fn new(guard: impl Any + Send + Sync) -> Held {
        Held {
            _guard: Arc::new(guard),
        }
    }
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Held")
    }
}

/// Events compare by what they say; what is kept beside them is not part of it.
impl PartialEq for Held {
    fn eq(&self, _: &Held) -> bool {
        true
    }
}

impl Eq for Held {}
