//! I/O-free IMAP command parser (RFC 9051 §9 formal syntax): bytes of one complete command
//! (literals inlined as `{n}\r\n<n octets>`) in, a [`Command`] out. Never panics on input.
//!
//! [`lexer`] holds the lexical primitives (atoms, strings, literals, numbers) with no IMAP
//! command type in them, for reuse by ManageSieve (RFC 5804); [`error`] the typed
//! [`ParseError`]; one private module per command family holds its grammar and types, all
//! re-exported here.

mod append;
mod auth;
mod date;
pub mod error;
mod fetch;
pub mod lexer;
mod mailbox;
mod search;
mod seqset;
mod store;

pub use append::AppendMessage;
pub use date::Day;
pub(crate) use date::{days_from_civil, format_date_time};
pub use error::ParseError;
pub use fetch::{FetchAtt, Section, SectionText};
pub use lexer::Lexer;
pub use mailbox::{ListReturn, ListSelect, Qresync};
pub use search::{SearchKey, SearchReturn, SortKey};
pub use seqset::{SeqNum, SeqSet};
pub use store::StoreOp;

use lexer::is_tag_char;

/// A parsed command body: one variant per command (RFC 9051 §6 and the extensions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandKind {
    /// RFC 9051 §6.1.1 CAPABILITY
    Capability,
    /// RFC 9051 §6.1.2 NOOP
    Noop,
    /// RFC 9051 §6.1.3 LOGOUT
    Logout,
    /// RFC 9051 §6.2.1 STARTTLS
    StartTls,
    /// RFC 9051 §6.2.2 AUTHENTICATE, RFC 4959 §3 SASL-IR initial response
    Authenticate {
        /// The SASL mechanism name, upper-cased.
        mechanism: String,
        /// The initial response as sent (still base64; `=` for an empty one).
        initial: Option<Vec<u8>>,
    },
    /// RFC 9051 §6.2.3 LOGIN
    Login {
        /// The user name (an astring that must be UTF-8).
        user: String,
        /// The password octets.
        password: Vec<u8>,
    },
    /// RFC 9051 §6.3.1 ENABLE (RFC 5161 §3.1)
    Enable(Vec<String>),
    /// RFC 2971 §3.1 ID (arguments validated and ignored)
    Id,
    /// RFC 9051 §6.3.10 NAMESPACE
    Namespace,
    /// RFC 9051 §6.3.2 SELECT / §6.3.3 EXAMINE, RFC 7162 §3.1.8 CONDSTORE and §3.2.5 QRESYNC
    Select {
        /// The mailbox name as sent, not yet decoded.
        mailbox: Vec<u8>,
        /// EXAMINE: select read-only.
        examine: bool,
        /// The `(CONDSTORE)` parameter was given.
        condstore: bool,
        /// The `(QRESYNC (...))` parameter, if given.
        qresync: Option<Qresync>,
    },
    /// RFC 9051 §6.3.4 CREATE, RFC 6154 §3 USE
    Create {
        /// The mailbox name as sent, not yet decoded.
        mailbox: Vec<u8>,
        /// The special-use attributes of `USE (...)` (`\Sent`, ...); empty without one.
        special_use: Vec<String>,
    },
    /// RFC 9051 §6.3.5 DELETE
    Delete(Vec<u8>),
    /// RFC 9051 §6.3.6 RENAME
    Rename(Vec<u8>, Vec<u8>),
    /// RFC 9051 §6.3.7 SUBSCRIBE
    Subscribe(Vec<u8>),
    /// RFC 9051 §6.3.8 UNSUBSCRIBE
    Unsubscribe(Vec<u8>),
    /// RFC 9051 §6.3.9 LIST, RFC 5258 §3 LIST-EXTENDED, RFC 5819 LIST-STATUS
    List {
        /// Selection options (RFC 5258 §3.1).
        select: ListSelect,
        /// The reference name as sent.
        reference: Vec<u8>,
        /// The mailbox patterns as sent (`*` and `%` wildcards); one unless extended.
        patterns: Vec<Vec<u8>>,
        /// Return options (RFC 5258 §3.2).
        ret: ListReturn,
        /// The command used an RFC 5258 form (selection options, a pattern list or RETURN).
        extended: bool,
    },
    /// RFC 3501 §6.3.9 LSUB
    Lsub {
        /// The reference name as sent.
        reference: Vec<u8>,
        /// The mailbox pattern as sent.
        pattern: Vec<u8>,
    },
    /// RFC 9051 §6.3.11 STATUS
    Status {
        /// The mailbox name as sent, not yet decoded.
        mailbox: Vec<u8>,
        /// The status data items asked for, upper-cased (`MESSAGES`, `UIDNEXT`, ...).
        items: Vec<String>,
    },
    /// RFC 9051 §6.3.12 APPEND, RFC 3502 MULTIAPPEND, RFC 3516 §4.4 literal8
    Append {
        /// The mailbox name as sent, not yet decoded.
        mailbox: Vec<u8>,
        /// The messages, in order; more than one with MULTIAPPEND.
        messages: Vec<AppendMessage>,
    },
    /// RFC 9051 §6.3.13 IDLE (RFC 2177)
    Idle,
    /// RFC 3501 §6.4.1 CHECK
    Check,
    /// RFC 9051 §6.4.1 CLOSE
    Close,
    /// RFC 9051 §6.4.2 UNSELECT (RFC 3691)
    Unselect,
    /// RFC 9051 §6.4.3 EXPUNGE; with `uids`, §6.4.9 UID EXPUNGE (RFC 4315 §2.1)
    Expunge {
        /// UID EXPUNGE: only these UIDs; `None` for plain EXPUNGE.
        uids: Option<SeqSet>,
    },
    /// RFC 9051 §6.4.4 SEARCH (and §6.4.9 UID SEARCH), RFC 4731 / RFC 5182 RETURN
    Search {
        /// UID SEARCH: answer with UIDs.
        uid: bool,
        /// The RETURN options (RFC 4731, RFC 5182 SAVE); `None` without RETURN.
        ret: Option<SearchReturn>,
        /// The criteria, several keys ANDed into one.
        key: SearchKey,
    },
    /// RFC 9051 §6.4.5 FETCH (and UID FETCH), RFC 7162 §3.1.4 CHANGEDSINCE, §3.2.6 VANISHED
    Fetch {
        /// UID FETCH: `set` holds UIDs.
        uid: bool,
        /// The messages, by sequence number or UID.
        set: SeqSet,
        /// The data items asked for, macros (ALL, FAST, FULL) expanded.
        atts: Vec<FetchAtt>,
        /// The CHANGEDSINCE modifier: only messages with a greater mod-sequence.
        changed_since: Option<u64>,
        /// The VANISHED modifier (UID FETCH with CHANGEDSINCE only).
        vanished: bool,
    },
    /// RFC 9051 §6.4.6 STORE (and UID STORE), RFC 7162 §3.1.3 UNCHANGEDSINCE
    Store {
        /// UID STORE: `set` holds UIDs.
        uid: bool,
        /// The messages, by sequence number or UID.
        set: SeqSet,
        /// Replace, add or remove.
        op: StoreOp,
        /// `.SILENT`: no untagged FETCH of the new flags.
        silent: bool,
        /// The flags as sent (`\Seen`, keywords).
        flags: Vec<String>,
        /// The UNCHANGEDSINCE modifier: only messages whose mod-sequence is not greater.
        unchanged_since: Option<u64>,
    },
    /// RFC 9051 §6.4.7 COPY / §6.4.8 MOVE (RFC 6851), and their UID forms
    Copy {
        /// UID COPY / UID MOVE: `set` holds UIDs.
        uid: bool,
        /// The messages, by sequence number or UID.
        set: SeqSet,
        /// The destination mailbox name as sent, not yet decoded.
        mailbox: Vec<u8>,
        /// MOVE rather than COPY.
        is_move: bool,
    },
    /// RFC 5256 §3 SORT (and UID SORT), RFC 5267 §3.2 ESORT RETURN
    Sort {
        /// UID SORT: answer with UIDs.
        uid: bool,
        /// The sort keys in priority order, each with its REVERSE flag `(reverse, key)`.
        criteria: Vec<(bool, SortKey)>,
        /// The search criteria selecting the messages.
        key: SearchKey,
        /// The RETURN options (RFC 5267 §3.2); `None` without RETURN.
        ret: Option<SearchReturn>,
    },
    /// RFC 5256 §3 THREAD (and UID THREAD)
    Thread {
        /// UID THREAD: answer with UIDs.
        uid: bool,
        /// REFERENCES rather than ORDEREDSUBJECT (RFC 5256 §4).
        references: bool,
        /// The search criteria selecting the messages.
        key: SearchKey,
    },
    /// RFC 9208 §4.2.1 GETQUOTA
    GetQuota(Vec<u8>),
    /// RFC 9208 §4.2.2 GETQUOTAROOT
    GetQuotaRoot(Vec<u8>),
    /// RFC 9208 §4.2.3 SETQUOTA (arguments ignored)
    SetQuota,
}

