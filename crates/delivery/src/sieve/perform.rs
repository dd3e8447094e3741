//! Performing what the script sequence asked: storing (keep, fileinto with flags, `:create`,
//! editheader's edited message), queuing side effects (redirect with SRS, vacation replies,
//! notifications), reject as a 5.7.1 failure, and the duplicate marks last.
//!
//! Idempotent on retry (delivery is keyed by the queue id): stores are keyed by it in each
//! mailbox, and each side effect is recorded in the tracker once queued, so a retry after a
//! failure queues nothing twice. (A crash between queuing and recording can repeat one side
//! effect: at least once, never lost.)

use super::host::store_mailbox_name;
use super::sequence::Filtered;
use super::tracker::TrackKind;
use super::{unix_now, Recipient, SieveSetup};
use crate::headers::trace_headers;
use crate::notify::{announce, Notifier, Stored};
use postern_directory::Directory;
use postern_mail::{EnhancedCode, Status};
use postern_sieve::Action;
use postern_spool::{Envelope, Outcome, QueueId};
use postern_store::{Flags, Store, StoreError};
use std::sync::Arc;

/// One copy to store.
struct Copy {
    mailbox: String,
    flags: Vec<String>,
    create: bool,
    edited: Option<Arc<[u8]>>,
}

/// Where performing stopped, as the queue should see it.
type Step<T> = Result<T, Outcome>;

