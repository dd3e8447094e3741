//! Data at rest: everything under `data_dir` belongs to the server's user alone.
//!
//! Mail, the spool, indexes, the directory database (password hashes, APOP secrets, SCRAM
//! keys) and private keys are created 0700/0600 whatever the umask: the process sets a
//! umask of 077 before it creates anything, and the store and spool also give explicit
//! modes. This module checks what already exists: `serve` refuses a data directory that
//! others can write (they could plant files or symlinks), `check-config` reports what
//! others can read, and `fix-permissions` repairs both.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode bits for the group and others.
const GROUP_OTHER: u32 = 0o077;
/// Write bits for the group and others.
const GROUP_OTHER_WRITE: u32 = 0o022;

/// Makes every file and directory the process creates private (0600 / 0700).
pub(crate) fn restrict_umask() {
    // SAFETY: umask only changes the calling process's file mode creation mask.
    unsafe {
        libc::umask(0o077);
    }
}

/// What is wrong with one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Problem {
    /// A directory or file others may write: refused at start.
    WritableByOthers,
    /// Others may read it (mail, secrets): a warning.
    ReadableByOthers,
    /// It belongs to another user than the one the server runs as.
    ForeignOwner { uid: u32 },
    /// A symbolic link inside the data directory other than an account's active-Sieve-script
    /// link (the only ones postern creates).
    Symlink,
    /// A directory the server's user cannot list.
    Unreadable,
}

/// One finding of [`audit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    pub path: PathBuf,
    pub mode: u32,
    pub problem: Problem,
}

impl Finding {
    /// Whether `serve` must refuse to start because of it.
    pub(crate) fn is_fatal(&self) -> bool {
        matches!(
            self.problem,
            Problem::WritableByOthers
                | Problem::ForeignOwner { .. }
                | Problem::Symlink
                | Problem::Unreadable
        )
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = self.path.display();
        let mode = self.mode & 0o7777;
        match &self.problem {
            Problem::WritableByOthers => {
                write!(f, "{p} (mode {mode:04o}) can be written by other users")
            }
            Problem::ReadableByOthers => {
                write!(f, "{p} (mode {mode:04o}) can be read by other users")
            }
            Problem::ForeignOwner { uid } => {
                write!(
                    f,
                    "{p} belongs to uid {uid}, not to the user postern runs as"
                )
            }
            Problem::Symlink => write!(
                f,
                "{p} is a symbolic link (postern creates none but the active Sieve script's)"
            ),
            Problem::Unreadable => write!(f, "{p} cannot be listed by this user"),
        }
    }
}

/// Which paths [`audit`] looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Depth {
    /// Directories only: cheap enough for every start, and what an attacker needs to write.
    Directories,
    /// Every file too.
    Everything,
}

/// Whether a file may stay readable: the generated TLS certificate is public anyway.
fn may_be_public(data_dir: &Path, path: &Path) -> bool {
    path == data_dir.join("tls").join("cert.pem")
}

/// What local users may reach for `sendmail` (see `crate::submit`), and nothing more:
/// `data_dir` and `data_dir/public` may be searched by others (0711, no listing), the maildrop
/// is 1733 (others create files, cannot list), the socket 0666. Returns the mode bits allowed
/// beyond the owner's for `path`, or `None` for every other path.
fn public_allowance(data_dir: &Path, path: &Path) -> Option<u32> {
    if path == data_dir || path == crate::submit::public_dir(data_dir) {
        Some(0o011)
    } else if path == crate::submit::maildrop_dir(data_dir) {
        Some(0o1033)
    } else if path == crate::submit::socket_path(data_dir) {
        Some(0o066)
    } else {
        None
    }
}

