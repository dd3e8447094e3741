//! `[sieve]`: server-side filtering at local delivery (RFC 5228) and its limits, the global
//! scripts run around the user's own (Pigeonhole's `sieve_before` / `sieve_after`) and the
//! vacation period bounds (Pigeonhole's `sieve_vacation_*_period`).

use crate::check::positive;
use crate::ConfigError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[sieve]`: Sieve filtering at local delivery.
#[derive(Debug, Clone, Serialize)]
pub struct Sieve {
    /// Run scripts at local delivery. Default true; false delivers everything to INBOX.
    pub enabled: bool,
    /// Largest script accepted, in bytes.
    pub max_script_bytes: usize,
    /// Most scripts one account may store (ManageSieve quota, RFC 5804 §1.3 QUOTA/MAXSCRIPTS).
    pub max_scripts: usize,
    /// Most actions one run may produce.
    pub max_actions: usize,
    /// Most redirects one run may produce (RFC 5228 §4.2).
    pub max_redirects: usize,
    /// Deepest `include` nesting (RFC 6609 §3.2).
    pub max_include_depth: usize,
    /// Largest compiled `:regex`, in bytes.
    pub max_regex_bytes: usize,
    /// Global scripts run before the user's, in order (Pigeonhole's `sieve_before`).
    pub before: Vec<PathBuf>,
    /// Global scripts run after the user's, in order (Pigeonhole's `sieve_after`).
    pub after: Vec<PathBuf>,
    /// Directory of the scripts `include :global` finds (`NAME.sieve`); unset: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_dir: Option<PathBuf>,
    /// Shortest vacation period a script may ask for, in seconds (RFC 5230 §4.1, RFC 6131 §2).
    pub vacation_min_period_secs: u64,
    /// The vacation period when the script gives none (RFC 5230 §4.1: 7 days).
    pub vacation_default_period_secs: u64,
    /// Longest vacation period a script may ask for, in seconds.
    pub vacation_max_period_secs: u64,
    /// `fileinto` creates a missing folder even without `:create` (RFC 5490 §3.2 leaves it to
    /// the implementation). Default false: a missing folder means the message is kept in INBOX.
    pub fileinto_creates_folders: bool,
}

impl Default for Sieve {
    fn default() -> Sieve {
        Sieve {
            enabled: true,
            max_script_bytes: 1 << 20,
            max_scripts: 32,
            max_actions: 32,
            max_redirects: 4,
            max_include_depth: 10,
            max_regex_bytes: 1 << 20,
            before: Vec::new(),
            after: Vec::new(),
            global_dir: None,
            vacation_min_period_secs: 86_400,
            vacation_default_period_secs: 7 * 86_400,
            vacation_max_period_secs: 60 * 86_400,
            fileinto_creates_folders: false,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSieve {
    enabled: Option<bool>,
    max_script_bytes: Option<usize>,
    max_scripts: Option<usize>,
    max_actions: Option<usize>,
    max_redirects: Option<usize>,
    max_include_depth: Option<usize>,
    max_regex_bytes: Option<usize>,
    before: Option<Vec<PathBuf>>,
    after: Option<Vec<PathBuf>>,
    global_dir: Option<PathBuf>,
    vacation_min_period_secs: Option<u64>,
    vacation_default_period_secs: Option<u64>,
    vacation_max_period_secs: Option<u64>,
    fileinto_creates_folders: Option<bool>,
}

impl RawSieve {
    pub(crate) fn validate(self) -> Result<Sieve, ConfigError> {
        let d = Sieve::default();
        let sieve = Sieve {
            enabled: self.enabled.unwrap_or(d.enabled),
            max_script_bytes: positive(
                "sieve.max_script_bytes",
                self.max_script_bytes,
                d.max_script_bytes,
            )?,
            max_scripts: positive("sieve.max_scripts", self.max_scripts, d.max_scripts)?,
            max_actions: positive("sieve.max_actions", self.max_actions, d.max_actions)?,
            // Zero redirects is a valid policy (forwarding off), so no `positive` here.
            max_redirects: self.max_redirects.unwrap_or(d.max_redirects),
            max_include_depth: positive(
                "sieve.max_include_depth",
                self.max_include_depth,
                d.max_include_depth,
            )?,
            max_regex_bytes: positive(
                "sieve.max_regex_bytes",
                self.max_regex_bytes,
                d.max_regex_bytes,
            )?,
            before: self.before.unwrap_or_default(),
            after: self.after.unwrap_or_default(),
            global_dir: self.global_dir,
            // RFC 6131 §2 allows periods under a day (vacation-seconds); zero is refused
            // because it would answer every message.
            vacation_min_period_secs: positive(
                "sieve.vacation_min_period_secs",
                self.vacation_min_period_secs,
                d.vacation_min_period_secs,
            )?,
            vacation_default_period_secs: positive(
                "sieve.vacation_default_period_secs",
                self.vacation_default_period_secs,
                d.vacation_default_period_secs,
            )?,
            vacation_max_period_secs: positive(
                "sieve.vacation_max_period_secs",
                self.vacation_max_period_secs,
                d.vacation_max_period_secs,
            )?,
            fileinto_creates_folders: self
                .fileinto_creates_folders
                .unwrap_or(d.fileinto_creates_folders),
        };
        if !(sieve.vacation_min_period_secs <= sieve.vacation_default_period_secs
            && sieve.vacation_default_period_secs <= sieve.vacation_max_period_secs)
        {
            return Err(ConfigError::invalid(
                "sieve: vacation periods must satisfy vacation_min_period_secs <= vacation_default_period_secs <= vacation_max_period_secs",
            ));
        }
        for (key, paths) in [
            ("sieve.before", &sieve.before),
            ("sieve.after", &sieve.after),
        ] {
            if paths.iter().any(|p| p.as_os_str().is_empty()) {
                return Err(ConfigError::invalid(format!("{key}: an empty path")));
            }
        }
        Ok(sieve)
    }
}
