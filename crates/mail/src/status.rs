//! RFC 3463 enhanced status codes and the typed delivery [`Status`] that outcomes, queue state
//! and delivery status notifications carry.

use std::fmt;
use std::str::FromStr;

/// An RFC 3463 §2 enhanced status code, `class.subject.detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnhancedCode {
    /// 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    pub class: u8,
    /// 0–999.
    pub subject: u16,
    /// 0–999.
    pub detail: u16,
}

impl EnhancedCode {
    /// `2.0.0`: success, nothing more to say.
    pub const SUCCESS: EnhancedCode = EnhancedCode::new(2, 0, 0);
    /// `4.0.0`: a temporary failure, nothing more to say.
    pub const TEMPORARY: EnhancedCode = EnhancedCode::new(4, 0, 0);
    /// `5.0.0`: a permanent failure, nothing more to say.
    pub const PERMANENT: EnhancedCode = EnhancedCode::new(5, 0, 0);
    /// `5.4.7`: delivery time expired (RFC 3463 §3.5), for a temporary failure that lasted.
    pub const EXPIRED: EnhancedCode = EnhancedCode::new(5, 4, 7);

    /// The code `class.subject.detail` (not checked: use [`FromStr`] for text from elsewhere).
    pub const fn new(class: u8, subject: u16, detail: u16) -> EnhancedCode {
        EnhancedCode {
            class,
            subject,
            detail,
        }
    }

    /// Whether this is a success (class 2).
    pub fn is_success(self) -> bool {
        self.class == 2
    }

    /// Whether this is a temporary failure (class 4).
    pub fn is_temporary(self) -> bool {
        self.class == 4
    }

    /// Whether this is a permanent failure (class 5).
    pub fn is_permanent(self) -> bool {
        self.class == 5
    }

    /// The first enhanced status code in free text (an SMTP reply, a diagnostic written by older
    /// code), as a word delimited by white space, parentheses, `:` or `,`.
    pub fn find_in(text: &str) -> Option<EnhancedCode> {
        text.split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ':' || c == ',')
            .find_map(|w| w.parse().ok())
    }
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// Text that is not an RFC 3463 enhanced status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotACode;

impl fmt::Display for NotACode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an enhanced status code (class.subject.detail)")
    }
}

impl std::error::Error for NotACode {}

impl FromStr for EnhancedCode {
    type Err = NotACode;

    /// RFC 3463 §2: `class "." subject "." detail`, class 2, 4 or 5, subject and detail of one to
    /// three digits.
    fn from_str(s: &str) -> Result<EnhancedCode, NotACode> {
        let mut parts = s.split('.');
        let (Some(c), Some(s), Some(d), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(NotACode);
        };
        let class = match c {
            "2" => 2,
            "4" => 4,
            "5" => 5,
            _ => return Err(NotACode),
        };
        let num = |p: &str| {
            if (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) {
                p.parse::<u16>().map_err(|_| NotACode)
            } else {
                Err(NotACode)
            }
        };
        Ok(EnhancedCode::new(class, num(s)?, num(d)?))
    }
}

/// The status of a delivery attempt for one recipient: the code machines read, and the text
/// people read. The text is complete on its own (it is what logs, `mailq` and the human part of a
/// DSN show); for statuses postern makes it starts with the code, for a remote server's reply it
/// is the reply as received, which names its own code.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Status {
    /// The RFC 3463 code (the DSN's `Status:` field, RFC 3464 §2.3.4).
    pub code: EnhancedCode,
    /// The diagnostic text, one line.
    pub text: String,
}

impl Status {
    /// A status of our own: the text is the code, a space, then `detail`
    /// (`5.1.1 <a@b>: no such user here`).
    pub fn new(code: EnhancedCode, detail: impl fmt::Display) -> Status {
        Status {
            text: format!("{code} {detail}"),
            code,
        }
    }

    /// A status whose text is taken as it is (a remote reply that names its code in its own way).
    pub fn with_text(code: EnhancedCode, text: impl Into<String>) -> Status {
        Status {
            code,
            text: text.into(),
        }
    }

    /// A status from free text: the code is the first one the text names, or `default` when it
    /// names none. This is how statuses written as plain strings (older queue files) are read.
    pub fn from_text(text: impl Into<String>, default: EnhancedCode) -> Status {
        let text = text.into();
        Status {
            code: EnhancedCode::find_in(&text).unwrap_or(default),
            text,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_round_trip() {
        for s in ["2.0.0", "4.4.1", "5.1.1", "5.999.999", "4.10.2"] {
            let c: EnhancedCode = s.parse().unwrap();
            assert_eq!(c.to_string(), s);
        }
        assert_eq!(
            "5.1.1".parse::<EnhancedCode>(),
            Ok(EnhancedCode::new(5, 1, 1))
        );
    }

    #[test]
    fn code_refusals() {
        for s in [
            "", "5", "5.1", "3.1.1", "5.1.1.1", "5.1000.1", "5..1", "5.a.1", "05.1.1", "5.1.",
            "250",
        ] {
            assert!(s.parse::<EnhancedCode>().is_err(), "{s}");
        }
    }

    #[test]
    fn code_in_text() {
        let find = |t: &str| EnhancedCode::find_in(t).map(|c| c.to_string());
        assert_eq!(
            find("mx [1.2.3.4] said: 550 5.1.1 no such user").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(find("(4.4.1)").as_deref(), Some("4.4.1"));
        assert_eq!(find("mx [1.2.3.4] said: 550 no"), None);
        assert_eq!(find("version 1.2.3"), None);
        assert!(EnhancedCode::new(4, 0, 0).is_temporary());
        assert!(EnhancedCode::SUCCESS.is_success());
        assert!(EnhancedCode::EXPIRED.is_permanent());
    }

    #[test]
    fn status_text() {
        let s = Status::new(EnhancedCode::new(5, 1, 1), "<a@b>: no such user here");
        assert_eq!(s.to_string(), "5.1.1 <a@b>: no such user here");
        assert_eq!(
            Status::from_text(s.text.clone(), EnhancedCode::PERMANENT),
            s
        );
        let old = Status::from_text("connection refused", EnhancedCode::TEMPORARY);
        assert_eq!(old.code, EnhancedCode::TEMPORARY);
        assert_eq!(old.text, "connection refused");
        let remote = Status::with_text(EnhancedCode::new(4, 2, 2), "mx said: 452 4.2.2 full");
        assert_eq!(remote.to_string(), "mx said: 452 4.2.2 full");
    }
}
