//! The accept loop over real loopback sockets: protocol refusals, implicit TLS, limits, shutdown.

use postern_config::Service;
use postern_net::*;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

async fn start(
    service: Service,
    limiter: ConnectionLimiter,
    dir: &std::path::Path,
) -> (Server, std::net::SocketAddr, TlsContext) {
    let tls = load_or_generate(None, None, &dir.join("tls"), "mx.test").unwrap();
    let server = Server::new(limiter, Some(tls.clone()));
    let bound = bind_service(
        service,
        &["127.0.0.1:0".parse().unwrap()],
        BindPolicy::default(),
    )
    .await
    .unwrap()
    .pop()
    .unwrap();
    let addr = bound.local_addr;
    server.spawn_listener(
        bound,
        Arc::new(Unavailable {
            hostname: "mx.test".into(),
        }),
    );
    (server, addr, tls)
}

async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> String {
    let mut s = String::new();
    tokio::time::timeout(Duration::from_secs(5), r.read_line(&mut s))
        .await
        .expect("reply in time")
        .unwrap();
    s
}

#[tokio::test]
async fn smtp_without_service_follows_rfc5321_3_1() {
    let dir = tempfile::tempdir().unwrap();
    let (server, addr, _) = start(Service::Smtp, ConnectionLimiter::new(10, 10), dir.path()).await;
    let mut c = BufReader::new(TcpStream::connect(addr).await.unwrap());
    assert!(read_line(&mut c).await.starts_with("554 5.3.2 mx.test"));
    c.get_mut()
        .write_all(b"EHLO client.test\r\n")
        .await
        .unwrap();
    assert!(read_line(&mut c).await.starts_with("503 5.5.1"));
    c.get_mut().write_all(b"QUIT\r\n").await.unwrap();
    assert!(read_line(&mut c).await.starts_with("221 2.0.0"));
    server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn imaps_speaks_tls_with_the_generated_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (server, addr, tls) =
        start(Service::Imaps, ConnectionLimiter::new(10, 10), dir.path()).await;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&tls.cert_path).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let stream = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("certificate verifies for localhost");
    let mut c = BufReader::new(stream);
    assert_eq!(
        read_line(&mut c).await,
        "* BYE [UNAVAILABLE] IMAP service not available here\r\n"
    );
    server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn connections_over_the_limit_get_the_protocols_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let (server, addr, _) = start(Service::Smtp, ConnectionLimiter::new(10, 1), dir.path()).await;
    let mut first = BufReader::new(TcpStream::connect(addr).await.unwrap());
    assert!(read_line(&mut first).await.starts_with("554"));
    let mut second = BufReader::new(TcpStream::connect(addr).await.unwrap());
    assert_eq!(
        read_line(&mut second).await,
        "421 4.7.0 mx.test too many connections from your address, try again later\r\n"
    );
    // Graceful shutdown asks the open session to leave: SMTP says 421.
    let stop = tokio::spawn(server.shutdown(Duration::from_secs(5)));
    assert!(read_line(&mut first).await.starts_with("421 4.3.2"));
    tokio::time::timeout(Duration::from_secs(5), stop)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn pop3_refuses_with_a_response_code() {
    let dir = tempfile::tempdir().unwrap();
    let (server, addr, _) = start(Service::Pop3, ConnectionLimiter::new(10, 10), dir.path()).await;
    let mut c = BufReader::new(TcpStream::connect(addr).await.unwrap());
    assert!(read_line(&mut c).await.starts_with("-ERR [SYS/PERM]"));
    server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn session_threads_serve_connections_and_shut_down() {
    let dir = tempfile::tempdir().unwrap();
    let tls = load_or_generate(None, None, &dir.path().join("tls"), "mx.test").unwrap();
    let server = Server::new(ConnectionLimiter::new(100, 100), Some(tls))
        .with_session_threads(2)
        .unwrap();
    let bound = bind_service(
        Service::Smtp,
        &["127.0.0.1:0".parse().unwrap()],
        BindPolicy::default(),
    )
    .await
    .unwrap()
    .pop()
    .unwrap();
    let addr = bound.local_addr;
    server.spawn_listener(
        bound,
        Arc::new(Unavailable {
            hostname: "mx.test".into(),
        }),
    );
    // Connections spread over both threads; each gets its whole session there.
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(tokio::spawn(async move {
            let mut c = BufReader::new(TcpStream::connect(addr).await.unwrap());
            assert!(read_line(&mut c).await.starts_with("554 5.3.2"));
            c.get_mut().write_all(b"HELO c.test\r\n").await.unwrap();
            assert!(read_line(&mut c).await.starts_with("503 5.5.1"));
            c
        }));
    }
    let mut open = Vec::new();
    for c in clients {
        open.push(c.await.unwrap());
    }
    assert_eq!(server.open_connections(), 20);
    // Graceful shutdown reaches sessions on the session threads too.
    tokio::time::timeout(
        Duration::from_secs(10),
        server.shutdown(Duration::from_secs(5)),
    )
    .await
    .expect("shutdown in time");
    for mut c in open {
        let mut rest = String::new();
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::io::AsyncReadExt::read_to_string(&mut c, &mut rest),
        )
        .await;
        assert!(rest.is_empty() || rest.starts_with("421"), "{rest:?}");
    }
}
