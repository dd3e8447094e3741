//! The lexical layer of RFC 5228 §2 and §8.1: comments, identifiers, tags, numbers with
//! quantifiers, quoted and multi-line strings, and the punctuation of the grammar.

use crate::CompileError;

/// Where a token starts (1-based line and column, columns in characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct Pos {
    pub(crate) line: u32,
    pub(crate) column: u32,
}

impl Pos {
    /// A compile error at this position.
    pub(crate) fn error(self, message: impl Into<String>) -> CompileError {
        CompileError {
            line: self.line,
            column: self.column,
            message: message.into(),
        }
    }
}

/// One token of the grammar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Token {
    Identifier(String),
    /// `:name`, stored without the colon, lower-cased (tags are case-insensitive, §2.6.2).
    Tag(String),
    Number(u64),
    /// A quoted or multi-line string, escapes and dot-stuffing already removed.
    Str(String),
    LeftBracket,
    RightBracket,
    LeftParen,
    RightParen,
    LeftBrace,
    RightBrace,
    Comma,
    Semicolon,
    End,
}

impl Token {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Token::Identifier(s) => format!("identifier '{s}'"),
            Token::Tag(s) => format!("tag ':{s}'"),
            Token::Number(n) => format!("number {n}"),
            Token::Str(_) => "string".into(),
            Token::LeftBracket => "'['".into(),
            Token::RightBracket => "']'".into(),
            Token::LeftParen => "'('".into(),
            Token::RightParen => "')'".into(),
            Token::LeftBrace => "'{'".into(),
            Token::RightBrace => "'}'".into(),
            Token::Comma => "','".into(),
            Token::Semicolon => "';'".into(),
            Token::End => "end of file".into(),
        }
    }
}

