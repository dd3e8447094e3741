//! The backend-neutral async interface: [`Store`], and the contract every backend keeps.

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::error::Result;
use crate::search::{self, SearchKey, TextMatcher};
use crate::types::{
    AppendOutcome, Changes, CopyOutcome, FlagOp, Flags, FlagsOutcome, ImportMessage, ImportOutcome,
    MailboxEvent, MailboxInfo, MailboxSnapshot, MailboxStatus, MessageMeta, MessagePart,
    QuotaUsage, SpecialUse, UidSet,
};

/// A mail store: accounts, their mailboxes and messages. Protocol crates hold an
/// `Arc<dyn Store>` and know nothing else of the backend (Maildir + SQLite today, PostgreSQL
/// later).
///
/// # Names
/// Signatures carry no file paths. Accounts are ids (`alice@example.org`); mailboxes are
/// UTF-8 names with `/` as the hierarchy separator and `INBOX` matched case-insensitively
/// (RFC 9051 §5.1, see [`crate::names`]); messages are UIDs within a mailbox. A name that is
/// not valid is refused with [`StoreError::InvalidMailboxName`] /
/// [`StoreError::InvalidAccount`](crate::StoreError::InvalidAccount), never touched.
///
/// # The contract every backend keeps
/// * **UIDs** (RFC 9051 §2.3.1.1): within one UIDVALIDITY a mailbox's UIDs are strictly
///   ascending in the order messages were added and are never reused, not even after an
///   expunge, a restart, a crash or a rebuild of whatever index the backend keeps. UIDNEXT is
///   above every UID ever assigned. When a backend cannot keep this (its data was lost), it
///   gives the mailbox a new, larger UIDVALIDITY.
/// * **MODSEQs** (RFC 7162 §3.1): every change to a message (added, flags changed, expunged)
///   gets a MODSEQ strictly above every MODSEQ the mailbox has shown before, including after
///   a crash; HIGHESTMODSEQ never goes backwards. [`Store::changes_since`] reports every change
///   above the given MODSEQ (or says that it cannot, so the client resynchronises).
/// * **Durability**: a method that changes mail ([`Store::append`], [`Store::deliver`],
///   [`Store::copy`], [`Store::move_messages`], [`Store::expunge`],
///   [`Store::remove_messages`], mailbox and account operations) returns `Ok` only once the
///   change survives a machine crash (DESIGN principle 1: acknowledged means durable). Flag
///   changes and `\Recent` claims may lose their last moments to a machine crash, but never
///   break the MODSEQ rule above.
/// * **Atomicity**: each call is all or nothing as other callers see it; COPY and MOVE of a
///   set of messages happen together or not at all (RFC 9051 §6.4.7, RFC 6851 §3.3).
/// * **Concurrency**: every method may be called at once from many tasks, sessions and
///   processes on the same account and mailbox. Each observes a consistent state; concurrent
///   appends get distinct UIDs; `\Recent` is given to exactly one claimant (RFC 3501 §2.3.2).
/// * **Notifications**: after a change has been made durable, the backend sends its
///   [`MailboxEvent`]s to the receivers from [`Store::subscribe`] of that mailbox in this
///   process. Changes made elsewhere (other processes, other programs) become
///   events once [`Store::refresh`] (or any call that reads the mailbox) has seen them.
/// * **Errors** are [`StoreError`](crate::StoreError)s: the semantic variants say what the
///   caller did wrong; `Io`, `Backend`, `Corrupt` and `Task` are the system's fault
///   ([`StoreError::is_client_error`](crate::StoreError::is_client_error)).
///
/// Methods that read a mailbox first take in changes made outside this process, so what they
/// return is current when they return.
///
/// [`StoreError::InvalidMailboxName`]: crate::StoreError::InvalidMailboxName
#[async_trait]
pub trait Store: Send + Sync {
    /// True if the account has a mail store.
    async fn account_exists(&self, account: &str) -> Result<bool>;
    /// Creates an account with INBOX and the default SPECIAL-USE folders (RFC 6154); fails with
    /// `AccountExists` if it has one.
    async fn create_account(&self, account: &str) -> Result<()>;
    /// Creates the account if missing; true if created.
    async fn ensure_account(&self, account: &str) -> Result<bool>;
    /// Deletes an account and all its mail.
    async fn delete_account(&self, account: &str) -> Result<()>;

