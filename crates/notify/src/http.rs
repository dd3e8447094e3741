//! A small HTTP/1.1 client for webhooks: one POST per connection (`Connection: close`), over TCP
//! or TLS (rustls; the server certificate is always verified against the system roots plus an
//! optional CA file). It reads the status line and header section (RFC 9112 §4, §5), skips
//! interim 1xx responses (RFC 9110 §15.2), and reads the body by `Content-Length`, `chunked`
//! transfer coding (RFC 9112 §7.1) or to the end of the connection (RFC 9112 §6.3), keeping only
//! its first bytes for the log.

use postern_config::WebhookUrl;
use rustls_pki_types::ServerName;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt,
};
use tokio::net::TcpStream;

/// Longest header section accepted from the server.
const MAX_HEAD: usize = 64 * 1024;
/// Body bytes kept for the log.
const BODY_KEPT: usize = 512;
/// Body bytes read at most; the answer is known by then.
const MAX_BODY: u64 = 1 << 20;

/// Why a request failed before a complete answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Connecting, or the connection broke.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The TLS handshake failed (certificate not trusted, wrong name...).
    #[error("TLS: {0}")]
    Tls(String),
    /// The answer is not HTTP/1.x as RFC 9112 has it.
    #[error("bad answer: {0}")]
    Protocol(String),
    /// No answer within the timeout.
    #[error("no answer within {0} s")]
    Timeout(u64),
}

/// A final answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// The first bytes of the body (lossily UTF-8).
    pub body: String,
}

/// A TLS client configuration trusting the system's roots and the certificates in `ca_file`.
pub use postern_net::client_tls_config as tls_config;

/// POSTs `body` to `url` with `headers` (besides Host, Content-Length and Connection, which
/// this adds); `tls` is required for an `https` URL. The whole exchange is bounded by `limit`.
pub async fn post(
    url: &WebhookUrl,
    tls: Option<&Arc<rustls::ClientConfig>>,
    headers: &[(&str, String)],
    body: &[u8],
    limit: Duration,
) -> Result<Response, HttpError> {
    let request = request_bytes(url, headers, body);
    let exchange = async {
        let tcp = TcpStream::connect((url.host.as_str(), url.port)).await?;
        let _ = tcp.set_nodelay(true);
        if url.tls {
            let config =
                tls.ok_or_else(|| HttpError::Tls("no TLS configuration for an https URL".into()))?;
            let name = ServerName::try_from(url.host.clone())
                .map_err(|e| HttpError::Tls(format!("{:?}: {e}", url.host)))?;
            let stream = tokio_rustls::TlsConnector::from(config.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| HttpError::Tls(e.to_string()))?;
            exchange(stream, &request).await
        } else {
            exchange(tcp, &request).await
        }
    };
    tokio::time::timeout(limit, exchange)
        .await
        .map_err(|_| HttpError::Timeout(limit.as_secs()))?
}

/// The request as sent (RFC 9112 §3: request line, header fields, empty line, body).
pub fn request_bytes(url: &WebhookUrl, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        url.path,
        url.host_header(),
        body.len()
    );
    for (name, value) in headers {
        out.push_str(name);
        out.push_str(": ");
        // A header value never carries a line end (RFC 9110 §5.5).
        out.extend(value.chars().map(|c| if c.is_control() { ' ' } else { c }));
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &[u8],
) -> Result<Response, HttpError> {
    stream.write_all(request).await?;
    stream.flush().await?;
    let mut reader = tokio::io::BufReader::new(stream);
    read_response(&mut reader).await
}

/// Reads one final response (skipping 1xx) from `reader`.
pub async fn read_response<R: AsyncBufRead + Unpin>(reader: &mut R) -> Result<Response, HttpError> {
    loop {
        let head = read_head(reader).await?;
        let parsed = parse_head(&head)?;
        if (100..200).contains(&parsed.status) {
            continue;
        }
        let body = match parsed.framing {
            // RFC 9110 §15.3.5, §15.4.5: no content.
            _ if parsed.status == 204 || parsed.status == 304 => Vec::new(),
            Framing::Chunked => read_chunked(reader).await?,
            Framing::Length(n) => read_length(reader, n).await?,
            Framing::Close => read_length(reader, MAX_BODY).await?,
        };
        return Ok(Response {
            status: parsed.status,
            reason: parsed.reason,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    }
}

/// How the body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// `Content-Length`.
    Length(u64),
    /// Until the server closes the connection.
    Close,
}

/// The status line and the framing of a header section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Body framing.
    pub framing: Framing,
}

