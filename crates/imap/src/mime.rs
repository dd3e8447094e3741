//! MIME structure for FETCH: part boundaries by byte offset (needed for exact `BODY[section]`
//! octets), header values (addresses, dates, Content-Type parameters) from `mail-parser`.
//! Works on CRLF-normalised messages; malformed input yields a best-effort structure.

use std::ops::Range;

use base64::Engine;
use mail_parser::{Address, HeaderName, HeaderValue, MessageParser};

use crate::parser::SectionText;
use crate::response::{nstring, string};

const MAX_DEPTH: usize = 20;
const MAX_PARTS: usize = 2000;

/// One MIME entity.
#[derive(Debug, Clone)]
pub struct Part {
    /// The header, including the blank line that ends it (may be empty).
    pub header: Range<usize>,
    /// The body.
    pub body: Range<usize>,
    /// Lower-case media type and subtype.
    pub ctype: String,
    pub subtype: String,
    /// Content-Type parameters.
    pub params: Vec<(String, String)>,
    /// Sub-parts of a multipart.
    pub children: Vec<Part>,
    /// The encapsulated message of a message/rfc822 (or message/global) part.
    pub message: Option<Box<Part>>,
}

fn find(hay: &[u8], needle: &[u8], from: usize, to: usize) -> Option<usize> {
    if needle.is_empty() || to > hay.len() || from >= to || to - from < needle.len() {
        return None;
    }
    hay[from..to]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Parses the structure of `data[range]` as a message (or entity) with a default type.
pub fn parse(data: &[u8]) -> Part {
    let mut count = 0;
    parse_entity(data, 0..data.len(), ("text", "plain"), 0, &mut count)
}

fn parse_entity(
    data: &[u8],
    r: Range<usize>,
    default: (&str, &str),
    depth: usize,
    count: &mut usize,
) -> Part {
    *count += 1;
    let (header, body) = if data[r.clone()].starts_with(b"\r\n") {
        (r.start..r.start + 2, r.start + 2..r.end)
    } else {
        match find(data, b"\r\n\r\n", r.start, r.end) {
            Some(p) => (r.start..p + 4, p + 4..r.end),
            None => (r.clone(), r.end..r.end),
        }
    };
    let hdr = &data[header.clone()];
    let (mut ctype, mut subtype, params) = content_type(hdr)
        .unwrap_or_else(|| (default.0.to_string(), default.1.to_string(), Vec::new()));
    if ctype.is_empty() {
        ctype = default.0.into();
        subtype = default.1.into();
    }
    let mut part = Part {
        header,
        body: body.clone(),
        ctype,
        subtype,
        params,
        children: Vec::new(),
        message: None,
    };
    if depth >= MAX_DEPTH || *count > MAX_PARTS {
        return part;
    }
    if part.ctype == "multipart" {
        let boundary = part
            .params
            .iter()
            .find(|(k, _)| k == "boundary")
            .map(|(_, v)| v.clone());
        if let Some(b) = boundary.filter(|b| !b.is_empty()) {
            let child_default = if part.subtype == "digest" {
                ("message", "rfc822")
            } else {
                ("text", "plain")
            };
            for cr in split_multipart(data, body, b.as_bytes()) {
                part.children
                    .push(parse_entity(data, cr, child_default, depth + 1, count));
                if *count > MAX_PARTS {
                    break;
                }
            }
        }
        if part.children.is_empty() {
            // RFC 9051 §7.5.2: a multipart has at least one part; show the body as text.
            part.children.push(Part {
                header: part.body.start..part.body.start,
                body: part.body.clone(),
                ctype: "text".into(),
                subtype: "plain".into(),
                params: Vec::new(),
                children: Vec::new(),
                message: None,
            });
        }
    } else if part.ctype == "message"
        && (part.subtype == "rfc822" || part.subtype == "global")
        && !body.is_empty()
    {
        let cte = header_value(hdr, "content-transfer-encoding")
            .map(|v| String::from_utf8_lossy(&v).trim().to_ascii_lowercase());
        if !matches!(cte.as_deref(), Some("base64") | Some("quoted-printable")) {
            part.message = Some(Box::new(parse_entity(
                data,
                body,
                ("text", "plain"),
                depth + 1,
                count,
            )));
        }
    }
    part
}

/// The ranges of the parts of a multipart body.
fn split_multipart(data: &[u8], body: Range<usize>, boundary: &[u8]) -> Vec<Range<usize>> {
    let mut delim = b"--".to_vec();
    delim.extend_from_slice(boundary);
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut line = body.start;
    while line < body.end {
        let eol = find(data, b"\r\n", line, body.end);
        let next = eol.map_or(body.end, |e| e + 2);
        let text = &data[line..eol.unwrap_or(body.end)];
        if text.starts_with(&delim) {
            let rest = &text[delim.len()..];
            let closing = rest.starts_with(b"--");
            let rest = if closing { &rest[2..] } else { rest };
            if rest.iter().all(|b| *b == b' ' || *b == b'\t') {
                if let Some(s) = start {
                    // The CRLF before the delimiter belongs to the delimiter.
                    let end = if line >= s + 2 && &data[line - 2..line] == b"\r\n" {
                        line - 2
                    } else {
                        line
                    };
                    out.push(s..end.max(s));
                }
                if closing {
                    return out;
                }
                start = Some(next);
            }
        }
        line = next;
    }
    if let Some(s) = start {
        if s <= body.end {
            out.push(s..body.end);
        }
    }
    out
}

/// Iterates over unfolded header fields: (lower-case name, raw field bytes incl. CRLF).
pub fn fields(hdr: &[u8]) -> Vec<(String, Range<usize>)> {
    let mut out: Vec<(String, Range<usize>)> = Vec::new();
    let mut i = 0;
    while i < hdr.len() {
        let eol = find(hdr, b"\r\n", i, hdr.len()).map_or(hdr.len(), |e| e + 2);
        let line = &hdr[i..eol];
        if line == b"\r\n" {
            break;
        }
        if (line[0] == b' ' || line[0] == b'\t') && !out.is_empty() {
            if let Some(l) = out.last_mut() {
                l.1.end = eol;
            }
        } else {
            let name = match line.iter().position(|&b| b == b':') {
                Some(c) => String::from_utf8_lossy(&line[..c])
                    .trim()
                    .to_ascii_lowercase(),
                None => String::new(),
            };
            out.push((name, i..eol));
        }
        i = eol;
    }
    out
}

/// The unfolded value of the first field `name` (lower-case).
pub fn header_value(hdr: &[u8], name: &str) -> Option<Vec<u8>> {
    let (_, r) = fields(hdr).into_iter().find(|(n, _)| n == name)?;
    let raw = &hdr[r];
    let colon = raw.iter().position(|&b| b == b':')?;
    let mut v: Vec<u8> = raw[colon + 1..]
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    while v.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
        v.remove(0);
    }
    while v.last().is_some_and(|b| *b == b' ' || *b == b'\t') {
        v.pop();
    }
    Some(v)
}

