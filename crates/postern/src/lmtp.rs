//! Local delivery for another MTA: the LMTP server's sink (RFC 2033) and its listeners, and the
//! per-recipient delivery that `postern deliver` (the LDA, `deliver.rs`) shares with it.
//!
//! Each recipient goes through [`LocalDelivery::deliver_with`] (aliases, plus-addressing,
//! Sieve, quota, duplicates, the `Return-Path:`/`Delivered-To:` headers), exactly as the queue
//! delivers a local recipient. An alias answers with `forward` addresses instead of a copy:
//! they are queued, as one new message in the spool, before the recipient's reply (so the
//! `250` of an alias means the forwarded copy is durable), and the queue delivers them.

use async_trait::async_trait;
use postern_config::{Config, Service};
use postern_delivery::{EnvelopeInfo, LocalDelivery};
use postern_mail::{EnhancedCode, Status};
use postern_net::{ConnectionLimiter, Live, Server, SessionHandler, SocketAccess};
use postern_smtp::{Sink, SinkError, SmtpServer};
use postern_spool::{Envelope, Outcome, Queue, QueueId, Recipient};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Hands each recipient to local delivery; alias forwards go to the spool.
pub(crate) struct LocalSink {
    /// The local delivery agent (the same setup as the queue's).
    local: LocalDelivery,
    /// Where alias forwards (and whole messages given to [`Sink::accept`]) are queued.
    spool: Arc<dyn Queue>,
    /// A forwarded copy was queued (a queue runner in another process must be woken).
    forwarded: AtomicBool,
}

impl LocalSink {
    /// Delivery through `local`, forwards into `spool`.
    pub(crate) fn new(local: LocalDelivery, spool: Arc<dyn Queue>) -> LocalSink {
        LocalSink {
            local,
            spool,
            forwarded: AtomicBool::new(false),
        }
    }

    /// Whether a forwarded copy has been queued by this sink.
    pub(crate) fn forwarded(&self) -> bool {
        self.forwarded.load(Ordering::Relaxed)
    }

    /// Delivers `message` to every recipient of `envelope`, in order, and says how it went for
    /// each. `key` names the message for duplicate suppression: a copy already stored under it
    /// is not stored again. A mailbox reached by two recipients gets one copy.
    pub(crate) async fn deliver_all(
        &self,
        key: &str,
        envelope: &Envelope,
        message: &[u8],
    ) -> Vec<Status> {
        let sender = envelope.sender.as_deref().filter(|s| !s.is_empty());
        let mut already = BTreeSet::new();
        let mut out = Vec::with_capacity(envelope.recipients.len());
        for rcpt in &envelope.recipients {
            let info = EnvelopeInfo {
                orig_rcpt: original_recipient(rcpt),
                auth: envelope.authenticated.clone(),
                requiretls: envelope.requiretls,
            };
            let outcome = self
                .local
                .deliver_with(sender, &rcpt.address, message, key, &already, &info)
                .await;
            out.push(match outcome {
                Outcome::Delivered {
                    note,
                    accounts,
                    forward,
                } => {
                    already.extend(accounts);
                    if forward.is_empty() {
                        note
                    } else {
                        self.forward(envelope, rcpt, forward, message, note).await
                    }
                }
                Outcome::Deferred(s) | Outcome::Failed(s) => s,
            });
        }
        out
    }

    /// Queues `message` for the addresses an alias expanded to (durably, before the alias's
    /// reply); the note then names the new queue id.
    async fn forward(
        &self,
        envelope: &Envelope,
        rcpt: &Recipient,
        forward: Vec<String>,
        message: &[u8],
        note: Status,
    ) -> Status {
        let recipients = forward
            .into_iter()
            .map(|address| Recipient {
                address,
                notify: rcpt.notify,
                // RFC 3461 §4.2: the forwarded copies keep the address they were sent to.
                orcpt: rcpt
                    .orcpt
                    .clone()
                    .or_else(|| Some(format!("rfc822;{}", rcpt.address))),
            })
            .collect::<Vec<_>>();
        let n = recipients.len();
        let forwarded = Envelope {
            recipients,
            ..envelope.clone()
        };
        let spool = self.spool.clone();
        let message = message.to_vec();
        let queued = tokio::task::spawn_blocking(move || spool.enqueue(&forwarded, &message))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        match queued {
            Ok(id) => {
                self.forwarded.store(true, Ordering::Relaxed);
                Status::with_text(
                    note.code,
                    format!(
                        "forwarded to {n} address{}, queued as {id}",
                        if n == 1 { "" } else { "es" }
                    ),
                )
            }
            Err(e) => {
                tracing::error!(to = %rcpt.address, "cannot queue the forwarded copy: {e}");
                Status::new(
                    EnhancedCode::new(4, 3, 0),
                    format!(
                        "<{}>: cannot queue the forwarded copy now, try again later",
                        rcpt.address
                    ),
                )
            }
        }
    }
}

