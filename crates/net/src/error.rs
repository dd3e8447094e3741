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

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error(
        "listen.{service}: cannot listen on {addr}: {source}{}",
        privileged_port_hint(addr, source)
    )]
    Bind {
        service: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{key}: cannot read {path}: {source}")]
    TlsFile {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{key}: {path}: {message}")]
    TlsContent {
        key: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("cannot generate a self-signed certificate in {dir}: {message}")]
    Generate { dir: PathBuf, message: String },
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
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
