//! The I/O-free POP3 command parser: one line in (with or without its CRLF), one [`Command`] out.
//!
//! RFC 1939 §3: a command is a case-insensitive keyword of three or four characters, possibly
//! followed by arguments separated by a single space. Clients in the wild sometimes send several
//! spaces or a bare LF; both are tolerated. The PASS argument is taken verbatim (spaces included,
//! RFC 1939 §7 note) because passwords may contain spaces.

use std::fmt;

/// Longest argument accepted for names and digests (RFC 1939 §3 says 40 octets; SASL initial
/// responses and UTF-8 user names are longer, so the session's line limit is the real bound).
pub const MAX_ARGUMENT_LEN: usize = 1024;

/// One POP3 command with its arguments.
#[derive(Clone, PartialEq, Eq)]
pub enum Command {
    /// RFC 1939 §7 USER name.
    User(String),
    /// RFC 1939 §7 PASS string (raw bytes: the directory checks them).
    Pass(Vec<u8>),
    /// RFC 1939 §7 APOP name digest.
    Apop {
        /// The mailbox name.
        name: String,
        /// MD5 of the greeting's timestamp and the shared secret, 32 hex digits.
        digest: String,
    },
    /// RFC 5034 §4 AUTH mechanism [initial-response]; without a mechanism, the RFC 1734 listing.
    Auth {
        /// The SASL mechanism name; `None` asks for the list.
        mechanism: Option<String>,
        /// The initial response as sent, still base64 (RFC 5034 §4).
        initial_response: Option<String>,
    },
    /// RFC 2595 §4 STLS.
    Stls,
    /// RFC 2449 §5 CAPA.
    Capa,
    /// RFC 6856 §2 UTF8.
    Utf8,
    /// RFC 1939 §5 STAT.
    Stat,
    /// RFC 1939 §5 LIST [msg].
    List(Option<u32>),
    /// RFC 1939 §5 RETR msg.
    Retr(u32),
    /// RFC 1939 §5 DELE msg.
    Dele(u32),
    /// RFC 1939 §5 NOOP.
    Noop,
    /// RFC 1939 §5 RSET.
    Rset,
    /// RFC 1939 §7 TOP msg n.
    Top {
        /// The message number.
        msg: u32,
        /// How many body lines to send after the header.
        lines: u32,
    },
    /// RFC 1939 §7 UIDL [msg].
    Uidl(Option<u32>),
    /// RFC 1939 §5/§6 QUIT.
    Quit,
}

impl fmt::Debug for Command {
    /// Never prints a password or a SASL response (logs must not carry secrets).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::User(u) => write!(f, "USER {u}"),
            Command::Pass(_) => f.write_str("PASS <hidden>"),
            Command::Apop { name, .. } => write!(f, "APOP {name} <digest>"),
            Command::Auth { mechanism, .. } => {
                write!(f, "AUTH {}", mechanism.as_deref().unwrap_or(""))
            }
            Command::Stls => f.write_str("STLS"),
            Command::Capa => f.write_str("CAPA"),
            Command::Utf8 => f.write_str("UTF8"),
            Command::Stat => f.write_str("STAT"),
            Command::List(n) => write!(f, "LIST {n:?}"),
            Command::Retr(n) => write!(f, "RETR {n}"),
            Command::Dele(n) => write!(f, "DELE {n}"),
            Command::Noop => f.write_str("NOOP"),
            Command::Rset => f.write_str("RSET"),
            Command::Top { msg, lines } => write!(f, "TOP {msg} {lines}"),
            Command::Uidl(n) => write!(f, "UIDL {n:?}"),
            Command::Quit => f.write_str("QUIT"),
        }
    }
}

/// Why a line is not a valid command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// An empty line.
    #[error("empty command")]
    Empty,
    /// A keyword this server does not know (RFC 1939 §3: answered with `-ERR`).
    #[error("unknown command")]
    Unknown,
    /// The keyword is known but its arguments are wrong.
    #[error("{0}")]
    Syntax(&'static str),
}

