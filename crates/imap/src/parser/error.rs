//! Why a command could not be parsed. Every variant is answered with a tagged (or, without a
//! tag, untagged) `BAD` whose text is this error's `Display` (RFC 9051 §7.1.3).
//!
//! The lexical variants (strings, literals, numbers) carry no IMAP command type, so a
//! ManageSieve parser (RFC 5804 §4) built on [`super::lexer::Lexer`] can use them as they are.

/// Why a command could not be parsed (answered with `BAD`, RFC 9051 §7.1.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A literal token was required (RFC 9051 §9 punctuation such as `"("`, `" "`, `"]"`).
    #[error("expected '{}'", String::from_utf8_lossy(.0))]
    ExpectedToken(&'static [u8]),
    /// A grammar element was required (e.g. "an atom", "a number", "a string").
    #[error("expected {0}")]
    Expected(&'static str),
    /// RFC 9051 §9 `command` ends with CRLF: something followed a complete command.
    #[error("unexpected characters at end of command")]
    TrailingData,
    /// RFC 9051 §9 `tag`: the line does not start with one.
    #[error("missing tag")]
    MissingTag,
    /// RFC 9051 §9 `number` / `number64` / `nz-number` out of range.
    #[error("number too large")]
    BadNumber,
    /// RFC 9051 §9 `nz-number`: zero where only a positive number is allowed.
    #[error("expected a number above zero")]
    ZeroNumber,
    /// RFC 9051 §9 `quoted`: no closing `"` before CR, LF or the end.
    #[error("unterminated quoted string")]
    UnterminatedQuoted,
    /// RFC 9051 §9 `QUOTED-CHAR` excludes NUL.
    #[error("NUL is not allowed in a quoted string")]
    NulInQuoted,
    /// RFC 9051 §9 `quoted-specials`: only `"` and `\` may follow a backslash.
    #[error("bad escape in quoted string")]
    BadEscape,
    /// RFC 9051 §9 `literal` / RFC 3516 `literal8` that is malformed (the text says how).
    #[error("{0}")]
    BadLiteral(&'static str),
    /// RFC 3516 §4.4: a `literal8` (`~{n}`) where only `string` is allowed.
    #[error("literal8 not allowed here")]
    Literal8NotAllowed,
    /// Octets that must be UTF-8 (RFC 9051 §9 `astring` of a user name) are not.
    #[error("invalid UTF-8")]
    InvalidUtf8,
    /// RFC 9051 §9 `sequence-set`: a zero sequence number.
    #[error("sequence numbers start at 1")]
    BadSequenceSet,
    /// RFC 9051 §9 `date` is malformed.
    #[error("bad date")]
    BadDate,
    /// RFC 9051 §9 `date-time` is malformed.
    #[error("bad date-time")]
    BadDateTime,
    /// RFC 9051 §9 `command`: an unknown command name.
    #[error("unknown command {0}")]
    UnknownCommand(String),
    /// RFC 9051 §6.4.9 UID: an unknown command after `UID`.
    #[error("unknown UID command {0}")]
    UnknownUidCommand(String),
    /// An unknown keyword of a known kind: `what` is e.g. "search key", `name` the word seen.
    #[error("unknown {what} {name}")]
    Unknown {
        /// What kind of keyword (e.g. "fetch item", "LIST return option").
        what: &'static str,
        /// The keyword as the client sent it (possibly upper-cased).
        name: String,
    },
    /// RFC 9051 §6.4.4 search keys nested beyond the parser's bound.
    #[error("search key nested too deeply")]
    TooDeep,
    /// Any other grammar violation, with its human text.
    #[error("{0}")]
    Invalid(String),
}

impl ParseError {
    /// The human text answered after `BAD` (the `Display` form).
    pub fn text(&self) -> String {
        self.to_string()
    }
}

/// `Err(ParseError::Invalid(msg))`.
pub(crate) fn invalid<T>(msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError::Invalid(msg.into()))
}
