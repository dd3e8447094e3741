//! SEARCH keys and RETURN options, SORT criteria and THREAD algorithms (RFC 9051 §6.4.4,
//! RFC 4731 ESEARCH, RFC 5182 SEARCHRES, RFC 5256 SORT/THREAD, RFC 5032 WITHIN, RFC 7162
//! CONDSTORE).

use super::date::{parse_date_str, Day};
use super::error::{invalid, ParseError};
use super::lexer::Lexer;
use super::seqset::{seq_set_or_saved, SeqSet};
use super::store::flag;
use super::CommandKind;

/// RFC 9051 §6.4.4 search keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    /// `ALL`: every message.
    All,
    /// `ANSWERED`: `\Answered` set.
    Answered,
    /// `BCC <string>`: the Bcc field contains the string.
    Bcc(String),
    /// `BEFORE <date>`: internal date (its day) earlier than the date.
    Before(Day),
    /// `BODY <string>`: the body (after the header) contains the string.
    Body(String),
    /// `CC <string>`: the Cc field contains the string.
    Cc(String),
    /// `DELETED`: `\Deleted` set.
    Deleted,
    /// `DRAFT`: `\Draft` set.
    Draft,
    /// `FLAGGED`: `\Flagged` set.
    Flagged,
    /// `FROM <string>`: the From field contains the string.
    From(String),
    /// `HEADER <field-name> <string>`: that field contains the string (an empty string: the
    /// field exists).
    Header(String, String),
    /// `KEYWORD <flag>`: the keyword is set.
    Keyword(String),
    /// `LARGER <n>`: RFC822.SIZE greater than n octets.
    Larger(u64),
    /// `NEW`: recent and not seen (RFC 3501).
    New,
    /// `NOT <key>`.
    Not(Box<SearchKey>),
    /// `OLD`: not recent (RFC 3501).
    Old,
    /// `ON <date>`: internal date (its day) on the date.
    On(Day),
    /// `OR <key> <key>`.
    Or(Box<SearchKey>, Box<SearchKey>),
    /// `RECENT`: `\Recent` (RFC 3501).
    Recent,
    /// `SEEN`: `\Seen` set.
    Seen,
    /// `SENTBEFORE <date>`: the Date field's day earlier than the date.
    SentBefore(Day),
    /// `SENTON <date>`: the Date field's day is the date.
    SentOn(Day),
    /// `SENTSINCE <date>`: the Date field's day on or after the date.
    SentSince(Day),
    /// `SINCE <date>`: internal date (its day) on or after the date.
    Since(Day),
    /// `SMALLER <n>`: RFC822.SIZE less than n octets.
    Smaller(u64),
    /// `SUBJECT <string>`: the Subject field contains the string.
    Subject(String),
    /// `TEXT <string>`: the header or body contains the string.
    Text(String),
    /// `TO <string>`: the To field contains the string.
    To(String),
    /// `UID <sequence-set>`.
    Uid(SeqSet),
    /// `UNANSWERED`: `\Answered` not set.
    Unanswered,
    /// `UNDELETED`: `\Deleted` not set.
    Undeleted,
    /// `UNDRAFT`: `\Draft` not set.
    Undraft,
    /// `UNFLAGGED`: `\Flagged` not set.
    Unflagged,
    /// `UNKEYWORD <flag>`: the keyword is not set.
    Unkeyword(String),
    /// `UNSEEN`: `\Seen` not set.
    Unseen,
    /// A bare `<sequence-set>` of message sequence numbers.
    Seq(SeqSet),
    /// Several keys side by side or in parentheses: all must match.
    And(Vec<SearchKey>),
    /// RFC 7162 §3.1.5
    Modseq(u64),
    /// RFC 5032 OLDER (seconds)
    Older(u64),
    /// RFC 5032 YOUNGER (seconds)
    Younger(u64),
    /// The whole key of a SEARCH/SORT/THREAD whose charset is not supported: the command is
    /// well-formed and is answered `NO [BADCHARSET]` (RFC 9051 §6.4.4, RFC 5256 §3).
    BadCharset(String),
}

/// Whether a charset is one search strings may be given in.
fn supported_charset(cs: &[u8]) -> bool {
    cs.eq_ignore_ascii_case(b"UTF-8") || cs.eq_ignore_ascii_case(b"US-ASCII")
}

