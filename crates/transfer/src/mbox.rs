//! mbox files: a streaming reader of the four variants and an mboxrd writer.
//!
//! Every variant is a sequence of messages, each starting with a `From ` line
//! ([`crate::asctime`]); they differ in how a body line that itself starts with `From ` is kept
//! from looking like the next message (see `mbox(5)` and
//! <https://www.loc.gov/preservation/digital/formats/fdd/fdd000383.shtml>):
//!
//! * **mboxo**: writers turn `From ` into `>From `; readers remove one `>` from `>From `.
//!   Ambiguous: a body line that was `>From ` already comes back as `From `, and nothing in
//!   the file says which it was. (Python's `mailbox.mbox` and mutt write this form.)
//! * **mboxrd**: writers add one `>` to every `>*From ` line; readers remove one from every
//!   `>+From ` line: reversible.
//! * **mboxcl**: a `Content-Length:` header gives the body's length, and `From ` lines are
//!   also quoted as in mboxo (Solaris mail, mutt's `mbox_type=mbox` with content lengths).
//! * **mboxcl2**: `Content-Length:` only; body lines are not quoted at all.
//!
//! [`Variant::Auto`] reads all of them: a message whose `Content-Length:` lands exactly on the
//! next `From ` line (or the end of the file) is cut there and not unquoted, as mboxcl2 (mutt
//! writes `Content-Length:` and leaves `From ` lines alone); any other message ends at the next
//! `From ` line with a readable date and is unquoted the mboxrd way (one `>` off `>+From `),
//! which is right for mboxrd and for mboxo except for its ambiguous lines.
//!
//! Flags, as Dovecot's mbox and mutt write them: `Status:` `R` → `\Seen`, `O` → not
//! `\Recent` (a message without `O` is new); `X-Status:` `A` `\Answered`, `F` `\Flagged`,
//! `T` `\Draft`, `D` `\Deleted`; `X-Keywords:` (space or comma separated) → keywords;
//! `Keywords:` (RFC 5322 §3.6.5, comma separated) → keywords for the items that are IMAP
//! atoms. As Dovecot does (`mbox_hide_headers`), the headers that belong to the mbox rather
//! than to the message, `Status`, `X-Status`, `X-Keywords`, `X-UID`, `X-IMAP`, `X-IMAPbase`
//! and `Content-Length`, are removed from the stored message; `Keywords:` is the author's and
//! stays.

use std::io::{self, BufRead, Write};

use crate::asctime::{self, parse_from_line};
use crate::{Error, Message, MessageFlags, Result};

/// The mbox dialect of a file (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Variant {
    /// Detected per message.
    #[default]
    Auto,
    /// `>From ` quoting, not reversible.
    Mboxo,
    /// `>+From ` quoting, reversible.
    Mboxrd,
    /// `Content-Length:` and mboxo quoting.
    Mboxcl,
    /// `Content-Length:`, no quoting.
    Mboxcl2,
}

impl std::str::FromStr for Variant {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Variant, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "auto" => Variant::Auto,
            "mboxo" => Variant::Mboxo,
            "mboxrd" => Variant::Mboxrd,
            "mboxcl" => Variant::Mboxcl,
            "mboxcl2" => Variant::Mboxcl2,
            other => {
                return Err(format!(
                    "unknown mbox variant {other:?}: use auto, mboxo, mboxrd, mboxcl or mboxcl2"
                ))
            }
        })
    }
}

impl Variant {
    fn uses_content_length(self) -> bool {
        matches!(self, Variant::Auto | Variant::Mboxcl | Variant::Mboxcl2)
    }
}

/// Headers that belong to the mbox file, not to the message (removed on import).
const MBOX_HEADERS: [&str; 7] = [
    "status",
    "x-status",
    "x-keywords",
    "x-uid",
    "x-imap",
    "x-imapbase",
    "content-length",
];

/// What the reader found next.
#[derive(Debug)]
pub enum Item {
    /// A message.
    Message {
        /// The message.
        message: Message,
        /// Byte offset of its `From ` line in the file.
        offset: u64,
    },
    /// A message that was not read, and why (it is too large).
    Skipped {
        /// Byte offset of its `From ` line in the file.
        offset: u64,
        /// Why, in plain words.
        reason: String,
    },
}

