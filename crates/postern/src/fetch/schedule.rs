//! The schedule of retrieval inside `serve`: every account (of the file and of `postern fetch
//! add`) has its own task that polls it every interval plus a random jitter, at most
//! `[fetch] concurrency` runs at once; an IMAP account with `idle` is watched instead
//! (`imap::watch`: pushed mail arrives within seconds), outside that limit. A failed run backs
//! off (doubling from a minute up to `max_backoff_secs`; at least `auth_backoff_secs` when the
//! admin must act: a refused login, an untrusted certificate, a bad setting), and is logged
//! once per change of state. The list of accounts is read again at SIGHUP and every minute,
//! so accounts added or removed with the CLI are picked up while serve runs.

use super::{lock_account, run_account, Engine};
use postern_fetch::{
    Accounts, ErrorKind, FetchAccount, FetchError, Progress, Protocol, Run, RunReport,
};
use rand::Rng;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How often the account list is read again without a SIGHUP.
const RESCAN: Duration = Duration::from_secs(60);
/// The first wait after a failure; it doubles with each further failure.
const FIRST_BACKOFF: Duration = Duration::from_secs(60);
/// How long to wait before trying again when a CLI run holds the account's lock.
const BUSY_RETRY: Duration = Duration::from_secs(30);

/// Starts the scheduler. `engines` carries the current engine (a reload sends a new one, with
/// the new configuration and local delivery); the task ends when `stop` is cancelled, once
/// every run has stopped (runs stop between messages, everything delivered recorded).
pub(crate) fn spawn(
    engines: watch::Receiver<Arc<Engine>>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(supervise(engines, stop))
}

struct Task {
    account: FetchAccount,
    cancel: CancellationToken,
}

async fn supervise(mut engines: watch::Receiver<Arc<Engine>>, stop: CancellationToken) {
    let first = engines.borrow().clone();
    let semaphore = Arc::new(Semaphore::new(first.config.fetch.concurrency));
    let mut concurrency = first.config.fetch.concurrency;
    let mut tasks: HashMap<String, Task> = HashMap::new();
    let mut set = JoinSet::new();
    let mut broken_logged: HashMap<String, String> = HashMap::new();
    loop {
        let engine = engines.borrow().clone();
        // A reload may change [fetch] concurrency: permits are added, or taken back (those
        // held by running runs are taken back as the runs end).
        let wanted_concurrency = engine.config.fetch.concurrency;
        if wanted_concurrency > concurrency {
            semaphore.add_permits(wanted_concurrency - concurrency);
            concurrency = wanted_concurrency;
        } else if wanted_concurrency < concurrency {
            let fewer = concurrency - wanted_concurrency;
            let taken = semaphore.forget_permits(fewer);
            if taken < fewer {
                let semaphore = semaphore.clone();
                let rest = u32::try_from(fewer - taken).unwrap_or(u32::MAX);
                tokio::spawn(async move {
                    if let Ok(permits) = semaphore.acquire_many(rest).await {
                        permits.forget();
                    }
                });
            }
            concurrency = wanted_concurrency;
        }
        let wanted = if engine.config.fetch.enabled {
            let db = engine.db.clone();
            let config = engine.config.clone();
            match tokio::task::spawn_blocking(move || super::all_accounts(&config, db.as_ref()))
                .await
            {
                Ok(Ok((accounts, broken))) => {
                    for (id, e) in broken {
                        let text = e.to_string();
                        if broken_logged.get(&id) != Some(&text) {
                            tracing::error!(account = %id, "fetch: account not usable: {text}");
                            broken_logged.insert(id, text);
                        }
                    }
                    Some(accounts)
                }
                Ok(Err(e)) => {
                    tracing::warn!("fetch: cannot read the accounts: {e}");
                    None
                }
                Err(e) => {
                    tracing::warn!("fetch: cannot read the accounts: {e}");
                    None
                }
            }
        } else {
            Some(Vec::new())
        };
        if let Some(wanted) = wanted {
            // Removed or changed accounts stop; new (or changed) ones start.
            tasks.retain(|id, task| {
                let keep = wanted.iter().any(|a| &a.id == id && *a == task.account);
                if !keep {
                    tracing::info!(account = %id, "fetch: account removed or changed: its schedule stops");
                    task.cancel.cancel();
                }
                keep
            });
            for account in wanted {
                if tasks.contains_key(&account.id) {
                    continue;
                }
                let how = if account.url.protocol == Protocol::Imap && account.options.idle {
                    "watched with IDLE where the server offers it".to_string()
                } else {
                    format!("polled every {} s", account.options.interval.as_secs())
                };
                tracing::info!(account = %account.id, owner = %account.local, url = %account.url, "fetch: {how}");
                let cancel = stop.child_token();
                tasks.insert(
                    account.id.clone(),
                    Task {
                        account: account.clone(),
                        cancel: cancel.clone(),
                    },
                );
                set.spawn(account_loop(
                    engines.clone(),
                    account,
                    semaphore.clone(),
                    cancel,
                ));
            }
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            changed = engines.changed() => if changed.is_err() { break },
            _ = tokio::time::sleep(RESCAN) => {}
            Some(_) = set.join_next() => {}
        }
    }
    for task in tasks.values() {
        task.cancel.cancel();
    }
    while set.join_next().await.is_some() {}
}

