//! The SQLite implementation of [`FetchState`] and [`Accounts`]: `data_dir/fetch.db`, with
//! the remote passwords of `postern fetch add` encrypted under the key in `data_dir/fetch.key`.
//!
//! - One connection behind a mutex; the async [`FetchState`] methods run it in
//!   `tokio::task::spawn_blocking`, never on a runtime thread. [`Accounts`] is blocking.
//! - WAL mode, so `postern fetch` (another process) and `serve` share the file, and
//!   `synchronous = FULL`: a method that returns has committed durably (the WAL is fsynced).
//!   Every call is one transaction, so a batch of [`FetchState::record`] costs one fsync.
//! - Both files are created 0600. The key (32 bytes from the OS's random generator) is made on
//!   first need, with `O_EXCL`, and refused when others can read it or it is not 32 bytes. A
//!   value sealed with it in the database (`meta.key_check`) tells a key file that does not
//!   belong to this database (a clear error) from a password row that was tampered with.

mod crypto;
mod options;
mod schema;
#[cfg(test)]
mod tests;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use std::fmt;
use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use crate::account::{FetchAccount, Origin, RemoteUrl, Secret};
use crate::error::FetchError;
use crate::state::{AccountStatus, Accounts, FetchState, FolderState, RunReport, SeenMessage};
use crypto::{Key, OpenError};

/// The database file in the data directory.
pub const DB_FILE: &str = "fetch.db";
/// The key file in the data directory.
pub const KEY_FILE: &str = "fetch.key";

/// How long a write waits for another process's transaction (the CLI beside `serve`).
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The associated data of the key check value (account ids are numbers: no clash).
const KEY_CHECK_AAD: &[u8] = b"key-check";
/// The plaintext of the key check value.
const KEY_CHECK_PLAINTEXT: &[u8] = b"postern fetch.key";

/// The fetch database. Cheap to clone (clones share the connection).
#[derive(Clone)]
pub struct SqliteFetchDb {
    inner: Arc<Inner>,
}

struct Inner {
    db_path: PathBuf,
    key_path: PathBuf,
    conn: Mutex<Conn>,
}

/// The connection and, once needed, the key.
struct Conn {
    conn: Connection,
    key: Option<Arc<Key>>,
}

impl fmt::Debug for SqliteFetchDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteFetchDb")
            .field("path", &self.inner.db_path)
            .finish_non_exhaustive()
    }
}

