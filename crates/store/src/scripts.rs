//! Sieve scripts kept with the account (RFC 5804's model): named scripts, at most one active.
//! The trait is what ManageSieve, the `postern sieve` commands and local delivery use; the
//! Maildir backend keeps them as files beside the Maildir (`sieve/NAME.sieve`, the active one
//! marked the way Pigeonhole marks it) so an admin can read them with Unix tools.
//!
//! Scripts are stored as given: validating them (compiling) is the caller's job.

use crate::Result;
use async_trait::async_trait;

/// One stored script, as listed (RFC 5804 §2.7 LISTSCRIPTS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptInfo {
    /// The script's name (RFC 5804 §1.6: UTF-8, no control characters, at most 1024 octets).
    pub name: String,
    /// Whether it is the active script.
    pub active: bool,
    /// Its size in octets.
    pub size: u64,
}

/// An account's Sieve scripts.
#[async_trait]
pub trait ScriptStore: Send + Sync {
    /// Every script of `account`, sorted by name.
    async fn list_scripts(&self, account: &str) -> Result<Vec<ScriptInfo>>;

    /// The source of script `name`, or `None` when there is none.
    async fn get_script(&self, account: &str, name: &str) -> Result<Option<String>>;

    /// The active script's name and source, or `None` when no script is active.
    async fn active_script(&self, account: &str) -> Result<Option<(String, String)>>;

    /// Creates or replaces script `name` (durably: written, fsynced, then renamed into place).
    async fn put_script(&self, account: &str, name: &str, source: &str) -> Result<()>;

    /// Makes `name` the active script, or deactivates all scripts with `None`
    /// (RFC 5804 §2.8). Fails with a not-found error when `name` does not exist.
    async fn activate_script(&self, account: &str, name: Option<&str>) -> Result<()>;

    /// Deletes script `name`. Refuses the active script (RFC 5804 §2.10: code ACTIVE).
    async fn delete_script(&self, account: &str, name: &str) -> Result<()>;

    /// Renames script `old` to `new`, keeping it active if it was (RFC 5804 §2.11.1).
    async fn rename_script(&self, account: &str, old: &str, new: &str) -> Result<()>;

    /// The vacation settings script that `postern vacation` manages, kept apart from the
    /// user's own scripts and run before them, so turning vacation on or off never touches
    /// the user's filters. `None` when vacation is off.
    async fn vacation_script(&self, account: &str) -> Result<Option<String>>;

    /// Sets (`Some`) or removes (`None`) the vacation script.
    async fn set_vacation_script(&self, account: &str, source: Option<&str>) -> Result<()>;
}
