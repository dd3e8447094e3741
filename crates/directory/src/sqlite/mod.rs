//! The SQLite implementation of [`Directory`]: domains, accounts, aliases and
//! password checks, kept in one SQLite file (WAL mode).
//!
//! The answers of the hot lookups (resolve, is_local_domain, account) are cached in
//! memory ([`cache`]) and dropped whenever the database changes (SQLite's
//! `data_version`), so a change made by `postern` admin commands (another process,
//! thanks to WAL mode) is still seen by the running server on its next lookup.
//!
//! Reads go through a small pool of read connections (WAL lets readers run beside
//! each other and beside the one writer); writes go through the one writer
//! connection. The [`Directory`] trait methods run the SQLite work in
//! `tokio::task::spawn_blocking`, so async callers never block a runtime thread.

mod alias_file;
mod cache;
mod pool;
pub(crate) mod schema;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, MutexGuard, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::address::{normalize_domain, normalize_remote_address, split_address, Address};
use crate::directory::{
    Account, Alias, Destination, Directory, DirectoryOptions, Domain, DomainRemoval, Resolution,
};
use crate::error::{shorten, DirectoryError, Result};
use crate::password;
use crate::sasl::{canonical_name, Authenticator, ScramCredentials};
use crate::scram;
use cache::{Cached, LookupCache};
use pool::{Pool, ReadGuard};

pub use alias_file::{FileAlias, FileAliasError, FileImport};

/// The SQLite directory: a handle on the database. `Send + Sync`, and cheap to
/// clone (clones share the connections); share it in an `Arc`.
#[derive(Clone)]
pub struct SqliteDirectory {
    pool: Arc<Pool>,
    options: Arc<DirectoryOptions>,
    dummy_hash: Arc<OnceLock<String>>,
    decoy_secret: Arc<OnceLock<[u8; 32]>>,
    /// Answers of the hot lookups, dropped whenever the database changes.
    cache: Arc<LookupCache>,
}

/// salt, iterations, StoredKey, ServerKey as read from `scram_keys`.
type ScramKeyRow = (Vec<u8>, u32, Vec<u8>, Vec<u8>);

/// SCRAM keys about to be stored for an account.
struct ScramRow {
    salt: [u8; scram::SALT_LEN],
    iterations: u32,
    keys: scram::DerivedKeys,
}

/// Replaces the SCRAM-SHA-256 keys of `address` (removes them with `None`).
fn store_scram(conn: &Connection, address: &str, row: Option<&ScramRow>) -> Result<()> {
    conn.execute(
        "DELETE FROM scram_keys WHERE address = ?1 AND mechanism = ?2",
        params![address, scram::SCRAM_SHA_256],
    )?;
    if let Some(r) = row {
        conn.execute(
            "INSERT INTO scram_keys (address, mechanism, salt, iterations, stored_key, server_key) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                address,
                scram::SCRAM_SHA_256,
                &r.salt[..],
                r.iterations,
                &r.keys.stored_key[..],
                &r.keys.server_key[..]
            ],
        )?;
    }
    Ok(())
}

impl std::fmt::Debug for SqliteDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteDirectory")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn parse_address(input: &str) -> Result<Address> {
    Address::parse(input).map_err(|source| DirectoryError::InvalidAddress {
        input: shorten(input),
        source,
    })
}

/// New accounts and aliases get addresses SMTP can carry without quoting (RFC 5321 §4.1.2
/// Dot-string), the same rule the SMTP parser applies to unquoted local parts.
fn require_dot_string(address: &Address) -> Result<()> {
    if crate::address::is_dot_string(address.local_part()) {
        Ok(())
    } else {
        Err(DirectoryError::InvalidAddress {
            input: shorten(&address.to_string()),
            source: crate::AddressError::NotDotString,
        })
    }
}

fn parse_domain(input: &str) -> Result<String> {
    normalize_domain(input).map_err(|source| DirectoryError::InvalidDomain {
        input: shorten(input),
        source,
    })
}

/// Why a syntactically valid name cannot be a local mail domain, if it cannot.
fn not_a_mail_domain(name: &str) -> Option<&'static str> {
    let last = name.rsplit('.').next().unwrap_or(name);
    if name == "localhost" || name.ends_with(".localhost") {
        Some("localhost names this machine itself (RFC 6761 §6.3), not a mail domain")
    } else if !name.contains('.') {
        Some("a mail domain is a fully qualified name, with at least one dot")
    } else if last.bytes().all(|b| b.is_ascii_digit()) {
        Some("that is an IP address, not a domain name")
    } else {
        None
    }
}

/// Key of an alias entry: `local@domain` or `@domain` (catch-all).
struct AliasKey {
    key: String,
    domain: String,
}

fn parse_alias_key(input: &str) -> Result<AliasKey> {
    if let Some(domain) = input.strip_prefix('@') {
        let domain = parse_domain(domain)?;
        return Ok(AliasKey {
            key: format!("@{domain}"),
            domain,
        });
    }
    let a = parse_address(input)?;
    Ok(AliasKey {
        key: a.to_string(),
        domain: a.domain().to_string(),
    })
}

fn quota_to_sql(quota: Option<u64>) -> Result<Option<i64>> {
    quota
        .map(|q| i64::try_from(q).map_err(|_| DirectoryError::QuotaTooLarge(q)))
        .transpose()
}

fn domain_exists(conn: &Connection, domain: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM domains WHERE name = ?1")?
        .exists([domain])?)
}

fn account_exists(conn: &Connection, address: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM accounts WHERE address = ?1")?
        .exists([address])?)
}

