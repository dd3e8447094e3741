//! TLS-RPT daily reports (RFC 8460 §4–§5): the JSON report of one policy domain and UTC day
//! built from `tlsrpt.db`, the `_smtp._tls` record naming where it goes, the gzipped report as
//! a mail message (§5.3) or an HTTPS POST (§5.4), and the record of the reports sent.
//!
//! The daily job itself (scheduling, the queue, the local domains) lives in the binary.

use crate::route::{DnsError, Resolver};
use crate::tlsrpt::{day_string, open};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The `Content-Type` of a gzipped report (RFC 8460 §6.4).
pub const GZIP_TYPE: &str = "application/tlsrpt+gzip";

/// The roots an `https:` rua's certificate is verified against.
pub type Roots = Arc<rustls::RootCertStore>;

/// Who sends the reports.
#[derive(Debug, Clone)]
pub struct Reporter {
    /// `organization-name`.
    pub org_name: String,
    /// `contact-info`, and the From: of the report mail.
    pub contact: String,
    /// Our host name (the submitter, Message-ID).
    pub hostname: String,
}

/// RFC 8460 §4.4: the report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct Report {
    /// The reporting organisation.
    pub organization_name: String,
    /// The UTC day covered.
    pub date_range: DateRange,
    /// Where to write about the report.
    pub contact_info: String,
    /// Unique per report.
    pub report_id: String,
    /// One entry per policy type applied to the domain that day.
    pub policies: Vec<PolicyReport>,
}

/// RFC 8460 §4.4 `date-range` (RFC 3339 date-times).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct DateRange {
    /// `YYYY-MM-DDT00:00:00Z`.
    pub start_datetime: String,
    /// `YYYY-MM-DDT23:59:59Z`.
    pub end_datetime: String,
}

/// RFC 8460 §4.4: one policy, its summary and its failures.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct PolicyReport {
    /// The policy.
    pub policy: PolicyDesc,
    /// Session counts.
    pub summary: Summary,
    /// Failures by result type, MX host and receiving address.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failure_details: Vec<FailureDetail>,
}

/// RFC 8460 §4.4 `policy`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct PolicyDesc {
    /// `sts`, `tlsa` or `no-policy-found`.
    pub policy_type: String,
    /// The MTA-STS policy's lines or the TLSA records (absent for `no-policy-found`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policy_string: Vec<String>,
    /// The recipient domain.
    pub policy_domain: String,
    /// The MX hosts tried under the policy.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mx_host: Vec<String>,
}

/// RFC 8460 §4.4 `summary`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct Summary {
    /// Sessions that met the policy.
    pub total_successful_session_count: u64,
    /// Sessions that did not.
    pub total_failure_session_count: u64,
}

/// RFC 8460 §4.4 `failure-details`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct FailureDetail {
    /// The §4.3 result type.
    pub result_type: String,
    /// Our address for the session (absent when there was no connection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sending_mta_ip: Option<String>,
    /// The MX host (absent for a failure of the policy itself, such as its fetch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiving_mx_hostname: Option<String>,
    /// The address connected to (absent when there was none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiving_ip: Option<String>,
    /// Sessions that failed this way.
    pub failed_session_count: u64,
    /// What went wrong, in words (RFC 8460 §4.4 `failure-reason-code`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason_code: Option<String>,
}

/// `YYYY-MM-DD` checked, as the Unix time of its 00:00 UTC.
pub fn day_start(day: &str) -> Result<u64, String> {
    postern_mail::date::parse_day(day)
        .and_then(|t| u64::try_from(t).ok())
        .ok_or_else(|| format!("{day:?} is not a date (YYYY-MM-DD)"))
}

/// The UTC day before the one holding `now`.
pub fn previous_day(now: u64) -> String {
    day_string((now / 86_400 * 86_400).saturating_sub(86_400))
}

fn read_only(path: &Path) -> Result<Option<Connection>, String> {
    if !path.exists() {
        return Ok(None);
    }
    open(path).map(Some)
}

/// The policy domains with outcomes recorded on `day`.
pub fn domains(path: &Path, day: &str) -> Result<Vec<String>, String> {
    let Some(conn) = read_only(path)? else {
        return Ok(Vec::new());
    };
    let sql = |e: rusqlite::Error| format!("{}: {e}", path.display());
    let mut stmt = conn
        .prepare("SELECT DISTINCT domain FROM tls_results WHERE day = ?1 ORDER BY domain")
        .map_err(sql)?;
    let out = stmt
        .query_map(params![day], |r| r.get::<_, String>(0))
        .map_err(sql)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql)?;
    Ok(out)
}