impl SqliteFetchDb {
    /// Opens (creating it if needed) `data_dir/fetch.db`, bringing its schema up to date. The
    /// key file is only read (or created) when a password is stored or read.
    pub fn open(data_dir: &Path) -> Result<SqliteFetchDb, FetchError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .map_err(|e| {
                FetchError::local(format!(
                    "cannot create the data directory {}: {e}",
                    data_dir.display()
                ))
            })?;
        let db_path = data_dir.join(DB_FILE);
        let shown = db_path.display();
        // Created here with mode 0600 whatever the umask; SQLite gives its -wal and -shm
        // files the database file's mode.
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&db_path)
            .map_err(|e| FetchError::local(format!("cannot open {shown}: {e}")))?;
        let mut conn = Connection::open_with_flags(
            &db_path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| FetchError::local(format!("cannot open {shown}: {e}")))?;
        let setup = |conn: &mut Connection| -> Result<(), String> {
            conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| e.to_string())?;
            let mode: String = conn
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                .map_err(|e| e.to_string())?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!(mode, path = %shown, "fetch database is not in WAL mode");
            }
            conn.execute_batch("PRAGMA synchronous = FULL;")
                .map_err(|e| e.to_string())?;
            schema::migrate(conn)
        };
        setup(&mut conn).map_err(|e| FetchError::local(format!("fetch database {shown}: {e}")))?;
        Ok(SqliteFetchDb {
            inner: Arc::new(Inner {
                db_path: db_path.clone(),
                key_path: data_dir.join(KEY_FILE),
                conn: Mutex::new(Conn { conn, key: None }),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.db_path
    }

    /// Runs `f` on the connection in a blocking thread.
    async fn blocking<T, F>(&self, f: F) -> Result<T, FetchError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &mut Conn) -> Result<T, FetchError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.lock();
            f(&inner, &mut conn)
        })
        .await
        .map_err(|e| FetchError::local(format!("fetch database task failed: {e}")))?
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Conn> {
        // A panic mid-call dropped its transaction (rolled back): the connection is sound.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An SQLite failure, naming the file.
    fn err(&self, e: rusqlite::Error) -> FetchError {
        FetchError::local(format!("fetch database {}: {e}", self.db_path.display()))
    }

    /// The key: read from its file, or made when the database holds nothing sealed yet, and
    /// checked against the database.
    fn key(&self, c: &mut Conn) -> Result<Arc<Key>, FetchError> {
        if let Some(key) = &c.key {
            return Ok(Arc::clone(key));
        }
        let key_shown = self.key_path.display();
        let db_shown = self.db_path.display();
        let bytes = match crypto::read_key_file(&self.key_path)? {
            Some(bytes) => bytes,
            None => {
                let sealed: bool = c
                    .conn
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM accounts) \
                         OR EXISTS (SELECT 1 FROM meta WHERE name = 'key_check')",
                        [],
                        |r| r.get(0),
                    )
                    .map_err(|e| self.err(e))?;
                if sealed {
                    return Err(FetchError::config(format!(
                        "the key file {key_shown} is missing, but {db_shown} holds passwords \
                         encrypted with it: restore the key file from a backup, or remove the \
                         accounts (`postern fetch remove`) and add them again"
                    )));
                }
                crypto::create_key_file(&self.key_path)?
            }
        };
        let key = Key::new(&bytes);
        let tx = c
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let check: Option<String> = tx
            .query_row("SELECT value FROM meta WHERE name = 'key_check'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))?;
        match check {
            Some(sealed) => match key.open(&sealed, KEY_CHECK_AAD) {
                Ok(plain) if plain == KEY_CHECK_PLAINTEXT => {}
                _ => {
                    return Err(FetchError::config(format!(
                        "the key file {key_shown} does not match the database {db_shown} \
                         (its passwords were encrypted with another key): restore the \
                         original key file, or remove the accounts and add them again"
                    )))
                }
            },
            None => {
                let sealed = key.seal(KEY_CHECK_PLAINTEXT, KEY_CHECK_AAD)?;
                tx.execute(
                    "INSERT INTO meta (name, value) VALUES ('key_check', ?1)",
                    params![sealed],
                )
                .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        let key = Arc::new(key);
        c.key = Some(Arc::clone(&key));
        Ok(key)
    }
}

/// Unix milliseconds of `t` (negative before 1970).
fn to_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// The time of Unix milliseconds `ms`.
fn from_ms(ms: i64) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

/// A counter for an SQLite INTEGER column.
fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The row id of an account added with `postern fetch add`, or `None` for another id.
fn row_id(id: &str) -> Option<i64> {
    id.parse::<i64>()
        .ok()
        .filter(|n| *n > 0 && n.to_string() == id)
}

/// Replaces or adds `messages` in a transaction.
fn insert_seen(
    tx: &rusqlite::Transaction<'_>,
    account_id: &str,
    folder: &str,
    messages: &[SeenMessage],
) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT OR REPLACE INTO seen (account_id, folder, id, fingerprint, delete_pending) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for m in messages {
        stmt.execute(params![
            account_id,
            folder,
            m.id,
            m.fingerprint,
            m.delete_pending
        ])?;
    }
    Ok(())
}

