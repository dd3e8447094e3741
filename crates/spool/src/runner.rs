//! The queue manager: hands due recipients to a [`Transport`], records the outcome durably,
//! retries temporary failures with back-off, and keeps permanent failures for the bounce.

use crate::spool::now_unix;
use crate::{Queue, QueueEntry, QueueId, RcptState, RcptStatus, Recipient, RetrySchedule};
use async_trait::async_trait;
use postern_mail::{EnhancedCode, Status};
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Where messages go: local delivery, the SMTP client, or a router over both.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Tries to deliver `message` to the recipients of `entry` at `indices`, returning one outcome
    /// per index, in order. `entry.delivered_accounts` lists the local mailboxes that already have
    /// a copy: delivering there again would be a duplicate.
    async fn deliver(
        &self,
        entry: &QueueEntry,
        message: Arc<[u8]>,
        indices: &[usize],
    ) -> Vec<Outcome>;
}

/// What happened to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done. `accounts` are the local mailboxes that now have a copy; `forward` are remote
    /// addresses an alias expanded to, which join the message as new recipients.
    Delivered {
        /// What the transport says it did (class 2).
        note: Status,
        /// Local mailboxes that now have a copy.
        accounts: Vec<String>,
        /// Remote addresses an alias expanded to.
        forward: Vec<String>,
    },
    /// Try again later (4xx, connection trouble, a store that is briefly unavailable).
    Deferred(Status),
    /// Never going to work (5xx, no such mailbox, over quota).
    Failed(Status),
}

/// How the queue runner works: retries, parallelism, polling and DSNs.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    /// Back-off and give-up time for temporary failures.
    pub schedule: RetrySchedule,
    /// Messages processed at once.
    pub concurrency: usize,
    /// How often the spool directory is re-read for messages queued by other processes.
    pub rescan_interval: Duration,
    /// How often the wake-up file of queue administration (`postern queue flush`) is looked for.
    pub wake_poll: Duration,
    /// How bounces and delay warnings are made.
    pub dsn: DsnSettings,
}

/// Delivery status notifications (RFC 3464).
#[derive(Debug, Clone)]
pub struct DsnSettings {
    /// This host's name: `Reporting-MTA` and `MAILER-DAEMON@` it.
    pub reporting_mta: String,
    /// A delay warning goes out once a recipient has waited this long; `None`: never.
    pub delay_warning: Option<Duration>,
}

impl Default for DsnSettings {
    fn default() -> DsnSettings {
        DsnSettings {
            reporting_mta: "localhost".into(),
            delay_warning: Some(Duration::from_secs(4 * 3600)),
        }
    }
}

impl Default for RunnerSettings {
    fn default() -> RunnerSettings {
        RunnerSettings {
            schedule: RetrySchedule::default(),
            concurrency: 64,
            rescan_interval: Duration::from_secs(60),
            wake_poll: Duration::from_secs(1),
            dsn: DsnSettings::default(),
        }
    }
}

/// The queue manager: delivers what is due from a [`Queue`] through a [`Transport`].
pub struct QueueRunner {
    spool: Arc<dyn Queue>,
    transport: Arc<dyn Transport>,
    settings: RunnerSettings,
}

/// Due times and ids, in order.
type Schedule = BTreeSet<(i64, QueueId)>;

impl QueueRunner {
    /// A runner over `spool` (any [`Queue`]; the file [`crate::Spool`] today).
    pub fn new(
        spool: Arc<dyn Queue>,
        transport: Arc<dyn Transport>,
        settings: RunnerSettings,
    ) -> Self {
        QueueRunner {
            spool,
            transport,
            settings,
        }
    }

