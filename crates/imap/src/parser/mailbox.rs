//! Mailbox commands: SELECT/EXAMINE, CREATE, DELETE, RENAME, (UN)SUBSCRIBE, LIST, LSUB and
//! STATUS (RFC 9051 §6.3; RFC 5258 LIST-EXTENDED, RFC 5819 LIST-STATUS, RFC 6154
//! SPECIAL-USE, RFC 7162 CONDSTORE/QRESYNC).

use super::error::{invalid, ParseError};
use super::lexer::Lexer;
use super::seqset::{seq_set, SeqSet};
use super::store::flag_list;
use super::CommandKind;

/// LIST return options (RFC 5258 §3.2, RFC 5819 §2 STATUS, RFC 6154 §3 SPECIAL-USE).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListReturn {
    /// `SUBSCRIBED`: mark subscribed mailboxes `\Subscribed`.
    pub subscribed: bool,
    /// `CHILDREN`: add `\HasChildren` / `\HasNoChildren`.
    pub children: bool,
    /// `SPECIAL-USE`: show special-use attributes.
    pub special_use: bool,
    /// `STATUS (...)` (RFC 5819): the status items, upper-cased, for each listed mailbox.
    pub status: Option<Vec<String>>,
}

/// LIST selection options (RFC 5258 §3.1, RFC 6154 §3 SPECIAL-USE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListSelect {
    /// `SUBSCRIBED`: list subscribed mailboxes (existing or not).
    pub subscribed: bool,
    /// `REMOTE`: include remote mailboxes (accepted; this server has none).
    pub remote: bool,
    /// `RECURSIVEMATCH`: also list parents with matching children, with `CHILDINFO` (needs
    /// another selection option).
    pub recursive_match: bool,
    /// `SPECIAL-USE`: only mailboxes with a special-use attribute.
    pub special_use: bool,
}

/// RFC 7162 §3.2.5 QRESYNC parameters of SELECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qresync {
    /// The UIDVALIDITY the client last knew; nothing is resynchronised if it changed.
    pub uidvalidity: u32,
    /// The last mod-sequence the client knew: changes after it are reported.
    pub modseq: u64,
    /// The UIDs the client knows, to limit VANISHED; `None`: all. (The optional
    /// sequence-match data is parsed and not kept.)
    pub known_uids: Option<SeqSet>,
}

/// RFC 9051 §6.3.2 SELECT / §6.3.3 EXAMINE (after the verb), with RFC 7162 §3.1.8
/// CONDSTORE and §3.2.5 QRESYNC parameters.
pub(super) fn parse_select(c: &mut Lexer, examine: bool) -> Result<CommandKind, ParseError> {
    c.sp()?;
    let mailbox = c.astring()?;
    let (mut condstore, mut qresync) = (false, None);
    if c.eat(b' ') {
        c.list(|c| {
            let p = c.atom()?.to_ascii_uppercase();
            match p.as_str() {
                "CONDSTORE" => condstore = true,
                "QRESYNC" => qresync = Some(parse_qresync(c)?),
                _ => {
                    return Err(ParseError::Unknown {
                        what: "SELECT parameter",
                        name: p,
                    })
                }
            }
            Ok(())
        })?;
    }
    Ok(CommandKind::Select {
        mailbox,
        examine,
        condstore,
        qresync,
    })
}

/// RFC 7162 §3.2.5 / §7 `select-param` QRESYNC value, after the word QRESYNC:
/// `SP "(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")"`.
fn parse_qresync(c: &mut Lexer) -> Result<Qresync, ParseError> {
    c.sp()?;
    c.expect(b"(")?;
    let uidvalidity = c.number()?;
    c.sp()?;
    let modseq = c.number64()?;
    let mut known_uids = None;
    if c.eat(b' ') {
        if c.peek() != Some(b'(') {
            known_uids = Some(seq_set(c)?);
            c.eat(b' ');
        }
        if c.eat(b'(') {
            seq_set(c)?;
            c.sp()?;
            seq_set(c)?;
            c.expect(b")")?;
        }
    }
    c.expect(b")")?;
    Ok(Qresync {
        uidvalidity,
        modseq,
        known_uids,
    })
}