type Params = Vec<(String, String)>;

fn content_type(hdr: &[u8]) -> Option<(String, String, Params)> {
    let msg = MessageParser::new().parse_headers(hdr)?;
    match msg.header(HeaderName::ContentType)? {
        HeaderValue::ContentType(ct) => Some((
            ct.c_type.to_ascii_lowercase(),
            ct.c_subtype
                .as_deref()
                .map(str::to_ascii_lowercase)
                .unwrap_or_default(),
            ct.attributes
                .iter()
                .flatten()
                .map(|a| (a.name.to_ascii_lowercase(), a.value.to_string()))
                .collect(),
        )),
        _ => None,
    }
}

fn disposition(hdr: &[u8]) -> Option<(String, Vec<(String, String)>)> {
    let msg = MessageParser::new().parse_headers(hdr)?;
    match msg.header(HeaderName::ContentDisposition)? {
        HeaderValue::ContentType(ct) => Some((
            ct.c_type.to_string(),
            ct.attributes
                .iter()
                .flatten()
                .map(|a| (a.name.to_string(), a.value.to_string()))
                .collect(),
        )),
        _ => None,
    }
}

/// Navigates to a part by section number (RFC 9051 §6.4.5).
pub fn part_at<'a>(root: &'a Part, path: &[u32]) -> Option<&'a Part> {
    let mut p = root;
    for &n in path {
        p = child(p, n as usize)?;
    }
    Some(p)
}