    /// Runs until `shutdown` is cancelled, then lets the deliveries in flight finish.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut schedule = Schedule::new();
        let mut known: HashSet<QueueId> = HashSet::new();
        let mut in_flight: HashSet<QueueId> = HashSet::new();
        // In flight when the admin asked for a re-read: looked at again as soon as they finish,
        // since the admin's change may have landed after the attempt read the entry.
        let mut recheck: HashSet<QueueId> = HashSet::new();
        let mut tasks: JoinSet<(QueueId, Option<i64>)> = JoinSet::new();
        self.rescan(&mut schedule, &mut known).await;
        let mut next_rescan = tokio::time::Instant::now() + self.settings.rescan_interval;
        let mut wake_poll =
            tokio::time::interval(self.settings.wake_poll.max(Duration::from_millis(50)));
        wake_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        loop {
            for id in self.spool.take_arrivals() {
                if known.insert(id.clone()) {
                    schedule.insert((now_unix(), id));
                }
            }
            let now = now_unix();
            while tasks.len() < self.settings.concurrency.max(1) {
                let Some(first) = schedule.first().cloned() else {
                    break;
                };
                if first.0 > now {
                    break;
                }
                schedule.remove(&first);
                let id = first.1;
                if !in_flight.insert(id.clone()) {
                    continue;
                }
                let spool = self.spool.clone();
                let transport = self.transport.clone();
                let settings = self.settings.clone();
                tasks.spawn(async move {
                    let next = process(&spool, transport.as_ref(), &settings, &id).await;
                    (id, next)
                });
            }

            let next_due = schedule.first().map(|(t, _)| *t);
            let sleep_for = next_due
                .map(|t| Duration::from_secs(u64::try_from(t - now).unwrap_or(0).max(1)))
                .unwrap_or(self.settings.rescan_interval);
            let wake_at = (tokio::time::Instant::now() + sleep_for).min(next_rescan);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.spool.arrived() => {}
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Ok((id, next)) = done {
                        in_flight.remove(&id);
                        if recheck.remove(&id) {
                            schedule.insert((now_unix(), id));
                        } else {
                            match next {
                                Some(t) => { schedule.insert((t, id)); }
                                None => { known.remove(&id); }
                            }
                        }
                    }
                }
                _ = wake_poll.tick() => {
                    if self.spool.take_wake_request() {
                        // Queue administration changed the spool: re-read all of it.
                        tracing::info!("queue wake-up requested: re-reading the spool");
                        schedule.clear();
                        known.retain(|id| in_flight.contains(id));
                        recheck.extend(in_flight.iter().cloned());
                        self.rescan(&mut schedule, &mut known).await;
                    }
                }
                _ = tokio::time::sleep_until(wake_at) => {
                    if tokio::time::Instant::now() >= next_rescan {
                        self.rescan(&mut schedule, &mut known).await;
                        next_rescan = tokio::time::Instant::now() + self.settings.rescan_interval;
                    }
                }
            }
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Adds messages found on disk that the runner does not know yet (queued by another
    /// process, or present at start-up).
    async fn rescan(&self, schedule: &mut Schedule, known: &mut HashSet<QueueId>) {
        let spool = self.spool.clone();
        let found = tokio::task::spawn_blocking(move || {
            let ids = spool.ids()?;
            let mut due = Vec::new();
            for id in ids {
                match spool.entry(&id) {
                    Ok(e) if !e.held => {
                        // Finished but not reported (a bounce by the admin, or a crash
                        // between the verdict and the notice): due now, for the notice.
                        let unreported = (!e.is_done()).then(now_unix);
                        if let Some(t) = e.next_due().or(unreported) {
                            due.push((t, id));
                        }
                    }
                    Ok(_) => {}
                    Err(err) => tracing::error!(queue_id = %id, "skipping queued message: {err}"),
                }
            }
            Ok::<_, crate::SpoolError>(due)
        })
        .await;
        match found {
            Ok(Ok(due)) => {
                for (t, id) in due {
                    if known.insert(id.clone()) {
                        schedule.insert((t, id));
                    }
                }
            }
            Ok(Err(e)) => tracing::error!("reading the spool: {e}"),
            Err(e) => tracing::error!("reading the spool: {e}"),
        }
    }
}

