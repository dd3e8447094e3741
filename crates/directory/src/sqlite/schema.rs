//! The SQLite schema and its migrations.
//!
//! The schema version lives in `PRAGMA user_version`; `PRAGMA application_id`
//! marks the file as a postern directory. Each entry of [`MIGRATIONS`] takes the
//! database from version `i` to `i + 1` and runs in one immediate transaction, so
//! two processes opening a fresh file at once cannot both create the tables.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{DirectoryError, Result};

/// `PRAGMA application_id` of a postern directory database ("PSTD").
pub(crate) const APPLICATION_ID: i64 = 0x5053_5444;

/// Migration `i` upgrades schema version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // Version 1.
    "
    CREATE TABLE domains (
        name        TEXT PRIMARY KEY NOT NULL,   -- ASCII (A-label) form, lowercase
        created_at  INTEGER NOT NULL             -- Unix seconds
    ) WITHOUT ROWID;

    CREATE TABLE accounts (
        address       TEXT PRIMARY KEY NOT NULL, -- normalised local@domain
        local_part    TEXT NOT NULL,
        domain        TEXT NOT NULL REFERENCES domains(name),
        password_hash TEXT NOT NULL,             -- argon2id PHC or imported crypt(3) string
        created_at    INTEGER NOT NULL,
        enabled       INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
        quota_bytes   INTEGER CHECK (quota_bytes IS NULL OR quota_bytes >= 0)
    );
    CREATE INDEX accounts_by_domain ON accounts(domain, local_part);

    -- The POP3 APOP shared secret (RFC 1939 §7) is necessarily reversible, so it is
    -- kept apart from the login hash and only exists when an admin sets one.
    CREATE TABLE apop_secrets (
        address  TEXT PRIMARY KEY NOT NULL REFERENCES accounts(address) ON DELETE CASCADE,
        secret   TEXT NOT NULL
    ) WITHOUT ROWID;

    -- One row per alias -> target pair. The catch-all of a domain has address '@domain'.
    CREATE TABLE aliases (
        address     TEXT NOT NULL,
        domain      TEXT NOT NULL REFERENCES domains(name),
        target      TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        PRIMARY KEY (address, target)
    ) WITHOUT ROWID;
    CREATE INDEX aliases_by_domain ON aliases(domain, address);
    ",
    // Version 2.
    "
    -- SCRAM keys (RFC 5802 §3): derived from the plaintext password whenever one is set
    -- or verified, so an account whose hash was imported has none until its next
    -- PLAIN/LOGIN/USER login. One row per account and SCRAM hash (only 'SCRAM-SHA-256'
    -- today; -PLUS uses the same keys). Never shown by the admin commands.
    CREATE TABLE scram_keys (
        address     TEXT NOT NULL REFERENCES accounts(address) ON DELETE CASCADE,
        mechanism   TEXT NOT NULL,
        salt        BLOB NOT NULL,
        iterations  INTEGER NOT NULL CHECK (iterations >= 4096),
        stored_key  BLOB NOT NULL,
        server_key  BLOB NOT NULL,
        PRIMARY KEY (address, mechanism)
    ) WITHOUT ROWID;

    -- Random keys of this directory, made on first use (e.g. 'scram-decoy', which
    -- derives the salts answered for unknown accounts).
    CREATE TABLE secrets (
        name   TEXT PRIMARY KEY NOT NULL,
        value  BLOB NOT NULL
    ) WITHOUT ROWID;
    ",
    // Version 3.
    "
    -- Where an alias entry came from: NULL for `postern alias add` (and domain add), else
    -- 'file:' and the path of the aliases(5) file `postern newaliases` imported it from.
    -- newaliases replaces exactly the entries of its file and never touches the others.
    ALTER TABLE aliases ADD COLUMN source TEXT;
    CREATE INDEX aliases_by_source ON aliases(source) WHERE source IS NOT NULL;
    ",
];

/// Newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Sets connection pragmas and brings the schema up to date.
pub(crate) fn prepare(conn: &mut Connection, file_backed: bool) -> Result<()> {
    if file_backed {
        // journal_mode answers with a row; WAL lets the CLI write while the
        // server reads.
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(mode, "directory database is not in WAL mode");
        }
    }
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;")?;
    migrate(conn)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let app_id: i64 = tx.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if app_id != 0 && app_id != APPLICATION_ID {
        return Err(DirectoryError::Corrupt(format!(
            "the file is not a postern directory (application_id {app_id:#x})"
        )));
    }
    if app_id == 0 && version == 0 {
        let tables: i64 = tx.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )?;
        if tables != 0 {
            return Err(DirectoryError::Corrupt(
                "the file is an SQLite database of some other program".into(),
            ));
        }
    }
    if version > SCHEMA_VERSION {
        return Err(DirectoryError::SchemaTooNew {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version < 0 {
        return Err(DirectoryError::Corrupt(format!(
            "negative schema version {version}"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql)?;
        let next = i as i64 + 1;
        tx.execute_batch(&format!("PRAGMA user_version = {next}"))?;
        tracing::info!(version = next, "directory schema migrated");
    }
    tx.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID}"))?;
    tx.commit()?;
    Ok(())
}
