//! `[fetch]`: retrieval from remote POP3 and IMAP mailboxes inside `serve` (the fetchmail job),
//! and the `[[fetch.account]]` tables of admins who keep remote accounts in the file rather
//! than with `postern fetch add`.
//!
//! The URL is checked for its shape here (scheme, user, host, no password); the fetch crate
//! parses it fully when the account is used. Whether the local owner exists and whether the
//! password file is private are checked when `serve` starts ([`crate::Config::check_files`]
//! checks the file's mode).

use crate::check::positive;
use crate::ConfigError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The shortest poll interval accepted: polling a provider faster is abuse.
pub const MIN_INTERVAL_SECS: u64 = 10;

/// `[fetch]`: the scheduler of `serve` and the accounts of the file.
#[derive(Debug, Clone, Serialize)]
pub struct Fetch {
    /// Run the scheduler in `serve` (accounts are still fetched by `postern fetch run`).
    pub enabled: bool,
    /// Seconds between polls of an account that sets no `interval_secs` of its own.
    pub interval_secs: u64,
    /// Accounts fetched at once (an IMAP account waiting in IDLE does not count).
    pub concurrency: usize,
    /// Up to this many seconds are added at random to each wait, so that accounts of one
    /// provider do not all connect at the same instant.
    pub jitter_secs: u64,
    /// The longest wait after repeated failures (the wait doubles from a minute up to this).
    pub max_backoff_secs: u64,
    /// The shortest wait after a failure that needs the admin (refused login, untrusted
    /// certificate, bad setting): bad logins are not repeated every minute.
    pub auth_backoff_secs: u64,
    /// `[[fetch.account]]`: remote accounts defined in the file (ids `config:NAME`).
    pub account: Vec<FetchAccountConfig>,
}

impl Default for Fetch {
    fn default() -> Fetch {
        Fetch {
            enabled: true,
            interval_secs: 300,
            concurrency: 4,
            jitter_secs: 30,
            max_backoff_secs: 3600,
            auth_backoff_secs: 3600,
            account: Vec::new(),
        }
    }
}

/// Which remote IMAP folders are fetched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum FetchFolders {
    /// `"inbox"` (or `"all"`): INBOX only, or every folder.
    Keyword(String),
    /// These folders, each into the local folder of the same name (INBOX into local delivery).
    Named(Vec<String>),
}

/// Who fetched messages are delivered to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum FetchEnvelope {
    /// `"owner"` (the local account) or `"multidrop"` (Delivered-To, X-Original-To, Received).
    Keyword(String),
    /// Multidrop with these header fields, in order of preference.
    Headers(Vec<String>),
}

/// `[[fetch.account]]`: one remote account.
#[derive(Debug, Clone, Serialize)]
pub struct FetchAccountConfig {
    /// A name unique in the file: the account's id is `config:NAME`.
    pub name: String,
    /// The local account (address) that owns it.
    pub local: String,
    /// `pop3s://user@host[:port]`, `pop3://`, `imaps://`, `imap://...[/folder]`.
    pub url: String,
    /// A private file (mode 0600 or stricter) holding the remote password (trailing newline
    /// ignored).
    pub password_file: PathBuf,
    /// Leave messages on the server (default true).
    pub keep: bool,
    /// IMAP: only messages without `\Seen`.
    pub only_unseen: bool,
    /// IMAP: set `\Seen` on the remote once a message is delivered.
    pub mark_seen: bool,
    /// Messages larger than this (octets) stay on the remote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_limit: Option<u64>,
    /// At most this many messages a minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u32>,
    /// `"inbox"` (default), `"all"`, or a list of folder names.
    pub folders: FetchFolders,
    /// `"owner"` (default), `"multidrop"`, or a list of header field names (multidrop).
    pub envelope: FetchEnvelope,
    /// Seconds between polls; default `[fetch] interval_secs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_secs: Option<u64>,
    /// IMAP: wait for mail with IDLE when the server offers it (default true).
    pub idle: bool,
    /// POP3: APOP when the greeting offers it (default true).
    pub apop: bool,
    /// Log in without TLS when the remote offers none (default false).
    pub allow_plaintext: bool,
    /// Certificates (PEM) trusted besides the system's roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFetch {
    enabled: Option<bool>,
    interval_secs: Option<u64>,
    concurrency: Option<usize>,
    jitter_secs: Option<u64>,
    max_backoff_secs: Option<u64>,
    auth_backoff_secs: Option<u64>,
    #[serde(default)]
    account: Vec<RawAccount>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    name: Option<String>,
    local: Option<String>,
    url: Option<String>,
    password_file: Option<PathBuf>,
    keep: Option<bool>,
    only_unseen: Option<bool>,
    mark_seen: Option<bool>,
    size_limit: Option<u64>,
    rate_limit: Option<u32>,
    folders: Option<StringOrList>,
    envelope: Option<StringOrList>,
    interval_secs: Option<u64>,
    idle: Option<bool>,
    apop: Option<bool>,
    allow_plaintext: Option<bool>,
    ca_file: Option<PathBuf>,
}

