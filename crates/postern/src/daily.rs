//! The schedule the daily report jobs of `serve` share (DMARC aggregate reports, RFC 7489
//! §7.2; TLS-RPT reports, RFC 8460 §4.1): a catch-up run five minutes after start (for a day
//! missed while the server was down: the jobs remember the days they sent), then every day
//! after 00:00 UTC plus a random delay of up to an hour, so that not every reporter on the
//! Internet sends at midnight.

use anyhow::Context as _;
use postern_directory::SqliteDirectory;
use postern_net::CancellationToken;
use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Our local domains, lower-cased: the report jobs never send reports about them (their results
/// are read here).
pub(crate) fn local_domains(directory: &SqliteDirectory) -> anyhow::Result<HashSet<String>> {
    Ok(directory
        .list_domains()
        .context("listing the local domains")?
        .into_iter()
        .map(|d| d.name.to_ascii_lowercase())
        .collect())
}

/// How long after `now` (Unix seconds) the next run is: the next 00:00 UTC plus up to an hour.
pub(crate) fn until_next_run(now: i64) -> Duration {
    let next = now.div_euclid(86_400) * 86_400 + 86_400;
    let jitter = rand::Rng::gen_range(&mut rand::thread_rng(), 0..3600);
    Duration::from_secs((next + jitter - now).max(1) as u64)
}

/// Runs `job` on the daily schedule until `stop`.
pub(crate) fn spawn<F, Fut>(stop: CancellationToken, job: F) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut wait = Duration::from_secs(300);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            job().await;
            wait = until_next_run(now());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_run_is_within_the_first_hour_of_the_next_day() {
        for now in [0, 86_399, 1_796_319_726] {
            let at = now + until_next_run(now).as_secs() as i64;
            let next_day = now.div_euclid(86_400) * 86_400 + 86_400;
            assert!((next_day..next_day + 3600).contains(&at), "{now} -> {at}");
        }
    }
}
