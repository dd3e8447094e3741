//! The [`Queue`] trait: what the SMTP server, the queue runner and queue administration need
//! from a queue, so that a second backend plugs in without touching them. [`Spool`] (the journal
//! and files under `data_dir/spool`) is the implementation today.
//!
//! The methods are blocking, as the spool's I/O is: async callers run them on the blocking pool
//! (`spawn_blocking`), except the few documented as fast (memory only).

use crate::{Envelope, QueueEntry, QueueId, Spool, SpoolError};
use async_trait::async_trait;
use postern_mail::Status;

/// A durable mail queue.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Stores the message and its envelope durably under a new id, and wakes the runner. Only
    /// after this returns may the message be acknowledged (RFC 5321 §4.5.3.2.6 `250` after DATA
    /// means the server took responsibility).
    fn enqueue(&self, envelope: &Envelope, message: &[u8]) -> Result<QueueId, SpoolError>;

    /// [`Queue::enqueue`] under an id made beforehand with [`QueueId::generate`].
    fn enqueue_as(
        &self,
        id: QueueId,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<QueueId, SpoolError>;

    /// The current state of a queued message ([`SpoolError::NotFound`] when it is gone).
    fn entry(&self, id: &QueueId) -> Result<QueueEntry, SpoolError>;

    /// The message content, exactly as it will be delivered.
    fn message(&self, id: &QueueId) -> Result<Vec<u8>, SpoolError>;

    /// Fast path (memory only): a message in its first delivery attempt, entry and content,
    /// when the queue can give it without blocking I/O; `None` otherwise.
    fn fresh(&self, _id: &QueueId) -> Option<(QueueEntry, Vec<u8>)> {
        None
    }

    /// Fast path (memory only): whether removing the message needs no wait for the disk.
    fn is_fresh(&self, _id: &QueueId) -> bool {
        false
    }

    /// Whether the message is still queued (an admin may have deleted it meanwhile).
    fn exists(&self, id: &QueueId) -> bool;

    /// Replaces a message's state durably.
    fn save(&self, entry: &QueueEntry) -> Result<(), SpoolError>;

    /// Removes a message (delivered and reported, or deleted by an admin).
    fn remove(&self, id: &QueueId) -> Result<(), SpoolError>;

    /// Every queued message's id.
    fn ids(&self) -> Result<Vec<QueueId>, SpoolError>;

    /// Holds a message: it is not attempted until released.
    fn hold(&self, id: &QueueId) -> Result<QueueEntry, SpoolError>;

    /// Releases a held message and makes its pending recipients due now.
    fn release(&self, id: &QueueId) -> Result<QueueEntry, SpoolError>;

    /// Makes a message's pending recipients due now (and releases it); the back-off is kept.
    fn retry(&self, id: &QueueId) -> Result<QueueEntry, SpoolError>;

    /// Fails every pending recipient with `reason` now; the runner then sends the RFC 3464
    /// notice.
    fn bounce(&self, id: &QueueId, reason: &Status) -> Result<QueueEntry, SpoolError>;

    /// Makes every pending recipient of every message due now; returns how many messages.
    fn flush(&self) -> Result<usize, SpoolError>;

    /// Asks the runner (possibly in another process) to re-read the queue soon.
    fn request_wake(&self) -> Result<(), SpoolError>;

    /// Fast path: whether a wake-up was requested since the last call (and clears it).
    fn take_wake_request(&self) -> bool;

    /// Fast path (memory only): messages enqueued through this value since the last call.
    fn take_arrivals(&self) -> Vec<QueueId>;

    /// Resolves when something was enqueued through this value (or a wake-up is pending).
    async fn arrived(&self);
}

#[async_trait]
impl Queue for Spool {
    fn enqueue(&self, envelope: &Envelope, message: &[u8]) -> Result<QueueId, SpoolError> {
        Spool::enqueue(self, envelope, message)
    }

    fn enqueue_as(
        &self,
        id: QueueId,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<QueueId, SpoolError> {
        Spool::enqueue_as(self, id, envelope, message)
    }

    fn entry(&self, id: &QueueId) -> Result<QueueEntry, SpoolError> {
        Spool::entry(self, id)
    }

    fn message(&self, id: &QueueId) -> Result<Vec<u8>, SpoolError> {
        Spool::message(self, id)
    }

    fn fresh(&self, id: &QueueId) -> Option<(QueueEntry, Vec<u8>)> {
        Spool::fresh(self, id)
    }

    fn is_fresh(&self, id: &QueueId) -> bool {
        Spool::is_fresh(self, id)
    }

    fn exists(&self, id: &QueueId) -> bool {
        Spool::exists(self, id)
    }

    fn save(&self, entry: &QueueEntry) -> Result<(), SpoolError> {
        Spool::save(self, entry)
    }

    fn remove(&self, id: &QueueId) -> Result<(), SpoolError> {
        Spool::remove(self, id)
    }

    fn ids(&self) -> Result<Vec<QueueId>, SpoolError> {
        Spool::ids(self)
    }

    fn hold(&self, id: &QueueId) -> Result<QueueEntry, SpoolError> {
        Spool::hold(self, id)
    }

    fn release(&self, id: &QueueId) -> Result<QueueEntry, SpoolError> {
        Spool::release(self, id)
    }

    fn retry(&self, id: &QueueId) -> Result<QueueEntry, SpoolError> {
        Spool::retry(self, id)
    }

    fn bounce(&self, id: &QueueId, reason: &Status) -> Result<QueueEntry, SpoolError> {
        Spool::bounce(self, id, reason)
    }

    fn flush(&self) -> Result<usize, SpoolError> {
        Spool::flush(self)
    }

    fn request_wake(&self) -> Result<(), SpoolError> {
        Spool::request_wake(self)
    }

    fn take_wake_request(&self) -> bool {
        Spool::take_wake_request(self)
    }

    fn take_arrivals(&self) -> Vec<QueueId> {
        Spool::take_arrivals(self)
    }

    async fn arrived(&self) {
        Spool::arrived(self).await
    }
}
