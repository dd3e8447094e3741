use std::net::SocketAddr;
use std::path::PathBuf;

/// What to do when a port below 1024 is refused to an unprivileged process.
fn privileged_port_hint(addr: &SocketAddr, source: &std::io::Error) -> &'static str {
    if addr.port() != 0
        && addr.port() < 1024
        && source.kind() == std::io::ErrorKind::PermissionDenied
    {
        " (ports below 1024 need privilege: start serve as root with [server] user set, \
         grant the capability with `setcap cap_net_bind_service=+ep` on the binary, or use \
         AmbientCapabilities=CAP_NET_BIND_SERVICE in its systemd unit)"
    } else {
        ""
    }
}

/// Why a listener or the TLS identity could not be set up; each message names the config key at fault.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A listen address could not be bound (busy port, missing privilege, unknown address).
    #[error(
        "listen.{service}: cannot listen on {addr}: {source}{}",
        privileged_port_hint(addr, source)
    )]
    Bind {
        /// The service's config key, as in `listen.<service>` (e.g. `smtp`).
        service: &'static str,
        /// The address last tried (after any IPv4 or unprivileged-port fallback).
        addr: SocketAddr,
        /// The error from `bind`.
        source: std::io::Error,
    },
    /// A Unix socket could not be set up (its directory, a live server on it, permissions).
    #[error("{key}: cannot listen on {path}: {message}")]
    UnixBind {
        /// The config key that names the socket (e.g. `lmtp.socket`).
        key: &'static str,
        /// The socket's path.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A certificate or key file could not be read.
    #[error("{key}: cannot read {path}: {source}")]
    TlsFile {
        /// The config key that names the file: `tls.cert` or `tls.key`.
        key: &'static str,
        /// The file that could not be read.
        path: PathBuf,
        /// The error from reading it.
        source: std::io::Error,
    },
    /// A certificate or key file was read but is unusable (not PEM, empty, key not matching the certificate).
    #[error("{key}: {path}: {message}")]
    TlsContent {
        /// The config key that names the file: `tls.cert` or `tls.key`.
        key: &'static str,
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with its content.
        message: String,
    },
    /// The self-signed certificate and key could not be generated or written.
    #[error("cannot generate a self-signed certificate in {dir}: {message}")]
    Generate {
        /// The directory the pair was to be written into.
        dir: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// rustls refused the TLS configuration.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// Any other I/O error (e.g. reading a bound listener's local address).
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_low_port_says_how_to_grant_it() {
        let e = |port: u16, kind| NetError::Bind {
            service: "smtp",
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            source: std::io::Error::from(kind),
        };
        let low = e(25, std::io::ErrorKind::PermissionDenied).to_string();
        assert!(low.contains("cap_net_bind_service"), "{low}");
        let high = e(2525, std::io::ErrorKind::PermissionDenied).to_string();
        assert!(!high.contains("cap_net_bind_service"), "{high}");
        let busy = e(25, std::io::ErrorKind::AddrInUse).to_string();
        assert!(!busy.contains("cap_net_bind_service"), "{busy}");
    }
}
