//! IMAP: the command parser with its literals, the MIME structure FETCH shows, and the header
//! and body matching of SEARCH, SORT and THREAD.

use postern_imap::mime::{self, Part};
use postern_imap::parser::lexer::is_tag_char;
use postern_imap::parser::{
    literal_at_end, parse_command, peek_tag_verb, CommandKind, ParseError, SectionText,
};
use postern_imap::{response, utf7, Lexer};

/// Input octets a command may announce as literals beyond what is there: the fuzzer's input is
/// the whole connection, so a literal is cut at its end.
fn take_command<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    if rest.is_empty() {
        return None;
    }
    let all = *rest;
    let mut at = 0;
    loop {
        let line_end = all[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(all.len(), |p| at + p + 1);
        let line = &all[at..line_end];
        at = line_end;
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        match literal_at_end(body) {
            Some(lit) if at < all.len() => {
                let n = usize::try_from(lit.len).unwrap_or(usize::MAX);
                at = at.saturating_add(n).min(all.len());
            }
            _ => break,
        }
    }
    *rest = &all[at..];
    Some(&all[..at])
}

/// IMAP commands (RFC 9051 §9 formal syntax, with RFC 3501 and the extensions the server has)
/// through [`postern_imap::parser::parse_command`], framed as the session frames them: a line,
/// and when it ends with a literal announcement (`{n}`, `{n+}`, `~{n}`, RFC 7888, RFC 3516) the
/// next `n` octets and the following line, and so on.
///
/// Checks: no panic; a parsed tag consists of tag characters and is what the session's
/// `peek_tag_verb` (used to answer refused literals) sees; literals yield no more octets than
/// the command holds; every mailbox name the response layer writes back (quoted or literal,
/// [`response::string`]) reads back with the [`Lexer`] as the same octets; a mailbox name that
/// decodes as modified UTF-7 (RFC 3501 §5.1.3) re-encodes to the same octets.
pub fn imap_command(data: &[u8]) {
    let mut rest = data;
    while let Some(cmd) = take_command(&mut rest) {
        check_command(cmd);
    }
}

fn check_command(cmd: &[u8]) {
    let first_line = cmd.split(|&b| b == b'\n').next().unwrap_or_default();
    let first_line = first_line.strip_suffix(b"\r").unwrap_or(first_line);
    let c = match parse_command(cmd) {
        Ok(c) => c,
        Err((tag, e)) => {
            let _ = e.to_string();
            if let Some(t) = tag {
                assert!(!t.is_empty() && t.bytes().all(is_tag_char), "{t:?}");
            } else {
                assert!(
                    matches!(e, ParseError::MissingTag),
                    "no tag, but not MissingTag: {e:?}"
                );
            }
            return;
        }
    };
    assert!(!c.tag.is_empty() && c.tag.bytes().all(is_tag_char), "{c:?}");
    assert_eq!(
        peek_tag_verb(first_line).0.as_deref(),
        Some(c.tag.as_str()),
        "the session would answer another tag"
    );
    let mut names: Vec<&[u8]> = Vec::new();
    let mut octets = 0usize;
    match &c.kind {
        CommandKind::Select { mailbox, .. }
        | CommandKind::Create { mailbox, .. }
        | CommandKind::Delete(mailbox)
        | CommandKind::Subscribe(mailbox)
        | CommandKind::Unsubscribe(mailbox)
        | CommandKind::Status { mailbox, .. }
        | CommandKind::Copy { mailbox, .. }
        | CommandKind::GetQuota(mailbox)
        | CommandKind::GetQuotaRoot(mailbox) => names.push(mailbox),
        CommandKind::Rename(a, b) => names.extend([a.as_slice(), b.as_slice()]),
        CommandKind::List {
            reference,
            patterns,
            ..
        } => {
            names.push(reference);
            names.extend(patterns.iter().map(Vec::as_slice));
        }
        CommandKind::Lsub { reference, pattern } => {
            names.extend([reference.as_slice(), pattern.as_slice()])
        }
        CommandKind::Append { mailbox, messages } => {
            names.push(mailbox);
            octets = messages.iter().map(|m| m.data.len()).sum();
        }
        CommandKind::Login { user, password } => octets = user.len() + password.len(),
        _ => {}
    }
    assert!(
        octets <= cmd.len(),
        "{octets} octets from a {} octet command",
        cmd.len()
    );
    for name in names {
        octets += name.len();
        assert!(octets <= cmd.len() * 2 + 16);
        if !name.contains(&0) {
            let mut wire = Vec::new();
            response::string(&mut wire, name);
            let mut lx = Lexer::new(&wire);
            assert_eq!(
                lx.astring().as_deref(),
                Ok(name),
                "{:?}",
                String::from_utf8_lossy(&wire)
            );
            assert!(lx.at_end());
        }
        if let Some(d) = utf7::decode(name) {
            assert_eq!(utf7::encode(&d).as_bytes(), name);
        }
    }
}