fn child(p: &Part, n: usize) -> Option<&Part> {
    if !p.children.is_empty() {
        return p.children.get(n.checked_sub(1)?);
    }
    if let Some(m) = &p.message {
        return child(m, n);
    }
    (n == 1).then_some(p)
}

/// The bytes of `BODY[section]` (RFC 9051 §6.4.5), or `None` for a nonexistent part.
pub fn section_bytes(
    data: &[u8],
    root: &Part,
    path: &[u32],
    text: &SectionText,
) -> Option<Vec<u8>> {
    let part = part_at(root, path)?;
    // For HEADER/TEXT/HEADER.FIELDS the target is the message: the root, or the encapsulated
    // message of a message/rfc822 part.
    let msg = if path.is_empty() {
        Some(root)
    } else {
        part.message.as_deref()
    };
    Some(match text {
        SectionText::Full if path.is_empty() => data.to_vec(),
        SectionText::Full => data[part.body.clone()].to_vec(),
        SectionText::Mime => data[part.header.clone()].to_vec(),
        SectionText::Header => msg
            .map(|m| data[m.header.clone()].to_vec())
            .unwrap_or_default(),
        SectionText::Text => msg
            .map(|m| data[m.body.clone()].to_vec())
            .unwrap_or_default(),
        SectionText::HeaderFields(names) | SectionText::HeaderFieldsNot(names) => {
            let not = matches!(text, SectionText::HeaderFieldsNot(_));
            let Some(m) = msg else {
                return Some(Vec::new());
            };
            filter_header(&data[m.header.clone()], names, not)
        }
    })
}

