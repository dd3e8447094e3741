//! DMARC aggregate reports in the binary (RFC 7489 §7.2): the daily job of `serve` that sends
//! them, the intake that stores the reports delivered to our own domains, and the pieces
//! `postern dmarc send-reports` shares with the job.

use crate::daily::{local_domains, now};
use postern_config::Config;
use postern_directory::SqliteDirectory;
use postern_dmarc::send::{self, Lookup, Plan, Reporter};
use postern_net::CancellationToken;
use postern_spool::{Outcome, Queue, QueueEntry, Transport};
use std::path::PathBuf;
use std::sync::Arc;

/// Who we are in the reports (`[policy] dmarc_report_org`, `dmarc_report_from`).
pub(crate) fn reporter(config: &Config) -> Reporter {
    let r = &config.policy.reports;
    Reporter {
        org_name: r.org_name(&config.hostname),
        from: r.from_address(&config.hostname),
        hostname: config.hostname.clone(),
    }
}

/// The reports of the day starting at `begin`, planned (DNS lookups included).
pub(crate) async fn plan(
    config: &Config,
    directory: &SqliteDirectory,
    begin: i64,
) -> anyhow::Result<Plan> {
    let local = local_domains(directory)?;
    let mut skipped = Vec::new();
    let pending = {
        let conn = postern_dmarc::db::open(&config.data_dir)?;
        send::pending(&conn, &local, begin, &mut skipped)?
    };
    let lookup = Lookup::new(&config.dns)?;
    Ok(send::plan(pending, skipped, &lookup, &reporter(config), begin, now()).await)
}

/// Plans and queues the reports of the day starting at `begin`; returns what was queued.
pub(crate) async fn send_day(
    config: &Config,
    directory: &SqliteDirectory,
    queue: &dyn Queue,
    begin: i64,
) -> anyhow::Result<(Plan, Vec<(String, postern_spool::QueueId)>)> {
    let plan = plan(config, directory, begin).await?;
    let conn = postern_dmarc::db::open(&config.data_dir)?;
    let queued = send::enqueue(&conn, queue, &plan, now())?;
    Ok((plan, queued))
}

/// One run of the job: yesterday's reports (and those of the day before that a DNS failure
/// held back the last time: days sent are skipped), then the evaluations past
/// `dmarc_report_keep_days` deleted.
async fn run_once(config: &Config, directory: &SqliteDirectory, queue: &dyn Queue) {
    let yesterday = send::previous_day(now());
    for begin in [yesterday - 86_400, yesterday] {
        match send_day(config, directory, queue, begin).await {
            Ok((plan, queued)) => {
                for why in &plan.skipped {
                    tracing::info!("DMARC report of the day starting at {begin} not sent: {why}");
                }
                for (to, id) in &queued {
                    tracing::info!(queue_id = %id, "DMARC aggregate report queued for {to}");
                }
            }
            Err(e) => tracing::warn!("DMARC reports: {e:#}"),
        }
    }
    let keep = i64::from(config.policy.reports.keep_days) * 86_400;
    let pruned = postern_dmarc::db::open(&config.data_dir)
        .and_then(|mut conn| postern_dmarc::db::prune(&mut conn, now() - keep));
    match pruned {
        Ok(n) if n > 0 => tracing::info!(
            "dmarc.db: {n} evaluations older than {} days deleted",
            config.policy.reports.keep_days
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!("dmarc.db: old evaluations not deleted: {e}"),
    }
}

/// `serve`'s daily job (when `[policy] dmarc_reports` is on), on the schedule of
/// [`crate::daily`] (the days already sent are remembered in dmarc.db and skipped).
pub(crate) fn spawn(
    config: Arc<Config>,
    directory: Arc<SqliteDirectory>,
    queue: Arc<dyn Queue>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    crate::daily::spawn(stop, move || {
        let (config, directory, queue) = (config.clone(), directory.clone(), queue.clone());
        async move { run_once(&config, &directory, queue.as_ref()).await }
    })
}

/// The queue's transport with the report intake: after a message is delivered into a local
/// mailbox (after the 250, off the SMTP path), a DMARC aggregate report about one of our
/// domains in it is stored in dmarc.db. The message is delivered normally either way.
pub(crate) struct ReportIntake<T> {
    pub inner: T,
    pub data_dir: PathBuf,
    pub directory: Arc<SqliteDirectory>,
}

#[async_trait::async_trait]
impl<T: Transport> Transport for ReportIntake<T> {
    async fn deliver(
        &self,
        entry: &QueueEntry,
        message: Arc<[u8]>,
        indices: &[usize],
    ) -> Vec<Outcome> {
        let outcomes = self.inner.deliver(entry, message.clone(), indices).await;
        let local = outcomes
            .iter()
            .any(|o| matches!(o, Outcome::Delivered { accounts, .. } if !accounts.is_empty()));
        if local && postern_dmarc::extract::may_be_report(&message) {
            let data_dir = self.data_dir.clone();
            let directory = self.directory.clone();
            let id = entry.id.to_string();
            tokio::task::spawn_blocking(move || intake(&data_dir, &directory, &message, &id));
        }
        outcomes
    }
}

/// Stores the report in `message` if it is about one of our domains.
fn intake(data_dir: &std::path::Path, directory: &SqliteDirectory, message: &[u8], id: &str) {
    let fb = match postern_dmarc::extract::from_message(message) {
        Ok(fb) => fb,
        Err(e) => {
            tracing::debug!(queue_id = %id, "not a DMARC aggregate report: {e}");
            return;
        }
    };
    match directory.is_local_domain(&fb.policy.domain) {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(queue_id = %id, "DMARC report about {}, not a local domain: not stored", fb.policy.domain);
            return;
        }
        Err(e) => {
            tracing::warn!(queue_id = %id, "DMARC report not stored: directory: {e}");
            return;
        }
    }
    let stored = postern_dmarc::db::open(data_dir)
        .and_then(|mut conn| postern_dmarc::db::store_report(&mut conn, &fb, now()));
    match stored {
        Ok(true) => tracing::info!(
            queue_id = %id,
            "DMARC aggregate report {} from {} about {} stored ({} rows)",
            fb.report_id, fb.org_name, fb.policy.domain, fb.records.len()
        ),
        Ok(false) => {
            tracing::info!(queue_id = %id, "DMARC report {} from {} was stored already", fb.report_id, fb.org_name)
        }
        Err(e) => tracing::warn!(queue_id = %id, "DMARC report not stored: {e}"),
    }
}