/// Checks that `out` is one IMAP value as FETCH writes it: a parenthesised list of nstrings
/// (quoted, literal or NIL), numbers and lists, read back with the command parser's [`Lexer`].
/// Elements are separated by one space, except a list directly after a list.
fn check_fetch_value(out: &[u8]) {
    fn value(lx: &mut Lexer<'_>, depth: usize) -> Result<(), ParseError> {
        assert!(depth < 200, "nesting too deep");
        match lx.peek() {
            Some(b'(') => {
                lx.expect(b"(")?;
                if lx.eat(b')') {
                    return Ok(());
                }
                loop {
                    let list = lx.peek() == Some(b'(');
                    value(lx, depth + 1)?;
                    if lx.eat(b')') {
                        return Ok(());
                    }
                    // RFC 9051 §9: addresses (`1*address`) and the parts of a multipart
                    // (`1*body`) follow each other without a space.
                    if !(list && lx.peek() == Some(b'(')) {
                        lx.sp()?;
                    }
                }
            }
            Some(b'0'..=b'9') => lx.number64().map(drop),
            _ => lx.nstring().map(drop),
        }
    }
    let mut lx = Lexer::new(out);
    if let Err(e) = value(&mut lx, 0) {
        panic!(
            "not a well-formed FETCH value ({e} at {}): {:?}",
            lx.pos(),
            String::from_utf8_lossy(out)
        );
    }
    assert!(
        lx.at_end(),
        "trailing octets: {:?}",
        String::from_utf8_lossy(out)
    );
}

/// Most parts whose sections are taken (the structure itself is bounded by the MIME parser).
const MAX_SECTION_PARTS: usize = 64;

/// A message through the MIME structure FETCH uses ([`postern_imap::mime`], RFC 9051 §6.4.5 and
/// §7.5.2, RFC 2045/2046, RFC 2047, RFC 2231, RFC 3516 BINARY): `parse`, `BODYSTRUCTURE` and
/// `BODY` (`body_structure`), `ENVELOPE`, `BODY[section]` of every part for every section text,
/// the decoded content of each part, and the address lists of the originator and recipient
/// fields.
///
/// Checks: no panic; every part's header and body ranges lie within the message, in order;
/// BODYSTRUCTURE, BODY and ENVELOPE are well-formed IMAP values (read back with the [`Lexer`]:
/// any header text, however hostile, is quoted or sent as a literal, never breaks the response);
/// `BODY[]` of the message is the message; a part's `BODY[n]` lies within the message.
pub fn imap_mime(data: &[u8]) {
    let root = mime::parse(data);
    let parts = collect_parts(&root);
    check_ranges(data, &root);
    for extended in [true, false] {
        let mut out = Vec::new();
        mime::body_structure(&mut out, data, &root, extended);
        check_fetch_value(&out);
    }
    let header = &data[root.header.clone()];
    let mut env = Vec::new();
    mime::envelope(&mut env, header);
    check_fetch_value(&env);
    for name in ["from", "sender", "reply-to", "to", "cc", "bcc"] {
        if let Some(v) = mime::header_value(header, name) {
            let _ = mime::address_list(&v);
        }
    }
    let _ = mime::subject(header);
    let _ = mime::sent_date(header);
    let names = vec!["subject".to_string(), "from".to_string()];
    let texts = [
        SectionText::Full,
        SectionText::Mime,
        SectionText::Header,
        SectionText::Text,
        SectionText::HeaderFields(names.clone()),
        SectionText::HeaderFieldsNot(names),
    ];
    assert_eq!(
        mime::section_bytes(data, &root, &[], &SectionText::Full).as_deref(),
        Some(data)
    );
    for (path, part) in parts.iter().take(MAX_SECTION_PARTS) {
        for text in &texts {
            if let Some(b) = mime::section_bytes(data, &root, path, text) {
                if matches!(text, SectionText::Full) {
                    assert!(b.len() <= data.len());
                }
            }
        }
        let _ = mime::decoded(data, part);
    }
}

