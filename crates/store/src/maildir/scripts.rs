//! [`ScriptStore`] for [`MaildirStore`]: Sieve scripts as files beside the Maildir, laid out as
//! Pigeonhole's default (`sieve = file:~/sieve;active=~/.dovecot.sieve`) so that Dovecot, an
//! admin with a shell and postern all read the same scripts:
//!
//! ```text
//! <account dir>/sieve/NAME.sieve                 one file per script
//! <account dir>/.dovecot.sieve -> sieve/NAME.sieve   the active script (a relative symlink)
//! <account dir>/sieve/.postern-vacation.sieve    the vacation script `postern vacation` keeps
//! ```
//!
//! Files are 0600 and directories 0700; every change is written to a temporary file, fsynced,
//! renamed into place and its directory fsynced, so a crash leaves either the old or the new
//! script. Listing skips dot-files (the vacation script, temporary files) and anything that is
//! not a `*.sieve` file.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;

use crate::error::{Result, StoreError};
use crate::maildir::files::{
    create_private_dir_all, fsync_dir, io_at, is_not_found, write_atomic, IoContext,
};
use crate::maildir::MaildirStore;
use crate::names::check_script_name;
use crate::scripts::{ScriptInfo, ScriptStore};

/// The directory of scripts inside the account directory (Pigeonhole's `~/sieve`).
const SCRIPT_DIR: &str = "sieve";
/// The active-script symlink inside the account directory (Pigeonhole's `~/.dovecot.sieve`).
const ACTIVE_LINK: &str = ".dovecot.sieve";
/// Every script file ends with this (Pigeonhole's file storage does the same).
const SCRIPT_EXT: &str = ".sieve";
/// The vacation script: a dot-file, so listing never shows it and no user name can clash
/// (user script names may not start with `.`).
const VACATION_FILE: &str = ".postern-vacation.sieve";
/// What a `~/.dovecot.sieve` that is a regular file (not a symlink, as older setups and
/// hand-edited accounts have it) becomes when postern first changes the scripts: Pigeonhole
/// names it the same way when it adopts such a file.
const ADOPTED_NAME: &str = "dovecot.orig";
/// Longest file name most file systems take (ext4, xfs, btrfs): a script name must fit in it
/// with its extension, which is stricter than RFC 5804 §1.6's 1024 octets.
const MAX_FILE_NAME: usize = 255;

/// Where one account's scripts are.
struct Paths {
    account: PathBuf,
    dir: PathBuf,
    link: PathBuf,
}

impl Paths {
    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}{SCRIPT_EXT}"))
    }

    /// The symlink target for script `name`, relative to the account directory.
    fn link_target(name: &str) -> PathBuf {
        Path::new(SCRIPT_DIR).join(format!("{name}{SCRIPT_EXT}"))
    }

    /// What `~/.dovecot.sieve` is now.
    fn active(&self) -> Result<Active> {
        let meta = match fs::symlink_metadata(&self.link) {
            Ok(m) => m,
            Err(e) if is_not_found(&e) => return Ok(Active::None),
            Err(e) => return Err(io_at("stat", &self.link, e)),
        };
        if !meta.file_type().is_symlink() {
            return Ok(if meta.is_file() {
                Active::RegularFile
            } else {
                Active::None
            });
        }
        let target = fs::read_link(&self.link).ctx("read link", &self.link)?;
        Ok(self
            .script_of_target(&target)
            .map_or(Active::None, Active::Script))
    }

    /// The script a symlink target names, when it points at a script of ours: relative
    /// (`sieve/NAME.sieve`, as we and Pigeonhole write it) or absolute into our directory.
    fn script_of_target(&self, target: &Path) -> Option<String> {
        let parent = target.parent()?;
        let in_our_dir = if target.is_absolute() {
            parent == self.dir
        } else {
            parent == Path::new(SCRIPT_DIR)
        };
        let file = target.file_name()?.to_str()?;
        let name = file.strip_suffix(SCRIPT_EXT)?;
        (in_our_dir && check_script_name(name).is_ok()).then(|| name.to_owned())
    }

    /// Points `~/.dovecot.sieve` at `name`, atomically: a new symlink renamed over the old.
    fn link_to(&self, name: &str, store: &MaildirStore) -> Result<()> {
        let tmp = self
            .account
            .join(format!(".postern-tmp-{}", store.name_gen().unique()));
        std::os::unix::fs::symlink(Self::link_target(name), &tmp).ctx("symlink", &tmp)?;
        if let Err(e) = fs::rename(&tmp, &self.link) {
            let _ = fs::remove_file(&tmp);
            return Err(io_at("rename", &self.link, e));
        }
        fsync_dir(&self.account)
    }

    /// Removes `~/.dovecot.sieve` (no script active).
    fn unlink(&self) -> Result<()> {
        match fs::remove_file(&self.link) {
            Ok(()) => fsync_dir(&self.account),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(io_at("remove", &self.link, e)),
        }
    }

    fn exists(&self, name: &str) -> Result<bool> {
        match fs::symlink_metadata(self.file(name)) {
            Ok(m) => Ok(m.is_file()),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(io_at("stat", self.file(name), e)),
        }
    }

    /// Creates `sieve/` (and the account directory) when missing.
    fn ensure_dir(&self) -> Result<()> {
        if !self.dir.is_dir() {
            create_private_dir_all(&self.dir).ctx("create directory", &self.dir)?;
            fsync_dir(&self.account)?;
        }
        Ok(())
    }
}