#[async_trait]
impl FetchState for SqliteFetchDb {
    async fn load(&self, account_id: &str, folder: &str) -> Result<FolderState, FetchError> {
        let (account_id, folder) = (account_id.to_string(), folder.to_string());
        self.blocking(move |inner, c| {
            let mut load = || -> rusqlite::Result<FolderState> {
                let tx = c.conn.transaction()?;
                let uidvalidity: Option<i64> = tx
                    .query_row(
                        "SELECT uidvalidity FROM folders WHERE account_id = ?1 AND folder = ?2",
                        params![account_id, folder],
                        |r| r.get(0),
                    )
                    .optional()?
                    .flatten();
                let mut state = FolderState {
                    uidvalidity: uidvalidity.and_then(|v| u32::try_from(v).ok()),
                    ..FolderState::default()
                };
                {
                    let mut stmt = tx.prepare_cached(
                        "SELECT id, fingerprint, delete_pending FROM seen \
                         WHERE account_id = ?1 AND folder = ?2",
                    )?;
                    let rows = stmt.query_map(params![account_id, folder], |r| {
                        Ok(SeenMessage {
                            id: r.get(0)?,
                            fingerprint: r.get(1)?,
                            delete_pending: r.get(2)?,
                        })
                    })?;
                    for m in rows {
                        let m = m?;
                        state.seen.insert(m.id.clone(), m);
                    }
                }
                tx.commit()?;
                Ok(state)
            };
            load().map_err(|e| inner.err(e))
        })
        .await
    }

    async fn record(
        &self,
        account_id: &str,
        folder: &str,
        messages: &[SeenMessage],
    ) -> Result<(), FetchError> {
        if messages.is_empty() {
            return Ok(());
        }
        let (account_id, folder) = (account_id.to_string(), folder.to_string());
        let messages = messages.to_vec();
        self.blocking(move |inner, c| {
            let mut record = || -> rusqlite::Result<()> {
                let tx = c
                    .conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)?;
                insert_seen(&tx, &account_id, &folder, &messages)?;
                tx.commit()
            };
            record().map_err(|e| inner.err(e))
        })
        .await
    }

    async fn forget(
        &self,
        account_id: &str,
        folder: &str,
        ids: &[String],
    ) -> Result<(), FetchError> {
        if ids.is_empty() {
            return Ok(());
        }
        let (account_id, folder) = (account_id.to_string(), folder.to_string());
        let ids = ids.to_vec();
        self.blocking(move |inner, c| {
            let mut forget = || -> rusqlite::Result<()> {
                let tx = c
                    .conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)?;
                {
                    let mut stmt = tx.prepare_cached(
                        "DELETE FROM seen WHERE account_id = ?1 AND folder = ?2 AND id = ?3",
                    )?;
                    for id in &ids {
                        stmt.execute(params![account_id, folder, id])?;
                    }
                }
                tx.commit()
            };
            forget().map_err(|e| inner.err(e))
        })
        .await
    }

    async fn replace(
        &self,
        account_id: &str,
        folder: &str,
        state: &FolderState,
    ) -> Result<(), FetchError> {
        let (account_id, folder) = (account_id.to_string(), folder.to_string());
        let uidvalidity = state.uidvalidity;
        let messages: Vec<SeenMessage> = state.seen.values().cloned().collect();
        self.blocking(move |inner, c| {
            let mut replace = || -> rusqlite::Result<()> {
                let tx = c
                    .conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)?;
                tx.execute(
                    "DELETE FROM seen WHERE account_id = ?1 AND folder = ?2",
                    params![account_id, folder],
                )?;
                insert_seen(&tx, &account_id, &folder, &messages)?;
                tx.execute(
                    "INSERT OR REPLACE INTO folders (account_id, folder, uidvalidity) \
                     VALUES (?1, ?2, ?3)",
                    params![account_id, folder, uidvalidity],
                )?;
                tx.commit()
            };
            replace().map_err(|e| inner.err(e))
        })
        .await
    }

    async fn drop_account(&self, account_id: &str) -> Result<(), FetchError> {
        let account_id = account_id.to_string();
        self.blocking(move |inner, c| {
            let mut drop = || -> rusqlite::Result<()> {
                let tx = c
                    .conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)?;
                drop_state(&tx, &account_id)?;
                tx.commit()
            };
            drop().map_err(|e| inner.err(e))
        })
        .await
    }
}

