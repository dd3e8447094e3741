//! MIME structure for FETCH: part boundaries by byte offset (needed for exact `BODY[section]`
//! octets), header values (addresses, dates, Content-Type parameters) from `mail-parser`.
//! Works on CRLF-normalised messages; malformed input yields a best-effort structure.

use std::ops::Range;

use base64::Engine;
use mail_parser::{HeaderName, HeaderValue, MessageParser};

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
    /// Lower-case media type (`text`, `multipart`, ...).
    pub ctype: String,
    /// Lower-case media subtype (`plain`, `mixed`, ...).
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
            .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
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
            // RFC 9051 §7.5.2: a multipart has at least one part. RFC 2046 §5.1.1: without a
            // delimiter line everything is preamble, which is not content: one empty text part
            // (as Dovecot shows it).
            let at = part.body.end;
            part.children.push(Part {
                header: at..at,
                body: at..at,
                ctype: "text".into(),
                subtype: "plain".into(),
                params: Vec::new(),
                children: Vec::new(),
                message: None,
            });
        }
    } else if part.ctype == "message" && (part.subtype == "rfc822" || part.subtype == "global") {
        // RFC 3501 §7.4.2 body-type-msg: a message/rfc822 part always has an envelope, a body
        // structure and a line count, also when empty or (wrongly) encoded: its octets are
        // parsed as they stand, as Dovecot does.
        part.message = Some(Box::new(parse_entity(
            data,
            body,
            ("text", "plain"),
            depth + 1,
            count,
        )));
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
pub(crate) fn fields(hdr: &[u8]) -> Vec<(String, Range<usize>)> {
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
    let raw = raw_value(hdr, name)?;
    let mut v: Vec<u8> = raw
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    let start = v
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(v.len());
    v.drain(..start);
    while v.last().is_some_and(|b| *b == b' ' || *b == b'\t') {
        v.pop();
    }
    Some(v)
}

type Params = Vec<(String, String)>;

/// The raw value of the first field `name` (lower-case), as `fields` delimits it: the
/// octets after the colon, line breaks included. Scans without allocating (FETCH calls it
/// several times per MIME part).
fn raw_value<'a>(hdr: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let mut i = 0;
    let mut first = true;
    while i < hdr.len() {
        let eol = find(hdr, b"\r\n", i, hdr.len()).map_or(hdr.len(), |e| e + 2);
        let line = &hdr[i..eol];
        if line == b"\r\n" {
            return None;
        }
        let continuation = !first && (line[0] == b' ' || line[0] == b'\t');
        first = false;
        if !continuation {
            if let Some(c) = line.iter().position(|&b| b == b':') {
                if line[..c].trim_ascii().eq_ignore_ascii_case(name.as_bytes()) {
                    // The field goes on over its continuation lines.
                    let mut end = eol;
                    while end < hdr.len() && (hdr[end] == b' ' || hdr[end] == b'\t') {
                        end = find(hdr, b"\r\n", end, hdr.len()).map_or(hdr.len(), |e| e + 2);
                    }
                    return Some(&hdr[i + c + 1..end]);
                }
            }
        }
        i = eol;
    }
    None
}

/// Content-Type (RFC 2045 §5.1) of the first such field: lower-case type and subtype and
/// the parameters as [`params`] gives them. `None` when absent or syntactically invalid
/// (the caller then uses the default type, RFC 2045 §5.2).
fn content_type(hdr: &[u8]) -> Option<(String, String, Params)> {
    let mut lx = Lexer::new(raw_value(hdr, "content-type")?);
    lx.cfws();
    let ctype = lx.token()?;
    lx.cfws();
    if !lx.eat(b'/') {
        return None;
    }
    lx.cfws();
    let subtype = lx.token()?;
    Some((
        String::from_utf8_lossy(&ctype).to_ascii_lowercase(),
        String::from_utf8_lossy(&subtype).to_ascii_lowercase(),
        params(&mut lx),
    ))
}

/// The Content-Transfer-Encoding mechanism, lower-case (RFC 2045 §6.1: a token, comments
/// and white space around it ignored); empty when absent or blank (the 7bit default).
fn transfer_encoding(hdr: &[u8]) -> String {
    let Some(v) = raw_value(hdr, "content-transfer-encoding") else {
        return String::new();
    };
    let mut lx = Lexer::new(v);
    lx.cfws();
    lx.token()
        .map(|t| String::from_utf8_lossy(&t).to_ascii_lowercase())
        .unwrap_or_default()
}

/// Content-Disposition (RFC 2183 §2): the type as written and its parameters.
fn disposition(hdr: &[u8]) -> Option<(String, Params)> {
    let mut lx = Lexer::new(raw_value(hdr, "content-disposition")?);
    lx.cfws();
    let kind = lx.token()?;
    Some((String::from_utf8_lossy(&kind).into_owned(), params(&mut lx)))
}

