//! MTA-STS (RFC 8461) for sending: the `_mta-sts` TXT record, the HTTPS policy fetch, its
//! parser, the MX patterns, and the policy cache in `data_dir` (it survives restarts).

use crate::route::Resolver;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// RFC 8461 §3.3: policy bodies larger than this are refused.
pub const MAX_POLICY: usize = 64 * 1024;
/// RFC 8461 §3.2: the largest max_age (one year).
pub const MAX_AGE_LIMIT: u64 = 31_557_600;
/// The whole fetch (connect, TLS, request, body) must finish within this.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// After a failed fetch, the same policy id is not fetched again for this long: every message
/// to the domain would otherwise wait for the policy server's time-out.
const FAILED_FETCH_TTL: Duration = Duration::from_secs(300);

/// RFC 8461 §5 policy modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Deliver only to matching MX hosts with a WebPKI-valid certificate.
    Enforce,
    /// Deliver anyway; report failures.
    Testing,
    /// No policy.
    None,
}

/// A parsed policy (RFC 8461 §3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `mode`.
    pub mode: Mode,
    /// `mx` patterns, lower case, without a trailing dot.
    pub mx: Vec<String>,
    /// `max_age` in seconds (at most [`MAX_AGE_LIMIT`]).
    pub max_age: u64,
}

impl Policy {
    /// RFC 8460 §4.4 `policy-string`: the policy's lines (`version`, `mode`, each `mx`,
    /// `max_age`).
    pub fn lines(&self) -> Vec<String> {
        let mode = match self.mode {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        };
        let mut out = vec!["version: STSv1".to_string(), format!("mode: {mode}")];
        out.extend(self.mx.iter().map(|m| format!("mx: {m}")));
        out.push(format!("max_age: {}", self.max_age));
        out
    }
}

/// RFC 8461 §3.1: the id of a `v=STSv1; id=...` TXT record, or `None` if the text is not one.
pub fn parse_txt(txt: &str) -> Option<String> {
    let mut fields = txt.split(';').map(str::trim).filter(|f| !f.is_empty());
    if fields.next()? != "v=STSv1" {
        return None;
    }
    let mut id = None;
    for field in fields {
        let (key, value) = field.split_once('=')?;
        if key.trim() == "id" {
            let value = value.trim();
            if value.is_empty()
                || value.len() > 32
                || !value.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                return None;
            }
            id = Some(value.to_string());
        }
    }
    id
}

/// RFC 8461 §3.2: `key: value` lines (CRLF or LF, in any order): `version: STSv1`, `mode`,
/// `max_age` (1-10 digits, capped at one year), and (unless `mode: none`) at least one `mx`.
/// Unknown keys are ignored (§3.2 extensibility).
pub fn parse_policy(text: &str) -> Result<Policy, String> {
    let mut version = None;
    let mut mode = None;
    let mut max_age = None;
    let mut mx = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| format!("policy line {line:?} is not \"key: value\""))?;
        let value = value.trim();
        match key.trim() {
            "version" => version = Some(value.to_string()),
            "mode" => {
                mode = Some(match value {
                    "enforce" => Mode::Enforce,
                    "testing" => Mode::Testing,
                    "none" => Mode::None,
                    other => return Err(format!("unknown policy mode {other:?}")),
                })
            }
            "max_age" => {
                if value.is_empty()
                    || value.len() > 10
                    || !value.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(format!("max_age {value:?} is not a number of seconds"));
                }
                let n: u64 = value
                    .parse()
                    .map_err(|_| format!("bad max_age {value:?}"))?;
                max_age = Some(n.min(MAX_AGE_LIMIT));
            }
            "mx" => {
                let p = value.trim_end_matches('.').to_ascii_lowercase();
                let host = p.strip_prefix("*.").unwrap_or(&p);
                if host.is_empty()
                    || !host.split('.').all(|l| {
                        !l.is_empty()
                            && l.len() <= 63
                            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    })
                {
                    return Err(format!("mx pattern {value:?} is not a host name"));
                }
                mx.push(p);
            }
            _ => {}
        }
    }
    if version.as_deref() != Some("STSv1") {
        return Err("the policy has no \"version: STSv1\"".into());
    }
    let mode = mode.ok_or("the policy has no mode")?;
    let max_age = max_age.ok_or("the policy has no max_age")?;
    if mx.is_empty() && mode != Mode::None {
        return Err("the policy names no mx".into());
    }
    Ok(Policy { mode, mx, max_age })
}

