//! Message authentication of inbound mail on the MX: SPF (RFC 7208) at MAIL FROM with the HELO
//! identity, iprev (RFC 8601 §3) at connect, DKIM (RFC 6376, RFC 8463), ARC (RFC 8617) and
//! DMARC (RFC 7489) at DATA, an `Authentication-Results` field (RFC 8601) on the accepted
//! message, and the verdict their scores add up to ([`VerdictCheck`]).
//!
//! Every lookup goes through one [`Authenticator`] built from `[dns]` at start and shared by
//! all sessions: mail-auth's resolver plus the TTL caches of this module. The DATA-stage
//! verification is bounded by `[policy] verify_timeout_secs`; past it the results are
//! `temperror`, never a hang.
//!
//! DMARC alignment uses mail-auth's organizational domain, found by the DNS tree walk of
//! DMARCbis (RFC 9989 §4.10), not a public-suffix list. `pct` (RFC 7489 §6.3), which DMARCbis
//! dropped and mail-auth no longer reads, is read here from the published record.

mod cache;
mod dmarc_db;
mod header;
mod spf;
mod verdict;

pub use dmarc_db::{
    path as dmarc_db_path, records as dmarc_records, DmarcGroup, DmarcRecord, DmarcRecorder,
};
pub use verdict::{VerdictCheck, SCORE_FIELD, VERDICT_FIELD};

use async_trait::async_trait;
use base64::Engine;
use cache::{cached, Caches};
use mail_auth::common::crypto::Algorithm;
use mail_auth::common::verify::DomainKey;
use mail_auth::dkim::DkimError;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::dmarc::Policy as DmarcPolicy;
use mail_auth::{
    AuthenticatedMessage, DkimOutput, DkimResult, DmarcResult, Error, IprevResult,
    MessageAuthenticator, SpfOutput, SpfResult,
};
use postern_config::{AuthPolicy, Network, Service};
use postern_mail::EnhancedCode;
use postern_smtp::{Check, Context, Score, Verdict};
use postern_spool::Envelope;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The resolver and caches every authentication check shares (built once at start).
pub struct Authenticator {
    inner: MessageAuthenticator,
    caches: Caches,
}

impl Authenticator {
    /// A resolver configured by `[dns]`, with caches of `[dns] cache_size` entries per type.
    pub fn new(dns: &postern_config::Dns) -> Result<Authenticator, String> {
        let (config, opts) = postern_dns::resolver_parts(dns)?;
        let inner = MessageAuthenticator::new(config, opts)
            .map_err(|e| format!("DNS resolver for message authentication: {e}"))?;
        Ok(Authenticator {
            inner,
            caches: Caches::new(usize::try_from(dns.cache_size).unwrap_or(usize::MAX)),
        })
    }
}

/// Whether a session's mail is checked: the MX, unauthenticated, from outside
/// `[smtp] trusted_networks`.
fn checked(enabled: bool, trusted: &[Network], ctx: &Context) -> bool {
    enabled
        && ctx.service == Service::Smtp
        && ctx.account.is_none()
        && !trusted.iter().any(|n| n.contains(ctx.peer))
}

/// RFC 8601 §2.2: a comment may not hold parentheses or backslashes unescaped; keep it short.
fn comment(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, '(' | ')' | '\\' | '\r' | '\n'))
        .take(120)
        .collect()
}