/// `*(";" attribute "=" value)` (RFC 2045 §5.1), values unquoted but otherwise as written
/// (RFC 2047 words are not decoded). RFC 2231 §3 continuations `name*0*`, `name*1` ... are
/// joined into one `name*` (or `name` when none is extended) value, still %-encoded with
/// its charset'language' prefix, after the other parameters; `name*=` stays as it is. This
/// is what Dovecot shows, and what clients decode.
fn params(lx: &mut Lexer<'_>) -> Params {
    let mut plain: Params = Vec::new();
    // (name, index, extended, value)
    let mut sections: Vec<(String, u32, bool, String)> = Vec::new();
    loop {
        lx.cfws();
        if !lx.eat(b';') {
            break;
        }
        lx.cfws();
        if lx.peek() == Some(b';') {
            continue;
        }
        let Some(name) = lx.token() else { break };
        lx.cfws();
        if !lx.eat(b'=') {
            break;
        }
        lx.cfws();
        let value = if lx.peek() == Some(b'"') {
            match lx.quoted() {
                Some(v) => v,
                None => break,
            }
        } else {
            lx.token().unwrap_or_default()
        };
        let name = String::from_utf8_lossy(&name).into_owned();
        let value = String::from_utf8_lossy(&value).into_owned();
        if let Some((base, rest)) = name.split_once('*') {
            let (num, extended) = match rest.strip_suffix('*') {
                Some(n) => (n, true),
                None => (rest, false),
            };
            if let Ok(idx) = num.parse::<u32>() {
                if num.bytes().all(|b| b.is_ascii_digit()) {
                    sections.push((base.to_string(), idx, extended, value));
                    continue;
                }
            }
        }
        plain.push((name, value));
    }
    sections.sort_by_key(|a| (a.0.to_ascii_lowercase(), a.1));
    // Joined from section 0 on while the numbers follow each other; sections outside that run
    // stay as they were written.
    let mut i = 0;
    while i < sections.len() {
        let key = sections[i].0.to_ascii_lowercase();
        let (mut value, mut extended, mut next) = (String::new(), false, 0);
        let mut j = i;
        while j < sections.len() && sections[j].0.to_ascii_lowercase() == key {
            let (base, idx, ext, v) = &sections[j];
            if *idx == next {
                value.push_str(v);
                extended |= *ext;
                next += 1;
            } else {
                let star = if *ext { "*" } else { "" };
                plain.push((format!("{base}*{idx}{star}"), v.clone()));
            }
            j += 1;
        }
        if next > 0 {
            let name = if extended {
                format!("{}*", sections[i].0)
            } else {
                sections[i].0.clone()
            };
            plain.push((name, value));
        }
        i = j;
    }
    plain
}

/// A cursor over a structured header value (RFC 5322 §3.2 lexical tokens).
struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
    /// The text of the last comment skipped, when recording.
    comment: Option<Vec<u8>>,
}

fn is_special(b: u8) -> bool {
    b"()<>[]:;@\\,.\"".contains(&b)
}

impl<'a> Lexer<'a> {
    fn new(s: &'a [u8]) -> Self {
        Lexer {
            s,
            i: 0,
            comment: None,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Skips white space, line breaks and (nested) comments.
    fn cfws(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => self.i += 1,
                b'(' => {
                    let mut depth = 0;
                    let mut text = Vec::new();
                    while let Some(c) = self.peek() {
                        self.i += 1;
                        match c {
                            b'(' => {
                                if depth > 0 {
                                    text.push(c);
                                }
                                depth += 1;
                            }
                            b')' => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                                text.push(c);
                            }
                            b'\\' => {
                                if let Some(n) = self.peek() {
                                    text.push(n);
                                    self.i += 1;
                                }
                            }
                            b'\r' | b'\n' => {}
                            _ => text.push(c),
                        }
                    }
                    self.comment = Some(text);
                }
                _ => break,
            }
        }
    }

    /// An atom (RFC 5322 atext, 8-bit octets included); with `dots`, dots too.
    fn atom(&mut self, dots: bool) -> Option<Vec<u8>> {
        let start = self.i;
        while let Some(b) = self.peek() {
            if b > b' ' && b != 0x7f && (!is_special(b) || (dots && b == b'.')) {
                self.i += 1;
            } else {
                break;
            }
        }
        (self.i > start).then(|| self.s[start..self.i].to_vec())
    }

    /// A MIME token (RFC 2045 §5.1): like an atom, but tspecials also exclude / ? =.
    fn token(&mut self) -> Option<Vec<u8>> {
        let start = self.i;
        while let Some(b) = self.peek() {
            if b > b' ' && b != 0x7f && !b"()<>@,;:\\\"/[]?=".contains(&b) {
                self.i += 1;
            } else {
                break;
            }
        }
        (self.i > start).then(|| self.s[start..self.i].to_vec())
    }

    /// A quoted string, unquoted and unfolded; `None` if unterminated.
    fn quoted(&mut self) -> Option<Vec<u8>> {
        if !self.eat(b'"') {
            return None;
        }
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'"' => return Some(out),
                b'\\' => {
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.i += 1;
                    }
                }
                b'\r' | b'\n' => {}
                _ => out.push(b),
            }
        }
        None
    }

    /// RFC 5322 phrase (obs-phrase: dots allowed): words joined by one space. `Err` on an
    /// unterminated quoted string.
    fn phrase(&mut self) -> Result<Vec<u8>, ()> {
        let mut out = Vec::new();
        loop {
            self.cfws();
            let word = match self.peek() {
                Some(b'"') => self.quoted().ok_or(())?,
                _ => match self.atom(true) {
                    Some(a) => a,
                    None => break,
                },
            };
            if !out.is_empty() {
                out.push(b' ');
            }
            out.extend_from_slice(&word);
        }
        Ok(out)
    }

    /// local-part: dot-atom or quoted string (RFC 5322 §3.4.1).
    fn local_part(&mut self) -> Result<Vec<u8>, ()> {
        self.cfws();
        let r = match self.peek() {
            Some(b'"') => self.quoted().ok_or(()),
            _ => Ok(self.atom(true).unwrap_or_default()),
        };
        self.cfws();
        r
    }

    /// domain: dot-atom or domain literal (kept with its brackets).
    fn domain(&mut self) -> Option<Vec<u8>> {
        self.cfws();
        let d = if self.peek() == Some(b'[') {
            let start = self.i;
            while let Some(b) = self.peek() {
                self.i += 1;
                if b == b']' {
                    break;
                }
            }
            Some(self.s[start..self.i].to_vec())
        } else {
            self.atom(true)
        };
        self.cfws();
        d
    }
}

