//! I/O-free IMAP command parser (RFC 9051 §9 formal syntax): bytes of one complete command
//! (literals inlined as `{n}\r\n<n octets>`) in, a [`Command`] out. Never panics on input.

use std::fmt;

/// Why a command could not be parsed (answered with `BAD`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(msg.into()))
}

/// One number of a sequence set: a number or `*` (RFC 9051 §9 `seq-number`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqNum {
    /// A message sequence number or UID.
    Num(u32),
    /// `*`: the largest number in use.
    Star,
    /// RFC 5182 §2.1 `$`: the saved search result (always alone in its set).
    Saved,
}

/// RFC 9051 §9 `sequence-set`, unresolved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeqSet(pub Vec<(SeqNum, SeqNum)>);

impl SeqSet {
    /// RFC 5182 §2.1: the set `$`, the saved search result.
    pub fn saved() -> SeqSet {
        SeqSet(vec![(SeqNum::Saved, SeqNum::Saved)])
    }

    /// Whether this is `$` (to be replaced by the saved result before use).
    pub fn is_saved(&self) -> bool {
        self.0
            .iter()
            .any(|&(a, b)| a == SeqNum::Saved || b == SeqNum::Saved)
    }

    /// Resolves against the largest value in use (`*`); ranges are normalised (low, high).
    /// An unreplaced `$` resolves to nothing.
    pub fn resolve(&self, largest: u32) -> Vec<(u32, u32)> {
        let v = |n: SeqNum| match n {
            SeqNum::Num(n) => n,
            SeqNum::Star => largest,
            SeqNum::Saved => 0,
        };
        self.0
            .iter()
            .filter(|&&(a, b)| a != SeqNum::Saved && b != SeqNum::Saved)
            .map(|&(a, b)| {
                let (a, b) = (v(a), v(b));
                (a.min(b), a.max(b))
            })
            .collect()
    }
}

/// A date of RFC 9051 §9 `date` as days since 1970-01-01.
pub type Day = i64;

/// RFC 9051 §6.4.4 search keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    Answered,
    Bcc(String),
    Before(Day),
    Body(String),
    Cc(String),
    Deleted,
    Draft,
    Flagged,
    From(String),
    Header(String, String),
    Keyword(String),
    Larger(u64),
    New,
    Not(Box<SearchKey>),
    Old,
    On(Day),
    Or(Box<SearchKey>, Box<SearchKey>),
    Recent,
    Seen,
    SentBefore(Day),
    SentOn(Day),
    SentSince(Day),
    Since(Day),
    Smaller(u64),
    Subject(String),
    Text(String),
    To(String),
    Uid(SeqSet),
    Unanswered,
    Undeleted,
    Undraft,
    Unflagged,
    Unkeyword(String),
    Unseen,
    Seq(SeqSet),
    And(Vec<SearchKey>),
    /// RFC 7162 §3.1.5
    Modseq(u64),
    /// RFC 5032 OLDER (seconds)
    Older(u64),
    /// RFC 5032 YOUNGER (seconds)
    Younger(u64),
    /// The whole key of a SEARCH/SORT/THREAD whose charset is not supported: the command is
    /// well-formed and is answered `NO [BADCHARSET]` (RFC 9051 §6.4.4, RFC 5256 §3).
    BadCharset(String),
}

/// Whether a charset is one search strings may be given in.
fn supported_charset(cs: &[u8]) -> bool {
    cs.eq_ignore_ascii_case(b"UTF-8") || cs.eq_ignore_ascii_case(b"US-ASCII")
}

/// RFC 4731 / RFC 9051 §6.4.4 search return options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SearchReturn {
    pub min: bool,
    pub max: bool,
    pub all: bool,
    pub count: bool,
    pub save: bool,
}

/// Part of a BODY[...] section (RFC 9051 §6.4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    Full,
    Header,
    HeaderFields(Vec<String>),
    HeaderFieldsNot(Vec<String>),
    Text,
    Mime,
}

/// A section specification: part path plus text specifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub part: Vec<u32>,
    pub text: SectionText,
}

/// RFC 9051 §6.4.5 fetch data items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAtt {
    Envelope,
    Flags,
    InternalDate,
    Rfc822Size,
    Rfc822,
    Rfc822Header,
    Rfc822Text,
    Uid,
    Body,
    BodyStructure,
    Modseq,
    BodySection {
        section: Section,
        partial: Option<(u32, u32)>,
        peek: bool,
    },
    /// RFC 3516 BINARY[...] / BINARY.PEEK
    Binary {
        part: Vec<u32>,
        partial: Option<(u32, u32)>,
        peek: bool,
    },
    /// RFC 3516 BINARY.SIZE[...]
    BinarySize(Vec<u32>),
}

/// LIST return options (RFC 5258 §3.2, RFC 5819).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListReturn {
    pub subscribed: bool,
    pub children: bool,
    pub special_use: bool,
    pub status: Option<Vec<String>>,
}

/// LIST selection options (RFC 5258 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListSelect {
    pub subscribed: bool,
    pub remote: bool,
    pub recursive_match: bool,
    pub special_use: bool,
}

/// RFC 7162 §3.2.5 QRESYNC parameters of SELECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qresync {
    pub uidvalidity: u32,
    pub modseq: u64,
    pub known_uids: Option<SeqSet>,
}

/// A message of APPEND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    pub flags: Vec<String>,
    pub date: Option<i64>,
    pub data: Vec<u8>,
    pub binary: bool,
}

/// STORE operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    Replace,
    Add,
    Remove,
}

/// Sort criteria (RFC 5256 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Arrival,
    Cc,
    Date,
    From,
    Size,
    Subject,
    To,
    DisplayFrom,
    DisplayTo,
}

/// A parsed command body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandKind {
    Capability,
    Noop,
    Logout,
    StartTls,
    Authenticate {
        mechanism: String,
        initial: Option<Vec<u8>>,
    },
    Login {
        user: String,
        password: Vec<u8>,
    },
    Enable(Vec<String>),
    Id,
    Namespace,
    Select {
        mailbox: Vec<u8>,
        examine: bool,
        condstore: bool,
        qresync: Option<Qresync>,
    },
    Create {
        mailbox: Vec<u8>,
        special_use: Vec<String>,
    },
    Delete(Vec<u8>),
    Rename(Vec<u8>, Vec<u8>),
    Subscribe(Vec<u8>),
    Unsubscribe(Vec<u8>),
    List {
        select: ListSelect,
        reference: Vec<u8>,
        patterns: Vec<Vec<u8>>,
        ret: ListReturn,
        extended: bool,
    },
    Lsub {
        reference: Vec<u8>,
        pattern: Vec<u8>,
    },
    Status {
        mailbox: Vec<u8>,
        items: Vec<String>,
    },
    Append {
        mailbox: Vec<u8>,
        messages: Vec<AppendMessage>,
    },
    Idle,
    Check,
    Close,
    Unselect,
    Expunge {
        uids: Option<SeqSet>,
    },
    Search {
        uid: bool,
        ret: Option<SearchReturn>,
        key: SearchKey,
    },
    Fetch {
        uid: bool,
        set: SeqSet,
        atts: Vec<FetchAtt>,
        changed_since: Option<u64>,
        vanished: bool,
    },
    Store {
        uid: bool,
        set: SeqSet,
        op: StoreOp,
        silent: bool,
        flags: Vec<String>,
        unchanged_since: Option<u64>,
    },
    Copy {
        uid: bool,
        set: SeqSet,
        mailbox: Vec<u8>,
        is_move: bool,
    },
    Sort {
        uid: bool,
        criteria: Vec<(bool, SortKey)>,
        key: SearchKey,
        ret: Option<SearchReturn>,
    },
    Thread {
        uid: bool,
        references: bool,
        key: SearchKey,
    },
    GetQuota(Vec<u8>),
    GetQuotaRoot(Vec<u8>),
    SetQuota,
}

/// A complete command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub tag: String,
    pub kind: CommandKind,
}

/// Where a literal announcement ends a line (RFC 9051 §4.3, RFC 7888): `{n}`, `{n+}`, `~{n}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiteralHead {
    pub len: u64,
    pub non_sync: bool,
    /// `~{n}`: RFC 3516 `literal8`.
    pub literal8: bool,
}

