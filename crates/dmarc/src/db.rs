//! The report tables of `data_dir/dmarc.db`, beside the evaluations (`dmarc_records`, written
//! by the MX's policy checks): what was sent (`dmarc_sent`, so a period is never sent twice),
//! and the reports received for our own domains (`dmarc_reports` keyed by org and report id,
//! and their `dmarc_report_rows`).

use crate::feedback::{DkimAuth, Feedback, Record, SpfAuth};
use crate::DmarcError;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS dmarc_sent (
    domain TEXT NOT NULL,
    begin INTEGER NOT NULL,
    end_time INTEGER NOT NULL,
    report_id TEXT NOT NULL,
    destinations TEXT NOT NULL,
    sent INTEGER NOT NULL,
    PRIMARY KEY (domain, begin)
);
CREATE TABLE IF NOT EXISTS dmarc_reports (
    id INTEGER PRIMARY KEY,
    org_name TEXT NOT NULL,
    report_id TEXT NOT NULL,
    email TEXT NOT NULL,
    domain TEXT NOT NULL,
    begin INTEGER NOT NULL,
    end_time INTEGER NOT NULL,
    p TEXT NOT NULL,
    received INTEGER NOT NULL,
    UNIQUE (org_name, report_id)
);
CREATE INDEX IF NOT EXISTS dmarc_reports_domain ON dmarc_reports (domain, end_time);
CREATE TABLE IF NOT EXISTS dmarc_report_rows (
    report INTEGER NOT NULL,
    source_ip TEXT NOT NULL,
    count INTEGER NOT NULL,
    disposition TEXT NOT NULL,
    dkim TEXT NOT NULL,
    spf TEXT NOT NULL,
    header_from TEXT NOT NULL,
    envelope_from TEXT NOT NULL,
    dkim_results TEXT NOT NULL,
    spf_results TEXT NOT NULL,
    reasons TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dmarc_report_rows_report ON dmarc_report_rows (report);";

fn sql(path: &Path) -> impl Fn(rusqlite::Error) -> DmarcError + '_ {
    move |e| DmarcError::Db(format!("{}: {e}", path.display()))
}

/// Opens (creating, 0600) `data_dir/dmarc.db` with the report tables.
pub fn open(data_dir: &Path) -> Result<Connection, DmarcError> {
    let path = data_dir.join("dmarc.db");
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| DmarcError::Db(format!("{}: {e}", path.display())))?;
    let conn = Connection::open(&path).map_err(sql(&path))?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(sql(&path))?;
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
        .and_then(|_| conn.execute_batch(SCHEMA))
        .map_err(sql(&path))?;
    Ok(conn)
}

fn db(e: rusqlite::Error) -> DmarcError {
    DmarcError::Db(format!("dmarc.db: {e}"))
}

/// The evaluations of one source with one outcome in a period (one report row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluated {
    /// The client's address.
    pub source_ip: String,
    /// The SPF result.
    pub spf: String,
    /// The domain SPF checked.
    pub spf_domain: String,
    /// `mfrom` or `helo`.
    pub spf_scope: String,
    /// SPF passed aligned.
    pub spf_aligned: bool,
    /// `domain:result[:selector]` separated by spaces, as the MX records them.
    pub dkim: String,
    /// DKIM passed aligned.
    pub dkim_aligned: bool,
    /// `none`, `quarantine`, `reject`.
    pub disposition: String,
    /// `forwarded`, `sampled_out`, `trusted_forwarder`, or empty.
    pub override_reason: String,
    /// How many messages.
    pub count: u64,
}

fn has_records_table(conn: &Connection) -> Result<bool, DmarcError> {
    conn.query_row(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'dmarc_records'",
        [],
        |_| Ok(()),
    )
    .optional()
    .map(|o| o.is_some())
    .map_err(db)
}

