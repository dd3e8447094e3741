//! What delivery must remember between messages for Sieve: vacation replies sent (RFC 5230
//! §4.2), `duplicate` marks (RFC 7352 §3), and side effects already performed for a queued
//! message (so a retried delivery does not send a redirect or a notification twice).
//!
//! Behind a small trait: the Maildir installation keeps it in files ([`FileTracker`]); a
//! PostgreSQL backend will keep it in a table.

use sha2::{Digest, Sha256};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The kinds of records a [`Tracker`] keeps; each is its own namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackKind {
    /// A vacation reply went to a sender under a handle (RFC 5230 §4.2).
    Vacation,
    /// A message id was seen by the `duplicate` test under a handle (RFC 7352 §3).
    Duplicate,
    /// A side effect (redirect, vacation or notification queued) was performed for a delivery.
    Effect,
}

impl TrackKind {
    fn dir_name(self) -> &'static str {
        match self {
            TrackKind::Vacation => "vacation",
            TrackKind::Duplicate => "duplicate",
            TrackKind::Effect => "effect",
        }
    }
}

/// A durable per-account memory of `(handle, id)` pairs, each valid until an expiry time.
/// Methods are blocking (files or a database); delivery calls them off the async threads.
pub trait Tracker: Send + Sync {
    /// Whether `(handle, id)` was recorded for `account` under `kind` and is still valid at `now`
    /// (seconds since the Unix epoch).
    fn seen(
        &self,
        account: &str,
        kind: TrackKind,
        handle: &str,
        id: &str,
        now: i64,
    ) -> io::Result<bool>;

    /// Records `(handle, id)` for `account` under `kind`, valid until `now + period` seconds;
    /// durable before it returns.
    fn record(
        &self,
        account: &str,
        kind: TrackKind,
        handle: &str,
        id: &str,
        now: i64,
        period: u64,
    ) -> io::Result<()>;

    /// Records `(handle, id)` like [`Tracker::record`] only if it is not valid at `now`, as one
    /// step: of two deliveries claiming the same pair at once, exactly one gets `true`. Vacation
    /// replies use it, so two messages arriving together get one reply (RFC 5230 §4.2).
    fn claim(
        &self,
        account: &str,
        kind: TrackKind,
        handle: &str,
        id: &str,
        now: i64,
        period: u64,
    ) -> io::Result<bool>;
}

/// A [`Tracker`] in files: `ROOT/<account>/<kind>/<sha256 of handle and id>`, each holding its
/// expiry time as decimal seconds. One small file per record keeps every write atomic (written,
/// fsynced, renamed) without a database, and an admin can clear a user's vacation memory with
/// `rm -r`. Expired records are pruned when a record of the same kind is written.
pub struct FileTracker {
    root: PathBuf,
}

impl FileTracker {
    /// A tracker under `root` (created on first write, mode 0700).
    pub fn new(root: impl Into<PathBuf>) -> FileTracker {
        FileTracker { root: root.into() }
    }

    fn kind_dir(&self, account: &str, kind: TrackKind) -> PathBuf {
        self.root
            .join(account_dir_name(account))
            .join(kind.dir_name())
    }

    fn file(&self, account: &str, kind: TrackKind, handle: &str, id: &str) -> PathBuf {
        let mut h = Sha256::new();
        h.update(handle.as_bytes());
        h.update([0u8]);
        h.update(id.as_bytes());
        let name: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        self.kind_dir(account, kind).join(name)
    }
}

/// The account as a directory name: itself when that is safe (an address of plain characters),
/// else its hex encoding, so no account name can escape the tracker's root.
fn account_dir_name(account: &str) -> String {
    let plain = !account.is_empty()
        && !account.starts_with('.')
        && account
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@._+-".contains(&b));
    if plain {
        account.to_ascii_lowercase()
    } else {
        let hex: String = account.bytes().map(|b| format!("{b:02x}")).collect();
        format!("x-{hex}")
    }
}

