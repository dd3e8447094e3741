//! FETCH data items, sections and partials (RFC 9051 §6.4.5, RFC 3516 BINARY, RFC 7162
//! CHANGEDSINCE / VANISHED modifiers).

use super::error::{invalid, ParseError};
use super::lexer::Lexer;
use super::seqset::seq_set_or_saved;
use super::CommandKind;

/// Part of a BODY[...] section (RFC 9051 §6.4.5, §9 `section-text` / `section-msgtext`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    /// No text specifier: the whole part (`BODY[]`, `BODY[1.2]`).
    Full,
    /// `HEADER`: the header, with the blank line that ends it.
    Header,
    /// `HEADER.FIELDS (...)`: only these fields (names lower-cased).
    HeaderFields(Vec<String>),
    /// `HEADER.FIELDS.NOT (...)`: every field but these (names lower-cased).
    HeaderFieldsNot(Vec<String>),
    /// `TEXT`: the body, without the header.
    Text,
    /// `MIME`: the MIME header of a part (only after a part number).
    Mime,
}

/// A section specification: part path plus text specifier (RFC 9051 §9 `section-spec`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The part path, 1-based (`1.2` is `[1, 2]`); empty: the message itself.
    pub part: Vec<u32>,
    /// What of that part.
    pub text: SectionText,
}

/// RFC 9051 §6.4.5 fetch data items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAtt {
    /// `ENVELOPE`: the parsed header fields (RFC 9051 §7.5.2).
    Envelope,
    /// `FLAGS`.
    Flags,
    /// `INTERNALDATE`.
    InternalDate,
    /// `RFC822.SIZE`: the size in octets with CRLF line endings.
    Rfc822Size,
    /// `RFC822`: the whole message, like `BODY[]` (sets `\Seen`).
    Rfc822,
    /// `RFC822.HEADER`: like `BODY.PEEK[HEADER]`.
    Rfc822Header,
    /// `RFC822.TEXT`: like `BODY[TEXT]` (sets `\Seen`).
    Rfc822Text,
    /// `UID`.
    Uid,
    /// `BODY` without a section: the non-extensible BODYSTRUCTURE.
    Body,
    /// `BODYSTRUCTURE`: the MIME structure with extension data.
    BodyStructure,
    /// `MODSEQ`: the message's mod-sequence (RFC 7162 CONDSTORE).
    Modseq,
    /// `BODY[section]<partial>` / `BODY.PEEK[...]`.
    BodySection {
        /// Which part, and what of it.
        section: Section,
        /// `<start.length>` in octets, if given.
        partial: Option<(u32, u32)>,
        /// `BODY.PEEK`: do not set `\Seen`.
        peek: bool,
    },
    /// RFC 3516 BINARY[...] / BINARY.PEEK
    Binary {
        /// The part path, 1-based; empty: the message itself.
        part: Vec<u32>,
        /// `<start.length>` in octets of the decoded content, if given.
        partial: Option<(u32, u32)>,
        /// `BINARY.PEEK`: do not set `\Seen`.
        peek: bool,
    },
    /// RFC 3516 BINARY.SIZE[...]
    BinarySize(Vec<u32>),
}

/// RFC 9051 §9 `section-part` = nz-number *("." nz-number), possibly empty; a "." before a
/// `section-text` is consumed.
fn section_part(c: &mut Lexer) -> Vec<u32> {
    let mut part = Vec::new();
    loop {
        let save = c.pos();
        let d = c.take_while(|b| b.is_ascii_digit());
        if d.is_empty() {
            c.set_pos(save);
            break;
        }
        match std::str::from_utf8(d)
            .ok()
            .and_then(|s| s.parse::<u32>().ok())
        {
            Some(n) if n > 0 => part.push(n),
            _ => {
                c.set_pos(save);
                break;
            }
        }
        if c.peek() == Some(b'.') && c.peek_at(1).is_some_and(|b| b.is_ascii_digit()) {
            c.eat(b'.');
        } else if c.peek() == Some(b'.') {
            c.eat(b'.');
            break;
        } else {
            break;
        }
    }
    part
}

