//! The store's error type.

use std::io;

/// Everything that can go wrong in the mail store.
///
/// The variants are protocol-neutral; the IMAP and POP3 layers map them onto
/// their own responses (e.g. [`StoreError::MailboxNotFound`] becomes IMAP
/// `NO [NONEXISTENT]`, RFC 5530 §3).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The account identifier is malformed or hostile (e.g. contains `/`).
    #[error("invalid account id {id:?}: {reason}")]
    InvalidAccount {
        /// The offending identifier (possibly truncated).
        id: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The account has no mail store (it was never created, or was deleted).
    #[error("account {0:?} does not exist")]
    AccountNotFound(String),
    /// `create_account` on an account that already exists.
    #[error("account {0:?} already exists")]
    AccountExists(String),
    /// The mailbox name is malformed or hostile.
    #[error("invalid mailbox name {name:?}: {reason}")]
    InvalidMailboxName {
        /// The offending name (possibly truncated).
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// No such mailbox.
    #[error("mailbox {0:?} does not exist")]
    MailboxNotFound(String),
    /// Create or rename onto a name that exists.
    #[error("mailbox {0:?} already exists")]
    MailboxExists(String),
    /// A non-recursive delete of a mailbox that has children.
    #[error("mailbox {0:?} has children")]
    HasChildren(String),
    /// An operation that makes no sense for this mailbox (delete INBOX, rename into own child, ...).
    #[error("operation not permitted: {0}")]
    NotPermitted(&'static str),
    /// No message with this UID in the mailbox.
    #[error("no message with uid {0}")]
    MessageNotFound(u32),
    /// A flag or keyword name that cannot be stored.
    #[error("invalid flag {0:?}")]
    InvalidFlag(String),
    /// The mailbox ran out of UIDs (RFC 9051 §2.3.1.1: UIDs are 32-bit); it needs a new UIDVALIDITY.
    #[error("mailbox {0:?} has exhausted its UID space")]
    UidsExhausted(String),
    /// A message larger than the store accepts.
    #[error("message too large ({0} bytes)")]
    MessageTooLarge(u64),
    /// A delivery key that is not safe in a file name.
    #[error("invalid delivery key {0:?} (letters, digits, '-' and '_', at most 64)")]
    InvalidDeliveryKey(String),
    /// An I/O operation of the backend failed.
    #[error("{op} {target}: {source}")]
    Io {
        /// What was being done ("read message", "rename", ...).
        op: &'static str,
        /// On what, as a logical name (a message, a mailbox, "index"), never a file path.
        target: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The backend's own machinery (a database, a driver) failed.
    #[error("store backend: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The backend's data contains something impossible (the Maildir index can be rebuilt
    /// with `reindex`).
    #[error("index corrupt: {0}")]
    Corrupt(String),
    /// A Sieve script name that cannot be stored (RFC 5804 §1.6).
    #[error("invalid script name {name:?}: {reason}")]
    InvalidScriptName {
        /// The offending name (possibly truncated).
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// No Sieve script with this name (RFC 5804 §1.3 code NONEXISTENT).
    #[error("script {0:?} does not exist")]
    ScriptNotFound(String),
    /// A rename onto a Sieve script name that exists (RFC 5804 §1.3 code ALREADYEXISTS).
    #[error("script {0:?} already exists")]
    ScriptExists(String),
    /// Deleting the active Sieve script (RFC 5804 §2.10 code ACTIVE).
    #[error("script {0:?} is active")]
    ScriptActive(String),
    /// A blocking task panicked or was cancelled.
    #[error("store task failed: {0}")]
    Task(String),
}

/// Result alias for the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// An [`StoreError::Io`] on the logical `target`.
    pub fn io(op: &'static str, target: impl Into<String>, source: io::Error) -> Self {
        StoreError::Io {
            op,
            target: target.into(),
            source,
        }
    }

    /// A [`StoreError::Backend`] wrapping the backend's own error.
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Backend(Box::new(e))
    }

    pub(crate) fn bad_name(name: &str, reason: &'static str) -> Self {
        StoreError::InvalidMailboxName {
            name: truncate(name),
            reason,
        }
    }

    pub(crate) fn bad_script_name(name: &str, reason: &'static str) -> Self {
        StoreError::InvalidScriptName {
            name: truncate(name),
            reason,
        }
    }

    pub(crate) fn bad_account(id: &str, reason: &'static str) -> Self {
        StoreError::InvalidAccount {
            id: truncate(id),
            reason,
        }
    }

    /// True for errors caused by the caller's input rather than by the system.
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            StoreError::Io { .. }
                | StoreError::Backend(_)
                | StoreError::Corrupt(_)
                | StoreError::Task(_)
        )
    }
}

fn truncate(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}
