//! The bodies of postern's fuzz targets: one definition of each, shared by the coverage-guided
//! fuzzer (`fuzz/fuzz_targets/*.rs`, cargo-fuzz / libFuzzer) and by the stable corpus replay test
//! (`tests/replay.rs`), which runs every file of `fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/` through the same function in the normal test suite.
//!
//! Every parser that reads the network or the disk has a target here (DESIGN.md, "Secure by
//! construction"). A target must never panic on any input; a panic (or an abort from the
//! fuzzer's allocation limit) is a bug. Besides "does not panic", each target checks the cheap
//! invariants its parser has: a parsed command re-serialises and reparses to the same value,
//! replies and responses are well-formed, a decoder agrees with its encoder, sizes stay within
//! their limits.
//!
//! [`TARGETS`] lists them all, by the name used for the fuzz binary and the corpus folder.
//!
//! A test-only crate: nothing may depend on it.

mod directory;
mod dmarc;
mod fetch;
mod imap;
mod managesieve;
mod policy;
mod pop3;
mod smtp;
mod spool;
mod store;
mod transfer;

pub use directory::{address, aliases_file, sasl};
pub use dmarc::dmarc_report;
pub use fetch::imap_response;
pub use imap::{imap_command, imap_mime, imap_search};
pub use managesieve::managesieve_command;
pub use policy::access_file;
pub use pop3::pop3_command;
pub use smtp::{smtp_command, smtp_data, smtp_session};
pub use spool::spool_journal;
pub use store::maildir_name;
pub use transfer::mbox_file;

/// A fuzz target: its name (the fuzz binary and the corpus folder) and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, network parsers first.
pub const TARGETS: &[Target] = &[
    ("smtp_command", smtp_command),
    ("smtp_session", smtp_session),
    ("smtp_data", smtp_data),
    ("imap_command", imap_command),
    ("pop3_command", pop3_command),
    ("managesieve_command", managesieve_command),
    ("sasl", sasl),
    ("imap_mime", imap_mime),
    ("imap_search", imap_search),
    ("imap_response", imap_response),
    ("address", address),
    ("aliases_file", aliases_file),
    ("access_file", access_file),
    ("spool_journal", spool_journal),
    ("maildir_name", maildir_name),
    ("mbox_file", mbox_file),
    ("dmarc_report", dmarc_report),
];
