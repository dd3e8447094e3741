//! A connection that is plaintext or TLS, upgradable in place (STARTTLS, STLS).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::TlsContext;

/// The channel binding types a TLS connection can give (RFC 5056 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelBindingKind {
    /// `tls-exporter` (RFC 9266).
    TlsExporter,
    /// `tls-server-end-point` (RFC 5929 §4).
    TlsServerEndPoint,
}

/// RFC 9266 §2: the exporter label of `tls-exporter`.
const EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";

/// A client connection. Protocol sessions read and write through it without caring which it is.
#[derive(Debug)]
pub enum MailStream {
    /// A plaintext TCP connection.
    Plain(TcpStream),
    /// A TCP connection with TLS on it (implicit TLS, or after STARTTLS/STLS).
    Tls {
        /// The TLS session over the TCP socket.
        stream: Box<TlsStream<TcpStream>>,
        /// The certificate's `tls-server-end-point` binding (RFC 5929 §4.1).
        server_end_point: Option<Arc<[u8]>>,
    },
    /// A Unix stream socket (a local program, e.g. an MTA's LMTP client). No TLS: the kernel
    /// carries the data, and the socket file's permissions say who may connect.
    Unix(tokio::net::UnixStream),
    /// An in-process pipe (`tokio::io::duplex`): drives a protocol session without sockets,
    /// as the per-command tests do. It cannot be upgraded to TLS.
    Memory(tokio::io::DuplexStream),
}

/// What a session reports about its TLS layer (for `Received:` headers and logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// e.g. `TLSv1.3`.
    pub version: String,
    /// e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
    /// The SNI name the client asked for, if any.
    pub server_name: Option<String>,
}

impl MailStream {
    /// Performs the server side of a TLS handshake on a plaintext stream: for implicit-TLS ports right
    /// after accept, and for STARTTLS (RFC 3207 §4) / STLS (RFC 2595 §4) after the "go ahead" reply.
    /// The caller must discard any input it buffered before the upgrade (RFC 3207 §4.2).
    pub async fn upgrade(self, tls: &TlsContext) -> io::Result<MailStream> {
        match self {
            MailStream::Plain(tcp) => Ok(MailStream::Tls {
                stream: Box::new(tls.acceptor.accept(tcp).await?),
                server_end_point: tls.server_end_point.clone(),
            }),
            MailStream::Tls { .. } => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "TLS is already active",
            )),
            MailStream::Memory(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "TLS over an in-memory stream",
            )),
            MailStream::Unix(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "TLS over a Unix socket",
            )),
        }
    }

    /// Whether TLS is active on this connection.
    pub fn is_tls(&self) -> bool {
        matches!(self, MailStream::Tls { .. })
    }

    /// Channel binding data of this connection (RFC 5056), `None` on plaintext or where the
    /// type is not available:
    /// * `tls-exporter` (RFC 9266 §2: label "EXPORTER-Channel-Binding", empty context,
    ///   32 octets) only on TLS 1.3. On TLS 1.2 RFC 9266 §3 requires the extended master
    ///   secret (RFC 7627), and rustls does not tell whether it was negotiated, so none.
    /// * `tls-server-end-point` (RFC 5929 §4.1): the hash of our certificate.
    pub fn channel_binding(&self, kind: ChannelBindingKind) -> Option<Vec<u8>> {
        let MailStream::Tls {
            stream,
            server_end_point,
        } = self
        else {
            return None;
        };
        match kind {
            ChannelBindingKind::TlsExporter => {
                let (_, conn) = stream.get_ref();
                if conn.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3) {
                    return None;
                }
                conn.export_keying_material([0u8; 32], EXPORTER_LABEL, Some(&[]))
                    .ok()
                    .map(|k| k.to_vec())
            }
            ChannelBindingKind::TlsServerEndPoint => {
                server_end_point.as_deref().map(<[u8]>::to_vec)
            }
        }
    }

    /// The negotiated TLS parameters, or `None` on a plaintext connection.
    pub fn tls_info(&self) -> Option<TlsInfo> {
        let MailStream::Tls { stream, .. } = self else {
            return None;
        };
        let (_, conn) = stream.get_ref();
        Some(TlsInfo {
            version: conn
                .protocol_version()
                .map(|v| match v {
                    rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_string(),
                    rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_string(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default(),
            cipher: conn
                .negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite()))
                .unwrap_or_default(),
            server_name: conn.server_name().map(str::to_string),
        })
    }

    /// The client's address; an error on an in-memory stream or a Unix socket, which have none.
    pub fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        match self {
            MailStream::Plain(tcp) => tcp.peer_addr(),
            MailStream::Tls { stream, .. } => stream.get_ref().0.peer_addr(),
            MailStream::Memory(_) | MailStream::Unix(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "an in-memory stream or a Unix socket has no peer IP address",
            )),
        }
    }
}

