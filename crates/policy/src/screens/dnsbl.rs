//! DNS block and allow lists (RFC 5782). At connect, every configured list is asked in
//! parallel for the client's address (`2.0.0.127.zen.example` for 127.0.0.2, the 32 reversed
//! nibbles for IPv6); lists that have not answered within `dnsbl_timeout_ms` are ignored for the
//! connection, so a slow list never holds the greeting longer.
//!
//! A listing on a block list without weights refuses the client (`554 5.7.1 Service
//! unavailable; client [IP] blocked using LIST`, at connect or at each RCPT but postmaster's);
//! with weights it adds points. An allow list (DNSWL) takes points off and lets the client skip
//! greylisting and the other screens.

use super::{canonical, passed, screened, NOTE_DNSBL, NOTE_DNSWL};
use async_trait::async_trait;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use postern_config::{DnsList, ListKind, Network, RejectAt, Screens};
use postern_mail::EnhancedCode;
use postern_smtp::{Check, Context, Score, Verdict};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

/// Connection note: the block list whose listing refuses every RCPT but postmaster's.
const NOTE_REJECT: &str = "screens.dnsbl.reject";

/// RFC 5782 §2.1 (IPv4: the four octets reversed) and §2.4 (IPv6: the 32 nibbles reversed):
/// the name to ask `zone` about `ip`, with the root's final dot.
pub fn query_name(ip: IpAddr, zone: &str) -> String {
    let mut name = String::with_capacity(80);
    match canonical(ip) {
        IpAddr::V4(v4) => {
            for o in v4.octets().iter().rev() {
                name.push_str(&format!("{o}."));
            }
        }
        IpAddr::V6(v6) => {
            for byte in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
            }
        }
    }
    name.push_str(zone);
    name.push('.');
    name
}

/// What one list's answers mean: `None` when the client is not listed (no answer counts);
/// else the points of each counted answer (`None`: refuse or, on an allow list, only skip).
pub fn judge(list: &DnsList, answers: &[Ipv4Addr]) -> Option<Vec<(Ipv4Addr, Option<f64>)>> {
    // RFC 5782 §2.1: answers are in 127.0.0.0/8; 127.255.255.0/24 is what some lists answer
    // to refuse a query (an error, not a listing).
    let counted: Vec<(Ipv4Addr, Option<f64>)> = answers
        .iter()
        .filter(|a| a.octets()[0] == 127 && a.octets()[1..3] != [255, 255])
        .filter_map(|a| {
            if list.codes.is_empty() {
                return Some((*a, list.weight));
            }
            list.codes
                .iter()
                .find(|c| c.answer == *a)
                .map(|c| (*a, c.weight.or(list.weight)))
        })
        .collect();
    (!counted.is_empty()).then_some(counted)
}

/// The DNS lists as a check (connect, and RCPT when refusing there).
pub struct DnsblCheck {
    lists: Arc<[DnsList]>,
    resolver: Arc<TokioResolver>,
    timeout: Duration,
    reject_at: RejectAt,
    trusted: Vec<Network>,
}

impl DnsblCheck {
    /// The lists of `screens`, asked through `resolver` (`[dns]`'s).
    pub fn new(screens: &Screens, resolver: Arc<TokioResolver>, trusted: Vec<Network>) -> Self {
        DnsblCheck {
            lists: screens.dns_lists.clone().into(),
            resolver,
            timeout: Duration::from_millis(screens.dnsbl_timeout_ms),
            reject_at: screens.dnsbl_reject_at,
            trusted,
        }
    }

