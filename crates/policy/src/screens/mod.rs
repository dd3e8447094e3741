//! The screens of the MX: cheap tests of the client and envelope that run before (and beside)
//! message authentication, each a [`Check`] on the SMTP stages.
//!
//! - [`access`]: access tables by client network, HELO, sender and recipient (`[[policy.access]]`
//!   and `access_file`, re-read at reload);
//! - [`dnsbl`]: DNS block and allow lists (RFC 5782), asked in parallel at connect;
//! - [`greylist`]: the (client network, sender, recipient) triplet waits before it passes;
//! - [`ratelimit`]: messages and recipients per window by client address, network, sender or
//!   account;
//! - the pre-greeting test is the SMTP driver's (`SmtpServer::with_pregreet`).
//!
//! They judge only the MX's (`Service::Smtp`) unauthenticated clients outside `[smtp]
//! trusted_networks` (rate limits per account are the exception). What they find goes into the
//! session's findings: notes (`dnsbl`, `dnswl`, [`NOTE_OK`]) that later screens read, and scores
//! for the verdict.
//!
//! [`Screens`] is the state that outlives a reload (greylist database, rate counters, the last
//! good access rules); [`Screens::early`] and [`Screens::late`] build the checks of a
//! configuration.

pub mod access;
pub mod dnsbl;
pub mod greylist;
pub mod ratelimit;

use postern_config::{Config, Network, Service};
use postern_smtp::{Check, Context};
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Note (connection or transaction) set by an access rule `ok`: the remaining screens let the
/// session (or transaction) through.
pub const NOTE_OK: &str = "screens.ok";
/// Connection note: the DNS allow lists that listed the client, comma-separated.
pub const NOTE_DNSWL: &str = "dnswl";
/// Connection note: the DNS block lists that listed the client, comma-separated.
pub const NOTE_DNSBL: &str = "dnsbl";

/// The transaction note of an access rule `ok` for one recipient.
pub(crate) fn note_ok_rcpt(recipient: &str) -> String {
    format!("{NOTE_OK}:rcpt:{}", recipient.to_ascii_lowercase())
}

/// Whether the screens judge this session: the MX service, no authenticated account, a client
/// outside the trusted networks.
pub(crate) fn screened(ctx: &Context, trusted: &[Network]) -> bool {
    ctx.service == Service::Smtp
        && ctx.account.is_none()
        && !trusted.iter().any(|n| n.contains(ctx.peer))
}

/// Whether an earlier screen let this session, transaction (or, given, recipient) through: an
/// access rule `ok` or a DNS allow list.
pub(crate) fn passed(ctx: &Context, recipient: Option<&str>) -> bool {
    ctx.with_findings(|f| {
        f.note(NOTE_OK).is_some()
            || f.connection.notes.contains_key(NOTE_DNSWL)
            || recipient.is_some_and(|r| f.transaction.notes.contains_key(&note_ok_rcpt(r)))
    })
}

