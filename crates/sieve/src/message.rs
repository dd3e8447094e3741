//! What the tests read from the message: header field values (unfolded, RFC 2047 words
//! decoded, as Pigeonhole compares them) and the addresses in address fields.

use postern_mail::header;

/// The values of every field called `name`, in order, unfolded and trimmed, with RFC 2047
/// encoded words decoded (RFC 5228 §5.7: "comparisons are done on the decoded values").
pub(crate) fn header_values(message: &[u8], name: &str) -> Vec<String> {
    header::fields(message)
        .filter(|f| f.is(name))
        .map(|f| decode_words(&f.value()))
        .collect()
}

/// The raw values of `name` (unfolded, not decoded), for the address and date tests.
pub(crate) fn raw_values(message: &[u8], name: &str) -> Vec<String> {
    header::fields(message)
        .filter(|f| f.is(name))
        .map(|f| f.value())
        .collect()
}

/// RFC 2047 §2–§6: `=?charset?B|Q?text?=` words decoded; white space between two adjacent
/// encoded words dropped (§6.2). Unknown charsets stay encoded.
pub(crate) fn decode_words(value: &str) -> String {
    if !value.contains("=?") {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    let mut pending_space = String::new();
    let mut last_was_word = false;
    while !rest.is_empty() {
        if let Some((decoded, used)) = rest.strip_prefix("=?").and_then(encoded_word) {
            if !last_was_word {
                out.push_str(&pending_space);
            }
            pending_space.clear();
            out.push_str(&decoded);
            rest = &rest[used + 2..];
            last_was_word = true;
            continue;
        }
        let c = rest.chars().next().unwrap_or(' ');
        rest = &rest[c.len_utf8()..];
        if c == ' ' || c == '\t' {
            pending_space.push(c);
            continue;
        }
        out.push_str(&pending_space);
        pending_space.clear();
        out.push(c);
        last_was_word = false;
    }
    out.push_str(&pending_space);
    out
}

/// One encoded word after its `=?`: the decoded text and how many bytes it used.
fn encoded_word(s: &str) -> Option<(String, usize)> {
    let (charset, rest) = s.split_once('?')?;
    let (encoding, rest) = rest.split_once('?')?;
    let end = rest.find("?=")?;
    let text = &rest[..end];
    let used = charset.len() + encoding.len() + end + 4;
    if text.contains(' ') {
        return None;
    }
    let bytes = match encoding {
        "B" | "b" => base64_decode(text)?,
        "Q" | "q" => q_decode(text),
        _ => return None,
    };
    let charset = charset
        .split('*')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let decoded = match charset.as_str() {
        "utf-8" | "us-ascii" | "utf8" => String::from_utf8_lossy(&bytes).into_owned(),
        "iso-8859-1" | "latin1" | "windows-1252" | "iso-8859-15" => {
            bytes.iter().map(|&b| char::from(b)).collect()
        }
        _ => return None,
    };
    Some((decoded, used))
}

fn q_decode(text: &str) -> Vec<u8> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'_' => out.push(b' '),
            b'=' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'='),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// The addresses in an address-list field value (RFC 5322 §3.4): display names, comments,
/// groups and angle brackets removed; what Pigeonhole hands to `address`. A group with no
/// members gives nothing; an entry that is no address at all is kept as written.
pub(crate) fn addresses(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    // Text of the current entry outside angle brackets, and the bracketed address if any.
    let mut current = String::new();
    let mut angle: Option<String> = None;
    let mut in_angle = false;
    let mut chars = value.chars().peekable();
    let flush = |current: &mut String, angle: &mut Option<String>, out: &mut Vec<String>| {
        let address = angle.take().unwrap_or_else(|| current.clone());
        current.clear();
        let address: String = address.split_whitespace().collect();
        if !address.is_empty() {
            out.push(address);
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                // Quoted strings: kept in a local part, dropped with a display name.
                let mut quoted = String::from('"');
                while let Some(q) = chars.next() {
                    quoted.push(q);
                    if q == '\\' {
                        if let Some(e) = chars.next() {
                            quoted.push(e);
                        }
                    } else if q == '"' {
                        break;
                    }
                }
                match angle.as_mut().filter(|_| in_angle) {
                    Some(a) => a.push_str(&quoted),
                    None => current.push_str(&quoted),
                }
            }
            '(' => {
                let mut depth = 1;
                while let Some(q) = chars.next() {
                    match q {
                        '\\' => {
                            chars.next();
                        }
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            '<' if !in_angle => {
                in_angle = true;
                angle = Some(String::new());
            }
            '>' if in_angle => {
                in_angle = false;
                if let Some(a) = angle.as_mut() {
                    // `<@route:addr>` (RFC 5322 §4.4 obs-route): the route is dropped.
                    if a.starts_with('@') {
                        if let Some((_, addr)) = a.split_once(':') {
                            *a = addr.to_string();
                        }
                    }
                }
            }
            ':' if !in_angle && angle.is_none() => current.clear(),
            ',' | ';' if !in_angle => flush(&mut current, &mut angle, &mut out),
            c => match angle.as_mut().filter(|_| in_angle) {
                Some(a) => a.push(c),
                None => current.push(c),
            },
        }
    }
    flush(&mut current, &mut angle, &mut out);
    out
}

/// The local part and domain of an address (split at the last `@`); no `@`: all local part.
pub(crate) fn split_address(address: &str) -> (&str, Option<&str>) {
    match address.rsplit_once('@') {
        Some((l, d)) => (l, Some(d)),
        None => (address, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2047 §8 examples.
    #[test]
    fn encoded_words() {
        assert_eq!(
            decode_words("=?ISO-8859-1?Q?Andr=E9?= Pirard"),
            "André Pirard"
        );
        assert_eq!(
            decode_words("(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)"),
            "(ab)"
        );
        assert_eq!(decode_words("=?UTF-8?B?w6lsw6g=?="), "élè");
        assert_eq!(decode_words("=?utf-8?q?a_b?= c"), "a b c");
        assert_eq!(decode_words("plain =? text"), "plain =? text");
    }

    /// RFC 5322 §3.4 address lists, §A.1.3 groups.
    #[test]
    fn address_lists() {
        assert_eq!(
            addresses(
                "\"Joe Q. Public\" <john.q.public@example.com>, Mary <mary@x.test>, jdoe@one.test"
            ),
            ["john.q.public@example.com", "mary@x.test", "jdoe@one.test"]
        );
        assert_eq!(
            addresses("A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;, x@y"),
            ["c@a.test", "joe@where.test", "jdoe@one.test", "x@y"]
        );
        assert_eq!(addresses("Undisclosed recipients:;"), Vec::<String>::new());
        assert_eq!(
            addresses("pete(his account)@silly.test(his host)"),
            ["pete@silly.test"]
        );
        assert_eq!(addresses("\"a,b\"@example.org"), ["\"a,b\"@example.org"]);
    }
}
