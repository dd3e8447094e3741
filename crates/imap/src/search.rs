//! SEARCH (RFC 9051 §6.4.4, RFC 4731 ESEARCH, RFC 7162 MODSEQ), SORT and THREAD (RFC 5256).

use std::collections::HashMap;

use mail_parser::{HeaderName, HeaderValue, MessageParser};
use postern_store::search::Day as StoreDay;
use postern_store::{MessageMeta, SearchKey as StoreKey, SystemFlags, TextMatcher, UidSet};
use unicode_normalization::UnicodeNormalization;

use crate::mime;
use crate::parser::{days_from_civil, Day, SearchKey, SearchReturn, SortKey};
use crate::response::{bad, no_code, ok, to_crlf, Code, Data, Reply};
use crate::selected::{set_string, Msg};
use crate::session::{SResult, Session};

fn uses_modseq(k: &SearchKey) -> bool {
    match k {
        SearchKey::Modseq(_) => true,
        SearchKey::Not(k) => uses_modseq(k),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        SearchKey::And(v) => v.iter().any(uses_modseq),
        _ => false,
    }
}

/// RFC 9051 §6.4.4: an unsupported charset is a tagged NO with BADCHARSET (not BAD).
fn bad_charset(key: &SearchKey) -> Option<Reply> {
    match key {
        SearchKey::BadCharset(cs) => Some(no_code(
            Code::BadCharset,
            format!(
                "Unsupported charset {}",
                cs.chars()
                    .filter(|c| c.is_ascii_graphic())
                    .collect::<String>()
            ),
        )),
        _ => None,
    }
}

/// RFC 5051 i;unicode-casemap, the collation SORT and THREAD must use (RFC 5256 §1 requires
/// I18NLEVEL=1, whose default it is, RFC 5255 §4) and SEARCH uses with it: each character
/// by its simple titlecase mapping, then decomposed; the results compare octet by octet.
/// The decomposition is the canonical one (NFD), as Dovecot has it ("ﬁ" stays "ﬁ").
pub fn casemap(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_uppercase();
    }
    s.chars()
        .map(|c| match c {
            // The digraphs whose titlecase differs from their uppercase.
            '\u{1C4}'..='\u{1C6}' => '\u{1C5}',
            '\u{1C7}'..='\u{1C9}' => '\u{1C8}',
            '\u{1CA}'..='\u{1CC}' => '\u{1CB}',
            '\u{1F1}'..='\u{1F3}' => '\u{1F2}',
            _ => {
                // A simple mapping is one character; "ß" has none (its full one is "SS").
                let mut up = c.to_uppercase();
                match (up.next(), up.next()) {
                    (Some(u), None) => u,
                    _ => c,
                }
            }
        })
        .nfd()
        .collect()
}

/// RFC 9051 §6.4.4 / RFC 3501 §6.4.4 SENTBEFORE, SENTON, SENTSINCE: the date of the `Date:`
/// header in its own time zone, time disregarded. Without a parseable `Date:` the sent date is
/// 1 January 1970, as Dovecot has it (the RFC leaves it open).
pub fn sent_day(hdr: &[u8]) -> Day {
    let Some(v) = mime::header_value(hdr, "date") else {
        return 0;
    };
    let mut one = b"Date: ".to_vec();
    one.extend_from_slice(&v);
    one.extend_from_slice(b"\r\n\r\n");
    let Some(msg) = MessageParser::new().parse_headers(&one) else {
        return 0;
    };
    match msg.date() {
        Some(d) if (1..=12).contains(&d.month) && (1..=31).contains(&d.day) => {
            days_from_civil(i64::from(d.year), u32::from(d.month), u32::from(d.day))
        }
        _ => 0,
    }
}

/// Whether an RFC 2047 charset (RFC 2231 language suffix allowed) can be decoded.
fn known_charset(cs: &str) -> bool {
    let cs = cs.split('*').next().unwrap_or(cs);
    ["utf-8", "utf8", "unicode-1-1-utf-8"]
        .iter()
        .any(|u| cs.eq_ignore_ascii_case(u))
        || mail_parser::decoders::charsets::map::charset_decoder(cs.as_bytes()).is_some()
}

/// RFC 2047 decoding of header text for SEARCH and SORT. An encoded word in a charset that
/// cannot be decoded stands for one U+FFFD (RFC 2047 §6.2 (c): show that it could not be
/// displayed, rather than mojibake), which is what Dovecot matches and sorts.
pub fn decode_text(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find("=?") {
        out.push_str(&rest[..start]);
        let word = &rest[start..];
        // "=?" charset "?" ("B" / "Q") "?" encoded-text "?="
        let parsed = word[2..].split_once('?').and_then(|(cs, r)| {
            let (enc, r) = r.split_once('?')?;
            let end = r.find("?=")?;
            let ok = !cs.is_empty()
                && !cs.contains(char::is_whitespace)
                && matches!(enc, "B" | "b" | "Q" | "q")
                && !r[..end].contains(char::is_whitespace);
            ok.then_some((cs, 2 + cs.len() + 1 + enc.len() + 1 + end + 2))
        });
        match parsed {
            Some((cs, len)) if !known_charset(cs) => {
                out.push('\u{fffd}');
                rest = &word[len..];
            }
            Some((_, len)) => {
                out.push_str(&word[..len]);
                rest = &word[len..];
            }
            None => {
                out.push_str("=?");
                rest = &word[2..];
            }
        }
    }
    out.push_str(rest);
    mime::decode_words(&out)
}

/// RFC 9051 §6.4.4 FROM/TO/CC/BCC/SUBJECT/HEADER: a case-insensitive substring of the whole
/// field value with RFC 2047 encoded words decoded (display names and addresses alike); an
/// empty string matches every message that has the field.
pub fn header_has(hdr: &[u8], field: &str, needle: &str) -> bool {
    if field.is_empty() {
        return false;
    }
    let needle = casemap(needle);
    let values: Vec<String> = mime::fields(hdr)
        .into_iter()
        .filter(|(n, _)| n == field)
        .map(|(_, r)| {
            let raw = &hdr[r];
            let colon = raw.iter().position(|&b| b == b':').unwrap_or(0);
            decode_text(&String::from_utf8_lossy(&raw[(colon + 1).min(raw.len())..]))
        })
        .collect();
    // The unfolded value with tabs as spaces, as Dovecot compares it.
    if values
        .iter()
        .any(|v| casemap(&v.replace('\t', " ")).contains(&needle))
    {
        return true;
    }
    // Encoded words inside quoted display names (left as they are by the unstructured
    // decoding) are decoded by the address parser only.
    if !values.iter().any(|v| v.contains("=?"))
        || !matches!(field, "from" | "to" | "cc" | "bcc" | "sender" | "reply-to")
    {
        return false;
    }
    address_forms(hdr, field)
        .iter()
        .any(|v| casemap(v).contains(&needle))
}

/// `Name <local@host>` for every address of the first field `field`, display names decoded.
fn address_forms(hdr: &[u8], field: &str) -> Vec<String> {
    let Some(v) = mime::header_value(hdr, field) else {
        return Vec::new();
    };
    let mut one = b"To: ".to_vec();
    one.extend_from_slice(&v);
    one.extend_from_slice(b"\r\n\r\n");
    let Some(msg) = MessageParser::new().parse_headers(&one) else {
        return Vec::new();
    };
    let Some(HeaderValue::Address(a)) = msg.header(HeaderName::To) else {
        return Vec::new();
    };
    a.iter()
        .map(|x| match (x.name.as_deref(), x.address.as_deref()) {
            (Some(n), Some(a)) => format!("{n} <{a}>"),
            (Some(n), None) => n.to_string(),
            (None, Some(a)) => a.to_string(),
            (None, None) => String::new(),
        })
        .collect()
}

