//! What the protocols ask of the directory, as a trait, and the types it answers
//! with. [`crate::SqliteDirectory`] (feature `sqlite`) is the embedded implementation;
//! another backend implements [`Directory`] and plugs in without any protocol
//! crate changing.

use std::time::Duration;

use async_trait::async_trait;

use crate::address::Address;
use crate::error::Result;
use crate::password::{HashScheme, PasswordParams};
use crate::sasl::ScramCredentials;

/// Settings of a [`Directory`].
#[derive(Debug, Clone)]
pub struct DirectoryOptions {
    /// argon2id parameters for new hashes (and the bar below which old ones are upgraded).
    pub password_params: PasswordParams,
    /// Plus-addressing separator (RFC 5233 subaddress); `None` disables it.
    pub subaddress_separator: Option<char>,
    /// Deepest alias nesting followed before resolution fails.
    pub max_alias_depth: usize,
    /// Most alias entries visited while resolving one address.
    pub max_alias_expansion: usize,
    /// How long to wait for a database lock held by another process.
    pub busy_timeout: Duration,
    /// Read connections kept beside the writer by a database backend, so that
    /// lookups do not queue behind one another (SQLite: WAL readers).
    pub read_connections: usize,
}

impl Default for DirectoryOptions {
    fn default() -> Self {
        DirectoryOptions {
            password_params: PasswordParams::default(),
            subaddress_separator: Some('+'),
            max_alias_depth: 10,
            max_alias_expansion: 1000,
            busy_timeout: Duration::from_secs(5),
            read_connections: 4,
        }
    }
}

/// A local domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// ASCII (A-label) form, the key.
    pub name: String,
    /// Display form with U-labels.
    pub unicode_name: String,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

/// What an admin removal of a domain with everything in it removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DomainRemoval {
    /// Accounts removed.
    pub accounts: u64,
    /// Alias entries (address → target pairs) removed.
    pub aliases: u64,
}

/// An account (the password hash itself is not included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Normalised `local@domain`.
    pub address: String,
    /// Normalised local part.
    pub local_part: String,
    /// Domain, ASCII form.
    pub domain: String,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// Whether the account may log in. A disabled account still receives mail.
    pub enabled: bool,
    /// Storage quota in bytes, if any.
    pub quota_bytes: Option<u64>,
    /// Scheme of the stored password hash (`None` if the stored value is unusable).
    pub hash_scheme: Option<HashScheme>,
    /// Whether an APOP secret is set.
    pub has_apop_secret: bool,
    /// Whether SCRAM-SHA-256 keys exist. They are derived from a plaintext password, so
    /// an account whose hash was imported has none until its next plaintext login.
    pub has_scram_keys: bool,
}

/// An alias and its targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    /// Normalised `local@domain`, or `@domain` for a catch-all.
    pub address: String,
    /// Domain, ASCII form.
    pub domain: String,
    /// Targets, sorted.
    pub targets: Vec<String>,
    /// Where its entries came from: `None` for `postern alias add`, else `file:PATH`, the
    /// aliases(5) file `postern newaliases` imported them from.
    pub source: Option<String>,
}

impl Alias {
    /// Whether this is the catch-all (`@domain`) of its domain.
    pub fn is_catch_all(&self) -> bool {
        self.address.starts_with('@')
    }
}

/// One final destination of a resolved address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Destination {
    /// A local account, with the plus-addressing detail if there was one.
    Local {
        /// Normalised account address.
        account: String,
        /// Subaddress detail (`tag` of `user+tag@`), RFC 5233.
        detail: Option<String>,
    },
    /// A remote address (local part as configured, domain in ASCII form).
    Remote(String),
    /// aliases(5) `|command`: the message is piped to a command line run as the server's
    /// user (only imported by `newaliases`, and only when `[aliases] allow_commands`).
    Command {
        /// The alias whose target this is (`local@domain`).
        alias: String,
        /// The command line, without the leading `|`.
        command: String,
    },
    /// aliases(5) `/path/file`: the message is appended to an mbox file (only imported by
    /// `newaliases`, and only when `[aliases] allow_files`).
    File {
        /// The alias whose target this is (`local@domain`).
        alias: String,
        /// The absolute path of the file.
        path: String,
    },
}

/// Result of [`Directory::resolve`] and [`Directory::expand`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Deliver to these destinations (de-duplicated, never empty).
    Deliver(Vec<Destination>),
    /// The domain is local but nobody there has this address.
    NotFound,
    /// The domain is not local: not ours to deliver (relaying is policy's business).
    NotLocal,
}

/// The directory as the protocols see it: recipient resolution (SMTP RCPT, the
/// router, local delivery), account lookups, and the credential checks behind
/// every login.
///
/// Lookups are async and must not block a runtime thread (a backend that blocks
/// runs its work in `spawn_blocking`). The credential checks are synchronous:
/// verification is CPU-heavy (argon2id, PBKDF2), so callers already run them in a
/// blocking context, through [`crate::ClientAuth`] (throttle and logs).
#[async_trait]
pub trait Directory: Send + Sync + std::fmt::Debug {
    /// Resolves a recipient to its final destinations (RFC 5321 §3.6: accounts,
    /// aliases, RFC 5233 plus-addressing, the domain's catch-all).
    async fn resolve(&self, address: &Address) -> Result<Resolution>;

    /// Resolves for EXPN-style listing (RFC 5321 §3.5.2): exact accounts and aliases
    /// only (no plus-addressing, no catch-all).
    async fn expand(&self, address: &Address) -> Result<Resolution>;

    /// Whether `name` is one of our domains. An invalid name is simply not local.
    async fn is_local_domain(&self, name: &str) -> Result<bool>;

    /// All local domains, sorted by name.
    async fn domains(&self) -> Result<Vec<Domain>>;

    /// Looks up an account. An invalid address is reported as an error.
    async fn account(&self, address: &str) -> Result<Option<Account>>;

    /// The plus-addressing separator (RFC 5233), if subaddresses are on.
    fn subaddress_separator(&self) -> Option<char>;

    /// Checks a plaintext login (IMAP LOGIN, POP3 USER/PASS, SASL PLAIN/LOGIN):
    /// the normalised account on success, `None` on any failure. CPU-heavy: call
    /// from a blocking context.
    fn authenticate(&self, login: &str, password: &[u8]) -> Result<Option<String>>;

    /// The APOP shared secret of an enabled account (RFC 1939 §7), if it has one.
    /// Blocking.
    fn apop_secret(&self, name: &str) -> Result<Option<String>>;

    /// The SCRAM keys of an enabled account (RFC 5802 §3) for `mechanism`; `None`
    /// makes the caller answer with [`Directory::scram_decoy`]. Blocking.
    fn scram_credentials(&self, login: &str, mechanism: &str) -> Result<Option<ScramCredentials>>;

    /// The salt and iteration count answered for a name without SCRAM keys, the same
    /// at every attempt (RFC 5802 §9: do not tell unknown accounts apart). Blocking.
    fn scram_decoy(&self, login: &str, mechanism: &str) -> Result<(Vec<u8>, u32)>;
}
