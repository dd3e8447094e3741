//! TLS-RPT daily reports in the binary (RFC 8460 §4–§5): the job of `serve` that sends the
//! previous UTC day's reports, and what `postern tls-report DOMAIN --json/--send` share with it.
//! The report itself, its mail and its POST are `postern_outbound::report`.

use crate::daily::local_domains;
use postern_config::Config;
use postern_directory::SqliteDirectory;
use postern_net::CancellationToken;
use postern_outbound::report::{self, Reporter, Rua};
use postern_outbound::Resolver;
use postern_spool::{BodyType, Envelope, Queue, Recipient};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

fn now() -> u64 {
    u64::try_from(crate::daily::now()).unwrap_or(0)
}

fn db(config: &Config) -> PathBuf {
    config.data_dir.join("tlsrpt.db")
}

/// Who we are in the reports (`[outbound] tls_report_org`, `tls_report_from`).
pub(crate) fn reporter(config: &Config) -> Reporter {
    let o = &config.outbound;
    Reporter {
        org_name: o
            .tls_report_org
            .clone()
            .unwrap_or_else(|| config.hostname.clone()),
        contact: o
            .tls_report_from
            .clone()
            .unwrap_or_else(|| format!("postmaster@{}", config.hostname)),
        hostname: config.hostname.clone(),
    }
}

/// 64 random bits in hex: the unique part of a report's id and file name.
pub(crate) fn unique() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The day asked for (`YYYY-MM-DD`, checked) or yesterday (UTC).
pub(crate) fn day_or_yesterday(date: Option<&str>) -> anyhow::Result<String> {
    match date {
        Some(d) => {
            report::day_start(d).map_err(|e| anyhow::anyhow!(e))?;
            Ok(d.to_string())
        }
        None => Ok(report::previous_day(now())),
    }
}

/// The DNS resolver and the roots an `https:` rua is verified against.
pub(crate) struct Senders {
    resolver: Arc<dyn Resolver>,
    roots: report::Roots,
}

impl Senders {
    pub(crate) fn new(config: &Config) -> anyhow::Result<Senders> {
        let resolver = postern_outbound::DnsResolver::from_config(&config.dns)
            .map_err(|e| anyhow::anyhow!("no DNS resolver: {e}"))?;
        let roots = postern_outbound::policy::roots(config.outbound.extra_ca_file.as_deref())
            .map_err(|e| anyhow::anyhow!("the trusted roots: {e}"))?;
        Ok(Senders {
            resolver: Arc::new(resolver),
            roots: Arc::new(roots),
        })
    }
}

