//! What an administrator reads of the reports received for one of our domains: a first line
//! that says how much failed DMARC and what that looks like (forgery, or a legitimate sender
//! missing from SPF and not signing), then one line per reporter and source.

use crate::db::Received;
use std::collections::BTreeMap;

/// One reporter's messages from one source with one outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The reporting organisation.
    pub org_name: String,
    /// The source address.
    pub source_ip: String,
    /// Messages.
    pub count: u64,
    /// Aligned DKIM `pass` / `fail`.
    pub dkim: String,
    /// Aligned SPF `pass` / `fail`.
    pub spf: String,
    /// What the reporter did.
    pub disposition: String,
    /// The raw results: `dkim=d:result spf=d:result`.
    pub detail: String,
}

impl Line {
    /// DMARC passes when DKIM or SPF passed aligned (RFC 7489 §4.2).
    pub fn failed(&self) -> bool {
        self.dkim != "pass" && self.spf != "pass"
    }
}

/// The rows by reporter and source, most messages first.
pub fn lines(rows: &[Received]) -> Vec<Line> {
    let mut merged: BTreeMap<(String, String, String, String, String, String), u64> =
        BTreeMap::new();
    for r in rows {
        let rec = &r.record;
        let mut detail: Vec<String> = rec
            .dkim_results
            .iter()
            .map(|d| format!("dkim={}:{}", d.domain, d.result))
            .collect();
        detail.extend(
            rec.spf_results
                .iter()
                .map(|s| format!("spf={}:{}", s.domain, s.result)),
        );
        if !rec.reasons.is_empty() {
            let reasons: Vec<&str> = rec.reasons.iter().map(|(t, _)| t.as_str()).collect();
            detail.push(format!("override={}", reasons.join(",")));
        }
        *merged
            .entry((
                r.org_name.clone(),
                rec.source_ip.clone(),
                rec.dkim.clone(),
                rec.spf.clone(),
                rec.disposition.clone(),
                detail.join(" "),
            ))
            .or_default() += rec.count;
    }
    let mut out: Vec<Line> = merged
        .into_iter()
        .map(
            |((org_name, source_ip, dkim, spf, disposition, detail), count)| Line {
                org_name,
                source_ip,
                count,
                dkim,
                spf,
                disposition,
                detail,
            },
        )
        .collect();
    out.sort_by(|a, b| {
        a.org_name
            .cmp(&b.org_name)
            .then(b.count.cmp(&a.count))
            .then(a.source_ip.cmp(&b.source_ip))
    });
    out
}

/// Why a failing source failed, in words an admin acts on.
fn diagnosis(domain: &str, rows: &[&Received]) -> String {
    let any_dkim_pass = rows
        .iter()
        .any(|r| r.record.dkim_results.iter().any(|d| d.result == "pass"));
    let any_spf_pass = rows
        .iter()
        .any(|r| r.record.spf_results.iter().any(|s| s.result == "pass"));
    let signed = rows.iter().any(|r| !r.record.dkim_results.is_empty());
    match (any_dkim_pass, any_spf_pass) {
        (false, false) if !signed => format!(
            "not in {domain}'s SPF and not DKIM-signed: forgery, or a sender of yours to add to SPF and sign"
        ),
        (false, false) => format!(
            "not in {domain}'s SPF and its DKIM signatures fail: forgery, or a sender with a wrong key"
        ),
        _ => format!(
            "authenticated, but not as {domain} (SPF or DKIM of another domain: a forwarder, a list, or a service sending for you without alignment)"
        ),
    }
}

/// The first line: totals, and each failing source with its diagnosis.
pub fn headline(domain: &str, rows: &[Received]) -> String {
    let total: u64 = rows.iter().map(|r| r.record.count).sum();
    let mut sources: BTreeMap<&str, Vec<&Received>> = BTreeMap::new();
    for r in rows {
        sources
            .entry(r.record.source_ip.as_str())
            .or_default()
            .push(r);
    }
    let failed_rows: Vec<&Received> = rows
        .iter()
        .filter(|r| r.record.dkim != "pass" && r.record.spf != "pass")
        .collect();
    let failed: u64 = failed_rows.iter().map(|r| r.record.count).sum();
    let mut text = format!(
        "{total} message{} from {} source{}",
        if total == 1 { "" } else { "s" },
        sources.len(),
        if sources.len() == 1 { "" } else { "s" }
    );
    if failed == 0 {
        text.push_str("; all passed DMARC");
        return text;
    }
    let mut by_source: BTreeMap<&str, Vec<&Received>> = BTreeMap::new();
    for r in &failed_rows {
        by_source
            .entry(r.record.source_ip.as_str())
            .or_default()
            .push(r);
    }
    let mut parts: Vec<(u64, String)> = by_source
        .iter()
        .map(|(ip, rs)| {
            let n: u64 = rs.iter().map(|r| r.record.count).sum();
            (n, format!("{ip} ({n}: {})", diagnosis(domain, rs)))
        })
        .collect();
    parts.sort_by_key(|p| std::cmp::Reverse(p.0));
    text.push_str(&format!(
        "; {failed} failed DMARC: {}",
        parts
            .into_iter()
            .map(|(_, p)| p)
            .collect::<Vec<_>>()
            .join("; ")
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feedback::{DkimAuth, Record, SpfAuth};

    fn row(org: &str, ip: &str, n: u64, dkim: &str, spf: &str, signed: Option<&str>) -> Received {
        Received {
            org_name: org.into(),
            record: Record {
                source_ip: ip.into(),
                count: n,
                disposition: "none".into(),
                dkim: dkim.into(),
                spf: spf.into(),
                header_from: "b.example".into(),
                envelope_from: "b.example".into(),
                dkim_results: signed
                    .map(|r| DkimAuth {
                        domain: "b.example".into(),
                        selector: None,
                        result: r.into(),
                    })
                    .into_iter()
                    .collect(),
                spf_results: vec![SpfAuth {
                    domain: "b.example".into(),
                    scope: "mfrom".into(),
                    result: if spf == "pass" { "pass" } else { "fail" }.into(),
                }],
                ..Record::default()
            },
        }
    }

    #[test]
    fn the_headline_names_forgery_and_forgotten_senders() {
        let rows = vec![
            row("google.com", "192.0.2.1", 10, "pass", "pass", Some("pass")),
            row("yahoo.com", "192.0.2.1", 5, "pass", "pass", Some("pass")),
            row("google.com", "198.51.100.7", 3, "fail", "fail", None),
        ];
        let h = headline("b.example", &rows);
        assert!(h.starts_with("18 messages from 2 sources; 3 failed DMARC: 198.51.100.7 (3: not in b.example's SPF and not DKIM-signed"), "{h}");
        let l = lines(&rows);
        assert_eq!(l.len(), 3);
        assert_eq!(l[0].org_name, "google.com");
        assert_eq!(l[0].count, 10);
        assert!(l[1].failed());
        assert_eq!(
            headline("b.example", &rows[..1]),
            "10 messages from 1 source; all passed DMARC"
        );
    }
}