fn alias_targets(conn: &Connection, key: &str) -> Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT target FROM aliases WHERE address = ?1 ORDER BY target")?;
    let rows = stmt.query_map([key], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

fn alias_exists(conn: &Connection, key: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM aliases WHERE address = ?1")?
        .exists([key])?)
}

const ACCOUNT_COLUMNS: &str = "a.address, a.local_part, a.domain, a.created_at, a.enabled, \
     a.quota_bytes, a.password_hash, (s.address IS NOT NULL), \
     EXISTS (SELECT 1 FROM scram_keys k WHERE k.address = a.address)";

fn account_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    let quota: Option<i64> = r.get(5)?;
    let hash: String = r.get(6)?;
    Ok(Account {
        address: r.get(0)?,
        local_part: r.get(1)?,
        domain: r.get(2)?,
        created_at: r.get(3)?,
        enabled: r.get(4)?,
        quota_bytes: quota.and_then(|q| u64::try_from(q).ok()),
        hash_scheme: password::identify(&hash).ok().map(|(s, _)| s),
        has_apop_secret: r.get(7)?,
        has_scram_keys: r.get(8)?,
    })
}

impl SqliteDirectory {
    /// Opens (creating if needed) the directory database at `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, DirectoryOptions::default())
    }

    /// Opens (creating if needed) the directory database at `path`.
    pub fn open_with(path: impl AsRef<Path>, options: DirectoryOptions) -> Result<Self> {
        let path = path.as_ref();
        let opened = Connection::open(path).and_then(|conn| {
            conn.busy_timeout(options.busy_timeout)?;
            Ok(conn)
        });
        let mut conn = opened.map_err(|source| DirectoryError::Open {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
        schema::prepare(&mut conn, true)?;
        let pool = Pool::new(
            conn,
            Some(path.to_path_buf()),
            options.read_connections,
            options.busy_timeout,
        );
        Ok(Self::from_pool(pool, options, Some(path)))
    }

    /// A private in-memory directory (for tests of other crates). It has no read
    /// connections: every read shares the one connection.
    pub fn open_in_memory(options: DirectoryOptions) -> Result<Self> {
        let mut conn = Connection::open_in_memory()?;
        schema::prepare(&mut conn, false)?;
        let pool = Pool::new(conn, None, 0, options.busy_timeout);
        Ok(Self::from_pool(pool, options, None))
    }

    fn from_pool(pool: Pool, options: DirectoryOptions, path: Option<&Path>) -> Self {
        SqliteDirectory {
            pool: Arc::new(pool),
            options: Arc::new(options),
            dummy_hash: Arc::new(OnceLock::new()),
            decoy_secret: Arc::new(OnceLock::new()),
            cache: Arc::new(LookupCache::new(path)),
        }
    }

    /// The options this directory was opened with.
    pub fn options(&self) -> &DirectoryOptions {
        &self.options
    }

    #[cfg(test)]
    pub(crate) fn lock_for_tests(&self) -> MutexGuard<'_, Connection> {
        self.lock()
    }

    /// The writer connection (also used for reads that must see its own writes).
    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.pool.writer()
    }

    /// A read connection from the pool (the writer when there is none).
    fn read(&self) -> ReadGuard<'_> {
        self.pool.read()
    }

    /// Runs `work` on a clone of this handle in a blocking thread (SQLite and
    /// password hashing block), so that async callers never block a runtime thread.
    async fn blocking<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&SqliteDirectory) -> Result<T> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || work(&this))
            .await
            .map_err(|e| DirectoryError::Backend(Box::new(e)))?
    }

    /// A hot lookup: answered from the cache when the database has not changed since it was
    /// cached, else by `work` in a blocking thread (and then cached).
    async fn cached<T, F>(&self, key: &str, work: F) -> Result<T>
    where
        T: Cached,
        F: FnOnce(&SqliteDirectory) -> Result<T> + Send + 'static,
    {
        let stamp = self.cache.stamp();
        if let Some(found) = stamp.and_then(|st| self.cache.get::<T>(st, key)) {
            return Ok(found);
        }
        let found = self.blocking(work).await?;
        if let Some(st) = stamp {
            self.cache.put(st, key.to_string(), found.clone());
        }
        Ok(found)
    }

    // ----- domains -------------------------------------------------------------

    /// Adds a local domain (U-labels or A-labels; stored in ASCII form).
    pub fn add_domain(&self, name: &str) -> Result<Domain> {
        let name = parse_domain(name)?;
        if let Some(why) = not_a_mail_domain(&name) {
            return Err(DirectoryError::NotAMailDomain { domain: name, why });
        }
        let created_at = now_unix();
        let conn = self.lock();
        let inserted = conn.execute(
            "INSERT INTO domains (name, created_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            params![name, created_at],
        )?;
        if inserted == 0 {
            return Err(DirectoryError::DomainExists(name));
        }
        Ok(Domain {
            unicode_name: crate::address::domain_to_unicode(&name),
            name,
            created_at,
        })
    }

    /// All local domains, sorted by name.
    pub fn list_domains(&self) -> Result<Vec<Domain>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached("SELECT name, created_at FROM domains ORDER BY name")?;
        let rows = stmt.query_map([], |r| {
            let name: String = r.get(0)?;
            Ok(Domain {
                unicode_name: crate::address::domain_to_unicode(&name),
                name,
                created_at: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Whether `name` is one of our domains. An invalid name is simply not local.
    pub fn is_local_domain(&self, name: &str) -> Result<bool> {
        let Ok(name) = normalize_domain(name) else {
            return Ok(false);
        };
        domain_exists(&self.read(), &name)
    }

    fn domain_usage(conn: &Connection, name: &str) -> Result<(u64, u64)> {
        let accounts: i64 = conn.query_row(
            "SELECT count(*) FROM accounts WHERE domain = ?1",
            [name],
            |r| r.get(0),
        )?;
        let aliases: i64 = conn.query_row(
            "SELECT count(*) FROM aliases WHERE domain = ?1",
            [name],
            |r| r.get(0),
        )?;
        Ok((
            u64::try_from(accounts).unwrap_or(0),
            u64::try_from(aliases).unwrap_or(0),
        ))
    }

    /// Removes a domain that has no accounts and no aliases left.
    pub fn remove_domain(&self, name: &str) -> Result<()> {
        let name = parse_domain(name)?;
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !domain_exists(&tx, &name)? {
            return Err(DirectoryError::NoSuchDomain(name));
        }
        let (accounts, aliases) = Self::domain_usage(&tx, &name)?;
        if accounts != 0 || aliases != 0 {
            return Err(DirectoryError::DomainInUse {
                domain: name,
                accounts,
                aliases,
            });
        }
        tx.execute("DELETE FROM domains WHERE name = ?1", [&name])?;
        tx.commit()?;
        Ok(())
    }

    /// Removes a domain together with all its accounts (and their APOP secrets) and
    /// aliases. Mailbox data in the store is not touched.
    pub fn remove_domain_force(&self, name: &str) -> Result<DomainRemoval> {
        let name = parse_domain(name)?;
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !domain_exists(&tx, &name)? {
            return Err(DirectoryError::NoSuchDomain(name));
        }
        tx.execute(
            "DELETE FROM apop_secrets WHERE address IN (SELECT address FROM accounts WHERE domain = ?1)",
            [&name],
        )?;
        tx.execute(
            "DELETE FROM scram_keys WHERE address IN (SELECT address FROM accounts WHERE domain = ?1)",
            [&name],
        )?;
        let accounts = tx.execute("DELETE FROM accounts WHERE domain = ?1", [&name])?;
        let aliases = tx.execute("DELETE FROM aliases WHERE domain = ?1", [&name])?;
        tx.execute("DELETE FROM domains WHERE name = ?1", [&name])?;
        tx.commit()?;
        Ok(DomainRemoval {
            accounts: accounts as u64,
            aliases: aliases as u64,
        })
    }

    // ----- accounts ------------------------------------------------------------

    /// Adds an account with a new argon2id hash of `password`. The domain must exist.
    /// Hashing is CPU-heavy: call from a blocking context.
    pub fn add_account(&self, address: &str, password: &str) -> Result<Account> {
        let address = parse_address(address)?;
        if password.is_empty() {
            return Err(DirectoryError::EmptyPassword);
        }
        let hash = password::hash_password(password.as_bytes(), &self.options.password_params)?;
        let scram = self.scram_row(password.as_bytes());
        self.insert_account(&address, &hash, scram.as_ref())
    }

    /// Adds an account with an existing hash (import from `/etc/shadow`, Dovecot
    /// passwd-files, …). The hash must be of a supported scheme. Without the plaintext
    /// there are no SCRAM keys: they are made at the account's first plaintext login
    /// (PLAIN, LOGIN, IMAP LOGIN, POP3 USER/PASS); SCRAM fails for it until then.
    pub fn add_account_with_hash(&self, address: &str, hash: &str) -> Result<Account> {
        let address = parse_address(address)?;
        let (_, stored) = password::validate_hash(hash)?;
        self.insert_account(&address, &stored, None)
    }

    /// The SCRAM iteration count for new keys, within the RFC 7677 §4 floor.
    fn scram_iterations(&self) -> u32 {
        self.options
            .password_params
            .scram_iterations
            .clamp(scram::MIN_ITERATIONS, scram::MAX_ITERATIONS)
    }

    /// Fresh SCRAM keys for `password`, or `None` when it has no SCRAM form
    /// ([`scram::normalize_password`]). CPU-heavy (PBKDF2).
    fn scram_row(&self, password: &[u8]) -> Option<ScramRow> {
        let password = scram::normalize_password(password)?;
        let salt = scram::new_salt();
        let iterations = self.scram_iterations();
        Some(ScramRow {
            keys: scram::derive_keys(password, &salt, iterations),
            salt,
            iterations,
        })
    }

    fn insert_account(
        &self,
        address: &Address,
        hash: &str,
        scram: Option<&ScramRow>,
    ) -> Result<Account> {
        require_dot_string(address)?;
        let key = address.to_string();
        let created_at = now_unix();
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !domain_exists(&tx, address.domain())? {
            return Err(DirectoryError::NoSuchDomain(address.domain().to_string()));
        }
        if account_exists(&tx, &key)? {
            return Err(DirectoryError::AccountExists(key));
        }
        if alias_exists(&tx, &key)? {
            return Err(DirectoryError::AddressIsAlias(key));
        }
        tx.execute(
            "INSERT INTO accounts (address, local_part, domain, password_hash, created_at, enabled) \
             VALUES (?1, ?2, ?3, ?4, ?5, 1)",
            params![key, address.local_part(), address.domain(), hash, created_at],
        )?;
        store_scram(&tx, &key, scram)?;
        tx.commit()?;
        Ok(Account {
            address: key,
            local_part: address.local_part().to_string(),
            domain: address.domain().to_string(),
            created_at,
            enabled: true,
            quota_bytes: None,
            hash_scheme: password::identify(hash).ok().map(|(s, _)| s),
            has_apop_secret: false,
            has_scram_keys: scram.is_some(),
        })
    }

    /// Looks up an account. An invalid address is reported as an error.
    pub fn get_account(&self, address: &str) -> Result<Option<Account>> {
        let address = parse_address(address)?;
        let conn = self.read();
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts a \
             LEFT JOIN apop_secrets s ON s.address = a.address WHERE a.address = ?1"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        Ok(stmt
            .query_row([address.to_string()], account_from_row)
            .optional()?)
    }

    /// Lists accounts, all or those of one domain, sorted by domain then local part.
    pub fn list_accounts(&self, domain: Option<&str>) -> Result<Vec<Account>> {
        let domain = domain.map(parse_domain).transpose()?;
        let conn = self.read();
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts a \
             LEFT JOIN apop_secrets s ON s.address = a.address \
             WHERE ?1 IS NULL OR a.domain = ?1 ORDER BY a.domain, a.local_part"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([domain], account_from_row)?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    fn update_account(&self, address: &str, sql: &str, value: &dyn rusqlite::ToSql) -> Result<()> {
        let address = parse_address(address)?;
        let key = address.to_string();
        let conn = self.lock();
        let changed = conn.execute(sql, params![value, key])?;
        if changed == 0 {
            return Err(DirectoryError::NoSuchAccount(key));
        }
        Ok(())
    }

    /// Sets a new password (argon2id, and SCRAM keys). CPU-heavy: call from a
    /// blocking context.
    pub fn set_password(&self, address: &str, password: &str) -> Result<()> {
        let address = parse_address(address)?;
        if password.is_empty() {
            return Err(DirectoryError::EmptyPassword);
        }
        let hash = password::hash_password(password.as_bytes(), &self.options.password_params)?;
        let scram = self.scram_row(password.as_bytes());
        self.replace_password(&address.to_string(), &hash, scram.as_ref())
    }

    /// Stores an existing hash of a supported scheme (Dovecot prefixes are stripped).
    /// The SCRAM keys of the old password are removed; new ones are made at the next
    /// plaintext login.
    pub fn set_password_hash(&self, address: &str, hash: &str) -> Result<()> {
        let address = parse_address(address)?;
        let (_, stored) = password::validate_hash(hash)?;
        self.replace_password(&address.to_string(), &stored, None)
    }

    /// The login hash and the SCRAM keys change together, in one transaction.
    fn replace_password(&self, key: &str, hash: &str, scram: Option<&ScramRow>) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let changed = tx.execute(
            "UPDATE accounts SET password_hash = ?1 WHERE address = ?2",
            params![hash, key],
        )?;
        if changed == 0 {
            return Err(DirectoryError::NoSuchAccount(key.to_string()));
        }
        store_scram(&tx, key, scram)?;
        tx.commit()?;
        Ok(())
    }

    /// The stored login hash, for export (e.g. to another server). SCRAM keys are never
    /// exported: the other server makes its own from the password.
    pub fn export_password_hash(&self, address: &str) -> Result<Option<String>> {
        let address = parse_address(address)?;
        let conn = self.lock();
        let hash = conn
            .prepare_cached("SELECT password_hash FROM accounts WHERE address = ?1")?
            .query_row([address.to_string()], |r| r.get(0))
            .optional()?;
        Ok(hash)
    }

    /// Enables or disables logins of an account.
    pub fn set_enabled(&self, address: &str, enabled: bool) -> Result<()> {
        self.update_account(
            address,
            "UPDATE accounts SET enabled = ?1 WHERE address = ?2",
            &enabled,
        )
    }

    /// Sets (or, with `None`, clears) the storage quota in bytes.
    pub fn set_quota(&self, address: &str, quota_bytes: Option<u64>) -> Result<()> {
        let quota = quota_to_sql(quota_bytes)?;
        self.update_account(
            address,
            "UPDATE accounts SET quota_bytes = ?1 WHERE address = ?2",
            &quota,
        )
    }

    /// Removes an account and its APOP secret. Aliases pointing to it are kept (they
    /// resolve to nothing for this target until it is re-created). Mail in the store
    /// is not touched.
    pub fn remove_account(&self, address: &str) -> Result<()> {
        let address = parse_address(address)?;
        let key = address.to_string();
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM apop_secrets WHERE address = ?1", [&key])?;
        tx.execute("DELETE FROM scram_keys WHERE address = ?1", [&key])?;
        if tx.execute("DELETE FROM accounts WHERE address = ?1", [&key])? == 0 {
            return Err(DirectoryError::NoSuchAccount(key));
        }
        tx.commit()?;
        Ok(())
    }

    /// Sets the APOP shared secret (RFC 1939 §7), stored apart from the login hash.
    pub fn set_apop_secret(&self, address: &str, secret: &str) -> Result<()> {
        if secret.is_empty() {
            return Err(DirectoryError::EmptyPassword);
        }
        let address = parse_address(address)?;
        let key = address.to_string();
        let conn = self.lock();
        if !account_exists(&conn, &key)? {
            return Err(DirectoryError::NoSuchAccount(key));
        }
        conn.execute(
            "INSERT INTO apop_secrets (address, secret) VALUES (?1, ?2) \
             ON CONFLICT (address) DO UPDATE SET secret = excluded.secret",
            params![key, secret],
        )?;
        Ok(())
    }

    /// Removes the APOP secret (APOP then fails for this account).
    pub fn clear_apop_secret(&self, address: &str) -> Result<()> {
        let address = parse_address(address)?;
        let key = address.to_string();
        let conn = self.lock();
        if !account_exists(&conn, &key)? {
            return Err(DirectoryError::NoSuchAccount(key));
        }
        conn.execute("DELETE FROM apop_secrets WHERE address = ?1", [&key])?;
        Ok(())
    }

    /// The APOP secret of an enabled account, if set (RFC 1939 §7). `None` for unknown,
    /// disabled or secret-less accounts and for invalid addresses.
    pub fn apop_secret(&self, address: &str) -> Result<Option<String>> {
        let Ok(address) = Address::parse(address) else {
            return Ok(None);
        };
        let conn = self.read();
        let secret = conn
            .prepare_cached(
                "SELECT s.secret FROM apop_secrets s JOIN accounts a ON a.address = s.address \
                 WHERE s.address = ?1 AND a.enabled = 1",
            )?
            .query_row([address.to_string()], |r| r.get(0))
            .optional()?;
        Ok(secret)
    }

    // ----- authentication ------------------------------------------------------

    #[cfg(test)]
    pub(crate) fn dummy_hash_initialised_for_tests(&self) -> Option<&str> {
        self.dummy_hash.get().map(String::as_str)
    }

    fn dummy_hash(&self) -> &str {
        self.dummy_hash.get_or_init(|| {
            let mut random = [0u8; 24];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut random);
            // If hashing failed here it would fail for real accounts too; an
            // unparsable dummy still makes verification fail closed.
            password::hash_password(&random, &self.options.password_params)
                .unwrap_or_else(|_| String::from("$argon2id$invalid"))
        })
    }

    /// Checks a login. Returns the normalised account address on success, `None` on
    /// any failure (unknown, disabled, wrong password, unusable stored hash).
    ///
    /// For an unknown account a dummy argon2id hash is verified instead, so timing
    /// does not tell whether the account exists. On success with a legacy or weaker
    /// hash, a fresh argon2id hash is stored. CPU-heavy: call from a blocking context.
    pub fn authenticate(&self, login: &str, password: &[u8]) -> Result<Option<String>> {
        // Made before the first lookup, so that creating it does not make the first
        // probe of an unknown account slower than one of a real account.
        let dummy = self.dummy_hash();
        let address = Address::parse(login).ok();
        let row: Option<(String, String, bool)> = match &address {
            Some(a) => {
                let conn = self.read();
                let row = conn
                    .prepare_cached(
                        "SELECT address, password_hash, enabled FROM accounts WHERE address = ?1",
                    )?
                    .query_row([a.to_string()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()?;
                row
            }
            None => None,
        };
        let params = &self.options.password_params;
        let Some((account, stored, enabled)) = row else {
            let _ = password::verify_password(password, dummy, params);
            return Ok(None);
        };
        let verification = match password::verify_password(password, &stored, params) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(account = %account, error = %e, "stored password hash is unusable");
                let _ = password::verify_password(password, dummy, params);
                return Ok(None);
            }
        };
        if !verification.matched || !enabled {
            return Ok(None);
        }
        self.ensure_scram_keys(&account, &stored, password);
        if verification.needs_rehash {
            self.upgrade_hash(&account, &stored, password);
        }
        Ok(Some(account))
    }

    /// After a successful plaintext login: derives SCRAM keys when the account has
    /// none or weaker ones than configured (an imported hash, an older setting), unless
    /// the password changed meanwhile. Failures are logged: the login has succeeded.
    fn ensure_scram_keys(&self, account: &str, hash: &str, password: &[u8]) {
        let wanted = self.scram_iterations();
        let current: rusqlite::Result<Option<u32>> = self
            .read()
            .prepare_cached(
                "SELECT iterations FROM scram_keys WHERE address = ?1 AND mechanism = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![account, scram::SCRAM_SHA_256], |r| r.get(0))
                    .optional()
            });
        match current {
            Ok(Some(i)) if i >= wanted => return,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(account, error = %e, "cannot read SCRAM keys");
                return;
            }
        }
        let Some(row) = self.scram_row(password) else {
            return;
        };
        let mut conn = self.lock();
        let stored = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(DirectoryError::from)
            .and_then(|tx| {
                let same: bool = tx
                    .prepare_cached(
                        "SELECT 1 FROM accounts WHERE address = ?1 AND password_hash = ?2",
                    )?
                    .exists(params![account, hash])?;
                if same {
                    store_scram(&tx, account, Some(&row))?;
                }
                tx.commit()?;
                Ok(same)
            });
        match stored {
            Ok(true) => tracing::info!(account, "SCRAM-SHA-256 keys derived at login"),
            Ok(false) => {}
            Err(e) => tracing::warn!(account, error = %e, "could not store SCRAM keys"),
        }
    }

    /// The SCRAM keys of an enabled account (RFC 5802 §3), for `mechanism`
    /// (`SCRAM-SHA-256`). `None` for unknown, disabled or key-less accounts and for
    /// invalid names: the caller then answers with [`SqliteDirectory::scram_decoy`].
    pub fn scram_credentials(
        &self,
        login: &str,
        mechanism: &str,
    ) -> Result<Option<ScramCredentials>> {
        let Ok(address) = Address::parse(login) else {
            return Ok(None);
        };
        let key = address.to_string();
        let conn = self.read();
        let row: Option<ScramKeyRow> = conn
            .prepare_cached(
                "SELECT k.salt, k.iterations, k.stored_key, k.server_key FROM scram_keys k \
                 JOIN accounts a ON a.address = k.address \
                 WHERE k.address = ?1 AND k.mechanism = ?2 AND a.enabled = 1",
            )?
            .query_row(params![key, mechanism], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?;
        let Some((salt, iterations, stored_key, server_key)) = row else {
            return Ok(None);
        };
        if stored_key.len() != 32 || server_key.len() != 32 || salt.is_empty() {
            tracing::warn!(account = %key, "stored SCRAM keys are unusable");
            return Ok(None);
        }
        Ok(Some(ScramCredentials {
            account: key,
            salt,
            iterations,
            stored_key,
            server_key,
        }))
    }

    /// The decoy salt and iteration count answered for `login` when it has no SCRAM
    /// keys: an HMAC of the name under this directory's random secret, so it is the
    /// same at every attempt and across restarts, like a real salt.
    pub fn scram_decoy(&self, login: &str, mechanism: &str) -> Result<(Vec<u8>, u32)> {
        let secret = self.decoy_secret()?;
        Ok((
            scram::decoy_salt(&secret, mechanism, &canonical_name(login)),
            self.scram_iterations(),
        ))
    }

    fn decoy_secret(&self) -> Result<[u8; 32]> {
        if let Some(s) = self.decoy_secret.get() {
            return Ok(*s);
        }
        let mut fresh = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut fresh);
        let conn = self.lock();
        conn.execute(
            "INSERT INTO secrets (name, value) VALUES ('scram-decoy', ?1) ON CONFLICT DO NOTHING",
            [&fresh[..]],
        )?;
        let value: Vec<u8> = conn.query_row(
            "SELECT value FROM secrets WHERE name = 'scram-decoy'",
            [],
            |r| r.get(0),
        )?;
        let secret: [u8; 32] = value.try_into().map_err(|_| {
            DirectoryError::Corrupt("the scram-decoy secret is not 32 bytes".into())
        })?;
        Ok(*self.decoy_secret.get_or_init(|| secret))
    }

    /// Replaces `old` by a fresh argon2id hash, unless the hash changed meanwhile.
    /// Failures are logged: the login itself has already succeeded.
    fn upgrade_hash(&self, account: &str, old: &str, password: &[u8]) {
        let new = match password::hash_password(password, &self.options.password_params) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(account, error = %e, "could not compute upgraded password hash");
                return;
            }
        };
        let conn = self.lock();
        match conn.execute(
            "UPDATE accounts SET password_hash = ?1 WHERE address = ?2 AND password_hash = ?3",
            params![new, account, old],
        ) {
            Ok(1) => tracing::info!(account, "password hash upgraded to argon2id"),
            Ok(_) => {}
            Err(e) => tracing::warn!(account, error = %e, "could not store upgraded password hash"),
        }
    }

    // ----- aliases -------------------------------------------------------------

    /// Normalises an alias target: an address in a local domain is fully normalised,
    /// a remote one keeps its local part's case.
    fn normalize_target(conn: &Connection, target: &str) -> Result<String> {
        let invalid = |source| DirectoryError::InvalidAliasTarget {
            input: shorten(target),
            source,
        };
        let remote = normalize_remote_address(target).map_err(invalid)?;
        let local = Address::parse(target).map_err(invalid)?;
        if domain_exists(conn, local.domain())? {
            Ok(local.to_string())
        } else {
            Ok(remote)
        }
    }

    /// Adds targets to an alias (creating it). `alias` is `local@domain` or
    /// `@domain` for the domain's catch-all; its domain must be local and it must not
    /// be an account. Targets are addresses, local or remote. All or nothing.
    pub fn add_alias(&self, alias: &str, targets: &[&str]) -> Result<Alias> {
        let key = parse_alias_key(alias)?;
        if !key.key.starts_with('@') {
            require_dot_string(&parse_address(&key.key)?)?;
        }
        if targets.is_empty() {
            return Err(DirectoryError::NoAliasTargets);
        }
        let created_at = now_unix();
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !domain_exists(&tx, &key.domain)? {
            return Err(DirectoryError::NoSuchDomain(key.domain));
        }
        if account_exists(&tx, &key.key)? {
            return Err(DirectoryError::AddressIsAccount(key.key));
        }
        for target in targets {
            let target = Self::normalize_target(&tx, target)?;
            if target == key.key {
                return Err(DirectoryError::AliasPointsToItself(target));
            }
            let inserted = tx.execute(
                "INSERT INTO aliases (address, domain, target, created_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT DO NOTHING",
                params![key.key, key.domain, target, created_at],
            )?;
            if inserted == 0 {
                return Err(DirectoryError::AliasTargetExists {
                    alias: key.key,
                    target,
                });
            }
        }
        // A loop is a mistake now, not a mystery at delivery time.
        let mut ex = Expander::new(&tx, &self.options, key.key.clone());
        ex.expand_alias(&key.key, None, 0)?;
        if let Some(cycle) = ex.loops.into_iter().next() {
            return Err(DirectoryError::AliasLoop(cycle.join(" -> ")));
        }
        let targets = alias_targets(&tx, &key.key)?;
        let source: Option<String> = tx
            .query_row(
                "SELECT source FROM aliases WHERE address = ?1 AND source IS NOT NULL LIMIT 1",
                [&key.key],
                |r| r.get(0),
            )
            .optional()?;
        tx.commit()?;
        Ok(Alias {
            address: key.key,
            domain: key.domain,
            targets,
            source,
        })
    }

    /// Removes one target of an alias, or (with `None`) the whole alias. Returns how
    /// many entries were removed.
    pub fn remove_alias(&self, alias: &str, target: Option<&str>) -> Result<usize> {
        let key = parse_alias_key(alias)?;
        let conn = self.lock();
        let removed = match target {
            None => conn.execute("DELETE FROM aliases WHERE address = ?1", [&key.key])?,
            // A command or file target (from an aliases(5) file) is stored as written.
            Some(t) if alias_file::is_program_or_file(t) => conn.execute(
                "DELETE FROM aliases WHERE address = ?1 AND target = ?2",
                params![key.key, t],
            )?,
            Some(t) => {
                // Match both the normalised form and the text as given, in case the
                // target's domain changed between local and remote since it was added.
                let normalized = Self::normalize_target(&conn, t)?;
                let remote = normalize_remote_address(t).unwrap_or_else(|_| normalized.clone());
                conn.execute(
                    "DELETE FROM aliases WHERE address = ?1 AND target IN (?2, ?3)",
                    params![key.key, normalized, remote],
                )?
            }
        };
        if removed == 0 {
            let what = match target {
                Some(t) => format!("{} → {}", key.key, shorten(t)),
                None => key.key,
            };
            return Err(DirectoryError::NoSuchAlias(what));
        }
        Ok(removed)
    }

    /// Lists aliases, all or those of one domain, sorted by address.
    pub fn list_aliases(&self, domain: Option<&str>) -> Result<Vec<Alias>> {
        let domain = domain.map(parse_domain).transpose()?;
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT address, domain, target, source FROM aliases WHERE ?1 IS NULL OR domain = ?1 \
             ORDER BY domain, address, target",
        )?;
        let mut rows = stmt.query([domain])?;
        let mut out: Vec<Alias> = Vec::new();
        while let Some(r) = rows.next()? {
            let address: String = r.get(0)?;
            let target: String = r.get(2)?;
            let source: Option<String> = r.get(3)?;
            match out.last_mut() {
                Some(last) if last.address == address => {
                    last.targets.push(target);
                    if last.source.is_none() {
                        last.source = source;
                    }
                }
                _ => out.push(Alias {
                    address,
                    domain: r.get(1)?,
                    targets: vec![target],
                    source,
                }),
            }
        }
        Ok(out)
    }

    /// The targets of one alias (`local@domain` or `@domain`), as stored.
    pub fn alias_targets(&self, alias: &str) -> Result<Vec<String>> {
        let key = parse_alias_key(alias)?;
        alias_targets(&self.read(), &key.key)
    }

    // ----- resolution ----------------------------------------------------------

    /// Resolves a recipient to its final destinations.
    ///
    /// Order for an address in a local domain: an account of that exact address;
    /// an alias of that exact address; with plus-addressing, the account or alias of
    /// the part before the separator (the rest becomes the detail); the domain's
    /// catch-all; else [`Resolution::NotFound`]. Aliases expand recursively (targets in
    /// local domains resolve by the same rules), de-duplicated, with loop detection
    /// and depth/size limits.
    ///
    /// Routing tricks are **not** routing here: `%`, `!`, `:` and `@` inside the local
    /// part (`user%other.example@local`, `host!user@local`, `@a:b@local` split at the
    /// last `@`) are plain local-part characters of the local domain, so such an
    /// address is an unknown user unless an account or alias of exactly that name
    /// exists. Only explicitly configured alias targets may be remote.
    pub fn resolve(&self, address: &Address) -> Result<Resolution> {
        self.resolve_inner(address, true)
    }

    /// Resolves for EXPN-style listing (RFC 5321 §3.5.2): like [`SqliteDirectory::resolve`]
    /// but only exact accounts and aliases count (no plus-addressing, no catch-all),
    /// so probing random names does not enumerate the catch-all's target.
    pub fn expand(&self, address: &Address) -> Result<Resolution> {
        self.resolve_inner(address, false)
    }

    fn resolve_inner(&self, address: &Address, lenient: bool) -> Result<Resolution> {
        let conn = self.read();
        if !domain_exists(&conn, address.domain())? {
            return Ok(Resolution::NotLocal);
        }
        let mut ex = Expander::new(&conn, &self.options, address.to_string());
        let found = ex.resolve_local(address, None, 0, lenient)?;
        if !found || ex.out.is_empty() {
            if found {
                tracing::warn!(address = %address, "alias expands to no existing destination");
            }
            return Ok(Resolution::NotFound);
        }
        Ok(Resolution::Deliver(ex.out))
    }
}