/// Checks whether `line` (without its CRLF) ends with a literal announcement.
pub fn literal_at_end(line: &[u8]) -> Option<LiteralHead> {
    let line = line.strip_suffix(b"}")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    let inner = &line[open + 1..];
    let (digits, non_sync) = match inner.strip_suffix(b"+") {
        Some(d) => (d, true),
        None => (inner, false),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let len = std::str::from_utf8(digits).ok()?.parse().ok()?;
    let literal8 = open > 0 && line[open - 1] == b'~';
    Some(LiteralHead {
        len,
        non_sync,
        literal8,
    })
}

/// Extracts the tag and upper-cased command name of a (possibly partial) command line, for
/// answering errors before the whole command is read.
pub fn peek_tag_verb(line: &[u8]) -> (Option<String>, String) {
    let mut words = line.split(|&b| b == b' ');
    let tag = words
        .next()
        .filter(|t| !t.is_empty() && t.iter().all(|&b| is_tag_char(b)))
        .map(|t| String::from_utf8_lossy(t).into_owned());
    let mut verb = words
        .next()
        .map(|v| String::from_utf8_lossy(v).to_ascii_uppercase())
        .unwrap_or_default();
    if verb == "UID" {
        if let Some(v) = words.next() {
            verb = format!("UID {}", String::from_utf8_lossy(v).to_ascii_uppercase());
        }
    }
    (tag, verb.trim_end_matches(['\r', '\n']).to_string())
}

/// RFC 9051 §9 `ATOM-CHAR`: any CHAR except `atom-specials` ("(" ")" "{" SP CTL
/// list-wildcards quoted-specials resp-specials).
fn is_atom_char(b: u8) -> bool {
    b > 0x20
        && b < 0x7f
        && !matches!(
            b,
            b'(' | b')' | b'{' | b' ' | b'%' | b'*' | b'"' | b'\\' | b']'
        )
}

/// RFC 9051 §9 `ASTRING-CHAR`: `ATOM-CHAR` or `resp-specials` ("]").
fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// RFC 9051 §9 `list-char`: `ATOM-CHAR`, `list-wildcards` or `resp-specials`.
fn is_list_char(b: u8) -> bool {
    is_astring_char(b) || b == b'%' || b == b'*'
}

fn is_tag_char(b: u8) -> bool {
    is_astring_char(b) && b != b'+'
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl fmt::Debug for Cursor<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cursor@{}", self.pos)
    }
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }
    fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }
    fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, b: u8) -> Result<(), ParseError> {
        if self.eat(b) {
            Ok(())
        } else {
            err(format!("expected '{}'", b as char))
        }
    }
    fn sp(&mut self) -> Result<(), ParseError> {
        self.expect(b' ')
    }
    fn end(&mut self) -> Result<(), ParseError> {
        if self.at_end() {
            Ok(())
        } else {
            err("unexpected characters at end of command")
        }
    }
    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        &self.buf[start..self.pos]
    }
    fn atom(&mut self) -> Result<String, ParseError> {
        let a = self.take_while(is_atom_char);
        if a.is_empty() {
            return err("expected an atom");
        }
        Ok(String::from_utf8_lossy(a).into_owned())
    }
    /// An atom possibly containing `[...]` (fetch att names like BODY.PEEK).
    fn keyword(&mut self) -> Result<String, ParseError> {
        let a = self.take_while(|b| is_atom_char(b) && b != b'[' && b != b']');
        if a.is_empty() {
            return err("expected a keyword");
        }
        Ok(String::from_utf8_lossy(a).to_ascii_uppercase())
    }
    fn number(&mut self) -> Result<u64, ParseError> {
        let d = self.take_while(|b| b.is_ascii_digit());
        if d.is_empty() || d.len() > 20 {
            return err("expected a number");
        }
        std::str::from_utf8(d)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ParseError("number too large".into()))
    }
    fn number32(&mut self) -> Result<u32, ParseError> {
        u32::try_from(self.number()?).map_err(|_| ParseError("number too large".into()))
    }
    /// RFC 9051 §9 `quoted`: `QUOTED-CHAR` excludes CR, LF and NUL; only `quoted-specials`
    /// may be escaped.
    fn quoted(&mut self) -> Result<Vec<u8>, ParseError> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\r') | Some(b'\n') => return err("unterminated quoted string"),
                Some(0) => return err("NUL is not allowed in a quoted string"),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => {
                            out.push(c);
                            self.pos += 1;
                        }
                        _ => return err("bad escape in quoted string"),
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }
    /// RFC 9051 §9 `literal` (`{n}` / RFC 7888 `{n+}`) or, where `binary_ok` (APPEND data,
    /// RFC 3516 §4.4), `literal8` (`~{n}`). Returns (data, binary).
    fn literal_or_8(&mut self, binary_ok: bool) -> Result<(Vec<u8>, bool), ParseError> {
        let binary = binary_ok && self.eat(b'~');
        self.expect(b'{')?;
        let n = self.number()?;
        self.eat(b'+');
        self.expect(b'}')?;
        if !self.rest().starts_with(b"\r\n") {
            return err("literal must be followed by CRLF");
        }
        self.pos += 2;
        let n = usize::try_from(n).map_err(|_| ParseError("literal too large".into()))?;
        if self.rest().len() < n {
            return err("literal shorter than announced");
        }
        let data = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Ok((data, binary))
    }
    /// APPEND data: `literal` or `literal8`.
    fn literal(&mut self) -> Result<(Vec<u8>, bool), ParseError> {
        self.literal_or_8(true)
    }
    /// RFC 9051 §9 `string` = quoted / literal (never `literal8`).
    fn string(&mut self) -> Result<Vec<u8>, ParseError> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => Ok(self.literal_or_8(false)?.0),
            Some(b'~') if self.rest().starts_with(b"~{") => err("literal8 not allowed here"),
            _ => err("expected a string"),
        }
    }
    /// Characters accepted by `f`, refusing a `literal8` where only `string` is allowed.
    fn word(&mut self, f: impl Fn(u8) -> bool, what: &str) -> Result<Vec<u8>, ParseError> {
        if self.rest().starts_with(b"~{") {
            return err("literal8 not allowed here");
        }
        let a = self.take_while(f);
        if a.is_empty() {
            return err(format!("expected {what}"));
        }
        Ok(a.to_vec())
    }
    /// RFC 9051 §9 `astring` = 1*ASTRING-CHAR / string.
    fn astring(&mut self) -> Result<Vec<u8>, ParseError> {
        match self.peek() {
            Some(b'"') | Some(b'{') => self.string(),
            _ => self.word(is_astring_char, "an astring"),
        }
    }
    fn astring_utf8(&mut self) -> Result<String, ParseError> {
        String::from_utf8(self.astring()?).map_err(|_| ParseError("invalid UTF-8".into()))
    }
    /// RFC 9051 §9 `list-mailbox` = 1*list-char / string.
    fn list_mailbox(&mut self) -> Result<Vec<u8>, ParseError> {
        match self.peek() {
            Some(b'"') | Some(b'{') => self.string(),
            _ => self.word(is_list_char, "a mailbox pattern"),
        }
    }
    fn seq_num(&mut self) -> Result<SeqNum, ParseError> {
        if self.eat(b'*') {
            return Ok(SeqNum::Star);
        }
        let n = self.number32()?;
        if n == 0 {
            return err("sequence numbers start at 1");
        }
        Ok(SeqNum::Num(n))
    }
    /// RFC 9051 §9 `sequence-set / "$"` (RFC 5182 §3 `seq-last-command`).
    fn seq_set_or_saved(&mut self) -> Result<SeqSet, ParseError> {
        if self.eat(b'$') {
            return Ok(SeqSet::saved());
        }
        self.seq_set()
    }
    fn seq_set(&mut self) -> Result<SeqSet, ParseError> {
        let mut set = Vec::new();
        loop {
            let a = self.seq_num()?;
            let b = if self.eat(b':') { self.seq_num()? } else { a };
            set.push((a, b));
            if !self.eat(b',') {
                break;
            }
        }
        Ok(SeqSet(set))
    }
    fn flag_list(&mut self) -> Result<Vec<String>, ParseError> {
        self.expect(b'(')?;
        let mut out = Vec::new();
        while !self.eat(b')') {
            if !out.is_empty() {
                self.sp()?;
            }
            out.push(self.flag()?);
        }
        Ok(out)
    }
    fn flag(&mut self) -> Result<String, ParseError> {
        let bs = self.eat(b'\\');
        let a = self.take_while(|b| is_atom_char(b) && b != b']');
        if a.is_empty() {
            return err("expected a flag");
        }
        let mut s = String::new();
        if bs {
            s.push('\\');
        }
        s.push_str(&String::from_utf8_lossy(a));
        Ok(s)
    }
    /// Space-separated flags with or without parentheses (STORE).
    fn flags_maybe_list(&mut self) -> Result<Vec<String>, ParseError> {
        if self.peek() == Some(b'(') {
            return self.flag_list();
        }
        let mut out = vec![self.flag()?];
        while self.eat(b' ') {
            out.push(self.flag()?);
        }
        Ok(out)
    }
}