/// RFC 4731 / RFC 9051 §6.4.4 search return options (RFC 5182 §2 SAVE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SearchReturn {
    /// `MIN`: the lowest matching number.
    pub min: bool,
    /// `MAX`: the highest matching number.
    pub max: bool,
    /// `ALL`: every matching number, as a sequence set (also what `RETURN ()` means).
    pub all: bool,
    /// `COUNT`: how many match.
    pub count: bool,
    /// `SAVE` (RFC 5182 §2.1): keep the result for `$`.
    pub save: bool,
}

/// Sort criteria (RFC 5256 §3 `sort-key`, RFC 5957 DISPLAYFROM / DISPLAYTO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// `ARRIVAL`: internal date.
    Arrival,
    /// `CC`: first Cc mailbox (local part).
    Cc,
    /// `DATE`: the Date field (internal date when it is missing or invalid).
    Date,
    /// `FROM`: first From mailbox (local part).
    From,
    /// `SIZE`: RFC822.SIZE.
    Size,
    /// `SUBJECT`: the base subject (RFC 5256 §2.1).
    Subject,
    /// `TO`: first To mailbox (local part).
    To,
    /// `DISPLAYFROM` (RFC 5957): display name of the first From address, else its address.
    DisplayFrom,
    /// `DISPLAYTO` (RFC 5957): display name of the first To address, else its address.
    DisplayTo,
}

/// RFC 9051 §9 `search-return-opts` = SP "RETURN" SP "(" [search-return-opt *(SP
/// search-return-opt)] ")", with its trailing SP; `None` if absent.
fn parse_search_return(c: &mut Lexer) -> Result<Option<SearchReturn>, ParseError> {
    let save = c.pos();
    if c.eat_ci(b"RETURN") {
        c.sp()?;
        let mut r = SearchReturn::default();
        c.list(|c| {
            match c.atom()?.to_ascii_uppercase().as_str() {
                "MIN" => r.min = true,
                "MAX" => r.max = true,
                "ALL" => r.all = true,
                "COUNT" => r.count = true,
                "SAVE" => r.save = true,
                o => {
                    return Err(ParseError::Unknown {
                        what: "search return option",
                        name: o.to_string(),
                    })
                }
            }
            Ok(())
        })?;
        if !(r.min || r.max || r.all || r.count || r.save) {
            r.all = true;
        }
        c.sp()?;
        return Ok(Some(r));
    }
    c.set_pos(save);
    Ok(None)
}

/// `[CHARSET SP astring SP]`: the charset if it is not supported.
fn parse_charset(c: &mut Lexer) -> Result<Option<String>, ParseError> {
    let save = c.pos();
    if c.eat_ci(b"CHARSET") {
        c.sp()?;
        let cs = c.astring()?;
        c.sp()?;
        if !supported_charset(&cs) {
            return Ok(Some(String::from_utf8_lossy(&cs).into_owned()));
        }
        return Ok(None);
    }
    c.set_pos(save);
    Ok(None)
}

/// RFC 9051 §6.4.4 SEARCH (after the verb): `[search-return-opts] [CHARSET astring]
/// 1*search-key`.
pub(super) fn parse_search_cmd(c: &mut Lexer, uid: bool) -> Result<CommandKind, ParseError> {
    c.sp()?;
    let ret = parse_search_return(c)?;
    let bad_charset = parse_charset(c)?;
    let mut key = parse_search_keys(c)?;
    if let Some(cs) = bad_charset {
        key = SearchKey::BadCharset(cs);
    }
    Ok(CommandKind::Search { uid, ret, key })
}

/// One or more space-separated keys, ANDed.
fn parse_search_keys(c: &mut Lexer) -> Result<SearchKey, ParseError> {
    let mut keys = vec![parse_search_key(c, 0)?];
    while c.eat(b' ') {
        keys.push(parse_search_key(c, 0)?);
    }
    Ok(if keys.len() == 1 {
        keys.remove(0)
    } else {
        SearchKey::And(keys)
    })
}

/// `SP astring` of a string search key, lossily as text.
fn search_string(c: &mut Lexer) -> Result<String, ParseError> {
    c.sp()?;
    Ok(String::from_utf8_lossy(&c.astring()?).into_owned())
}

