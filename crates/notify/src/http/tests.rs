use super::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

async fn response_of(bytes: &[u8]) -> Result<Response, HttpError> {
    let mut reader = tokio::io::BufReader::new(bytes);
    read_response(&mut reader).await
}

#[test]
fn heads() {
    let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n").unwrap();
    assert_eq!(
        h,
        Head {
            status: 200,
            reason: "OK".into(),
            framing: Framing::Length(5)
        }
    );
    let h = parse_head(
        b"HTTP/1.0 503 Service Unavailable\nTransfer-Encoding: gzip, chunked\nContent-Length: 3\n\n",
    )
    .unwrap();
    assert_eq!((h.status, h.framing), (503, Framing::Chunked));
    let h = parse_head(b"HTTP/1.1 204\r\n\r\n").unwrap();
    assert_eq!(
        (h.status, h.reason.as_str(), h.framing),
        (204, "", Framing::Close)
    );
    for bad in [
        &b"HTTP/2 200 OK\r\n\r\n"[..],
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"SMTP 220 hi\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 999 OK\r\n\r\n",
    ] {
        assert!(parse_head(bad).is_err(), "{}", String::from_utf8_lossy(bad));
    }
}

#[tokio::test]
async fn bodies() {
    let r = response_of(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\n\r\nbad payloadEXTRA")
        .await
        .unwrap();
    assert_eq!((r.status, r.body.as_str()), (400, "bad payload"));
    let r = response_of(
        b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nfail\r\n3\r\ned!\r\n0\r\nX-Trailer: t\r\n\r\n",
    )
    .await
    .unwrap();
    assert_eq!((r.status, r.body.as_str()), (500, "failed!"));
    let r = response_of(b"HTTP/1.0 202 Accepted\r\n\r\nuntil the end")
        .await
        .unwrap();
    assert_eq!((r.status, r.body.as_str()), (202, "until the end"));
    let r = response_of(b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n")
        .await
        .unwrap();
    assert_eq!((r.status, r.body.as_str()), (204, ""));
    // The kept body is bounded.
    let long = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n{}",
        "x".repeat(2000)
    );
    let r = response_of(long.as_bytes()).await.unwrap();
    assert_eq!(r.body.len(), BODY_KEPT);
    for bad in [
        &b""[..],
        b"HTTP/1.1 200 OK\r\nContent-",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
    ] {
        assert!(
            response_of(bad).await.is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    let huge = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "y".repeat(MAX_HEAD));
    assert!(matches!(
        response_of(huge.as_bytes()).await,
        Err(HttpError::Protocol(_))
    ));
}

#[test]
fn request_line_and_headers() {
    let url = WebhookUrl::parse("http://hooks.test:8080/in?x=1").unwrap();
    let req = request_bytes(&url, &[("X-A", "one\r\nInjected: yes".into())], b"{}");
    assert_eq!(
        String::from_utf8(req).unwrap(),
        "POST /in?x=1 HTTP/1.1\r\nHost: hooks.test:8080\r\nContent-Length: 2\r\nConnection: close\r\nX-A: one  Injected: yes\r\n\r\n{}"
    );
}

/// Reads one request (head and Content-Length body) from a test server's connection.
async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> (String, Vec<u8>) {
    let mut reader = tokio::io::BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    let mut body = vec![0; len];
    reader.read_exact(&mut body).await.unwrap();
    (head, body)
}

#[tokio::test]
async fn posts_over_tcp() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let got = read_request(&mut conn).await;
        conn.write_all(
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        )
        .await
        .unwrap();
        got
    });
    let url = WebhookUrl::parse(&format!("http://127.0.0.1:{port}/hook")).unwrap();
    let r = post(
        &url,
        None,
        &[("Content-Type", "application/json".into())],
        b"{\"a\":1}",
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert_eq!((r.status, r.body.as_str()), (201, "ok"));
    let (head, body) = server.await.unwrap();
    assert!(head.starts_with("POST /hook HTTP/1.1\r\n"), "{head}");
    assert!(
        head.contains(&format!("Host: 127.0.0.1:{port}\r\n")),
        "{head}"
    );
    assert!(
        head.contains("Content-Type: application/json\r\n"),
        "{head}"
    );
    assert_eq!(body, b"{\"a\":1}");
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let _server = tokio::spawn(async move {
        let (conn, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(300)).await;
        drop(conn);
    });
    let url = WebhookUrl::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
    let e = post(&url, None, &[], b"x", Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(e, HttpError::Timeout(1)), "{e}");
}

/// HTTPS with a private CA given as `ca_file`; without it, the certificate is refused.
#[tokio::test]
async fn posts_over_tls_and_verifies_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, cert.pem()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let mut heads = Vec::new();
        for _ in 0..2 {
            let (conn, _) = listener.accept().await.unwrap();
            let Ok(mut tls) = acceptor.accept(conn).await else {
                continue;
            };
            let (head, _) = read_request(&mut tls).await;
            tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
            tls.shutdown().await.unwrap();
            heads.push(head);
        }
        heads
    });
    let url = WebhookUrl::parse(&format!("https://localhost:{port}/secure")).unwrap();
    let trusted = tls_config(Some(&ca_file)).unwrap();
    let r = post(&url, Some(&trusted), &[], b"{}", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let untrusted = match tls_config(None) {
        Ok(c) => c,
        // A machine without CA certificates refuses to build it: verification stays on.
        Err(e) => {
            assert!(e.contains("no trusted root"), "{e}");
            return;
        }
    };
    let e = post(&url, Some(&untrusted), &[], b"{}", Duration::from_secs(30))
        .await
        .unwrap_err();
    assert!(matches!(e, HttpError::Tls(_)), "{e}");
    let heads = server.await.unwrap();
    assert_eq!(heads.len(), 1);
    assert!(heads[0].starts_with("POST /secure HTTP/1.1\r\n"));
    assert!(heads[0].contains(&format!("Host: localhost:{port}\r\n")));
}

#[test]
fn bad_ca_files() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    assert!(tls_config(Some(&empty))
        .unwrap_err()
        .contains("no certificate"));
    assert!(tls_config(Some(&dir.path().join("missing")))
        .unwrap_err()
        .contains("cannot read"));
}
