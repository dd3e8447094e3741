//! The spool directory.
//!
//! A message in its first delivery attempt normally lives only in the write-ahead journal
//! (`journal/`, see [`crate::journal`]): its enqueue is one appended record and a share of a
//! group-committed `fdatasync`, and its removal after a successful first attempt one more small
//! record, so the common case creates and deletes no file of its own.
//!
//! Otherwise a message is a classic file: `q/<id>` is written once (a JSON line with the initial
//! [`QueueEntry`], then the message) and fsynced, then its directory. That is how messages
//! larger than the journal's limit are enqueued, how processes other than the journal's owner
//! (queue administration, `sendmail`, while `serve` runs) enqueue, and what a journal message
//! becomes (*promotion*) when its state must change (a first attempt that leaves something to
//! do, an admin's hold) or when the owner starts up and finds it still in the journal.
//! `state/<id>` appears after the first attempt that leaves something to do, and supersedes the
//! entry in `q/<id>`; it only ever sits beside a classic `q/<id>`.
//!
//! The process holding the `flock` on `journal/lock` owns the journal (normally `serve`);
//! other processes read it (to list and show messages in their first attempt) but refuse to
//! change such a message with [`SpoolError::Busy`], and take the journal over as soon as its
//! owner is gone.

use crate::dirsync::DirSync;
use crate::error::IoContext;
use crate::journal::{self, Journal, Limits, Removal};
use crate::{Envelope, QueueEntry, QueueId, RcptState, SpoolError};
use postern_mail::Status;
use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock, TryLockError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;

/// Leftovers of a crash (a half-written `tmp/` file, a state file without its message) are
/// removed when older than this.
const STALE: Duration = Duration::from_secs(24 * 3600);

/// An open spool directory (see the module docs for its layout): enqueues, lists, updates
/// and removes queued messages.
pub struct Spool {
    root: PathBuf,
    arrivals: Mutex<Vec<QueueId>>,
    wake: Notify,
    /// Group commit of the fsyncs of `q/` and `state/`.
    q_sync: DirSync,
    state_sync: DirSync,
    journal_dir: PathBuf,
    /// Set once this spool owns the journal (holds the `flock` on `journal/lock`): new
    /// messages go to the journal. Until then it is an *observer*: enqueue writes classic
    /// files and the journal is only read; every operation tries to take the lock over (the
    /// owner may have been a short-lived process).
    journal: OnceLock<Box<Journal>>,
    limits: Limits,
    /// `journal/lock`, kept open while this spool lives: the `flock` is on it. `None` when it
    /// could only be opened read-only (then this spool never owns the journal).
    lock_file: Option<File>,
    /// Serialises attempts to take the journal over.
    takeover: Mutex<()>,
    /// Held while fresh messages are written as classic files.
    promote: Mutex<()>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("root", &self.root)
            .field("journal_owner", &self.journal.get().is_some())
            .finish()
    }
}

pub(crate) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A non-blocking exclusive `flock`: `Ok(false)` when another open file holds it.
fn try_flock(f: &File) -> std::io::Result<bool> {
    loop {
        // SAFETY: flock on a file descriptor this `File` owns and keeps open.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(true);
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EWOULDBLOCK) => return Ok(false),
            Some(libc::EINTR) => continue,
            _ => return Err(e),
        }
    }
}

