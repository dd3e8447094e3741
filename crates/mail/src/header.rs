//! The header section of a message (RFC 5322 §2.1: everything before the first empty line) and
//! its fields, folded and unfolded (§2.2.3). Line ends may be CRLF or bare LF.

/// Where the body starts: the offset just past the empty line that ends the header section
/// (CRLF or LF), or the message's length when there is no empty line (all header).
pub fn body_start(message: &[u8]) -> usize {
    let mut start = 0;
    while start < message.len() {
        let end = match message[start..].iter().position(|&b| b == b'\n') {
            Some(p) => start + p + 1,
            None => return message.len(),
        };
        let line = &message[start..end];
        if line == b"\r\n" || line == b"\n" {
            return end;
        }
        start = end;
    }
    message.len()
}

/// The header section, up to and including the empty line that ends it (or all of the message
/// when there is none).
pub fn header_section(message: &[u8]) -> &[u8] {
    &message[..body_start(message)]
}

/// The body: what follows the empty line after the header section (empty when there is none).
pub fn body(message: &[u8]) -> &[u8] {
    &message[body_start(message)..]
}

/// The lines of the header section without their line ends, up to (not including) the empty
/// line. Continuation lines (starting with space or tab) are returned as they are.
pub fn lines(message: &[u8]) -> impl Iterator<Item = &[u8]> {
    message
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .take_while(|l| !l.is_empty())
}

/// One header field: its name as written (trailing white space removed) and its raw value, still
/// folded (continuation lines joined with their line ends, as they were).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// The field name, as written.
    pub name: &'a [u8],
    /// Everything after the colon, folding line ends included.
    pub raw_value: &'a [u8],
}

impl Field<'_> {
    /// Whether the field has this name (ASCII case-insensitive).
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }

    /// The value unfolded (§2.2.3) and trimmed, lossily decoded as UTF-8.
    pub fn value(&self) -> String {
        unfold(&String::from_utf8_lossy(self.raw_value))
            .trim()
            .to_string()
    }
}

/// The fields of the header section, in order. A line that is neither a field (no colon) nor a
/// continuation is skipped, and so is a continuation with no field before it.
pub fn fields(message: &[u8]) -> impl Iterator<Item = Field<'_>> {
    let header = header_section(message);
    let mut pos = 0;
    std::iter::from_fn(move || loop {
        if pos >= header.len() {
            return None;
        }
        let start = pos;
        let mut end = next_line(header, start);
        pos = end;
        let first = &header[start..end];
        if matches!(first[0], b' ' | b'\t' | b'\r' | b'\n') {
            continue;
        }
        let Some(colon) = first.iter().position(|&b| b == b':') else {
            continue;
        };
        while pos < header.len() && matches!(header[pos], b' ' | b'\t') {
            end = next_line(header, pos);
            pos = end;
        }
        let raw = &header[start + colon + 1..end];
        return Some(Field {
            name: first[..colon].trim_ascii_end(),
            raw_value: strip_line_end(raw),
        });
    })
}

/// The end of the line starting at `start` (past its LF, or the end of `data`).
fn next_line(data: &[u8], start: usize) -> usize {
    data[start..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(data.len(), |p| start + p + 1)
}

fn strip_line_end(s: &[u8]) -> &[u8] {
    let s = s.strip_suffix(b"\n").unwrap_or(s);
    s.strip_suffix(b"\r").unwrap_or(s)
}

/// The unfolded value of the first field called `name`, trimmed; `None` when there is none.
pub fn field_value(message: &[u8], name: &str) -> Option<String> {
    fields(message).find(|f| f.is(name)).map(|f| f.value())
}

/// RFC 5322 §2.2.3 unfolding: every CRLF (or bare LF) followed by white space is removed.
pub fn unfold(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find('\n') {
        let line = &rest[..i];
        out.push_str(line.strip_suffix('\r').unwrap_or(line));
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
    out
}

/// RFC 5322 §2.2.3 folding: `Name: value` with CRLF, broken before white space so that lines
/// stay within `width` octets where the value allows it (RFC 5322 §2.1.1 recommends 78). A word
/// longer than the width stays whole on its own line.
pub fn fold(name: &str, value: &str, width: usize) -> String {
    let mut out = format!("{name}:");
    let mut line_len = out.len();
    let mut first = true;
    for word in value.split([' ', '\t']).filter(|w| !w.is_empty()) {
        if line_len + 1 + word.len() > width && !first {
            out.push_str("\r\n");
            line_len = 0;
        }
        first = false;
        out.push(' ');
        out.push_str(word);
        line_len += 1 + word.len();
    }
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_end_with_either_line_end() {
        assert_eq!(header_section(b"A: b\r\n\r\nbody"), b"A: b\r\n\r\n");
        assert_eq!(header_section(b"A: b\n\nbody"), b"A: b\n\n");
        assert_eq!(body(b"A: b\r\n\r\nbody"), b"body");
        assert_eq!(header_section(b"\r\nbody"), b"\r\n");
        assert_eq!(header_section(b"A: b\r\nC: d"), b"A: b\r\nC: d");
        assert_eq!(body(b"A: b\r\nC: d"), b"");
        assert_eq!(body_start(b""), 0);
        // A line of only CR is not the empty line.
        assert_eq!(body(b"A: b\r\n\r\r\n\r\nx"), b"x");
    }

    #[test]
    fn fields_are_unfolded() {
        let m = b"Subject: a\r\n\tb\r\nX-Y : z\r\nno colon\r\nTo:\r\n\r\nBody: no\r\n";
        let f: Vec<_> = fields(m).map(|f| (f.name, f.value())).collect();
        assert_eq!(
            f,
            vec![
                (&b"Subject"[..], "a\tb".to_string()),
                (&b"X-Y"[..], "z".to_string()),
                (&b"To"[..], String::new()),
            ]
        );
        assert_eq!(field_value(m, "x-y").as_deref(), Some("z"));
        assert_eq!(field_value(m, "body"), None);
        assert_eq!(
            lines(b"A: 1\n 2\n\nB").collect::<Vec<_>>(),
            vec![&b"A: 1"[..], b" 2"]
        );
    }

    #[test]
    fn fold_round_trips() {
        let value = "a fairly long subject line that will certainly need folding somewhere";
        let folded = fold("Subject", value, 30);
        assert!(folded.lines().all(|l| l.len() <= 30));
        assert!(folded.ends_with("\r\n"));
        assert_eq!(
            field_value(format!("{folded}\r\n").as_bytes(), "subject").as_deref(),
            Some(value)
        );
        assert_eq!(unfold("a\r\n b\n\tc"), "a b\tc");
        let long = "x".repeat(100);
        assert_eq!(fold("S", &long, 78), format!("S: {long}\r\n"));
    }
}