fn interval(key: &str, value: Option<u64>, default: u64) -> Result<u64, ConfigError> {
    match value {
        Some(v) if v < MIN_INTERVAL_SECS => Err(ConfigError::invalid(format!(
            "{key}: {v} seconds is too short; poll at most every {MIN_INTERVAL_SECS} seconds"
        ))),
        Some(v) => Ok(v),
        None => Ok(default),
    }
}

impl RawFetch {
    pub(crate) fn validate(self) -> Result<Fetch, ConfigError> {
        let d = Fetch::default();
        let interval_secs = interval("fetch.interval_secs", self.interval_secs, d.interval_secs)?;
        let max_backoff_secs = positive(
            "fetch.max_backoff_secs",
            self.max_backoff_secs,
            d.max_backoff_secs,
        )?;
        if max_backoff_secs < 60 {
            return Err(ConfigError::invalid(format!(
                "fetch.max_backoff_secs: {max_backoff_secs} is below the first back-off of 60 seconds"
            )));
        }
        let mut account: Vec<FetchAccountConfig> = Vec::new();
        for (i, a) in self.account.into_iter().enumerate() {
            let a = a.validate(i, interval_secs)?;
            if account.iter().any(|b| b.name == a.name) {
                return Err(ConfigError::invalid(format!(
                    "fetch.account[{i}].name: {:?} is used by another account",
                    a.name
                )));
            }
            account.push(a);
        }
        Ok(Fetch {
            enabled: self.enabled.unwrap_or(d.enabled),
            interval_secs,
            concurrency: positive("fetch.concurrency", self.concurrency, d.concurrency)?,
            jitter_secs: self.jitter_secs.unwrap_or(d.jitter_secs),
            max_backoff_secs,
            auth_backoff_secs: positive(
                "fetch.auth_backoff_secs",
                self.auth_backoff_secs,
                d.auth_backoff_secs,
            )?,
            account,
        })
    }
}