/// RFC 8461 §4.1: `host` matches a pattern exactly, or `*.rest` with exactly one more
/// left-most label.
pub fn mx_matches(patterns: &[String], host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    patterns.iter().any(|p| match p.strip_prefix("*.") {
        Some(rest) => host
            .split_once('.')
            .is_some_and(|(first, tail)| !first.is_empty() && tail == rest),
        None => *p == host,
    })
}

/// A policy as kept on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    id: String,
    /// Unix seconds of the fetch.
    fetched: u64,
    text: String,
}

impl Stored {
    fn expires(&self, policy: &Policy) -> u64 {
        self.fetched.saturating_add(policy.max_age)
    }
}

/// What applies to a domain, and the failure to report if something went wrong on the way.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// The policy in force (`None`: no MTA-STS for this domain).
    pub policy: Option<Policy>,
    /// A fetch or parse failure (RFC 8460 `sts-policy-fetch-error` / `sts-policy-invalid`).
    pub failure: Option<(crate::policy::FailureType, String)>,
}

/// The MTA-STS policies of destination domains: fetched over HTTPS, cached in memory and in
/// `dir` (one JSON file per domain).
pub struct Sts {
    dir: Option<PathBuf>,
    roots: Arc<rustls::RootCertStore>,
    memory: Mutex<HashMap<String, Stored>>,
    /// Recent failed fetches: domain to (when, the id asked for, the failure).
    failed: Mutex<HashMap<String, FailedFetch>>,
}

