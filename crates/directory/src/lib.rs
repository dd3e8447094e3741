//! The postern directory: local domains, accounts, aliases, password hashing,
//! SASL mechanisms and authentication throttling.
//!
//! * [`Directory`] — the SQLite-backed store of domains, accounts and aliases, with
//!   [`Directory::resolve`] for recipients and [`Directory::authenticate`] for logins.
//! * [`Address`] — validated, normalised `local@domain` (IDNA, case, NFC, limits).
//! * [`password`] — argon2id hashing; verification of imported crypt(3) and Dovecot hashes.
//! * [`sasl`] — PLAIN, LOGIN, SCRAM-SHA-256(-PLUS) as protocol-independent state machines.
//! * [`scram`] — SCRAM key derivation, message syntax and channel binding types.
//! * [`AuthThrottle`] — failure counting per account and per client network.
//! * [`AuthGate`] — the one door every login of every protocol passes (throttle, logs).
//!
//! The API is synchronous. Password hashing and verification are CPU-heavy; async
//! callers run them in `spawn_blocking`.

pub mod address;
mod directory;
pub mod error;
pub mod gate;
mod md5_crypt;
pub mod password;
pub mod sasl;
mod schema;
pub mod scram;
pub mod throttle;

#[cfg(test)]
mod tests;

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
pub use schema::SCHEMA_VERSION;
pub use scram::{ChannelBindingType, ChannelBindings};
pub use throttle::{AuthThrottle, ThrottleConfig, ThrottleDecision};