/// Parses one complete command (without the final CRLF).
pub fn parse_command(buf: &[u8]) -> Result<Command, (Option<String>, ParseError)> {
    let buf = buf
        .strip_suffix(b"\r\n")
        .or_else(|| buf.strip_suffix(b"\n"))
        .unwrap_or(buf);
    let mut c = Cursor { buf, pos: 0 };
    let tag = c.take_while(is_tag_char);
    if tag.is_empty() {
        return Err((None, ParseError("missing tag".into())));
    }
    let tag = String::from_utf8_lossy(tag).into_owned();
    let kind = (|| {
        c.sp()?;
        parse_body(&mut c)
    })();
    match kind {
        Ok(kind) => Ok(Command { tag, kind }),
        Err(e) => Err((Some(tag), e)),
    }
}

fn parse_body(c: &mut Cursor) -> Result<CommandKind, ParseError> {
    let verb = c.atom()?.to_ascii_uppercase();
    let kind = match verb.as_str() {
        "CAPABILITY" => CommandKind::Capability,
        "NOOP" => CommandKind::Noop,
        "LOGOUT" => CommandKind::Logout,
        "STARTTLS" => CommandKind::StartTls,
        "NAMESPACE" => CommandKind::Namespace,
        "IDLE" => CommandKind::Idle,
        "CHECK" => CommandKind::Check,
        "CLOSE" => CommandKind::Close,
        "UNSELECT" => CommandKind::Unselect,
        "EXPUNGE" => CommandKind::Expunge { uids: None },
        "AUTHENTICATE" => {
            c.sp()?;
            let mechanism = c.atom()?.to_ascii_uppercase();
            let initial = if c.eat(b' ') {
                let a = c.take_while(|b| {
                    b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'='
                });
                if a.is_empty() {
                    return err("expected an initial response");
                }
                Some(a.to_vec())
            } else {
                None
            };
            CommandKind::Authenticate { mechanism, initial }
        }
        "LOGIN" => {
            c.sp()?;
            let user = c.astring_utf8()?;
            c.sp()?;
            let password = c.astring()?;
            CommandKind::Login { user, password }
        }
        "ENABLE" => {
            let mut caps = Vec::new();
            while c.eat(b' ') {
                caps.push(c.atom()?.to_ascii_uppercase());
            }
            if caps.is_empty() {
                return err("ENABLE needs a capability");
            }
            CommandKind::Enable(caps)
        }
        "ID" => {
            c.sp()?;
            // RFC 2971: "(" *(string SP nstring) ")" / nil — validated loosely, then ignored.
            if c.eat(b'(') {
                let mut first = true;
                while !c.eat(b')') {
                    if !first {
                        c.sp()?;
                    }
                    first = false;
                    c.string()?;
                    c.sp()?;
                    nstring(c)?;
                }
            } else {
                let a = c.atom()?;
                if !a.eq_ignore_ascii_case("NIL") {
                    return err("ID expects a list or NIL");
                }
            }
            CommandKind::Id
        }
        "SELECT" | "EXAMINE" => {
            c.sp()?;
            let mailbox = c.astring()?;
            let (mut condstore, mut qresync) = (false, None);
            if c.eat(b' ') {
                c.expect(b'(')?;
                let mut first = true;
                while !c.eat(b')') {
                    if !first {
                        c.sp()?;
                    }
                    first = false;
                    let p = c.atom()?.to_ascii_uppercase();
                    match p.as_str() {
                        "CONDSTORE" => condstore = true,
                        "QRESYNC" => {
                            c.sp()?;
                            c.expect(b'(')?;
                            let uidvalidity = c.number32()?;
                            c.sp()?;
                            let modseq = c.number()?;
                            let mut known_uids = None;
                            if c.eat(b' ') {
                                if c.peek() != Some(b'(') {
                                    known_uids = Some(c.seq_set()?);
                                    c.eat(b' ');
                                }
                                if c.eat(b'(') {
                                    c.seq_set()?;
                                    c.sp()?;
                                    c.seq_set()?;
                                    c.expect(b')')?;
                                }
                            }
                            c.expect(b')')?;
                            qresync = Some(Qresync {
                                uidvalidity,
                                modseq,
                                known_uids,
                            });
                        }
                        _ => return err(format!("unknown SELECT parameter {p}")),
                    }
                }
            }
            CommandKind::Select {
                mailbox,
                examine: verb == "EXAMINE",
                condstore,
                qresync,
            }
        }
        "CREATE" => {
            c.sp()?;
            let mailbox = c.astring()?;
            let mut special_use = Vec::new();
            if c.eat(b' ') {
                c.expect(b'(')?;
                let p = c.atom()?.to_ascii_uppercase();
                if p != "USE" {
                    return err("unknown CREATE parameter");
                }
                c.sp()?;
                special_use = c.flag_list()?;
                c.expect(b')')?;
            }
            CommandKind::Create {
                mailbox,
                special_use,
            }
        }
        "DELETE" => {
            c.sp()?;
            CommandKind::Delete(c.astring()?)
        }
        "RENAME" => {
            c.sp()?;
            let a = c.astring()?;
            c.sp()?;
            CommandKind::Rename(a, c.astring()?)
        }
        "SUBSCRIBE" => {
            c.sp()?;
            CommandKind::Subscribe(c.astring()?)
        }
        "UNSUBSCRIBE" => {
            c.sp()?;
            CommandKind::Unsubscribe(c.astring()?)
        }
        "LIST" => parse_list(c)?,
        "LSUB" => {
            c.sp()?;
            let reference = c.astring()?;
            c.sp()?;
            let pattern = c.list_mailbox()?;
            CommandKind::Lsub { reference, pattern }
        }
        "STATUS" => {
            c.sp()?;
            let mailbox = c.astring()?;
            c.sp()?;
            CommandKind::Status {
                mailbox,
                items: status_atts(c)?,
            }
        }
        "APPEND" => parse_append(c)?,
        "SEARCH" => parse_search_cmd(c, false)?,
        "FETCH" => parse_fetch(c, false)?,
        "STORE" => parse_store(c, false)?,
        "COPY" | "MOVE" => {
            c.sp()?;
            let set = c.seq_set_or_saved()?;
            c.sp()?;
            CommandKind::Copy {
                uid: false,
                set,
                mailbox: c.astring()?,
                is_move: verb == "MOVE",
            }
        }
        "SORT" => parse_sort(c, false)?,
        "THREAD" => parse_thread(c, false)?,
        "UID" => {
            c.sp()?;
            let sub = c.atom()?.to_ascii_uppercase();
            match sub.as_str() {
                "FETCH" => parse_fetch(c, true)?,
                "SEARCH" => parse_search_cmd(c, true)?,
                "STORE" => parse_store(c, true)?,
                "COPY" | "MOVE" => {
                    c.sp()?;
                    let set = c.seq_set_or_saved()?;
                    c.sp()?;
                    CommandKind::Copy {
                        uid: true,
                        set,
                        mailbox: c.astring()?,
                        is_move: sub == "MOVE",
                    }
                }
                "EXPUNGE" => {
                    c.sp()?;
                    CommandKind::Expunge {
                        uids: Some(c.seq_set_or_saved()?),
                    }
                }
                "SORT" => parse_sort(c, true)?,
                "THREAD" => parse_thread(c, true)?,
                _ => return err(format!("unknown UID command {sub}")),
            }
        }
        "GETQUOTA" => {
            c.sp()?;
            CommandKind::GetQuota(c.astring()?)
        }
        "GETQUOTAROOT" => {
            c.sp()?;
            CommandKind::GetQuotaRoot(c.astring()?)
        }
        "SETQUOTA" => {
            c.pos = c.buf.len();
            CommandKind::SetQuota
        }
        _ => return err(format!("unknown command {verb}")),
    };
    c.end()?;
    Ok(kind)
}

/// RFC 9051 §9 / RFC 5819: "(" status-att *(SP status-att) ")", upper-cased.
fn status_atts(c: &mut Cursor) -> Result<Vec<String>, ParseError> {
    c.expect(b'(')?;
    let mut items = vec![c.atom()?.to_ascii_uppercase()];
    while !c.eat(b')') {
        c.sp()?;
        items.push(c.atom()?.to_ascii_uppercase());
    }
    Ok(items)
}

