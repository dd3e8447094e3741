//! A connection that is plaintext or TLS, upgradable in place (STARTTLS, STLS).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// A client connection. Protocol sessions read and write through it without caring which it is.
#[derive(Debug)]
pub enum MailStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
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
    pub async fn upgrade(self, acceptor: &TlsAcceptor) -> io::Result<MailStream> {
        match self {
            MailStream::Plain(tcp) => Ok(MailStream::Tls(Box::new(acceptor.accept(tcp).await?))),
            MailStream::Tls(_) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "TLS is already active",
            )),
            MailStream::Memory(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "TLS over an in-memory stream",
            )),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, MailStream::Tls(_))
    }

    /// The negotiated TLS parameters, or `None` on a plaintext connection.
    pub fn tls_info(&self) -> Option<TlsInfo> {
        let MailStream::Tls(tls) = self else {
            return None;
        };
        let (_, conn) = tls.get_ref();
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

    pub fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        match self {
            MailStream::Plain(tcp) => tcp.peer_addr(),
            MailStream::Tls(tls) => tls.get_ref().0.peer_addr(),
            MailStream::Memory(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "an in-memory stream has no peer address",
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
            MailStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            MailStream::Memory(s) => Pin::new(s).poll_read(cx, buf),
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
            MailStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            MailStream::Memory(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MailStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            MailStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            MailStream::Memory(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MailStream::Plain(s) => s.is_write_vectored(),
            MailStream::Tls(s) => s.is_write_vectored(),
            MailStream::Memory(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MailStream::Plain(s) => Pin::new(s).poll_flush(cx),
            MailStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            MailStream::Memory(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MailStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MailStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            MailStream::Memory(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
