//! Sending aggregate reports (RFC 7489 §7.2): for one UTC day, each From domain with
//! evaluations gets its DMARC record looked up again (the DMARCbis tree walk), its `rua`
//! mailto destinations checked (§7.1: an external destination must publish
//! `<policy-domain>._report._dmarc.<rua-domain>`), and a report message (§7.2.1.1, the XML
//! gzipped) queued for each destination whose size limit it fits.

use crate::db::{self, Evaluated};
use crate::feedback::{DkimAuth, Feedback, PolicyPublished, Record, SpfAuth};
use crate::DmarcError;
use base64::Engine;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::{DnsError, Error, MessageAuthenticator};
use postern_spool::{BodyType, Envelope, Queue, QueueId, Recipient};
use rusqlite::Connection;
use std::collections::{BTreeMap, HashSet};
use std::io::Write;

/// Who this server says it is in its reports.
#[derive(Debug, Clone)]
pub struct Reporter {
    /// `org_name` (`[policy] dmarc_report_org`).
    pub org_name: String,
    /// `email` and `From:` (`[policy] dmarc_report_from`).
    pub from: String,
    /// The host name (Message-ID).
    pub hostname: String,
}

impl Reporter {
    /// The submitter named in the subject and file name: the domain of the From address.
    pub fn submitter(&self) -> &str {
        self.from
            .rsplit_once('@')
            .map_or(&self.hostname, |(_, d)| d)
    }
}

/// The DNS lookups of the reports, through `[dns]`.
pub struct Lookup {
    inner: MessageAuthenticator,
}

/// The DMARC record of a domain, as the reports describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// `policy_published`.
    pub policy: PolicyPublished,
    /// The `rua` mailto addresses and their size limits in bytes (0: none).
    pub rua: Vec<(String, usize)>,
}

/// The tags of a DMARC record text, lower-case names.
fn tags(record: &str) -> Vec<(String, String)> {
    record
        .split(';')
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect()
}

/// RFC 7489 §6.3: the reports' view of a record found at `domain`.
pub fn published(domain: &str, record: &str) -> Result<Published, DmarcError> {
    let parsed = mail_auth::dmarc::Dmarc::parse(record.as_bytes())
        .map_err(|e| DmarcError::Dns(format!("the DMARC record of {domain} is invalid: {e}")))?;
    let t = tags(record);
    let get = |k: &str| t.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let word = |v: Option<String>, d: &str| {
        v.map(|v| v.to_ascii_lowercase())
            .filter(|v| ["none", "quarantine", "reject"].contains(&v.as_str()))
            .unwrap_or_else(|| d.to_string())
    };
    let p = word(get("p"), "none");
    let sp = word(get("sp"), &p);
    Ok(Published {
        policy: PolicyPublished {
            domain: domain.to_string(),
            adkim: Some(
                get("adkim")
                    .filter(|a| a.eq_ignore_ascii_case("s"))
                    .map_or("r".into(), |_| "s".into()),
            ),
            aspf: Some(
                get("aspf")
                    .filter(|a| a.eq_ignore_ascii_case("s"))
                    .map_or("r".into(), |_| "s".into()),
            ),
            p,
            sp,
            pct: get("pct")
                .and_then(|v| v.parse::<u8>().ok())
                .map_or(100, |p| p.min(100)),
            fo: get("fo").unwrap_or_else(|| "0".into()),
        },
        rua: parsed
            .rua
            .iter()
            .map(|u| (u.uri.clone(), u.max_size))
            .collect(),
    })
}

/// RFC 9989 §4.10 (DMARCbis) tree walk: the names asked, nearest first; at most 8 labels.
pub fn walk(domain: &str) -> Vec<String> {
    let labels: Vec<&str> = domain.split('.').filter(|l| !l.is_empty()).collect();
    let mut out = vec![labels.join(".")];
    let start = if labels.len() > 8 {
        labels.len() - 7
    } else {
        1
    };
    for i in start..labels.len() {
        out.push(labels[i..].join("."));
    }
    out
}