/// The parts with their section paths (RFC 9051 §6.4.5 part numbering), found by asking
/// [`mime::part_at`] for each path the structure suggests, depth first.
fn collect_parts(root: &Part) -> Vec<(Vec<u32>, &Part)> {
    let mut out = Vec::new();
    let mut todo: Vec<Vec<u32>> = vec![Vec::new()];
    while let Some(path) = todo.pop() {
        if out.len() >= MAX_SECTION_PARTS {
            break;
        }
        let Some(p) = mime::part_at(root, &path) else {
            continue;
        };
        if !path.is_empty() {
            out.push((path.clone(), p));
        }
        if path.len() >= 8 {
            continue;
        }
        let inner = p.message.as_ref().map_or(0, |m| m.children.len().max(1));
        let n = p
            .children
            .len()
            .max(inner)
            .max(usize::from(path.is_empty()));
        for i in (1..=n.min(16)).rev() {
            let mut c = path.clone();
            c.push(u32::try_from(i).unwrap_or(u32::MAX));
            todo.push(c);
        }
    }
    out
}

fn check_ranges(data: &[u8], p: &Part) {
    let ok = |r: &std::ops::Range<usize>| r.start <= r.end && r.end <= data.len();
    assert!(ok(&p.header) && ok(&p.body), "{p:?}");
    assert!(p.header.end <= p.body.start, "header after body: {p:?}");
    for c in &p.children {
        assert!(
            c.header.start >= p.body.start && c.body.end <= p.body.end,
            "child outside its parent"
        );
        check_ranges(data, c);
    }
    if let Some(m) = &p.message {
        check_ranges(data, m);
    }
}

/// Most messages one input is split into for SORT and THREAD.
const MAX_THREAD_MESSAGES: usize = 16;

