//! The [`Host`] that local delivery gives the interpreter: the account's mailboxes, its
//! scripts and the global ones for `include`, and the durable tracker for `duplicate` and
//! vacation. Runs on a blocking thread (the interpreter is synchronous); the async store is
//! reached through the runtime handle.

use super::tracker::{TrackKind, Tracker};
use postern_sieve::{IncludeLocation, Script, ScriptCache};
use postern_store::{ScriptStore, Store};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// What a run on behalf of one account may see.
pub(crate) struct DeliveryHost {
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) account: String,
    pub(crate) scripts: Arc<dyn ScriptStore>,
    pub(crate) tracker: Arc<dyn Tracker>,
    pub(crate) cache: Arc<ScriptCache>,
    pub(crate) global_dir: Option<PathBuf>,
    /// The account's mailboxes, listed on the first `mailboxexists` only (most scripts never
    /// ask, and listing reads the account's folders on disk).
    pub(crate) mailboxes: Mailboxes,
    /// The hierarchy separator scripts use (`[mail] hierarchy_separator`).
    pub(crate) separator: char,
    pub(crate) now: i64,
}

/// The account's mailbox names as the store spells them (`/` hierarchy), listed once, when
/// first needed.
pub(crate) struct Mailboxes {
    store: Arc<dyn Store>,
    listed: OnceLock<Vec<String>>,
}

impl Mailboxes {
    /// Mailboxes of the account to be listed from `store` when first asked for.
    pub(crate) fn lazy(store: Arc<dyn Store>) -> Mailboxes {
        Mailboxes {
            store,
            listed: OnceLock::new(),
        }
    }

    /// The names, listed now if not yet (blocking: call it on a blocking thread). A store that
    /// cannot list gives no names: the script sees no mailbox, and the message is not lost.
    fn names(&self, runtime: &tokio::runtime::Handle, account: &str) -> &[String] {
        self.listed.get_or_init(
            || match runtime.block_on(self.store.list_mailboxes(account)) {
                Ok(list) => list.into_iter().map(|m| m.name).collect(),
                Err(e) => {
                    tracing::warn!(account = %account, "sieve: cannot list mailboxes: {e}");
                    Vec::new()
                }
            },
        )
    }
}

impl DeliveryHost {
    fn compile(&self, source: &str, what: &str) -> Result<Arc<Script>, String> {
        self.cache
            .get_or_compile(source)
            .map_err(|e| format!("included script {what}: {e}"))
    }
}

/// A mailbox name as a script gives it, in the store's form (`/` hierarchy).
pub(crate) fn store_mailbox_name(name: &str, separator: char) -> String {
    if separator == '/' {
        name.to_string()
    } else {
        name.replace(separator, "/")
    }
}

/// Whether `name` is a safe file name for a global script (RFC 6609 §3.2: names are plain;
/// nothing may reach outside the global directory).
fn plain_script_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && name.len() <= 255
}

impl postern_sieve::Host for DeliveryHost {
    /// RFC 5490 §3.1 `mailboxexists`; INBOX matched case-insensitively (RFC 9051 §5.1).
    fn mailbox_exists(&self, name: &str) -> bool {
        let name = store_mailbox_name(name, self.separator);
        let names = self.mailboxes.names(&self.runtime, &self.account);
        names.iter().any(|m| {
            m == &name || (m.eq_ignore_ascii_case("INBOX") && name.eq_ignore_ascii_case("INBOX"))
        })
    }

    /// RFC 6609 §3.2: `:personal` from the account's scripts, `:global` from `global_dir`.
    fn include(&mut self, name: &str, location: IncludeLocation) -> Result<Arc<Script>, String> {
        match location {
            IncludeLocation::Personal => {
                let found = self
                    .runtime
                    .block_on(self.scripts.get_script(&self.account, name))
                    .map_err(|e| format!("cannot read script {name:?}: {e}"))?;
                let source = found.ok_or_else(|| format!("no personal script {name:?}"))?;
                self.compile(&source, name)
            }
            IncludeLocation::Global => {
                let dir = self
                    .global_dir
                    .as_ref()
                    .ok_or_else(|| "no global script directory is configured".to_string())?;
                if !plain_script_name(name) {
                    return Err(format!("invalid global script name {name:?}"));
                }
                let path = dir.join(format!("{name}.sieve"));
                let source = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read global script {name:?}: {e}"))?;
                self.compile(&source, name)
            }
        }
    }

    /// RFC 7352 §3: looks only; marks are recorded after the message is stored.
    fn duplicate_seen(&self, handle: &str, id: &str, _period: u64) -> bool {
        match self
            .tracker
            .seen(&self.account, TrackKind::Duplicate, handle, id, self.now)
        {
            Ok(seen) => seen,
            Err(e) => {
                // Unknown is treated as "not seen": the message is delivered, not dropped.
                tracing::warn!(account = %self.account, "sieve duplicate tracker: {e}");
                false
            }
        }
    }

    /// RFC 5230 §4.2: replies are tracked per handle and sender.
    fn vacation_replied(&self, handle: &str, sender: &str, _period: u64) -> bool {
        let key = sender.to_ascii_lowercase();
        match self
            .tracker
            .seen(&self.account, TrackKind::Vacation, handle, &key, self.now)
        {
            Ok(seen) => seen,
            Err(e) => {
                // Unknown is treated as "replied": better one reply too few than a reply storm.
                tracing::warn!(account = %self.account, "sieve vacation tracker: {e}");
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(store_mailbox_name("Lists.rust", '.'), "Lists/rust");
        assert_eq!(store_mailbox_name("Lists/rust", '/'), "Lists/rust");
        assert!(plain_script_name("spam"));
        assert!(!plain_script_name("../spam"));
        assert!(!plain_script_name(".hidden"));
    }
}
