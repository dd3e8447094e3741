//! MODSEQs that never go backwards, even after a machine crash.
//!
//! Flag changes and `\Recent` claims commit without waiting for the disk (`synchronous=NORMAL`):
//! a machine crash may lose the last of them. The files stay consistent with the index (the
//! next sync reconciles them), but the mailbox's HIGHESTMODSEQ could fall below a value a
//! client has already seen, and the next changes would reuse MODSEQs that client believes it
//! has (RFC 7162 §3.1 forbids that). So each process that opens an account's index records
//! itself in the `openers` table, durably, and removes itself when it closes the index. A
//! process that finds the row of one that is gone (it crashed, or the machine did) raises every
//! mailbox's HIGHESTMODSEQ by [`CRASH_MARGIN`], more than the changes a lost tail of the
//! write-ahead log can hold. A raise costs clients one resynchronisation; it never hides a change.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection};

use crate::error::Result;

/// How far MODSEQs jump after an unclean close: far more changes than SQLite keeps in the part
/// of its write-ahead log that is not yet synced (a checkpoint syncs it every 1,000 pages).
pub(super) const CRASH_MARGIN: u64 = 1_000_000;

/// This process, as recorded: its pid and a token that a later process with the same pid does
/// not share.
fn me() -> (i64, i64) {
    static TOKEN: OnceLock<i64> = OnceLock::new();
    let token = *TOKEN.get_or_init(|| {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(t.as_nanos()).unwrap_or(i64::MAX)
    });
    (i64::from(std::process::id()), token)
}

/// Whether the process `pid` is still running (Linux: `/proc/<pid>` exists).
fn alive(pid: i64) -> bool {
    std::path::Path::new("/proc").join(pid.to_string()).exists()
}

/// Registers this process as an opener of the index in `conn`, inside the caller's write
/// transaction, after raising MODSEQs if an earlier opener went away without closing.
/// Returns how many such openers were found.
pub(super) fn register(conn: &Connection) -> Result<usize> {
    let (pid, token) = me();
    let rows: Vec<(i64, i64)> = conn
        .prepare("SELECT pid, token FROM openers")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let gone: Vec<(i64, i64)> = rows
        .into_iter()
        .filter(|&(p, t)| if p == pid { t != token } else { !alive(p) })
        .collect();
    if !gone.is_empty() {
        conn.execute(
            "UPDATE mailboxes SET highestmodseq = highestmodseq + ?1",
            params![CRASH_MARGIN as i64],
        )?;
        for (p, t) in &gone {
            conn.execute(
                "DELETE FROM openers WHERE pid=?1 AND token=?2",
                params![p, t],
            )?;
        }
    }
    conn.execute(
        "INSERT INTO openers(pid, token, opened) VALUES(?1, ?2, 1)
         ON CONFLICT(pid, token) DO UPDATE SET opened = opened + 1",
        params![pid, token],
    )?;
    Ok(gone.len())
}

/// Undoes one [`register`] of this process (its index handle closes cleanly).
pub(super) fn unregister(conn: &Connection) -> Result<()> {
    let (pid, token) = me();
    conn.execute(
        "UPDATE openers SET opened = opened - 1 WHERE pid=?1 AND token=?2",
        params![pid, token],
    )?;
    conn.execute(
        "DELETE FROM openers WHERE pid=?1 AND token=?2 AND opened <= 0",
        params![pid, token],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vanished_opener_raises_modseqs_once() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::maildir::index::open(dir.path(), true).unwrap();
        crate::maildir::index::insert_mailbox(&conn, "INBOX", 1, 1, 7, None, 0).unwrap();
        let modseq = |c: &Connection| -> i64 {
            c.query_row("SELECT highestmodseq FROM mailboxes", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(register(&conn).unwrap(), 0);
        assert_eq!(
            register(&conn).unwrap(),
            0,
            "a second handle of the same process"
        );
        assert_eq!(modseq(&conn), 7);
        // A process that no longer exists left its row: it did not close cleanly.
        conn.execute(
            "INSERT INTO openers(pid, token, opened) VALUES(?1, 1, 1)",
            [i64::from(i32::MAX)],
        )
        .unwrap();
        assert_eq!(register(&conn).unwrap(), 1);
        assert_eq!(modseq(&conn), 7 + CRASH_MARGIN as i64);
        assert_eq!(register(&conn).unwrap(), 0, "raised once");
        for _ in 0..4 {
            unregister(&conn).unwrap();
        }
        let left: i64 = conn
            .query_row("SELECT COUNT(*) FROM openers", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0, "closed cleanly: nothing left behind");
    }
}
