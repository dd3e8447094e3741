use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool: {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("spool: {path}: unreadable envelope: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("spool: no queued message {0}")]
    NotFound(String),
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
