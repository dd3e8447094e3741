//! Bulk import (`postern import`): many messages per index transaction and one flush per
//! batch instead of one fsync per message.
//!
//! A batch is written to `tmp/` without fsyncs, flushed with one `syncfs`, then renamed into
//! `cur/` (or `new/`) under names carrying their UIDs (and keys) inside one IMMEDIATE
//! transaction; the directories are fsynced and the transaction committed before the call
//! returns, so the whole batch is durable, or none of it is acknowledged. A crash between the
//! renames and the commit leaves files that the next sync adopts with their `,U=` UIDs and
//! `,K=` keys, so a re-run of the import finds them and does not store them twice.

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;

use super::{
    check_size, find_mailbox, lookup, next_uid, open_synced, remove_quietly, MaildirStore,
};
use crate::error::{Result, StoreError};
use crate::maildir::files::{self as maildir, base_with_fields, from_unix_secs, IoContext};
use crate::maildir::index::{self, NewMessage};
use crate::maildir::keywords::KeywordLetters;
use crate::maildir::sync::{self, mailbox_dir, MAX_ADOPTED_UID};
use crate::names::canonical_mailbox;
use crate::types::{AppendOutcome, ImportMessage, ImportOutcome, MailboxEvent};

/// A message written to `tmp/`, waiting for the batch's commit.
struct Staged {
    tmp: PathBuf,
    unique: String,
    size: u64,
    wire_size: u64,
    date: i64,
}

/// Writes a message to the mailbox's `tmp/` under a fresh unique name (with its key), dated
/// with its internal date; fsynced only if `synced` (a batch is flushed at once instead).
fn stage(
    gen: &maildir::NameGen,
    dir: &std::path::Path,
    m: &ImportMessage,
    synced: bool,
) -> Result<Staged> {
    let unique = match &m.key {
        Some(k) => format!("{},K={k}", gen.unique()),
        None => gen.unique(),
    };
    let tmp = dir.join("tmp").join(&unique);
    let mtime = m
        .internal_date
        .map_or_else(std::time::SystemTime::now, from_unix_secs);
    let written = if synced {
        maildir::write_new_file(&tmp, &m.data, Some(mtime))
    } else {
        maildir::write_new_file_unsynced(&tmp, &m.data, mtime)
    };
    if let Err(e) = written {
        remove_quietly(&tmp);
        return Err(e);
    }
    Ok(Staged {
        tmp,
        unique,
        size: m.data.len() as u64,
        wire_size: maildir::wire_size(&m.data),
        date: maildir::unix_secs(mtime),
    })
}

impl MaildirStore {
    /// [`crate::Store::import`]: see its contract. Refuses the whole batch (storing nothing)
    /// if one message is too large or has an invalid key.
    pub fn import(
        &self,
        account: &str,
        name: &str,
        messages: Vec<ImportMessage>,
    ) -> Result<Vec<ImportOutcome>> {
        let canon = canonical_mailbox(name)?;
        for m in &messages {
            check_size(m.data.len())?;
            if let Some(k) = &m.key {
                if !maildir::valid_delivery_key(k) {
                    return Err(StoreError::InvalidDeliveryKey(k.chars().take(80).collect()));
                }
            }
        }
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        self.with(account, |a, gen, ev| {
            let (_, dir) = lookup(a, &canon, gen, ev)?;
            // Keys already stored need no file (a resumed import).
            let known: Vec<bool> = a.read(|tx, _| {
                let Some(mb) = index::mailbox(tx, &canon)? else {
                    return Ok(vec![false; messages.len()]);
                };
                messages
                    .iter()
                    .map(|m| match &m.key {
                        Some(k) => Ok(index::message_by_key(tx, mb.id, k)?.is_some()),
                        None => Ok(false),
                    })
                    .collect()
            })?;
            let mut staged: Vec<Option<Staged>> = Vec::with_capacity(messages.len());
            let cleanup = |staged: &[Option<Staged>]| {
                for s in staged.iter().flatten() {
                    remove_quietly(&s.tmp);
                }
            };
            for (m, &known) in messages.iter().zip(&known) {
                if known {
                    staged.push(None);
                    continue;
                }
                match stage(gen, &dir, m, false) {
                    Ok(st) => staged.push(Some(st)),
                    Err(e) => {
                        cleanup(&staged);
                        return Err(e);
                    }
                }
            }
            // The data of every file of the batch reaches the disk before any is renamed.
            if let Err(e) = maildir::sync_filesystem(&dir) {
                cleanup(&staged);
                return Err(e);
            }
            let mut placed: Vec<PathBuf> = Vec::new();
            let mut lately: Vec<PathBuf> = Vec::new();
            let mut new_events = Vec::new();
            let r = a.write(|tx, root| {
                let (mut mb, dir) = find_mailbox(tx, root, &canon, gen, ev)?;
                let was_current = sync::before_own_change(&mb, &dir)?;
                let mut kw = KeywordLetters::load(&dir);
                let mut keys: HashMap<&str, (u32, u64)> = HashMap::new();
                let mut out = Vec::with_capacity(messages.len());
                for (m, st) in messages.iter().zip(&staged) {
                    let existing = match m.key.as_deref() {
                        Some(k) => match keys.get(k) {
                            Some(&v) => Some(v),
                            None => index::message_by_key(tx, mb.id, k)?,
                        },
                        None => None,
                    };
                    if let Some((uid, modseq)) = existing {
                        if let Some(st) = st {
                            remove_quietly(&st.tmp);
                        }
                        out.push(ImportOutcome {
                            appended: AppendOutcome {
                                uidvalidity: mb.uidvalidity,
                                uid,
                                modseq,
                            },
                            existed: true,
                        });
                        continue;
                    }
                    let late;
                    let st = match st {
                        Some(st) => st,
                        None => {
                            // Its key was there before the transaction and is gone now (the
                            // message was expunged meanwhile): store it after all, synced alone.
                            late = stage(gen, &dir, m, true)?;
                            lately.push(late.tmp.clone());
                            &late
                        }
                    };
                    let uid = match m.uid {
                        Some(u) if u >= mb.uidnext && u <= MAX_ADOPTED_UID => {
                            mb.uidnext = u + 1;
                            u
                        }
                        _ => next_uid(&mut mb)?,
                    };
                    mb.highestmodseq += 1;
                    let modseq = mb.highestmodseq;
                    let base = base_with_fields(&st.unique, st.size, st.wire_size, uid);
                    let rel = if m.recent && m.flags.is_empty() {
                        format!("new/{base}")
                    } else {
                        kw.assign(&dir, &m.flags, gen)?;
                        format!("cur/{}", maildir::file_name(&base, &m.flags, "", &kw))
                    };
                    let dst = dir.join(&rel);
                    fs::rename(&st.tmp, &dst).ctx("rename", &st.tmp)?;
                    placed.push(dst);
                    index::insert_message(
                        tx,
                        mb.id,
                        &NewMessage {
                            uid,
                            flags: &m.flags,
                            modseq,
                            internal_date: st.date,
                            size: st.size,
                            wire_size: st.wire_size,
                            fname: &rel,
                            recent: m.recent,
                            dkey: m.key.as_deref(),
                        },
                    )?;
                    if let Some(k) = m.key.as_deref() {
                        keys.insert(k, (uid, modseq));
                    }
                    new_events.push((mb.name.clone(), MailboxEvent::New { uid }));
                    out.push(ImportOutcome {
                        appended: AppendOutcome {
                            uidvalidity: mb.uidvalidity,
                            uid,
                            modseq,
                        },
                        existed: false,
                    });
                }
                sync::keep_modseq_hint(&dir, &mb, gen)?;
                sync::after_own_change(&mut mb, &dir, was_current)?;
                index::update_mailbox(tx, &mb)?;
                maildir::fsync_dir(&dir.join("cur"))?;
                maildir::fsync_dir(&dir.join("new"))?;
                Ok(out)
            });
            match r {
                Ok(out) => {
                    ev.extend(new_events);
                    Ok(out)
                }
                Err(e) => {
                    // Nothing was acknowledged: take the files back out.
                    for p in &placed {
                        remove_quietly(p);
                    }
                    cleanup(&staged);
                    for p in &lately {
                        remove_quietly(p);
                    }
                    Err(e)
                }
            }
        })
    }

