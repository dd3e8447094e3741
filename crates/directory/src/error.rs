//! Errors of the directory. Their messages are shown to administrators by the CLI,
//! so they say what was wrong and, where useful, what to do.

use crate::address::AddressError;

/// Everything that can go wrong in the directory.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// An address did not parse or validate.
    #[error("invalid address {input:?}: {source}")]
    InvalidAddress {
        /// The input as given (shortened if very long).
        input: String,
        /// What was wrong with it.
        source: AddressError,
    },
    /// A domain name did not validate.
    #[error("invalid domain {input:?}: {source}")]
    InvalidDomain {
        /// The input as given (shortened if very long).
        input: String,
        /// What was wrong with it.
        source: AddressError,
    },
    /// A valid name that cannot be a local mail domain (localhost, no dot, an IP address).
    #[error("{domain} cannot be a local domain: {why}")]
    NotAMailDomain {
        /// The name, normalised.
        domain: String,
        /// Why not.
        why: &'static str,
    },
    /// The new alias would make mail go round in circles.
    #[error("alias loop: {0} (remove one of these targets first)")]
    AliasLoop(String),
    /// The domain is already in the directory.
    #[error("domain {0} already exists")]
    DomainExists(String),
    /// The domain is not one of ours.
    #[error("domain {0} is not a local domain (add it first with the domain command)")]
    NoSuchDomain(String),
    /// Refusal to remove a domain that still has accounts or aliases.
    #[error(
        "domain {domain} still has {accounts} account(s) and {aliases} alias entr(y/ies); \
         remove them first or force the removal"
    )]
    DomainInUse {
        /// The domain.
        domain: String,
        /// How many accounts it has.
        accounts: u64,
        /// How many alias entries (address → target pairs) it has.
        aliases: u64,
    },
    /// The account already exists.
    #[error("account {0} already exists")]
    AccountExists(String),
    /// No such account.
    #[error("no account {0}")]
    NoSuchAccount(String),
    /// An account cannot share its address with an alias, nor an alias with an account.
    #[error("{0} is already an alias; an address cannot be both an alias and an account")]
    AddressIsAlias(String),
    /// An alias cannot share its address with an account.
    #[error("{0} is already an account; an address cannot be both an alias and an account")]
    AddressIsAccount(String),
    /// The alias already has this target.
    #[error("alias {alias} already points to {target}")]
    AliasTargetExists {
        /// The alias address.
        alias: String,
        /// The target.
        target: String,
    },
    /// No such alias (or no such target of the alias).
    #[error("no alias {0}")]
    NoSuchAlias(String),
    /// An alias was added without targets.
    #[error("an alias needs at least one target")]
    NoAliasTargets,
    /// A target that is not an address.
    #[error("invalid alias target {input:?}: {source}")]
    InvalidAliasTarget {
        /// The input as given.
        input: String,
        /// What was wrong with it.
        source: AddressError,
    },
    /// An alias whose target is the alias itself.
    #[error("alias {0} cannot point to itself")]
    AliasPointsToItself(String),
    /// Alias expansion nested deeper than the configured limit.
    #[error("alias expansion of {address} nests deeper than {limit} levels")]
    AliasTooDeep {
        /// The address being resolved.
        address: String,
        /// The configured depth limit.
        limit: usize,
    },
    /// Alias expansion produced more entries than the configured limit.
    #[error("alias expansion of {address} visits more than {limit} addresses")]
    AliasTooLarge {
        /// The address being resolved.
        address: String,
        /// The configured limit.
        limit: usize,
    },
    /// A stored or imported password hash uses a scheme we cannot verify.
    #[error("unsupported password hash scheme {0:?} (supported: argon2id/argon2i/argon2d PHC, $6$, $5$, $y$, $2a$/$2b$/$2y$, $1$, with optional Dovecot {{SCHEME}} prefix; {{SSHA}}, {{SSHA256}}, {{SSHA512}}, {{SHA}}, {{SHA256}}, {{SHA512}}, {{PLAIN}})")]
    UnsupportedHashScheme(String),
    /// A stored or imported password hash is malformed.
    #[error("malformed password hash: {0}")]
    MalformedHash(String),
    /// Computing a new hash failed.
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// An empty password was given where one is required.
    #[error("the password is empty")]
    EmptyPassword,
    /// The quota does not fit the database's integer type.
    #[error("quota of {0} bytes is too large")]
    QuotaTooLarge(u64),
    /// The database file was written by a newer postern.
    #[error("database schema version {found} is newer than this postern supports ({supported}); upgrade postern")]
    SchemaTooNew {
        /// Version found in the file.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// The database holds a value that does not make sense.
    #[error("corrupt directory database: {0}")]
    Corrupt(String),
    /// The database could not be opened.
    #[error("cannot open directory database {}: {source}", path.display())]
    Open {
        /// The file (or the place the backend names).
        path: std::path::PathBuf,
        /// The backend's reason.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The backend (database, network) reported an error.
    #[error("directory database error: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

/// Shortens hostile or huge input before it is put into an error message.
pub(crate) fn shorten(input: &str) -> String {
    const MAX: usize = 200;
    if input.len() <= MAX {
        return input.to_string();
    }
    let mut end = MAX;
    while !input.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &input[..end])
}

/// Result alias for the directory.
pub type Result<T, E = DirectoryError> = std::result::Result<T, E>;
