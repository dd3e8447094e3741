//! Final delivery with group commit.
//!
//! Each caller writes and fsyncs its own file in `tmp/` (in parallel with the others), then
//! queues itself for its account. Whoever takes the account's lock next commits every queued
//! delivery of that account at once: one IMMEDIATE transaction, one rename each, one fsync per
//! `new/` directory, one WAL commit. The callers whose delivery was committed by another find
//! their result waiting when they get the lock. A failed batch is retried one delivery at a time,
//! so an error reaches only the delivery that caused it; the keys make those retries safe.

use super::{check_size, find_mailbox, lock, next_uid, remove_quietly, MaildirStore};
use crate::error::{Result, StoreError};
use crate::maildir::files::IoContext;
use crate::maildir::files::{self as maildir, base_with_fields};
use crate::maildir::index::{self, NewMessage};
use crate::maildir::keywords::KeywordLetters;
use crate::maildir::sync::{self, mailbox_dir, EventLog};
use crate::names::canonical_mailbox;
use crate::types::{AppendOutcome, Flags, MailboxEvent};
use rusqlite::Transaction;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// Queued deliveries per account.
#[derive(Default)]
pub(super) struct Batches(Mutex<HashMap<String, Vec<Arc<Pending>>>>);

/// One delivery waiting for a group commit.
pub(super) struct Pending {
    canon: String,
    tmp: PathBuf,
    unique: String,
    size: u64,
    wire_size: u64,
    date: i64,
    key: String,
    /// Flags and keywords the message is stored with (Sieve imap4flags, RFC 5232 §5).
    flags: Flags,
    result: Mutex<Option<Result<AppendOutcome>>>,
}

pub(super) fn deliver(
    store: &MaildirStore,
    account: &str,
    name: &str,
    data: &[u8],
    key: &str,
    flags: &Flags,
) -> Result<AppendOutcome> {
    if !maildir::valid_delivery_key(key) {
        return Err(StoreError::InvalidDeliveryKey(
            key.chars().take(80).collect(),
        ));
    }
    let size = check_size(data.len())?;
    let canon = canonical_mailbox(name)?;
    let handle = store.account(account)?;
    let dir = mailbox_dir(&store.account_dir(account)?, &canon);
    if !dir.join("tmp").is_dir() {
        // Not (yet) a mailbox on disk: let the ordinary lookup create or refuse it.
        let root = store.account_dir(account)?;
        store.with(account, |a, gen, ev| {
            a.write(|tx, _| find_mailbox(tx, &root, &canon, gen, ev).map(|_| ()))
        })?;
    }

    // Outside any lock: the expensive part, in parallel with other deliveries.
    let mtime = SystemTime::now();
    let unique = format!("{},K={key}", store.inner.gen.unique());
    let tmp = dir.join("tmp").join(&unique);
    if let Err(e) = maildir::write_new_file(&tmp, data, Some(mtime)) {
        remove_quietly(&tmp);
        return Err(e);
    }
    let me = Arc::new(Pending {
        canon,
        tmp,
        unique,
        size,
        wire_size: maildir::wire_size(data),
        date: maildir::unix_secs(mtime),
        key: key.to_string(),
        flags: flags.clone(),
        result: Mutex::new(None),
    });
    lock(&store.inner.batches.0)
        .entry(account.to_string())
        .or_default()
        .push(me.clone());

    let mut events = EventLog::new();
    {
        let mut a = lock(&handle);
        if lock(&me.result).is_none() {
            let batch = lock(&store.inner.batches.0)
                .remove(account)
                .unwrap_or_default();
            let gen = &store.inner.gen;
            let mut ev = EventLog::new();
            match commit_durably(&mut a, &batch, gen, &mut ev) {
                Ok(results) => {
                    events.extend(ev);
                    for (p, r) in batch.iter().zip(results) {
                        *lock(&p.result) = Some(Ok(r));
                    }
                }
                Err(e) => {
                    tracing::debug!(size = batch.len(), "group commit failed ({e}); one by one");
                    for p in &batch {
                        let mut ev = EventLog::new();
                        let one = std::slice::from_ref(p);
                        let r = commit_durably(&mut a, one, gen, &mut ev);
                        if r.is_ok() {
                            events.extend(ev);
                        } else {
                            remove_quietly(&p.tmp);
                        }
                        *lock(&p.result) = Some(r.map(|mut v| v.remove(0)));
                    }
                }
            }
        }
    }
    store.inner.events.emit(account, events);
    let outcome = lock(&me.result).take();
    outcome.unwrap_or_else(|| Err(StoreError::Corrupt("delivery left without a result".into())))
}

