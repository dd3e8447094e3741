//! Expunged messages kept readable for the sessions that have not yet been told of the expunge.
//!
//! IMAP forbids telling a session of an expunge during FETCH, STORE and SEARCH (RFC 9051
//! §7.5.1), so another session may still address a message whose file this process just
//! removed. RFC 2180 §4.1.1 lets a server keep serving such a message until every session has
//! been told; postern does so. Before a file leaves its folder (EXPUNGE, MOVE, POP3 deletion)
//! while sessions listen to that mailbox, it is hard-linked into the account's
//! `postern-expunged/` directory. The link belongs to a [`Held`] that travels inside the
//! [`MailboxEvent::Expunged`](crate::MailboxEvent) event: each session that still shows the
//! message keeps its copy of the handle until it has reported the expunge, and the link is
//! removed when the last handle goes (the broadcast channel drops events every listener has
//! read). Reads of a UID the index no longer has look here before answering "not found".
//!
//! The directory name does not start with a dot, so Maildir++ readers never take it for a
//! folder. Links left by a crash are swept once they are a day old.

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::maildir::files::NameGen;
use crate::Held;

/// The hold directory inside an account directory.
pub(super) const HELD_DIR: &str = "postern-expunged";

/// Links older than this are removed by the periodic sweep (no session lives that long
/// without reporting an expunge: the autologout timer is 30 minutes).
const HOLD_AT_MOST: Duration = Duration::from_secs(24 * 3600);

/// A hard link to an expunged message, removed when the last handle is dropped.
struct HeldFile {
    path: PathBuf,
}

impl Drop for HeldFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// (account, mailbox, UIDVALIDITY, UID)
type Key = (String, String, u32, u32);

/// Where the held messages of all accounts are.
#[derive(Default)]
pub(crate) struct HeldFiles {
    map: Mutex<HashMap<Key, Weak<HeldFile>>>,
}

/// One message about to leave its folder.
pub(crate) struct Leaving<'a> {
    pub(crate) account: &'a str,
    pub(crate) mailbox: &'a str,
    pub(crate) uidvalidity: u32,
    pub(crate) uid: u32,
    /// Its file, still in place.
    pub(crate) path: &'a Path,
}

impl HeldFiles {
    /// Links the message into the account's hold directory (`root` is the account directory).
    /// `None` when it cannot (the file is already gone): readers then get "not found", as
    /// RFC 2180 §4.1.2 allows.
    pub(crate) fn hold(&self, root: &Path, m: &Leaving<'_>, gen: &NameGen) -> Option<Held> {
        let dir = root.join(HELD_DIR);
        let path = dir.join(gen.unique());
        if fs::hard_link(m.path, &path).is_err() {
            // Private like the mail itself: only the server's user may read it.
            // (Another thread may have created it meanwhile.)
            let _ = std::os::unix::fs::DirBuilderExt::mode(&mut fs::DirBuilder::new(), 0o700)
                .create(&dir);
            fs::hard_link(m.path, &path).ok()?;
        }
        let file = Arc::new(HeldFile { path });
        let key = (
            m.account.to_owned(),
            m.mailbox.to_owned(),
            m.uidvalidity,
            m.uid,
        );
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        // Forget released holds now and then, so the map stays as small as what is held.
        if map.len() >= 1024 && map.len().is_power_of_two() {
            map.retain(|_, w| w.strong_count() > 0);
        }
        map.insert(key, Arc::downgrade(&file));
        Some(Held::new(file))
    }

    /// Opens a held message, if some session still holds it.
    pub(crate) fn open(
        &self,
        account: &str,
        mailbox: &str,
        uidvalidity: u32,
        uid: u32,
    ) -> Option<File> {
        let key = (account.to_owned(), mailbox.to_owned(), uidvalidity, uid);
        let file = self
            .map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)?
            .upgrade()?;
        File::open(&file.path).ok()
    }
}

/// Removes links a crashed process left behind (their names start with the Unix time of the
/// hold, as every [`NameGen`] name does).
pub(crate) fn sweep(root: &Path) {
    let Ok(rd) = fs::read_dir(root.join(HELD_DIR)) else {
        return;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    for ent in rd.flatten() {
        let name = ent.file_name();
        let secs = name
            .to_str()
            .and_then(|n| n.split('.').next())
            .and_then(|s| s.parse::<u64>().ok());
        if secs.is_none_or(|s| s + HOLD_AT_MOST.as_secs() < now) {
            let _ = fs::remove_file(ent.path());
        }
    }
}
