//! The [`Inbox`] of fetched mail: the remote INBOX goes through local delivery exactly as LMTP
//! mail does ([`LocalSink`]: aliases, plus-addressing, Sieve, quota, alias forwards queued into
//! the spool), other remote IMAP folders are stored straight into the owner's folder of the same
//! name. Every delivery carries the fetch key, so a message delivered before a crash is not
//! stored twice when the run resumes.

use super::multidrop;
use crate::lmtp::LocalSink;
use async_trait::async_trait;
use postern_directory::{Address, Directory, Resolution};
use postern_fetch::{
    Delivered, EnvelopeRule, FetchError, FetchedMessage, Inbox, LocalRefusal, Protocol, Security,
};
use postern_spool::{BodyType, Envelope, Recipient};
use postern_store::{Flags, Store, StoreError};
use std::sync::Arc;

/// Local delivery for fetched messages.
pub(crate) struct LocalInbox {
    sink: LocalSink,
    store: Arc<dyn Store>,
    directory: Arc<dyn Directory>,
    hostname: String,
}

impl LocalInbox {
    /// Delivery through `sink` (built as the LMTP server's), folders stored in `store`,
    /// multidrop recipients checked in `directory`; `hostname` names us in `Received:`.
    pub(crate) fn new(
        sink: LocalSink,
        store: Arc<dyn Store>,
        directory: Arc<dyn Directory>,
        hostname: &str,
    ) -> LocalInbox {
        LocalInbox {
            sink,
            store,
            directory,
            hostname: hostname.to_string(),
        }
    }

    /// Whether an alias forward was queued (a queue runner in another process must be woken).
    pub(crate) fn forwarded(&self) -> bool {
        self.sink.forwarded()
    }

    /// Who a message is for: the owner, or the local addresses multidrop finds (else the
    /// owner).
    async fn recipients(&self, message: &FetchedMessage<'_>) -> Vec<String> {
        let owner = message.account.local.clone();
        let EnvelopeRule::Multidrop { headers } = &message.account.options.envelope else {
            return vec![owner];
        };
        let mut out: Vec<String> = Vec::new();
        for candidate in multidrop::recipients(&message.raw, headers) {
            let Ok(address) = Address::parse(&candidate) else {
                continue;
            };
            if let Ok(Resolution::Deliver(_)) = self.directory.resolve(&address).await {
                let a = address.to_string();
                if !out.contains(&a) {
                    out.push(a);
                }
            }
        }
        if out.is_empty() {
            out.push(owner);
        }
        out
    }

    /// RFC 5321 §4.4: our trace field, as fetchmail writes it (from the remote host, with the
    /// retrieval protocol, the fetch key as id).
    fn received(&self, message: &FetchedMessage<'_>, rcpt: Option<&str>) -> String {
        let url = &message.account.url;
        let with = match (url.protocol, url.security) {
            (Protocol::Pop3, Security::Implicit) => "POP3S",
            (Protocol::Pop3, Security::StartTls) => "POP3",
            (Protocol::Imap, Security::Implicit) => "IMAPS",
            (Protocol::Imap, Security::StartTls) => "IMAP",
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        let date = postern_mail::date::rfc5322(now);
        let mut out = format!(
            "Received: from {} by {} with {with} (postern fetch {})\r\n\tid {}",
            url.host, self.hostname, message.account.id, message.key
        );
        if let Some(r) = rcpt {
            out.push_str(&format!("\r\n\tfor <{r}>"));
        }
        out.push_str(&format!("; {date}\r\n"));
        out
    }

    /// `Some(folder)`: stored with its flags into the owner's folder (created if missing),
    /// idempotent by key.
    async fn store_in_folder(
        &self,
        message: &FetchedMessage<'_>,
        folder: &str,
        content: Vec<u8>,
    ) -> Result<Delivered, FetchError> {
        let owner = &message.account.local;
        let names = message
            .flags
            .iter()
            .filter(|f| !f.eq_ignore_ascii_case("\\Recent"));
        let flags = Flags::from_names(names).unwrap_or_else(|e| {
            tracing::debug!(account = %message.account.id, "remote flags not kept: {e}");
            Flags::new()
        });
        let local = |e: StoreError| {
            FetchError::local(format!("storing into {owner} folder {folder:?}: {e}"))
        };
        self.store.ensure_account(owner).await.map_err(local)?;
        let mut outcome = self
            .store
            .deliver_flagged(owner, folder, content.clone(), &message.key, flags.clone())
            .await;
        if let Err(StoreError::MailboxNotFound(_)) = outcome {
            match self.store.create_mailbox(owner, folder, None).await {
                Ok(()) | Err(StoreError::MailboxExists(_)) => {}
                Err(e) if e.is_client_error() => {
                    return Ok(Delivered::Refused(LocalRefusal(format!(
                        "cannot create folder {folder:?} of {owner}: {e}"
                    ))))
                }
                Err(e) => return Err(local(e)),
            }
            outcome = self
                .store
                .deliver_flagged(owner, folder, content, &message.key, flags)
                .await;
        }
        match outcome {
            Ok(_) => Ok(Delivered::Stored),
            Err(e) if e.is_client_error() => Ok(Delivered::Refused(LocalRefusal(format!(
                "{owner} folder {folder:?}: {e}"
            )))),
            Err(e) => Err(local(e)),
        }
    }
}

/// The envelope sender: the message's `Return-Path:` (RFC 5322 §3.6.7), the null sender when
/// it has none or it is `<>`.
pub(crate) fn return_path(message: &[u8]) -> Option<String> {
    let fields = multidrop::header_fields(message);
    let value = fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("Return-Path"))
        .map(|(_, v)| v.as_str())?;
    let addr = value.trim().trim_start_matches('<');
    let addr = addr.split('>').next().unwrap_or_default().trim();
    (!addr.is_empty() && addr.contains('@') && !addr.contains(char::is_whitespace))
        .then(|| addr.to_string())
}

