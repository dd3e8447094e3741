use std::path::PathBuf;

/// A configuration problem, worded for the administrator who has to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}{message}", file.as_ref().map(|f| format!("{}: ", f.display())).unwrap_or_default())]
    Invalid {
        file: Option<PathBuf>,
        message: String,
    },
    #[error("{key}: cannot read {path}: {source}")]
    Unreadable {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ConfigError {
    pub(crate) fn invalid(message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: None,
            message: message.into(),
        }
    }
}
