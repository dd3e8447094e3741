//! The maildrop (`data_dir/public/maildrop`, mode 1733): where `sendmail` leaves a request when
//! `serve` does not run, and where `serve` picks it up.
//!
//! Commit protocol (client): `NAME.tmp` is created with `O_EXCL|O_NOFOLLOW` (NAME: 128 random
//! bits in hex), written, made readable by the server (0604: others cannot list the directory,
//! so the random name is the secret), fsynced, renamed to `NAME`, and the file system synced
//! (`syncfs`: the caller cannot open the directory it cannot read to fsync it). Exit 0 only
//! after that. Only `NAME` files are picked up; a `NAME.tmp` is a client that has not finished
//! (or crashed): it is left alone, and removed once older than [`STALE_TMP`].
//!
//! Pickup (server): the file is opened without following links; it must be a regular file with
//! one link (a hard link to someone else's file would lend its owner's identity); its owner is
//! the sender's identity. A file that cannot be queued for good (malformed, refused by the
//! policy, owner unknown) is moved to `data_dir/maildrop-bad/` with a log line; a temporary
//! failure (the spool) leaves it for the next scan.

use super::compose::{prepare, random_hex};
use super::request::{Request, MAX_HEAD};
use super::users::{by_uid, Identity};
use super::{Refusal, EX_CANTCREAT, EX_NOUSER, EX_TEMPFAIL, EX_UNAVAILABLE};
use postern_config::Config;
use postern_spool::{Queue, QueueId};
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// A `.tmp` file older than this belongs to a client that died: its caller never saw exit 0.
const STALE_TMP: Duration = Duration::from_secs(3600);

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The caller's identity, for the policy check the client makes before writing.
fn caller(config: &Config) -> Result<Identity, Refusal> {
    let uid = crate::privileges::current_uid();
    match by_uid(uid, !config.sendmail.trusted_groups.is_empty()) {
        Ok(Some(who)) => Ok(who),
        Ok(None) => Err(Refusal::new(
            EX_NOUSER,
            format!("uid {uid} has no login name in the user database"),
        )),
        Err(e) => Err(Refusal::new(
            EX_TEMPFAIL,
            format!("looking up uid {uid}: {e}"),
        )),
    }
}

