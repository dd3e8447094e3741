//! Where accepted mail goes. SMTP and the `sendmail` command hand it to the spool
//! ([`SpoolSink`]); LMTP hands it to local delivery through [`Sink::deliver_each`], which says
//! how it went for each recipient. The server answers `250` only after [`Sink::accept`]
//! returned `Ok` (the message is durable), and in LMTP `250` for a recipient only when its
//! status is a success (its copy is durable).

use std::sync::Arc;

use async_trait::async_trait;
use postern_mail::{EnhancedCode, Status};
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

    /// LMTP (RFC 2033 §4.2): delivers `message` to each recipient of `envelope` and returns one
    /// status per recipient, in their order; a success (class 2) only once that recipient's
    /// copy is durable. By default the message is [`Sink::accept`]ed once and its result is
    /// every recipient's.
    async fn deliver_each(
        &self,
        id: QueueId,
        envelope: &Envelope,
        message: Vec<u8>,
    ) -> Vec<Status> {
        let n = envelope.recipients.len();
        match self.accept(id, envelope, message).await {
            Ok(id) => vec![Status::new(EnhancedCode::SUCCESS, format!("queued as {id}")); n],
            Err(e) => {
                tracing::error!(error = %e, "cannot spool message");
                vec![
                    Status::new(
                        EnhancedCode::new(4, 3, 0),
                        "cannot queue the message now, try again later"
                    );
                    n
                ]
            }
        }
    }
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
