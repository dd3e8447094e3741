//! The new-mail hook: after each message local delivery stores into a mailbox (plain delivery to
//! INBOX, every Sieve `keep` and `fileinto`), a [`Notifier`] is told. The implementations
//! (commands, webhooks, comsat) live in the `postern-notify` crate; this module only defines the
//! event and calls the hook. A notifier never delays or fails a delivery: `new_mail` queues the
//! event and returns. Announcements are at least once: a delivery retried after a temporary
//! failure (the store is idempotent by queue id) announces the copies it stores again.

use postern_store::Store;
use std::path::PathBuf;
use std::sync::Arc;

/// One message stored into a mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMail {
    /// The account (`user@domain`).
    pub account: String,
    /// The mailbox it was stored into (`INBOX`, or the folder Sieve filed it into).
    pub mailbox: String,
    /// Its UID in that mailbox.
    pub uid: u32,
    /// Its size in bytes as stored (trace headers included).
    pub size: u64,
    /// The envelope sender (MAIL FROM); `None` for the null sender `<>`.
    pub sender: Option<String>,
    /// The `Subject:` field, unfolded and with RFC 2047 encoded words decoded; `None` when the
    /// message has none.
    pub subject: Option<String>,
    /// The message's file, when the store keeps one per message (Maildir).
    pub path: Option<PathBuf>,
}

/// Told of every message local delivery stores.
pub trait Notifier: Send + Sync {
    /// A message was stored. Must not block: queue the work and return. Nothing it does can
    /// fail the delivery (the message is already stored when it is called).
    fn new_mail(&self, event: NewMail);

    /// Whether the events need [`NewMail::path`] (one index lookup per stored message).
    fn wants_path(&self) -> bool {
        true
    }
}

/// The `Subject:` of `message`: unfolded, RFC 2047 encoded words decoded (RFC 2047 §6.1 in any
/// charset mail-parser knows), trimmed. `None` when the header section has none.
pub fn decoded_subject(message: &[u8]) -> Option<String> {
    let field = postern_mail::header::fields(message).find(|f| f.is("subject"))?;
    let unfolded = postern_mail::header::unfold(&String::from_utf8_lossy(field.raw_value));
    if !unfolded.contains("=?") {
        return Some(unfolded.trim().to_string());
    }
    let mut owned = unfolded.clone().into_bytes();
    owned.push(b'\n');
    match mail_parser::parsers::MessageStream::new(&owned).parse_unstructured() {
        mail_parser::HeaderValue::Text(text) => Some(text.trim().to_string()),
        _ => Some(unfolded.trim().to_string()),
    }
}

/// Tells `notifier` of a message stored (see [`Stored`]).
pub(crate) async fn announce(
    notifier: Option<&Arc<dyn Notifier>>,
    store: &Arc<dyn Store>,
    stored: Stored<'_>,
) {
    let Some(notifier) = notifier else {
        return;
    };
    let path = if notifier.wants_path() {
        match store
            .message_path(stored.account, stored.mailbox, stored.uid)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(account = %stored.account, "notify: no file path for the new message: {e}");
                None
            }
        }
    } else {
        None
    };
    notifier.new_mail(NewMail {
        account: stored.account.to_string(),
        mailbox: stored.mailbox.to_string(),
        uid: stored.uid,
        size: stored.size,
        sender: stored.sender.map(str::to_string),
        subject: decoded_subject(stored.message),
        path,
    });
}

/// What was stored, for [`announce`].
pub(crate) struct Stored<'a> {
    /// The account.
    pub(crate) account: &'a str,
    /// The mailbox it went into.
    pub(crate) mailbox: &'a str,
    /// Its UID there.
    pub(crate) uid: u32,
    /// The envelope sender.
    pub(crate) sender: Option<&'a str>,
    /// The size stored (trace headers included).
    pub(crate) size: u64,
    /// The message as stored, or without the trace headers (they hold no Subject).
    pub(crate) message: &'a [u8],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects() {
        assert_eq!(
            decoded_subject(b"From: a@b\r\nSubject: plain\r\n words\r\n\r\nbody").as_deref(),
            Some("plain words")
        );
        assert_eq!(
            decoded_subject(b"Subject: =?UTF-8?Q?Caf=C3=A9?= =?ISO-8859-1?B?4A==?=\r\n\r\n")
                .as_deref(),
            Some("Caféà")
        );
        assert_eq!(decoded_subject(b"From: a@b\r\n\r\nSubject: no\r\n"), None);
        assert_eq!(decoded_subject(b"Subject:\r\n\r\n").as_deref(), Some(""));
    }
}
