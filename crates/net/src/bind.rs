//! Binding the configured addresses of a service.

use crate::NetError;
use postern_config::Service;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr};
use tokio::net::TcpListener;

/// What `bind_service` may do when an address cannot be bound as written.
#[derive(Debug, Clone, Copy, Default)]
pub struct BindPolicy {
    /// Running on built-in defaults (no config file): a privileged port that cannot be bound for lack of
    /// privilege is replaced by the standard port + 10000 (see [`Service::unprivileged_port`]).
    pub unprivileged_fallback: bool,
}

/// A bound listener and the service it serves.
#[derive(Debug)]
pub struct BoundListener {
    /// The service this listener accepts for.
    pub service: Service,
    /// The bound socket, not yet accepting.
    pub listener: TcpListener,
    /// The address actually bound (port 0 resolved; fallbacks applied).
    pub local_addr: SocketAddr,
}

/// Binds every address of `service`. `[::]` on a host without IPv6 falls back to `0.0.0.0`; a privileged
/// port falls back as `policy` says. Any other failure names the service and the address.
pub async fn bind_service(
    service: Service,
    addrs: &[SocketAddr],
    policy: BindPolicy,
) -> Result<Vec<BoundListener>, NetError> {
    let mut out = Vec::with_capacity(addrs.len());
    for &configured in addrs {
        let mut addr = configured;
        let listener = loop {
            match TcpListener::bind(addr).await {
                Ok(l) => break l,
                Err(e) if no_ipv6(&e) && addr.is_ipv6() && addr.ip().is_unspecified() => {
                    tracing::warn!(%service, "IPv6 unavailable; listening on IPv4 only");
                    addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, addr.port()));
                }
                Err(e)
                    if e.kind() == ErrorKind::PermissionDenied && policy.unprivileged_fallback =>
                {
                    match Service::unprivileged_port(addr.port()) {
                        Some(port) => {
                            tracing::warn!(
                                %service,
                                "no privilege to bind port {}; using {port} (standard port + 10000)",
                                addr.port()
                            );
                            addr.set_port(port);
                        }
                        None => return Err(bind_error(service, addr, e)),
                    }
                }
                Err(e) => return Err(bind_error(service, addr, e)),
            }
        };
        let local_addr = listener.local_addr()?;
        out.push(BoundListener {
            service,
            listener,
            local_addr,
        });
    }
    Ok(out)
}

/// Who owns a Unix socket file and who may connect to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketAccess {
    /// Permission bits of the socket file (connecting needs write permission).
    pub mode: u32,
    /// Owner user id to set (when started as root, the server user); `None`: leave it.
    pub uid: Option<u32>,
    /// Group id to set; `None`: leave it.
    pub gid: Option<u32>,
}

/// Binds a Unix stream socket at `path` (named by config key `key` in errors). A socket file
/// left there by a server that is gone is replaced; one a live server answers on is refused,
/// and so is any other kind of file. The file gets `access`'s mode and owner before anyone
/// can connect to it (it is created with mode 0600 and only then opened up).
pub fn bind_unix(
    key: &'static str,
    path: &std::path::Path,
    access: SocketAccess,
) -> Result<tokio::net::UnixListener, NetError> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let fail = |message: String| NetError::UnixBind {
        key,
        path: path.to_path_buf(),
        message,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(fail(
                    "a running server answers on it (is another postern running?)".into(),
                ));
            }
            std::fs::remove_file(path)
                .map_err(|e| fail(format!("cannot remove the stale socket: {e}")))?;
        }
        Ok(_) => {
            return Err(fail(
                "a file that is not a socket is in the way; remove it or choose another path"
                    .into(),
            ))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e.to_string())),
    }
    // The socket is created with no access for others, whatever the umask; the mode below
    // opens it once the owner is right.
    // SAFETY: umask has no preconditions and cannot fail.
    let old = unsafe { libc::umask(0o177) };
    let bound = tokio::net::UnixListener::bind(path);
    // SAFETY: as above; this restores the previous mask.
    unsafe { libc::umask(old) };
    let listener = bound.map_err(|e| {
        let hint = if e.kind() == ErrorKind::NotFound {
            " (create its directory first)"
        } else {
            ""
        };
        fail(format!("{e}{hint}"))
    })?;
    if access.uid.is_some() || access.gid.is_some() {
        std::os::unix::fs::chown(path, access.uid, access.gid)
            .map_err(|e| fail(format!("cannot set the owner or group: {e}")))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(access.mode))
        .map_err(|e| fail(format!("cannot set mode {:o}: {e}", access.mode)))?;
    Ok(listener)
}

fn no_ipv6(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAFNOSUPPORT) | Some(libc::EADDRNOTAVAIL) | Some(libc::EPROTONOSUPPORT)
    )
}

fn bind_error(service: Service, addr: SocketAddr, source: std::io::Error) -> NetError {
    NetError::Bind {
        service: service.key(),
        addr,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn port_zero_resolves_and_busy_port_is_named() {
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let bound = bind_service(Service::Imap, &[addr], BindPolicy::default())
            .await
            .unwrap();
        assert_eq!(bound.len(), 1);
        let taken = bound[0].local_addr;
        assert_ne!(taken.port(), 0);
        // Binding the same port again fails with a message naming the key and the address.
        let std = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let busy = std.local_addr().unwrap();
        let e = bind_service(Service::Pop3, &[busy], BindPolicy::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("listen.pop3: cannot listen on {busy}")),
            "{e}"
        );
    }

    #[tokio::test]
    async fn unix_socket_mode_stale_and_live() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lmtp.sock");
        let access = SocketAccess {
            mode: 0o660,
            uid: None,
            gid: None,
        };
        let live = bind_unix("lmtp.socket", &path, access).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o660);
        // A live listener is not taken over.
        let e = bind_unix("lmtp.socket", &path, access)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("lmtp.socket") && e.contains("running server"),
            "{e}"
        );
        // Gone (the file stays, nobody answers): replaced.
        drop(live);
        assert!(path.exists());
        let again = bind_unix("lmtp.socket", &path, access);
        assert!(again.is_ok());
        // Not a socket: refused, the file is untouched.
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").unwrap();
        let e = bind_unix("lmtp.socket", &file, access)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a socket"), "{e}");
        assert_eq!(std::fs::read(&file).unwrap(), b"x");
        // No directory.
        let e = bind_unix("lmtp.socket", &dir.path().join("no/x.sock"), access)
            .unwrap_err()
            .to_string();
        assert!(e.contains("create its directory"), "{e}");
    }
}