/// The state of the active-script marker.
#[derive(Debug, PartialEq, Eq)]
enum Active {
    None,
    Script(String),
    /// `~/.dovecot.sieve` is a script itself, not a link (see [`ADOPTED_NAME`]).
    RegularFile,
}

/// Reads a script file as UTF-8 (RFC 5228 §2.1: scripts are UTF-8); `None` when absent.
fn read_script(path: &Path, name: &str) -> Result<Option<String>> {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| StoreError::Corrupt(format!("script {name:?} is not UTF-8"))),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(io_at("read script", path, e)),
    }
}

/// Which version of a script file was read: every change postern makes renames a new file over
/// the old one (a new inode), and an edit in place changes the size or the times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(m: &fs::Metadata) -> Stamp {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// Most script files remembered; past it the cache starts over (one entry per account with an
/// active or vacation script).
const MAX_CACHED_TEXTS: usize = 4096;

/// Script texts by file, kept while the file's [`Stamp`] stays the same: delivery needs the
/// active and the vacation script for every message, and a `stat` is cheaper than a read and
/// needs no blocking thread.
#[derive(Debug, Default)]
pub(super) struct ScriptTexts(Mutex<HashMap<PathBuf, (Stamp, String)>>);

impl ScriptTexts {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, (Stamp, String)>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The text of `path` if it is known and the file unchanged: `Some(None)` when there is no
    /// such file, `None` when the file must be read.
    fn cached(&self, path: &Path) -> Option<Option<String>> {
        match fs::metadata(path) {
            Ok(m) => {
                let stamp = Stamp::of(&m);
                self.map()
                    .get(path)
                    .filter(|(s, _)| *s == stamp)
                    .map(|(_, text)| Some(text.clone()))
            }
            Err(e) if is_not_found(&e) => {
                self.map().remove(path);
                Some(None)
            }
            Err(_) => None,
        }
    }

    /// [`read_script`], remembering the text with the stamp the file had before the read (a
    /// change during the read gives a newer stamp, so the next lookup reads again).
    fn read(&self, path: &Path, name: &str) -> Result<Option<String>> {
        let before = fs::metadata(path).ok().map(|m| Stamp::of(&m));
        let text = read_script(path, name)?;
        if let (Some(stamp), Some(text)) = (before, &text) {
            let mut map = self.map();
            if map.len() >= MAX_CACHED_TEXTS {
                map.clear();
            }
            map.insert(path.to_owned(), (stamp, text.clone()));
        }
        Ok(text)
    }
}

/// A script name that is valid and fits in a file name.
fn check_name(name: &str) -> Result<()> {
    check_script_name(name)?;
    if name.len() + SCRIPT_EXT.len() > MAX_FILE_NAME {
        return Err(StoreError::InvalidScriptName {
            name: name.chars().take(80).collect(),
            reason: "name too long for this server (at most 249 octets)",
        });
    }
    Ok(())
}

