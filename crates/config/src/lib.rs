//! Typed configuration for postern: one TOML file, safe defaults, validation with clear messages.
//!
//! The file is looked up as `--config FILE`, else `./postern.toml`, else `/etc/postern/postern.toml`;
//! with no file at all the built-in defaults apply. Every key is optional. Unknown keys are errors, so a
//! typo never silently falls back to a default.
//!
//! Depends on no other postern crate and does no I/O beyond reading the file (and a relay
//! password file): every crate may depend on it, so it must never depend on one of them.

mod access;
mod aliases;
mod check;
mod dmarc_reports;
mod dns;
mod error;
mod fetch;
mod lmtp;
mod managesieve;
mod mta_sts;
mod notify;
mod outbound;
mod policy;
mod policy_auth;
mod raw;
mod screens;
mod sendmail;
mod service;
mod sieve;

pub use access::{Imap, Pop3};
pub use aliases::Aliases;
pub use dmarc_reports::DmarcReports;
pub use dns::Dns;
pub use dns::Dnssec;
pub use error::ConfigError;
pub use fetch::{
    Fetch, FetchAccountConfig, FetchEnvelope, FetchFolders,
    MIN_INTERVAL_SECS as FETCH_MIN_INTERVAL_SECS,
};
pub use lmtp::Lmtp;
pub use managesieve::ManageSieve;
pub use mta_sts::{MtaSts, MtaStsMode};
pub use notify::{ComsatUsers, Notify, NotifyCommand, NotifyWebhook, WebhookUrl};
pub use outbound::IpVersion;
pub use outbound::{Outbound, Queue, Relay, RelayTls};
pub use policy::Policy;
pub use policy_auth::{AuthPolicy, AuthScores};
pub use screens::{
    AccessAction, AccessMatch, AccessRule, DnsList, ListCode, ListKind, RateKey, RateLimit,
    RejectAt, Screens,
};
pub use sendmail::Sendmail;
pub use service::Service;
pub use sieve::Sieve;

use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Where the effective configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Read from this file.
    File(PathBuf),
    /// No file was found: built-in defaults only.
    Defaults,
}

/// The effective, validated configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Name in SMTP greetings, EHLO, Received headers, Maildir file names and the self-signed certificate.
    pub hostname: String,
    /// Where mail, indexes, the directory database, the spool and generated keys live.
    pub data_dir: PathBuf,
    /// `[server]`: the user and group the process runs as.
    pub server: Server,
    /// `[listen]`: the socket addresses of each service.
    pub listen: Listen,
    /// `[tls]`: certificate and key, or a generated self-signed pair.
    pub tls: Tls,
    /// `[auth]`: plaintext-password policy and failure throttling.
    pub auth: Auth,
    /// `[limits]`: connection limits shared by every listener.
    pub limits: Limits,
    /// `[mail]`: plus-addressing and the IMAP hierarchy separator.
    pub mail: Mail,
    /// `[smtp]`: SMTP server policy and limits.
    pub smtp: Smtp,
    /// `[imap]`: IMAP server limits.
    pub imap: Imap,
    /// `[pop3]`: POP3 server limits.
    pub pop3: Pop3,
    /// `[managesieve]`: ManageSieve server limits and script quotas.
    pub managesieve: ManageSieve,
    /// `[lmtp]`: the LMTP Unix socket and session limits.
    pub lmtp: Lmtp,
    /// `[queue]`: retries, bounces and delay warnings.
    pub queue: Queue,
    /// `[outbound]`: the SMTP client.
    pub outbound: Outbound,
    /// `[relay]`: the smarthost; `None` when the section is absent (mail goes by MX).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay: Option<Relay>,
    /// `[sieve]`: filtering at local delivery.
    pub sieve: Sieve,
    /// `[notify]`: new-mail hooks (commands, webhooks, comsat).
    pub notify: Notify,
    /// `[aliases]`: the aliases(5) file `newaliases` imports; command and file targets.
    pub aliases: Aliases,
    /// `[sendmail]`: local submission with the `sendmail` command.
    pub sendmail: Sendmail,
    /// `[dns]`: the resolver every lookup goes through.
    pub dns: Dns,
    /// `[policy]`: the inbound checks of the MX and their verdict.
    pub policy: Policy,
    /// `[fetch]`: retrieval from remote POP3/IMAP mailboxes.
    pub fetch: Fetch,
    /// `[mta_sts]`: the MTA-STS policy served for our domains on `[listen] https`.
    pub mta_sts: MtaSts,
    /// Not part of the file: where this configuration came from.
    #[serde(skip)]
    pub source: Source,
}

/// `[server]`: the process itself.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Server {
    /// Started as root, `serve` binds its ports and then runs as this user. Unset: it keeps
    /// the user it was started as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The group to run as; unset: the user's primary group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// `[listen]`: the socket addresses of each service. An empty list disables the service.