/// `SP date` (RFC 9051 §9 `date` = date-text / DQUOTE date-text DQUOTE).
fn search_date(c: &mut Lexer) -> Result<Day, ParseError> {
    c.sp()?;
    let s = if c.peek() == Some(b'"') {
        c.quoted()?
    } else {
        c.take_while(|b| b.is_ascii_alphanumeric() || b == b'-')
            .to_vec()
    };
    parse_date_str(&String::from_utf8_lossy(&s)).ok_or(ParseError::BadDate)
}

/// RFC 9051 §9 `search-key`, nested at most 50 deep.
fn parse_search_key(c: &mut Lexer, depth: usize) -> Result<SearchKey, ParseError> {
    if depth > 50 {
        return Err(ParseError::TooDeep);
    }
    if c.eat(b'(') {
        let mut keys = vec![parse_search_key(c, depth + 1)?];
        while c.eat(b' ') {
            keys.push(parse_search_key(c, depth + 1)?);
        }
        c.expect(b")")?;
        return Ok(if keys.len() == 1 {
            keys.remove(0)
        } else {
            SearchKey::And(keys)
        });
    }
    if c.peek()
        .is_some_and(|b| b.is_ascii_digit() || b == b'*' || b == b'$')
    {
        return Ok(SearchKey::Seq(seq_set_or_saved(c)?));
    }
    let word = c.atom()?.to_ascii_uppercase();
    use SearchKey as K;
    Ok(match word.as_str() {
        "ALL" => K::All,
        "ANSWERED" => K::Answered,
        "BCC" => K::Bcc(search_string(c)?),
        "BEFORE" => K::Before(search_date(c)?),
        "BODY" => K::Body(search_string(c)?),
        "CC" => K::Cc(search_string(c)?),
        "DELETED" => K::Deleted,
        "DRAFT" => K::Draft,
        "FLAGGED" => K::Flagged,
        "FROM" => K::From(search_string(c)?),
        "HEADER" => {
            let f = search_string(c)?;
            K::Header(f, search_string(c)?)
        }
        "KEYWORD" => {
            c.sp()?;
            K::Keyword(flag(c)?)
        }
        "LARGER" => {
            c.sp()?;
            K::Larger(c.number64()?)
        }
        "NEW" => K::New,
        "NOT" => {
            c.sp()?;
            K::Not(Box::new(parse_search_key(c, depth + 1)?))
        }
        "OLD" => K::Old,
        "ON" => K::On(search_date(c)?),
        "OR" => {
            c.sp()?;
            let a = parse_search_key(c, depth + 1)?;
            c.sp()?;
            K::Or(Box::new(a), Box::new(parse_search_key(c, depth + 1)?))
        }
        "RECENT" => K::Recent,
        "SEEN" => K::Seen,
        "SENTBEFORE" => K::SentBefore(search_date(c)?),
        "SENTON" => K::SentOn(search_date(c)?),
        "SENTSINCE" => K::SentSince(search_date(c)?),
        "SINCE" => K::Since(search_date(c)?),
        "SMALLER" => {
            c.sp()?;
            K::Smaller(c.number64()?)
        }
        "SUBJECT" => K::Subject(search_string(c)?),
        "TEXT" => K::Text(search_string(c)?),
        "TO" => K::To(search_string(c)?),
        "UID" => {
            c.sp()?;
            K::Uid(seq_set_or_saved(c)?)
        }
        "UNANSWERED" => K::Unanswered,
        "UNDELETED" => K::Undeleted,
        "UNDRAFT" => K::Undraft,
        "UNFLAGGED" => K::Unflagged,
        "UNKEYWORD" => {
            c.sp()?;
            K::Unkeyword(flag(c)?)
        }
        "UNSEEN" => K::Unseen,
        // RFC 5032 §3: "OLDER" / "YOUNGER" SP nz-number
        "OLDER" => {
            c.sp()?;
            K::Older(c.nz_number64()?)
        }
        "YOUNGER" => {
            c.sp()?;
            K::Younger(c.nz_number64()?)
        }
        "MODSEQ" => {
            c.sp()?;
            // RFC 7162 §7: search-modseq-ext = entry-name SP entry-type-req, entry-name being
            // "/flags/" attr-flag, entry-type-req "priv" / "shared" / "all".
            if c.peek() == Some(b'"') {
                let name = c.quoted()?;
                if !name.starts_with(b"/flags/") || name.len() == 7 {
                    return invalid("MODSEQ entry name must be \"/flags/<flag>\"");
                }
                c.sp()?;
                let t = c.atom()?.to_ascii_lowercase();
                if !matches!(t.as_str(), "priv" | "shared" | "all") {
                    return invalid("MODSEQ entry type must be priv, shared or all");
                }
                c.sp()?;
            }
            K::Modseq(c.number64()?)
        }
        _ => {
            return Err(ParseError::Unknown {
                what: "search key",
                name: word,
            })
        }
    })
}

