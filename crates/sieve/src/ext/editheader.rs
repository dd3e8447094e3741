//! The `editheader` extension (RFC 5293): `addheader` and `deleteheader` on the raw message.
//! The message's own line ends are kept; nothing outside the header section changes.

use super::headers;

/// RFC 5293 §4: the message with the field `name: value` added, first in the header section
/// or, with `:last`, last. The value is folded and RFC 2047 encoded as needed (§4: "the
/// value … MUST be encoded").
pub(crate) fn add_header(message: &[u8], name: &str, value: &str, last: bool) -> Vec<u8> {
    let line_end = headers::line_end_of(message);
    let field = headers::field(name, value, line_end);
    let mut out = Vec::with_capacity(message.len() + field.len() + 2);
    if !last {
        out.extend_from_slice(field.as_bytes());
        out.extend_from_slice(message);
        return out;
    }
    let spans = field_spans(message);
    let at = spans.last().map_or(0, |s| s.end);
    out.extend_from_slice(&message[..at]);
    // A header section that ends without a line end (header-only message) needs one first.
    if at > 0 && message[at - 1] != b'\n' {
        out.extend_from_slice(line_end.as_bytes());
    }
    out.extend_from_slice(field.as_bytes());
    out.extend_from_slice(&message[at..]);
    out
}

/// RFC 5293 §5: the message without the fields called `name` that the script selects.
/// `index` is `:index n [:last]` as `(n, last)`: only the n-th field of that name, counted
/// from the top (or from the bottom with `:last`), is considered (§5, 1-based). `keep` gets
/// each candidate's decoded value and says whether it stays (it does the value-patterns
/// match; without patterns it always says false).
pub(crate) fn delete_header(
    message: &[u8],
    name: &str,
    index: Option<(usize, bool)>,
    keep: &dyn Fn(&str) -> bool,
) -> Vec<u8> {
    let spans: Vec<Span> = field_spans(message)
        .into_iter()
        .filter(|s| message[s.start..s.name_end].eq_ignore_ascii_case(name.as_bytes()))
        .collect();
    let chosen: Vec<&Span> = match index {
        None => spans.iter().collect(),
        Some((n, last)) if n >= 1 && n <= spans.len() => {
            vec![&spans[if last { spans.len() - n } else { n - 1 }]]
        }
        Some(_) => Vec::new(),
    };
    let doomed: Vec<&Span> = chosen
        .into_iter()
        .filter(|s| !keep(&headers::decode_value(raw_value(message, s))))
        .collect();
    let mut out = Vec::with_capacity(message.len());
    let mut pos = 0;
    for span in doomed {
        out.extend_from_slice(&message[pos..span.start]);
        pos = span.end;
    }
    out.extend_from_slice(&message[pos..]);
    out
}

/// Fields no script may delete: RFC 5293 §7 names Received (the trace) and Auto-Submitted
/// (loop protection); Pigeonhole always refuses deleting these two, and by default nothing
/// else. (Pigeonhole 2.3 lets a script add them; the caller decides about adding.)
pub(crate) fn is_protected(name: &str) -> bool {
    name.eq_ignore_ascii_case("received") || name.eq_ignore_ascii_case("auto-submitted")
}

/// RFC 5322 §3.6.8 field-name: one or more printable ASCII characters other than `:`
/// (RFC 5293 §4 requires addheader's name to be one).
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

/// Where one field sits in the message: `start..end` covers its first line, its continuation
/// lines and their line ends; `start..name_end` is its name.
#[derive(Debug)]
struct Span {
    start: usize,
    name_end: usize,
    value_start: usize,
    end: usize,
}

/// The value of a field, raw (still folded, line end excluded).
fn raw_value<'a>(message: &'a [u8], span: &Span) -> &'a [u8] {
    let value = &message[span.value_start..span.end];
    let value = value.strip_suffix(b"\n").unwrap_or(value);
    value.strip_suffix(b"\r").unwrap_or(value)
}

