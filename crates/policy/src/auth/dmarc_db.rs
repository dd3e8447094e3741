//! `data_dir/dmarc.db`: every DMARC evaluation (RFC 7489 §7.2 aggregate report rows), written
//! in batches by one thread of its own so sessions never wait on SQLite; `postern dmarc
//! records` reads it.

use rusqlite::{params, Connection};
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One DMARC evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcRecord {
    /// Seconds since the epoch.
    pub time: i64,
    /// The RFC 5322.From domain evaluated.
    pub header_from: String,
    /// The client's address.
    pub source_ip: String,
    /// The SPF result (`pass`, `fail`, ...) and the domain it was for.
    pub spf: String,
    /// The domain SPF checked.
    pub spf_domain: String,
    /// Which identity that is: `mfrom` (MAIL FROM) or `helo` (for the null sender).
    pub spf_scope: String,
    /// Whether SPF passed aligned with the From domain.
    pub spf_aligned: bool,
    /// The DKIM results, `domain:result:selector` separated by spaces.
    pub dkim: String,
    /// Whether a passing DKIM signature is aligned with the From domain.
    pub dkim_aligned: bool,
    /// The DMARC result (`pass`, `fail`, `temperror`, ...).
    pub result: String,
    /// What was done: `none`, `quarantine`, `reject`.
    pub disposition: String,
    /// The policy the domain published (`none`, `quarantine`, `reject`).
    pub policy: String,
    /// Why the disposition differs from the policy, if it does (`forwarded`, `trusted_forwarder`,
    /// `sampled_out`).
    pub override_reason: String,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS dmarc_records (
    time INTEGER NOT NULL,
    header_from TEXT NOT NULL,
    source_ip TEXT NOT NULL,
    spf TEXT NOT NULL,
    spf_domain TEXT NOT NULL,
    spf_aligned INTEGER NOT NULL,
    dkim TEXT NOT NULL,
    dkim_aligned INTEGER NOT NULL,
    result TEXT NOT NULL,
    disposition TEXT NOT NULL,
    policy TEXT NOT NULL,
    override_reason TEXT NOT NULL,
    spf_scope TEXT NOT NULL DEFAULT 'mfrom'
);
CREATE INDEX IF NOT EXISTS dmarc_records_domain ON dmarc_records (header_from, time);";

/// The file under `data_dir`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("dmarc.db")
}

fn open(path: &Path) -> Result<Connection, String> {
    // Created private (0600) before SQLite opens it, whatever the umask.
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let conn = Connection::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
        .and_then(|_| conn.execute_batch(SCHEMA))
        .and_then(|_| add_spf_scope(&conn))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(conn)
}

/// Databases made before `spf_scope` existed get the column (their rows were all `mfrom`
/// or recorded as such).
fn add_spf_scope(conn: &Connection) -> rusqlite::Result<()> {
    let has: bool = conn.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('dmarc_records') WHERE name = 'spf_scope'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if !has {
        conn.execute_batch(
            "ALTER TABLE dmarc_records ADD COLUMN spf_scope TEXT NOT NULL DEFAULT 'mfrom'",
        )?;
    }
    Ok(())
}

/// Sends records to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct DmarcRecorder {
    tx: SyncSender<DmarcRecord>,
}

impl DmarcRecorder {
    /// Opens (creating) `data_dir/dmarc.db` and starts its writer thread.
    pub fn start(data_dir: &Path) -> Result<DmarcRecorder, String> {
        let mut conn = open(&path(data_dir))?;
        let (tx, rx) = sync_channel(4096);
        std::thread::Builder::new()
            .name("dmarc-records".into())
            .spawn(move || writer(&mut conn, rx))
            .map_err(|e| format!("dmarc records thread: {e}"))?;
        Ok(DmarcRecorder { tx })
    }

    /// Queues `record` (dropped with a warning if the writer is 4096 behind).
    pub fn record(&self, record: DmarcRecord) {
        match self.tx.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                tracing::warn!("dmarc.db writer is behind; one DMARC record dropped")
            }
            Err(TrySendError::Disconnected(_)) => {
                tracing::warn!("dmarc.db writer stopped; one DMARC record dropped")
            }
        }
    }
}

