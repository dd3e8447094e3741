//! Who submits: the local user behind a uid (the kernel's answer on the socket, the owner of a
//! maildrop file), from the system's user and group databases.

use std::ffi::{CStr, CString};

/// A local user as the submission policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub uid: u32,
    pub login: String,
    /// The full name from the GECOS field (its first comma-separated part, `&` expanded).
    pub gecos: Option<String>,
    /// The primary and supplementary groups.
    pub groups: Vec<u32>,
}

/// The full name in a GECOS field: its first part, with `&` standing for the capitalised
/// login (the BSD convention finger and sendmail follow).
fn full_name(gecos: &str, login: &str) -> Option<String> {
    let first = gecos.split(',').next().unwrap_or("").trim();
    if first.is_empty() {
        return None;
    }
    let mut cap = login.to_string();
    if let Some(c) = cap.get_mut(0..1) {
        c.make_ascii_uppercase();
    }
    let name = first.replace('&', &cap);
    (!name.chars().any(char::is_control)).then_some(name)
}

/// Looks up `uid`; `None` when it has no entry (the caller refuses with EX_NOUSER).
/// `with_groups`: also collect its supplementary groups (only needed when groups are trusted).
pub(crate) fn by_uid(uid: u32, with_groups: bool) -> std::io::Result<Option<Identity>> {
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: a zeroed passwd is a valid out-parameter; getpwuid_r writes into it and buf.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; buf's length is given.
    let rc = unsafe {
        libc::getpwuid_r(
            uid,
            &mut pw,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    if result.is_null() {
        return Ok(None);
    }
    // SAFETY: getpwuid_r succeeded: pw_name and pw_gecos point to NUL-terminated strings in buf.
    let login = unsafe { CStr::from_ptr(pw.pw_name) }
        .to_string_lossy()
        .into_owned();
    let gecos = if pw.pw_gecos.is_null() {
        None
    } else {
        // SAFETY: as above.
        full_name(
            &unsafe { CStr::from_ptr(pw.pw_gecos) }.to_string_lossy(),
            &login,
        )
    };
    let mut groups = vec![pw.pw_gid];
    if with_groups {
        groups = group_list(&login, pw.pw_gid)?;
    }
    Ok(Some(Identity {
        uid,
        login,
        gecos,
        groups,
    }))
}

/// getgrouplist(3): the user's primary and supplementary groups.
fn group_list(login: &str, gid: u32) -> std::io::Result<Vec<u32>> {
    let name = CString::new(login).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    let mut n: libc::c_int = 64;
    loop {
        let mut list: Vec<libc::gid_t> = vec![0; n as usize];
        let mut count = n;
        // SAFETY: list has room for `count` entries; name is NUL-terminated.
        let rc = unsafe { libc::getgrouplist(name.as_ptr(), gid, list.as_mut_ptr(), &mut count) };
        if rc >= 0 {
            list.truncate(count.max(0) as usize);
            return Ok(list);
        }
        if count <= n || n > 65_536 {
            return Ok(vec![gid]);
        }
        n = count;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gecos_names() {
        assert_eq!(
            full_name("Ann Example,Room 1,555", "ann").as_deref(),
            Some("Ann Example")
        );
        assert_eq!(full_name("& Smith", "bob").as_deref(), Some("Bob Smith"));
        assert_eq!(full_name(",,,", "x"), None);
        assert_eq!(full_name("", "x"), None);
    }

    #[test]
    fn root_is_found() {
        let root = by_uid(0, true).unwrap().unwrap();
        assert_eq!(root.login, "root");
        assert!(root.groups.contains(&0));
    }
}
