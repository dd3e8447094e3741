//! The per-account SQLite index: schema and queries.
//!
//! One database per account (`postern-index.sqlite` in the account directory), WAL mode with a
//! busy timeout so several processes (a running server and the admin CLI) can share it. Every
//! change happens inside a `BEGIN IMMEDIATE` transaction, which serialises UID and MODSEQ
//! allocation across processes.

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};

use crate::error::{Result, StoreError};
use crate::types::{Flags, MessageMeta, SpecialUse};

/// File name of the index database inside the account directory.
pub(super) const INDEX_FILE: &str = "postern-index.sqlite";
const SCHEMA_VERSION: i64 = 2;
/// How long a writer waits for another process's transaction.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS mailboxes(
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    uidvalidity INTEGER NOT NULL,
    uidnext INTEGER NOT NULL,
    highestmodseq INTEGER NOT NULL,
    special_use TEXT,
    new_mtime INTEGER,
    cur_mtime INTEGER,
    scan_due INTEGER,
    exact_since INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS subscriptions(
    name TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS messages(
    mailbox_id INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    sysflags INTEGER NOT NULL,
    keywords TEXT NOT NULL,
    modseq INTEGER NOT NULL,
    internaldate INTEGER NOT NULL,
    size INTEGER NOT NULL,
    fname TEXT NOT NULL,
    recent INTEGER NOT NULL,
    dkey TEXT,
    wsize INTEGER NOT NULL DEFAULT -1,
    PRIMARY KEY(mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_dkey ON messages(mailbox_id, dkey) WHERE dkey IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_modseq ON messages(mailbox_id, modseq);
CREATE TABLE IF NOT EXISTS tombstones(
    mailbox_id INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    PRIMARY KEY(mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tombstones_modseq ON tombstones(mailbox_id, modseq);
CREATE TABLE IF NOT EXISTS openers(
    pid INTEGER NOT NULL,
    token INTEGER NOT NULL,
    opened INTEGER NOT NULL,
    PRIMARY KEY(pid, token)
) WITHOUT ROWID;
";

/// A second, read-only connection to an existing index (WAL readers never wait for the writer).
pub(super) fn open_reader(account_dir: &Path) -> Result<Connection> {
    let path = account_dir.join(INDEX_FILE);
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(&path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

/// Opens (creating if needed) the index of an account directory.
pub(super) fn open(account_dir: &Path, create: bool) -> Result<Connection> {
    let path = account_dir.join(INDEX_FILE);
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(&path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), mode, "index not in WAL mode");
    }
    // Acknowledged means durable: fsync the WAL on every commit.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    conn.execute_batch(SCHEMA)?;
    let v: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE key='schema'", [], |r| {
            r.get(0)
        })
        .optional()?;
    match v {
        None => {
            conn.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES('schema', ?1)",
                [SCHEMA_VERSION],
            )?;
        }
        Some(SCHEMA_VERSION) => {}
        Some(1) => {
            // Version 2 keeps each message's wire size; -1 until `unknown_wire_sizes` fills it.
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(
                "ALTER TABLE messages ADD COLUMN wsize INTEGER NOT NULL DEFAULT -1;
                 UPDATE meta SET value=2 WHERE key='schema';",
            )?;
            tx.commit()?;
        }
        Some(other) => {
            return Err(StoreError::Corrupt(format!(
                "index schema version {other} is not supported (expected {SCHEMA_VERSION})"
            )))
        }
    }
    // After any migration, since it names a version 2 column: finding the messages whose wire
    // size is still unknown costs nothing once there are none.
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS messages_unknown_wsize ON messages(mailbox_id) WHERE wsize < 0;",
    )?;
    Ok(conn)
}

/// A mailbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct MailboxRow {
    pub id: i64,
    pub name: String,
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub highestmodseq: u64,
    pub special_use: Option<SpecialUse>,
    pub new_mtime: Option<i64>,
    pub cur_mtime: Option<i64>,
    /// When the recorded mtimes were young: the time (Unix ns) by which a full scan must re-check
    /// them, since another change in the same timestamp tick would not have moved them.
    pub scan_due: Option<i64>,
    /// Tombstones are complete for changes after this mod-sequence.
    pub exact_since: u64,
}