/// RFC 5256 §3 SORT (after the verb): `[search-return-opts] "(" sort-criterion *(SP
/// sort-criterion) ")" SP search-charset 1*(SP search-key)`.
pub(super) fn parse_sort(c: &mut Lexer, uid: bool) -> Result<CommandKind, ParseError> {
    c.sp()?;
    let ret = parse_search_return(c)?;
    c.expect(b"(")?;
    let mut criteria = Vec::new();
    let mut reverse = false;
    while !c.eat(b')') {
        if !criteria.is_empty() || reverse {
            c.sp()?;
        }
        let w = c.atom()?.to_ascii_uppercase();
        if reverse && w == "REVERSE" {
            return invalid("REVERSE twice");
        }
        let k = match w.as_str() {
            "REVERSE" => {
                reverse = true;
                continue;
            }
            "ARRIVAL" => SortKey::Arrival,
            "CC" => SortKey::Cc,
            "DATE" => SortKey::Date,
            "FROM" => SortKey::From,
            "SIZE" => SortKey::Size,
            "SUBJECT" => SortKey::Subject,
            "TO" => SortKey::To,
            "DISPLAYFROM" => SortKey::DisplayFrom,
            "DISPLAYTO" => SortKey::DisplayTo,
            o => {
                return Err(ParseError::Unknown {
                    what: "sort key",
                    name: o.to_string(),
                })
            }
        };
        criteria.push((reverse, k));
        reverse = false;
    }
    // RFC 5256 §3: sort-criterion = ["REVERSE" SP] sort-key
    if criteria.is_empty() || reverse {
        return invalid("REVERSE needs a sort key");
    }
    let key = parse_charset_and_keys(c)?;
    Ok(CommandKind::Sort {
        uid,
        criteria,
        key,
        ret,
    })
}

/// RFC 5256 §3 `SP search-charset 1*(SP search-key)` of SORT and THREAD: the keys, or the
/// whole key [`SearchKey::BadCharset`] when the charset is not supported.
fn parse_charset_and_keys(c: &mut Lexer) -> Result<SearchKey, ParseError> {
    c.sp()?;
    let cs = c.astring()?;
    c.sp()?;
    let key = parse_search_keys(c)?;
    if !supported_charset(&cs) {
        return Ok(SearchKey::BadCharset(
            String::from_utf8_lossy(&cs).into_owned(),
        ));
    }
    Ok(key)
}

