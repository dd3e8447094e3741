//! QUOTA (RFC 9208): one quota root, "", per account, with the STORAGE limit the administrator
//! set (`postern user quota`); APPEND past it is refused with OVERQUOTA.

use crate::response::{no_code, ok, store_no, Code, Reply};
use crate::session::Session;

impl Session {
    /// The account's storage quota in bytes, if the administrator set one.
    pub(crate) async fn quota_limit(&self) -> Option<u64> {
        match self.srv.directory.account(self.account()).await {
            Ok(Some(a)) => a.quota_bytes,
            Ok(None) => None,
            Err(e) => {
                tracing::warn!("directory error reading the quota: {e}");
                None
            }
        }
    }

    /// RFC 9208 §4.3.1: `NO [OVERQUOTA]` when appending `bytes` more would exceed the quota.
    pub(crate) async fn refuse_over_quota(&self, bytes: u64) -> Option<Reply> {
        let limit = self.quota_limit().await?;
        let usage = self.srv.store.quota_usage(self.account()).await.ok()?;
        (usage.bytes.saturating_add(bytes) > limit).then(|| {
            no_code(
                Code::OverQuota,
                "The message would exceed the mailbox quota",
            )
        })
    }

    /// RFC 9208 §4.1.1 GETQUOTA: the one root "" of the account.
    pub(crate) async fn get_quota(&mut self, root: &[u8]) -> Reply {
        if !root.is_empty() {
            return no_code(Code::NonExistent, "No such quota root");
        }
        match self.quota_response().await {
            Ok(()) => ok("GETQUOTA completed"),
            Err(r) => r,
        }
    }

    /// RFC 9208 §4.1.2 GETQUOTAROOT
    pub(crate) async fn get_quota_root(&mut self, raw: &[u8]) -> Reply {
        let name = match self.mailbox_in(raw) {
            Ok(n) => n,
            Err(r) => return r,
        };
        let account = self.account().to_string();
        if let Err(e) = self.srv.store.status(&account, &name).await {
            return store_no(&e);
        }
        let mut line = b"* QUOTAROOT ".to_vec();
        self.mailbox_out(&mut line, &name);
        line.extend_from_slice(b" \"\"\r\n");
        self.io.write(&line);
        match self.quota_response().await {
            Ok(()) => ok("GETQUOTAROOT completed"),
            Err(r) => r,
        }
    }

    /// RFC 9208 §5.1 QUOTA response: STORAGE in units of 1024 octets, with the account's
    /// limit; without a limit, the usage against the largest limit the grammar allows, so
    /// clients still see the usage. MESSAGE has no limit.
    async fn quota_response(&mut self) -> Result<(), Reply> {
        let usage = self
            .srv
            .store
            .quota_usage(self.account())
            .await
            .map_err(|e| store_no(&e))?;
        let max = i64::MAX as u64;
        let storage_limit = self.quota_limit().await.map_or(max / 1024, |b| b / 1024);
        self.untagged(&format!(
            "QUOTA \"\" (STORAGE {} {storage_limit} MESSAGE {} {max})",
            usage.bytes.div_ceil(1024),
            usage.messages,
        ));
        Ok(())
    }
}
