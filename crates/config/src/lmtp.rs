//! `[lmtp]`: the LMTP server (RFC 2033) other MTAs hand mail to for local delivery. Its TCP
//! addresses are `[listen] lmtp` (default none); this section adds a Unix socket and the limits
//! of LMTP sessions on either.

use crate::check::positive;
use crate::ConfigError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[lmtp]`: the Unix socket and the session limits of LMTP.
#[derive(Debug, Clone, Serialize)]
pub struct Lmtp {
    /// A Unix stream socket to listen on (e.g. `/run/postern/lmtp.sock`); unset: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
    /// The socket's permission bits (default `0o660`: the server user and its group); written
    /// as an octal string (`"0660"`) in the file.
    #[serde(serialize_with = "octal")]
    pub socket_mode: u32,
    /// The socket's group, so that another MTA's user (e.g. `postfix`) may connect; unset: the
    /// server's group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_group: Option<String>,
    /// Connections open at once on the Unix socket (the TCP listeners share `[limits]`).
    pub max_connections: usize,
    /// Largest message accepted, in octets (SIZE, RFC 1870); default `[smtp] max_message_size`.
    pub max_message_size: Option<u64>,
    /// Recipients per transaction; more are answered `452 4.5.3`.
    pub max_recipients: usize,
    /// Seconds to wait for the next command.
    pub command_timeout_secs: u64,
    /// Seconds to wait for more message data during DATA or BDAT.
    pub data_timeout_secs: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLmtp {
    socket: Option<PathBuf>,
    socket_mode: Option<String>,
    socket_group: Option<String>,
    max_connections: Option<usize>,
    max_message_size: Option<u64>,
    max_recipients: Option<usize>,
    command_timeout_secs: Option<u64>,
    data_timeout_secs: Option<u64>,
}

impl RawLmtp {
    pub(crate) fn validate(self) -> Result<Lmtp, ConfigError> {
        if let Some(path) = &self.socket {
            if !path.is_absolute() {
                return Err(ConfigError::invalid(format!(
                    "lmtp.socket: {} must be an absolute path",
                    path.display()
                )));
            }
            // sockaddr_un holds 108 bytes, the terminating NUL included.
            if path.as_os_str().len() > 107 {
                return Err(ConfigError::invalid(format!(
                    "lmtp.socket: {} is longer than the 107 bytes a Unix socket path may have",
                    path.display()
                )));
            }
        }
        let socket_mode = match &self.socket_mode {
            None => 0o660,
            Some(text) => parse_mode(text).ok_or_else(|| {
                ConfigError::invalid(format!(
                    "lmtp.socket_mode: {text:?} is not a permission mode (write octal digits as a string, e.g. \"0660\")"
                ))
            })?,
        };
        if let Some(g) = &self.socket_group {
            let ok = !g.is_empty()
                && g.len() <= 32
                && !g.starts_with('-')
                && g.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if !ok {
                return Err(ConfigError::invalid(format!(
                    "lmtp.socket_group: {g:?} is not a group name"
                )));
            }
            if self.socket.is_none() {
                return Err(ConfigError::invalid(
                    "lmtp.socket_group: set lmtp.socket too (the group is the socket's)",
                ));
            }
        }
        Ok(Lmtp {
            socket: self.socket,
            socket_mode,
            socket_group: self.socket_group,
            max_connections: positive("lmtp.max_connections", self.max_connections, 100)?,
            max_message_size: match self.max_message_size {
                Some(n) => Some(positive("lmtp.max_message_size", Some(n), n)?),
                None => None,
            },
            max_recipients: positive("lmtp.max_recipients", self.max_recipients, 1000)?,
            command_timeout_secs: positive(
                "lmtp.command_timeout_secs",
                self.command_timeout_secs,
                300,
            )?,
            data_timeout_secs: positive("lmtp.data_timeout_secs", self.data_timeout_secs, 600)?,
        })
    }
}

/// The mode as the file writes it, so that the effective configuration reads back.
fn octal<S: serde::Serializer>(mode: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{mode:04o}"))
}

/// Octal permission bits, `0660` or `660`, at most `0777` (no set-id or sticky bits on a socket).
fn parse_mode(text: &str) -> Option<u32> {
    let t = text.trim();
    let t = t.strip_prefix("0o").unwrap_or(t);
    if t.is_empty() || t.len() > 4 || !t.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    u32::from_str_radix(t, 8).ok().filter(|m| *m <= 0o777)
}

#[cfg(test)]
mod tests {
    use crate::{Config, Source};

    fn parse(text: &str) -> Result<Config, crate::ConfigError> {
        Config::from_toml(text, Source::Defaults)
    }

    #[test]
    fn defaults_are_off() {
        let c = parse("").unwrap();
        assert!(c.listen.lmtp.is_empty());
        assert_eq!(c.lmtp.socket, None);
        assert_eq!(c.lmtp.socket_mode, 0o660);
        assert!(!c.enabled_services().contains_key(&crate::Service::Lmtp));
    }

    #[test]
    fn socket_and_tcp() {
        let c = parse(
            "[listen]\nlmtp = [\"127.0.0.1:24\"]\n[lmtp]\nsocket = \"/run/postern/lmtp.sock\"\nsocket_mode = \"0666\"\nsocket_group = \"postfix\"\nmax_recipients = 50\n",
        )
        .unwrap();
        assert_eq!(c.listen.lmtp, ["127.0.0.1:24".parse().unwrap()]);
        assert_eq!(c.lmtp.socket_mode, 0o666);
        assert_eq!(c.lmtp.socket_group.as_deref(), Some("postfix"));
        assert_eq!(c.lmtp.max_recipients, 50);
        assert!(c.enabled_services().contains_key(&crate::Service::Lmtp));
    }

    #[test]
    fn bad_values_are_named() {
        for (text, words) in [
            ("[lmtp]\nsocket = \"lmtp.sock\"", "absolute"),
            (
                "[lmtp]\nsocket = \"/x\"\nsocket_mode = \"0999\"",
                "lmtp.socket_mode",
            ),
            (
                "[lmtp]\nsocket = \"/x\"\nsocket_mode = \"4777\"",
                "lmtp.socket_mode",
            ),
            ("[lmtp]\nsocket_group = \"postfix\"", "set lmtp.socket too"),
            (
                "[lmtp]\nsocket = \"/x\"\nsocket_group = \"-x\"",
                "not a group name",
            ),
            ("[lmtp]\nmax_recipients = 0", "greater than zero"),
            (
                "[listen]\nlmtp = [\"127.0.0.1:25\"]\nsmtp = [\"127.0.0.1:25\"]",
                "already used",
            ),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(words), "{text}: {e}");
        }
    }
}