impl AsyncRead for MailStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MailStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MailStream::Tls { stream: s, .. } => Pin::new(s.as_mut()).poll_read(cx, buf),
            MailStream::Memory(s) => Pin::new(s).poll_read(cx, buf),
            MailStream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MailStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MailStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MailStream::Tls { stream: s, .. } => Pin::new(s.as_mut()).poll_write(cx, buf),
            MailStream::Memory(s) => Pin::new(s).poll_write(cx, buf),
            MailStream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MailStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            MailStream::Tls { stream: s, .. } => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            MailStream::Memory(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            MailStream::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MailStream::Plain(s) => s.is_write_vectored(),
            MailStream::Tls { stream: s, .. } => s.is_write_vectored(),
            MailStream::Memory(s) => s.is_write_vectored(),
            MailStream::Unix(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MailStream::Plain(s) => Pin::new(s).poll_flush(cx),
            MailStream::Tls { stream: s, .. } => Pin::new(s.as_mut()).poll_flush(cx),
            MailStream::Memory(s) => Pin::new(s).poll_flush(cx),
            MailStream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MailStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MailStream::Tls { stream: s, .. } => Pin::new(s.as_mut()).poll_shutdown(cx),
            MailStream::Memory(s) => Pin::new(s).poll_shutdown(cx),
            MailStream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, ServerName};

    /// A real loopback handshake at `version`; returns what the server and the client
    /// compute for each binding.
    async fn bindings(
        version: &'static rustls::SupportedProtocolVersion,
    ) -> (Option<Vec<u8>>, Option<Vec<u8>>, Vec<u8>, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let ctx = crate::load_or_generate(None, None, dir.path(), "mx.test").unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server_ctx = ctx.clone();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let s = MailStream::Plain(tcp).upgrade(&server_ctx).await.unwrap();
            (
                s.channel_binding(ChannelBindingKind::TlsExporter),
                s.channel_binding(ChannelBindingKind::TlsServerEndPoint),
            )
        });
        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read(&ctx.cert_path).unwrap();
        let cert = CertificateDer::from_pem_slice(&pem).unwrap();
        roots.add(cert.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let client = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        let exported = client
            .get_ref()
            .1
            .export_keying_material([0u8; 32], EXPORTER_LABEL, Some(&[]))
            .unwrap();
        let (exporter, end_point) = server.await.unwrap();
        use sha2::Digest as _;
        (
            exporter,
            end_point,
            exported.to_vec(),
            sha2::Sha256::digest(cert.as_ref()).to_vec(),
        )
    }

    #[tokio::test]
    async fn tls13_gives_both_bindings() {
        let (exporter, end_point, client_exporter, cert_hash) =
            bindings(&rustls::version::TLS13).await;
        assert_eq!(exporter.as_deref(), Some(&client_exporter[..]));
        assert_eq!(end_point.as_deref(), Some(&cert_hash[..]));
    }

    #[tokio::test]
    async fn tls12_gives_only_the_end_point() {
        let (exporter, end_point, _, cert_hash) = bindings(&rustls::version::TLS12).await;
        assert_eq!(exporter, None);
        assert_eq!(end_point.as_deref(), Some(&cert_hash[..]));
    }

    #[test]
    fn plaintext_has_no_binding() {
        let (a, _b) = tokio::io::duplex(16);
        let s = MailStream::Memory(a);
        assert_eq!(s.channel_binding(ChannelBindingKind::TlsExporter), None);
        assert_eq!(
            s.channel_binding(ChannelBindingKind::TlsServerEndPoint),
            None
        );
    }
}