/// RFC 9051 §6.4.4 BODY: the string in the body of the message, read as Dovecot reads it:
/// the content of each text (or message) part with its transfer encoding removed and its
/// charset converted, not MIME headers, boundaries, preamble, epilogue or binary parts.
/// TEXT (`with_headers`): that, or any header field of the message, of its MIME parts or of
/// an encapsulated message (RFC 2047 words decoded).
pub fn body_has(full: &[u8], needle: &str, with_headers: bool) -> bool {
    if needle.is_empty() {
        return true;
    }
    let needle = casemap(needle);
    let root = mime::parse(full);
    let mut stack = vec![&root];
    while let Some(p) = stack.pop() {
        if with_headers {
            let hdr = &full[p.header.clone()];
            for (_, r) in mime::fields(hdr) {
                let field = String::from_utf8_lossy(&hdr[r]);
                let (name, value) = field.split_once(':').unwrap_or(("", &field));
                let line = format!("{name}: {}", decode_text(value).replace('\t', " "));
                if casemap(&line).contains(&needle) {
                    return true;
                }
            }
        }
        stack.extend(p.children.iter().rev());
        if let Some(m) = &p.message {
            stack.push(m);
        }
        if p.children.is_empty()
            && p.message.is_none()
            && (p.ctype == "text" || p.ctype == "message")
            && casemap(&part_text(full, p)).contains(&needle)
        {
            return true;
        }
    }
    false
}