/// RFC 5321 §3.6 (recipient resolution) and RFC 4954 / RFC 1939 §7 / RFC 5802
/// (authentication) answered from the SQLite database.
#[async_trait]
impl Directory for SqliteDirectory {
    async fn resolve(&self, address: &Address) -> Result<Resolution> {
        let a = address.clone();
        self.cached(&address.to_string(), move |d| {
            SqliteDirectory::resolve(d, &a)
        })
        .await
    }

    async fn expand(&self, address: &Address) -> Result<Resolution> {
        let address = address.clone();
        self.blocking(move |d| SqliteDirectory::expand(d, &address))
            .await
    }

    async fn is_local_domain(&self, name: &str) -> Result<bool> {
        let n = name.to_string();
        self.cached(name, move |d| SqliteDirectory::is_local_domain(d, &n))
            .await
    }

    async fn domains(&self) -> Result<Vec<Domain>> {
        self.blocking(SqliteDirectory::list_domains).await
    }

    async fn account(&self, address: &str) -> Result<Option<Account>> {
        let a = address.to_string();
        self.cached(address, move |d| SqliteDirectory::get_account(d, &a))
            .await
    }

    fn subaddress_separator(&self) -> Option<char> {
        self.options.subaddress_separator
    }

    fn authenticate(&self, login: &str, password: &[u8]) -> Result<Option<String>> {
        SqliteDirectory::authenticate(self, login, password)
    }