/// The RFC 8601 §2.7.2 name of an SPF result.
fn spf_word(r: SpfResult) -> &'static str {
    match r {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

fn spf_from_word(word: &str) -> SpfResult {
    match word {
        "pass" => SpfResult::Pass,
        "fail" => SpfResult::Fail,
        "softfail" => SpfResult::SoftFail,
        "neutral" => SpfResult::Neutral,
        "temperror" => SpfResult::TempError,
        "permerror" => SpfResult::PermError,
        _ => SpfResult::None,
    }
}

/// The RFC 8601 §2.7.1 name of a DKIM (or ARC) result, and the error's words.
fn dkim_word(r: &DkimResult) -> (&'static str, Option<String>) {
    match r {
        DkimResult::Pass => ("pass", None),
        DkimResult::Neutral(e) => ("neutral", Some(e.to_string())),
        DkimResult::Fail(e) => ("fail", Some(e.to_string())),
        DkimResult::PermError(e) => ("permerror", Some(e.to_string())),
        DkimResult::TempError(e) => ("temperror", Some(e.to_string())),
        DkimResult::None => ("none", None),
    }
}

fn dmarc_word(r: &DmarcResult) -> &'static str {
    match r {
        DmarcResult::Pass => "pass",
        DmarcResult::Fail(_) => "fail",
        DmarcResult::TempError(_) => "temperror",
        DmarcResult::PermError(_) => "permerror",
        DmarcResult::None => "none",
    }
}

fn policy_word(p: DmarcPolicy) -> &'static str {
    match p {
        DmarcPolicy::None | DmarcPolicy::Unspecified => "none",
        DmarcPolicy::Quarantine => "quarantine",
        DmarcPolicy::Reject => "reject",
    }
}

/// The domain of an address (after the last `@`), lower-case; `None` without one.
fn domain_of(address: &str) -> Option<String> {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('.').to_ascii_lowercase())
        .filter(|d| !d.is_empty())
}

/// The `pct=` of a DMARC record text (RFC 7489 §6.3), 100 when absent or malformed.
fn dmarc_pct(record: &str) -> u8 {
    record
        .split(';')
        .filter_map(|tag| tag.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("pct"))
        .and_then(|(_, v)| v.trim().parse::<u8>().ok())
        .map_or(100, |p| p.min(100))
}

/// How long a name without a DMARC record is remembered.
const NEGATIVE_TTL: Duration = Duration::from_secs(300);

/// What the DATA stage found.
#[derive(Debug, Default)]
struct MessageOutcome {
    results: Vec<String>,
    scores: Vec<Score>,
    verdict: Option<Verdict>,
}

/// SPF, iprev, DKIM, ARC and DMARC as one [`Check`], with the `Authentication-Results` edit.
pub struct AuthCheck {
    auth: Arc<Authenticator>,
    policy: AuthPolicy,
    authserv_id: String,
    hostname: String,
    trusted: Vec<Network>,
    recorder: Option<DmarcRecorder>,
}

impl AuthCheck {
    /// The check of `policy` (`[policy]`), naming itself `hostname` unless `authserv_id` is
    /// set; `trusted` is `[smtp] trusted_networks`; DMARC evaluations go to `recorder`.
    pub fn new(
        auth: Arc<Authenticator>,
        policy: &AuthPolicy,
        hostname: &str,
        trusted: Vec<Network>,
        recorder: Option<DmarcRecorder>,
    ) -> AuthCheck {
        AuthCheck {
            auth,
            authserv_id: policy
                .authserv_id
                .clone()
                .unwrap_or_else(|| hostname.to_ascii_lowercase()),
            hostname: hostname.to_string(),
            policy: policy.clone(),
            trusted,
            recorder,
        }
    }

    fn applies(&self, ctx: &Context) -> bool {
        checked(self.policy.enabled, &self.trusted, ctx)
    }

    fn score(&self, check: &str, points: f64, reason: String) -> Score {
        Score {
            check: check.to_string(),
            points,
            reason,
        }
    }

    /// RFC 7208 §4: `check_host()` of one identity.
    async fn check_host(&self, ip: IpAddr, domain: &str, sender: &str, helo: &str) -> SpfResult {
        spf::Spf::new(&self.auth.inner.0, ip, sender, helo, &self.hostname)
            .check_host(domain)
            .await
    }

