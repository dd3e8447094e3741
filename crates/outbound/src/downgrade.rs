//! RFC 6152 §3 / RFC 1652 §3: the 7-bit copy of a message with 8-bit MIME parts, for a server
//! without 8BITMIME: each 8-bit leaf part re-encoded (RFC 2045 §6.7 quoted-printable for text,
//! §6.8 base64 otherwise), composite parts walked (RFC 2046 §5). Only when that yields a valid
//! message: 8-bit octets in a header, a preamble or epilogue, or a part that already claims
//! quoted-printable or base64, or an unterminated multipart, make it impossible.

use base64::Engine;
use postern_mail::header;

/// Deepest MIME nesting walked.
const MAX_DEPTH: usize = 30;

/// The 7-bit copy, or `None` when the message cannot be converted.
pub(crate) fn to_seven_bit(message: &[u8]) -> Option<Vec<u8>> {
    let message = postern_mail::wire::to_crlf(message);
    let mut out = Vec::with_capacity(message.len() + message.len() / 3);
    entity(&message, "text/plain", 0, &mut out)?;
    Some(out)
}

/// Writes one entity (headers and body), converted.
fn entity(e: &[u8], default_type: &str, depth: usize, out: &mut Vec<u8>) -> Option<()> {
    if depth > MAX_DEPTH {
        return None;
    }
    let start = header::body_start(e);
    let (head, body) = e.split_at(start);
    if !head.is_ascii() {
        return None;
    }
    let cte = header::field_value(e, "Content-Transfer-Encoding")
        .map(|v| v.to_ascii_lowercase())
        .unwrap_or_else(|| "7bit".into());
    if body.is_ascii() && cte != "binary" {
        out.extend_from_slice(e);
        return Some(());
    }
    let (kind, boundary) = content_type(
        header::field_value(e, "Content-Type").as_deref(),
        default_type,
    );
    if kind.starts_with("multipart/") {
        let boundary = boundary?;
        out.extend_from_slice(head);
        let inner = if kind == "multipart/digest" {
            "message/rfc822"
        } else {
            "text/plain"
        };
        return multipart(body, &boundary, inner, depth, out);
    }
    if kind.starts_with("message/") {
        // RFC 2046 §5.2: a message/* part is 7bit, 8bit or binary: it says 7bit once its
        // content is.
        rewrite_head(head, "7bit", out);
        return entity(body, "text/plain", depth + 1, out);
    }
    if cte == "quoted-printable" || cte == "base64" {
        return None;
    }
    if kind.starts_with("text/") {
        rewrite_head(head, "quoted-printable", out);
        quoted_printable(body, out);
    } else {
        rewrite_head(head, "base64", out);
        base64_lines(body, out);
    }
    Some(())
}

/// The media type (lower case) and the boundary parameter of a Content-Type value.
fn content_type(value: Option<&str>, default_type: &str) -> (String, Option<String>) {
    let Some(value) = value else {
        return (default_type.to_string(), None);
    };
    let mut parts = value.split(';');
    let kind = parts
        .next()
        .map(|k| k.trim().to_ascii_lowercase())
        .filter(|k| k.contains('/'))
        .unwrap_or_else(|| default_type.to_string());
    let boundary = parts.find_map(|p| {
        let (name, v) = p.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
    });
    (kind, boundary.filter(|b| !b.is_empty()))
}