/// RFC 9051 §9 `section` = "[" [section-spec] "]".
fn parse_section(c: &mut Lexer) -> Result<Section, ParseError> {
    c.expect(b"[")?;
    let part = section_part(c);
    let text = if c.peek() == Some(b']') {
        SectionText::Full
    } else {
        let w = c.keyword()?;
        match w.as_str() {
            "HEADER" => SectionText::Header,
            "TEXT" => SectionText::Text,
            "MIME" if !part.is_empty() => SectionText::Mime,
            "HEADER.FIELDS" | "HEADER.FIELDS.NOT" => {
                c.sp()?;
                let fields =
                    c.list(|c| Ok(String::from_utf8_lossy(&c.astring()?).to_ascii_lowercase()))?;
                if fields.is_empty() {
                    return invalid("empty header list");
                }
                if w == "HEADER.FIELDS" {
                    SectionText::HeaderFields(fields)
                } else {
                    SectionText::HeaderFieldsNot(fields)
                }
            }
            _ => return invalid(format!("bad section {w}")),
        }
    };
    c.expect(b"]")?;
    Ok(Section { part, text })
}

/// RFC 9051 §9 `partial` = "<" number64 "." nz-number64 ">" (here 32-bit values).
fn parse_partial(c: &mut Lexer) -> Result<Option<(u32, u32)>, ParseError> {
    if !c.eat(b'<') {
        return Ok(None);
    }
    let start = c.number()?;
    c.expect(b".")?;
    let len = c.number()?;
    if len == 0 {
        return invalid("partial length must be positive");
    }
    c.expect(b">")?;
    Ok(Some((start, len)))
}

/// RFC 9051 §9 `fetch-att`, or a macro (ALL, FAST, FULL) expanded to its items.
fn parse_fetch_att(c: &mut Lexer) -> Result<Vec<FetchAtt>, ParseError> {
    let w = c.keyword()?;
    use FetchAtt as F;
    Ok(match w.as_str() {
        "ALL" => vec![F::Flags, F::InternalDate, F::Rfc822Size, F::Envelope],
        "FAST" => vec![F::Flags, F::InternalDate, F::Rfc822Size],
        "FULL" => vec![
            F::Flags,
            F::InternalDate,
            F::Rfc822Size,
            F::Envelope,
            F::Body,
        ],
        "ENVELOPE" => vec![F::Envelope],
        "FLAGS" => vec![F::Flags],
        "INTERNALDATE" => vec![F::InternalDate],
        "RFC822.SIZE" => vec![F::Rfc822Size],
        "RFC822" => vec![F::Rfc822],
        "RFC822.HEADER" => vec![F::Rfc822Header],
        "RFC822.TEXT" => vec![F::Rfc822Text],
        "UID" => vec![F::Uid],
        "BODYSTRUCTURE" => vec![F::BodyStructure],
        "MODSEQ" => vec![F::Modseq],
        "BODY" | "BODY.PEEK" => {
            if c.peek() != Some(b'[') {
                if w == "BODY" {
                    return Ok(vec![F::Body]);
                }
                return invalid("BODY.PEEK needs a section");
            }
            let section = parse_section(c)?;
            let partial = parse_partial(c)?;
            vec![F::BodySection {
                section,
                partial,
                peek: w == "BODY.PEEK",
            }]
        }
        "BINARY" | "BINARY.PEEK" | "BINARY.SIZE" => {
            c.expect(b"[")?;
            let part = section_part(c);
            c.expect(b"]")?;
            if w == "BINARY.SIZE" {
                vec![F::BinarySize(part)]
            } else {
                let partial = parse_partial(c)?;
                vec![F::Binary {
                    part,
                    partial,
                    peek: w == "BINARY.PEEK",
                }]
            }
        }
        _ => {
            return Err(ParseError::Unknown {
                what: "fetch item",
                name: w,
            })
        }
    })
}