impl MaildirStore {
    fn script_paths(&self, account: &str) -> Result<Paths> {
        let account = self.account_dir(account)?;
        Ok(Paths {
            dir: account.join(SCRIPT_DIR),
            link: account.join(ACTIVE_LINK),
            account,
        })
    }

    /// Paths for a change: the account's Maildir exists (scripts live with the account), the
    /// script directory exists, and a regular-file `~/.dovecot.sieve` has been adopted.
    fn script_paths_for_change(&self, account: &str) -> Result<Paths> {
        self.ensure_account(account)?;
        let p = self.script_paths(account)?;
        p.ensure_dir()?;
        if p.active()? == Active::RegularFile {
            self.adopt_regular_active(&p)?;
        }
        Ok(p)
    }

    /// Moves a regular-file `~/.dovecot.sieve` into `sieve/` as [`ADOPTED_NAME`] and links it,
    /// so the user's script stays active and becomes manageable.
    fn adopt_regular_active(&self, p: &Paths) -> Result<()> {
        let mut name = ADOPTED_NAME.to_owned();
        let mut n = 1;
        while p.exists(&name)? {
            n += 1;
            name = format!("{ADOPTED_NAME}-{n}");
        }
        let source = fs::read(&p.link).ctx("read script", &p.link)?;
        write_atomic(&p.file(&name), &source, self.name_gen())?;
        p.link_to(&name, self)?;
        tracing::info!(
            script = name,
            "adopted a regular-file .dovecot.sieve as a stored script"
        );
        Ok(())
    }

