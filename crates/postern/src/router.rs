//! The queue's transport: local domains go to local delivery, other domains to the outbound SMTP
//! client (static routes, the relay, or MX hosts), DKIM-signed when they come from a local domain.

use async_trait::async_trait;
use postern_config::Config;
use postern_delivery::LocalDelivery;
use postern_directory::{Directory, SqliteDirectory};
use postern_mail::{EnhancedCode, Status};
use postern_outbound::{Outbound, Settings, Signer};
use postern_policy::DkimKeys;
use postern_spool::{DsnSettings, Outcome, QueueEntry, RetrySchedule, RunnerSettings, Transport};
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct Router {
    pub local: LocalDelivery,
    pub directory: Arc<dyn Directory>,
    pub outbound: Outbound,
}

#[async_trait]
impl Transport for Router {
    async fn deliver(
        &self,
        entry: &QueueEntry,
        message: Arc<[u8]>,
        indices: &[usize],
    ) -> Vec<Outcome> {
        let sender = entry.envelope.sender.as_deref();
        // Copies made in this pass count for the recipients after them.
        let mut already = entry.delivered_accounts.clone();
        let mut out: Vec<Option<Outcome>> = vec![None; indices.len()];
        let mut remote = Vec::new();
        let mut remote_pos = Vec::new();
        for (pos, &i) in indices.iter().enumerate() {
            let rcpt = &entry.recipients[i].recipient.address;
            let domain = rcpt.rsplit_once('@').map_or("", |(_, d)| d);
            out[pos] = match self.directory.is_local_domain(domain).await {
                Ok(true) => {
                    let info = postern_delivery::EnvelopeInfo {
                        orig_rcpt: entry.recipients[i]
                            .recipient
                            .orcpt
                            .as_deref()
                            .map(|o| {
                                o.get(..7)
                                    .filter(|p| p.eq_ignore_ascii_case("rfc822;"))
                                    .map_or(o, |_| &o[7..])
                                    .to_string()
                            })
                            .filter(|o| !o.eq_ignore_ascii_case(rcpt)),
                        auth: entry.envelope.authenticated.clone(),
                        requiretls: entry.envelope.requiretls,
                    };
                    let o = self
                        .local
                        .deliver_with(sender, rcpt, &message, entry.id.as_str(), &already, &info)
                        .await;
                    if let Outcome::Delivered { accounts, .. } = &o {
                        already.extend(accounts.iter().cloned());
                    }
                    Some(o)
                }
                Ok(false) => {
                    remote.push(i);
                    remote_pos.push(pos);
                    None
                }
                Err(e) => Some(Outcome::Deferred(Status::new(
                    EnhancedCode::new(4, 3, 0),
                    format_args!("directory unavailable: {e}"),
                ))),
            };
        }
        if !remote.is_empty() {
            let outcomes = self.outbound.deliver(entry, message, &remote).await;
            for (pos, o) in remote_pos.into_iter().zip(outcomes) {
                out[pos] = Some(o);
            }
        }
        out.into_iter()
            .map(|o| {
                o.unwrap_or_else(|| {
                    Outcome::Deferred(Status::new(EnhancedCode::new(4, 3, 0), "no outcome"))
                })
            })
            .collect()
    }
}

/// DKIM-signs mail that this server originates: submitted by an authenticated user, by a local
/// program (no client address, or loopback), or a notification of ours; for the `From:` domain
/// when it is local and has keys.
pub(crate) struct DkimSigning {
    pub keys: DkimKeys,
    /// The concrete backend: `Signer::sign` is synchronous (called off the runtime threads).
    pub directory: Arc<SqliteDirectory>,
    /// ARC sealing of forwarded mail (`[policy] arc_seal`), after the DKIM signature.
    pub arc: Option<crate::arc_seal::ArcSealing>,
}

