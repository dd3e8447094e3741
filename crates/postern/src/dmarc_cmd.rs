//! `postern dmarc records DOMAIN [--since DAYS]`: the DMARC evaluations the MX recorded in
//! `data_dir/dmarc.db` (RFC 7489 §7.2 aggregate report rows), grouped by source IP and outcome.
//! Read-only.

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
}

pub(crate) fn run(config: &Config, cmd: DmarcCommand) -> anyhow::Result<()> {
    match cmd {
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
