//! The I/O-free ManageSieve command parser (RFC 5804 §4 formal syntax): the octets of one
//! complete command (literals inlined as `{n}\r\n<n octets>` or `{n+}\r\n<n octets>`, the final
//! CRLF stripped or not) in, a [`Command`] out. Never panics on input.
//!
//! Strings are IMAP's (RFC 5804 §4 `string = quoted / literal`), so the IMAP lexer reads them.

use postern_imap::parser::{Lexer, ParseError};

/// One client command (RFC 5804 §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// RFC 5804 §2.1 AUTHENTICATE mechanism [initial-response]
    Authenticate {
        /// The SASL mechanism name, upper-cased.
        mechanism: String,
        /// The initial response, still base64.
        initial: Option<Vec<u8>>,
    },
    /// RFC 5804 §2.2 STARTTLS
    StartTls,
    /// RFC 5804 §2.3 LOGOUT
    Logout,
    /// RFC 5804 §2.4 CAPABILITY
    Capability,
    /// RFC 5804 §2.5 HAVESPACE name size
    HaveSpace {
        /// The script name.
        name: String,
        /// The size the client wants to store, in octets.
        size: u64,
    },
    /// RFC 5804 §2.6 PUTSCRIPT name content
    PutScript {
        /// The script name.
        name: String,
        /// The script's octets.
        script: Vec<u8>,
    },
    /// RFC 5804 §2.7 LISTSCRIPTS
    ListScripts,
    /// RFC 5804 §2.8 SETACTIVE name (empty: deactivate)
    SetActive(String),
    /// RFC 5804 §2.9 GETSCRIPT name
    GetScript(String),
    /// RFC 5804 §2.10 DELETESCRIPT name
    DeleteScript(String),
    /// RFC 5804 §2.11.1 RENAMESCRIPT old new
    RenameScript {
        /// The current name.
        old: String,
        /// The name it gets.
        new: String,
    },
    /// RFC 5804 §2.12 CHECKSCRIPT content
    CheckScript(Vec<u8>),
    /// RFC 5804 §2.13 NOOP [tag]
    Noop(Option<Vec<u8>>),
    /// RFC 5804 §2.14.1 UNAUTHENTICATE
    Unauthenticate,
}

impl Command {
    /// The command's name as RFC 5804 spells it, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Authenticate { .. } => "AUTHENTICATE",
            Command::StartTls => "STARTTLS",
            Command::Logout => "LOGOUT",
            Command::Capability => "CAPABILITY",
            Command::HaveSpace { .. } => "HAVESPACE",
            Command::PutScript { .. } => "PUTSCRIPT",
            Command::ListScripts => "LISTSCRIPTS",
            Command::SetActive(_) => "SETACTIVE",
            Command::GetScript(_) => "GETSCRIPT",
            Command::DeleteScript(_) => "DELETESCRIPT",
            Command::RenameScript { .. } => "RENAMESCRIPT",
            Command::CheckScript(_) => "CHECKSCRIPT",
            Command::Noop(_) => "NOOP",
            Command::Unauthenticate => "UNAUTHENTICATE",
        }
    }
}

/// RFC 5804 §4 `sieve-name = string`: UTF-8 (§1.6).
fn name(l: &mut Lexer<'_>) -> Result<String, ParseError> {
    String::from_utf8(l.string()?).map_err(|_| ParseError::InvalidUtf8)
}

/// RFC 5804 §4 `number`: up to 4294967295 (§4: "number = 1*DIGIT ; 0 - 4294967295").
fn number(l: &mut Lexer<'_>) -> Result<u64, ParseError> {
    Ok(u64::from(l.number()?))
}