type FailedFetch = (
    std::time::Instant,
    String,
    (crate::policy::FailureType, String),
);

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Sts {
    /// Policies cached in `dir` (created on first use), fetched trusting `roots`.
    pub fn new(dir: Option<PathBuf>, roots: Arc<rustls::RootCertStore>) -> Sts {
        Sts {
            dir,
            roots,
            memory: Mutex::new(HashMap::new()),
            failed: Mutex::new(HashMap::new()),
        }
    }

    fn file(&self, domain: &str) -> Option<PathBuf> {
        // Domains are checked to be letters, digits, '-', '.' before they get here.
        self.dir.as_ref().map(|d| d.join(format!("{domain}.json")))
    }

    fn cached(&self, domain: &str) -> Option<Stored> {
        if let Some(s) = self
            .memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(domain)
        {
            return Some(s.clone());
        }
        let text = std::fs::read(self.file(domain)?).ok()?;
        let stored: Stored = serde_json::from_slice(&text).ok()?;
        self.memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(domain.to_string(), stored.clone());
        Some(stored)
    }

    fn store(&self, domain: &str, stored: &Stored) {
        self.memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(domain.to_string(), stored.clone());
        let Some(path) = self.file(domain) else {
            return;
        };
        if let Err(e) = write_atomically(&path, stored) {
            tracing::warn!(
                "cannot cache the MTA-STS policy of {domain} in {}: {e}",
                path.display()
            );
        }
    }

    /// RFC 8461 §3 and §5.1: the policy of `domain`: the cached one while its id is current
    /// and it is unexpired, else a fresh fetch; a cached unexpired policy when the TXT record
    /// is gone or the fetch fails.
    pub async fn lookup(&self, resolver: &dyn Resolver, domain: &str) -> Lookup {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let none = Lookup {
            policy: None,
            failure: None,
        };
        if domain.is_empty()
            || !domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return none;
        }
        let now = now_secs();
        let cached = self
            .cached(&domain)
            .and_then(|s| parse_policy(&s.text).ok().map(|p| (s, p)))
            .filter(|(s, p)| s.expires(p) > now);
        let ids: Vec<String> = match resolver.txt(&format!("_mta-sts.{domain}")).await {
            Ok(txts) => txts.iter().filter_map(|t| parse_txt(t)).collect(),
            Err(_) => Vec::new(),
        };
        // §3.1: exactly one valid record, else as if none.
        let id = match ids.as_slice() {
            [one] => one.clone(),
            _ => {
                return Lookup {
                    policy: cached.map(|(_, p)| p),
                    failure: None,
                }
            }
        };
        if let Some((s, p)) = &cached {
            if s.id == id {
                return Lookup {
                    policy: Some(p.clone()),
                    failure: None,
                };
            }
        }
        let recent = self
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&domain)
            .filter(|(when, failed_id, _)| *failed_id == id && when.elapsed() < FAILED_FETCH_TTL)
            .map(|(_, _, failure)| failure.clone());
        if let Some(failure) = recent {
            return Lookup {
                policy: cached.map(|(_, p)| p),
                failure: Some(failure),
            };
        }
        let fetched = self.fetch(resolver, &domain).await.and_then(|text| {
            parse_policy(&text)
                .map(|p| (text, p))
                .map_err(|e| (crate::policy::FailureType::StsPolicyInvalid, e))
        });
        let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        match &fetched {
            Ok(_) => {
                failed.remove(&domain);
            }
            Err(failure) => {
                failed.insert(
                    domain.clone(),
                    (std::time::Instant::now(), id.clone(), failure.clone()),
                );
            }
        }
        drop(failed);
        match fetched {
            Ok((text, policy)) => {
                self.store(
                    &domain,
                    &Stored {
                        id,
                        fetched: now,
                        text,
                    },
                );
                Lookup {
                    policy: Some(policy),
                    failure: None,
                }
            }
            Err((kind, e)) => {
                tracing::info!("MTA-STS policy of {domain}: {e}");
                Lookup {
                    policy: cached.map(|(_, p)| p),
                    failure: Some((kind, e)),
                }
            }
        }
    }

    /// RFC 8461 §3.3: `GET https://mta-sts.DOMAIN/.well-known/mta-sts.txt`, certificate
    /// verified for that name, no redirects, `200`, `text/plain`, at most [`MAX_POLICY`] bytes.
    async fn fetch(
        &self,
        resolver: &dyn Resolver,
        domain: &str,
    ) -> Result<String, (crate::policy::FailureType, String)> {
        use crate::policy::FailureType as F;
        let host = format!("mta-sts.{domain}");
        let (ips, _) = resolver
            .addresses(&host)
            .await
            .map_err(|crate::route::DnsError::Temporary(e)| (F::StsPolicyFetchError, e))?;
        if ips.is_empty() {
            return Err((F::StsPolicyFetchError, format!("{host} has no address")));
        }
        let mut last = (
            F::StsPolicyFetchError,
            format!("{host}: no address answered"),
        );
        for ip in ips {
            let addr = std::net::SocketAddr::new(ip, 443);
            match tokio::time::timeout(FETCH_TIMEOUT, self.fetch_from(addr, &host)).await {
                Ok(Ok(text)) => return Ok(text),
                Ok(Err(e)) => last = e,
                Err(_) => {
                    last = (
                        F::StsPolicyFetchError,
                        format!("{host} [{addr}]: timed out"),
                    )
                }
            }
        }
        Err(last)
    }

    async fn fetch_from(
        &self,
        addr: std::net::SocketAddr,
        host: &str,
    ) -> Result<String, (crate::policy::FailureType, String)> {
        use crate::policy::FailureType as F;
        let fetch_err = |e: String| (F::StsPolicyFetchError, format!("{host} [{addr}]: {e}"));
        let mut tls = https_connect(addr, host, self.roots.clone())
            .await
            .map_err(|e| match e {
                HttpsError::Certificate(e) => {
                    (F::StsWebpkiInvalid, format!("{host} [{addr}]: TLS: {e}"))
                }
                HttpsError::Tls(e) => fetch_err(format!("TLS: {e}")),
                HttpsError::Connect(e) => fetch_err(e),
            })?;
        let request = format!(
            "GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: {host}\r\nUser-Agent: postern\r\nAccept: text/plain\r\nConnection: close\r\n\r\n"
        );
        tls.write_all(request.as_bytes())
            .await
            .map_err(|e| fetch_err(e.to_string()))?;
        let mut raw = Vec::new();
        let limit = (MAX_POLICY + 16 * 1024) as u64;
        (&mut tls)
            .take(limit + 1)
            .read_to_end(&mut raw)
            .await
            .or_else(|e| {
                // Servers that close without close_notify: what was read is complete if the
                // framing below says so.
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    Ok(0)
                } else {
                    Err(e)
                }
            })
            .map_err(|e| fetch_err(e.to_string()))?;
        if raw.len() as u64 > limit {
            return Err(fetch_err(format!("the reply exceeds {MAX_POLICY} bytes")));
        }
        parse_http(&raw).map_err(fetch_err)
    }
}

