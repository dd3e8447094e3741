//! Outbound delivery: the SMTP client that takes queued mail for remote domains to their MX hosts,
//! a smarthost, or a static route. [`Outbound::deliver`] has the queue's transport shape: one
//! outcome per recipient, 2xx delivered, 4xx and connection trouble deferred, 5xx failed.
//!
//! Recipients of one message that share a domain go in one transaction; connections are kept
//! open briefly and reused for the next message to the same host; concurrency is limited in total
//! and per destination host.
//!
//! Also: a host's addresses raced IPv6/IPv4 (happy eyeballs, [`eyeballs`]); per destination
//! domain a connection limit, an optional rate and a back-off after rate complaints (`limits`);
//! TLS-RPT reports built and sent ([`report`]); last errors taken apart ([`explain`]).
//!
//! Depends on `config` (the relay settings) and `spool` (the queue's transport shape) only; it
//! must never depend on the server crates (smtp, imap, pop3), the store or the directory.

mod body;
pub mod client;
pub mod dane;
mod downgrade;
pub mod explain;
pub mod eyeballs;
mod limits;
pub mod policy;
pub mod report;
mod requiretls;
pub mod route;
pub mod settings;
pub mod sts;
pub mod tlsrpt;

pub use client::{Capabilities, Reply, Timeouts};
pub use policy::{FailureType, HopTls, LogReporter, PolicyKind, TlsReporter, TlsResult};
pub use route::{DnsResolver, Mx, MxAnswer, NoResolver, Resolver};
pub use settings::{Relay, RelayTls, Settings};

use client::{Conn, SessionError};
use hickory_resolver::proto::rr::{RData, RecordType};
use postern_mail::{EnhancedCode, Status};
use postern_spool::{Outcome, QueueEntry, Ret};
use route::{DnsError, Hop, Plan, RouteError};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

pub use postern_spool::{NOTE_DSN_PASSED_ON, NOTE_RELAYED};