/// The client's network for greylisting and `net` rate limits: /24 for IPv4, /64 for IPv6
/// (IPv4-mapped IPv6 addresses count as IPv4).
pub fn client_net(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// `ip`, with an IPv4-mapped IPv6 address as IPv4.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What the screens keep across reloads.
pub struct Screens {
    /// The access rules last read without error (the file's may fail at a reload).
    access: Mutex<Arc<access::AccessTable>>,
    /// The greylist database, opened when greylisting is first on.
    greylist: Mutex<Option<Arc<greylist::GreylistDb>>>,
    /// Rate counters.
    rates: Arc<ratelimit::RateCounters>,
    data_dir: std::path::PathBuf,
}

/// Why the screens cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ScreensError {
    /// The access file could not be read or has a bad line.
    #[error("policy.access_file: {0}")]
    Access(String),
    /// The greylist database could not be opened.
    #[error("greylist database {path}: {message}")]
    Greylist {
        /// `data_dir/greylist.db`.
        path: std::path::PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl Screens {
    /// The screens' state for `config` (at start): reads the access file and opens the
    /// greylist database if greylisting is on. An error here stops the server.
    pub fn open(config: &Config) -> Result<Screens, ScreensError> {
        let table =
            access::AccessTable::load(&config.policy.screens).map_err(ScreensError::Access)?;
        let screens = Screens {
            access: Mutex::new(Arc::new(table)),
            greylist: Mutex::new(None),
            rates: Arc::new(ratelimit::RateCounters::new(ratelimit::MAX_KEYS)),
            data_dir: config.data_dir.clone(),
        };
        if config.policy.screens.greylist {
            screens.greylist_db()?;
        }
        Ok(screens)
    }

    fn greylist_db(&self) -> Result<Arc<greylist::GreylistDb>, ScreensError> {
        let mut slot = self.greylist.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(db) = &*slot {
            return Ok(db.clone());
        }
        let path = Screens::greylist_path(&self.data_dir);
        let db =
            Arc::new(
                greylist::GreylistDb::open(&path).map_err(|e| ScreensError::Greylist {
                    path: path.clone(),
                    message: e.to_string(),
                })?,
            );
        *slot = Some(db.clone());
        Ok(db)
    }

    /// Reads the access rules of `config` again; on an error keeps the previous ones and logs
    /// why (a reload must not lose the rules for a typo).
    fn access_table(&self, config: &Config) -> Arc<access::AccessTable> {
        let mut slot = self.access.lock().unwrap_or_else(|e| e.into_inner());
        match access::AccessTable::load(&config.policy.screens) {
            Ok(t) => *slot = Arc::new(t),
            Err(e) => {
                tracing::error!("policy.access_file: {e}; the previous access rules stay in force")
            }
        }
        slot.clone()
    }

    /// The screens that go first, in order: the access tables and the DNS lists (connect
    /// stage). Re-reads the access file.
    pub fn early(&self, config: &Config) -> Vec<Arc<dyn Check>> {
        let s = &config.policy.screens;
        let trusted = config.smtp.trusted_networks.clone();
        let mut checks: Vec<Arc<dyn Check>> = Vec::new();
        let table = self.access_table(config);
        if !table.is_empty() {
            checks.push(Arc::new(access::AccessCheck::new(table, trusted.clone())));
        }
        if !s.dns_lists.is_empty() {
            match postern_dns::resolver(&config.dns) {
                Ok(resolver) => checks.push(Arc::new(dnsbl::DnsblCheck::new(
                    s,
                    Arc::new(resolver),
                    trusted,
                ))),
                Err(e) => tracing::error!("policy.dnsbl: no DNS lists are asked: {e}"),
            }
        }
        checks
    }

    /// The screens that go after message authentication: greylisting, then rate limits.
    pub fn late(&self, config: &Config) -> Vec<Arc<dyn Check>> {
        let s = &config.policy.screens;
        let trusted = config.smtp.trusted_networks.clone();
        let mut checks: Vec<Arc<dyn Check>> = Vec::new();
        if s.greylist {
            match self.greylist_db() {
                Ok(db) => checks.push(Arc::new(greylist::GreylistCheck::new(
                    db,
                    greylist::Settings::of(s),
                    trusted.clone(),
                ))),
                Err(e) => tracing::error!("policy.greylist: greylisting is off: {e}"),
            }
        }
        if !s.rate_limits.is_empty() {
            checks.push(Arc::new(ratelimit::RateLimitCheck::new(
                self.rates.clone(),
                s.rate_limits.clone(),
                trusted,
            )));
        }
        checks
    }

    /// The pre-greeting wait of `config`, if on.
    pub fn pregreet(config: &Config) -> Option<(std::time::Duration, bool)> {
        let s = &config.policy.screens;
        (s.pregreet_wait_ms > 0).then(|| {
            (
                std::time::Duration::from_millis(s.pregreet_wait_ms),
                s.pregreet_loopback,
            )
        })
    }

    /// Where the greylist database lives.
    pub fn greylist_path(data_dir: &Path) -> std::path::PathBuf {
        data_dir.join("greylist.db")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_of_clients() {
        assert_eq!(client_net("192.0.2.77".parse().unwrap()), "192.0.2.0/24");
        assert_eq!(
            client_net("::ffff:192.0.2.77".parse().unwrap()),
            "192.0.2.0/24"
        );
        assert_eq!(
            client_net("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
    }
}