/// RFC 8460 §4.4: the report of `domain` for `day` (`YYYY-MM-DD`) from `tlsrpt.db` at `path`,
/// `None` when nothing was recorded. `unique` goes into the report id.
pub fn build(
    path: &Path,
    domain: &str,
    day: &str,
    reporter: &Reporter,
    unique: &str,
) -> Result<Option<Report>, String> {
    day_start(day)?;
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let Some(conn) = read_only(path)? else {
        return Ok(None);
    };
    let sql = |e: rusqlite::Error| format!("{}: {e}", path.display());
    // policy type -> (MX hosts, successes, failures)
    let mut by_policy: BTreeMap<String, (Vec<String>, u64, u64)> = BTreeMap::new();
    {
        let mut stmt = conn
            .prepare(
                "SELECT policy, mx_host, result, count FROM tls_results
                 WHERE day = ?1 AND domain = ?2 ORDER BY policy, mx_host, result",
            )
            .map_err(sql)?;
        let rows = stmt
            .query_map(params![day, domain], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?.max(0) as u64,
                ))
            })
            .map_err(sql)?;
        for row in rows {
            let (policy, host, result, count) = row.map_err(sql)?;
            let e = by_policy.entry(policy).or_default();
            if !host.is_empty() && !e.0.contains(&host) {
                e.0.push(host);
            }
            if result == "success" {
                e.1 += count;
            } else {
                e.2 += count;
            }
        }
    }
    if by_policy.is_empty() {
        return Ok(None);
    }
    let mut policies = Vec::new();
    for (policy, (mx_host, ok, failed)) in by_policy {
        let strings: Option<String> = conn
            .query_row(
                "SELECT strings FROM tls_policies WHERE day = ?1 AND domain = ?2 AND policy = ?3",
                params![day, domain, policy],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql)?;
        let policy_string: Vec<String> = strings
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        let mut stmt = conn
            .prepare(
                "SELECT result, mx_host, receiving_ip, count, detail, sending_ip FROM tls_failures
                 WHERE day = ?1 AND domain = ?2 AND policy = ?3
                 ORDER BY result, mx_host, receiving_ip, sending_ip",
            )
            .map_err(sql)?;
        let failure_details = stmt
            .query_map(params![day, domain, policy], |r| {
                let opt = |s: String| (!s.is_empty()).then_some(s);
                Ok(FailureDetail {
                    result_type: r.get(0)?,
                    sending_mta_ip: opt(r.get(5)?),
                    receiving_mx_hostname: opt(r.get(1)?),
                    receiving_ip: opt(r.get(2)?),
                    failed_session_count: r.get::<_, i64>(3)?.max(0) as u64,
                    failure_reason_code: opt(r.get(4)?),
                })
            })
            .map_err(sql)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql)?;
        // RFC 8460 §4.4: for MTA-STS, the policy's `mx` patterns; else the hosts tried.
        let patterns: Vec<String> = policy_string
            .iter()
            .filter_map(|l| l.strip_prefix("mx:").map(|m| m.trim().to_string()))
            .collect();
        let mx_host = if policy == "sts" && !patterns.is_empty() {
            patterns
        } else {
            mx_host
        };
        policies.push(PolicyReport {
            policy: PolicyDesc {
                policy_type: policy,
                policy_string,
                policy_domain: domain.clone(),
                mx_host,
            },
            summary: Summary {
                total_successful_session_count: ok,
                total_failure_session_count: failed,
            },
            failure_details,
        });
    }
    Ok(Some(Report {
        organization_name: reporter.org_name.clone(),
        date_range: DateRange {
            start_datetime: format!("{day}T00:00:00Z"),
            end_datetime: format!("{day}T23:59:59Z"),
        },
        contact_info: reporter.contact.clone(),
        report_id: format!("{day}.{domain}.{unique}@{}", reporter.hostname),
        policies,
    }))
}

/// A report destination of a `_smtp._tls` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rua {
    /// `mailto:`: a mail address.
    Mailto(String),
    /// `https:`: a URL to POST to.
    Https(String),
}

