use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("listen.{service}: cannot listen on {addr}: {source}")]
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
