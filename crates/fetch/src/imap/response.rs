//! The client side of IMAP's response syntax (RFC 9051 §7 and the formal syntax of §9): an
//! I/O-free reader that takes one whole response (with its literals) from the front of a byte
//! buffer, or says how many bytes it still needs.
//!
//! It is strict where it matters (tags, status words, literal sizes, line lengths) and lenient
//! where servers differ: any untagged response it does not know is kept as
//! [`Untagged::Other`], so a server that sends extra data anywhere does not break a session.

use std::fmt;

/// The longest run of bytes without CRLF outside literals (RFC 9051 §4.3 sets no limit; we do).
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// Hard cap on any literal, whatever the server announced.
pub(crate) const MAX_LITERAL: u64 = 200 * 1024 * 1024;

/// A value of the generic response syntax: the parts of FETCH data, LIST, codes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    /// An atom or a number (`UID`, `\Seen`, `42`).
    Atom(String),
    /// A quoted string or a literal (RFC 9051 §4.3), as bytes.
    Str(Vec<u8>),
    /// `NIL` (RFC 9051 §4.5).
    Nil,
    /// A parenthesized list (RFC 9051 §4.4).
    List(Vec<Value>),
}

impl Value {
    /// The value as a number, if it is one.
    pub(crate) fn number(&self) -> Option<u64> {
        match self {
            Value::Atom(a) if !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()) => {
                a.parse().ok()
            }
            _ => None,
        }
    }

    /// The bytes of a string, `None` for NIL (nstring, RFC 9051 §9).
    pub(crate) fn nstring(&self) -> Option<&[u8]> {
        match self {
            Value::Str(s) => Some(s),
            Value::Atom(a) => Some(a.as_bytes()),
            _ => None,
        }
    }
}

/// The status of a tagged or untagged status response (RFC 9051 §7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// `OK`.
    Ok,
    /// `NO`.
    No,
    /// `BAD`.
    Bad,
    /// `PREAUTH` (greeting only).
    PreAuth,
    /// `BYE`.
    Bye,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
            Status::PreAuth => "PREAUTH",
            Status::Bye => "BYE",
        })
    }
}

/// A response code in brackets (RFC 9051 §7.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Code {
    /// `[UIDVALIDITY n]`.
    UidValidity(u32),
    /// `[UIDNEXT n]`.
    UidNext(u32),
    /// `[CAPABILITY ...]`.
    Capability(Vec<String>),
    /// `[READ-ONLY]`, `[ALERT]`, ... with whatever follows the atom.
    Other(String),
}

/// A status response's code and human-readable text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StatusText {
    /// The status word.
    pub(crate) status: Status,
    /// The response code, if any.
    pub(crate) code: Option<Code>,
    /// The text after it.
    pub(crate) text: String,
}

impl fmt::Display for StatusText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.status)?;
        match &self.code {
            Some(Code::UidValidity(n)) => write!(f, " [UIDVALIDITY {n}]")?,
            Some(Code::UidNext(n)) => write!(f, " [UIDNEXT {n}]")?,
            Some(Code::Capability(_)) => f.write_str(" [CAPABILITY ...]")?,
            Some(Code::Other(c)) => write!(f, " [{c}]")?,
            None => {}
        }
        if !self.text.is_empty() {
            write!(f, " {}", self.text)?;
        }
        Ok(())
    }
}

/// One entry of a LIST response (RFC 9051 §7.3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ListEntry {
    /// Name attributes (`\Noselect`, `\HasChildren`, ...).
    pub(crate) attributes: Vec<String>,
    /// The hierarchy delimiter, `None` for a flat namespace.
    pub(crate) delimiter: Option<char>,
    /// The mailbox name as the server sent it (modified UTF-7 on IMAP4rev1 servers).
    pub(crate) name: String,
}

/// An untagged response (RFC 9051 §7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Untagged {
    /// `* OK|NO|BAD|PREAUTH|BYE ...` (§7.1).
    Status(StatusText),
    /// `* CAPABILITY ...` (§7.2.2).
    Capability(Vec<String>),
    /// `* LIST ...` (§7.3.1).
    List(ListEntry),
    /// `* SEARCH n n ...` (RFC 3501 §7.2.5) or `* ESEARCH ... ALL set` (RFC 9051 §7.3.4), as UIDs
    /// or numbers, expanded.
    Search(Vec<u32>),
    /// `* n EXISTS` (§7.4.1).
    Exists(u32),
    /// `* n EXPUNGE` (§7.5.1).
    Expunge(u32),
    /// `* n FETCH (...)` (§7.5.2): the attribute names (upper-cased, section included) and
    /// their values.
    Fetch(u32, Vec<(String, Value)>),
    /// Anything else (FLAGS, RECENT, ENABLED, STATUS, unknown extensions): its keyword.
    Other(String),
}

