//! postern's mail store: Maildir++ folders with a per-account SQLite index.
//!
//! * [`MaildirStore`] — the synchronous core (easy to test without a runtime).
//! * [`Store`] — the async, backend-neutral trait the protocol crates use
//!   (`Arc<dyn Store>`); [`MaildirStore`] implements it on tokio's blocking pool.
//! * Plain data types: [`Flags`], [`UidSet`], [`MessageMeta`], [`MailboxSnapshot`], ...
//!
//! Plain files are the truth (see `DESIGN.md`): every message is a standard Maildir file whose
//! name carries its UID (`,U=<uid>`) and flags (`:2,<letters>`); everything else in the index
//! can be rebuilt with [`MaildirStore::reindex`]. Changes made by other programs are picked up
//! by a cheap sync before a mailbox is used.
//!
//! Mailbox names use `/` as the hierarchy separator and treat `INBOX` case-insensitively
//! (RFC 9051 §5.1); UIDs are strictly ascending and never reused within a UIDVALIDITY
//! (RFC 9051 §2.3.1.1); MODSEQs strictly increase per mailbox (RFC 7162 §3.1).

#![warn(missing_docs)]

mod api;
mod error;
pub mod events;
mod held;
mod index;
pub mod keywords;
pub mod maildir;
pub mod names;
mod openers;
mod store;
mod sync;
mod types;

pub use api::Store;
pub use error::{Result, StoreError};
pub use held::Held;
pub use index::INDEX_FILE;
pub use store::{MaildirStore, DEFAULT_FOLDERS, MAX_MESSAGE_SIZE, SUBSCRIPTIONS_FILE};
pub use types::{
    AppendOutcome, Changes, CopyOutcome, Flag, FlagChange, FlagOp, Flags, FlagsOutcome,
    MailboxEvent, MailboxInfo, MailboxSnapshot, MailboxStatus, MessageMeta, MessagePart,
    QuotaUsage, ReindexReport, SpecialUse, SystemFlags, UidSet, FORWARDED_KEYWORD, MAX_KEYWORD_LEN,
};