/// Whether `name` is `base` or under it.
fn within(name: &str, base: &str) -> bool {
    name == base || name.strip_suffix(base).is_some_and(|p| p.ends_with('.'))
}

impl Lookup {
    /// A resolver configured by `[dns]`.
    pub fn new(dns: &postern_config::Dns) -> Result<Lookup, DmarcError> {
        let (config, opts) = postern_dns::resolver_parts(dns).map_err(DmarcError::Dns)?;
        let inner = MessageAuthenticator::new(config, opts)
            .map_err(|e| DmarcError::Dns(format!("DNS resolver: {e}")))?;
        Ok(Lookup { inner })
    }

    /// A TXT record starting with `v=DMARC1` at `name`: `Ok(None)` when there is none,
    /// `Err` on a DNS failure.
    async fn dmarc_txt(&self, name: &str) -> Result<Option<String>, DmarcError> {
        match self.inner.txt_raw_lookup(format!("{name}.")).await {
            Ok(raw) => {
                let text = String::from_utf8_lossy(&raw).to_string();
                Ok(text
                    .trim_start()
                    .to_ascii_lowercase()
                    .starts_with("v=dmarc1")
                    .then_some(text))
            }
            Err(Error::Dns(DnsError::RecordNotFound(_))) => Ok(None),
            Err(e) => Err(DmarcError::Dns(format!("{name}: {e}"))),
        }
    }

    /// The DMARC record that applies to `domain` (its own, else the nearest parent's).
    pub async fn policy(&self, domain: &str) -> Result<Option<Published>, DmarcError> {
        for name in walk(domain) {
            if let Some(text) = self.dmarc_txt(&format!("_dmarc.{name}")).await? {
                return published(&name, &text).map(Some);
            }
        }
        Ok(None)
    }

    /// The reverse-DNS name of `ip` (for `postern dmarc report --resolve`), if it has one.
    pub async fn ptr(&self, ip: std::net::IpAddr) -> Option<String> {
        let cache: Option<&mail_auth::common::cache::NoCache<_, _>> = None;
        self.inner.ptr_lookup(ip, cache).await.ok().and_then(|set| {
            set.rrset
                .first()
                .map(|n| n.trim_end_matches('.').to_string())
        })
    }

    /// RFC 7489 §7.1: whether reports about `policy_domain` may go to an address at
    /// `rua_domain`. Within the policy's own organisational domain (where the record was found)
    /// they may; elsewhere `<policy-domain>._report._dmarc.<rua-domain>` must hold a
    /// `v=DMARC1` record. `Err` says why not.
    pub async fn authorized(&self, policy_domain: &str, rua_domain: &str) -> Result<(), String> {
        if within(rua_domain, policy_domain) {
            return Ok(());
        }
        let name = format!("{policy_domain}._report._dmarc.{rua_domain}");
        match self.dmarc_txt(&name).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(format!(
                "{rua_domain} is outside {policy_domain} and {name} publishes no v=DMARC1 record (RFC 7489 §7.1)"
            )),
            Err(e) => Err(format!(
                "the authorization record {name} could not be looked up ({e}); not sent"
            )),
        }
    }
}

/// A report ready to queue for one destination.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The From domain the report is about.
    pub domain: String,
    /// The report.
    pub report: Feedback,
    /// The destination address.
    pub to: String,
    /// The whole message (RFC 7489 §7.2.1.1).
    pub message: Vec<u8>,
}

/// What one day's run found.
#[derive(Debug, Default)]
pub struct Plan {
    /// Reports to queue.
    pub reports: Vec<Planned>,
    /// Domains or destinations left out, and why (for the log and `--dry-run`).
    pub skipped: Vec<String>,
}

/// The RFC 7489 `dkim` words as the MX recorded them (`domain:result[:selector]`).
fn dkim_results(recorded: &str) -> Vec<DkimAuth> {
    recorded
        .split_whitespace()
        .filter_map(|item| {
            let mut it = item.split(':');
            let domain = it.next()?.to_string();
            let result = it.next()?.to_string();
            let selector = it.next().map(str::to_string).filter(|s| !s.is_empty());
            Some(DkimAuth {
                domain,
                selector,
                result,
            })
        })
        .collect()
}

