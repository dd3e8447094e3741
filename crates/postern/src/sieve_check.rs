//! Sieve's reject at SMTP time (RFC 5429 §2.2: `ereject` must refuse in the SMTP dialogue when
//! it can, and `reject` may): a DATA check that runs the recipient's scripts before the `250`
//! when the message has a single local recipient, and answers `550 5.7.1` with the reason.
//! With several recipients one `550` would refuse them all, so their rejects go the DSN way.

use async_trait::async_trait;
use postern_delivery::LocalDelivery;
use postern_mail::EnhancedCode;
use postern_smtp::{Check, Context, Verdict};
use postern_spool::Envelope;

/// The check (built with the same Sieve setup as delivery).
pub(crate) struct SieveReject {
    pub local: LocalDelivery,
}

#[async_trait]
impl Check for SieveReject {
    fn name(&self) -> &str {
        "sieve-reject"
    }

    async fn data(&self, _ctx: &Context, envelope: &Envelope, message: &[u8]) -> Verdict {
        let [rcpt] = envelope.recipients.as_slice() else {
            return Verdict::Accept;
        };
        match self
            .local
            .sieve_rejects(envelope.sender.as_deref(), &rcpt.address, message)
            .await
        {
            Some(reason) => Verdict::reject(550, EnhancedCode::new(5, 7, 1), &reason),
            None => Verdict::Accept,
        }
    }
}