/// A complete response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Response {
    /// `tag OK|NO|BAD ...` (RFC 9051 §7.1).
    Tagged(String, StatusText),
    /// `* ...`.
    Untagged(Untagged),
    /// `+ ...` (RFC 9051 §7.6).
    Continue(String),
}

/// Why the buffer holds no complete response yet.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incomplete {
    /// A literal needs the buffer to be this long.
    Bytes(usize),
    /// The line that starts at this offset has no CRLF yet.
    Line(usize),
}

/// Parse outcome: a response and how many bytes it took, or what is missing, or an error.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// A response of this many bytes.
    Done(Response, usize),
    /// More bytes needed.
    Incomplete(Incomplete),
}

/// A syntax error or a limit, in words.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SyntaxError(pub(crate) String);

type R<T> = Result<T, Fail>;

enum Fail {
    More(Incomplete),
    Bad(String),
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    line_start: usize,
    literal_limit: u64,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> R<u8> {
        match self.buf.get(self.pos) {
            Some(b) => Ok(*b),
            None => Err(Fail::More(Incomplete::Line(self.line_start))),
        }
    }

    fn bad<T>(&self, what: &str) -> R<T> {
        let end = self.buf[self.pos..]
            .iter()
            .position(|b| *b == b'\r' || *b == b'\n')
            .map_or(self.buf.len(), |i| self.pos + i);
        let near = String::from_utf8_lossy(&self.buf[self.pos..end.min(self.pos + 40)]);
        Err(Fail::Bad(format!("{what} at {near:?}")))
    }

    fn expect(&mut self, b: u8) -> R<()> {
        if self.peek()? == b {
            self.pos += 1;
            Ok(())
        } else {
            self.bad(&format!("expected {:?}", b as char))
        }
    }