/// The fields of the header section, in order, with their positions. Lines that are neither
/// a field nor a continuation are left alone (never deleted).
fn field_spans(message: &[u8]) -> Vec<Span> {
    let header_end = postern_mail::header::body_start(message);
    let mut spans: Vec<Span> = Vec::new();
    let mut pos = 0;
    while pos < header_end {
        let line_end = message[pos..header_end]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(header_end, |i| pos + i + 1);
        let line = &message[pos..line_end];
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if matches!(line[0], b' ' | b'\t') {
            if let Some(last) = spans.last_mut().filter(|s| s.end == pos) {
                last.end = line_end;
            }
        } else if let Some(colon) = line.iter().position(|&b| b == b':') {
            spans.push(Span {
                start: pos,
                name_end: pos + line[..colon].trim_ascii_end().len(),
                value_start: pos + colon + 1,
                end: line_end,
            });
        }
        pos = line_end;
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"Received: from a by b; Tue, 1 Apr 1997 09:06:31 -0800\r\n\
X-Tag: one\r\n\
Subject: hello\r\n\
X-Tag: two,\r\n\
\tcontinued\r\n\
x-tag: =?UTF-8?Q?thr=C3=A9e?=\r\n\
\r\n\
X-Tag: in the body\r\n";

    fn s(b: &[u8]) -> String {
        String::from_utf8(b.to_vec()).unwrap()
    }

    /// RFC 5293 §4: addheader puts the field first; `:last` after the last field.
    #[test]
    fn add_first_and_last() {
        let first = add_header(MSG, "X-New", "v", false);
        assert!(s(&first).starts_with("X-New: v\r\nReceived:"));
        let last = s(&add_header(MSG, "X-New", "v", true));
        assert!(
            last.contains("x-tag: =?UTF-8?Q?thr=C3=A9e?=\r\nX-New: v\r\n\r\nX-Tag: in the body")
        );
        // LF messages get LF fields.
        let lf = add_header(b"A: b\n\nbody\n", "X", "y z", true);
        assert_eq!(s(&lf), "A: b\nX: y z\n\nbody\n");
        // A header-only message without a final line end.
        assert_eq!(s(&add_header(b"A: b", "X", "y", true)), "A: b\r\nX: y\r\n");
        assert_eq!(s(&add_header(b"", "X", "y", true)), "X: y\r\n");
    }

    /// RFC 5293 §4: non-ASCII values are RFC 2047 encoded, long ones folded.
    #[test]
    fn add_encodes_and_folds() {
        let m = s(&add_header(MSG, "X-Note", "café", false));
        assert!(m.starts_with("X-Note: =?UTF-8?Q?caf=C3=A9?=\r\n"), "{m}");
        let long = "a ".repeat(60);
        let m = s(&add_header(b"A: b\r\n\r\n", "X-Long", &long, false));
        let header = m.split("\r\n\r\n").next().unwrap();
        assert!(header.split("\r\n").all(|l| l.len() <= 78), "{m}");
    }

    /// RFC 5293 §5: without :index every field of the name goes (any case), the body stays.
    #[test]
    fn delete_all() {
        let m = s(&delete_header(MSG, "X-TAG", None, &|_| false));
        assert_eq!(
            m,
            "Received: from a by b; Tue, 1 Apr 1997 09:06:31 -0800\r\n\
Subject: hello\r\n\r\nX-Tag: in the body\r\n"
        );
    }

    /// RFC 5293 §5: values are decoded before matching; `keep` spares some.
    #[test]
    fn delete_matching_values() {
        let m = s(&delete_header(MSG, "x-tag", None, &|v| v != "thrée"));
        assert!(m.contains("X-Tag: one") && m.contains("continued"));
        assert!(!m.contains("thr=C3=A9e"));
        let m = s(&delete_header(MSG, "x-tag", None, &|v| {
            !v.starts_with("two,")
        }));
        assert!(!m.contains("continued") && m.contains("X-Tag: one"));
    }

    /// RFC 5293 §5 with RFC 5260 §6 `:index`: the n-th occurrence, from the end with :last.
    #[test]
    fn delete_by_index() {
        let m = s(&delete_header(MSG, "x-tag", Some((1, false)), &|_| false));
        assert!(!m.contains("X-Tag: one") && m.contains("two,") && m.contains("thr"));
        let m = s(&delete_header(MSG, "x-tag", Some((1, true)), &|_| false));
        assert!(m.contains("X-Tag: one") && m.contains("two,") && !m.contains("thr=C3"));
        let m = s(&delete_header(MSG, "x-tag", Some((2, true)), &|_| false));
        assert!(m.contains("X-Tag: one") && !m.contains("two,"));
        // Out of range, or the chosen one is kept: nothing changes.
        assert_eq!(
            delete_header(MSG, "x-tag", Some((4, false)), &|_| false),
            MSG
        );
        assert_eq!(
            delete_header(MSG, "x-tag", Some((1, false)), &|_| true),
            MSG
        );
    }

    #[test]
    fn protection_and_names() {
        assert!(is_protected("Received"));
        assert!(is_protected("AUTO-SUBMITTED"));
        assert!(!is_protected("Subject"));
        assert!(valid_name("X-Spam-Flag"));
        for bad in ["", "X Spam", "X:Y", "Ünï", "a\r\n"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
