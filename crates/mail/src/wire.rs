//! Messages on the wire: CRLF line ends (RFC 5322 §2.1, RFC 5321 §2.3.8), the size a message
//! has once its line ends are CRLF, and SMTP transparency (RFC 5321 §4.5.2 dot-stuffing).

use std::borrow::Cow;

/// Whether the byte at `i` is a LF with no CR before it.
fn bare_lf(data: &[u8], i: usize) -> bool {
    data[i] == b'\n' && (i == 0 || data[i - 1] != b'\r')
}

/// The message with every bare LF turned into CRLF; borrowed when there is none.
pub fn to_crlf(data: &[u8]) -> Cow<'_, [u8]> {
    let bare = (0..data.len()).filter(|&i| bare_lf(data, i)).count();
    if bare == 0 {
        return Cow::Borrowed(data);
    }
    let mut out = Vec::with_capacity(data.len() + bare);
    for (i, &b) in data.iter().enumerate() {
        if bare_lf(data, i) {
            out.push(b'\r');
        }
        out.push(b);
    }
    Cow::Owned(out)
}

/// Like [`to_crlf`], taking and returning an owned buffer (no copy when there is no bare LF).
pub fn into_crlf(data: Vec<u8>) -> Vec<u8> {
    match to_crlf(&data) {
        Cow::Borrowed(_) => data,
        Cow::Owned(v) => v,
    }
}

/// The size of the message once its line ends are CRLF (bare LF counted as two octets).
pub fn wire_size(data: &[u8]) -> u64 {
    let bare = (0..data.len()).filter(|&i| bare_lf(data, i)).count();
    (data.len() + bare) as u64
}

/// RFC 5321 §4.5.2 transparency for sending: a leading dot is doubled, line ends become CRLF, a
/// final line end is added when missing, and the data ends with `.` CRLF.
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 8);
    let mut at_line_start = true;
    let mut prev = 0u8;
    for &b in message {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        at_line_start = b == b'\n';
        prev = b;
    }
    if !message.is_empty() && !at_line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// The inverse of [`dot_stuff`] on complete data: the message before `CRLF . CRLF`, with the
/// leading dot of each line removed. `None` when the data does not end with the terminator.
/// (The SMTP server decodes streaming input with its own state machine; this is for data held
/// whole.)
pub fn dot_unstuff(wire: &[u8]) -> Option<Vec<u8>> {
    let body = if wire == b".\r\n" {
        &wire[..0]
    } else {
        &wire[..wire.strip_suffix(b"\r\n.\r\n")?.len() + 2]
    };
    let mut out = Vec::with_capacity(body.len());
    for line in body.split_inclusive(|&b| b == b'\n') {
        out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf() {
        assert_eq!(&*to_crlf(b"a\nb\r\nc\n"), b"a\r\nb\r\nc\r\n");
        assert_eq!(&*to_crlf(b"\n"), b"\r\n");
        assert!(matches!(to_crlf(b"a\r\n"), Cow::Borrowed(_)));
        assert_eq!(into_crlf(b"x\ny".to_vec()), b"x\r\ny");
        assert_eq!(wire_size(b"a\nb\r\n"), 6);
        assert_eq!(wire_size(b""), 0);
    }

    #[test]
    fn dot_stuffing_and_line_ends() {
        assert_eq!(dot_stuff(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(dot_stuff(b".x\nend"), b"..x\r\nend\r\n.\r\n");
        assert_eq!(dot_stuff(b""), b".\r\n");
        assert_eq!(
            dot_unstuff(b"a\r\n..b\r\n.\r\n").as_deref(),
            Some(&b"a\r\n.b\r\n"[..])
        );
        assert_eq!(dot_unstuff(b".\r\n").as_deref(), Some(&b""[..]));
        assert_eq!(dot_unstuff(b"a\r\n"), None);
    }

    proptest::proptest! {
        /// Unstuffing undoes stuffing, giving the message with canonical line ends.
        #[test]
        fn unstuffing_inverts_stuffing(message in proptest::collection::vec(
            proptest::prop_oneof![proptest::strategy::Just(b'.'), proptest::strategy::Just(b'\n'),
                proptest::strategy::Just(b'\r'), proptest::num::u8::ANY], 0..200)) {
            let mut canonical = to_crlf(&message).into_owned();
            if !canonical.is_empty() && !canonical.ends_with(b"\n") {
                canonical.extend_from_slice(b"\r\n");
            }
            // A CR right before the added CRLF is kept as content.
            let wire = dot_stuff(&message);
            proptest::prop_assert_eq!(wire_size(&message) as usize <= wire.len(), true);
            if !message.ends_with(b"\r") {
                proptest::prop_assert_eq!(dot_unstuff(&wire), Some(canonical));
            }
        }
    }
}
