//! STORE, COPY, MOVE and UID EXPUNGE arguments, and flags (RFC 9051 §6.4.3, §6.4.6–§6.4.9).

use super::error::{invalid, ParseError};
use super::lexer::{is_atom_char, Lexer};
use super::seqset::seq_set_or_saved;
use super::CommandKind;

/// RFC 9051 §9 `store-att-flags`: how STORE changes the flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// `FLAGS`: replace the flags.
    Replace,
    /// `+FLAGS`: add to the flags.
    Add,
    /// `-FLAGS`: remove from the flags.
    Remove,
}

/// RFC 9051 §9 `flag` (system `\Flag` or keyword); `]` is refused as in an atom.
pub(super) fn flag(c: &mut Lexer) -> Result<String, ParseError> {
    let bs = c.eat(b'\\');
    let a = c.take_while(|b| is_atom_char(b) && b != b']');
    if a.is_empty() {
        return Err(ParseError::Expected("a flag"));
    }
    let mut s = String::new();
    if bs {
        s.push('\\');
    }
    s.push_str(&String::from_utf8_lossy(a));
    Ok(s)
}

/// RFC 9051 §9 `flag-list` = "(" [flag *(SP flag)] ")".
pub(super) fn flag_list(c: &mut Lexer) -> Result<Vec<String>, ParseError> {
    c.list(flag)
}

/// RFC 9051 §9 `store-att-flags` value: `flag-list / (flag *(SP flag))`.
fn flags_maybe_list(c: &mut Lexer) -> Result<Vec<String>, ParseError> {
    if c.peek() == Some(b'(') {
        return flag_list(c);
    }
    let mut out = vec![flag(c)?];
    while c.eat(b' ') {
        out.push(flag(c)?);
    }
    Ok(out)
}

/// RFC 9051 §6.4.6 STORE (after the verb), with RFC 7162 §3.1.3 UNCHANGEDSINCE.
pub(super) fn parse_store(c: &mut Lexer, uid: bool) -> Result<CommandKind, ParseError> {
    c.sp()?;
    let set = seq_set_or_saved(c)?;
    c.sp()?;
    let mut unchanged_since = None;
    if c.eat(b'(') {
        let w = c.atom()?;
        if !w.eq_ignore_ascii_case("UNCHANGEDSINCE") {
            return invalid("unknown STORE modifier");
        }
        c.sp()?;
        unchanged_since = Some(c.number64()?);
        c.expect(b")")?;
        c.sp()?;
    }
    let item = c.atom()?.to_ascii_uppercase();
    let (op, rest) = match item.as_bytes().first() {
        Some(b'+') => (StoreOp::Add, &item[1..]),
        Some(b'-') => (StoreOp::Remove, &item[1..]),
        _ => (StoreOp::Replace, item.as_str()),
    };
    let silent = match rest {
        "FLAGS" => false,
        "FLAGS.SILENT" => true,
        _ => return Err(ParseError::Expected("FLAGS, +FLAGS or -FLAGS")),
    };
    c.sp()?;
    let flags = if c.peek() == Some(b'(') && c.peek_at(1) == Some(b')') {
        c.set_pos(c.pos() + 2);
        Vec::new()
    } else {
        flags_maybe_list(c)?
    };
    Ok(CommandKind::Store {
        uid,
        set,
        op,
        silent,
        flags,
        unchanged_since,
    })
}

/// RFC 9051 §6.4.7 COPY / §6.4.8 MOVE (after the verb).
pub(super) fn parse_copy(
    c: &mut Lexer,
    uid: bool,
    is_move: bool,
) -> Result<CommandKind, ParseError> {
    c.sp()?;
    let set = seq_set_or_saved(c)?;
    c.sp()?;
    Ok(CommandKind::Copy {
        uid,
        set,
        mailbox: c.astring()?,
        is_move,
    })
}

/// RFC 9051 §6.4.9 UID EXPUNGE (RFC 4315 §2.1), after the verb.
pub(super) fn parse_uid_expunge(c: &mut Lexer) -> Result<CommandKind, ParseError> {
    c.sp()?;
    Ok(CommandKind::Expunge {
        uids: Some(seq_set_or_saved(c)?),
    })
}

#[cfg(test)]
mod tests {
    use super::super::{CommandKind, SeqNum, SeqSet};
    use super::*;
    use crate::parser::testing::p;

    #[test]
    fn store_and_copy() {
        assert_eq!(
            p("a UID STORE 1:2 (UNCHANGEDSINCE 7) +FLAGS.SILENT (\\Seen $Junk)"),
            CommandKind::Store {
                uid: true,
                set: SeqSet(vec![(SeqNum::Num(1), SeqNum::Num(2))]),
                op: StoreOp::Add,
                silent: true,
                flags: vec!["\\Seen".into(), "$Junk".into()],
                unchanged_since: Some(7)
            }
        );
        assert!(
            matches!(p("a STORE 1 FLAGS ()"), CommandKind::Store { flags, .. } if flags.is_empty())
        );
        assert!(matches!(
            p("a STORE 1 -FLAGS \\Deleted"),
            CommandKind::Store {
                op: StoreOp::Remove,
                ..
            }
        ));
        assert!(matches!(
            p("a UID MOVE 1 Trash"),
            CommandKind::Copy {
                is_move: true,
                uid: true,
                ..
            }
        ));
    }
}