/// A leaf part's content as text: transfer encoding removed, charset converted to UTF-8.
fn part_text(full: &[u8], p: &mime::Part) -> String {
    let bytes = mime::decoded(full, p).unwrap_or_else(|_| full[p.body.clone()].to_vec());
    let decoder = p
        .params
        .iter()
        .find(|(k, _)| k == "charset")
        .and_then(|(_, v)| mail_parser::decoders::charsets::map::charset_decoder(v.as_bytes()));
    match decoder {
        Some(d) => d(&bytes),
        None => String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// The IMAP text matching the store's SEARCH calls back into: RFC 2047 words, MIME parts and
/// charsets decoded, compared under i;unicode-casemap.
struct ImapText;

impl TextMatcher for ImapText {
    fn header_has(&self, header: &[u8], field: &str, needle: &str) -> bool {
        header_has(header, field, needle)
    }
    fn body_has(&self, message: &[u8], needle: &str, with_headers: bool) -> bool {
        body_has(message, needle, with_headers)
    }
    fn sent_day(&self, header: &[u8]) -> StoreDay {
        sent_day(header)
    }
}

/// The store's form of an IMAP search key: sequence numbers and `*` resolved against the
/// session's view `msgs` (ascending UIDs), the negative keys written as negations.
fn store_key(k: &SearchKey, msgs: &[Msg]) -> StoreKey {
    use SearchKey as K;
    use StoreKey as S;
    let not = |k: StoreKey| S::Not(Box::new(k));
    let header = |f: &str, s: &str| S::Header(f.to_owned(), s.to_owned());
    match k {
        K::All => S::All,
        K::Answered => S::Flag(SystemFlags::ANSWERED),
        K::Deleted => S::Flag(SystemFlags::DELETED),
        K::Draft => S::Flag(SystemFlags::DRAFT),
        K::Flagged => S::Flag(SystemFlags::FLAGGED),
        K::Seen => S::Flag(SystemFlags::SEEN),
        K::Unanswered => not(S::Flag(SystemFlags::ANSWERED)),
        K::Undeleted => not(S::Flag(SystemFlags::DELETED)),
        K::Undraft => not(S::Flag(SystemFlags::DRAFT)),
        K::Unflagged => not(S::Flag(SystemFlags::FLAGGED)),
        K::Unseen => not(S::Flag(SystemFlags::SEEN)),
        K::Recent => S::Recent,
        K::New => S::And(vec![S::Recent, not(S::Flag(SystemFlags::SEEN))]),
        K::Old => not(S::Recent),
        K::Keyword(kw) => S::Keyword(kw.clone()),
        K::Unkeyword(kw) => not(S::Keyword(kw.clone())),
        K::Before(d) => S::Before(*d),
        K::On(d) => S::On(*d),
        K::Since(d) => S::Since(*d),
        K::Older(s) => S::Older(*s),
        K::Younger(s) => S::Younger(*s),
        K::SentBefore(d) => S::SentBefore(*d),
        K::SentOn(d) => S::SentOn(*d),
        K::SentSince(d) => S::SentSince(*d),
        K::Larger(n) => S::Larger(*n),
        K::Smaller(n) => S::Smaller(*n),
        K::Uid(set) => {
            let mut uids = UidSet::new();
            for (a, b) in set.resolve(msgs.last().map_or(0, |m| m.uid)) {
                uids.insert_range(a, b);
            }
            S::Uid(uids)
        }
        K::Seq(set) => {
            // Sequence ranges of this session's view are UID ranges of the same messages.
            let mut uids = UidSet::new();
            for (a, b) in set.resolve(msgs.len() as u32) {
                let (a, b) = (a.max(1) as usize, (b as usize).min(msgs.len()));
                if a <= b {
                    uids.insert_range(msgs[a - 1].uid, msgs[b - 1].uid);
                }
            }
            S::Uid(uids)
        }
        K::Modseq(n) => S::Modseq(*n),
        K::Bcc(s) => header("bcc", s),
        K::Cc(s) => header("cc", s),
        K::From(s) => header("from", s),
        K::To(s) => header("to", s),
        K::Subject(s) => header("subject", s),
        K::Header(name, s) => header(&name.to_ascii_lowercase(), s),
        K::Body(s) => S::Body(s.clone()),
        K::Text(s) => S::Text(s.clone()),
        // Answered before evaluation (`bad_charset`); nested it matches nothing.
        K::BadCharset(_) => not(S::All),
        K::Not(k) => not(store_key(k, msgs)),
        K::Or(a, b) => S::Or(Box::new(store_key(a, msgs)), Box::new(store_key(b, msgs))),
        K::And(v) => S::And(v.iter().map(|k| store_key(k, msgs)).collect()),
    }
}

/// RFC 5256 §5 `subj-blob` = "[" *BLOBCHAR "]" *WSP at the start of `s`: the rest after it.
fn strip_blob(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('[')?;
    let end = inner.find(['[', ']'])?;
    if inner.as_bytes()[end] != b']' {
        return None;
    }
    Some(inner[end + 1..].trim_start_matches([' ', '\t']))
}

/// RFC 5256 §5 `subj-refwd` = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":" after any number of
/// `subj-blob`s: the rest after it.
fn strip_refwd(s: &str) -> Option<&str> {
    let mut t = s;
    loop {
        let b = t.as_bytes();
        let word = if b.len() >= 2 && b[..2].eq_ignore_ascii_case(b"re") {
            2
        } else if b.len() >= 3 && b[..3].eq_ignore_ascii_case(b"fwd") {
            3
        } else if b.len() >= 2 && b[..2].eq_ignore_ascii_case(b"fw") {
            2
        } else {
            0
        };
        if word > 0 {
            let mut r = t[word..].trim_start_matches([' ', '\t']);
            if let Some(after) = strip_blob(r) {
                r = after;
            }
            if let Some(after) = r.strip_prefix(':') {
                return Some(after);
            }
        }
        // Otherwise a leading blob may precede the "re:".
        t = strip_blob(t)?;
    }
}

/// RFC 5256 §2.1 base subject of a decoded subject (case kept), and whether extracting it
/// removed a reply or forward marker (`Re:`, `Fwd:`, `(fwd)`, `[Fwd: ...]`), which the
/// REFERENCES algorithm needs (§4 step 6).
pub fn base_subject_of(subject: &str) -> (String, bool) {
    // (1) whitespace runs (tabs, continuations) become one space.
    let mut s = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut reply = false;
    loop {
        // (2) subj-trailer = "(fwd)" / WSP, repeatedly.
        loop {
            let t = s.trim_end_matches([' ', '\t']);
            let n = t.len();
            if n >= 5 && t.as_bytes()[n - 5..].eq_ignore_ascii_case(b"(fwd)") {
                s.truncate(n - 5);
                reply = true;
            } else {
                s.truncate(n);
                break;
            }
        }
        // (3)-(5) subj-leader, then a subj-blob that leaves a non-empty base, repeatedly.
        loop {
            let t = s.trim_start_matches([' ', '\t']);
            if let Some(rest) = strip_refwd(t) {
                reply = true;
                s = rest.to_string();
                continue;
            }
            if let Some(rest) = strip_blob(t) {
                if !rest.trim().is_empty() {
                    s = rest.to_string();
                    continue;
                }
            }
            if t.len() != s.len() {
                s = t.to_string();
            }
            break;
        }
        // (6) "[fwd:" ... "]" around the whole subject: remove and start again at (2).
        let b = s.as_bytes();
        if b.len() >= 6 && b[..5].eq_ignore_ascii_case(b"[fwd:") && b[b.len() - 1] == b']' {
            s = s[5..s.len() - 1].to_string();
            reply = true;
            continue;
        }
        return (s, reply);
    }
}

impl Session {
    /// Messages (indexes) matching `key`, in sequence order: the store evaluates the key over
    /// this session's view of the mailbox.
    async fn matching(&mut self, key: &SearchKey) -> Vec<usize> {
        let Some(sel) = self.sel.as_ref() else {
            return Vec::new();
        };
        let key = store_key(key, &sel.msgs);
        let metas: Vec<MessageMeta> = sel
            .msgs
            .iter()
            .map(|m| MessageMeta {
                uid: m.uid,
                flags: m.flags.clone(),
                modseq: m.modseq,
                internal_date: m.internal_date,
                size: m.size,
                wire_size: m.wire_size,
                recent: m.recent,
            })
            .collect();
        let name = sel.name.clone();
        let account = self.account().to_string();
        let uids = self
            .srv
            .store
            .search(&account, &name, &metas, &key, &ImapText)
            .await
            .unwrap_or_default();
        let Some(sel) = self.sel.as_ref() else {
            return Vec::new();
        };
        uids.iter()
            .filter_map(|&u| sel.msgs.binary_search_by_key(&u, |m| m.uid).ok())
            .collect()
    }

    /// RFC 9051 §6.4.4 SEARCH / RFC 4731 ESEARCH
    pub(crate) async fn search(
        &mut self,
        tag: &str,
        uid: bool,
        ret: Option<SearchReturn>,
        key: SearchKey,
    ) -> SResult<Reply> {
        if let Some(r) = self.refuse_charset(&key, ret.as_ref()) {
            return Ok(r);
        }
        let hits = self.matching(&key).await;
        let Some(sel) = self.sel.as_ref() else {
            return Ok(bad("No mailbox selected"));
        };
        if let Some(r) = ret.filter(|r| r.save) {
            let uids: Vec<u32> = hits.iter().map(|&i| sel.msgs[i].uid).collect();
            self.saved = saved_result(r, &uids);
        }
        let nums: Vec<u32> = hits
            .iter()
            .map(|&i| if uid { sel.msgs[i].uid } else { i as u32 + 1 })
            .collect();
        let modseq =
            uses_modseq(&key).then(|| hits.iter().map(|&i| sel.msgs[i].modseq).max().unwrap_or(0));
        if modseq.is_some() {
            self.enable_condstore();
        }
        let ret = match ret {
            Some(r) => Some(r),
            None if self.rev2 => Some(SearchReturn {
                all: true,
                ..SearchReturn::default()
            }),
            None => None,
        };
        match ret {
            // RFC 5182 §2.1: SAVE alone returns no ESEARCH response.
            Some(r) if r.save && !(r.min || r.max || r.all || r.count) => {}
            None => {
                let mut l = String::from("SEARCH");
                for n in &nums {
                    l.push(' ');
                    l.push_str(&n.to_string());
                }
                if let Some(ms) = modseq.filter(|_| !nums.is_empty()) {
                    l.push_str(&format!(" (MODSEQ {ms})"));
                }
                self.untagged(&l);
            }
            Some(r) => {
                let mut l = format!("ESEARCH (TAG \"{tag}\")");
                if uid {
                    l.push_str(" UID");
                }
                if r.min {
                    if let Some(m) = nums.iter().min() {
                        l.push_str(&format!(" MIN {m}"));
                    }
                }
                if r.max {
                    if let Some(m) = nums.iter().max() {
                        l.push_str(&format!(" MAX {m}"));
                    }
                }
                if r.all && !nums.is_empty() {
                    l.push_str(&format!(" ALL {}", set_string(nums.iter().copied())));
                }
                if r.count {
                    l.push_str(&format!(" COUNT {}", nums.len()));
                }
                if let Some(ms) = modseq.filter(|_| !nums.is_empty()) {
                    l.push_str(&format!(" MODSEQ {ms}"));
                }
                self.untagged(&l);
            }
        }
        Ok(ok("SEARCH completed"))
    }
}

/// RFC 5182 §2.4: what SEARCH/SORT RETURN (SAVE ...) keeps of the matching UIDs (in result
/// order): MIN and/or MAX alone save only those messages; otherwise all of them, sorted.
fn saved_result(r: SearchReturn, uids: &[u32]) -> Vec<u32> {
    let mut out: Vec<u32> = if (r.min || r.max) && !(r.all || r.count) {
        let mut v = Vec::new();
        if r.min {
            v.extend(uids.first());
        }
        if r.max {
            v.extend(uids.last());
        }
        v
    } else {
        uids.to_vec()
    };
    out.sort_unstable();
    out.dedup();
    out
}

/// What SORT and THREAD compare of one message (RFC 5256 §3, RFC 5957).
#[derive(Debug, Clone, Default)]
pub struct SortInfo {
    /// RFC 5256 §2.2 sent date: the Date header as an instant, else the internal date.
    pub date: i64,
    pub internal_date: i64,
    pub size: u64,
    /// Base subject, casemapped.
    pub subject: String,
    /// The base subject came from a reply or forward.
    pub reply: bool,
    /// addr-mailbox (local part) of the first From/To/Cc address, casemapped.
    pub from: String,
    pub to: String,
    pub cc: String,
    /// RFC 5957 display name of the first From/To address (else its address), casemapped.
    pub display_from: String,
    pub display_to: String,
    pub message_id: String,
    pub references: Vec<String>,
}

/// RFC 5256 §3 FROM/TO/CC (addr-mailbox of the first address) and RFC 5957 §2 DISPLAYFROM /
/// DISPLAYTO (its display name, RFC 2047-decoded, if present and not empty, else
/// `mailbox@host`) of the field `name`, from the addresses as ENVELOPE shows them: several
/// fields are one list, a group's first element is its name (RFC 3501 §7.4.2 group start),
/// a broken address reads MISSING_MAILBOX / MISSING_DOMAIN (as Dovecot sorts them).
fn first_address_keys(hdr: &[u8], name: &str) -> (String, String) {
    let first = mime::fields(hdr)
        .into_iter()
        .filter(|(n, _)| n == name)
        .find_map(|(_, r)| {
            let raw = &hdr[r];
            let colon = raw.iter().position(|&b| b == b':').unwrap_or(0);
            mime::address_list(&raw[colon + 1..]).into_iter().next()
        });
    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    match first {
        None | Some(mime::Addr::GroupEnd) => (String::new(), String::new()),
        Some(mime::Addr::GroupStart(group)) => {
            let display = decode_text(&text(&group));
            (casemap(&text(&group)), casemap(&display))
        }
        Some(mime::Addr::Mailbox {
            name,
            mailbox,
            host,
            ..
        }) => {
            let display = name
                .map(|n| decode_text(&text(&n)))
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| format!("{}@{}", text(&mailbox), text(&host)));
            (casemap(&text(&mailbox)), casemap(display.trim()))
        }
    }
}

/// RFC 5256 §2.2 sent date: the first Date header as an instant, if it parses.
fn sent_instant(hdr: &[u8]) -> Option<i64> {
    let v = mime::header_value(hdr, "date")?;
    let mut one = b"Date: ".to_vec();
    one.extend_from_slice(&v);
    one.extend_from_slice(b"\r\n\r\n");
    let msg = MessageParser::new().parse_headers(&one)?;
    msg.date()
        .filter(|d| d.is_valid())
        .map(|d| d.to_timestamp())
}

/// Most message IDs of one References field that threading follows (bounds the work a
/// hostile message can cause).
const MAX_REFERENCES: usize = 500;

/// Message IDs (`<...>`) in a References / In-Reply-To value.
fn message_ids(v: &[u8]) -> Vec<String> {
    let v = String::from_utf8_lossy(v);
    v.split('<')
        .skip(1)
        .filter_map(|p| p.split_once('>').map(|(id, _)| id.trim()))
        .filter(|id| !id.is_empty() && !id.contains(char::is_whitespace))
        .map(|id| format!("<{id}>"))
        .take(MAX_REFERENCES)
        .collect()
}

/// The sort and thread keys of a message header (RFC 5256 §2.1, §2.2, §3; RFC 5957).
pub fn sort_info_of(hdr: &[u8], internal_date: i64, size: u64) -> SortInfo {
    let (from, display_from) = first_address_keys(hdr, "from");
    let (to, display_to) = first_address_keys(hdr, "to");
    let (cc, _) = first_address_keys(hdr, "cc");
    let subject = mime::header_value(hdr, "subject")
        .map(|v| decode_text(&String::from_utf8_lossy(&v)))
        .unwrap_or_default();
    let (base, reply) = base_subject_of(&subject);
    // RFC 5256 §4 REFERENCES step 1A: References, else the first ID of In-Reply-To.
    let mut references = mime::header_value(hdr, "references")
        .map(|v| message_ids(&v))
        .unwrap_or_default();
    if references.is_empty() {
        references = mime::header_value(hdr, "in-reply-to")
            .map(|v| message_ids(&v).into_iter().take(1).collect())
            .unwrap_or_default();
    }
    SortInfo {
        date: sent_instant(hdr).unwrap_or(internal_date),
        internal_date,
        size,
        subject: casemap(&base),
        reply,
        from,
        to,
        cc,
        display_from,
        display_to,
        message_id: mime::header_value(hdr, "message-id")
            .and_then(|v| message_ids(&v).into_iter().next())
            .unwrap_or_default(),
        references,
    }
}

/// RFC 5256 §3 / RFC 5957: compares two messages by the criteria; ties go to the sequence
/// number (RFC 5256 §3 "... sorted by sequence number").
pub fn compare(
    criteria: &[(bool, SortKey)],
    a: (usize, &SortInfo),
    b: (usize, &SortInfo),
) -> std::cmp::Ordering {
    let (x, y) = (a.1, b.1);
    for &(rev, k) in criteria {
        let o = match k {
            SortKey::Arrival => x.internal_date.cmp(&y.internal_date),
            SortKey::Date => x.date.cmp(&y.date),
            SortKey::Size => x.size.cmp(&y.size),
            SortKey::Subject => x.subject.cmp(&y.subject),
            SortKey::From => x.from.cmp(&y.from),
            SortKey::To => x.to.cmp(&y.to),
            SortKey::Cc => x.cc.cmp(&y.cc),
            SortKey::DisplayFrom => x.display_from.cmp(&y.display_from),
            SortKey::DisplayTo => x.display_to.cmp(&y.display_to),
        };
        let o = if rev { o.reverse() } else { o };
        if o != std::cmp::Ordering::Equal {
            return o;
        }
    }
    a.0.cmp(&b.0)
}

impl Session {
    /// RFC 7162 §3.1: a CONDSTORE enabling command while a mailbox is selected reports the
    /// mailbox's HIGHESTMODSEQ the first time (every mailbox here keeps mod-sequences, so
    /// `[NOMODSEQ]` never applies).
    pub(crate) fn enable_condstore(&mut self) {
        if self.condstore {
            return;
        }
        self.condstore = true;
        if let Some(sel) = self.sel.as_ref() {
            let h = sel
                .msgs
                .iter()
                .map(|m| m.modseq)
                .max()
                .unwrap_or(0)
                .max(sel.highestmodseq)
                .max(1);
            self.data(Data::Ok(Code::HighestModseq(h), "Highest"));
        }
    }

    /// Sort keys of the matching messages `hits`; the header is read only if a key needs it.
    async fn sort_infos(&mut self, hits: &[usize], header: bool, size: bool) -> Vec<SortInfo> {
        let Some(sel) = self.sel.as_ref() else {
            return Vec::new();
        };
        let msgs = sel.msgs.clone();
        let name = sel.name.clone();
        let account = self.account().to_string();
        let mut out = Vec::with_capacity(hits.len());
        for &i in hits {
            let m = &msgs[i];
            let size = if size { m.wire_size } else { m.size };
            if header {
                let hdr = self
                    .srv
                    .store
                    .fetch_header(&account, &name, m.uid)
                    .await
                    .map(to_crlf)
                    .unwrap_or_default();
                out.push(sort_info_of(&hdr, m.internal_date, size));
            } else {
                out.push(SortInfo {
                    date: m.internal_date,
                    internal_date: m.internal_date,
                    size,
                    ..SortInfo::default()
                });
            }
        }
        out
    }

    /// RFC 5256 §3 SORT (with RFC 5957 DISPLAYFROM/DISPLAYTO, RFC 7162 §3.1.5 MODSEQ).
    pub(crate) async fn sort(
        &mut self,
        tag: &str,
        uid: bool,
        criteria: Vec<(bool, SortKey)>,
        key: SearchKey,
        ret: Option<SearchReturn>,
    ) -> SResult<Reply> {
        if let Some(r) = self.refuse_charset(&key, ret.as_ref()) {
            return Ok(r);
        }
        let hits = self.matching(&key).await;
        let header = criteria
            .iter()
            .any(|(_, k)| !matches!(k, SortKey::Arrival | SortKey::Size));
        let size = criteria.iter().any(|(_, k)| *k == SortKey::Size);
        let infos = self.sort_infos(&hits, header, size).await;
        let Some(sel) = self.sel.as_ref() else {
            return Ok(bad("No mailbox selected"));
        };
        let mut order: Vec<usize> = (0..hits.len()).collect();
        order.sort_by(|&a, &b| compare(&criteria, (hits[a], &infos[a]), (hits[b], &infos[b])));
        let nums: Vec<u32> = order
            .iter()
            .map(|&o| {
                let i = hits[o];
                if uid {
                    sel.msgs[i].uid
                } else {
                    i as u32 + 1
                }
            })
            .collect();
        let modseq = uses_modseq(&key)
            .then(|| hits.iter().map(|&i| sel.msgs[i].modseq).max())
            .flatten();
        if let Some(r) = ret.filter(|r| r.save) {
            // RFC 5182 §2.4 with RFC 5267 ESORT: MIN and MAX are the first and last in the
            // sort order.
            let uids: Vec<u32> = order.iter().map(|&o| sel.msgs[hits[o]].uid).collect();
            self.saved = saved_result(r, &uids);
        }
        if uses_modseq(&key) {
            self.enable_condstore();
        }
        match ret {
            // RFC 5182 §2.1: SAVE alone returns no ESEARCH response.
            Some(r) if r.save && !(r.min || r.max || r.all || r.count) => {}
            Some(r) => {
                let mut l = format!("ESEARCH (TAG \"{tag}\")");
                if uid {
                    l.push_str(" UID");
                }
                if r.min {
                    if let Some(m) = nums.first() {
                        l.push_str(&format!(" MIN {m}"));
                    }
                }
                if r.max {
                    if let Some(m) = nums.last() {
                        l.push_str(&format!(" MAX {m}"));
                    }
                }
                if r.all && !nums.is_empty() {
                    let v: Vec<String> = nums.iter().map(u32::to_string).collect();
                    l.push_str(&format!(" ALL {}", v.join(",")));
                }
                if r.count {
                    l.push_str(&format!(" COUNT {}", nums.len()));
                }
                if let Some(ms) = modseq {
                    l.push_str(&format!(" MODSEQ {ms}"));
                }
                self.untagged(&l);
            }
            None => {
                let mut l = String::from("SORT");
                for n in &nums {
                    l.push_str(&format!(" {n}"));
                }
                // RFC 7162 §3.1.5 / §7 sort-data: "(MODSEQ n)" after the numbers.
                if let Some(ms) = modseq {
                    l.push_str(&format!(" (MODSEQ {ms})"));
                }
                self.untagged(&l);
            }
        }
        Ok(ok("SORT completed"))
    }

    /// RFC 5256 §4 THREAD (ORDEREDSUBJECT and REFERENCES)
    pub(crate) async fn thread(
        &mut self,
        uid: bool,
        references: bool,
        key: SearchKey,
    ) -> SResult<Reply> {
        if let Some(r) = bad_charset(&key) {
            return Ok(r);
        }
        let hits = self.matching(&key).await;
        if uses_modseq(&key) {
            self.enable_condstore();
        }
        let infos = self.sort_infos(&hits, true, false).await;
        let Some(sel) = self.sel.as_ref() else {
            return Ok(bad("No mailbox selected"));
        };
        let items: Vec<ThreadItem> = hits
            .iter()
            .zip(infos)
            .map(|(&i, info)| ThreadItem {
                num: if uid { sel.msgs[i].uid } else { i as u32 + 1 },
                date: info.date,
                subject: info.subject,
                reply: info.reply,
                id: info.message_id,
                refs: info.references,
            })
            .collect();
        let trees = if references {
            thread_references(items)
        } else {
            thread_ordered_subject(items)
        };
        let rendered = trees.render();
        let mut l = String::from("THREAD");
        if !rendered.is_empty() {
            l.push(' ');
            l.push_str(&rendered);
        }
        self.untagged(&l);
        Ok(ok("THREAD completed"))
    }
}

/// One message as the threading algorithms see it.
#[derive(Debug, Clone)]
pub struct ThreadItem {
    /// Sequence number or UID (both ascend with mailbox order).
    pub num: u32,
    /// RFC 5256 §2.2 sent date.
    pub date: i64,
    /// Casemapped base subject.
    pub subject: String,
    /// The subject was a reply or forward (RFC 5256 §2.1).
    pub reply: bool,
    /// The message's Message-ID, without angle brackets (RFC 5256 §4 step 1).
    pub id: String,
    /// The parent candidates from References, else In-Reply-To, oldest first (RFC 5256 §4 step 1.A).
    pub refs: Vec<String>,
}

/// Threads as an arena forest; `None` is a dummy (RFC 5256 §4). Nothing walks it by
/// recursion: reference chains can be as deep as the mailbox is large.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forest {
    pub nums: Vec<Option<u32>>,
    pub children: Vec<Vec<usize>>,
    pub roots: Vec<usize>,
}

