//! The aggregate report document (RFC 7489 §7.2.1.1, Appendix C): the model, its XML writer
//! (quick-xml, which escapes every text) and a tolerant reader for the reports others send
//! (namespaces ignored, unknown elements skipped, the DMARCbis additions accepted).

use crate::DmarcError;
use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::{Reader, Writer};
use std::io;

/// One aggregate report: who reports, for which period and policy, and its rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Feedback {
    /// `report_metadata/org_name`: the reporting organisation.
    pub org_name: String,
    /// `report_metadata/email`: its contact address.
    pub email: String,
    /// `report_metadata/extra_contact_info`.
    pub extra_contact_info: Option<String>,
    /// `report_metadata/report_id`: unique per reporter.
    pub report_id: String,
    /// `date_range/begin`, seconds since the epoch (UTC).
    pub begin: i64,
    /// `date_range/end`, seconds since the epoch (UTC).
    pub end: i64,
    /// `report_metadata/error`: problems the reporter met.
    pub errors: Vec<String>,
    /// `policy_published`.
    pub policy: PolicyPublished,
    /// `record`: one per source and outcome.
    pub records: Vec<Record>,
}

/// `policy_published`: the DMARC record as the reporter found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyPublished {
    /// The domain the record was found at.
    pub domain: String,
    /// `adkim`: `r` or `s`.
    pub adkim: Option<String>,
    /// `aspf`: `r` or `s`.
    pub aspf: Option<String>,
    /// `p`: `none`, `quarantine`, `reject`.
    pub p: String,
    /// `sp`: the subdomain policy.
    pub sp: String,
    /// `pct`.
    pub pct: u8,
    /// `fo`: failure reporting options.
    pub fo: String,
}

impl Default for PolicyPublished {
    fn default() -> PolicyPublished {
        PolicyPublished {
            domain: String::new(),
            adkim: None,
            aspf: None,
            p: "none".into(),
            sp: "none".into(),
            pct: 100,
            fo: "0".into(),
        }
    }
}

/// One `record`: messages from one source with one outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// `row/source_ip`.
    pub source_ip: String,
    /// `row/count`.
    pub count: u64,
    /// `policy_evaluated/disposition`: `none`, `quarantine`, `reject`.
    pub disposition: String,
    /// `policy_evaluated/dkim`: aligned DKIM `pass` or `fail`.
    pub dkim: String,
    /// `policy_evaluated/spf`: aligned SPF `pass` or `fail`.
    pub spf: String,
    /// `policy_evaluated/reason`: (type, comment).
    pub reasons: Vec<(String, Option<String>)>,
    /// `identifiers/envelope_to`.
    pub envelope_to: Option<String>,
    /// `identifiers/envelope_from`.
    pub envelope_from: String,
    /// `identifiers/header_from`.
    pub header_from: String,
    /// `auth_results/dkim`.
    pub dkim_results: Vec<DkimAuth>,
    /// `auth_results/spf`.
    pub spf_results: Vec<SpfAuth>,
}

/// One `auth_results/dkim`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DkimAuth {
    /// `d=`.
    pub domain: String,
    /// `s=`.
    pub selector: Option<String>,
    /// `none`, `pass`, `fail`, `policy`, `neutral`, `temperror`, `permerror`.
    pub result: String,
}

/// One `auth_results/spf`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpfAuth {
    /// The domain checked.
    pub domain: String,
    /// `mfrom` or `helo`.
    pub scope: String,
    /// `none`, `neutral`, `pass`, `fail`, `softfail`, `temperror`, `permerror`.
    pub result: String,
}

fn text<W: io::Write>(w: &mut Writer<W>, name: &str, value: &str) -> io::Result<()> {
    w.create_element(name)
        .write_text_content(BytesText::new(value))?;
    Ok(())
}

/// The RFC 7489 Appendix C words, anything else mapped to the closest one the schema allows.
fn one_of<'a>(value: &'a str, allowed: &[&'a str], fallback: &'a str) -> &'a str {
    allowed
        .iter()
        .find(|a| a.eq_ignore_ascii_case(value))
        .copied()
        .unwrap_or(fallback)
}

