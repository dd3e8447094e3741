//! The postern directory: local domains, accounts, aliases, password hashing,
//! SASL mechanisms and authentication throttling.
//!
//! * [`Directory`] — the trait protocols use: [`Directory::resolve`] for recipients,
//!   [`Directory::authenticate`] and friends for logins, account lookups.
//! * `SqliteDirectory` (feature `sqlite`, on by default) — the embedded implementation:
//!   domains, accounts and aliases in one SQLite file, plus the admin operations.
//! * [`Address`] — validated, normalised `local@domain` (IDNA, case, NFC, limits).
//! * [`password`] — argon2id hashing; verification of imported crypt(3) and Dovecot hashes.
//! * [`sasl`] — PLAIN, LOGIN, SCRAM-SHA-256(-PLUS) as protocol-independent state machines.
//! * [`scram`] — SCRAM key derivation, message syntax and channel binding types.
//! * [`AuthThrottle`] — failure counting per account and per client network.
//! * [`AuthGate`] — the one door every login of every protocol passes (throttle, logs).
//!
//! Lookups of the trait are async; password hashing and verification are CPU-heavy
//! and synchronous, so async callers run them in `spawn_blocking`. Protocol crates
//! depend on this crate without the `sqlite` feature and so never link SQLite.

pub mod address;
pub mod aliases_file;
mod directory;
pub mod error;
pub mod gate;
mod md5_crypt;
pub mod password;
pub mod sasl;
pub mod scram;
#[cfg(feature = "sqlite")]
mod sqlite;
pub mod throttle;

pub use address::{Address, AddressError};
pub use directory::{
    Account, Alias, Destination, Directory, DirectoryOptions, Domain, DomainRemoval, Resolution,
};
pub use error::{DirectoryError, Result};
pub use gate::{AuthGate, ClientAuth};
pub use password::{HashScheme, PasswordParams};
pub use sasl::{
    advertised_mechanisms, Authenticator, Credentials, SaslError, SaslMechanism, SaslSession,
    SaslStep,
};
pub use scram::{ChannelBindingType, ChannelBindings};
#[cfg(feature = "sqlite")]
pub use sqlite::{schema::SCHEMA_VERSION, FileAlias, FileAliasError, FileImport, SqliteDirectory};
pub use throttle::{AuthThrottle, ThrottleConfig, ThrottleDecision};
