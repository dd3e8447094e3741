//! The backend-neutral async interface: [`Store`].
//!
//! Protocol crates hold an `Arc<dyn Store>`. Signatures carry no file paths: accounts are ids
//! (`alice@example.org`), mailboxes canonical `/`-separated names, messages UIDs within a
//! mailbox. The Maildir backend runs its synchronous core on tokio's blocking pool; a
//! PostgreSQL backend can implement the same trait.

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::error::{Result, StoreError};
use crate::store::MaildirStore;
use crate::types::{
    AppendOutcome, Changes, CopyOutcome, FlagOp, Flags, FlagsOutcome, MailboxEvent, MailboxInfo,
    MailboxSnapshot, MailboxStatus, MessageMeta, MessagePart, QuotaUsage, ReindexReport,
    SpecialUse, UidSet,
};

/// A mail store. See [`MaildirStore`] for the semantics of each operation.
#[async_trait]
pub trait Store: Send + Sync {
    /// True if the account has a mail store.
    async fn account_exists(&self, account: &str) -> Result<bool>;
    /// Creates an account with INBOX and the default SPECIAL-USE folders.
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
    /// RFC 9051 §6.3.6 RENAME (children follow; INBOX moves its messages).
    async fn rename_mailbox(&self, account: &str, from: &str, to: &str) -> Result<()>;
    /// RFC 9051 §6.3.5 DELETE; fails with [`StoreError::HasChildren`] if there are children.
    async fn delete_mailbox(&self, account: &str, mailbox: &str) -> Result<()>;
    /// Deletes a mailbox and everything below it (admin); returns the deleted names.
    async fn delete_mailbox_recursive(&self, account: &str, mailbox: &str) -> Result<Vec<String>>;
    /// RFC 9051 §6.3.7 SUBSCRIBE / §6.3.8 UNSUBSCRIBE.
    async fn set_subscribed(&self, account: &str, mailbox: &str, subscribed: bool) -> Result<()>;
    /// The subscription list (names need not exist).
    async fn list_subscriptions(&self, account: &str) -> Result<Vec<String>>;

    /// RFC 9051 §6.3.11 STATUS counters.
    async fn status(&self, account: &str, mailbox: &str) -> Result<MailboxStatus>;
    /// RFC 9051 §6.3.2 SELECT / §6.3.3 EXAMINE snapshot.
    async fn select(
        &self,
        account: &str,
        mailbox: &str,
        claim_recent: bool,
    ) -> Result<MailboxSnapshot>;
    /// Picks up changes made by other programs and broadcasts them.
    async fn sync_mailbox(&self, account: &str, mailbox: &str) -> Result<()>;
    /// RFC 7162 §3.1.4 CHANGEDSINCE / §3.2.5 QRESYNC data.
    async fn changes_since(&self, account: &str, mailbox: &str, modseq: u64) -> Result<Changes>;

    /// RFC 9051 §6.3.12 APPEND (durable before it returns).
    async fn append(
        &self,
        account: &str,
        mailbox: &str,
        data: Vec<u8>,
        flags: Flags,
        internal_date: Option<i64>,
    ) -> Result<AppendOutcome>;
    /// Final delivery, idempotent by `key`: see [`MaildirStore::deliver`].
    async fn deliver(
        &self,
        account: &str,
        mailbox: &str,
        data: Vec<u8>,
        key: &str,
    ) -> Result<AppendOutcome>;
    /// The whole message.
    async fn fetch(&self, account: &str, mailbox: &str, uid: u32) -> Result<Vec<u8>>;
    /// The header section including the blank line that ends it.
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
    /// Messages with a UID above `after`; with `claim_recent` the caller takes their
    /// `\Recent` marks: see [`MaildirStore::messages_after`].
    async fn messages_after(
        &self,
        account: &str,
        mailbox: &str,
        after: u32,
        claim_recent: bool,
    ) -> Result<Vec<MessageMeta>>;
    /// Metadata of one message.
    async fn message_meta(&self, account: &str, mailbox: &str, uid: u32) -> Result<MessageMeta>;

    /// RFC 9051 §6.4.6 STORE with RFC 7162 §3.1.3 UNCHANGEDSINCE.
    async fn store_flags(
        &self,
        account: &str,
        mailbox: &str,
        uids: UidSet,
        op: FlagOp,
        flags: Flags,
        unchanged_since: Option<u64>,
    ) -> Result<FlagsOutcome>;
    /// RFC 9051 §6.4.3 EXPUNGE / RFC 4315 UID EXPUNGE (only `\Deleted` messages).
    async fn expunge(&self, account: &str, mailbox: &str, uids: Option<UidSet>)
        -> Result<Vec<u32>>;
    /// Removes messages whatever their flags (POP3 QUIT).
    async fn remove_messages(&self, account: &str, mailbox: &str, uids: UidSet)
        -> Result<Vec<u32>>;
    /// RFC 9051 §6.4.7 COPY with RFC 4315 COPYUID data.
    async fn copy(&self, account: &str, from: &str, uids: UidSet, to: &str) -> Result<CopyOutcome>;
    /// RFC 6851 MOVE.
    async fn move_messages(
        &self,
        account: &str,
        from: &str,
        uids: UidSet,
        to: &str,
    ) -> Result<CopyOutcome>;