    /// All mailboxes with LIST attributes (RFC 9051 §6.3.9, RFC 6154).
    async fn list_mailboxes(&self, account: &str) -> Result<Vec<MailboxInfo>>;
    /// RFC 9051 §6.3.4 CREATE (RFC 6154 §3 USE).
    async fn create_mailbox(
        &self,
        account: &str,
        mailbox: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<()>;
    /// RFC 9051 §6.3.6 RENAME: children follow; renaming INBOX moves its messages into a new
    /// mailbox and leaves INBOX empty.
    async fn rename_mailbox(&self, account: &str, from: &str, to: &str) -> Result<()>;
    /// RFC 9051 §6.3.5 DELETE; fails with `HasChildren` if there are children.
    async fn delete_mailbox(&self, account: &str, mailbox: &str) -> Result<()>;
    /// Deletes a mailbox and everything below it (admin); returns the deleted names.
    async fn delete_mailbox_recursive(&self, account: &str, mailbox: &str) -> Result<Vec<String>>;
    /// RFC 9051 §6.3.7 SUBSCRIBE / §6.3.8 UNSUBSCRIBE (the name need not exist).
    async fn set_subscribed(&self, account: &str, mailbox: &str, subscribed: bool) -> Result<()>;
    /// The subscription list (names need not exist).
    async fn list_subscriptions(&self, account: &str) -> Result<Vec<String>>;

    /// RFC 9051 §6.3.11 STATUS counters.
    async fn status(&self, account: &str, mailbox: &str) -> Result<MailboxStatus>;
    /// RFC 9051 §6.3.2 SELECT / §6.3.3 EXAMINE snapshot: every message in UID order. With
    /// `claim_recent` the caller takes the `\Recent` marks (RFC 3501 §2.3.2): no later claim
    /// sees them.
    async fn select(
        &self,
        account: &str,
        mailbox: &str,
        claim_recent: bool,
    ) -> Result<MailboxSnapshot>;
    /// Takes in changes made to the mailbox outside this process (other postern processes,
    /// other programs writing the backend's data) and sends them as events to
    /// [`Store::subscribe`]rs. IMAP calls it when polling (NOOP, IDLE). A backend that sees
    /// every change as it happens needs to do nothing: the default does nothing.
    async fn refresh(&self, account: &str, mailbox: &str) -> Result<()> {
        let _ = (account, mailbox);
        Ok(())
    }
    /// RFC 7162 §3.1.4 CHANGEDSINCE / §3.2.5 QRESYNC data: messages changed and UIDs expunged
    /// after `modseq`.
    async fn changes_since(&self, account: &str, mailbox: &str, modseq: u64) -> Result<Changes>;

    /// RFC 9051 §6.3.12 APPEND: a new message with the next UID; durable before it returns.
    async fn append(
        &self,
        account: &str,
        mailbox: &str,
        data: Vec<u8>,
        flags: Flags,
        internal_date: Option<i64>,
    ) -> Result<AppendOutcome>;
    /// Final delivery, idempotent by `key` (letters, digits, `-`, `_`, at most 64): a second
    /// delivery with the same key into the same mailbox returns the first one's outcome and
    /// adds nothing (a retried queue run never duplicates mail). Durable before it returns.
    async fn deliver(
        &self,
        account: &str,
        mailbox: &str,
        data: Vec<u8>,
        key: &str,
    ) -> Result<AppendOutcome>;
    /// [`Store::deliver`] with IMAP flags and keywords set on the stored message (Sieve's
    /// imap4flags, RFC 5232 §5), idempotent by `key` the same way. The default delivers and
    /// then adds the flags (not atomic: a crash between leaves the message unflagged); a
    /// backend that can store both at once overrides it.
    async fn deliver_flagged(
        &self,
        account: &str,
        mailbox: &str,
        data: Vec<u8>,
        key: &str,
        flags: Flags,
    ) -> Result<AppendOutcome> {
        let outcome = self.deliver(account, mailbox, data, key).await?;
        if !flags.is_empty() {
            self.store_flags(
                account,
                mailbox,
                UidSet::single(outcome.uid),
                FlagOp::Add,
                flags,
                None,
            )
            .await?;
        }
        Ok(outcome)
    }
    /// Bulk import (`postern import`): stores `messages` in order, each with its flags,
    /// internal date, `\Recent` state and, when it is not below UIDNEXT, its own UID; a message
    /// whose [`ImportMessage::key`] is already in the mailbox is skipped (reported with
    /// `existed`). Durable before it returns, like [`Store::append`], but a backend may make
    /// the whole batch durable at once (one flush for many messages). Results are in the
    /// order of `messages`. The batch is all or nothing as other callers see it. The default
    /// stores the messages one by one (keys through [`Store::deliver_flagged`], without the
    /// given internal date and UID).
    async fn import(
        &self,
        account: &str,
        mailbox: &str,
        messages: Vec<ImportMessage>,
    ) -> Result<Vec<ImportOutcome>> {
        let mut out = Vec::with_capacity(messages.len());
        for m in messages {
            let appended = match &m.key {
                Some(k) => {
                    self.deliver_flagged(account, mailbox, m.data, k, m.flags)
                        .await?
                }
                None => {
                    self.append(account, mailbox, m.data, m.flags, m.internal_date)
                        .await?
                }
            };
            out.push(ImportOutcome {
                appended,
                existed: false,
            });
        }
        Ok(out)
    }

    /// For an import that keeps its source's UIDs: gives an empty mailbox (no messages) the
    /// source's UIDVALIDITY, so IMAP clients that knew the source mailbox need not download it
    /// again (RFC 9051 §2.3.1.1), and raises its UIDNEXT to at least `uidnext`. An importer
    /// calls it with `uidnext` 1 before importing with [`ImportMessage::uid`]s (which must not
    /// be below UIDNEXT), and with the source's UIDNEXT after, so that UIDs the source used
    /// and expunged are not given again. Returns false,
    /// changing nothing, when that would break the UID contract: the mailbox holds messages
    /// (unless it already has this UIDVALIDITY: a resumed import), another mailbox of the
    /// account holding messages uses that UIDVALIDITY (an empty one is given a new
    /// UIDVALIDITY instead), or the backend cannot. The default returns false.
    async fn adopt_uidvalidity(
        &self,
        account: &str,
        mailbox: &str,
        uidvalidity: u32,
        uidnext: u32,
    ) -> Result<bool> {
        let _ = (account, mailbox, uidvalidity, uidnext);
        Ok(false)
    }
    /// The whole message, as stored.
    async fn fetch(&self, account: &str, mailbox: &str, uid: u32) -> Result<Vec<u8>>;
    /// The header section including the blank line that ends it (RFC 5322 §2.1).
    async fn fetch_header(&self, account: &str, mailbox: &str, uid: u32) -> Result<Vec<u8>>;
    /// Many messages (or their headers) at once, in the order of `uids`; `None` for a UID
    /// that is not there.
    async fn fetch_many(
        &self,
        account: &str,
        mailbox: &str,
        uids: Vec<u32>,
        part: MessagePart,
    ) -> Result<Vec<Option<Vec<u8>>>>;
    /// Messages with a UID above `after`, in UID order; with `claim_recent` the caller takes
    /// their `\Recent` marks (as [`Store::select`] does).
    async fn messages_after(
        &self,
        account: &str,
        mailbox: &str,
        after: u32,
        claim_recent: bool,
    ) -> Result<Vec<MessageMeta>>;
    /// The file holding a message, for a backend that keeps one file per message (Maildir),
    /// so that programs outside postern (new-mail hooks, biff) can read it. `None` for a
    /// backend without such files, or a UID that is not there. Read only.
    async fn message_path(
        &self,
        account: &str,
        mailbox: &str,
        uid: u32,
    ) -> Result<Option<std::path::PathBuf>> {
        let _ = (account, mailbox, uid);
        Ok(None)
    }
    /// Metadata of one message.
    async fn message_meta(&self, account: &str, mailbox: &str, uid: u32) -> Result<MessageMeta>;

    /// RFC 9051 §6.4.6 STORE with RFC 7162 §3.1.3 UNCHANGEDSINCE: messages whose MODSEQ is
    /// above `unchanged_since` are left alone and reported as failed. Each changed message gets
    /// a new MODSEQ.
    async fn store_flags(
        &self,
        account: &str,
        mailbox: &str,
        uids: UidSet,
        op: FlagOp,
        flags: Flags,
        unchanged_since: Option<u64>,
    ) -> Result<FlagsOutcome>;
    /// RFC 9051 §6.4.3 EXPUNGE / RFC 4315 UID EXPUNGE: removes the `\Deleted` messages (of
    /// `uids`, if given); returns their UIDs ascending.
    async fn expunge(&self, account: &str, mailbox: &str, uids: Option<UidSet>)
        -> Result<Vec<u32>>;
    /// Removes messages whatever their flags (POP3 QUIT, RFC 1939 §6); returns the removed UIDs.
    async fn remove_messages(&self, account: &str, mailbox: &str, uids: UidSet)
        -> Result<Vec<u32>>;
    /// RFC 9051 §6.4.7 COPY with RFC 4315 COPYUID data; the copies get new UIDs in the
    /// target.
    async fn copy(&self, account: &str, from: &str, uids: UidSet, to: &str) -> Result<CopyOutcome>;
    /// RFC 6851 MOVE: COPY, then expunge from the source.
    async fn move_messages(
        &self,
        account: &str,
        from: &str,
        uids: UidSet,
        to: &str,
    ) -> Result<CopyOutcome>;

    /// RFC 9208 usage of the account.
    async fn quota_usage(&self, account: &str) -> Result<QuotaUsage>;

    /// RFC 9051 §6.4.4 SEARCH evaluated by the store: the UIDs, ascending, of the `candidates`
    /// that match `key`.
    ///
    /// `candidates` are the caller's view of the mailbox, in UID order, with the flags, MODSEQ
    /// and `\Recent` the caller's session sees (an IMAP session may still show messages that
    /// were expunged, RFC 9051 §7.5.1); a backend answers for those messages only and takes
    /// flags from them. Text keys that need the message (header fields, body, sent date) are
    /// judged by `text` (the protocol's MIME decoding); it sees each message with CRLF line
    /// ends. The default reads the messages one by one; a database backend can do better.
    async fn search(
        &self,
        account: &str,
        mailbox: &str,
        candidates: &[MessageMeta],
        key: &SearchKey,
        text: &dyn TextMatcher,
    ) -> Result<Vec<u32>> {
        search::search_by_message(self, account, mailbox, candidates, key, text).await
    }

    /// The change stream of a mailbox (events after this call; see the contract above).
    fn subscribe(&self, account: &str, mailbox: &str) -> Result<broadcast::Receiver<MailboxEvent>>;
}