fn nstring(c: &mut Cursor) -> Result<Option<Vec<u8>>, ParseError> {
    if c.peek().is_some_and(|b| b == b'N' || b == b'n') {
        let a = c.atom()?;
        if a.eq_ignore_ascii_case("NIL") {
            return Ok(None);
        }
        return err("expected a string or NIL");
    }
    Ok(Some(c.string()?))
}

fn parse_list(c: &mut Cursor) -> Result<CommandKind, ParseError> {
    c.sp()?;
    let mut select = ListSelect::default();
    let mut extended = false;
    if c.eat(b'(') {
        extended = true;
        let mut first = true;
        while !c.eat(b')') {
            if !first {
                c.sp()?;
            }
            first = false;
            match c.atom()?.to_ascii_uppercase().as_str() {
                "SUBSCRIBED" => select.subscribed = true,
                "REMOTE" => select.remote = true,
                "RECURSIVEMATCH" => select.recursive_match = true,
                "SPECIAL-USE" => select.special_use = true,
                o => return err(format!("unknown LIST selection option {o}")),
            }
        }
        c.sp()?;
        if select.recursive_match && !select.subscribed && !select.special_use {
            return err("RECURSIVEMATCH needs another selection option");
        }
    }
    let reference = c.astring()?;
    c.sp()?;
    let mut patterns = Vec::new();
    if c.eat(b'(') {
        extended = true;
        while !c.eat(b')') {
            if !patterns.is_empty() {
                c.sp()?;
            }
            patterns.push(c.list_mailbox()?);
        }
    } else {
        patterns.push(c.list_mailbox()?);
    }
    let mut ret = ListReturn::default();
    if c.eat(b' ') {
        extended = true;
        let w = c.atom()?;
        if !w.eq_ignore_ascii_case("RETURN") {
            return err("expected RETURN");
        }
        c.sp()?;
        c.expect(b'(')?;
        let mut first = true;
        while !c.eat(b')') {
            if !first {
                c.sp()?;
            }
            first = false;
            match c.atom()?.to_ascii_uppercase().as_str() {
                "SUBSCRIBED" => ret.subscribed = true,
                "CHILDREN" => ret.children = true,
                "SPECIAL-USE" => ret.special_use = true,
                "STATUS" => {
                    c.sp()?;
                    ret.status = Some(status_atts(c)?);
                }
                o => return err(format!("unknown LIST return option {o}")),
            }
        }
    }
    Ok(CommandKind::List {
        select,
        reference,
        patterns,
        ret,
        extended,
    })
}