/// The remote's own `Delivered-To:` fields naming one of our recipients become
/// `X-Original-Delivered-To:`: the remote delivered it to that address before, which local
/// delivery would otherwise take for a mail loop (RFC 5321 §6.3). Everything else is kept as
/// it is.
pub(crate) fn rename_delivered_to(message: &[u8], recipients: &[String]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(message.len() + 64);
    let mut changed = false;
    let mut rest = message;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let line = &rest[..end];
        rest = &rest[end..];
        if line == b"\r\n" || line == b"\n" {
            out.extend_from_slice(line);
            out.extend_from_slice(rest);
            break;
        }
        let is_match = line.len() > 13
            && line[..13].eq_ignore_ascii_case(b"Delivered-To:")
            && multidrop::addresses(
                &String::from_utf8_lossy(&line[13..]).replace(['\r', '\n'], ""),
            )
            .iter()
            .any(|a| recipients.iter().any(|r| r.eq_ignore_ascii_case(a)));
        if is_match {
            out.extend_from_slice(b"X-Original-");
            changed = true;
        }
        out.extend_from_slice(line);
    }
    changed.then_some(out)
}

#[async_trait]
impl Inbox for LocalInbox {
    async fn deliver(&self, message: FetchedMessage<'_>) -> Result<Delivered, FetchError> {
        if let Some(folder) = message.local_folder {
            let mut content = self.received(&message, None).into_bytes();
            content.extend_from_slice(&message.raw);
            return self.store_in_folder(&message, folder, content).await;
        }
        let recipients = self.recipients(&message).await;
        let single = (recipients.len() == 1).then(|| recipients[0].as_str());
        let mut content = self.received(&message, single).into_bytes();
        match rename_delivered_to(&message.raw, &recipients) {
            Some(renamed) => content.extend_from_slice(&renamed),
            None => content.extend_from_slice(&message.raw),
        }
        let envelope = Envelope {
            sender: return_path(&message.raw),
            recipients: recipients.iter().map(Recipient::new).collect(),
            ret: None,
            envid: None,
            body: BodyType::EightBitMime,
            smtputf8: false,
            requiretls: false,
            authenticated: None,
            client_ip: None,
            helo: None,
        };
        let statuses = self
            .sink
            .deliver_all(&message.key, &envelope, &content)
            .await;
        let mut refused = Vec::new();
        let mut delivered = 0;
        for (rcpt, status) in recipients.iter().zip(&statuses) {
            if status.code.is_success() {
                delivered += 1;
            } else if status.code.is_temporary() {
                return Err(FetchError::local(format!(
                    "local delivery to {rcpt} failed for now: {status}"
                )));
            } else {
                refused.push(format!("{rcpt}: {status}"));
            }
        }
        if delivered == 0 {
            return Ok(Delivered::Refused(LocalRefusal(refused.join("; "))));
        }
        if !refused.is_empty() {
            tracing::warn!(
                account = %message.account.id,
                "fetched message refused by some recipients: {}",
                refused.join("; ")
            );
        }
        Ok(Delivered::Stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_path_is_the_envelope_sender() {
        assert_eq!(
            return_path(b"Return-Path: <a@b.c>\r\nSubject: x\r\n\r\n").as_deref(),
            Some("a@b.c")
        );
        assert_eq!(return_path(b"Return-Path: <>\r\n\r\n"), None);
        assert_eq!(
            return_path(b"Subject: x\r\n\r\nReturn-Path: <a@b.c>\r\n"),
            None
        );
    }

    #[test]
    fn only_our_recipients_delivered_to_fields_are_renamed() {
        let m = b"Delivered-To: bob@example.org\r\nDelivered-To: other@x.y\r\nSubject: s\r\n\r\nDelivered-To: bob@example.org\r\n";
        let out = rename_delivered_to(m, &["Bob@example.org".into()]).unwrap();
        assert_eq!(
            out,
            b"X-Original-Delivered-To: bob@example.org\r\nDelivered-To: other@x.y\r\nSubject: s\r\n\r\nDelivered-To: bob@example.org\r\n"
        );
        assert_eq!(rename_delivered_to(m, &["carol@example.org".into()]), None);
    }
}
