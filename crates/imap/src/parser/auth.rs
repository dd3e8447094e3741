//! AUTHENTICATE, LOGIN, ENABLE and ID arguments (RFC 9051 §6.2.2, §6.2.3, §6.3.1; RFC 2971).

use super::error::{invalid, ParseError};
use super::lexer::Lexer;
use super::CommandKind;

/// RFC 9051 §6.2.2 AUTHENTICATE (after the verb): mechanism and RFC 4959 initial response.
pub(super) fn parse_authenticate(c: &mut Lexer) -> Result<CommandKind, ParseError> {
    c.sp()?;
    let mechanism = c.atom()?.to_ascii_uppercase();
    let initial = if c.eat(b' ') {
        let a = c.take_while(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=');
        if a.is_empty() {
            return Err(ParseError::Expected("an initial response"));
        }
        Some(a.to_vec())
    } else {
        None
    };
    Ok(CommandKind::Authenticate { mechanism, initial })
}

/// RFC 9051 §6.2.3 LOGIN (after the verb): `userid SP password`.
pub(super) fn parse_login(c: &mut Lexer) -> Result<CommandKind, ParseError> {
    c.sp()?;
    let user = c.astring_utf8()?;
    c.sp()?;
    let password = c.astring()?;
    Ok(CommandKind::Login { user, password })
}

/// RFC 9051 §6.3.1 ENABLE (RFC 5161 §3.1) after the verb: `1*(SP capability)`, upper-cased.
pub(super) fn parse_enable(c: &mut Lexer) -> Result<CommandKind, ParseError> {
    let mut caps = Vec::new();
    while c.eat(b' ') {
        caps.push(c.atom()?.to_ascii_uppercase());
    }
    if caps.is_empty() {
        return invalid("ENABLE needs a capability");
    }
    Ok(CommandKind::Enable(caps))
}

/// RFC 2971 §4 ID (after the verb): `"(" *(string SP nstring) ")" / nil`, validated loosely
/// and then ignored.
pub(super) fn parse_id(c: &mut Lexer) -> Result<CommandKind, ParseError> {
    c.sp()?;
    if c.eat(b'(') {
        c.list_items(false, |c| {
            c.string()?;
            c.sp()?;
            c.nstring()
        })?;
    } else {
        let a = c.atom()?;
        if !a.eq_ignore_ascii_case("NIL") {
            return invalid("ID expects a list or NIL");
        }
    }
    Ok(CommandKind::Id)
}

#[cfg(test)]
mod tests {
    use super::super::{parse_command, CommandKind};
    use crate::parser::testing::p;

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
    fn authenticate_enable_id() {
        assert_eq!(
            p("a AUTHENTICATE plain AGFsaWNlAHB3"),
            CommandKind::Authenticate {
                mechanism: "PLAIN".into(),
                initial: Some(b"AGFsaWNlAHB3".to_vec())
            }
        );
        assert_eq!(
            p("a ENABLE qresync CONDSTORE"),
            CommandKind::Enable(vec!["QRESYNC".into(), "CONDSTORE".into()])
        );
        assert!(parse_command(b"a ENABLE").is_err());
        assert_eq!(p("a ID (\"name\" \"x\" \"version\" NIL)"), CommandKind::Id);
        assert_eq!(p("a ID nil"), CommandKind::Id);
        assert!(parse_command(b"a ID (\"name\")").is_err());
    }
}