/// Connection-level failures of the SMTP client and its resolver. The `String` naming the peer
/// is `host [addr:port]`.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// An I/O error during a stage (`"connect"`, a command name...) with a peer.
    #[error("{0} to {1}: {2}")]
    Io(&'static str, String, std::io::Error),
    /// A stage with a peer took longer than its timeout (see [`Timeouts`]).
    #[error("{0} to {1}: timed out")]
    Timeout(&'static str, String),
    /// The peer closed the connection during a stage, before a complete reply.
    #[error("{1} closed the connection during {0}")]
    Closed(&'static str, String),
    /// The peer broke the protocol (a malformed or overlong reply, data pipelined after
    /// STARTTLS...): the peer, then what it did.
    #[error("{0}: {1}")]
    Protocol(String, String),
    /// The TLS handshake with a peer failed (including certificate verification): the peer,
    /// then the error.
    #[error("TLS with {0} failed: {1}")]
    Tls(String, String),
    /// The system resolver could not be set up.
    #[error("DNS resolver: {0}")]
    Dns(String),
}

/// Adds authentication headers (DKIM) to outgoing messages.
pub trait Signer: Send + Sync {
    /// Header lines (CRLF-terminated) to put in front of `message`, or `None` to send it unsigned.
    fn sign(&self, entry: &QueueEntry, message: &[u8]) -> Option<Vec<u8>>;
}

/// The SMTP client transport for remote recipients.
#[derive(Clone)]
pub struct Outbound {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    resolver: Arc<dyn Resolver>,
    signer: Option<Arc<dyn Signer>>,
    total: Arc<Semaphore>,
    per_host: Mutex<HashMap<SocketAddr, Arc<Semaphore>>>,
    idle: Mutex<HashMap<String, Vec<(Instant, Conn)>>>,
    /// MTA-STS policies (`None` when `mta_sts` is off).
    sts: Option<sts::Sts>,
    /// The roots MTA-STS certificates verify against (the system's plus `extra_ca_file`).
    sts_roots: Arc<rustls::RootCertStore>,
    reporter: Arc<dyn TlsReporter>,
    /// Per-destination-domain connections, rate and back-off.
    limits: limits::Limits,
    /// Connections won by happy eyeballs, waiting for their greeting.
    preconnected: Mutex<HashMap<SocketAddr, tokio::net::TcpStream>>,
}

impl Outbound {
    /// Must be called inside a tokio runtime (it starts the idle-connection reaper). TLS
    /// outcomes go to the log.
    pub fn new(
        settings: Settings,
        resolver: Arc<dyn Resolver>,
        signer: Option<Arc<dyn Signer>>,
    ) -> Outbound {
        Outbound::with_reporter(settings, resolver, signer, Arc::new(LogReporter))
    }

    /// As [`Outbound::new`], with every TLS outcome (RFC 8460 terms) given to `reporter`.
    pub fn with_reporter(
        settings: Settings,
        resolver: Arc<dyn Resolver>,
        signer: Option<Arc<dyn Signer>>,
        reporter: Arc<dyn TlsReporter>,
    ) -> Outbound {
        let sts_roots = Arc::new(
            policy::roots(settings.extra_ca_file.as_deref()).unwrap_or_else(|e| {
                tracing::error!(
                    "outbound.extra_ca_file: {e}; MTA-STS uses the system's roots only"
                );
                policy::roots(None).unwrap_or_else(|_| rustls::RootCertStore::empty())
            }),
        );
        let sts = settings
            .mta_sts
            .then(|| sts::Sts::new(settings.sts_cache_dir.clone(), sts_roots.clone()));
        let limits = limits::Limits::new(
            settings.max_connections_per_domain,
            settings.domain_rate,
            settings.domain_rates.clone(),
        );
        let inner = Arc::new(Inner {
            sts,
            sts_roots,
            reporter,
            total: Arc::new(Semaphore::new(settings.max_connections.max(1))),
            settings,
            resolver,
            signer,
            per_host: Mutex::new(HashMap::new()),
            idle: Mutex::new(HashMap::new()),
            preconnected: Mutex::new(HashMap::new()),
            limits,
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(reap(Arc::downgrade(&inner)));
        }
        Outbound { inner }
    }

    /// Delivers `message` to the remote recipients of `entry` at `indices`, one outcome per index.
    pub async fn deliver(
        &self,
        entry: &QueueEntry,
        message: Arc<[u8]>,
        indices: &[usize],
    ) -> Vec<Outcome> {
        let data: Arc<[u8]> = match self
            .inner
            .signer
            .as_ref()
            .and_then(|s| s.sign(entry, &message))
        {
            Some(mut headers) => {
                headers.extend_from_slice(&message);
                headers.into()
            }
            None => message,
        };
        let mut by_domain: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (pos, &i) in indices.iter().enumerate() {
            let addr = &entry.recipients[i].recipient.address;
            let domain = addr
                .rsplit_once('@')
                .map_or("", |(_, d)| d)
                .to_ascii_lowercase();
            by_domain.entry(domain).or_default().push(pos);
        }
        let mut out: Vec<Option<Outcome>> = vec![None; indices.len()];
        let entry = Arc::new(entry.clone());
        let mut tasks = tokio::task::JoinSet::new();
        for (domain, positions) in by_domain {
            let this = self.clone();
            let entry = entry.clone();
            let data = data.clone();
            let idx: Vec<usize> = positions.iter().map(|&p| indices[p]).collect();
            tasks.spawn(async move {
                let outcomes = this
                    .inner
                    .deliver_domain_limited(&entry, &data, &domain, &idx)
                    .await;
                (positions, outcomes)
            });
        }
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok((positions, outcomes)) => {
                    for (p, o) in positions.into_iter().zip(outcomes) {
                        out[p] = Some(o);
                    }
                }
                Err(e) => tracing::error!("outbound delivery task failed: {e}"),
            }
        }
        out.into_iter()
            .map(|o| {
                o.unwrap_or_else(|| {
                    Outcome::Deferred(Status::new(
                        EnhancedCode::new(4, 3, 0),
                        "internal error in outbound delivery",
                    ))
                })
            })
            .collect()
    }
}

/// Closes connections idle for longer than the idle timeout.
async fn reap(inner: Weak<Inner>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Some(inner) = inner.upgrade() else { return };
        let limit = inner.settings.idle_timeout;
        let mut stale = Vec::new();
        {
            let mut idle = inner.idle.lock().unwrap_or_else(|p| p.into_inner());
            for conns in idle.values_mut() {
                let mut keep = Vec::new();
                for (t, c) in conns.drain(..) {
                    if t.elapsed() >= limit {
                        stale.push(c);
                    } else {
                        keep.push((t, c));
                    }
                }
                *conns = keep;
            }
            idle.retain(|_, v| !v.is_empty());
        }
        drop(inner);
        for c in stale {
            tokio::spawn(c.quit());
        }
    }
}

/// RFC 3461 §4 xtext encoding.
use postern_mail::xtext::encode as xtext;

/// The status a reply stands for: the remote's text as it is, and the enhanced code it names
/// when that code's class agrees with the reply code's (RFC 3463 §2), else the class's `x.0.0`.
fn reply_status(reply: &Reply, text: String) -> Status {
    let default = match reply.code {
        200..=399 => EnhancedCode::SUCCESS,
        400..=499 => EnhancedCode::TEMPORARY,
        _ => EnhancedCode::PERMANENT,
    };
    let code = EnhancedCode::find_in(&reply.lines.join(" "))
        .filter(|c| c.class == default.class)
        .unwrap_or(default);
    Status::with_text(code, text)
}