#[derive(Debug, Clone, Serialize)]
pub struct Listen {
    /// SMTP for incoming mail (RFC 5321); default `[::]:25`.
    pub smtp: Vec<SocketAddr>,
    /// Message submission with STARTTLS (RFC 6409); default `[::]:587`.
    pub submission: Vec<SocketAddr>,
    /// Message submission over implicit TLS (RFC 8314); default `[::]:465`.
    pub submissions: Vec<SocketAddr>,
    /// IMAP with STARTTLS (RFC 9051); default `[::]:143`.
    pub imap: Vec<SocketAddr>,
    /// IMAP over implicit TLS (RFC 8314); default `[::]:993`.
    pub imaps: Vec<SocketAddr>,
    /// POP3 with STLS (RFC 1939, RFC 2595); default `[::]:110`.
    pub pop3: Vec<SocketAddr>,
    /// POP3 over implicit TLS (RFC 8314); default `[::]:995`.
    pub pop3s: Vec<SocketAddr>,
    /// ManageSieve with STARTTLS (RFC 5804); default `[::]:4190`.
    pub managesieve: Vec<SocketAddr>,
    /// LMTP (RFC 2033) for another MTA's local delivery; default none.
    pub lmtp: Vec<SocketAddr>,
    /// HTTPS for the MTA-STS policy and client autoconfiguration; default none.
    pub https: Vec<SocketAddr>,
    /// Plain HTTP, redirecting to `https`; default none.
    pub http: Vec<SocketAddr>,
}

impl Listen {
    /// The addresses configured for one service.
    pub fn addresses(&self, service: Service) -> &[SocketAddr] {
        match service {
            Service::Smtp => &self.smtp,
            Service::Submission => &self.submission,
            Service::Submissions => &self.submissions,
            Service::Imap => &self.imap,
            Service::Imaps => &self.imaps,
            Service::Pop3 => &self.pop3,
            Service::Pop3s => &self.pop3s,
            Service::ManageSieve => &self.managesieve,
            Service::Lmtp => &self.lmtp,
            Service::Https => &self.https,
            Service::Http => &self.http,
        }
    }
}

/// `[tls]`: certificate chain and private key (PEM). Both unset: a self-signed certificate is generated
/// into `data_dir/tls/` on first start.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tls {
    /// The certificate chain, leaf first (PEM file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// The private key of the leaf certificate (PEM file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
}

/// `[auth]`: authentication policy shared by SMTP, IMAP and POP3.
#[derive(Debug, Clone, Serialize)]
pub struct Auth {
    /// Allow passwords over an unencrypted connection from a non-loopback peer. Default false.
    pub allow_plaintext: bool,
    /// Failed attempts on one account from one client network (IPv4 /24, IPv6 /64) within
    /// `failure_window_secs` before that network is refused for that account.
    pub max_failures: u32,
    /// The sliding window for counting authentication failures, in seconds.
    pub failure_window_secs: u64,
}

/// `[limits]`: connection limits shared by every listener.
#[derive(Debug, Clone, Serialize)]
pub struct Limits {
    /// Open connections in total, over all services.
    pub max_connections: usize,
    /// Open connections from one client address (IPv6 grouped by /64).
    pub max_connections_per_ip: usize,
    /// Seconds a graceful shutdown waits for open sessions before closing them.
    pub shutdown_grace_secs: u64,
}

/// `[mail]`: addressing and mailbox conventions.
#[derive(Debug, Clone, Serialize)]
pub struct Mail {
    /// Separator of plus-addressing (`user+tag@domain`); empty disables it.
    pub recipient_delimiter: String,
    /// The hierarchy separator IMAP shows for mailbox names: "/" or ".".
    pub hierarchy_separator: char,
}

/// `[smtp]`: SMTP server policy and limits (MX and submission).
#[derive(Debug, Clone, Serialize)]
pub struct Smtp {
    /// Largest message accepted, in octets (RFC 1870 SIZE; checked at MAIL and during DATA/BDAT).
    pub max_message_size: u64,
    /// Recipients per message; more are answered `452 4.5.3` (RFC 5321 §4.5.3.1.8: at least 100).
    pub max_recipients: usize,
    /// Longest command line in octets, CRLF included (RFC 5321 §4.5.3.1.4: at least 512).
    pub max_line_length: usize,
    /// Commands per session before `421` and close.
    pub max_commands: u32,
    /// Rejected commands (syntax errors, bad sequence, unknown users...) per session before `421` and close.
    pub max_bad_commands: u32,
    /// Seconds to wait for the next command (RFC 5321 §4.5.3.2.7: at least 5 minutes).
    pub command_timeout_secs: u64,
    /// Seconds to wait for more message data during DATA or BDAT (RFC 5321 §4.5.3.2.6).
    pub data_timeout_secs: u64,
    /// Client networks that may relay without authentication (CIDR). Default: loopback only.
    pub trusted_networks: Vec<Network>,
    /// VRFY policy.
    pub vrfy: VrfyPolicy,
    /// EXPN policy.
    pub expn: ExpnPolicy,
    /// Submission: the envelope sender must be an address of the authenticated account (else `553 5.7.1`).
    pub sender_must_match_login: bool,
    /// More `Received:` headers than this is a mail loop: `554 5.4.6`.
    pub max_received_headers: usize,
}

