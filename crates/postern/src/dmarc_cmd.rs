//! `postern dmarc records DOMAIN [--since DAYS]`: the DMARC evaluations the MX recorded in
//! `data_dir/dmarc.db` (RFC 7489 §7.2 aggregate report rows), grouped by source IP and outcome.
//! Read-only.
//!
//! Aggregate reports (RFC 7489 §7.2): `send-reports` queues (or with `--dry-run` prints) the
//! reports of one UTC day, `import` stores reports received some other way, `report` shows
//! what the reports received about one of our domains say.

use anyhow::Context as _;
use postern_config::Config;

/// `postern dmarc ...`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum DmarcCommand {
    /// Print the evaluations of mail whose From domain is DOMAIN, by source IP and result
    Records {
        /// The RFC 5322.From domain
        domain: String,
        /// Only the last DAYS days
        #[arg(long, value_name = "DAYS", default_value_t = 7)]
        since: u32,
    },
    /// Queue the DMARC aggregate reports of one UTC day (default: yesterday) to the domains that ask for them
    SendReports {
        /// Print the XML and the destinations instead of queueing
        #[arg(long)]
        dry_run: bool,
        /// The UTC day to report
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: Option<String>,
    },
    /// Store DMARC aggregate reports received some other way (.eml, .xml, .xml.gz or .zip)
    Import {
        /// The files
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
    /// Summarise the aggregate reports received about DOMAIN (one of ours): who sends as it, what fails
    Report {
        /// The domain the reports are about
        domain: String,
        /// Only reports of the last DAYS days
        #[arg(long, value_name = "DAYS", default_value_t = 7)]
        since: u32,
        /// Show the reverse-DNS name of each source (one lookup per source)
        #[arg(long)]
        resolve: bool,
    },
}