/// RFC 7489 §7.2.1.1: the rows of a report, grouped by source IP, disposition and results.
pub fn records(header_from: &str, rows: &[Evaluated]) -> Vec<Record> {
    rows.iter()
        .map(|e| Record {
            source_ip: e.source_ip.clone(),
            count: e.count,
            disposition: e.disposition.clone(),
            dkim: if e.dkim_aligned { "pass" } else { "fail" }.into(),
            spf: if e.spf_aligned { "pass" } else { "fail" }.into(),
            reasons: if e.override_reason.is_empty() {
                vec![]
            } else {
                vec![(e.override_reason.clone(), None)]
            },
            envelope_to: None,
            envelope_from: if e.spf_domain.is_empty() {
                header_from.to_string()
            } else {
                e.spf_domain.clone()
            },
            header_from: header_from.to_string(),
            dkim_results: dkim_results(&e.dkim),
            spf_results: vec![SpfAuth {
                domain: if e.spf_domain.is_empty() {
                    header_from.to_string()
                } else {
                    e.spf_domain.clone()
                },
                scope: e.spf_scope.clone(),
                result: e.spf.clone(),
            }],
        })
        .collect()
}

/// The start (00:00 UTC, seconds since the epoch) of the day `YYYY-MM-DD`.
pub fn day_start(date: &str) -> Result<i64, DmarcError> {
    postern_mail::date::parse_day(date.trim())
        .ok_or_else(|| DmarcError::Report(format!("{date:?} is not a date (YYYY-MM-DD)")))
}

/// The start of the UTC day before the one holding `now`: the period a daily run reports.
pub fn previous_day(now: i64) -> i64 {
    now.div_euclid(86_400) * 86_400 - 86_400
}

/// A report id unique to this reporter: the period, the domain and 64 random bits.
fn report_id(domain: &str, begin: i64) -> String {
    format!("{begin}.{domain}.{:016x}", rand::random::<u64>())
}

/// gzip of the XML.
pub fn gzip(xml: &str) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let _ = e.write_all(xml.as_bytes());
    e.finish().unwrap_or_default()
}

/// RFC 7489 §7.2.1.1: the report message: the subject `Report Domain: D Submitter: S
/// Report-ID: <id>`, a short text, and the gzipped XML named `submitter!domain!begin!end.xml.gz`.
pub fn message(reporter: &Reporter, report: &Feedback, to: &str, now: i64) -> Vec<u8> {
    let domain = &report.policy.domain;
    let submitter = reporter.submitter();
    let file = format!(
        "{submitter}!{domain}!{}!{}.xml.gz",
        report.begin, report.end
    );
    let gz = gzip(&report.to_xml());
    let b64 = base64::engine::general_purpose::STANDARD.encode(&gz);
    let boundary = format!("=_dmarc_{:016x}", rand::random::<u64>());
    let mut m = String::new();
    m.push_str(&format!("From: {}\r\n", reporter.from));
    m.push_str(&format!("To: {to}\r\n"));
    m.push_str(&format!(
        "Subject: Report Domain: {domain} Submitter: {submitter} Report-ID: <{}>\r\n",
        report.report_id
    ));
    m.push_str(&format!("Date: {}\r\n", postern_mail::date::rfc5322(now)));
    m.push_str(&format!(
        "Message-ID: <{}@{}>\r\n",
        report.report_id, reporter.hostname
    ));
    m.push_str("Auto-Submitted: auto-generated\r\n");
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str(&format!(
        "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"
    ));
    m.push_str(&format!("--{boundary}\r\n"));
    m.push_str("Content-Type: text/plain; charset=us-ascii\r\n\r\n");
    m.push_str(&format!(
        "This is a DMARC aggregate report (RFC 7489) from {} for {domain},\r\n\
         covering {} to {} (UTC, seconds since the epoch).\r\n\r\n",
        reporter.org_name.replace(['\r', '\n'], " "),
        report.begin,
        report.end
    ));
    m.push_str(&format!("--{boundary}\r\n"));
    m.push_str(&format!(
        "Content-Type: application/gzip; name=\"{file}\"\r\n"
    ));
    m.push_str("Content-Transfer-Encoding: base64\r\n");
    m.push_str(&format!(
        "Content-Disposition: attachment; filename=\"{file}\"\r\n\r\n"
    ));
    for chunk in b64.as_bytes().chunks(76) {
        m.push_str(&String::from_utf8_lossy(chunk));
        m.push_str("\r\n");
    }
    m.push_str(&format!("--{boundary}--\r\n"));
    m.into_bytes()
}

