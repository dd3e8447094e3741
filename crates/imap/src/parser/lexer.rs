//! A cursor over the octets of one command with the lexical primitives of RFC 9051 §9 (and
//! §4.3 for strings and literals). It knows no IMAP command, so a ManageSieve parser (RFC 5804,
//! whose `string` is IMAP's quoted string or literal) can reuse it.
//!
//! Literals are expected inlined as `{n}\r\n<n octets>` (the connection layer has already
//! read them); the command's final CRLF is expected to be stripped before [`Lexer::eol`].

use std::fmt;

use super::error::ParseError;

/// RFC 9051 §9 `ATOM-CHAR`: any CHAR except `atom-specials` ("(" ")" "{" SP CTL
/// list-wildcards quoted-specials resp-specials).
pub fn is_atom_char(b: u8) -> bool {
    b > 0x20
        && b < 0x7f
        && !matches!(
            b,
            b'(' | b')' | b'{' | b' ' | b'%' | b'*' | b'"' | b'\\' | b']'
        )
}

/// RFC 9051 §9 `ASTRING-CHAR`: `ATOM-CHAR` or `resp-specials` ("]").
pub fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// RFC 9051 §9 `list-char`: `ATOM-CHAR`, `list-wildcards` or `resp-specials`.
pub fn is_list_char(b: u8) -> bool {
    is_astring_char(b) || b == b'%' || b == b'*'
}

/// RFC 9051 §9 `tag`: any `ASTRING-CHAR` except "+".
pub fn is_tag_char(b: u8) -> bool {
    is_astring_char(b) && b != b'+'
}