/// Client: writes `req` durably into the maildrop; returns the file's name. What the server
/// would refuse (sender policy, recipients, size) is refused here first, with its exit code.
pub(crate) fn write(config: &Config, req: &Request) -> Result<String, Refusal> {
    let who = caller(config)?;
    prepare(config, &who, req, &QueueId::generate(), now_unix())?;
    let dir = super::maildrop_dir(&config.data_dir);
    if !dir.is_dir() {
        return Err(Refusal::new(
            EX_UNAVAILABLE,
            format!(
                "postern serve is not running and the maildrop {} does not exist \
                 (serve creates it when it starts): the message was not sent",
                dir.display()
            ),
        ));
    }
    let name = random_hex();
    let tmp = dir.join(format!("{name}.tmp"));
    let cant = |what: &str, e: std::io::Error| {
        Refusal::new(
            EX_CANTCREAT,
            format!("{what} {}: {e}: the message was not sent", tmp.display()),
        )
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(|e| cant("cannot create", e))?;
    let written = (|| -> std::io::Result<()> {
        file.write_all(&req.encode())?;
        // The server reads it as another user; others cannot list the directory to find it.
        file.set_permissions(std::fs::Permissions::from_mode(0o604))?;
        file.sync_all()?;
        std::fs::rename(&tmp, dir.join(&name))?;
        syncfs(&file)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(cant("cannot write", e));
    }
    Ok(name)
}

/// syncfs(2): commits the rename (the directory entry) to disk.
fn syncfs(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: syncfs takes an open descriptor and has no other effect on it.
    if unsafe { libc::syncfs(file.as_raw_fd()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// What one scan did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Scan {
    pub queued: usize,
    pub set_aside: usize,
    pub left: usize,
}

/// Whether `name` is a committed maildrop file's name.
fn ready_name(name: &str) -> bool {
    name.len() == 32 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Server: queues every committed file of the maildrop.
pub(crate) fn pickup(config: &Config, queue: &dyn Queue) -> Scan {
    let dir = super::maildrop_dir(&config.data_dir);
    let mut scan = Scan::default();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!("maildrop {}: cannot list it: {e}", dir.display());
            return scan;
        }
    };
    let mut changed = false;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if let Some(stem) = name.strip_suffix(".tmp") {
            if ready_name(stem) {
                let old = entry
                    .metadata()
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > STALE_TMP);
                if old {
                    tracing::warn!(
                        file = %name,
                        "maildrop: removing a half-written file left by a sendmail that did not finish (its caller was told of the failure)"
                    );
                    let _ = std::fs::remove_file(&path);
                    changed = true;
                }
                continue;
            }
        }
        if !ready_name(&name) {
            set_aside(config, &path, &name, "an unexpected file name");
            scan.set_aside += 1;
            changed = true;
            continue;
        }
        match pick(config, queue, &path) {
            Ok(id) => {
                tracing::debug!(queue_id = %id, file = %name, "maildrop: picked up");
                scan.queued += 1;
                changed = true;
            }
            Err(Pick::Bad(why)) => {
                set_aside(config, &path, &name, &why);
                scan.set_aside += 1;
                changed = true;
            }
            Err(Pick::Later(why)) => {
                tracing::warn!(file = %name, "maildrop: left for the next scan: {why}");
                scan.left += 1;
            }
        }
    }
    if changed {
        if let Err(e) = File::open(&dir).and_then(|d| d.sync_all()) {
            tracing::warn!("maildrop {}: fsync: {e}", dir.display());
        }
    }
    scan
}

enum Pick {
    /// For good: the file is set aside.
    Bad(String),
    /// Temporary: left for the next scan.
    Later(String),
}

/// Queues one maildrop file and removes it.
fn pick(config: &Config, queue: &dyn Queue, path: &Path) -> Result<QueueId, Pick> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Pick::Bad(format!("cannot open it: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| Pick::Later(format!("fstat: {e}")))?;
    if !meta.file_type().is_file() {
        return Err(Pick::Bad("not a regular file".into()));
    }
    if meta.nlink() != 1 {
        return Err(Pick::Bad(format!(
            "it has {} links (a hard link would lend another user's identity)",
            meta.nlink()
        )));
    }
    let limit = config.smtp.max_message_size + MAX_HEAD as u64;
    if meta.len() > limit {
        return Err(Pick::Bad(format!("{} octets: too large", meta.len())));
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    (&mut file)
        .take(limit + 1)
        .read_to_end(&mut data)
        .map_err(|e| Pick::Later(format!("reading it: {e}")))?;
    let req = Request::decode(&data).map_err(|e| Pick::Bad(e.to_string()))?;
    let uid = meta.uid();
    let who = match by_uid(uid, !config.sendmail.trusted_groups.is_empty()) {
        Ok(Some(w)) => w,
        Ok(None) => {
            return Err(Pick::Bad(format!(
                "its owner, uid {uid}, has no login name"
            )))
        }
        Err(e) => return Err(Pick::Later(format!("looking up uid {uid}: {e}"))),
    };
    let id = QueueId::generate();
    let (envelope, message) = prepare(config, &who, &req, &id, now_unix())
        .map_err(|r| Pick::Bad(format!("refused (exit {}): {}", r.code, r.text)))?;
    queue
        .enqueue_as(id.clone(), &envelope, &message)
        .map_err(|e| Pick::Later(format!("cannot queue it: {e}")))?;
    super::server::log_queued(&id, &who, &envelope, message.len(), "maildrop");
    if let Err(e) = std::fs::remove_file(path) {
        // Queued: a second pickup would send it twice. Loud, and the admin removes it.
        tracing::error!(queue_id = %id, "maildrop: queued, but cannot remove {}: {e}", path.display());
    }
    Ok(id)
}

/// Moves a file the pickup cannot queue to `data_dir/maildrop-bad/` (a private copy, since
/// the file belongs to its sender), with a log line; never drops it silently.
fn set_aside(config: &Config, path: &Path, name: &str, why: &str) {
    let bad = super::maildrop_bad_dir(&config.data_dir);
    let target = bad.join(format!("{}-{name}", now_unix()));
    let copied = (|| -> std::io::Result<bool> {
        std::fs::create_dir_all(&bad)?;
        let mut src = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
        {
            Ok(f) if f.metadata()?.is_file() => f,
            // A link, a FIFO, a device: nothing of a message to keep.
            _ => return Ok(false),
        };
        let mut dst = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&target)?;
        std::io::copy(
            &mut (&mut src).take(config.smtp.max_message_size + MAX_HEAD as u64),
            &mut dst,
        )?;
        dst.sync_all()?;
        File::open(&bad)?.sync_all()?;
        Ok(true)
    })();
    match copied {
        Ok(true) => tracing::warn!(
            file = %name,
            kept = %target.display(),
            "maildrop: cannot queue this file ({why}); kept for the administrator"
        ),
        Ok(false) => tracing::warn!(
            file = %name,
            "maildrop: removing what is not a message file ({why})"
        ),
        Err(e) => {
            tracing::error!(file = %name, "maildrop: cannot queue this file ({why}) nor keep a copy ({e}); it stays");
            return;
        }
    }
    if let Err(e) = std::fs::remove_file(path) {
        tracing::error!(file = %name, "maildrop: cannot remove it: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pickup_queues_sets_aside_and_waits() {
        use super::super::request::Rcpt;
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let config = Config::from_toml(
            &format!(
                "hostname = \"h.example\"\ndata_dir = {:?}\n",
                data.display()
            ),
            postern_config::Source::Defaults,
        )
        .unwrap();
        super::super::server::prepare_public(&data).unwrap();
        let spool = postern_spool::Spool::open(data.join("spool")).unwrap();
        let req = Request {
            recipients: vec![Rcpt {
                address: "bob@else.example".into(),
                notify: None,
            }],
            message: b"Subject: dropped\n\nbody\n".to_vec(),
            ..Request::default()
        };
        let dir = super::super::maildrop_dir(&data);
        let good = write(&config, &req).unwrap();
        let mode = std::fs::metadata(dir.join(&good)).unwrap().mode();
        assert_eq!(mode & 0o777, 0o604);
        // A hard link to a file elsewhere would lend that file's owner: set aside.
        let outside = t.path().join("someone-elses");
        std::fs::write(&outside, req.encode()).unwrap();
        std::fs::hard_link(&outside, dir.join(random_hex())).unwrap();
        // A link to a file elsewhere: removed, never followed.
        std::os::unix::fs::symlink("/etc/passwd", dir.join(random_hex())).unwrap();
        // A client still writing: left alone.
        let writing = format!("{}.tmp", random_hex());
        std::fs::write(dir.join(&writing), "half").unwrap();

        let scan = pickup(&config, &spool);
        assert_eq!(scan.queued, 1, "{scan:?}");
        assert_eq!(scan.set_aside, 2, "{scan:?}");
        let left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, [writing]);
        let ids = Queue::ids(&spool).unwrap();
        assert_eq!(ids.len(), 1);
        let msg = Queue::message(&spool, &ids[0]).unwrap();
        let text = String::from_utf8(msg).unwrap();
        assert!(text.contains("Subject: dropped\r\n"), "{text}");
        let kept = std::fs::read_dir(super::super::maildrop_bad_dir(&data))
            .unwrap()
            .count();
        assert_eq!(
            kept, 1,
            "the hard link's content is kept, the symlink is not"
        );
        assert!(outside.exists());
    }

    #[test]
    fn names() {
        assert!(ready_name(&random_hex()));
        assert!(!ready_name("0123"));
        assert!(!ready_name(&format!("{}.tmp", random_hex())));
        assert!(!ready_name(&"g".repeat(32)));
    }
}
