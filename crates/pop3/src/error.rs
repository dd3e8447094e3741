//! Errors of a POP3 session.

use postern_directory::DirectoryError;
use postern_store::StoreError;

/// What can end or fail a POP3 operation.
#[derive(Debug, thiserror::Error)]
pub enum Pop3Error {
    /// The connection failed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// The mail store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The account directory failed.
    #[error("directory: {0}")]
    Directory(#[from] DirectoryError),
    /// A blocking task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
}

impl From<tokio::task::JoinError> for Pop3Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Pop3Error::Task(e.to_string())
    }
}
