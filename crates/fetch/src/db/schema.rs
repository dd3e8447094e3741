//! The fetch database's schema and its migrations.
//!
//! The version lives in `PRAGMA user_version`, and `PRAGMA application_id` marks the file as
//! postern's fetch database. Entry `i` of [`MIGRATIONS`] takes the schema from version `i` to
//! `i + 1`; all pending ones run in one immediate transaction, so a CLI and `serve` opening a
//! fresh file at once cannot both create the tables.

use rusqlite::{Connection, TransactionBehavior};

/// `PRAGMA application_id` of a postern fetch database ("PSTF").
const APPLICATION_ID: i64 = 0x5053_5446;

/// Migration `i` upgrades schema version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // Version 1.
    "
    -- The accounts of `postern fetch add`. AUTOINCREMENT: an id is never given out twice,
    -- so a removed account's id cannot inherit anything.
    CREATE TABLE accounts (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        local     TEXT NOT NULL COLLATE NOCASE,  -- the local owner's address
        url       TEXT NOT NULL,                 -- RemoteUrl in canonical (Display) form
        options   TEXT NOT NULL,                 -- FetchOptions as JSON
        password  TEXT NOT NULL,                 -- 'v1:' base64(nonce | AES-256-GCM ciphertext)
        created   INTEGER NOT NULL,              -- Unix seconds
        UNIQUE (local, url)
    );

    -- Remote messages delivered already, per account id (a number or 'config:NAME') and
    -- remote folder.
    CREATE TABLE seen (
        account_id      TEXT NOT NULL,
        folder          TEXT NOT NULL,
        id              TEXT NOT NULL,           -- POP3 UIDL or IMAP UID
        fingerprint     TEXT,                    -- IMAP: survives a UIDVALIDITY change
        delete_pending  INTEGER NOT NULL CHECK (delete_pending IN (0, 1)),
        PRIMARY KEY (account_id, folder, id)
    ) WITHOUT ROWID;

    -- The remote UIDVALIDITY the ids of `seen` belong to (IMAP).
    CREATE TABLE folders (
        account_id   TEXT NOT NULL,
        folder       TEXT NOT NULL,
        uidvalidity  INTEGER,
        PRIMARY KEY (account_id, folder)
    ) WITHOUT ROWID;

    -- The outcome of the runs of every account (configuration ones too).
    CREATE TABLE status (
        account_id       TEXT PRIMARY KEY NOT NULL,
        last_run_ms      INTEGER,               -- Unix milliseconds
        last_success_ms  INTEGER,
        last_error       TEXT,
        failures         INTEGER NOT NULL DEFAULT 0,
        total_fetched    INTEGER NOT NULL DEFAULT 0,
        total_bytes      INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;

    -- Small named values: 'key_check' is a constant sealed with the key of fetch.key, which
    -- tells a wrong key file from a damaged password.
    CREATE TABLE meta (
        name   TEXT PRIMARY KEY NOT NULL,
        value  TEXT NOT NULL
    ) WITHOUT ROWID;
    ",
];

/// Newest schema version this build knows.
const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the schema up to date; the error says what is wrong with the file.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), String> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| e.to_string())?;
    let app_id: i64 = tx
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if app_id != 0 && app_id != APPLICATION_ID {
        return Err(format!(
            "the file is not postern's fetch database (application_id {app_id:#x})"
        ));
    }
    if app_id == 0 && version == 0 {
        let tables: i64 = tx
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| e.to_string())?;
        if tables != 0 {
            return Err("the file is an SQLite database of some other program".into());
        }
    }
    if version > SCHEMA_VERSION {
        return Err(format!(
            "schema version {version} is newer than this postern knows ({SCHEMA_VERSION}): \
             run the newer postern, or restore a backup"
        ));
    }
    if version < 0 {
        return Err(format!("negative schema version {version}"));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql).map_err(|e| e.to_string())?;
        let next = i as i64 + 1;
        tx.execute_batch(&format!("PRAGMA user_version = {next}"))
            .map_err(|e| e.to_string())?;
        tracing::info!(version = next, "fetch database schema migrated");
    }
    tx.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID}"))
        .map_err(|e| e.to_string())?;
    tx.commit().map_err(|e| e.to_string())
}
