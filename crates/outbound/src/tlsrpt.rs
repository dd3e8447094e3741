//! TLS-RPT recording (RFC 8460 §4): every TLS outcome the client reports, counted per UTC day,
//! policy domain, policy type, MX host and result type in `data_dir/tlsrpt.db` (SQLite), for
//! `postern tls-report DOMAIN` and the daily reports ([`crate::report`]): the failures also per
//! receiving address, the policy strings seen, and the reports sent.
//!
//! Outcomes are counted in memory and written by one thread in half-second batches (one
//! transaction per batch), so delivery never waits for the disk.

use crate::policy::{TlsReporter, TlsResult};
use rusqlite::{params, Connection};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// One aggregated row: (day, policy domain, policy type, MX host, result type).
type Key = (String, String, &'static str, String, &'static str);

/// One row of `postern tls-report`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// `tlsa`, `sts` or `no-policy-found` (RFC 8460 §4.1).
    pub policy: String,
    /// The MX host (empty for a failure of the policy itself).
    pub mx_host: String,
    /// `success` or an RFC 8460 §4.3 result type.
    pub result: String,
    /// Sessions counted.
    pub count: u64,
    /// The last failure's words.
    pub detail: String,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS tls_results (
    day TEXT NOT NULL, domain TEXT NOT NULL, policy TEXT NOT NULL, mx_host TEXT NOT NULL,
    result TEXT NOT NULL, count INTEGER NOT NULL, detail TEXT NOT NULL,
    PRIMARY KEY (day, domain, policy, mx_host, result));
CREATE TABLE IF NOT EXISTS tls_failures (
    day TEXT NOT NULL, domain TEXT NOT NULL, policy TEXT NOT NULL, mx_host TEXT NOT NULL,
    result TEXT NOT NULL, receiving_ip TEXT NOT NULL, sending_ip TEXT NOT NULL,
    count INTEGER NOT NULL, detail TEXT NOT NULL,
    PRIMARY KEY (day, domain, policy, mx_host, result, receiving_ip, sending_ip));
CREATE TABLE IF NOT EXISTS tls_policies (
    day TEXT NOT NULL, domain TEXT NOT NULL, policy TEXT NOT NULL, strings TEXT NOT NULL,
    PRIMARY KEY (day, domain, policy));
CREATE TABLE IF NOT EXISTS tls_reports_sent (
    day TEXT NOT NULL, domain TEXT NOT NULL, report_id TEXT NOT NULL,
    destinations TEXT NOT NULL, sent_at INTEGER NOT NULL,
    PRIMARY KEY (day, domain));";