/// Splits a script into tokens with their positions.
pub(crate) struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: u32,
    column: u32,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(source: &'a str) -> Lexer<'a> {
        Lexer {
            chars: source.chars().peekable(),
            line: 1,
            column: 1,
        }
    }

    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.column,
        }
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    /// All tokens, ending with [`Token::End`].
    pub(crate) fn tokenize(mut self) -> Result<Vec<(Token, Pos)>, CompileError> {
        let mut out = Vec::new();
        loop {
            self.skip_white()?;
            let pos = self.pos();
            let Some(c) = self.peek() else {
                out.push((Token::End, pos));
                return Ok(out);
            };
            let token = match c {
                '[' => self.single(Token::LeftBracket),
                ']' => self.single(Token::RightBracket),
                '(' => self.single(Token::LeftParen),
                ')' => self.single(Token::RightParen),
                '{' => self.single(Token::LeftBrace),
                '}' => self.single(Token::RightBrace),
                ',' => self.single(Token::Comma),
                ';' => self.single(Token::Semicolon),
                '"' => self.quoted(pos)?,
                ':' => {
                    self.bump();
                    match self.peek() {
                        Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                            Token::Tag(self.word().to_ascii_lowercase())
                        }
                        _ => return Err(pos.error("expected a tag name after ':'")),
                    }
                }
                c if c.is_ascii_digit() => self.number(pos)?,
                c if c.is_ascii_alphabetic() || c == '_' => {
                    let word = self.word();
                    if word.eq_ignore_ascii_case("text") && self.peek() == Some(':') {
                        self.bump();
                        self.multiline(pos)?
                    } else {
                        Token::Identifier(word)
                    }
                }
                other => return Err(pos.error(format!("unexpected character '{other}'"))),
            };
            out.push((token, pos));
        }
    }

    fn single(&mut self, token: Token) -> Token {
        self.bump();
        token
    }

    /// Identifier characters (§8.1: ALPHA / "_" then ALPHA / DIGIT / "_").
    fn word(&mut self) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                s.push(c);
                self.bump();
            } else {
                break;
            }
        }
        s
    }

    /// White space, `#` comments and `/* */` comments (RFC 5228 §2.3).
    fn skip_white(&mut self) -> Result<(), CompileError> {
        loop {
            match self.peek() {
                Some(' ' | '\t' | '\r' | '\n') => {
                    self.bump();
                }
                Some('#') => {
                    while let Some(c) = self.bump() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                Some('/') => {
                    let pos = self.pos();
                    self.bump();
                    if self.peek() != Some('*') {
                        return Err(pos.error("unexpected character '/'"));
                    }
                    self.bump();
                    let mut star = false;
                    loop {
                        match self.bump() {
                            None => return Err(pos.error("unterminated comment")),
                            Some('/') if star => break,
                            Some(c) => star = c == '*',
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// RFC 5228 §2.4.1: digits with an optional K, M or G quantifier.
    fn number(&mut self, pos: Pos) -> Result<Token, CompileError> {
        let mut value: u64 = 0;
        while let Some(c) = self.peek() {
            let Some(d) = c.to_digit(10) else { break };
            self.bump();
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(d)))
                .ok_or_else(|| pos.error("number is too large"))?;
        }
        let shift = match self.peek() {
            Some('k' | 'K') => 10,
            Some('m' | 'M') => 20,
            Some('g' | 'G') => 30,
            _ => 0,
        };
        if shift > 0 {
            self.bump();
            value = value
                .checked_mul(1 << shift)
                .ok_or_else(|| pos.error("number is too large"))?;
        }
        if matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == '_') {
            return Err(pos.error("invalid character after number"));
        }
        Ok(Token::Number(value))
    }

    /// RFC 5228 §2.4.2: `\"` and `\\` are the escapes; any other `\x` is `x`.
    fn quoted(&mut self, pos: Pos) -> Result<Token, CompileError> {
        self.bump();
        let mut s = String::new();
        loop {
            match self.bump() {
                None => {
                    return Err(self.pos().error(format!(
                        "end of file before end of quoted string started at line {}",
                        pos.line
                    )))
                }
                Some('"') => return Ok(Token::Str(s)),
                Some('\\') => match self.bump() {
                    None => {
                        return Err(self.pos().error(format!(
                            "end of file before end of quoted string started at line {}",
                            pos.line
                        )))
                    }
                    Some(c) => s.push(c),
                },
                Some(c) => s.push(c),
            }
        }
    }

    /// RFC 5228 §2.4.2 multi-line strings: `text:`, optional white space and a comment, then lines
    /// up to a lone `.`; a leading `..` stands for `.`.
    fn multiline(&mut self, pos: Pos) -> Result<Token, CompileError> {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.bump();
        }
        match self.peek() {
            Some('#') => {
                while let Some(c) = self.bump() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            Some('\r') => {
                self.bump();
                if self.bump() != Some('\n') {
                    return Err(pos.error("expected a line end after 'text:'"));
                }
            }
            Some('\n') => {
                self.bump();
            }
            _ => return Err(pos.error("expected a line end after 'text:'")),
        }
        let mut out = String::new();
        loop {
            let mut line = String::new();
            let mut ended = false;
            while let Some(c) = self.bump() {
                if c == '\n' {
                    ended = true;
                    break;
                }
                line.push(c);
            }
            let content = line.strip_suffix('\r').unwrap_or(&line);
            if content == "." {
                return Ok(Token::Str(out));
            }
            if !ended {
                return Err(self.pos().error(format!(
                    "end of file before end of multi-line string started at line {}",
                    pos.line
                )));
            }
            out.push_str(
                content
                    .strip_prefix('.')
                    .filter(|_| content.starts_with(".."))
                    .unwrap_or(content),
            );
            out.push_str("\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(s: &str) -> Vec<Token> {
        Lexer::new(s)
            .tokenize()
            .unwrap()
            .into_iter()
            .map(|(t, _)| t)
            .collect()
    }

    /// RFC 5228 §2.4.1: quantifiers are powers of two.
    #[test]
    fn numbers_with_quantifiers() {
        assert_eq!(
            tokens("1 2K 3m 1G"),
            vec![
                Token::Number(1),
                Token::Number(2048),
                Token::Number(3 << 20),
                Token::Number(1 << 30),
                Token::End
            ]
        );
    }

    /// RFC 5228 §2.3 comments, §2.4.2 escapes.
    #[test]
    fn comments_and_escapes() {
        assert_eq!(
            tokens("# c\n/* a\n * b */ \"a\\\"b\\\\c\\d\""),
            vec![Token::Str("a\"b\\cd".into()), Token::End]
        );
    }

    /// RFC 5228 §2.4.2: multi-line strings, dot-unstuffing, the comment after `text:`.
    #[test]
    fn multiline_string() {
        assert_eq!(
            tokens("text: # hi\r\nline\r\n..dot\r\n.\r\n;"),
            vec![
                Token::Str("line\r\n.dot\r\n".into()),
                Token::Semicolon,
                Token::End
            ]
        );
    }

    #[test]
    fn positions_and_errors() {
        let t = Lexer::new("keep;\n  :Over").tokenize().unwrap();
        assert_eq!(t[2].0, Token::Tag("over".into()));
        assert_eq!(t[2].1, Pos { line: 2, column: 3 });
        let e = Lexer::new("\"abc").tokenize().unwrap_err();
        assert!(
            e.message
                .starts_with("end of file before end of quoted string"),
            "{e:?}"
        );
    }
}
