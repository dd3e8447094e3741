//! I/O-free SMTP command parsing: one command line (without its CRLF) in, a [`Command`] out.
//!
//! Addresses are parsed per RFC 5321 §4.1.2 (Path, Mailbox, quoted local parts, address literals) and
//! RFC 6531 §3.3 (UTF-8 in local parts and domains). Source routes (`<@a,@b:user@c>`) are accepted as
//! syntax and ignored, as RFC 5321 §4.1.1.3 and Appendix C require: the mailbox after the route is the
//! address, so a route is never a path to another host. `%` and `!` are plain local-part characters.

use postern_directory::address::is_dot_string;
use std::fmt;

/// One parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// RFC 5321 §4.1.1.1.
    Ehlo(String),
    /// RFC 5321 §4.1.1.1.
    Helo(String),
    /// RFC 2033 §4.1: LMTP's greeting command, EHLO's twin (an unknown command in SMTP).
    Lhlo(String),
    /// RFC 5321 §4.1.1.2.
    Mail {
        /// The reverse-path; `None` for the null path `<>` (bounces, RFC 5321 §4.5.5).
        sender: Option<Mailbox>,
        /// The Mail-parameters, in the order given.
        params: Vec<Param>,
    },
    /// RFC 5321 §4.1.1.3.
    Rcpt {
        /// The forward-path (any source route dropped).
        recipient: Mailbox,
        /// The Rcpt-parameters, in the order given.
        params: Vec<Param>,
    },
    /// RFC 5321 §4.1.1.4.
    Data,
    /// RFC 3030 §2.
    Bdat {
        /// The chunk's length in octets.
        size: u64,
        /// `LAST` was given: this chunk ends the message.
        last: bool,
    },
    /// RFC 5321 §4.1.1.5.
    Rset,
    /// RFC 5321 §4.1.1.6.
    Vrfy(String),
    /// RFC 5321 §4.1.1.7.
    Expn(String),
    /// RFC 5321 §4.1.1.8.
    Help,
    /// RFC 5321 §4.1.1.9.
    Noop,
    /// RFC 5321 §4.1.1.10.
    Quit,
    /// RFC 3207 §4.
    StartTls,
    /// RFC 4954 §4: mechanism and the optional initial response (still base64, `=` for empty).
    Auth {
        /// The SASL mechanism name as the client wrote it.
        mechanism: String,
        /// The initial response, still base64 (`=` for an empty one); `None` when not given.
        initial: Option<String>,
    },
}

/// Why a line is not a valid command; each maps to its reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// `500 5.5.2`: not a command we know (RFC 5321 §4.2.4).
    #[error("command not recognised")]
    Unknown,
    /// `501 5.5.4`: a known command with bad arguments.
    #[error("{0}")]
    Syntax(&'static str),
    /// `501 5.1.7` / `501 5.1.3`: bad address syntax (RFC 3463).
    #[error("{0}")]
    Address(&'static str),
}

/// An RFC 5321 Mailbox: the local part as its content (unquoted) and the domain as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The local part, unquoted and unescaped.
    pub local: String,
    /// The domain or address literal (`[192.0.2.1]`), as written.
    pub domain: String,
}

impl Mailbox {
    /// Whether any part is non-ASCII (needs SMTPUTF8, RFC 6531 §3.4).
    pub fn is_utf8(&self) -> bool {
        !self.local.is_ascii() || !self.domain.is_ascii()
    }
}

impl fmt::Display for Mailbox {
    /// The mailbox as it goes on the wire: the local part quoted when it is not a dot-string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_dot_string(&self.local) {
            write!(f, "{}@{}", self.local, self.domain)
        } else {
            f.write_str("\"")?;
            for c in self.local.chars() {
                if c == '"' || c == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
            write!(f, "\"@{}", self.domain)
        }
    }
}

/// An ESMTP parameter (RFC 5321 §4.1.2 Mail-parameters / Rcpt-parameters), keyword upper-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The keyword, upper-cased (e.g. `SIZE`, `BODY`, `NOTIFY`).
    pub keyword: String,
    /// The value after `=` as written (xtext not decoded); `None` for a bare keyword.
    pub value: Option<String>,
}