const DISPOSITIONS: &[&str] = &["none", "quarantine", "reject"];
const DKIM_RESULTS: &[&str] = &[
    "none",
    "pass",
    "fail",
    "policy",
    "neutral",
    "temperror",
    "permerror",
];
const SPF_RESULTS: &[&str] = &[
    "none",
    "neutral",
    "pass",
    "fail",
    "softfail",
    "temperror",
    "permerror",
];
const OVERRIDES: &[&str] = &[
    "forwarded",
    "sampled_out",
    "trusted_forwarder",
    "mailing_list",
    "local_policy",
    "other",
];

impl Feedback {
    /// RFC 7489 §7.2.1.1, Appendix C: the report as XML, in the schema's element order.
    pub fn to_xml(&self) -> String {
        let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
        // Writing to a Vec cannot fail.
        let _ = self.write(&mut w);
        let mut out = String::from_utf8(w.into_inner()).unwrap_or_default();
        out.push('\n');
        out
    }

    fn write(&self, w: &mut Writer<Vec<u8>>) -> io::Result<()> {
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        w.create_element("feedback").write_inner_content(|w| {
            text(w, "version", "1.0")?;
            w.create_element("report_metadata")
                .write_inner_content(|w| {
                    text(w, "org_name", &self.org_name)?;
                    text(w, "email", &self.email)?;
                    if let Some(x) = &self.extra_contact_info {
                        text(w, "extra_contact_info", x)?;
                    }
                    text(w, "report_id", &self.report_id)?;
                    w.create_element("date_range").write_inner_content(|w| {
                        text(w, "begin", &self.begin.to_string())?;
                        text(w, "end", &self.end.to_string())
                    })?;
                    for e in &self.errors {
                        text(w, "error", e)?;
                    }
                    Ok(())
                })?;
            let p = &self.policy;
            w.create_element("policy_published")
                .write_inner_content(|w| {
                    text(w, "domain", &p.domain)?;
                    if let Some(a) = &p.adkim {
                        text(w, "adkim", one_of(a, &["r", "s"], "r"))?;
                    }
                    if let Some(a) = &p.aspf {
                        text(w, "aspf", one_of(a, &["r", "s"], "r"))?;
                    }
                    text(w, "p", one_of(&p.p, DISPOSITIONS, "none"))?;
                    text(w, "sp", one_of(&p.sp, DISPOSITIONS, "none"))?;
                    text(w, "pct", &p.pct.min(100).to_string())?;
                    text(w, "fo", &p.fo)
                })?;
            for r in &self.records {
                r.write(w)?;
            }
            Ok(())
        })?;
        Ok(())
    }
}

impl Record {
    fn write(&self, w: &mut Writer<Vec<u8>>) -> io::Result<()> {
        w.create_element("record").write_inner_content(|w| {
            w.create_element("row").write_inner_content(|w| {
                text(w, "source_ip", &self.source_ip)?;
                text(w, "count", &self.count.to_string())?;
                w.create_element("policy_evaluated")
                    .write_inner_content(|w| {
                        text(
                            w,
                            "disposition",
                            one_of(&self.disposition, DISPOSITIONS, "none"),
                        )?;
                        text(w, "dkim", one_of(&self.dkim, &["pass", "fail"], "fail"))?;
                        text(w, "spf", one_of(&self.spf, &["pass", "fail"], "fail"))?;
                        for (kind, comment) in &self.reasons {
                            w.create_element("reason").write_inner_content(|w| {
                                text(w, "type", one_of(kind, OVERRIDES, "other"))?;
                                if let Some(c) = comment {
                                    text(w, "comment", c)?;
                                }
                                Ok(())
                            })?;
                        }
                        Ok(())
                    })?;
                Ok(())
            })?;
            w.create_element("identifiers").write_inner_content(|w| {
                if let Some(t) = &self.envelope_to {
                    text(w, "envelope_to", t)?;
                }
                text(w, "envelope_from", &self.envelope_from)?;
                text(w, "header_from", &self.header_from)
            })?;
            w.create_element("auth_results").write_inner_content(|w| {
                for d in &self.dkim_results {
                    w.create_element("dkim").write_inner_content(|w| {
                        text(w, "domain", &d.domain)?;
                        if let Some(s) = &d.selector {
                            text(w, "selector", s)?;
                        }
                        text(w, "result", one_of(&d.result, DKIM_RESULTS, "neutral"))
                    })?;
                }
                // The schema wants at least one SPF result: `none` for the envelope domain.
                let none = [SpfAuth {
                    domain: self.envelope_from.clone(),
                    scope: "mfrom".into(),
                    result: "none".into(),
                }];
                let spf = if self.spf_results.is_empty() {
                    &none[..]
                } else {
                    &self.spf_results[..]
                };
                for s in spf {
                    w.create_element("spf").write_inner_content(|w| {
                        text(w, "domain", &s.domain)?;
                        text(w, "scope", one_of(&s.scope, &["helo", "mfrom"], "mfrom"))?;
                        text(w, "result", one_of(&s.result, SPF_RESULTS, "none"))
                    })?;
                }
                Ok(())
            })?;
            Ok(())
        })?;
        Ok(())
    }
}

