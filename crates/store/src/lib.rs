//! postern's mail store: the backend-neutral [`Store`] trait and, behind the `maildir` feature
//! (on by default), the embedded backend [`maildir`]: Maildir++ folders with a per-account
//! SQLite index.
//!
//! * [`Store`] — the async trait the protocol crates use (`Arc<dyn Store>`), with the contract
//!   every backend keeps (UIDs, MODSEQs, durability, concurrency) written on it.
//! * [`StoreError`] — errors that name no database type and no file path.
//! * [`search`] — SEARCH keys and their default evaluation.
//! * Plain data types: [`Flags`], [`UidSet`], [`MessageMeta`], [`MailboxSnapshot`], ...
//! * `maildir::open` — the Maildir backend (feature `maildir`).
//!
//! Mailbox names use `/` as the hierarchy separator and treat `INBOX` case-insensitively
//! (RFC 9051 §5.1); UIDs are strictly ascending and never reused within a UIDVALIDITY
//! (RFC 9051 §2.3.1.1); MODSEQs strictly increase per mailbox (RFC 7162 §3.1).
//!
//! Protocol crates depend on this crate with `default-features = false`: they must never
//! depend on SQLite or on the Maildir layout; only the binary enables `maildir`.

#![warn(missing_docs)]

mod api;
mod error;
pub mod events;
mod held;
#[cfg(feature = "maildir")]
pub mod maildir;
pub mod names;
pub mod scripts;
pub mod search;
mod types;

pub use api::Store;
pub use error::{Result, StoreError};
pub use held::Held;
pub use scripts::{ScriptInfo, ScriptStore};
pub use search::{SearchKey, TextMatcher};
pub use types::{
    AppendOutcome, Changes, CopyOutcome, Flag, FlagChange, FlagOp, Flags, FlagsOutcome,
    ImportMessage, ImportOutcome, MailboxEvent, MailboxInfo, MailboxSnapshot, MailboxStatus,
    MessageMeta, MessagePart, QuotaUsage, ReindexReport, SpecialUse, SystemFlags, UidSet,
    FORWARDED_KEYWORD, MAX_KEYWORD_LEN,
};