/// The wait after `failures` failed runs in a row, the last of kind `kind`.
pub(crate) fn backoff(failures: u32, kind: ErrorKind, max: Duration, admin: Duration) -> Duration {
    let doubled = FIRST_BACKOFF
        .checked_mul(1u32 << failures.saturating_sub(1).min(20))
        .unwrap_or(max)
        .min(max);
    if kind.needs_admin() {
        doubled.max(admin)
    } else {
        doubled
    }
}

/// A random extra wait of up to `jitter`.
fn jitter(jitter: Duration) -> Duration {
    if jitter.is_zero() {
        return Duration::ZERO;
    }
    Duration::from_millis(rand::thread_rng().gen_range(0..=jitter.as_millis() as u64))
}

/// Logs an account's state when it changes: a new error (WARN, with the owner and URL), or
/// success after errors (INFO).
struct StateLog {
    last: Option<String>,
}

impl StateLog {
    fn outcome(
        &mut self,
        account: &FetchAccount,
        outcome: &Result<RunReport, FetchError>,
        wait: Duration,
    ) {
        match outcome {
            Ok(report) => {
                if self.last.take().is_some() {
                    tracing::info!(account = %account.id, owner = %account.local, url = %account.url, "fetch: works again");
                }
                if report.fetched > 0 || report.refused > 0 || report.deleted > 0 {
                    tracing::info!(account = %account.id, owner = %account.local, "fetch: {}", super::summary(report));
                }
            }
            Err(e) => {
                let text = e.to_string();
                if self.last.as_ref() != Some(&text) {
                    tracing::warn!(
                        account = %account.id,
                        owner = %account.local,
                        url = %account.url,
                        "fetch failed: {text}; next attempt in {} s",
                        wait.as_secs()
                    );
                    self.last = Some(text);
                }
            }
        }
    }
}