/// SEARCH, SORT and THREAD over message text ([`postern_imap::header_has`], `body_has`,
/// `sent_day`, `sort_info_of`, `thread_references`, `thread_ordered_subject`; RFC 9051 §6.4.4,
/// RFC 5256, RFC 5957, RFC 2047 decoding, i;unicode-casemap of RFC 5051).
///
/// Input: a first line, the search string; then messages separated by two NUL octets. The
/// first message is searched (BODY, TEXT and the header keys with the string); every message's
/// header gives its sort and thread keys. Checks: no panic; an empty string matches every
/// message that has the field; both threading algorithms place every message exactly once
/// (RFC 5256 §4) and write balanced parentheses; the base subject (RFC 5256 §2.1) is a fixed
/// point; the SORT comparison is a total order (sorting does not panic).
pub fn imap_search(data: &[u8]) {
    let (needle, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(p) => (&data[..p], &data[p + 1..]),
        None => (data, &b""[..]),
    };
    let needle = String::from_utf8_lossy(needle);
    let _ = postern_imap::decode_text(&needle);
    let _ = postern_imap::casemap(&needle);
    let messages: Vec<&[u8]> = split_messages(rest);
    if let Some(first) = messages.first() {
        let root = mime::parse(first);
        let header = &first[root.header.clone()];
        let _ = postern_imap::body_has(first, &needle, false);
        let _ = postern_imap::body_has(first, &needle, true);
        assert!(postern_imap::body_has(first, "", false));
        for field in ["from", "to", "cc", "subject", "message-id"] {
            let has = !mime::decoded_field(header, field).is_empty();
            let _ = postern_imap::header_has(header, field, &needle);
            assert_eq!(
                postern_imap::header_has(header, field, ""),
                has,
                "an empty string and the {field} field"
            );
        }
        let _ = postern_imap::sent_day(header);
    }
    let mut items = Vec::new();
    let mut infos = Vec::new();
    for (i, m) in messages.iter().take(MAX_THREAD_MESSAGES).enumerate() {
        let root = mime::parse(m);
        let info = postern_imap::sort_info_of(&m[root.header.clone()], i as i64, m.len() as u64);
        let subject = mime::header_value(&m[root.header.clone()], "subject")
            .map(|v| postern_imap::decode_text(&String::from_utf8_lossy(&v)))
            .unwrap_or_default();
        let (base, _) = postern_imap::base_subject_of(&subject);
        assert_eq!(
            postern_imap::base_subject_of(&base).0,
            base,
            "the base subject of {subject:?} is not a fixed point"
        );
        items.push(postern_imap::ThreadItem {
            num: u32::try_from(i + 1).unwrap_or(u32::MAX),
            date: info.date,
            subject: info.subject.clone(),
            reply: info.reply,
            id: info.message_id.clone(),
            refs: info.references.clone(),
        });
        infos.push(info);
    }
    let mut order: Vec<usize> = (0..infos.len()).collect();
    use postern_imap::parser::SortKey as K;
    let criteria = [
        (false, K::Subject),
        (true, K::Date),
        (false, K::From),
        (false, K::DisplayTo),
        (false, K::Cc),
        (true, K::Size),
    ];
    order.sort_by(|&a, &b| postern_imap::search_compare(&criteria, (a, &infos[a]), (b, &infos[b])));
    let n = items.len();
    for forest in [
        postern_imap::thread_references(items.clone()),
        postern_imap::thread_ordered_subject(items),
    ] {
        let text = forest.render();
        check_thread_list(&text, n);
    }
}

fn split_messages(rest: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + 1 < rest.len() {
        if rest[i] == 0 && rest[i + 1] == 0 {
            out.push(&rest[start..i]);
            i += 2;
            start = i;
        } else {
            i += 1;
        }
    }
    out.push(&rest[start..]);
    out
}

/// RFC 5256 §5 thread-list: balanced parentheses, and the numbers 1..=n each exactly once.
fn check_thread_list(text: &str, n: usize) {
    let mut depth = 0i64;
    let mut seen = vec![false; n + 1];
    let mut num = String::new();
    let mut flush = |num: &mut String| {
        if !num.is_empty() {
            let k: usize = num.parse().expect("a message number");
            assert!((1..=n).contains(&k), "unknown message {k} in {text}");
            assert!(!seen[k], "message {k} twice in {text}");
            seen[k] = true;
            num.clear();
        }
    };
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => {
                flush(&mut num);
                depth -= 1;
                assert!(depth >= 0, "unbalanced: {text}");
            }
            ' ' => flush(&mut num),
            '0'..='9' => num.push(c),
            _ => panic!("unexpected {c:?} in thread list {text}"),
        }
    }
    flush(&mut num);
    assert_eq!(depth, 0, "unbalanced: {text}");
    assert!(
        seen[1..].iter().all(|&s| s),
        "a message is missing from {text}"
    );
}
