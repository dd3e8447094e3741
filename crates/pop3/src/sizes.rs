//! Opening a maildrop: the INBOX snapshot plus each message's size as the client receives it
//! (RFC 1939 §11: CRLF line ends). Stored files may use LF, so the size needs a read of the
//! message; a message's content never changes under its UID, so sizes are remembered per
//! (account, UIDVALIDITY, UID) for later sessions of this process.

use crate::maildrop::{transmitted_size, Entry, Maildrop};
use crate::Pop3Error;
use postern_store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::task::JoinSet;

/// The mailbox POP3 serves (RFC 1939 §1: the maildrop).
pub const MAILDROP: &str = "INBOX";

/// Most sizes remembered over all accounts; beyond it the cache starts afresh.
const MAX_CACHED: usize = 2_000_000;

#[derive(Default)]
struct AccountSizes {
    uidvalidity: u32,
    sizes: HashMap<u32, u64>,
}

/// Transmitted sizes known from earlier sessions.
#[derive(Default)]
pub struct SizeCache {
    accounts: Mutex<HashMap<String, AccountSizes>>,
}

impl SizeCache {
    fn known(&self, account: &str, uidvalidity: u32) -> HashMap<u32, u64> {
        let map = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(account) {
            Some(a) if a.uidvalidity == uidvalidity => a.sizes.clone(),
            _ => HashMap::new(),
        }
    }

    /// Replaces the account's entry by the sizes of the messages that exist now.
    fn remember(&self, account: &str, uidvalidity: u32, sizes: HashMap<u32, u64>) {
        let mut map = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        let others: usize = map
            .iter()
            .filter(|(k, _)| k.as_str() != account)
            .map(|(_, a)| a.sizes.len())
            .sum();
        if others + sizes.len() > MAX_CACHED {
            map.clear();
        }
        map.insert(account.to_owned(), AccountSizes { uidvalidity, sizes });
    }
}

/// Opens the account's maildrop: snapshot, sizes (cached or computed `parallelism` at a time).
/// Messages removed meanwhile by another session are left out.
pub async fn open_maildrop(
    store: &Arc<dyn Store>,
    cache: &SizeCache,
    account: &str,
    parallelism: usize,
) -> Result<Maildrop, Pop3Error> {
    let snapshot = store.select(account, MAILDROP, false).await?;
    let mut known = cache.known(account, snapshot.uidvalidity);
    let missing: Vec<u32> = snapshot
        .messages
        .iter()
        .map(|m| m.uid)
        .filter(|uid| !known.contains_key(uid))
        .collect();
    let mut tasks = JoinSet::new();
    let mut queue = missing.into_iter();
    let mut gone = Vec::new();
    loop {
        while tasks.len() < parallelism.max(1) {
            let Some(uid) = queue.next() else { break };
            let store = store.clone();
            let account = account.to_owned();
            tasks.spawn(async move {
                let r = store.fetch(&account, MAILDROP, uid).await;
                (uid, r.map(|data| transmitted_size(&data)))
            });
        }
        let Some(done) = tasks.join_next().await else {
            break;
        };
        match done? {
            (uid, Ok(size)) => {
                known.insert(uid, size);
            }
            (uid, Err(StoreError::MessageNotFound(_))) => gone.push(uid),
            (_, Err(e)) => return Err(e.into()),
        }
    }
    let mut entries = Vec::with_capacity(snapshot.messages.len());
    let mut sizes = HashMap::with_capacity(snapshot.messages.len());
    for m in &snapshot.messages {
        if let Some(&size) = known.get(&m.uid) {
            entries.push(Entry {
                uid: m.uid,
                size,
                deleted: false,
            });
            sizes.insert(m.uid, size);
        }
    }
    if !gone.is_empty() {
        tracing::debug!(
            count = gone.len(),
            "messages vanished while opening the maildrop"
        );
    }
    cache.remember(account, snapshot.uidvalidity, sizes);
    Ok(Maildrop::new(snapshot.uidvalidity, entries))
}