    /// The HELO name if it is a domain (not an address literal).
    fn helo_domain(ctx: &Context) -> Option<String> {
        ctx.helo
            .as_deref()
            .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|h| !h.is_empty() && !h.starts_with('[') && h.parse::<IpAddr>().is_err())
    }

    /// RFC 7208 §2.3, §2.4: SPF of the HELO identity, then of MAIL FROM (for `<>`, the HELO
    /// result is the one used); findings, score, and the refusal of `spf_reject_fail`.
    async fn spf(&self, ctx: &Context, sender: Option<&str>) -> Verdict {
        let helo = Self::helo_domain(ctx);
        // RFC 7208 §2.3: the HELO identity, as postmaster@<helo>.
        let helo_out = match &helo {
            Some(h) => Some(self.check_host(ctx.peer, h, "", h).await),
            None => None,
        };
        let sender = sender.filter(|s| !s.is_empty());
        let mut results = Vec::new();
        let (used, domain) = match sender {
            Some(address) => {
                // RFC 7208 §4.3: the domain of MAIL FROM (the HELO name without one).
                let domain = domain_of(address)
                    .or_else(|| helo.clone())
                    .unwrap_or_default();
                let result = self
                    .check_host(ctx.peer, &domain, address, helo.as_deref().unwrap_or(""))
                    .await;
                results.push(format!(
                    "spf={} smtp.mailfrom={}",
                    spf_word(result),
                    if domain.is_empty() { address } else { &domain }
                ));
                (result, domain)
            }
            None => (
                helo_out.unwrap_or(SpfResult::None),
                helo.clone().unwrap_or_default(),
            ),
        };
        if let (Some(h), Some(o)) = (&helo, helo_out) {
            results.push(format!("spf={} smtp.helo={h}", spf_word(o)));
        }
        let s = &self.policy.scores;
        let points = match used {
            SpfResult::Pass => s.spf_pass,
            SpfResult::Fail => s.spf_fail,
            SpfResult::SoftFail => s.spf_softfail,
            SpfResult::Neutral => s.spf_neutral,
            SpfResult::TempError => s.spf_temperror,
            SpfResult::PermError => s.spf_permerror,
            SpfResult::None => s.spf_none,
        };
        let score = self.score("spf", points, format!("spf={}", spf_word(used)));
        ctx.with_findings(|f| {
            f.transaction.results.extend(results);
            f.transaction.scores.push(score);
            f.transaction
                .notes
                .insert("spf".into(), spf_word(used).into());
            f.transaction
                .notes
                .insert("spf_domain".into(), domain.clone());
            // RFC 7489 §7.2.1.1 (auth_results/spf/scope): which identity the result is for.
            f.transaction.notes.insert(
                "spf_scope".into(),
                if sender.is_some() { "mfrom" } else { "helo" }.into(),
            );
        });
        if self.policy.spf_reject_fail && used == SpfResult::Fail {
            return Verdict::reject(
                550,
                EnhancedCode::new(5, 7, 23),
                &format!(
                    "SPF of {domain} does not allow {} to send its mail",
                    ctx.peer
                ),
            );
        }
        Verdict::Accept
    }

    /// The DATA-stage verification: DKIM, ARC, DMARC.
    async fn verify_message(&self, ctx: &Context, message: &[u8]) -> MessageOutcome {
        let mut out = MessageOutcome::default();
        let s = &self.policy.scores;
        // Not strict: signatures with the body length tag `l=` (RFC 6376 §3.5) are verified on
        // the length they cover, as the RFC says, rather than set aside.
        let Some(msg) = AuthenticatedMessage::parse_with_opts(message, None, false) else {
            out.results
                .push("dkim=permerror (the header section cannot be parsed)".into());
            out.scores
                .push(self.score("dkim", s.dkim_fail, "unparsable header".into()));
            return out;
        };
        let a = &self.auth;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());

        // RFC 6376 §6: every signature; RFC 8301 §3.2 key sizes; §3.5 t= in the future.
        let mut dkim: Vec<DkimOutput<'_>> = a.inner.verify_dkim(cached!(a.caches, &msg)).await;
        let mut reasons: Vec<Option<String>> = vec![None; dkim.len()];
        let mut downgrades = Vec::new();
        for (i, o) in dkim.iter().enumerate() {
            let Some(sig) = o.signature() else { continue };
            if *o.result() != DkimResult::Pass {
                continue;
            }
            // The signature as the message holds it (borrowed from `msg`, not from `o`).
            let Some(j) = msg
                .dkim_headers
                .iter()
                .position(|h| std::ptr::eq(&h.header, sig))
            else {
                continue;
            };
            if sig.t > now + 300 {
                reasons[i] = Some("signature timestamp in the future".into());
                downgrades.push((i, j, false));
                continue;
            }
            if matches!(sig.a, Algorithm::RsaSha256 | Algorithm::RsaSha1) {
                let name = format!("{}._domainkey.{}.", sig.s, sig.d);
                let bits = match a
                    .inner
                    .txt_lookup::<DomainKey>(name, Some(&a.caches.txt))
                    .await
                {
                    Ok(key) => key.p.public_key_bits(),
                    Err(_) => usize::MAX,
                };
                if bits < self.policy.dkim_min_rsa_bits as usize {
                    reasons[i] = Some(format!(
                        "RSA key of {bits} bits, below {} (RFC 8301)",
                        self.policy.dkim_min_rsa_bits
                    ));
                    downgrades.push((i, j, true));
                }
            }
        }
        for (i, j, fail) in downgrades {
            let sig = &msg.dkim_headers[j].header;
            dkim[i] = if fail {
                DkimOutput::fail(Error::Dkim(DkimError::UnsupportedKeyType)).with_signature(sig)
            } else {
                DkimOutput::neutral(Error::Dkim(DkimError::SignatureExpired)).with_signature(sig)
            };
        }
        let mut dkim_summary = Vec::new();
        let mut any_pass = false;
        for (o, reason) in dkim.iter().zip(&reasons) {
            let (word, err) = dkim_word(o.result());
            any_pass |= word == "pass";
            let why = reason.clone().or(err);
            let mut text = format!("dkim={word}");
            if let Some(why) = why {
                text.push_str(&format!(" ({})", comment(&why)));
            }
            if let Some(sig) = o.signature() {
                let b = base64::engine::general_purpose::STANDARD.encode(&sig.b);
                text.push_str(&format!(
                    " header.d={} header.s={} header.b={}",
                    sig.d,
                    sig.s,
                    &b[..b.len().min(8)]
                ));
                dkim_summary.push(format!("{}:{word}:{}", sig.d, sig.s));
            }
            out.results.push(text);
        }
        if dkim.is_empty() {
            out.results.push("dkim=none".into());
            out.scores
                .push(self.score("dkim", s.dkim_none, "dkim=none".into()));
        } else if any_pass {
            out.scores
                .push(self.score("dkim", s.dkim_pass, "dkim=pass".into()));
        } else {
            out.scores
                .push(self.score("dkim", s.dkim_fail, "dkim=fail".into()));
        }

        // RFC 8617 §5.2: the chain.
        let arc = a.inner.verify_arc(cached!(a.caches, &msg)).await;
        let (arc_word, arc_err) = match arc.result() {
            DkimResult::Neutral(e) | DkimResult::PermError(e) => ("fail", Some(e.to_string())),
            other => dkim_word(other),
        };
        let sealer = arc
            .sets()
            .last()
            .map(|set| set.seal.header.d.to_ascii_lowercase());
        let mut text = format!("arc={arc_word}");
        if let Some(e) = arc_err {
            text.push_str(&format!(" ({})", comment(&e)));
        }
        text.push_str(&format!(" smtp.remote-ip={}", ctx.peer));
        out.results.push(text);

        // RFC 7489 §6.6: DMARC with the SPF result of MAIL FROM.
        let (spf_word_, spf_domain) = ctx.with_findings(|f| {
            (
                f.note("spf").unwrap_or("none").to_string(),
                f.note("spf_domain").unwrap_or("").to_string(),
            )
        });
        if let Some(from) = msg.from.first().and_then(|a| domain_of(a)) {
            self.remember_missing_dmarc(&from).await;
        }
        let spf = SpfOutput::new(spf_domain.clone()).with_result(spf_from_word(&spf_word_));
        let params = DmarcParameters::new(&msg, &dkim, &spf_domain, &spf);
        let dmarc = a.inner.verify_dmarc(cached!(a.caches, params)).await;
        if dmarc.dmarc_record().is_none() {
            if !dmarc.domain().is_empty() {
                // The tree walk failed on a DNS error: neither pass nor fail (RFC 7489 §6.6.3).
                let word = match (dmarc.spf_result(), dmarc.dkim_result()) {
                    (DmarcResult::TempError(_), _) | (_, DmarcResult::TempError(_)) => "temperror",
                    (DmarcResult::PermError(_), _) | (_, DmarcResult::PermError(_)) => "permerror",
                    _ => "none",
                };
                out.results
                    .push(format!("dmarc={word} header.from={}", dmarc.domain()));
            }
            return out;
        }
        let result = dmarc.result();
        let word = dmarc_word(&result);
        let policy = dmarc.policy();
        let from = dmarc.domain().to_string();
        let mut disposition = DmarcPolicy::None;
        let mut override_reason = String::new();
        if matches!(result, DmarcResult::Fail(_))
            && matches!(policy, DmarcPolicy::Reject | DmarcPolicy::Quarantine)
        {
            disposition = policy;
            let pct = self.published_pct(&from).await;
            if pct < 100 && rand::Rng::gen_range(&mut rand::thread_rng(), 0..100u8) >= pct {
                // RFC 7489 §6.6.4: outside the sample, one step milder.
                disposition = if policy == DmarcPolicy::Reject {
                    DmarcPolicy::Quarantine
                } else {
                    DmarcPolicy::None
                };
                override_reason = "sampled_out".into();
            }
            if self
                .policy
                .dmarc_forwarders
                .iter()
                .any(|n| n.contains(ctx.peer))
            {
                // RFC 7489 §6.7: local policy for known forwarders.
                disposition = DmarcPolicy::None;
                override_reason = "forwarded".into();
            } else if *arc.result() == DkimResult::Pass
                && sealer
                    .as_deref()
                    .is_some_and(|d| self.policy.trusted_arc_sealers.iter().any(|t| t == d))
            {
                // RFC 8617 §7.2: a trusted intermediary's chain vouches for the original.
                disposition = DmarcPolicy::None;
                override_reason = "trusted_forwarder".into();
            }
        }
        let mut text = format!(
            "dmarc={word} (p={} dis={}",
            policy_word(policy),
            policy_word(disposition)
        );
        if !override_reason.is_empty() {
            text.push_str(&format!(" override={override_reason}"));
            if let (true, Some(d)) = (override_reason == "trusted_forwarder", &sealer) {
                text.push_str(&format!(" arc.sealer={d}"));
            }
        }
        text.push_str(&format!(") header.from={from}"));
        out.results.push(text);
        match (&result, disposition) {
            (DmarcResult::Pass, _) => {
                out.scores
                    .push(self.score("dmarc", s.dmarc_pass, "dmarc=pass".into()));
            }
            (DmarcResult::Fail(_), DmarcPolicy::Reject) => {
                out.verdict = Some(Verdict::reject(
                    550,
                    EnhancedCode::new(5, 7, 26),
                    &format!("DMARC policy of {from} rejects this unauthenticated message"),
                ));
            }
            (DmarcResult::Fail(_), DmarcPolicy::Quarantine) => {
                out.scores.push(self.score(
                    "dmarc",
                    s.dmarc_quarantine,
                    "dmarc=fail p=quarantine".into(),
                ));
            }
            (DmarcResult::Fail(_), _) => {
                out.scores
                    .push(self.score("dmarc", s.dmarc_fail, "dmarc=fail".into()));
            }
            _ => {}
        }
        if let Some(recorder) = &self.recorder {
            recorder.record(DmarcRecord {
                time: now as i64,
                header_from: from.clone(),
                source_ip: ctx.peer.to_string(),
                spf: spf_word_.clone(),
                spf_domain: spf_domain.clone(),
                spf_scope: ctx
                    .with_findings(|f| f.note("spf_scope").unwrap_or("mfrom").to_string()),
                spf_aligned: *dmarc.spf_result() == DmarcResult::Pass,
                dkim: dkim_summary.join(" "),
                dkim_aligned: *dmarc.dkim_result() == DmarcResult::Pass,
                result: word.to_string(),
                disposition: policy_word(disposition).to_string(),
                policy: policy_word(policy).to_string(),
                override_reason,
            });
        }
        out
    }

    /// Negative caching (RFC 2308 §5) for the DMARC tree walk: mail-auth caches the records it
    /// finds but asks again for every name without one (`_dmarc.<tld>` on every message), so the
    /// names of `domain`'s walk that have no record are remembered for [`NEGATIVE_TTL`].
    async fn remember_missing_dmarc(&self, domain: &str) {
        use mail_auth::ResolverCache;
        let labels: Vec<&str> = domain.split('.').filter(|l| !l.is_empty()).collect();
        for i in 0..labels.len().min(10) {
            let name = format!("_dmarc.{}.", labels[i..].join("."));
            if self.auth.caches.txt.get(name.as_str()).is_some() {
                continue;
            }
            let lookup = self
                .auth
                .inner
                .txt_lookup::<mail_auth::dmarc::Dmarc>(name.clone(), Some(&self.auth.caches.txt))
                .await;
            if let Err(e @ Error::Dns(mail_auth::DnsError::RecordNotFound(_))) = lookup {
                self.auth.caches.txt.insert(
                    name.into_boxed_str(),
                    mail_auth::Txt::Error(e),
                    std::time::Instant::now() + NEGATIVE_TTL,
                );
            }
        }
    }

    /// The `pct` of the DMARC record that applies to `domain`: its own, else the nearest
    /// parent's (the tree walk, RFC 9989 §4.10).
    async fn published_pct(&self, domain: &str) -> u8 {
        let mut name = domain;
        for _ in 0..8 {
            if let Ok(raw) = self
                .auth
                .inner
                .txt_raw_lookup(format!("_dmarc.{name}."))
                .await
            {
                let text = String::from_utf8_lossy(&raw);
                if text.trim_start().starts_with("v=DMARC1") {
                    return dmarc_pct(&text);
                }
            }
            match name.split_once('.') {
                Some((_, parent)) if parent.contains('.') => name = parent,
                _ => break,
            }
        }
        100
    }
}

