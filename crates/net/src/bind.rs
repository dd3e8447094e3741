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
}