/// The outcome a reply stands for, keeping the remote's text (with its enhanced code).
fn outcome_for(reply: &Reply, hop: &Hop, note_suffix: &str) -> Outcome {
    let text = format!("{} [{}] said: {}", hop.host, hop.addr.ip(), reply.text());
    match reply.code {
        200..=399 => Outcome::Delivered {
            note: reply_status(reply, format!("{text}{note_suffix}")),
            accounts: Vec::new(),
            forward: Vec::new(),
        },
        400..=499 => Outcome::Deferred(reply_status(reply, text)),
        _ => Outcome::Failed(reply_status(reply, text)),
    }
}

enum HopResult {
    Done(Vec<Outcome>),
    /// Try the next host; this is why.
    Next(String),
    /// TLS failed and plaintext is allowed: try this host again without STARTTLS.
    RetryPlain(String),
}

impl Inner {
    fn host_semaphore(&self, addr: SocketAddr) -> Arc<Semaphore> {
        self.per_host
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(addr)
            .or_insert_with(|| {
                Arc::new(Semaphore::new(
                    self.settings.max_connections_per_host.max(1),
                ))
            })
            .clone()
    }

    fn pool_key(hop: &Hop, plan: &Plan) -> String {
        let user = plan
            .relay
            .as_ref()
            .and_then(|r| r.username.as_deref())
            .unwrap_or("");
        format!("{}|{}|{}", hop.addr, plan.require_tls, user)
    }