impl RawAccount {
    fn validate(self, i: usize, default_interval: u64) -> Result<FetchAccountConfig, ConfigError> {
        let key = format!("fetch.account[{i}]");
        let required = |what: &str| ConfigError::invalid(format!("{key}: {what} is required"));
        let name = self.name.ok_or_else(|| required("name"))?;
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(ConfigError::invalid(format!(
                "{key}.name: {name:?} must be 1 to 64 letters, digits, '-', '_' or '.'"
            )));
        }
        let key = format!("fetch.account[{i}] ({name})");
        let local = self
            .local
            .ok_or_else(|| ConfigError::invalid(format!("{key}: local is required")))?
            .trim()
            .to_lowercase();
        match local.rsplit_once('@') {
            Some((l, d)) if !l.is_empty() && crate::check::domain_ok(d) => {}
            _ => {
                return Err(ConfigError::invalid(format!(
                    "{key}.local: {local:?} is not an address (user@domain)"
                )))
            }
        }
        let url = self
            .url
            .ok_or_else(|| ConfigError::invalid(format!("{key}: url is required")))?;
        check_url(&url).map_err(|e| ConfigError::invalid(format!("{key}.url: {e}")))?;
        let password_file = self.password_file.ok_or_else(|| {
            ConfigError::invalid(format!(
                "{key}: password_file is required (a file of mode 0600 holding the remote password)"
            ))
        })?;
        let folders = match self.folders {
            None => FetchFolders::Keyword("inbox".into()),
            Some(StringOrList::One(s)) => {
                let s = s.to_ascii_lowercase();
                if s != "inbox" && s != "all" {
                    return Err(ConfigError::invalid(format!(
                        "{key}.folders: {s:?}: write \"inbox\", \"all\" or a list of folder names"
                    )));
                }
                FetchFolders::Keyword(s)
            }
            Some(StringOrList::Many(list)) => {
                if list.is_empty() || list.iter().any(|f| f.trim().is_empty()) {
                    return Err(ConfigError::invalid(format!(
                        "{key}.folders: the list must name at least one folder, none empty"
                    )));
                }
                FetchFolders::Named(list)
            }
        };
        if url.to_ascii_lowercase().starts_with("pop3")
            && folders != FetchFolders::Keyword("inbox".into())
        {
            return Err(ConfigError::invalid(format!(
                "{key}.folders: a POP3 account has only its INBOX"
            )));
        }
        let envelope = match self.envelope {
            None => FetchEnvelope::Keyword("owner".into()),
            Some(StringOrList::One(s)) => {
                let s = s.to_ascii_lowercase();
                if s != "owner" && s != "multidrop" {
                    return Err(ConfigError::invalid(format!(
                        "{key}.envelope: {s:?}: write \"owner\", \"multidrop\" or a list of header field names"
                    )));
                }
                FetchEnvelope::Keyword(s)
            }
            Some(StringOrList::Many(list)) => {
                if list.is_empty()
                    || list.iter().any(|h| {
                        h.is_empty() || !h.bytes().all(|b| b.is_ascii_graphic() && b != b':')
                    })
                {
                    return Err(ConfigError::invalid(format!(
                        "{key}.envelope: the list must name header fields (like \"Delivered-To\")"
                    )));
                }
                FetchEnvelope::Headers(list)
            }
        };
        if self.size_limit == Some(0) {
            return Err(ConfigError::invalid(format!(
                "{key}.size_limit: must be greater than zero (leave it out for no limit)"
            )));
        }
        if self.rate_limit == Some(0) {
            return Err(ConfigError::invalid(format!(
                "{key}.rate_limit: must be greater than zero (leave it out for no limit)"
            )));
        }
        Ok(FetchAccountConfig {
            name,
            local,
            url,
            password_file,
            keep: self.keep.unwrap_or(true),
            only_unseen: self.only_unseen.unwrap_or(false),
            mark_seen: self.mark_seen.unwrap_or(false),
            size_limit: self.size_limit,
            rate_limit: self.rate_limit,
            folders,
            envelope,
            interval_secs: match self.interval_secs {
                Some(v) => Some(interval(
                    &format!("{key}.interval_secs"),
                    Some(v),
                    default_interval,
                )?),
                None => None,
            },
            idle: self.idle.unwrap_or(true),
            apop: self.apop.unwrap_or(true),
            allow_plaintext: self.allow_plaintext.unwrap_or(false),
            ca_file: self.ca_file,
        })
    }
}

/// The shape of a remote account URL: `scheme://user@host[:port][/folder]`, no password.
fn check_url(url: &str) -> Result<(), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("{url:?} is not a URL like pop3s://user@host"))?;
    if !matches!(
        scheme.to_ascii_lowercase().as_str(),
        "pop3" | "pop3s" | "imap" | "imaps"
    ) {
        return Err(format!(
            "{url:?}: unknown scheme {scheme:?}: use pop3s, pop3, imaps or imap"
        ));
    }
    let authority = rest.split('/').next().unwrap_or_default();
    let Some((user, host)) = authority.rsplit_once('@') else {
        return Err(format!("{url:?} names no user: write {scheme}://user@host"));
    };
    if user.contains(':') {
        return Err("the URL holds a password: put it in password_file".into());
    }
    if user.is_empty() || host.is_empty() || host.starts_with(':') {
        return Err(format!("{url:?} names no user or no host"));
    }
    if url.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(format!(
            "{url:?}: spaces and control characters must be %-encoded"
        ));
    }
    Ok(())
}

