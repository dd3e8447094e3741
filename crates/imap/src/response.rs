//! Serialising IMAP strings (RFC 9051 §4.3): quoted when safe, literal otherwise.

/// Appends `s` as a quoted string or, if it cannot be quoted, a literal.
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    quoted_or_literal(out, s, false);
}

/// Appends `s` as a quoted string, allowing UTF-8 (RFC 9051 `quoted` with `UTF8-char`), or a
/// literal when it contains CR/LF or is long.
pub(crate) fn string_utf8(out: &mut Vec<u8>, s: &[u8]) {
    quoted_or_literal(out, s, true);
}

/// A `quoted` for short text without CR, LF or NUL (ASCII only unless `utf8`), else a literal.
fn quoted_or_literal(out: &mut Vec<u8>, s: &[u8], utf8: bool) {
    let quotable = s.len() < 1024
        && s.iter().all(|&b| b != b'\r' && b != b'\n' && b != 0)
        && if utf8 {
            std::str::from_utf8(s).is_ok()
        } else {
            s.is_ascii()
        };
    if quotable {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        literal(out, s);
    }
}

/// Appends `{n}\r\n<bytes>`. RFC 9051 §4.3 / §9: a `literal` never carries NUL, so each NUL
/// is sent as 0x80, as Dovecot does; the size stays the same (RFC822.SIZE still agrees).
/// Raw bytes go in a [`literal8`].
pub(crate) fn literal(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    let start = out.len();
    out.extend_from_slice(s);
    if s.contains(&0) {
        for b in &mut out[start..] {
            if *b == 0 {
                *b = 0x80;
            }
        }
    }
}