/// Reads messages one at a time from an mbox file.
///
/// Memory is bounded by the largest message read (at most `max_size` bytes plus one line); a
/// larger message is passed over without being held and reported as [`Item::Skipped`].
pub struct MboxReader<R> {
    r: R,
    variant: Variant,
    max_size: u64,
    /// Bytes consumed from `r`, plus the offset the reader started at.
    pos: u64,
    /// The next message's `From ` line and its offset, once read.
    pending: Option<(Vec<u8>, u64)>,
    started: bool,
}

impl<R: BufRead> MboxReader<R> {
    /// A reader at the start of a file.
    pub fn new(r: R, variant: Variant, max_size: u64) -> Self {
        Self::at_offset(r, variant, max_size, 0)
    }

    /// A reader whose input starts at byte `offset` of the file (a resumed import: `r` is
    /// positioned at a `From ` line the reader returned earlier).
    pub fn at_offset(r: R, variant: Variant, max_size: u64, offset: u64) -> Self {
        MboxReader {
            r,
            variant,
            max_size,
            pos: offset,
            pending: None,
            started: false,
        }
    }

    /// Byte offset of the next unread message's `From ` line (the end of the file once all is
    /// read): where a resumed reader starts.
    pub fn next_offset(&self) -> u64 {
        self.pending.as_ref().map_or(self.pos, |p| p.1)
    }

    fn read_line(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        buf.clear();
        let n = self.r.read_until(b'\n', buf)?;
        self.pos += n as u64;
        Ok(n)
    }

    /// Finds the first `From ` line (blank lines before it are allowed).
    fn start(&mut self) -> Result<()> {
        self.started = true;
        let mut line = Vec::new();
        loop {
            let at = self.pos;
            if self.read_line(&mut line).map_err(io_err)? == 0 {
                return Ok(()); // an empty file holds no messages
            }
            if is_blank(&line) {
                continue;
            }
            if asctime::is_from_line(&line) {
                self.pending = Some((line, at));
                return Ok(());
            }
            return Err(Error::Format(format!(
                "not an mbox file: the first line at byte {at} is not a \"From \" line with a date"
            )));
        }
    }

    /// The next message, `None` at the end of the file.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Result<Item>> {
        if !self.started {
            if let Err(e) = self.start() {
                return Some(Err(e));
            }
        }
        let (from, offset) = self.pending.take()?;
        Some(self.read_message(&from, offset))
    }

    fn read_message(&mut self, from: &[u8], offset: u64) -> Result<Item> {
        let parsed = parse_from_line(from);
        let crlf = from.ends_with(b"\r\n");
        let mut data: Vec<u8> = Vec::new();
        let mut oversize = false;
        let mut line = Vec::new();
        // The header section, blank line included.
        let mut at_eof = false;
        loop {
            if self.read_line(&mut line).map_err(io_err)? == 0 {
                at_eof = true;
                break;
            }
            self.keep(&mut data, &line, &mut oversize);
            if is_blank(&line) {
                break;
            }
        }
        let mut cut_by_length = false;
        if !at_eof && self.variant.uses_content_length() && !oversize {
            if let Some(len) = content_length(&data) {
                cut_by_length = self.read_counted(&mut data, len, &mut oversize)?;
            }
        }
        if !cut_by_length && self.pending.is_none() {
            // Ends at the next From line or at the end of the file.
            loop {
                let at = self.pos;
                if self.read_line(&mut line).map_err(io_err)? == 0 {
                    break;
                }
                if asctime::is_from_line(&line) {
                    self.pending = Some((std::mem::take(&mut line), at));
                    break;
                }
                self.keep(&mut data, &line, &mut oversize);
            }
            // The writer's blank line before the next message (or the end) is not the message's.
            if crlf && data.ends_with(b"\r\n\r\n") {
                data.truncate(data.len() - 2);
            } else if data.ends_with(b"\n\n") {
                data.truncate(data.len() - 1);
            }
        }
        if oversize {
            return Ok(Item::Skipped {
                offset,
                reason: format!("larger than the limit of {} bytes", self.max_size),
            });
        }
        let mut flags = MessageFlags {
            recent: true,
            ..MessageFlags::default()
        };
        let data = unquote(
            &strip_mbox_headers(&data, &mut flags),
            self.variant,
            cut_by_length,
        );
        Ok(Item::Message {
            message: Message {
                data,
                flags,
                internal_date: parsed.as_ref().map(|p| p.date),
                sender: parsed.map(|p| p.sender).filter(|s| !s.is_empty()),
                uid: None,
            },
            offset,
        })
    }

    /// Appends `line` unless the message is over the limit (then drops what it has).
    fn keep(&self, data: &mut Vec<u8>, line: &[u8], oversize: &mut bool) {
        if *oversize {
            return;
        }
        if (data.len() + line.len()) as u64 > self.max_size {
            *oversize = true;
            *data = Vec::new();
            return;
        }
        data.extend_from_slice(line);
    }

    /// Reads a body of `len` bytes and checks that the next message (or the end) follows it.
    /// Returns true if so; otherwise what was read stays in `data`, and the caller goes on
    /// looking for the next `From ` line.
    fn read_counted(&mut self, data: &mut Vec<u8>, len: u64, oversize: &mut bool) -> Result<bool> {
        if (data.len() as u64).saturating_add(len) > self.max_size {
            // Too large to hold; passed over only when the length is right (checked below).
            *oversize = true;
            *data = Vec::new();
            let n = io::copy(&mut (&mut self.r).take(len), &mut io::sink()).map_err(io_err)?;
            self.pos += n;
        } else {
            let start = data.len();
            (&mut self.r).take(len).read_to_end(data).map_err(io_err)?;
            self.pos += (data.len() - start) as u64;
        }
        let mut line = Vec::new();
        let at = self.pos;
        if self.read_line(&mut line).map_err(io_err)? == 0 {
            return Ok(true);
        }
        if asctime::is_from_line(&line) {
            self.pending = Some((line, at));
            return Ok(true);
        }
        if is_blank(&line) {
            let mut next = Vec::new();
            let at = self.pos;
            if self.read_line(&mut next).map_err(io_err)? == 0 {
                return Ok(true);
            }
            if asctime::is_from_line(&next) {
                self.pending = Some((next, at));
                return Ok(true);
            }
            self.keep(data, &line, oversize);
            self.keep(data, &next, oversize);
            return Ok(false);
        }
        self.keep(data, &line, oversize);
        Ok(false)
    }
}

