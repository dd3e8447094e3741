//! The answers of the hot lookups (recipient resolution, local domains, accounts) kept in
//! memory, so the SMTP RCPT path, the router and local delivery need no blocking thread for a
//! lookup answered before.
//!
//! Every use first asks SQLite whether the database changed since the answers were cached:
//! `PRAGMA data_version` on a connection of the cache's own changes whenever any other
//! connection, in this process or another (`postern user add` while `serve` runs), commits a
//! change (<https://sqlite.org/pragma.html#pragma_data_version>). In WAL mode that reads the
//! shared-memory WAL index: no file I/O, a few microseconds. A change drops every answer, so the
//! cache never answers differently from the database.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags};

use crate::directory::{Account, Resolution};

/// Answers kept before the cache starts over (a bound on memory, not a tuning knob: a server
/// with more distinct recipients than this simply looks the rest up).
const MAX_ENTRIES: usize = 50_000;

/// The cached answers, valid for one `data_version` of the database.
#[derive(Default)]
pub(super) struct Entries {
    version: i64,
    resolve: HashMap<String, Resolution>,
    domains: HashMap<String, bool>,
    accounts: HashMap<String, Option<Account>>,
}

impl Entries {
    fn len(&self) -> usize {
        self.resolve.len() + self.domains.len() + self.accounts.len()
    }

    fn clear(&mut self, version: i64) {
        self.version = version;
        self.resolve.clear();
        self.domains.clear();
        self.accounts.clear();
    }
}

/// A stamp of the database version an answer was computed under: an answer is kept only if no
/// change happened between [`LookupCache::stamp`] and [`LookupCache::put`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Stamp(i64);

/// A kind of answer the cache keeps, each in a map of its own.
pub(super) trait Cached: Clone + Send + 'static {
    /// This kind's map.
    fn slot(entries: &mut Entries) -> &mut HashMap<String, Self>;
}

impl Cached for Resolution {
    fn slot(entries: &mut Entries) -> &mut HashMap<String, Self> {
        &mut entries.resolve
    }
}

impl Cached for bool {
    fn slot(entries: &mut Entries) -> &mut HashMap<String, Self> {
        &mut entries.domains
    }
}

impl Cached for Option<Account> {
    fn slot(entries: &mut Entries) -> &mut HashMap<String, Self> {
        &mut entries.accounts
    }
}

/// The cache of one database file. Without a file (an in-memory directory) it is off.
pub(super) struct LookupCache {
    /// The connection whose `data_version` is watched; `None`: no cache.
    watch: Option<Mutex<Connection>>,
    entries: Mutex<Entries>,
}

impl LookupCache {
    /// A cache for the database at `path`; off when `path` is `None` or cannot be opened.
    pub(super) fn new(path: Option<&Path>) -> LookupCache {
        let watch = path.and_then(|p| {
            let conn = Connection::open_with_flags(
                p,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .and_then(|c| {
                c.execute_batch("PRAGMA query_only = ON;")?;
                Ok(c)
            });
            match conn {
                Ok(c) => Some(Mutex::new(c)),
                Err(e) => {
                    tracing::warn!(error = %e, "directory lookups are not cached: cannot open a watch connection");
                    None
                }
            }
        });
        LookupCache {
            watch,
            entries: Mutex::new(Entries::default()),
        }
    }

    /// The database's version now, with every answer of an older version dropped; `None` when
    /// the cache is off or busy (another task is checking: look the answer up instead of
    /// waiting).
    pub(super) fn stamp(&self) -> Option<Stamp> {
        let conn = self.watch.as_ref()?.try_lock().ok()?;
        let version: i64 = conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .ok()?;
        drop(conn);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.version != version {
            entries.clear(version);
        }
        Some(Stamp(version))
    }

    /// The answer cached for `key` under `stamp`'s version.
    pub(super) fn get<T: Cached>(&self, stamp: Stamp, key: &str) -> Option<T> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.version != stamp.0 {
            return None;
        }
        T::slot(&mut entries).get(key).cloned()
    }

    /// Keeps `answer` for `key`, unless the database changed since `stamp`.
    pub(super) fn put<T: Cached>(&self, stamp: Stamp, key: String, answer: T) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.version != stamp.0 {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear(stamp.0);
        }
        T::slot(&mut entries).insert(key, answer);
    }
}
