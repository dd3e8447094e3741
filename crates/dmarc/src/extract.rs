//! Finding the report in what arrives (RFC 7489 §7.2.1.1): a gzip, zip or plain XML
//! attachment of a message, the whole body, or a file as fetched (`.xml`, `.xml.gz`, `.zip`,
//! `.eml`). Decompression is bounded, so a small bomb cannot fill memory.

use crate::feedback::{parse, Feedback};
use crate::DmarcError;
use mail_parser::{MessageParser, MimeHeaders, PartType};
use std::io::Read;

/// The largest uncompressed report read.
pub const MAX_XML: u64 = 64 << 20;

fn too_big(max: u64) -> DmarcError {
    DmarcError::Report(format!(
        "the report is larger than {} KiB uncompressed",
        max >> 10
    ))
}

/// gunzip, at most [`MAX_XML`] bytes.
pub fn gunzip(data: &[u8]) -> Result<Vec<u8>, DmarcError> {
    gunzip_max(data, MAX_XML)
}

fn gunzip_max(data: &[u8], max: u64) -> Result<Vec<u8>, DmarcError> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data)
        .take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| DmarcError::Report(format!("the gzip data cannot be read: {e}")))?;
    if out.len() as u64 > max {
        return Err(too_big(max));
    }
    Ok(out)
}

/// The first `.xml` member of a zip archive (or its only member), at most [`MAX_XML`] bytes.
pub fn unzip(data: &[u8]) -> Result<Vec<u8>, DmarcError> {
    let bad = |e: zip::result::ZipError| DmarcError::Report(format!("the zip archive: {e}"));
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(data)).map_err(bad)?;
    let mut index = None;
    for i in 0..archive.len() {
        let file = archive.by_index(i).map_err(bad)?;
        if file.is_file() && (file.name().to_ascii_lowercase().ends_with(".xml") || index.is_none())
        {
            let xml = file.name().to_ascii_lowercase().ends_with(".xml");
            index = Some(i);
            if xml {
                break;
            }
        }
    }
    let i = index.ok_or_else(|| DmarcError::Report("the zip archive holds no file".into()))?;
    let file = archive.by_index(i).map_err(bad)?;
    let mut out = Vec::new();
    file.take(MAX_XML + 1)
        .read_to_end(&mut out)
        .map_err(|e| DmarcError::Report(format!("the zip archive: {e}")))?;
    if out.len() as u64 > MAX_XML {
        return Err(too_big(MAX_XML));
    }
    Ok(out)
}

/// What the bytes are, judging by their first bytes (and a file name, if any).
fn decode_payload(data: &[u8], name: &str) -> Option<Result<Vec<u8>, DmarcError>> {
    let name = name.to_ascii_lowercase();
    if data.starts_with(&[0x1f, 0x8b]) {
        return Some(gunzip(data));
    }
    if data.starts_with(b"PK\x03\x04") {
        return Some(unzip(data));
    }
    let head = String::from_utf8_lossy(&data[..data.len().min(512)]);
    let head = head.trim_start_matches('\u{feff}').trim_start();
    if head.starts_with('<') || name.ends_with(".xml") {
        return Some(Ok(data.to_vec()));
    }
    None
}

/// The report in a file as fetched: XML, gzip, zip, or a whole message (`.eml`).
pub fn from_file(data: &[u8], name: &str) -> Result<Feedback, DmarcError> {
    match decode_payload(data, name) {
        Some(xml) => parse(&xml?),
        None => from_message(data),
    }
}

/// RFC 7489 §7.2.1.1: the report in a message: the first attachment (gzip, zip or XML) that is
/// one, else the body itself.
pub fn from_message(message: &[u8]) -> Result<Feedback, DmarcError> {
    let msg = MessageParser::default()
        .parse(message)
        .ok_or_else(|| DmarcError::Report("the message cannot be parsed".into()))?;
    let mut last_error = None;
    for part in &msg.parts {
        let data: &[u8] = match &part.body {
            PartType::Binary(b) | PartType::InlineBinary(b) => b.as_ref(),
            PartType::Text(t) => t.as_bytes(),
            _ => continue,
        };
        let ct = part
            .content_type()
            .map(|c| {
                format!(
                    "{}/{}",
                    c.ctype().to_ascii_lowercase(),
                    c.subtype().unwrap_or("").to_ascii_lowercase()
                )
            })
            .unwrap_or_default();
        let name = part.attachment_name().unwrap_or("");
        let candidate = matches!(
            ct.as_str(),
            "application/gzip"
                | "application/x-gzip"
                | "application/zip"
                | "application/x-zip-compressed"
                | "application/xml"
                | "text/xml"
                | "application/octet-stream"
        ) || !name.is_empty()
            || ct.is_empty()
            || ct == "text/plain";
        if !candidate {
            continue;
        }
        if let Some(xml) = decode_payload(data, name) {
            match xml.and_then(|x| parse(&x)) {
                Ok(fb) => return Ok(fb),
                Err(e) => last_error = Some(e),
            }
        }
    }
    Err(last_error.unwrap_or_else(|| {
        DmarcError::Report(
            "no DMARC aggregate report in the message (no XML, gzip or zip part)".into(),
        )
    }))
}