/// What the writer thread is given.
enum Item {
    /// One outcome: its key, the (receiving, sending) addresses (empty when none), the
    /// failure's words.
    Outcome(Key, (String, String), String),
    /// The policy strings of (day, domain, policy type), last seen wins.
    Policy(String, String, &'static str, Vec<String>),
}

pub(crate) fn open(path: &Path) -> Result<Connection, String> {
    let conn = Connection::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(5))
        .and_then(|_| conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"))
        .and_then(|_| conn.execute_batch(SCHEMA))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(conn)
}

/// The UTC day holding `unix` as `YYYY-MM-DD`.
pub(crate) fn day_string(unix: u64) -> String {
    postern_mail::date::day_string(i64::try_from(unix).unwrap_or(i64::MAX))
}

fn today() -> String {
    day_string(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

/// A [`TlsReporter`] that counts outcomes into `tlsrpt.db` (and logs failures).
pub struct Recorder {
    tx: mpsc::Sender<Item>,
}

impl Recorder {
    /// Opens (creating) the database at `path` and starts its writer thread.
    pub fn open(path: PathBuf) -> Result<Recorder, String> {
        let conn = open(&path)?;
        let (tx, rx) = mpsc::channel::<Item>();
        std::thread::Builder::new()
            .name("tlsrpt-writer".into())
            .spawn(move || writer(conn, rx))
            .map_err(|e| format!("cannot start the TLS-RPT writer: {e}"))?;
        Ok(Recorder { tx })
    }
}

type Batch = (
    HashMap<Key, (u64, String)>,
    HashMap<(Key, (String, String)), (u64, String)>,
    HashMap<(String, String, &'static str), Vec<String>>,
);

fn writer(mut conn: Connection, rx: mpsc::Receiver<Item>) {
    let mut open_channel = true;
    while open_channel {
        let Ok(first) = rx.recv() else { return };
        std::thread::sleep(Duration::from_millis(500));
        let mut batch: Batch = Default::default();
        let mut add = |item: Item| match item {
            Item::Outcome(key, ip, detail) => {
                if key.4 != "success" {
                    let e = batch
                        .1
                        .entry((key.clone(), ip))
                        .or_insert((0, String::new()));
                    e.0 += 1;
                    if !detail.is_empty() {
                        e.1 = detail.clone();
                    }
                }
                let e = batch.0.entry(key).or_insert((0, String::new()));
                e.0 += 1;
                if !detail.is_empty() {
                    e.1 = detail;
                }
            }
            Item::Policy(day, domain, policy, strings) => {
                batch.2.insert((day, domain, policy), strings);
            }
        };
        add(first);
        loop {
            match rx.try_recv() {
                Ok(item) => add(item),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    open_channel = false;
                    break;
                }
            }
        }
        if let Err(e) = write_batch(&mut conn, &batch) {
            tracing::error!(
                "tlsrpt.db: cannot record {} TLS outcomes: {e}",
                batch.0.len()
            );
        }
    }
}

fn write_batch(conn: &mut Connection, batch: &Batch) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    for ((day, domain, policy, host, result), (n, detail)) in &batch.0 {
        tx.execute(
            "INSERT INTO tls_results (day, domain, policy, mx_host, result, count, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (day, domain, policy, mx_host, result) DO UPDATE SET
               count = count + excluded.count,
               detail = CASE WHEN excluded.detail = '' THEN detail ELSE excluded.detail END",
            params![day, domain, policy, host, result, *n as i64, detail],
        )?;
    }
    for (((day, domain, policy, host, result), (ip, from)), (n, detail)) in &batch.1 {
        tx.execute(
            "INSERT INTO tls_failures (day, domain, policy, mx_host, result, receiving_ip, sending_ip, count, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (day, domain, policy, mx_host, result, receiving_ip, sending_ip) DO UPDATE SET
               count = count + excluded.count,
               detail = CASE WHEN excluded.detail = '' THEN detail ELSE excluded.detail END",
            params![day, domain, policy, host, result, ip, from, *n as i64, detail],
        )?;
    }
    for ((day, domain, policy), strings) in &batch.2 {
        let json = serde_json::to_string(strings).unwrap_or_else(|_| "[]".into());
        tx.execute(
            "INSERT INTO tls_policies (day, domain, policy, strings) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (day, domain, policy) DO UPDATE SET strings = excluded.strings",
            params![day, domain, policy, json],
        )?;
    }
    tx.commit()
}

impl TlsReporter for Recorder {
    fn record(&self, r: &TlsResult) {
        crate::LogReporter.record(r);
        let (result, detail) = match &r.failure {
            None => ("success", String::new()),
            Some((kind, why)) => (kind.as_str(), why.clone()),
        };
        let key = (
            today(),
            r.policy_domain.to_ascii_lowercase(),
            r.policy.as_str(),
            r.mx_host.to_ascii_lowercase(),
            result,
        );
        let ip = r.addr.map(|a| a.ip().to_string()).unwrap_or_default();
        let from = match (r.addr, &r.failure) {
            (Some(a), Some(_)) => source_ip(a),
            _ => String::new(),
        };
        let _ = self.tx.send(Item::Outcome(key, (ip, from), detail));
    }

    fn policy(&self, domain: &str, kind: crate::PolicyKind, strings: &[String]) {
        let _ = self.tx.send(Item::Policy(
            today(),
            domain.trim_end_matches('.').to_ascii_lowercase(),
            kind.as_str(),
            strings.to_vec(),
        ));
    }
}

/// RFC 8460 §4.4 `sending-mta-ip`: the address the system routes from towards `to` (a UDP
/// socket's local address after `connect`; no packet is sent). Empty if there is no route.
fn source_ip(to: std::net::SocketAddr) -> String {
    let any: std::net::SocketAddr = if to.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    std::net::UdpSocket::bind(any)
        .and_then(|s| s.connect(to).and_then(|_| s.local_addr()))
        .map(|a| a.ip().to_string())
        .unwrap_or_default()
}

/// What `tlsrpt.db` at `path` holds for `domain`, newest day first.
pub fn rows(path: &Path, domain: &str) -> Result<Vec<Row>, String> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let sql = |e: rusqlite::Error| format!("{}: {e}", path.display());
    let mut stmt = conn
        .prepare(
            "SELECT day, policy, mx_host, result, count, detail FROM tls_results
             WHERE domain = ?1 ORDER BY day DESC, policy, mx_host, result",
        )
        .map_err(sql)?;
    let rows = stmt
        .query_map(
            params![domain.trim_end_matches('.').to_ascii_lowercase()],
            |r| {
                Ok(Row {
                    day: r.get(0)?,
                    policy: r.get(1)?,
                    mx_host: r.get(2)?,
                    result: r.get(3)?,
                    count: r.get::<_, i64>(4)?.max(0) as u64,
                    detail: r.get(5)?,
                })
            },
        )
        .map_err(sql)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql)?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{FailureType, PolicyKind};

    #[test]
    fn days() {
        assert_eq!(day_string(0), "1970-01-01");
        assert_eq!(day_string(951_782_400), "2000-02-29");
        assert_eq!(day_string(1_796_319_726), "2026-12-03");
    }

    #[test]
    fn outcomes_are_counted_per_day_host_and_result() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tlsrpt.db");
        let rec = Recorder::open(path.clone()).unwrap();
        let ok = TlsResult {
            policy_domain: "Example.TEST".into(),
            policy: PolicyKind::Sts,
            mx_host: "mx.example.test".into(),
            addr: Some("127.0.0.1:25".parse().unwrap()),
            failure: None,
        };
        let bad = TlsResult {
            failure: Some((FailureType::CertificateExpired, "expired".into())),
            ..ok.clone()
        };
        for _ in 0..3 {
            rec.record(&ok);
        }
        rec.record(&bad);
        drop(rec);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let got = loop {
            let got = rows(&path, "example.test").unwrap();
            if got.iter().map(|r| r.count).sum::<u64>() == 4 {
                break got;
            }
            assert!(std::time::Instant::now() < deadline, "{got:?}");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(got.len(), 2, "{got:?}");
        let expired = got
            .iter()
            .find(|r| r.result == "certificate-expired")
            .unwrap();
        assert_eq!((expired.count, expired.detail.as_str()), (1, "expired"));
        let success = got.iter().find(|r| r.result == "success").unwrap();
        assert_eq!((success.count, success.policy.as_str()), (3, "sts"));
        assert!(rows(&path, "other.test").unwrap().is_empty());
        assert!(rows(&dir.path().join("absent.db"), "x").unwrap().is_empty());
    }
}