#[async_trait]
impl Check for AuthCheck {
    fn name(&self) -> &str {
        "auth"
    }

    /// RFC 8601 §3: iprev, the client's reverse DNS confirmed by its forward DNS.
    async fn connect(&self, ctx: &Context) -> Verdict {
        if !self.applies(ctx) {
            return Verdict::Accept;
        }
        let a = &self.auth;
        let limit = Duration::from_secs(self.policy.verify_timeout_secs);
        let out =
            match tokio::time::timeout(limit, a.inner.verify_iprev(cached!(a.caches, ctx.peer)))
                .await
            {
                Ok(out) => out,
                Err(_) => mail_auth::IprevOutput {
                    result: IprevResult::TempError(Error::Dns(mail_auth::DnsError::Resolver(
                        "timed out".into(),
                    ))),
                    ptr: None,
                },
            };
        let name = out
            .ptr
            .as_ref()
            .and_then(|p| p.first())
            .map(|n| n.trim_end_matches('.').to_string());
        let (word, why) = match &out.result {
            IprevResult::Pass => ("pass", None),
            IprevResult::Fail(e) => ("fail", Some(e.to_string())),
            IprevResult::TempError(e) => ("temperror", Some(e.to_string())),
            // §2.7.3: no PTR at all is permerror; names that do not resolve back, fail.
            IprevResult::PermError(e) if out.ptr.is_some() => ("fail", Some(e.to_string())),
            IprevResult::PermError(e) => ("permerror", Some(e.to_string())),
            IprevResult::None => ("permerror", None),
        };
        let mut text = format!("iprev={word}");
        match (&name, &why) {
            (Some(n), _) if word == "pass" => text.push_str(&format!(" ({})", comment(n))),
            (_, Some(w)) => text.push_str(&format!(" ({})", comment(w))),
            _ => {}
        }
        text.push_str(&format!(" policy.iprev={}", ctx.peer));
        let s = &self.policy.scores;
        let points = match word {
            "pass" => s.iprev_pass,
            "temperror" => s.iprev_temperror,
            _ => s.iprev_fail,
        };
        let score = self.score("iprev", points, format!("iprev={word}"));
        ctx.with_findings(|f| {
            f.connection.results.push(text);
            f.connection.scores.push(score);
            f.connection.notes.insert("iprev".into(), word.into());
        });
        if self.policy.iprev_reject && matches!(word, "fail" | "permerror") {
            return Verdict::reject(
                550,
                EnhancedCode::new(5, 7, 25),
                &format!("reverse DNS of {} does not confirm it", ctx.peer),
            );
        }
        Verdict::Accept
    }

