use std::path::PathBuf;

/// A configuration problem, worded for the administrator who has to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file itself could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key has an unknown name or a refused value.
    #[error("{}{message}", file.as_ref().map(|f| format!("{}: ", f.display())).unwrap_or_default())]
    Invalid {
        /// The file, when the text came from one.
        file: Option<PathBuf>,
        /// What is wrong, naming the key where there is one (`smtp.max_line_length: ...`).
        message: String,
    },
    /// A file a key names (certificate, key, relay password) could not be read.
    #[error("{key}: cannot read {path}: {source}")]
    Unreadable {
        /// The key naming the file, e.g. `tls.cert`.
        key: &'static str,
        /// The file named.
        path: PathBuf,
        /// Why reading failed.
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