/// RFC 9051 §6.4.5 FETCH (after the verb): `sequence-set SP ("ALL" / "FULL" / "FAST" /
/// fetch-att / "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]`, with RFC 7162 §3.1.4
/// CHANGEDSINCE and §3.2.6 VANISHED.
pub(super) fn parse_fetch(c: &mut Lexer, uid: bool) -> Result<CommandKind, ParseError> {
    c.sp()?;
    let set = seq_set_or_saved(c)?;
    c.sp()?;
    let atts = if c.eat(b'(') {
        // RFC 9051 §9: "(" fetch-att *(SP fetch-att) ")"
        c.list_items(true, parse_fetch_att)?
            .into_iter()
            .flatten()
            .collect()
    } else {
        parse_fetch_att(c)?
    };
    let (mut changed_since, mut vanished) = (None, false);
    if c.eat(b' ') {
        c.list(|c| {
            match c.atom()?.to_ascii_uppercase().as_str() {
                "CHANGEDSINCE" => {
                    c.sp()?;
                    changed_since = Some(c.number64()?);
                }
                "VANISHED" => vanished = true,
                o => {
                    return Err(ParseError::Unknown {
                        what: "FETCH modifier",
                        name: o.to_string(),
                    })
                }
            }
            Ok(())
        })?;
    }
    if vanished && (!uid || changed_since.is_none()) {
        return invalid("VANISHED needs UID FETCH with CHANGEDSINCE");
    }
    Ok(CommandKind::Fetch {
        uid,
        set,
        atts,
        changed_since,
        vanished,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{parse_command, CommandKind};
    use super::*;
    use crate::parser::testing::{p, pb};

    #[test]
    fn fetch_items() {
        match p("a FETCH 1 (BODY.PEEK[HEADER.FIELDS (From Subject)]<0.100> BODY[1.2.MIME] BINARY[1] RFC822.SIZE BODY) (CHANGEDSINCE 5)") {
            CommandKind::Fetch { atts, changed_since, .. } => {
                assert_eq!(changed_since, Some(5));
                assert_eq!(atts.len(), 5);
                assert_eq!(
                    atts[0],
                    FetchAtt::BodySection {
                        section: Section {
                            part: vec![],
                            text: SectionText::HeaderFields(vec!["from".into(), "subject".into()])
                        },
                        partial: Some((0, 100)),
                        peek: true
                    }
                );
                assert_eq!(
                    atts[1],
                    FetchAtt::BodySection {
                        section: Section { part: vec![1, 2], text: SectionText::Mime },
                        partial: None,
                        peek: false
                    }
                );
            }
            o => panic!("{o:?}"),
        }
        match p("a FETCH 1:* ALL") {
            CommandKind::Fetch { atts, .. } => assert_eq!(atts.len(), 4),
            o => panic!("{o:?}"),
        }
        match p("a FETCH 1 BODY[2]") {
            CommandKind::Fetch { atts, .. } => assert!(matches!(
                &atts[0],
                FetchAtt::BodySection { section: Section { part, text: SectionText::Full }, .. } if part == &vec![2]
            )),
            o => panic!("{o:?}"),
        }
        assert!(parse_command(b"a FETCH 1 BODY[").is_err());
        assert!(parse_command(b"a FETCH 1 BODY[MIME]").is_err());
        assert!(parse_command(b"a FETCH 1 (FLAGS").is_err());
    }

    #[test]
    fn fetch_lists_that_must_not_be_empty() {
        assert!(pb(b"a FETCH 1 ()").is_err());
        assert!(pb(b"a FETCH 1 (FLAGS )").is_err());
        assert!(pb(b"a FETCH 1 (FLAGS UID)").is_ok());
        assert!(pb(b"a FETCH 1 BODY[HEADER.FIELDS ()]").is_err());
    }

    #[test]
    fn binary_and_modifiers() {
        match p("a UID FETCH 1 (BINARY.PEEK[1.2]<5.10> BINARY.SIZE[3]) (CHANGEDSINCE 9 VANISHED)") {
            CommandKind::Fetch { atts, vanished, .. } => {
                assert!(vanished);
                assert_eq!(
                    atts,
                    vec![
                        FetchAtt::Binary {
                            part: vec![1, 2],
                            partial: Some((5, 10)),
                            peek: true
                        },
                        FetchAtt::BinarySize(vec![3])
                    ]
                );
            }
            o => panic!("{o:?}"),
        }
        assert!(pb(b"a FETCH 1 FLAGS (CHANGEDSINCE 9 VANISHED)").is_err());
        assert_eq!(
            pb(b"a FETCH 1 FOO").unwrap_err().to_string(),
            "unknown fetch item FOO"
        );
        assert_eq!(
            pb(b"a FETCH 1 BODY[FOO]").unwrap_err().to_string(),
            "bad section FOO"
        );
    }
}
