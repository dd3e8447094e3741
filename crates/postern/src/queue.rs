//! `postern queue ...`, `postern mailq`, `postern dkim ...`, `postern dns DOMAIN`. Queue commands
//! work on the spool directory directly, so they work while `serve` runs; changes that make mail
//! due (flush, retry, release) leave a wake-up file the running queue notices within a second.

use crate::cli::{DkimCommand, QueueCommand};
use anyhow::{bail, Context};
use postern_config::Config;
use postern_mail::date::rfc5322 as rfc5322_date;
use postern_mail::{EnhancedCode, Status};
use postern_spool::{Queue, QueueEntry, QueueId, RcptStatus, Spool, SpoolError};
use std::io::Write;
use std::sync::Arc;

/// The queue the commands work on: the file spool under `data_dir`.
fn open(config: &Config) -> anyhow::Result<Arc<dyn Queue>> {
    let dir = config.data_dir.join("spool");
    let spool =
        Spool::open(&dir).with_context(|| format!("opening the spool {}", dir.display()))?;
    Ok(Arc::new(spool))
}

/// Runs a change, waiting while the message is in its first delivery attempt (the running
/// server owns it for those milliseconds; see `SpoolError::Busy`).
fn patiently<T>(mut change: impl FnMut() -> Result<T, SpoolError>) -> Result<T, SpoolError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match change() {
            Err(SpoolError::Busy(_)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            r => return r,
        }
    }
}

fn id(text: &str) -> anyhow::Result<QueueId> {
    QueueId::parse(text.trim_end_matches(['*', '!']))
        .with_context(|| format!("{text:?} is not a queue id"))
}

pub(crate) fn run(config: &Config, cmd: QueueCommand) -> anyhow::Result<()> {
    let spool = open(config)?;
    match cmd {
        QueueCommand::List => list(spool.as_ref()),
        QueueCommand::Show { id: i } => show(spool.as_ref(), &id(&i)?),
        QueueCommand::Flush => {
            let n = spool.flush()?;
            spool.request_wake()?;
            println!("{n} message(s) made due now");
            Ok(())
        }
        QueueCommand::Retry { id: i } => {
            let i = id(&i)?;
            let e = patiently(|| spool.retry(&i))?;
            spool.request_wake()?;
            tracing::info!(queue_id = %e.id, "queue retry by the administrator");
            println!(
                "{}: {} recipient(s) due now",
                e.id,
                e.recipients.iter().filter(|r| r.is_pending()).count()
            );
            Ok(())
        }
        QueueCommand::Bounce { id: i } => {
            let i = id(&i)?;
            let e = patiently(|| {
                spool.bounce(
                    &i,
                    &Status::new(
                        EnhancedCode::new(5, 3, 0),
                        "returned to the sender by the mail administrator",
                    ),
                )
            })?;
            spool.request_wake()?;
            tracing::info!(queue_id = %e.id, "queue bounce by the administrator");
            println!(
                "{}: returned to {} with a delivery status notification",
                e.id,
                e.envelope
                    .sender
                    .as_deref()
                    .unwrap_or("<> (no sender: no notice)")
            );
            Ok(())
        }
        QueueCommand::Delete { id: i } => {
            let i = id(&i)?;
            patiently(|| spool.remove(&i))?;
            tracing::info!(queue_id = %i, "queue delete by the administrator");
            println!("{i}: deleted");
            Ok(())
        }
        QueueCommand::Hold { id: i } => {
            let i = id(&i)?;
            let e = patiently(|| spool.hold(&i))?;
            tracing::info!(queue_id = %e.id, "queue hold by the administrator");
            println!("{}: held", e.id);
            Ok(())
        }
        QueueCommand::Release { id: i } => {
            let i = id(&i)?;
            let e = patiently(|| spool.release(&i))?;
            spool.request_wake()?;
            tracing::info!(queue_id = %e.id, "queue release by the administrator");
            println!("{}: released", e.id);
            Ok(())
        }
    }
}

/// The mailq layout: id (`!` held), size, arrival, sender; then each unfinished recipient with
/// its last error.
fn list(spool: &dyn Queue) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    list_to(spool, &mut out)?;
    out.flush()?;
    Ok(())
}