/// Performs `filtered` for `rcpt`; `key` is the queue id. Each copy stored is announced to
/// `notifier`.
// The arguments are the delivery's context, passed through as they are.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn perform(
    setup: &SieveSetup,
    store: &Arc<dyn Store>,
    directory: &Arc<dyn Directory>,
    rcpt: &Recipient<'_>,
    message: &[u8],
    key: &str,
    filtered: Filtered,
    notifier: Option<&Arc<dyn Notifier>>,
) -> Outcome {
    let mut copies = copies(&filtered, setup.separator);
    // A junk verdict moves the implicit keep (the script decided nothing) to `\Junk`.
    if filtered.implicit_keep.is_some() && crate::junk::is_junk(message) {
        if let Some(keep) = copies.iter_mut().rev().find(|c| c.mailbox == "INBOX") {
            let explicit_inbox = filtered.actions.iter().any(|a| match a {
                Action::Keep { .. } => true,
                Action::FileInto { mailbox, .. } => mailbox.eq_ignore_ascii_case("INBOX"),
                _ => false,
            });
            if !explicit_inbox {
                match crate::junk::junk_mailbox(store, rcpt.account).await {
                    Ok(name) => keep.mailbox = name,
                    Err(e) => {
                        tracing::warn!(account = %rcpt.account, "junk: no Junk folder ({e}); kept in INBOX")
                    }
                }
            }
        }
    }
    let mut notes = Vec::new();
    for copy in &copies {
        match store_copy(setup, store, rcpt, message, key, copy, notifier).await {
            Ok(note) => notes.push(note),
            Err(outcome) => return outcome,
        }
    }
    if let Err(outcome) = side_effects(setup, directory, rcpt, message, key, &filtered).await {
        return outcome;
    }
    let reject = filtered.actions.iter().find_map(|a| match a {
        Action::Reject { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    // RFC 7352 §3: marks count once the message was handled.
    let now = unix_now();
    for mark in &filtered.duplicate_marks {
        if let Err(e) = setup.tracker.record(
            rcpt.account,
            TrackKind::Duplicate,
            &mark.handle,
            &mark.id,
            now,
            mark.period,
        ) {
            tracing::warn!(account = %rcpt.account, "sieve: cannot record a duplicate mark: {e}");
        }
    }
    match reject {
        // RFC 5429 §2.1: the message is refused; the queue sends the DSN with the reason.
        // A copy stored by another script of the sequence wins: the message is not lost.
        Some(reason) if copies.is_empty() => Outcome::Failed(Status::new(
            EnhancedCode::new(5, 7, 1),
            format!("<{}>: {}", rcpt.address, one_line(&reason)),
        )),
        _ => Outcome::Delivered {
            note: Status::with_text(
                EnhancedCode::SUCCESS,
                if notes.is_empty() {
                    format!("{}: handled by Sieve, not stored", rcpt.account)
                } else {
                    notes.join("; ")
                },
            ),
            accounts: vec![rcpt.account.to_string()],
            forward: Vec::new(),
        },
    }
}

/// The reason of a reject that stands: the sequence rejects and no copy is stored.
pub(crate) fn reject_reason(filtered: &Filtered) -> Option<String> {
    if !copies(filtered, '/').is_empty() {
        return None;
    }
    filtered.actions.iter().find_map(|a| match a {
        Action::Reject { reason, .. } => Some(one_line(reason)),
        _ => None,
    })
}

/// The copies to store: explicit keeps and fileintos in script order, then the implicit keep;
/// one per mailbox (RFC 5228 §2.10.3: a message is filed once into each mailbox), flags merged.
fn copies(filtered: &Filtered, separator: char) -> Vec<Copy> {
    let mut out: Vec<Copy> = Vec::new();
    let mut add = |mailbox: String, flags: &[String], create: bool, edited: &Option<Arc<[u8]>>| {
        let canon = if mailbox.eq_ignore_ascii_case("INBOX") {
            "INBOX".to_string()
        } else {
            mailbox
        };
        match out.iter_mut().find(|c| c.mailbox == canon) {
            Some(c) => {
                for f in flags {
                    if !c.flags.iter().any(|g| g.eq_ignore_ascii_case(f)) {
                        c.flags.push(f.clone());
                    }
                }
                c.create |= create;
            }
            None => out.push(Copy {
                mailbox: canon,
                flags: flags.to_vec(),
                create,
                edited: edited.clone(),
            }),
        }
    };
    for action in &filtered.actions {
        match action {
            Action::Keep { flags, edited } => add("INBOX".into(), flags, false, edited),
            Action::FileInto {
                mailbox,
                flags,
                create,
                edited,
                ..
            } => add(
                store_mailbox_name(mailbox, separator),
                flags,
                *create,
                edited,
            ),
            _ => {}
        }
    }
    if let Some(keep) = &filtered.implicit_keep {
        add("INBOX".into(), &keep.flags, false, &keep.edited);
    }
    out
}

/// IMAP flags as the store takes them; a flag the store refuses is logged and left out.
fn store_flags(names: &[String], account: &str) -> Flags {
    let mut flags = Flags::new();
    for name in names {
        match Flags::from_names([name.as_str()]) {
            Ok(f) => flags = flags.union(&f),
            Err(e) => tracing::warn!(account, flag = %name, "sieve: flag not stored: {e}"),
        }
    }
    flags
}

/// Stores one copy; a folder that does not exist (and may not be created) or a name the store
/// refuses sends the copy to INBOX instead (RFC 5228 §4.1: never lose the message).
async fn store_copy(
    setup: &SieveSetup,
    store: &Arc<dyn Store>,
    rcpt: &Recipient<'_>,
    message: &[u8],
    key: &str,
    copy: &Copy,
    notifier: Option<&Arc<dyn Notifier>>,
) -> Step<String> {
    let mut mailbox = copy.mailbox.clone();
    let mut content = trace_headers(rcpt.sender, rcpt.address);
    let body = copy.edited.as_deref().unwrap_or(message);
    content.extend_from_slice(body);
    let size = content.len() as u64;
    let flags = store_flags(&copy.flags, rcpt.account);
    // The folder is not looked up first: delivery finds it (or says it is missing) in its own
    // index lookup, so the usual case, an existing folder, costs no listing of the account.
    let mut stored = store
        .deliver_flagged(rcpt.account, &mailbox, content.clone(), key, flags.clone())
        .await;
    if mailbox != "INBOX" && matches!(stored, Err(StoreError::MailboxNotFound(_))) {
        if copy.create || setup.config.fileinto_creates_folders {
            // RFC 5490 §3.2 `:create`.
            match store.create_mailbox(rcpt.account, &mailbox, None).await {
                Ok(()) | Err(StoreError::MailboxExists(_)) => {}
                Err(e) if e.is_client_error() => {
                    tracing::warn!(account = %rcpt.account, "sieve: cannot create {mailbox:?} ({e}); kept in INBOX");
                    mailbox = "INBOX".into();
                }
                Err(e) => return Err(deferred(rcpt, &e)),
            }
        } else {
            tracing::warn!(account = %rcpt.account, "sieve: fileinto {mailbox:?}: no such folder; kept in INBOX");
            mailbox = "INBOX".into();
        }
        stored = store
            .deliver_flagged(rcpt.account, &mailbox, content.clone(), key, flags.clone())
            .await;
    }
    let stored = match stored {
        Err(e) if e.is_client_error() && mailbox != "INBOX" && !is_size(&e) => {
            tracing::warn!(account = %rcpt.account, "sieve: cannot file into {mailbox:?} ({e}); kept in INBOX");
            mailbox = "INBOX".into();
            store
                .deliver_flagged(rcpt.account, &mailbox, content, key, flags)
                .await
        }
        other => other,
    };
    match stored {
        Ok(a) => {
            let stored = Stored {
                account: rcpt.account,
                mailbox: &mailbox,
                uid: a.uid,
                sender: rcpt.sender,
                size,
                message: body,
            };
            announce(notifier, store, stored).await;
            Ok(format!(
                "stored in {} {mailbox} as UID {}",
                rcpt.account, a.uid
            ))
        }
        Err(StoreError::MessageTooLarge(n)) => Err(Outcome::Failed(Status::new(
            EnhancedCode::new(5, 3, 4),
            format!(
                "<{}>: message too large for the mailbox ({n} bytes)",
                rcpt.address
            ),
        ))),
        Err(e) if e.is_client_error() => Err(Outcome::Failed(Status::new(
            EnhancedCode::new(5, 2, 0),
            format!("<{}>: cannot store: {e}", rcpt.address),
        ))),
        Err(e) => Err(deferred(rcpt, &e)),
    }
}

fn is_size(e: &StoreError) -> bool {
    matches!(e, StoreError::MessageTooLarge(_))
}

fn deferred(rcpt: &Recipient<'_>, e: &dyn std::fmt::Display) -> Outcome {
    Outcome::Deferred(Status::new(
        EnhancedCode::new(4, 2, 0),
        format!("<{}>: mailbox unavailable: {e}", rcpt.address),
    ))
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Redirects, vacation replies and notifications, each queued once per delivery.
async fn side_effects(
    setup: &SieveSetup,
    directory: &Arc<dyn Directory>,
    rcpt: &Recipient<'_>,
    message: &[u8],
    key: &str,
    filtered: &Filtered,
) -> Step<()> {
    let now = unix_now();
    let our_domain = rcpt
        .account
        .rsplit_once('@')
        .map_or(setup.hostname.as_str(), |(_, d)| d);
    for action in &filtered.actions {
        match action {
            Action::Redirect {
                address, edited, ..
            } => {
                let effect = format!("redirect {address}");
                if already_done(setup, rcpt, key, &effect, now) {
                    continue;
                }
                let domain = address.rsplit_once('@').map_or("", |(_, d)| d);
                let local = directory.is_local_domain(domain).await.map_err(|e| {
                    Outcome::Deferred(Status::new(
                        EnhancedCode::new(4, 3, 0),
                        format!("directory unavailable: {e}"),
                    ))
                })?;
                // RFC 5228 §4.2: the envelope sender is kept, except that mail to a remote
                // domain leaves with an SRS address of ours so SPF there passes.
                let sender = match rcpt.sender {
                    Some(s) if !local => Some(setup.srs.forward(s, our_domain, now)),
                    other => other.map(str::to_string),
                };
                // The Delivered-To of this mailbox goes along: if the message comes back, the
                // delivery here sees the loop (RFC 5321 §6.3).
                let mut content = format!("Delivered-To: {}\r\n", rcpt.address).into_bytes();
                content.extend_from_slice(edited.as_deref().unwrap_or(message));
                // RFC 8689 §4.1: a redirected REQUIRETLS message still requires TLS.
                enqueue(
                    setup,
                    sender,
                    vec![address.clone()],
                    content,
                    rcpt.requiretls,
                )
                .await?;
                done(setup, rcpt, key, &effect, now);
            }
            Action::Vacation(v) => {
                let effect = format!("vacation {} {}", v.handle, v.to);
                if already_done(setup, rcpt, key, &effect, now) {
                    continue;
                }
                // Claimed before it is queued: of two messages delivered at the same moment,
                // only one sends the reply. The interpreter already applied `[sieve]`'s bounds
                // to the period (see `super::limits`).
                match setup.tracker.claim(
                    rcpt.account,
                    TrackKind::Vacation,
                    &v.handle,
                    &v.to.to_ascii_lowercase(),
                    now,
                    v.period,
                ) {
                    Ok(true) => {}
                    Ok(false) => {
                        done(setup, rcpt, key, &effect, now);
                        continue;
                    }
                    Err(e) => {
                        // Better one reply too few than a reply storm (as `vacation_replied`).
                        tracing::warn!(account = %rcpt.account, "sieve: vacation tracker: {e}; no reply sent");
                        continue;
                    }
                }
                let reply = postern_sieve::compose_vacation(
                    v,
                    message,
                    rcpt.address,
                    &postern_mail::date::rfc5322(now),
                    &message_id(setup),
                );
                // RFC 5230 §5.1 / RFC 3834 §3.3: auto-replies go out with the null sender.
                enqueue(setup, None, vec![v.to.clone()], reply, false).await?;
                done(setup, rcpt, key, &effect, now);
            }
            Action::Notify(n) => {
                let effect = format!("notify {}", n.method);
                if already_done(setup, rcpt, key, &effect, now) {
                    continue;
                }
                let envelope = postern_sieve::Envelope {
                    from: rcpt.sender.unwrap_or("").to_string(),
                    to: rcpt.address.to_string(),
                    orig_to: None,
                    auth: None,
                };
                let from = n.from.clone().unwrap_or_else(|| rcpt.address.to_string());
                if let Some((to, body)) = postern_sieve::compose_notification(
                    n,
                    message,
                    &envelope,
                    &from,
                    &postern_mail::date::rfc5322(now),
                    &message_id(setup),
                ) {
                    if !to.is_empty() {
                        // RFC 5436 §2.7: notifications go out with the null sender.
                        enqueue(setup, None, to, body, false).await?;
                    }
                }
                done(setup, rcpt, key, &effect, now);
            }
            _ => {}
        }
    }
    Ok(())
}

/// Side-effect records outlive any retry of the message (the queue gives up after days).
const EFFECT_PERIOD: u64 = 30 * 86_400;

fn already_done(
    setup: &SieveSetup,
    rcpt: &Recipient<'_>,
    key: &str,
    effect: &str,
    now: i64,
) -> bool {
    setup
        .tracker
        .seen(rcpt.account, TrackKind::Effect, key, effect, now)
        .unwrap_or(false)
}

fn done(setup: &SieveSetup, rcpt: &Recipient<'_>, key: &str, effect: &str, now: i64) {
    if let Err(e) = setup.tracker.record(
        rcpt.account,
        TrackKind::Effect,
        key,
        effect,
        now,
        EFFECT_PERIOD,
    ) {
        tracing::warn!(account = %rcpt.account, "sieve: cannot record {effect}: {e}");
    }
}

fn message_id(setup: &SieveSetup) -> String {
    format!("<{}.sieve@{}>", QueueId::generate(), setup.hostname)
}

/// Queues a new message (blocking queue I/O off the async threads).
async fn enqueue(
    setup: &SieveSetup,
    sender: Option<String>,
    recipients: Vec<String>,
    content: Vec<u8>,
    requiretls: bool,
) -> Step<()> {
    let queue = setup.queue.clone();
    let envelope = Envelope {
        sender,
        recipients: recipients
            .into_iter()
            .map(postern_spool::Recipient::new)
            .collect(),
        ret: None,
        envid: None,
        body: postern_spool::BodyType::EightBitMime,
        smtputf8: false,
        requiretls,
        authenticated: None,
        client_ip: None,
        helo: None,
    };
    let queued = tokio::task::spawn_blocking(move || queue.enqueue(&envelope, &content)).await;
    match queued {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(Outcome::Deferred(Status::new(
            EnhancedCode::new(4, 3, 0),
            format!("cannot queue a Sieve message: {e}"),
        ))),
        Err(e) => Err(Outcome::Deferred(Status::new(
            EnhancedCode::new(4, 3, 0),
            format!("cannot queue a Sieve message: {e}"),
        ))),
    }
}
