//! RFC 3461 §4 xtext, the encoding of ENVID and ORCPT values in SMTP commands.

/// RFC 3461 §4 encoding: `+`, `=`, and octets outside `!`..`~` become `+XX` (upper-case hex).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (33..=126).contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

/// RFC 3461 §4 decoding of `+XX` hex escapes (upper-case hex only, as the grammar says); `None`
/// when malformed (a bad escape, `=`, an octet outside `!`..`~`, or not UTF-8 once decoded).
pub fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'+' {
            let hex = s.get(i + 1..i + 3)?;
            if !hex
                .bytes()
                .all(|h| h.is_ascii_digit() || (b'A'..=b'F').contains(&h))
            {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else if (33..=126).contains(&b) && b != b'=' {
            out.push(b);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        assert_eq!(decode("rfc822;a+2Bb@c").as_deref(), Some("rfc822;a+b@c"));
        assert_eq!(decode("abc").as_deref(), Some("abc"));
        assert_eq!(decode(""), Some(String::new()));
        assert_eq!(decode("a+2"), None);
        assert_eq!(decode("a+zz"), None);
        assert_eq!(decode("a+2b"), None);
        assert_eq!(decode("a b"), None);
        assert_eq!(decode("a=b"), None);
    }

    #[test]
    fn encoding() {
        assert_eq!(encode("a+b=c d"), "a+2Bb+3Dc+20d");
        assert_eq!(encode("é"), "+C3+A9");
    }

    proptest::proptest! {
        #[test]
        fn round_trip(s in "\\PC{0,40}") {
            proptest::prop_assert_eq!(decode(&encode(&s)), Some(s));
        }
    }
}
