//! Dropping root after binding the ports (`[server] user` and `group`).
//!
//! Started as root, `serve` binds every listener (ports below 1024 need it), then becomes
//! the configured user: supplementary groups cleared, then the group, then the user
//! (in that order: once the user id is gone, the others cannot change). It checks that
//! root cannot be regained. Started as a normal user, nothing changes.

use std::ffi::{CStr, CString};

/// A resolved user and group to run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunAs {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
}

/// The real user id of the process.
pub(crate) fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// Looks up `user` (and `group`, else the user's primary group) in the system databases.
pub(crate) fn resolve(user: &str, group: Option<&str>) -> anyhow::Result<RunAs> {
    let (uid, primary_gid) = lookup_user(user)?.ok_or_else(|| {
        anyhow::anyhow!(
            "server.user: there is no user {user:?} on this system; create it \
             (e.g. `useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin {user}`) \
             or change server.user"
        )
    })?;
    if uid == 0 {
        anyhow::bail!("server.user: {user:?} is root; name an unprivileged user");
    }
    let gid = match group {
        None => primary_gid,
        Some(g) => lookup_group(g)?.ok_or_else(|| {
            anyhow::anyhow!("server.group: there is no group {g:?} on this system")
        })?,
    };
    Ok(RunAs {
        user: user.to_string(),
        uid,
        gid,
    })
}

fn lookup_user(name: &str) -> anyhow::Result<Option<(u32, u32)>> {
    let cname = CString::new(name)?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: a zeroed passwd is a valid out-parameter; getpwnam_r writes into it and buf.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the duration of the call; buf's length is given.
    let rc = unsafe {
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pw,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 {
        anyhow::bail!(
            "looking up user {name:?}: {}",
            std::io::Error::from_raw_os_error(rc)
        );
    }
    Ok((!result.is_null()).then_some((pw.pw_uid, pw.pw_gid)))
}

pub(crate) fn lookup_group(name: &str) -> anyhow::Result<Option<u32>> {
    let cname = CString::new(name)?;
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: as in lookup_user.
    let mut gr: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the duration of the call; buf's length is given.
    let rc = unsafe {
        libc::getgrnam_r(
            cname.as_ptr(),
            &mut gr,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 {
        anyhow::bail!(
            "looking up group {name:?}: {}",
            std::io::Error::from_raw_os_error(rc)
        );
    }
    Ok((!result.is_null()).then_some(gr.gr_gid))
}

fn os_error(what: &str) -> anyhow::Error {
    anyhow::anyhow!("{what}: {}", std::io::Error::last_os_error())
}

/// Creates `dir` if it is missing and, when the process will become `who`, gives the new
/// directory to `who` (root creates it: its parent is often writable by root only).
/// Returns whether it was created.
pub(crate) fn ensure_dir_for(dir: &std::path::Path, who: Option<&RunAs>) -> anyhow::Result<bool> {
    if dir.exists() {
        return Ok(false);
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("data_dir: cannot create {}: {e}", dir.display()))?;
    if let Some(who) = who {
        std::os::unix::fs::lchown(dir, Some(who.uid), Some(who.gid))
            .map_err(|e| anyhow::anyhow!("giving {} to {}: {e}", dir.display(), who.user))?;
    }
    Ok(true)
}

/// Becomes `who` for good: no supplementary groups, real/effective/saved ids all changed.
pub(crate) fn drop_to(who: &RunAs) -> anyhow::Result<()> {
    // SAFETY: plain system calls on integers; glibc applies them to every thread.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0 {
            return Err(os_error("clearing the supplementary groups"));
        }
        if libc::setresgid(who.gid, who.gid, who.gid) != 0 {
            return Err(os_error(&format!("switching to group id {}", who.gid)));
        }
        if libc::setresuid(who.uid, who.uid, who.uid) != 0 {
            return Err(os_error(&format!("switching to user {}", who.user)));
        }
        // No way back: regaining root must fail now.
        if libc::setuid(0) == 0 || libc::geteuid() == 0 || libc::getegid() != who.gid {
            anyhow::bail!("dropping root to {} did not stick", who.user);
        }
    }
    Ok(())
}

/// The name of the user the process runs as, for logs.
pub(crate) fn current_user_name() -> String {
    let uid = current_uid();
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: as in lookup_user.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the duration of the call.
    let rc = unsafe {
        libc::getpwuid_r(
            uid,
            &mut pw,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc == 0 && !result.is_null() {
        // SAFETY: pw_name points into buf, NUL-terminated, while buf lives.
        unsafe { CStr::from_ptr(pw.pw_name) }
            .to_string_lossy()
            .into_owned()
    } else {
        format!("uid {uid}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_root_as_refused_and_unknown_users_clearly() {
        let e = resolve("root", None).unwrap_err().to_string();
        assert!(e.contains("is root"), "{e}");
        let e = resolve("no-such-user-postern", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("there is no user"), "{e}");
        assert!(lookup_group("root").unwrap() == Some(0));
        assert!(lookup_group("no-such-group-postern").unwrap().is_none());
    }
}
