//! Aliases imported from an aliases(5) file (`postern newaliases`): the file is authoritative
//! for the entries that came from it, and only for those. Each entry carries its origin
//! (`aliases.source`); an import replaces every entry of its source in one transaction, so
//! removing a line and importing again removes that alias, and entries made with
//! `postern alias add` are never changed.

use super::{
    account_exists, alias_exists, domain_exists, now_unix, parse_address, parse_alias_key,
    require_dot_string, Expander, SqliteDirectory,
};
use crate::address::Address;
use crate::error::DirectoryError;
use rusqlite::{params, TransactionBehavior};
use std::collections::BTreeSet;

/// One alias of an aliases(5) file, ready for the directory: `local@domain` and its targets —
/// addresses, `|command` or `/absolute/file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileAlias {
    /// The alias address, `local@domain` in a local domain.
    pub address: String,
    /// Its targets, as the file gave them (bare names already completed with the domain).
    pub targets: Vec<String>,
}

/// What [`SqliteDirectory::replace_file_aliases`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileImport {
    /// Aliases now defined by the file (normalised addresses).
    pub imported: Vec<String>,
    /// Aliases the file defined before and no longer does: removed.
    pub removed: Vec<String>,
    /// Aliases of the file left out, with the reason (an account of that address, or an
    /// alias made with `postern alias add` or by another file).
    pub skipped: Vec<(usize, String)>,
    /// Local targets that are neither an account nor an alias (yet): `(alias index, target)`.
    pub dangling: Vec<(usize, String)>,
}

/// An import refused: nothing was changed. `index` is the alias (in the slice given) the
/// error is about, when it is about one.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct FileAliasError {
    /// Index of the offending [`FileAlias`], if the error concerns one.
    pub index: Option<usize>,
    /// What went wrong.
    #[source]
    pub error: DirectoryError,
}

fn at(index: usize) -> impl Fn(DirectoryError) -> FileAliasError {
    move |error| FileAliasError {
        index: Some(index),
        error,
    }
}

fn general(error: DirectoryError) -> FileAliasError {
    FileAliasError { index: None, error }
}

/// Whether a stored target is a command (`|...`) or a file (`/...`) rather than an address.
pub(crate) fn is_program_or_file(target: &str) -> bool {
    target.starts_with('|') || target.starts_with('/')
}

impl SqliteDirectory {
    /// Makes the aliases of `source` (e.g. `file:/etc/aliases`) exactly `aliases`, all or
    /// nothing: entries of that source not in `aliases` are removed, the others replaced.
    /// An alias whose address is an account, or that has entries of another origin, is left
    /// as it is and reported in [`FileImport::skipped`]. Address targets are normalised as
    /// `alias add` does; `|command` and `/file` targets are stored as given (the caller
    /// decides whether the configuration allows them). A loop is refused as `alias add`
    /// refuses it.
    pub fn replace_file_aliases(
        &self,
        source: &str,
        aliases: &[FileAlias],
    ) -> std::result::Result<FileImport, FileAliasError> {
        let created_at = now_unix();
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| general(e.into()))?;
        let before: BTreeSet<String> = {
            let mut stmt = tx
                .prepare("SELECT DISTINCT address FROM aliases WHERE source = ?1")
                .map_err(|e| general(e.into()))?;
            let rows = stmt
                .query_map([source], |r| r.get::<_, String>(0))
                .map_err(|e| general(e.into()))?;
            rows.collect::<rusqlite::Result<_>>()
                .map_err(|e| general(e.into()))?
        };
        tx.execute("DELETE FROM aliases WHERE source = ?1", [source])
            .map_err(|e| general(e.into()))?;

        let mut report = FileImport::default();
        let mut inserted: Vec<(usize, String)> = Vec::new();
        for (i, alias) in aliases.iter().enumerate() {
            let key = parse_alias_key(&alias.address).map_err(at(i))?;
            if key.key.starts_with('@') {
                return Err(at(i)(DirectoryError::InvalidAliasTarget {
                    input: alias.address.clone(),
                    source: crate::AddressError::MissingAt,
                }));
            }
            require_dot_string(&parse_address(&key.key).map_err(at(i))?).map_err(at(i))?;
            if !domain_exists(&tx, &key.domain).map_err(at(i))? {
                return Err(at(i)(DirectoryError::NoSuchDomain(key.domain)));
            }
            if account_exists(&tx, &key.key).map_err(at(i))? {
                report
                    .skipped
                    .push((i, format!("{} is an account", key.key)));
                continue;
            }
            if alias_exists(&tx, &key.key).map_err(at(i))? {
                let other: Option<String> = tx
                    .query_row(
                        "SELECT source FROM aliases WHERE address = ?1 LIMIT 1",
                        [&key.key],
                        |r| r.get(0),
                    )
                    .map_err(|e| at(i)(e.into()))?;
                let why = match other {
                    None => format!(
                        "{} was made with `postern alias add` (remove it there to let the file define it)",
                        key.key
                    ),
                    Some(s) if inserted.iter().any(|(_, k)| *k == key.key) => {
                        let _ = s;
                        format!("{} is defined twice", key.key)
                    }
                    Some(s) => format!("{} comes from {s}", key.key),
                };
                report.skipped.push((i, why));
                continue;
            }
            if alias.targets.is_empty() {
                return Err(at(i)(DirectoryError::NoAliasTargets));
            }
            for target in &alias.targets {
                let stored = if is_program_or_file(target) {
                    target.clone()
                } else {
                    SqliteDirectory::normalize_target(&tx, target).map_err(at(i))?
                };
                if stored == key.key {
                    return Err(at(i)(DirectoryError::AliasPointsToItself(stored)));
                }
                tx.execute(
                    "INSERT INTO aliases (address, domain, target, created_at, source) \
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                    params![key.key, key.domain, stored, created_at, source],
                )
                .map_err(|e| at(i)(e.into()))?;
            }
            inserted.push((i, key.key));
        }
        // Loops are checked once everything is in, so that a file may define its aliases in
        // any order.
        for (i, key) in &inserted {
            let mut ex = Expander::new(&tx, &self.options, key.clone());
            ex.expand_alias(key, None, 0).map_err(at(*i))?;
            if let Some(cycle) = ex.loops.into_iter().next() {
                return Err(at(*i)(DirectoryError::AliasLoop(cycle.join(" -> "))));
            }
            let mut stmt = tx
                .prepare_cached("SELECT target FROM aliases WHERE address = ?1 ORDER BY target")
                .map_err(|e| at(*i)(e.into()))?;
            let targets: Vec<String> = stmt
                .query_map([key], |r| r.get(0))
                .and_then(|rows| rows.collect())
                .map_err(|e| at(*i)(e.into()))?;
            for t in targets {
                if is_program_or_file(&t) {
                    continue;
                }
                let Ok(a) = Address::parse(&t) else { continue };
                let local = domain_exists(&tx, a.domain()).map_err(at(*i))?;
                let known = account_exists(&tx, &a.to_string()).map_err(at(*i))?
                    || alias_exists(&tx, &a.to_string()).map_err(at(*i))?;
                if local && !known {
                    report.dangling.push((*i, t));
                }
            }
        }
        tx.commit().map_err(|e| general(e.into()))?;
        report.imported = inserted.into_iter().map(|(_, k)| k).collect();
        report.removed = before
            .into_iter()
            .filter(|k| !report.imported.contains(k))
            .collect();
        Ok(report)
    }
}
