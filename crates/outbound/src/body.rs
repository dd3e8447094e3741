//! How a message's body goes to a server: the BODY parameter (RFC 6152 8BITMIME, RFC 3030
//! BINARYMIME), DATA or BDAT (RFC 3030 CHUNKING), and the refusal when the server cannot take
//! the body as it is.
//!
//! A message with 8-bit octets for a server without 8BITMIME (RFC 6152 §3 allows converting it
//! or returning it) is converted to quoted-printable/base64 in its MIME parts when it carries no
//! DKIM signature; a signed one (ours is added before the destination's extensions are known,
//! and an originator's covers the 8-bit body; RFC 6376 §5.3 leaves conversion to the signer), or
//! one whose structure does not allow it, is returned with `5.6.3`, so no signature is broken.

use crate::client::Capabilities;
use postern_mail::EnhancedCode;
use postern_spool::BodyType;
use std::borrow::Cow;

/// The longest line RFC 5322 §2.1.1 allows, without its CRLF.
const MAX_LINE: usize = 998;

/// How one message is sent to one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Transfer {
    /// The BODY value for MAIL (`8BITMIME`, `BINARYMIME`), if any.
    pub(crate) body: Option<&'static str>,
    /// Send with BDAT (RFC 3030 CHUNKING) rather than DATA.
    pub(crate) bdat: bool,
}

/// The transfer of a message declared `declared` with content `data` to a server with `caps`,
/// or the enhanced code and words of the refusal (`5.6.3`, conversion required).
pub(crate) fn choose(
    declared: BodyType,
    data: &[u8],
    caps: &Capabilities,
) -> Result<Transfer, (EnhancedCode, String)> {
    let chunking = caps.esmtp && caps.chunking;
    // RFC 3030 §3: binary content only with BINARYMIME over BDAT; a message declared binary
    // whose content is plain text lines goes like any 8-bit message.
    if declared == BodyType::BinaryMime && !textual(data) {
        if caps.binarymime && chunking {
            return Ok(Transfer {
                body: Some("BINARYMIME"),
                bdat: true,
            });
        }
        return Err((
            EnhancedCode::new(5, 6, 3),
            "does not offer BINARYMIME with CHUNKING, which this binary message needs (RFC 3030 §3)"
                .into(),
        ));
    }
    let eight_bit = data.iter().any(|&b| b >= 0x80);
    if eight_bit && !caps.eightbitmime {
        // RFC 6152 §3: not sent as it is to a server without 8BITMIME (see `seven_bit_copy`).
        return Err((
            EnhancedCode::new(5, 6, 3),
            "does not offer 8BITMIME, which this message's 8-bit content needs (RFC 6152 §3)"
                .into(),
        ));
    }
    let body =
        (caps.eightbitmime && (eight_bit || declared != BodyType::SevenBit)).then_some("8BITMIME");
    Ok(Transfer {
        body,
        bdat: chunking,
    })
}

/// Text lines as SMTP carries them (RFC 5321 §2.3.8, RFC 6152 §2): no NUL, no CR outside CRLF,
/// no line longer than 998 octets (a bare LF counts as a line end: it is sent as CRLF).
pub(crate) fn textual(data: &[u8]) -> bool {
    let mut line = 0usize;
    for (i, &b) in data.iter().enumerate() {
        match b {
            0 => return false,
            b'\r' if data.get(i + 1) != Some(&b'\n') => return false,
            b'\r' => {}
            b'\n' => line = 0,
            _ => {
                line += 1;
                if line > MAX_LINE {
                    return false;
                }
            }
        }
    }
    true
}

/// RFC 6152 §3: the 7-bit copy of a message that [`choose`] refused for its 8-bit content,
/// and how to send it, when the message carries no DKIM signature (ours or another's: converting
/// would break it) and its MIME structure allows the conversion.
pub(crate) fn seven_bit_copy(
    declared: BodyType,
    data: &[u8],
    caps: &Capabilities,
) -> Option<(Vec<u8>, Transfer)> {
    let binary_needed = declared == BodyType::BinaryMime && !textual(data);
    if binary_needed || caps.eightbitmime || !data.iter().any(|&b| b >= 0x80) {
        return None;
    }
    if postern_mail::header::fields(data).any(|f| f.is("DKIM-Signature")) {
        return None;
    }
    let copy = crate::downgrade::to_seven_bit(data)?;
    Some((
        copy,
        Transfer {
            body: None,
            bdat: caps.esmtp && caps.chunking,
        },
    ))
}

