//! Modified UTF-7 mailbox names (RFC 3501 §5.1.3), as IMAP4rev1 servers send and expect them;
//! IMAP4rev2 servers (RFC 9051 §5.1) use UTF-8, which passes through both functions unchanged
//! when it has no `&`.

use base64::engine::{general_purpose::GeneralPurposeConfig, DecodePaddingMode, GeneralPurpose};
use base64::Engine;

fn engine() -> GeneralPurpose {
    // Modified BASE64: "," for "/", no padding (RFC 3501 §5.1.3).
    GeneralPurpose::new(
        &base64::alphabet::IMAP_MUTF7,
        GeneralPurposeConfig::new()
            .with_encode_padding(false)
            .with_decode_padding_mode(DecodePaddingMode::RequireNone),
    )
}

/// Decodes a name from the server to UTF-8; a name that is not valid modified UTF-7 (a
/// server speaking UTF-8 names, or a broken one) is returned as it is.
pub(crate) fn decode(name: &str) -> String {
    decode_strict(name).unwrap_or_else(|| name.to_string())
}

fn decode_strict(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    let mut out = String::with_capacity(name.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'&' => {
                let end = i + 1 + bytes[i + 1..].iter().position(|&c| c == b'-')?;
                if end == i + 1 {
                    out.push('&');
                } else {
                    let raw = engine().decode(&bytes[i + 1..end]).ok()?;
                    if raw.len() % 2 != 0 {
                        return None;
                    }
                    let units: Vec<u16> = raw
                        .chunks(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect();
                    out.push_str(&String::from_utf16(&units).ok()?);
                }
                i = end + 1;
            }
            b @ 0x20..=0x7e => {
                out.push(b as char);
                i += 1;
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Encodes a UTF-8 name for an IMAP4rev1 server.
pub(crate) fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut wide: Vec<u16> = Vec::new();
    fn flush(wide: &mut Vec<u16>, out: &mut String) {
        if !wide.is_empty() {
            let bytes: Vec<u8> = wide.iter().flat_map(|u| u.to_be_bytes()).collect();
            out.push('&');
            out.push_str(&engine().encode(bytes));
            out.push('-');
            wide.clear();
        }
    }
    for ch in name.chars() {
        if (' '..='~').contains(&ch) {
            flush(&mut wide, &mut out);
            if ch == '&' {
                out.push_str("&-");
            } else {
                out.push(ch);
            }
        } else {
            let mut units = [0u16; 2];
            wide.extend_from_slice(ch.encode_utf16(&mut units));
        }
    }
    flush(&mut wide, &mut out);
    out
}

/// Base64 (RFC 4648 §4) for SASL.
pub(crate) fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_encodes_rfc_examples() {
        assert_eq!(
            decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
            "~peter/mail/台北/日本語"
        );
        assert_eq!(decode("Entw&APw-rfe"), "Entwürfe");
        assert_eq!(decode("a&-b"), "a&b");
        assert_eq!(encode("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(encode("a&b"), "a&-b");
        for s in ["INBOX", "Reçus/été", "😀 mail", "日本語"] {
            assert_eq!(decode(&encode(s)), s);
        }
        // Not modified UTF-7: kept as sent.
        assert_eq!(decode("Reçus"), "Reçus");
        assert_eq!(decode("&Jjo"), "&Jjo");
        assert_eq!(base64(b"\0bob\0pw"), "AGJvYgBwdw==");
    }
}
