//! The embedded backend: Maildir++ folders with a per-account SQLite index.
//!
//! Plain files are the truth (see `DESIGN.md`): every message is a standard Maildir file whose
//! name carries its UID (`,U=<uid>`) and flags (`:2,<letters>`); everything else in the index
//! can be rebuilt with [`MaildirStore::reindex`]. Changes made by other programs are picked up
//! by a cheap sync before a mailbox is used ([`Store::refresh`](crate::Store::refresh) runs
//! it on demand).
//!
//! Only [`open`] and the concrete [`MaildirStore`] (for the admin commands: `reindex`, the
//! account directory) leave this module; the index, the sync and the file names stay inside.

use std::path::PathBuf;
use std::sync::Arc;

use crate::api::Store;
use crate::error::{Result, StoreError};
use crate::scripts::ScriptStore;

mod backend;
mod files;
mod held;
mod index;
mod keywords;
mod openers;
mod scripts;
mod store;
mod sync;

pub use store::{MaildirStore, DEFAULT_FOLDERS, MAX_MESSAGE_SIZE};

/// Opens (creating it if needed) the Maildir store under `root`; `hostname` goes into the
/// unique names of new message files.
pub fn open(root: impl Into<PathBuf>, hostname: &str) -> Result<MaildirStore> {
    MaildirStore::open(root, hostname)
}

/// [`open`], as the backend-neutral trait object the servers hold.
pub fn open_shared(root: impl Into<PathBuf>, hostname: &str) -> Result<Arc<dyn Store>> {
    Ok(Arc::new(open(root, hostname)?))
}

/// [`open`], as the trait objects the servers hold: the mail store and the Sieve scripts
/// (one store behind both, so scripts live with the account).
pub fn open_shared_with_scripts(
    root: impl Into<PathBuf>,
    hostname: &str,
) -> Result<(Arc<dyn Store>, Arc<dyn ScriptStore>)> {
    let store = open(root, hostname)?;
    Ok((Arc::new(store.clone()), Arc::new(store)))
}

/// SQLite errors leave the backend as [`StoreError::Backend`].
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::backend(e)
    }
}

/// The readers of names and small files found on disk, for the fuzz targets and property
/// tests only: not an API.
#[doc(hidden)]
pub mod internals {
    pub use super::files::{
        file_name, info_for, merge_info, parse_info, parse_name, valid_delivery_key, MetaFile,
    };
    pub use super::keywords::KeywordLetters;
}