fn u32_col(r: &Row<'_>, i: usize) -> rusqlite::Result<u32> {
    let v: i64 = r.get(i)?;
    u32::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(i, v))
}

fn u64_col(r: &Row<'_>, i: usize) -> rusqlite::Result<u64> {
    let v: i64 = r.get(i)?;
    u64::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(i, v))
}

/// Converts a u64 to the signed SQLite integer (mod-sequences stay far below 2^63).
pub(super) fn sql_u64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

const MAILBOX_COLS: &str =
    "id, name, uidvalidity, uidnext, highestmodseq, special_use, new_mtime, cur_mtime, exact_since, \
     scan_due";

fn mailbox_from_row(r: &Row<'_>) -> rusqlite::Result<MailboxRow> {
    let su: Option<String> = r.get(5)?;
    Ok(MailboxRow {
        id: r.get(0)?,
        name: r.get(1)?,
        uidvalidity: u32_col(r, 2)?,
        uidnext: u32_col(r, 3)?,
        highestmodseq: u64_col(r, 4)?,
        special_use: su.as_deref().and_then(SpecialUse::parse),
        new_mtime: r.get(6)?,
        cur_mtime: r.get(7)?,
        exact_since: u64_col(r, 8)?,
        scan_due: r.get(9)?,
    })
}

/// The row of a mailbox by canonical name.
pub(super) fn mailbox(conn: &Connection, name: &str) -> Result<Option<MailboxRow>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {MAILBOX_COLS} FROM mailboxes WHERE name = ?1"
    ))?;
    Ok(st.query_row([name], mailbox_from_row).optional()?)
}