/// Writes what arrives in batches: what comes within half a second of the first record, up to
/// 512, in one transaction (one WAL append per batch, not per message; the records are
/// statistics for reports, so a crash may lose the last half second of them).
fn writer(conn: &mut Connection, rx: Receiver<DmarcRecord>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        let deadline = Instant::now() + Duration::from_millis(500);
        while batch.len() < 512 {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        if let Err(e) = insert(conn, &batch) {
            tracing::warn!("dmarc.db: {} records not written: {e}", batch.len());
        }
    }
}

fn insert(conn: &mut Connection, batch: &[DmarcRecord]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO dmarc_records (time, header_from, source_ip, spf, spf_domain, spf_aligned,
             dkim, dkim_aligned, result, disposition, policy, override_reason, spf_scope)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?;
        for r in batch {
            stmt.execute(params![
                r.time,
                r.header_from,
                r.source_ip,
                r.spf,
                r.spf_domain,
                r.spf_aligned,
                r.dkim,
                r.dkim_aligned,
                r.result,
                r.disposition,
                r.policy,
                r.override_reason,
                r.spf_scope
            ])?;
        }
    }
    tx.commit()
}

/// One line of `postern dmarc records`: the evaluations of one source and outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcGroup {
    /// The client's address.
    pub source_ip: String,
    /// The DMARC result.
    pub result: String,
    /// What was done.
    pub disposition: String,
    /// SPF and DKIM as recorded (`spf=pass dkim=d=example.org:pass`).
    pub spf: String,
    /// DKIM results.
    pub dkim: String,
    /// How many messages.
    pub count: u64,
}

/// The records of `domain` (header.from) of the last `since_days` days, grouped by source IP
/// and outcome, most messages first. Read-only: a missing database is an error.
pub fn records(data_dir: &Path, domain: &str, since_days: u32) -> Result<Vec<DmarcGroup>, String> {
    let path = path(data_dir);
    if !path.exists() {
        return Err(format!(
            "{}: no DMARC records yet (the MX writes them when [policy] checks run)",
            path.display()
        ));
    }
    let conn = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let since = now - i64::from(since_days) * 86_400;
    let mut stmt = conn
        .prepare(
            "SELECT source_ip, result, disposition, spf, dkim, COUNT(*) FROM dmarc_records
             WHERE header_from = ?1 AND time >= ?2
             GROUP BY source_ip, result, disposition, spf, dkim
             ORDER BY COUNT(*) DESC, source_ip",
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let rows = stmt
        .query_map(params![domain.to_ascii_lowercase(), since], |row| {
            Ok(DmarcGroup {
                source_ip: row.get(0)?,
                result: row.get(1)?,
                disposition: row.get(2)?,
                spf: row.get(3)?,
                dkim: row.get(4)?,
                count: row.get::<_, i64>(5)?.max(0) as u64,
            })
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn records_are_written_in_batches_and_grouped() {
        let dir = tempfile::tempdir().unwrap();
        let rec = DmarcRecorder::start(dir.path()).unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let base = DmarcRecord {
            time: now,
            header_from: "example.org".into(),
            source_ip: "192.0.2.1".into(),
            spf: "pass".into(),
            spf_domain: "example.org".into(),
            spf_scope: "mfrom".into(),
            spf_aligned: true,
            dkim: "example.org:pass".into(),
            dkim_aligned: true,
            result: "pass".into(),
            disposition: "none".into(),
            policy: "reject".into(),
            override_reason: String::new(),
        };
        for _ in 0..3 {
            rec.record(base.clone());
        }
        rec.record(DmarcRecord {
            source_ip: "192.0.2.9".into(),
            result: "fail".into(),
            disposition: "reject".into(),
            ..base.clone()
        });
        rec.record(DmarcRecord {
            header_from: "other.example".into(),
            ..base.clone()
        });
        let mut groups = Vec::new();
        for _ in 0..200 {
            std::thread::sleep(std::time::Duration::from_millis(20));
            groups = records(dir.path(), "EXAMPLE.org", 1).unwrap();
            if groups.iter().map(|g| g.count).sum::<u64>() == 4 {
                break;
            }
        }
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].count, 3);
        assert_eq!(groups[0].source_ip, "192.0.2.1");
        assert_eq!(groups[1].disposition, "reject");
        let mode = std::fs::metadata(path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn missing_database_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = records(dir.path(), "example.org", 7).unwrap_err();
        assert!(e.contains("no DMARC records yet"), "{e}");
    }
}