    /// RFC 7208 §2.3, §2.4: SPF of the HELO identity, then of MAIL FROM (for `<>`, the HELO
    /// result is the one used).
    async fn mail(&self, ctx: &Context, sender: Option<&str>) -> Verdict {
        if !self.applies(ctx) {
            return Verdict::Accept;
        }
        let limit = Duration::from_secs(self.policy.verify_timeout_secs);
        match tokio::time::timeout(limit, self.spf(ctx, sender)).await {
            Ok(verdict) => verdict,
            Err(_) => {
                tracing::warn!(peer = %ctx.peer, "SPF timed out");
                let score = self.score(
                    "spf",
                    self.policy.scores.spf_temperror,
                    "spf=temperror".into(),
                );
                ctx.with_findings(|f| {
                    f.transaction
                        .results
                        .push("spf=temperror (timed out)".into());
                    f.transaction.scores.push(score);
                    f.transaction.notes.insert("spf".into(), "temperror".into());
                });
                Verdict::Accept
            }
        }
    }

    /// RFC 6376 §6, RFC 8617 §5.2, RFC 7489 §6.6 on the message, within the time-out.
    async fn data(&self, ctx: &Context, _envelope: &Envelope, message: &[u8]) -> Verdict {
        if !self.applies(ctx) {
            return Verdict::Accept;
        }
        let limit = Duration::from_secs(self.policy.verify_timeout_secs);
        let outcome = match tokio::time::timeout(limit, self.verify_message(ctx, message)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                tracing::warn!(peer = %ctx.peer, "message authentication timed out");
                MessageOutcome {
                    results: vec![
                        "dkim=temperror (verification timed out)".into(),
                        "dmarc=temperror (verification timed out)".into(),
                    ],
                    ..MessageOutcome::default()
                }
            }
        };
        ctx.with_findings(|f| {
            f.transaction.results.extend(outcome.results);
            f.transaction.scores.extend(outcome.scores);
        });
        outcome.verdict.unwrap_or(Verdict::Accept)
    }

    /// RFC 8601 §5: drop every `Authentication-Results` claiming our authserv-id, then add
    /// ours at the top.
    async fn edit(&self, ctx: &Context, _envelope: &Envelope, message: &mut Vec<u8>) {
        if self.trusted.iter().any(|n| n.contains(ctx.peer)) && ctx.service == Service::Smtp {
            return;
        }
        header::remove_fields(message, |name, value| {
            name.eq_ignore_ascii_case("Authentication-Results")
                && header::authserv_id(value) == self.authserv_id
        });
        if !self.applies(ctx) {
            return;
        }
        let results: Vec<String> = ctx.with_findings(|f| f.results().cloned().collect());
        header::prepend(
            message,
            &header::folded("Authentication-Results", &self.authserv_id, &results),
        );
    }
}

#[cfg(test)]
mod tests;