/// The header fields whose names are (or, with `not`, are not) in `names`, plus the blank line.
pub fn filter_header(hdr: &[u8], names: &[String], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, r) in fields(hdr) {
        if names.contains(&name) != not {
            out.extend_from_slice(&hdr[r]);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Decoded content of a part for `BINARY[...]` (RFC 3516); `Err` for an unknown encoding.
/// An unknown Content-Transfer-Encoding (RFC 3516 `[UNKNOWN-CTE]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownCte;

pub fn decoded(data: &[u8], part: &Part) -> Result<Vec<u8>, UnknownCte> {
    let body = &data[part.body.clone()];
    let cte = header_value(&data[part.header.clone()], "content-transfer-encoding")
        .map(|v| String::from_utf8_lossy(&v).trim().to_ascii_lowercase())
        .unwrap_or_default();
    match cte.as_str() {
        "" | "7bit" | "8bit" | "binary" => Ok(body.to_vec()),
        "base64" => {
            let clean: Vec<u8> = body
                .iter()
                .copied()
                .filter(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
                .collect();
            let engine = base64::engine::GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                base64::engine::GeneralPurposeConfig::new()
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
                    .with_decode_allow_trailing_bits(true),
            );
            let usable = clean.len() - clean.len() % 4
                + if clean.len() % 4 > 1 {
                    clean.len() % 4
                } else {
                    0
                };
            Ok(engine
                .decode(&clean[..usable.min(clean.len())])
                .unwrap_or_default())
        }
        "quoted-printable" => Ok(decode_qp(body)),
        _ => Err(UnknownCte),
    }
}

fn decode_qp(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    while i < body.len() {
        let b = body[i];
        if b == b'=' {
            if body[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            if let (Some(h), Some(l)) = (
                body.get(i + 1).and_then(|&c| hex(c)),
                body.get(i + 2).and_then(|&c| hex(c)),
            ) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

fn count_lines(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

fn write_params(out: &mut Vec<u8>, params: &[(String, String)]) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        string(out, k.as_bytes());
        out.push(b' ');
        string(out, &encode_word(v));
    }
    out.push(b')');
}

/// RFC 2047-encodes non-ASCII text for clients that have not enabled UTF-8.
fn encode_word(s: &str) -> Vec<u8> {
    if s.is_ascii() {
        return s.as_bytes().to_vec();
    }
    format!(
        "=?UTF-8?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
    )
    .into_bytes()
}

/// Writes BODY (`extended = false`) or BODYSTRUCTURE (RFC 9051 §7.5.2).
pub fn body_structure(out: &mut Vec<u8>, data: &[u8], p: &Part, extended: bool) {
    let hdr = &data[p.header.clone()];
    out.push(b'(');
    if !p.children.is_empty() {
        for c in &p.children {
            body_structure(out, data, c, extended);
        }
        out.push(b' ');
        string(out, p.subtype.to_ascii_uppercase().as_bytes());
        if extended {
            out.push(b' ');
            write_params(out, &p.params);
            out.push(b' ');
            write_ext(out, hdr);
        }
        out.push(b')');
        return;
    }
    string(out, p.ctype.to_ascii_uppercase().as_bytes());
    out.push(b' ');
    let sub = if p.subtype.is_empty() {
        "plain".to_string()
    } else {
        p.subtype.clone()
    };
    string(out, sub.to_ascii_uppercase().as_bytes());
    out.push(b' ');
    let mut params = p.params.clone();
    if p.ctype == "text" && !params.iter().any(|(k, _)| k == "charset") {
        params.push(("charset".into(), "us-ascii".into()));
    }
    write_params(out, &params);
    for h in ["content-id", "content-description"] {
        out.push(b' ');
        nstring(out, header_value(hdr, h).as_deref());
    }
    out.push(b' ');
    let cte = header_value(hdr, "content-transfer-encoding")
        .map(|v| String::from_utf8_lossy(&v).trim().to_ascii_uppercase())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "7BIT".into());
    string(out, cte.as_bytes());
    let body = &data[p.body.clone()];
    out.extend_from_slice(format!(" {}", body.len()).as_bytes());
    if let Some(m) = &p.message {
        out.push(b' ');
        envelope(out, &data[m.header.clone()]);
        out.push(b' ');
        body_structure(out, data, m, extended);
        out.extend_from_slice(format!(" {}", count_lines(body)).as_bytes());
    } else if p.ctype == "text" {
        out.extend_from_slice(format!(" {}", count_lines(body)).as_bytes());
    }
    if extended {
        out.push(b' ');
        nstring(out, header_value(hdr, "content-md5").as_deref());
        out.push(b' ');
        write_ext(out, hdr);
    }
    out.push(b')');
}

/// body-fld-dsp SP body-fld-lang SP body-fld-loc
fn write_ext(out: &mut Vec<u8>, hdr: &[u8]) {
    match disposition(hdr) {
        Some((kind, params)) if !kind.is_empty() => {
            out.push(b'(');
            string(out, kind.to_ascii_uppercase().as_bytes());
            out.push(b' ');
            write_params(out, &params);
            out.push(b')');
        }
        _ => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    nstring(out, header_value(hdr, "content-language").as_deref());
    out.push(b' ');
    nstring(out, header_value(hdr, "content-location").as_deref());
}

fn write_addresses(out: &mut Vec<u8>, a: Option<&Address>) {
    let Some(a) = a else {
        out.extend_from_slice(b"NIL");
        return;
    };
    let mut items = Vec::new();
    let push_addr = |items: &mut Vec<u8>, name: Option<&str>, addr: Option<&str>| {
        items.push(b'(');
        nstring(items, name.map(encode_word).as_deref());
        items.extend_from_slice(b" NIL ");
        let addr = addr.unwrap_or("");
        let (local, host) = match addr.rsplit_once('@') {
            Some((l, h)) => (l, Some(h)),
            None => (addr, None),
        };
        string(items, local.as_bytes());
        items.push(b' ');
        nstring(items, host.map(str::as_bytes));
        items.push(b')');
    };
    match a {
        Address::List(list) => {
            for x in list {
                push_addr(&mut items, x.name.as_deref(), x.address.as_deref());
            }
        }
        Address::Group(groups) => {
            for g in groups {
                if let Some(name) = &g.name {
                    items.extend_from_slice(b"(NIL NIL ");
                    string(&mut items, &encode_word(name));
                    items.extend_from_slice(b" NIL)");
                    for x in &g.addresses {
                        push_addr(&mut items, x.name.as_deref(), x.address.as_deref());
                    }
                    items.extend_from_slice(b"(NIL NIL NIL NIL)");
                } else {
                    for x in &g.addresses {
                        push_addr(&mut items, x.name.as_deref(), x.address.as_deref());
                    }
                }
            }
        }
    }
    if items.is_empty() {
        out.extend_from_slice(b"NIL");
    } else {
        out.push(b'(');
        out.extend_from_slice(&items);
        out.push(b')');
    }
}

/// Writes the ENVELOPE of a message header (RFC 9051 §7.5.2).
pub fn envelope(out: &mut Vec<u8>, hdr: &[u8]) {
    let msg = MessageParser::new().parse_headers(hdr);
    out.push(b'(');
    nstring(out, header_value(hdr, "date").as_deref());
    out.push(b' ');
    nstring(out, header_value(hdr, "subject").as_deref());
    let addr = |name: HeaderName<'static>| -> Option<&Address> {
        match msg.as_ref()?.header(name)? {
            HeaderValue::Address(a) => Some(a),
            _ => None,
        }
    };
    let from = addr(HeaderName::From);
    for a in [
        from,
        addr(HeaderName::Sender).or(from),
        addr(HeaderName::ReplyTo).or(from),
        addr(HeaderName::To),
        addr(HeaderName::Cc),
        addr(HeaderName::Bcc),
    ] {
        out.push(b' ');
        write_addresses(out, a);
    }
    out.push(b' ');
    nstring(out, header_value(hdr, "in-reply-to").as_deref());
    out.push(b' ');
    nstring(out, header_value(hdr, "message-id").as_deref());
    out.push(b')');
}

/// Addresses (lower-case `local@host`) and display names of a header field, for SORT/SEARCH.
pub fn first_address(hdr: &[u8], field: HeaderName<'static>) -> Option<(String, String)> {
    let msg = MessageParser::new().parse_headers(hdr)?;
    let a = match msg.header(field)? {
        HeaderValue::Address(a) => a,
        _ => return None,
    };
    let first = a.first()?;
    Some((
        first.address.as_deref().unwrap_or("").to_ascii_lowercase(),
        first
            .name
            .as_deref()
            .unwrap_or(first.address.as_deref().unwrap_or(""))
            .to_lowercase(),
    ))
}

/// The Date header as Unix seconds.
pub fn sent_date(hdr: &[u8]) -> Option<i64> {
    let msg = MessageParser::new().parse_headers(hdr)?;
    msg.date().map(|d| d.to_timestamp())
}

/// The decoded Subject.
pub fn subject(hdr: &[u8]) -> String {
    MessageParser::new()
        .parse_headers(hdr)
        .and_then(|m| m.subject().map(str::to_string))
        .unwrap_or_default()
}

/// Decoded text of all header fields with this name (for SEARCH HEADER / FROM ...).
pub fn decoded_field(hdr: &[u8], name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (n, r) in fields(hdr) {
        if n == name {
            let raw = &hdr[r];
            let colon = raw.iter().position(|&b| b == b':').unwrap_or(0);
            let value = String::from_utf8_lossy(&raw[(colon + 1).min(raw.len())..]).into_owned();
            out.push(decode_words(&value));
        }
    }
    out
}

/// Best-effort RFC 2047 decoding of a header value (falls back to the raw text).
pub fn decode_words(v: &str) -> String {
    let fake = format!("Subject: {}\r\n\r\n", v.trim());
    MessageParser::new()
        .parse_headers(fake.as_bytes())
        .and_then(|m| m.subject().map(str::to_string))
        .unwrap_or_else(|| v.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTI: &[u8] = b"From: Alice <alice@example.org>\r\nTo: bob@example.org, \"C D\" <cd@x.test>\r\nSubject: =?utf-8?q?h=C3=A9llo?=\r\nMessage-ID: <1@x>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\npreamble\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\nworld\r\n--XX\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n--YY\r\n\r\nplain\r\n--YY\r\nContent-Type: text/html\r\n\r\n<b>x</b>\r\n--YY--\r\n\r\n--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"a.bin\"\r\n\r\naGVsbG8=\r\n--XX--\r\nepilogue\r\n";

    #[test]
    fn structure_and_sections() {
        let root = parse(MULTI);
        assert_eq!(root.ctype, "multipart");
        assert_eq!(root.children.len(), 3);
        assert_eq!(
            section_bytes(MULTI, &root, &[1], &SectionText::Full).unwrap(),
            b"hello\r\nworld"
        );
        assert_eq!(
            section_bytes(MULTI, &root, &[1], &SectionText::Mime).unwrap(),
            b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        );
        assert_eq!(
            section_bytes(MULTI, &root, &[2, 1], &SectionText::Full).unwrap(),
            b"plain"
        );
        assert_eq!(
            section_bytes(MULTI, &root, &[2, 2], &SectionText::Full).unwrap(),
            b"<b>x</b>"
        );
        assert!(section_bytes(MULTI, &root, &[2], &SectionText::Header)
            .unwrap()
            .starts_with(b"Subject: inner\r\n"));
        assert!(section_bytes(MULTI, &root, &[9], &SectionText::Full).is_none());
        let p3 = part_at(&root, &[3]).unwrap();
        assert_eq!(decoded(MULTI, p3).unwrap(), b"hello");
        let h = section_bytes(
            MULTI,
            &root,
            &[],
            &SectionText::HeaderFields(vec!["subject".into()]),
        )
        .unwrap();
        assert_eq!(h, b"Subject: =?utf-8?q?h=C3=A9llo?=\r\n\r\n");
    }

    #[test]
    fn bodystructure_renders() {
        let root = parse(MULTI);
        let mut out = Vec::new();
        body_structure(&mut out, MULTI, &root, true);
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("((\"TEXT\" \"PLAIN\" (\"charset\" \"utf-8\") NIL NIL \"7BIT\" 12 1 NIL NIL NIL NIL)"), "{s}");
        assert!(s.contains("\"MIXED\" (\"boundary\" \"XX\")"), "{s}");
        assert!(
            s.contains("(\"ATTACHMENT\" (\"filename\" \"a.bin\"))"),
            "{s}"
        );
        assert!(s.contains("\"MESSAGE\" \"RFC822\""), "{s}");
        let mut env = Vec::new();
        envelope(&mut env, &MULTI[root.header.clone()]);
        let e = String::from_utf8(env).unwrap();
        assert!(
            e.contains("((\"Alice\" NIL \"alice\" \"example.org\"))"),
            "{e}"
        );
        assert!(
            e.contains("(NIL NIL \"bob\" \"example.org\")(\"C D\" NIL \"cd\" \"x.test\")"),
            "{e}"
        );
        assert!(e.ends_with(" NIL \"<1@x>\")"), "{e}");
    }

    #[test]
    fn malformed_is_best_effort() {
        for m in [
            &b""[..],
            b"\r\n",
            b"no header at all",
            b"Content-Type: multipart/mixed; boundary=Q\r\n\r\nno parts here",
            b"Content-Type: multipart/mixed\r\n\r\n--",
            b"Content-Type: message/rfc822\r\n\r\n",
            b"Content-Type: multipart/mixed; boundary=Q\r\n\r\n--Q\r\n--Q\r\n--Q--",
            b"Content-Transfer-Encoding: base64\r\n\r\n!!!a",
        ] {
            let root = parse(m);
            let mut out = Vec::new();
            body_structure(&mut out, m, &root, true);
            envelope(&mut out, &m[root.header.clone()]);
            let _ = decoded(m, &root);
            let _ = section_bytes(m, &root, &[1, 1], &SectionText::Text);
        }
        let mut nested = Vec::new();
        for _ in 0..100 {
            nested.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        let root = parse(&nested);
        let mut out = Vec::new();
        body_structure(&mut out, &nested, &root, true);
    }
}
