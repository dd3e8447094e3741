//! [`Store`] for [`MaildirStore`]: the synchronous core runs on tokio's blocking pool; reads
//! that are cheap and uncontended run on the calling task.

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::api::Store;
use crate::error::{Result, StoreError};
use crate::maildir::MaildirStore;
use crate::types::{
    AppendOutcome, Changes, CopyOutcome, FlagOp, Flags, FlagsOutcome, ImportMessage, ImportOutcome,
    MailboxEvent, MailboxInfo, MailboxSnapshot, MailboxStatus, MessageMeta, MessagePart,
    QuotaUsage, SpecialUse, UidSet,
};

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
    async fn refresh(&self, account: &str, mailbox: &str) -> Result<()> {
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
    async fn deliver_flagged(
        &self,
        account: &str,
        mailbox: &str,
        data: Vec<u8>,
        key: &str,
        flags: Flags,
    ) -> Result<AppendOutcome> {
        let (a, m, k) = (account.to_owned(), mailbox.to_owned(), key.to_owned());
        self.blocking(move |s| s.deliver_flagged(&a, &m, &data, &k, &flags))
            .await
    }
    async fn import(
        &self,
        account: &str,
        mailbox: &str,
        messages: Vec<ImportMessage>,
    ) -> Result<Vec<ImportOutcome>> {
        let (a, m) = (account.to_owned(), mailbox.to_owned());
        self.blocking(move |s| s.import(&a, &m, messages)).await
    }
    async fn adopt_uidvalidity(
        &self,
        account: &str,
        mailbox: &str,
        uidvalidity: u32,
        uidnext: u32,
    ) -> Result<bool> {
        let (a, m) = (account.to_owned(), mailbox.to_owned());
        self.blocking(move |s| s.adopt_uidvalidity(&a, &m, uidvalidity, uidnext))
            .await
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
    async fn message_path(
        &self,
        account: &str,
        mailbox: &str,
        uid: u32,
    ) -> Result<Option<std::path::PathBuf>> {
        let (a, m) = (account.to_owned(), mailbox.to_owned());
        self.blocking(move |s| s.message_path(&a, &m, uid)).await
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
    fn subscribe(&self, account: &str, mailbox: &str) -> Result<broadcast::Receiver<MailboxEvent>> {
        MaildirStore::subscribe(self, account, mailbox)
    }
}