/// At most this many records are read from one report.
const MAX_RECORDS: usize = 100_000;

/// Reads a report (RFC 7489 Appendix C, and what reporters actually send): the root element
/// must be `feedback`; namespaces are ignored, unknown elements skipped.
pub fn parse(xml: &[u8]) -> Result<Feedback, DmarcError> {
    let bad = |m: String| DmarcError::Report(m);
    let mut reader = Reader::from_reader(xml);
    reader.config_mut().trim_text(false);
    let mut buf = Vec::new();
    let mut path: Vec<String> = Vec::new();
    let mut fb = Feedback::default();
    let mut seen_root = false;
    let mut pct_seen = false;
    let mut current = String::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| bad(format!("not well-formed XML: {e}")))?;
        match event {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).to_ascii_lowercase();
                if path.is_empty() {
                    if name != "feedback" {
                        return Err(bad(format!(
                            "the root element is <{name}>, not <feedback>: not a DMARC aggregate report"
                        )));
                    }
                    seen_root = true;
                }
                if path.len() > 32 {
                    return Err(bad("elements nested too deep".into()));
                }
                path.push(name);
                open(&mut fb, &path)?;
                current.clear();
            }
            Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).to_ascii_lowercase();
                if path.is_empty() {
                    return Err(bad(format!(
                        "the root element is <{name}/>, not a DMARC aggregate report"
                    )));
                }
                path.push(name);
                open(&mut fb, &path)?;
                path.pop();
            }
            Event::Text(t) => {
                let raw = t
                    .decode()
                    .map_err(|e| bad(format!("text is not UTF-8: {e}")))?;
                current.push_str(&raw);
            }
            Event::CData(t) => {
                current.push_str(&String::from_utf8_lossy(&t.into_inner()));
            }
            Event::GeneralRef(r) => {
                let name = r
                    .decode()
                    .map_err(|e| bad(format!("reference is not UTF-8: {e}")))?;
                let entity = format!("&{name};");
                let value = quick_xml::escape::unescape(&entity)
                    .map_err(|e| bad(format!("unknown entity {entity}: {e}")))?;
                current.push_str(&value);
            }
            Event::End(_) => {
                let value = current.trim().to_string();
                current.clear();
                if !value.is_empty() {
                    set(&mut fb, &path, &value, &mut pct_seen)?;
                }
                path.pop();
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !seen_root {
        return Err(bad(
            "no <feedback> element: not a DMARC aggregate report".into()
        ));
    }
    if !path.is_empty() {
        return Err(bad("the document ends inside an element".into()));
    }
    if fb.policy.domain.is_empty() {
        return Err(bad("the report has no policy_published/domain".into()));
    }
    if fb.report_id.is_empty() || fb.org_name.is_empty() {
        return Err(bad(
            "the report has no report_metadata/org_name or report_id".into(),
        ));
    }
    Ok(fb)
}

fn ends(path: &[String], tail: &[&str]) -> bool {
    path.len() >= tail.len()
        && path[path.len() - tail.len()..]
            .iter()
            .zip(tail)
            .all(|(a, b)| a == b)
}

/// An element opens: a new record, DKIM or SPF result, or override reason.
fn open(fb: &mut Feedback, path: &[String]) -> Result<(), DmarcError> {
    if path.len() == 2 && path[1] == "record" {
        if fb.records.len() >= MAX_RECORDS {
            return Err(DmarcError::Report(format!(
                "more than {MAX_RECORDS} records in one report"
            )));
        }
        fb.records.push(Record::default());
    } else if let Some(r) = fb.records.last_mut() {
        if ends(path, &["record", "auth_results", "dkim"]) {
            r.dkim_results.push(DkimAuth::default());
        } else if ends(path, &["record", "auth_results", "spf"]) {
            r.spf_results.push(SpfAuth::default());
        } else if ends(path, &["record", "row", "policy_evaluated", "reason"]) {
            r.reasons.push((String::new(), None));
        }
    }
    Ok(())
}