    /// Asks every list about `ip` in parallel; returns (list index, answers) of the lists
    /// that answered in time (NXDOMAIN and no records: no answers).
    async fn ask(&self, ip: IpAddr) -> Vec<(usize, Vec<Ipv4Addr>)> {
        let mut set = tokio::task::JoinSet::new();
        for (i, list) in self.lists.iter().enumerate() {
            let name = query_name(ip, &list.zone);
            let resolver = self.resolver.clone();
            set.spawn(async move {
                let answers = match resolver.ipv4_lookup(name.as_str()).await {
                    Ok(lookup) => lookup
                        .answers()
                        .iter()
                        .filter_map(|r| match &r.data {
                            RData::A(a) => Some(a.0),
                            _ => None,
                        })
                        .collect(),
                    Err(e) if e.is_nx_domain() || e.is_no_records_found() => Vec::new(),
                    Err(e) => {
                        tracing::info!(query = %name, "DNS list lookup failed: {e}");
                        Vec::new()
                    }
                };
                (i, answers)
            });
        }
        let mut out = Vec::with_capacity(self.lists.len());
        let all = async {
            while let Some(r) = set.join_next().await {
                if let Ok(r) = r {
                    out.push(r);
                }
            }
        };
        if tokio::time::timeout(self.timeout, all).await.is_err() {
            tracing::info!(
                client = %ip,
                answered = out.len(),
                lists = self.lists.len(),
                "DNS lists: some did not answer in time; ignored for this connection"
            );
        }
        out.sort_by_key(|(i, _)| *i);
        out
    }
}

fn blocked(ip: IpAddr, zone: &str) -> Verdict {
    Verdict::reject(
        554,
        EnhancedCode::new(5, 7, 1),
        &format!("Service unavailable; client [{ip}] blocked using {zone}"),
    )
}

/// Whether `recipient` is a postmaster address, which RFC 5321 §4.5.1 wants reachable.
fn is_postmaster(recipient: &str) -> bool {
    recipient
        .rsplit_once('@')
        .map_or(recipient, |(local, _)| local)
        .eq_ignore_ascii_case("postmaster")
}

#[async_trait]
impl Check for DnsblCheck {
    fn name(&self) -> &str {
        "dnsbl"
    }

    /// RFC 5782 §2.1: asks the lists before the greeting.
    async fn connect(&self, ctx: &Context) -> Verdict {
        if !screened(ctx, &self.trusted) || passed(ctx, None) {
            return Verdict::Accept;
        }
        let answered = self.ask(ctx.peer).await;
        crate::auth::budget::charge_connection(ctx, self.lists.len() as u32);
        let mut refuse: Option<&str> = None;
        let (mut blocks, mut allows) = (Vec::new(), Vec::new());
        let mut scores = Vec::new();
        for (i, answers) in answered {
            let list = &self.lists[i];
            let Some(counted) = judge(list, &answers) else {
                continue;
            };
            let codes: Vec<String> = counted.iter().map(|(a, _)| a.to_string()).collect();
            let (name, reasons) = match list.kind {
                ListKind::Block => (&mut blocks, "policy.dnsbl"),
                ListKind::Allow => (&mut allows, "policy.dnswl"),
            };
            name.push(list.zone.clone());
            for (answer, points) in &counted {
                match points {
                    Some(points) => scores.push(Score {
                        check: self.name().into(),
                        points: *points,
                        reason: format!("{reasons}={} ({answer})", list.zone),
                    }),
                    None if list.kind == ListKind::Block => {
                        refuse.get_or_insert(&list.zone);
                    }
                    None => {}
                }
            }
            tracing::info!(client = %ctx.peer, list = %list.zone, answers = %codes.join(","), kind = ?list.kind, "client listed");
        }
        ctx.with_findings(|f| {
            if !blocks.is_empty() {
                f.connection
                    .notes
                    .insert(NOTE_DNSBL.into(), blocks.join(","));
            }
            if !allows.is_empty() {
                f.connection
                    .notes
                    .insert(NOTE_DNSWL.into(), allows.join(","));
            }
            f.connection.scores.extend(scores);
        });
        let Some(zone) = refuse else {
            return Verdict::Accept;
        };
        if !allows.is_empty() {
            tracing::info!(client = %ctx.peer, blocked = zone, allowed = %allows.join(","), "an allow list outweighs the block list");
            return Verdict::Accept;
        }
        match self.reject_at {
            RejectAt::Connect => blocked(ctx.peer, zone),
            RejectAt::Rcpt => {
                ctx.with_findings(|f| f.connection.notes.insert(NOTE_REJECT.into(), zone.into()));
                Verdict::Accept
            }
        }
    }