/// One pass over one message: deliver what is due, record it, and say when to come back.
async fn process(
    spool: &Arc<dyn Queue>,
    transport: &dyn Transport,
    settings: &RunnerSettings,
    id: &QueueId,
) -> Option<i64> {
    let retry = &settings.schedule;
    let loaded = match spool.fresh(id) {
        Some(v) => Ok(Ok(v)),
        None => {
            let spool = spool.clone();
            let id = id.clone();
            tokio::task::spawn_blocking(move || {
                Ok::<_, crate::SpoolError>((spool.entry(&id)?, spool.message(&id)?))
            })
            .await
        }
    };
    let (mut entry, message) = match loaded {
        Ok(Ok(v)) => v,
        Ok(Err(crate::SpoolError::NotFound(_))) => return None, // deleted by the admin
        Ok(Err(e)) => {
            tracing::error!(queue_id = %id, "cannot load queued message: {e}");
            return Some(now_unix() + 300);
        }
        Err(e) => {
            tracing::error!(queue_id = %id, "cannot load queued message: {e}");
            return Some(now_unix() + 300);
        }
    };
    if entry.held {
        return None;
    }
    let message: Arc<[u8]> = message.into();
    let mut changed = false;
    // Alias expansion may add recipients; they are delivered in the same pass.
    loop {
        let now = now_unix();
        let due: Vec<usize> = entry
            .recipients
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_pending() && r.next_attempt <= now)
            .map(|(i, _)| i)
            .collect();
        if due.is_empty() {
            break;
        }
        let outcomes = transport.deliver(&entry, message.clone(), &due).await;
        changed = true;
        let before = entry.recipients.len();
        for (i, outcome) in due.into_iter().zip(outcomes) {
            record(&mut entry, i, outcome, retry, now);
        }
        if entry.recipients.len() == before {
            break;
        }
    }
    let reports = reports_due(&entry, &message, &settings.dsn, retry, now_unix());
    let mut dsn_failed = false;
    if !reports.is_empty() {
        changed = true;
        if let Some((envelope, dsn)) = reports.message.clone() {
            let queued = {
                let spool = spool.clone();
                tokio::task::spawn_blocking(move || spool.enqueue(&envelope, &dsn)).await
            };
            match queued {
                Ok(Ok(dsn_id)) => {
                    tracing::info!(queue_id = %id, dsn = %dsn_id, to = entry.envelope.sender.as_deref().unwrap_or("<>"), "delivery status notification queued");
                    reports.mark(&mut entry);
                }
                Ok(Err(e)) => {
                    tracing::error!(queue_id = %id, "queueing the delivery status notification: {e}");
                    dsn_failed = true;
                }
                Err(e) => {
                    tracing::error!(queue_id = %id, "queueing the delivery status notification: {e}");
                    dsn_failed = true;
                }
            }
        } else {
            reports.mark(&mut entry);
        }
    }
    let done = entry.is_done();
    let next = entry.next_due();
    let saved = if done && spool.is_fresh(&entry.id) {
        // Delivered at the first attempt: a done record, no disk wait.
        Ok(spool.remove(&entry.id))
    } else {
        let spool = spool.clone();
        let entry = entry.clone();
        tokio::task::spawn_blocking(move || {
            if !spool.exists(&entry.id) {
                // Deleted by the admin meanwhile.
                Ok(())
            } else if done {
                spool.remove(&entry.id)
            } else if changed {
                // A hold set by the admin while this pass ran is kept.
                let mut entry = entry;
                if let Ok(on_disk) = spool.entry(&entry.id) {
                    entry.held |= on_disk.held;
                }
                spool.save(&entry)
            } else {
                Ok(())
            }
        })
        .await
    };
    match saved {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(queue_id = %id, "recording delivery state: {e}"),
        Err(e) => tracing::error!(queue_id = %id, "recording delivery state: {e}"),
    }
    if dsn_failed {
        return Some(next.unwrap_or(i64::MAX).min(now_unix() + 300));
    }
    next
}

/// The notifications one pass owes: which recipients, and the DSN message when one is sent.
struct Reports {
    indices: Vec<usize>,
    delayed: Vec<usize>,
    message: Option<(crate::Envelope, Vec<u8>)>,
}

impl Reports {
    fn is_empty(&self) -> bool {
        self.indices.is_empty() && self.delayed.is_empty()
    }
    fn mark(&self, entry: &mut QueueEntry) {
        for &i in &self.indices {
            entry.recipients[i].reported = true;
        }
        for &i in &self.delayed {
            entry.recipients[i].delay_reported = true;
        }
    }
}