/// Parses one command line; `line` excludes the CRLF.
pub fn parse_command(line: &[u8]) -> Result<Command, ParseError> {
    let line = std::str::from_utf8(line).map_err(|_| ParseError::Syntax("invalid UTF-8"))?;
    let (verb, rest) = match line.find(' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, ""),
    };
    let verb = verb.to_ascii_uppercase();
    let rest_trimmed = rest.trim_matches(|c| c == ' ' || c == '\t');
    let no_args = |cmd: Command| {
        if rest_trimmed.is_empty() {
            Ok(cmd)
        } else {
            Err(ParseError::Syntax("this command takes no arguments"))
        }
    };
    match verb.as_str() {
        "EHLO" | "HELO" | "LHLO" => {
            let name = rest_trimmed;
            if name.is_empty() {
                return Err(ParseError::Syntax(
                    "a domain name or address literal is required",
                ));
            }
            if name.contains(|c: char| c.is_control()) {
                return Err(ParseError::Syntax("invalid characters in the client name"));
            }
            // RFC 5321 §4.1.1.1 wants one Domain or address-literal; keep only the first word.
            let name = name.split_whitespace().next().unwrap_or(name).to_string();
            Ok(match verb.as_str() {
                "EHLO" => Command::Ehlo(name),
                "LHLO" => Command::Lhlo(name),
                _ => Command::Helo(name),
            })
        }
        "MAIL" => {
            let rest = strip_keyword(rest, "FROM:").ok_or(ParseError::Syntax(
                "syntax: MAIL FROM:<address> [parameters]",
            ))?;
            let (path, params) =
                split_path(rest).ok_or(ParseError::Address("syntax: MAIL FROM:<address>"))?;
            let sender = if path == "<>" {
                None
            } else {
                Some(parse_path(path).map_err(ParseError::Address)?)
            };
            Ok(Command::Mail {
                sender,
                params: parse_params(params)?,
            })
        }
        "RCPT" => {
            let rest = strip_keyword(rest, "TO:")
                .ok_or(ParseError::Syntax("syntax: RCPT TO:<address> [parameters]"))?;
            let (path, params) =
                split_path(rest).ok_or(ParseError::Address("syntax: RCPT TO:<address>"))?;
            let recipient = if path.eq_ignore_ascii_case("<postmaster>") {
                // RFC 5321 §4.1.1.3: "<Postmaster>" without a domain is always accepted.
                Mailbox {
                    local: "postmaster".into(),
                    domain: String::new(),
                }
            } else {
                parse_path(path).map_err(ParseError::Address)?
            };
            Ok(Command::Rcpt {
                recipient,
                params: parse_params(params)?,
            })
        }
        "DATA" => no_args(Command::Data),
        "BDAT" => {
            let mut words = rest_trimmed.split_ascii_whitespace();
            let size = words
                .next()
                .filter(|w| !w.is_empty() && w.len() <= 19 && w.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|w| w.parse::<u64>().ok())
                .ok_or(ParseError::Syntax("syntax: BDAT size [LAST]"))?;
            let last = match words.next() {
                None => false,
                Some(w) if w.eq_ignore_ascii_case("LAST") => true,
                Some(_) => return Err(ParseError::Syntax("syntax: BDAT size [LAST]")),
            };
            if words.next().is_some() {
                return Err(ParseError::Syntax("syntax: BDAT size [LAST]"));
            }
            Ok(Command::Bdat { size, last })
        }
        "RSET" => no_args(Command::Rset),
        "NOOP" => Ok(Command::Noop),
        "QUIT" => no_args(Command::Quit),
        "HELP" => Ok(Command::Help),
        "VRFY" | "EXPN" => {
            if rest_trimmed.is_empty() {
                return Err(ParseError::Syntax("an argument is required"));
            }
            let arg = rest_trimmed.to_string();
            Ok(if verb == "VRFY" {
                Command::Vrfy(arg)
            } else {
                Command::Expn(arg)
            })
        }
        "STARTTLS" => no_args(Command::StartTls),
        "AUTH" => {
            let mut words = rest_trimmed.split_ascii_whitespace();
            let mechanism = words.next().ok_or(ParseError::Syntax(
                "syntax: AUTH mechanism [initial-response]",
            ))?;
            let initial = words.next().map(str::to_string);
            if words.next().is_some() {
                return Err(ParseError::Syntax(
                    "syntax: AUTH mechanism [initial-response]",
                ));
            }
            Ok(Command::Auth {
                mechanism: mechanism.to_ascii_uppercase(),
                initial,
            })
        }
        _ => Err(ParseError::Unknown),
    }
}

