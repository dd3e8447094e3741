//! The bookkeeping of retrieval: what each remote folder has given us already
//! ([`FetchState`]), the accounts `postern fetch add` keeps ([`Accounts`]), and the report of a
//! run. [`crate::db`] implements both in SQLite; a PostgreSQL backend implements them again.

use crate::account::{FetchAccount, Secret};
use crate::error::FetchError;
use async_trait::async_trait;
use std::collections::HashMap;
use std::time::SystemTime;

/// A remote message that has been delivered locally.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenMessage {
    /// POP3 UIDL or IMAP UID (decimal).
    pub id: String,
    /// Identity that survives a UIDVALIDITY change (Message-ID and size, as the IMAP driver
    /// computes it); `None` where the driver has none (POP3).
    pub fingerprint: Option<String>,
    /// The account deletes after fetching and the remote has not confirmed the deletion yet
    /// (POP3: deletions take effect at QUIT; IMAP: at EXPUNGE). The next run deletes it
    /// without fetching it again.
    pub delete_pending: bool,
}

/// What one remote folder has given us.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FolderState {
    /// The remote UIDVALIDITY the ids belong to (IMAP; `None` for POP3 or a folder never seen).
    pub uidvalidity: Option<u32>,
    /// Delivered messages by id.
    pub seen: HashMap<String, SeenMessage>,
}

/// Durable retrieval state per account and remote folder. Every method is durable when it
/// returns.
#[async_trait]
pub trait FetchState: Send + Sync {
    /// The state of `folder` of account `account_id` (empty if never fetched).
    async fn load(&self, account_id: &str, folder: &str) -> Result<FolderState, FetchError>;

    /// Records delivered messages (adds or replaces by id).
    async fn record(
        &self,
        account_id: &str,
        folder: &str,
        messages: &[SeenMessage],
    ) -> Result<(), FetchError>;

    /// Forgets ids: the remote deleted them (ours, confirmed, or someone else's), so they
    /// will not come back.
    async fn forget(
        &self,
        account_id: &str,
        folder: &str,
        ids: &[String],
    ) -> Result<(), FetchError>;

    /// Replaces the whole state of a folder: a new UIDVALIDITY (IMAP) with the ids it
    /// already had, as matched by fingerprint.
    async fn replace(
        &self,
        account_id: &str,
        folder: &str,
        state: &FolderState,
    ) -> Result<(), FetchError>;

    /// Forgets everything of an account (it was removed).
    async fn drop_account(&self, account_id: &str) -> Result<(), FetchError>;
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Remote folders looked at.
    pub folders: u32,
    /// Messages delivered.
    pub fetched: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Messages whose key local delivery had stored already (a resumed run).
    pub duplicates: u64,
    /// Messages left on the remote for their size.
    pub too_big: u64,
    /// Messages refused for good by local delivery (left on the remote).
    pub refused: u64,
    /// Messages deleted on the remote.
    pub deleted: u64,
}

impl RunReport {
    /// Adds another run's (or folder's) figures.
    pub fn add(&mut self, other: &RunReport) {
        self.folders += other.folders;
        self.fetched += other.fetched;
        self.bytes += other.bytes;
        self.duplicates += other.duplicates;
        self.too_big += other.too_big;
        self.refused += other.refused;
        self.deleted += other.deleted;
    }
}

/// An account's record for `postern fetch list`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountStatus {
    /// When the last run ended.
    pub last_run: Option<SystemTime>,
    /// When the last successful run ended.
    pub last_success: Option<SystemTime>,
    /// The last run's error, when it failed (`kind: message`).
    pub last_error: Option<String>,
    /// Failed runs since the last success (the back-off grows with it).
    pub failures: u32,
    /// Messages delivered, all runs.
    pub total_fetched: u64,
    /// Their bytes.
    pub total_bytes: u64,
}

/// The accounts added with `postern fetch add` (passwords encrypted at rest), and the status
/// of every account (configuration ones too, by id). Blocking: call from a blocking context.
pub trait Accounts: Send + Sync {
    /// Adds an account; its `id` is assigned here (the one given is ignored) and returned
    /// in the result. Refuses a second account with the same local owner and URL.
    fn add(&self, account: &FetchAccount, password: &Secret) -> Result<FetchAccount, FetchError>;

    /// Removes an account and its state; false if there is none with that id.
    fn remove(&self, id: &str) -> Result<bool, FetchError>;

    /// The accounts, all or those of one local owner, in id order.
    fn list(&self, local: Option<&str>) -> Result<Vec<FetchAccount>, FetchError>;

    /// The decrypted remote password of an account.
    fn password(&self, id: &str) -> Result<Secret, FetchError>;

    /// The status of any account (empty if it never ran).
    fn status(&self, id: &str) -> Result<AccountStatus, FetchError>;

    /// Records the end of a run.
    fn record_run(
        &self,
        id: &str,
        at: SystemTime,
        outcome: Result<&RunReport, &FetchError>,
    ) -> Result<(), FetchError>;
}

/// Told of a run's progress. Every method has a default that does nothing.
pub trait Progress: Send + Sync {
    /// A folder is opened: `new` messages of `bytes` in total will be fetched.
    fn folder(&self, _account: &FetchAccount, _folder: &str, _new: u64, _bytes: u64) {}
    /// A message was delivered.
    fn message(&self, _account: &FetchAccount, _bytes: u64) {}
    /// A sync ended (for a watching IMAP account, every sync after a wake-up).
    fn synced(&self, _account: &FetchAccount, _outcome: &Result<RunReport, FetchError>) {}
}

/// Progress nobody watches.
#[derive(Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