/// Commits a batch and makes it durable: the renames' directory fsyncs run on a helper
/// thread while the index transaction commits (two journal flushes overlap instead of
/// following each other), and nothing is reported delivered until both are done.
fn commit_durably(
    a: &mut super::Account,
    batch: &[Arc<Pending>],
    gen: &maildir::NameGen,
    ev: &mut EventLog,
) -> Result<Vec<AppendOutcome>> {
    std::thread::scope(|scope| {
        let (results, syncing) = a.write(|tx, root| {
            let (results, dirs) = commit(tx, root, batch, gen, ev)?;
            let syncing = scope.spawn(move || -> Result<()> {
                dirs.iter().try_for_each(|d| maildir::fsync_dir(d))
            });
            Ok((results, syncing))
        })?;
        syncing
            .join()
            .map_err(|_| StoreError::Corrupt("directory fsync thread panicked".into()))??;
        Ok(results)
    })
}

/// Places a batch inside one transaction; results in batch order, and the `new/` and `cur/` directories
/// that must be fsynced before any of it counts as delivered (also those of deliveries found
/// already placed: their earlier attempt may have failed before its fsync).
fn commit(
    tx: &Transaction<'_>,
    root: &Path,
    batch: &[Arc<Pending>],
    gen: &maildir::NameGen,
    ev: &mut EventLog,
) -> Result<(Vec<AppendOutcome>, Vec<PathBuf>)> {
    let mut dirs = Vec::new();
    let mut by_mailbox: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, p) in batch.iter().enumerate() {
        by_mailbox.entry(p.canon.as_str()).or_default().push(i);
    }
    let mut results: Vec<Option<AppendOutcome>> = vec![None; batch.len()];
    for (canon, items) in by_mailbox {
        let (mut mb, dir) = find_mailbox(tx, root, canon, gen, ev)?;
        // A delivery that crashed after its rename is adopted here, key included.
        sync::sync_mailbox(tx, &dir, &mut mb, false, gen, ev)?;
        let was_current = sync::before_own_change(&mb, &dir)?;
        let mut placed = 0usize;
        let mut deduplicated = false;
        // Which of new/ and cur/ received a file: only those need their fsync (cur/ only for
        // flagged deliveries, so plain mail pays for one directory, as before Sieve's flags).
        let (mut into_new, mut into_cur) = (false, false);
        let mut keys: HashMap<&str, (u32, u64)> = HashMap::new();
        for i in items {
            let p = &batch[i];
            let existing = match keys.get(p.key.as_str()) {
                Some(&v) => Some(v),
                None => index::message_by_key(tx, mb.id, &p.key)?,
            };
            if let Some((uid, modseq)) = existing {
                // Already delivered: the new copy is not needed.
                remove_quietly(&p.tmp);
                deduplicated = true;
                results[i] = Some(AppendOutcome {
                    uidvalidity: mb.uidvalidity,
                    uid,
                    modseq,
                });
                continue;
            }
            let uid = next_uid(&mut mb)?;
            mb.highestmodseq += 1;
            let modseq = mb.highestmodseq;
            sync::keep_modseq_hint(&dir, &mb, gen)?;
            let base = base_with_fields(&p.unique, p.size, p.wire_size, uid);
            let rel = if p.flags.is_empty() {
                // Maildir: a file in new/ carries no info part.
                into_new = true;
                format!("new/{base}")
            } else {
                // Flags live in the info part, which only cur/ names carry, so that a
                // rebuilt index (and mutt) sees them too.
                let mut kw = KeywordLetters::load(&dir);
                kw.assign(&dir, &p.flags, gen)?;
                into_cur = true;
                format!("cur/{}", maildir::file_name(&base, &p.flags, "", &kw))
            };
            fs::rename(&p.tmp, dir.join(&rel)).ctx("rename", &p.tmp)?;
            index::insert_message(
                tx,
                mb.id,
                &NewMessage {
                    uid,
                    flags: &p.flags,
                    modseq,
                    internal_date: p.date,
                    size: p.size,
                    wire_size: p.wire_size,
                    fname: &rel,
                    recent: true,
                    dkey: Some(&p.key),
                },
            )?;
            keys.insert(&p.key, (uid, modseq));
            ev.push((mb.name.clone(), MailboxEvent::New { uid }));
            results[i] = Some(AppendOutcome {
                uidvalidity: mb.uidvalidity,
                uid,
                modseq,
            });
            placed += 1;
        }
        if placed > 0 {
            sync::after_own_change(&mut mb, &dir, was_current)?;
        }
        // A delivery found already placed may have failed before its fsync, in either one.
        if into_new || deduplicated {
            dirs.push(dir.join("new"));
        }
        if into_cur || deduplicated {
            dirs.push(dir.join("cur"));
        }
        index::update_mailbox(tx, &mb)?;
    }
    let results = results
        .into_iter()
        .map(|r| r.ok_or_else(|| StoreError::Corrupt("delivery missing from its batch".into())))
        .collect::<Result<Vec<_>>>()?;
    Ok((results, dirs))
}
