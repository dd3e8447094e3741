use super::*;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, BufReader, DuplexStream};
use tokio::net::{TcpListener, TcpStream};

const T: Duration = Duration::from_secs(5);

fn peer() -> SocketAddr {
    "127.0.0.1:40000".parse().unwrap()
}

fn memory(settings: IoSettings) -> (LineIo, DuplexStream) {
    let (client, server) = tokio::io::duplex(64 * 1024);
    (
        LineIo::new(MailStream::Memory(server), peer(), settings),
        client,
    )
}

#[tokio::test]
async fn lines_without_their_ending_crlf_or_bare_lf() {
    let (mut io, mut c) = memory(IoSettings::default());
    c.write_all(b"EHLO a\r\nNOOP\nRAW\r\n").await.unwrap();
    assert_eq!(io.read_line(512, T).await.unwrap(), b"EHLO a");
    assert_eq!(io.read_line(512, T).await.unwrap(), b"NOOP");
    assert_eq!(io.read_line_raw(512, T).await.unwrap(), b"RAW\r\n");
    drop(c);
    assert!(matches!(io.read_line(512, T).await, Err(LineError::Closed)));
}

#[tokio::test]
async fn crlf_split_across_reads() {
    let (mut io, mut c) = memory(IoSettings::default());
    let client = tokio::spawn(async move {
        for part in [&b"HE"[..], b"LO x\r", b"\nQU", b"IT\r\n"] {
            c.write_all(part).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        c
    });
    assert_eq!(io.read_line(512, T).await.unwrap(), b"HELO x");
    assert_eq!(io.read_line(512, T).await.unwrap(), b"QUIT");
    client.await.unwrap();
}

#[tokio::test]
async fn a_long_line_is_skipped_to_its_end_and_the_next_is_read() {
    let (mut io, mut c) = memory(IoSettings {
        read_chunk: 16,
        ..IoSettings::default()
    });
    let mut input = vec![b'x'; 1000];
    input.extend_from_slice(b"\r\nNEXT\r\n");
    c.write_all(&input).await.unwrap();
    assert!(matches!(
        io.read_line(100, T).await,
        Err(LineError::TooLong)
    ));
    assert_eq!(io.read_line(100, T).await.unwrap(), b"NEXT");
}

#[tokio::test]
async fn the_limit_counts_the_crlf() {
    let (mut io, mut c) = memory(IoSettings::default());
    c.write_all(b"12345678\r\n12345678\n123456789\r\nok\r\n")
        .await
        .unwrap();
    assert_eq!(io.read_line(10, T).await.unwrap(), b"12345678");
    assert_eq!(io.read_line(10, T).await.unwrap(), b"12345678");
    assert!(matches!(io.read_line(10, T).await, Err(LineError::TooLong)));
    assert_eq!(io.read_line(10, T).await.unwrap(), b"ok");
}

#[tokio::test]
async fn stop_mode_reports_a_long_line_before_its_end() {
    let (mut io, mut c) = memory(IoSettings {
        long_line: LongLine::Stop,
        ..IoSettings::default()
    });
    // No line end ever comes: the read must not wait for it.
    c.write_all(&[b'x'; 300]).await.unwrap();
    assert!(matches!(
        io.read_line(100, T).await,
        Err(LineError::TooLong)
    ));
}

#[tokio::test]
async fn pipelined_replies_go_out_in_one_write() {
    let (mut io, mut c) = memory(IoSettings::default());
    c.write_all(b"A\r\nB\r\n").await.unwrap();
    assert_eq!(io.read_line(512, T).await.unwrap(), b"A");
    io.write(b"1\r\n");
    io.flush_if_idle().await.unwrap();
    assert_eq!(io.out_len(), 3, "held back: B is already buffered");
    assert_eq!(io.read_line(512, T).await.unwrap(), b"B");
    io.write(b"2\r\n");
    io.flush_if_idle().await.unwrap();
    assert_eq!(io.out_len(), 0, "written: nothing more is buffered");
    let mut got = [0u8; 6];
    c.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"1\r\n2\r\n");
}

#[tokio::test]
async fn a_large_output_is_written_even_while_pipelining() {
    let (mut io, mut c) = memory(IoSettings {
        pipeline_limit: 8,
        ..IoSettings::default()
    });
    c.write_all(b"A\r\nB\r\n").await.unwrap();
    io.read_line(512, T).await.unwrap();
    io.write(b"0123456789\r\n");
    io.flush_if_idle().await.unwrap();
    assert_eq!(io.out_len(), 0);
}

#[tokio::test]
async fn reading_writes_the_gathered_output_first() {
    let (mut io, c) = memory(IoSettings::default());
    io.write(b"220 hello\r\n");
    let (r, mut w) = tokio::io::split(c);
    let client = tokio::spawn(async move {
        let mut r = BufReader::new(r);
        let mut line = String::new();
        r.read_line(&mut line).await.unwrap();
        assert_eq!(line, "220 hello\r\n");
        w.write_all(b"QUIT\r\n").await.unwrap();
    });
    assert_eq!(io.read_line(512, T).await.unwrap(), b"QUIT");
    client.await.unwrap();
}

