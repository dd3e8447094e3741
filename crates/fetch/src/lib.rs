//! Retrieval from remote mailboxes (the fetchmail job, built in): a local account's remote POP3
//! and IMAP accounts are polled, or watched with IMAP IDLE, and every new message goes through
//! local delivery like SMTP mail (aliases, Sieve, duplicate suppression, quota).
//!
//! The crate is the protocol side and its bookkeeping; the binary wires it to local delivery
//! (an [`Inbox`]), the schedule of `serve` and the `postern fetch` commands.
//!
//! - [`account`]: what a remote account is ([`FetchAccount`], its URL and options).
//! - [`connect`]: TCP and TLS (certificates always verified: system roots plus `ca_file`).
//! - [`pop3`] and [`imap`]: the clients and their sync algorithms.
//! - [`state`]: what was fetched already ([`FetchState`]) and the accounts kept by `postern
//!   fetch add` ([`Accounts`]); [`db`] is their SQLite implementation, with remote passwords
//!   encrypted under a key in the data directory.
//!
//! **Nothing is fetched twice and nothing is lost.** A message is delivered (durably: the
//! [`Inbox`] returns once it is fsynced) before it is recorded as fetched, and recorded before
//! it is deleted or flagged on the remote. Every delivery carries a key derived from the remote
//! message's identity ([`delivery_key`]), and local delivery ignores a key it has stored, so a
//! run killed between delivery and bookkeeping delivers nothing twice when it resumes.

pub mod account;
pub mod connect;
pub mod db;
mod error;
pub mod imap;
pub mod inbox;
mod pace;
pub mod pop3;
pub mod state;

pub use account::{
    EnvelopeRule, FetchAccount, FetchOptions, Folders, Origin, Protocol, RemoteUrl, Secret,
    Security,
};
pub use connect::{Connector, Stream};
pub use error::{ErrorKind, FetchError};
pub use inbox::{delivery_key, Delivered, FetchedMessage, Inbox, LocalRefusal};
pub use pace::Pacer;
pub use state::{
    AccountStatus, Accounts, FetchState, FolderState, NoProgress, Progress, RunReport, SeenMessage,
};

use tokio_util::sync::CancellationToken;

/// Everything one retrieval run of one account needs.
pub struct Run<'a> {
    /// The remote account and its options.
    pub account: &'a FetchAccount,
    /// Its remote password.
    pub password: &'a Secret,
    /// TCP/TLS for this account (its `ca_file` applied).
    pub connector: &'a Connector,
    /// What was fetched before.
    pub state: &'a dyn FetchState,
    /// Where messages go.
    pub inbox: &'a dyn Inbox,
    /// Told of progress (the CLI's bar, serve's status).
    pub progress: &'a dyn Progress,
    /// Cancelled at shutdown: a run stops between messages, everything delivered recorded.
    pub cancel: CancellationToken,
}

/// One retrieval pass over an account's folders, by its URL's protocol: [`pop3::sync`] or
/// [`imap::sync`].
pub async fn run_once(run: &Run<'_>) -> Result<RunReport, FetchError> {
    match run.account.url.protocol {
        Protocol::Pop3 => pop3::sync(run).await,
        Protocol::Imap => imap::sync(run).await,
    }
}