    fn apop_secret(&self, name: &str) -> Result<Option<String>> {
        SqliteDirectory::apop_secret(self, name)
    }

    fn scram_credentials(&self, login: &str, mechanism: &str) -> Result<Option<ScramCredentials>> {
        SqliteDirectory::scram_credentials(self, login, mechanism)
    }

    fn scram_decoy(&self, login: &str, mechanism: &str) -> Result<(Vec<u8>, u32)> {
        SqliteDirectory::scram_decoy(self, login, mechanism)
    }
}

struct Expander<'c> {
    conn: &'c Connection,
    options: &'c DirectoryOptions,
    root: String,
    out: Vec<Destination>,
    seen_accounts: HashSet<String>,
    seen_remote: HashSet<String>,
    /// Alias keys (with inherited detail) already expanded.
    visited: HashSet<(String, Option<String>)>,
    /// Alias keys on the current expansion path, for loop reporting.
    path: Vec<String>,
    /// Loops met: the path from the first alias back to itself.
    loops: Vec<Vec<String>>,
    steps: usize,
}

impl<'c> Expander<'c> {
    fn new(conn: &'c Connection, options: &'c DirectoryOptions, root: String) -> Self {
        Expander {
            conn,
            options,
            root,
            out: Vec::new(),
            seen_accounts: HashSet::new(),
            seen_remote: HashSet::new(),
            visited: HashSet::new(),
            path: Vec::new(),
            loops: Vec::new(),
            steps: 0,
        }
    }