/// Appends `~{n}\r\n<bytes>` (RFC 3516 §4.3 `literal8`, for BINARY[] data): any octet.
pub(crate) fn literal8(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("~{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

/// Appends `NIL` or the string.
pub(crate) fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// Converts LF line endings to CRLF (messages are presented with CRLF, RFC 9051 §2.3.4).
pub(crate) fn to_crlf(data: Vec<u8>) -> Vec<u8> {
    postern_mail::wire::into_crlf(data)
}

// ----- the typed response layer ---------------------------------------------------------------

/// Response codes (RFC 9051 §7.1, and those of the extensions postern speaks), written in one
/// place: a command says which code applies, never how it is spelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Code {
    /// RFC 9051 §7.1 ALREADYEXISTS
    AlreadyExists,
    /// RFC 4315 §3 APPENDUID
    AppendUid { uidvalidity: u32, uids: String },
    /// RFC 9051 §7.1 AUTHENTICATIONFAILED
    AuthenticationFailed,
    /// RFC 9051 §7.1 BADCHARSET
    BadCharset,
    /// RFC 9051 §7.1 CANNOT
    Cannot,
    /// RFC 9051 §7.1 CAPABILITY
    Capability(String),
    /// RFC 9051 §7.1 CLOSED
    Closed,
    /// RFC 4315 §3 COPYUID
    CopyUid {
        uidvalidity: u32,
        from: String,
        to: String,
    },
    /// RFC 9051 §7.1 EXPUNGEISSUED
    ExpungeIssued,
    /// RFC 9051 §7.1 HASCHILDREN
    HasChildren,
    /// RFC 7162 §3.1.2.1 HIGHESTMODSEQ
    HighestModseq(u64),
    /// RFC 9051 §7.1 LIMIT
    Limit,
    /// RFC 7162 §3.1.3 MODIFIED
    Modified(String),
    /// RFC 9051 §7.1 NONEXISTENT
    NonExistent,
    /// RFC 9051 §7.1 NOPERM
    NoPerm,
    /// RFC 9208 §4.3.1 OVERQUOTA
    OverQuota,
    /// RFC 9051 §7.1 PERMANENTFLAGS
    PermanentFlags(String),
    /// RFC 9051 §7.1 PRIVACYREQUIRED
    PrivacyRequired,
    /// RFC 9051 §7.1 READ-ONLY
    ReadOnly,
    /// RFC 9051 §7.1 READ-WRITE
    ReadWrite,
    /// RFC 9051 §7.1 SERVERBUG
    ServerBug,
    /// RFC 7889 / RFC 9051 §7.1 TOOBIG
    TooBig,
    /// RFC 9051 §7.1 TRYCREATE
    TryCreate,
    /// RFC 9051 §7.1 UIDNEXT
    UidNext(u32),
    /// RFC 9051 §7.1 UIDVALIDITY
    UidValidity(u32),
    /// RFC 9051 §7.1 UNAVAILABLE
    Unavailable,
    /// RFC 3516 §4.3 UNKNOWN-CTE
    UnknownCte,
    /// RFC 3501 §7.1 UNSEEN (IMAP4rev1 only)
    Unseen(usize),
    /// RFC 6154 §5.3 USEATTR
    UseAttr,
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use Code as C;
        match self {
            C::AlreadyExists => f.write_str("ALREADYEXISTS"),
            C::AppendUid { uidvalidity, uids } => write!(f, "APPENDUID {uidvalidity} {uids}"),
            C::AuthenticationFailed => f.write_str("AUTHENTICATIONFAILED"),
            C::BadCharset => f.write_str("BADCHARSET (UTF-8 US-ASCII)"),
            C::Cannot => f.write_str("CANNOT"),
            C::Capability(caps) => write!(f, "CAPABILITY {caps}"),
            C::Closed => f.write_str("CLOSED"),
            C::CopyUid {
                uidvalidity,
                from,
                to,
            } => write!(f, "COPYUID {uidvalidity} {from} {to}"),
            C::ExpungeIssued => f.write_str("EXPUNGEISSUED"),
            C::HasChildren => f.write_str("HASCHILDREN"),
            C::HighestModseq(m) => write!(f, "HIGHESTMODSEQ {m}"),
            C::Limit => f.write_str("LIMIT"),
            C::Modified(set) => write!(f, "MODIFIED {set}"),
            C::NonExistent => f.write_str("NONEXISTENT"),
            C::NoPerm => f.write_str("NOPERM"),
            C::OverQuota => f.write_str("OVERQUOTA"),
            C::PermanentFlags(flags) => write!(f, "PERMANENTFLAGS ({flags})"),
            C::PrivacyRequired => f.write_str("PRIVACYREQUIRED"),
            C::ReadOnly => f.write_str("READ-ONLY"),
            C::ReadWrite => f.write_str("READ-WRITE"),
            C::ServerBug => f.write_str("SERVERBUG"),
            C::TooBig => f.write_str("TOOBIG"),
            C::TryCreate => f.write_str("TRYCREATE"),
            C::UidNext(n) => write!(f, "UIDNEXT {n}"),
            C::UidValidity(v) => write!(f, "UIDVALIDITY {v}"),
            C::Unavailable => f.write_str("UNAVAILABLE"),
            C::UnknownCte => f.write_str("UNKNOWN-CTE"),
            C::Unseen(n) => write!(f, "UNSEEN {n}"),
            C::UseAttr => f.write_str("USEATTR"),
        }
    }
}

/// A status response's code and human-readable text (RFC 9051 §7.1 `resp-text`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Status {
    pub(crate) code: Option<Code>,
    pub(crate) text: String,
}

impl Status {
    /// `[CODE] text`, CR and LF replaced so that a text from elsewhere cannot end the line.
    pub(crate) fn render(&self) -> String {
        let text = self.text.replace(['\r', '\n'], " ");
        match &self.code {
            Some(c) => format!("[{c}] {text}"),
            None => text,
        }
    }
}

/// How a command ended: its tagged response (RFC 9051 §7.1.1-§7.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    Ok(Status),
    No(Status),
    Bad(Status),
    /// The tagged response was already written (STARTTLS, LOGOUT).
    Sent,
}

impl Reply {
    /// The whole tagged line, CRLF included; `None` for [`Reply::Sent`].
    pub(crate) fn tagged(&self, tag: &str) -> Option<String> {
        let (kind, st) = match self {
            Reply::Ok(st) => ("OK", st),
            Reply::No(st) => ("NO", st),
            Reply::Bad(st) => ("BAD", st),
            Reply::Sent => return None,
        };
        Some(format!("{tag} {kind} {}\r\n", st.render()))
    }
}