/// RFC 3461 §4.1 / RFC 3464: failure, delay and success notices due now. Recipients that need no
/// notice (NOTIFY says so, the sender is null, the next hop took over) are marked done silently.
fn reports_due(
    entry: &QueueEntry,
    original: &[u8],
    dsn: &DsnSettings,
    retry: &RetrySchedule,
    now: i64,
) -> Reports {
    use crate::dsn::{Action, DsnItem};
    let null_sender = entry.envelope.sender.is_none();
    let mut items = Vec::new();
    let mut indices = Vec::new();
    let mut delayed = Vec::new();
    for (i, r) in entry.recipients.iter().enumerate() {
        let notify = r.recipient.notify;
        match &r.status {
            RcptStatus::Pending => {
                let waited = Duration::from_secs(u64::try_from(now - entry.arrived).unwrap_or(0));
                let due = dsn.delay_warning.is_some_and(|d| waited >= d);
                if due && !r.delay_reported && r.attempts > 0 {
                    delayed.push(i);
                    if notify.delay && !null_sender {
                        items.push(DsnItem {
                            index: i,
                            action: Action::Delayed,
                            status: r.last_error.clone().unwrap_or_else(|| {
                                Status::new(EnhancedCode::TEMPORARY, "not yet delivered")
                            }),
                        });
                    }
                }
            }
            _ if r.reported => {}
            RcptStatus::Failed { reason, .. } => {
                indices.push(i);
                if notify.failure && !null_sender {
                    items.push(DsnItem {
                        index: i,
                        action: Action::Failed,
                        status: reason.clone(),
                    });
                }
            }
            RcptStatus::Delivered { note, .. } => {
                indices.push(i);
                if notify.success
                    && !null_sender
                    && !note.text.contains(crate::dsn::NOTE_DSN_PASSED_ON)
                {
                    let action = if note.text.contains(crate::dsn::NOTE_RELAYED) {
                        Action::Relayed
                    } else if note.text.starts_with("expanded to") {
                        Action::Expanded
                    } else {
                        Action::Delivered
                    };
                    items.push(DsnItem {
                        index: i,
                        action,
                        status: note.clone(),
                    });
                }
            }
        }
    }
    let message = if items.is_empty() {
        None
    } else {
        let give_up_at =
            entry.arrived + i64::try_from(retry.give_up_after.as_secs()).unwrap_or(i64::MAX / 2);
        let dsn_bytes =
            crate::dsn::compose(entry, original, &items, &dsn.reporting_mta, now, give_up_at);
        crate::dsn::envelope_for(&entry.envelope, &dsn_bytes).map(|env| (env, dsn_bytes))
    };
    Reports {
        indices,
        delayed,
        message,
    }
}

fn record(entry: &mut QueueEntry, i: usize, outcome: Outcome, retry: &RetrySchedule, now: i64) {
    let id = entry.id.clone();
    let parent = entry.recipients[i].recipient.clone();
    match outcome {
        Outcome::Delivered {
            note,
            accounts,
            forward,
        } => {
            tracing::info!(queue_id = %id, to = %parent.address, "delivered: {note}");
            let r = &mut entry.recipients[i];
            r.attempts += 1;
            r.status = RcptStatus::Delivered { at: now, note };
            entry.delivered_accounts.extend(accounts);
            for address in forward {
                if entry
                    .recipients
                    .iter()
                    .any(|r| r.recipient.address == address)
                {
                    continue;
                }
                let recipient = Recipient {
                    address,
                    notify: parent.notify,
                    orcpt: parent
                        .orcpt
                        .clone()
                        .or_else(|| Some(format!("rfc822;{}", parent.address))),
                };
                entry
                    .recipients
                    .push(RcptState::new(recipient, now, Some(parent.address.clone())));
            }
        }
        Outcome::Deferred(reason) => {
            let age = Duration::from_secs(u64::try_from(now - entry.arrived).unwrap_or(0));
            let r = &mut entry.recipients[i];
            r.attempts += 1;
            if retry.expired(age) {
                tracing::warn!(queue_id = %id, to = %parent.address, "giving up: {reason}");
                // RFC 3463 5.4.7: a temporary failure that lasted too long.
                r.status = RcptStatus::Failed {
                    at: now,
                    reason: Status::with_text(
                        EnhancedCode::EXPIRED,
                        format!("gave up after {} attempts: {reason}", r.attempts),
                    ),
                };
            } else if let Some(planned) = r.scheduled.take().filter(|t| *t > now) {
                // An early attempt the admin asked for: the back-off goes on as planned.
                r.attempts -= 1;
                tracing::info!(queue_id = %id, to = %parent.address, retry_in = planned - now, "deferred (early retry): {reason}");
                r.next_attempt = planned;
            } else {
                let delay = retry.delay_after(r.attempts);
                tracing::info!(queue_id = %id, to = %parent.address, retry_in = delay.as_secs(), "deferred: {reason}");
                r.next_attempt = now + i64::try_from(delay.as_secs()).unwrap_or(3600);
            }
            r.last_error = Some(reason);
        }
        Outcome::Failed(reason) => {
            tracing::warn!(queue_id = %id, to = %parent.address, "failed: {reason}");
            let r = &mut entry.recipients[i];
            r.attempts += 1;
            r.status = RcptStatus::Failed {
                at: now,
                reason: reason.clone(),
            };
            r.last_error = Some(reason);
        }
    }
}

#[cfg(test)]
mod tests;