/// The listing of [`list`], written to `out` (`sendmail -bp` through the submit socket).
pub(crate) fn list_to(spool: &dyn Queue, out: &mut dyn Write) -> anyhow::Result<()> {
    let ids = spool.ids()?;
    if ids.is_empty() {
        writeln!(out, "Mail queue is empty")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<25} {:>9} {:<31} Sender/Recipient",
        "-Queue ID-", "--Size--", "----Arrival Time----"
    )?;
    let mut bytes = 0u64;
    let mut count = 0usize;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    for i in ids {
        let e = match spool.entry(&i) {
            Ok(e) => e,
            Err(postern_spool::SpoolError::NotFound(_)) => continue, // delivered meanwhile
            Err(err) => {
                writeln!(out, "{i:<25} (unreadable: {err})")?;
                continue;
            }
        };
        count += 1;
        bytes += e.size;
        let mark = if e.held { "!" } else { "" };
        writeln!(
            out,
            "{:<25} {:>9} {:<31} {}",
            format!("{}{mark}", e.id),
            e.size,
            rfc5322_date(e.arrived),
            e.envelope
                .sender
                .as_deref()
                .map_or("<>".to_string(), str::to_string)
        )?;
        for r in &e.recipients {
            match &r.status {
                RcptStatus::Pending => {
                    if let Some(err) = &r.last_error {
                        writeln!(out, "{:>37}({})", "", one_line(&err.text, 100))?;
                    }
                    let next = if e.held {
                        "held".to_string()
                    } else if r.next_attempt <= now {
                        "next attempt: due now".to_string()
                    } else {
                        format!("next attempt: {}", rfc5322_date(r.next_attempt))
                    };
                    writeln!(out, "{:>37}({next})", "")?;
                    writeln!(out, "{:>67}{}", "", r.recipient.address)?;
                }
                RcptStatus::Failed { .. } => {
                    writeln!(
                        out,
                        "{:>67}{} (failed, notice pending)",
                        "", r.recipient.address
                    )?;
                }
                RcptStatus::Delivered { .. } => {}
            }
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "-- {} Kbytes in {count} Request{}.",
        bytes.div_ceil(1024),
        if count == 1 { "" } else { "s" }
    )?;
    out.flush()?;
    Ok(())
}

fn one_line(s: &str, max: usize) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().count() > max {
        format!("{}...", s.chars().take(max).collect::<String>())
    } else {
        s
    }
}

/// The last attempt taken apart: host, reply, the TLS policy that failed, the reason in words.
fn print_explained(text: &str) {
    let e = postern_outbound::explain::explain(text);
    if let Some(h) = &e.host {
        println!("      last host: {h}");
    }
    if let Some(r) = &e.reply {
        println!("      reply: {}", one_line(r, 400));
    }
    if let Some(p) = &e.tls_policy {
        println!("      TLS policy failed: {p}");
    }
    println!("      reason: {}", e.reason);
}

fn show(spool: &dyn Queue, i: &QueueId) -> anyhow::Result<()> {
    let e: QueueEntry = spool.entry(i)?;
    let env = &e.envelope;
    println!(
        "Queue ID:   {}{}",
        e.id,
        if e.held { " (held)" } else { "" }
    );
    println!("Arrival:    {}", rfc5322_date(e.arrived));
    println!("Size:       {}", e.size);
    println!("Sender:     <{}>", env.sender.as_deref().unwrap_or(""));
    if let Some(a) = &env.authenticated {
        println!("Submitted by: {a}");
    }
    if let Some(ip) = &env.client_ip {
        println!("Client:     {ip} ({})", env.helo.as_deref().unwrap_or("-"));
    }
    println!(
        "Body:       {:?}{}",
        env.body,
        if env.smtputf8 { ", SMTPUTF8" } else { "" }
    );
    if env.requiretls {
        println!("REQUIRETLS: yes (RFC 8689: verified TLS only)");
    }
    if let Some(ret) = env.ret {
        println!("RET:        {ret:?}");
    }
    if let Some(envid) = &env.envid {
        println!("ENVID:      {envid}");
    }
    println!("Recipients:");
    for r in &e.recipients {
        let state = match &r.status {
            RcptStatus::Pending => {
                format!("pending, next attempt {}", rfc5322_date(r.next_attempt))
            }
            RcptStatus::Delivered { at, note } => {
                format!("delivered {}: {note}", rfc5322_date(*at))
            }
            RcptStatus::Failed { at, reason } => format!("failed {}: {reason}", rfc5322_date(*at)),
        };
        println!(
            "  <{}>  {state}; {} attempt(s)",
            r.recipient.address, r.attempts
        );
        if let Some(from) = &r.expanded_from {
            println!("      expanded from <{from}>");
        }
        if let (RcptStatus::Pending, Some(err)) = (&r.status, &r.last_error) {
            println!("      last error: {}", one_line(&err.text, 400));
            print_explained(&err.text);
        }
        if let RcptStatus::Failed { reason, .. } = &r.status {
            print_explained(&reason.text);
        }
    }
    let message = spool.message(i)?;
    // The header section without the empty line that ends it.
    let head = postern_mail::header::header_section(&message);
    let end = if head.ends_with(b"\n\r\n") || head == b"\r\n" {
        head.len() - 2
    } else if head.ends_with(b"\n\n") || head == b"\n" {
        head.len() - 1
    } else {
        head.len()
    };
    println!("Headers:");
    print!("{}", String::from_utf8_lossy(&head[..end]));
    Ok(())
}