/// The header section without its Content-Transfer-Encoding field, with `cte` instead.
fn rewrite_head(head: &[u8], cte: &str, out: &mut Vec<u8>) {
    let mut skipping = false;
    for line in head.split_inclusive(|&b| b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if !matches!(line.first(), Some(b' ' | b'\t')) {
            let name = line.split(|&b| b == b':').next().unwrap_or(b"");
            skipping = name
                .trim_ascii()
                .eq_ignore_ascii_case(b"content-transfer-encoding");
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(format!("Content-Transfer-Encoding: {cte}\r\n\r\n").as_bytes());
}

/// RFC 2046 §5.1.1: the parts between the delimiter lines, each converted; the delimiters,
/// preamble and epilogue as they are (they must be 7-bit).
fn multipart(
    body: &[u8],
    boundary: &str,
    inner: &str,
    depth: usize,
    out: &mut Vec<u8>,
) -> Option<()> {
    let dash = format!("--{boundary}");
    let mut part: Option<Vec<u8>> = None;
    let mut closed = false;
    for line in body.split_inclusive(|&b| b == b'\n') {
        if closed {
            if !line.is_ascii() {
                return None;
            }
            out.extend_from_slice(line);
            continue;
        }
        let rest = line.trim_ascii_end().strip_prefix(dash.as_bytes());
        if let Some(rest @ (b"" | b"--")) = rest {
            if let Some(p) = part.take() {
                // The CRLF before a delimiter belongs to the delimiter.
                let p = p.strip_suffix(b"\r\n").unwrap_or(&p);
                entity(p, inner, depth + 1, out)?;
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(line);
            closed = rest == b"--";
            if !closed {
                part = Some(Vec::new());
            }
            continue;
        }
        match &mut part {
            Some(p) => p.extend_from_slice(line),
            None if line.is_ascii() => out.extend_from_slice(line),
            None => return None,
        }
    }
    closed.then_some(())
}

/// RFC 2045 §6.7: hard line breaks kept, lines of at most 76 characters, `=` and octets
/// outside printable ASCII as `=XX`, white space at a line end encoded.
fn quoted_printable(body: &[u8], out: &mut Vec<u8>) {
    let mut lines = body.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let last = lines.peek().is_none();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if last && line.is_empty() {
            break;
        }
        let mut col = 0;
        for (i, &b) in line.iter().enumerate() {
            let at_end = i + 1 == line.len();
            let literal =
                ((b == b' ' || b == b'\t') && !at_end) || ((33..=126).contains(&b) && b != b'=');
            let width = if literal { 1 } else { 3 };
            if col + width > 75 {
                out.extend_from_slice(b"=\r\n");
                col = 0;
            }
            if literal {
                out.push(b);
            } else {
                out.extend_from_slice(format!("={b:02X}").as_bytes());
            }
            col += width;
        }
        if !last {
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// RFC 2045 §6.8: base64 in lines of 76 characters.
fn base64_lines(body: &[u8], out: &mut Vec<u8>) {
    let text = base64::engine::general_purpose::STANDARD.encode(body);
    for chunk in text.as_bytes().chunks(76) {
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_body_becomes_quoted_printable() {
        let m = "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncafé = ok \r\nline2\r\n";
        let out = to_seven_bit(m.as_bytes()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 =3D ok=20\r\nline2\r\n"
        );
    }

    #[test]
    fn long_lines_get_soft_breaks() {
        let m = format!("Content-Type: text/plain\r\n\r\n{}\r\n", "é".repeat(40));
        let out = String::from_utf8(to_seven_bit(m.as_bytes()).unwrap()).unwrap();
        for line in out.split("\r\n") {
            assert!(line.len() <= 76, "{line}");
        }
        assert!(out.contains("=\r\n"));
    }

    #[test]
    fn multipart_parts_are_converted_one_by_one() {
        let m = "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\nContent-Type: text/plain\r\n\r\nplain\r\n--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\u{e9}\r\n--b1--\r\nepilogue\r\n";
        let out = String::from_utf8(to_seven_bit(m.as_bytes()).unwrap()).unwrap();
        assert!(out.is_ascii());
        assert!(
            out.contains("--b1\r\nContent-Type: text/plain\r\n\r\nplain\r\n--b1\r\n"),
            "{out}"
        );
        assert!(out.contains("Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nw6k=\r\n"), "{out}");
        assert!(out.ends_with("--b1--\r\nepilogue\r\n"), "{out}");
        assert!(!out.contains("8bit"));
    }

    #[test]
    fn impossible_conversions() {
        // 8-bit header, unterminated multipart, 8-bit claimed as base64.
        assert!(to_seven_bit("Subject: café\r\n\r\nx\r\n".as_bytes()).is_none());
        assert!(to_seven_bit(
            "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\né\r\n".as_bytes()
        )
        .is_none());
        assert!(
            to_seven_bit("Content-Transfer-Encoding: base64\r\n\r\né\r\n".as_bytes()).is_none()
        );
    }
}

/// Property tests of the RFC 2045 §6.7 encoder against a plain decoder written from §6.7.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    /// §6.7 decoding: `=XX` octets, `=` CRLF soft breaks removed, hard CRLF kept.
    fn decode(qp: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < qp.len() {
            if qp[i] == b'=' {
                if qp[i + 1..].starts_with(b"\r\n") {
                    i += 3;
                    continue;
                }
                let hex = std::str::from_utf8(&qp[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                out.push(qp[i]);
                i += 1;
            }
        }
        out
    }

    proptest! {
        /// Any body of CRLF lines encodes to 7-bit lines of at most 76 characters without
        /// trailing white space, and decodes back to itself.
        #[test]
        fn quoted_printable_round_trips(lines in proptest::collection::vec(
            proptest::collection::vec(prop_oneof![Just(b' '), Just(b'='), Just(b'\t'), any::<u8>()]
                .prop_filter("no line ends", |b| *b != b'\r' && *b != b'\n'), 0..200), 0..5)) {
            let body: Vec<u8> = lines.iter().flat_map(|l| l.iter().copied().chain(*b"\r\n")).collect();
            let mut out = Vec::new();
            quoted_printable(&body, &mut out);
            prop_assert!(out.is_ascii());
            for line in out.split(|&b| b == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                prop_assert!(line.len() <= 76);
                prop_assert!(!matches!(line.last(), Some(b' ' | b'\t')));
            }
            prop_assert_eq!(decode(&out), body);
        }
    }
}