/// RFC 7489 §7.2: the evaluations of `[begin, end]` by From domain, grouped into rows.
pub fn evaluated(
    conn: &Connection,
    begin: i64,
    end: i64,
) -> Result<BTreeMap<String, Vec<Evaluated>>, DmarcError> {
    let mut out: BTreeMap<String, Vec<Evaluated>> = BTreeMap::new();
    if !has_records_table(conn)? {
        return Ok(out);
    }
    // Databases the MX has not opened since spf_scope was added lack the column.
    let scope: bool = conn
        .query_row(
            "SELECT COUNT(*) FROM pragma_table_info('dmarc_records') WHERE name = 'spf_scope'",
            [],
            |r| r.get::<_, i64>(0).map(|n| n > 0),
        )
        .map_err(db)?;
    let scope = if scope { "spf_scope" } else { "'mfrom'" };
    let mut stmt = conn
        .prepare(&format!(
            "SELECT header_from, source_ip, spf, spf_domain, spf_aligned, dkim, dkim_aligned,
                    disposition, override_reason, COUNT(*), {scope}
             FROM dmarc_records WHERE time >= ?1 AND time <= ?2
             GROUP BY header_from, source_ip, spf, spf_domain, spf_aligned, dkim, dkim_aligned,
                      disposition, override_reason, {scope}
             ORDER BY header_from, COUNT(*) DESC, source_ip"
        ))
        .map_err(db)?;
    let rows = stmt
        .query_map(params![begin, end], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Evaluated {
                    source_ip: r.get(1)?,
                    spf: r.get(2)?,
                    spf_domain: r.get(3)?,
                    spf_aligned: r.get(4)?,
                    dkim: r.get(5)?,
                    dkim_aligned: r.get(6)?,
                    disposition: r.get(7)?,
                    override_reason: r.get(8)?,
                    count: r.get::<_, i64>(9)?.max(0) as u64,
                    spf_scope: r.get(10)?,
                },
            ))
        })
        .map_err(db)?;
    for row in rows {
        let (domain, e) = row.map_err(db)?;
        out.entry(domain).or_default().push(e);
    }
    Ok(out)
}

/// Whether the report of `domain` for the period starting at `begin` was sent already.
pub fn was_sent(conn: &Connection, domain: &str, begin: i64) -> Result<bool, DmarcError> {
    conn.query_row(
        "SELECT 1 FROM dmarc_sent WHERE domain = ?1 AND begin = ?2",
        params![domain, begin],
        |_| Ok(()),
    )
    .optional()
    .map(|o| o.is_some())
    .map_err(db)
}

/// Remembers (durably, before the report is queued) that the period was sent; `false` if it
/// was already.
pub fn mark_sent(
    conn: &Connection,
    domain: &str,
    begin: i64,
    end: i64,
    report_id: &str,
    destinations: &str,
    now: i64,
) -> Result<bool, DmarcError> {
    let n = conn
        .execute(
            "INSERT OR IGNORE INTO dmarc_sent (domain, begin, end_time, report_id, destinations, sent)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![domain, begin, end, report_id, destinations, now],
        )
        .map_err(db)?;
    Ok(n == 1)
}

/// Forgets a mark whose report could not be queued after all.
pub fn unmark_sent(conn: &Connection, domain: &str, begin: i64) -> Result<(), DmarcError> {
    conn.execute(
        "DELETE FROM dmarc_sent WHERE domain = ?1 AND begin = ?2",
        params![domain, begin],
    )
    .map_err(db)?;
    Ok(())
}

/// `dmarc_report_keep_days`: deletes evaluations, sent marks and received reports older than
/// `before` (seconds since the epoch). Returns how many evaluations went.
pub fn prune(conn: &mut Connection, before: i64) -> Result<usize, DmarcError> {
    let tx = conn.transaction().map_err(db)?;
    let mut n = 0;
    if has_records_table(&tx)? {
        n = tx
            .execute("DELETE FROM dmarc_records WHERE time < ?1", params![before])
            .map_err(db)?;
    }
    tx.execute(
        "DELETE FROM dmarc_sent WHERE end_time < ?1",
        params![before],
    )
    .map_err(db)?;
    tx.execute(
        "DELETE FROM dmarc_report_rows WHERE report IN (SELECT id FROM dmarc_reports WHERE end_time < ?1)",
        params![before],
    )
    .map_err(db)?;
    tx.execute(
        "DELETE FROM dmarc_reports WHERE end_time < ?1",
        params![before],
    )
    .map_err(db)?;
    tx.commit().map_err(db)?;
    Ok(n)
}