/// RFC 8460 §3: the `rua` destinations of a `v=TLSRPTv1; rua=...` TXT record, `None` if the
/// text is not a TLSRPT record. Unknown schemes are left out.
pub fn parse_record(txt: &str) -> Option<Vec<Rua>> {
    let mut fields = txt.split(';').map(str::trim).filter(|f| !f.is_empty());
    if fields.next()? != "v=TLSRPTv1" {
        return None;
    }
    let mut out = Vec::new();
    let mut seen_rua = false;
    for field in fields {
        let (key, value) = field.split_once('=')?;
        if key.trim() != "rua" {
            continue;
        }
        seen_rua = true;
        for uri in value.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            let lower = uri.to_ascii_lowercase();
            if lower.starts_with("mailto:") {
                let addr = percent_decode(&uri[7..])?;
                let addr = addr.split('?').next().unwrap_or_default().to_string();
                let ok = addr
                    .rsplit_once('@')
                    .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty());
                if ok && !addr.contains(char::is_whitespace) {
                    out.push(Rua::Mailto(addr));
                }
            } else if lower.starts_with("https://") {
                out.push(Rua::Https(uri.to_string()));
            }
        }
    }
    seen_rua.then_some(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// RFC 8460 §3: the destinations published at `_smtp._tls.<domain>`; `Ok(None)`: no (single)
/// TLSRPT record, so no report is wanted.
pub async fn lookup(resolver: &dyn Resolver, domain: &str) -> Result<Option<Vec<Rua>>, String> {
    let name = format!("_smtp._tls.{domain}");
    let txts = resolver
        .txt(&name)
        .await
        .map_err(|DnsError::Temporary(e)| format!("{name}: {e}"))?;
    let records: Vec<Vec<Rua>> = txts.iter().filter_map(|t| parse_record(t)).collect();
    // §3: more than one TLSRPT record: none is used.
    Ok(match <[_; 1]>::try_from(records) {
        Ok([one]) => Some(one),
        Err(_) => None,
    })
}

/// The report as JSON, gzipped (RFC 8460 §5.2).
pub fn gzip(report: &Report) -> Vec<u8> {
    let json = serde_json::to_vec(report).unwrap_or_default();
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let _ = e.write_all(&json);
    e.finish().unwrap_or_default()
}

/// RFC 8460 §5.1: `submitter!policy-domain!begin!end!unique.json.gz` (Unix times).
pub fn filename(reporter: &Reporter, report: &Report, domain: &str, unique: &str) -> String {
    let begin = report
        .date_range
        .start_datetime
        .get(..10)
        .and_then(|d| day_start(d).ok())
        .unwrap_or(0);
    format!(
        "{}!{domain}!{begin}!{}!{unique}.json.gz",
        reporter.hostname,
        begin + 86_399
    )
}

/// RFC 8460 §5.3: the report mail: `TLS-Report-Domain`, `TLS-Report-Submitter`, the subject
/// `Report Domain: D Submitter: S Report-ID: <id>`, a `multipart/report; report-type="tlsrpt"`
/// body with a short text and the gzipped JSON.
pub fn message(
    reporter: &Reporter,
    report: &Report,
    domain: &str,
    unique: &str,
    to: &str,
    now: i64,
) -> Vec<u8> {
    let file = filename(reporter, report, domain, unique);
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, gzip(report));
    let boundary = format!("=_tlsrpt_{:016x}", rand::random::<u64>());
    let submitter = &reporter.hostname;
    let mut m = String::new();
    m.push_str(&format!("From: {}\r\n", reporter.contact));
    m.push_str(&format!("To: {to}\r\n"));
    m.push_str(&format!(
        "Subject: Report Domain: {domain} Submitter: {submitter} Report-ID: <{}>\r\n",
        report.report_id
    ));
    m.push_str(&format!("Date: {}\r\n", postern_mail::date::rfc5322(now)));
    m.push_str(&format!(
        "Message-ID: <{unique}.{domain}@{}>\r\n",
        reporter.hostname
    ));
    m.push_str(&format!("TLS-Report-Domain: {domain}\r\n"));
    m.push_str(&format!("TLS-Report-Submitter: {submitter}\r\n"));
    m.push_str("Auto-Submitted: auto-generated\r\n");
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str(&format!(
        "Content-Type: multipart/report; report-type=\"tlsrpt\"; boundary=\"{boundary}\"\r\n\r\n"
    ));
    m.push_str(&format!("--{boundary}\r\n"));
    m.push_str("Content-Type: text/plain; charset=us-ascii\r\n\r\n");
    m.push_str(&format!(
        "This is an aggregate TLS report (RFC 8460) from {} for {domain},\r\n\
         covering {} to {}.\r\n\r\n",
        reporter.org_name.replace(['\r', '\n'], " "),
        report.date_range.start_datetime,
        report.date_range.end_datetime
    ));
    m.push_str(&format!("--{boundary}\r\n"));
    m.push_str(&format!("Content-Type: {GZIP_TYPE}; name=\"{file}\"\r\n"));
    m.push_str("Content-Transfer-Encoding: base64\r\n");
    m.push_str(&format!(
        "Content-Disposition: attachment; filename=\"{file}\"\r\n\r\n"
    ));
    for chunk in b64.as_bytes().chunks(76) {
        m.push_str(&String::from_utf8_lossy(chunk));
        m.push_str("\r\n");
    }
    m.push_str(&format!("--{boundary}--\r\n"));
    m.into_bytes()
}

