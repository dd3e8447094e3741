//! `postern tls-report DOMAIN`: the TLS outcomes of deliveries to a destination domain, as the
//! outbound client recorded them in `data_dir/tlsrpt.db` (RFC 8460 result types, per UTC day,
//! policy type and MX host).

use postern_config::Config;

/// Prints one line per day, policy, MX host and result: the count and the last failure.
pub(crate) fn run(config: &Config, domain: &str) -> anyhow::Result<()> {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if domain.is_empty()
        || !domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        anyhow::bail!("{domain:?} is not a domain name");
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
