//! New-mail notification: the [`Notifier`] that local delivery calls after each stored message,
//! driven by `[notify]`. Three kinds of hook, each optional and per account or for all:
//!
//! - **commands** ([`command`]): a program run directly (never through a shell) with the event
//!   in `POSTERN_*` environment variables, a clean environment, stdin from /dev/null, its output
//!   captured, and a timeout that kills its process group;
//! - **webhooks** ([`webhook`]): a JSON document POSTed over HTTP/1.1 or HTTPS (certificates
//!   always verified), signed with HMAC-SHA256 over a timestamp and the body, retried with
//!   back-off on 5xx and network errors;
//! - **comsat** ([`comsat`]): the biff datagram `user@offset:path` to 127.0.0.1, for accounts
//!   whose local part is a Unix login.
//!
//! Delivery never waits for a hook: [`Hub::new_mail`] counts the event, spawns its work on the
//! runtime and returns. At most `max_running` hooks run at once (a fair semaphore: first come,
//! first run); at most `queue_size` more notifications (one per hook and message) wait, for a
//! slot or for a webhook's next retry. Beyond that, notifications are dropped, with one warning
//! when dropping starts and one line with the count when it ends (not one per event).
//! Notifications are not durable: those waiting when serve stops are lost (the mail is not).
//! Each failed hook is logged at INFO with its reason, each success at DEBUG.

pub mod command;
pub mod comsat;
pub mod http;
pub mod webhook;

use postern_config::Notify;
use postern_delivery::{NewMail, Notifier};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Why the hooks could not be set up (a webhook's secret or CA file).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A file a key names could not be read.
    #[error("{key}: cannot read {path}: {source}")]
    Unreadable {
        /// The key, e.g. `notify.webhook[0].secret_file`.
        key: String,
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file a key names has unusable content.
    #[error("{key}: {path}: {reason}")]
    Bad {
        /// The key.
        key: String,
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Not called inside a tokio runtime.
    #[error("the notification hooks need a running tokio runtime")]
    NoRuntime,
}

/// One event as the hooks see it: the stored message, when it was announced, and an id that
/// stays the same across a webhook's retries (receivers deduplicate with it).
#[derive(Clone, Debug)]
pub struct Event {
    /// What was stored.
    pub mail: NewMail,
    /// When it was announced, Unix seconds.
    pub date: i64,
    /// 32 hex digits, random.
    pub id: String,
}

impl Event {
    /// An event for `mail`, now, with a fresh id.
    pub fn new(mail: NewMail) -> Event {
        Event {
            mail,
            date: unix_now(),
            id: random_id(),
        }
    }
}

/// Which hook a job runs.
#[derive(Clone, Copy, Debug)]
enum Hook {
    Command(usize),
    Webhook(usize),
    Comsat,
}

/// The hooks themselves, shared by the running jobs.
struct Hooks {
    commands: Vec<command::CommandHook>,
    webhooks: Vec<webhook::WebhookHook>,
    comsat: Option<comsat::Comsat>,
    /// At most `max_running` attempts at once.
    slots: Arc<tokio::sync::Semaphore>,
}

/// Accepted jobs not finished yet, and a wake-up when they reach zero.
#[derive(Default)]
struct Pending {
    count: AtomicUsize,
    idle: tokio::sync::Notify,
}

impl Pending {
    fn done(&self) {
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }
}

/// The [`Notifier`] built from `[notify]`.
pub struct Hub {
    hooks: Arc<Hooks>,
    runtime: tokio::runtime::Handle,
    pending: Arc<Pending>,
    /// Most jobs accepted at once (running and waiting).
    bound: usize,
    dropping: AtomicBool,
    dropped: AtomicU64,
}

impl Hub {
    /// The hooks of `config`; `None` when none is configured. Reads the webhooks' secrets and
    /// CA files now (an unreadable one is an error, so `serve` and a reload refuse it). Must be
    /// called inside a tokio runtime: the hooks run on it.
    pub fn from_config(config: &Notify) -> Result<Option<Arc<Hub>>, NotifyError> {
        if !config.any() {
            return Ok(None);
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| NotifyError::NoRuntime)?;
        let commands = config
            .command
            .iter()
            .map(command::CommandHook::from_config)
            .collect();
        let webhooks = config
            .webhook
            .iter()
            .enumerate()
            .map(|(i, w)| webhook::WebhookHook::from_config(i, w))
            .collect::<Result<Vec<_>, _>>()?;
        let comsat = config.comsat.then_some(comsat::Comsat {
            port: config.comsat_port,
        });
        Ok(Some(Arc::new(Hub {
            hooks: Arc::new(Hooks {
                commands,
                webhooks,
                comsat,
                slots: Arc::new(tokio::sync::Semaphore::new(config.max_running)),
            }),
            runtime,
            pending: Arc::new(Pending::default()),
            bound: config.max_running.saturating_add(config.queue_size),
            dropping: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        })))
    }

    /// Waits until every accepted notification has finished (or `limit` passes); true when
    /// none is left. For one-shot programs (an LDA run) before they exit, and for tests.
    pub async fn wait_idle(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.pending.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.pending.count.load(Ordering::Acquire) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.pending.count.load(Ordering::Acquire) == 0;
            }
        }
    }

    /// Runs every hook that applies to `mail.account` once, now, one after the other (not
    /// through the queue), and returns each hook's description and outcome: `postern notify
    /// test`. Webhooks retry as configured.
    pub async fn test(&self, mail: NewMail) -> Vec<(String, Result<String, String>)> {
        let event = Event::new(mail);
        let mut out = Vec::new();
        for hook in self.hooks_for(&event.mail.account) {
            out.push(self.hooks.execute(hook, &event).await);
        }
        out
    }

    /// The hooks that run for `account`.
    fn hooks_for(&self, account: &str) -> Vec<Hook> {
        let mut out = Vec::new();
        for (i, c) in self.hooks.commands.iter().enumerate() {
            if matches_account(&c.accounts, account) {
                out.push(Hook::Command(i));
            }
        }
        for (i, w) in self.hooks.webhooks.iter().enumerate() {
            if matches_account(&w.accounts, account) {
                out.push(Hook::Webhook(i));
            }
        }
        if self.hooks.comsat.is_some() {
            out.push(Hook::Comsat);
        }
        out
    }

    /// Accepts one job unless `bound` are pending; the caller spawns it.
    fn accept(&self) -> bool {
        let taken = self
            .pending
            .count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.bound).then_some(n + 1)
            })
            .is_ok();
        if taken {
            if self.dropping.swap(false, Ordering::AcqRel) {
                let n = self.dropped.swap(0, Ordering::AcqRel);
                tracing::warn!("notify: the hooks caught up; {n} notification(s) were dropped");
            }
        } else {
            self.dropped.fetch_add(1, Ordering::AcqRel);
            if !self.dropping.swap(true, Ordering::AcqRel) {
                tracing::warn!(
                    "notify: {} notifications running or waiting: new ones are dropped until the hooks catch up (see [notify] max_running, queue_size and the hooks' timeouts)",
                    self.bound
                );
            }
        }
        taken
    }
}

