//! Why a run failed, in words an admin can act on, and whether to retry soon.

use std::fmt;

/// The class of a failure: it decides the back-off and what `postern fetch list` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// DNS, connect, reset, time-out: the network or the remote host is down.
    Network,
    /// The TLS handshake failed: certificate not trusted or for another name, no TLS offered
    /// where it is required.
    Tls,
    /// The remote refused the login (wrong password, account locked).
    Auth,
    /// The remote said something a POP3/IMAP server must not (or lacks what is needed,
    /// like UIDL).
    Protocol,
    /// The remote answered a command with an error (folder missing, server busy).
    Remote,
    /// Local delivery failed for the time being (disk, quota of the store): retried later.
    Local,
    /// The account's own settings are wrong (bad `ca_file`, unreadable password file).
    Config,
}

impl ErrorKind {
    /// A short name for logs and `postern fetch list`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Network => "network",
            ErrorKind::Tls => "tls",
            ErrorKind::Auth => "auth",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Remote => "remote",
            ErrorKind::Local => "local",
            ErrorKind::Config => "config",
        }
    }

    /// Failures that will not go away by themselves (a password, a certificate, a setting):
    /// retried only after a long back-off, so the remote is not hammered with bad logins.
    pub fn needs_admin(self) -> bool {
        matches!(self, ErrorKind::Tls | ErrorKind::Auth | ErrorKind::Config)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed run: its class and a message naming what failed ("login refused by
/// pop3s://bob@mail.example.com:995: -ERR [AUTH] Authentication failed.").
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct FetchError {
    /// The class.
    pub kind: ErrorKind,
    /// What happened, for the log and `postern fetch list`.
    pub message: String,
}

impl FetchError {
    /// A failure of class `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> FetchError {
        FetchError {
            kind,
            message: message.into(),
        }
    }

    /// [`ErrorKind::Network`].
    pub fn network(message: impl Into<String>) -> FetchError {
        FetchError::new(ErrorKind::Network, message)
    }

    /// [`ErrorKind::Tls`].
    pub fn tls(message: impl Into<String>) -> FetchError {
        FetchError::new(ErrorKind::Tls, message)
    }

    /// [`ErrorKind::Auth`].
    pub fn auth(message: impl Into<String>) -> FetchError {
        FetchError::new(ErrorKind::Auth, message)
    }

    /// [`ErrorKind::Protocol`].
    pub fn protocol(message: impl Into<String>) -> FetchError {
        FetchError::new(ErrorKind::Protocol, message)
    }

    /// [`ErrorKind::Remote`].
    pub fn remote(message: impl Into<String>) -> FetchError {
        FetchError::new(ErrorKind::Remote, message)
    }

    /// [`ErrorKind::Local`].
    pub fn local(message: impl Into<String>) -> FetchError {
        FetchError::new(ErrorKind::Local, message)
    }

    /// [`ErrorKind::Config`].
    pub fn config(message: impl Into<String>) -> FetchError {
        FetchError::new(ErrorKind::Config, message)
    }
}
