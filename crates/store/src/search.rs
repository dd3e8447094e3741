//! SEARCH in the store: a backend-neutral [`SearchKey`] and the default, message-by-message
//! evaluation behind [`Store::search`](crate::Store::search).
//!
//! The keys are RFC 9051 §6.4.4's with the protocol's syntax resolved away: sequence numbers
//! and `*` become UID sets, `UNSEEN` is `Not(Flag(SEEN))`, `FROM x` is a header key. What needs
//! MIME decoding (RFC 2047 words, charsets, transfer encodings) is judged by a
//! [`TextMatcher`] the protocol passes in.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::api::Store;
use crate::error::Result;
use crate::types::{MessageMeta, SystemFlags, UidSet};

/// Days since 1970-01-01 (a civil date, as SEARCH compares dates).
pub type Day = i64;

/// One search criterion (RFC 9051 §6.4.4, RFC 7162 §3.1.5 MODSEQ, RFC 5032 OLDER/YOUNGER).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    /// Every message.
    All,
    /// The message has all these system flags.
    Flag(SystemFlags),
    /// The message has this keyword.
    Keyword(String),
    /// `\Recent` (RFC 3501 §2.3.2) in the caller's view.
    Recent,
    /// Internal date (its UTC day) before this day.
    Before(Day),
    /// Internal date on this day.
    On(Day),
    /// Internal date on or after this day.
    Since(Day),
    /// RFC 5032 OLDER: internal date at least this many seconds ago.
    Older(u64),
    /// RFC 5032 YOUNGER: internal date at most this many seconds ago.
    Younger(u64),
    /// `Date:` header (its day in its own zone) before this day.
    SentBefore(Day),
    /// `Date:` header on this day.
    SentOn(Day),
    /// `Date:` header on or after this day.
    SentSince(Day),
    /// Wire size (CRLF line ends) above this.
    Larger(u64),
    /// Wire size below this.
    Smaller(u64),
    /// The UID is in the set.
    Uid(UidSet),
    /// RFC 7162 §3.1.5: MODSEQ at least this.
    Modseq(u64),
    /// The header field (lower-case name) contains the string (see [`TextMatcher::header_has`]).
    Header(String, String),
    /// The body contains the string.
    Body(String),
    /// The header or body contains the string.
    Text(String),
    /// Negation.
    Not(Box<SearchKey>),
    /// Either.
    Or(Box<SearchKey>, Box<SearchKey>),
    /// All of them.
    And(Vec<SearchKey>),
}

/// How text in messages is matched; the protocol layer knows the MIME decoding and the
/// collation (IMAP: RFC 2047 words, charsets, i;unicode-casemap).
pub trait TextMatcher: Send + Sync {
    /// RFC 9051 §6.4.4 HEADER: the field `field` (lower-case) of `header` contains `needle`.
    fn header_has(&self, header: &[u8], field: &str, needle: &str) -> bool;
    /// RFC 9051 §6.4.4 BODY (`with_headers` false) or TEXT (true) of the whole `message`.
    fn body_has(&self, message: &[u8], needle: &str, with_headers: bool) -> bool;
    /// RFC 9051 §6.4.4 SENTBEFORE/SENTON/SENTSINCE: the day of the `Date:` field of `header`.
    fn sent_day(&self, header: &[u8]) -> Day;
}

/// What the evaluation of a key needs read from each message.
#[derive(Default, Clone, Copy)]
struct Needs {
    header: bool,
    full: bool,
    size: bool,
}

fn key_needs(k: &SearchKey, n: &mut Needs) {
    use SearchKey as K;
    match k {
        K::Header(..) | K::SentBefore(_) | K::SentOn(_) | K::SentSince(_) => n.header = true,
        K::Body(_) | K::Text(_) => n.full = true,
        K::Larger(_) | K::Smaller(_) => n.size = true,
        K::Not(k) => key_needs(k, n),
        K::Or(a, b) => {
            key_needs(a, n);
            key_needs(b, n);
        }
        K::And(v) => v.iter().for_each(|k| key_needs(k, n)),
        _ => {}
    }
}

/// One message as the evaluation sees it.
struct Ctx<'a> {
    m: &'a MessageMeta,
    size: u64,
    header: Option<&'a [u8]>,
    full: Option<&'a [u8]>,
    now: i64,
    text: &'a dyn TextMatcher,
}

fn day_of(t: i64) -> i64 {
    t.div_euclid(86400)
}