/// Deletes the state and status of an account.
fn drop_state(tx: &rusqlite::Transaction<'_>, account_id: &str) -> rusqlite::Result<()> {
    for table in ["seen", "folders", "status"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE account_id = ?1"),
            params![account_id],
        )?;
    }
    Ok(())
}

impl Accounts for SqliteFetchDb {
    fn add(&self, account: &FetchAccount, password: &Secret) -> Result<FetchAccount, FetchError> {
        let inner = &self.inner;
        let url = account.url.to_string();
        let options = options::encode(&account.options).map_err(|e| {
            FetchError::config(format!("the options of {url} cannot be stored: {e}"))
        })?;
        let created = to_ms(SystemTime::now()) / 1000;
        let mut c = inner.lock();
        let key = inner.key(&mut c)?;
        let tx = c
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| inner.err(e))?;
        let existing: Option<i64> = tx
            .query_row(
                "SELECT id FROM accounts WHERE local = ?1 AND url = ?2",
                params![account.local, url],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| inner.err(e))?;
        if let Some(id) = existing {
            return Err(FetchError::config(format!(
                "{} fetches {url} already (account {id}): remove it first to change it",
                account.local
            )));
        }
        tx.execute(
            "INSERT INTO accounts (local, url, options, password, created) \
             VALUES (?1, ?2, ?3, '', ?4)",
            params![account.local, url, options, created],
        )
        .map_err(|e| inner.err(e))?;
        let id = tx.last_insert_rowid().to_string();
        let sealed = key.seal(password.expose().as_bytes(), id.as_bytes())?;
        tx.execute(
            "UPDATE accounts SET password = ?1 WHERE id = ?2",
            params![sealed, tx.last_insert_rowid()],
        )
        .map_err(|e| inner.err(e))?;
        // Nothing can be there under a fresh id; a hand-edited database is no reason to
        // hand a new account someone else's state.
        drop_state(&tx, &id).map_err(|e| inner.err(e))?;
        tx.commit().map_err(|e| inner.err(e))?;
        Ok(FetchAccount {
            id,
            origin: Origin::Cli,
            ..account.clone()
        })
    }

    fn remove(&self, id: &str) -> Result<bool, FetchError> {
        let Some(row) = row_id(id) else {
            return Ok(false);
        };
        let inner = &self.inner;
        let mut c = inner.lock();
        let tx = c
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| inner.err(e))?;
        let removed = tx
            .execute("DELETE FROM accounts WHERE id = ?1", params![row])
            .map_err(|e| inner.err(e))?;
        if removed == 0 {
            return Ok(false);
        }
        drop_state(&tx, id).map_err(|e| inner.err(e))?;
        tx.commit().map_err(|e| inner.err(e))?;
        Ok(true)
    }

    fn list(&self, local: Option<&str>) -> Result<Vec<FetchAccount>, FetchError> {
        let inner = &self.inner;
        let c = inner.lock();
        let mut stmt = c
            .conn
            .prepare_cached(
                "SELECT id, local, url, options FROM accounts \
                 WHERE ?1 IS NULL OR local = ?1 ORDER BY id",
            )
            .map_err(|e| inner.err(e))?;
        let rows = stmt
            .query_map(params![local], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(|e| inner.err(e))?;
        let mut accounts = Vec::new();
        for row in rows {
            let (id, local, url, options) = row.map_err(|e| inner.err(e))?;
            let url = RemoteUrl::parse(&url).map_err(|e| {
                FetchError::config(format!(
                    "fetch database {}: account {id} has a bad URL: {e}",
                    inner.db_path.display()
                ))
            })?;
            let options = options::decode(&options).map_err(|e| {
                FetchError::config(format!(
                    "fetch database {}: account {id} has bad options: {e}",
                    inner.db_path.display()
                ))
            })?;
            accounts.push(FetchAccount {
                id: id.to_string(),
                local,
                url,
                options,
                origin: Origin::Cli,
            });
        }
        Ok(accounts)
    }

    fn password(&self, id: &str) -> Result<Secret, FetchError> {
        let no_such = || FetchError::config(format!("there is no fetch account {id:?}"));
        let row = row_id(id).ok_or_else(no_such)?;
        let inner = &self.inner;
        let mut c = inner.lock();
        let sealed: String = c
            .conn
            .query_row(
                "SELECT password FROM accounts WHERE id = ?1",
                params![row],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| inner.err(e))?
            .ok_or_else(no_such)?;
        let key = inner.key(&mut c)?;
        let plain = key.open(&sealed, id.as_bytes()).map_err(|e| {
            FetchError::config(match e {
                OpenError::Format => format!(
                    "the stored password of fetch account {id} is not in a format this \
                     postern knows: remove the account and add it again"
                ),
                OpenError::Authentication => format!(
                    "the stored password of fetch account {id} does not decrypt (the row was \
                     changed, or copied from another account): remove the account and add \
                     it again"
                ),
            })
        })?;
        String::from_utf8(plain).map(Secret::new).map_err(|_| {
            FetchError::config(format!(
                "the stored password of fetch account {id} is not UTF-8"
            ))
        })
    }

    fn status(&self, id: &str) -> Result<AccountStatus, FetchError> {
        let inner = &self.inner;
        let c = inner.lock();
        let row = c
            .conn
            .query_row(
                "SELECT last_run_ms, last_success_ms, last_error, failures, total_fetched, \
                 total_bytes FROM status WHERE account_id = ?1",
                params![id],
                |r| {
                    Ok(AccountStatus {
                        last_run: r.get::<_, Option<i64>>(0)?.map(from_ms),
                        last_success: r.get::<_, Option<i64>>(1)?.map(from_ms),
                        last_error: r.get(2)?,
                        failures: u32::try_from(r.get::<_, i64>(3)?).unwrap_or(u32::MAX),
                        total_fetched: r.get::<_, i64>(4)?.max(0) as u64,
                        total_bytes: r.get::<_, i64>(5)?.max(0) as u64,
                    })
                },
            )
            .optional()
            .map_err(|e| inner.err(e))?;
        Ok(row.unwrap_or_default())
    }

    fn record_run(
        &self,
        id: &str,
        at: SystemTime,
        outcome: Result<&RunReport, &FetchError>,
    ) -> Result<(), FetchError> {
        let inner = &self.inner;
        let c = inner.lock();
        let at = to_ms(at);
        let result = match outcome {
            Ok(report) => c.conn.execute(
                "INSERT INTO status (account_id, last_run_ms, last_success_ms, last_error, \
                 failures, total_fetched, total_bytes) VALUES (?1, ?2, ?2, NULL, 0, ?3, ?4) \
                 ON CONFLICT (account_id) DO UPDATE SET \
                 last_run_ms = excluded.last_run_ms, \
                 last_success_ms = excluded.last_success_ms, last_error = NULL, failures = 0, \
                 total_fetched = total_fetched + excluded.total_fetched, \
                 total_bytes = total_bytes + excluded.total_bytes",
                params![id, at, to_i64(report.fetched), to_i64(report.bytes)],
            ),
            Err(error) => c.conn.execute(
                "INSERT INTO status (account_id, last_run_ms, last_success_ms, last_error, \
                 failures, total_fetched, total_bytes) VALUES (?1, ?2, NULL, ?3, 1, 0, 0) \
                 ON CONFLICT (account_id) DO UPDATE SET \
                 last_run_ms = excluded.last_run_ms, last_error = excluded.last_error, \
                 failures = failures + 1",
                params![id, at, error.to_string()],
            ),
        };
        result.map(|_| ()).map_err(|e| inner.err(e))
    }
}
