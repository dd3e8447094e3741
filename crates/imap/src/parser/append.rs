//! APPEND arguments (RFC 9051 §6.3.12, RFC 3502 MULTIAPPEND, RFC 3516 §4.4 literal8).

use super::date::parse_date_time;
use super::error::{invalid, ParseError};
use super::lexer::Lexer;
use super::store::flag_list;
use super::CommandKind;

/// One message of APPEND (RFC 9051 §9 `append-message`; several with RFC 3502 MULTIAPPEND).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    /// The flags to set on the message (`\Seen`, keywords); empty if none were given.
    pub flags: Vec<String>,
    /// The internal date (RFC 9051 `date-time`) as Unix seconds; `None`: now.
    pub date: Option<i64>,
    /// The message octets as sent.
    pub data: Vec<u8>,
    /// Sent as an RFC 3516 `literal8`.
    pub binary: bool,
}

/// RFC 9051 §6.3.12 APPEND (after the verb): `mailbox 1*(SP [flag-list SP] [date-time SP]
/// append-data)`.
pub(super) fn parse_append(c: &mut Lexer) -> Result<CommandKind, ParseError> {
    c.sp()?;
    let mailbox = c.astring()?;
    let mut messages = Vec::new();
    while c.eat(b' ') {
        let mut flags = Vec::new();
        let mut date = None;
        if c.peek() == Some(b'(') {
            flags = flag_list(c)?;
            c.sp()?;
        }
        if c.peek() == Some(b'"') {
            let d = c.quoted()?;
            date = Some(parse_date_time(&d).ok_or(ParseError::BadDateTime)?);
            c.sp()?;
        }
        let (data, binary) = if c.peek() == Some(b'{') || c.peek() == Some(b'~') {
            c.literal_or_literal8()?
        } else {
            // RFC 4469 CATENATE / UTF8 (...) forms are not supported.
            let a = c.atom()?.to_ascii_uppercase();
            if a == "UTF8" {
                c.sp()?;
                c.expect(b"(")?;
                let l = c.literal_or_literal8()?;
                c.expect(b")")?;
                l
            } else {
                return Err(ParseError::Expected("a message literal"));
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
        return invalid("APPEND needs a message");
    }
    Ok(CommandKind::Append { mailbox, messages })
}

#[cfg(test)]
mod tests {
    use super::super::{days_from_civil, parse_command, CommandKind};
    use crate::parser::testing::p;

    #[test]
    fn append_with_flags_and_date() {
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
    }

    #[test]
    fn append_crlf_literal() {
        let cmd = b"A002 APPEND INBOX {14}\r\nSubject: x\r\n\r\n\r\n";
        let r = parse_command(cmd);
        assert!(r.is_ok(), "{r:?}");
    }

    #[test]
    fn multiappend_and_literal8() {
        match p("a APPEND x {1}\r\na (\\Draft) ~{2}\r\nb\0") {
            CommandKind::Append { messages, .. } => {
                assert_eq!(messages.len(), 2);
                assert!(!messages[0].binary && messages[1].binary);
                assert_eq!(messages[1].flags, vec!["\\Draft".to_string()]);
            }
            o => panic!("{o:?}"),
        }
        assert_eq!(
            parse_command(b"a APPEND x \"bad\" {1}\r\na")
                .unwrap_err()
                .1
                .to_string(),
            "bad date-time"
        );
        assert!(parse_command(b"a APPEND x").is_err());
    }
}