/// Parses one command line. The trailing CRLF (or LF) is optional.
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    let line = strip_eol(line);
    if line.iter().all(|b| *b == b' ') {
        return Err(ParseError::Empty);
    }
    let (keyword, rest) = match line.iter().position(|b| *b == b' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, &line[line.len()..]),
    };
    if keyword.len() > 4 || !keyword.iter().all(u8::is_ascii_alphanumeric) {
        return Err(ParseError::Unknown);
    }
    let keyword = keyword.to_ascii_uppercase();
    // PASS keeps its argument verbatim; everything else splits on spaces.
    if keyword == b"PASS" {
        if rest.is_empty() {
            return Err(ParseError::Syntax("PASS needs a password"));
        }
        return Ok(Command::Pass(rest.to_vec()));
    }
    let args: Vec<&[u8]> = rest
        .split(|b| *b == b' ')
        .filter(|a| !a.is_empty())
        .collect();
    let count = |n: usize, what: &'static str| {
        if args.len() == n {
            Ok(())
        } else {
            Err(ParseError::Syntax(what))
        }
    };
    let optional_number = |what: &'static str| -> Result<Option<u32>, ParseError> {
        match args.as_slice() {
            [] => Ok(None),
            [n] => number(n).map(Some),
            _ => Err(ParseError::Syntax(what)),
        }
    };
    match keyword.as_slice() {
        b"USER" => {
            count(1, "USER needs exactly one name")?;
            Ok(Command::User(text(args[0])?))
        }
        b"APOP" => {
            count(2, "APOP needs a name and a digest")?;
            Ok(Command::Apop {
                name: text(args[0])?,
                digest: text(args[1])?,
            })
        }
        b"AUTH" => match args.as_slice() {
            [] => Ok(Command::Auth {
                mechanism: None,
                initial_response: None,
            }),
            [m] => Ok(Command::Auth {
                mechanism: Some(text(m)?),
                initial_response: None,
            }),
            [m, ir] => Ok(Command::Auth {
                mechanism: Some(text(m)?),
                initial_response: Some(text(ir)?),
            }),
            _ => Err(ParseError::Syntax(
                "AUTH takes a mechanism and an initial response",
            )),
        },
        b"STLS" => no_args(&args, Command::Stls),
        b"CAPA" => no_args(&args, Command::Capa),
        b"UTF8" => no_args(&args, Command::Utf8),
        b"STAT" => no_args(&args, Command::Stat),
        b"NOOP" => no_args(&args, Command::Noop),
        b"RSET" => no_args(&args, Command::Rset),
        b"QUIT" => no_args(&args, Command::Quit),
        b"LIST" => Ok(Command::List(optional_number(
            "LIST takes at most one message number",
        )?)),
        b"UIDL" => Ok(Command::Uidl(optional_number(
            "UIDL takes at most one message number",
        )?)),
        b"RETR" => {
            count(1, "RETR needs a message number")?;
            Ok(Command::Retr(number(args[0])?))
        }
        b"DELE" => {
            count(1, "DELE needs a message number")?;
            Ok(Command::Dele(number(args[0])?))
        }
        b"TOP" => {
            count(2, "TOP needs a message number and a line count")?;
            Ok(Command::Top {
                msg: number(args[0])?,
                lines: number(args[1])?,
            })
        }
        _ => Err(ParseError::Unknown),
    }
}

fn no_args(args: &[&[u8]], cmd: Command) -> Result<Command, ParseError> {
    if args.is_empty() {
        Ok(cmd)
    } else {
        Err(ParseError::Syntax("this command takes no arguments"))
    }
}

/// Strips one trailing CRLF or LF.
fn strip_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A non-negative decimal number (RFC 1939 §3: message numbers and line counts).
fn number(arg: &[u8]) -> Result<u32, ParseError> {
    if arg.is_empty() || arg.len() > 10 || !arg.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::Syntax("invalid number"));
    }
    std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(ParseError::Syntax("number out of range"))
}