    /// RFC 9208 usage of the account.
    async fn quota_usage(&self, account: &str) -> Result<QuotaUsage>;
    /// Rebuilds the account's index from its mail files.
    async fn reindex(&self, account: &str) -> Result<ReindexReport>;

    /// The change stream of a mailbox (events after this call).
    fn subscribe(&self, account: &str, mailbox: &str) -> Result<broadcast::Receiver<MailboxEvent>>;
}

/// Reads up to this many bytes of message files run on the calling task (see
/// [`MaildirStore::try_fetch_many_now`]); larger ones go to the blocking pool.
const INLINE_BYTES: u64 = 256 * 1024;

impl MaildirStore {
    /// One message read on the calling task, when [`MaildirStore::try_fetch_many_now`] can.
    fn try_fetch_one_now(
        &self,
        account: &str,
        mailbox: &str,
        uid: u32,
        part: MessagePart,
    ) -> Option<Vec<u8>> {
        self.try_fetch_many_now(account, mailbox, &[uid], part, INLINE_BYTES)?
            .ok()?
            .pop()?
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&MaildirStore) -> Result<T> + Send + 'static,
    {
        let s = self.clone();
        match tokio::task::spawn_blocking(move || f(&s)).await {
            Ok(r) => r,
            Err(e) => Err(StoreError::Task(e.to_string())),
        }
    }
}

