//! The `encoded-character` extension (RFC 5228 §2.4.2.4): `${hex: 40 41}` and
//! `${unicode: 263A}` inside string literals.

/// RFC 5228 §2.4.2.4: replaces every well-formed `${hex:…}` and `${unicode:…}` in `s` by what
/// it encodes. A malformed sequence is left as it is; a `${unicode:…}` naming a value outside
/// 0–D7FF and E000–10FFFF is an error. The `hex`/`unicode` prefix is case-insensitive.
/// Octets from `${hex:…}` that are not UTF-8 become U+FFFD (Sieve strings are UTF-8 text).
pub(crate) fn decode(s: &str) -> Result<String, String> {
    let mut out: Vec<u8> = Vec::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.extend_from_slice(&rest.as_bytes()[..start]);
        let candidate = &rest[start..];
        match sequence(candidate)? {
            Some((decoded, used)) => {
                out.extend_from_slice(&decoded);
                rest = &candidate[used..];
            }
            None => {
                out.extend_from_slice(b"${");
                rest = &candidate[2..];
            }
        }
    }
    out.extend_from_slice(rest.as_bytes());
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// One sequence at the start of `s` (which starts with `${`): its octets and how many bytes of
/// `s` it used; `None` when it is not a well-formed sequence.
fn sequence(s: &str) -> Result<Option<(Vec<u8>, usize)>, String> {
    let after = &s[2..];
    let (unicode, prefix_len) = if starts_with_ignore_case(after, "hex:") {
        (false, 4)
    } else if starts_with_ignore_case(after, "unicode:") {
        (true, 8)
    } else {
        return Ok(None);
    };
    let body_start = 2 + prefix_len;
    let Some(close) = s[body_start..].find('}') else {
        return Ok(None);
    };
    let body = &s[body_start..body_start + close];
    let used = body_start + close + 1;
    let Some(words) = hex_words(body) else {
        return Ok(None);
    };
    let mut octets = Vec::new();
    if unicode {
        for word in words {
            octets.extend_from_slice(unicode_char(word)?.encode_utf8(&mut [0; 4]).as_bytes());
        }
    } else {
        for word in words {
            // hex-pair = 1*2HEXDIG
            if word.len() > 2 {
                return Ok(None);
            }
            octets.push(u8::from_str_radix(word, 16).map_err(|e| e.to_string())?);
        }
    }
    Ok(Some((octets, used)))
}

/// The hex words of a sequence body: `*blank word *(1*blank word) *blank`, blank being
/// space, tab, CR or LF. `None` when empty or when something other than hex digits and blanks
/// appears.
fn hex_words(body: &str) -> Option<Vec<&str>> {
    let words: Vec<&str> = body
        .split([' ', '\t', '\r', '\n'])
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty()
        || !words
            .iter()
            .all(|w| w.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return None;
    }
    Some(words)
}

/// RFC 5228 §2.4.2.4: a unicode-hex value outside 0–D7FF and E000–10FFFF is an error.
fn unicode_char(word: &str) -> Result<char, String> {
    let digits = word.trim_start_matches('0');
    let value = if digits.is_empty() {
        0
    } else if digits.len() > 6 {
        u32::MAX
    } else {
        u32::from_str_radix(digits, 16).map_err(|e| e.to_string())?
    };
    char::from_u32(value)
        .ok_or_else(|| format!("invalid unicode character 0x{word} in encoded string"))
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::decode;

    /// RFC 5228 §2.4.2.4's examples: `${hex:24}foo` and friends are "$foo".
    #[test]
    fn rfc_examples_decode_to_the_same_string() {
        assert_eq!(decode("${hex:24}foo").unwrap(), "$foo");
        assert_eq!(decode("${HEX: 24}foo").unwrap(), "$foo");
        assert_eq!(decode("${hex:24 24}").unwrap(), "$$");
        assert_eq!(decode("${unicode:24}foo").unwrap(), "$foo");
        assert_eq!(decode("${Unicode:0000024}foo").unwrap(), "$foo");
    }

    /// RFC 5228 §2.4.2.4: "${hex:40}" is "@", blanks may surround and separate pairs,
    /// and a pair may be a single digit.
    #[test]
    fn hex_sequences() {
        assert_eq!(decode("${hex:40}").unwrap(), "@");
        assert_eq!(decode("${hex: 40 41 }").unwrap(), "@A");
        assert_eq!(decode("${hex:\r\n4\t41}").unwrap(), "\u{4}A");
        assert_eq!(decode("a${hex:c3 a9}b").unwrap(), "aéb");
        // Not UTF-8: replaced, not an error.
        assert_eq!(decode("${hex:ff}").unwrap(), "\u{fffd}");
    }

    #[test]
    fn unicode_sequences() {
        assert_eq!(decode("${unicode:263A}").unwrap(), "☺");
        assert_eq!(decode("${unicode: 48 69 }").unwrap(), "Hi");
        assert_eq!(decode("${UNICODE:1F600}").unwrap(), "😀");
        assert_eq!(decode("${unicode:10FFFF}").unwrap(), "\u{10FFFF}");
    }

    /// RFC 5228 §2.4.2.4: malformed sequences are left as they are.
    #[test]
    fn malformed_sequences_stay() {
        for s in [
            "${hex:}",
            "${hex: }",
            "${hex:4g}",
            "${hex:404}",
            "${hex:40",
            "${foo:40}",
            "${hex 40}",
            "${unicode:}",
            "${unicode:x}",
            "$ {hex:40}",
            "${",
            "$",
        ] {
            assert_eq!(decode(s).unwrap(), s);
        }
        assert_eq!(decode("${hex:zz}${hex:41}").unwrap(), "${hex:zz}A");
        assert_eq!(decode("${${hex:41}").unwrap(), "${A");
    }

    /// RFC 5228 §2.4.2.4: values outside 0–D7FF / E000–10FFFF are an error.
    #[test]
    fn invalid_code_points_are_errors() {
        for s in [
            "${unicode:D800}",
            "${unicode:DFFF}",
            "${unicode:110000}",
            "${unicode:FFFFFFFFFF}",
        ] {
            assert!(decode(s).is_err(), "{s}");
        }
        assert!(decode("${unicode:D7FF}").is_ok());
        assert!(decode("${unicode:E000}").is_ok());
    }
}