/// Parses one complete command (RFC 5804 §4 `command`).
pub fn parse(input: &[u8]) -> Result<Command, ParseError> {
    let input = input
        .strip_suffix(b"\r\n")
        .or_else(|| input.strip_suffix(b"\n"))
        .unwrap_or(input);
    let mut l = Lexer::new(input);
    let verb = l
        .take_while(|b| b.is_ascii_alphabetic())
        .to_ascii_uppercase();
    if verb.is_empty() {
        return Err(ParseError::Expected("a command"));
    }
    let cmd = match verb.as_slice() {
        b"AUTHENTICATE" => {
            l.sp()?;
            let mechanism = String::from_utf8(l.string()?)
                .map_err(|_| ParseError::InvalidUtf8)?
                .to_ascii_uppercase();
            let initial = if l.eat(b' ') { Some(l.string()?) } else { None };
            Command::Authenticate { mechanism, initial }
        }
        b"STARTTLS" => Command::StartTls,
        b"LOGOUT" => Command::Logout,
        b"CAPABILITY" => Command::Capability,
        b"HAVESPACE" => {
            l.sp()?;
            let name = name(&mut l)?;
            l.sp()?;
            let size = number(&mut l)?;
            Command::HaveSpace { name, size }
        }
        b"PUTSCRIPT" => {
            l.sp()?;
            let name = name(&mut l)?;
            l.sp()?;
            let script = l.string()?;
            Command::PutScript { name, script }
        }
        b"LISTSCRIPTS" => Command::ListScripts,
        b"SETACTIVE" => {
            l.sp()?;
            Command::SetActive(name(&mut l)?)
        }
        b"GETSCRIPT" => {
            l.sp()?;
            Command::GetScript(name(&mut l)?)
        }
        b"DELETESCRIPT" => {
            l.sp()?;
            Command::DeleteScript(name(&mut l)?)
        }
        b"RENAMESCRIPT" => {
            l.sp()?;
            let old = name(&mut l)?;
            l.sp()?;
            let new = name(&mut l)?;
            Command::RenameScript { old, new }
        }
        b"CHECKSCRIPT" => {
            l.sp()?;
            Command::CheckScript(l.string()?)
        }
        b"NOOP" => {
            let tag = if l.eat(b' ') { Some(l.string()?) } else { None };
            Command::Noop(tag)
        }
        b"UNAUTHENTICATE" => Command::Unauthenticate,
        _ => {
            return Err(ParseError::UnknownCommand(
                String::from_utf8_lossy(&verb).into_owned(),
            ))
        }
    };
    l.eol()?;
    Ok(cmd)
}

