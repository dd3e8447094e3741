//! `postern tls-report DOMAIN`: the TLS outcomes of deliveries to a destination domain, as the
//! outbound client recorded them in `data_dir/tlsrpt.db` (RFC 8460 result types, per UTC day,
//! policy type and MX host); `--json` the RFC 8460 report of a day, `--send` sends it.

use anyhow::Context as _;
use postern_config::Config;

/// Prints one line per day, policy, MX host and result: the count and the last failure; or
/// the JSON report (`json`); or sends it (`send`).
pub(crate) fn run(
    config: &Config,
    domain: &str,
    json: bool,
    send: bool,
    date: Option<&str>,
) -> anyhow::Result<()> {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if domain.is_empty()
        || !domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        anyhow::bail!("{domain:?} is not a domain name");
    }
    if json || send || date.is_some() {
        if !(json || send) {
            anyhow::bail!("--date goes with --json or --send");
        }
        let day = crate::tls_reports::day_or_yesterday(date)?;
        return if json {
            print_json(config, &domain, &day)
        } else {
            send_now(config, &domain, &day)
        };
    }
    let rows = postern_outbound::tlsrpt::rows(&config.data_dir.join("tlsrpt.db"), &domain)
        .map_err(|e| anyhow::anyhow!("cannot read the TLS report data: {e}"))?;
    if rows.is_empty() {
        println!("no TLS outcomes recorded for {domain}");
        return Ok(());
    }
    println!("day\tpolicy\tmx-host\tresult\tsessions\tdetail");
    for r in rows {
        let host = if r.mx_host.is_empty() {
            "-"
        } else {
            &r.mx_host
        };
        println!(
            "{}\t{}\t{host}\t{}\t{}\t{}",
            r.day, r.policy, r.result, r.count, r.detail
        );
    }
    Ok(())
}

/// `--json`: the report as it would be sent (a fresh report id each time).
fn print_json(config: &Config, domain: &str, day: &str) -> anyhow::Result<()> {
    let report = postern_outbound::report::build(
        &config.data_dir.join("tlsrpt.db"),
        domain,
        day,
        &crate::tls_reports::reporter(config),
        &crate::tls_reports::unique(),
    )
    .map_err(|e| anyhow::anyhow!("cannot read the TLS report data: {e}"))?;
    let Some(report) = report else {
        anyhow::bail!("no TLS outcomes recorded for {domain} on {day}");
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// `--send`: the report of `day` sent now, as the daily job would.
fn send_now(config: &Config, domain: &str, day: &str) -> anyhow::Result<()> {
    let ctx = crate::admin::Context::open(config)?;
    let local = crate::daily::local_domains(&ctx.directory)?;
    let spool_dir = config.data_dir.join("spool");
    let spool = postern_spool::Spool::open(&spool_dir)
        .with_context(|| format!("opening the spool {}", spool_dir.display()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let senders = crate::tls_reports::Senders::new(config)?;
    let done = rt
        .block_on(crate::tls_reports::send_domain(
            config, &senders, &spool, &local, domain, day,
        ))
        .map_err(|e| anyhow::anyhow!(e))?;
    for line in &done {
        println!("{line}");
    }
    if done.iter().any(|l| l.contains(" queued ")) {
        if let Err(e) = postern_spool::Queue::request_wake(&spool) {
            eprintln!("postern: the report waits in the spool; the server was not woken: {e}");
        }
    }
    Ok(())
}
