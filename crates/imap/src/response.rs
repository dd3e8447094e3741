//! Serialising IMAP strings (RFC 9051 §4.3): quoted when safe, literal otherwise.

/// Appends `s` as a quoted string or, if it cannot be quoted, a literal.
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    let quotable = s.len() < 1024
        && s.iter().all(|&b| b != b'\r' && b != b'\n' && b != 0)
        && (s.is_ascii() || std::str::from_utf8(s).is_ok());
    if quotable && s.is_ascii() {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        literal(out, s);
    }
}

/// Appends `s` as a quoted string, allowing UTF-8 (RFC 9051 `quoted` with `UTF8-char`), or a
/// literal when it contains CR/LF or is long.
pub fn string_utf8(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() < 1024
        && std::str::from_utf8(s).is_ok()
        && s.iter().all(|&b| b != b'\r' && b != b'\n' && b != 0)
    {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        literal(out, s);
    }
}

/// Appends `{n}\r\n<bytes>`. RFC 9051 §4.3 / §9: a `literal` never carries NUL, so each NUL
/// is sent as 0x80, as Dovecot does; the size stays the same (RFC822.SIZE still agrees).
/// Raw bytes go in a [`literal8`].
pub fn literal(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    let start = out.len();
    out.extend_from_slice(s);
    if s.contains(&0) {
        for b in &mut out[start..] {
            if *b == 0 {
                *b = 0x80;
            }
        }
    }
}

/// Appends `~{n}\r\n<bytes>` (RFC 3516 §4.3 `literal8`, for BINARY[] data): any octet.
pub fn literal8(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("~{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

/// Appends `NIL` or the string.
pub fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// Converts LF line endings to CRLF (messages are presented with CRLF, RFC 9051 §2.3.4).
pub fn to_crlf(data: Vec<u8>) -> Vec<u8> {
    let bare = data
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' && (i == 0 || data[i - 1] != b'\r'))
        .count();
    if bare == 0 {
        return data;
    }
    let mut out = Vec::with_capacity(data.len() + bare);
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' && (i == 0 || data[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings() {
        let mut o = Vec::new();
        string(&mut o, b"a \"b\" \\");
        assert_eq!(o, b"\"a \\\"b\\\" \\\\\"");
        o.clear();
        string(&mut o, b"x\r\ny");
        assert_eq!(o, b"{4}\r\nx\r\ny");
        o.clear();
        string(&mut o, "é".as_bytes());
        assert_eq!(o, b"{2}\r\n\xc3\xa9");
        o.clear();
        string_utf8(&mut o, "é".as_bytes());
        assert_eq!(o, "\"é\"".as_bytes());
    }

    #[test]
    fn literals_never_carry_nul() {
        let mut o = Vec::new();
        literal(&mut o, b"a\0b");
        assert_eq!(o, b"{3}\r\na\x80b");
        o.clear();
        string(&mut o, b"a\0b");
        assert_eq!(o, b"{3}\r\na\x80b");
        o.clear();
        literal8(&mut o, b"a\0b");
        assert_eq!(o, b"~{3}\r\na\0b");
    }

    #[test]
    fn crlf() {
        assert_eq!(to_crlf(b"a\nb\r\nc\n".to_vec()), b"a\r\nb\r\nc\r\n");
        assert_eq!(to_crlf(b"\n".to_vec()), b"\r\n");
        assert_eq!(to_crlf(b"a\r\n".to_vec()), b"a\r\n");
    }
}