fn status(code: Option<Code>, text: impl Into<String>) -> Status {
    Status {
        code,
        text: text.into(),
    }
}

/// Tagged OK.
pub(crate) fn ok(text: impl Into<String>) -> Reply {
    Reply::Ok(status(None, text))
}
/// Tagged BAD.
pub(crate) fn bad(text: impl Into<String>) -> Reply {
    Reply::Bad(status(None, text))
}
/// Tagged OK with a response code.
pub(crate) fn ok_code(code: Code, text: impl Into<String>) -> Reply {
    Reply::Ok(status(Some(code), text))
}
/// Tagged NO with a response code.
pub(crate) fn no_code(code: Code, text: impl Into<String>) -> Reply {
    Reply::No(status(Some(code), text))
}
/// Tagged BAD with a response code.
pub(crate) fn bad_code(code: Code, text: impl Into<String>) -> Reply {
    Reply::Bad(status(Some(code), text))
}

/// RFC 5530 response code for a store error.
pub(crate) fn store_no(e: &postern_store::StoreError) -> Reply {
    use postern_store::StoreError as E;
    let text = e.to_string();
    match e {
        E::MailboxNotFound(_) => no_code(Code::NonExistent, text),
        E::MailboxExists(_) => no_code(Code::AlreadyExists, text),
        E::HasChildren(_) => no_code(Code::HasChildren, text),
        E::NotPermitted(_) | E::InvalidMailboxName { .. } => no_code(Code::Cannot, text),
        E::MessageTooLarge(_) => no_code(Code::TooBig, text),
        E::InvalidFlag(_) => bad(text),
        E::UidsExhausted(_) => no_code(Code::Limit, text),
        E::MessageNotFound(_) => no_code(Code::ExpungeIssued, text),
        _ => {
            tracing::warn!("store error: {e}");
            no_code(Code::ServerBug, "internal error, try again later")
        }
    }
}