/// `FROM:` / `TO:` case-insensitively, tolerating spaces around the colon's argument.
fn strip_keyword<'a>(rest: &'a str, keyword: &str) -> Option<&'a str> {
    let rest = rest.trim_start();
    let head = rest.get(..keyword.len())?;
    head.eq_ignore_ascii_case(keyword)
        .then(|| rest[keyword.len()..].trim_start())
}

/// Splits `<path> params` at the closing `>` that is not inside a quoted string.
fn split_path(rest: &str) -> Option<(&str, &str)> {
    if !rest.starts_with('<') {
        return None;
    }
    let bytes = rest.as_bytes();
    let mut i = 1;
    let mut quoted = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b'>' if !quoted => {
                let params = &rest[i + 1..];
                if !params.is_empty() && !params.starts_with(' ') {
                    return None;
                }
                return Some((&rest[..=i], params.trim()));
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// RFC 5321 §4.1.2 Path: `<[A-d-l ":"] Mailbox>`; the source route is dropped.
fn parse_path(path: &str) -> Result<Mailbox, &'static str> {
    let inner = path
        .strip_prefix('<')
        .and_then(|p| p.strip_suffix('>'))
        .ok_or("the address must be in angle brackets")?;
    let mailbox = if inner.starts_with('@') {
        // A-d-l = At-domain *( "," At-domain ), then ":".
        let colon = inner.find(':').ok_or("bad source route")?;
        for hop in inner[..colon].split(',') {
            let domain = hop.strip_prefix('@').ok_or("bad source route")?;
            if !valid_domain_syntax(domain) {
                return Err("bad source route");
            }
        }
        &inner[colon + 1..]
    } else {
        inner
    };
    parse_mailbox(mailbox)
}

/// RFC 5321 §4.1.2 Mailbox = Local-part "@" ( Domain / address-literal ).
pub fn parse_mailbox(text: &str) -> Result<Mailbox, &'static str> {
    let (local, domain) = if let Some(quoted) = text.strip_prefix('"') {
        let mut local = String::new();
        let mut chars = quoted.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, e)) if !e.is_control() => local.push(e),
                    _ => return Err("bad quoted local part"),
                },
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                c if c.is_control() => return Err("control character in the local part"),
                c => local.push(c),
            }
        }
        let end = end.ok_or("unterminated quoted local part")?;
        let after = &quoted[end..];
        let domain = after.strip_prefix('@').ok_or("the address has no domain")?;
        (local, domain)
    } else {
        let at = text.find('@').ok_or("the address has no domain")?;
        let local = &text[..at];
        if !is_dot_string(local) {
            return Err("invalid characters in the local part");
        }
        (local.to_string(), &text[at + 1..])
    };
    if local.is_empty() {
        return Err("empty local part");
    }
    if local.len() > 64 {
        return Err("local part longer than 64 octets");
    }
    if !valid_domain_syntax(domain) {
        return Err("invalid domain");
    }
    Ok(Mailbox {
        local,
        domain: domain.to_string(),
    })
}

/// Domain (letters, digits, hyphens, dots, or UTF-8 U-labels) or `[address-literal]`; the directory
/// validates and normalises further.
fn valid_domain_syntax(d: &str) -> bool {
    if d.is_empty() || d.len() > 255 {
        return false;
    }
    if let Some(lit) = d.strip_prefix('[') {
        return lit.ends_with(']')
            && lit[..lit.len() - 1]
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'[' && b != b']' && b != b'\\');
    }
    d.split('.').all(|label| {
        !label.is_empty()
            && label.chars().all(|c| {
                c.is_ascii_alphanumeric() || c == '-' || (!c.is_ascii() && c.is_alphanumeric())
            })
    })
}