    fn push_local(&mut self, account: String, detail: Option<String>) {
        if self.seen_accounts.insert(account.clone()) {
            self.out.push(Destination::Local { account, detail });
        }
    }

    /// Resolves an address of a local domain. Returns whether anything (account or
    /// alias) matched. `lenient`: plus-addressing and the catch-all apply.
    fn resolve_local(
        &mut self,
        address: &Address,
        inherited: Option<&str>,
        depth: usize,
        lenient: bool,
    ) -> Result<bool> {
        let key = address.to_string();
        if account_exists(self.conn, &key)? {
            self.push_local(key, inherited.map(str::to_string));
            return Ok(true);
        }
        if self.expand_alias(&key, inherited, depth)? {
            return Ok(true);
        }
        if !lenient {
            return Ok(false);
        }
        if let Some(sep) = self.options.subaddress_separator {
            if let Some((base, detail)) = address.split_detail(sep) {
                if let Ok(base) = address.with_local_part(base) {
                    let base_key = base.to_string();
                    if account_exists(self.conn, &base_key)? {
                        self.push_local(base_key, Some(detail.to_string()));
                        return Ok(true);
                    }
                    if self.expand_alias(&base_key, Some(detail), depth)? {
                        return Ok(true);
                    }
                }
            }
        }
        let catch_all = format!("@{}", address.domain());
        self.expand_alias(&catch_all, None, depth)
    }