/// One element of an address list as ENVELOPE shows it (RFC 3501 §7.4.2). Names are raw
/// (RFC 2047 words still encoded); SORT (RFC 5256 §3) and DISPLAYFROM (RFC 5957) keys taken
/// from these agree with what ENVELOPE shows, as Dovecot's do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    /// One mailbox (RFC 5322 §3.4 `mailbox`).
    Mailbox {
        /// The display name, or the trailing comment when there is no phrase.
        name: Option<Vec<u8>>,
        /// The obsolete source route (RFC 5322 §4.4 `obs-route`), without its final `:`.
        adl: Option<Vec<u8>>,
        /// The local part (`MISSING_MAILBOX` if absent).
        mailbox: Vec<u8>,
        /// The domain (`MISSING_DOMAIN` if absent, `SYNTAX_ERROR` in an unclosed `<...>`).
        host: Vec<u8>,
    },
    /// The start of a group (RFC 5322 §3.4 `group`): its display name.
    GroupStart(Vec<u8>),
    /// The end of a group.
    GroupEnd,
}

const MISSING_MAILBOX: &[u8] = b"MISSING_MAILBOX";
const MISSING_DOMAIN: &[u8] = b"MISSING_DOMAIN";

/// Parses an RFC 5322 address list (§3.4) with groups and obsolete routes, forgivingly:
/// a mailbox without a local part or domain gets `MISSING_MAILBOX` / `MISSING_DOMAIN` (what
/// Dovecot and UW-IMAP show, so clients can tell the address is broken), an address with no
/// phrase takes its trailing comment as the name, and parsing stops at the first octets that
/// cannot continue the list.
pub fn address_list(v: &[u8]) -> Vec<Addr> {
    let mut lx = Lexer::new(v);
    let mut out = Vec::new();
    loop {
        lx.cfws();
        if lx.peek().is_none() {
            break;
        }
        // group = display-name ":" [group-list] ";"
        let start = lx.i;
        if let Ok(name) = lx.phrase() {
            lx.cfws();
            if !name.is_empty() && lx.eat(b':') {
                out.push(Addr::GroupStart(name));
                loop {
                    lx.cfws();
                    match lx.peek() {
                        None => break,
                        Some(b';') => {
                            lx.i += 1;
                            break;
                        }
                        Some(b',') => {
                            lx.i += 1;
                            continue;
                        }
                        _ => {}
                    }
                    let before = lx.i;
                    let ok = mailbox(&mut lx, &mut out);
                    lx.cfws();
                    if !ok || lx.i == before || !matches!(lx.peek(), Some(b',' | b';') | None) {
                        // Skip what cannot be read up to the end of the group.
                        while !matches!(lx.peek(), Some(b';') | None) {
                            lx.i += 1;
                        }
                    }
                }
                out.push(Addr::GroupEnd);
                lx.cfws();
                if !lx.eat(b',') {
                    break;
                }
                continue;
            }
        }
        lx.i = start;
        lx.comment = None;
        mailbox(&mut lx, &mut out);
        lx.cfws();
        if !lx.eat(b',') {
            break;
        }
    }
    out
}