impl Notifier for Hub {
    fn new_mail(&self, mail: NewMail) {
        let hooks = self.hooks_for(&mail.account);
        if hooks.is_empty() {
            return;
        }
        let event = Arc::new(Event::new(mail));
        for hook in hooks {
            if !self.accept() {
                continue;
            }
            let hooks = self.hooks.clone();
            let pending = self.pending.clone();
            let event = event.clone();
            self.runtime.spawn(async move {
                hooks.run(hook, &event).await;
                pending.done();
            });
        }
    }

    fn wants_path(&self) -> bool {
        !self.hooks.commands.is_empty() || self.hooks.comsat.is_some()
    }
}

impl Hooks {
    async fn run(&self, hook: Hook, event: &Event) {
        let account = &event.mail.account;
        let (what, result) = self.execute(hook, event).await;
        match result {
            Ok(note) => tracing::debug!(
                %account, mailbox = %event.mail.mailbox, uid = event.mail.uid,
                "notify: {what}: {note}"
            ),
            Err(reason) => tracing::info!(
                %account, mailbox = %event.mail.mailbox, uid = event.mail.uid,
                "notify: {what} failed: {reason}"
            ),
        }
    }

    /// Runs one hook for `event`: what it is, and how it went.
    async fn execute(&self, hook: Hook, event: &Event) -> (String, Result<String, String>) {
        match hook {
            Hook::Command(i) => {
                let c = &self.commands[i];
                let result = match self.slots.acquire().await {
                    Ok(_slot) => c.run(event).await,
                    Err(_) => Err("shutting down".into()),
                };
                (format!("command {}", c.program.display()), result)
            }
            Hook::Webhook(i) => {
                let w = &self.webhooks[i];
                (
                    format!("webhook {}", w.url),
                    w.deliver(event, &self.slots, webhook::BACKOFF).await,
                )
            }
            Hook::Comsat => {
                let result = match (&self.comsat, self.slots.acquire().await) {
                    (Some(c), Ok(_slot)) => c.notify(event).await,
                    (None, _) => Err("comsat is off".into()),
                    (_, Err(_)) => Err("shutting down".into()),
                };
                ("comsat".to_string(), result)
            }
        }
    }
}

/// Whether a hook's `accounts` list (`user@domain`, `@domain`; empty = all) covers `account`.
fn matches_account(list: &[String], account: &str) -> bool {
    list.is_empty()
        || list.iter().any(|entry| match entry.strip_prefix('@') {
            Some(domain) => account
                .rsplit_once('@')
                .is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain)),
            None => entry.eq_ignore_ascii_case(account),
        })
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn random_id() -> String {
    let bytes: [u8; 16] = rand::random();
    hex(&bytes)
}

/// Lower-case hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests;