/// A complete command: RFC 9051 §9 `command` = tag SP (command-any / ...) CRLF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The client's tag, echoed in the tagged reply.
    pub tag: String,
    /// The command and its arguments.
    pub kind: CommandKind,
}

/// Where a literal announcement ends a line (RFC 9051 §4.3, RFC 7888): `{n}`, `{n+}`, `~{n}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiteralHead {
    /// The announced length in octets.
    pub len: u64,
    /// `{n+}`: a non-synchronising literal (RFC 7888), sent without waiting for `+`.
    pub non_sync: bool,
    /// `~{n}`: RFC 3516 `literal8`.
    pub literal8: bool,
}

/// Checks whether `line` (without its CRLF) ends with a literal announcement
/// (RFC 9051 §4.3 `literal`, RFC 7888 `{n+}`, RFC 3516 `literal8`).
pub fn literal_at_end(line: &[u8]) -> Option<LiteralHead> {
    let line = line.strip_suffix(b"}")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    let inner = &line[open + 1..];
    let (digits, non_sync) = match inner.strip_suffix(b"+") {
        Some(d) => (d, true),
        None => (inner, false),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let len = std::str::from_utf8(digits).ok()?.parse().ok()?;
    let literal8 = open > 0 && line[open - 1] == b'~';
    Some(LiteralHead {
        len,
        non_sync,
        literal8,
    })
}

/// Extracts the tag and upper-cased command name of a (possibly partial) command line, for
/// answering errors before the whole command is read (RFC 9051 §9 `tag`, §6.4.9 `UID`).
pub fn peek_tag_verb(line: &[u8]) -> (Option<String>, String) {
    let mut words = line.split(|&b| b == b' ');
    let tag = words
        .next()
        .filter(|t| !t.is_empty() && t.iter().all(|&b| is_tag_char(b)))
        .map(|t| String::from_utf8_lossy(t).into_owned());
    let mut verb = words
        .next()
        .map(|v| String::from_utf8_lossy(v).to_ascii_uppercase())
        .unwrap_or_default();
    if verb == "UID" {
        if let Some(v) = words.next() {
            verb = format!("UID {}", String::from_utf8_lossy(v).to_ascii_uppercase());
        }
    }
    (tag, verb.trim_end_matches(['\r', '\n']).to_string())
}

/// Parses one complete command (RFC 9051 §9 `command`; a final CRLF is allowed). On error,
/// the tag if one was read, for the tagged `BAD`.
pub fn parse_command(buf: &[u8]) -> Result<Command, (Option<String>, ParseError)> {
    let buf = buf
        .strip_suffix(b"\r\n")
        .or_else(|| buf.strip_suffix(b"\n"))
        .unwrap_or(buf);
    let mut c = Lexer::new(buf);
    let tag = c.take_while(is_tag_char);
    if tag.is_empty() {
        return Err((None, ParseError::MissingTag));
    }
    let tag = String::from_utf8_lossy(tag).into_owned();
    let kind = (|| {
        c.sp()?;
        parse_body(&mut c)
    })();
    match kind {
        Ok(kind) => Ok(Command { tag, kind }),
        Err(e) => Err((Some(tag), e)),
    }
}

/// The command name and its arguments, through the end of the command.
fn parse_body(c: &mut Lexer) -> Result<CommandKind, ParseError> {
    let verb = c.atom()?.to_ascii_uppercase();
    let kind = match verb.as_str() {
        "CAPABILITY" => CommandKind::Capability,
        "NOOP" => CommandKind::Noop,
        "LOGOUT" => CommandKind::Logout,
        "STARTTLS" => CommandKind::StartTls,
        "NAMESPACE" => CommandKind::Namespace,
        "IDLE" => CommandKind::Idle,
        "CHECK" => CommandKind::Check,
        "CLOSE" => CommandKind::Close,
        "UNSELECT" => CommandKind::Unselect,
        "EXPUNGE" => CommandKind::Expunge { uids: None },
        "AUTHENTICATE" => auth::parse_authenticate(c)?,
        "LOGIN" => auth::parse_login(c)?,
        "ENABLE" => auth::parse_enable(c)?,
        "ID" => auth::parse_id(c)?,
        "SELECT" | "EXAMINE" => mailbox::parse_select(c, verb == "EXAMINE")?,
        "CREATE" => mailbox::parse_create(c)?,
        "DELETE" => CommandKind::Delete(mailbox::sp_mailbox(c)?),
        "RENAME" => mailbox::parse_rename(c)?,
        "SUBSCRIBE" => CommandKind::Subscribe(mailbox::sp_mailbox(c)?),
        "UNSUBSCRIBE" => CommandKind::Unsubscribe(mailbox::sp_mailbox(c)?),
        "LIST" => mailbox::parse_list(c)?,
        "LSUB" => mailbox::parse_lsub(c)?,
        "STATUS" => mailbox::parse_status(c)?,
        "APPEND" => append::parse_append(c)?,
        "SEARCH" => search::parse_search_cmd(c, false)?,
        "FETCH" => fetch::parse_fetch(c, false)?,
        "STORE" => store::parse_store(c, false)?,
        "COPY" | "MOVE" => store::parse_copy(c, false, verb == "MOVE")?,
        "SORT" => search::parse_sort(c, false)?,
        "THREAD" => search::parse_thread(c, false)?,
        "UID" => {
            c.sp()?;
            let sub = c.atom()?.to_ascii_uppercase();
            match sub.as_str() {
                "FETCH" => fetch::parse_fetch(c, true)?,
                "SEARCH" => search::parse_search_cmd(c, true)?,
                "STORE" => store::parse_store(c, true)?,
                "COPY" | "MOVE" => store::parse_copy(c, true, sub == "MOVE")?,
                "EXPUNGE" => store::parse_uid_expunge(c)?,
                "SORT" => search::parse_sort(c, true)?,
                "THREAD" => search::parse_thread(c, true)?,
                _ => return Err(ParseError::UnknownUidCommand(sub)),
            }
        }
        "GETQUOTA" => CommandKind::GetQuota(mailbox::sp_mailbox(c)?),
        "GETQUOTAROOT" => CommandKind::GetQuotaRoot(mailbox::sp_mailbox(c)?),
        "SETQUOTA" => {
            c.skip_rest();
            CommandKind::SetQuota
        }
        _ => return Err(ParseError::UnknownCommand(verb)),
    };
    c.eol()?;
    Ok(kind)
}

/// Helpers the command families' tests share.
#[cfg(test)]
pub(crate) mod testing {
    use super::{parse_command, CommandKind, ParseError};

    /// Parses a command that must parse.
    pub(crate) fn p(s: &str) -> CommandKind {
        parse_command(s.as_bytes()).expect(s).kind
    }

    /// Parses a command, keeping the error.
    pub(crate) fn pb(s: &[u8]) -> Result<CommandKind, ParseError> {
        parse_command(s).map(|c| c.kind).map_err(|e| e.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::testing::{p, pb};

    #[test]
    fn simple_commands() {
        assert_eq!(p("a CAPABILITY"), CommandKind::Capability);
        assert_eq!(p("a noop\r\n"), CommandKind::Noop);
        assert!(parse_command(b"a NOOP extra").is_err());
        assert!(parse_command(b"").is_err());
        assert!(parse_command(b"+ x").is_err());
    }

    #[test]
    fn error_texts_are_unchanged() {
        let e = |s: &[u8]| parse_command(s).unwrap_err().1.to_string();
        assert_eq!(
            e(b"a NOOP extra"),
            "unexpected characters at end of command"
        );
        assert_eq!(e(b"a FOO"), "unknown command FOO");
        assert_eq!(e(b"a UID FOO 1"), "unknown UID command FOO");
        assert_eq!(e(b"a"), "expected ' '");
        assert_eq!(e(b""), "missing tag");
        assert_eq!(e(b"a FETCH 0 FLAGS"), "sequence numbers start at 1");
        assert_eq!(e(b"a FETCH 99999999999 FLAGS"), "number too large");
        assert_eq!(e(b"a SEARCH FOO"), "unknown search key FOO");
        assert_eq!(e(b"a LOGIN \"x"), "unterminated quoted string");
        assert_eq!(e(b"a ENABLE"), "ENABLE needs a capability");
        assert_eq!(
            parse_command(b"a FOO").unwrap_err().1,
            ParseError::UnknownCommand("FOO".into())
        );
    }

    #[test]
    fn literal_heads() {
        assert_eq!(
            literal_at_end(b"a APPEND x {12}"),
            Some(LiteralHead {
                len: 12,
                non_sync: false,
                literal8: false,
            })
        );
        assert_eq!(
            literal_at_end(b"a APPEND x ~{3+}"),
            Some(LiteralHead {
                len: 3,
                non_sync: true,
                literal8: true,
            })
        );
        assert_eq!(
            literal_at_end(b"a APPEND x ~{3}"),
            Some(LiteralHead {
                len: 3,
                non_sync: false,
                literal8: true,
            })
        );
        assert_eq!(literal_at_end(b"a x {}"), None);
        assert_eq!(literal_at_end(b"a x {99999999999999999999999}"), None);
        assert_eq!(literal_at_end(b"a NOOP"), None);
    }

    #[test]
    fn tag_and_verb() {
        assert_eq!(
            peek_tag_verb(b"a1 uid fetch 1 x\r\n"),
            (Some("a1".into()), "UID FETCH".into())
        );
        assert_eq!(peek_tag_verb(b"+x noop"), (None, "NOOP".into()));
    }

    #[test]
    fn sequence_sets() {
        match p("a UID FETCH 1:3,5,7:* (FLAGS)") {
            CommandKind::Fetch { uid, set, .. } => {
                assert!(uid);
                assert_eq!(set.resolve(10), vec![(1, 3), (5, 5), (7, 10)]);
            }
            o => panic!("{o:?}"),
        }
        assert!(parse_command(b"a FETCH 0 FLAGS").is_err());
        assert!(parse_command(b"a FETCH 1:: FLAGS").is_err());
        assert!(parse_command(b"a FETCH 99999999999 FLAGS").is_err());
        match p("a UID EXPUNGE $") {
            CommandKind::Expunge { uids: Some(s) } => assert!(s.is_saved()),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn never_panics_on_garbage() {
        let samples: &[&[u8]] = &[
            b"a",
            b"a ",
            b"a FETCH",
            b"a FETCH 1 BODY[1.",
            b"a FETCH 1 BODY[]<",
            b"a FETCH 1 BODY[]<1.",
            b"a SEARCH NOT",
            b"a LOGIN \"",
            b"a LOGIN {",
            b"a LOGIN {1}",
            b"a STORE 1 +FLAGS (",
            b"\xff\xfe",
            b"a APPEND x {3}\r\n",
            b"a UID",
            b"a LIST (",
            b"a SELECT x (QRESYNC (",
            b"a ID (\"a\"",
            b"a STATUS x (",
            b"a SORT (",
            b"a AUTHENTICATE PLAIN =",
        ];
        for s in samples {
            let _ = parse_command(s);
            for i in 0..s.len() {
                let _ = parse_command(&s[..i]);
            }
        }
    }

    /// RFC 9051 §9 grammar edges: literal8 only in APPEND.
    #[test]
    fn literal8_only_where_allowed() {
        assert_eq!(
            pb(b"a SELECT ~{3}\r\nabc").unwrap_err().to_string(),
            "literal8 not allowed here"
        );
        assert!(pb(b"a LOGIN ~{1}\r\nx y").is_err());
        assert!(
            matches!(pb(b"a SELECT ~x").unwrap(), CommandKind::Select { mailbox, .. } if mailbox == b"~x")
        );
        match pb(b"a APPEND INBOX ~{3}\r\na\0b").unwrap() {
            CommandKind::Append { messages, .. } => {
                assert!(messages[0].binary);
                assert_eq!(messages[0].data, b"a\0b");
            }
            o => panic!("{o:?}"),
        }
    }

    /// RFC 9051 §9: resp-specials ("]") are ASTRING-CHARs but not ATOM-CHARs.
    #[test]
    fn resp_specials_in_astring_not_atom() {
        assert!(
            matches!(pb(b"a SELECT a]b").unwrap(), CommandKind::Select { mailbox, .. } if mailbox == b"a]b")
        );
        assert!(pb(b"a NOOP]").is_err());
        assert!(pb(b"a STORE 1 +FLAGS (a]b)").is_err());
        assert!(pb(b"a FETCH 1 (FLAGS])").is_err());
        // A tag is ASTRING-CHARs but "+".
        assert_eq!(parse_command(b"a]1 NOOP").unwrap().tag, "a]1");
        assert_eq!(
            parse_command(b"a+ NOOP").unwrap_err().0.as_deref(),
            Some("a")
        );
        assert_eq!(parse_command(b"(x NOOP").unwrap_err().0, None);
    }
}

/// Property tests: the parser never panics, and every astring the response layer writes
/// (quoted or literal) reads back as the same octets.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn astring_bytes(v: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        crate::response::string(&mut out, v);
        out
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_command(&data);
        }

        #[test]
        fn never_panics_on_command_shaped_input(
            verb in prop::sample::select(vec!["LIST", "LSUB", "SELECT", "SEARCH", "SORT", "THREAD REFERENCES UTF-8", "FETCH 1", "STORE 1", "APPEND x", "UID SEARCH", "STATUS x", "LOGIN"]),
            rest in "[ -~\\r\\n]{0,60}",
        ) {
            let _ = parse_command(format!("a {verb} {rest}").as_bytes());
        }

        #[test]
        fn strings_round_trip(v in proptest::collection::vec(1u8..=255, 0..100)) {
            let wire = astring_bytes(&v);
            let mut cmd = b"a SELECT ".to_vec();
            cmd.extend_from_slice(&wire);
            cmd.extend_from_slice(b"\r\n");
            match parse_command(&cmd) {
                Ok(Command { kind: CommandKind::Select { mailbox, .. }, .. }) => prop_assert_eq!(mailbox, v),
                o => prop_assert!(false, "{:?} from {:?}", o, String::from_utf8_lossy(&wire)),
            }
        }

        #[test]
        fn search_strings_round_trip(v in "[^\\x00]{0,40}") {
            let mut wire = Vec::new();
            crate::response::string_utf8(&mut wire, v.as_bytes());
            let mut cmd = b"a SEARCH SUBJECT ".to_vec();
            cmd.extend_from_slice(&wire);
            cmd.extend_from_slice(b"\r\n");
            match parse_command(&cmd) {
                Ok(Command { kind: CommandKind::Search { key: SearchKey::Subject(s), .. }, .. }) => prop_assert_eq!(s, v),
                o => prop_assert!(false, "{:?}", o),
            }
        }
    }
}
