//! Sieve at local delivery: the script sequence, the host the interpreter asks, the durable
//! tracker, SRS for redirects, and performing the actions on the store and the queue.

mod host;
mod perform;
mod sequence;
pub mod srs;
pub mod tracker;

pub(crate) use perform::perform;
use perform::reject_reason;
pub(crate) use sequence::Filtered;

use host::DeliveryHost;
use postern_sieve::{Context, Envelope, Limits, ScriptCache};
use postern_spool::Queue;
use postern_store::{ScriptStore, Store};
use sequence::SequenceScript;
use srs::Srs;
use std::sync::Arc;
use tracker::Tracker;

/// Everything local delivery needs to run Sieve: where the scripts are, where side effects go,
/// what it remembers, and the `[sieve]` settings (a reload builds a new one).
pub struct SieveSetup {
    /// The accounts' scripts.
    pub scripts: Arc<dyn ScriptStore>,
    /// Where redirects, vacation replies and notifications are queued.
    pub queue: Arc<dyn Queue>,
    /// Vacation replies, duplicate marks and performed side effects.
    pub tracker: Arc<dyn Tracker>,
    /// The sender rewriting for redirects to remote domains.
    pub srs: Arc<Srs>,
    /// `[sieve]`.
    pub config: postern_config::Sieve,
    /// The hierarchy separator scripts use in mailbox names (`[mail] hierarchy_separator`).
    pub separator: char,
    /// This host's name, for the Message-IDs of replies and notifications.
    pub hostname: String,
    /// Compiled scripts, shared by every delivery (built with [`SieveSetup::limits`]).
    pub cache: Arc<ScriptCache>,
}

impl SieveSetup {
    /// The interpreter's limits from `[sieve]`.
    pub fn limits(&self) -> Limits {
        limits(&self.config)
    }
}

/// The interpreter's limits from a `[sieve]` section.
pub fn limits(c: &postern_config::Sieve) -> Limits {
    Limits {
        max_script_bytes: c.max_script_bytes,
        max_actions: c.max_actions,
        max_redirects: c.max_redirects,
        max_include_depth: c.max_include_depth,
        max_regex_bytes: c.max_regex_bytes,
        vacation_min_period: c.vacation_min_period_secs,
        vacation_default_period: c.vacation_default_period_secs,
        vacation_max_period: c.vacation_max_period_secs,
    }
}

/// The local time zone's offset from UTC at `now` (seconds since the epoch), in minutes east:
/// currentdate's and date's default zone (RFC 5260 §4.1, §5: "the local time zone" of the
/// server). Taken from the C library (`TZ`, else `/etc/localtime`), so daylight saving time at
/// `now` is included; 0 (UTC) if the library cannot tell.
pub fn local_zone_offset_minutes(now: i64) -> i32 {
    // `time_t` is 64 bits wide on every target postern builds for.
    #[allow(clippy::unnecessary_cast)]
    let t = now as libc::time_t;
    // SAFETY: a zeroed `tm` is a valid value (integers and a null zone-name pointer).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r is the thread-safe variant and
    // writes only into `tm`.
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if ok {
        i32::try_from(tm.tm_gmtoff / 60).unwrap_or(0)
    } else {
        0
    }
}

/// The recipient a sequence runs for.
pub(crate) struct Recipient<'a> {
    /// The account (its mailbox).
    pub(crate) account: &'a str,
    /// The envelope recipient delivered to (the account's address, maybe with a `+detail`).
    pub(crate) address: &'a str,
    /// MAIL FROM; `None` for `<>`.
    pub(crate) sender: Option<&'a str>,
    /// The original recipient before alias expansion, if known.
    pub(crate) orig_to: Option<&'a str>,
    /// The authenticated submitter, if any.
    pub(crate) auth: Option<&'a str>,
    /// The message has the REQUIRETLS flag (RFC 8689 §4.1), which a redirect keeps.
    pub(crate) requiretls: bool,
}

/// Now, in seconds since the Unix epoch.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Loads the sequence for `rcpt` and runs it on `message`. Never fails: what cannot be read is
/// logged and the message is kept.
pub(crate) async fn filter(
    setup: &SieveSetup,
    store: &Arc<dyn Store>,
    delimiter: Option<char>,
    rcpt: &Recipient<'_>,
    message: &[u8],
) -> Filtered {
    let scripts = load_sequence(setup, rcpt.account).await;
    run_sequence(setup, store, delimiter, rcpt, message, scripts).await
}