impl Spool {
    /// Opens (creating) the spool at `root` and clears crash leftovers. The first process to
    /// open it owns the journal and moves what a previous owner left there to `q/`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Spool, SpoolError> {
        Spool::open_with(root.into(), Limits::default())
    }

    pub(crate) fn open_with(root: PathBuf, limits: Limits) -> Result<Spool, SpoolError> {
        for sub in ["q", "state", "tmp", "journal"] {
            let d = root.join(sub);
            private_dir_all(&d).ctx("create", &d)?;
        }
        let journal_dir = root.join("journal");
        let lock_path = journal_dir.join("lock");
        let lock_file = match OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(PRIVATE_FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&lock_path)
        {
            Ok(f) => Some(f),
            // Queue administration with read access only: it can look, never own.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => None,
            Err(e) => {
                return Err(SpoolError::Io {
                    op: "open",
                    path: lock_path,
                    source: e,
                })
            }
        };
        let (owner, lock_file) = match lock_file.as_ref().map(try_flock) {
            Some(Ok(owner)) => (owner, lock_file),
            None => (false, None),
            // No flock here (some network filesystems): nobody can own the journal, so every
            // message is a classic file.
            Some(Err(e)) => {
                tracing::warn!(lock = %lock_path.display(), "cannot lock the spool journal, not using it: {e}");
                (false, None)
            }
        };
        let spool = Spool {
            q_sync: DirSync::new(root.join("q")),
            state_sync: DirSync::new(root.join("state")),
            root,
            arrivals: Mutex::new(Vec::new()),
            wake: Notify::new(),
            journal_dir,
            journal: OnceLock::new(),
            limits,
            lock_file,
            takeover: Mutex::new(()),
            promote: Mutex::new(()),
        };
        if owner {
            let journal = spool.recover(limits)?;
            let _ = spool.journal.set(Box::new(journal));
        }
        spool.clean_leftovers();
        Ok(spool)
    }

    /// The journal, when this spool owns it. An observer takes it over as soon as the lock is
    /// free (the owner exited), recovering what the owner left.
    fn owner(&self) -> Option<&Journal> {
        if let Some(j) = self.journal.get() {
            return Some(j);
        }
        let lock_file = self.lock_file.as_ref()?;
        let _one = lock(&self.takeover);
        if let Some(j) = self.journal.get() {
            return Some(j);
        }
        match try_flock(lock_file) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                tracing::warn!("locking the spool journal: {e}");
                return None;
            }
        }
        match self.recover(self.limits) {
            Ok(j) => {
                tracing::info!(spool = %self.root.display(), "took over the spool journal");
                let _ = self.journal.set(Box::new(j));
                self.journal.get().map(|j| &**j)
            }
            Err(e) => {
                tracing::error!("taking over the spool journal: {e}");
                // SAFETY: unlocking a file descriptor this `File` owns.
                unsafe { libc::flock(lock_file.as_raw_fd(), libc::LOCK_UN) };
                None
            }
        }
    }

    /// Promotes every message a previous owner left in the journal to `q/`, deletes the old
    /// segments and starts a new one.
    fn recover(&self, limits: Limits) -> Result<Journal, SpoolError> {
        let dir = &self.journal_dir;
        let scan = journal::scan(dir)?;
        for (segment, valid, size) in &scan.torn {
            tracing::warn!(
                segment = %journal::segment_path(dir, *segment).display(),
                valid,
                size,
                "ignoring the torn tail of a journal segment (never acknowledged)"
            );
        }
        let mut live: Vec<&journal::Located> = scan.live.values().collect();
        live.sort_by(|a, b| a.entry.id.cmp(&b.entry.id));
        let mut promoted = 0usize;
        for loc in live {
            let id = &loc.entry.id;
            if self.q_path(id).exists() {
                continue;
            }
            let message = loc.message(dir)?;
            self.write_q(&loc.entry, &self.entry_json(&loc.entry)?, &message)?;
            promoted += 1;
        }
        if promoted > 0 {
            self.q_sync.sync()?;
            tracing::info!(promoted, "messages recovered from the spool journal");
        }
        journal::retire(dir, &scan)?;
        let next = scan.segments.last().map_or(1, |n| n + 1);
        Journal::start(dir.clone(), limits, next)
    }

    /// The spool directory this was opened on.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn q_path(&self, id: &QueueId) -> PathBuf {
        self.root.join("q").join(id.as_str())
    }

    fn state_path(&self, id: &QueueId) -> PathBuf {
        self.root.join("state").join(id.as_str())
    }

    fn entry_json(&self, entry: &QueueEntry) -> Result<Vec<u8>, SpoolError> {
        serde_json::to_vec(entry).map_err(|e| SpoolError::Corrupt {
            path: self.q_path(&entry.id),
            message: e.to_string(),
        })
    }

    /// Writes `q/<id>` (through `tmp/`, fsynced, renamed); the caller fsyncs `q/`.
    fn write_q(&self, entry: &QueueEntry, header: &[u8], message: &[u8]) -> Result<(), SpoolError> {
        let tmp = self.root.join("tmp").join(format!("{}.q", entry.id));
        let written = (|| -> Result<(), SpoolError> {
            let mut f = private_file(&tmp).ctx("create", &tmp)?;
            f.write_all(header).ctx("write", &tmp)?;
            f.write_all(b"\n").ctx("write", &tmp)?;
            f.write_all(message).ctx("write", &tmp)?;
            f.sync_all().ctx("fsync", &tmp)?;
            fs::rename(&tmp, self.q_path(&entry.id)).ctx("rename", &tmp)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written
    }

    /// Writes the message and its envelope durably and wakes the queue runner. Only after this
    /// returns may the message be acknowledged (`250`).
    pub fn enqueue(&self, envelope: &Envelope, message: &[u8]) -> Result<QueueId, SpoolError> {
        self.enqueue_as(QueueId::generate(), envelope, message)
    }

    /// [`Spool::enqueue`] under an id made beforehand with [`QueueId::generate`].
    pub fn enqueue_as(
        &self,
        id: QueueId,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<QueueId, SpoolError> {
        if envelope.recipients.is_empty() {
            return Err(SpoolError::NoRecipients);
        }
        let now = now_unix();
        let entry = QueueEntry {
            id: id.clone(),
            envelope: envelope.clone(),
            arrived: now,
            size: message.len() as u64,
            recipients: envelope
                .recipients
                .iter()
                .map(|r| RcptState::new(r.clone(), now, None))
                .collect(),
            delivered_accounts: BTreeSet::new(),
            held: false,
        };
        let header = self.entry_json(&entry)?;
        match self.owner() {
            Some(j) if message.len() <= j.limits().max_message => {
                j.enqueue(entry, &header, message)?;
            }
            _ => {
                self.write_q(&entry, &header, message)?;
                self.q_sync.sync()?;
            }
        }
        lock(&self.arrivals).push(id.clone());
        self.wake.notify_one();
        Ok(id)
    }

    /// What the journal on disk holds (for an observer).
    fn observed(&self) -> Result<journal::Scan, SpoolError> {
        journal::scan(&self.journal_dir)
    }

    /// Whether a message is in its first attempt in another process's journal (and has no
    /// classic file).
    fn busy_elsewhere(&self, id: &QueueId) -> Result<bool, SpoolError> {
        Ok(self.owner().is_none()
            && !self.q_path(id).exists()
            && self.observed()?.live.contains_key(id))
    }

    /// The current state of a queued message.
    pub fn entry(&self, id: &QueueId) -> Result<QueueEntry, SpoolError> {
        let state = self.state_path(id);
        match fs::read(&state) {
            Ok(bytes) => {
                return serde_json::from_slice(&bytes).map_err(|e| SpoolError::Corrupt {
                    path: state,
                    message: e.to_string(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(SpoolError::Io {
                    op: "read",
                    path: state,
                    source: e,
                })
            }
        }
        let owner = self.owner();
        if let Some(e) = owner.and_then(|j| j.entry(id)) {
            return Ok(e);
        }
        match self.q_entry(id) {
            Err(SpoolError::NotFound(_)) if owner.is_none() => {
                match self.observed()?.live.remove(id) {
                    Some(l) => Ok(l.entry),
                    // Promoted (q/<id> written, then the done record) while we looked.
                    None => self.q_entry(id),
                }
            }
            other => other,
        }
    }

    fn open_q(&self, id: &QueueId) -> Result<(File, PathBuf), SpoolError> {
        let path = self.q_path(id);
        match File::open(&path) {
            Ok(f) => Ok((f, path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(SpoolError::NotFound(id.to_string()))
            }
            Err(e) => Err(SpoolError::Io {
                op: "open",
                path,
                source: e,
            }),
        }
    }

    /// The initial entry in `q/<id>`.
    fn q_entry(&self, id: &QueueId) -> Result<QueueEntry, SpoolError> {
        let (f, path) = self.open_q(id)?;
        let mut header = Vec::new();
        BufReader::new(f)
            .read_until(b'\n', &mut header)
            .ctx("read", &path)?;
        serde_json::from_slice(&header).map_err(|e| SpoolError::Corrupt {
            path,
            message: e.to_string(),
        })
    }

    /// The message content, exactly as it will be delivered.
    pub fn message(&self, id: &QueueId) -> Result<Vec<u8>, SpoolError> {
        let owner = self.owner();
        if let Some(m) = owner.and_then(|j| j.message(id)) {
            return m;
        }
        let (f, path) = match self.open_q(id) {
            Ok(v) => v,
            Err(SpoolError::NotFound(_)) if owner.is_none() => {
                match self.observed()?.live.get(id) {
                    Some(l) => return l.message(&self.journal_dir),
                    // Promoted (q/<id> written, then the done record) while we looked.
                    None => self.open_q(id)?,
                }
            }
            Err(e) => return Err(e),
        };
        let mut r = BufReader::new(f);
        let mut header = Vec::new();
        r.read_until(b'\n', &mut header).ctx("read", &path)?;
        let mut body = Vec::new();
        r.read_to_end(&mut body).ctx("read", &path)?;
        Ok(body)
    }

    /// Writes fresh messages of the journal as classic `q/<id>` files (durably), then ends them
    /// in the journal with a done record that is durable before this returns: a later unlink of
    /// `q/<id>` must not let a crash bring the journal entry back.
    fn promote(
        &self,
        j: &Journal,
        _held: &MutexGuard<'_, ()>,
        ids: &[QueueId],
    ) -> Result<(), SpoolError> {
        let mut begun = Vec::new();
        let mut written = Vec::new();
        let wrote = (|| -> Result<(), SpoolError> {
            for id in ids {
                let Some(fresh) = j.begin_promotion(id) else {
                    continue;
                };
                begun.push(id.clone());
                let (entry, message) = fresh?;
                self.write_q(&entry, &self.entry_json(&entry)?, &message)?;
                written.push(id.clone());
            }
            if !written.is_empty() {
                self.q_sync.sync()?;
            }
            Ok(())
        })();
        if let Err(e) = wrote {
            // The journal stays the truth for these: no classic copy may linger beside it.
            self.unlink_q(&written);
            j.abort_promotion(&begun);
            return Err(e);
        }
        let finished = j.finish_promotion(&written);
        self.unlink_q(&finished.failed);
        if let Some(pos) = finished.wait_for {
            j.wait_durable(pos)?;
        }
        match finished.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn unlink_q(&self, ids: &[QueueId]) {
        if ids.is_empty() {
            return;
        }
        for id in ids {
            let _ = fs::remove_file(self.q_path(id));
        }
        if let Err(e) = self.q_sync.sync() {
            tracing::warn!("{e}");
        }
    }

    /// When old journal segments are kept only by a few slow first attempts, promotes those
    /// messages so the segments can go.
    fn compact(&self, j: &Journal) {
        let held = match self.promote.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        let ids = j.compaction_candidates();
        if ids.is_empty() {
            return;
        }
        tracing::info!(
            messages = ids.len(),
            "moving long first attempts out of the journal"
        );
        if let Err(e) = self.promote(j, &held, &ids) {
            tracing::warn!("compacting the spool journal: {e}");
        }
    }

    /// Replaces the stored state of a message (atomically, durably).
    pub fn save(&self, entry: &QueueEntry) -> Result<(), SpoolError> {
        match self.owner() {
            Some(j) if j.contains(&entry.id) => {
                let held = lock(&self.promote);
                self.promote(j, &held, std::slice::from_ref(&entry.id))?;
            }
            Some(_) => {}
            None => {
                if self.busy_elsewhere(&entry.id)? {
                    return Err(SpoolError::Busy(entry.id.to_string()));
                }
            }
        }
        let dst = self.state_path(&entry.id);
        // A name of this writer's own: the runner and an admin command may save the same message
        // at once, and a shared temporary name would make one of the renames fail.
        static SAVES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SAVES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp =
            (self.root.join("tmp")).join(format!("{}.{}.{n}.state", entry.id, std::process::id()));
        let bytes = serde_json::to_vec(entry).map_err(|e| SpoolError::Corrupt {
            path: dst.clone(),
            message: e.to_string(),
        })?;
        let mut f = private_file(&tmp).ctx("create", &tmp)?;
        f.write_all(&bytes).ctx("write", &tmp)?;
        f.sync_all().ctx("fsync", &tmp)?;
        fs::rename(&tmp, &dst).ctx("rename", &tmp)?;
        self.state_sync.sync()
    }

    /// Removes a message from the queue. A fresh message gets a done record in the journal. For
    /// a classic one the message file goes first: a state file left alone by a crash is a
    /// harmless leftover, whereas a message without its state would be tried again from scratch.
    pub fn remove(&self, id: &QueueId) -> Result<(), SpoolError> {
        let owner = self.owner();
        if let Some(j) = owner {
            loop {
                match j.remove(id)? {
                    Removal::Removed => {
                        self.compact(j);
                        return Ok(());
                    }
                    // Wait for the promotion to end: then it is a classic file.
                    Removal::Promoting => drop(lock(&self.promote)),
                    Removal::NotFresh => break,
                }
            }
        }
        let q = self.q_path(id);
        match fs::remove_file(&q) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(if self.busy_elsewhere(id)? {
                    SpoolError::Busy(id.to_string())
                } else {
                    SpoolError::NotFound(id.to_string())
                });
            }
            Err(e) => {
                return Err(SpoolError::Io {
                    op: "remove",
                    path: q,
                    source: e,
                })
            }
        }
        self.q_sync.sync()?;
        let state = self.state_path(id);
        if fs::remove_file(&state).is_ok() {
            self.state_sync.sync()?;
        }
        if let Some(j) = owner {
            self.compact(j);
        }
        Ok(())
    }

    /// A message in its first delivery attempt, from memory and the journal (a page-cache
    /// read), so the queue runner can load it without a trip through the blocking pool.
    /// `None` for anything else, including when this process does not own the journal.
    pub fn fresh(&self, id: &QueueId) -> Option<(QueueEntry, Vec<u8>)> {
        let j = self.journal.get()?;
        let entry = j.entry(id)?;
        let message = j.message(id)?.ok()?;
        Some((entry, message))
    }

    /// Whether a message is in its first delivery attempt in this process's journal: removing
    /// it then only appends a done record, without waiting for the disk.
    pub fn is_fresh(&self, id: &QueueId) -> bool {
        self.journal.get().is_some_and(|j| j.contains(id))
    }

    /// Whether a message is still queued (the admin may have deleted it meanwhile).
    pub fn exists(&self, id: &QueueId) -> bool {
        match self.owner() {
            Some(j) => j.contains(id) || self.q_path(id).exists(),
            None => {
                self.q_path(id).exists() || self.observed().is_ok_and(|s| s.live.contains_key(id))
            }
        }
    }

    /// Reads, changes and saves a message's state (for queue administration).
    pub fn update(
        &self,
        id: &QueueId,
        change: impl FnOnce(&mut QueueEntry),
    ) -> Result<QueueEntry, SpoolError> {
        let mut entry = self.entry(id)?;
        change(&mut entry);
        self.save(&entry)?;
        Ok(entry)
    }

    /// Holds a message: it is not attempted until released.
    pub fn hold(&self, id: &QueueId) -> Result<QueueEntry, SpoolError> {
        self.update(id, |e| e.held = true)
    }

    /// Releases a held message and makes its pending recipients due now.
    pub fn release(&self, id: &QueueId) -> Result<QueueEntry, SpoolError> {
        self.retry(id)
    }

    /// Makes the pending recipients of a message due now (and releases it). The back-off is
    /// kept: if this early attempt fails, the next one is when it was scheduled anyway.
    pub fn retry(&self, id: &QueueId) -> Result<QueueEntry, SpoolError> {
        let now = now_unix();
        self.update(id, |e| {
            e.held = false;
            for r in e.recipients.iter_mut().filter(|r| r.is_pending()) {
                make_due(r, now);
            }
        })
    }

    /// Returns a message to its sender now (`queue bounce`): every pending recipient fails
    /// with `reason`, and the queue sends the RFC 3464 notice at its next pass.
    pub fn bounce(&self, id: &QueueId, reason: &Status) -> Result<QueueEntry, SpoolError> {
        let now = now_unix();
        self.update(id, |e| {
            e.held = false;
            for r in e.recipients.iter_mut().filter(|r| r.is_pending()) {
                r.status = crate::RcptStatus::Failed {
                    at: now,
                    reason: reason.clone(),
                };
                r.last_error = Some(reason.clone());
                r.next_attempt = now;
            }
        })
    }

    /// Makes every deferred message (not held ones) due now; returns how many changed.
    pub fn flush(&self) -> Result<usize, SpoolError> {
        let now = now_unix();
        let mut n = 0;
        for id in self.ids()? {
            let Ok(e) = self.entry(&id) else { continue };
            if e.held || e.next_due().is_none_or(|t| t <= now) {
                continue;
            }
            match self.update(&id, |e| {
                for r in e.recipients.iter_mut().filter(|r| r.is_pending()) {
                    make_due(r, now);
                }
            }) {
                Ok(_) => n += 1,
                Err(SpoolError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    fn wake_path(&self) -> PathBuf {
        self.root.join("wake")
    }

    /// Asks a running queue runner (perhaps in another process) to re-read the whole spool soon.
    pub fn request_wake(&self) -> Result<(), SpoolError> {
        let p = self.wake_path();
        fs::write(&p, b"").ctx("create", &p)?;
        self.wake.notify_one();
        Ok(())
    }

    /// Whether a wake-up was requested since the last call (and clears the request).
    pub fn take_wake_request(&self) -> bool {
        fs::remove_file(self.wake_path()).is_ok()
    }

    /// Every queued message id, oldest first.
    pub fn ids(&self) -> Result<Vec<QueueId>, SpoolError> {
        // The journal first: a promotion writes q/<id> before the message leaves the journal,
        // so it is seen in one place or the other. (Taking the journal over also moves
        // messages to q/.)
        let mut out: Vec<QueueId> = match self.owner() {
            Some(j) => j.ids(),
            None => self.observed()?.live.into_keys().collect(),
        };
        let dir = self.root.join("q");
        out.extend(
            fs::read_dir(&dir)
                .ctx("list", &dir)?
                .filter_map(|e| e.ok())
                .filter_map(|e| QueueId::parse(&e.file_name().to_string_lossy())),
        );
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Messages enqueued by this process since the last call (the runner's fast path).
    pub fn take_arrivals(&self) -> Vec<QueueId> {
        std::mem::take(&mut *self.arrivals.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Resolves when `enqueue` has added something (or a wake-up is pending).
    pub async fn arrived(&self) {
        self.wake.notified().await
    }

    /// Wakes the runner (after an admin change such as release or flush).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    fn clean_leftovers(&self) {
        let old = |p: &Path| {
            fs::metadata(p)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE)
        };
        for sub in ["tmp", "state"] {
            let Ok(rd) = fs::read_dir(self.root.join(sub)) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                let orphan = sub == "tmp"
                    || QueueId::parse(&e.file_name().to_string_lossy())
                        .is_none_or(|id| !self.q_path(&id).exists());
                if orphan && old(&p) {
                    tracing::info!(file = %p.display(), "removing a spool leftover");
                    let _ = fs::remove_file(&p);
                }
            }
        }
    }
}

/// Makes a pending recipient due at `now`, remembering when the back-off had planned it.
fn make_due(r: &mut crate::RcptState, now: i64) {
    if r.next_attempt > now {
        r.scheduled = Some(r.next_attempt);
        r.next_attempt = now;
    }
}

/// Mode of every spool directory: queued mail of all users is private whatever the umask.
pub(crate) const PRIVATE_DIR_MODE: u32 = 0o700;
/// Mode of every spool file.
pub(crate) const PRIVATE_FILE_MODE: u32 = 0o600;

/// `mkdir -p` with mode 0700.
pub(crate) fn private_dir_all(path: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(path)
}

/// Creates or truncates a file for writing, mode 0600, without following a symlink.
pub(crate) fn private_file(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(PRIVATE_FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{BodyType, RcptStatus, Recipient};

    /// An envelope from sender@example.net to `rcpts`, as the spool tests use.
    pub(crate) fn envelope(rcpts: &[&str]) -> Envelope {
        Envelope {
            sender: Some("sender@example.net".into()),
            recipients: rcpts.iter().map(|r| Recipient::new(*r)).collect(),
            ret: None,
            envid: None,
            body: BodyType::EightBitMime,
            smtputf8: false,
            requiretls: false,
            authenticated: None,
            client_ip: None,
            helo: Some("client.example.net".into()),
        }
    }

    #[test]
    fn enqueue_load_save_remove() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path().join("spool")).unwrap();
        let msg = b"Subject: hi\r\n\r\nbody\r\n";
        let id = spool
            .enqueue(&envelope(&["a@x.test", "b@x.test"]), msg)
            .unwrap();
        assert_eq!(spool.take_arrivals(), vec![id.clone()]);
        assert_eq!(spool.message(&id).unwrap(), msg);
        let mut e = spool.entry(&id).unwrap();
        assert_eq!(e.recipients.len(), 2);
        assert_eq!(e.size, msg.len() as u64);
        assert!(!e.is_finished());
        e.recipients[0].status = RcptStatus::Delivered {
            at: 1,
            note: postern_mail::Status::with_text(postern_mail::EnhancedCode::SUCCESS, "ok"),
        };
        spool.save(&e).unwrap();
        // A reopened spool (a restart) sees the saved state.
        let again = Spool::open(dir.path().join("spool")).unwrap();
        assert_eq!(again.entry(&id).unwrap(), e);
        assert_eq!(again.ids().unwrap(), vec![id.clone()]);
        again.remove(&id).unwrap();
        assert!(again.ids().unwrap().is_empty());
        assert!(matches!(again.entry(&id), Err(SpoolError::NotFound(_))));
        assert!(!dir.path().join("spool/state").join(id.as_str()).exists());
    }

    #[test]
    fn no_recipients_no_queue() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        assert!(matches!(
            spool.enqueue(&envelope(&[]), b"x"),
            Err(SpoolError::NoRecipients)
        ));
    }

    #[test]
    fn a_half_written_file_is_never_queued() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        // A crash while writing leaves only tmp/ content, which is not a queued message.
        fs::write(dir.path().join("tmp/0123ABC.q"), b"{\"trunc").unwrap();
        assert!(spool.ids().unwrap().is_empty());
    }
}