impl Forest {
    fn add(&mut self, num: Option<u32>) -> usize {
        self.nums.push(num);
        self.children.push(Vec::new());
        self.nums.len() - 1
    }

    /// RFC 5256 §4 thread-list syntax: a chain is written flat, several children each in
    /// parentheses: "(3 6 (4 23)(44 7 96))"; a dummy has no number: "((3)(5))".
    pub fn render(&self) -> String {
        enum Step {
            Node(usize),
            Char(char),
        }
        let mut out = String::new();
        let mut stack: Vec<Step> = Vec::new();
        for &r in self.roots.iter().rev() {
            stack.push(Step::Char(')'));
            stack.push(Step::Node(r));
            stack.push(Step::Char('('));
        }
        while let Some(step) = stack.pop() {
            let n = match step {
                Step::Char(c) => {
                    out.push(c);
                    continue;
                }
                Step::Node(n) => n,
            };
            let kids = &self.children[n];
            if let Some(x) = self.nums[n] {
                out.push_str(&x.to_string());
                if !kids.is_empty() {
                    out.push(' ');
                }
            }
            if kids.len() == 1 && self.nums[n].is_some() {
                stack.push(Step::Node(kids[0]));
            } else {
                for &k in kids.iter().rev() {
                    stack.push(Step::Char(')'));
                    stack.push(Step::Node(k));
                    stack.push(Step::Char('('));
                }
            }
        }
        out
    }
}