fn domain_arg(domain: &str) -> anyhow::Result<String> {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if domain.is_empty()
        || domain.contains(char::is_whitespace)
        || !domain.contains('.') && domain != "localhost"
    {
        anyhow::bail!("{domain:?} is not a domain name");
    }
    Ok(domain)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

/// `postern dmarc send-reports`: RFC 7489 §7.2 reports of one day, queued through the spool
/// (the running server's queue runner is woken to send them).
fn send_reports(config: &Config, dry_run: bool, date: Option<&str>) -> anyhow::Result<()> {
    let begin = match date {
        Some(d) => postern_dmarc::send::day_start(d)?,
        None => postern_dmarc::send::previous_day(crate::daily::now()),
    };
    let ctx = crate::admin::Context::open(config)?;
    let rt = runtime()?;
    if dry_run {
        let plan = rt.block_on(crate::dmarc_reports::plan(config, &ctx.directory, begin))?;
        for p in &plan.reports {
            println!(
                "report for {} to mailto:{} ({} bytes):",
                p.domain,
                p.to,
                p.message.len()
            );
            print!("{}", p.report.to_xml());
        }
        for why in &plan.skipped {
            println!("not sent: {why}");
        }
        if plan.reports.is_empty() {
            println!("no report to send for the day starting at {begin}");
        }
        return Ok(());
    }
    let spool_dir = config.data_dir.join("spool");
    let spool = postern_spool::Spool::open(&spool_dir)
        .with_context(|| format!("opening the spool {}", spool_dir.display()))?;
    let (plan, queued) = rt.block_on(crate::dmarc_reports::send_day(
        config,
        &ctx.directory,
        &spool,
        begin,
    ))?;
    for why in &plan.skipped {
        println!("not sent: {why}");
    }
    for (to, id) in &queued {
        println!("queued {id}: report to {to}");
    }
    if queued.is_empty() {
        println!("no report queued for the day starting at {begin}");
    } else if let Err(e) = spool.request_wake() {
        eprintln!("postern: the reports wait in the spool; the server was not woken: {e}");
    }
    Ok(())
}

/// `postern dmarc import FILE...`: reports about our domains into dmarc.db.
fn import(config: &Config, files: &[std::path::PathBuf]) -> anyhow::Result<()> {
    let ctx = crate::admin::Context::open(config)?;
    let mut conn = postern_dmarc::db::open(&config.data_dir)?;
    let mut failed = 0;
    for file in files {
        let result = (|| -> anyhow::Result<String> {
            let data =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let fb = postern_dmarc::extract::from_file(&data, &name)?;
            if !ctx.directory.is_local_domain(&fb.policy.domain)? {
                anyhow::bail!(
                    "the report is about {}, which is not a local domain",
                    fb.policy.domain
                );
            }
            let new = postern_dmarc::db::store_report(&mut conn, &fb, crate::daily::now())?;
            Ok(format!(
                "{} report {} from {} about {} ({} rows)",
                if new { "stored" } else { "already stored:" },
                fb.report_id,
                fb.org_name,
                fb.policy.domain,
                fb.records.len()
            ))
        })();
        match result {
            Ok(text) => println!("{}: {text}", file.display()),
            Err(e) => {
                failed += 1;
                eprintln!("postern: {}: {e:#}", file.display());
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} files not imported", files.len());
    }
    Ok(())
}

/// `postern dmarc report DOMAIN`: what the reports received say.
fn report(config: &Config, domain: &str, since: u32, resolve: bool) -> anyhow::Result<()> {
    let path = postern_policy::auth::dmarc_db_path(&config.data_dir);
    if !path.exists() {
        anyhow::bail!("{}: no DMARC reports received yet", path.display());
    }
    let conn = postern_dmarc::db::open(&config.data_dir)?;
    let from = crate::daily::now() - i64::from(since) * 86_400;
    let rows = postern_dmarc::db::received(&conn, domain, from)?;
    if rows.is_empty() {
        println!("{domain}: no aggregate reports received in the last {since} days");
        return Ok(());
    }
    println!(
        "{domain}: {}",
        postern_dmarc::summary::headline(domain, &rows)
    );
    let lines = postern_dmarc::summary::lines(&rows);
    let names: std::collections::HashMap<String, String> = if resolve {
        let rt = runtime()?;
        let lookup = postern_dmarc::send::Lookup::new(&config.dns)?;
        let ips: std::collections::BTreeSet<&str> =
            lines.iter().map(|l| l.source_ip.as_str()).collect();
        rt.block_on(async {
            let mut out = std::collections::HashMap::new();
            for ip in ips {
                if let Ok(addr) = ip.parse() {
                    if let Some(name) = lookup.ptr(addr).await {
                        out.insert(ip.to_string(), name);
                    }
                }
            }
            out
        })
    } else {
        Default::default()
    };
    println!(
        "{:<24} {:<40} {:>7}  {:<4} {:<4} {:<11} RESULTS",
        "REPORTER", "SOURCE", "COUNT", "DKIM", "SPF", "DISPOSITION"
    );
    for l in lines {
        let source = match names.get(&l.source_ip) {
            Some(n) => format!("{} ({n})", l.source_ip),
            None => l.source_ip.clone(),
        };
        println!(
            "{:<24} {:<40} {:>7}  {:<4} {:<4} {:<11} {}{}",
            l.org_name,
            source,
            l.count,
            l.dkim,
            l.spf,
            l.disposition,
            l.detail,
            if l.failed() { "  DMARC FAIL" } else { "" }
        );
    }
    Ok(())
}

pub(crate) fn run(config: &Config, cmd: DmarcCommand) -> anyhow::Result<()> {
    match cmd {
        DmarcCommand::SendReports { dry_run, date } => {
            send_reports(config, dry_run, date.as_deref())
        }
        DmarcCommand::Import { files } => import(config, &files),
        DmarcCommand::Report {
            domain,
            since,
            resolve,
        } => report(config, &domain_arg(&domain)?, since, resolve),
        DmarcCommand::Records { domain, since } => {
            let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
            if domain.is_empty() || domain.contains(char::is_whitespace) {
                anyhow::bail!("{domain:?} is not a domain name");
            }
            let groups = postern_policy::auth::dmarc_records(&config.data_dir, &domain, since)
                .map_err(anyhow::Error::msg)
                .context("cannot read the DMARC records")?;
            if groups.is_empty() {
                println!("no DMARC evaluations of mail from {domain} in the last {since} days");
                return Ok(());
            }
            println!(
                "{:<40} {:>6}  {:<9} {:<11} {:<10} DKIM",
                "SOURCE IP", "COUNT", "DMARC", "DISPOSITION", "SPF"
            );
            for g in groups {
                println!(
                    "{:<40} {:>6}  {:<9} {:<11} {:<10} {}",
                    g.source_ip,
                    g.count,
                    g.result,
                    g.disposition,
                    g.spf,
                    if g.dkim.is_empty() { "-" } else { &g.dkim }
                );
            }
            Ok(())
        }
    }
}