/// RFC 9051 §9 `date-time` "dd-Mon-yyyy hh:mm:ss +zzzz" → Unix seconds.
pub fn parse_date_time(s: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(s).ok()?.trim_start();
    let (date, rest) = s.split_once(' ')?;
    let (time, zone) = rest.split_once(' ')?;
    let day = parse_date_str(date)?;
    let mut t = time.split(':');
    let h: i64 = t.next()?.parse().ok()?;
    let m: i64 = t.next()?.parse().ok()?;
    let sec: i64 = t.next()?.parse().ok()?;
    if t.next().is_some() || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let zb = zone.as_bytes();
    if zb.len() != 5 || !(zb[0] == b'+' || zb[0] == b'-') {
        return None;
    }
    let zh: i64 = zone.get(1..3)?.parse().ok()?;
    let zm: i64 = zone.get(3..5)?.parse().ok()?;
    let off = (zh * 60 + zm) * 60 * if zb[0] == b'-' { -1 } else { 1 };
    Some(day * 86400 + h * 3600 + m * 60 + sec - off)
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// "d-Mon-yyyy" → days since epoch.
/// RFC 9051 §9: date-day = 1*2DIGIT, date-year = 4DIGIT.
pub fn parse_date_str(s: &str) -> Option<Day> {
    let mut p = s.split('-');
    let day = p.next()?.trim_start();
    let mon = p.next()?.to_ascii_lowercase();
    let year = p.next()?;
    let digits = |x: &str, n: std::ops::RangeInclusive<usize>| {
        n.contains(&x.len()) && x.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(day, 1..=2) || !digits(year, 4..=4) {
        return None;
    }
    let d: u32 = day.parse().ok()?;
    let y: i64 = year.parse().ok()?;
    if p.next().is_some() {
        return None;
    }
    let m = MONTHS.iter().position(|x| *x == mon)? as u32 + 1;
    if !(1..=31).contains(&d) || !(1..=9999).contains(&y) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// (year, month, day) of days since epoch.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Unix seconds → RFC 9051 `date-time` in UTC ("02-Jan-2006 15:04:05 +0000").
pub fn format_date_time(t: i64) -> String {
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    let mon = MONTHS[(m as usize).saturating_sub(1) % 12];
    let mut mon_c = mon.to_string();
    mon_c[..1].make_ascii_uppercase();
    format!(
        "{d:02}-{mon_c}-{y:04} {:02}:{:02}:{:02} +0000",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

fn parse_append(c: &mut Cursor) -> Result<CommandKind, ParseError> {
    c.sp()?;
    let mailbox = c.astring()?;
    let mut messages = Vec::new();
    while c.eat(b' ') {
        let mut flags = Vec::new();
        let mut date = None;
        if c.peek() == Some(b'(') {
            flags = c.flag_list()?;
            c.sp()?;
        }
        if c.peek() == Some(b'"') {
            let d = c.quoted()?;
            date = Some(parse_date_time(&d).ok_or_else(|| ParseError("bad date-time".into()))?);
            c.sp()?;
        }
        let (data, binary) = if c.peek() == Some(b'{') || c.peek() == Some(b'~') {
            c.literal()?
        } else {
            // RFC 4469 CATENATE / UTF8 (...) forms are not supported.
            let a = c.atom()?.to_ascii_uppercase();
            if a == "UTF8" {
                c.sp()?;
                c.expect(b'(')?;
                let l = c.literal()?;
                c.expect(b')')?;
                l
            } else {
                return err("expected a message literal");
            }
        };
        messages.push(AppendMessage {
            flags,
            date,
            data,
            binary,
        });
    }
    if messages.is_empty() {
        return err("APPEND needs a message");
    }
    Ok(CommandKind::Append { mailbox, messages })
}

fn parse_search_return(c: &mut Cursor) -> Result<Option<SearchReturn>, ParseError> {
    let save = c.pos;
    if c.rest().len() >= 6 && c.rest()[..6].eq_ignore_ascii_case(b"RETURN") {
        c.pos += 6;
        c.sp()?;
        c.expect(b'(')?;
        let mut r = SearchReturn::default();
        let mut first = true;
        while !c.eat(b')') {
            if !first {
                c.sp()?;
            }
            first = false;
            match c.atom()?.to_ascii_uppercase().as_str() {
                "MIN" => r.min = true,
                "MAX" => r.max = true,
                "ALL" => r.all = true,
                "COUNT" => r.count = true,
                "SAVE" => r.save = true,
                o => return err(format!("unknown search return option {o}")),
            }
        }
        if !(r.min || r.max || r.all || r.count || r.save) {
            r.all = true;
        }
        c.sp()?;
        return Ok(Some(r));
    }
    c.pos = save;
    Ok(None)
}

/// `[CHARSET SP astring SP]`: the charset if it is not supported.
fn parse_charset(c: &mut Cursor) -> Result<Option<String>, ParseError> {
    let save = c.pos;
    if c.rest().len() >= 7 && c.rest()[..7].eq_ignore_ascii_case(b"CHARSET") {
        c.pos += 7;
        c.sp()?;
        let cs = c.astring()?;
        c.sp()?;
        if !supported_charset(&cs) {
            return Ok(Some(String::from_utf8_lossy(&cs).into_owned()));
        }
        return Ok(None);
    }
    c.pos = save;
    Ok(None)
}

fn parse_search_cmd(c: &mut Cursor, uid: bool) -> Result<CommandKind, ParseError> {
    c.sp()?;
    let ret = parse_search_return(c)?;
    let bad_charset = parse_charset(c)?;
    let mut key = parse_search_keys(c)?;
    if let Some(cs) = bad_charset {
        key = SearchKey::BadCharset(cs);
    }
    Ok(CommandKind::Search { uid, ret, key })
}

/// One or more space-separated keys, ANDed.
fn parse_search_keys(c: &mut Cursor) -> Result<SearchKey, ParseError> {
    let mut keys = vec![parse_search_key(c, 0)?];
    while c.eat(b' ') {
        keys.push(parse_search_key(c, 0)?);
    }
    Ok(if keys.len() == 1 {
        keys.remove(0)
    } else {
        SearchKey::And(keys)
    })
}

fn search_string(c: &mut Cursor) -> Result<String, ParseError> {
    c.sp()?;
    Ok(String::from_utf8_lossy(&c.astring()?).into_owned())
}

fn search_date(c: &mut Cursor) -> Result<Day, ParseError> {
    c.sp()?;
    let s = if c.peek() == Some(b'"') {
        c.quoted()?
    } else {
        c.take_while(|b| b.is_ascii_alphanumeric() || b == b'-')
            .to_vec()
    };
    parse_date_str(&String::from_utf8_lossy(&s)).ok_or_else(|| ParseError("bad date".into()))
}

fn parse_search_key(c: &mut Cursor, depth: usize) -> Result<SearchKey, ParseError> {
    if depth > 50 {
        return err("search key nested too deeply");
    }
    if c.eat(b'(') {
        let mut keys = vec![parse_search_key(c, depth + 1)?];
        while c.eat(b' ') {
            keys.push(parse_search_key(c, depth + 1)?);
        }
        c.expect(b')')?;
        return Ok(if keys.len() == 1 {
            keys.remove(0)
        } else {
            SearchKey::And(keys)
        });
    }
    if c.peek()
        .is_some_and(|b| b.is_ascii_digit() || b == b'*' || b == b'$')
    {
        return Ok(SearchKey::Seq(c.seq_set_or_saved()?));
    }
    let word = c.atom()?.to_ascii_uppercase();
    use SearchKey as K;
    Ok(match word.as_str() {
        "ALL" => K::All,
        "ANSWERED" => K::Answered,
        "BCC" => K::Bcc(search_string(c)?),
        "BEFORE" => K::Before(search_date(c)?),
        "BODY" => K::Body(search_string(c)?),
        "CC" => K::Cc(search_string(c)?),
        "DELETED" => K::Deleted,
        "DRAFT" => K::Draft,
        "FLAGGED" => K::Flagged,
        "FROM" => K::From(search_string(c)?),
        "HEADER" => {
            let f = search_string(c)?;
            K::Header(f, search_string(c)?)
        }
        "KEYWORD" => {
            c.sp()?;
            K::Keyword(c.flag()?)
        }
        "LARGER" => {
            c.sp()?;
            K::Larger(c.number()?)
        }
        "NEW" => K::New,
        "NOT" => {
            c.sp()?;
            K::Not(Box::new(parse_search_key(c, depth + 1)?))
        }
        "OLD" => K::Old,
        "ON" => K::On(search_date(c)?),
        "OR" => {
            c.sp()?;
            let a = parse_search_key(c, depth + 1)?;
            c.sp()?;
            K::Or(Box::new(a), Box::new(parse_search_key(c, depth + 1)?))
        }
        "RECENT" => K::Recent,
        "SEEN" => K::Seen,
        "SENTBEFORE" => K::SentBefore(search_date(c)?),
        "SENTON" => K::SentOn(search_date(c)?),
        "SENTSINCE" => K::SentSince(search_date(c)?),
        "SINCE" => K::Since(search_date(c)?),
        "SMALLER" => {
            c.sp()?;
            K::Smaller(c.number()?)
        }
        "SUBJECT" => K::Subject(search_string(c)?),
        "TEXT" => K::Text(search_string(c)?),
        "TO" => K::To(search_string(c)?),
        "UID" => {
            c.sp()?;
            K::Uid(c.seq_set_or_saved()?)
        }
        "UNANSWERED" => K::Unanswered,
        "UNDELETED" => K::Undeleted,
        "UNDRAFT" => K::Undraft,
        "UNFLAGGED" => K::Unflagged,
        "UNKEYWORD" => {
            c.sp()?;
            K::Unkeyword(c.flag()?)
        }
        "UNSEEN" => K::Unseen,
        // RFC 5032 §3: "OLDER" / "YOUNGER" SP nz-number
        "OLDER" => {
            c.sp()?;
            K::Older(nz_number(c)?)
        }
        "YOUNGER" => {
            c.sp()?;
            K::Younger(nz_number(c)?)
        }
        "MODSEQ" => {
            c.sp()?;
            // RFC 7162 §7: search-modseq-ext = entry-name SP entry-type-req, entry-name being
            // "/flags/" attr-flag, entry-type-req "priv" / "shared" / "all".
            if c.peek() == Some(b'"') {
                let name = c.quoted()?;
                if !name.starts_with(b"/flags/") || name.len() == 7 {
                    return err("MODSEQ entry name must be \"/flags/<flag>\"");
                }
                c.sp()?;
                let t = c.atom()?.to_ascii_lowercase();
                if !matches!(t.as_str(), "priv" | "shared" | "all") {
                    return err("MODSEQ entry type must be priv, shared or all");
                }
                c.sp()?;
            }
            K::Modseq(c.number()?)
        }
        _ => return err(format!("unknown search key {word}")),
    })
}

fn nz_number(c: &mut Cursor) -> Result<u64, ParseError> {
    match c.number()? {
        0 => err("expected a number above zero"),
        n => Ok(n),
    }
}

fn section_part(c: &mut Cursor) -> Vec<u32> {
    let mut part = Vec::new();
    loop {
        let save = c.pos;
        let d = c.take_while(|b| b.is_ascii_digit());
        if d.is_empty() {
            c.pos = save;
            break;
        }
        match std::str::from_utf8(d)
            .ok()
            .and_then(|s| s.parse::<u32>().ok())
        {
            Some(n) if n > 0 => part.push(n),
            _ => {
                c.pos = save;
                break;
            }
        }
        if c.peek() == Some(b'.') && c.buf.get(c.pos + 1).is_some_and(u8::is_ascii_digit) {
            c.pos += 1;
        } else if c.peek() == Some(b'.') {
            c.pos += 1;
            break;
        } else {
            break;
        }
    }
    part
}

fn parse_section(c: &mut Cursor) -> Result<Section, ParseError> {
    c.expect(b'[')?;
    let part = section_part(c);
    let text = if c.peek() == Some(b']') {
        SectionText::Full
    } else {
        let w = c.keyword()?;
        match w.as_str() {
            "HEADER" => SectionText::Header,
            "TEXT" => SectionText::Text,
            "MIME" if !part.is_empty() => SectionText::Mime,
            "HEADER.FIELDS" | "HEADER.FIELDS.NOT" => {
                c.sp()?;
                c.expect(b'(')?;
                let mut fields = Vec::new();
                while !c.eat(b')') {
                    if !fields.is_empty() {
                        c.sp()?;
                    }
                    fields.push(String::from_utf8_lossy(&c.astring()?).to_ascii_lowercase());
                }
                if fields.is_empty() {
                    return err("empty header list");
                }
                if w == "HEADER.FIELDS" {
                    SectionText::HeaderFields(fields)
                } else {
                    SectionText::HeaderFieldsNot(fields)
                }
            }
            _ => return err(format!("bad section {w}")),
        }
    };
    c.expect(b']')?;
    Ok(Section { part, text })
}

fn parse_partial(c: &mut Cursor) -> Result<Option<(u32, u32)>, ParseError> {
    if !c.eat(b'<') {
        return Ok(None);
    }
    let start = c.number32()?;
    c.expect(b'.')?;
    let len = c.number32()?;
    if len == 0 {
        return err("partial length must be positive");
    }
    c.expect(b'>')?;
    Ok(Some((start, len)))
}

fn parse_fetch_att(c: &mut Cursor) -> Result<Vec<FetchAtt>, ParseError> {
    let w = c.keyword()?;
    use FetchAtt as F;
    Ok(match w.as_str() {
        "ALL" => vec![F::Flags, F::InternalDate, F::Rfc822Size, F::Envelope],
        "FAST" => vec![F::Flags, F::InternalDate, F::Rfc822Size],
        "FULL" => vec![
            F::Flags,
            F::InternalDate,
            F::Rfc822Size,
            F::Envelope,
            F::Body,
        ],
        "ENVELOPE" => vec![F::Envelope],
        "FLAGS" => vec![F::Flags],
        "INTERNALDATE" => vec![F::InternalDate],
        "RFC822.SIZE" => vec![F::Rfc822Size],
        "RFC822" => vec![F::Rfc822],
        "RFC822.HEADER" => vec![F::Rfc822Header],
        "RFC822.TEXT" => vec![F::Rfc822Text],
        "UID" => vec![F::Uid],
        "BODYSTRUCTURE" => vec![F::BodyStructure],
        "MODSEQ" => vec![F::Modseq],
        "BODY" | "BODY.PEEK" => {
            if c.peek() != Some(b'[') {
                if w == "BODY" {
                    return Ok(vec![F::Body]);
                }
                return err("BODY.PEEK needs a section");
            }
            let section = parse_section(c)?;
            let partial = parse_partial(c)?;
            vec![F::BodySection {
                section,
                partial,
                peek: w == "BODY.PEEK",
            }]
        }
        "BINARY" | "BINARY.PEEK" | "BINARY.SIZE" => {
            c.expect(b'[')?;
            let part = section_part(c);
            c.expect(b']')?;
            if w == "BINARY.SIZE" {
                vec![F::BinarySize(part)]
            } else {
                let partial = parse_partial(c)?;
                vec![F::Binary {
                    part,
                    partial,
                    peek: w == "BINARY.PEEK",
                }]
            }
        }
        _ => return err(format!("unknown fetch item {w}")),
    })
}

fn parse_fetch(c: &mut Cursor, uid: bool) -> Result<CommandKind, ParseError> {
    c.sp()?;
    let set = c.seq_set_or_saved()?;
    c.sp()?;
    let mut atts = Vec::new();
    if c.eat(b'(') {
        // RFC 9051 §9: "(" fetch-att *(SP fetch-att) ")"
        loop {
            atts.extend(parse_fetch_att(c)?);
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
    } else {
        atts = parse_fetch_att(c)?;
    }
    let (mut changed_since, mut vanished) = (None, false);
    if c.eat(b' ') {
        c.expect(b'(')?;
        let mut first = true;
        while !c.eat(b')') {
            if !first {
                c.sp()?;
            }
            first = false;
            match c.atom()?.to_ascii_uppercase().as_str() {
                "CHANGEDSINCE" => {
                    c.sp()?;
                    changed_since = Some(c.number()?);
                }
                "VANISHED" => vanished = true,
                o => return err(format!("unknown FETCH modifier {o}")),
            }
        }
    }
    if vanished && (!uid || changed_since.is_none()) {
        return err("VANISHED needs UID FETCH with CHANGEDSINCE");
    }
    Ok(CommandKind::Fetch {
        uid,
        set,
        atts,
        changed_since,
        vanished,
    })
}

fn parse_store(c: &mut Cursor, uid: bool) -> Result<CommandKind, ParseError> {
    c.sp()?;
    let set = c.seq_set_or_saved()?;
    c.sp()?;
    let mut unchanged_since = None;
    if c.eat(b'(') {
        let w = c.atom()?;
        if !w.eq_ignore_ascii_case("UNCHANGEDSINCE") {
            return err("unknown STORE modifier");
        }
        c.sp()?;
        unchanged_since = Some(c.number()?);
        c.expect(b')')?;
        c.sp()?;
    }
    let item = c.atom()?.to_ascii_uppercase();
    let (op, rest) = match item.as_bytes().first() {
        Some(b'+') => (StoreOp::Add, &item[1..]),
        Some(b'-') => (StoreOp::Remove, &item[1..]),
        _ => (StoreOp::Replace, item.as_str()),
    };
    let silent = match rest {
        "FLAGS" => false,
        "FLAGS.SILENT" => true,
        _ => return err("expected FLAGS, +FLAGS or -FLAGS"),
    };
    c.sp()?;
    let flags = if c.peek() == Some(b'(') && c.rest().get(1) == Some(&b')') {
        c.pos += 2;
        Vec::new()
    } else {
        c.flags_maybe_list()?
    };
    Ok(CommandKind::Store {
        uid,
        set,
        op,
        silent,
        flags,
        unchanged_since,
    })
}

fn parse_sort(c: &mut Cursor, uid: bool) -> Result<CommandKind, ParseError> {
    c.sp()?;
    let ret = parse_search_return(c)?;
    c.expect(b'(')?;
    let mut criteria = Vec::new();
    let mut reverse = false;
    while !c.eat(b')') {
        if !criteria.is_empty() || reverse {
            c.sp()?;
        }
        let w = c.atom()?.to_ascii_uppercase();
        if reverse && w == "REVERSE" {
            return err("REVERSE twice");
        }
        let k = match w.as_str() {
            "REVERSE" => {
                reverse = true;
                continue;
            }
            "ARRIVAL" => SortKey::Arrival,
            "CC" => SortKey::Cc,
            "DATE" => SortKey::Date,
            "FROM" => SortKey::From,
            "SIZE" => SortKey::Size,
            "SUBJECT" => SortKey::Subject,
            "TO" => SortKey::To,
            "DISPLAYFROM" => SortKey::DisplayFrom,
            "DISPLAYTO" => SortKey::DisplayTo,
            o => return err(format!("unknown sort key {o}")),
        };
        criteria.push((reverse, k));
        reverse = false;
    }
    // RFC 5256 §3: sort-criterion = ["REVERSE" SP] sort-key
    if criteria.is_empty() || reverse {
        return err("REVERSE needs a sort key");
    }
    c.sp()?;
    let cs = c.astring()?;
    c.sp()?;
    let mut key = parse_search_keys(c)?;
    if !supported_charset(&cs) {
        key = SearchKey::BadCharset(String::from_utf8_lossy(&cs).into_owned());
    }
    Ok(CommandKind::Sort {
        uid,
        criteria,
        key,
        ret,
    })
}

fn parse_thread(c: &mut Cursor, uid: bool) -> Result<CommandKind, ParseError> {
    c.sp()?;
    let alg = c.atom()?.to_ascii_uppercase();
    let references = match alg.as_str() {
        "REFERENCES" => true,
        "ORDEREDSUBJECT" => false,
        _ => return err("unknown THREAD algorithm"),
    };
    c.sp()?;
    let cs = c.astring()?;
    c.sp()?;
    let mut key = parse_search_keys(c)?;
    if !supported_charset(&cs) {
        key = SearchKey::BadCharset(String::from_utf8_lossy(&cs).into_owned());
    }
    Ok(CommandKind::Thread {
        uid,
        references,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> CommandKind {
        parse_command(s.as_bytes()).expect(s).kind
    }

    #[test]
    fn simple_commands() {
        assert_eq!(p("a CAPABILITY"), CommandKind::Capability);
        assert_eq!(p("a noop\r\n"), CommandKind::Noop);
        assert!(parse_command(b"a NOOP extra").is_err());
        assert!(parse_command(b"").is_err());
        assert!(parse_command(b"+ x").is_err());
    }

    #[test]
    fn login_with_literal_and_quoted() {
        assert_eq!(
            p("a LOGIN {5}\r\nalice \"p\\\"w\""),
            CommandKind::Login {
                user: "alice".into(),
                password: b"p\"w".to_vec()
            }
        );
        assert!(parse_command(b"a LOGIN {10}\r\nabc").is_err());
        assert_eq!(
            p("a LOGIN {5+}\r\nalice pw"),
            CommandKind::Login {
                user: "alice".into(),
                password: b"pw".to_vec()
            }
        );
    }

    #[test]
    fn literal_heads() {
        assert_eq!(
            literal_at_end(b"a APPEND x {12}"),
            Some(LiteralHead {
                len: 12,
                non_sync: false,
                literal8: false,
            })
        );
        assert_eq!(
            literal_at_end(b"a APPEND x ~{3+}"),
            Some(LiteralHead {
                len: 3,
                non_sync: true,
                literal8: true,
            })
        );
        assert_eq!(
            literal_at_end(b"a APPEND x ~{3}"),
            Some(LiteralHead {
                len: 3,
                non_sync: false,
                literal8: true,
            })
        );
        assert_eq!(literal_at_end(b"a x {}"), None);
        assert_eq!(literal_at_end(b"a x {99999999999999999999999}"), None);
        assert_eq!(literal_at_end(b"a NOOP"), None);
    }

    #[test]
    fn sequence_sets() {
        match p("a UID FETCH 1:3,5,7:* (FLAGS)") {
            CommandKind::Fetch { uid, set, .. } => {
                assert!(uid);
                assert_eq!(set.resolve(10), vec![(1, 3), (5, 5), (7, 10)]);
            }
            o => panic!("{o:?}"),
        }
        assert!(parse_command(b"a FETCH 0 FLAGS").is_err());
        assert!(parse_command(b"a FETCH 1:: FLAGS").is_err());
        assert!(parse_command(b"a FETCH 99999999999 FLAGS").is_err());
    }

    #[test]
    fn fetch_items() {
        match p("a FETCH 1 (BODY.PEEK[HEADER.FIELDS (From Subject)]<0.100> BODY[1.2.MIME] BINARY[1] RFC822.SIZE BODY) (CHANGEDSINCE 5)") {
            CommandKind::Fetch { atts, changed_since, .. } => {
                assert_eq!(changed_since, Some(5));
                assert_eq!(atts.len(), 5);
                assert_eq!(
                    atts[0],
                    FetchAtt::BodySection {
                        section: Section {
                            part: vec![],
                            text: SectionText::HeaderFields(vec!["from".into(), "subject".into()])
                        },
                        partial: Some((0, 100)),
                        peek: true
                    }
                );
                assert_eq!(
                    atts[1],
                    FetchAtt::BodySection {
                        section: Section { part: vec![1, 2], text: SectionText::Mime },
                        partial: None,
                        peek: false
                    }
                );
            }
            o => panic!("{o:?}"),
        }
        match p("a FETCH 1:* ALL") {
            CommandKind::Fetch { atts, .. } => assert_eq!(atts.len(), 4),
            o => panic!("{o:?}"),
        }
        match p("a FETCH 1 BODY[2]") {
            CommandKind::Fetch { atts, .. } => assert!(matches!(
                &atts[0],
                FetchAtt::BodySection { section: Section { part, text: SectionText::Full }, .. } if part == &vec![2]
            )),
            o => panic!("{o:?}"),
        }
        assert!(parse_command(b"a FETCH 1 BODY[").is_err());
        assert!(parse_command(b"a FETCH 1 BODY[MIME]").is_err());
        assert!(parse_command(b"a FETCH 1 (FLAGS").is_err());
    }

    #[test]
    fn search_keys() {
        match p("a UID SEARCH RETURN (MIN COUNT) CHARSET UTF-8 OR FROM \"bob\" (SUBJECT {3}\r\nhey UNSEEN) NOT 1:5 SINCE 1-Feb-2024") {
            CommandKind::Search { uid, ret, key } => {
                assert!(uid);
                let r = ret.unwrap();
                assert!(r.min && r.count && !r.all);
                match key {
                    SearchKey::And(v) => {
                        assert_eq!(v.len(), 3);
                        assert_eq!(v[2], SearchKey::Since(days_from_civil(2024, 2, 1)));
                    }
                    o => panic!("{o:?}"),
                }
            }
            o => panic!("{o:?}"),
        }
        assert_eq!(
            p("a SEARCH CHARSET KOI8 ALL"),
            CommandKind::Search {
                uid: false,
                ret: None,
                key: SearchKey::BadCharset("KOI8".into())
            }
        );
        assert!(parse_command(b"a SEARCH CHARSET KOI8 FROM").is_err());
        assert!(matches!(
            p("a SORT (DATE) koi8-r ALL"),
            CommandKind::Sort {
                key: SearchKey::BadCharset(_),
                ..
            }
        ));
        assert!(matches!(
            p("a THREAD REFERENCES utf-8 ALL"),
            CommandKind::Thread {
                key: SearchKey::All,
                ..
            }
        ));
        assert!(parse_command(b"a SEARCH").is_err());
        assert!(parse_command(b"a SEARCH OR ALL").is_err());
        let deep = format!("a SEARCH {}ALL{}", "(".repeat(200), ")".repeat(200));
        assert!(parse_command(deep.as_bytes()).is_err());
    }

    #[test]
    fn store_and_copy() {
        assert_eq!(
            p("a UID STORE 1:2 (UNCHANGEDSINCE 7) +FLAGS.SILENT (\\Seen $Junk)"),
            CommandKind::Store {
                uid: true,
                set: SeqSet(vec![(SeqNum::Num(1), SeqNum::Num(2))]),
                op: StoreOp::Add,
                silent: true,
                flags: vec!["\\Seen".into(), "$Junk".into()],
                unchanged_since: Some(7)
            }
        );
        assert!(
            matches!(p("a STORE 1 FLAGS ()"), CommandKind::Store { flags, .. } if flags.is_empty())
        );
        assert!(matches!(
            p("a STORE 1 -FLAGS \\Deleted"),
            CommandKind::Store {
                op: StoreOp::Remove,
                ..
            }
        ));
        assert!(matches!(
            p("a UID MOVE 1 Trash"),
            CommandKind::Copy {
                is_move: true,
                uid: true,
                ..
            }
        ));
    }

    #[test]
    fn list_variants() {
        match p(
            "a LIST (SUBSCRIBED) \"\" (INBOX \"Sent\") RETURN (CHILDREN STATUS (MESSAGES UNSEEN))",
        ) {
            CommandKind::List {
                select,
                patterns,
                ret,
                extended,
                ..
            } => {
                assert!(select.subscribed && extended);
                assert_eq!(patterns.len(), 2);
                assert!(ret.children);
                assert_eq!(ret.status.unwrap().len(), 2);
            }
            o => panic!("{o:?}"),
        }
        assert!(matches!(
            p("a LIST \"\" *"),
            CommandKind::List {
                extended: false,
                ..
            }
        ));
        assert!(matches!(p("a LIST \"\" %/x"), CommandKind::List { .. }));
    }

    #[test]
    fn append_and_select() {
        match p("a APPEND INBOX (\\Seen) \" 5-Mar-2024 10:00:00 +0100\" {2}\r\nhi") {
            CommandKind::Append { messages, .. } => {
                assert_eq!(messages[0].data, b"hi");
                assert_eq!(
                    messages[0].date,
                    Some(days_from_civil(2024, 3, 5) * 86400 + 9 * 3600)
                );
            }
            o => panic!("{o:?}"),
        }
        assert!(matches!(
            p("a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))"),
            CommandKind::Select {
                qresync: Some(Qresync {
                    uidvalidity: 67890007,
                    ..
                }),
                ..
            }
        ));
        assert!(matches!(
            p("a EXAMINE INBOX (CONDSTORE)"),
            CommandKind::Select {
                examine: true,
                condstore: true,
                ..
            }
        ));
    }

    #[test]
    fn dates_round_trip() {
        let t = parse_date_time(b"17-Jul-1996 02:44:25 -0700").unwrap();
        assert_eq!(format_date_time(t), "17-Jul-1996 09:44:25 +0000");
        assert_eq!(format_date_time(0), "01-Jan-1970 00:00:00 +0000");
        assert!(parse_date_time(b"garbage").is_none());
    }

    #[test]
    fn sort_thread() {
        assert!(
            matches!(p("a UID SORT (REVERSE DATE SUBJECT) UTF-8 ALL"), CommandKind::Sort { criteria, .. } if criteria == vec![(true, SortKey::Date), (false, SortKey::Subject)])
        );
        assert!(matches!(
            p("a THREAD REFERENCES UTF-8 ALL"),
            CommandKind::Thread {
                references: true,
                ..
            }
        ));
    }

    #[test]
    fn never_panics_on_garbage() {
        let samples: &[&[u8]] = &[
            b"a",
            b"a ",
            b"a FETCH",
            b"a FETCH 1 BODY[1.",
            b"a FETCH 1 BODY[]<",
            b"a FETCH 1 BODY[]<1.",
            b"a SEARCH NOT",
            b"a LOGIN \"",
            b"a LOGIN {",
            b"a LOGIN {1}",
            b"a STORE 1 +FLAGS (",
            b"\xff\xfe",
            b"a APPEND x {3}\r\n",
            b"a UID",
            b"a LIST (",
            b"a SELECT x (QRESYNC (",
            b"a ID (\"a\"",
            b"a STATUS x (",
            b"a SORT (",
            b"a AUTHENTICATE PLAIN =",
        ];
        for s in samples {
            let _ = parse_command(s);
            for i in 0..s.len() {
                let _ = parse_command(&s[..i]);
            }
        }
    }
}

/// RFC 9051 §9 grammar edges: atom-specials, resp-specials, quoted-specials, literal8.
#[cfg(test)]
mod grammar_tests {
    use super::*;

    fn p(s: &[u8]) -> Result<CommandKind, ParseError> {
        parse_command(s).map(|c| c.kind).map_err(|e| e.1)
    }

    fn list_pattern(s: &[u8]) -> Vec<u8> {
        match p(s).unwrap() {
            CommandKind::List { patterns, .. } => patterns[0].clone(),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn list_mailbox_takes_every_list_char() {
        assert_eq!(list_pattern(b"a LIST \"\" ~foo"), b"~foo");
        assert_eq!(list_pattern(b"a LIST \"\" ~peter/%"), b"~peter/%");
        assert_eq!(list_pattern(b"a LIST \"\" a]b*"), b"a]b*");
        assert_eq!(
            list_pattern(b"a LIST \"\" #news.comp.mail.*"),
            b"#news.comp.mail.*"
        );
        assert_eq!(list_pattern(b"a LIST \"\" {3+}\r\na%b"), b"a%b");
        assert!(p(b"a LIST \"\" (x").is_err());
        assert!(p(b"a LIST \"\" x{y").is_err());
    }

    #[test]
    fn literal8_only_where_allowed() {
        assert_eq!(
            p(b"a SELECT ~{3}\r\nabc").unwrap_err().0,
            "literal8 not allowed here"
        );
        assert!(p(b"a LOGIN ~{1}\r\nx y").is_err());
        assert!(
            matches!(p(b"a SELECT ~x").unwrap(), CommandKind::Select { mailbox, .. } if mailbox == b"~x")
        );
        match p(b"a APPEND INBOX ~{3}\r\na\0b").unwrap() {
            CommandKind::Append { messages, .. } => {
                assert!(messages[0].binary);
                assert_eq!(messages[0].data, b"a\0b");
            }
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn resp_specials_in_astring_not_atom() {
        assert!(
            matches!(p(b"a SELECT a]b").unwrap(), CommandKind::Select { mailbox, .. } if mailbox == b"a]b")
        );
        assert!(p(b"a NOOP]").is_err());
        assert!(p(b"a STORE 1 +FLAGS (a]b)").is_err());
        assert!(p(b"a FETCH 1 (FLAGS])").is_err());
        // A tag is ASTRING-CHARs but "+".
        assert_eq!(parse_command(b"a]1 NOOP").unwrap().tag, "a]1");
        assert_eq!(
            parse_command(b"a+ NOOP").unwrap_err().0.as_deref(),
            Some("a")
        );
        assert_eq!(parse_command(b"(x NOOP").unwrap_err().0, None);
    }

    #[test]
    fn quoted_specials_and_literals() {
        let s = |cmd: &[u8]| match p(cmd) {
            Ok(CommandKind::Search {
                key: SearchKey::Subject(s),
                ..
            }) => Ok(s),
            Ok(o) => panic!("{o:?}"),
            Err(e) => Err(e),
        };
        assert_eq!(s(b"a SEARCH SUBJECT \"a\\\"b\\\\c\"").unwrap(), "a\"b\\c");
        assert!(s(b"a SEARCH SUBJECT \"a\\x\"").is_err());
        assert!(s(b"a SEARCH SUBJECT \"a\0\"").is_err());
        assert!(s(b"a SEARCH SUBJECT \"a\rb\"").is_err());
        assert_eq!(s(b"a SEARCH SUBJECT {3+}\r\na\"b").unwrap(), "a\"b");
        assert_eq!(s(b"a SEARCH SUBJECT {3}\r\n\r\n(").unwrap(), "\r\n(");
        assert!(s(b"a SEARCH SUBJECT {3}").is_err());
        assert!(s(b"a SEARCH SUBJECT {3}x\r\nabc").is_err());
        assert!(s(b"a SEARCH SUBJECT {99999999999999999999}\r\n").is_err());
    }

    #[test]
    fn modseq_search_key() {
        let k = |cmd: &[u8]| match p(cmd) {
            Ok(CommandKind::Search { key, .. }) => Ok(key),
            Ok(o) => panic!("{o:?}"),
            Err(e) => Err(e),
        };
        assert_eq!(k(b"a SEARCH MODSEQ 0").unwrap(), SearchKey::Modseq(0));
        assert_eq!(
            k(b"a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338").unwrap(),
            SearchKey::Modseq(620162338)
        );
        assert!(k(b"a SEARCH MODSEQ \"/flags/x\" bogus 5").is_err());
        assert!(k(b"a SEARCH MODSEQ \"/other\" all 5").is_err());
        assert!(k(b"a SEARCH MODSEQ x").is_err());
    }

    #[test]
    fn lists_that_must_not_be_empty() {
        assert!(p(b"a FETCH 1 ()").is_err());
        assert!(p(b"a FETCH 1 (FLAGS )").is_err());
        assert!(p(b"a FETCH 1 (FLAGS UID)").is_ok());
        assert!(p(b"a STATUS x ()").is_err());
        assert!(p(b"a STATUS x (MESSAGES UIDNEXT)").is_ok());
        assert!(p(b"a LIST \"\" % RETURN (STATUS ())").is_err());
        assert!(p(b"a SEARCH OLDER 0").is_err());
        assert!(p(b"a SEARCH YOUNGER 60").is_ok());
    }

    #[test]
    fn dates() {
        assert_eq!(
            parse_date_str("1-Jan-2024"),
            Some(days_from_civil(2024, 1, 1))
        );
        assert_eq!(
            parse_date_str("01-jan-2024"),
            Some(days_from_civil(2024, 1, 1))
        );
        for bad in [
            "1-Jan-24",
            "001-Jan-2024",
            "1-Jan-02024",
            "x-Jan-2024",
            "1-Foo-2024",
            "32-Jan-2024",
            "1-Jan-2024-1",
            "-1-Jan-2024",
        ] {
            assert_eq!(parse_date_str(bad), None, "{bad}");
        }
        assert!(p(b"a SEARCH SINCE 1-Jan-24").is_err());
        assert!(p(b"a SEARCH SINCE \"1-Jan-2024\"").is_ok());
    }

    #[test]
    fn sort_criteria_grammar() {
        assert!(p(b"a SORT (REVERSE) UTF-8 ALL").is_err());
        assert!(p(b"a SORT (DATE REVERSE) UTF-8 ALL").is_err());
        assert!(p(b"a SORT (REVERSE REVERSE DATE) UTF-8 ALL").is_err());
        assert!(p(b"a SORT () UTF-8 ALL").is_err());
        assert!(p(b"a SORT (REVERSE ARRIVAL DISPLAYFROM) US-ASCII ALL").is_ok());
    }
}

/// Property tests: the parser never panics, and every astring the response layer writes
/// (quoted or literal) reads back as the same octets.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn astring_bytes(v: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        crate::response::string(&mut out, v);
        out
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_command(&data);
        }

        #[test]
        fn never_panics_on_command_shaped_input(
            verb in prop::sample::select(vec!["LIST", "LSUB", "SELECT", "SEARCH", "SORT", "THREAD REFERENCES UTF-8", "FETCH 1", "STORE 1", "APPEND x", "UID SEARCH", "STATUS x", "LOGIN"]),
            rest in "[ -~\\r\\n]{0,60}",
        ) {
            let _ = parse_command(format!("a {verb} {rest}").as_bytes());
        }

        #[test]
        fn strings_round_trip(v in proptest::collection::vec(1u8..=255, 0..100)) {
            let wire = astring_bytes(&v);
            let mut cmd = b"a SELECT ".to_vec();
            cmd.extend_from_slice(&wire);
            cmd.extend_from_slice(b"\r\n");
            match parse_command(&cmd) {
                Ok(Command { kind: CommandKind::Select { mailbox, .. }, .. }) => prop_assert_eq!(mailbox, v),
                o => prop_assert!(false, "{:?} from {:?}", o, String::from_utf8_lossy(&wire)),
            }
        }

        #[test]
        fn search_strings_round_trip(v in "[^\\x00]{0,40}") {
            let mut wire = Vec::new();
            crate::response::string_utf8(&mut wire, v.as_bytes());
            let mut cmd = b"a SEARCH SUBJECT ".to_vec();
            cmd.extend_from_slice(&wire);
            cmd.extend_from_slice(b"\r\n");
            match parse_command(&cmd) {
                Ok(Command { kind: CommandKind::Search { key: SearchKey::Subject(s), .. }, .. }) => prop_assert_eq!(s, v),
                o => prop_assert!(false, "{:?}", o),
            }
        }
    }
}

#[cfg(test)]
mod append_tests {
    use super::*;
    #[test]
    fn append_crlf_literal() {
        let cmd = b"A002 APPEND INBOX {14}\r\nSubject: x\r\n\r\n\r\n";
        let r = parse_command(cmd);
        assert!(r.is_ok(), "{r:?}");
    }
}
