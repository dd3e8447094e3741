//! [`MaildirStore`]: the synchronous Maildir++ + SQLite store.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::error::{Result, StoreError};
use crate::events::EventHub;
use crate::maildir::files::{
    self as maildir, base_with_fields, from_unix_secs, is_not_found, parse_info, parse_name,
    MetaFile, NameGen, MAILDIRFOLDER,
};
use crate::maildir::files::{io_at, IoContext};
use crate::maildir::held::{self, HeldFiles, Leaving};
use crate::maildir::index::{self, FileRow, MailboxRow, NewMessage};
use crate::maildir::keywords::KeywordLetters;
use crate::maildir::openers;
use crate::maildir::sync::{self, mailbox_dir, EventLog};
use crate::names::{self, canonical_mailbox, is_descendant, is_inbox, INBOX};
use crate::types::{
    AppendOutcome, Changes, CopyOutcome, FlagChange, FlagOp, Flags, FlagsOutcome, MailboxEvent,
    MailboxInfo, MailboxSnapshot, MailboxStatus, MessageMeta, MessagePart, QuotaUsage,
    ReindexReport, SpecialUse, SystemFlags, UidSet,
};
use crate::Held;

mod deliver;
mod import;

/// Folders every new account gets, with their RFC 6154 roles.
pub const DEFAULT_FOLDERS: [(&str, SpecialUse); 5] = [
    ("Sent", SpecialUse::Sent),
    ("Drafts", SpecialUse::Drafts),
    ("Trash", SpecialUse::Trash),
    ("Junk", SpecialUse::Junk),
    ("Archive", SpecialUse::Archive),
];

/// Largest message the store accepts (a guard; the protocol layers enforce their own limits).
pub const MAX_MESSAGE_SIZE: u64 = 1 << 31;
/// File (in the account directory) that keeps the subscription list beside the mail.
pub(super) const SUBSCRIPTIONS_FILE: &str = "postern-subscriptions";
/// How many idle account handles (each an open SQLite connection) are kept.
const ACCOUNT_CACHE: usize = 256;
/// Spare read-only index connections kept per account (one per session thread is typical).
const READERS_PER_ACCOUNT: usize = 4;
/// How often a cached account's `tmp/` directories are swept.
const TMP_SWEEP_EVERY: Duration = Duration::from_secs(3600);
const STAGING_PREFIX: &str = "postern-staging-";
const DOOMED_PREFIX: &str = "postern-deleted-";

struct Account {
    root: PathBuf,
    conn: Connection,
    swept: Instant,
    /// The last large SELECT snapshot, reused while the index is unchanged.
    snapshot: Option<CachedSnapshot>,
}

/// Mailboxes at least this large keep their SELECT snapshot in memory: loading 100,000 index
/// rows costs ~30 ms, copying them ~2 ms, and clients re-SELECT the same folder all the time.
const SNAPSHOT_CACHE_MIN: usize = 2_000;

/// Messages held in cached snapshots across all accounts, at most (about 100 bytes each).
const SNAPSHOT_CACHE_BUDGET: usize = 2_000_000;

/// A mailbox's messages as of one version of the index.
struct CachedSnapshot {
    /// The store-wide count of cached messages, given back on drop.
    budget: Arc<AtomicUsize>,
    mailbox_id: i64,
    /// `PRAGMA data_version`: changes when another connection (another process) commits.
    data_version: i64,
    uidvalidity: u32,
    uidnext: u32,
    highestmodseq: u64,
    messages: Vec<MessageMeta>,
}

impl Drop for CachedSnapshot {
    fn drop(&mut self) {
        self.budget
            .fetch_sub(self.messages.len(), Ordering::Relaxed);
    }
}

impl CachedSnapshot {
    /// Takes room in the budget for `messages`; `None` when the budget is spent.
    fn new(
        budget: &Arc<AtomicUsize>,
        mb: &MailboxRow,
        data_version: i64,
        messages: Vec<MessageMeta>,
    ) -> Option<CachedSnapshot> {
        let n = messages.len();
        if budget.fetch_add(n, Ordering::Relaxed) + n > SNAPSHOT_CACHE_BUDGET {
            budget.fetch_sub(n, Ordering::Relaxed);
            return None;
        }
        Some(CachedSnapshot {
            budget: budget.clone(),
            mailbox_id: mb.id,
            data_version,
            uidvalidity: mb.uidvalidity,
            uidnext: mb.uidnext,
            highestmodseq: mb.highestmodseq,
            messages,
        })
    }

    fn fits(&self, mb: &MailboxRow, data_version: i64) -> bool {
        (
            self.mailbox_id,
            self.data_version,
            self.uidvalidity,
            self.uidnext,
        ) == (mb.id, data_version, mb.uidvalidity, mb.uidnext)
            && self.highestmodseq == mb.highestmodseq
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        if let Err(e) = openers::unregister(&self.conn) {
            tracing::debug!(error = %e, "cannot unregister from the index");
        }
    }
}