/// RFC 5256 §4 ORDEREDSUBJECT: messages grouped by base subject, each group ordered by sent
/// date, the groups by the sent date of their first message; the rest are children of the
/// first.
pub fn thread_ordered_subject(mut items: Vec<ThreadItem>) -> Forest {
    items.sort_by(|a, b| {
        a.subject
            .cmp(&b.subject)
            .then(a.date.cmp(&b.date))
            .then(a.num.cmp(&b.num))
    });
    let mut f = Forest::default();
    let mut groups: Vec<(i64, u32, usize)> = Vec::new();
    let mut i = 0;
    while i < items.len() {
        let mut j = i + 1;
        while j < items.len() && items[j].subject == items[i].subject {
            j += 1;
        }
        let first = f.add(Some(items[i].num));
        for x in &items[i + 1..j] {
            let k = f.add(Some(x.num));
            f.children[first].push(k);
        }
        groups.push((items[i].date, items[i].num, first));
        i = j;
    }
    groups.sort_unstable();
    f.roots = groups.into_iter().map(|g| g.2).collect();
    f
}

/// A container of RFC 5256 §4 REFERENCES: a message (index into the items) or a dummy.
#[derive(Debug, Clone, Default)]
struct Container {
    msg: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

/// Is `a` an ancestor of `b` (or `b` itself)?
fn is_ancestor(cs: &[Container], a: usize, mut b: usize) -> bool {
    for _ in 0..=cs.len() {
        if a == b {
            return true;
        }
        match cs[b].parent {
            Some(p) => b = p,
            None => return false,
        }
    }
    true
}

fn set_parent(cs: &mut [Container], child: usize, parent: Option<usize>) {
    if let Some(old) = cs[child].parent.take() {
        cs[old].children.retain(|&c| c != child);
    }
    if let Some(p) = parent {
        cs[p].children.push(child);
        cs[child].parent = Some(p);
    }
}

/// RFC 5256 §4 REFERENCES (steps 1 to 7).
pub fn thread_references(items: Vec<ThreadItem>) -> Forest {
    let mut cs: Vec<Container> = Vec::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut container_of = |id: &str, cs: &mut Vec<Container>| -> usize {
        *ids.entry(id.to_string()).or_insert_with(|| {
            cs.push(Container::default());
            cs.len() - 1
        })
    };
    // (1) link the references and the messages.
    let mut unique = 0usize;
    for (i, it) in items.iter().enumerate() {
        // (1B) a message without a Message-ID, or with one already used by another message,
        // gets a unique one.
        let mut c = if it.id.is_empty() {
            None
        } else {
            Some(container_of(&it.id, &mut cs))
        };
        if c.is_some_and(|c| cs[c].msg.is_some()) {
            c = None;
        }
        let c = c.unwrap_or_else(|| {
            unique += 1;
            container_of(&format!("\0unique {unique}"), &mut cs)
        });
        cs[c].msg = Some(i);
        // (1A) each reference is the parent of the next, unless already linked or a loop.
        let refs: Vec<usize> = it.refs.iter().map(|r| container_of(r, &mut cs)).collect();
        for w in refs.windows(2) {
            let (p, k) = (w[0], w[1]);
            // RFC 5256 §4 (1)(A): no link that would make a loop. A reference repeated back to
            // back ("<a> <a>") would make a container its own parent, cutting it and its
            // replies off every root. Otherwise, a container without children cannot be an
            // ancestor: no walk needed.
            if p != k
                && cs[k].parent.is_none()
                && (cs[k].children.is_empty() || !is_ancestor(&cs, k, p))
            {
                set_parent(&mut cs, k, Some(p));
            }
        }
        // (1C) the last reference is the message's parent; an earlier link is broken.
        let parent = refs
            .last()
            .copied()
            .filter(|&p| p != c && (cs[c].children.is_empty() || !is_ancestor(&cs, c, p)));
        set_parent(&mut cs, c, parent);
    }
    // (2) the root set; (3) the ID table is no longer needed.
    let roots: Vec<usize> = (0..cs.len()).filter(|&c| cs[c].parent.is_none()).collect();
    // (4) prune dummies, children before parents.
    let mut order: Vec<usize> = Vec::with_capacity(cs.len());
    let mut stack = roots.clone();
    while let Some(c) = stack.pop() {
        order.push(c);
        stack.extend(cs[c].children.iter().copied());
    }
    let mut replacement: Vec<Vec<usize>> = vec![Vec::new(); cs.len()];
    for &c in order.iter().rev() {
        let kids = std::mem::take(&mut cs[c].children);
        let mut new_kids = Vec::with_capacity(kids.len());
        for k in kids {
            new_kids.append(&mut replacement[k]);
        }
        for &k in &new_kids {
            cs[k].parent = Some(c);
        }
        let top = cs[c].parent.is_none();
        replacement[c] = if cs[c].msg.is_some() {
            cs[c].children = new_kids;
            vec![c]
        } else if new_kids.is_empty() {
            // (4A) an empty dummy without children goes.
            Vec::new()
        } else if !top || new_kids.len() == 1 {
            // (4B) a dummy's children are promoted, to the root only if there is one.
            new_kids
        } else {
            cs[c].children = new_kids;
            vec![c]
        };
    }
    let mut root: Vec<usize> = Vec::new();
    for r in roots {
        root.append(&mut replacement[r]);
    }
    for &r in &root {
        cs[r].parent = None;
    }
    // (5) sort the root set by sent date (a dummy by its first child, children sorted first).
    let key = |cs: &[Container], c: usize| -> (i64, u32) {
        let m = cs[c]
            .msg
            .or_else(|| cs[c].children.first().and_then(|&k| cs[k].msg));
        m.map_or((i64::MAX, u32::MAX), |i| (items[i].date, items[i].num))
    };
    for &r in &root {
        if cs[r].msg.is_none() {
            let mut kids = std::mem::take(&mut cs[r].children);
            kids.sort_by_key(|&k| key(&cs, k));
            cs[r].children = kids;
        }
    }
    root.sort_by_key(|&r| key(&cs, r));
    // (6) gather the roots by base subject.
    let subject_of = |cs: &[Container], c: usize| -> Option<usize> {
        cs[c]
            .msg
            .or_else(|| cs[c].children.first().and_then(|&k| cs[k].msg))
    };
    let mut table: HashMap<&str, usize> = HashMap::new();
    for &r in &root {
        let Some(m) = subject_of(&cs, r) else {
            continue;
        };
        let subj = items[m].subject.as_str();
        if subj.is_empty() {
            continue;
        }
        match table.get(subj) {
            None => {
                table.insert(subj, r);
            }
            Some(&old) => {
                let dummy_beats = cs[r].msg.is_none() && cs[old].msg.is_some();
                let plain_beats_reply = match (cs[old].msg, cs[r].msg) {
                    (Some(o), Some(n)) => items[o].reply && !items[n].reply,
                    _ => false,
                };
                if dummy_beats || plain_beats_reply {
                    table.insert(subj, r);
                }
            }
        }
    }
    let mut removed = vec![false; cs.len()];
    for &r in &root.clone() {
        let Some(m) = subject_of(&cs, r) else {
            continue;
        };
        let subj = items[m].subject.as_str();
        if subj.is_empty() {
            continue;
        }
        let Some(&t) = table.get(subj) else { continue };
        if t == r {
            continue;
        }
        match (cs[t].msg, cs[r].msg) {
            // Both dummies: the children of one join the other.
            (None, None) => {
                for k in std::mem::take(&mut cs[r].children) {
                    cs[k].parent = None;
                    set_parent(&mut cs, k, Some(t));
                }
            }
            // A message joins the dummy's children.
            (None, Some(_)) => set_parent(&mut cs, r, Some(t)),
            // A reply joins the children of the message it replies to.
            (Some(tm), Some(rm)) if !items[tm].reply && items[rm].reply => {
                set_parent(&mut cs, r, Some(t));
            }
            // Otherwise both become children of a dummy that takes the table's place (a
            // non-reply after a reply cannot reach here: step 6B preferred it).
            _ => {
                let moved = Container {
                    msg: cs[t].msg.take(),
                    parent: Some(t),
                    children: std::mem::take(&mut cs[t].children),
                };
                cs.push(moved);
                let old = cs.len() - 1;
                for k in cs[old].children.clone() {
                    cs[k].parent = Some(old);
                }
                cs[t].children.push(old);
                set_parent(&mut cs, r, Some(t));
            }
        }
        removed.resize(cs.len(), false);
        removed[r] = true;
    }
    let mut root: Vec<usize> = root.into_iter().filter(|&r| !removed[r]).collect();
    // (7) sort every set of siblings by sent date, the deepest first.
    let mut order: Vec<usize> = Vec::with_capacity(cs.len());
    let mut stack = root.clone();
    while let Some(c) = stack.pop() {
        order.push(c);
        stack.extend(cs[c].children.iter().copied());
    }
    for &c in order.iter().rev() {
        let mut kids = std::mem::take(&mut cs[c].children);
        kids.sort_by_key(|&k| key(&cs, k));
        cs[c].children = kids;
    }
    root.sort_by_key(|&r| key(&cs, r));
    Forest {
        nums: cs.iter().map(|c| c.msg.map(|i| items[i].num)).collect(),
        children: cs.into_iter().map(|c| c.children).collect(),
        roots: root,
    }
}

impl Session {
    /// The NO for a CHARSET the search cannot use; a SAVE search that fails this way empties the
    /// saved result (RFC 5182 §2.1).
    fn refuse_charset(&mut self, key: &SearchKey, ret: Option<&SearchReturn>) -> Option<Reply> {
        let reply = bad_charset(key)?;
        if ret.is_some_and(|r| r.save) {
            self.saved.clear();
        }
        Some(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9051 §6.4.4 "contains": a substring under i;unicode-casemap.
    fn contains(hay: &str, needle: &str) -> bool {
        if needle.is_empty() {
            return true;
        }
        casemap(hay).contains(&casemap(needle))
    }

    fn it(num: u32, date: i64, subject: &str, id: &str, refs: &[&str]) -> ThreadItem {
        let (base, reply) = base_subject_of(subject);
        ThreadItem {
            num,
            date,
            subject: casemap(&base),
            reply,
            id: id.into(),
            refs: refs.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn base_subjects_rfc5256_2_1() {
        for (s, base, reply) in [
            ("Re: Fwd: [list] Hello  world (fwd)", "Hello world", true),
            ("RE[2]: x", "x", true),
            ("[Fwd: report]", "report", true),
            ("[Fwd: Re: [x] y]", "y", true),
            ("[list] Re: x", "x", true),
            ("[a] [b] hello", "hello", false),
            ("[a]", "[a]", false),
            ("Re: [a]", "[a]", true),
            ("re: RE: Re : fw: FWD:x", "x", true),
            ("Reply: x", "Reply: x", false),
            ("Fwd x", "Fwd x", false),
            ("x (fwd) (FWD)  ", "x", true),
            ("\tRe:\t  tabs\t and  spaces ", "tabs and spaces", true),
            ("[unterminated blob", "[unterminated blob", false),
            ("[a[b]] x", "[a[b]] x", false),
            ("", "", false),
            ("Re:", "", true),
            ("Héllo", "Héllo", false),
        ] {
            assert_eq!(base_subject_of(s), (base.to_string(), reply), "{s:?}");
        }
    }

    /// RFC 5051 i;unicode-casemap as Dovecot applies it (titlecase, canonical decomposition).
    #[test]
    fn unicode_casemap() {
        assert_eq!(casemap("été"), "E\u{301}TE\u{301}");
        assert_eq!(casemap("ÉTÉ"), casemap("été"));
        assert_eq!(casemap("straße"), "STRAßE");
        assert_eq!(casemap("ǆ"), casemap("Ǆ"));
        assert_eq!(casemap("ﬁn"), "ﬁN");
        assert!(casemap("Apfel") < casemap("ärger") && casemap("ärger") < casemap("Zulu"));
        assert!(contains("été", "ÉT") && contains("été", "e") && !contains("été", "ete"));
        assert!(!contains("straße", "STRASSE") && contains("Straße", "sTRAß"));
    }

    /// BODY and TEXT read as Dovecot does (checked with the same message on both).
    #[test]
    fn body_and_text_scopes() {
        let m = concat!(
            "From: a@x\r\nSubject: top kilo\r\nContent-Type: multipart/mixed; boundary=hotel\r\n\r\n",
            "foxtrot preamble\r\n--hotel\r\nContent-Type: text/plain\r\nX-Part: echo\r\n\r\nalpha text\r\n",
            "--hotel\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nYnJhdm8gYmluYXJ5\r\n",
            "--hotel\r\nContent-Type: message/rfc822\r\n\r\nSubject: =?utf-8?q?ch=C3=A4rlie?=\r\nFrom: india@x\r\n\r\ndelta inner body\r\n",
            "--hotel\r\nContent-Type: text/html; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<b>ju=6Ciet</b> caf=E9\r\n",
            "--hotel--\r\ngolf epilogue\r\n"
        )
        .as_bytes();
        for (needle, body, text) in [
            ("alpha", true, true),
            ("ALPHA TEXT", true, true),
            ("bravo", false, false),
            ("chärlie", false, true),
            ("india", false, true),
            ("delta", true, true),
            ("echo", false, true),
            ("foxtrot", false, false),
            ("golf", false, false),
            ("hotel", false, true),
            ("juliet", true, true),
            ("ju=6C", false, false),
            ("café", true, true),
            ("From: a", false, true),
            ("", true, true),
        ] {
            assert_eq!(body_has(m, needle, false), body, "BODY {needle}");
            assert_eq!(body_has(m, needle, true), text, "TEXT {needle}");
        }
        let b64 = b"Subject: p\r\nContent-Transfer-Encoding: base64\r\n\r\nbGltYSBtaWtl\r\n";
        assert!(body_has(b64, "lima", false) && !body_has(b64, "bGltYQ", false));
    }

    #[test]
    fn undecodable_words() {
        assert_eq!(decode_text("=?unknown-x?q?abc?= tail"), "\u{fffd} tail");
        assert_eq!(decode_text("=?utf-8?x?bad?="), "=?utf-8?x?bad?=");
        assert_eq!(decode_text("=?iso-8859-1?q?caf=E9?="), "café");
        assert_eq!(decode_text("=?UTF-8*en?Q?a?="), "a");
        assert_eq!(decode_text("a =? b ?= c"), "a =? b ?= c");
        assert_eq!(decode_text("=?"), "=?");
    }

    #[test]
    fn sent_day_is_the_date_in_its_own_zone() {
        let d = |s: &str| sent_day(format!("Date: {s}\r\n\r\n").as_bytes());
        assert_eq!(
            d("Mon, 1 Jan 2024 23:30:00 -0500"),
            days_from_civil(2024, 1, 1)
        );
        assert_eq!(
            d("Tue, 2 Jan 2024 00:30:00 +0100"),
            days_from_civil(2024, 1, 2)
        );
        assert_eq!(d("garbage"), 0);
        assert_eq!(sent_day(b"Subject: x\r\n\r\n"), 0);
    }

    #[test]
    fn header_matching_decodes_rfc2047() {
        let h = b"From: =?utf-8?q?J=C3=B6rg?= <joerg@x.test>\r\nTo: \"=?utf-8?q?Zo=C3=AB?=\" <z@x>\r\nSubject: =?utf-8?q?h=C3=A9llo?= world\r\nX-Empty:\r\n\r\n";
        assert!(header_has(h, "from", "jörg"));
        assert!(header_has(h, "from", "JÖRG <JOERG@X"));
        assert!(header_has(h, "from", "joerg@x.test"));
        assert!(header_has(h, "to", "zoë"));
        assert!(header_has(h, "subject", "héllo wor"));
        let folded = b"Subject: tab\there\r\n\tand folded\r\n\r\n";
        assert!(header_has(folded, "subject", "tab here and folded"));
        assert!(!header_has(h, "subject", "=?utf-8"));
        assert!(header_has(h, "subject", ""));
        assert!(header_has(h, "x-empty", ""));
        assert!(!header_has(h, "cc", ""));
        assert!(!header_has(h, "x-none", ""));
        assert!(!header_has(b"no colon line\r\n\r\n", "", ""));
    }

    #[test]
    fn sort_keys() {
        let h = b"From: \"=?utf-8?q?J=C3=B6rg?=\" <Joerg@X.test>\r\nTo: undisclosed-recipients:;, bob@x\r\nCc: <Carol@x>\r\nDate: Mon, 1 Jan 2024 23:30:00 -0500\r\nSubject: Re: [l] Hi\r\nMessage-ID: <1@x>\r\nIn-Reply-To: <0@x> (comment) <9@x>\r\n\r\n";
        let i = sort_info_of(h, 7, 9);
        assert_eq!(i.from, "JOERG");
        assert_eq!(i.display_from, casemap("JÖRG"));
        assert_eq!(i.cc, "CAROL");
        // A group's first element is its name (RFC 3501 §7.4.2), as Dovecot sorts it.
        assert_eq!(i.to, "UNDISCLOSED-RECIPIENTS");
        assert_eq!(i.display_to, "UNDISCLOSED-RECIPIENTS");
        let odd = sort_info_of(
            b"From: <>\r\nFrom: b@y\r\nTo: \"john doe\"@x (The Comment)\r\nCc:\r\nCc: =?utf-8?q?=C3=89?= <e@f>\r\n\r\n",
            0,
            0,
        );
        assert_eq!(odd.from, "MISSING_MAILBOX");
        assert_eq!(odd.display_from, "MISSING_MAILBOX@MISSING_DOMAIN");
        assert_eq!(odd.to, "JOHN DOE");
        assert_eq!(odd.display_to, "THE COMMENT");
        assert_eq!(odd.cc, "E");
        assert_eq!(i.subject, "HI");
        assert!(i.reply);
        assert_eq!(i.date, 1704169800);
        assert_eq!(i.message_id, "<1@x>");
        assert_eq!(i.references, vec!["<0@x>".to_string()]);
        let none = sort_info_of(b"Date: nonsense\r\n\r\n", 7, 9);
        assert_eq!(none.date, 7);
        assert_eq!(none.from, "");
        // Ties go to the sequence number, REVERSE reverses only its key.
        let a = SortInfo {
            size: 5,
            subject: "A".into(),
            ..SortInfo::default()
        };
        let b = SortInfo {
            size: 5,
            subject: "B".into(),
            ..SortInfo::default()
        };
        let c =
            |k: &[(bool, SortKey)], x: (usize, &SortInfo), y: (usize, &SortInfo)| compare(k, x, y);
        use std::cmp::Ordering::*;
        assert_eq!(c(&[(false, SortKey::Size)], (1, &a), (0, &b)), Greater);
        assert_eq!(c(&[(true, SortKey::Size)], (1, &a), (0, &b)), Greater);
        assert_eq!(
            c(
                &[(false, SortKey::Size), (true, SortKey::Subject)],
                (0, &a),
                (1, &b)
            ),
            Greater
        );
    }

    #[test]
    fn threads() {
        let items = vec![
            it(1, 10, "a", "<1@x>", &[]),
            it(2, 20, "Re: a", "<2@x>", &["<1@x>"]),
            it(3, 30, "b", "<3@x>", &[]),
            it(4, 40, "Re: a", "<4@x>", &["<1@x>", "<2@x>"]),
            it(5, 50, "Re: a", "<5@x>", &["<1@x>"]),
        ];
        assert_eq!(thread_references(items.clone()).render(), "(1 (2 4)(5))(3)");
        assert_eq!(thread_ordered_subject(items).render(), "(1 (2)(4)(5))(3)");
    }

    /// The example of RFC 5256 §4 / Dovecot's answer for the same mailbox.
    #[test]
    fn references_dummies_and_subject_grouping() {
        // Two messages reply to a message we do not have: a dummy parent at the root; a third
        // message with the same base subject joins it (step 6C).
        let items = vec![
            it(1, 20, "Re: [list] Hello", "<1@x>", &[]),
            it(2, 10, "Fwd: héllo (fwd)", "<2@x>", &["<1@x>"]),
            it(3, 30, "hello", "<3@x>", &["<9@x>"]),
            it(4, 40, "", "<4@x>", &["<9@x>"]),
        ];
        assert_eq!(thread_references(items).render(), "((1 2)(3)(4))");
        // Neither is a reply: siblings under a new dummy. A reply joins the original.
        let items = vec![
            it(1, 10, "topic", "<1@x>", &[]),
            it(2, 20, "topic", "<2@x>", &[]),
            it(3, 30, "Re: other", "<3@x>", &[]),
            it(4, 40, "other", "<4@x>", &[]),
        ];
        assert_eq!(thread_references(items).render(), "((1)(2))(4 3)");
        // A lone dummy child is promoted to the root; a missing link in the middle is kept
        // as the chain of references says; duplicate Message-IDs stay apart.
        let items = vec![
            it(1, 10, "x", "<1@x>", &["<0@x>"]),
            it(2, 20, "y", "<2@x>", &["<1@x>", "<m@x>"]),
            it(3, 30, "z", "<2@x>", &[]),
            it(4, 40, "w", "", &[]),
        ];
        assert_eq!(thread_references(items).render(), "(1 2)(3)(4)");
        // A reference loop does not hang or lose messages.
        let items = vec![
            it(1, 10, "x", "<1@x>", &["<2@x>"]),
            it(2, 20, "y", "<2@x>", &["<1@x>"]),
        ];
        let r = thread_references(items).render();
        assert!(r == "(2 1)" || r == "(1 2)", "{r}");
        // A reference repeated back to back is no self-link (found by the imap_search fuzz
        // target: message 2 and its thread were lost).
        let items = vec![
            it(1, 10, "x", "<1@x>", &[]),
            it(2, 20, "y", "<2@x>", &["<1@x>", "<1@x>"]),
            it(3, 30, "z", "<3@x>", &["<0@x>", "<0@x>", "<2@x>"]),
        ];
        assert_eq!(thread_references(items).render(), "(1 2 3)");
        assert_eq!(thread_references(Vec::new()).render(), "");
    }

    #[test]
    fn deep_chains_do_not_recurse() {
        let n = 100_000u32;
        let items: Vec<ThreadItem> = (1..=n)
            .map(|i| ThreadItem {
                num: i,
                date: i64::from(i),
                subject: "S".into(),
                reply: i > 1,
                id: format!("<{i}@x>"),
                refs: if i > 1 {
                    vec![format!("<{}@x>", i - 1)]
                } else {
                    vec![]
                },
            })
            .collect();
        let r = thread_references(items).render();
        assert!(r.starts_with("(1 2 3 ") && r.ends_with(&format!(" {n})")));
    }
}