#[async_trait]
impl Store for MaildirStore {
    async fn account_exists(&self, account: &str) -> Result<bool> {
        let a = account.to_owned();
        self.blocking(move |s| s.account_exists(&a)).await
    }
    async fn create_account(&self, account: &str) -> Result<()> {
        let a = account.to_owned();
        self.blocking(move |s| s.create_account(&a)).await
    }
    async fn ensure_account(&self, account: &str) -> Result<bool> {
        let a = account.to_owned();
        self.blocking(move |s| s.ensure_account(&a)).await
    }
    async fn delete_account(&self, account: &str) -> Result<()> {
        let a = account.to_owned();
        self.blocking(move |s| s.delete_account(&a)).await
    }
    async fn list_mailboxes(&self, account: &str) -> Result<Vec<MailboxInfo>> {
        if let Some(list) = self.try_list_now(account) {
            return Ok(list);
        }
        let a = account.to_owned();
        self.blocking(move |s| s.list_mailboxes(&a)).await
    }
    async fn create_mailbox(
        &self,
        account: &str,
        mailbox: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<()> {
        let (a, m) = (account.to_owned(), mailbox.to_owned());
        self.blocking(move |s| s.create_mailbox(&a, &m, special_use))
            .await
    }
    async fn rename_mailbox(&self, account: &str, from: &str, to: &str) -> Result<()> {
        let (a, f, t) = (account.to_owned(), from.to_owned(), to.to_owned());
        self.blocking(move |s| s.rename_mailbox(&a, &f, &t)).await
    }
    async fn delete_mailbox(&self, account: &str, mailbox: &str) -> Result<()> {
        let (a, m) = (account.to_owned(), mailbox.to_owned());
        self.blocking(move |s| s.delete_mailbox(&a, &m)).await
    }
    async fn delete_mailbox_recursive(&self, account: &str, mailbox: &str) -> Result<Vec<String>> {
        let (a, m) = (account.to_owned(), mailbox.to_owned());
        self.blocking(move |s| s.delete_mailbox_recursive(&a, &m))
            .await
    }
    async fn set_subscribed(&self, account: &str, mailbox: &str, subscribed: bool) -> Result<()> {
        let (a, m) = (account.to_owned(), mailbox.to_owned());
        self.blocking(move |s| s.set_subscribed(&a, &m, subscribed))
            .await
    }
    async fn list_subscriptions(&self, account: &str) -> Result<Vec<String>> {
        let a = account.to_owned();
        self.blocking(move |s| s.list_subscriptions(&a)).await
    }
    async fn status(&self, account: &str, mailbox: &str) -> Result<MailboxStatus> {
        if let Some(st) = self.try_status_now(account, mailbox) {
            return Ok(st);
        }
        let (a, m) = (account.to_owned(), mailbox.to_owned());
        self.blocking(move |s| s.status(&a, &m)).await
    }
    async fn select(
        &self,
        account: &str,
        mailbox: &str,
        claim_recent: bool,
    ) -> Result<MailboxSnapshot> {
        if let Some(snap) = self.try_select_now(account, mailbox, claim_recent) {
            return Ok(snap);
        }
        let (a, m) = (account.to_owned(), mailbox.to_owned());
        self.blocking(move |s| s.select(&a, &m, claim_recent)).await
    }
    async fn sync_mailbox(&self, account: &str, mailbox: &str) -> Result<()> {
        if self.try_sync_now(account, mailbox).is_some() {
            return Ok(());
        }
        let (a, m) = (account.to_owned(), mailbox.to_owned());
        self.blocking(move |s| s.sync_mailbox(&a, &m)).await
    }
    async fn changes_since(&self, account: &str, mailbox: &str, modseq: u64) -> Result<Changes> {
        let (a, m) = (account.to_owned(), mailbox.to_owned());
        self.blocking(move |s| s.changes_since(&a, &m, modseq))
            .await
    }
    async fn append(
        &self,
        account: &str,
        mailbox: &str,
        data: Vec<u8>,
        flags: Flags,
        internal_date: Option<i64>,
    ) -> Result<AppendOutcome> {
        let (a, m) = (account.to_owned(), mailbox.to_owned());
        self.blocking(move |s| s.append(&a, &m, &data, &flags, internal_date))
            .await
    }
    async fn deliver(
        &self,
        account: &str,
        mailbox: &str,
        data: Vec<u8>,
        key: &str,
    ) -> Result<AppendOutcome> {
        let (a, m, k) = (account.to_owned(), mailbox.to_owned(), key.to_owned());
        self.blocking(move |s| s.deliver(&a, &m, &data, &k)).await
    }
    async fn fetch(&self, account: &str, mailbox: &str, uid: u32) -> Result<Vec<u8>> {
        if let Some(d) = self.try_fetch_one_now(account, mailbox, uid, MessagePart::Full) {
            return Ok(d);
        }
        let (a, m) = (account.to_owned(), mailbox.to_owned());
        self.blocking(move |s| s.fetch(&a, &m, uid)).await
    }
    async fn fetch_header(&self, account: &str, mailbox: &str, uid: u32) -> Result<Vec<u8>> {
        if let Some(d) = self.try_fetch_one_now(account, mailbox, uid, MessagePart::Header) {
            return Ok(d);
        }
        let (a, m) = (account.to_owned(), mailbox.to_owned());
        self.blocking(move |s| s.fetch_header(&a, &m, uid)).await
    }
    async fn fetch_many(
        &self,
        account: &str,
        mailbox: &str,
        uids: Vec<u32>,
        part: MessagePart,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        if let Some(r) = self.try_fetch_many_now(account, mailbox, &uids, part, INLINE_BYTES) {
            return r;
        }
        let (a, m) = (account.to_owned(), mailbox.to_owned());
        self.blocking(move |s| s.fetch_many(&a, &m, &uids, part))
            .await
    }
    async fn messages_after(
        &self,
        account: &str,
        mailbox: &str,
        after: u32,
        claim_recent: bool,
    ) -> Result<Vec<MessageMeta>> {
        let (a, m) = (account.to_owned(), mailbox.to_owned());
        self.blocking(move |s| s.messages_after(&a, &m, after, claim_recent))
            .await
    }
    async fn message_meta(&self, account: &str, mailbox: &str, uid: u32) -> Result<MessageMeta> {
        let (a, m) = (account.to_owned(), mailbox.to_owned());
        self.blocking(move |s| s.message_meta(&a, &m, uid)).await
    }
    async fn store_flags(
        &self,
        account: &str,
        mailbox: &str,
        uids: UidSet,
        op: FlagOp,
        flags: Flags,
        unchanged_since: Option<u64>,
    ) -> Result<FlagsOutcome> {
        let (a, m) = (account.to_owned(), mailbox.to_owned());
        self.blocking(move |s| s.store_flags(&a, &m, &uids, op, &flags, unchanged_since))
            .await
    }
    async fn expunge(
        &self,
        account: &str,
        mailbox: &str,
        uids: Option<UidSet>,
    ) -> Result<Vec<u32>> {
        let (a, m) = (account.to_owned(), mailbox.to_owned());
        self.blocking(move |s| s.expunge(&a, &m, uids.as_ref()))
            .await
    }
    async fn remove_messages(
        &self,
        account: &str,
        mailbox: &str,
        uids: UidSet,
    ) -> Result<Vec<u32>> {
        let (a, m) = (account.to_owned(), mailbox.to_owned());
        self.blocking(move |s| s.remove_messages(&a, &m, &uids))
            .await
    }
    async fn copy(&self, account: &str, from: &str, uids: UidSet, to: &str) -> Result<CopyOutcome> {
        let (a, f, t) = (account.to_owned(), from.to_owned(), to.to_owned());
        self.blocking(move |s| s.copy(&a, &f, &uids, &t)).await
    }
    async fn move_messages(
        &self,
        account: &str,
        from: &str,
        uids: UidSet,
        to: &str,
    ) -> Result<CopyOutcome> {
        let (a, f, t) = (account.to_owned(), from.to_owned(), to.to_owned());
        self.blocking(move |s| s.move_messages(&a, &f, &uids, &t))
            .await
    }
    async fn quota_usage(&self, account: &str) -> Result<QuotaUsage> {
        let a = account.to_owned();
        self.blocking(move |s| s.quota_usage(&a)).await
    }
    async fn reindex(&self, account: &str) -> Result<ReindexReport> {
        let a = account.to_owned();
        self.blocking(move |s| s.reindex(&a)).await
    }
    fn subscribe(&self, account: &str, mailbox: &str) -> Result<broadcast::Receiver<MailboxEvent>> {
        MaildirStore::subscribe(self, account, mailbox)
    }
}