impl Account {
    /// Runs `f` in a `BEGIN IMMEDIATE` transaction and commits if it succeeds.
    fn write<T>(&mut self, f: impl FnOnce(&Transaction<'_>, &Path) -> Result<T>) -> Result<T> {
        // Any change of ours may touch what a cached snapshot holds (recent marks too).
        self.snapshot = None;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let v = f(&tx, &self.root)?;
        tx.commit()?;
        Ok(v)
    }

    /// As [`write`](Self::write) for changes a crash may lose (recent marks): the commit
    /// does not wait for the disk (`synchronous=NORMAL` in WAL mode keeps it consistent).
    fn write_relaxed<T>(
        &mut self,
        f: impl FnOnce(&Transaction<'_>, &Path) -> Result<T>,
    ) -> Result<T> {
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        let r = self.write(f);
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        r
    }

    /// Runs `f` in a deferred (read) transaction: a consistent snapshot in WAL mode.
    fn read<T>(&mut self, f: impl FnOnce(&Transaction<'_>, &Path) -> Result<T>) -> Result<T> {
        let tx = self.conn.transaction()?;
        let v = f(&tx, &self.root)?;
        tx.commit()?;
        Ok(v)
    }
}

struct Inner {
    root: PathBuf,
    gen: NameGen,
    accounts: Mutex<HashMap<String, Arc<Mutex<Account>>>>,
    events: EventHub,
    /// Expunged messages still shown by some session (RFC 2180 §4.1.1).
    held: HeldFiles,
    /// Deliveries waiting for their account's next group commit.
    batches: deliver::Batches,
    /// Messages held by cached SELECT snapshots (see [`SNAPSHOT_CACHE_BUDGET`]).
    snapshot_budget: Arc<AtomicUsize>,
    /// Spare read-only index connections per account (see `MaildirStore::with_reader`).
    readers: RwLock<HashMap<String, Arc<Readers>>>,
    /// Serialises changes to Sieve scripts (check-then-rename sequences, see `scripts.rs`).
    scripts: Mutex<()>,
    /// Script texts delivery reads for every message, kept while their files are unchanged.
    script_texts: super::scripts::ScriptTexts,
}

/// An account's spare read-only index connections.
struct Readers {
    root: PathBuf,
    spares: Mutex<Vec<Connection>>,
}

/// The Maildir++ store with a per-account SQLite index.
///
/// Cheap to clone (it is an `Arc`); all methods are synchronous and may block on disk I/O and
/// on other processes' index transactions, so async callers go through [`crate::Store`].
///
/// On disk, account `local@domain` lives in `<root>/<domain>/<local>/` (see
/// [`names::account_relpath`]):
///
/// ```text
/// cur/ new/ tmp/               INBOX
/// .Sent/ .Drafts/ ...          folders (Maildir++), each with cur/ new/ tmp/ maildirfolder
/// .A.B/                        mailbox "A/B"
/// postern-uidvalidity          per folder: UIDVALIDITY (+ UIDNEXT/MODSEQ hints, role)
/// postern-subscriptions        subscribed names, one per line
/// postern-index.sqlite(-wal)   the index
/// ```
#[derive(Clone)]
pub struct MaildirStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MaildirStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaildirStore")
            .field("root", &self.inner.root)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The files and sizes of messages, in one read transaction; `Ok(None)` if the mailbox is not
/// indexed, `None` entries for UIDs the index does not have.
#[allow(clippy::type_complexity)]
fn locate(
    a: &mut Account,
    canon: &str,
    uids: &[u32],
) -> Result<Option<Vec<Option<(PathBuf, u64)>>>> {
    a.read(|tx, root| locate_in(tx, root, canon, uids))
}

/// [`locate`] on any connection (the caller provides the transaction).
#[allow(clippy::type_complexity)]
fn locate_in(
    conn: &Connection,
    root: &Path,
    canon: &str,
    uids: &[u32],
) -> Result<Option<Vec<Option<(PathBuf, u64)>>>> {
    let Some(mb) = index::mailbox(conn, canon)? else {
        return Ok(None);
    };
    let dir = mailbox_dir(root, canon);
    uids.iter()
        .map(|&uid| {
            Ok(index::file_by_uid(conn, mb.id, uid)?.map(|(fname, size)| (dir.join(fname), size)))
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// Runs `f` in a read transaction when the mailbox is indexed and its directories are as the
/// index last saw them; `None` when a sync is needed first.
fn read_if_current<T>(
    a: &mut Account,
    canon: &str,
    f: impl FnOnce(&Connection, &MailboxRow) -> Result<T>,
) -> Result<Option<T>> {
    a.read(|tx, root| {
        let Some(mb) = index::mailbox(tx, canon)? else {
            return Ok(None);
        };
        match sync::is_current(&mb, &mailbox_dir(root, canon)) {
            Ok(true) => f(tx, &mb).map(Some),
            _ => Ok(None),
        }
    })
}

fn snapshot_of(mb: &MailboxRow, messages: Vec<MessageMeta>) -> MailboxSnapshot {
    MailboxSnapshot {
        uidvalidity: mb.uidvalidity,
        uidnext: mb.uidnext,
        highestmodseq: mb.highestmodseq,
        messages,
    }
}

/// Reads a message file, or only its header section.
fn read_part(path: &Path, part: MessagePart) -> std::io::Result<Vec<u8>> {
    match part {
        MessagePart::Full => fs::read(path),
        MessagePart::Header => read_header(File::open(path)?),
    }
}

/// The header section of a message file: lines up to and including the first empty one.
fn read_header(f: File) -> std::io::Result<Vec<u8>> {
    let mut r = BufReader::new(f);
    let mut out = Vec::new();
    loop {
        let start = out.len();
        if r.read_until(b'\n', &mut out)? == 0 {
            break;
        }
        let line = &out[start..];
        if line == b"\n" || line == b"\r\n" {
            break;
        }
    }
    Ok(out)
}

/// Finds a mailbox row, re-reading the folders on disk once if it is not indexed.
fn find_mailbox(
    tx: &Connection,
    root: &Path,
    name: &str,
    gen: &NameGen,
    events: &mut EventLog,
) -> Result<(MailboxRow, PathBuf)> {
    let canon = canonical_mailbox(name)?;
    if let Some(found) = indexed(tx, root, &canon)? {
        return Ok(found);
    }
    sync::discover_mailboxes(tx, root, gen, events)?;
    indexed(tx, root, &canon)?.ok_or(StoreError::MailboxNotFound(canon))
}

/// The mailbox's row and folder, if it is indexed and its folder is there.
fn indexed(tx: &Connection, root: &Path, canon: &str) -> Result<Option<(MailboxRow, PathBuf)>> {
    let dir = mailbox_dir(root, canon);
    Ok(index::mailbox(tx, canon)?
        .filter(|_| dir.join("cur").is_dir())
        .map(|mb| (mb, dir)))
}

/// Finds a mailbox without syncing: a read transaction if it is indexed, a write transaction
/// (folder discovery) otherwise.
fn lookup(
    a: &mut Account,
    canon: &str,
    gen: &NameGen,
    events: &mut EventLog,
) -> Result<(MailboxRow, PathBuf)> {
    let found = a.read(|tx, root| indexed(tx, root, canon))?;
    match found {
        Some(v) => Ok(v),
        None => a.write(|tx, root| find_mailbox(tx, root, canon, gen, events)),
    }
}

/// Finds and syncs a mailbox (inside a write transaction).
fn open_synced(
    tx: &Connection,
    root: &Path,
    name: &str,
    gen: &NameGen,
    events: &mut EventLog,
) -> Result<(MailboxRow, PathBuf)> {
    let (mut mb, dir) = find_mailbox(tx, root, name, gen, events)?;
    sync::sync_mailbox(tx, &dir, &mut mb, false, gen, events)?;
    Ok((mb, dir))
}

fn check_size(len: usize) -> Result<u64> {
    let size = u64::try_from(len).unwrap_or(u64::MAX);
    if size > MAX_MESSAGE_SIZE {
        return Err(StoreError::MessageTooLarge(size));
    }
    Ok(size)
}

fn next_uid(mb: &mut MailboxRow) -> Result<u32> {
    let uid = mb.uidnext;
    if uid == u32::MAX {
        return Err(StoreError::UidsExhausted(mb.name.clone()));
    }
    mb.uidnext = uid + 1;
    Ok(uid)
}

fn remove_quietly(path: &Path) {
    if let Err(e) = fs::remove_file(path) {
        if !is_not_found(&e) {
            tracing::warn!(path = %path.display(), error = %e, "could not remove file");
        }
    }
}

/// Creates a Maildir (cur/new/tmp) with its metadata file at `dir`, staged under a temporary
/// name in `root` and renamed into place so it appears complete or not at all.
fn make_maildir(
    root: &Path,
    dir: &Path,
    meta: &MetaFile,
    folder: bool,
    gen: &NameGen,
) -> Result<()> {
    let staging = root.join(format!("{STAGING_PREFIX}{}", gen.unique()));
    let build = || -> Result<()> {
        crate::maildir::files::create_private_dir(&staging).ctx("create directory", &staging)?;
        for sub in ["cur", "new", "tmp"] {
            let d = staging.join(sub);
            crate::maildir::files::create_private_dir(&d).ctx("create directory", &d)?;
        }
        if folder {
            maildir::write_new_file(&staging.join(MAILDIRFOLDER), b"", None)?;
        }
        maildir::write_new_file(
            &staging.join(maildir::META_FILE),
            meta.render().as_bytes(),
            None,
        )?;
        maildir::fsync_dir(&staging)?;
        if dir.exists() {
            return Err(io_at(
                "create",
                dir,
                std::io::Error::from(std::io::ErrorKind::AlreadyExists),
            ));
        }
        fs::rename(&staging, dir).ctx("rename", dir)?;
        maildir::fsync_dir(root)
    };
    let r = build();
    if r.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    r
}

/// LIST data of the indexed mailboxes: children, subscriptions, roles; INBOX first.
fn mailbox_infos(c: &Connection, rows: Vec<MailboxRow>) -> Result<Vec<MailboxInfo>> {
    let subs: HashSet<String> = index::subscriptions(c)?.into_iter().collect();
    let mut parents = HashSet::new();
    for r in &rows {
        let mut n = r.name.as_str();
        while let Some(p) = names::parent(n) {
            parents.insert(p.to_owned());
            n = p;
        }
    }
    let mut out: Vec<MailboxInfo> = rows
        .into_iter()
        .map(|r| MailboxInfo {
            has_children: parents.contains(&r.name),
            subscribed: subs.contains(&r.name),
            special_use: r.special_use,
            name: r.name,
        })
        .collect();
    out.sort_by(|a, b| (!is_inbox(&a.name), &a.name).cmp(&(!is_inbox(&b.name), &b.name)));
    Ok(out)
}

/// The STATUS counters of a mailbox (RFC 9051 §6.3.11).
fn status_of(c: &Connection, mb: &MailboxRow) -> Result<MailboxStatus> {
    let (messages, unseen, deleted, recent, size) = index::counts(c, mb.id)?;
    Ok(MailboxStatus {
        messages,
        unseen,
        deleted,
        recent,
        size,
        uidnext: mb.uidnext,
        uidvalidity: mb.uidvalidity,
        highestmodseq: mb.highestmodseq,
    })
}

/// Records the wire sizes an index of schema version 1 lacks (once, reading each file; a
/// file not found now is tried again at the next opening).
fn fill_wire_sizes(tx: &Connection, root: &Path) -> Result<()> {
    let unknown = index::unknown_wire_sizes(tx)?;
    if unknown.is_empty() {
        return Ok(());
    }
    let names: HashMap<i64, String> = index::mailboxes(tx)?
        .into_iter()
        .map(|m| (m.id, m.name))
        .collect();
    for (id, uid, fname) in &unknown {
        let Some(name) = names.get(id) else { continue };
        if let Ok(w) = maildir::file_wire_size(&mailbox_dir(root, name).join(fname)) {
            index::set_wire_size(tx, *id, *uid, w)?;
        }
    }
    tracing::info!(account = %root.display(), messages = unknown.len(), "index upgraded: wire sizes recorded");
    Ok(())
}

/// Removes leftovers of interrupted folder creation/deletion in an account directory.
fn sweep_account(root: &Path, mailboxes: &[MailboxRow]) {
    if let Ok(rd) = fs::read_dir(root) {
        for ent in rd.flatten() {
            let name = ent.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(STAGING_PREFIX) || name.starts_with(DOOMED_PREFIX) {
                let _ = fs::remove_dir_all(ent.path());
            }
        }
    }
    for mb in mailboxes {
        sync::clean_tmp(&mailbox_dir(root, &mb.name));
    }
    held::sweep(root);
}

impl MaildirStore {
    /// Opens (creating the directory if needed) a store rooted at `root`. `hostname` goes into
    /// new message file names, as the Maildir convention asks.
    pub fn open(root: impl Into<PathBuf>, hostname: &str) -> Result<MaildirStore> {
        let root = root.into();
        crate::maildir::files::create_private_dir_all(&root).ctx("create directory", &root)?;
        Ok(MaildirStore {
            inner: Arc::new(Inner {
                root,
                gen: NameGen::new(hostname),
                accounts: Mutex::new(HashMap::new()),
                events: EventHub::default(),
                held: HeldFiles::default(),
                batches: deliver::Batches::default(),
                snapshot_budget: Arc::new(AtomicUsize::new(0)),
                readers: RwLock::new(HashMap::new()),
                scripts: Mutex::new(()),
                script_texts: super::scripts::ScriptTexts::default(),
            }),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The directory of an account (for admin tools; protocol code never needs it).
    pub fn account_dir(&self, account: &str) -> Result<PathBuf> {
        Ok(self.inner.root.join(names::account_relpath(account)?))
    }

    /// The generator of unique names, for temporary files beside the mail.
    pub(super) fn name_gen(&self) -> &NameGen {
        &self.inner.gen
    }

    /// The cache of script texts (see `scripts.rs`).
    pub(super) fn script_texts(&self) -> &super::scripts::ScriptTexts {
        &self.inner.script_texts
    }

    /// Held while Sieve scripts change, so that two changes of one store do not interleave.
    pub(super) fn lock_scripts(&self) -> MutexGuard<'_, ()> {
        lock(&self.inner.scripts)
    }

    fn account(&self, id: &str) -> Result<Arc<Mutex<Account>>> {
        let root = self.account_dir(id)?;
        if let Some(a) = lock(&self.inner.accounts).get(id).cloned() {
            let mut g = lock(&a);
            if g.swept.elapsed() > TMP_SWEEP_EVERY {
                g.swept = Instant::now();
                if let Ok(mbs) = index::mailboxes(&g.conn) {
                    sweep_account(&g.root, &mbs);
                }
            }
            drop(g);
            return Ok(a);
        }
        if !root.join("cur").is_dir() {
            return Err(StoreError::AccountNotFound(id.to_owned()));
        }
        let acct = self.open_account(id, &root)?;
        let mut map = lock(&self.inner.accounts);
        if map.len() >= ACCOUNT_CACHE {
            map.retain(|_, a| Arc::strong_count(a) > 1);
        }
        Ok(map
            .entry(id.to_owned())
            .or_insert_with(|| Arc::new(Mutex::new(acct)))
            .clone())
    }

    fn open_account(&self, id: &str, root: &Path) -> Result<Account> {
        let conn = index::open(root, true)?;
        let mut acct = Account {
            root: root.to_path_buf(),
            conn,
            swept: Instant::now(),
            snapshot: None,
        };
        let mut events = Vec::new();
        let gen = &self.inner.gen;
        let mbs = acct.write(|tx, root| {
            let crashed = openers::register(tx)?;
            if crashed > 0 {
                tracing::warn!(
                    account = id,
                    "the index was not closed cleanly (a crash?): MODSEQs raised so that none is reused"
                );
            }
            sync::discover_mailboxes(tx, root, gen, &mut events)?;
            load_subscriptions_once(tx, root)?;
            fill_wire_sizes(tx, root)?;
            index::mailboxes(tx)
        })?;
        sweep_account(root, &mbs);
        self.inner.events.emit(id, events);
        Ok(acct)
    }

    /// Runs `f` with the locked account; events it logs are broadcast if it succeeds.
    fn with<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut Account, &NameGen, &mut EventLog) -> Result<T>,
    ) -> Result<T> {
        let handle = self.account(id)?;
        let mut events = Vec::new();
        let r = {
            let mut a = lock(&handle);
            f(&mut a, &self.inner.gen, &mut events)
        };
        if r.is_ok() {
            self.inner.events.emit(id, events);
        }
        r
    }

    // ----- accounts -------------------------------------------------------------------------

    /// True if the account has a mail store.
    pub fn account_exists(&self, account: &str) -> Result<bool> {
        Ok(self.account_dir(account)?.join("cur").is_dir())
    }

    /// Creates the account's Maildir with INBOX and the default folders (`Sent`, `Drafts`,
    /// `Trash`, `Junk`, `Archive` with their RFC 6154 roles), all subscribed.
    pub fn create_account(&self, account: &str) -> Result<()> {
        let root = self.account_dir(account)?;
        if root.exists() {
            return Err(StoreError::AccountExists(account.to_owned()));
        }
        let domain_dir = root.parent().unwrap_or(&self.inner.root).to_path_buf();
        crate::maildir::files::create_private_dir_all(&domain_dir)
            .ctx("create directory", &domain_dir)?;
        let gen = &self.inner.gen;
        let staging = domain_dir.join(format!(".{STAGING_PREFIX}{}", gen.unique()));
        let build = || -> Result<()> {
            let base = u32::try_from(maildir::unix_secs(SystemTime::now()))
                .unwrap_or(1)
                .clamp(1, u32::MAX - 16);
            crate::maildir::files::create_private_dir(&staging)
                .ctx("create directory", &staging)?;
            for sub in ["cur", "new", "tmp"] {
                let d = staging.join(sub);
                crate::maildir::files::create_private_dir(&d).ctx("create directory", &d)?;
            }
            let inbox = MetaFile {
                uidvalidity: base,
                uidnext: 1,
                highestmodseq: 1,
                special_use: None,
            };
            maildir::write_new_file(
                &staging.join(maildir::META_FILE),
                inbox.render().as_bytes(),
                None,
            )?;
            let mut subs = String::from("INBOX\n");
            for (i, (name, su)) in DEFAULT_FOLDERS.iter().enumerate() {
                let meta = MetaFile {
                    uidvalidity: base + 1 + u32::try_from(i).unwrap_or(0),
                    uidnext: 1,
                    highestmodseq: 1,
                    special_use: Some(*su),
                };
                let dir = staging.join(names::folder_dir_name(name).unwrap_or_default());
                make_maildir(&staging, &dir, &meta, true, gen)?;
                subs.push_str(name);
                subs.push('\n');
            }
            maildir::write_new_file(&staging.join(SUBSCRIPTIONS_FILE), subs.as_bytes(), None)?;
            maildir::fsync_dir(&staging)?;
            fs::rename(&staging, &root).ctx("rename", &root)?;
            maildir::fsync_dir(&domain_dir)
        };
        if let Err(e) = build() {
            let _ = fs::remove_dir_all(&staging);
            if root.exists() {
                return Err(StoreError::AccountExists(account.to_owned()));
            }
            return Err(e);
        }
        // Build the index now so the first session does not pay for it.
        self.account(account).map(|_| ())
    }

    /// Creates the account if it does not exist; returns true if it was created.
    pub fn ensure_account(&self, account: &str) -> Result<bool> {
        match self.create_account(account) {
            Ok(()) => Ok(true),
            Err(StoreError::AccountExists(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes an account with all its mail. The directory is first renamed away (atomic), then
    /// removed. Sessions with the account's mailboxes open get [`MailboxEvent::Invalidated`].
    pub fn delete_account(&self, account: &str) -> Result<()> {
        let root = self.account_dir(account)?;
        if !root.join("cur").is_dir() {
            return Err(StoreError::AccountNotFound(account.to_owned()));
        }
        let names: Vec<String> = match self.account(account) {
            Ok(h) => index::mailboxes(&lock(&h).conn)
                .map(|v| v.into_iter().map(|m| m.name).collect())
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        lock(&self.inner.accounts).remove(account);
        self.drop_readers(account);
        let domain_dir = root.parent().unwrap_or(&self.inner.root).to_path_buf();
        let doomed = domain_dir.join(format!(".{DOOMED_PREFIX}{}", self.inner.gen.unique()));
        fs::rename(&root, &doomed).ctx("rename", &root)?;
        maildir::fsync_dir(&domain_dir)?;
        if let Err(e) = fs::remove_dir_all(&doomed) {
            tracing::warn!(path = %doomed.display(), error = %e, "could not remove deleted account");
        }
        self.inner.events.emit(
            account,
            names
                .into_iter()
                .map(|n| (n, MailboxEvent::Invalidated))
                .collect(),
        );
        Ok(())
    }

    // ----- mailboxes ------------------------------------------------------------------------

    /// All mailboxes (INBOX first, then by name) with their LIST attributes (RFC 9051 §7.3.1,
    /// RFC 6154). Folders created or removed by other programs are noticed here.
    pub fn list_mailboxes(&self, account: &str) -> Result<Vec<MailboxInfo>> {
        self.with(account, |a, gen, ev| {
            a.write(|tx, root| {
                sync::discover_mailboxes(tx, root, gen, ev)?;
                mailbox_infos(tx, index::mailboxes(tx)?)
            })
        })
    }

    /// [`list_mailboxes`](Self::list_mailboxes) through a reader connection when the folders on
    /// disk are those indexed (nothing to discover): LIST never waits for a writer's fsyncs.
    /// `None` means "use the blocking path".
    pub fn try_list_now(&self, account: &str) -> Option<Vec<MailboxInfo>> {
        self.with_reader(account, |conn, root| {
            let tx = conn.unchecked_transaction().ok()?;
            let rows = index::mailboxes(&tx).ok()?;
            if !sync::folders_match(root, &rows).ok()? {
                return None;
            }
            let out = mailbox_infos(&tx, rows).ok()?;
            tx.commit().ok()?;
            Some(out)
        })
    }

    /// Creates a mailbox, and any missing parents (RFC 9051 §6.3.4), optionally with a
    /// SPECIAL-USE role (RFC 6154 §3 CREATE-SPECIAL-USE).
    pub fn create_mailbox(
        &self,
        account: &str,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<()> {
        let canon = canonical_mailbox(name)?;
        if is_inbox(&canon) {
            return Err(StoreError::MailboxExists(canon));
        }
        self.with(account, |a, gen, ev| {
            a.write(|tx, root| {
                if index::mailbox(tx, &canon)?.is_some()
                    || mailbox_dir(root, &canon).join("cur").exists()
                {
                    sync::discover_mailboxes(tx, root, gen, ev)?;
                    return Err(StoreError::MailboxExists(canon.clone()));
                }
                create_with_parents(tx, root, &canon, special_use, gen)
            })
        })
    }

    /// Renames a mailbox and all its children (RFC 9051 §6.3.6). Missing parents of the new
    /// name are created. Renaming INBOX moves all its messages into a new mailbox of the new
    /// name and leaves INBOX empty; INBOX's children are not renamed.
    /// Subscriptions are not changed. Sessions with a renamed mailbox open get
    /// [`MailboxEvent::Invalidated`].
    pub fn rename_mailbox(&self, account: &str, from: &str, to: &str) -> Result<()> {
        let from = canonical_mailbox(from)?;
        let to = canonical_mailbox(to)?;
        if is_inbox(&to) || from == to {
            return Err(StoreError::MailboxExists(to));
        }
        if is_descendant(&to, &from) {
            return Err(StoreError::NotPermitted(
                "cannot rename a mailbox into its own child",
            ));
        }
        if is_inbox(&from) {
            return self.rename_inbox(account, &to);
        }
        self.with(account, |a, gen, ev| {
            a.write(|tx, root| {
                find_mailbox(tx, root, &from, gen, ev)?;
                let moving: Vec<(MailboxRow, String)> = index::mailboxes(tx)?
                    .into_iter()
                    .filter(|m| m.name == from || is_descendant(&m.name, &from))
                    .map(|m| {
                        let new = format!("{to}{}", &m.name[from.len()..]);
                        (m, new)
                    })
                    .collect();
                for (_, new) in &moving {
                    canonical_mailbox(new)?;
                    if index::mailbox(tx, new)?.is_some()
                        || mailbox_dir(root, new).join("cur").exists()
                    {
                        return Err(StoreError::MailboxExists(new.clone()));
                    }
                }
                if let Some(p) = names::parent(&to) {
                    if index::mailbox(tx, p)?.is_none() {
                        create_with_parents(tx, root, p, None, gen)?;
                    }
                }
                let mut done: Vec<(PathBuf, PathBuf)> = Vec::new();
                for (m, new) in &moving {
                    let (src, dst) = (mailbox_dir(root, &m.name), mailbox_dir(root, new));
                    let r = if dst.exists() {
                        Err(StoreError::MailboxExists(new.clone()))
                    } else {
                        fs::rename(&src, &dst).ctx("rename", &src)
                    };
                    if let Err(e) = r {
                        for (s, d) in done.iter().rev() {
                            let _ = fs::rename(d, s);
                        }
                        return Err(e);
                    }
                    done.push((src, dst));
                }
                maildir::fsync_dir(root)?;
                for (m, new) in &moving {
                    tx.execute(
                        "UPDATE mailboxes SET name=?2 WHERE id=?1",
                        rusqlite::params![m.id, new],
                    )?;
                    ev.push((m.name.clone(), MailboxEvent::Invalidated));
                }
                Ok(())
            })
        })
    }

    fn rename_inbox(&self, account: &str, to: &str) -> Result<()> {
        self.with(account, |a, gen, ev| {
            a.write(|tx, root| {
                if index::mailbox(tx, to)?.is_some() || mailbox_dir(root, to).exists() {
                    return Err(StoreError::MailboxExists(to.to_owned()));
                }
                create_with_parents(tx, root, to, None, gen)?;
                let hold = self.holder(account, root);
                transfer(tx, root, INBOX, &UidSet::all(), to, true, gen, ev, &hold)?;
                Ok(())
            })
        })
    }

    /// Deletes a mailbox with its messages (RFC 9051 §6.3.5). Refuses INBOX, and refuses a
    /// mailbox that has children ([`StoreError::HasChildren`]; in Maildir++ a folder cannot
    /// outlive its messages as `\Noselect`, so the caller must delete the children first or
    /// use [`MaildirStore::delete_mailbox_recursive`]). Subscriptions are kept, as RFC 9051 asks.
    pub fn delete_mailbox(&self, account: &str, name: &str) -> Result<()> {
        self.delete_impl(account, name, false).map(|_| ())
    }

    /// Deletes a mailbox and all mailboxes below it (admin use). Returns the deleted names.
    /// The mailbox itself need not exist if it has children.
    pub fn delete_mailbox_recursive(&self, account: &str, name: &str) -> Result<Vec<String>> {
        self.delete_impl(account, name, true)
    }

    fn delete_impl(&self, account: &str, name: &str, recursive: bool) -> Result<Vec<String>> {
        let canon = canonical_mailbox(name)?;
        if is_inbox(&canon) {
            return Err(StoreError::NotPermitted("INBOX cannot be deleted"));
        }
        let mut doomed_dirs: Vec<(PathBuf, PathBuf)> = Vec::new();
        let deleted = self.with(account, |a, gen, ev| {
            a.write(|tx, root| {
                sync::discover_mailboxes(tx, root, gen, ev)?;
                let rows = index::mailboxes(tx)?;
                let children: Vec<&MailboxRow> = rows
                    .iter()
                    .filter(|m| is_descendant(&m.name, &canon))
                    .collect();
                let this = rows.iter().find(|m| m.name == canon);
                if !recursive && !children.is_empty() {
                    return Err(StoreError::HasChildren(canon.clone()));
                }
                let mut victims: Vec<&MailboxRow> = this.into_iter().collect();
                if recursive {
                    victims.extend(children);
                }
                if victims.is_empty() {
                    return Err(StoreError::MailboxNotFound(canon.clone()));
                }
                // Children first, so a crash never leaves a child without its parent.
                victims.sort_by(|a, b| b.name.cmp(&a.name));
                let mut out = Vec::new();
                for m in victims {
                    let dir = mailbox_dir(root, &m.name);
                    let doomed = root.join(format!("{DOOMED_PREFIX}{}", gen.unique()));
                    fs::rename(&dir, &doomed).ctx("rename", &dir)?;
                    doomed_dirs.push((doomed, dir));
                    index::delete_mailbox(tx, m.id)?;
                    ev.push((m.name.clone(), MailboxEvent::Invalidated));
                    out.push(m.name.clone());
                }
                maildir::fsync_dir(root)?;
                Ok(out)
            })
        });
        for (doomed, original) in doomed_dirs {
            if deleted.is_ok() {
                if let Err(e) = fs::remove_dir_all(&doomed) {
                    tracing::warn!(path = %doomed.display(), error = %e, "could not remove mailbox");
                }
            } else if let Err(e) = fs::rename(&doomed, &original) {
                // The index transaction rolled back: put the folder back.
                tracing::error!(path = %original.display(), error = %e, "could not restore mailbox");
            }
        }
        deleted
    }

    /// Adds or removes a name on the subscription list (RFC 9051 §6.3.7/§6.3.8). The name need
    /// not exist.
    pub fn set_subscribed(&self, account: &str, name: &str, subscribed: bool) -> Result<()> {
        let canon = canonical_mailbox(name)?;
        self.with(account, |a, gen, _| {
            a.write(|tx, root| {
                if index::set_subscribed(tx, &canon, subscribed)? {
                    let mut text = index::subscriptions(tx)?.join("\n");
                    text.push('\n');
                    maildir::write_atomic(&root.join(SUBSCRIPTIONS_FILE), text.as_bytes(), gen)?;
                }
                Ok(())
            })
        })
    }

    /// The subscription list, sorted.
    pub fn list_subscriptions(&self, account: &str) -> Result<Vec<String>> {
        self.with(account, |a, _, _| index::subscriptions(&a.conn))
    }

    // ----- reading --------------------------------------------------------------------------

    /// Runs `f` on a synced mailbox: first through the cheap path (directory mtimes unchanged,
    /// a read snapshot), else in a write transaction after a full sync.
    fn read_mailbox<T>(
        &self,
        account: &str,
        name: &str,
        f: impl Fn(&Connection, &MailboxRow) -> Result<T>,
    ) -> Result<T> {
        let canon = canonical_mailbox(name)?;
        self.with(account, |a, gen, ev| {
            if let Some(v) = read_if_current(a, &canon, &f)? {
                return Ok(v);
            }
            a.write(|tx, root| {
                let (mb, _) = open_synced(tx, root, &canon, gen, ev)?;
                f(tx, &mb)
            })
        })
    }

    /// Brings the index up to date with the mailbox's files and broadcasts what changed
    /// (IMAP NOOP/IDLE polling uses this to see other processes' changes).
    pub fn sync_mailbox(&self, account: &str, name: &str) -> Result<()> {
        self.read_mailbox(account, name, |_, _| Ok(()))
    }

    /// Mailbox counters (RFC 9051 §6.3.11 STATUS).
    pub fn status(&self, account: &str, name: &str) -> Result<MailboxStatus> {
        self.read_mailbox(account, name, status_of)
    }

    /// [`status`](Self::status) on the caller's thread, through a reader connection, when the
    /// account is open and the mailbox's directories are as indexed: a client polling STATUS
    /// on every folder never waits for a writer's fsyncs. `None` means "use the blocking path".
    pub fn try_status_now(&self, account: &str, name: &str) -> Option<MailboxStatus> {
        self.read_current_now(account, name, |tx, mb| status_of(tx, mb).ok())
    }

    /// Opens a mailbox: UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and every message (RFC 9051 §6.3.2).
    /// With `claim_recent` the recent marks are cleared in the index after being reported
    /// (IMAP4rev1 SELECT); without it (EXAMINE, POP3, IMAP4rev2) they are left alone.
    pub fn select(&self, account: &str, name: &str, claim_recent: bool) -> Result<MailboxSnapshot> {
        let snap = |c: &Connection, mb: &MailboxRow| -> Result<MailboxSnapshot> {
            Ok(snapshot_of(mb, index::messages(c, mb.id)?))
        };
        let canon = canonical_mailbox(name)?;
        let budget = &self.inner.snapshot_budget;
        let cached = self.with(account, |a, _, _| {
            let previous = a.snapshot.take();
            let read = read_if_current(a, &canon, |tx, mb| {
                let version: i64 = tx.query_row("PRAGMA data_version", [], |r| r.get(0))?;
                Ok(match previous {
                    Some(p) if p.fits(mb, version) => {
                        (snapshot_of(mb, p.messages.clone()), Some(p))
                    }
                    _ => {
                        let s = snap(tx, mb)?;
                        let keep = (s.messages.len() >= SNAPSHOT_CACHE_MIN)
                            .then(|| CachedSnapshot::new(budget, mb, version, s.messages.clone()))
                            .flatten();
                        (s, keep)
                    }
                })
            })?;
            Ok(read.map(|(s, keep)| {
                a.snapshot = keep;
                s
            }))
        })?;
        let s = match cached {
            Some(s) => s,
            None => self.read_mailbox(account, name, snap)?,
        };
        if !claim_recent || !s.messages.iter().any(|m| m.recent) {
            return Ok(s);
        }
        self.with(account, |a, gen, ev| {
            a.write(|tx, root| {
                let (mb, _) = open_synced(tx, root, name, gen, ev)?;
                let s = snap(tx, &mb)?;
                index::clear_recent(tx, mb.id)?;
                Ok(s)
            })
        })
    }

    /// [`select`](Self::select) through a reader connection, for a mailbox that is current and
    /// small (large ones keep their snapshot cached under the account lock) and when there
    /// are no recent marks to claim: SELECT never waits for a writer's fsyncs. `None` means
    /// "use the blocking path".
    pub fn try_select_now(
        &self,
        account: &str,
        name: &str,
        claim_recent: bool,
    ) -> Option<MailboxSnapshot> {
        self.read_current_now(account, name, |tx, mb| {
            if index::has_at_least(tx, mb.id, SNAPSHOT_CACHE_MIN).ok()? {
                return None;
            }
            let messages = index::messages(tx, mb.id).ok()?;
            if claim_recent && messages.iter().any(|m| m.recent) {
                return None;
            }
            Some(snapshot_of(mb, messages))
        })
    }

    /// Messages changed and UIDs expunged after `modseq` (RFC 7162 §3.1.4, §3.2.5).
    pub fn changes_since(&self, account: &str, name: &str, modseq: u64) -> Result<Changes> {
        self.read_mailbox(account, name, |c, mb| {
            let changed = index::messages_changed_since(c, mb.id, modseq)?;
            let vanished = if modseq >= mb.exact_since {
                index::vanished_since(c, mb.id, modseq)?
                    .into_iter()
                    .collect()
            } else {
                // Tombstones before the index was rebuilt are lost: report every UID that
                // could have existed and does not (RFC 7162 §3.2.5.2 allows this).
                let mut set = UidSet::new();
                let mut next = 1u32;
                for uid in index::uids(c, mb.id)? {
                    if uid > next {
                        set.insert_range(next, uid - 1);
                    }
                    next = uid.saturating_add(1);
                }
                if mb.uidnext > next {
                    set.insert_range(next, mb.uidnext - 1);
                }
                set
            };
            Ok(Changes {
                highestmodseq: mb.highestmodseq,
                changed,
                vanished,
            })
        })
    }

    /// The messages with a UID above `after`, in UID order: what a session adds to its view
    /// when it learns of new mail. With `claim_recent` the caller takes their recent marks,
    /// so exactly one session is told that a message is `\Recent` (RFC 3501 §2.3.2): the
    /// first to ask.
    pub fn messages_after(
        &self,
        account: &str,
        name: &str,
        after: u32,
        claim_recent: bool,
    ) -> Result<Vec<MessageMeta>> {
        let found = self.read_mailbox(account, name, |c, mb| {
            index::messages_after(c, mb.id, after)
        })?;
        if !claim_recent || !found.iter().any(|m| m.recent) {
            return Ok(found);
        }
        let canon = canonical_mailbox(name)?;
        self.with(account, |a, gen, ev| {
            a.write_relaxed(|tx, root| {
                let (mb, _) = open_synced(tx, root, &canon, gen, ev)?;
                let msgs = index::messages_after(tx, mb.id, after)?;
                index::clear_recent_after(tx, mb.id, after)?;
                Ok(msgs)
            })
        })
    }

    /// Metadata of one message (RFC 9051 RFC822.SIZE, INTERNALDATE, FLAGS, RFC 7162 MODSEQ).
    pub fn message_meta(&self, account: &str, name: &str, uid: u32) -> Result<MessageMeta> {
        let canon = canonical_mailbox(name)?;
        self.with(account, |a, gen, ev| {
            let (mb, _) = lookup(a, &canon, gen, ev)?;
            index::message(&a.conn, mb.id, uid)?.ok_or(StoreError::MessageNotFound(uid))
        })
    }

    /// The file holding a message, for programs outside postern that read it (new-mail hooks,
    /// biff); `None` when the mailbox has no such UID.
    pub fn message_path(&self, account: &str, name: &str, uid: u32) -> Result<Option<PathBuf>> {
        let canon = canonical_mailbox(name)?;
        self.with(account, |a, gen, ev| {
            let (mb, dir) = lookup(a, &canon, gen, ev)?;
            Ok(index::file_by_uid(&a.conn, mb.id, uid)?.map(|(fname, _)| dir.join(fname)))
        })
    }

    /// Opens a message's file, syncing once if it moved (another program changed its flags).
    fn open_message(&self, account: &str, name: &str, uid: u32) -> Result<File> {
        let canon = canonical_mailbox(name)?;
        self.with(account, |a, gen, ev| {
            for attempt in 0..2 {
                let (mb, dir) = if attempt == 0 {
                    lookup(a, &canon, gen, ev)?
                } else {
                    a.write(|tx, root| open_synced(tx, root, &canon, gen, ev))?
                };
                let Some(row) = index::file_row_by_uid(&a.conn, mb.id, uid)? else {
                    if attempt == 0 {
                        continue;
                    }
                    return self
                        .inner
                        .held
                        .open(account, &canon, mb.uidvalidity, uid)
                        .ok_or(StoreError::MessageNotFound(uid));
                };
                let path = dir.join(&row.fname);
                match File::open(&path) {
                    Ok(f) => return Ok(f),
                    Err(e) if is_not_found(&e) => continue,
                    Err(e) => return Err(io_at("open", path, e)),
                }
            }
            Err(StoreError::MessageNotFound(uid))
        })
    }

    /// The raw bytes of a message (RFC 9051 §6.4.5 BODY[]).
    pub fn fetch(&self, account: &str, name: &str, uid: u32) -> Result<Vec<u8>> {
        let mut f = self.open_message(account, name, uid)?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)
            .map_err(|e| StoreError::io("read message", format!("uid {uid}"), e))?;
        Ok(buf)
    }

    /// The header of a message, up to and including the empty line that ends it
    /// (RFC 5322 §2.1; RFC 9051 BODY[HEADER]). A message without a body is returned whole.
    pub fn fetch_header(&self, account: &str, name: &str, uid: u32) -> Result<Vec<u8>> {
        let f = self.open_message(account, name, uid)?;
        read_header(f).map_err(|e| StoreError::io("read message", format!("uid {uid}"), e))
    }

    /// Many messages of one mailbox at once (a bulk FETCH): one index transaction for all
    /// of them instead of one per message. `None` for a UID that is not (or no longer) there.
    pub fn fetch_many(
        &self,
        account: &str,
        name: &str,
        uids: &[u32],
        part: MessagePart,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let canon = canonical_mailbox(name)?;
        let files = self.with(account, |a, gen, ev| {
            lookup(a, &canon, gen, ev)?;
            locate(a, &canon, uids)
        })?;
        let mut out = Vec::with_capacity(uids.len());
        let files = files.unwrap_or_else(|| vec![None; uids.len()]);
        for (&uid, file) in uids.iter().zip(files) {
            let read = match file {
                Some((path, _)) => read_part(&path, part),
                None => Err(std::io::ErrorKind::NotFound.into()),
            };
            out.push(match read {
                Ok(d) => Some(d),
                // Renamed by a flag change, or not indexed yet: the single path syncs once.
                Err(e) if is_not_found(&e) => match part {
                    MessagePart::Full => self.fetch(account, name, uid),
                    MessagePart::Header => self.fetch_header(account, name, uid),
                }
                .ok(),
                Err(e) => {
                    return Err(io_at(
                        "read message",
                        PathBuf::from(format!("uid {uid}")),
                        e,
                    ))
                }
            });
        }
        Ok(out)
    }

    /// [`fetch_many`](Self::fetch_many) on the caller's thread when that cannot stall it: the
    /// account is open (its index is read through a reader connection, never waiting for the
    /// account lock), every message is indexed, and their files total at most `max_bytes`
    /// (small files read from the page cache take microseconds). `None` means "use the
    /// blocking path"; it saves an async caller two thread hand-offs.
    pub fn try_fetch_many_now(
        &self,
        account: &str,
        name: &str,
        uids: &[u32],
        part: MessagePart,
        max_bytes: u64,
    ) -> Option<Result<Vec<Option<Vec<u8>>>>> {
        let canon = canonical_mailbox(name).ok()?;
        let files = self.with_reader(account, |conn, root| match uids {
            [uid] => {
                let (fname, size) = index::file_by_name_uid(conn, &canon, *uid).ok()??;
                Some(vec![Some((mailbox_dir(root, &canon).join(fname), size))])
            }
            _ => {
                let tx = conn.unchecked_transaction().ok()?;
                let files = locate_in(&tx, root, &canon, uids).ok()??;
                tx.commit().ok()?;
                Some(files)
            }
        })?;
        let mut total = 0u64;
        for f in &files {
            total = total.saturating_add(f.as_ref()?.1);
        }
        if total > max_bytes {
            return None;
        }
        let mut out = Vec::with_capacity(files.len());
        for (path, _) in files.into_iter().flatten() {
            out.push(Some(read_part(&path, part).ok()?));
        }
        Some(Ok(out))
    }

    /// [`sync_mailbox`](Self::sync_mailbox) on the caller's thread when it is a no-op: the
    /// account is open and the mailbox's directories are as indexed (checked through a reader
    /// connection). `None` means "use the blocking path" (which then syncs).
    pub fn try_sync_now(&self, account: &str, name: &str) -> Option<()> {
        self.read_current_now(account, name, |_, _| Some(()))
    }

    /// Runs `f` in one read transaction on a reader connection (see
    /// [`with_reader`](Self::with_reader)) when the mailbox is indexed and its directories are
    /// as indexed: the cheap path of STATUS, SELECT and NOOP. `None` means "use the blocking
    /// path", which syncs first.
    fn read_current_now<T>(
        &self,
        account: &str,
        name: &str,
        f: impl FnOnce(&Connection, &MailboxRow) -> Option<T>,
    ) -> Option<T> {
        let canon = canonical_mailbox(name).ok()?;
        self.with_reader(account, |conn, root| {
            let tx = conn.unchecked_transaction().ok()?;
            let mb = index::mailbox(&tx, &canon).ok()??;
            if !sync::is_current(&mb, &mailbox_dir(root, &canon)).ok()? {
                return None;
            }
            let v = f(&tx, &mb)?;
            tx.commit().ok()?;
            Some(v)
        })
    }

    /// Runs `f` on a read-only index connection of an account already opened by the writer
    /// path. Readers never wait for the account lock, which writers hold across fsyncs.
    fn with_reader<T>(
        &self,
        account: &str,
        f: impl FnOnce(&Connection, &Path) -> Option<T>,
    ) -> Option<T> {
        let pool = self.inner.readers.read().ok()?.get(account).cloned();
        let pool = match pool {
            Some(p) => p,
            None => {
                if !lock(&self.inner.accounts).contains_key(account) {
                    return None;
                }
                let root = self.account_dir(account).ok()?;
                let mut map = self.inner.readers.write().ok()?;
                if map.len() >= ACCOUNT_CACHE {
                    map.clear();
                }
                map.entry(account.to_owned())
                    .or_insert_with(|| {
                        Arc::new(Readers {
                            root,
                            spares: Mutex::new(Vec::new()),
                        })
                    })
                    .clone()
            }
        };
        let spare = lock(&pool.spares).pop();
        let conn = match spare {
            Some(c) => c,
            None => index::open_reader(&pool.root).ok()?,
        };
        let r = f(&conn, &pool.root);
        let mut spares = lock(&pool.spares);
        if spares.len() < READERS_PER_ACCOUNT {
            spares.push(conn);
        }
        r
    }

    /// Forgets an account's read connections (its index is deleted or rebuilt).
    fn drop_readers(&self, account: &str) {
        if let Ok(mut map) = self.inner.readers.write() {
            map.remove(account);
        }
    }

    // ----- writing --------------------------------------------------------------------------

    /// Stores a message durably and returns its UID (RFC 9051 §6.3.12 APPEND, RFC 4315
    /// APPENDUID). `internal_date` is Unix seconds (default: now); it is also the file's mtime.
    ///
    /// The file is written to `tmp/` and fsynced; then, inside an IMMEDIATE index transaction
    /// that allocates the UID, renamed into `cur/` under its final name (with `,U=<uid>`), the
    /// directory fsynced, and the transaction committed. Only then does this return.
    pub fn append(
        &self,
        account: &str,
        name: &str,
        data: &[u8],
        flags: &Flags,
        internal_date: Option<i64>,
    ) -> Result<AppendOutcome> {
        let size = check_size(data.len())?;
        let canon = canonical_mailbox(name)?;
        let mtime = internal_date.map_or_else(SystemTime::now, from_unix_secs);
        let date = maildir::unix_secs(mtime);
        self.with(account, |a, gen, ev| {
            let (_, dir) = lookup(a, &canon, gen, ev)?;
            let unique = gen.unique();
            let tmp = dir.join("tmp").join(&unique);
            if let Err(e) = maildir::write_new_file(&tmp, data, Some(mtime)) {
                remove_quietly(&tmp);
                return Err(e);
            }
            let mut placed: Option<PathBuf> = None;
            let r = a.write(|tx, root| {
                let (mut mb, dir) = find_mailbox(tx, root, &canon, gen, ev)?;
                let was_current = sync::before_own_change(&mb, &dir)?;
                let uid = next_uid(&mut mb)?;
                mb.highestmodseq += 1;
                let modseq = mb.highestmodseq;
                sync::keep_modseq_hint(&dir, &mb, gen)?;
                let wire_size = maildir::wire_size(data);
                let base = base_with_fields(&unique, size, wire_size, uid);
                let mut kw = KeywordLetters::load(&dir);
                kw.assign(&dir, flags, gen)?;
                let rel = format!("cur/{}", maildir::file_name(&base, flags, "", &kw));
                let dst = dir.join(&rel);
                fs::rename(&tmp, &dst).ctx("rename", &tmp)?;
                placed = Some(dst);
                maildir::fsync_dir(&dir.join("cur"))?;
                index::insert_message(
                    tx,
                    mb.id,
                    &NewMessage {
                        uid,
                        flags,
                        modseq,
                        internal_date: date,
                        size,
                        wire_size,
                        fname: &rel,
                        recent: true,
                        dkey: None,
                    },
                )?;
                sync::after_own_change(&mut mb, &dir, was_current)?;
                index::update_mailbox(tx, &mb)?;
                Ok(AppendOutcome {
                    uidvalidity: mb.uidvalidity,
                    uid,
                    modseq,
                })
            });
            match r {
                Ok(o) => {
                    ev.push((canon.clone(), MailboxEvent::New { uid: o.uid }));
                    Ok(o)
                }
                Err(e) => {
                    // Nothing was acknowledged: take the file back out.
                    remove_quietly(placed.as_deref().unwrap_or(&tmp));
                    Err(e)
                }
            }
        })
    }

    /// Final delivery of a new message (the LDA's append): durable like [`Self::append`], but
    /// the file goes to `new/`, where Maildir readers (mutt, biff-style notifiers) look for new
    /// mail, and it is idempotent by `key` (the queue id): delivering again with a key already in
    /// the mailbox returns that message instead of storing a second copy. The key is also in the
    /// file name (`,K=<key>`), so a crash between the rename and the index commit, or a reindex,
    /// keeps it. Keys are ASCII letters, digits, `-` and `_`, at most 64 characters.
    ///
    /// Concurrent deliveries to one account share a group commit: one index transaction, one
    /// fsync of each `new/` directory and one WAL commit for the whole batch.
    pub fn deliver(
        &self,
        account: &str,
        name: &str,
        data: &[u8],
        key: &str,
    ) -> Result<AppendOutcome> {
        deliver::deliver(self, account, name, data, key, &Flags::new())
    }

    /// [`Self::deliver`] with flags and keywords set on the stored message (Sieve's
    /// imap4flags, RFC 5232 §5): a flagged message goes to `cur/` with its info part, in the
    /// same group commit.
    pub fn deliver_flagged(
        &self,
        account: &str,
        name: &str,
        data: &[u8],
        key: &str,
        flags: &Flags,
    ) -> Result<AppendOutcome> {
        deliver::deliver(self, account, name, data, key, flags)
    }

    /// Changes the flags of the messages in `uids` (RFC 9051 §6.4.6 STORE). With
    /// `unchanged_since`, messages whose MODSEQ is above it are left alone and reported in
    /// [`FlagsOutcome::failed`] (RFC 7162 §3.1.3). Messages whose flags do not change keep their
    /// MODSEQ. Changed messages get one new MODSEQ and their file's `:2,` info is renamed.
    ///
    /// Flag changes do not wait for the disk (as in Dovecot): after a machine crash a change
    /// from the last moments may be lost, never half-applied, since the file name and the
    /// index are reconciled at the next sync. Mail itself (APPEND, delivery, EXPUNGE) is
    /// always synced before the call returns.
    pub fn store_flags(
        &self,
        account: &str,
        name: &str,
        uids: &UidSet,
        op: FlagOp,
        flags: &Flags,
        unchanged_since: Option<u64>,
    ) -> Result<FlagsOutcome> {
        self.with(account, |a, gen, ev| {
            a.write_relaxed(|tx, root| {
                let (mut mb, dir) = open_synced(tx, root, name, gen, ev)?;
                let was_current = sync::before_own_change(&mb, &dir)?;
                let rows = index::file_rows_in(tx, mb.id, uids.ranges())?;
                let mut out = FlagsOutcome::default();
                let mut modseq = None;
                let mut renamed = false;
                let mut kw = KeywordLetters::load(&dir);
                for row in rows {
                    if unchanged_since.is_some_and(|u| row.modseq > u) {
                        out.failed.push(row.uid);
                        continue;
                    }
                    let new = op.apply(&row.flags, flags);
                    if new == row.flags {
                        continue;
                    }
                    kw.assign(&dir, &new, gen)?;
                    let fname = match rename_for_flags(&dir, &row, &new, &kw)? {
                        Some((fname, moved)) => {
                            renamed |= moved;
                            fname
                        }
                        None => continue, // file vanished; the next sync expunges it
                    };
                    let m = *modseq.get_or_insert_with(|| {
                        mb.highestmodseq += 1;
                        mb.highestmodseq
                    });
                    index::update_flags(tx, mb.id, row.uid, &new, m, &fname)?;
                    ev.push((
                        mb.name.clone(),
                        MailboxEvent::Flags {
                            uid: row.uid,
                            flags: new.clone(),
                            modseq: m,
                        },
                    ));
                    out.updated.push(FlagChange {
                        uid: row.uid,
                        flags: new,
                        modseq: m,
                    });
                }
                if renamed {
                    sync::after_own_change(&mut mb, &dir, was_current)?;
                }
                if modseq.is_some() {
                    sync::keep_modseq_hint(&dir, &mb, gen)?;
                    index::update_mailbox(tx, &mb)?;
                }
                Ok(out)
            })
        })
    }

    /// Removes the messages flagged `\Deleted` — all of them, or only those in `uids`
    /// (RFC 9051 §6.4.3 EXPUNGE, RFC 4315 §2.1 UID EXPUNGE). Returns the expunged UIDs.
    pub fn expunge(&self, account: &str, name: &str, uids: Option<&UidSet>) -> Result<Vec<u32>> {
        self.remove_impl(account, name, uids.unwrap_or(&UidSet::all()), true)
    }

    /// Removes the messages in `uids` whatever their flags (POP3 QUIT, RFC 1939 §6; admin).
    pub fn remove_messages(&self, account: &str, name: &str, uids: &UidSet) -> Result<Vec<u32>> {
        self.remove_impl(account, name, uids, false)
    }

    fn remove_impl(
        &self,
        account: &str,
        name: &str,
        uids: &UidSet,
        only_deleted: bool,
    ) -> Result<Vec<u32>> {
        self.with(account, |a, gen, ev| {
            a.write(|tx, root| {
                let (mut mb, dir) = open_synced(tx, root, name, gen, ev)?;
                let was_current = sync::before_own_change(&mb, &dir)?;
                let rows: Vec<FileRow> = index::file_rows_in(tx, mb.id, uids.ranges())?
                    .into_iter()
                    .filter(|r| !only_deleted || r.flags.has(SystemFlags::DELETED))
                    .collect();
                if rows.is_empty() {
                    return Ok(Vec::new());
                }
                mb.highestmodseq += 1;
                let m = mb.highestmodseq;
                sync::reserve_meta_hint(&dir, &mb, gen)?;
                let hold = self.holder(account, root);
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    let path = dir.join(&row.fname);
                    let held = hold(&mb, row.uid, &path);
                    remove_quietly(&path);
                    index::expunge_row(tx, mb.id, row.uid, m)?;
                    ev.push((
                        mb.name.clone(),
                        MailboxEvent::Expunged { uid: row.uid, held },
                    ));
                    out.push(row.uid);
                }
                maildir::fsync_dir(&dir.join("cur"))?;
                maildir::fsync_dir(&dir.join("new"))?;
                sync::after_own_change(&mut mb, &dir, was_current)?;
                index::prune_tombstones(tx, &mut mb, index::TOMBSTONES_KEPT)?;
                index::update_mailbox(tx, &mb)?;
                Ok(out)
            })
        })
    }

    /// Copies messages to another (or the same) mailbox, keeping flags and internal date
    /// (RFC 9051 §6.4.7 COPY, RFC 4315 COPYUID). Files are hard-linked when possible.
    pub fn copy(&self, account: &str, from: &str, uids: &UidSet, to: &str) -> Result<CopyOutcome> {
        self.with(account, |a, gen, ev| {
            a.write(|tx, root| {
                let hold = self.holder(account, root);
                transfer(tx, root, from, uids, to, false, gen, ev, &hold)
            })
        })
    }

    /// Moves messages atomically as far as the index goes (RFC 6851 MOVE): one transaction
    /// inserts them in the destination and expunges them from the source; each file is renamed
    /// across folders, so a crash leaves every message in exactly one place.
    pub fn move_messages(
        &self,
        account: &str,
        from: &str,
        uids: &UidSet,
        to: &str,
    ) -> Result<CopyOutcome> {
        self.with(account, |a, gen, ev| {
            a.write(|tx, root| {
                let hold = self.holder(account, root);
                transfer(tx, root, from, uids, to, true, gen, ev, &hold)
            })
        })
    }

    /// Storage used by the account (RFC 9208 §5 STORAGE and MESSAGE), from the index.
    pub fn quota_usage(&self, account: &str) -> Result<QuotaUsage> {
        self.with(account, |a, _, _| {
            let (bytes, messages) = index::usage(&a.conn)?;
            Ok(QuotaUsage { bytes, messages })
        })
    }

    /// What keeps a leaving message readable for the sessions that still show it: a hard
    /// link when some session listens to its mailbox (see [`crate::maildir::held`]).
    fn holder<'a>(
        &'a self,
        account: &'a str,
        root: &'a Path,
    ) -> impl Fn(&MailboxRow, u32, &Path) -> Option<Held> + 'a {
        // Whether anyone listens, asked once per mailbox rather than once per message.
        let listened: std::cell::Cell<Option<(i64, bool)>> = std::cell::Cell::new(None);
        move |mb, uid, path| {
            let listens = match listened.get() {
                Some((id, l)) if id == mb.id => l,
                _ => {
                    let l = self.inner.events.listeners(account, &mb.name) > 0;
                    listened.set(Some((mb.id, l)));
                    l
                }
            };
            if !listens {
                return None;
            }
            let leaving = Leaving {
                account,
                mailbox: &mb.name,
                uidvalidity: mb.uidvalidity,
                uid,
                path,
            };
            self.inner.held.hold(root, &leaving, &self.inner.gen)
        }
    }

    /// Subscribes to the change stream of a mailbox (see [`crate::events`]).
    pub fn subscribe(
        &self,
        account: &str,
        name: &str,
    ) -> Result<tokio::sync::broadcast::Receiver<MailboxEvent>> {
        names::account_relpath(account)?;
        let canon = canonical_mailbox(name)?;
        Ok(self.inner.events.subscribe(account, &canon))
    }

    /// Rebuilds the account's index from the Maildir files: UIDs from `,U=`, flags from `:2,`,
    /// UIDVALIDITY and roles from `postern-uidvalidity`, subscriptions from
    /// `postern-subscriptions`, keywords from the folders' `dovecot-keywords` letters (all but
    /// a folder's keywords past the 26th, which live only in the index). A corrupt or missing database is replaced. Open sessions get
    /// [`MailboxEvent::Invalidated`].
    pub fn reindex(&self, account: &str) -> Result<ReindexReport> {
        let root = self.account_dir(account)?;
        if !root.join("cur").is_dir() {
            return Err(StoreError::AccountNotFound(account.to_owned()));
        }
        let old = lock(&self.inner.accounts).remove(account);
        self.drop_readers(account);
        let old_names: Vec<String> = old
            .and_then(|h| index::mailboxes(&lock(&h).conn).ok())
            .unwrap_or_default()
            .into_iter()
            .map(|m| m.name)
            .collect();
        let conn = match index::open(&root, true) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(account, error = %e, "index unusable; recreating it");
                for suffix in ["", "-wal", "-shm"] {
                    remove_quietly(&root.join(format!("{}{suffix}", index::INDEX_FILE)));
                }
                index::open(&root, true)?
            }
        };
        let mut acct = Account {
            root: root.clone(),
            conn,
            swept: Instant::now(),
            snapshot: None,
        };
        let gen = &self.inner.gen;
        let mut events: EventLog = old_names
            .into_iter()
            .map(|n| (n, MailboxEvent::Invalidated))
            .collect();
        let report = acct.write(|tx, root| {
            for m in index::mailboxes(tx)? {
                events.push((m.name, MailboxEvent::Invalidated));
            }
            tx.execute_batch(
                "DELETE FROM messages; DELETE FROM tombstones; DELETE FROM mailboxes;",
            )?;
            let r = sync::discover_mailboxes(tx, root, gen, &mut Vec::new())?;
            load_subscriptions_once(tx, root)?;
            let (_, messages) = index::usage(tx)?;
            Ok(ReindexReport {
                mailboxes: index::mailboxes(tx)?.len(),
                messages: usize::try_from(messages).unwrap_or(usize::MAX),
                renumbered: r.renumbered,
            })
        })?;
        let mbs = index::mailboxes(&acct.conn)?;
        sweep_account(&root, &mbs);
        let mut seen = HashSet::new();
        events.retain(|(n, _)| seen.insert(n.clone()));
        lock(&self.inner.accounts).insert(account.to_owned(), Arc::new(Mutex::new(acct)));
        self.inner.events.emit(account, events);
        Ok(report)
    }
}

/// Loads `postern-subscriptions` into a fresh index (once per database).
fn load_subscriptions_once(tx: &Connection, root: &Path) -> Result<()> {
    let done: i64 = tx.query_row(
        "SELECT COUNT(*) FROM meta WHERE key='subscriptions_loaded'",
        [],
        |r| r.get(0),
    )?;
    if done > 0 {
        return Ok(());
    }
    if let Ok(text) = fs::read_to_string(root.join(SUBSCRIPTIONS_FILE)) {
        for line in text.lines() {
            if let Ok(c) = canonical_mailbox(line) {
                index::set_subscribed(tx, &c, true)?;
            }
        }
    }
    tx.execute(
        "INSERT OR REPLACE INTO meta(key, value) VALUES('subscriptions_loaded', 1)",
        [],
    )?;
    Ok(())
}

/// Creates `canon` and any missing ancestors (inside a write transaction).
fn create_with_parents(
    tx: &Connection,
    root: &Path,
    canon: &str,
    special_use: Option<SpecialUse>,
    gen: &NameGen,
) -> Result<()> {
    let mut chain = vec![canon.to_owned()];
    let mut n = canon;
    while let Some(p) = names::parent(n) {
        if is_inbox(p) || index::mailbox(tx, p)?.is_some() {
            break;
        }
        chain.push(p.to_owned());
        n = p;
    }
    for (i, name) in chain.iter().rev().enumerate() {
        let last = i + 1 == chain.len();
        let dir = mailbox_dir(root, name);
        if dir.join("cur").is_dir() {
            // A parent folder that exists on disk but was not indexed yet.
            continue;
        }
        let meta = MetaFile {
            uidvalidity: index::next_uidvalidity(tx)?,
            uidnext: 1,
            highestmodseq: 1,
            special_use: if last { special_use } else { None },
        };
        make_maildir(root, &dir, &meta, true, gen)?;
        index::insert_mailbox(tx, name, meta.uidvalidity, 1, 1, meta.special_use, 0)?;
    }
    Ok(())
}

/// Renames a message file so its `:2,` info matches `new`. Returns the new relative name and
/// whether a rename happened, or `None` if the file is gone.
fn rename_for_flags(
    dir: &Path,
    row: &FileRow,
    new: &Flags,
    kw: &KeywordLetters,
) -> Result<Option<(String, bool)>> {
    let (sub, name) = row.fname.split_once('/').unwrap_or(("cur", &row.fname));
    let p = parse_name(name);
    let info = parse_info(p.info);
    let target = format!("cur/{}", maildir::file_name(p.base, new, &info.extra, kw));
    if target == row.fname {
        return Ok(Some((target, false)));
    }
    let src = dir.join(sub).join(name);
    match fs::rename(&src, dir.join(&target)) {
        Ok(()) => Ok(Some((target, true))),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(io_at("rename", src, e)),
    }
}

/// Links a message that leaves its folder where sessions still showing it can read it.
type Hold<'a> = dyn Fn(&MailboxRow, u32, &Path) -> Option<Held> + 'a;

/// Copy or move `uids` from `from` to `to` inside one write transaction.
#[allow(clippy::too_many_arguments)]
fn transfer(
    tx: &Connection,
    root: &Path,
    from: &str,
    uids: &UidSet,
    to: &str,
    is_move: bool,
    gen: &NameGen,
    ev: &mut EventLog,
    hold: &Hold<'_>,
) -> Result<CopyOutcome> {
    let (src, src_dir) = open_synced(tx, root, from, gen, ev)?;
    let same = canonical_mailbox(to)? == src.name;
    let (dst, dst_dir) = if same {
        (src.clone(), src_dir.clone())
    } else {
        open_synced(tx, root, to, gen, ev)?
    };
    // One row vector so that src and dst may be the same mailbox.
    let mut mbs = vec![src];
    let (si, di) = if same {
        (0, 0)
    } else {
        mbs.push(dst);
        (0, 1)
    };
    let dirs = if same {
        vec![src_dir.clone()]
    } else {
        vec![src_dir.clone(), dst_dir.clone()]
    };
    let was_current = mbs
        .iter()
        .zip(&dirs)
        .map(|(mb, dir)| sync::before_own_change(mb, dir))
        .collect::<Result<Vec<bool>>>()?;
    let rows = index::file_rows_in(tx, mbs[si].id, uids.ranges())?;
    let mut out = CopyOutcome {
        uidvalidity: mbs[di].uidvalidity,
        mapping: Vec::with_capacity(rows.len()),
    };
    if rows.is_empty() {
        return Ok(out);
    }
    let src_modseq = if is_move {
        mbs[si].highestmodseq += 1;
        sync::reserve_meta_hint(&src_dir, &mbs[si], gen)?;
        mbs[si].highestmodseq
    } else {
        0
    };
    mbs[di].highestmodseq += 1;
    let dst_modseq = mbs[di].highestmodseq;
    sync::keep_modseq_hint(&dst_dir, &mbs[di], gen)?;
    let mut created: Vec<PathBuf> = Vec::new();
    let mut kw = KeywordLetters::load(&dst_dir);
    let r = (|| -> Result<()> {
        for row in &rows {
            kw.assign(&dst_dir, &row.flags, gen)?;
            let (sub, name) = row.fname.split_once('/').unwrap_or(("cur", &row.fname));
            let src_path = src_dir.join(sub).join(name);
            let info = parse_info(parse_name(name).info);
            let uid = next_uid(&mut mbs[di])?;
            let base = base_with_fields(&gen.unique(), row.size, row.wire_size, uid);
            let rel = format!(
                "cur/{}",
                maildir::file_name(&base, &row.flags, &info.extra, &kw)
            );
            let dst_path = dst_dir.join(&rel);
            let held = if is_move {
                hold(&mbs[si], row.uid, &src_path)
            } else {
                None
            };
            let placed = if is_move {
                match fs::rename(&src_path, &dst_path) {
                    Ok(()) => true,
                    Err(e) if is_not_found(&e) => false,
                    Err(e) => return Err(io_at("rename", src_path, e)),
                }
            } else {
                link_or_copy(&src_path, &dst_path, &dst_dir, gen)?
            };
            if !placed {
                // The source file vanished: give the UID back unless later ones were used.
                if mbs[di].uidnext == uid + 1 {
                    mbs[di].uidnext = uid;
                }
                continue;
            }
            if !is_move {
                created.push(dst_path);
            }
            index::insert_message(
                tx,
                mbs[di].id,
                &NewMessage {
                    uid,
                    flags: &row.flags,
                    modseq: dst_modseq,
                    internal_date: row.internal_date,
                    size: row.size,
                    wire_size: row.wire_size,
                    fname: &rel,
                    recent: true,
                    dkey: None,
                },
            )?;
            if is_move {
                index::expunge_row(tx, mbs[si].id, row.uid, src_modseq)?;
                ev.push((
                    mbs[si].name.clone(),
                    MailboxEvent::Expunged { uid: row.uid, held },
                ));
            }
            ev.push((mbs[di].name.clone(), MailboxEvent::New { uid }));
            out.mapping.push((row.uid, uid));
        }
        maildir::fsync_dir(&dst_dir.join("cur"))?;
        if is_move && !same {
            maildir::fsync_dir(&src_dir.join("cur"))?;
        }
        Ok(())
    })();
    if let Err(e) = r {
        // Copies are undone; moved files carry UIDs >= UIDNEXT and are adopted by the next sync.
        for p in created {
            remove_quietly(&p);
        }
        return Err(e);
    }
    if is_move {
        index::prune_tombstones(tx, &mut mbs[si], index::TOMBSTONES_KEPT)?;
    }
    for ((mb, dir), was_current) in mbs.iter_mut().zip(&dirs).zip(was_current) {
        sync::after_own_change(mb, dir, was_current)?;
        index::update_mailbox(tx, mb)?;
    }
    Ok(out)
}

/// Hard-links `src` to `dst` (Maildir files never change), or copies via `tmp/` + fsync when
/// linking is not possible. `Ok(false)` if `src` does not exist.
fn link_or_copy(src: &Path, dst: &Path, dst_dir: &Path, gen: &NameGen) -> Result<bool> {
    match fs::hard_link(src, dst) {
        Ok(()) => return Ok(true),
        Err(e) if is_not_found(&e) => return Ok(false),
        Err(e) => {
            tracing::debug!(error = %e, "hard link failed; copying");
        }
    }
    let data = match fs::read(src) {
        Ok(d) => d,
        Err(e) if is_not_found(&e) => return Ok(false),
        Err(e) => return Err(io_at("read", src, e)),
    };
    let mtime = fs::metadata(src).and_then(|m| m.modified()).ok();
    let tmp = dst_dir.join("tmp").join(gen.unique());
    if let Err(e) = maildir::write_new_file(&tmp, &data, mtime) {
        remove_quietly(&tmp);
        return Err(e);
    }
    if let Err(e) = fs::rename(&tmp, dst) {
        remove_quietly(&tmp);
        return Err(io_at("rename", tmp, e));
    }
    Ok(true)
}