fn read_expiry(path: &Path) -> io::Result<Option<i64>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(text.trim().parse().ok()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

impl Tracker for FileTracker {
    fn seen(
        &self,
        account: &str,
        kind: TrackKind,
        handle: &str,
        id: &str,
        now: i64,
    ) -> io::Result<bool> {
        let path = self.file(account, kind, handle, id);
        Ok(read_expiry(&path)?.is_some_and(|expiry| expiry > now))
    }

    fn record(
        &self,
        account: &str,
        kind: TrackKind,
        handle: &str,
        id: &str,
        now: i64,
        period: u64,
    ) -> io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.file(account, kind, handle, id);
        let dir = self.kind_dir(account, kind);
        create_private_dir(&dir)?;
        let expiry = now.saturating_add(i64::try_from(period).unwrap_or(i64::MAX));
        let tmp = dir.join(format!(
            ".tmp-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(expiry.to_string().as_bytes())?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &path)?;
        fs::File::open(&dir)?.sync_all()?;
        prune(&dir, now);
        Ok(())
    }

    fn claim(
        &self,
        account: &str,
        kind: TrackKind,
        handle: &str,
        id: &str,
        now: i64,
        period: u64,
    ) -> io::Result<bool> {
        let dir = self.kind_dir(account, kind);
        create_private_dir(&dir)?;
        // An flock(2) on the kind's directory makes look-then-record one step, between the
        // threads of serve and any `postern deliver` running beside it.
        let _lock = DirLock::exclusive(&dir)?;
        if self.seen(account, kind, handle, id, now)? {
            return Ok(false);
        }
        self.record(account, kind, handle, id, now, period)?;
        Ok(true)
    }
}

/// An exclusive flock(2) on a directory, released when dropped (the descriptor closes).
struct DirLock {
    _file: fs::File,
}

impl DirLock {
    fn exclusive(dir: &Path) -> io::Result<DirLock> {
        use std::os::fd::AsRawFd;
        let file = fs::File::open(dir)?;
        loop {
            // SAFETY: the descriptor is open for the call's duration.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(DirLock { _file: file });
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// Removes expired records of one kind (best effort: a failure only leaves files behind).
fn prune(dir: &Path, now: i64) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        if let Ok(Some(expiry)) = read_expiry(&path) {
            if expiry <= now {
                let _ = fs::remove_file(&path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn of_many_claims_at_once_one_wins_until_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let tracker = std::sync::Arc::new(FileTracker::new(dir.path()));
        let wins: usize = (0..8)
            .map(|_| {
                let t = tracker.clone();
                std::thread::spawn(move || {
                    t.claim("a@x.test", TrackKind::Vacation, "h", "bob@y.test", 1000, 60)
                        .unwrap()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| usize::from(h.join().unwrap()))
            .sum();
        assert_eq!(wins, 1);
        assert!(!tracker
            .claim("a@x.test", TrackKind::Vacation, "h", "bob@y.test", 1059, 60)
            .unwrap());
        assert!(tracker
            .claim("a@x.test", TrackKind::Vacation, "h", "bob@y.test", 1060, 60)
            .unwrap());
    }

    #[test]
    fn records_expire_and_kinds_and_accounts_are_apart() {
        let dir = tempfile::tempdir().unwrap();
        let t = FileTracker::new(dir.path());
        let a = "alice@example.org";
        assert!(!t
            .seen(a, TrackKind::Vacation, "h", "bob@x.test", 1000)
            .unwrap());
        t.record(a, TrackKind::Vacation, "h", "bob@x.test", 1000, 60)
            .unwrap();
        assert!(t
            .seen(a, TrackKind::Vacation, "h", "bob@x.test", 1059)
            .unwrap());
        assert!(!t
            .seen(a, TrackKind::Vacation, "h", "bob@x.test", 1060)
            .unwrap());
        assert!(!t
            .seen(a, TrackKind::Duplicate, "h", "bob@x.test", 1001)
            .unwrap());
        assert!(!t
            .seen(a, TrackKind::Vacation, "other", "bob@x.test", 1001)
            .unwrap());
        assert!(!t
            .seen(
                "carol@example.org",
                TrackKind::Vacation,
                "h",
                "bob@x.test",
                1001
            )
            .unwrap());
        // A later write prunes what expired.
        t.record(a, TrackKind::Vacation, "h", "dave@x.test", 2000, 60)
            .unwrap();
        let files = fs::read_dir(t.kind_dir(a, TrackKind::Vacation))
            .unwrap()
            .count();
        assert_eq!(files, 1);
    }

    #[test]
    fn odd_account_names_stay_inside_the_root() {
        assert_eq!(account_dir_name("Alice@Example.org"), "alice@example.org");
        assert!(account_dir_name("../etc").starts_with("x-"));
        assert!(account_dir_name("a/b@c").starts_with("x-"));
    }
}