    /// Expands the alias `key` if it exists. Returns whether it exists.
    fn expand_alias(&mut self, key: &str, detail: Option<&str>, depth: usize) -> Result<bool> {
        let targets = alias_targets(self.conn, key)?;
        if targets.is_empty() {
            return Ok(false);
        }
        if let Some(start) = self.path.iter().position(|p| p == key) {
            tracing::warn!(root = %self.root, alias = key, "alias loop ignored");
            let mut cycle = self.path[start..].to_vec();
            cycle.push(key.to_string());
            self.loops.push(cycle);
            return Ok(true);
        }
        if !self
            .visited
            .insert((key.to_string(), detail.map(str::to_string)))
        {
            return Ok(true);
        }
        if depth >= self.options.max_alias_depth {
            return Err(DirectoryError::AliasTooDeep {
                address: self.root.clone(),
                limit: self.options.max_alias_depth,
            });
        }
        self.path.push(key.to_string());
        for target in targets {
            self.steps += 1;
            if self.steps > self.options.max_alias_expansion {
                return Err(DirectoryError::AliasTooLarge {
                    address: self.root.clone(),
                    limit: self.options.max_alias_expansion,
                });
            }
            self.expand_target(key, &target, detail, depth + 1)?;
        }
        self.path.pop();
        Ok(true)
    }