/// Whether `path` is the link the store marks an account's active Sieve script with
/// (Pigeonhole's `~/.dovecot.sieve -> sieve/NAME.sieve`): named so, and pointing, relatively,
/// at a plain name inside the account's own `sieve/` directory. Anything else is suspect.
fn is_active_script_link(path: &Path) -> bool {
    if path.file_name() != Some(std::ffi::OsStr::new(".dovecot.sieve")) {
        return false;
    }
    let Ok(target) = fs::read_link(path) else {
        return false;
    };
    let parts: Vec<_> = target.components().collect();
    matches!(
        parts.as_slice(),
        [std::path::Component::Normal(dir), std::path::Component::Normal(_)] if *dir == "sieve"
    )
}

/// Walks `data_dir` without following symlinks and reports every path that others can
/// write or read, or that another user than `owner` owns. A missing `data_dir` is clean.
pub(crate) fn audit(data_dir: &Path, owner: u32, depth: Depth) -> std::io::Result<Vec<Finding>> {
    let mut findings = Vec::new();
    let meta = match fs::symlink_metadata(data_dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(findings),
        Err(e) => return Err(e),
    };
    let mut stack = vec![(data_dir.to_path_buf(), meta)];
    while let Some((path, meta)) = stack.pop() {
        let mode = meta.mode();
        let kind = meta.file_type();
        let found = |problem| Finding {
            path: path.clone(),
            mode,
            problem,
        };
        if kind.is_symlink() {
            if !is_active_script_link(&path) {
                findings.push(found(Problem::Symlink));
            }
            continue;
        }
        if meta.uid() != owner {
            findings.push(found(Problem::ForeignOwner { uid: meta.uid() }));
        }
        let allowed = public_allowance(data_dir, &path);
        if path == crate::submit::maildrop_dir(data_dir) {
            // Exactly 1733 (or stricter): its files are the local users' own, checked one by
            // one when the server picks them up; the audit does not descend.
            let others = mode & 0o7077;
            if others & !0o1033 != 0 || (others & 0o022 != 0 && others & 0o1000 == 0) {
                findings.push(found(Problem::WritableByOthers));
            }
            continue;
        }
        let mode = match allowed {
            Some(bits) => mode & !bits,
            None => mode,
        };
        if mode & GROUP_OTHER_WRITE != 0 {
            findings.push(found(Problem::WritableByOthers));
        } else if mode & GROUP_OTHER != 0 && !may_be_public(data_dir, &path) {
            findings.push(found(Problem::ReadableByOthers));
        }
        if kind.is_dir() {
            let entries = match fs::read_dir(&path) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    findings.push(found(Problem::Unreadable));
                    continue;
                }
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                let meta = match entry.metadata() {
                    Ok(m) => m,
                    // Removed meanwhile (a message expunged by the running server).
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                if depth == Depth::Everything || meta.is_dir() || meta.file_type().is_symlink() {
                    stack.push((entry.path(), meta));
                }
            }
        }
    }
    findings.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(findings)
}

/// Refuses a data directory that others can write or another user owns, naming the
/// first paths and the commands that repair them.
pub(crate) fn refuse_unsafe(data_dir: &Path, owner: u32) -> anyhow::Result<()> {
    let findings = audit(data_dir, owner, Depth::Directories).map_err(|e| {
        anyhow::anyhow!(
            "data_dir {}: cannot check its permissions: {e}",
            data_dir.display()
        )
    })?;
    let fatal: Vec<&Finding> = findings.iter().filter(|f| f.is_fatal()).collect();
    if fatal.is_empty() {
        return Ok(());
    }
    let mut msg = format!(
        "refusing to start: the data directory {} is not private to this user ({} problem(s)):",
        data_dir.display(),
        fatal.len()
    );
    for f in fatal.iter().take(5) {
        msg.push_str(&format!("\n  {f}"));
    }
    if fatal.len() > 5 {
        msg.push_str(&format!("\n  ... and {} more", fatal.len() - 5));
    }
    msg.push_str(
        "\nfix: run `postern fix-permissions` as the user postern runs as (or as root), \
         and remove any symbolic link it names",
    );
    anyhow::bail!(msg)
}