/// A printable UTF-8 argument (RFC 6856 allows UTF-8 user names).
fn text(arg: &[u8]) -> Result<String, ParseError> {
    if arg.len() > MAX_ARGUMENT_LEN {
        return Err(ParseError::Syntax("argument too long"));
    }
    let s = std::str::from_utf8(arg).map_err(|_| ParseError::Syntax("argument is not UTF-8"))?;
    if s.chars().any(char::is_control) {
        return Err(ParseError::Syntax("control character in argument"));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_case_insensitive_and_eol_optional() {
        assert_eq!(parse(b"stat\r\n"), Ok(Command::Stat));
        assert_eq!(parse(b"StAt"), Ok(Command::Stat));
        assert_eq!(parse(b"QUIT\n"), Ok(Command::Quit));
        assert_eq!(parse(b"capa\r\n"), Ok(Command::Capa));
        assert_eq!(parse(b"utf8\r\n"), Ok(Command::Utf8));
        assert_eq!(parse(b"stls\r\n"), Ok(Command::Stls));
        assert_eq!(parse(b"noop"), Ok(Command::Noop));
        assert_eq!(parse(b"rset"), Ok(Command::Rset));
    }

    #[test]
    fn message_numbers() {
        assert_eq!(parse(b"LIST\r\n"), Ok(Command::List(None)));
        assert_eq!(parse(b"LIST 3\r\n"), Ok(Command::List(Some(3))));
        assert_eq!(parse(b"UIDL\r\n"), Ok(Command::Uidl(None)));
        assert_eq!(parse(b"uidl 12\r\n"), Ok(Command::Uidl(Some(12))));
        assert_eq!(parse(b"RETR 1\r\n"), Ok(Command::Retr(1)));
        assert_eq!(parse(b"DELE 4294967295"), Ok(Command::Dele(u32::MAX)));
        assert_eq!(parse(b"TOP 2 0\r\n"), Ok(Command::Top { msg: 2, lines: 0 }));
        // Tolerated: several spaces.
        assert_eq!(parse(b"RETR  7"), Ok(Command::Retr(7)));
        for bad in [
            &b"RETR"[..],
            b"RETR x",
            b"RETR -1",
            b"RETR +1",
            b"RETR 4294967296",
            b"RETR 99999999999",
            b"LIST 1 2",
            b"TOP 1",
            b"DELE 1 2",
            b"STAT 1",
        ] {
            assert!(
                matches!(parse(bad), Err(ParseError::Syntax(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn authorization_commands() {
        assert_eq!(
            parse(b"USER alice@example.org\r\n"),
            Ok(Command::User("alice@example.org".into()))
        );
        assert_eq!(
            parse(b"PASS with spaces inside \r\n"),
            Ok(Command::Pass(b"with spaces inside ".to_vec()))
        );
        assert_eq!(
            parse(b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n"),
            Ok(Command::Apop {
                name: "mrose".into(),
                digest: "c4c9334bac560ecc979e58001b3e22fb".into()
            })
        );
        assert_eq!(
            parse(b"AUTH\r\n"),
            Ok(Command::Auth {
                mechanism: None,
                initial_response: None
            })
        );
        assert_eq!(
            parse(b"AUTH plain AGEAYg==\r\n"),
            Ok(Command::Auth {
                mechanism: Some("plain".into()),
                initial_response: Some("AGEAYg==".into())
            })
        );
        assert_eq!(
            parse("USER jösé@exämple.org".as_bytes()),
            Ok(Command::User("jösé@exämple.org".into()))
        );
        assert!(matches!(parse(b"USER"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"USER a b"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"PASS"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"APOP x"), Err(ParseError::Syntax(_))));
        assert!(matches!(
            parse(b"USER \xff\xfe"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(parse(b"AUTH a b c"), Err(ParseError::Syntax(_))));
    }

    #[test]
    fn unknown_and_empty() {
        assert_eq!(parse(b"\r\n"), Err(ParseError::Empty));
        assert_eq!(parse(b"   "), Err(ParseError::Empty));
        assert_eq!(parse(b"RPOP x\r\n"), Err(ParseError::Unknown));
        assert_eq!(parse(b"XTND XMIT\r\n"), Err(ParseError::Unknown));
        assert_eq!(parse(b"STATISTICS\r\n"), Err(ParseError::Unknown));
        assert_eq!(parse(b"\xff\xff\r\n"), Err(ParseError::Unknown));
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Err(ParseError::Unknown));
    }

    #[test]
    fn debug_hides_secrets() {
        let s = format!("{:?}", parse(b"PASS hunter2").unwrap());
        assert!(!s.contains("hunter2"));
        let s = format!("{:?}", parse(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==").unwrap());
        assert!(!s.contains("AGFs"));
        let s = format!("{:?}", parse(b"APOP bob 0123456789abcdef").unwrap());
        assert!(!s.contains("0123"));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..300 {
            let line: Vec<u8> = (0..len % 40)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed & 0xff) as u8
                })
                .collect();
            let _ = parse(&line);
        }
    }
}