impl Signer for DkimSigning {
    fn sign(&self, entry: &QueueEntry, message: &[u8]) -> Option<Vec<u8>> {
        let dkim = self.dkim(entry, message);
        let Some(arc) = &self.arc else {
            return dkim;
        };
        let set = match &dkim {
            Some(h) => {
                let mut signed = h.clone();
                signed.extend_from_slice(message);
                arc.seal(&self.keys, entry, &signed)
            }
            None => arc.seal(&self.keys, entry, message),
        };
        match (set, dkim) {
            (Some(mut set), dkim) => {
                set.extend(dkim.unwrap_or_default());
                Some(set)
            }
            (None, dkim) => dkim,
        }
    }
}

impl DkimSigning {
    /// The `DKIM-Signature` lines for mail this server originates.
    fn dkim(&self, entry: &QueueEntry, message: &[u8]) -> Option<Vec<u8>> {
        let env = &entry.envelope;
        let ours = env.authenticated.is_some()
            || env.sender.is_none()
            || env.client_ip.is_none_or(|ip| ip.is_loopback());
        if !ours {
            return None;
        }
        let domain = postern_policy::from_domain(message)?;
        if !self.keys.has(&domain) || !self.directory.is_local_domain(&domain).unwrap_or(false) {
            return None;
        }
        match self.keys.sign(&domain, message) {
            Ok(h) if !h.is_empty() => Some(h),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(queue_id = %entry.id, "DKIM signing failed, sending unsigned: {e}");
                None
            }
        }
    }
}

/// The queue runner's settings from `[queue]`.
pub(crate) fn runner_settings(config: &Config) -> RunnerSettings {
    let q = &config.queue;
    RunnerSettings {
        schedule: RetrySchedule {
            delays: q
                .retry_delays_secs
                .iter()
                .map(|&s| Duration::from_secs(s))
                .collect(),
            give_up_after: Duration::from_secs(q.give_up_after_secs),
        },
        concurrency: q.concurrency,
        rescan_interval: Duration::from_secs(q.rescan_interval_secs),
        wake_poll: Duration::from_secs(1),
        dsn: DsnSettings {
            reporting_mta: config.hostname.clone(),
            delay_warning: (q.delay_warning_secs > 0)
                .then(|| Duration::from_secs(q.delay_warning_secs)),
        },
    }
}

/// Where outbound TLS outcomes go: `data_dir/tlsrpt.db` (RFC 8460 data), else the log.
fn tls_reporter(config: &Config) -> Arc<dyn postern_outbound::TlsReporter> {
    match postern_outbound::tlsrpt::Recorder::open(config.data_dir.join("tlsrpt.db")) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            tracing::warn!("TLS outcomes go to the log only: {e}");
            Arc::new(postern_outbound::LogReporter)
        }
    }
}

/// The whole transport: local delivery, plus the SMTP client with DNS and DKIM.
pub(crate) fn build(
    config: &Config,
    local: LocalDelivery,
    directory: Arc<SqliteDirectory>,
) -> anyhow::Result<Router> {
    let settings = Settings::from_config(config);
    let resolver: Arc<dyn postern_outbound::Resolver> =
        match postern_outbound::DnsResolver::from_config(&config.dns) {
            Ok(r) => Arc::new(r),
            Err(e) => {
                tracing::warn!(
                    "no DNS resolver ({e}); only static routes and the relay can be used"
                );
                Arc::new(postern_outbound::NoResolver(format!(
                    "4.4.3 no DNS resolver: {e}"
                )))
            }
        };
    let keys = DkimKeys::load(&config.data_dir)?;
    let signer: Option<Arc<dyn Signer>> = if keys.is_empty() {
        if config.policy.auth.arc_seal && config.policy.auth.enabled {
            tracing::info!(
                "no DKIM keys: forwarded mail leaves without an ARC seal (postern dkim generate DOMAIN)"
            );
        }
        None
    } else {
        Some(Arc::new(DkimSigning {
            keys,
            directory: directory.clone(),
            arc: config
                .policy
                .auth
                .arc_seal
                .then(|| crate::arc_seal::ArcSealing::new(config, directory.clone())),
        }))
    };
    Ok(Router {
        local,
        directory,
        outbound: Outbound::with_reporter(settings, resolver, signer, tls_reporter(config)),
    })
}