/// Sleeps `d`; false when cancelled first.
async fn sleep(d: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

async fn account_loop(
    engines: watch::Receiver<Arc<Engine>>,
    account: FetchAccount,
    semaphore: Arc<Semaphore>,
    cancel: CancellationToken,
) {
    let settings = engines.borrow().config.fetch.clone();
    let jitter_max = Duration::from_secs(settings.jitter_secs);
    let max_backoff = Duration::from_secs(settings.max_backoff_secs);
    let admin_backoff = Duration::from_secs(settings.auth_backoff_secs);
    let mut log = StateLog { last: None };
    // Picks up where the last serve left off: an account that failed waits out its back-off.
    let db = engines.borrow().db.clone();
    let id = account.id.clone();
    let mut failures = tokio::task::spawn_blocking(move || db.status(&id))
        .await
        .ok()
        .and_then(Result::ok)
        .map_or(0, |s| s.failures);
    let mut wait = jitter(
        jitter_max
            .min(Duration::from_secs(5))
            .max(Duration::from_millis(1)),
    );
    if failures > 0 {
        wait = backoff(failures, ErrorKind::Network, max_backoff, Duration::ZERO)
            .min(account.options.interval)
            + jitter(jitter_max);
    }
    let watching = account.url.protocol == Protocol::Imap && account.options.idle;
    loop {
        if !sleep(wait, &cancel).await {
            return;
        }
        let engine = engines.borrow().clone();
        let data_dir = engine.config.data_dir.clone();
        let id = account.id.clone();
        let lock = tokio::task::spawn_blocking(move || lock_account(&data_dir, &id, false)).await;
        let _lock = match lock {
            Ok(Ok(Some(lock))) => lock,
            Ok(Ok(None)) => {
                tracing::debug!(account = %account.id, "fetch: a CLI run holds the account; later");
                wait = BUSY_RETRY;
                continue;
            }
            Ok(Err(e)) => {
                tracing::warn!(account = %account.id, "fetch: cannot take the account's lock: {e}");
                wait = BUSY_RETRY.max(account.options.interval);
                continue;
            }
            Err(_) => return,
        };
        let outcome = if watching {
            watch_account(&engine, &account, cancel.clone())
                .await
                .map(|()| RunReport::default())
        } else {
            let Ok(_permit) = semaphore.acquire().await else {
                return;
            };
            run_account(
                &engine,
                &account,
                &postern_fetch::NoProgress,
                cancel.clone(),
            )
            .await
        };
        if cancel.is_cancelled() && outcome.is_ok() {
            return;
        }
        match &outcome {
            Ok(_) => {
                failures = 0;
                wait = account.options.interval + jitter(jitter_max);
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                wait = backoff(failures, e.kind, max_backoff, admin_backoff) + jitter(jitter_max);
            }
        }
        if !watching || outcome.is_err() {
            log.outcome(&account, &outcome, wait);
        }
    }
}

/// Tells the account's status of every sync of a watched account (they happen inside
/// `imap::watch`, between waits).
struct WatchProgress {
    sender: tokio::sync::mpsc::UnboundedSender<Result<RunReport, FetchError>>,
}

impl Progress for WatchProgress {
    fn synced(&self, _account: &FetchAccount, outcome: &Result<RunReport, FetchError>) {
        let _ = self.sender.send(outcome.clone());
    }
}

/// Watches an IMAP account (IDLE, or polling when the server has no IDLE) until it fails or
/// `cancel` fires; every sync's outcome is recorded and logged as it happens.
async fn watch_account(
    engine: &Engine,
    account: &FetchAccount,
    cancel: CancellationToken,
) -> Result<(), FetchError> {
    let (password, connector) = match super::prepare(engine, account).await {
        Ok(p) => p,
        Err(e) => {
            super::record(engine, &account.id, Err(&e)).await;
            return Err(e);
        }
    };
    let (sender, mut synced) = tokio::sync::mpsc::unbounded_channel();
    let progress = WatchProgress { sender };
    let mut log = StateLog { last: None };
    let result = {
        let run = Run {
            account,
            password: &password,
            connector: &connector,
            state: engine.db.as_ref(),
            inbox: &engine.inbox,
            progress: &progress,
            cancel,
        };
        let watched = postern_fetch::imap::watch(&run);
        tokio::pin!(watched);
        loop {
            tokio::select! {
                r = &mut watched => break r,
                Some(outcome) = synced.recv() => {
                    super::record(engine, &account.id, outcome.as_ref()).await;
                    log.outcome(account, &outcome, account.options.interval);
                }
            }
        }
    };
    while let Ok(outcome) = synced.try_recv() {
        super::record(engine, &account.id, outcome.as_ref()).await;
    }
    if let Err(e) = &result {
        super::record(engine, &account.id, Err(e)).await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum_and_waits_long_for_the_admin() {
        let max = Duration::from_secs(3600);
        let admin = Duration::from_secs(1800);
        let secs = |n, k| backoff(n, k, max, admin).as_secs();
        assert_eq!(secs(1, ErrorKind::Network), 60);
        assert_eq!(secs(2, ErrorKind::Network), 120);
        assert_eq!(secs(4, ErrorKind::Remote), 480);
        assert_eq!(secs(7, ErrorKind::Network), 3600);
        assert_eq!(secs(200, ErrorKind::Network), 3600);
        assert_eq!(secs(1, ErrorKind::Auth), 1800);
        assert_eq!(secs(1, ErrorKind::Tls), 1800);
        assert_eq!(secs(7, ErrorKind::Config), 3600);
    }

    #[test]
    fn jitter_stays_in_bounds() {
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
        for _ in 0..100 {
            assert!(jitter(Duration::from_secs(3)) <= Duration::from_secs(3));
        }
    }
}