/// An element closes with text: store it where the path says.
fn set(
    fb: &mut Feedback,
    path: &[String],
    value: &str,
    pct_seen: &mut bool,
) -> Result<(), DmarcError> {
    let number = |what: &str| -> Result<i64, DmarcError> {
        value
            .parse::<i64>()
            .map_err(|_| DmarcError::Report(format!("{what} {value:?} is not a number")))
    };
    let v = value.to_string();
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    match p.as_slice() {
        ["feedback", "report_metadata", "org_name"] => fb.org_name = v,
        ["feedback", "report_metadata", "email"] => fb.email = v,
        ["feedback", "report_metadata", "extra_contact_info"] => fb.extra_contact_info = Some(v),
        ["feedback", "report_metadata", "report_id"] => fb.report_id = v,
        ["feedback", "report_metadata", "error"] => fb.errors.push(v),
        ["feedback", "report_metadata", "date_range", "begin"] => fb.begin = number("begin")?,
        ["feedback", "report_metadata", "date_range", "end"] => fb.end = number("end")?,
        ["feedback", "policy_published", field] => {
            let pp = &mut fb.policy;
            match *field {
                "domain" => pp.domain = v.trim_end_matches('.').to_ascii_lowercase(),
                "adkim" => pp.adkim = Some(v),
                "aspf" => pp.aspf = Some(v),
                "p" => pp.p = v.to_ascii_lowercase(),
                "sp" => pp.sp = v.to_ascii_lowercase(),
                "pct" if !*pct_seen => {
                    *pct_seen = true;
                    pp.pct = number("pct")?.clamp(0, 100) as u8;
                }
                "fo" => pp.fo = v,
                _ => {}
            }
        }
        ["feedback", "record", rest @ ..] => {
            let Some(r) = fb.records.last_mut() else {
                return Ok(());
            };
            match rest {
                ["row", "source_ip"] => r.source_ip = v,
                ["row", "count"] => r.count = number("count")?.max(0) as u64,
                ["row", "policy_evaluated", "disposition"] => {
                    r.disposition = v.to_ascii_lowercase()
                }
                ["row", "policy_evaluated", "dkim"] => r.dkim = v.to_ascii_lowercase(),
                ["row", "policy_evaluated", "spf"] => r.spf = v.to_ascii_lowercase(),
                ["row", "policy_evaluated", "reason", "type"] => {
                    if let Some(reason) = r.reasons.last_mut() {
                        reason.0 = v;
                    }
                }
                ["row", "policy_evaluated", "reason", "comment"] => {
                    if let Some(reason) = r.reasons.last_mut() {
                        reason.1 = Some(v);
                    }
                }
                ["identifiers", "envelope_to"] => r.envelope_to = Some(v),
                ["identifiers", "envelope_from"] => r.envelope_from = v,
                ["identifiers", "header_from"] => r.header_from = v.to_ascii_lowercase(),
                ["auth_results", "dkim", field] => {
                    if let Some(d) = r.dkim_results.last_mut() {
                        match *field {
                            "domain" => d.domain = v.to_ascii_lowercase(),
                            "selector" => d.selector = Some(v),
                            "result" => d.result = v.to_ascii_lowercase(),
                            _ => {}
                        }
                    }
                }
                ["auth_results", "spf", field] => {
                    if let Some(s) = r.spf_results.last_mut() {
                        match *field {
                            "domain" => s.domain = v.to_ascii_lowercase(),
                            "scope" => s.scope = v.to_ascii_lowercase(),
                            "result" => s.result = v.to_ascii_lowercase(),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Feedback {
        Feedback {
            org_name: "mx.example.net".into(),
            email: "postmaster@example.net".into(),
            extra_contact_info: None,
            report_id: "r1".into(),
            begin: 1_700_000_000,
            end: 1_700_086_399,
            errors: vec![],
            policy: PolicyPublished {
                domain: "sender.example".into(),
                adkim: Some("r".into()),
                aspf: Some("s".into()),
                p: "reject".into(),
                sp: "quarantine".into(),
                pct: 100,
                fo: "0".into(),
            },
            records: vec![Record {
                source_ip: "192.0.2.1".into(),
                count: 3,
                disposition: "none".into(),
                dkim: "pass".into(),
                spf: "fail".into(),
                reasons: vec![("forwarded".into(), Some("list <a&b>".into()))],
                envelope_to: None,
                envelope_from: "bounce.example".into(),
                header_from: "sender.example".into(),
                dkim_results: vec![DkimAuth {
                    domain: "sender.example".into(),
                    selector: Some("s1".into()),
                    result: "pass".into(),
                }],
                spf_results: vec![SpfAuth {
                    domain: "bounce.example".into(),
                    scope: "mfrom".into(),
                    result: "softfail".into(),
                }],
            }],
        }
    }

    #[test]
    fn writes_and_reads_back_every_field() {
        let fb = sample();
        let xml = fb.to_xml();
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
        assert!(xml.contains("<domain>sender.example</domain>"), "{xml}");
        assert!(
            xml.contains("<comment>list &lt;a&amp;b&gt;</comment>"),
            "{xml}"
        );
        assert_eq!(parse(xml.as_bytes()).unwrap(), fb);
    }

    #[test]
    fn odd_names_are_escaped() {
        let mut fb = sample();
        fb.org_name = "A&B <\"Mail\"> Ltd".into();
        fb.records[0].dkim_results[0].domain = "x&y.example".into();
        let xml = fb.to_xml();
        assert!(
            xml.contains("<org_name>A&amp;B &lt;&quot;Mail&quot;&gt; Ltd</org_name>"),
            "{xml}"
        );
        let back = parse(xml.as_bytes()).unwrap();
        assert_eq!(back.org_name, fb.org_name);
        assert_eq!(back.records[0].dkim_results[0].domain, "x&y.example");
    }

    #[test]
    fn schema_words_only() {
        let mut fb = sample();
        fb.records[0].dkim_results[0].result = "weird".into();
        fb.records[0].spf_results.clear();
        fb.policy.pct = 250;
        let xml = fb.to_xml();
        assert!(xml.contains("<result>neutral</result>"), "{xml}");
        // At least one SPF result, as the schema requires.
        let spf = &xml[xml.find("<spf>\n").unwrap()..];
        assert!(spf.contains("<domain>bounce.example</domain>"), "{xml}");
        assert!(spf.contains("<result>none</result>"), "{xml}");
        assert!(xml.contains("<pct>100</pct>"));
    }

    #[test]
    fn reads_a_namespaced_report_of_another_reporter() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8" ?>
<dmarc:feedback xmlns:dmarc="http://dmarc.org/dmarc-xml/0.1">
  <report_metadata><org_name>google.com</org_name><email>noreply@google.com</email>
    <report_id>123&#52;5</report_id><date_range><begin>10</begin><end>20</end></date_range>
  </report_metadata>
  <policy_published><domain>Example.ORG</domain><p>none</p><np>reject</np><pct>50</pct></policy_published>
  <record><row><source_ip>2001:db8::1</source_ip><count>7</count>
    <policy_evaluated><disposition>none</disposition><dkim>fail</dkim><spf>pass</spf></policy_evaluated></row>
    <identifiers><header_from>example.org</header_from></identifiers>
    <auth_results><spf><domain>example.org</domain><result>pass</result></spf></auth_results>
  </record>
</dmarc:feedback>"#;
        let fb = parse(xml).unwrap();
        assert_eq!(fb.report_id, "12345");
        assert_eq!(fb.policy.domain, "example.org");
        assert_eq!(fb.policy.pct, 50);
        assert_eq!(fb.records.len(), 1);
        assert_eq!(fb.records[0].count, 7);
        assert_eq!(fb.records[0].spf_results[0].result, "pass");
    }

    #[test]
    fn refuses_what_is_not_a_report() {
        let e = parse(b"<html><body/></html>").unwrap_err().to_string();
        assert!(e.contains("not <feedback>"), "{e}");
        let e = parse(b"<feedback><report_metadata>")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ends inside") || e.contains("XML"), "{e}");
        let e = parse(b"plain words").unwrap_err().to_string();
        assert!(e.contains("feedback"), "{e}");
        let e = parse(b"<feedback><policy_published><domain>a.example</domain></policy_published><record><row><count>x</count></row></record></feedback>")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a number"), "{e}");
    }
}
