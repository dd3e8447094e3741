//! Targets of the DMARC aggregate report reader (reports arrive by mail from anyone).

/// A report as a file or a message (XML, gzip, zip, or a message carrying one): never panics;
/// a report that reads is written out again and reads back with the same domain, reporter, id
/// and rows.
pub fn dmarc_report(data: &[u8]) {
    use postern_dmarc::{extract, feedback};
    for name in ["report.xml", "report.eml"] {
        if let Ok(fb) = extract::from_file(data, name) {
            let again = feedback::parse(fb.to_xml().as_bytes())
                .unwrap_or_else(|e| panic!("our own XML does not read back: {e}"));
            assert_eq!(again.policy.domain, fb.policy.domain);
            assert_eq!(again.org_name, fb.org_name);
            assert_eq!(again.report_id, fb.report_id);
            assert_eq!(again.records.len(), fb.records.len());
            for (a, b) in again.records.iter().zip(&fb.records) {
                assert_eq!(a.count, b.count);
                assert_eq!(a.source_ip, b.source_ip);
            }
        }
    }
    let _ = extract::may_be_report(data);
}
