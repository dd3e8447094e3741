//! Where accepted mail goes. SMTP and the `sendmail` command hand it to the spool
//! ([`SpoolSink`]); LMTP will hand it to local delivery. The server answers `250` only after
//! [`Sink::accept`] returned `Ok` (the message is durable).

use std::sync::Arc;

use async_trait::async_trait;
use postern_spool::{Envelope, Queue, QueueId};

use crate::session::SinkError;

/// Takes an accepted message.
#[async_trait]
pub trait Sink: Send + Sync {
    /// Stores `message` for `envelope` under `id` (the id its `Received:` header names), durably
    /// before returning `Ok`.
    async fn accept(
        &self,
        id: QueueId,
        envelope: &Envelope,
        message: Vec<u8>,
    ) -> Result<QueueId, SinkError>;
}

/// The queue as a [`Sink`]: the message is enqueued (durably: the file spool fsyncs) in a
/// blocking thread.
#[derive(Clone)]
pub struct SpoolSink(pub Arc<dyn Queue>);

#[async_trait]
impl Sink for SpoolSink {
    async fn accept(
        &self,
        id: QueueId,
        envelope: &Envelope,
        message: Vec<u8>,
    ) -> Result<QueueId, SinkError> {
        let spool = self.0.clone();
        let envelope = envelope.clone();
        tokio::task::spawn_blocking(move || spool.enqueue_as(id, &envelope, &message))
            .await?
            .map_err(Into::into)
    }
}