/// The evaluations of the UTC day starting at `begin` still to report, by From domain:
/// domains in `local` (ours, read locally) and domains already sent for that day are left out
/// (with the reason in `skipped`).
pub fn pending(
    conn: &Connection,
    local: &HashSet<String>,
    begin: i64,
    skipped: &mut Vec<String>,
) -> Result<BTreeMap<String, Vec<Evaluated>>, DmarcError> {
    let mut out = BTreeMap::new();
    for (domain, rows) in db::evaluated(conn, begin, begin + 86_399)? {
        if local.contains(&domain) {
            skipped.push(format!(
                "{domain}: a local domain, its results are read here"
            ));
        } else if db::was_sent(conn, &domain, begin)? {
            skipped.push(format!("{domain}: the report of this day was sent already"));
        } else {
            out.insert(domain, rows);
        }
    }
    Ok(out)
}

/// RFC 7489 §7.2: the reports of the UTC day starting at `begin` for the `pending` evaluations
/// (see [`pending`]), with the DNS lookups of each domain's policy and destinations.
pub async fn plan(
    pending: BTreeMap<String, Vec<Evaluated>>,
    skipped: Vec<String>,
    lookup: &Lookup,
    reporter: &Reporter,
    begin: i64,
    now: i64,
) -> Plan {
    let end = begin + 86_399;
    let mut plan = Plan {
        reports: Vec::new(),
        skipped,
    };
    for (domain, rows) in pending {
        let published = match lookup.policy(&domain).await {
            Ok(Some(p)) => p,
            Ok(None) => {
                plan.skipped
                    .push(format!("{domain}: no DMARC record any more"));
                continue;
            }
            Err(e) => {
                plan.skipped.push(format!("{domain}: {e}"));
                continue;
            }
        };
        if published.rua.is_empty() {
            plan.skipped.push(format!(
                "{domain}: its DMARC record asks for no aggregate reports (no rua)"
            ));
            continue;
        }
        let report = Feedback {
            org_name: reporter.org_name.clone(),
            email: reporter.from.clone(),
            extra_contact_info: None,
            report_id: report_id(&domain, begin),
            begin,
            end,
            errors: vec![],
            policy: published.policy.clone(),
            records: records(&domain, &rows),
        };
        for (address, max) in &published.rua {
            let Some((_, rua_domain)) = address.rsplit_once('@') else {
                plan.skipped
                    .push(format!("{domain}: rua {address:?} is not a mail address"));
                continue;
            };
            let rua_domain = rua_domain.trim_end_matches('.').to_ascii_lowercase();
            if let Err(why) = lookup
                .authorized(&published.policy.domain, &rua_domain)
                .await
            {
                plan.skipped
                    .push(format!("{domain}: mailto:{address} skipped: {why}"));
                continue;
            }
            let message = message(reporter, &report, address, now);
            if *max > 0 && message.len() > *max {
                plan.skipped.push(format!(
                    "{domain}: mailto:{address} skipped: the report message is {} bytes, above its limit of {max} (RFC 7489 §6.2)",
                    message.len()
                ));
                continue;
            }
            plan.reports.push(Planned {
                domain: domain.clone(),
                report: report.clone(),
                to: address.clone(),
                message,
            });
        }
    }
    plan
}