/// Who gets a real answer to VRFY (RFC 5321 §3.5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VrfyPolicy {
    /// `502 5.5.1` to everyone.
    Off,
    /// `252 2.5.2` ("cannot verify, but will try delivery") to everyone.
    Ambiguous,
    /// Authenticated clients get a real answer; others `252 2.5.2`.
    Authenticated,
}

/// Who may expand aliases and lists with EXPN (RFC 5321 §3.5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpnPolicy {
    /// `502 5.5.1` to everyone.
    Off,
    /// Authenticated clients only; others `502 5.5.1`.
    Authenticated,
}

/// An IP network in CIDR notation (`192.0.2.0/24`, `2001:db8::/32`, or a single address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    /// The network address as written (bits past the prefix are ignored when matching).
    pub addr: std::net::IpAddr,
    /// The prefix length in bits: at most 32 for IPv4, 128 for IPv6.
    pub prefix: u8,
}

impl Network {
    /// Parses `addr/prefix` or a bare address (a host network).
    pub fn parse(text: &str) -> Option<Network> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text.trim(), None),
        };
        let addr: std::net::IpAddr = addr.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok()?,
            Some(_) => return None,
            None => max,
        };
        (prefix <= max).then_some(Network { addr, prefix })
    }

    /// Whether `ip` is in this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for Network {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The file locations searched when no `--config` is given, in order.
pub const DEFAULT_PATHS: [&str; 2] = ["./postern.toml", "/etc/postern/postern.toml"];

impl Config {
    /// Loads the configuration: the explicit file if given (it must exist), else the first of
    /// [`DEFAULT_PATHS`] that exists, else the built-in defaults.
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        if let Some(path) = explicit {
            return Config::from_file(path);
        }
        for candidate in DEFAULT_PATHS {
            let path = Path::new(candidate);
            if path.exists() {
                return Config::from_file(path);
            }
        }
        Config::from_toml("", Source::Defaults)
    }

    /// Reads and validates one file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text, Source::File(path.to_path_buf())).map_err(|e| match e {
            ConfigError::Invalid { message, .. } => ConfigError::Invalid {
                file: Some(path.to_path_buf()),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates TOML text; relative paths in it are kept as written.
    pub fn from_toml(text: &str, source: Source) -> Result<Config, ConfigError> {
        let raw: raw::RawConfig = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            file: None,
            message: e.to_string().trim_end().to_string(),
        })?;
        raw.validate(source)
    }

    /// Checks what the file itself cannot show: that configured certificate and key files are readable.
    /// `serve` and `check-config` call it; loading stays free of I/O beyond the file itself.
    pub fn check_files(&self) -> Result<(), ConfigError> {
        for (key, path) in [("tls.cert", &self.tls.cert), ("tls.key", &self.tls.key)] {
            if let Some(path) = path {
                std::fs::File::open(path).map_err(|source| ConfigError::Unreadable {
                    key,
                    path: path.clone(),
                    source,
                })?;
            }
        }
        for w in &self.notify.webhook {
            for (key, path) in [
                ("notify.webhook.secret_file", Some(&w.secret_file)),
                ("notify.webhook.ca_file", w.ca_file.as_ref()),
            ] {
                if let Some(path) = path {
                    std::fs::File::open(path).map_err(|source| ConfigError::Unreadable {
                        key,
                        path: path.clone(),
                        source,
                    })?;
                }
            }
        }
        for a in &self.fetch.account {
            fetch::check_password_file(a)?;
            if let Some(ca) = &a.ca_file {
                std::fs::File::open(ca).map_err(|source| ConfigError::Unreadable {
                    key: "fetch.account.ca_file",
                    path: ca.clone(),
                    source,
                })?;
            }
        }
        Ok(())
    }

    /// The effective configuration as TOML, as `check-config` prints it.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }

    /// Every enabled service with its addresses, in a stable order.
    pub fn enabled_services(&self) -> BTreeMap<Service, Vec<SocketAddr>> {
        Service::ALL
            .into_iter()
            .filter_map(|s| {
                let addrs = self.listen.addresses(s);
                (!addrs.is_empty()).then(|| (s, addrs.to_vec()))
            })
            .collect()
    }

    /// Path of the account directory database.
    pub fn directory_db(&self) -> PathBuf {
        self.data_dir.join("directory.db")
    }

    /// Root of the Maildir trees (one per account).
    pub fn mail_root(&self) -> PathBuf {
        self.data_dir.join("mail")
    }

    /// Where a generated self-signed certificate and key live.
    pub fn generated_tls_dir(&self) -> PathBuf {
        self.data_dir.join("tls")
    }
}

#[cfg(test)]
mod tests;