/// The header section, up to and including the empty line.
async fn read_head<R: AsyncBufRead + Unpin>(reader: &mut R) -> Result<Vec<u8>, HttpError> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        let n = (&mut *reader)
            .take((MAX_HEAD + 1 - head.len()) as u64)
            .read_until(b'\n', &mut head)
            .await?;
        if n == 0 {
            return Err(HttpError::Protocol(if head.is_empty() {
                "the server closed the connection without answering".into()
            } else {
                "the connection ended inside the header section".into()
            }));
        }
        if head.len() > MAX_HEAD {
            return Err(HttpError::Protocol("header section too long".into()));
        }
        let line = &head[before..];
        // RFC 9112 §2.2: a bare LF ends a line too.
        if line == b"\r\n" || line == b"\n" {
            if before == 0 {
                // RFC 9112 §2.2: an empty line before the status line is ignored.
                head.clear();
                continue;
            }
            return Ok(head);
        }
    }
}

/// Parses a header section (RFC 9112 §4 status line, §5 fields, §6.3 framing).
pub fn parse_head(head: &[u8]) -> Result<Head, HttpError> {
    let text = std::str::from_utf8(head)
        .map_err(|_| HttpError::Protocol("header section is not UTF-8".into()))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let status_line = lines.next().unwrap_or_default();
    let bad = || HttpError::Protocol(format!("status line {status_line:?}"));
    let rest = status_line
        .strip_prefix("HTTP/1.")
        .filter(|r| r.starts_with(['0', '1']))
        .ok_or_else(bad)?;
    let rest = rest.get(1..).ok_or_else(bad)?;
    let rest = rest.strip_prefix(' ').ok_or_else(bad)?;
    let code = rest.get(..3).ok_or_else(bad)?;
    if !code.bytes().all(|b| b.is_ascii_digit()) || rest.len() > 3 && !rest[3..].starts_with(' ') {
        return Err(bad());
    }
    let status: u16 = code.parse().map_err(|_| bad())?;
    if !(100..=599).contains(&status) {
        return Err(bad());
    }
    let reason = rest.get(4..).unwrap_or_default().trim().to_string();
    let mut chunked = false;
    let mut length: Option<u64> = None;
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Err(HttpError::Protocol(format!("header line {line:?}")));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            let last = value.rsplit(',').next().unwrap_or_default().trim();
            chunked = last.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse::<u64>()
                .map_err(|_| HttpError::Protocol(format!("Content-Length {value:?}")))?;
            if length.is_some_and(|m| m != n) {
                return Err(HttpError::Protocol("conflicting Content-Length".into()));
            }
            length = Some(n);
        }
    }
    // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length.
    let framing = if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::Close
    };
    Ok(Head {
        status,
        reason,
        framing,
    })
}

/// Reads up to `n` body bytes (at most [`MAX_BODY`]), keeping the first [`BODY_KEPT`].
async fn read_length<R: AsyncRead + Unpin>(reader: &mut R, n: u64) -> Result<Vec<u8>, HttpError> {
    let mut kept = Vec::new();
    let mut left = n.min(MAX_BODY);
    let mut buf = [0u8; 4096];
    while left > 0 {
        let want = usize::try_from(left).unwrap_or(buf.len()).min(buf.len());
        let got = reader.read(&mut buf[..want]).await?;
        if got == 0 {
            break;
        }
        keep(&mut kept, &buf[..got]);
        left -= got as u64;
    }
    Ok(kept)
}

/// RFC 9112 §7.1 chunked body: size lines (extensions ignored), data, trailer section.
async fn read_chunked<R: AsyncBufRead + Unpin>(reader: &mut R) -> Result<Vec<u8>, HttpError> {
    let mut kept = Vec::new();
    let mut total = 0u64;
    loop {
        let line = read_line(reader).await?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = u64::from_str_radix(size_text, 16)
            .map_err(|_| HttpError::Protocol(format!("chunk size {size_text:?}")))?;
        if size == 0 {
            // The trailer section, up to its empty line.
            while !read_line(reader).await?.is_empty() {}
            return Ok(kept);
        }
        total = total.saturating_add(size);
        if total > MAX_BODY {
            // Enough: the status is known; the connection is dropped.
            return Ok(kept);
        }
        let data = read_length(reader, size).await?;
        keep(&mut kept, &data);
        let end = read_line(reader).await?;
        if !end.is_empty() {
            return Err(HttpError::Protocol(
                "chunk data longer than its size".into(),
            ));
        }
    }
}

/// One line without its end; an error at the end of the stream.
async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> Result<String, HttpError> {
    let mut line = Vec::new();
    let n = (&mut *reader)
        .take(4096)
        .read_until(b'\n', &mut line)
        .await?;
    if n == 0 || line.last() != Some(&b'\n') {
        return Err(HttpError::Protocol(
            "the connection ended inside a chunked body".into(),
        ));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

fn keep(kept: &mut Vec<u8>, data: &[u8]) {
    let room = BODY_KEPT.saturating_sub(kept.len());
    kept.extend_from_slice(&data[..data.len().min(room)]);
}

#[cfg(test)]
mod tests;