/// One line of a SASL exchange from the client (RFC 5804 §2.1: `string` with base64, or
/// `"*"` to cancel): the string's octets.
pub fn parse_sasl_response(input: &[u8]) -> Result<Vec<u8>, ParseError> {
    let input = input
        .strip_suffix(b"\r\n")
        .or_else(|| input.strip_suffix(b"\n"))
        .unwrap_or(input);
    let mut l = Lexer::new(input);
    let s = l.string()?;
    l.eol()?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_commands_any_case() {
        assert_eq!(parse(b"CAPABILITY\r\n").unwrap(), Command::Capability);
        assert_eq!(parse(b"capability").unwrap(), Command::Capability);
        assert_eq!(parse(b"Logout\r\n").unwrap(), Command::Logout);
        assert_eq!(parse(b"STARTTLS").unwrap(), Command::StartTls);
        assert_eq!(parse(b"LISTSCRIPTS").unwrap(), Command::ListScripts);
        assert_eq!(parse(b"UNAUTHENTICATE").unwrap(), Command::Unauthenticate);
        assert_eq!(parse(b"NOOP").unwrap(), Command::Noop(None));
        // RFC 5804 §2.13 example: NOOP "STARTTLS-SYNC-42".
        assert_eq!(
            parse(b"NOOP \"STARTTLS-SYNC-42\"").unwrap(),
            Command::Noop(Some(b"STARTTLS-SYNC-42".to_vec()))
        );
    }

    #[test]
    fn authenticate_with_and_without_initial_response() {
        // RFC 5804 §2.1 examples.
        assert_eq!(
            parse(b"Authenticate \"PLAIN\" \"QJIrweAPyo6Q1T9xy\"").unwrap(),
            Command::Authenticate {
                mechanism: "PLAIN".into(),
                initial: Some(b"QJIrweAPyo6Q1T9xy".to_vec())
            }
        );
        assert_eq!(
            parse(b"AUTHENTICATE \"digest-md5\"").unwrap(),
            Command::Authenticate {
                mechanism: "DIGEST-MD5".into(),
                initial: None
            }
        );
        assert_eq!(
            parse(b"AUTHENTICATE \"PLAIN\" {8+}\r\nAGEAYgBj").unwrap(),
            Command::Authenticate {
                mechanism: "PLAIN".into(),
                initial: Some(b"AGEAYgBj".to_vec())
            }
        );
    }

    #[test]
    fn putscript_with_literals() {
        // RFC 5804 §2.6 example (non-synchronising literal), and a synchronising one.
        let script = b"#comment\r\nInvalidSieveCommand\r\n";
        let mut cmd = b"Putscript \"foo\" {31+}\r\n".to_vec();
        cmd.extend_from_slice(script);
        cmd.extend_from_slice(b"\r\n");
        assert_eq!(
            parse(&cmd).unwrap(),
            Command::PutScript {
                name: "foo".into(),
                script: script.to_vec()
            }
        );
        let cmd = b"PUTSCRIPT {4}\r\nmain {5}\r\nkeep;";
        assert_eq!(
            parse(cmd).unwrap(),
            Command::PutScript {
                name: "main".into(),
                script: b"keep;".to_vec()
            }
        );
        assert_eq!(
            parse(b"CHECKSCRIPT \"keep;\"").unwrap(),
            Command::CheckScript(b"keep;".to_vec())
        );
    }

    #[test]
    fn names_and_numbers() {
        assert_eq!(
            parse(b"HAVESPACE \"myscript\" 999999").unwrap(),
            Command::HaveSpace {
                name: "myscript".into(),
                size: 999_999
            }
        );
        assert_eq!(
            parse(b"havespace \"x\" 4294967296"),
            Err(ParseError::BadNumber)
        );
        assert_eq!(
            parse(b"SETACTIVE \"\"").unwrap(),
            Command::SetActive(String::new())
        );
        assert_eq!(
            parse(b"GETSCRIPT \"\xc3\xa9t\xc3\xa9\"").unwrap(),
            Command::GetScript("été".into())
        );
        assert_eq!(parse(b"GETSCRIPT \"\xff\""), Err(ParseError::InvalidUtf8));
        assert_eq!(
            parse(b"RENAMESCRIPT \"a\" \"b\"").unwrap(),
            Command::RenameScript {
                old: "a".into(),
                new: "b".into()
            }
        );
        assert_eq!(
            parse(b"DELETESCRIPT \"a\"").unwrap(),
            Command::DeleteScript("a".into())
        );
    }

    #[test]
    fn malformed_commands() {
        assert_eq!(
            parse(b"FROB"),
            Err(ParseError::UnknownCommand("FROB".into()))
        );
        assert_eq!(parse(b""), Err(ParseError::Expected("a command")));
        assert_eq!(parse(b"   "), Err(ParseError::Expected("a command")));
        assert_eq!(parse(b"LOGOUT now"), Err(ParseError::TrailingData));
        // Atoms are not strings in ManageSieve (RFC 5804 §4: sieve-name = string).
        assert_eq!(
            parse(b"GETSCRIPT foo"),
            Err(ParseError::Expected("a string"))
        );
        assert_eq!(
            parse(b"GETSCRIPT \"foo"),
            Err(ParseError::UnterminatedQuoted)
        );
        assert_eq!(
            parse(b"PUTSCRIPT \"a\" {10+}\r\nshort"),
            Err(ParseError::BadLiteral("literal shorter than announced"))
        );
        assert_eq!(
            parse(b"RENAMESCRIPT \"a\""),
            Err(ParseError::ExpectedToken(b" "))
        );
    }

    #[test]
    fn sasl_responses() {
        assert_eq!(
            parse_sasl_response(b"\"AGEAYgBj\"\r\n").unwrap(),
            b"AGEAYgBj"
        );
        assert_eq!(parse_sasl_response(b"{4+}\r\nabcd").unwrap(), b"abcd");
        assert_eq!(parse_sasl_response(b"\"*\"").unwrap(), b"*");
        assert!(parse_sasl_response(b"abc").is_err());
    }
}