/// Marks (day, domain) sent before anything goes out (so a crash never sends twice);
/// `false` if it was sent already.
pub fn mark_sent(
    path: &Path,
    day: &str,
    domain: &str,
    report_id: &str,
    destinations: &str,
    now: i64,
) -> Result<bool, String> {
    let conn = open(path)?;
    let n = conn
        .execute(
            "INSERT OR IGNORE INTO tls_reports_sent (day, domain, report_id, destinations, sent_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![day, domain, report_id, destinations, now],
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(n == 1)
}

/// Whether the report of (day, domain) was sent.
pub fn was_sent(path: &Path, day: &str, domain: &str) -> Result<bool, String> {
    let Some(conn) = read_only(path)? else {
        return Ok(false);
    };
    conn.query_row(
        "SELECT 1 FROM tls_reports_sent WHERE day = ?1 AND domain = ?2",
        params![day, domain],
        |_| Ok(()),
    )
    .optional()
    .map(|r| r.is_some())
    .map_err(|e| format!("{}: {e}", path.display()))
}

/// Undoes [`mark_sent`] when nothing could be sent (the next run tries again).
pub fn unmark_sent(path: &Path, day: &str, domain: &str) -> Result<(), String> {
    open(path)?
        .execute(
            "DELETE FROM tls_reports_sent WHERE day = ?1 AND domain = ?2",
            params![day, domain],
        )
        .map(|_| ())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Whether `message` from `entry` is one of our TLS reports: the null sender and a
/// `TLS-Report-Domain` header field (RFC 8460 §5.3).
pub fn is_report_mail(entry: &postern_spool::QueueEntry, message: &[u8]) -> bool {
    if entry.envelope.sender.is_some() {
        return false;
    }
    let end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(message.len().min(64 * 1024));
    message[..end]
        .split(|&b| b == b'\n')
        .any(|line| line.len() > 18 && line[..18].eq_ignore_ascii_case(b"tls-report-domain:"))
}

/// RFC 8460 §5.3: a report MAY be sent without the TLS requirement of the destination, so a
/// report about broken TLS is not held by that same breakage: an MTA-STS `enforce` policy is
/// applied as `testing` to report mail (its MX hosts outside the policy stay left out; DANE
/// and `[outbound] require_tls` still apply).
pub(crate) fn relax_for_report(
    entry: &postern_spool::QueueEntry,
    message: &[u8],
    hops: Vec<(crate::route::Hop, crate::HopTls)>,
) -> Vec<(crate::route::Hop, crate::HopTls)> {
    if !is_report_mail(entry, message) {
        return hops;
    }
    hops.into_iter()
        .map(|(hop, tls)| match tls {
            crate::HopTls::Sts { enforce: true } => (hop, crate::HopTls::Sts { enforce: false }),
            other => (hop, other),
        })
        .collect()
}

const POST_TIMEOUT: Duration = Duration::from_secs(60);

/// RFC 8460 §5.4: POSTs the gzipped report to an `https:` rua, the server's certificate
/// verified against `roots`; a `2xx` status is success.
pub async fn post(
    resolver: &dyn Resolver,
    roots: Roots,
    url: &str,
    body: &[u8],
) -> Result<(), String> {
    let rest = url
        .get(..8)
        .filter(|s| s.eq_ignore_ascii_case("https://"))
        .map(|_| &url[8..])
        .ok_or_else(|| format!("{url}: not an https URL"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => match p.parse::<u16>() {
            Ok(p) => (h, p),
            Err(_) => return Err(format!("{url}: bad port {p:?}")),
        },
        _ => (authority, 443),
    };
    if host.is_empty() || host.contains('@') || path.contains(char::is_whitespace) {
        return Err(format!("{url}: not a usable https URL"));
    }
    let ips = match host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => {
            resolver
                .addresses(host)
                .await
                .map_err(|DnsError::Temporary(e)| format!("{host}: {e}"))?
                .0
        }
    };
    if ips.is_empty() {
        return Err(format!("{host} has no address"));
    }
    let mut last = String::new();
    for ip in ips {
        let addr = std::net::SocketAddr::new(ip, port);
        match tokio::time::timeout(POST_TIMEOUT, post_to(addr, host, path, roots.clone(), body))
            .await
        {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => last = format!("{url} [{addr}]: {e}"),
            Err(_) => last = format!("{url} [{addr}]: timed out"),
        }
    }
    Err(last)
}

async fn post_to(
    addr: std::net::SocketAddr,
    host: &str,
    path: &str,
    roots: Arc<rustls::RootCertStore>,
    body: &[u8],
) -> Result<(), String> {
    let mut tls = crate::sts::https_connect(addr, host.trim_matches(['[', ']']), roots)
        .await
        .map_err(|e| match e {
            crate::sts::HttpsError::Connect(e) => e,
            crate::sts::HttpsError::Certificate(e) | crate::sts::HttpsError::Tls(e) => {
                format!("TLS: {e}")
            }
        })?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: postern\r\nContent-Type: {GZIP_TYPE}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    tls.write_all(body).await.map_err(|e| e.to_string())?;
    tls.flush().await.map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    // The status line is all we need.
    while !raw.windows(2).any(|w| w == b"\r\n") && raw.len() < 16 * 1024 {
        match tls.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e.to_string()),
        }
    }
    let line = String::from_utf8_lossy(&raw);
    let line = line.lines().next().unwrap_or_default().to_string();
    let mut words = line.split_whitespace();
    let (Some(version), Some(code)) = (words.next(), words.next()) else {
        return Err("no HTTP status in the reply".into());
    };
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP reply: {line:?}"));
    }
    if code.len() == 3 && code.starts_with('2') {
        Ok(())
    } else {
        Err(format!("the server answered {line:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{FailureType, PolicyKind, TlsReporter, TlsResult};

    #[test]
    fn dates() {
        assert_eq!(day_start("1970-01-01"), Ok(0));
        assert_eq!(day_start("2000-02-29"), Ok(951_782_400));
        assert!(day_start("2026-02-29").is_err());
        assert!(day_start("2026-13-01").is_err());
        assert!(day_start("26-1-1").is_err());
        assert!(day_start("yesterday").is_err());
        assert_eq!(previous_day(1_796_319_726), "2026-12-02");
    }

    #[test]
    fn report_mail_is_recognised_and_sts_enforce_relaxed() {
        use crate::route::Hop;
        use crate::HopTls;
        let mut entry = postern_spool::QueueEntry {
            id: postern_spool::QueueId::parse("ABCDEF").unwrap(),
            envelope: postern_spool::Envelope {
                sender: None,
                recipients: vec![],
                ret: None,
                envid: None,
                body: postern_spool::BodyType::default(),
                smtputf8: false,
                authenticated: None,
                client_ip: None,
                helo: None,
                requiretls: false,
            },
            arrived: 0,
            size: 0,
            recipients: vec![],
            delivered_accounts: Default::default(),
            held: false,
        };
        let report = b"From: a@b\r\nTLS-Report-Domain: example.test\r\n\r\nbody";
        let plain = b"From: a@b\r\nSubject: TLS-Report-Domain: x\r\n\r\nTLS-Report-Domain: y";
        assert!(is_report_mail(&entry, report));
        assert!(!is_report_mail(&entry, plain));
        let hop = Hop {
            host: "mx.example.test".into(),
            addr: "192.0.2.1:25".parse().unwrap(),
        };
        let hops = vec![
            (hop.clone(), HopTls::Sts { enforce: true }),
            (hop.clone(), HopTls::DaneUnauthenticated),
        ];
        let relaxed = relax_for_report(&entry, report, hops.clone());
        assert!(matches!(relaxed[0].1, HopTls::Sts { enforce: false }));
        assert!(matches!(relaxed[1].1, HopTls::DaneUnauthenticated));
        entry.envelope.sender = Some("someone@example.org".into());
        let kept = relax_for_report(&entry, report, hops);
        assert!(matches!(kept[0].1, HopTls::Sts { enforce: true }));
    }

    #[test]
    fn records() {
        assert_eq!(
            parse_record(
                "v=TLSRPTv1; rua=mailto:tls%2Breports@example.com,https://r.example.com/x"
            ),
            Some(vec![
                Rua::Mailto("tls+reports@example.com".into()),
                Rua::Https("https://r.example.com/x".into())
            ])
        );
        assert_eq!(parse_record("v=STSv1; id=1"), None);
        assert_eq!(parse_record("v=TLSRPTv1;"), None);
        assert_eq!(
            parse_record("v=TLSRPTv1; rua=ftp://x.example"),
            Some(vec![])
        );
    }

    #[test]
    fn the_report_has_the_rfc_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tlsrpt.db");
        let rec = crate::tlsrpt::Recorder::open(path.clone()).unwrap();
        let ok = TlsResult {
            policy_domain: "example.test".into(),
            policy: PolicyKind::Sts,
            mx_host: "mx.example.test".into(),
            addr: Some("192.0.2.1:25".parse().unwrap()),
            failure: None,
        };
        rec.policy(
            "example.test",
            PolicyKind::Sts,
            &[
                "version: STSv1".into(),
                "mode: testing".into(),
                "mx: *.example.test".into(),
            ],
        );
        rec.record(&ok);
        rec.record(&ok);
        rec.record(&TlsResult {
            failure: Some((FailureType::CertificateExpired, "expired".into())),
            ..ok.clone()
        });
        drop(rec);
        let day = crate::tlsrpt::day_string(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        );
        let reporter = Reporter {
            org_name: "Org".into(),
            contact: "postmaster@mx.test".into(),
            hostname: "mx.test".into(),
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let report = loop {
            if let Some(r) = build(&path, "example.test", &day, &reporter, "u1").unwrap() {
                if r.policies[0].summary.total_failure_session_count == 1 {
                    break r;
                }
            }
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(50));
        };
        let v: serde_json::Value = serde_json::to_value(&report).unwrap();
        assert_eq!(v["organization-name"], "Org");
        assert_eq!(
            v["date-range"]["start-datetime"],
            format!("{day}T00:00:00Z")
        );
        let p = &v["policies"][0];
        assert_eq!(p["policy"]["policy-type"], "sts");
        assert_eq!(p["policy"]["policy-string"][1], "mode: testing");
        // MTA-STS: the policy's mx patterns.
        assert_eq!(p["policy"]["mx-host"][0], "*.example.test");
        assert_eq!(
            p["failure-details"][0]["receiving-mx-hostname"],
            "mx.example.test"
        );
        assert_eq!(p["summary"]["total-successful-session-count"], 2);
        let f = &p["failure-details"][0];
        assert_eq!(f["result-type"], "certificate-expired");
        assert_eq!(f["receiving-ip"], "192.0.2.1");
        assert!(
            f.get("sending-mta-ip").is_none_or(|ip| ip.is_string()),
            "{f}"
        );
        assert_eq!(f["failed-session-count"], 1);
        assert!(build(&path, "other.test", &day, &reporter, "u")
            .unwrap()
            .is_none());
        assert_eq!(
            domains(&path, &day).unwrap(),
            vec!["example.test".to_string()]
        );
        assert!(mark_sent(&path, &day, "example.test", "id", "x", 0).unwrap());
        assert!(!mark_sent(&path, &day, "example.test", "id", "x", 0).unwrap());
        assert!(was_sent(&path, &day, "example.test").unwrap());
        unmark_sent(&path, &day, "example.test").unwrap();
        assert!(!was_sent(&path, &day, "example.test").unwrap());
        let m = String::from_utf8(message(
            &reporter,
            &report,
            "example.test",
            "u1",
            "r@x.test",
            0,
        ))
        .unwrap();
        assert!(m.contains("TLS-Report-Domain: example.test\r\n"));
        assert!(m.contains("report-type=\"tlsrpt\""));
        assert!(m.contains("filename=\"mx.test!example.test!"));
    }
}