/// Sends the report of `domain` for `day` to every destination of its `_smtp._tls` record:
/// `mailto:` queued with the null sender, `https:` POSTed. The day is marked sent first; if no
/// destination took it, the mark is removed so the next run tries again. Returns what was done,
/// in words; `Err` for what should be tried again later.
pub(crate) async fn send_domain(
    config: &Config,
    senders: &Senders,
    queue: &dyn Queue,
    local: &HashSet<String>,
    domain: &str,
    day: &str,
) -> Result<Vec<String>, String> {
    let path = db(config);
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    if local.contains(&domain) {
        return Ok(vec![format!("{domain}: a local domain, not reported")]);
    }
    if report::was_sent(&path, day, &domain)? {
        return Ok(vec![format!(
            "{domain}: the report of {day} was sent already"
        )]);
    }
    let reporter = reporter(config);
    let unique = unique();
    let Some(rep) = report::build(&path, &domain, day, &reporter, &unique)? else {
        return Ok(vec![format!("{domain}: nothing recorded on {day}")]);
    };
    let Some(rua) = report::lookup(senders.resolver.as_ref(), &domain).await? else {
        return Ok(vec![format!(
            "{domain}: no TLSRPT record at _smtp._tls.{domain}: no report wanted"
        )]);
    };
    if rua.is_empty() {
        return Ok(vec![format!(
            "{domain}: its TLSRPT record has no mailto: or https: rua"
        )]);
    }
    let destinations: Vec<String> = rua
        .iter()
        .map(|r| match r {
            Rua::Mailto(a) => format!("mailto:{a}"),
            Rua::Https(u) => u.clone(),
        })
        .collect();
    if !report::mark_sent(
        &path,
        day,
        &domain,
        &rep.report_id,
        &destinations.join(" "),
        now() as i64,
    )? {
        return Ok(vec![format!(
            "{domain}: the report of {day} was sent already"
        )]);
    }
    let mut done = Vec::new();
    let mut delivered = 0;
    for r in &rua {
        match r {
            Rua::Mailto(to) => {
                let message = report::message(&reporter, &rep, &domain, &unique, to, now() as i64);
                let envelope = Envelope {
                    sender: None,
                    recipients: vec![Recipient::new(to.clone())],
                    ret: None,
                    envid: None,
                    body: BodyType::default(),
                    smtputf8: false,
                    authenticated: None,
                    client_ip: None,
                    helo: None,
                    requiretls: false,
                };
                match queue.enqueue(&envelope, &message) {
                    Ok(id) => {
                        delivered += 1;
                        done.push(format!(
                            "{domain}: report {} queued {id} for mailto:{to}",
                            rep.report_id
                        ));
                    }
                    Err(e) => done.push(format!("{domain}: mailto:{to}: not queued: {e}")),
                }
            }
            Rua::Https(url) => {
                match report::post(
                    senders.resolver.as_ref(),
                    senders.roots.clone(),
                    url,
                    &report::gzip(&rep),
                )
                .await
                {
                    Ok(()) => {
                        delivered += 1;
                        done.push(format!(
                            "{domain}: report {} posted to {url}",
                            rep.report_id
                        ));
                    }
                    Err(e) => done.push(format!("{domain}: POST to {url} failed: {e}")),
                }
            }
        }
    }
    if delivered == 0 {
        report::unmark_sent(&path, day, &domain)?;
        return Err(format!(
            "{domain}: no destination took the report of {day}: {}",
            done.join("; ")
        ));
    }
    Ok(done)
}

/// Every domain with outcomes on `day`: what was done, per line.
pub(crate) async fn send_day(
    config: &Config,
    senders: &Senders,
    directory: &SqliteDirectory,
    queue: &dyn Queue,
    day: &str,
) -> anyhow::Result<Vec<Result<Vec<String>, String>>> {
    let local = local_domains(directory)?;
    let domains = report::domains(&db(config), day).map_err(|e| anyhow::anyhow!(e))?;
    let mut out = Vec::new();
    for domain in domains {
        out.push(send_domain(config, senders, queue, &local, &domain, day).await);
    }
    Ok(out)
}

/// One run: the day before yesterday (a DNS failure may have held it back) and yesterday.
async fn run_once(config: &Config, directory: &SqliteDirectory, queue: &dyn Queue) {
    let senders = match Senders::new(config) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("TLS reports not sent: {e:#}");
            return;
        }
    };
    let yesterday = report::previous_day(now());
    let before = report::previous_day(now() - 86_400);
    for day in [before, yesterday] {
        match send_day(config, &senders, directory, queue, &day).await {
            Ok(results) => {
                for r in results {
                    match r {
                        Ok(lines) => lines.iter().for_each(|l| tracing::info!("TLS report: {l}")),
                        Err(e) => tracing::warn!("TLS report: {e}"),
                    }
                }
            }
            Err(e) => tracing::warn!("TLS reports of {day}: {e:#}"),
        }
    }
}

/// `serve`'s daily job (when `[outbound] tls_reports` is on), on the schedule of
/// [`crate::daily`] (RFC 8460 §4.1: one report per UTC day; the days sent are remembered in
/// tlsrpt.db).
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
