//! The spool directory.
//!
//! `q/<id>` is written once at enqueue: a JSON line with the initial [`QueueEntry`], then the
//! message. `state/<id>` appears after the first attempt that leaves something to do, and
//! supersedes the entry in `q/<id>`. Enqueue costs two fsyncs (the file, then its directory), and
//! a message delivered at the first attempt never writes a state file.

use crate::dirsync::DirSync;
use crate::error::IoContext;
use crate::{Envelope, QueueEntry, QueueId, RcptState, SpoolError};
use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;

/// Leftovers of a crash (a half-written `tmp/` file, a state file without its message) are
/// removed when older than this.
const STALE: Duration = Duration::from_secs(24 * 3600);

pub struct Spool {
    root: PathBuf,
    arrivals: Mutex<Vec<QueueId>>,
    wake: Notify,
    /// Group commit of the fsyncs of `q/` and `state/`.
    q_sync: DirSync,
    state_sync: DirSync,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool").field("root", &self.root).finish()
    }
}

pub(crate) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Spool {
    /// Opens (creating) the spool at `root` and clears crash leftovers.
    pub fn open(root: impl Into<PathBuf>) -> Result<Spool, SpoolError> {
        let root = root.into();
        for sub in ["q", "state", "tmp"] {
            let d = root.join(sub);
            fs::create_dir_all(&d).ctx("create", &d)?;
        }
        let spool = Spool {
            q_sync: DirSync::new(root.join("q")),
            state_sync: DirSync::new(root.join("state")),
            root,
            arrivals: Mutex::new(Vec::new()),
            wake: Notify::new(),
        };
        spool.clean_leftovers();
        Ok(spool)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn q_path(&self, id: &QueueId) -> PathBuf {
        self.root.join("q").join(id.as_str())
    }

    fn state_path(&self, id: &QueueId) -> PathBuf {
        self.root.join("state").join(id.as_str())
    }

    /// Writes the message and its envelope durably and wakes the queue runner. Only after this
    /// returns may the message be acknowledged (`250`).
    pub fn enqueue(&self, envelope: &Envelope, message: &[u8]) -> Result<QueueId, SpoolError> {
        if envelope.recipients.is_empty() {
            return Err(SpoolError::NoRecipients);
        }
        let id = QueueId::generate();
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
        let header = serde_json::to_vec(&entry).map_err(|e| SpoolError::Corrupt {
            path: self.q_path(&id),
            message: e.to_string(),
        })?;
        let tmp = self.root.join("tmp").join(format!("{id}.q"));
        let written = (|| -> Result<(), SpoolError> {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .ctx("create", &tmp)?;
            f.write_all(&header).ctx("write", &tmp)?;
            f.write_all(b"\n").ctx("write", &tmp)?;
            f.write_all(message).ctx("write", &tmp)?;
            f.sync_all().ctx("fsync", &tmp)?;
            let dst = self.q_path(&id);
            fs::rename(&tmp, &dst).ctx("rename", &tmp)?;
            self.q_sync.sync()
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        self.arrivals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(id.clone());
        self.wake.notify_one();
        Ok(id)
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
        let path = self.q_path(id);
        let f = File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => SpoolError::NotFound(id.to_string()),
            _ => SpoolError::Io {
                op: "open",
                path: path.clone(),
                source: e,
            },
        })?;
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
        let path = self.q_path(id);
        let f = File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => SpoolError::NotFound(id.to_string()),
            _ => SpoolError::Io {
                op: "open",
                path: path.clone(),
                source: e,
            },
        })?;
        let mut r = BufReader::new(f);
        let mut header = Vec::new();
        r.read_until(b'\n', &mut header).ctx("read", &path)?;
        let mut body = Vec::new();
        r.read_to_end(&mut body).ctx("read", &path)?;
        Ok(body)
    }

    /// Replaces the stored state of a message (atomically, durably).
    pub fn save(&self, entry: &QueueEntry) -> Result<(), SpoolError> {
        let dst = self.state_path(&entry.id);
        let tmp = self.root.join("tmp").join(format!("{}.state", entry.id));
        let bytes = serde_json::to_vec(entry).map_err(|e| SpoolError::Corrupt {
            path: dst.clone(),
            message: e.to_string(),
        })?;
        let mut f = File::create(&tmp).ctx("create", &tmp)?;
        f.write_all(&bytes).ctx("write", &tmp)?;
        f.sync_all().ctx("fsync", &tmp)?;
        fs::rename(&tmp, &dst).ctx("rename", &tmp)?;
        self.state_sync.sync()
    }

    /// Removes a message from the queue. The message file goes first: a state file left alone
    /// by a crash is a harmless leftover, whereas a message without its state would be tried
    /// again from scratch.
    pub fn remove(&self, id: &QueueId) -> Result<(), SpoolError> {
        let q = self.q_path(id);
        match fs::remove_file(&q) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SpoolError::NotFound(id.to_string()))
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
        Ok(())
    }

    /// Whether a message is still queued (the admin may have deleted it meanwhile).
    pub fn exists(&self, id: &QueueId) -> bool {
        self.q_path(id).exists()
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

    /// Makes the pending recipients of a message due now (and releases it).
    pub fn retry(&self, id: &QueueId) -> Result<QueueEntry, SpoolError> {
        let now = now_unix();
        self.update(id, |e| {
            e.held = false;
            for r in e.recipients.iter_mut().filter(|r| r.is_pending()) {
                r.next_attempt = r.next_attempt.min(now);
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
                    r.next_attempt = now;
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
        let dir = self.root.join("q");
        let mut out: Vec<QueueId> = fs::read_dir(&dir)
            .ctx("list", &dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| QueueId::parse(&e.file_name().to_string_lossy()))
            .collect();
        out.sort();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BodyType, RcptStatus, Recipient};

    pub(crate) fn envelope(rcpts: &[&str]) -> Envelope {
        Envelope {
            sender: Some("sender@example.net".into()),
            recipients: rcpts.iter().map(|r| Recipient::new(*r)).collect(),
            ret: None,
            envid: None,
            body: BodyType::EightBitMime,
            smtputf8: false,
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
            note: "ok".into(),
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