/// Untagged data about the selected mailbox (RFC 9051 §7.3-§7.5), written in one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Data<'a> {
    /// RFC 9051 §7.4.1 `n EXISTS`
    Exists(usize),
    /// RFC 3501 §7.3.2 `n RECENT` (IMAP4rev1 only)
    Recent(usize),
    /// RFC 9051 §7.5.1 `n EXPUNGE`
    Expunge(usize),
    /// RFC 7162 §3.2.10 `VANISHED [(EARLIER)] uids`
    Vanished { earlier: bool, uids: &'a str },
    /// RFC 9051 §7.3.5 `FLAGS (...)`: the system flags and these keywords.
    Flags(&'a [String]),
    /// An untagged status response with a code (RFC 9051 §7.1.1), e.g. `OK [UIDNEXT n] ...`.
    Ok(Code, &'a str),
    /// RFC 9051 §7.1.5 `BYE [code] text`: the server closes the connection.
    Bye(Option<Code>, &'a str),
    /// RFC 9051 §7.5.2 a message's flags (`n FETCH (UID u FLAGS (...) MODSEQ (m))`), sent when
    /// they change or after STORE; UID and MODSEQ when the session asked for them (UID command,
    /// RFC 7162 CONDSTORE).
    FlagsUpdate {
        seq: usize,
        uid: Option<u32>,
        /// The rendered flag list, `\Recent` included where it applies.
        flags: &'a str,
        modseq: Option<u64>,
    },
    /// RFC 9051 §7.2.2 `CAPABILITY ...`
    Capability(&'a str),
    /// RFC 9051 §7.2.1 `ENABLED ...`
    Enabled(&'a [&'a str]),
}

impl Data<'_> {
    /// The response line, without `* ` and CRLF.
    pub(crate) fn render(&self) -> String {
        match self {
            Data::Exists(n) => format!("{n} EXISTS"),
            Data::Recent(n) => format!("{n} RECENT"),
            Data::Expunge(n) => format!("{n} EXPUNGE"),
            Data::Vanished { earlier, uids } => {
                format!(
                    "VANISHED {}{uids}",
                    if *earlier { "(EARLIER) " } else { "" }
                )
            }
            Data::Flags(keywords) => format!(
                "FLAGS ({})",
                SYSTEM_FLAGS
                    .iter()
                    .copied()
                    .chain(keywords.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Data::Ok(code, text) => format!("OK [{code}] {text}"),
            Data::Bye(Some(code), text) => format!("BYE [{code}] {text}"),
            Data::Bye(None, text) => format!("BYE {text}"),
            Data::FlagsUpdate {
                seq,
                uid,
                flags,
                modseq,
            } => {
                let uid = uid.map(|u| format!("UID {u} ")).unwrap_or_default();
                let modseq = modseq.map(|m| format!(" MODSEQ ({m})")).unwrap_or_default();
                format!("{seq} FETCH ({uid}FLAGS {flags}{modseq})")
            }
            Data::Capability(caps) => format!("CAPABILITY {caps}"),
            Data::Enabled(caps) => format!("ENABLED {}", caps.join(" ")).trim_end().to_owned(),
        }
    }
}

/// The system flags every mailbox permits (RFC 9051 §2.3.2), `\Recent` aside.
pub(crate) const SYSTEM_FLAGS: [&str; 5] =
    ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every response code and mailbox datum is spelled as RFC 9051 §7 and the extensions
    /// write it.
    #[test]
    fn typed_responses_render_as_the_rfcs_spell_them() {
        assert_eq!(
            no_code(Code::TryCreate, "no such mailbox").tagged("a1"),
            Some("a1 NO [TRYCREATE] no such mailbox\r\n".into())
        );
        assert_eq!(
            ok_code(
                Code::CopyUid {
                    uidvalidity: 7,
                    from: "1:2".into(),
                    to: "5:6".into()
                },
                "done"
            )
            .tagged("t"),
            Some("t OK [COPYUID 7 1:2 5:6] done\r\n".into())
        );
        assert_eq!(bad("x\r\ny").tagged("t"), Some("t BAD x  y\r\n".into()));
        assert_eq!(Reply::Sent.tagged("t"), None);
        let kw = vec!["$Junk".to_string()];
        assert_eq!(
            Data::Flags(&kw).render(),
            "FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Junk)"
        );
        assert_eq!(
            Data::FlagsUpdate {
                seq: 3,
                uid: Some(9),
                flags: "(\\Seen)",
                modseq: Some(12)
            }
            .render(),
            "3 FETCH (UID 9 FLAGS (\\Seen) MODSEQ (12))"
        );
        assert_eq!(
            Data::Vanished {
                earlier: true,
                uids: "1:3"
            }
            .render(),
            "VANISHED (EARLIER) 1:3"
        );
        assert_eq!(
            Data::Ok(Code::PermanentFlags(String::new()), "ro").render(),
            "OK [PERMANENTFLAGS ()] ro"
        );
        assert_eq!(Data::Enabled(&[]).render(), "ENABLED");
        assert_eq!(
            Data::Bye(Some(Code::Unavailable), "bye").render(),
            "BYE [UNAVAILABLE] bye"
        );
    }

    #[test]
    fn strings() {
        let mut o = Vec::new();
        string(&mut o, b"a \"b\" \\");
        assert_eq!(o, b"\"a \\\"b\\\" \\\\\"");
        o.clear();
        string(&mut o, b"x\r\ny");
        assert_eq!(o, b"{4}\r\nx\r\ny");
        o.clear();
        string(&mut o, "é".as_bytes());
        assert_eq!(o, b"{2}\r\n\xc3\xa9");
        o.clear();
        string_utf8(&mut o, "é".as_bytes());
        assert_eq!(o, "\"é\"".as_bytes());
    }

    #[test]
    fn literals_never_carry_nul() {
        let mut o = Vec::new();
        literal(&mut o, b"a\0b");
        assert_eq!(o, b"{3}\r\na\x80b");
        o.clear();
        string(&mut o, b"a\0b");
        assert_eq!(o, b"{3}\r\na\x80b");
        o.clear();
        literal8(&mut o, b"a\0b");
        assert_eq!(o, b"~{3}\r\na\0b");
    }

    #[test]
    fn crlf() {
        assert_eq!(to_crlf(b"a\nb\r\nc\n".to_vec()), b"a\r\nb\r\nc\r\n");
        assert_eq!(to_crlf(b"\n".to_vec()), b"\r\n");
        assert_eq!(to_crlf(b"a\r\n".to_vec()), b"a\r\n");
    }
}

/// Property tests: every string the response layer writes (quoted, literal, `literal8`, `NIL`)
/// reads back with the command parser's [`crate::Lexer`] as the same octets, so what the server
/// sends and what it would accept agree (RFC 9051 §4.3).
#[cfg(test)]
mod proptests {
    use super::*;
    use crate::Lexer;
    use proptest::prelude::*;

    /// Octets biased towards the ones quoting cares about, and long enough to cross the
    /// 1024-octet quoting limit.
    fn octets() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                4 => 0x20u8..0x7f,
                1 => prop::sample::select(vec![b'"', b'\\', b'\r', b'\n', 0u8, 0x80, 0xc3, 0xa9, b'{', b'}']),
                1 => any::<u8>(),
            ],
            0..1100,
        )
    }

    proptest! {
        /// `string` (quoted when safe, else a literal) reads back as `string` and `astring`; a NUL
        /// comes back as 0x80, the one change a `literal` makes (RFC 9051 §9: no NUL in `CHAR8`).
        #[test]
        fn strings_read_back(v in octets()) {
            let mut out = Vec::new();
            string(&mut out, &v);
            let expected: Vec<u8> = v.iter().map(|&b| if b == 0 { 0x80 } else { b }).collect();
            let mut lx = Lexer::new(&out);
            prop_assert_eq!(lx.string(), Ok(expected.clone()));
            prop_assert!(lx.at_end());
            let mut lx = Lexer::new(&out);
            prop_assert_eq!(lx.astring(), Ok(expected.clone()));
            let mut lx = Lexer::new(&out);
            prop_assert_eq!(lx.nstring(), Ok(Some(expected)));
            // Quoted output is one line; anything else is a literal with its exact size.
            if out.first() == Some(&b'"') {
                prop_assert!(!out.contains(&b'\r') && !out.contains(&b'\n'));
            } else {
                let head = format!("{{{}}}\r\n", v.len());
                prop_assert!(out.starts_with(head.as_bytes()));
                prop_assert_eq!(out.len(), head.len() + v.len());
            }
        }

        /// `string_utf8` quotes UTF-8 text (RFC 9051 `quoted` with `UTF8-char`) and reads back.
        #[test]
        fn utf8_strings_read_back(s in "[^\\x00]{0,40}|[^\\x00]{1020,1030}") {
            let mut out = Vec::new();
            string_utf8(&mut out, s.as_bytes());
            let mut lx = Lexer::new(&out);
            prop_assert_eq!(lx.string(), Ok(s.clone().into_bytes()));
            prop_assert!(lx.at_end());
        }

        /// `literal8` carries any octet, NUL included (RFC 3516 §4.3).
        #[test]
        fn literal8_reads_back(v in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut out = Vec::new();
            literal8(&mut out, &v);
            let mut lx = Lexer::new(&out);
            prop_assert_eq!(lx.literal8(), Ok(v));
            prop_assert!(lx.at_end());
        }

        /// `nstring` writes `NIL` for nothing and a string otherwise.
        #[test]
        fn nstrings_read_back(v in proptest::option::of(octets())) {
            let v: Option<Vec<u8>> = v.map(|v| v.into_iter().filter(|&b| b != 0).collect());
            let mut out = Vec::new();
            nstring(&mut out, v.as_deref());
            let mut lx = Lexer::new(&out);
            prop_assert_eq!(lx.nstring(), Ok(v));
            prop_assert!(lx.at_end());
        }
    }
}