/// RFC 9051 §6.3.4 CREATE (after the verb), with RFC 6154 §3 `USE (...)`.
pub(super) fn parse_create(c: &mut Lexer) -> Result<CommandKind, ParseError> {
    c.sp()?;
    let mailbox = c.astring()?;
    let mut special_use = Vec::new();
    if c.eat(b' ') {
        c.expect(b"(")?;
        let p = c.atom()?.to_ascii_uppercase();
        if p != "USE" {
            return invalid("unknown CREATE parameter");
        }
        c.sp()?;
        special_use = flag_list(c)?;
        c.expect(b")")?;
    }
    Ok(CommandKind::Create {
        mailbox,
        special_use,
    })
}

/// RFC 9051 §6.3.6 RENAME (after the verb): `mailbox SP mailbox`.
pub(super) fn parse_rename(c: &mut Lexer) -> Result<CommandKind, ParseError> {
    c.sp()?;
    let a = c.astring()?;
    c.sp()?;
    Ok(CommandKind::Rename(a, c.astring()?))
}

/// `SP mailbox`: the one argument of DELETE, (UN)SUBSCRIBE, GETQUOTA, GETQUOTAROOT.
pub(super) fn sp_mailbox(c: &mut Lexer) -> Result<Vec<u8>, ParseError> {
    c.sp()?;
    c.astring()
}

/// RFC 3501 §6.3.9 LSUB (after the verb): `mailbox SP list-mailbox`.
pub(super) fn parse_lsub(c: &mut Lexer) -> Result<CommandKind, ParseError> {
    c.sp()?;
    let reference = c.astring()?;
    c.sp()?;
    let pattern = c.list_mailbox()?;
    Ok(CommandKind::Lsub { reference, pattern })
}

/// RFC 9051 §6.3.11 STATUS (after the verb): `mailbox SP "(" status-att *(SP status-att) ")"`.
pub(super) fn parse_status(c: &mut Lexer) -> Result<CommandKind, ParseError> {
    c.sp()?;
    let mailbox = c.astring()?;
    c.sp()?;
    Ok(CommandKind::Status {
        mailbox,
        items: status_atts(c)?,
    })
}

/// RFC 9051 §9 / RFC 5819: "(" status-att *(SP status-att) ")", upper-cased.
fn status_atts(c: &mut Lexer) -> Result<Vec<String>, ParseError> {
    c.list1(|c| Ok(c.atom()?.to_ascii_uppercase()))
}

/// RFC 9051 §6.3.9 LIST (after the verb), with RFC 5258 §3 selection and return options.
pub(super) fn parse_list(c: &mut Lexer) -> Result<CommandKind, ParseError> {
    c.sp()?;
    let mut select = ListSelect::default();
    let mut extended = false;
    if c.eat(b'(') {
        extended = true;
        c.list_items(false, |c| {
            match c.atom()?.to_ascii_uppercase().as_str() {
                "SUBSCRIBED" => select.subscribed = true,
                "REMOTE" => select.remote = true,
                "RECURSIVEMATCH" => select.recursive_match = true,
                "SPECIAL-USE" => select.special_use = true,
                o => {
                    return Err(ParseError::Unknown {
                        what: "LIST selection option",
                        name: o.to_string(),
                    })
                }
            }
            Ok(())
        })?;
        c.sp()?;
        if select.recursive_match && !select.subscribed && !select.special_use {
            return invalid("RECURSIVEMATCH needs another selection option");
        }
    }
    let reference = c.astring()?;
    c.sp()?;
    let patterns = if c.eat(b'(') {
        extended = true;
        c.list_items(false, Lexer::list_mailbox)?
    } else {
        vec![c.list_mailbox()?]
    };
    let mut ret = ListReturn::default();
    if c.eat(b' ') {
        extended = true;
        let w = c.atom()?;
        if !w.eq_ignore_ascii_case("RETURN") {
            return Err(ParseError::Expected("RETURN"));
        }
        c.sp()?;
        c.list(|c| {
            match c.atom()?.to_ascii_uppercase().as_str() {
                "SUBSCRIBED" => ret.subscribed = true,
                "CHILDREN" => ret.children = true,
                "SPECIAL-USE" => ret.special_use = true,
                "STATUS" => {
                    c.sp()?;
                    ret.status = Some(status_atts(c)?);
                }
                o => {
                    return Err(ParseError::Unknown {
                        what: "LIST return option",
                        name: o.to_string(),
                    })
                }
            }
            Ok(())
        })?;
    }
    Ok(CommandKind::List {
        select,
        reference,
        patterns,
        ret,
        extended,
    })
}