    /// RFC 5804 §2.7: the account's scripts, sorted by name.
    pub fn list_scripts(&self, account: &str) -> Result<Vec<ScriptInfo>> {
        let p = self.script_paths(account)?;
        let active = p.active()?;
        let mut out = Vec::new();
        let entries = match fs::read_dir(&p.dir) {
            Ok(e) => e,
            Err(e) if is_not_found(&e) => return Ok(self.with_regular_active(&p, &active, out)),
            Err(e) => return Err(io_at("list", &p.dir, e)),
        };
        for entry in entries {
            let entry = entry.ctx("list", &p.dir)?;
            let Some(file) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Some(name) = file.strip_suffix(SCRIPT_EXT) else {
                continue;
            };
            if check_script_name(name).is_err() {
                continue; // dot-files: the vacation script, temporary files
            }
            let meta = match entry.metadata() {
                Ok(m) if m.is_file() => m,
                _ => continue,
            };
            out.push(ScriptInfo {
                name: name.to_owned(),
                active: active == Active::Script(name.to_owned()),
                size: meta.len(),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(self.with_regular_active(&p, &active, out))
    }

    /// A regular-file `~/.dovecot.sieve` shows in listings as the active [`ADOPTED_NAME`]
    /// (it becomes that script on the first change).
    fn with_regular_active(
        &self,
        p: &Paths,
        active: &Active,
        mut list: Vec<ScriptInfo>,
    ) -> Vec<ScriptInfo> {
        if *active == Active::RegularFile {
            let size = fs::metadata(&p.link).map(|m| m.len()).unwrap_or(0);
            list.retain(|s| s.name != ADOPTED_NAME);
            list.push(ScriptInfo {
                name: ADOPTED_NAME.to_owned(),
                active: true,
                size,
            });
            list.sort_by(|a, b| a.name.cmp(&b.name));
        }
        list
    }

    /// RFC 5804 §2.9: script `name`'s source.
    pub fn get_script(&self, account: &str, name: &str) -> Result<Option<String>> {
        check_name(name)?;
        let p = self.script_paths(account)?;
        if name == ADOPTED_NAME && p.active()? == Active::RegularFile {
            return read_script(&p.link, name);
        }
        read_script(&p.file(name), name)
    }

    /// The active script's name and source, for delivery.
    pub fn active_script(&self, account: &str) -> Result<Option<(String, String)>> {
        let p = self.script_paths(account)?;
        match p.active()? {
            Active::None => Ok(None),
            Active::RegularFile => {
                Ok(read_script(&p.link, ADOPTED_NAME)?.map(|s| (ADOPTED_NAME.to_owned(), s)))
            }
            // A dangling link (the file removed by hand) means no active script.
            Active::Script(name) => Ok(self
                .script_texts()
                .read(&p.file(&name), &name)?
                .map(|s| (name, s))),
        }
    }

    /// [`Self::active_script`] without reading a file: `None` when the text is not cached
    /// unchanged (or anything is unusual), and the blocking path must answer.
    fn active_script_now(&self, account: &str) -> Option<Result<Option<(String, String)>>> {
        let p = self.script_paths(account).ok()?;
        match p.active().ok()? {
            Active::None => Some(Ok(None)),
            Active::RegularFile => None,
            Active::Script(name) => {
                let text = self.script_texts().cached(&p.file(&name))?;
                Some(Ok(text.map(|t| (name, t))))
            }
        }
    }

    /// RFC 5804 §2.6: creates or replaces script `name` durably.
    pub fn put_script(&self, account: &str, name: &str, source: &str) -> Result<()> {
        check_name(name)?;
        let _guard = self.lock_scripts();
        let p = self.script_paths_for_change(account)?;
        write_atomic(&p.file(name), source.as_bytes(), self.name_gen())
    }

    /// RFC 5804 §2.8: activates `name`, or deactivates every script with `None`.
    pub fn activate_script(&self, account: &str, name: Option<&str>) -> Result<()> {
        if let Some(name) = name {
            check_name(name)?;
        }
        let _guard = self.lock_scripts();
        let p = self.script_paths_for_change(account)?;
        match name {
            None => p.unlink(),
            Some(name) if !p.exists(name)? => Err(StoreError::ScriptNotFound(name.to_owned())),
            Some(name) => p.link_to(name, self),
        }
    }

    /// RFC 5804 §2.10: deletes script `name`; refuses the active one.
    pub fn delete_script(&self, account: &str, name: &str) -> Result<()> {
        check_name(name)?;
        let _guard = self.lock_scripts();
        let p = self.script_paths_for_change(account)?;
        if p.active()? == Active::Script(name.to_owned()) {
            return Err(StoreError::ScriptActive(name.to_owned()));
        }
        let file = p.file(name);
        match fs::remove_file(&file) {
            Ok(()) => fsync_dir(&p.dir),
            Err(e) if is_not_found(&e) => Err(StoreError::ScriptNotFound(name.to_owned())),
            Err(e) => Err(io_at("remove", &file, e)),
        }
    }

    /// RFC 5804 §2.11.1: renames `old` to `new`, keeping it active if it was.
    pub fn rename_script(&self, account: &str, old: &str, new: &str) -> Result<()> {
        check_name(old)?;
        check_name(new)?;
        let _guard = self.lock_scripts();
        let p = self.script_paths_for_change(account)?;
        if !p.exists(old)? {
            return Err(StoreError::ScriptNotFound(old.to_owned()));
        }
        if old == new {
            return Ok(());
        }
        let (from, to) = (p.file(old), p.file(new));
        // A hard link never replaces an existing file: the new name is taken atomically, so
        // another program's script of that name is never overwritten.
        if let Err(e) = fs::hard_link(&from, &to) {
            return Err(if e.kind() == io::ErrorKind::AlreadyExists {
                StoreError::ScriptExists(new.to_owned())
            } else {
                io_at("link", &to, e)
            });
        }
        fsync_dir(&p.dir)?;
        // The link moves before the old name goes, so delivery always finds the active script.
        if p.active()? == Active::Script(old.to_owned()) {
            p.link_to(new, self)?;
        }
        fs::remove_file(&from).ctx("remove", &from)?;
        fsync_dir(&p.dir)
    }

    /// The vacation script that `postern vacation` keeps; `None` when vacation is off.
    pub fn vacation_script(&self, account: &str) -> Result<Option<String>> {
        let p = self.script_paths(account)?;
        self.script_texts()
            .read(&p.dir.join(VACATION_FILE), "vacation")
    }

    /// [`Self::vacation_script`] without reading a file, as [`Self::active_script_now`].
    fn vacation_script_now(&self, account: &str) -> Option<Result<Option<String>>> {
        let p = self.script_paths(account).ok()?;
        self.script_texts()
            .cached(&p.dir.join(VACATION_FILE))
            .map(Ok)
    }

    /// Sets (`Some`) or removes (`None`) the vacation script; the user's scripts are untouched.
    pub fn set_vacation_script(&self, account: &str, source: Option<&str>) -> Result<()> {
        let _guard = self.lock_scripts();
        match source {
            Some(source) => {
                let p = self.script_paths_for_change(account)?;
                write_atomic(
                    &p.dir.join(VACATION_FILE),
                    source.as_bytes(),
                    self.name_gen(),
                )
            }
            None => {
                let p = self.script_paths(account)?;
                let file = p.dir.join(VACATION_FILE);
                match fs::remove_file(&file) {
                    Ok(()) => fsync_dir(&p.dir),
                    Err(e) if is_not_found(&e) => Ok(()),
                    Err(e) => Err(io_at("remove", &file, e)),
                }
            }
        }
    }

    async fn scripts_blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&MaildirStore) -> Result<T> + Send + 'static,
    {
        let s = self.clone();
        match tokio::task::spawn_blocking(move || f(&s)).await {
            Ok(r) => r,
            Err(e) => Err(StoreError::Task(e.to_string())),
        }
    }
}

#[async_trait]
impl ScriptStore for MaildirStore {
    async fn list_scripts(&self, account: &str) -> Result<Vec<ScriptInfo>> {
        let a = account.to_owned();
        self.scripts_blocking(move |s| s.list_scripts(&a)).await
    }
    async fn get_script(&self, account: &str, name: &str) -> Result<Option<String>> {
        let (a, n) = (account.to_owned(), name.to_owned());
        self.scripts_blocking(move |s| s.get_script(&a, &n)).await
    }
    async fn active_script(&self, account: &str) -> Result<Option<(String, String)>> {
        // Delivery asks for every message: a cached unchanged text needs no blocking thread.
        if let Some(found) = self.active_script_now(account) {
            return found;
        }
        let a = account.to_owned();
        self.scripts_blocking(move |s| s.active_script(&a)).await
    }
    async fn put_script(&self, account: &str, name: &str, source: &str) -> Result<()> {
        let (a, n, src) = (account.to_owned(), name.to_owned(), source.to_owned());
        self.scripts_blocking(move |s| s.put_script(&a, &n, &src))
            .await
    }
    async fn activate_script(&self, account: &str, name: Option<&str>) -> Result<()> {
        let (a, n) = (account.to_owned(), name.map(str::to_owned));
        self.scripts_blocking(move |s| s.activate_script(&a, n.as_deref()))
            .await
    }
    async fn delete_script(&self, account: &str, name: &str) -> Result<()> {
        let (a, n) = (account.to_owned(), name.to_owned());
        self.scripts_blocking(move |s| s.delete_script(&a, &n))
            .await
    }
    async fn rename_script(&self, account: &str, old: &str, new: &str) -> Result<()> {
        let (a, o, n) = (account.to_owned(), old.to_owned(), new.to_owned());
        self.scripts_blocking(move |s| s.rename_script(&a, &o, &n))
            .await
    }
    async fn vacation_script(&self, account: &str) -> Result<Option<String>> {
        if let Some(found) = self.vacation_script_now(account) {
            return found;
        }
        let a = account.to_owned();
        self.scripts_blocking(move |s| s.vacation_script(&a)).await
    }
    async fn set_vacation_script(&self, account: &str, source: Option<&str>) -> Result<()> {
        let (a, src) = (account.to_owned(), source.map(str::to_owned));
        self.scripts_blocking(move |s| s.set_vacation_script(&a, src.as_deref()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const ACCOUNT: &str = "alice@example.org";
    const FILTER: &str =
        "require \"fileinto\";\nif header :contains \"subject\" \"x\" { fileinto \"X\"; }\n";

    fn store() -> (tempfile::TempDir, MaildirStore) {
        let t = tempfile::tempdir().unwrap();
        let s = MaildirStore::open(t.path().join("mail"), "test.example").unwrap();
        (t, s)
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn pigeonhole_layout_and_modes() {
        let (_t, s) = store();
        s.put_script(ACCOUNT, "main", FILTER).unwrap();
        s.activate_script(ACCOUNT, Some("main")).unwrap();
        let acct = s.account_dir(ACCOUNT).unwrap();
        let file = acct.join("sieve/main.sieve");
        assert_eq!(fs::read_to_string(&file).unwrap(), FILTER);
        assert_eq!(
            fs::read_link(acct.join(".dovecot.sieve")).unwrap(),
            Path::new("sieve/main.sieve")
        );
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&acct.join("sieve")), 0o700);
        // The Maildir was created with the account: scripts live with the account.
        assert!(s.account_exists(ACCOUNT).unwrap());
        // Neither sieve/ nor the .dovecot.sieve link is taken for a Maildir++ folder.
        let names: Vec<String> = s
            .list_mailboxes(ACCOUNT)
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert!(
            names.iter().all(|n| !n.to_lowercase().contains("sieve")),
            "{names:?}"
        );
    }

    /// Delivery's cached texts follow every change: a replacement (new file renamed in), an
    /// edit in place, a switch of the active script, vacation set and removed.
    #[test]
    fn cached_texts_follow_every_change() {
        let (_t, s) = store();
        assert_eq!(s.active_script_now(ACCOUNT).unwrap().unwrap(), None);
        s.put_script(ACCOUNT, "main", "keep;\n").unwrap();
        s.activate_script(ACCOUNT, Some("main")).unwrap();
        // Not read yet: the blocking path must answer, then the text is cached.
        assert!(s.active_script_now(ACCOUNT).is_none());
        let keep = Some(("main".to_string(), "keep;\n".to_string()));
        assert_eq!(s.active_script(ACCOUNT).unwrap(), keep);
        assert_eq!(s.active_script_now(ACCOUNT).unwrap().unwrap(), keep);

        s.put_script(ACCOUNT, "main", "discard;\n").unwrap();
        assert!(s.active_script_now(ACCOUNT).is_none());
        assert_eq!(s.active_script(ACCOUNT).unwrap().unwrap().1, "discard;\n");

        let file = s.account_dir(ACCOUNT).unwrap().join("sieve/main.sieve");
        fs::write(&file, "stop;\n").unwrap();
        assert_eq!(s.active_script(ACCOUNT).unwrap().unwrap().1, "stop;\n");

        s.put_script(ACCOUNT, "other", FILTER).unwrap();
        s.activate_script(ACCOUNT, Some("other")).unwrap();
        assert_eq!(s.active_script(ACCOUNT).unwrap().unwrap().1, FILTER);
        s.activate_script(ACCOUNT, None).unwrap();
        assert_eq!(s.active_script_now(ACCOUNT).unwrap().unwrap(), None);

        assert_eq!(s.vacation_script_now(ACCOUNT).unwrap().unwrap(), None);
        s.set_vacation_script(ACCOUNT, Some("vacation \"away\";\n"))
            .unwrap();
        assert_eq!(
            s.vacation_script(ACCOUNT).unwrap().as_deref(),
            Some("vacation \"away\";\n")
        );
        assert_eq!(
            s.vacation_script_now(ACCOUNT).unwrap().unwrap().as_deref(),
            Some("vacation \"away\";\n")
        );
        s.set_vacation_script(ACCOUNT, None).unwrap();
        assert_eq!(s.vacation_script_now(ACCOUNT).unwrap().unwrap(), None);
        assert_eq!(s.vacation_script(ACCOUNT).unwrap(), None);
    }

    #[test]
    fn list_get_active() {
        let (_t, s) = store();
        assert!(s.list_scripts(ACCOUNT).unwrap().is_empty());
        assert_eq!(s.active_script(ACCOUNT).unwrap(), None);
        s.put_script(ACCOUNT, "b", "keep;\n").unwrap();
        s.put_script(ACCOUNT, "a", FILTER).unwrap();
        s.activate_script(ACCOUNT, Some("b")).unwrap();
        let list = s.list_scripts(ACCOUNT).unwrap();
        assert_eq!(
            list,
            vec![
                ScriptInfo {
                    name: "a".into(),
                    active: false,
                    size: FILTER.len() as u64
                },
                ScriptInfo {
                    name: "b".into(),
                    active: true,
                    size: 6
                },
            ]
        );
        assert_eq!(s.get_script(ACCOUNT, "a").unwrap().as_deref(), Some(FILTER));
        assert_eq!(s.get_script(ACCOUNT, "zz").unwrap(), None);
        assert_eq!(
            s.active_script(ACCOUNT).unwrap(),
            Some(("b".into(), "keep;\n".into()))
        );
        s.activate_script(ACCOUNT, None).unwrap();
        assert_eq!(s.active_script(ACCOUNT).unwrap(), None);
        assert!(s.list_scripts(ACCOUNT).unwrap().iter().all(|i| !i.active));
        // Deactivating twice is fine (RFC 5804 §2.8: SETACTIVE "" when none is active).
        s.activate_script(ACCOUNT, None).unwrap();
    }

    #[test]
    fn replace_keeps_active() {
        let (_t, s) = store();
        s.put_script(ACCOUNT, "main", "keep;\n").unwrap();
        s.activate_script(ACCOUNT, Some("main")).unwrap();
        s.put_script(ACCOUNT, "main", "discard;\n").unwrap();
        assert_eq!(
            s.active_script(ACCOUNT).unwrap(),
            Some(("main".into(), "discard;\n".into()))
        );
    }

    #[test]
    fn activate_missing_is_not_found() {
        let (_t, s) = store();
        assert!(matches!(
            s.activate_script(ACCOUNT, Some("nope")),
            Err(StoreError::ScriptNotFound(n)) if n == "nope"
        ));
    }

    #[test]
    fn delete_refuses_active_and_reports_missing() {
        let (_t, s) = store();
        s.put_script(ACCOUNT, "main", "keep;\n").unwrap();
        s.activate_script(ACCOUNT, Some("main")).unwrap();
        assert!(matches!(
            s.delete_script(ACCOUNT, "main"),
            Err(StoreError::ScriptActive(_))
        ));
        assert!(matches!(
            s.delete_script(ACCOUNT, "other"),
            Err(StoreError::ScriptNotFound(_))
        ));
        s.activate_script(ACCOUNT, None).unwrap();
        s.delete_script(ACCOUNT, "main").unwrap();
        assert!(s.list_scripts(ACCOUNT).unwrap().is_empty());
    }

    #[test]
    fn rename_keeps_active_and_refuses_existing() {
        let (_t, s) = store();
        s.put_script(ACCOUNT, "old", "keep;\n").unwrap();
        s.put_script(ACCOUNT, "taken", "discard;\n").unwrap();
        s.activate_script(ACCOUNT, Some("old")).unwrap();
        assert!(matches!(
            s.rename_script(ACCOUNT, "old", "taken"),
            Err(StoreError::ScriptExists(_))
        ));
        assert_eq!(
            s.get_script(ACCOUNT, "taken").unwrap().as_deref(),
            Some("discard;\n")
        );
        s.rename_script(ACCOUNT, "old", "new").unwrap();
        assert_eq!(
            s.active_script(ACCOUNT).unwrap(),
            Some(("new".into(), "keep;\n".into()))
        );
        assert_eq!(s.get_script(ACCOUNT, "old").unwrap(), None);
        assert!(matches!(
            s.rename_script(ACCOUNT, "ghost", "x"),
            Err(StoreError::ScriptNotFound(_))
        ));
    }

    #[test]
    fn vacation_script_is_apart_from_user_scripts() {
        let (_t, s) = store();
        s.put_script(ACCOUNT, "mine", FILTER).unwrap();
        s.activate_script(ACCOUNT, Some("mine")).unwrap();
        assert_eq!(s.vacation_script(ACCOUNT).unwrap(), None);
        let vac = "require \"vacation\";\nvacation \"away\";\n";
        s.set_vacation_script(ACCOUNT, Some(vac)).unwrap();
        assert_eq!(s.vacation_script(ACCOUNT).unwrap().as_deref(), Some(vac));
        let names: Vec<_> = s
            .list_scripts(ACCOUNT)
            .unwrap()
            .into_iter()
            .map(|i| i.name)
            .collect();
        assert_eq!(names, ["mine"]);
        assert_eq!(s.active_script(ACCOUNT).unwrap().unwrap().0, "mine");
        s.set_vacation_script(ACCOUNT, None).unwrap();
        s.set_vacation_script(ACCOUNT, None).unwrap();
        assert_eq!(s.vacation_script(ACCOUNT).unwrap(), None);
        assert_eq!(
            s.get_script(ACCOUNT, "mine").unwrap().as_deref(),
            Some(FILTER)
        );
    }

    #[test]
    fn names_are_checked() {
        let (_t, s) = store();
        for bad in [".hidden", "a/b", "", "x\u{1}", &"n".repeat(250)] {
            assert!(
                matches!(
                    s.put_script(ACCOUNT, bad, "keep;"),
                    Err(StoreError::InvalidScriptName { .. })
                ),
                "{bad:?}"
            );
        }
        s.put_script(ACCOUNT, &"n".repeat(249), "keep;").unwrap();
        s.put_script(ACCOUNT, "with space é", "keep;").unwrap();
        assert_eq!(s.list_scripts(ACCOUNT).unwrap().len(), 2);
    }

    #[test]
    fn listing_skips_foreign_files() {
        let (_t, s) = store();
        s.put_script(ACCOUNT, "main", "keep;").unwrap();
        let dir = s.account_dir(ACCOUNT).unwrap().join("sieve");
        fs::write(dir.join("notes.txt"), "x").unwrap();
        fs::write(dir.join(".postern-tmp-123"), "x").unwrap();
        fs::create_dir(dir.join("tmp")).unwrap();
        fs::create_dir(dir.join("dir.sieve")).unwrap();
        let names: Vec<_> = s
            .list_scripts(ACCOUNT)
            .unwrap()
            .into_iter()
            .map(|i| i.name)
            .collect();
        assert_eq!(names, ["main"]);
    }

    #[test]
    fn regular_file_active_is_adopted() {
        let (_t, s) = store();
        s.create_account(ACCOUNT).unwrap();
        let acct = s.account_dir(ACCOUNT).unwrap();
        fs::write(acct.join(".dovecot.sieve"), "discard;\n").unwrap();
        // Delivery reads it as it is.
        assert_eq!(
            s.active_script(ACCOUNT).unwrap(),
            Some(("dovecot.orig".into(), "discard;\n".into()))
        );
        let list = s.list_scripts(ACCOUNT).unwrap();
        assert_eq!(list.len(), 1);
        assert!(list[0].active && list[0].name == "dovecot.orig");
        // The first change makes it a stored script, still active.
        s.put_script(ACCOUNT, "other", "keep;\n").unwrap();
        assert_eq!(
            fs::read_link(acct.join(".dovecot.sieve")).unwrap(),
            Path::new("sieve/dovecot.orig.sieve")
        );
        assert_eq!(
            s.get_script(ACCOUNT, "dovecot.orig").unwrap().as_deref(),
            Some("discard;\n")
        );
    }

    #[test]
    fn dangling_or_foreign_link_is_no_active_script() {
        let (_t, s) = store();
        s.put_script(ACCOUNT, "main", "keep;").unwrap();
        let acct = s.account_dir(ACCOUNT).unwrap();
        std::os::unix::fs::symlink("sieve/gone.sieve", acct.join(".dovecot.sieve")).unwrap();
        assert_eq!(s.active_script(ACCOUNT).unwrap(), None);
        fs::remove_file(acct.join(".dovecot.sieve")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", acct.join(".dovecot.sieve")).unwrap();
        assert_eq!(s.active_script(ACCOUNT).unwrap(), None);
        assert!(s.list_scripts(ACCOUNT).unwrap().iter().all(|i| !i.active));
    }

    #[tokio::test]
    async fn through_the_trait_object() {
        let (_t, s) = store();
        let scripts: std::sync::Arc<dyn ScriptStore> = std::sync::Arc::new(s);
        scripts.put_script(ACCOUNT, "main", FILTER).await.unwrap();
        scripts
            .activate_script(ACCOUNT, Some("main"))
            .await
            .unwrap();
        assert_eq!(
            scripts.active_script(ACCOUNT).await.unwrap(),
            Some(("main".into(), FILTER.into()))
        );
        assert_eq!(scripts.list_scripts(ACCOUNT).await.unwrap().len(), 1);
    }
}
