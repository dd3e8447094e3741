//! The trace headers added at final delivery.

/// `Return-Path:` (RFC 5321 §4.4: the reverse-path, added by the final delivery) and
/// `Delivered-To:` (the address delivered to; detects forwarding loops).
pub(crate) fn trace_headers(sender: Option<&str>, delivered_to: &str) -> Vec<u8> {
    format!(
        "Return-Path: <{}>\r\nDelivered-To: {delivered_to}\r\n",
        sender.unwrap_or("")
    )
    .into_bytes()
}

/// Whether the message's header section already has `Delivered-To: <address>`.
pub(crate) fn has_delivered_to(message: &[u8], address: &str) -> bool {
    header_lines(message).any(|line| {
        let Some((name, value)) = line.split_once(':') else {
            return false;
        };
        name.trim().eq_ignore_ascii_case("delivered-to")
            && value.trim().eq_ignore_ascii_case(address)
    })
}

/// The lines of the header section (up to the first empty line), unfolded enough for a
/// single-line field such as Delivered-To.
fn header_lines(message: &[u8]) -> impl Iterator<Item = std::borrow::Cow<'_, str>> {
    postern_mail::header::lines(message).map(String::from_utf8_lossy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_headers_format() {
        assert_eq!(
            trace_headers(Some("a@b.test"), "c@d.test"),
            b"Return-Path: <a@b.test>\r\nDelivered-To: c@d.test\r\n"
        );
        assert_eq!(
            trace_headers(None, "c@d.test"),
            b"Return-Path: <>\r\nDelivered-To: c@d.test\r\n"
        );
    }

    #[test]
    fn finds_delivered_to_only_in_the_header() {
        let m = b"Received: x\r\nDelivered-To: Alice@Example.org\r\nSubject: s\r\n\r\nDelivered-To: bob@example.org\r\n";
        assert!(has_delivered_to(m, "alice@example.org"));
        assert!(!has_delivered_to(m, "bob@example.org"));
        assert!(!has_delivered_to(
            b"Subject: x\n\nbody",
            "alice@example.org"
        ));
    }
}
