//! One `serve` per data directory: an exclusive lock on `data_dir/postern.pid`, held for
//! the life of the process (the kernel releases it however the process ends), with the
//! holder's PID inside so the refusal can name it. Admin commands never take it: they
//! work beside the running server.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The held lock; dropping it (or exiting) releases it.
#[derive(Debug)]
pub(crate) struct ServerLock {
    _file: File,
}

/// The lock file's path for a data directory.
pub(crate) fn path_in(data_dir: &Path) -> PathBuf {
    data_dir.join("postern.pid")
}

/// Takes the lock or says which process holds it.
pub(crate) fn acquire(data_dir: &Path) -> anyhow::Result<ServerLock> {
    let path = path_in(data_dir);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("cannot open the lock file {}: {e}", path.display()))?;
    // SAFETY: flock on a file descriptor we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let holder = match text.trim().parse::<u32>() {
                Ok(pid) => format!("pid {pid}"),
                Err(_) => "another process".to_string(),
            };
            anyhow::bail!(
                "another postern serve ({holder}) is already running on the data directory {} \
                 (it holds {}); stop it first, or give this one its own data_dir",
                data_dir.display(),
                path.display()
            );
        }
        anyhow::bail!("cannot lock {}: {err}", path.display());
    }
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{}", std::process::id())?;
    file.sync_all()?;
    Ok(ServerLock { _file: file })
}

/// The PID of the `serve` holding the lock of `data_dir`, if one runs.
pub(crate) fn running_pid(data_dir: &Path) -> anyhow::Result<Option<u32>> {
    let path = path_in(data_dir);
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => anyhow::bail!("cannot open {}: {e}", path.display()),
    };
    // SAFETY: flock on a file descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0 {
        // Nobody holds it: a file left by a server that has stopped.
        return Ok(None);
    }
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    Ok(text.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_with_the_pid() {
        let t = tempfile::tempdir().unwrap();
        let first = acquire(t.path()).unwrap();
        let err = acquire(t.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert_eq!(running_pid(t.path()).unwrap(), Some(std::process::id()));
        drop(first);
        assert_eq!(running_pid(t.path()).unwrap(), None);
        acquire(t.path()).unwrap();
    }
}