    /// [`crate::Store::adopt_uidvalidity`]: see its contract.
    pub fn adopt_uidvalidity(
        &self,
        account: &str,
        name: &str,
        uidvalidity: u32,
        uidnext: u32,
    ) -> Result<bool> {
        let canon = canonical_mailbox(name)?;
        if uidvalidity == 0 {
            return Ok(false);
        }
        let uidnext = uidnext.clamp(1, MAX_ADOPTED_UID);
        self.with(account, |a, gen, ev| {
            a.write(|tx, root| {
                let (mut mb, dir) = open_synced(tx, root, &canon, gen, ev)?;
                if mb.uidvalidity == uidvalidity {
                    if uidnext > mb.uidnext {
                        mb.uidnext = uidnext;
                        index::update_mailbox(tx, &mb)?;
                        sync::write_meta_hint(&dir, &mb, gen)?;
                    }
                    return Ok(true);
                }
                let (messages, ..) = index::counts(tx, mb.id)?;
                if messages > 0 {
                    return Ok(false);
                }
                if index::uidvalidity_used_elsewhere(tx, mb.id, uidvalidity)? {
                    // Both sides pick UIDVALIDITYs from the clock, so a fresh account's empty
                    // folders can hold the value wanted: an empty one gives it up for a new
                    // one (nothing to re-download); one with mail keeps it.
                    for mut other in index::mailboxes(tx)? {
                        if other.id == mb.id || other.uidvalidity != uidvalidity {
                            continue;
                        }
                        let (n, ..) = index::counts(tx, other.id)?;
                        if n > 0 {
                            return Ok(false);
                        }
                        let fresh = index::next_uidvalidity(tx)?;
                        index::set_uidvalidity(tx, other.id, fresh)?;
                        other.uidvalidity = fresh;
                        other.exact_since = other.highestmodseq;
                        index::update_mailbox(tx, &other)?;
                        sync::write_meta_hint(&mailbox_dir(root, &other.name), &other, gen)?;
                        ev.push((other.name.clone(), MailboxEvent::Invalidated));
                    }
                }
                index::set_uidvalidity(tx, mb.id, uidvalidity)?;
                mb.uidvalidity = uidvalidity;
                // A new UIDVALIDITY starts its UIDs afresh.
                mb.uidnext = uidnext;
                // The old UIDVALIDITY's tombstones are gone: changes are exact from here.
                mb.exact_since = mb.highestmodseq;
                index::update_mailbox(tx, &mb)?;
                sync::write_meta_hint(&dir, &mb, gen)?;
                ev.push((mb.name.clone(), MailboxEvent::Invalidated));
                Ok(true)
            })
        })
    }
}
