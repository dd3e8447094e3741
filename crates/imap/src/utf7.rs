//! Modified UTF-7 mailbox names for IMAP4rev1 clients (RFC 3501 §5.1.3).

use base64::engine::{general_purpose::GeneralPurposeConfig, DecodePaddingMode, GeneralPurpose};
use base64::Engine;

fn engine() -> GeneralPurpose {
    // RFC 3501 §5.1.3: modified BASE64 with "," instead of "/", no padding.
    let alphabet = base64::alphabet::IMAP_MUTF7;
    GeneralPurpose::new(
        &alphabet,
        GeneralPurposeConfig::new()
            .with_encode_padding(false)
            .with_decode_padding_mode(DecodePaddingMode::RequireNone),
    )
}

/// Encodes a UTF-8 name as modified UTF-7.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        out.push_str(&engine().encode(bytes));
        out.push('-');
        pending.clear();
    };
    for ch in name.chars() {
        if (' '..='~').contains(&ch) {
            flush(&mut pending, &mut out);
            if ch == '&' {
                out.push_str("&-");
            } else {
                out.push(ch);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(ch.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Decodes a modified UTF-7 name; `None` if it is not valid modified UTF-7. RFC 3501 §5.1.3
/// allows one spelling per name: printable ASCII stands for itself, `&` is `&-`, and a run of
/// other characters is one base64 section without padding or stray bits, so a name that
/// does not re-encode to the same octets is refused (as Dovecot refuses it).
pub fn decode(name: &[u8]) -> Option<String> {
    let out = decode_lenient(name)?;
    (encode(&out).as_bytes() == name).then_some(out)
}

fn decode_lenient(name: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut i = 0;
    while i < name.len() {
        let b = name[i];
        if b == b'&' {
            let end = name[i + 1..].iter().position(|&c| c == b'-')? + i + 1;
            if end == i + 1 {
                out.push('&');
            } else {
                let bytes = engine().decode(&name[i + 1..end]).ok()?;
                if bytes.len() % 2 != 0 {
                    return None;
                }
                let units: Vec<u16> = bytes
                    .chunks(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
                out.push_str(&String::from_utf16(&units).ok()?);
            }
            i = end + 1;
        } else if (0x20..0x7f).contains(&b) {
            out.push(b as char);
            i += 1;
        } else {
            return None;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for s in [
            "INBOX",
            "Entwürfe",
            "日本語/メール",
            "a&b",
            "~peter/mail/台北/日本語",
            "😀",
        ] {
            assert_eq!(decode(encode(s).as_bytes()).as_deref(), Some(s), "{s}");
        }
        assert_eq!(encode("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(encode("&"), "&-");
        assert_eq!(
            decode(b"~peter/mail/&U,BTFw-/&ZeVnLIqe-").unwrap(),
            "~peter/mail/台北/日本語"
        );
        assert!(decode(b"&Jjo").is_none());
        assert!(decode(b"\xc3\xa9").is_none());
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// RFC 3501 §5.1.3: every name encodes to printable ASCII and decodes back.
        #[test]
        fn round_trip(s in "\\PC{0,30}") {
            let e = encode(&s);
            prop_assert!(e.bytes().all(|b| (0x20..0x7f).contains(&b)), "{}", e);
            prop_assert_eq!(decode(e.as_bytes()), Some(s));
        }

        /// Whatever decodes re-encodes to the same octets (one spelling per name).
        #[test]
        fn decode_is_canonical(v in "[ -~]{0,30}") {
            if let Some(d) = decode(v.as_bytes()) {
                prop_assert_eq!(encode(&d), v);
            }
        }
    }

    #[test]
    fn non_canonical_spellings_are_refused() {
        for bad in [
            &b"&AGE-"[..],
            b"&AOk-&AOk-",
            b"&AOk",
            b"&AOkA-",
            b"&2D0-",
            b"&-&",
        ] {
            assert_eq!(decode(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(decode(b"&AOkA6Q-").as_deref(), Some("éé"));
        assert_eq!(decode(b"a&-b").as_deref(), Some("a&b"));
        assert_eq!(decode(b"&2D3cAA-").as_deref(), Some("\u{1f400}"));
    }
}

/// Random printable ASCII rarely contains a base64 section that decodes; these generate them.
#[cfg(test)]
mod section_proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Names built of `&...-` sections (valid, padded, odd-length, stray bits, surrogates)
        /// and plain characters: the decoder accepts exactly the canonical spellings, i.e. what
        /// it accepts re-encodes to the same octets, and no accepted name has two spellings.
        #[test]
        fn only_canonical_sections_decode(
            parts in proptest::collection::vec("&[A-Za-z0-9+,=]{0,10}-|&-|[ -%'-~]{1,3}", 0..6),
        ) {
            let name = parts.concat();
            if let Some(d) = decode(name.as_bytes()) {
                prop_assert_eq!(encode(&d), name);
            }
        }

        /// Encoded names are canonical: two sections never follow each other, and a section
        /// never encodes printable ASCII (RFC 3501 §5.1.3 "MUST be represented by itself").
        #[test]
        fn encoding_is_canonical(s in "\\PC{0,20}") {
            let e = encode(&s);
            let b = e.as_bytes();
            let (mut i, mut after_section) = (0, false);
            while i < b.len() {
                if b[i] != b'&' {
                    after_section = false;
                    i += 1;
                    continue;
                }
                let end = i + 1 + b[i + 1..].iter().position(|&c| c == b'-').unwrap();
                if end > i + 1 {
                    prop_assert!(!after_section, "two sections in a row: {}", e);
                    let bytes = engine().decode(&b[i + 1..end]).unwrap();
                    for u in bytes.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])) {
                        prop_assert!(!(0x20..0x7f).contains(&u), "ASCII in a section: {}", e);
                    }
                }
                after_section = end > i + 1;
                i = end + 1;
            }
            prop_assert_eq!(decode(e.as_bytes()), Some(s));
        }
    }
}
