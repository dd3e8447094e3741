//! Header-section edits on a raw message (CRLF lines): remove fields by name and content, add
//! one at the top. The body is never touched.

/// The end of the header section: the offset of the empty line's start (or the whole
/// message's length if it has no body).
fn header_end(message: &[u8]) -> usize {
    if message.starts_with(b"\r\n") {
        return 0;
    }
    match message.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => i + 2,
        None => message.len(),
    }
}

/// Removes every header field for which `drop(name, value)` is true (RFC 5322 §2.2: a field
/// with its folded continuation lines).
pub(crate) fn remove_fields(message: &mut Vec<u8>, drop: impl Fn(&str, &[u8]) -> bool) {
    let end = header_end(message);
    let mut kept = Vec::with_capacity(message.len());
    let mut i = 0;
    while i < end {
        // One field: this line and every following line starting with WSP.
        let mut j = i;
        loop {
            match message[j..end].windows(2).position(|w| w == b"\r\n") {
                Some(k) => j += k + 2,
                None => {
                    j = end;
                    break;
                }
            }
            if j >= end || !matches!(message[j], b' ' | b'\t') {
                break;
            }
        }
        let field = &message[i..j];
        let remove = match field.iter().position(|&b| b == b':') {
            Some(colon) => match std::str::from_utf8(&field[..colon]) {
                Ok(name) => drop(name.trim(), &field[colon + 1..]),
                Err(_) => false,
            },
            None => false,
        };
        if !remove {
            kept.extend_from_slice(field);
        }
        i = j;
    }
    kept.extend_from_slice(&message[end..]);
    *message = kept;
}

/// Puts `field` (`Name: value`, folded with CRLF + tab, without the final CRLF) at the top.
pub(crate) fn prepend(message: &mut Vec<u8>, field: &str) {
    let mut out = Vec::with_capacity(field.len() + 2 + message.len());
    out.extend_from_slice(field.as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(message);
    *message = out;
}

/// The authserv-id of an `Authentication-Results` value (RFC 8601 §2.2: the first token,
/// after comments), lower-cased.
pub(crate) fn authserv_id(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    let mut depth = 0u32;
    let mut id = String::new();
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            ';' => break,
            c if c.is_whitespace() => {
                if !id.is_empty() {
                    break;
                }
            }
            c => id.push(c),
        }
    }
    id.to_ascii_lowercase()
}

/// The field `Name: a;\r\n\tb;\r\n\tc` (results separated as RFC 8601 §2.2 writes them).
pub(crate) fn folded(name: &str, first: &str, rest: &[String]) -> String {
    let mut out = format!("{name}: {first}");
    if rest.is_empty() {
        out.push_str("; none");
    }
    for r in rest {
        out.push_str(";\r\n\t");
        out.push_str(r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_folded_fields_only_in_the_header() {
        let mut m = b"Received: from a\r\n\tby b\r\nAuthentication-Results: mx.example.org;\r\n spf=pass\r\nSubject: hi\r\n\r\nAuthentication-Results: body\r\n".to_vec();
        remove_fields(&mut m, |name, value| {
            name.eq_ignore_ascii_case("authentication-results")
                && authserv_id(value) == "mx.example.org"
        });
        assert_eq!(
            m,
            b"Received: from a\r\n\tby b\r\nSubject: hi\r\n\r\nAuthentication-Results: body\r\n"
        );
        prepend(&mut m, "X-A: 1");
        assert!(m.starts_with(b"X-A: 1\r\nReceived:"));
    }

    #[test]
    fn authserv_id_skips_comments() {
        assert_eq!(
            authserv_id(b" (c) MX.Example.org 1; spf=pass"),
            "mx.example.org"
        );
        assert_eq!(authserv_id(b" mx;none"), "mx");
        assert_eq!(
            folded("A", "mx", &["spf=pass".into()]),
            "A: mx;\r\n\tspf=pass"
        );
        assert_eq!(folded("A", "mx", &[]), "A: mx; none");
    }
}