/// What [`fix`] changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Repairs {
    pub modes: usize,
    pub owners: usize,
    /// Findings it cannot repair (symlinks, files of other users when not root).
    pub left: Vec<Finding>,
}

/// Removes group and other permissions everywhere under `data_dir` (the generated
/// certificate keeps its read bits), and, when `chown_to` is given (root fixing a
/// server that drops to a user), gives every path to that user and group.
pub(crate) fn fix(
    data_dir: &Path,
    owner: u32,
    chown_to: Option<(u32, u32)>,
) -> std::io::Result<Repairs> {
    let mut repairs = Repairs::default();
    let expected_owner = chown_to.map_or(owner, |(uid, _)| uid);
    for finding in audit(data_dir, expected_owner, Depth::Everything)? {
        let path = &finding.path;
        match finding.problem {
            Problem::Symlink | Problem::Unreadable => repairs.left.push(finding),
            Problem::ForeignOwner { .. } => match chown_to {
                Some((uid, gid)) => {
                    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
                    repairs.owners += 1;
                }
                None => repairs.left.push(finding),
            },
            Problem::WritableByOthers | Problem::ReadableByOthers => {
                let keep = if may_be_public(data_dir, path) {
                    0o7644
                } else if path == &crate::submit::maildrop_dir(data_dir) {
                    // Back to exactly 1733: sendmail needs it when serve is not running.
                    fs::set_permissions(path, fs::Permissions::from_mode(0o1733))?;
                    repairs.modes += 1;
                    continue;
                } else {
                    0o7700 | public_allowance(data_dir, path).unwrap_or(0)
                };
                let mode = finding.mode & keep & 0o7777;
                fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
                repairs.modes += 1;
            }
        }
    }
    Ok(repairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uid() -> u32 {
        // SAFETY: getuid has no preconditions.
        unsafe { libc::getuid() }
    }

    fn chmod(p: &Path, mode: u32) {
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn only_the_active_sieve_script_link_is_accepted() {
        let t = tempfile::tempdir().unwrap();
        let acct = t.path().join("mail/example.org/alice");
        fs::create_dir_all(acct.join("sieve")).unwrap();
        let link = acct.join(".dovecot.sieve");
        std::os::unix::fs::symlink("sieve/main.sieve", &link).unwrap();
        assert!(is_active_script_link(&link));
        assert!(audit(t.path(), uid(), Depth::Directories)
            .unwrap()
            .iter()
            .all(|f| f.problem != Problem::Symlink));
        for hostile in [
            "/etc/passwd",
            "../../../etc/passwd",
            "sieve/../../x",
            "sieve",
        ] {
            fs::remove_file(&link).unwrap();
            std::os::unix::fs::symlink(hostile, &link).unwrap();
            assert!(!is_active_script_link(&link), "{hostile}");
        }
        let other = acct.join("sieve/other.sieve");
        std::os::unix::fs::symlink("main.sieve", &other).unwrap();
        assert!(!is_active_script_link(&other));
    }

    #[test]
    fn finds_and_fixes_what_others_can_reach() {
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("data");
        fs::create_dir_all(data.join("mail/example.org/alice/cur")).unwrap();
        fs::create_dir_all(data.join("tls")).unwrap();
        for d in ["", "mail", "mail/example.org", "mail/example.org/alice"] {
            chmod(&data.join(d), 0o700);
        }
        chmod(&data.join("tls"), 0o700);
        chmod(&data.join("mail/example.org/alice/cur"), 0o777);
        let msg = data.join("mail/example.org/alice/cur/1.host:2,S");
        fs::write(&msg, "Subject: hi\r\n\r\n").unwrap();
        chmod(&msg, 0o644);
        let cert = data.join("tls/cert.pem");
        fs::write(&cert, "cert").unwrap();
        chmod(&cert, 0o644);
        let key = data.join("tls/key.pem");
        fs::write(&key, "key").unwrap();
        chmod(&key, 0o600);
        std::os::unix::fs::symlink("/etc/passwd", data.join("mail/link")).unwrap();

        let dirs = audit(&data, uid(), Depth::Directories).unwrap();
        assert_eq!(dirs.len(), 2, "{dirs:?}");
        assert!(refuse_unsafe(&data, uid())
            .unwrap_err()
            .to_string()
            .contains("can be written by other users"));

        let all = audit(&data, uid(), Depth::Everything).unwrap();
        let problems: Vec<_> = all.iter().map(|f| f.problem.clone()).collect();
        assert_eq!(
            problems,
            [
                Problem::WritableByOthers,
                Problem::ReadableByOthers,
                Problem::Symlink
            ]
        );
        assert!(!all.iter().any(|f| f.path == cert || f.path == key));

        let r = fix(&data, uid(), None).unwrap();
        assert_eq!(r.modes, 2);
        assert_eq!(r.left.len(), 1);
        assert_eq!(fs::metadata(&msg).unwrap().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(&cert).unwrap().mode() & 0o777, 0o644);
        fs::remove_file(data.join("mail/link")).unwrap();
        assert!(audit(&data, uid(), Depth::Everything).unwrap().is_empty());
        refuse_unsafe(&data, uid()).unwrap();
    }

    #[test]
    fn the_public_part_for_sendmail_and_nothing_more() {
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("data");
        fs::create_dir_all(data.join("spool")).unwrap();
        chmod(&data.join("spool"), 0o700);
        crate::submit::server::prepare_public(&data).unwrap();
        let sock = crate::submit::socket_path(&data);
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        chmod(&sock, 0o666);
        // A user's file in the maildrop is not the audit's business.
        fs::write(crate::submit::maildrop_dir(&data).join("x"), "m").unwrap();
        chmod(&crate::submit::maildrop_dir(&data).join("x"), 0o644);
        assert_eq!(audit(&data, uid(), Depth::Everything).unwrap(), []);
        refuse_unsafe(&data, uid()).unwrap();

        // More than that is found, and fixed back to the layout.
        let drop = crate::submit::maildrop_dir(&data);
        for bad in [0o1777, 0o733, 0o3733] {
            chmod(&drop, bad);
            assert!(refuse_unsafe(&data, uid()).is_err(), "{bad:o}");
        }
        chmod(&crate::submit::public_dir(&data), 0o755);
        chmod(&data, 0o775);
        chmod(&data.join("spool"), 0o711);
        let found = audit(&data, uid(), Depth::Everything).unwrap();
        assert_eq!(found.len(), 4, "{found:?}");
        fix(&data, uid(), None).unwrap();
        assert_eq!(fs::metadata(&drop).unwrap().mode() & 0o7777, 0o1733);
        assert_eq!(fs::metadata(&data).unwrap().mode() & 0o7777, 0o711);
        assert_eq!(
            fs::metadata(crate::submit::public_dir(&data))
                .unwrap()
                .mode()
                & 0o7777,
            0o711
        );
        assert_eq!(
            fs::metadata(data.join("spool")).unwrap().mode() & 0o7777,
            0o700
        );
        assert_eq!(audit(&data, uid(), Depth::Everything).unwrap(), []);
    }

    #[test]
    fn foreign_owner_is_fatal_and_missing_dir_is_clean() {
        let t = tempfile::tempdir().unwrap();
        chmod(t.path(), 0o700);
        let f = audit(t.path(), uid().wrapping_add(1), Depth::Directories).unwrap();
        assert!(matches!(f[0].problem, Problem::ForeignOwner { .. }));
        assert!(f[0].is_fatal());
        assert!(audit(&t.path().join("none"), uid(), Depth::Everything)
            .unwrap()
            .is_empty());
    }
}