fn eval(k: &SearchKey, c: &Ctx<'_>) -> bool {
    use SearchKey as K;
    let f = &c.m.flags;
    match k {
        K::All => true,
        K::Flag(s) => f.has(*s),
        K::Keyword(kw) => f.has_keyword(kw),
        K::Recent => c.m.recent,
        // RFC 9051 §6.4.4: the internal date's date; it is kept as Unix seconds and shown in
        // +0000, so the day is the UTC one.
        K::Before(d) => day_of(c.m.internal_date) < *d,
        K::On(d) => day_of(c.m.internal_date) == *d,
        K::Since(d) => day_of(c.m.internal_date) >= *d,
        K::Older(s) => c.m.internal_date <= c.now - *s as i64,
        K::Younger(s) => c.m.internal_date >= c.now - *s as i64,
        K::SentBefore(d) | K::SentOn(d) | K::SentSince(d) => {
            let day = c.header.map_or(0, |h| c.text.sent_day(h));
            match k {
                K::SentBefore(_) => day < *d,
                K::SentOn(_) => day == *d,
                _ => day >= *d,
            }
        }
        K::Larger(n) => c.size > *n,
        K::Smaller(n) => c.size < *n,
        K::Uid(set) => set.contains(c.m.uid),
        K::Modseq(n) => c.m.modseq >= *n,
        K::Header(name, s) => c.header.is_some_and(|h| c.text.header_has(h, name, s)),
        K::Body(s) | K::Text(s) => c
            .full
            .is_some_and(|full| c.text.body_has(full, s, matches!(k, K::Text(_)))),
        K::Not(k) => !eval(k, c),
        K::Or(a, b) => eval(a, c) || eval(b, c),
        K::And(v) => v.iter().all(|k| eval(k, c)),
    }
}

/// The default [`Store::search`]: reads what the key needs of each candidate (nothing, the
/// header, or the whole message) and evaluates it. A message that cannot be read matches no
/// text key.
pub async fn search_by_message<S: Store + ?Sized>(
    store: &S,
    account: &str,
    mailbox: &str,
    candidates: &[MessageMeta],
    key: &SearchKey,
    text: &dyn TextMatcher,
) -> Result<Vec<u32>> {
    let mut need = Needs::default();
    key_needs(key, &mut need);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut out = Vec::new();
    for m in candidates {
        let full = if need.full {
            store
                .fetch(account, mailbox, m.uid)
                .await
                .ok()
                .map(postern_mail::wire::into_crlf)
        } else {
            None
        };
        let header = if need.header && full.is_none() {
            store
                .fetch_header(account, mailbox, m.uid)
                .await
                .ok()
                .map(postern_mail::wire::into_crlf)
        } else {
            None
        };
        let hdr_slice: Option<&[u8]> = match (&full, &header) {
            (Some(f), _) => {
                let end = f
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .map_or(f.len(), |p| p + 4);
                Some(&f[..end])
            }
            (_, Some(h)) => Some(h),
            _ => None,
        };
        let size = match &full {
            Some(f) if need.size => f.len() as u64,
            _ => m.wire_size,
        };
        let ctx = Ctx {
            m,
            size,
            header: hdr_slice,
            full: full.as_deref(),
            now,
            text,
        };
        if eval(key, &ctx) {
            out.push(m.uid);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Flags;

    struct Plain;
    impl TextMatcher for Plain {
        fn header_has(&self, header: &[u8], field: &str, needle: &str) -> bool {
            String::from_utf8_lossy(header)
                .to_ascii_lowercase()
                .contains(&format!("{field}: {}", needle.to_ascii_lowercase()))
        }
        fn body_has(&self, message: &[u8], needle: &str, _: bool) -> bool {
            String::from_utf8_lossy(message).contains(needle)
        }
        fn sent_day(&self, _: &[u8]) -> Day {
            0
        }
    }

    fn meta(uid: u32, flags: SystemFlags, recent: bool) -> MessageMeta {
        let mut f = Flags::default();
        f.set_system(flags);
        MessageMeta {
            uid,
            flags: f,
            modseq: u64::from(uid) * 10,
            internal_date: i64::from(uid) * 86400,
            size: 100,
            wire_size: 104,
            recent,
        }
    }

    #[test]
    fn flags_dates_uids_and_logic() {
        let ms = [
            meta(1, SystemFlags::SEEN, false),
            meta(2, SystemFlags::empty(), true),
            meta(
                3,
                {
                    let mut s = SystemFlags::SEEN;
                    s.insert(SystemFlags::DELETED);
                    s
                },
                true,
            ),
        ];
        let hits = |k: SearchKey| -> Vec<u32> {
            ms.iter()
                .filter(|m| {
                    eval(
                        &k,
                        &Ctx {
                            m,
                            size: m.wire_size,
                            header: None,
                            full: None,
                            now: 0,
                            text: &Plain,
                        },
                    )
                })
                .map(|m| m.uid)
                .collect()
        };
        use SearchKey as K;
        assert_eq!(hits(K::All), vec![1, 2, 3]);
        assert_eq!(hits(K::Not(Box::new(K::Flag(SystemFlags::SEEN)))), vec![2]);
        assert_eq!(
            hits(K::And(vec![K::Recent, K::Flag(SystemFlags::SEEN)])),
            vec![3]
        );
        assert_eq!(hits(K::Since(2)), vec![2, 3]);
        assert_eq!(hits(K::On(1)), vec![1]);
        assert_eq!(hits(K::Uid(UidSet::range(2, 9))), vec![2, 3]);
        assert_eq!(hits(K::Modseq(20)), vec![2, 3]);
        assert_eq!(
            hits(K::Or(
                Box::new(K::Larger(103)),
                Box::new(K::Keyword("x".into()))
            )),
            vec![1, 2, 3]
        );
        assert_eq!(hits(K::Smaller(104)), Vec::<u32>::new());
        assert_eq!(
            hits(K::Header("from".into(), "a".into())),
            Vec::<u32>::new()
        );
    }
}