    /// With `dnsbl_reject_at = "rcpt"`: every recipient but postmaster is refused
    /// (RFC 5321 §4.5.1: postmaster must stay reachable).
    async fn rcpt(&self, ctx: &Context, recipient: &str) -> Verdict {
        let zone = ctx.with_findings(|f| f.connection.notes.get(NOTE_REJECT).cloned());
        match zone {
            Some(zone) if !is_postmaster(recipient) => blocked(ctx.peer, &zone),
            _ => Verdict::Accept,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_config::ListCode;

    #[test]
    fn query_names_of_rfc_5782() {
        // RFC 5782 §2.1 and §2.4's examples.
        assert_eq!(
            query_name("192.168.42.23".parse().unwrap(), "dnsbl.example.net"),
            "23.42.168.192.dnsbl.example.net."
        );
        assert_eq!(
            query_name(
                "2001:db8:1:2:3:4:567:89ab".parse().unwrap(),
                "ugly.example.com"
            ),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com."
        );
        assert_eq!(
            query_name("::ffff:127.0.0.2".parse().unwrap(), "bl.test"),
            "2.0.0.127.bl.test."
        );
    }

    #[test]
    fn answers_count_by_code() {
        let a = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let simple = DnsList {
            zone: "bl.test".into(),
            kind: ListKind::Block,
            weight: None,
            codes: Vec::new(),
        };
        assert_eq!(judge(&simple, &[]), None);
        assert_eq!(
            judge(&simple, &[a("127.0.0.2")]),
            Some(vec![(a("127.0.0.2"), None)])
        );
        // Not list answers: outside 127/8, and the refusal codes.
        assert_eq!(
            judge(&simple, &[a("192.0.2.1"), a("127.255.255.254")]),
            None
        );
        let weighted = DnsList {
            weight: Some(1.5),
            codes: vec![
                ListCode {
                    answer: a("127.0.0.2"),
                    weight: Some(4.0),
                },
                ListCode {
                    answer: a("127.0.0.4"),
                    weight: None,
                },
            ],
            ..simple.clone()
        };
        assert_eq!(judge(&weighted, &[a("127.0.0.3")]), None);
        assert_eq!(
            judge(
                &weighted,
                &[a("127.0.0.2"), a("127.0.0.4"), a("127.0.0.10")]
            ),
            Some(vec![
                (a("127.0.0.2"), Some(4.0)),
                (a("127.0.0.4"), Some(1.5))
            ])
        );
        assert!(is_postmaster("PostMaster@example.org"));
        assert!(is_postmaster("postmaster"));
        assert!(!is_postmaster("bob@example.org"));
    }

    #[tokio::test]
    async fn a_silent_list_does_not_hold_the_greeting() {
        // A name server that never answers; the resolver itself would wait 30 s.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let dns = postern_config::Dns {
            nameservers: vec![silent.local_addr().unwrap()],
            timeout_secs: 30,
            attempts: 1,
            cache_size: 0,
            dnssec: postern_config::Dnssec::Off,
            max_lookups_per_message: 50,
        };
        let screens = Screens {
            dns_lists: vec![DnsList {
                zone: "slow.test".into(),
                kind: ListKind::Block,
                weight: None,
                codes: Vec::new(),
            }],
            dnsbl_timeout_ms: 200,
            ..Screens::default()
        };
        let check = DnsblCheck::new(
            &screens,
            Arc::new(postern_dns::resolver(&dns).unwrap()),
            Vec::new(),
        );
        let ctx = Context {
            peer: "192.0.2.1".parse().unwrap(),
            service: postern_config::Service::Smtp,
            helo: None,
            account: None,
            tls: false,
            sender: None,
            findings: Default::default(),
        };
        let started = std::time::Instant::now();
        assert_eq!(check.connect(&ctx).await, Verdict::Accept);
        // Bounded by dnsbl_timeout_ms, not by the resolver's 30 s (a wide margin for a busy
        // machine: this checks which time-out applies, not speed).
        assert!(started.elapsed() < Duration::from_secs(20));
        // Nothing found; the one query counts against the message's DNS budget.
        assert!(ctx.with_findings(|f| f
            .connection
            .notes
            .keys()
            .all(|k| k == crate::auth::budget::CONNECTION_NOTE)));
        assert_eq!(
            ctx.with_findings(|f| f
                .note(crate::auth::budget::CONNECTION_NOTE)
                .map(str::to_string)),
            Some("1".to_string())
        );
    }
}