/// The password file of a configuration account: readable, and private (no group or other
/// permission), since it holds a password in clear.
pub(crate) fn check_password_file(a: &FetchAccountConfig) -> Result<(), ConfigError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::File::open(&a.password_file)
        .and_then(|f| f.metadata())
        .map_err(|source| ConfigError::Unreadable {
            key: "fetch.account.password_file",
            path: a.password_file.clone(),
            source,
        })?;
    if meta.mode() & 0o077 != 0 {
        return Err(ConfigError::invalid(format!(
            "fetch.account ({}).password_file: {} can be read by other users (mode {:o}): chmod 600 it",
            a.name,
            a.password_file.display(),
            meta.mode() & 0o777
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Fetch, ConfigError> {
        let raw: RawFetch =
            toml::from_str(text).map_err(|e| ConfigError::invalid(e.to_string()))?;
        raw.validate()
    }

    #[test]
    fn defaults_and_a_full_account() {
        let f = parse("").unwrap();
        assert!(f.enabled);
        assert_eq!((f.interval_secs, f.concurrency), (300, 4));
        let f = parse(
            r#"
            interval_secs = 60
            [[account]]
            name = "work"
            local = "Alice@Example.org"
            url = "imaps://alice%40corp.example@imap.corp.example/Lists"
            password_file = "/etc/postern/work.pw"
            keep = false
            folders = ["INBOX", "Lists/rust"]
            envelope = ["Delivered-To"]
            size_limit = 1000000
            "#,
        )
        .unwrap();
        let a = &f.account[0];
        assert_eq!(a.local, "alice@example.org");
        assert!(!a.keep && a.idle && a.apop);
        assert_eq!(a.interval_secs, None);
        assert_eq!(
            a.folders,
            FetchFolders::Named(vec!["INBOX".into(), "Lists/rust".into()])
        );
        assert_eq!(
            a.envelope,
            FetchEnvelope::Headers(vec!["Delivered-To".into()])
        );
    }

    #[test]
    fn bad_values_are_refused_with_their_key() {
        for (text, words) in [
            ("interval_secs = 5", "too short"),
            ("concurrency = 0", "greater than zero"),
            (
                "[[account]]\nname='a'\nlocal='a@b.c'\nurl='smtp://u@h'\npassword_file='/p'",
                "unknown scheme",
            ),
            (
                "[[account]]\nname='a'\nlocal='a@b.c'\nurl='pop3s://u:pw@h'\npassword_file='/p'",
                "password",
            ),
            (
                "[[account]]\nname='a'\nlocal='a@b.c'\nurl='pop3s://h'\npassword_file='/p'",
                "names no user",
            ),
            ("[[account]]\nname='a'\nlocal='a@b.c'\nurl='pop3s://u@h'", "password_file"),
            (
                "[[account]]\nname='a'\nlocal='nobody'\nurl='pop3s://u@h'\npassword_file='/p'",
                "not an address",
            ),
            (
                "[[account]]\nname='a'\nlocal='a@b.c'\nurl='pop3s://u@h'\npassword_file='/p'\nfolders='all'",
                "only its INBOX",
            ),
            (
                "[[account]]\nname='a'\nlocal='a@b.c'\nurl='imaps://u@h'\npassword_file='/p'\nenvelope='x'",
                "envelope",
            ),
            (
                "[[account]]\nname='a'\nlocal='a@b.c'\nurl='imaps://u@h'\npassword_file='/p'\ninterval_secs=1",
                "too short",
            ),
            (
                "[[account]]\nname='a'\nlocal='a@b.c'\nurl='imaps://u@h'\npassword_file='/p'\n[[account]]\nname='a'\nlocal='a@b.c'\nurl='imaps://v@h'\npassword_file='/p'",
                "used by another",
            ),
            (
                "[[account]]\nname='a b'\nlocal='a@b.c'\nurl='imaps://u@h'\npassword_file='/p'",
                "letters",
            ),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(words), "{text}: {e}");
        }
    }
}