/// Queues the planned reports with the null reverse-path (RFC 7489 §7.2.1.1 suggests one that
/// cannot loop), marking each day and domain sent first (so a crash never sends twice).
pub fn enqueue(
    conn: &Connection,
    queue: &dyn Queue,
    plan: &Plan,
    now: i64,
) -> Result<Vec<(String, QueueId)>, DmarcError> {
    let mut queued = Vec::new();
    let mut marked: HashSet<(String, i64)> = HashSet::new();
    for p in &plan.reports {
        let key = (p.domain.clone(), p.report.begin);
        if !marked.contains(&key) {
            let destinations: Vec<&str> = plan
                .reports
                .iter()
                .filter(|q| q.domain == p.domain)
                .map(|q| q.to.as_str())
                .collect();
            if !db::mark_sent(
                conn,
                &p.domain,
                p.report.begin,
                p.report.end,
                &p.report.report_id,
                &destinations.join(" "),
                now,
            )? {
                continue;
            }
            marked.insert(key);
        }
        let envelope = Envelope {
            sender: None,
            recipients: vec![Recipient::new(p.to.clone())],
            ret: None,
            envid: None,
            body: BodyType::default(),
            smtputf8: false,
            authenticated: None,
            client_ip: None,
            helo: None,
            requiretls: false,
        };
        match queue.enqueue(&envelope, &p.message) {
            Ok(id) => queued.push((p.to.clone(), id)),
            Err(e) => {
                db::unmark_sent(conn, &p.domain, p.report.begin)?;
                return Err(DmarcError::Queue(format!(
                    "the report for {} to {} could not be queued: {e}",
                    p.domain, p.to
                )));
            }
        }
    }
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_leaves_out_local_domains_and_days_sent() {
        let dir = tempfile::tempdir().unwrap();
        let conn = db::open(dir.path()).unwrap();
        // The MX's table (crates/policy, auth/dmarc_db.rs), as it writes it.
        conn.execute_batch(
            "CREATE TABLE dmarc_records (time INTEGER NOT NULL, header_from TEXT NOT NULL,
             source_ip TEXT NOT NULL, spf TEXT NOT NULL, spf_domain TEXT NOT NULL,
             spf_aligned INTEGER NOT NULL, dkim TEXT NOT NULL, dkim_aligned INTEGER NOT NULL,
             result TEXT NOT NULL, disposition TEXT NOT NULL, policy TEXT NOT NULL,
             override_reason TEXT NOT NULL)",
        )
        .unwrap();
        let begin = 1_699_920_000;
        for (t, from, ip) in [
            (begin + 10, "remote.example", "192.0.2.1"),
            (begin + 20, "remote.example", "192.0.2.1"),
            (begin + 30, "remote.example", "192.0.2.2"),
            (begin + 40, "ours.example", "192.0.2.3"),
            (begin + 50, "sent.example", "192.0.2.4"),
            (begin + 86_400, "remote.example", "192.0.2.9"),
        ] {
            conn.execute(
                "INSERT INTO dmarc_records VALUES (?1, ?2, ?3, 'pass', ?2, 1, '', 0, 'pass', 'none', 'none', '')",
                rusqlite::params![t, from, ip],
            )
            .unwrap();
        }
        db::mark_sent(&conn, "sent.example", begin, begin + 86_399, "x", "", 0).unwrap();
        let local: HashSet<String> = ["ours.example".to_string()].into();
        let mut skipped = Vec::new();
        let p = pending(&conn, &local, begin, &mut skipped).unwrap();
        assert_eq!(p.keys().collect::<Vec<_>>(), ["remote.example"]);
        let rows = &p["remote.example"];
        assert_eq!(
            rows.len(),
            2,
            "grouped by source, the next day left out: {rows:?}"
        );
        assert_eq!(
            (rows[0].source_ip.as_str(), rows[0].count),
            ("192.0.2.1", 2)
        );
        // A table from before spf_scope: every row counts as mfrom.
        assert_eq!(rows[0].spf_scope, "mfrom");
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert!(
            skipped[0].contains("ours.example: a local domain"),
            "{skipped:?}"
        );
        assert!(skipped[1].contains("sent.example: the report of this day was sent already"));
    }

    #[test]
    fn days() {
        assert_eq!(day_start("2023-11-14").unwrap(), 1_699_920_000);
        assert_eq!(previous_day(1_699_920_000 + 3600), 1_699_920_000 - 86_400);
        assert!(day_start("2023-02-30").is_err());
        assert!(day_start("yesterday")
            .unwrap_err()
            .to_string()
            .contains("YYYY-MM-DD"));
    }

    #[test]
    fn the_tree_walk() {
        assert_eq!(
            walk("a.b.example.org"),
            ["a.b.example.org", "b.example.org", "example.org", "org"]
        );
        let long = walk("1.2.3.4.5.6.7.8.9.example");
        assert_eq!(long[0], "1.2.3.4.5.6.7.8.9.example");
        assert_eq!(long[1], "4.5.6.7.8.9.example");
        assert_eq!(long.last().unwrap(), "example");
    }

    #[test]
    fn published_policy_and_rua() {
        let p = published(
            "sender.example",
            "v=DMARC1; p=reject; sp=quarantine; pct=40; adkim=s; rua=mailto:a@x.example!10k,mailto:b@sender.example",
        )
        .unwrap();
        assert_eq!(p.policy.p, "reject");
        assert_eq!(p.policy.sp, "quarantine");
        assert_eq!(p.policy.pct, 40);
        assert_eq!(p.policy.adkim.as_deref(), Some("s"));
        assert_eq!(p.policy.aspf.as_deref(), Some("r"));
        assert_eq!(
            p.rua,
            [
                ("a@x.example".to_string(), 10240),
                ("b@sender.example".to_string(), 0)
            ]
        );
        let p = published("d.example", "v=DMARC1; p=none").unwrap();
        assert_eq!(p.policy.sp, "none");
        assert!(p.rua.is_empty());
    }

    #[test]
    fn within_the_domain() {
        assert!(within("sender.example", "sender.example"));
        assert!(within("reports.sender.example", "sender.example"));
        assert!(!within("evilsender.example", "sender.example"));
        assert!(!within("b.example", "sender.example"));
    }

    #[test]
    fn rows_grouped_with_auth_results() {
        let rows = vec![Evaluated {
            source_ip: "192.0.2.1".into(),
            spf: "softfail".into(),
            spf_domain: "bounce.example".into(),
            spf_scope: "helo".into(),
            spf_aligned: false,
            dkim: "sender.example:pass:s1 other.example:fail".into(),
            dkim_aligned: true,
            disposition: "none".into(),
            override_reason: "forwarded".into(),
            count: 4,
        }];
        let r = &records("sender.example", &rows)[0];
        assert_eq!(r.count, 4);
        assert_eq!((r.dkim.as_str(), r.spf.as_str()), ("pass", "fail"));
        assert_eq!(r.dkim_results.len(), 2);
        assert_eq!(r.dkim_results[0].selector.as_deref(), Some("s1"));
        assert_eq!(r.dkim_results[1].selector, None);
        assert_eq!(r.spf_results[0].domain, "bounce.example");
        assert_eq!(r.spf_results[0].scope, "helo");
        assert_eq!(r.reasons[0].0, "forwarded");
    }

    #[test]
    fn the_message_carries_the_gzipped_report() {
        let reporter = Reporter {
            org_name: "Example Mail".into(),
            from: "postmaster@mx.example.net".into(),
            hostname: "mx.example.net".into(),
        };
        let report = crate::feedback::tests::sample();
        let m = message(&reporter, &report, "reports@sender.example", 1_700_100_000);
        let text = String::from_utf8(m.clone()).unwrap();
        assert!(text.contains(
            "Subject: Report Domain: sender.example Submitter: mx.example.net Report-ID: <r1>\r\n"
        ));
        assert!(text
            .contains("filename=\"mx.example.net!sender.example!1700000000!1700086399.xml.gz\""));
        assert!(text.contains("Content-Type: application/gzip"));
        assert_eq!(crate::extract::from_message(&m).unwrap(), report);
    }
}