/// RFC 5429 §2.2: the reject reason when the recipient's scripts reject `message` and keep no
/// copy, decided before the SMTP `250`. Only looks. Scripts that cannot reject (no `reject`
/// and no `include` in their text: the extension must be required where it is used) are not
/// run, so most mail pays for one run only, at delivery.
pub(crate) async fn rejects(
    setup: &SieveSetup,
    store: &Arc<dyn Store>,
    delimiter: Option<char>,
    rcpt: &Recipient<'_>,
    message: &[u8],
) -> Option<String> {
    let scripts = load_sequence(setup, rcpt.account).await;
    let may_reject = scripts.iter().any(|s| {
        s.source.as_ref().is_ok_and(|text| {
            let text = text.to_ascii_lowercase();
            text.contains("reject") || text.contains("include")
        })
    });
    if !may_reject {
        return None;
    }
    let filtered = run_sequence(setup, store, delimiter, rcpt, message, scripts).await;
    reject_reason(&filtered)
}

async fn run_sequence(
    setup: &SieveSetup,
    store: &Arc<dyn Store>,
    delimiter: Option<char>,
    rcpt: &Recipient<'_>,
    message: &[u8],
    scripts: Vec<SequenceScript>,
) -> Filtered {
    if scripts.is_empty() {
        return Filtered::keep();
    }
    let now = unix_now();
    let limits = setup.limits();
    let context = Context {
        envelope: Envelope {
            from: rcpt.sender.unwrap_or("").to_string(),
            to: rcpt.address.to_string(),
            orig_to: rcpt.orig_to.map(str::to_string),
            auth: rcpt.auth.map(str::to_string),
        },
        recipient_delimiter: delimiter,
        user_addresses: user_addresses(rcpt),
        now,
        zone_offset_minutes: local_zone_offset_minutes(now),
        limits,
    };
    let mut host = DeliveryHost {
        runtime: tokio::runtime::Handle::current(),
        account: rcpt.account.to_string(),
        scripts: setup.scripts.clone(),
        tracker: setup.tracker.clone(),
        cache: setup.cache.clone(),
        global_dir: setup.config.global_dir.clone(),
        mailboxes: host::Mailboxes::lazy(store.clone()),
        separator: setup.separator,
        now,
    };
    let message = message.to_vec();
    let account = rcpt.account.to_string();
    match tokio::task::spawn_blocking(move || {
        sequence::run(&scripts, &message, &context, &mut host)
    })
    .await
    {
        Ok(filtered) => filtered,
        Err(e) => {
            // A panic in the interpreter must not lose the message either.
            tracing::error!(account = %account, "sieve: the interpreter failed ({e}); message kept in INBOX");
            Filtered {
                error: Some(e.to_string()),
                ..Filtered::keep()
            }
        }
    }
}

/// The account's own addresses for vacation's implicit `:addresses` (RFC 5230 §4.5).
fn user_addresses(rcpt: &Recipient<'_>) -> Vec<String> {
    let mut v = vec![rcpt.account.to_string()];
    if !rcpt.address.eq_ignore_ascii_case(rcpt.account) {
        v.push(rcpt.address.to_string());
    }
    v
}

/// Global before scripts, the vacation script, the active script, global after scripts.
async fn load_sequence(setup: &SieveSetup, account: &str) -> Vec<SequenceScript> {
    let mut out = Vec::new();
    for path in &setup.config.before {
        out.push(global_script(path).await);
    }
    match setup.scripts.vacation_script(account).await {
        Ok(Some(source)) => out.push(SequenceScript {
            name: "vacation".into(),
            source: Ok(source),
        }),
        Ok(None) => {}
        Err(e) => out.push(SequenceScript {
            name: "vacation".into(),
            source: Err(e.to_string()),
        }),
    }
    match setup.scripts.active_script(account).await {
        Ok(Some((name, source))) => out.push(SequenceScript {
            name,
            source: Ok(source),
        }),
        Ok(None) => {}
        Err(e) => out.push(SequenceScript {
            name: "(active script)".into(),
            source: Err(e.to_string()),
        }),
    }
    for path in &setup.config.after {
        out.push(global_script(path).await);
    }
    out
}

async fn global_script(path: &std::path::Path) -> SequenceScript {
    SequenceScript {
        name: path.display().to_string(),
        source: tokio::fs::read_to_string(path)
            .await
            .map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests;
