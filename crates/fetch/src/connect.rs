//! TCP and TLS to the remote server. Certificates are always verified, against the system's
//! roots plus the account's `ca_file`; there is no switch to turn that off.

use crate::error::FetchError;
use rustls_pki_types::ServerName;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Time allowed for DNS + TCP connect, and for a TLS handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to the remote: plain (before STARTTLS, or plaintext where allowed) or TLS.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// Whether the connection is protected by TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }
}

/// Opens connections for one account.
#[derive(Clone)]
pub struct Connector {
    tls: TlsConnector,
    timeout: Duration,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Connector {
    /// A connector trusting the system's roots and the certificates in `ca_file`.
    pub fn new(ca_file: Option<&Path>) -> Result<Connector, FetchError> {
        let config = postern_net::client_tls_config(ca_file).map_err(|e| match ca_file {
            Some(path) => FetchError::config(format!("ca_file {}: {e}", path.display())),
            None => FetchError::config(e),
        })?;
        Ok(Connector {
            tls: TlsConnector::from(config),
            timeout: CONNECT_TIMEOUT,
        })
    }

    /// The same connector with another connect/handshake time-out (tests).
    pub fn with_timeout(mut self, timeout: Duration) -> Connector {
        self.timeout = timeout;
        self
    }

    /// A TCP connection to `host:port` (every address of the name tried in turn).
    pub async fn connect(&self, host: &str, port: u16) -> Result<Stream, FetchError> {
        let target = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        match tokio::time::timeout(self.timeout, TcpStream::connect(&target)).await {
            Ok(Ok(tcp)) => {
                let _ = tcp.set_nodelay(true);
                Ok(Stream::Plain(tcp))
            }
            Ok(Err(e)) => Err(FetchError::network(format!(
                "cannot connect to {target}: {e}"
            ))),
            Err(_) => Err(FetchError::network(format!(
                "cannot connect to {target}: no answer within {} s",
                self.timeout.as_secs()
            ))),
        }
    }

    /// Runs the TLS handshake on `stream` (implicit TLS right after connect, or after the
    /// server's go-ahead to STARTTLS/STLS), verifying the certificate for `host`.
    pub async fn tls(&self, stream: Stream, host: &str) -> Result<Stream, FetchError> {
        let tcp = match stream {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(_) => return Err(FetchError::protocol("TLS is already on")),
        };
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| FetchError::config(format!("{host:?} is not a host name: {e}")))?;
        match tokio::time::timeout(self.timeout, self.tls.connect(name, tcp)).await {
            Ok(Ok(tls)) => Ok(Stream::Tls(Box::new(tls))),
            Ok(Err(e)) => Err(FetchError::tls(format!("TLS with {host} failed: {e}"))),
            Err(_) => Err(FetchError::network(format!(
                "TLS with {host}: no handshake within {} s",
                self.timeout.as_secs()
            ))),
        }
    }

    /// Connects and, for implicit TLS, handshakes.
    pub async fn open(
        &self,
        host: &str,
        port: u16,
        implicit_tls: bool,
    ) -> Result<Stream, FetchError> {
        let stream = self.connect(host, port).await?;
        if implicit_tls {
            self.tls(stream, host).await
        } else {
            Ok(stream)
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The connection layer's checks with a throw-away server on loopback.
#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refused_connect_is_a_network_error_that_names_the_target() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let c = Connector::new(None).expect("the system's CA certificates are installed");
        let e = c.connect("127.0.0.1", port).await.unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::Network);
        assert!(e.message.contains(&format!("127.0.0.1:{port}")), "{e}");
    }

    #[test]
    fn a_missing_ca_file_is_a_config_error() {
        let e = Connector::new(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::Config);
        assert!(e.message.contains("/nonexistent/ca.pem"), "{e}");
    }
}