#[cfg(test)]
mod tests {
    use super::super::CommandKind;
    use super::*;
    use crate::parser::testing::{p, pb};

    fn list_pattern(s: &[u8]) -> Vec<u8> {
        match pb(s).unwrap() {
            CommandKind::List { patterns, .. } => patterns[0].clone(),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn list_variants() {
        match p(
            "a LIST (SUBSCRIBED) \"\" (INBOX \"Sent\") RETURN (CHILDREN STATUS (MESSAGES UNSEEN))",
        ) {
            CommandKind::List {
                select,
                patterns,
                ret,
                extended,
                ..
            } => {
                assert!(select.subscribed && extended);
                assert_eq!(patterns.len(), 2);
                assert!(ret.children);
                assert_eq!(ret.status.unwrap().len(), 2);
            }
            o => panic!("{o:?}"),
        }
        assert!(matches!(
            p("a LIST \"\" *"),
            CommandKind::List {
                extended: false,
                ..
            }
        ));
        assert!(matches!(p("a LIST \"\" %/x"), CommandKind::List { .. }));
    }

    #[test]
    fn list_mailbox_takes_every_list_char() {
        assert_eq!(list_pattern(b"a LIST \"\" ~foo"), b"~foo");
        assert_eq!(list_pattern(b"a LIST \"\" ~peter/%"), b"~peter/%");
        assert_eq!(list_pattern(b"a LIST \"\" a]b*"), b"a]b*");
        assert_eq!(
            list_pattern(b"a LIST \"\" #news.comp.mail.*"),
            b"#news.comp.mail.*"
        );
        assert_eq!(list_pattern(b"a LIST \"\" {3+}\r\na%b"), b"a%b");
        assert!(pb(b"a LIST \"\" (x").is_err());
        assert!(pb(b"a LIST \"\" x{y").is_err());
    }

    #[test]
    fn select_parameters() {
        assert!(matches!(
            p("a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))"),
            CommandKind::Select {
                qresync: Some(Qresync {
                    uidvalidity: 67890007,
                    ..
                }),
                ..
            }
        ));
        assert!(matches!(
            p("a EXAMINE INBOX (CONDSTORE)"),
            CommandKind::Select {
                examine: true,
                condstore: true,
                ..
            }
        ));
        assert_eq!(
            pb(b"a SELECT INBOX (FOO)").unwrap_err().to_string(),
            "unknown SELECT parameter FOO"
        );
    }

    #[test]
    fn status_and_create() {
        assert!(pb(b"a STATUS x ()").is_err());
        assert!(pb(b"a STATUS x (MESSAGES UIDNEXT)").is_ok());
        assert!(pb(b"a LIST \"\" % RETURN (STATUS ())").is_err());
        assert_eq!(
            p("a CREATE x (USE (\\Sent))"),
            CommandKind::Create {
                mailbox: b"x".to_vec(),
                special_use: vec!["\\Sent".into()]
            }
        );
    }
}