/// Why [`https_connect`] failed.
pub(crate) enum HttpsError {
    /// The TCP connection or the host name.
    Connect(String),
    /// The server's certificate did not verify (RFC 8461 `sts-webpki-invalid`).
    Certificate(String),
    /// Any other TLS failure.
    Tls(String),
}

/// A TLS connection to `host` at `addr`, its certificate verified against `roots` for `host`
/// (the MTA-STS policy fetch and the TLS-RPT `https:` POST).
pub(crate) async fn https_connect(
    addr: std::net::SocketAddr,
    host: &str,
    roots: Arc<rustls::RootCertStore>,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, HttpsError> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| HttpsError::Connect(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpsError::Connect(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| HttpsError::Connect(e.to_string()))?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| {
            let certificate = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .is_some_and(|r| matches!(r, rustls::Error::InvalidCertificate(_)));
            if certificate {
                HttpsError::Certificate(e.to_string())
            } else {
                HttpsError::Tls(e.to_string())
            }
        })
}

fn write_atomically(path: &Path, stored: &Stored) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(stored).map_err(std::io::Error::other)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// An HTTP/1.x response (RFC 9112): status 200 only (§3.3: no redirects), `Content-Type:
/// text/plain`, body by `Content-Length`, chunked, or to the end; at most [`MAX_POLICY`].
pub fn parse_http(raw: &[u8]) -> Result<String, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the reply has no complete header")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| "the reply header is not text")?;
    let body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("");
    let mut words = status.split_ascii_whitespace();
    if !words.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(format!("not an HTTP/1 reply: {status:?}"));
    }
    match words.next() {
        Some("200") => {}
        Some(code) if code.starts_with('3') => {
            return Err(format!("redirect refused (RFC 8461 §3.3): {status}"))
        }
        _ => return Err(format!("HTTP status {status:?}")),
    }
    let mut content_type = None;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("malformed header line {line:?}"));
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-type" => content_type = Some(value.to_ascii_lowercase()),
            "content-length" => {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| format!("bad Content-Length {value:?}"))?,
                )
            }
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
    }
    let media = content_type
        .as_deref()
        .map(|c| c.split(';').next().unwrap_or("").trim());
    if media != Some("text/plain") {
        return Err(format!(
            "Content-Type is {:?}, not text/plain (RFC 8461 §3.2)",
            content_type.unwrap_or_default()
        ));
    }
    let body = if chunked {
        dechunk(body)?
    } else if let Some(n) = length {
        if n > MAX_POLICY {
            return Err(format!("the policy exceeds {MAX_POLICY} bytes"));
        }
        body.get(..n)
            .ok_or("the connection closed before the end of the policy")?
            .to_vec()
    } else {
        body.to_vec()
    };
    if body.len() > MAX_POLICY {
        return Err(format!("the policy exceeds {MAX_POLICY} bytes"));
    }
    String::from_utf8(body).map_err(|_| "the policy is not UTF-8".into())
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunked body")?;
        let size_text = std::str::from_utf8(&data[..end]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        data = &data[end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if out.len() + size > MAX_POLICY {
            return Err(format!("the policy exceeds {MAX_POLICY} bytes"));
        }
        let chunk = data.get(..size).ok_or("truncated chunk")?;
        out.extend_from_slice(chunk);
        data = data.get(size + 2..).ok_or("truncated chunk")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TXT records from a table; no addresses, so every fetch fails at once.
    struct Fake(Vec<(String, String)>);

    #[async_trait::async_trait]
    impl Resolver for Fake {
        async fn mx(&self, _: &str) -> Result<crate::MxAnswer, crate::route::DnsError> {
            Ok(crate::MxAnswer::NoRecords)
        }
        async fn addresses(
            &self,
            _: &str,
        ) -> Result<(Vec<std::net::IpAddr>, Duration), crate::route::DnsError> {
            Ok((Vec::new(), Duration::from_secs(60)))
        }
        async fn txt(&self, name: &str) -> Result<Vec<String>, crate::route::DnsError> {
            Ok(self
                .0
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, t)| t.clone())
                .collect())
        }
    }

    fn sts(dir: &Path) -> Sts {
        Sts::new(
            Some(dir.to_path_buf()),
            Arc::new(rustls::RootCertStore::empty()),
        )
    }

    #[tokio::test]
    async fn cache_on_disk_id_changes_and_failed_fetches() {
        use crate::policy::FailureType;
        let dir = tempfile::tempdir().unwrap();
        let txt = |id: &str| {
            Fake(vec![(
                "_mta-sts.example.test".into(),
                format!("v=STSv1; id={id}"),
            )])
        };
        // No TXT record: no policy, nothing fetched.
        let found = sts(dir.path()).lookup(&Fake(vec![]), "example.test").await;
        assert!(found.policy.is_none() && found.failure.is_none());
        // A TXT record, but the fetch fails: no policy, the failure reported.
        let found = sts(dir.path()).lookup(&txt("a1"), "example.test").await;
        assert!(found.policy.is_none());
        assert_eq!(found.failure.unwrap().0, FailureType::StsPolicyFetchError);
        // A policy cached on disk (as a fetch would have stored it) is used after a restart
        // while its id is current, without a fetch.
        let text = "version: STSv1\nmode: enforce\nmx: mx.example.test\nmax_age: 86400\n";
        write_atomically(
            &dir.path().join("example.test.json"),
            &Stored {
                id: "a1".into(),
                fetched: now_secs(),
                text: text.into(),
            },
        )
        .unwrap();
        let fresh = sts(dir.path());
        let found = fresh.lookup(&txt("a1"), "Example.TEST.").await;
        assert_eq!(found.policy.unwrap().mode, Mode::Enforce);
        assert!(found.failure.is_none());
        // A new id means a refetch; when it fails, the unexpired cached policy still applies.
        let found = fresh.lookup(&txt("b2"), "example.test").await;
        assert_eq!(found.policy.unwrap().mx, ["mx.example.test"]);
        assert_eq!(found.failure.unwrap().0, FailureType::StsPolicyFetchError);
        // The TXT record gone: the cached policy stays in force until it expires (§5.1).
        let found = fresh.lookup(&Fake(vec![]), "example.test").await;
        assert!(found.policy.is_some());
        // An expired cached policy is not used.
        write_atomically(
            &dir.path().join("example.test.json"),
            &Stored {
                id: "a1".into(),
                fetched: now_secs() - 90_000,
                text: text.into(),
            },
        )
        .unwrap();
        let found = sts(dir.path()).lookup(&Fake(vec![]), "example.test").await;
        assert!(found.policy.is_none());
        // Two valid TXT records: as if none (§3.1).
        let two = Fake(vec![
            ("_mta-sts.example.test".into(), "v=STSv1; id=a".into()),
            ("_mta-sts.example.test".into(), "v=STSv1; id=b".into()),
        ]);
        let found = sts(dir.path()).lookup(&two, "example.test").await;
        assert!(found.policy.is_none() && found.failure.is_none());
    }

    #[test]
    fn txt_records() {
        assert_eq!(
            parse_txt("v=STSv1; id=20160831085700Z;"),
            Some("20160831085700Z".into())
        );
        assert_eq!(parse_txt("v=STSv1;id=abc"), Some("abc".into()));
        assert_eq!(parse_txt("v=STSv1; id=abc; ext=1"), Some("abc".into()));
        assert_eq!(parse_txt("v=spf1 -all"), None);
        assert_eq!(parse_txt("id=abc; v=STSv1"), None);
        assert_eq!(parse_txt("v=STSv1"), None);
        assert_eq!(parse_txt("v=STSv1; id="), None);
        assert_eq!(parse_txt("v=STSv1; id=has-dash"), None);
        assert_eq!(parse_txt(&format!("v=STSv1; id={}", "a".repeat(33))), None);
    }

    #[test]
    fn policies() {
        let p = parse_policy(
            "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.Example.NET.\r\nmax_age: 86400\r\n",
        )
        .unwrap();
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.mx, ["mail.example.com", "*.example.net"]);
        assert_eq!(p.max_age, 86400);
        // LF line ends, unknown keys, a huge max_age capped at one year.
        let p =
            parse_policy("version: STSv1\nmode: testing\nmx: a.b\nmax_age: 9999999999\nfoo: bar\n")
                .unwrap();
        assert_eq!((p.mode, p.max_age), (Mode::Testing, MAX_AGE_LIMIT));
        assert!(parse_policy("version: STSv1\nmode: none\nmax_age: 1\n").is_ok());
        for bad in [
            "",
            "mode: enforce\nmx: a.b\nmax_age: 1\n",
            "version: STSv2\nmode: enforce\nmx: a.b\nmax_age: 1\n",
            "version: STSv1\nmode: strict\nmx: a.b\nmax_age: 1\n",
            "version: STSv1\nmode: enforce\nmax_age: 1\n",
            "version: STSv1\nmode: enforce\nmx: a.b\n",
            "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: -5\n",
            "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 99999999999\n",
            "version: STSv1\nmode: enforce\nmx: a..b\nmax_age: 5\n",
            "version: STSv1\nmode: enforce\nmx: *.\nmax_age: 5\n",
            "version: STSv1\nmode enforce\nmx: a.b\nmax_age: 5\n",
        ] {
            assert!(parse_policy(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn mx_patterns() {
        let p = vec!["mail.example.com".to_string(), "*.example.net".to_string()];
        assert!(mx_matches(&p, "mail.example.com"));
        assert!(mx_matches(&p, "MAIL.example.com."));
        assert!(mx_matches(&p, "mx1.example.net"));
        assert!(!mx_matches(&p, "example.net"));
        assert!(!mx_matches(&p, "a.mx1.example.net"));
        assert!(!mx_matches(&p, "other.example.com"));
        assert!(!mx_matches(&p, "mail.example.com.evil"));
    }

    #[test]
    fn http_replies() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n\r\nhello extra";
        assert_eq!(parse_http(ok).unwrap(), "hello");
        let chunked = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_http(chunked).unwrap(), "abcde");
        let close = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nto the end";
        assert_eq!(parse_http(close).unwrap(), "to the end");
        assert!(parse_http(
            b"HTTP/1.1 301 Moved\r\nLocation: x\r\nContent-Type: text/plain\r\n\r\n"
        )
        .unwrap_err()
        .contains("redirect"));
        assert!(parse_http(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\nx").is_err());
        assert!(parse_http(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\r\n").is_err());
        assert!(parse_http(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nshort"
        )
        .is_err());
        assert!(parse_http(b"garbage").is_err());
        let big = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n{}",
            "x".repeat(MAX_POLICY + 1)
        );
        assert!(parse_http(big.as_bytes()).is_err());
    }
}