#[tokio::test]
async fn read_exact_takes_a_literal_then_lines_go_on() {
    let (mut io, mut c) = memory(IoSettings {
        read_chunk: 4,
        ..IoSettings::default()
    });
    c.write_all(b"A {11}\r\nhello world)\r\nB\r\n")
        .await
        .unwrap();
    assert_eq!(io.read_line_raw(512, T).await.unwrap(), b"A {11}\r\n");
    let mut lit = Vec::new();
    io.read_exact_into(11, &mut lit, T).await.unwrap();
    assert_eq!(lit, b"hello world");
    assert_eq!(io.read_line(512, T).await.unwrap(), b")");
    io.skip(1, T).await.unwrap();
    assert_eq!(io.read_line(512, T).await.unwrap(), b"");
}

#[tokio::test]
async fn feed_hands_data_over_until_its_end() {
    let (mut io, mut c) = memory(IoSettings {
        read_chunk: 5,
        ..IoSettings::default()
    });
    c.write_all(b"line one\r\n.\r\nQUIT\r\n").await.unwrap();
    let mut data = Vec::new();
    io.feed(T, |chunk| {
        data.extend_from_slice(chunk);
        data.windows(5).position(|w| w == b"\r\n.\r\n").map(|end| {
            let n = chunk.len() - (data.len() - (end + 5));
            data.truncate(end + 2);
            n
        })
    })
    .await
    .unwrap();
    assert_eq!(data, b"line one\r\n");
    assert_eq!(io.read_line(512, T).await.unwrap(), b"QUIT");
}

#[tokio::test]
async fn a_silent_client_times_out() {
    let (mut io, _c) = memory(IoSettings::default());
    assert!(matches!(
        io.read_line(512, Duration::from_millis(50)).await,
        Err(LineError::Timeout)
    ));
}

#[tokio::test]
async fn a_cancelled_stop_token_ends_the_wait() {
    let (mut io, _c) = memory(IoSettings::default());
    let stop = CancellationToken::new();
    io.set_stop(Some(stop.clone()));
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        stop.cancel();
    });
    assert!(matches!(
        io.read_line(512, T).await,
        Err(LineError::Stopped)
    ));
}

/// A plaintext server-side `LineIo` on a real socket, its TLS context, and the client's socket.
async fn tcp(settings: IoSettings) -> (LineIo, TlsContext, TcpStream, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let ctx = crate::load_or_generate(None, None, dir.path(), "mx.test").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, peer) = listener.accept().await.unwrap();
    (
        LineIo::new(MailStream::Plain(server), peer, settings),
        ctx,
        client,
        dir,
    )
}

fn connector(ctx: &TlsContext) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(&ctx.cert_path).unwrap();
    roots
        .add(CertificateDer::from_pem_slice(&pem).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[tokio::test]
async fn starttls_discards_what_was_pipelined_after_it() {
    let (mut io, ctx, mut client, _dir) = tcp(IoSettings::default()).await;
    assert!(!io.is_tls());
    // RFC 3207 §4.2: a command injected behind STARTTLS must never run after the upgrade.
    client
        .write_all(b"STARTTLS\r\nRSET injected\r\n")
        .await
        .unwrap();
    assert_eq!(io.read_line(512, T).await.unwrap(), b"STARTTLS");
    io.write(b"220 go ahead\r\n");
    let tls = connector(&ctx);
    let client_side = tokio::spawn(async move {
        let mut go = [0u8; 14];
        client.read_exact(&mut go).await.unwrap();
        assert_eq!(&go, b"220 go ahead\r\n");
        let mut s = tls
            .connect(ServerName::try_from("localhost").unwrap(), client)
            .await
            .unwrap();
        s.write_all(b"EHLO again\r\n").await.unwrap();
        s.flush().await.unwrap();
        s
    });
    let discarded = io.starttls(&ctx).await.unwrap();
    assert_eq!(discarded, b"RSET injected\r\n".len());
    assert!(io.is_tls());
    assert!(io.tls_info().is_some());
    assert_eq!(io.read_line(512, T).await.unwrap(), b"EHLO again");
    drop(client_side.await.unwrap());
}

#[tokio::test]
async fn the_handshake_has_a_timeout() {
    let (mut io, ctx, _client, _dir) = tcp(IoSettings {
        handshake_timeout: Duration::from_millis(100),
        ..IoSettings::default()
    })
    .await;
    // The client never starts the handshake.
    assert!(matches!(io.starttls(&ctx).await, Err(LineError::Timeout)));
    assert!(!io.is_tls());
    assert!(matches!(io.read_line(512, T).await, Err(LineError::Closed)));
}

#[test]
fn the_shared_handshake_timeout_is_thirty_seconds() {
    assert_eq!(IoSettings::default().handshake_timeout, HANDSHAKE_TIMEOUT);
    assert_eq!(HANDSHAKE_TIMEOUT, Duration::from_secs(30));
}