use std::io::Read as _;

fn io_err(e: io::Error) -> Error {
    Error::io("mbox", e)
}

fn is_blank(line: &[u8]) -> bool {
    line == b"\n" || line == b"\r\n"
}

/// The header section's lines, each with its continuation lines: (start, end) byte ranges.
fn header_fields(data: &[u8]) -> (Vec<(usize, usize)>, usize) {
    let mut fields: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < data.len() {
        let end = data[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(data.len(), |p| i + p + 1);
        let line = &data[i..end];
        if is_blank(line) {
            return (fields, i);
        }
        match (line.first(), fields.last_mut()) {
            (Some(b' ' | b'\t'), Some(last)) => last.1 = end,
            _ => fields.push((i, end)),
        }
        i = end;
    }
    (fields, data.len())
}

fn field_name(field: &[u8]) -> &[u8] {
    let colon = field.iter().position(|&b| b == b':').unwrap_or(0);
    trim(&field[..colon])
}

fn field_value(field: &[u8]) -> String {
    let colon = field.iter().position(|&b| b == b':').map_or(0, |c| c + 1);
    String::from_utf8_lossy(&field[colon..])
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(s, |p| p + 1);
    &b[s..e]
}

/// The `Content-Length:` of a header section, if there is exactly one readable value.
fn content_length(header: &[u8]) -> Option<u64> {
    let (fields, _) = header_fields(header);
    let mut found = None;
    for (s, e) in fields {
        let f = &header[s..e];
        if field_name(f).eq_ignore_ascii_case(b"content-length") {
            if found.is_some() {
                return None;
            }
            found = Some(field_value(f).parse::<u64>().ok()?);
        }
    }
    found
}

/// Reads the flags from the mbox's status headers and removes those headers.
fn strip_mbox_headers(data: &[u8], flags: &mut MessageFlags) -> Vec<u8> {
    let (fields, _) = header_fields(data);
    let mut out = Vec::with_capacity(data.len());
    let mut pos = 0;
    for (s, e) in fields {
        let field = &data[s..e];
        let name = String::from_utf8_lossy(field_name(field)).to_ascii_lowercase();
        let value = field_value(field);
        match name.as_str() {
            "status" => {
                flags.seen |= value.contains('R');
                if value.contains('O') {
                    flags.recent = false;
                }
            }
            "x-status" => {
                flags.answered |= value.contains('A');
                flags.flagged |= value.contains('F');
                flags.draft |= value.contains('T');
                flags.deleted |= value.contains('D');
            }
            "x-keywords" => {
                for k in value.split([' ', ',']).filter(|k| !k.is_empty()) {
                    flags.add_keyword(k);
                }
            }
            "keywords" => {
                for k in value.split(',').map(str::trim) {
                    flags.add_keyword(k);
                }
            }
            _ => {}
        }
        if MBOX_HEADERS.contains(&name.as_str()) {
            out.extend_from_slice(&data[pos..s]);
            pos = e;
        }
    }
    out.extend_from_slice(&data[pos..]);
    out
}

/// Takes the `From ` quoting off, per variant (see the module documentation).
fn unquote(data: &[u8], variant: Variant, cut_by_length: bool) -> Vec<u8> {
    let rd = match variant {
        Variant::Mboxcl2 => return data.to_vec(),
        Variant::Mboxo | Variant::Mboxcl => false,
        Variant::Mboxrd => true,
        // Cut by a right Content-Length: the writer needed no quoting (mboxcl2, mutt).
        Variant::Auto if cut_by_length => return data.to_vec(),
        Variant::Auto => true,
    };
    let mut out = Vec::with_capacity(data.len());
    for line in data.split_inclusive(|&b| b == b'\n') {
        let quoted = if rd {
            let n = line.iter().take_while(|&&b| b == b'>').count();
            n > 0 && line[n..].starts_with(b"From ")
        } else {
            line.starts_with(b">From ")
        };
        out.extend_from_slice(if quoted { &line[1..] } else { line });
    }
    out
}

/// Writes an mboxrd file: a `From ` line with the envelope sender (or `MAILER-DAEMON`) and the
/// internal date, `>*From ` lines quoted with one more `>`, and `Status:` / `X-Status:` /
/// `X-Keywords:` at the end of the header section so that [`MboxReader`] gives the same flags
/// back. A message that does not end with a line end gets one.
pub struct MboxWriter<W> {
    w: W,
}

impl<W: Write> MboxWriter<W> {
    /// A writer appending to `w`.
    pub fn new(w: W) -> Self {
        MboxWriter { w }
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.w
    }

    /// Writes one message; returns the bytes written.
    pub fn write(&mut self, m: &Message) -> io::Result<u64> {
        let date = m.internal_date.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
        let mut out = Vec::with_capacity(m.data.len() + 200);
        out.extend_from_slice(asctime::from_line(m.sender.as_deref(), date).as_bytes());
        out.push(b'\n');
        let (_, body_at) = header_fields(&m.data);
        let first_line_end = m.data.iter().position(|&b| b == b'\n');
        let eol: &[u8] = match first_line_end {
            Some(p) if p > 0 && m.data[p - 1] == b'\r' => b"\r\n",
            _ => b"\n",
        };
        let (head, body) = m.data.split_at(body_at);
        quote_into(&mut out, head);
        if !head.is_empty() && !head.ends_with(b"\n") {
            out.extend_from_slice(eol);
        }
        let f = &m.flags;
        let mut status = String::new();
        if f.seen {
            status.push('R');
        }
        if !f.recent {
            status.push('O');
        }
        let mut xstatus = String::new();
        for (on, c) in [
            (f.answered, 'A'),
            (f.flagged, 'F'),
            (f.draft, 'T'),
            (f.deleted, 'D'),
        ] {
            if on {
                xstatus.push(c);
            }
        }
        for (name, value) in [
            ("Status", status),
            ("X-Status", xstatus),
            ("X-Keywords", f.keywords.join(" ")),
        ] {
            if !value.is_empty() {
                out.extend_from_slice(format!("{name}: {value}").as_bytes());
                out.extend_from_slice(eol);
            }
        }
        if body.is_empty() {
            out.extend_from_slice(eol);
        } else {
            quote_into(&mut out, body);
        }
        if !out.ends_with(b"\n") {
            out.push(b'\n');
        }
        out.push(b'\n');
        self.w.write_all(&out)?;
        Ok(out.len() as u64)
    }
}

/// mboxrd quoting: one more `>` before every `>*From ` line.
fn quote_into(out: &mut Vec<u8>, data: &[u8]) {
    for line in data.split_inclusive(|&b| b == b'\n') {
        let n = line.iter().take_while(|&&b| b == b'>').count();
        if line[n..].starts_with(b"From ") {
            out.push(b'>');
        }
        out.extend_from_slice(line);
    }
}

#[cfg(test)]
mod tests;
