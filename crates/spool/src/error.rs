use std::path::PathBuf;

/// What can go wrong reading or changing the spool.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// A filesystem operation on the spool failed.
    #[error("spool: {op} {path}: {source}")]
    Io {
        /// What was being done (`"create"`, `"open"`, `"rename"`, ...).
        op: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A queue entry's JSON could not be parsed (or serialised).
    #[error("spool: {path}: unreadable envelope: {message}")]
    Corrupt {
        /// The `q/<id>` or `state/<id>` file concerned.
        path: PathBuf,
        /// The JSON error.
        message: String,
    },
    /// No message with this queue id is in the spool (never was, or already gone).
    #[error("spool: no queued message {0}")]
    NotFound(String),
    /// An enqueue was asked for with an envelope that has no recipients.
    #[error("spool: an envelope needs at least one recipient")]
    NoRecipients,
    /// The message is in its first delivery attempt, in the journal of another process (the
    /// running server): it cannot be changed from here until that attempt ends.
    #[error("spool: message {0} is in its first delivery attempt; try again in a moment")]
    Busy(String),
}

pub(crate) trait IoContext<T> {
    fn ctx(self, op: &'static str, path: &std::path::Path) -> Result<T, SpoolError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, op: &'static str, path: &std::path::Path) -> Result<T, SpoolError> {
        self.map_err(|source| SpoolError::Io {
            op,
            path: path.to_path_buf(),
            source,
        })
    }
}