/// All mailboxes, sorted by name.
pub(super) fn mailboxes(conn: &Connection) -> Result<Vec<MailboxRow>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {MAILBOX_COLS} FROM mailboxes ORDER BY name"
    ))?;
    let rows = st.query_map([], mailbox_from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Inserts a mailbox row and returns its id.
pub(super) fn insert_mailbox(
    conn: &Connection,
    name: &str,
    uidvalidity: u32,
    uidnext: u32,
    highestmodseq: u64,
    special_use: Option<SpecialUse>,
    exact_since: u64,
) -> Result<i64> {
    conn.execute(
        "INSERT INTO mailboxes(name, uidvalidity, uidnext, highestmodseq, special_use, exact_since)
         VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            name,
            i64::from(uidvalidity),
            i64::from(uidnext),
            sql_u64(highestmodseq),
            special_use.map(|s| s.as_str()),
            sql_u64(exact_since)
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Writes back the counters and sync state of a mailbox row.
pub(super) fn update_mailbox(conn: &Connection, mb: &MailboxRow) -> Result<()> {
    let mut st = conn.prepare_cached(
        "UPDATE mailboxes SET uidnext=?2, highestmodseq=?3, new_mtime=?4, cur_mtime=?5,
         special_use=?6, exact_since=?7, scan_due=?8 WHERE id=?1",
    )?;
    st.execute(params![
        mb.id,
        i64::from(mb.uidnext),
        sql_u64(mb.highestmodseq),
        mb.new_mtime,
        mb.cur_mtime,
        mb.special_use.map(|s| s.as_str()),
        sql_u64(mb.exact_since),
        mb.scan_due
    ])?;
    Ok(())
}

/// Removes a mailbox with its messages and tombstones.
pub(super) fn delete_mailbox(conn: &Connection, id: i64) -> Result<()> {
    conn.execute("DELETE FROM messages WHERE mailbox_id=?1", [id])?;
    conn.execute("DELETE FROM tombstones WHERE mailbox_id=?1", [id])?;
    conn.execute("DELETE FROM mailboxes WHERE id=?1", [id])?;
    Ok(())
}

/// A fresh UIDVALIDITY for this account: the current time in seconds, but always above every
/// value handed out before (RFC 9051 §2.3.1.1: a new mailbox with an old name needs a new one).
pub(super) fn next_uidvalidity(conn: &Connection) -> Result<u32> {
    let last: Option<i64> = conn
        .query_row(
            "SELECT value FROM meta WHERE key='last_uidvalidity'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let max_used: Option<i64> =
        conn.query_row("SELECT MAX(uidvalidity) FROM mailboxes", [], |r| r.get(0))?;
    let now = crate::maildir::files::unix_secs(std::time::SystemTime::now());
    let floor = last.unwrap_or(0).max(max_used.unwrap_or(0)) + 1;
    let mut v = now.max(floor);
    if v > i64::from(u32::MAX) {
        // The clock ran past 2106 or the counter wrapped: fall back to the counter.
        v = floor;
    }
    let v =
        u32::try_from(v).map_err(|_| StoreError::Corrupt("UIDVALIDITY space exhausted".into()))?;
    conn.execute(
        "INSERT INTO meta(key, value) VALUES('last_uidvalidity', ?1)
         ON CONFLICT(key) DO UPDATE SET value=excluded.value",
        [i64::from(v)],
    )?;
    Ok(v)
}

/// Records that `v` is used, so [`next_uidvalidity`] never hands it out again.
pub(super) fn note_uidvalidity(conn: &Connection, v: u32) -> Result<()> {
    conn.execute(
        "INSERT INTO meta(key, value) VALUES('last_uidvalidity', ?1)
         ON CONFLICT(key) DO UPDATE SET value=MAX(value, excluded.value)",
        [i64::from(v)],
    )?;
    Ok(())
}

/// Gives a mailbox another UIDVALIDITY (an import keeping its source's UIDs); the old
/// UIDVALIDITY's tombstones go with it.
pub(super) fn set_uidvalidity(conn: &Connection, mailbox_id: i64, v: u32) -> Result<()> {
    conn.execute(
        "UPDATE mailboxes SET uidvalidity=?2 WHERE id=?1",
        params![mailbox_id, i64::from(v)],
    )?;
    conn.execute("DELETE FROM tombstones WHERE mailbox_id=?1", [mailbox_id])?;
    note_uidvalidity(conn, v)
}

/// Whether a mailbox other than `mailbox_id` has UIDVALIDITY `v`.
pub(super) fn uidvalidity_used_elsewhere(
    conn: &Connection,
    mailbox_id: i64,
    v: u32,
) -> Result<bool> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM mailboxes WHERE uidvalidity=?1 AND id!=?2",
        params![i64::from(v), mailbox_id],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

/// The columns of a message row needed to sync and rename.
#[derive(Debug, Clone)]
pub(super) struct FileRow {
    pub uid: u32,
    pub flags: Flags,
    pub modseq: u64,
    pub fname: String,
    pub size: u64,
    pub wire_size: u64,
    pub internal_date: i64,
}

fn file_row(r: &Row<'_>) -> rusqlite::Result<FileRow> {
    let bits: i64 = r.get(1)?;
    let kw: String = r.get(2)?;
    Ok(FileRow {
        uid: u32_col(r, 0)?,
        flags: Flags::from_stored(u8::try_from(bits & 0xff).unwrap_or(0), &kw),
        modseq: u64_col(r, 3)?,
        fname: r.get(4)?,
        size: u64_col(r, 5)?,
        internal_date: r.get(6)?,
        wire_size: wire_col(r, 7, 5)?,
    })
}

/// A wire size column; an unknown one (-1, from an index of schema version 1) reads as the
/// stored size until [`unknown_wire_sizes`] has been filled in.
fn wire_col(r: &Row<'_>, col: usize, size_col: usize) -> rusqlite::Result<u64> {
    let v: i64 = r.get(col)?;
    match u64::try_from(v) {
        Ok(v) => Ok(v),
        Err(_) => u64_col(r, size_col),
    }
}

/// Messages whose wire size is not known yet: (mailbox id, uid, file name).
pub(super) fn unknown_wire_sizes(conn: &Connection) -> Result<Vec<(i64, u32, String)>> {
    let mut st =
        conn.prepare_cached("SELECT mailbox_id, uid, fname FROM messages WHERE wsize<0")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, u32_col(r, 1)?, r.get(2)?)))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Records a message's wire size.
pub(super) fn set_wire_size(
    conn: &Connection,
    mailbox_id: i64,
    uid: u32,
    wire_size: u64,
) -> Result<()> {
    conn.prepare_cached("UPDATE messages SET wsize=?3 WHERE mailbox_id=?1 AND uid=?2")?
        .execute(params![mailbox_id, i64::from(uid), sql_u64(wire_size)])?;
    Ok(())
}

/// uid and file name of every message of a mailbox (the cheap listing a sync compares).
pub(super) fn scan_rows(conn: &Connection, mailbox_id: i64) -> Result<Vec<(u32, String)>> {
    let mut st = conn.prepare_cached("SELECT uid, fname FROM messages WHERE mailbox_id=?1")?;
    let rows = st.query_map([mailbox_id], |r| Ok((u32_col(r, 0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// File rows for the messages of `uids` ranges.
pub(super) fn file_rows_in(
    conn: &Connection,
    mailbox_id: i64,
    ranges: &[(u32, u32)],
) -> Result<Vec<FileRow>> {
    let mut st = conn.prepare_cached(
        "SELECT uid, sysflags, keywords, modseq, fname, size, internaldate, wsize FROM messages
         WHERE mailbox_id=?1 AND uid BETWEEN ?2 AND ?3 ORDER BY uid",
    )?;
    let mut out = Vec::new();
    for &(a, b) in ranges {
        let rows = st.query_map(params![mailbox_id, i64::from(a), i64::from(b)], file_row)?;
        for r in rows {
            out.push(r?);
        }
    }
    Ok(out)
}

/// One file row by uid.
pub(super) fn file_row_by_uid(
    conn: &Connection,
    mailbox_id: i64,
    uid: u32,
) -> Result<Option<FileRow>> {
    let mut st = conn.prepare_cached(
        "SELECT uid, sysflags, keywords, modseq, fname, size, internaldate, wsize FROM messages
         WHERE mailbox_id=?1 AND uid=?2",
    )?;
    Ok(st
        .query_row(params![mailbox_id, i64::from(uid)], file_row)
        .optional()?)
}

fn fname_size(r: &Row<'_>) -> rusqlite::Result<(String, u64)> {
    Ok((r.get(0)?, u64_col(r, 1)?))
}

/// The file name and size of a message (the fetch path: no flag decoding).
pub(super) fn file_by_uid(
    conn: &Connection,
    mailbox_id: i64,
    uid: u32,
) -> Result<Option<(String, u64)>> {
    let mut st =
        conn.prepare_cached("SELECT fname, size FROM messages WHERE mailbox_id=?1 AND uid=?2")?;
    Ok(st
        .query_row(params![mailbox_id, i64::from(uid)], fname_size)
        .optional()?)
}

/// The file name and size of a message by mailbox name: one statement, so a lone read
/// needs no explicit transaction.
pub(super) fn file_by_name_uid(
    conn: &Connection,
    mailbox: &str,
    uid: u32,
) -> Result<Option<(String, u64)>> {
    let mut st = conn.prepare_cached(
        "SELECT m.fname, m.size FROM mailboxes b JOIN messages m ON m.mailbox_id = b.id
         WHERE b.name = ?1 AND m.uid = ?2",
    )?;
    Ok(st
        .query_row(params![mailbox, i64::from(uid)], fname_size)
        .optional()?)
}

/// A message row to insert.
#[derive(Debug, Clone)]
pub(super) struct NewMessage<'a> {
    pub uid: u32,
    pub flags: &'a Flags,
    pub modseq: u64,
    pub internal_date: i64,
    pub size: u64,
    /// Size with CRLF line ends (see [`crate::maildir::files::wire_size`]).
    pub wire_size: u64,
    pub fname: &'a str,
    pub recent: bool,
    /// The delivery key (idempotent delivery), if the message was placed by one.
    pub dkey: Option<&'a str>,
}

/// Inserts a message row.
pub(super) fn insert_message(conn: &Connection, mailbox_id: i64, m: &NewMessage<'_>) -> Result<()> {
    let mut st = conn.prepare_cached(
        "INSERT INTO messages(mailbox_id, uid, sysflags, keywords, modseq, internaldate, size,
         fname, recent, dkey, wsize) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    st.execute(params![
        mailbox_id,
        i64::from(m.uid),
        i64::from(m.flags.system().bits()),
        m.flags.keywords_joined(),
        sql_u64(m.modseq),
        m.internal_date,
        sql_u64(m.size),
        m.fname,
        m.recent,
        m.dkey,
        sql_u64(m.wire_size)
    ])?;
    Ok(())
}

/// The UID and MODSEQ of the message placed with delivery key `key`, if any.
pub(super) fn message_by_key(
    conn: &Connection,
    mailbox_id: i64,
    key: &str,
) -> Result<Option<(u32, u64)>> {
    // Without statistics the planner prefers the primary key (a scan of the whole mailbox
    // per delivery); the partial index answers in one probe.
    let mut st = conn.prepare_cached(
        "SELECT uid, modseq FROM messages INDEXED BY messages_dkey
         WHERE mailbox_id=?1 AND dkey=?2 LIMIT 1",
    )?;
    Ok(st
        .query_row(params![mailbox_id, key], |r| {
            Ok((u32_col(r, 0)?, u64_col(r, 1)?))
        })
        .optional()?)
}

/// Updates flags, modseq and file name of a message.
pub(super) fn update_flags(
    conn: &Connection,
    mailbox_id: i64,
    uid: u32,
    flags: &Flags,
    modseq: u64,
    fname: &str,
) -> Result<()> {
    let mut st = conn.prepare_cached(
        "UPDATE messages SET sysflags=?3, keywords=?4, modseq=?5, fname=?6
         WHERE mailbox_id=?1 AND uid=?2",
    )?;
    st.execute(params![
        mailbox_id,
        i64::from(uid),
        i64::from(flags.system().bits()),
        flags.keywords_joined(),
        sql_u64(modseq),
        fname
    ])?;
    Ok(())
}

/// Updates only the file name (the file moved, its flags did not change).
pub(super) fn update_fname(
    conn: &Connection,
    mailbox_id: i64,
    uid: u32,
    fname: &str,
) -> Result<()> {
    let mut st =
        conn.prepare_cached("UPDATE messages SET fname=?3 WHERE mailbox_id=?1 AND uid=?2")?;
    st.execute(params![mailbox_id, i64::from(uid), fname])?;
    Ok(())
}

/// Deletes a message row and records its tombstone.
pub(super) fn expunge_row(conn: &Connection, mailbox_id: i64, uid: u32, modseq: u64) -> Result<()> {
    let mut del = conn.prepare_cached("DELETE FROM messages WHERE mailbox_id=?1 AND uid=?2")?;
    del.execute(params![mailbox_id, i64::from(uid)])?;
    let mut ins = conn.prepare_cached(
        "INSERT INTO tombstones(mailbox_id, uid, modseq) VALUES(?1, ?2, ?3)
         ON CONFLICT(mailbox_id, uid) DO UPDATE SET modseq=excluded.modseq",
    )?;
    ins.execute(params![mailbox_id, i64::from(uid), sql_u64(modseq)])?;
    Ok(())
}

const META_COLS: &str = "uid, sysflags, keywords, modseq, internaldate, size, recent, wsize";

fn meta_from_row(r: &Row<'_>) -> rusqlite::Result<MessageMeta> {
    let bits: i64 = r.get(1)?;
    let kw: String = r.get(2)?;
    Ok(MessageMeta {
        uid: u32_col(r, 0)?,
        flags: Flags::from_stored(u8::try_from(bits & 0xff).unwrap_or(0), &kw),
        modseq: u64_col(r, 3)?,
        internal_date: r.get(4)?,
        size: u64_col(r, 5)?,
        recent: r.get(6)?,
        wire_size: wire_col(r, 7, 5)?,
    })
}

/// Every message of a mailbox, ascending uid.
pub(super) fn messages(conn: &Connection, mailbox_id: i64) -> Result<Vec<MessageMeta>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {META_COLS} FROM messages WHERE mailbox_id=?1 ORDER BY uid"
    ))?;
    let rows = st.query_map([mailbox_id], meta_from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// One message.
pub(super) fn message(conn: &Connection, mailbox_id: i64, uid: u32) -> Result<Option<MessageMeta>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {META_COLS} FROM messages WHERE mailbox_id=?1 AND uid=?2"
    ))?;
    Ok(st
        .query_row(params![mailbox_id, i64::from(uid)], meta_from_row)
        .optional()?)
}

/// Messages with modseq above `since`, ascending uid.
pub(super) fn messages_changed_since(
    conn: &Connection,
    mailbox_id: i64,
    since: u64,
) -> Result<Vec<MessageMeta>> {
    if since == 0 {
        // Everything: a table scan in uid order beats the modseq index.
        return messages(conn, mailbox_id);
    }
    let mut st = conn.prepare_cached(&format!(
        "SELECT {META_COLS} FROM messages WHERE mailbox_id=?1 AND modseq>?2 ORDER BY uid"
    ))?;
    let rows = st.query_map(params![mailbox_id, sql_u64(since)], meta_from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Tombstoned uids with modseq above `since`, ascending.
pub(super) fn vanished_since(conn: &Connection, mailbox_id: i64, since: u64) -> Result<Vec<u32>> {
    let mut st = conn.prepare_cached(
        "SELECT uid FROM tombstones WHERE mailbox_id=?1 AND modseq>?2 ORDER BY uid",
    )?;
    let rows = st.query_map(params![mailbox_id, sql_u64(since)], |r| u32_col(r, 0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Tombstones kept per mailbox for RFC 7162 VANISHED (EARLIER).
pub(super) const TOMBSTONES_KEPT: u32 = 10_000;

/// Drops all but the newest `keep` tombstones of a mailbox and raises its `exact_since`, so
/// that a client resynchronising from before the cut gets every UID that is not there
/// instead (RFC 7162 §3.2.5.2 allows that); clients from after it still get exact answers.
pub(super) fn prune_tombstones(conn: &Connection, mb: &mut MailboxRow, keep: u32) -> Result<()> {
    let mut st = conn.prepare_cached(
        "SELECT modseq FROM tombstones WHERE mailbox_id=?1 ORDER BY modseq DESC LIMIT 1 OFFSET ?2",
    )?;
    let cut = st
        .query_row(params![mb.id, keep], |r| u64_col(r, 0))
        .optional()?;
    if let Some(cut) = cut {
        conn.prepare_cached("DELETE FROM tombstones WHERE mailbox_id=?1 AND modseq<=?2")?
            .execute(params![mb.id, sql_u64(cut)])?;
        mb.exact_since = mb.exact_since.max(cut);
    }
    Ok(())
}

/// Every uid of a mailbox, ascending.
pub(super) fn uids(conn: &Connection, mailbox_id: i64) -> Result<Vec<u32>> {
    let mut st =
        conn.prepare_cached("SELECT uid FROM messages WHERE mailbox_id=?1 ORDER BY uid")?;
    let rows = st.query_map([mailbox_id], |r| u32_col(r, 0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// (messages, unseen, deleted, recent, size) of a mailbox.
pub(super) fn counts(conn: &Connection, mailbox_id: i64) -> Result<(u32, u32, u32, u32, u64)> {
    let mut st = conn.prepare_cached(
        "SELECT COUNT(*), COALESCE(SUM((sysflags & 1) = 0), 0),
                COALESCE(SUM((sysflags & 8) != 0), 0), COALESCE(SUM(recent), 0),
                COALESCE(SUM(CASE WHEN wsize >= 0 THEN wsize ELSE size END), 0)
         FROM messages WHERE mailbox_id=?1",
    )?;
    Ok(st.query_row([mailbox_id], |r| {
        Ok((
            u32_col(r, 0)?,
            u32_col(r, 1)?,
            u32_col(r, 2)?,
            u32_col(r, 3)?,
            u64_col(r, 4)?,
        ))
    })?)
}

/// Whether a mailbox has at least `n` messages (stops reading at the `n`th, unlike COUNT).
pub(super) fn has_at_least(conn: &Connection, mailbox_id: i64, n: usize) -> Result<bool> {
    let Some(offset) = n.checked_sub(1) else {
        return Ok(true);
    };
    Ok(conn
        .prepare_cached("SELECT 1 FROM messages WHERE mailbox_id=?1 LIMIT 1 OFFSET ?2")?
        .query_row(params![mailbox_id, offset as i64], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The messages with a UID above `after`, in UID order.
pub(super) fn messages_after(
    conn: &Connection,
    mailbox_id: i64,
    after: u32,
) -> Result<Vec<MessageMeta>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {META_COLS} FROM messages WHERE mailbox_id=?1 AND uid>?2 ORDER BY uid"
    ))?;
    let rows = st.query_map(params![mailbox_id, i64::from(after)], meta_from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Clears the recent marks of the messages with a UID above `after`.
pub(super) fn clear_recent_after(conn: &Connection, mailbox_id: i64, after: u32) -> Result<usize> {
    Ok(conn.execute(
        "UPDATE messages SET recent=0 WHERE mailbox_id=?1 AND uid>?2 AND recent!=0",
        params![mailbox_id, i64::from(after)],
    )?)
}

/// Clears the recent mark of every message in a mailbox; returns how many were recent.
pub(super) fn clear_recent(conn: &Connection, mailbox_id: i64) -> Result<usize> {
    Ok(conn.execute(
        "UPDATE messages SET recent=0 WHERE mailbox_id=?1 AND recent!=0",
        [mailbox_id],
    )?)
}

/// (bytes, messages) over the whole account.
pub(super) fn usage(conn: &Connection) -> Result<(u64, u64)> {
    Ok(conn.query_row(
        "SELECT COALESCE(SUM(size), 0), COUNT(*) FROM messages",
        [],
        |r| Ok((u64_col(r, 0)?, u64_col(r, 1)?)),
    )?)
}

/// Subscribed names, sorted.
pub(super) fn subscriptions(conn: &Connection) -> Result<Vec<String>> {
    let mut st = conn.prepare_cached("SELECT name FROM subscriptions ORDER BY name")?;
    let rows = st.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Adds or removes a subscription; returns true if something changed.
pub(super) fn set_subscribed(conn: &Connection, name: &str, on: bool) -> Result<bool> {
    let n = if on {
        conn.execute(
            "INSERT OR IGNORE INTO subscriptions(name) VALUES(?1)",
            [name],
        )?
    } else {
        conn.execute("DELETE FROM subscriptions WHERE name=?1", [name])?
    };
    Ok(n > 0)
}

#[cfg(test)]
mod tombstone_tests {
    use super::*;

    /// Pruning keeps the newest tombstones and moves `exact_since` to the cut, so VANISHED
    /// since any later MODSEQ stays exact.
    #[test]
    fn prune_keeps_the_newest_and_moves_exact_since() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(dir.path(), true).unwrap();
        let id = insert_mailbox(&conn, "INBOX", 1, 1, 1, None, 0).unwrap();
        let mut mb = mailbox(&conn, "INBOX").unwrap().unwrap();
        assert_eq!(mb.id, id);
        for uid in 1..=10u32 {
            expunge_row(&conn, id, uid, u64::from(uid) + 100).unwrap();
        }
        prune_tombstones(&conn, &mut mb, 4).unwrap();
        assert_eq!(mb.exact_since, 106);
        assert_eq!(vanished_since(&conn, id, 106).unwrap(), [7, 8, 9, 10]);
        assert_eq!(vanished_since(&conn, id, 0).unwrap(), [7, 8, 9, 10]);
        prune_tombstones(&conn, &mut mb, 4).unwrap();
        assert_eq!(mb.exact_since, 106, "nothing more to drop");
    }
}

#[cfg(test)]
mod migration_tests {
    use super::*;

    /// A version 1 index gains the wire-size column, with every size unknown until the store
    /// fills them in.
    #[test]
    fn version_1_gains_wire_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(dir.path(), true).unwrap();
        let id = insert_mailbox(&conn, "INBOX", 1, 2, 1, None, 0).unwrap();
        let flags = Flags::new();
        insert_message(
            &conn,
            id,
            &NewMessage {
                uid: 1,
                flags: &flags,
                modseq: 1,
                internal_date: 0,
                size: 10,
                wire_size: 12,
                fname: "cur/x:2,",
                recent: false,
                dkey: None,
            },
        )
        .unwrap();
        // Make it a version 1 index again.
        conn.execute_batch(
            "DROP INDEX messages_unknown_wsize;
             ALTER TABLE messages DROP COLUMN wsize;
             UPDATE meta SET value=1 WHERE key='schema';",
        )
        .unwrap();
        drop(conn);
        let conn = open(dir.path(), false).unwrap();
        assert_eq!(
            unknown_wire_sizes(&conn).unwrap(),
            [(id, 1, "cur/x:2,".into())]
        );
        // Unknown reads as the stored size meanwhile.
        assert_eq!(messages(&conn, id).unwrap()[0].wire_size, 10);
        set_wire_size(&conn, id, 1, 12).unwrap();
        assert!(unknown_wire_sizes(&conn).unwrap().is_empty());
        let v: i64 = conn
            .query_row("SELECT value FROM meta WHERE key='schema'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
    }
}