/// mailbox = name-addr / addr-spec; pushes one entry. `false` when it was malformed.
fn mailbox(lx: &mut Lexer<'_>, out: &mut Vec<Addr>) -> bool {
    let start = lx.i;
    let name;
    let mut adl = None;
    let mut ok = true;
    let phrase = lx.phrase();
    lx.cfws();
    let (mailbox, host) = if phrase.is_ok() && lx.peek() == Some(b'<') {
        // name-addr = [display-name] "<" [obs-route] addr-spec ">"
        name = phrase.ok().filter(|p| !p.is_empty());
        lx.i += 1;
        lx.cfws();
        if lx.peek() == Some(b'@') {
            // obs-route = obs-domain-list ":"
            let r0 = lx.i;
            while !matches!(lx.peek(), Some(b':' | b'>') | None) {
                lx.i += 1;
            }
            let route: Vec<u8> = lx.s[r0..lx.i]
                .iter()
                .copied()
                .filter(|b| !b" \t\r\n".contains(b))
                .collect();
            if lx.eat(b':') {
                adl = Some(route);
            } else {
                ok = false;
            }
        }
        let local = lx.local_part().unwrap_or_else(|_| {
            ok = false;
            Vec::new()
        });
        let mut host = if lx.eat(b'@') { lx.domain() } else { None };
        lx.cfws();
        if !lx.eat(b'>') {
            // An unclosed angle address: its parts may be wrong, say so (Dovecot's marker).
            ok = false;
            if !local.is_empty() && host.as_ref().is_some_and(|h| !h.is_empty()) {
                host = Some(b"SYNTAX_ERROR".to_vec());
            }
        }
        (local, host)
    } else {
        // addr-spec, its name from a comment after it.
        lx.i = start;
        lx.comment = None;
        let local = lx.local_part().unwrap_or_else(|_| {
            ok = false;
            Vec::new()
        });
        let host = if ok && lx.eat(b'@') {
            lx.domain()
        } else {
            None
        };
        name = lx.comment.take().filter(|c| !c.is_empty());
        (local, host)
    };
    let ok = ok && !mailbox.is_empty() && host.as_ref().is_some_and(|h| !h.is_empty());
    out.push(Addr::Mailbox {
        name,
        adl,
        mailbox: if mailbox.is_empty() {
            MISSING_MAILBOX.to_vec()
        } else {
            mailbox
        },
        host: host
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| MISSING_DOMAIN.to_vec()),
    });
    ok
}

/// Navigates to a part by section number (RFC 3501 §6.4.5, RFC 9051 §6.4.5): in a message
/// (the top level, or the message a message/rfc822 part encapsulates) a multipart body's
/// parts are numbered from 1, and a non-multipart body is part 1; a multipart part numbers
/// its parts, a message/rfc822 part numbers the parts of the message it encapsulates.
pub fn part_at<'a>(root: &'a Part, path: &[u32]) -> Option<&'a Part> {
    let Some((&first, rest)) = path.split_first() else {
        return Some(root);
    };
    let mut p = in_message(root, first as usize)?;
    for &n in rest {
        let n = n as usize;
        p = if !p.children.is_empty() {
            p.children.get(n.checked_sub(1)?)?
        } else if let Some(m) = &p.message {
            in_message(m, n)?
        } else {
            return None;
        };
    }
    Some(p)
}

/// Part `n` of a message entity.
fn in_message(m: &Part, n: usize) -> Option<&Part> {
    if !m.children.is_empty() {
        m.children.get(n.checked_sub(1)?)
    } else {
        (n == 1).then_some(m)
    }
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
pub(crate) fn filter_header(hdr: &[u8], names: &[String], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, r) in fields(hdr) {
        if names.contains(&name) != not {
            out.extend_from_slice(&hdr[r]);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// An unknown Content-Transfer-Encoding (RFC 3516 `[UNKNOWN-CTE]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownCte;

/// Decoded content of a part for `BINARY[...]` (RFC 3516); `Err` for an unknown encoding.
pub fn decoded(data: &[u8], part: &Part) -> Result<Vec<u8>, UnknownCte> {
    let body = &data[part.body.clone()];
    let cte = transfer_encoding(&data[part.header.clone()]);
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
        string(out, v.as_bytes());
    }
    out.push(b')');
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
    if p.ctype == "text"
        && !params
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("charset"))
    {
        params.insert(0, ("charset".into(), "us-ascii".into()));
    }
    write_params(out, &params);
    for h in ["content-id", "content-description"] {
        out.push(b' ');
        nstring(out, raw_value(hdr, h).map(clean).as_deref());
    }
    out.push(b' ');
    let cte = transfer_encoding(hdr).to_ascii_uppercase();
    string(out, if cte.is_empty() { "7BIT" } else { &cte }.as_bytes());
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
        nstring(out, raw_value(hdr, "content-md5").map(clean).as_deref());
        out.push(b' ');
        write_ext(out, hdr);
    }
    out.push(b')');
}