    fn expand_target(
        &mut self,
        alias: &str,
        target: &str,
        detail: Option<&str>,
        depth: usize,
    ) -> Result<()> {
        // aliases(5) command and file targets (only `newaliases` stores them).
        if let Some(command) = target.strip_prefix('|') {
            let d = Destination::Command {
                alias: alias.to_string(),
                command: command.to_string(),
            };
            if !self.out.contains(&d) {
                self.out.push(d);
            }
            return Ok(());
        }
        if target.starts_with('/') {
            let d = Destination::File {
                alias: alias.to_string(),
                path: target.to_string(),
            };
            if !self.out.contains(&d) {
                self.out.push(d);
            }
            return Ok(());
        }
        let Ok(addr) = Address::parse(target) else {
            tracing::warn!(root = %self.root, target, "invalid alias target skipped");
            return Ok(());
        };
        if domain_exists(self.conn, addr.domain())? {
            // A target with its own detail keeps it; otherwise the inherited one applies.
            let found = self.resolve_local(&addr, detail, depth, true)?;
            if !found {
                tracing::warn!(root = %self.root, target, "alias target does not exist");
            }
        } else {
            let Ok((local, _)) = split_address(target) else {
                return Ok(());
            };
            let remote = format!("{local}@{}", addr.domain());
            if self.seen_remote.insert(remote.clone()) {
                self.out.push(Destination::Remote(remote));
            }
        }
        Ok(())
    }
}

impl Authenticator for SqliteDirectory {
    fn verify_plain(
        &self,
        authcid: &str,
        password: &[u8],
    ) -> Result<Option<String>, DirectoryError> {
        SqliteDirectory::authenticate(self, authcid, password)
    }

    fn scram_credentials(
        &self,
        authcid: &str,
        mechanism: &str,
    ) -> Result<Option<ScramCredentials>, DirectoryError> {
        SqliteDirectory::scram_credentials(self, authcid, mechanism)
    }

    fn scram_decoy(
        &self,
        authcid: &str,
        mechanism: &str,
    ) -> Result<(Vec<u8>, u32), DirectoryError> {
        SqliteDirectory::scram_decoy(self, authcid, mechanism)
    }
}

impl From<rusqlite::Error> for DirectoryError {
    fn from(e: rusqlite::Error) -> Self {
        DirectoryError::Backend(Box::new(e))
    }
}
