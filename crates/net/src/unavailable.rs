//! The answer of a listener whose protocol this build does not serve: each protocol's own way of
//! saying "no service here", so clients get a clear, standard refusal rather than a hang or a reset.

use crate::{Connection, Refusal, SessionHandler};
use async_trait::async_trait;
use postern_config::Service;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// Refuses every session in the protocol's terms.
#[derive(Debug, Clone)]
pub struct Unavailable {
    /// The server's name, given in SMTP replies (RFC 5321 §4.2).
    pub hostname: String,
}

const SMTP_LINE_LIMIT: u64 = 512;
const SMTP_IDLE: Duration = Duration::from_secs(300);

#[async_trait]
impl SessionHandler for Unavailable {
    async fn handle(&self, mut conn: Connection) {
        match conn.service {
            Service::Smtp | Service::Submission | Service::Submissions | Service::Lmtp => {
                smtp_no_service(&mut conn, &self.hostname).await;
            }
            Service::Imap | Service::Imaps => {
                // RFC 9051 §7.1.5: BYE as greeting, then close.
                let _ = conn
                    .stream
                    .write_all(b"* BYE [UNAVAILABLE] IMAP service not available here\r\n")
                    .await;
            }
            Service::Pop3 | Service::Pop3s => {
                // RFC 1939 §4 allows a negative greeting; RFC 3206 SYS/PERM says "don't retry soon".
                let _ = conn
                    .stream
                    .write_all(b"-ERR [SYS/PERM] POP3 service not available here\r\n")
                    .await;
            }
            Service::ManageSieve => {
                // RFC 5804 §1.2: BYE as greeting, then close.
                let _ = conn
                    .stream
                    .write_all(b"BYE \"ManageSieve service not available here\"\r\n")
                    .await;
            }
            Service::Https | Service::Http => {
                // RFC 9110 §15.6.4: 503, without reading the request.
                let _ = conn
                    .stream
                    .write_all(&http_503("HTTPS service not available here"))
                    .await;
            }
        }
        let _ = conn.stream.shutdown().await;
    }

    fn refusal(&self, service: Service, why: Refusal) -> Vec<u8> {
        why.line(service, &self.hostname)
    }
}

/// A whole HTTP/1.1 503 response that closes the connection (RFC 9110 §15.6.4, RFC 9112 §9.6).
pub(crate) fn http_503(text: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nRetry-After: 60\r\nConnection: close\r\n\r\n{text}\n",
        text.len() + 1
    )
    .into_bytes()
}

/// RFC 5321 §3.1: a 554 greeting; the server then waits for QUIT and answers anything else with 503.
async fn smtp_no_service(conn: &mut Connection, hostname: &str) {
    let greeting = format!("554 5.3.2 {hostname} no SMTP service here\r\n");
    if conn.stream.write_all(greeting.as_bytes()).await.is_err() {
        return;
    }
    let (read, mut write) = tokio::io::split(&mut conn.stream);
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        let mut limited = (&mut reader).take(SMTP_LINE_LIMIT);
        let read = tokio::select! {
            _ = conn.shutdown.cancelled() => {
                let _ = write.write_all(format!("421 4.3.2 {hostname} shutting down\r\n").as_bytes()).await;
                return;
            }
            r = tokio::time::timeout(SMTP_IDLE, limited.read_until(b'\n', &mut line)) => r,
        };
        match read {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(_)) => {}
        }
        if !line.ends_with(b"\n") {
            let _ = write.write_all(b"500 5.5.2 line too long\r\n").await;
            return;
        }
        let verb = line
            .split(|b| b.is_ascii_whitespace())
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        if verb == b"QUIT" {
            let _ = write
                .write_all(format!("221 2.0.0 {hostname} closing connection\r\n").as_bytes())
                .await;
            return;
        }
        if write
            .write_all(b"503 5.5.1 no SMTP service here; only QUIT is accepted\r\n")
            .await
            .is_err()
        {
            return;
        }
    }
}