/// The octets of a BDAT chunk (RFC 3030 §2: no dot-stuffing): the message as it is for
/// BINARYMIME, else with CRLF line ends and a final CRLF, as DATA would carry it.
pub(crate) fn bdat_octets<'a>(data: &'a [u8], transfer: &Transfer) -> Cow<'a, [u8]> {
    if transfer.body == Some("BINARYMIME") || data.is_empty() {
        return Cow::Borrowed(data);
    }
    let mut out = postern_mail::wire::to_crlf(data);
    if !out.ends_with(b"\r\n") {
        out.to_mut().extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(list: &[&str]) -> Capabilities {
        Capabilities {
            esmtp: true,
            eightbitmime: list.contains(&"8BITMIME"),
            chunking: list.contains(&"CHUNKING"),
            binarymime: list.contains(&"BINARYMIME"),
            ..Capabilities::default()
        }
    }

    #[test]
    fn body_parameter_and_bdat() {
        let seven = b"Subject: a\r\n\r\nplain\r\n";
        let eight = "Subject: é\r\n\r\ncafé\r\n".as_bytes();
        let all = caps(&["8BITMIME", "CHUNKING", "BINARYMIME"]);
        let t = choose(BodyType::SevenBit, seven, &all).unwrap();
        assert_eq!((t.body, t.bdat), (None, true));
        let t = choose(BodyType::SevenBit, eight, &all).unwrap();
        assert_eq!((t.body, t.bdat), (Some("8BITMIME"), true));
        let t = choose(BodyType::EightBitMime, seven, &caps(&["8BITMIME"])).unwrap();
        assert_eq!((t.body, t.bdat), (Some("8BITMIME"), false));
        // 8-bit content to a server without 8BITMIME: 5.6.3; 7-bit content goes.
        let (code, _) = choose(BodyType::EightBitMime, eight, &caps(&["CHUNKING"])).unwrap_err();
        assert_eq!(code, EnhancedCode::new(5, 6, 3));
        let t = choose(BodyType::EightBitMime, seven, &caps(&[])).unwrap();
        assert_eq!((t.body, t.bdat), (None, false));
    }

    #[test]
    fn binarymime_only_when_needed_and_offered() {
        let binary = b"Subject: b\r\n\r\n\x00\x01\r\xff\n";
        let t = choose(
            BodyType::BinaryMime,
            binary,
            &caps(&["8BITMIME", "CHUNKING", "BINARYMIME"]),
        )
        .unwrap();
        assert_eq!((t.body, t.bdat), (Some("BINARYMIME"), true));
        assert_eq!(bdat_octets(binary, &t).as_ref(), binary);
        let (code, _) = choose(
            BodyType::BinaryMime,
            binary,
            &caps(&["8BITMIME", "CHUNKING"]),
        )
        .unwrap_err();
        assert_eq!(code, EnhancedCode::new(5, 6, 3));
        // Declared binary, but text lines: sent as 8BITMIME where that is offered.
        let text = "Subject: b\r\n\r\nnaïve\r\n".as_bytes();
        let t = choose(BodyType::BinaryMime, text, &caps(&["8BITMIME"])).unwrap();
        assert_eq!((t.body, t.bdat), (Some("8BITMIME"), false));
    }

    #[test]
    fn seven_bit_copies_only_of_unsigned_messages() {
        let eight = "Subject: s\r\n\r\ncafé\r\n".as_bytes();
        let (copy, t) =
            seven_bit_copy(BodyType::EightBitMime, eight, &caps(&["CHUNKING"])).unwrap();
        assert_eq!(
            copy,
            b"Subject: s\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9\r\n"
        );
        assert_eq!((t.body, t.bdat), (None, true));
        let signed = "DKIM-Signature: v=1; d=a.test\r\nSubject: s\r\n\r\ncafé\r\n".as_bytes();
        assert!(seven_bit_copy(BodyType::EightBitMime, signed, &caps(&[])).is_none());
        // Not needed where the server has 8BITMIME or the content is 7-bit.
        assert!(seven_bit_copy(BodyType::EightBitMime, eight, &caps(&["8BITMIME"])).is_none());
        assert!(seven_bit_copy(BodyType::EightBitMime, b"\r\nx\r\n", &caps(&[])).is_none());
    }

    #[test]
    fn text_lines() {
        assert!(textual(b"a\r\nb\nc"));
        assert!(!textual(b"a\rb"));
        assert!(!textual(b"a\0b"));
        assert!(textual(&[b'x'; 998]));
        assert!(!textual(&[b'x'; 999]));
        let t = Transfer {
            body: None,
            bdat: true,
        };
        assert_eq!(bdat_octets(b"a\nb", &t).as_ref(), b"a\r\nb\r\n");
        assert_eq!(bdat_octets(b".a\r\n", &t).as_ref(), b".a\r\n");
    }
}