/// RFC 5321 §4.1.2: `esmtp-keyword ["=" esmtp-value]`, space separated.
fn parse_params(text: &str) -> Result<Vec<Param>, ParseError> {
    let mut out: Vec<Param> = Vec::new();
    for word in text.split_ascii_whitespace() {
        let (keyword, value) = match word.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (word, None),
        };
        if keyword.is_empty()
            || !keyword
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            || keyword.starts_with('-')
        {
            return Err(ParseError::Syntax("bad parameter keyword"));
        }
        if let Some(v) = value {
            if v.is_empty() || v.contains('=') || v.chars().any(|c| c.is_control()) {
                return Err(ParseError::Syntax("bad parameter value"));
            }
        }
        let keyword = keyword.to_ascii_uppercase();
        if out.iter().any(|p| p.keyword == keyword) {
            return Err(ParseError::Syntax("duplicate parameter"));
        }
        out.push(Param {
            keyword,
            value: value.map(str::to_string),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_mail::xtext::decode as xtext_decode;

    fn mb(local: &str, domain: &str) -> Mailbox {
        Mailbox {
            local: local.into(),
            domain: domain.into(),
        }
    }

    fn parse(s: &str) -> Result<Command, ParseError> {
        parse_command(s.as_bytes())
    }

    #[test]
    fn simple_verbs() {
        assert_eq!(
            parse("EHLO client.example"),
            Ok(Command::Ehlo("client.example".into()))
        );
        assert_eq!(
            parse("lhlo mta.example"),
            Ok(Command::Lhlo("mta.example".into()))
        );
        assert_eq!(
            parse("helo [192.0.2.1]"),
            Ok(Command::Helo("[192.0.2.1]".into()))
        );
        assert_eq!(parse("DATA"), Ok(Command::Data));
        assert_eq!(parse("rset"), Ok(Command::Rset));
        assert_eq!(parse("NOOP anything"), Ok(Command::Noop));
        assert_eq!(parse("QUIT"), Ok(Command::Quit));
        assert_eq!(parse("HELP MAIL"), Ok(Command::Help));
        assert_eq!(parse("STARTTLS"), Ok(Command::StartTls));
        assert_eq!(parse("VRFY alice"), Ok(Command::Vrfy("alice".into())));
        assert_eq!(parse("EXPN staff@x"), Ok(Command::Expn("staff@x".into())));
        assert_eq!(parse("FOO"), Err(ParseError::Unknown));
        assert_eq!(parse(""), Err(ParseError::Unknown));
        assert!(matches!(parse("EHLO"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse("DATA x"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse("STARTTLS now"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse("QUIT \u{1}"), Err(ParseError::Syntax(_))));
    }

    #[test]
    fn mail_and_rcpt() {
        assert_eq!(
            parse("MAIL FROM:<a@b.example> SIZE=100 BODY=8BITMIME"),
            Ok(Command::Mail {
                sender: Some(mb("a", "b.example")),
                params: vec![
                    Param {
                        keyword: "SIZE".into(),
                        value: Some("100".into())
                    },
                    Param {
                        keyword: "BODY".into(),
                        value: Some("8BITMIME".into())
                    },
                ],
            })
        );
        assert_eq!(
            parse("mail from: <>"),
            Ok(Command::Mail {
                sender: None,
                params: vec![]
            })
        );
        assert_eq!(
            parse("RCPT TO:<User.Name+tag@Example.ORG> NOTIFY=SUCCESS,FAILURE"),
            Ok(Command::Rcpt {
                recipient: mb("User.Name+tag", "Example.ORG"),
                params: vec![Param {
                    keyword: "NOTIFY".into(),
                    value: Some("SUCCESS,FAILURE".into())
                }],
            })
        );
        assert_eq!(
            parse("RCPT TO:<Postmaster>"),
            Ok(Command::Rcpt {
                recipient: mb("postmaster", ""),
                params: vec![]
            })
        );
        assert!(matches!(
            parse("MAIL FROM:a@b"),
            Err(ParseError::Address(_))
        ));
        assert!(matches!(parse("MAIL TO:<a@b>"), Err(ParseError::Syntax(_))));
        assert!(matches!(
            parse("RCPT TO:<a@b>SIZE=1"),
            Err(ParseError::Address(_))
        ));
        assert!(matches!(parse("RCPT TO:<a>"), Err(ParseError::Address(_))));
        assert!(matches!(
            parse("RCPT TO:<a@b> X=1 X=2"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            parse("RCPT TO:<a b@c>"),
            Err(ParseError::Address(_))
        ));
        assert!(matches!(
            parse("RCPT TO:<a@b@c>"),
            Err(ParseError::Address(_))
        ));
        assert!(matches!(
            parse("RCPT TO:<a@b..c>"),
            Err(ParseError::Address(_))
        ));
        assert!(matches!(
            parse("RCPT TO:<.a@b>"),
            Err(ParseError::Address(_))
        ));
        assert!(matches!(parse("RCPT TO:<a@>"), Err(ParseError::Address(_))));
        assert!(matches!(
            parse("RCPT TO:<@a@b>"),
            Err(ParseError::Address(_))
        ));
    }

    #[test]
    fn routing_tricks_are_kept_as_local_parts_or_dropped_routes() {
        // Source route: syntax accepted, route ignored (RFC 5321 §4.1.1.3).
        let Ok(Command::Rcpt { recipient, .. }) =
            parse("RCPT TO:<@relay.example,@b.example:user@final.example>")
        else {
            panic!()
        };
        assert_eq!(recipient, mb("user", "final.example"));
        // Percent hack and bang path: plain local-part characters.
        let Ok(Command::Rcpt { recipient, .. }) =
            parse("RCPT TO:<user%victim.example@local.example>")
        else {
            panic!()
        };
        assert_eq!(recipient, mb("user%victim.example", "local.example"));
        let Ok(Command::Rcpt { recipient, .. }) =
            parse("RCPT TO:<victim.example!user@local.example>")
        else {
            panic!()
        };
        assert_eq!(recipient, mb("victim.example!user", "local.example"));
        // A quoted local part may hold '@' and '>': it is still the local part of the last domain.
        let Ok(Command::Rcpt { recipient, .. }) =
            parse("RCPT TO:<\"user@victim.example\"@local.example>")
        else {
            panic!()
        };
        assert_eq!(recipient, mb("user@victim.example", "local.example"));
        assert_eq!(
            recipient.to_string(),
            "\"user@victim.example\"@local.example"
        );
        let Ok(Command::Rcpt { recipient, .. }) =
            parse("RCPT TO:<\"a>b\\\"c\"@local.example> NOTIFY=NEVER")
        else {
            panic!()
        };
        assert_eq!(recipient, mb("a>b\"c", "local.example"));
        assert!(matches!(
            parse("RCPT TO:<@a:b>"),
            Err(ParseError::Address(_))
        ));
        assert!(matches!(
            parse("RCPT TO:<@:b@c>"),
            Err(ParseError::Address(_))
        ));
    }

    #[test]
    fn utf8_addresses_parse_and_are_flagged() {
        let Ok(Command::Rcpt { recipient, .. }) = parse("RCPT TO:<jösé@bücher.example>") else {
            panic!()
        };
        assert!(recipient.is_utf8());
        assert!(!mb("a", "b").is_utf8());
        assert!(matches!(
            parse_command(b"RCPT TO:<\xff@b>"),
            Err(ParseError::Syntax(_))
        ));
    }

    #[test]
    fn bdat_and_auth() {
        assert_eq!(
            parse("BDAT 100"),
            Ok(Command::Bdat {
                size: 100,
                last: false
            })
        );
        assert_eq!(
            parse("bdat 0 last"),
            Ok(Command::Bdat {
                size: 0,
                last: true
            })
        );
        assert!(parse("BDAT").is_err());
        assert!(parse("BDAT -1").is_err());
        assert!(parse("BDAT 99999999999999999999999").is_err());
        assert!(parse("BDAT 5 LAST x").is_err());
        assert_eq!(
            parse("AUTH plain AGEAYg=="),
            Ok(Command::Auth {
                mechanism: "PLAIN".into(),
                initial: Some("AGEAYg==".into())
            })
        );
        assert_eq!(
            parse("AUTH LOGIN"),
            Ok(Command::Auth {
                mechanism: "LOGIN".into(),
                initial: None
            })
        );
        assert!(parse("AUTH").is_err());
    }

    #[test]
    fn xtext() {
        assert_eq!(
            xtext_decode("rfc822;a+2Bb@c").as_deref(),
            Some("rfc822;a+b@c")
        );
        assert_eq!(xtext_decode("abc").as_deref(), Some("abc"));
        assert_eq!(xtext_decode("a+2"), None);
        assert_eq!(xtext_decode("a+zz"), None);
        assert_eq!(xtext_decode("a b"), None);
    }
}