fn join_dkim(d: &[DkimAuth]) -> String {
    d.iter()
        .map(|d| {
            format!(
                "{}:{}:{}",
                d.domain.replace([' ', ':'], "_"),
                d.selector.as_deref().unwrap_or("").replace([' ', ':'], "_"),
                d.result
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn join_spf(s: &[SpfAuth]) -> String {
    s.iter()
        .map(|s| {
            format!(
                "{}:{}:{}",
                s.domain.replace([' ', ':'], "_"),
                s.scope,
                s.result
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Stores a received report (one transaction, committed to disk); `false` when the same org
/// and report id is stored already (reporters resend).
pub fn store_report(conn: &mut Connection, fb: &Feedback, now: i64) -> Result<bool, DmarcError> {
    let tx = conn.transaction().map_err(db)?;
    let n = tx
        .execute(
            "INSERT OR IGNORE INTO dmarc_reports (org_name, report_id, email, domain, begin, end_time, p, received)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                fb.org_name,
                fb.report_id,
                fb.email,
                fb.policy.domain,
                fb.begin,
                fb.end,
                fb.policy.p,
                now
            ],
        )
        .map_err(db)?;
    if n == 0 {
        return Ok(false);
    }
    let id = tx.last_insert_rowid();
    {
        let mut stmt = tx
            .prepare(
                "INSERT INTO dmarc_report_rows (report, source_ip, count, disposition, dkim, spf,
                 header_from, envelope_from, dkim_results, spf_results, reasons)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )
            .map_err(db)?;
        for r in &fb.records {
            let reasons = r
                .reasons
                .iter()
                .map(|(t, _)| t.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            stmt.execute(params![
                id,
                r.source_ip,
                i64::try_from(r.count).unwrap_or(i64::MAX),
                r.disposition,
                r.dkim,
                r.spf,
                r.header_from,
                r.envelope_from,
                join_dkim(&r.dkim_results),
                join_spf(&r.spf_results),
                reasons
            ])
            .map_err(db)?;
        }
    }
    tx.commit().map_err(db)?;
    Ok(true)
}

/// One received row, with the report it came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The reporting organisation.
    pub org_name: String,
    /// The row (the auth results as stored: `domain:selector:result` / `domain:scope:result`).
    pub record: Record,
}

/// The rows of reports about `domain` whose period ended at or after `since`.
pub fn received(conn: &Connection, domain: &str, since: i64) -> Result<Vec<Received>, DmarcError> {
    let mut stmt = conn
        .prepare(
            "SELECT r.org_name, w.source_ip, w.count, w.disposition, w.dkim, w.spf, w.header_from,
                    w.envelope_from, w.dkim_results, w.spf_results, w.reasons
             FROM dmarc_reports r JOIN dmarc_report_rows w ON w.report = r.id
             WHERE r.domain = ?1 AND r.end_time >= ?2
             ORDER BY r.org_name, w.source_ip",
        )
        .map_err(db)?;
    let rows = stmt
        .query_map(params![domain, since], |r| {
            let dkim_results: String = r.get(8)?;
            let spf_results: String = r.get(9)?;
            let reasons: String = r.get(10)?;
            Ok(Received {
                org_name: r.get(0)?,
                record: Record {
                    source_ip: r.get(1)?,
                    count: r.get::<_, i64>(2)?.max(0) as u64,
                    disposition: r.get(3)?,
                    dkim: r.get(4)?,
                    spf: r.get(5)?,
                    header_from: r.get(6)?,
                    envelope_from: r.get(7)?,
                    envelope_to: None,
                    reasons: reasons
                        .split_whitespace()
                        .map(|t| (t.to_string(), None))
                        .collect(),
                    dkim_results: dkim_results
                        .split_whitespace()
                        .filter_map(|t| {
                            let mut it = t.splitn(3, ':');
                            let (d, s, res) = (it.next()?, it.next()?, it.next()?);
                            Some(DkimAuth {
                                domain: d.into(),
                                selector: (!s.is_empty()).then(|| s.to_string()),
                                result: res.into(),
                            })
                        })
                        .collect(),
                    spf_results: spf_results
                        .split_whitespace()
                        .filter_map(|t| {
                            let mut it = t.splitn(3, ':');
                            Some(SpfAuth {
                                domain: it.next()?.into(),
                                scope: it.next()?.into(),
                                result: it.next()?.into(),
                            })
                        })
                        .collect(),
                },
            })
        })
        .map_err(db)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(db)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feedback::tests::sample;

    #[test]
    fn a_report_is_stored_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(dir.path()).unwrap();
        let fb = sample();
        assert!(store_report(&mut conn, &fb, 5).unwrap());
        assert!(!store_report(&mut conn, &fb, 6).unwrap());
        let rows = received(&conn, "sender.example", 0).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].org_name, "mx.example.net");
        let mut want = fb.records[0].clone();
        want.reasons[0].1 = None;
        assert_eq!(rows[0].record, want);
        assert!(received(&conn, "sender.example", fb.end + 1)
            .unwrap()
            .is_empty());
        prune(&mut conn, fb.end + 1).unwrap();
        assert!(received(&conn, "sender.example", 0).unwrap().is_empty());
    }

    #[test]
    fn a_period_is_marked_once() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(dir.path()).unwrap();
        assert!(!was_sent(&conn, "a.example", 100).unwrap());
        assert!(mark_sent(&conn, "a.example", 100, 199, "id", "mailto:x@y", 1).unwrap());
        assert!(!mark_sent(&conn, "a.example", 100, 199, "id2", "mailto:x@y", 1).unwrap());
        assert!(was_sent(&conn, "a.example", 100).unwrap());
        unmark_sent(&conn, "a.example", 100).unwrap();
        assert!(!was_sent(&conn, "a.example", 100).unwrap());
        // No dmarc_records table yet: nothing evaluated, no error.
        assert!(evaluated(&conn, 0, i64::MAX).unwrap().is_empty());
    }
}