/// A cursor over one command's octets (RFC 9051 §9 lexical rules).
#[derive(Clone)]
pub struct Lexer<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl fmt::Debug for Lexer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Lexer@{}", self.pos)
    }
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Lexer<'a> {
        Lexer { buf, pos: 0 }
    }

    /// The offset of the next octet.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Moves back (or forward) to an offset returned by [`Lexer::pos`]; clamped to the end.
    pub fn set_pos(&mut self, pos: usize) {
        self.pos = pos.min(self.buf.len());
    }

    /// Skips everything that is left (for commands whose arguments are ignored).
    pub fn skip_rest(&mut self) {
        self.pos = self.buf.len();
    }

    /// The next octet, if any.
    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// The octet `n` places after the next one, if any.
    pub fn peek_at(&self, n: usize) -> Option<u8> {
        self.buf.get(self.pos.checked_add(n)?).copied()
    }

    /// The octets not yet consumed.
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// Whether every octet has been consumed.
    pub fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Consumes `b` if it is next.
    pub fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Consumes `word` if the input continues with it, ignoring ASCII case (RFC 9051 §9:
    /// keywords are case-insensitive). Nothing after it is checked.
    pub fn eat_ci(&mut self, word: &[u8]) -> bool {
        let rest = self.rest();
        if rest.len() >= word.len() && rest[..word.len()].eq_ignore_ascii_case(word) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    /// Consumes exactly `token` (RFC 9051 §9 quoted terminals such as `"("`, `"]"`, `"<"`).
    pub fn expect(&mut self, token: &'static [u8]) -> Result<(), ParseError> {
        if !token.is_empty() && self.rest().starts_with(token) {
            self.pos += token.len();
            Ok(())
        } else {
            Err(ParseError::ExpectedToken(token))
        }
    }

    /// RFC 9051 §9 `SP`.
    pub fn sp(&mut self) -> Result<(), ParseError> {
        self.expect(b" ")
    }

    /// RFC 9051 §9 `CRLF` that ends a `command`: the end of the input (the CRLF itself is
    /// stripped by the caller).
    pub fn eol(&mut self) -> Result<(), ParseError> {
        if self.at_end() {
            Ok(())
        } else {
            Err(ParseError::TrailingData)
        }
    }

    /// RFC 9051 §9 `CRLF`, for callers (such as ManageSieve, RFC 5804 §4) that keep the line
    /// ending in the buffer.
    pub fn crlf(&mut self) -> Result<(), ParseError> {
        self.expect(b"\r\n")
    }

    /// The longest run of octets accepted by `f` (possibly empty).
    pub fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        &self.buf[start..self.pos]
    }

    /// RFC 9051 §9 `atom` = 1*ATOM-CHAR.
    pub fn atom(&mut self) -> Result<String, ParseError> {
        let a = self.take_while(is_atom_char);
        if a.is_empty() {
            return Err(ParseError::Expected("an atom"));
        }
        Ok(String::from_utf8_lossy(a).into_owned())
    }

    /// An atom that stops before `[` (RFC 9051 §9 `fetch-att` names such as `BODY.PEEK`,
    /// followed by a `section`), upper-cased.
    pub fn keyword(&mut self) -> Result<String, ParseError> {
        let a = self.take_while(|b| is_atom_char(b) && b != b'[' && b != b']');
        if a.is_empty() {
            return Err(ParseError::Expected("a keyword"));
        }
        Ok(String::from_utf8_lossy(a).to_ascii_uppercase())
    }

    /// RFC 9051 §9 `number64` = 1*DIGIT (here: any value of a `u64`).
    pub fn number64(&mut self) -> Result<u64, ParseError> {
        let d = self.take_while(|b| b.is_ascii_digit());
        if d.is_empty() || d.len() > 20 {
            return Err(ParseError::Expected("a number"));
        }
        std::str::from_utf8(d)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(ParseError::BadNumber)
    }

    /// RFC 9051 §9 `number` = 1*DIGIT, an unsigned 32-bit integer.
    pub fn number(&mut self) -> Result<u32, ParseError> {
        u32::try_from(self.number64()?).map_err(|_| ParseError::BadNumber)
    }

    /// RFC 9051 §9 `nz-number` = digit-nz *DIGIT, an unsigned 32-bit integer above zero.
    pub fn nz_number(&mut self) -> Result<u32, ParseError> {
        match self.number()? {
            0 => Err(ParseError::ZeroNumber),
            n => Ok(n),
        }
    }

    /// RFC 9051 §9 `nz-number64` = digit-nz *DIGIT (here: any non-zero `u64`; RFC 5032 §3
    /// OLDER / YOUNGER intervals).
    pub fn nz_number64(&mut self) -> Result<u64, ParseError> {
        match self.number64()? {
            0 => Err(ParseError::ZeroNumber),
            n => Ok(n),
        }
    }

    /// RFC 9051 §9 `quoted` = DQUOTE *QUOTED-CHAR DQUOTE: `QUOTED-CHAR` excludes CR, LF and
    /// NUL; only `quoted-specials` (`"` and `\`) may be escaped.
    pub fn quoted(&mut self) -> Result<Vec<u8>, ParseError> {
        self.expect(b"\"")?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\r') | Some(b'\n') => return Err(ParseError::UnterminatedQuoted),
                Some(0) => return Err(ParseError::NulInQuoted),
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
                        _ => return Err(ParseError::BadEscape),
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// RFC 9051 §9 / §4.3 `literal` = "{" number64 ["+"] "}" CRLF *CHAR8 (RFC 7888 `{n+}`).
    pub fn literal(&mut self) -> Result<Vec<u8>, ParseError> {
        self.expect(b"{")?;
        let n = self.number64()?;
        self.eat(b'+');
        self.expect(b"}")?;
        if !self.rest().starts_with(b"\r\n") {
            return Err(ParseError::BadLiteral("literal must be followed by CRLF"));
        }
        self.pos += 2;
        let n = usize::try_from(n).map_err(|_| ParseError::BadLiteral("literal too large"))?;
        if self.rest().len() < n {
            return Err(ParseError::BadLiteral("literal shorter than announced"));
        }
        let data = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Ok(data)
    }

    /// RFC 3516 §4.4 / RFC 9051 §9 `literal8` = "~{" number64 ["+"] "}" CRLF *OCTET.
    pub fn literal8(&mut self) -> Result<Vec<u8>, ParseError> {
        self.expect(b"~")?;
        self.literal()
    }

    /// `literal` or `literal8` (RFC 9051 §9 `append-data`): the octets and whether they came
    /// as a `literal8`.
    pub fn literal_or_literal8(&mut self) -> Result<(Vec<u8>, bool), ParseError> {
        let binary = self.eat(b'~');
        Ok((self.literal()?, binary))
    }

    /// RFC 9051 §9 `string` = quoted / literal (never `literal8`).
    pub fn string(&mut self) -> Result<Vec<u8>, ParseError> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(),
            Some(b'~') if self.rest().starts_with(b"~{") => Err(ParseError::Literal8NotAllowed),
            _ => Err(ParseError::Expected("a string")),
        }
    }

    /// RFC 9051 §9 `nstring` = string / nil: `None` for `NIL`.
    pub fn nstring(&mut self) -> Result<Option<Vec<u8>>, ParseError> {
        if self.peek().is_some_and(|b| b == b'N' || b == b'n') {
            let a = self.atom()?;
            if a.eq_ignore_ascii_case("NIL") {
                return Ok(None);
            }
            return Err(ParseError::Expected("a string or NIL"));
        }
        Ok(Some(self.string()?))
    }

    /// One or more octets accepted by `f`, refusing a `literal8` where only `string` is
    /// allowed.
    fn word(&mut self, f: impl Fn(u8) -> bool, what: &'static str) -> Result<Vec<u8>, ParseError> {
        if self.rest().starts_with(b"~{") {
            return Err(ParseError::Literal8NotAllowed);
        }
        let a = self.take_while(f);
        if a.is_empty() {
            return Err(ParseError::Expected(what));
        }
        Ok(a.to_vec())
    }

    /// RFC 9051 §9 `astring` = 1*ASTRING-CHAR / string.
    pub fn astring(&mut self) -> Result<Vec<u8>, ParseError> {
        match self.peek() {
            Some(b'"') | Some(b'{') => self.string(),
            _ => self.word(is_astring_char, "an astring"),
        }
    }

    /// An `astring` that must be UTF-8 (RFC 9051 §9 `userid`).
    pub fn astring_utf8(&mut self) -> Result<String, ParseError> {
        String::from_utf8(self.astring()?).map_err(|_| ParseError::InvalidUtf8)
    }

    /// RFC 9051 §9 `list-mailbox` = 1*list-char / string.
    pub fn list_mailbox(&mut self) -> Result<Vec<u8>, ParseError> {
        match self.peek() {
            Some(b'"') | Some(b'{') => self.string(),
            _ => self.word(is_list_char, "a mailbox pattern"),
        }
    }

    /// The items of a parenthesised list whose "(" is already consumed, through its ")":
    /// `[item *(SP item)] ")"`, or `item *(SP item) ")"` when `nonempty` (RFC 9051 §9 list
    /// rules such as `flag-list` and `status-att-list`).
    pub fn list_items<T>(
        &mut self,
        nonempty: bool,
        mut item: impl FnMut(&mut Self) -> Result<T, ParseError>,
    ) -> Result<Vec<T>, ParseError> {
        let mut out = Vec::new();
        if nonempty {
            out.push(item(self)?);
        }
        while !self.eat(b')') {
            if !out.is_empty() {
                self.sp()?;
            }
            out.push(item(self)?);
        }
        Ok(out)
    }

    /// `"(" [item *(SP item)] ")"`: a possibly empty parenthesised list.
    pub fn list<T>(
        &mut self,
        item: impl FnMut(&mut Self) -> Result<T, ParseError>,
    ) -> Result<Vec<T>, ParseError> {
        self.expect(b"(")?;
        self.list_items(false, item)
    }

    /// `"(" item *(SP item) ")"`: a parenthesised list of at least one item.
    pub fn list1<T>(
        &mut self,
        item: impl FnMut(&mut Self) -> Result<T, ParseError>,
    ) -> Result<Vec<T>, ParseError> {
        self.expect(b"(")?;
        self.list_items(true, item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lx(s: &[u8]) -> Lexer<'_> {
        Lexer::new(s)
    }

    #[test]
    fn atoms_and_astrings() {
        let mut l = lx(b"abc]d ef");
        assert_eq!(l.atom().unwrap(), "abc");
        assert_eq!(l.peek(), Some(b']'));
        let mut l = lx(b"abc]d ef");
        assert_eq!(l.astring().unwrap(), b"abc]d");
        l.sp().unwrap();
        assert_eq!(l.astring().unwrap(), b"ef");
        l.eol().unwrap();
        assert_eq!(lx(b"(x").atom(), Err(ParseError::Expected("an atom")));
        assert_eq!(
            lx(b"~{1}\r\nx").astring(),
            Err(ParseError::Literal8NotAllowed)
        );
        assert_eq!(lx(b"a%*").list_mailbox().unwrap(), b"a%*");
        assert_eq!(lx(b"\"\xff\"").astring_utf8(), Err(ParseError::InvalidUtf8));
    }

    #[test]
    fn quoted_strings() {
        assert_eq!(lx(b"\"a\\\"b\\\\\"").quoted().unwrap(), b"a\"b\\");
        assert_eq!(lx(b"\"a").quoted(), Err(ParseError::UnterminatedQuoted));
        assert_eq!(lx(b"\"a\r\"").quoted(), Err(ParseError::UnterminatedQuoted));
        assert_eq!(lx(b"\"a\0\"").quoted(), Err(ParseError::NulInQuoted));
        assert_eq!(lx(b"\"\\n\"").quoted(), Err(ParseError::BadEscape));
        assert_eq!(lx(b"x").quoted(), Err(ParseError::ExpectedToken(b"\"")));
        assert_eq!(
            ParseError::ExpectedToken(b"(").to_string(),
            "expected '('",
            "the text clients have always seen"
        );
    }

    #[test]
    fn literals() {
        let mut l = lx(b"{3}\r\nabc{2+}\r\nde");
        assert_eq!(l.literal().unwrap(), b"abc");
        assert_eq!(l.string().unwrap(), b"de");
        assert!(l.at_end());
        assert_eq!(lx(b"~{2}\r\na\0").literal8().unwrap(), b"a\0");
        assert_eq!(
            lx(b"~{1}\r\nz").literal_or_literal8().unwrap(),
            (b"z".to_vec(), true)
        );
        assert_eq!(
            lx(b"{1}\r\nz").literal_or_literal8().unwrap(),
            (b"z".to_vec(), false)
        );
        assert_eq!(
            lx(b"{3}x").literal(),
            Err(ParseError::BadLiteral("literal must be followed by CRLF"))
        );
        assert_eq!(
            lx(b"{3}\r\nab").literal(),
            Err(ParseError::BadLiteral("literal shorter than announced"))
        );
        assert_eq!(
            lx(b"~{1}\r\nz").string(),
            Err(ParseError::Literal8NotAllowed)
        );
        assert_eq!(lx(b"NIL").nstring().unwrap(), None);
        assert_eq!(lx(b"\"NIL\"").nstring().unwrap(), Some(b"NIL".to_vec()));
        assert_eq!(
            lx(b"NOPE").nstring(),
            Err(ParseError::Expected("a string or NIL"))
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(lx(b"4294967295").number().unwrap(), u32::MAX);
        assert_eq!(lx(b"4294967296").number(), Err(ParseError::BadNumber));
        assert_eq!(lx(b"18446744073709551615").number64().unwrap(), u64::MAX);
        assert_eq!(
            lx(b"18446744073709551616").number64(),
            Err(ParseError::BadNumber)
        );
        assert_eq!(lx(b"x").number64(), Err(ParseError::Expected("a number")));
        assert_eq!(lx(b"0").nz_number(), Err(ParseError::ZeroNumber));
        assert_eq!(lx(b"07").nz_number().unwrap(), 7);
        assert_eq!(lx(b"0").nz_number64(), Err(ParseError::ZeroNumber));
    }

    #[test]
    fn tokens_lists_and_end() {
        let mut l = lx(b"RETURN (A B) ~x");
        assert!(!l.eat_ci(b"returns"));
        assert!(l.eat_ci(b"return"));
        l.sp().unwrap();
        assert_eq!(l.list1(|l| l.atom()).unwrap(), vec!["A", "B"]);
        assert_eq!(l.eol(), Err(ParseError::TrailingData));
        l.expect(b" ~").unwrap();
        assert_eq!(l.rest(), b"x");
        assert_eq!(lx(b"()").list(|l| l.atom()).unwrap(), Vec::<String>::new());
        assert_eq!(
            lx(b"()").list1(|l| l.atom()),
            Err(ParseError::Expected("an atom"))
        );
        assert_eq!(
            lx(b"(a ").list(|l| l.atom()),
            Err(ParseError::Expected("an atom"))
        );
        assert_eq!(
            lx(b"(a").list(|l| l.atom()),
            Err(ParseError::ExpectedToken(b" "))
        );
        assert!(!is_tag_char(b'+') && is_tag_char(b']') && !is_atom_char(b']'));
        let mut l = lx(b"x\r\n");
        l.atom().unwrap();
        assert_eq!(l.eol(), Err(ParseError::TrailingData));
        l.crlf().unwrap();
        l.eol().unwrap();
    }
}
