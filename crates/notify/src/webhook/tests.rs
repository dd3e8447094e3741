use super::*;
use postern_delivery::NewMail;
use std::sync::Mutex;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn event() -> Event {
    Event {
        mail: NewMail {
            account: "alice@example.org".into(),
            mailbox: "Lists/rust".into(),
            uid: 42,
            size: 1234,
            sender: None,
            subject: Some("Café \"quoted\"\n".into()),
            path: Some("/srv/mail/x".into()),
        },
        date: 1_764_762_000,
        id: "0123456789abcdef0123456789abcdef".into(),
    }
}

#[test]
fn json_document() {
    let body = payload(&event());
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "id": "0123456789abcdef0123456789abcdef",
            "account": "alice@example.org",
            "mailbox": "Lists/rust",
            "uid": 42,
            "size": 1234,
            "sender": null,
            "subject": "Café \"quoted\"\n",
            "date": "2025-12-03T11:40:00Z",
        })
    );
    // The file path stays on the server.
    assert!(!String::from_utf8(body).unwrap().contains("/srv/mail"));
}

/// Checked against Python: `hmac.new(key, b"1764762000.Hello, World!", hashlib.sha256)`.
#[test]
fn signature_vector() {
    assert_eq!(
        signature(
            b"It's a Secret to Everybody",
            "1764762000",
            b"Hello, World!"
        ),
        "sha256=85c76837a9f9e9e704f628d7592e174514c9c9f3ab9c67632706ce158a0d65e3"
    );
}

#[test]
fn dates() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
}

/// The requests an endpoint got: head and body.
type Requests = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A scripted endpoint: answers each request with the next status of `script` (the last one
/// repeats) and records the requests' heads and bodies.
struct Endpoint {
    url: String,
    got: Requests,
}

async fn endpoint(script: Vec<u16>) -> Endpoint {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got: Requests = Arc::default();
    let g = got.clone();
    tokio::spawn(async move {
        let mut n = 0;
        loop {
            let (conn, _) = listener.accept().await.unwrap();
            let mut reader = tokio::io::BufReader::new(conn);
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).await.unwrap() == 0 {
                    break;
                }
                head.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; len];
            reader.read_exact(&mut body).await.unwrap();
            g.lock().unwrap().push((head, body));
            let status = script[n.min(script.len() - 1)];
            n += 1;
            let answer =
                format!("HTTP/1.1 {status} Scripted\r\nContent-Length: 8\r\n\r\nsaid {status}");
            reader.get_mut().write_all(answer.as_bytes()).await.unwrap();
        }
    });
    Endpoint { url, got }
}

fn hook(url: &str, retries: u32, dir: &std::path::Path) -> WebhookHook {
    let secret = dir.join("secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let config = NotifyWebhook {
        url: url.to_string(),
        target: WebhookUrl::parse(url).unwrap(),
        secret_file: secret,
        accounts: Vec::new(),
        timeout_secs: 30,
        retries,
        ca_file: None,
    };
    WebhookHook::from_config(0, &config).unwrap()
}

fn header<'a>(head: &'a str, name: &str) -> &'a str {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {head}"))
}

#[tokio::test]
async fn retries_server_errors_then_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let ep = endpoint(vec![503, 500, 200]).await;
    let h = hook(&ep.url, 3, dir.path());
    let slots = tokio::sync::Semaphore::new(1);
    let note = h
        .deliver(&event(), &slots, Duration::from_millis(10))
        .await
        .unwrap();
    assert_eq!(note, "200 Scripted");
    let got = ep.got.lock().unwrap().clone();
    assert_eq!(got.len(), 3);
    for (head, body) in &got {
        assert_eq!(body, &payload(&event()));
        assert_eq!(header(head, "Content-Type"), "application/json");
        assert_eq!(
            header(head, "X-Postern-Delivery"),
            "0123456789abcdef0123456789abcdef"
        );
        let ts = header(head, "X-Postern-Timestamp");
        assert_eq!(
            header(head, "X-Postern-Signature"),
            signature(b"s3cret", ts, body)
        );
    }
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let ep = endpoint(vec![404]).await;
    let h = hook(&ep.url, 5, dir.path());
    let slots = tokio::sync::Semaphore::new(1);
    let e = h
        .deliver(&event(), &slots, Duration::from_millis(10))
        .await
        .unwrap_err();
    assert_eq!(e, "404 Scripted: said 404");
    assert_eq!(ep.got.lock().unwrap().len(), 1);

    // 429 is "later", like a 5xx; the retries run out.
    let ep = endpoint(vec![429]).await;
    let h = hook(&ep.url, 2, dir.path());
    let e = h
        .deliver(&event(), &slots, Duration::from_millis(10))
        .await
        .unwrap_err();
    assert!(e.ends_with("(after 3 attempts)"), "{e}");
    assert_eq!(ep.got.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_refused_connection_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on: bound, then closed.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let h = hook(&format!("http://127.0.0.1:{port}/"), 1, dir.path());
    let slots = tokio::sync::Semaphore::new(1);
    let e = h
        .deliver(&event(), &slots, Duration::from_millis(10))
        .await
        .unwrap_err();
    assert!(e.ends_with("(after 2 attempts)"), "{e}");
}

#[test]
fn secret_file_problems() {
    let dir = tempfile::tempdir().unwrap();
    let url = "http://127.0.0.1:9/";
    let mut config = NotifyWebhook {
        url: url.into(),
        target: WebhookUrl::parse(url).unwrap(),
        secret_file: dir.path().join("missing"),
        accounts: Vec::new(),
        timeout_secs: 1,
        retries: 0,
        ca_file: None,
    };
    let e = WebhookHook::from_config(2, &config)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with("notify.webhook[2].secret_file: cannot read"),
        "{e}"
    );
    std::fs::write(dir.path().join("empty"), "\n").unwrap();
    config.secret_file = dir.path().join("empty");
    let e = WebhookHook::from_config(0, &config)
        .err()
        .unwrap()
        .to_string();
    assert!(e.ends_with("the file is empty"), "{e}");
}