    fn take_idle(&self, key: &str) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let conns = idle.get_mut(key)?;
        while let Some((t, c)) = conns.pop() {
            if t.elapsed() < self.settings.idle_timeout {
                return Some(c);
            }
            tokio::spawn(c.quit());
        }
        None
    }

    fn put_idle(&self, key: String, conn: Conn) {
        if conn.transactions >= self.settings.max_messages_per_connection {
            tokio::spawn(conn.quit());
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let conns = idle.entry(key).or_default();
        if conns.len() >= self.settings.max_connections_per_host {
            drop(idle);
            tokio::spawn(conn.quit());
            return;
        }
        conns.push((Instant::now(), conn));
    }

    /// [`Inner::deliver_domain`] within the domain's limits (connections, rate, back-off).
    async fn deliver_domain_limited(
        &self,
        entry: &QueueEntry,
        data: &[u8],
        domain: &str,
        idx: &[usize],
    ) -> Vec<Outcome> {
        let _permit = match self.limits.admit(domain).await {
            Ok(p) => p,
            Err(why) => {
                return vec![
                    Outcome::Deferred(Status::from_text(why, EnhancedCode::TEMPORARY));
                    idx.len()
                ]
            }
        };
        let outcomes = self.deliver_domain(entry, data, domain, idx).await;
        self.limits.observe(domain, &outcomes);
        outcomes
    }

    async fn deliver_domain(
        &self,
        entry: &QueueEntry,
        data: &[u8],
        domain: &str,
        idx: &[usize],
    ) -> Vec<Outcome> {
        let all = |o: Outcome| vec![o; idx.len()];
        let plan = match route::plan(&self.settings, self.resolver.as_ref(), domain).await {
            Ok(p) => p,
            Err(RouteError::Temporary(e)) => {
                return all(Outcome::Deferred(Status::from_text(
                    e,
                    EnhancedCode::TEMPORARY,
                )))
            }
            Err(RouteError::Permanent(e)) => {
                return all(Outcome::Failed(Status::from_text(
                    e,
                    EnhancedCode::PERMANENT,
                )))
            }
        };
        let demand = requiretls::demand(&entry.envelope, data);
        let hops = match self.hops_for(domain, &plan, demand).await {
            Ok(h) => h,
            Err(o) => return all(o),
        };
        let hops = report::relax_for_report(entry, data, hops);
        let mut last = format!("4.4.1 no host for {domain} could be reached");
        let mut tls_refused = false;
        let mut hops: std::collections::VecDeque<(Hop, HopTls)> = hops.into();
        let mut host = String::new();
        while let Some(next) = hops.pop_front() {
            let next = if next.0.host != host {
                host = next.0.host.clone();
                match self.race_host(next, &mut hops, plan.relay.is_some()).await {
                    Ok(first) => first,
                    Err(why) => {
                        tracing::info!("{why}");
                        last = why;
                        continue;
                    }
                }
            } else {
                next
            };
            let (hop, tls) = (&next.0, &next.1);
            let host_sem = self.host_semaphore(hop.addr);
            let Ok(_host_permit) = host_sem.acquire_owned().await else {
                continue;
            };
            let Ok(_total_permit) = self.total.clone().acquire_owned().await else {
                continue;
            };
            let mut try_tls = true;
            for _ in 0..2 {
                match self
                    .on_hop(entry, data, idx, hop, &plan, tls, domain, try_tls)
                    .await
                {
                    HopResult::Done(outcomes) => {
                        self.drop_preconnected(hop.addr);
                        return outcomes;
                    }
                    HopResult::Next(why) => {
                        tracing::info!(to = %hop.addr, "{why}");
                        tls_refused |= why.starts_with("4.7.") || why.starts_with("5.7.30");
                        last = why;
                        break;
                    }
                    HopResult::RetryPlain(why) if demand == requiretls::Demand::RequireTls => {
                        tracing::info!(to = %hop.addr, "{why}");
                        tls_refused = true;
                        last = why;
                        break;
                    }
                    HopResult::RetryPlain(why) => {
                        tracing::info!(to = %hop.addr, "{why}; trying again without TLS");
                        last = why;
                        try_tls = false;
                    }
                }
            }
            self.drop_preconnected(hop.addr);
        }
        if demand == requiretls::Demand::RequireTls && tls_refused {
            // RFC 8689 §5: no downgrade and no retry: the message is returned.
            return all(Outcome::Failed(requiretls::failure(last)));
        }
        all(Outcome::Deferred(Status::from_text(
            last,
            EnhancedCode::TEMPORARY,
        )))
    }

    /// The hops and their TLS policies as RFC 8689 shapes them for this message: only
    /// verified ones for REQUIRETLS (§4.2.1), DANE and MTA-STS waived for `TLS-Required: No`
    /// (§4.2.2). `Err`: the outcome of every recipient.
    async fn hops_for(
        &self,
        domain: &str,
        plan: &Plan,
        demand: requiretls::Demand,
    ) -> Result<Vec<(Hop, HopTls)>, Outcome> {
        let fallback = if plan.require_tls {
            HopTls::Required {
                verify: match &plan.relay {
                    Some(r) => r.verify_certificate,
                    None => self.settings.verify_required_tls,
                },
            }
        } else {
            HopTls::Opportunistic
        };
        if demand == requiretls::Demand::IgnorePolicies {
            let hops = plan.hops.iter().map(|h| (h.clone(), fallback.clone()));
            return Ok(requiretls::ignore_policies(hops.collect(), &fallback));
        }
        let hops = match self.hop_policies(domain, plan).await {
            Ok(h) => h,
            Err(why) if demand == requiretls::Demand::RequireTls => {
                return Err(Outcome::Failed(requiretls::failure(why)))
            }
            Err(why) => {
                return Err(Outcome::Deferred(Status::from_text(
                    why,
                    EnhancedCode::TEMPORARY,
                )))
            }
        };
        if demand == requiretls::Demand::RequireTls {
            return requiretls::require(hops, domain).map_err(Outcome::Failed);
        }
        Ok(hops)
    }

    /// RFC 8689 §4.2.1: a REQUIRETLS message goes only over a session with TLS to a server
    /// that advertises REQUIRETLS; `Some(why)` when this one does not qualify.
    fn requiretls_refusal(entry: &QueueEntry, conn: &Conn) -> Option<String> {
        if !requiretls::applies(&entry.envelope) {
            return None;
        }
        requiretls::session_refusal(conn.tls, conn.caps.requiretls, &conn.peer)
    }

    /// One host: a pooled connection if there is one, else a new one.
    #[allow(clippy::too_many_arguments)]
    async fn on_hop(
        &self,
        entry: &QueueEntry,
        data: &[u8],
        idx: &[usize],
        hop: &Hop,
        plan: &Plan,
        tls: &HopTls,
        domain: &str,
        try_tls: bool,
    ) -> HopResult {
        // A connection authenticated for one MX name (DANE, MTA-STS) serves only that name,
        // even where several names share the address.
        let key = match tls.kind() {
            PolicyKind::NoPolicyFound => format!("{}|{}", Self::pool_key(hop, plan), tls.tag()),
            _ => format!("{}|{}|{}", Self::pool_key(hop, plan), tls.tag(), hop.host),
        };
        if try_tls {
            while let Some(mut conn) = self.take_idle(&key) {
                if let Some(why) = Self::requiretls_refusal(entry, &conn) {
                    self.put_idle(key, conn);
                    return HopResult::Next(why);
                }
                match self.send(&mut conn, entry, data, idx, hop).await {
                    Ok(outcomes) => {
                        self.put_idle(key, conn);
                        return HopResult::Done(outcomes);
                    }
                    // A reused connection may have been closed by the server meanwhile.
                    Err(SessionError::Io(_)) => continue,
                    Err(SessionError::Reply(r, stage)) => {
                        return self.refused(r, stage, hop, idx.len());
                    }
                }
            }
        }
        let mut conn = match self.open(hop, plan, tls, domain, try_tls).await {
            Ok(c) => c,
            Err(r) => return r,
        };
        if let Some(why) = Self::requiretls_refusal(entry, &conn) {
            self.put_idle(key, conn);
            return HopResult::Next(why);
        }
        match self.send(&mut conn, entry, data, idx, hop).await {
            Ok(outcomes) => {
                self.put_idle(key, conn);
                HopResult::Done(outcomes)
            }
            Err(SessionError::Io(e)) => HopResult::Next(format!("4.4.2 {e}")),
            Err(SessionError::Reply(r, stage)) => {
                tokio::spawn(conn.quit());
                self.refused(r, stage, hop, idx.len())
            }
        }
    }

    /// A refusal of the whole transaction (MAIL or DATA): 5xx fails every recipient, 4xx defers.
    fn refused(&self, r: Reply, stage: &str, hop: &Hop, n: usize) -> HopResult {
        let text = format!(
            "{} [{}] said after {stage}: {}",
            hop.host,
            hop.addr.ip(),
            r.text()
        );
        if r.is_permanent() {
            HopResult::Done(vec![Outcome::Failed(reply_status(&r, text)); n])
        } else {
            HopResult::Done(vec![Outcome::Deferred(reply_status(&r, text)); n])
        }
    }

    /// Connects, greets, upgrades to TLS as the hop's policy asks, authenticates.
    async fn open(
        &self,
        hop: &Hop,
        plan: &Plan,
        tls: &HopTls,
        domain: &str,
        try_tls: bool,
    ) -> Result<Conn, HopResult> {
        let s = &self.settings;
        let peer = format!("{} [{}]", hop.host, hop.addr);
        let report = |failure: Option<(FailureType, String)>| {
            self.reporter.record(&TlsResult {
                policy_domain: domain.to_string(),
                policy: tls.kind(),
                mx_host: hop.host.clone(),
                addr: Some(hop.addr),
                failure,
            })
        };
        if let HopTls::DaneLookupFailed(why) = tls {
            report(Some((FailureType::DnssecInvalid, why.clone())));
            return Err(HopResult::Next(format!(
                "4.7.5 {}: the TLSA lookup failed, so the host is not used (RFC 7672 §2.2): {why}",
                hop.host
            )));
        }
        let implicit = plan
            .relay
            .as_ref()
            .is_some_and(|r| r.tls == RelayTls::Implicit);
        let verify = match &plan.relay {
            Some(r) => r.verify_certificate,
            None => plan.require_tls && s.verify_required_tls,
        };
        let session = |e: SessionError, stage: &str| match e {
            SessionError::Io(e) => HopResult::Next(format!("4.4.2 {e}")),
            SessionError::Reply(r, what) => HopResult::Next(format!(
                "{} {}: {} refused {what} during {stage}: {}",
                if r.is_permanent() { "4.4.0" } else { "4.4.2" },
                hop.host,
                hop.addr,
                r.text()
            )),
        };
        let preconnected = self
            .preconnected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&hop.addr);
        let mut conn = if let Some(tcp) = preconnected.filter(|_| !implicit) {
            Conn::greet(tcp, peer, s.timeouts)
                .await
                .map_err(|e| session(e, "the greeting"))?
        } else if implicit {
            Conn::connect_tls(hop.addr, peer, &hop.host, verify, s.timeouts)
                .await
                .map_err(|e| session(e, "the TLS connection"))?
        } else {
            Conn::connect(hop.addr, peer, s.timeouts)
                .await
                .map_err(|e| session(e, "the greeting"))?
        };
        conn.hello(&s.helo_name)
            .await
            .map_err(|e| session(e, "EHLO"))?;
        let what = match tls.kind() {
            PolicyKind::Tlsa => "DANE (RFC 7672)",
            PolicyKind::Sts => "the MTA-STS policy (RFC 8461)",
            PolicyKind::NoPolicyFound => "the policy",
        };
        if !conn.tls {
            if conn.caps.starttls && try_tls {
                let (config, verdict) = match tls {
                    HopTls::Dane(records) => {
                        let names = vec![hop.host.clone(), domain.to_string()];
                        let (c, v) = policy::PolicyVerifier::config(
                            policy::Check::Dane(records.clone(), names),
                            true,
                        );
                        (c, Some(v))
                    }
                    HopTls::Sts { enforce } => {
                        let (c, v) = policy::PolicyVerifier::config(
                            policy::Check::WebPki(self.sts_roots.clone()),
                            *enforce,
                        );
                        (c, Some(v))
                    }
                    HopTls::Required { verify: v } => (client::tls_config(*v || verify), None),
                    _ => (client::tls_config(false), None),
                };
                match conn.starttls_with(&hop.host, config, &s.helo_name).await {
                    Ok(c) => {
                        let checked = verdict
                            .and_then(|v| v.lock().unwrap_or_else(|p| p.into_inner()).clone());
                        match checked {
                            Some(Err(failure)) => report(Some(failure)),
                            _ => report(None),
                        }
                        conn = c;
                    }
                    Err(e) => {
                        let checked = verdict
                            .and_then(|v| v.lock().unwrap_or_else(|p| p.into_inner()).clone());
                        let why = match (&checked, e) {
                            (Some(Err((kind, why))), _) => format!(
                                "4.7.5 {} [{}]: the certificate does not satisfy {what}: {} ({why})",
                                hop.host,
                                hop.addr.ip(),
                                kind.as_str()
                            ),
                            (_, SessionError::Io(e)) => {
                                format!("4.7.5 STARTTLS with {} failed: {e}", hop.addr)
                            }
                            (_, SessionError::Reply(r, _)) => {
                                format!("4.7.5 {} refused STARTTLS: {}", hop.addr, r.text())
                            }
                        };
                        if tls.kind() != PolicyKind::NoPolicyFound {
                            let failure = match checked {
                                Some(Err(f)) => f,
                                _ => (FailureType::ValidationFailure, why.clone()),
                            };
                            report(Some(failure));
                        }
                        return Err(if plan.require_tls || tls.mandatory() {
                            HopResult::Next(why)
                        } else {
                            HopResult::RetryPlain(why)
                        });
                    }
                };
            } else if plan.require_tls || tls.mandatory() {
                tokio::spawn(conn.quit());
                report(Some((
                    FailureType::StarttlsNotSupported,
                    format!("{} does not offer STARTTLS", hop.host),
                )));
                return Err(HopResult::Next(format!(
                    "4.7.10 {} [{}] does not offer STARTTLS, which {what} requires",
                    hop.host, hop.addr
                )));
            } else if tls.kind() == PolicyKind::Sts && !conn.caps.starttls {
                report(Some((
                    FailureType::StarttlsNotSupported,
                    format!("{} does not offer STARTTLS", hop.host),
                )));
            }
        }
        if let Some(relay) = &plan.relay {
            if let (Some(user), Some(pass)) = (&relay.username, &relay.password) {
                if !conn.tls && !hop.addr.ip().is_loopback() {
                    tokio::spawn(conn.quit());
                    return Err(HopResult::Next(format!(
                        "4.7.10 not sending the relay password to {} without TLS",
                        hop.addr
                    )));
                }
                conn.auth(user, pass)
                    .await
                    .map_err(|e| session(e, "AUTH"))?;
            }
        }
        Ok(conn)
    }

    /// The TLS policy of each hop (RFC 7672 §2.2 DANE first, then RFC 8461 MTA-STS, then the
    /// configuration's requirement or opportunistic TLS); MTA-STS `enforce` drops MX hosts
    /// outside the policy. `Err`: nothing may be tried (the message defers with this reason).
    async fn hop_policies(&self, domain: &str, plan: &Plan) -> Result<Vec<(Hop, HopTls)>, String> {
        let s = &self.settings;
        let fallback = if plan.require_tls {
            HopTls::Required {
                verify: match &plan.relay {
                    Some(r) => r.verify_certificate,
                    None => s.verify_required_tls,
                },
            }
        } else {
            HopTls::Opportunistic
        };
        if !plan.via_mx {
            return Ok(plan
                .hops
                .iter()
                .map(|h| (h.clone(), fallback.clone()))
                .collect());
        }
        let mut dane: HashMap<String, Option<HopTls>> = HashMap::new();
        if s.dane {
            // RFC 7672 §2.2.1: DANE only where the MX RRset (or the denial of one, for the
            // implicit MX) is itself secure.
            let mx_secure = match self.resolver.secure(domain, RecordType::MX).await {
                Ok(a) => a.secure,
                Err(DnsError::Temporary(e)) => {
                    tracing::info!("secure MX lookup of {domain} failed: {e}");
                    false
                }
            };
            if mx_secure {
                for hop in &plan.hops {
                    if !dane.contains_key(&hop.host) {
                        let d = self.dane_for_host(&hop.host).await;
                        dane.insert(hop.host.clone(), d);
                    }
                }
            }
        }
        let needs_sts = plan
            .hops
            .iter()
            .any(|h| dane.get(&h.host).is_none_or(Option::is_none));
        let sts_policy = match (&self.sts, needs_sts) {
            (Some(sts), true) => {
                let found = sts.lookup(self.resolver.as_ref(), domain).await;
                if let Some(failure) = found.failure {
                    self.reporter.record(&TlsResult {
                        policy_domain: domain.to_string(),
                        policy: PolicyKind::Sts,
                        mx_host: String::new(),
                        addr: None,
                        failure: Some(failure),
                    });
                }
                found.policy.filter(|p| p.mode != sts::Mode::None)
            }
            _ => None,
        };
        self.report_policy_strings(domain, &dane, sts_policy.as_ref());
        let mut out = Vec::new();
        let mut skipped = Vec::new();
        for hop in &plan.hops {
            if let Some(Some(t)) = dane.get(&hop.host) {
                out.push((hop.clone(), t.clone()));
                continue;
            }
            let Some(p) = &sts_policy else {
                out.push((hop.clone(), fallback.clone()));
                continue;
            };
            let enforce = p.mode == sts::Mode::Enforce;
            if !sts::mx_matches(&p.mx, &hop.host) {
                self.reporter.record(&TlsResult {
                    policy_domain: domain.to_string(),
                    policy: PolicyKind::Sts,
                    mx_host: hop.host.clone(),
                    addr: Some(hop.addr),
                    failure: Some((
                        FailureType::StsPolicyInvalid,
                        format!("{} is not an mx of the MTA-STS policy", hop.host),
                    )),
                });
                if enforce {
                    skipped.push(hop.host.clone());
                    continue;
                }
            }
            out.push((hop.clone(), HopTls::Sts { enforce }));
        }
        if out.is_empty() {
            skipped.dedup();
            return Err(format!(
                "4.7.5 no MX host of {domain} matches its MTA-STS policy (RFC 8461 §4.1): {}",
                skipped.join(", ")
            ));
        }
        Ok(out)
    }

    /// RFC 8305 happy eyeballs: when `first` starts a host with more addresses after it in
    /// `rest`, the addresses are raced; the winner comes back first (its connection kept for
    /// [`Inner::open`]), the others after it in their order. `Err`: no address connected.
    /// Skipped for the relay, when the host is at its connection limit, or when a pooled
    /// connection to one of its addresses waits.
    async fn race_host(
        &self,
        first: (Hop, HopTls),
        rest: &mut std::collections::VecDeque<(Hop, HopTls)>,
        relay: bool,
    ) -> Result<(Hop, HopTls), String> {
        let Some(delay) = self.settings.happy_eyeballs else {
            return Ok(first);
        };
        let same = rest.iter().take_while(|h| h.0.host == first.0.host).count();
        let addrs: Vec<SocketAddr> = std::iter::once(first.0.addr)
            .chain(rest.iter().take(same).map(|h| h.0.addr))
            .collect();
        let pooled = {
            let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.keys()
                .any(|k| addrs.iter().any(|a| k.starts_with(&format!("{a}|"))))
        };
        if same == 0
            || relay
            || pooled
            || self.host_semaphore(first.0.addr).available_permits() == 0
        {
            return Ok(first);
        }
        let mut group: Vec<(Hop, HopTls)> =
            std::iter::once(first).chain(rest.drain(..same)).collect();
        match eyeballs::race(&addrs, delay, self.settings.timeouts.connect).await {
            Ok((addr, tcp)) => {
                self.preconnected
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(addr, tcp);
                let pos = group.iter().position(|h| h.0.addr == addr).unwrap_or(0);
                let winner = group.remove(pos);
                for h in group.into_iter().rev() {
                    rest.push_front(h);
                }
                Ok(winner)
            }
            Err(failures) => Err(format!(
                "4.4.1 no address of {} answered: {}",
                group[0].0.host,
                failures
                    .iter()
                    .map(|(a, e)| format!("[{a}] {e}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// Drops a happy-eyeballs connection to `addr` that was not used.
    fn drop_preconnected(&self, addr: SocketAddr) {
        self.preconnected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&addr);
    }

    /// RFC 8460 §4.4 `policy-string`s of the policies in force for `domain`, for the report.
    fn report_policy_strings(
        &self,
        domain: &str,
        dane: &HashMap<String, Option<HopTls>>,
        sts: Option<&sts::Policy>,
    ) {
        let mut tlsa: Vec<String> = dane
            .values()
            .flat_map(|d| match d {
                Some(HopTls::Dane(records)) => records.iter().map(|r| r.presentation()).collect(),
                _ => Vec::new(),
            })
            .collect();
        tlsa.sort();
        tlsa.dedup();
        if !tlsa.is_empty() {
            self.reporter.policy(domain, PolicyKind::Tlsa, &tlsa);
        }
        if let Some(p) = sts {
            self.reporter.policy(domain, PolicyKind::Sts, &p.lines());
        }
    }

    /// RFC 7672 §2.2: the DANE policy of one MX host, `None` when DANE does not apply (its
    /// address records or TLSA records are not secure, or it has no TLSA records).
    async fn dane_for_host(&self, host: &str) -> Option<HopTls> {
        // §2.2.2: the host's address records must be secure too.
        let address_secure = match self.resolver.secure(host, RecordType::A).await {
            Ok(a) if a.secure && !a.records.is_empty() => true,
            Ok(_) => matches!(
                self.resolver.secure(host, RecordType::AAAA).await,
                Ok(a) if a.secure && !a.records.is_empty()
            ),
            Err(_) => false,
        };
        if !address_secure {
            return None;
        }
        match self
            .resolver
            .secure(&format!("_25._tcp.{host}"), RecordType::TLSA)
            .await
        {
            Err(DnsError::Temporary(e)) => Some(HopTls::DaneLookupFailed(e)),
            Ok(a) if !a.secure || a.records.is_empty() => None,
            Ok(a) => {
                let records: Vec<dane::Tlsa> = a
                    .records
                    .iter()
                    .filter_map(|r| match r {
                        RData::TLSA(t) => Some(dane::Tlsa {
                            usage: t.cert_usage.into(),
                            selector: t.selector.into(),
                            matching: t.matching.into(),
                            data: t.cert_data.clone(),
                        }),
                        _ => None,
                    })
                    .collect();
                if records.iter().any(dane::usable) {
                    Some(HopTls::Dane(Arc::new(records)))
                } else {
                    Some(HopTls::DaneUnauthenticated)
                }
            }
        }
    }

    /// One transaction for the recipients `idx` on an open connection.
    async fn send(
        &self,
        conn: &mut Conn,
        entry: &QueueEntry,
        data: &[u8],
        idx: &[usize],
        hop: &Hop,
    ) -> Result<Vec<Outcome>, SessionError> {
        let env = &entry.envelope;
        let caps = conn.caps.clone();
        let rcpts: Vec<&postern_spool::Recipient> = idx
            .iter()
            .map(|&i| &entry.recipients[i].recipient)
            .collect();
        let needs_utf8 = env.smtputf8
            || !env.sender.as_deref().unwrap_or("").is_ascii()
            || rcpts.iter().any(|r| !r.address.is_ascii());
        if needs_utf8 && !caps.smtputf8 {
            return Ok(vec![
                Outcome::Failed(Status::new(
                    EnhancedCode::new(5, 6, 7),
                    format_args!(
                        "{} [{}] does not support SMTPUTF8, which this message needs (RFC 6531)",
                        hop.host,
                        hop.addr.ip()
                    )
                ));
                idx.len()
            ]);
        }
        if let Some(limit) = caps.size.filter(|&n| n > 0) {
            if data.len() as u64 > limit {
                return Ok(vec![
                    Outcome::Failed(Status::new(
                        EnhancedCode::new(5, 3, 4),
                        format_args!(
                            "message of {} bytes exceeds the {limit} bytes {} [{}] accepts (RFC 1870)",
                            data.len(),
                            hop.host,
                            hop.addr.ip()
                        )
                    ));
                    idx.len()
                ]);
            }
        }
        // RFC 6152 §3: an 8-bit message for a server without 8BITMIME goes as a 7-bit copy
        // where it may (see `body`), else it is returned.
        let (data, transfer) = match body::choose(env.body, data, &caps) {
            Ok(t) => (std::borrow::Cow::Borrowed(data), t),
            Err((code, why)) => match body::seven_bit_copy(env.body, data, &caps) {
                Some((copy, t)) => (std::borrow::Cow::Owned(copy), t),
                None => {
                    return Ok(vec![
                        Outcome::Failed(Status::new(
                            code,
                            format_args!("{} [{}] {why}", hop.host, hop.addr.ip())
                        ));
                        idx.len()
                    ])
                }
            },
        };
        let data: &[u8] = &data;
        let mut mail = format!("MAIL FROM:<{}>", env.sender.as_deref().unwrap_or(""));
        if caps.size.is_some() {
            mail.push_str(&format!(" SIZE={}", data.len()));
        }
        if let Some(body) = transfer.body {
            mail.push_str(&format!(" BODY={body}"));
        }
        if needs_utf8 {
            mail.push_str(" SMTPUTF8");
        }
        if requiretls::applies(env) {
            // RFC 8689 §4.2.1: passed on (the session was checked to advertise it).
            mail.push_str(" REQUIRETLS");
        }
        if caps.dsn {
            match env.ret {
                Some(Ret::Full) => mail.push_str(" RET=FULL"),
                Some(Ret::Headers) => mail.push_str(" RET=HDRS"),
                None => {}
            }
            if let Some(envid) = &env.envid {
                mail.push_str(&format!(" ENVID={}", xtext(envid)));
            }
        }
        let rcpt_lines: Vec<String> = rcpts
            .iter()
            .map(|r| {
                let mut line = format!("RCPT TO:<{}>", r.address);
                if caps.dsn {
                    let n = r.notify;
                    let mut words = Vec::new();
                    if n.success {
                        words.push("SUCCESS");
                    }
                    if n.failure {
                        words.push("FAILURE");
                    }
                    if n.delay {
                        words.push("DELAY");
                    }
                    if words.is_empty() {
                        words.push("NEVER");
                    }
                    line.push_str(&format!(" NOTIFY={}", words.join(",")));
                    if let Some(orcpt) = &r.orcpt {
                        let (kind, addr) = orcpt.split_once(';').unwrap_or(("rfc822", orcpt));
                        line.push_str(&format!(" ORCPT={kind};{}", xtext(addr)));
                    }
                }
                line
            })
            .collect();
        let replies = if transfer.bdat {
            // RFC 3030 §2: BDAT wherever the server offers CHUNKING.
            let octets = body::bdat_octets(data, &transfer);
            conn.transaction_bdat(&mail, &rcpt_lines, &octets).await?
        } else {
            conn.transaction(&mail, &rcpt_lines, data).await?
        };
        let suffix = format!(
            " {}",
            if caps.dsn {
                NOTE_DSN_PASSED_ON
            } else {
                NOTE_RELAYED
            }
        );
        Ok(replies
            .iter()
            .map(|r| outcome_for(r, hop, &suffix))
            .collect())
    }
}

#[cfg(test)]
mod tests;