    fn eat(&mut self, b: u8) -> R<bool> {
        if self.peek()? == b {
            self.pos += 1;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn crlf(&mut self) -> R<()> {
        // Some servers end lines with a bare LF; accept it (robustness), require it at least.
        self.eat(b'\r')?;
        self.expect(b'\n')
    }

    /// An atom: any ATOM-CHAR, plus `\` (flags), `]`-free; RFC 9051 §9 `atom` / `flag`.
    fn atom(&mut self) -> R<String> {
        let start = self.pos;
        while is_atom_char(self.peek()?) {
            self.pos += 1;
        }
        if self.pos == start {
            return self.bad("expected an atom");
        }
        Ok(String::from_utf8_lossy(&self.buf[start..self.pos]).into_owned())
    }

    /// The rest of the line as text (resp-text), CRLF consumed.
    fn text(&mut self) -> R<String> {
        let start = self.pos;
        loop {
            match self.peek()? {
                b'\r' | b'\n' => break,
                _ => self.pos += 1,
            }
        }
        let text = String::from_utf8_lossy(&self.buf[start..self.pos]).into_owned();
        self.crlf()?;
        Ok(text)
    }

    fn quoted(&mut self) -> R<Vec<u8>> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.peek()? {
                b'"' => {
                    self.pos += 1;
                    return Ok(out);
                }
                b'\\' => {
                    self.pos += 1;
                    let c = self.peek()?;
                    if c != b'\\' && c != b'"' {
                        return self.bad("bad escape in a quoted string");
                    }
                    out.push(c);
                    self.pos += 1;
                }
                b'\r' | b'\n' => return self.bad("line break in a quoted string"),
                c => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// `{n}` or `{n+}` CRLF and n bytes (RFC 9051 §4.3; `~{n}` literal8 too).
    fn literal(&mut self) -> R<Vec<u8>> {
        self.eat(b'~')?;
        self.expect(b'{')?;
        let start = self.pos;
        while self.peek()?.is_ascii_digit() {
            self.pos += 1;
        }
        let digits = std::str::from_utf8(&self.buf[start..self.pos]).unwrap_or("");
        if digits.is_empty() || digits.len() > 12 {
            return self.bad("bad literal length");
        }
        let n: u64 = digits.parse().unwrap_or(u64::MAX);
        if n > self.literal_limit {
            return Err(Fail::Bad(format!(
                "the server announced a literal of {n} bytes, more than the {} allowed",
                self.literal_limit
            )));
        }
        self.eat(b'+')?;
        self.expect(b'}')?;
        self.crlf()?;
        let n = n as usize;
        let end = self.pos + n;
        if self.buf.len() < end {
            return Err(Fail::More(Incomplete::Bytes(end)));
        }
        let bytes = self.buf[self.pos..end].to_vec();
        self.pos = end;
        self.line_start = end;
        Ok(bytes)
    }

    fn value(&mut self) -> R<Value> {
        match self.peek()? {
            b'(' => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    if self.eat(b')')? {
                        return Ok(Value::List(items));
                    }
                    if !items.is_empty() {
                        self.expect(b' ')?;
                        // Tolerate "( a b )"-style extra spaces before the close.
                        if self.eat(b')')? {
                            return Ok(Value::List(items));
                        }
                    }
                    items.push(self.value()?);
                }
            }
            b'"' => Ok(Value::Str(self.quoted()?)),
            b'{' | b'~' => Ok(Value::Str(self.literal()?)),
            _ => {
                let a = self.atom()?;
                // A section or partial after an atom (BODY[...]<n>) inside a list value.
                let a = self.section_suffix(a)?;
                if a.eq_ignore_ascii_case("NIL") {
                    Ok(Value::Nil)
                } else {
                    Ok(Value::Atom(a))
                }
            }
        }
    }

    /// `[section]` and `<origin>` after a fetch attribute name (RFC 9051 §7.5.2).
    fn section_suffix(&mut self, mut name: String) -> R<String> {
        if self.eat(b'[')? {
            name.push('[');
            loop {
                match self.peek()? {
                    b']' => {
                        self.pos += 1;
                        break;
                    }
                    b'\r' | b'\n' => return self.bad("unclosed section"),
                    b'"' => {
                        let q = self.quoted()?;
                        name.push('"');
                        name.push_str(&String::from_utf8_lossy(&q));
                        name.push('"');
                    }
                    c => {
                        name.push(c as char);
                        self.pos += 1;
                    }
                }
            }
            name.push(']');
            if self.eat(b'<')? {
                name.push('<');
                while self.peek()?.is_ascii_digit() {
                    name.push(self.peek()? as char);
                    self.pos += 1;
                }
                self.expect(b'>')?;
                name.push('>');
            }
        }
        Ok(name)
    }

    fn number(&mut self) -> R<u32> {
        let start = self.pos;
        while self.peek()?.is_ascii_digit() {
            self.pos += 1;
        }
        std::str::from_utf8(&self.buf[start..self.pos])
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or_else(|| self.bad("expected a number"), Ok)
    }

    /// `[code] text` after a status word (RFC 9051 §7.1).
    fn status_text(&mut self, status: Status) -> R<StatusText> {
        // "OK" may be followed by CRLF right away (lenient: resp-text is required in theory).
        if !self.eat(b' ')? {
            self.crlf()?;
            return Ok(StatusText {
                status,
                code: None,
                text: String::new(),
            });
        }
        let mut code = None;
        if self.eat(b'[')? {
            let atom = self.atom()?.to_ascii_uppercase();
            let mut args = Vec::new();
            while self.eat(b' ')? {
                let start = self.pos;
                loop {
                    match self.peek()? {
                        b' ' | b']' => break,
                        b'\r' | b'\n' => return self.bad("unclosed response code"),
                        _ => self.pos += 1,
                    }
                }
                args.push(String::from_utf8_lossy(&self.buf[start..self.pos]).into_owned());
            }
            self.expect(b']')?;
            code = Some(match atom.as_str() {
                "UIDVALIDITY" | "UIDNEXT" => {
                    let n = args
                        .first()
                        .and_then(|a| a.parse::<u32>().ok())
                        .filter(|n| *n > 0);
                    match (atom.as_str(), n) {
                        ("UIDVALIDITY", Some(n)) => Code::UidValidity(n),
                        ("UIDNEXT", Some(n)) => Code::UidNext(n),
                        _ => {
                            return Err(Fail::Bad(format!(
                                "bad [{atom}] code: {:?}",
                                args.join(" ")
                            )))
                        }
                    }
                }
                "CAPABILITY" => Code::Capability(args),
                _ if args.is_empty() => Code::Other(atom),
                _ => Code::Other(format!("{atom} {}", args.join(" "))),
            });
            self.eat(b' ')?;
        }
        let text = self.text()?;
        Ok(StatusText { status, code, text })
    }

    fn status_word(word: &str) -> Option<Status> {
        Some(match word.to_ascii_uppercase().as_str() {
            "OK" => Status::Ok,
            "NO" => Status::No,
            "BAD" => Status::Bad,
            "PREAUTH" => Status::PreAuth,
            "BYE" => Status::Bye,
            _ => return None,
        })
    }

    fn untagged(&mut self) -> R<Untagged> {
        if self.peek()?.is_ascii_digit() {
            let n = self.number()?;
            self.expect(b' ')?;
            let kw = self.atom()?.to_ascii_uppercase();
            return Ok(match kw.as_str() {
                "EXISTS" => {
                    self.text()?;
                    Untagged::Exists(n)
                }
                "EXPUNGE" => {
                    self.text()?;
                    Untagged::Expunge(n)
                }
                "FETCH" => {
                    self.expect(b' ')?;
                    self.expect(b'(')?;
                    let mut items = Vec::new();
                    loop {
                        if self.eat(b')')? {
                            break;
                        }
                        if !items.is_empty() {
                            self.expect(b' ')?;
                        }
                        let name = self.atom()?.to_ascii_uppercase();
                        let name = self.section_suffix(name)?;
                        self.expect(b' ')?;
                        let value = self.value()?;
                        items.push((name, value));
                    }
                    self.text()?;
                    Untagged::Fetch(n, items)
                }
                _ => {
                    self.text()?;
                    Untagged::Other(kw)
                }
            });
        }
        let kw = self.atom()?;
        if let Some(status) = Cursor::status_word(&kw) {
            return Ok(Untagged::Status(self.status_text(status)?));
        }
        let kw = kw.to_ascii_uppercase();
        Ok(match kw.as_str() {
            "CAPABILITY" => {
                let mut caps = Vec::new();
                while self.eat(b' ')? {
                    if matches!(self.peek()?, b'\r' | b'\n') {
                        break;
                    }
                    caps.push(self.atom()?.to_ascii_uppercase());
                }
                self.crlf()?;
                Untagged::Capability(caps)
            }
            "LIST" => {
                self.expect(b' ')?;
                let attributes = match self.value()? {
                    Value::List(items) => items
                        .into_iter()
                        .filter_map(|v| match v {
                            Value::Atom(a) => Some(a),
                            _ => None,
                        })
                        .collect(),
                    _ => return self.bad("LIST without attributes"),
                };
                self.expect(b' ')?;
                let delimiter = match self.value()? {
                    Value::Nil => None,
                    Value::Str(s) if s.len() == 1 => Some(s[0] as char),
                    _ => return self.bad("bad LIST delimiter"),
                };
                self.expect(b' ')?;
                let name = match self.value()? {
                    Value::Str(s) => String::from_utf8_lossy(&s).into_owned(),
                    Value::Atom(a) => a,
                    _ => return self.bad("bad LIST mailbox name"),
                };
                // Extended data (RFC 5258 CHILDINFO ...) is ignored.
                self.text()?;
                Untagged::List(ListEntry {
                    attributes,
                    delimiter,
                    name,
                })
            }
            "SEARCH" => {
                let mut ids = Vec::new();
                while self.eat(b' ')? {
                    match self.peek()? {
                        b'(' => {
                            // RFC 7162 (MODSEQ n) at the end.
                            self.value()?;
                        }
                        b'\r' | b'\n' => break,
                        _ => ids.push(self.number()?),
                    }
                }
                self.crlf()?;
                Untagged::Search(ids)
            }
            "ESEARCH" => {
                // RFC 4731 / RFC 9051 §7.3.4: [(TAG "x")] [UID] *(SP name SP value).
                let mut ids = Vec::new();
                while self.eat(b' ')? {
                    if matches!(self.peek()?, b'\r' | b'\n') {
                        break;
                    }
                    let v = self.value()?;
                    if let Value::Atom(a) = &v {
                        if a.eq_ignore_ascii_case("ALL") {
                            self.expect(b' ')?;
                            let set = self.atom()?;
                            ids = expand_set(&set).map_err(Fail::Bad)?;
                        }
                    }
                }
                self.crlf()?;
                Untagged::Search(ids)
            }
            _ => {
                self.text()?;
                Untagged::Other(kw)
            }
        })
    }

    fn response(&mut self) -> R<Response> {
        match self.peek()? {
            b'*' => {
                self.pos += 1;
                self.expect(b' ')?;
                Ok(Response::Untagged(self.untagged()?))
            }
            b'+' => {
                self.pos += 1;
                self.eat(b' ')?;
                Ok(Response::Continue(self.text()?))
            }
            _ => {
                let tag = self.atom()?;
                self.expect(b' ')?;
                let word = self.atom()?;
                match Cursor::status_word(&word) {
                    Some(s @ (Status::Ok | Status::No | Status::Bad)) => {
                        Ok(Response::Tagged(tag, self.status_text(s)?))
                    }
                    _ => self.bad("a tagged response must be OK, NO or BAD"),
                }
            }
        }
    }
}

fn is_atom_char(b: u8) -> bool {
    // RFC 9051 §9: ATOM-CHAR is any CHAR except atom-specials; "]" is allowed in
    // flags/text but not here (it closes codes and sections). "\\" is allowed (flag names).
    b > 0x20
        && b < 0x7f
        && !matches!(
            b,
            b'(' | b')' | b'{' | b' ' | b'%' | b'*' | b'"' | b']' | b'[' | b'<' | b'>'
        )
}

/// Expands a sequence set of numbers (`1:3,7`) into its members (`*` is refused: servers
/// send numbers).
pub(crate) fn expand_set(set: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for part in set.split(',') {
        let bad = || format!("bad sequence set {set:?}");
        let (a, b) = match part.split_once(':') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let a: u32 = a.parse().map_err(|_| bad())?;
        let b: u32 = b.parse().map_err(|_| bad())?;
        let (lo, hi) = (a.min(b), a.max(b));
        if (hi - lo) as usize + out.len() > 10_000_000 {
            return Err(format!("sequence set {set:?} is too large"));
        }
        out.extend(lo..=hi);
    }
    Ok(out)
}

/// Parses one response from the front of `buf`; literals longer than `literal_limit` are
/// refused.
pub(crate) fn parse(buf: &[u8], literal_limit: u64) -> Result<Parsed, SyntaxError> {
    let mut c = Cursor {
        buf,
        pos: 0,
        line_start: 0,
        literal_limit: literal_limit.min(MAX_LITERAL),
    };
    match c.response() {
        Ok(r) => Ok(Parsed::Done(r, c.pos)),
        Err(Fail::More(Incomplete::Line(from))) => {
            if buf.len() - from > MAX_LINE {
                Err(SyntaxError(format!(
                    "a response line is longer than {} KiB",
                    MAX_LINE / 1024
                )))
            } else {
                Ok(Parsed::Incomplete(Incomplete::Line(from)))
            }
        }
        Err(Fail::More(m)) => Ok(Parsed::Incomplete(m)),
        Err(Fail::Bad(e)) => Err(SyntaxError(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &[u8]) -> Response {
        match parse(text, MAX_LITERAL).unwrap() {
            Parsed::Done(r, n) => {
                assert_eq!(
                    n,
                    text.len(),
                    "consumed all of {:?}",
                    String::from_utf8_lossy(text)
                );
                r
            }
            Parsed::Incomplete(m) => panic!("incomplete: {m:?}"),
        }
    }

    #[test]
    fn status_responses_with_codes() {
        assert_eq!(
            one(b"* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"),
            Response::Untagged(Untagged::Status(StatusText {
                status: Status::Ok,
                code: Some(Code::UidValidity(3857529045)),
                text: "UIDs valid".into()
            }))
        );
        match one(b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN STARTTLS] Dovecot ready.\r\n") {
            Response::Untagged(Untagged::Status(StatusText {
                code: Some(Code::Capability(c)),
                ..
            })) => assert_eq!(c, ["IMAP4rev1", "SASL-IR", "AUTH=PLAIN", "STARTTLS"]),
            r => panic!("{r:?}"),
        }
        assert_eq!(
            one(b"a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"),
            Response::Tagged(
                "a1".into(),
                StatusText {
                    status: Status::No,
                    code: Some(Code::Other("AUTHENTICATIONFAILED".into())),
                    text: "Authentication failed.".into()
                }
            )
        );
        assert_eq!(one(b"+ \r\n"), Response::Continue(String::new()));
        assert_eq!(one(b"+ idling\r\n"), Response::Continue("idling".into()));
        assert!(matches!(
            one(b"* BYE shutting down\r\n"),
            Response::Untagged(Untagged::Status(StatusText {
                status: Status::Bye,
                ..
            }))
        ));
        assert!(parse(b"a1 PREAUTH hi\r\n", MAX_LITERAL).is_err());
        assert!(parse(b"* OK [UIDVALIDITY x] hi\r\n", MAX_LITERAL).is_err());
    }

    #[test]
    fn fetch_with_literal_nested_lists_nil_and_escapes() {
        let text = b"* 12 FETCH (UID 7 RFC822.SIZE 5 FLAGS (\\Seen $Junk) BODY[] {5}\r\nab\r\nc ENVELOPE (NIL \"a \\\"q\\\" \\\\\" ((NIL NIL \"x\" \"y\")) NIL))\r\n";
        let Response::Untagged(Untagged::Fetch(12, items)) = one(text) else {
            panic!()
        };
        assert_eq!(items[0], ("UID".into(), Value::Atom("7".into())));
        assert_eq!(items[1].1.number(), Some(5));
        assert_eq!(
            items[2].1,
            Value::List(vec![
                Value::Atom("\\Seen".into()),
                Value::Atom("$Junk".into())
            ])
        );
        assert_eq!(items[3], ("BODY[]".into(), Value::Str(b"ab\r\nc".to_vec())));
        let Value::List(env) = &items[4].1 else {
            panic!()
        };
        assert_eq!(env[0], Value::Nil);
        assert_eq!(env[1], Value::Str(b"a \"q\" \\".to_vec()));
        assert_eq!(
            env[2],
            Value::List(vec![Value::List(vec![
                Value::Nil,
                Value::Nil,
                Value::Str(b"x".to_vec()),
                Value::Str(b"y".to_vec())
            ])])
        );
    }

    #[test]
    fn section_names_keep_their_field_list() {
        let text = b"* 1 FETCH (UID 3 RFC822.SIZE 10 BODY[HEADER.FIELDS (MESSAGE-ID)] {4}\r\nab\r\n BODY[]<0> NIL)\r\n";
        let Response::Untagged(Untagged::Fetch(1, items)) = one(text) else {
            panic!()
        };
        assert_eq!(items[2].0, "BODY[HEADER.FIELDS (MESSAGE-ID)]");
        assert_eq!(items[3], ("BODY[]<0>".into(), Value::Nil));
    }

    #[test]
    fn literals_split_across_reads_ask_for_exactly_what_is_missing() {
        let full = b"* 1 FETCH (BODY[] {10}\r\n0123456789)\r\n".to_vec();
        let head = full.iter().position(|b| *b == b'}').unwrap() + 3;
        for cut in 0..full.len() {
            match parse(&full[..cut], MAX_LITERAL).unwrap() {
                Parsed::Incomplete(Incomplete::Bytes(n)) => {
                    assert!(cut >= head);
                    assert_eq!(n, head + 10);
                }
                Parsed::Incomplete(Incomplete::Line(_)) => {}
                Parsed::Done(..) => panic!("done at {cut}"),
            }
        }
        assert!(matches!(
            parse(&full, MAX_LITERAL).unwrap(),
            Parsed::Done(_, n) if n == full.len()
        ));
    }

    #[test]
    fn huge_literals_and_endless_lines_are_refused() {
        let e = parse(b"* 1 FETCH (BODY[] {999999999999}\r\n", MAX_LITERAL).unwrap_err();
        assert!(e.0.contains("literal"), "{e:?}");
        let e = parse(b"* 1 FETCH (BODY[] {1001}\r\n", 1000).unwrap_err();
        assert!(e.0.contains("1001"), "{e:?}");
        let long = vec![b'x'; MAX_LINE + 10];
        let mut line = b"* OK ".to_vec();
        line.extend_from_slice(&long);
        assert!(parse(&line, MAX_LITERAL).is_err());
        line.truncate(100);
        assert!(matches!(
            parse(&line, MAX_LITERAL).unwrap(),
            Parsed::Incomplete(Incomplete::Line(0))
        ));
    }

    #[test]
    fn list_search_esearch_and_unknown_data() {
        assert_eq!(
            one(b"* LIST (\\HasNoChildren \\Noselect) \".\" \"Sent &AOk-t&AOk-\"\r\n"),
            Response::Untagged(Untagged::List(ListEntry {
                attributes: vec!["\\HasNoChildren".into(), "\\Noselect".into()],
                delimiter: Some('.'),
                name: "Sent &AOk-t&AOk-".into()
            }))
        );
        assert_eq!(
            one(b"* LIST () NIL INBOX\r\n"),
            Response::Untagged(Untagged::List(ListEntry {
                attributes: vec![],
                delimiter: None,
                name: "INBOX".into()
            }))
        );
        assert_eq!(
            one(b"* SEARCH 2 5 9\r\n"),
            Response::Untagged(Untagged::Search(vec![2, 5, 9]))
        );
        assert_eq!(
            one(b"* SEARCH\r\n"),
            Response::Untagged(Untagged::Search(vec![]))
        );
        assert_eq!(
            one(b"* ESEARCH (TAG \"a5\") UID ALL 1:3,8\r\n"),
            Response::Untagged(Untagged::Search(vec![1, 2, 3, 8]))
        );
        assert_eq!(
            one(b"* 3 EXISTS\r\n"),
            Response::Untagged(Untagged::Exists(3))
        );
        assert_eq!(
            one(b"* FLAGS (\\Answered \\Seen)\r\n"),
            Response::Untagged(Untagged::Other("FLAGS".into()))
        );
        assert_eq!(
            one(b"* 4 RECENT\r\n"),
            Response::Untagged(Untagged::Other("RECENT".into()))
        );
    }
}

/// The reader on mutated real exchanges (a cheap stand-in for the `imap_response` fuzz target
/// in every test run): no input may panic it or break the invariants `fuzz_response` checks.
#[cfg(test)]
mod mutations {
    const SEEDS: &[&[u8]] = &[
        b"* OK [CAPABILITY IMAP4rev1 SASL-IR IDLE AUTH=PLAIN] ready\r\nf1 OK [CAPABILITY IMAP4rev1 UIDPLUS] in\r\n",
        b"* 172 EXISTS\r\n* OK [UIDVALIDITY 3857529045] v\r\n* OK [UIDNEXT 4392] n\r\nA142 OK [READ-WRITE] done\r\n",
        b"* 12 FETCH (UID 4000 RFC822.SIZE 12 FLAGS (\\Seen $Junk) BODY[] {12}\r\nSubject: a\r\n)\r\n",
        b"* 13 FETCH (UID 4001 BODY[HEADER.FIELDS (MESSAGE-ID)] {6}\r\nab\r\n\r\n BODY[]<0> NIL)\r\nf9 OK done\r\n",
        b"* SEARCH 2 84 882\r\n* ESEARCH (TAG \"f3\") UID ALL 1:3,5,17:19\r\n* LIST (\\Noselect) \"/\" \"a&AOk-\"\r\n* LIST () NIL {3}\r\nA\"B\r\n+ idling\r\n",
    ];

    #[test]
    fn mutated_exchanges_never_panic() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..60_000 {
            let seed = SEEDS[round % SEEDS.len()];
            let mut data = vec![(next() % 64) as u8];
            data.extend_from_slice(seed);
            for _ in 0..1 + next() % 4 {
                let i = 1 + (next() as usize) % (data.len() - 1);
                match next() % 5 {
                    0 => data[i] = next() as u8,
                    1 => {
                        let special = b"{}()[]<>\"\\ \r\n*+0123456789~";
                        data[i] = special[(next() as usize) % special.len()];
                    }
                    2 => data.truncate(i),
                    3 => data.insert(i, b"{}\r\n 9"[(next() % 6) as usize]),
                    _ => {
                        let j = (next() as usize) % data.len();
                        data.swap(i, j);
                    }
                }
                if data.len() < 2 {
                    break;
                }
            }
            crate::imap::fuzz_response(&data);
        }
    }
}