pub(crate) fn dkim(config: &Config, cmd: DkimCommand) -> anyhow::Result<()> {
    match cmd {
        DkimCommand::Generate { domain, selector } => {
            let domain = local_domain(config, &domain)?;
            let made = postern_policy::generate(&config.data_dir, &domain, &selector)?;
            for s in &made {
                println!(
                    "{}: {:?} key in {}",
                    s.dns_name(),
                    s.algorithm,
                    postern_policy::key_dir(&config.data_dir)
                        .join(&s.domain)
                        .display()
                );
                println!("  publish: {}. IN TXT \"{}\"", s.dns_name(), s.txt_record());
            }
            println!(
                "Outbound mail from {domain} is signed with these keys after `postern reload`."
            );
            Ok(())
        }
        DkimCommand::Rotate { domain, selector } => {
            let domain = local_domain(config, &domain)?;
            let selector = selector.unwrap_or_else(|| format!("p{}", today_yyyymmdd()));
            let (made, retired) = postern_policy::rotate(&config.data_dir, &domain, &selector)?;
            for s in &made {
                println!("new: {}. IN TXT \"{}\"", s.dns_name(), s.txt_record());
            }
            for r in &retired {
                println!("retired: {r}._domainkey.{domain} (keep its DNS record a few days, then `postern dkim remove {domain} {r}`)");
            }
            println!(
                "Publish the new records, then `postern reload`: new mail is signed with them."
            );
            Ok(())
        }
        DkimCommand::Remove { domain, selector } => {
            let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
            for path in postern_policy::remove(&config.data_dir, &domain, &selector)? {
                println!("removed {}", path.display());
            }
            println!("`postern reload` makes a running server forget them.");
            Ok(())
        }
        DkimCommand::List => {
            let keys = postern_policy::DkimKeys::load(&config.data_dir)?;
            if keys.is_empty() {
                println!("no DKIM keys; make some with `postern dkim generate DOMAIN`");
            }
            let root = postern_policy::key_dir(&config.data_dir);
            let mut domains: Vec<String> = std::fs::read_dir(&root)
                .map(|rd| {
                    rd.flatten()
                        .filter_map(|e| e.file_name().to_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            domains.sort();
            for d in domains {
                for s in keys.selectors(&d) {
                    println!("{}\t{:?}\t{}", s.dns_name(), s.algorithm, s.txt_record());
                }
                for s in postern_policy::retired(&config.data_dir, &d)? {
                    println!(
                        "{}\t{:?}\tretired (no longer signs)\t{}",
                        s.dns_name(),
                        s.algorithm,
                        s.txt_record()
                    );
                }
            }
            Ok(())
        }
    }
}

/// Today's UTC date as YYYYMMDD, for rotated selector names.
fn today_yyyymmdd() -> String {
    let d = time::OffsetDateTime::now_utc().date();
    format!("{:04}{:02}{:02}", d.year(), u8::from(d.month()), d.day())
}

/// `domain`, normalised, if it is one of ours: keys for other domains would sign nothing.
fn local_domain(config: &Config, domain: &str) -> anyhow::Result<String> {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let directory = crate::admin::Context::open(config)?.directory;
    if !directory.is_local_domain(&domain)? {
        bail!("{domain} is not a local domain (add it with `postern domain add {domain}` first)");
    }
    Ok(domain)
}

pub(crate) fn dns(config: &Config, domain: &str) -> anyhow::Result<()> {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if domain.is_empty() || !domain.contains('.') {
        bail!("{domain:?} is not a domain name");
    }
    let keys = postern_policy::DkimKeys::load(&config.data_dir)?;
    // Reports go to postmaster@ (RFC 5321 §4.5.1 says it exists), only if it does here.
    let directory = crate::admin::Context::open(config)?.directory;
    let postmaster = format!("postmaster@{domain}");
    let report_to = match postern_directory::Address::parse(&postmaster) {
        Ok(a) => matches!(
            directory.resolve(&a)?,
            postern_directory::Resolution::Deliver(_)
        )
        .then_some(postmaster),
        Err(_) => None,
    };
    let transport = transport_records(config);
    print!(
        "{}",
        postern_policy::dns_records_with(
            &domain,
            &config.hostname,
            &keys,
            report_to.as_deref(),
            &transport
        )
    );
    Ok(())
}

/// The served MTA-STS policy and its id, and the TLSA digest of the certificate in use:
/// `[tls] cert`, or the self-signed one `serve` generated.
fn transport_records(config: &Config) -> postern_policy::TransportRecords {
    let policy = postern_web::Policy::from_config(config);
    let cert = match &config.tls.cert {
        Some(cert) => cert.clone(),
        None => config.generated_tls_dir().join("cert.pem"),
    };
    let tlsa = if config.tls.cert.is_none() && !cert.exists() {
        Err("no certificate yet: `postern serve` generates one at its first start".to_string())
    } else {
        postern_web::spki_sha256(&cert).map_err(|e| e.to_string())
    };
    postern_policy::TransportRecords {
        mta_sts: Some((policy.text, policy.id)),
        https_listening: !config.listen.https.is_empty(),
        tlsa_spki_sha256: Some(tlsa),
    }
}
