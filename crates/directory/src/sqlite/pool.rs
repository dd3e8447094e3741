//! The connections of one SQLite directory: one writer and a few readers.
//!
//! In WAL mode readers do not block each other nor the writer, so lookups on the
//! SMTP RCPT path, the router and logins of every protocol run side by side instead
//! of queueing behind one mutex. Readers are opened lazily, up to the configured
//! number; a reader that finds none free waits for one. A private in-memory
//! database cannot be shared between connections, so there every read uses the
//! writer.

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// The writer and the idle readers.
pub(crate) struct Pool {
    writer: Mutex<Connection>,
    /// The database file; `None` for in-memory databases (no readers then).
    path: Option<PathBuf>,
    max_readers: usize,
    busy_timeout: Duration,
    readers: Mutex<Readers>,
    returned: Condvar,
}

struct Readers {
    idle: Vec<Connection>,
    /// Readers opened so far (idle or lent out).
    opened: usize,
}

/// A connection lent for reading: a pooled reader, or the writer when there is none.
pub(crate) enum ReadGuard<'p> {
    /// A reader, given back to the pool on drop.
    Reader(&'p Pool, Option<Connection>),
    /// The writer (in-memory databases, or when a reader cannot be opened).
    Writer(MutexGuard<'p, Connection>),
}

impl Deref for ReadGuard<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        match self {
            ReadGuard::Reader(_, Some(c)) => c,
            ReadGuard::Reader(_, None) => {
                unreachable!("a read guard's connection is only taken when it is dropped")
            }
            ReadGuard::Writer(g) => g,
        }
    }
}

impl Drop for ReadGuard<'_> {
    fn drop(&mut self) {
        if let ReadGuard::Reader(pool, conn) = self {
            if let Some(conn) = conn.take() {
                pool.give_back(conn);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a connection cannot leave it inconsistent
    // (transactions roll back on drop), so poisoning is ignored.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pool {
    /// A pool around the prepared `writer`, with up to `max_readers` readers of `path`.
    pub(crate) fn new(
        writer: Connection,
        path: Option<PathBuf>,
        max_readers: usize,
        busy_timeout: Duration,
    ) -> Pool {
        Pool {
            writer: Mutex::new(writer),
            max_readers: if path.is_some() { max_readers } else { 0 },
            path,
            busy_timeout,
            readers: Mutex::new(Readers {
                idle: Vec::new(),
                opened: 0,
            }),
            returned: Condvar::new(),
        }
    }

    /// The writer connection.
    pub(crate) fn writer(&self) -> MutexGuard<'_, Connection> {
        lock(&self.writer)
    }

    /// A connection for reading.
    pub(crate) fn read(&self) -> ReadGuard<'_> {
        if self.max_readers == 0 {
            return ReadGuard::Writer(self.writer());
        }
        let mut readers = lock(&self.readers);
        loop {
            if let Some(conn) = readers.idle.pop() {
                return ReadGuard::Reader(self, Some(conn));
            }
            if readers.opened < self.max_readers {
                readers.opened += 1;
                drop(readers);
                return match self.open_reader() {
                    Ok(conn) => ReadGuard::Reader(self, Some(conn)),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot open a directory read connection");
                        lock(&self.readers).opened -= 1;
                        ReadGuard::Writer(self.writer())
                    }
                };
            }
            readers = self
                .returned
                .wait(readers)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    fn open_reader(&self) -> rusqlite::Result<Connection> {
        let Some(path) = &self.path else {
            return Err(rusqlite::Error::InvalidPath(PathBuf::new()));
        };
        // Read-write open (a read-only one cannot create the WAL index), but
        // `query_only` makes any write through it fail.
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(self.busy_timeout)?;
        conn.execute_batch("PRAGMA query_only = ON;")?;
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        lock(&self.readers).idle.push(conn);
        self.returned.notify_one();
    }
}