/// RFC 5256 §3 THREAD (after the verb): `thread-alg SP search-charset 1*(SP search-key)`.
pub(super) fn parse_thread(c: &mut Lexer, uid: bool) -> Result<CommandKind, ParseError> {
    c.sp()?;
    let alg = c.atom()?.to_ascii_uppercase();
    let references = match alg.as_str() {
        "REFERENCES" => true,
        "ORDEREDSUBJECT" => false,
        _ => return invalid("unknown THREAD algorithm"),
    };
    let key = parse_charset_and_keys(c)?;
    Ok(CommandKind::Thread {
        uid,
        references,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{days_from_civil, parse_command, CommandKind, ParseError};
    use super::*;
    use crate::parser::testing::{p, pb};

    #[test]
    fn search_keys() {
        match p("a UID SEARCH RETURN (MIN COUNT) CHARSET UTF-8 OR FROM \"bob\" (SUBJECT {3}\r\nhey UNSEEN) NOT 1:5 SINCE 1-Feb-2024") {
            CommandKind::Search { uid, ret, key } => {
                assert!(uid);
                let r = ret.unwrap();
                assert!(r.min && r.count && !r.all);
                match key {
                    SearchKey::And(v) => {
                        assert_eq!(v.len(), 3);
                        assert_eq!(v[2], SearchKey::Since(days_from_civil(2024, 2, 1)));
                    }
                    o => panic!("{o:?}"),
                }
            }
            o => panic!("{o:?}"),
        }
        assert_eq!(
            p("a SEARCH CHARSET KOI8 ALL"),
            CommandKind::Search {
                uid: false,
                ret: None,
                key: SearchKey::BadCharset("KOI8".into())
            }
        );
        assert!(parse_command(b"a SEARCH CHARSET KOI8 FROM").is_err());
        assert!(matches!(
            p("a SORT (DATE) koi8-r ALL"),
            CommandKind::Sort {
                key: SearchKey::BadCharset(_),
                ..
            }
        ));
        assert!(matches!(
            p("a THREAD REFERENCES utf-8 ALL"),
            CommandKind::Thread {
                key: SearchKey::All,
                ..
            }
        ));
        assert!(parse_command(b"a SEARCH").is_err());
        assert!(parse_command(b"a SEARCH OR ALL").is_err());
        let deep = format!("a SEARCH {}ALL{}", "(".repeat(200), ")".repeat(200));
        assert_eq!(
            parse_command(deep.as_bytes()).unwrap_err().1,
            ParseError::TooDeep
        );
    }

    #[test]
    fn quoted_specials_and_literals() {
        let s = |cmd: &[u8]| match pb(cmd) {
            Ok(CommandKind::Search {
                key: SearchKey::Subject(s),
                ..
            }) => Ok(s),
            Ok(o) => panic!("{o:?}"),
            Err(e) => Err(e),
        };
        assert_eq!(s(b"a SEARCH SUBJECT \"a\\\"b\\\\c\"").unwrap(), "a\"b\\c");
        assert!(s(b"a SEARCH SUBJECT \"a\\x\"").is_err());
        assert!(s(b"a SEARCH SUBJECT \"a\0\"").is_err());
        assert!(s(b"a SEARCH SUBJECT \"a\rb\"").is_err());
        assert_eq!(s(b"a SEARCH SUBJECT {3+}\r\na\"b").unwrap(), "a\"b");
        assert_eq!(s(b"a SEARCH SUBJECT {3}\r\n\r\n(").unwrap(), "\r\n(");
        assert!(s(b"a SEARCH SUBJECT {3}").is_err());
        assert!(s(b"a SEARCH SUBJECT {3}x\r\nabc").is_err());
        assert!(s(b"a SEARCH SUBJECT {99999999999999999999}\r\n").is_err());
    }

    #[test]
    fn modseq_search_key() {
        let k = |cmd: &[u8]| match pb(cmd) {
            Ok(CommandKind::Search { key, .. }) => Ok(key),
            Ok(o) => panic!("{o:?}"),
            Err(e) => Err(e),
        };
        assert_eq!(k(b"a SEARCH MODSEQ 0").unwrap(), SearchKey::Modseq(0));
        assert_eq!(
            k(b"a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338").unwrap(),
            SearchKey::Modseq(620162338)
        );
        assert!(k(b"a SEARCH MODSEQ \"/flags/x\" bogus 5").is_err());
        assert!(k(b"a SEARCH MODSEQ \"/other\" all 5").is_err());
        assert!(k(b"a SEARCH MODSEQ x").is_err());
    }

    #[test]
    fn within_and_dates() {
        assert_eq!(pb(b"a SEARCH OLDER 0").unwrap_err(), ParseError::ZeroNumber);
        assert!(pb(b"a SEARCH YOUNGER 60").is_ok());
        assert!(pb(b"a SEARCH SINCE 1-Jan-24").is_err());
        assert!(pb(b"a SEARCH SINCE \"1-Jan-2024\"").is_ok());
    }

    #[test]
    fn sort_thread() {
        assert!(
            matches!(p("a UID SORT (REVERSE DATE SUBJECT) UTF-8 ALL"), CommandKind::Sort { criteria, .. } if criteria == vec![(true, SortKey::Date), (false, SortKey::Subject)])
        );
        assert!(matches!(
            p("a THREAD REFERENCES UTF-8 ALL"),
            CommandKind::Thread {
                references: true,
                ..
            }
        ));
    }

    #[test]
    fn sort_criteria_grammar() {
        assert!(pb(b"a SORT (REVERSE) UTF-8 ALL").is_err());
        assert!(pb(b"a SORT (DATE REVERSE) UTF-8 ALL").is_err());
        assert!(pb(b"a SORT (REVERSE REVERSE DATE) UTF-8 ALL").is_err());
        assert!(pb(b"a SORT () UTF-8 ALL").is_err());
        assert!(pb(b"a SORT (REVERSE ARRIVAL DISPLAYFROM) US-ASCII ALL").is_ok());
    }
}