/// Whether `needle` (lower-case ASCII) occurs in `hay`, ignoring ASCII case; no allocation.
fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// A quick look before the full parse, cheap enough for every delivered message: whether it
/// may carry a report. RFC 7489 §7.2.1.1 asks for `Report Domain:` in the subject; some
/// reporters omit it, so a gzip, zip or XML part named in the first 64 KiB, with `dmarc`
/// there too, also counts.
pub fn may_be_report(message: &[u8]) -> bool {
    let head_end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| message.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(message.len());
    if contains_ci(&message[..head_end], b"report domain:") {
        return true;
    }
    let start = &message[..message.len().min(64 << 10)];
    [
        &b"application/gzip"[..],
        b"application/x-gzip",
        b"application/zip",
        b"text/xml",
        b"application/xml",
        b".xml.gz",
    ]
    .iter()
    .any(|t| contains_ci(start, t))
        && contains_ci(start, b"dmarc")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feedback::tests::sample;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zipped(name: &str, data: &[u8]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        w.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(data).unwrap();
        w.finish().unwrap().into_inner()
    }

    fn message(ct: &str, name: &str, payload: &[u8]) -> Vec<u8> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(payload);
        format!(
            "From: r@example.net\r\nSubject: Report Domain: sender.example Submitter: x Report-ID: <1>\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nHello.\r\n\
             --b\r\nContent-Type: {ct}\r\nContent-Transfer-Encoding: base64\r\n\
             Content-Disposition: attachment; filename=\"{name}\"\r\n\r\n{b64}\r\n--b--\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn gzip_zip_and_plain_attachments() {
        let xml = sample().to_xml();
        for (ct, name, payload) in [
            ("application/gzip", "a!b!1!2.xml.gz", gz(xml.as_bytes())),
            (
                "application/zip",
                "a!b!1!2.zip",
                zipped("a!b!1!2.xml", xml.as_bytes()),
            ),
            ("text/xml", "a!b!1!2.xml", xml.as_bytes().to_vec()),
        ] {
            let m = message(ct, name, &payload);
            assert!(may_be_report(&m));
            assert_eq!(from_message(&m).unwrap(), sample(), "{ct}");
            assert_eq!(from_file(&payload, name).unwrap(), sample(), "{ct}");
        }
        assert_eq!(
            from_file(
                &message("application/gzip", "x.gz", &gz(xml.as_bytes())),
                "r.eml"
            )
            .unwrap(),
            sample()
        );
    }

    #[test]
    fn whole_body_report() {
        let xml = sample().to_xml();
        let m = format!("From: r@example.net\r\nSubject: Report Domain: x\r\n\r\n{xml}");
        assert_eq!(from_message(m.as_bytes()).unwrap(), sample());
    }

    #[test]
    fn reports_without_the_subject_are_noticed() {
        let m = message(
            "application/gzip",
            "google.com!x!1!2.xml.gz",
            &gz(b"<feedback/>"),
        )
        .into_iter()
        .collect::<Vec<u8>>();
        let text = String::from_utf8(m)
            .unwrap()
            .replace("Subject: Report Domain:", "Subject: DMARC report for");
        assert!(may_be_report(text.as_bytes()));
        let plain = text.replace("dmarc", "").replace("DMARC", "");
        assert!(!may_be_report(plain.as_bytes()));
    }

    #[test]
    fn ordinary_mail_is_not_a_report() {
        let m = b"From: a@example.net\r\nSubject: hello\r\n\r\nJust words.\r\n";
        assert!(!may_be_report(m));
        let e = from_message(m).unwrap_err().to_string();
        assert!(e.contains("no DMARC aggregate report"), "{e}");
    }

    #[test]
    fn bombs_are_refused() {
        let big = vec![b' '; 70_000];
        let e = gunzip_max(&gz(&big), 65_536).unwrap_err().to_string();
        assert!(e.contains("larger than"), "{e}");
    }
}