/// The original recipient for Sieve's `envelope :orig` (RFC 3461 ORCPT, `rfc822;` removed),
/// when it differs from the address.
pub(crate) fn original_recipient(rcpt: &Recipient) -> Option<String> {
    let orcpt = rcpt.orcpt.as_deref()?;
    let addr = orcpt
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("rfc822;"))
        .map_or(orcpt, |_| &orcpt[7..]);
    (!addr.eq_ignore_ascii_case(&rcpt.address)).then(|| addr.to_string())
}

#[async_trait]
impl Sink for LocalSink {
    /// A whole message without per-recipient results: into the spool, as SMTP does.
    async fn accept(
        &self,
        id: QueueId,
        envelope: &Envelope,
        message: Vec<u8>,
    ) -> Result<QueueId, SinkError> {
        let spool = self.spool.clone();
        let envelope = envelope.clone();
        tokio::task::spawn_blocking(move || spool.enqueue_as(id, &envelope, &message))
            .await?
            .map_err(Into::into)
    }

    /// RFC 2033 §4.2: one status per recipient, each its own delivery's.
    async fn deliver_each(
        &self,
        id: QueueId,
        envelope: &Envelope,
        message: Vec<u8>,
    ) -> Vec<Status> {
        self.deliver_all(id.as_str(), envelope, &message).await
    }
}

/// The LMTP session handler: SMTP's state machine in LMTP mode over `sink`.
pub(crate) fn server(
    config: &Config,
    directory: Arc<dyn postern_directory::Directory>,
    sink: LocalSink,
) -> Arc<dyn SessionHandler> {
    // LMTP asks no password and runs no SMTP-time checks: whoever reaches it delivers locally.
    for addr in config.listen.lmtp.iter().filter(|a| !a.ip().is_loopback()) {
        tracing::warn!(
            "listen.lmtp: {addr} is not a loopback address; LMTP has no authentication, so              only let the MTA that uses it reach this port (firewall), or use [lmtp] socket"
        );
    }
    Arc::new(SmtpServer::lmtp(config, directory, Arc::new(sink)))
}

/// The `[lmtp] socket`, bound (as root when started as root, like the ports) and given its
/// mode and group; `run_as` (the server user) becomes its owner.
pub(crate) fn bind_socket(
    config: &Config,
    run_as: Option<&crate::privileges::RunAs>,
) -> anyhow::Result<Option<(tokio::net::UnixListener, PathBuf)>> {
    let Some(path) = &config.lmtp.socket else {
        return Ok(None);
    };
    let gid = match &config.lmtp.socket_group {
        Some(group) => Some(crate::privileges::lookup_group(group)?.ok_or_else(|| {
            anyhow::anyhow!("lmtp.socket_group: there is no group {group:?} on this system")
        })?),
        None => run_as.map(|r| r.gid),
    };
    let access = SocketAccess {
        mode: config.lmtp.socket_mode,
        uid: run_as.map(|r| r.uid),
        gid,
    };
    let listener = postern_net::bind_unix("lmtp.socket", path, access)?;
    Ok(Some((listener, path.clone())))
}

/// Starts accepting on the bound `[lmtp] socket`, with its own connection limit.
pub(crate) fn spawn_socket(
    server: &Server,
    config: &Config,
    bound: (tokio::net::UnixListener, PathBuf),
    handler: Arc<Live<dyn SessionHandler>>,
) {
    let (listener, path) = bound;
    tracing::info!(
        "lmtp: accepting connections on the Unix socket {}",
        path.display()
    );
    let max = config.lmtp.max_connections;
    server.spawn_unix_listener(
        listener,
        path,
        Service::Lmtp,
        handler,
        ConnectionLimiter::new(max, max),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_original_recipient_is_kept_only_when_it_differs() {
        let mut r = Recipient::new("a@example.org");
        assert_eq!(original_recipient(&r), None);
        r.orcpt = Some("rfc822;A@example.org".into());
        assert_eq!(original_recipient(&r), None);
        r.orcpt = Some("RFC822;list@example.org".into());
        assert_eq!(original_recipient(&r).as_deref(), Some("list@example.org"));
    }
}