/// body-fld-dsp SP body-fld-lang SP body-fld-loc (RFC 3501 §7.4.2): the disposition with its
/// parameters; Content-Language (RFC 3282 §2) as a list of its language tags.
fn write_ext(out: &mut Vec<u8>, hdr: &[u8]) {
    match disposition(hdr) {
        Some((kind, params)) => {
            out.push(b'(');
            string(out, kind.to_ascii_uppercase().as_bytes());
            out.push(b' ');
            write_params(out, &params);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    let langs: Vec<Vec<u8>> = raw_value(hdr, "content-language")
        .map(|v| {
            let mut lx = Lexer::new(v);
            let mut tags = Vec::new();
            loop {
                lx.cfws();
                // An empty element ends the list (as Dovecot reads it).
                let Some(t) = lx.token() else { break };
                tags.push(t);
                lx.cfws();
                if !lx.eat(b',') {
                    break;
                }
            }
            tags
        })
        .unwrap_or_default();
    if langs.is_empty() {
        out.extend_from_slice(b"NIL");
    } else {
        out.push(b'(');
        for (i, l) in langs.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            string(out, l);
        }
        out.push(b')');
    }
    out.push(b' ');
    nstring(
        out,
        raw_value(hdr, "content-location").map(clean).as_deref(),
    );
}

fn write_addresses(out: &mut Vec<u8>, list: &[Addr]) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for a in list {
        match a {
            Addr::Mailbox {
                name,
                adl,
                mailbox,
                host,
            } => {
                out.push(b'(');
                nstring(out, name.as_deref());
                out.push(b' ');
                nstring(out, adl.as_deref());
                out.push(b' ');
                string(out, mailbox);
                out.push(b' ');
                string(out, host);
                out.push(b')');
            }
            Addr::GroupStart(name) => {
                out.extend_from_slice(b"(NIL NIL ");
                string(out, name);
                out.extend_from_slice(b" NIL)");
            }
            Addr::GroupEnd => out.extend_from_slice(b"(NIL NIL NIL NIL)"),
        }
    }
    out.push(b')');
}

/// A field's text as ENVELOPE and BODYSTRUCTURE show it: unfolded (RFC 5322 §2.2.3: CR and
/// LF removed, the white space kept), the blanks before the text on the field's first line
/// skipped; RFC 2047 words are left encoded (RFC 3501 §7.4.2: the client decodes them). What
/// Dovecot shows.
fn clean(v: &[u8]) -> Vec<u8> {
    let start = v
        .iter()
        .position(|b| !b" \t".contains(b))
        .unwrap_or(v.len());
    v[start..]
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect()
}

/// The ENVELOPE subject: unfolded, each run of white space one space, none at the ends (as
/// Dovecot shows it, for display).
fn for_humans(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    for w in v
        .split(|b| b" \t\r\n".contains(b))
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(w);
    }
    out
}

