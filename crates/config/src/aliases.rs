//! `[aliases]`: the classic aliases(5) file `postern newaliases` imports, and whether its
//! command (`|command`) and file (`/path`) targets may be used.

use crate::check::positive;
use crate::error::ConfigError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[aliases]`: the aliases(5) file `newaliases` imports into the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Aliases {
    /// The aliases(5) file `postern newaliases` reads when no `--file` is given.
    pub file: PathBuf,
    /// The local domains a bare alias name (`postmaster:`) is made in; empty = every local
    /// domain.
    pub domains: Vec<String>,
    /// Whether `|command` targets are accepted at import and run at delivery (as the server's
    /// user). Default false.
    pub allow_commands: bool,
    /// Whether `/path/file` targets are accepted at import and appended to at delivery (as the
    /// server's user). Default false.
    pub allow_files: bool,
    /// Longest a `|command` target may run, in seconds, before it is killed and the delivery
    /// is retried later (Postfix's command_time_limit is 1000).
    pub command_timeout_secs: u64,
}

impl Default for Aliases {
    fn default() -> Aliases {
        Aliases {
            file: PathBuf::from("/etc/aliases"),
            domains: Vec::new(),
            allow_commands: false,
            allow_files: false,
            command_timeout_secs: 1000,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAliases {
    file: Option<PathBuf>,
    domains: Option<Vec<String>>,
    allow_commands: Option<bool>,
    allow_files: Option<bool>,
    command_timeout_secs: Option<u64>,
}

impl RawAliases {
    pub(crate) fn validate(self) -> Result<Aliases, ConfigError> {
        let d = Aliases::default();
        let file = self.file.unwrap_or(d.file);
        if file.as_os_str().is_empty() {
            return Err(ConfigError::invalid("aliases.file: an empty path"));
        }
        let mut domains = Vec::new();
        for name in self.domains.unwrap_or_default() {
            let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
            if name.is_empty() || name.contains('@') || name.contains(char::is_whitespace) {
                return Err(ConfigError::invalid(format!(
                    "aliases.domains: {name:?} is not a domain name"
                )));
            }
            if !domains.contains(&name) {
                domains.push(name);
            }
        }
        Ok(Aliases {
            file,
            domains,
            allow_commands: self.allow_commands.unwrap_or(d.allow_commands),
            allow_files: self.allow_files.unwrap_or(d.allow_files),
            command_timeout_secs: positive(
                "aliases.command_timeout_secs",
                self.command_timeout_secs,
                d.command_timeout_secs,
            )?,
        })
    }
}