/// Writes the ENVELOPE of a message header (RFC 3501 §7.4.2, RFC 9051 §7.5.2). Fields that
/// RFC 5322 §3.6 allows once but a message repeats: the last one of an unstructured field,
/// the addresses of all of them, as Dovecot shows them. Sender and Reply-To default to From.
pub fn envelope(out: &mut Vec<u8>, hdr: &[u8]) {
    let mut date = None;
    let mut subject = None;
    let mut in_reply_to = None;
    let mut message_id = None;
    let mut addrs: [Vec<Addr>; 6] = Default::default();
    for (name, r) in fields(hdr) {
        let slot = match name.as_str() {
            "date" => &mut date,
            "subject" => &mut subject,
            "in-reply-to" => &mut in_reply_to,
            "message-id" => &mut message_id,
            _ => {
                let i = match name.as_str() {
                    "from" => 0,
                    "sender" => 1,
                    "reply-to" => 2,
                    "to" => 3,
                    "cc" => 4,
                    "bcc" => 5,
                    _ => continue,
                };
                let raw = &hdr[r];
                let colon = raw.iter().position(|&b| b == b':').unwrap_or(0);
                addrs[i].extend(address_list(&raw[colon + 1..]));
                continue;
            }
        };
        let raw = &hdr[r];
        let colon = raw.iter().position(|&b| b == b':').unwrap_or(0);
        let text = &raw[colon + 1..];
        *slot = Some(if name == "subject" {
            for_humans(text)
        } else {
            clean(text)
        });
    }
    out.push(b'(');
    nstring(out, date.as_deref());
    out.push(b' ');
    nstring(out, subject.as_deref());
    for i in 0..6 {
        out.push(b' ');
        let list = if (i == 1 || i == 2) && addrs[i].is_empty() {
            &addrs[0]
        } else {
            &addrs[i]
        };
        write_addresses(out, list);
    }
    out.push(b' ');
    nstring(out, in_reply_to.as_deref());
    out.push(b' ');
    nstring(out, message_id.as_deref());
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
pub(crate) fn decode_words(v: &str) -> String {
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

#[cfg(test)]
mod conformance {
    //! The classes of difference the Dovecot differential test (tests/corpus) found.
    use super::*;

    fn env(hdr: &[u8]) -> String {
        let mut out = Vec::new();
        envelope(&mut out, hdr);
        String::from_utf8(out).unwrap()
    }

    fn bs(m: &[u8]) -> String {
        let mut out = Vec::new();
        body_structure(&mut out, m, &parse(m), true);
        String::from_utf8(out).unwrap()
    }

    fn sec(m: &[u8], path: &[u32], text: SectionText) -> Option<String> {
        section_bytes(m, &parse(m), path, &text).map(|b| String::from_utf8(b).unwrap())
    }

    const INNER: &str = "From: mid@x\r\nSubject: middle\r\nContent-Type: multipart/mixed; boundary=I\r\n\r\n--I\r\n\r\nmiddle text\r\n--I\r\nContent-Type: message/rfc822\r\n\r\nSubject: deep\r\n\r\ndeep text\r\n--I--\r\n";

    #[test]
    fn raw_value_agrees_with_fields() {
        let h = b" odd: first\r\nA: 1\r\n 2\r\nno colon\r\nB : x\r\n\ty\r\nA: again\r\n\r\nC: body";
        for name in ["a", "b", "odd", "c", "none"] {
            let via_fields = fields(h)
                .into_iter()
                .find(|(n, _)| n == name)
                .map(|(_, r)| {
                    let raw = &h[r];
                    let c = raw.iter().position(|&b| b == b':').unwrap();
                    raw[c + 1..].to_vec()
                });
            assert_eq!(raw_value(h, name).map(<[u8]>::to_vec), via_fields, "{name}");
        }
        assert_eq!(header_value(h, "b").unwrap(), b"x\ty");
    }

    #[test]
    fn rfc822_section_numbers() {
        // RFC 3501 §6.4.5: a non-multipart message is part 1; a message/rfc822 part numbers
        // the parts of the message it encapsulates.
        let top = format!("Subject: top\r\nContent-Type: message/rfc822\r\n\r\n{INNER}");
        let m = top.as_bytes();
        assert_eq!(sec(m, &[1], SectionText::Full).unwrap(), INNER);
        assert!(sec(m, &[1], SectionText::Mime)
            .unwrap()
            .starts_with("Subject: top"));
        assert!(sec(m, &[1], SectionText::Header)
            .unwrap()
            .starts_with("From: mid@x"));
        assert_eq!(sec(m, &[1, 1], SectionText::Full).unwrap(), "middle text");
        assert_eq!(sec(m, &[1, 2, 1], SectionText::Full).unwrap(), "deep text");
        assert_eq!(
            sec(m, &[1, 2], SectionText::Header).unwrap(),
            "Subject: deep\r\n\r\n"
        );
        assert_eq!(
            sec(m, &[1, 2, 1], SectionText::Mime).unwrap(),
            "Subject: deep\r\n\r\n"
        );
        assert!(sec(m, &[1, 3], SectionText::Full).is_none());
        assert!(sec(m, &[1, 1, 1], SectionText::Full).is_none());
        // message/rfc822 inside a multipart inside a message/rfc822.
        let nested = format!(
            "Content-Type: multipart/mixed; boundary=T\r\n\r\n--T\r\nContent-Type: message/rfc822\r\n\r\n{INNER}\r\n--T--\r\n"
        );
        let m = nested.as_bytes();
        assert_eq!(sec(m, &[1, 2, 1], SectionText::Full).unwrap(), "deep text");
        assert_eq!(
            sec(m, &[1, 2, 1], SectionText::Mime).unwrap(),
            "Subject: deep\r\n\r\n"
        );
        assert_eq!(sec(m, &[1, 1], SectionText::Full).unwrap(), "middle text");
    }

    #[test]
    fn digest_parts_default_to_messages() {
        // RFC 2046 §5.1.5: in a multipart/digest a part without Content-Type is message/rfc822.
        let m = b"Content-Type: multipart/digest; boundary=D\r\n\r\n--D\r\n\r\nSubject: one\r\n\r\nbody one\r\n--D\r\nContent-Type: text/plain\r\n\r\nplain\r\n--D--\r\n";
        let s = bs(m);
        assert!(
            s.starts_with("((\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 24 (NIL \"one\""),
            "{s}"
        );
        assert_eq!(sec(m, &[1, 1], SectionText::Full).unwrap(), "body one");
        assert_eq!(
            sec(m, &[1], SectionText::Header).unwrap(),
            "Subject: one\r\n\r\n"
        );
        assert_eq!(sec(m, &[2], SectionText::Full).unwrap(), "plain");
    }

    #[test]
    fn message_parts_always_have_envelope_and_body() {
        // RFC 3501 §7.4.2 body-type-msg: envelope, body and lines are not optional, also for
        // an empty or encoded message/rfc822.
        let m = b"Content-Type: multipart/mixed; boundary=Z\r\n\r\n--Z\r\nContent-Type: message/rfc822\r\n\r\n\r\n--Z\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogeA0KDQp4DQo=\r\n--Z--\r\n";
        let s = bs(m);
        assert!(s.starts_with("((\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 0 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) (\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 0 0 NIL NIL NIL NIL) 0 NIL NIL NIL NIL)"), "{s}");
        assert!(s.contains("\"BASE64\" 24 (NIL NIL"), "{s}");
    }

    #[test]
    fn multipart_without_delimiters_has_one_empty_part() {
        // RFC 2046 §5.1.1: with no delimiter line everything is preamble.
        let m = b"Content-Type: multipart/mixed; boundary=NONE\r\n\r\nno boundary ever\r\n";
        assert_eq!(sec(m, &[1], SectionText::Full).unwrap(), "");
        assert!(bs(m).starts_with(
            "((\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 0 0 NIL NIL NIL NIL) \"MIXED\""
        ));
    }

    #[test]
    fn envelope_groups_and_broken_addresses() {
        // RFC 3501 §7.4.2: group start (NIL NIL "name" NIL), group end (NIL NIL NIL NIL).
        let e = env(b"To: undisclosed-recipients:;\r\nCc: team: a@x.test, \"B\" <b@y.test>;, c@z.test\r\n\r\n");
        assert!(
            e.contains("((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL))"),
            "{e}"
        );
        assert!(e.contains("((NIL NIL \"team\" NIL)(NIL NIL \"a\" \"x.test\")(\"B\" NIL \"b\" \"y.test\")(NIL NIL NIL NIL)(NIL NIL \"c\" \"z.test\"))"), "{e}");
        // Broken addresses are shown, marked, not dropped.
        let e = env(b"From: <>\r\nCc: a@, @b, plainword, <c@d>, , \"q\" <>\r\nSender: a b c <d@e> f\r\n\r\n");
        assert!(
            e.contains("((NIL NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\"))"),
            "{e}"
        );
        assert!(e.contains("((\"a b c\" NIL \"d\" \"e\"))"), "{e}");
        assert!(e.contains("((NIL NIL \"a\" \"MISSING_DOMAIN\")(NIL NIL \"MISSING_MAILBOX\" \"b\")(NIL NIL \"plainword\" \"MISSING_DOMAIN\")(NIL NIL \"c\" \"d\")(NIL NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")(\"q\" NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\"))"), "{e}");
        let unclosed = env(b"To: Name <open@x.test\r\n\r\n");
        assert!(
            unclosed.contains("((\"Name\" NIL \"open\" \"SYNTAX_ERROR\"))"),
            "{unclosed}"
        );
        // Source route, domain literal, comment as name, quoted-pair.
        let e = env(b"From: \"R\" <@relay.test:user@example.org>\r\nTo: a@[127.0.0.1], x@y.test (X Y), \"x\\\"y\" <xy@z>\r\n\r\n");
        assert!(
            e.contains("((\"R\" \"@relay.test\" \"user\" \"example.org\"))"),
            "{e}"
        );
        assert!(e.contains("((NIL NIL \"a\" \"[127.0.0.1]\")(\"X Y\" NIL \"x\" \"y.test\")(\"x\\\"y\" NIL \"xy\" \"z\"))"), "{e}");
    }

    #[test]
    fn envelope_strings_are_raw() {
        // RFC 3501 §7.4.2: names and subject as in the header (encoded words are decoded by
        // the client), unfolded; the last of repeated unstructured fields.
        let e = env("From: =?iso-8859-1?q?J=FCrgen?= <j@x>\r\nTo: J\u{fc}rgen <j@x>\r\nSubject: a\r\n\tb \r\nSubject: second\r\nMessage-ID:  <m@x>  \r\n\r\n".as_bytes());
        assert!(
            e.contains("((\"=?iso-8859-1?q?J=FCrgen?=\" NIL \"j\" \"x\"))"),
            "{e}"
        );
        assert!(e.contains("(({7}\r\nJ\u{fc}rgen NIL \"j\" \"x\"))"), "{e}");
        assert!(e.starts_with("(NIL \"second\""), "{e}");
        assert!(e.ends_with("NIL \"<m@x>  \")"), "{e}");
        let e = env(b"Subject:  a \r\n\tb\t c \r\nDate: a\r\n\tb \r\n\r\n");
        assert!(e.starts_with("(\"a\tb \" \"a b c\""), "{e}");
        let e = env(b"In-Reply-To:\r\n <r@x>\r\n\r\n");
        assert!(e.ends_with(" \" <r@x>\" NIL)"), "{e}");
    }

    #[test]
    fn parameters_and_extension_data() {
        // RFC 2231 §3: continuations joined, still encoded; RFC 2047 words left alone.
        let m = b"Content-Type: application/pdf; name*0*=UTF-8''%E2%82%AC%20a; name*1*=%20b; name*2=\".pdf\"; x=\"=?utf-8?q?a?=\"\r\nContent-Disposition: attachment; filename*=UTF-8''%E2%82%AC.pdf\r\nContent-Language: en, de\r\nContent-Type: text/html\r\n\r\nx";
        let s = bs(m);
        assert!(s.starts_with("(\"APPLICATION\" \"PDF\" (\"x\" \"=?utf-8?q?a?=\" \"name*\" \"UTF-8''%E2%82%AC%20a%20b.pdf\")"), "{s}");
        assert!(
            s.ends_with(
                "(\"ATTACHMENT\" (\"filename*\" \"UTF-8''%E2%82%AC.pdf\")) (\"en\" \"de\") NIL)"
            ),
            "{s}"
        );
        // Non-extended continuations keep the plain name; an empty value stays empty.
        let m = b"Content-Type: text/plain; name*1=\"second\"; name*0=\"first-\"; charset=\r\nContent-Language: fr\r\n\r\nx";
        let s = bs(m);
        assert!(
            s.starts_with("(\"TEXT\" \"PLAIN\" (\"charset\" \"\" \"name\" \"first-second\")"),
            "{s}"
        );
        assert!(s.ends_with(" NIL NIL (\"fr\") NIL)"), "{s}");
        // The encoding is a token (comments ignored); body-fld-id/desc/md5/loc are the
        // unfolded field text, trailing blanks kept as Dovecot shows them.
        let m = b"Content-Type: text/plain\r\nContent-Transfer-Encoding: Base64 (c)\r\nContent-Description: a\r\n b \r\nContent-MD5: Q2 \r\n\r\neA==";
        let s = bs(m);
        assert!(s.contains("NIL \"a b \" \"BASE64\" 4 0 \"Q2 \" NIL"), "{s}");
        let root = parse(m);
        assert_eq!(decoded(m, &root).unwrap(), b"x");
        // Without a section 0 nothing is joined; an empty language ends the list.
        let m = b"Content-Type: a/b; name*1=\"two\"; name*2=\"three\"\r\nContent-Language: en ,, fr\r\n\r\nx";
        let s = bs(m);
        assert!(
            s.starts_with("(\"A\" \"B\" (\"name*1\" \"two\" \"name*2\" \"three\")"),
            "{s}"
        );
        assert!(s.ends_with(" NIL NIL (\"en\") NIL)"), "{s}");
    }
}

/// Property tests of RFC 2047 decoding. The server has no encoder (it only reads encoded words),
/// so the tests encode, as RFC 2047 §4 and §5 describe, and check that the decoding that SEARCH,
/// SORT and THREAD use gives the text back.
#[cfg(test)]
mod rfc2047_proptests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 2047 §4.2 "Q": letters and digits as they are, space as "_", the rest "=XX".
    fn q(bytes: &[u8]) -> String {
        bytes
            .iter()
            .map(|&b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
                b' ' => "_".to_string(),
                _ => format!("={b:02X}"),
            })
            .collect()
    }

    /// `text` as encoded words of at most ~60 octets each (§2: at most 75), split on character
    /// boundaries (§5 (3)), in `charset` (UTF-8, or ISO-8859-1 for text it can hold), B or Q per
    /// word as `kinds` says, separated by linear white space (§6.2: ignored between words).
    fn encode_words(text: &str, latin1: bool, kinds: &[bool]) -> String {
        let charset = if latin1 { "iso-8859-1" } else { "utf-8" };
        let bytes_of = |s: &str| -> Vec<u8> {
            if latin1 {
                s.chars().map(|c| c as u32 as u8).collect()
            } else {
                s.as_bytes().to_vec()
            }
        };
        let mut words = Vec::new();
        let mut chunk = String::new();
        for c in text.chars() {
            chunk.push(c);
            if bytes_of(&chunk).len() >= 15 {
                words.push(std::mem::take(&mut chunk));
            }
        }
        if !chunk.is_empty() {
            words.push(chunk);
        }
        let engine = base64::engine::general_purpose::STANDARD;
        words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let b = bytes_of(w);
                if kinds[i % kinds.len()] {
                    format!("=?{charset}?B?{}?=", engine.encode(&b))
                } else {
                    format!("=?{charset}?q?{}?=", q(&b))
                }
            })
            .collect::<Vec<_>>()
            .join(if kinds[0] { " " } else { "\t " })
    }

    fn text() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 àéïöüßÀÉ€日本語😀.,:;!?'\"()=_<>@-]{1,50}".prop_filter(
            "surrounding white space is not part of a header value",
            |s| s.trim() == s,
        )
    }

    proptest! {
        /// UTF-8 text, encoded in B and Q words, decodes to itself (`decode_words`, and
        /// `decode_text` of SEARCH, which also checks the charset).
        #[test]
        fn utf8_words_decode_to_the_text(s in text(), kinds in proptest::collection::vec(any::<bool>(), 1..4)) {
            let encoded = encode_words(&s, false, &kinds);
            prop_assert_eq!(decode_words(&encoded), s.clone(), "{}", encoded);
            prop_assert_eq!(crate::search::decode_text(&encoded), s, "{}", encoded);
        }

        /// ISO-8859-1 words are converted from their charset.
        #[test]
        fn latin1_words_decode_to_the_text(
            s in "[a-zA-Z0-9 àéïöüßÀÉ.,;!?()=_-]{1,40}".prop_filter("trimmed", |s| s.trim() == s),
            kinds in proptest::collection::vec(any::<bool>(), 1..4),
        ) {
            let encoded = encode_words(&s, true, &kinds);
            prop_assert_eq!(decode_words(&encoded), s, "{}", encoded);
        }

        /// Ordinary text before an encoded word keeps its white space (§6.2).
        #[test]
        fn text_before_a_word_is_kept(prefix in "[A-Za-z]{1,8}:?", s in text()) {
            let encoded = format!("{prefix} {}", encode_words(&s, false, &[true]));
            prop_assert_eq!(decode_words(&encoded), format!("{prefix} {s}"), "{}", encoded);
        }
    }
}
