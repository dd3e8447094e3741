//! The `mailto:` notification message delivery sends for enotify (RFC 5436 §2.7). Same
//! signature as the interpreter crate's planned `compose_notification`, which replaces this
//! once it lands there (vacation replies already come from `postern_sieve::compose_vacation`).

use base64::Engine;
use postern_mail::header::field_value;
use postern_sieve::{Envelope, Notify};

/// RFC 2047 §4.1 B-encoding for a header text that is not plain ASCII.
fn encode_word(text: &str) -> String {
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        text.to_string()
    } else {
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
        )
    }
}

/// Body text with CRLF line ends (RFC 5322 §2.3).
fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// A header field; a value with a line break is cut there (no header injection).
fn field(out: &mut String, name: &str, value: &str) {
    let value = value.lines().next().unwrap_or("");
    out.push_str(name);
    out.push_str(": ");
    out.push_str(value);
    out.push_str("\r\n");
}

/// Decodes RFC 3986 percent-escapes (as RFC 6068 mailto URIs use them).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The recipients and message of an enotify `mailto:` notification (RFC 5436 §2.7), or `None`
/// when none is due (an auto-submitted original, RFC 5436 §2.7; a method that is not mailto).
pub(crate) fn notification(
    n: &Notify,
    original: &[u8],
    envelope: &Envelope,
    from: &str,
    date: &str,
    message_id: &str,
) -> Option<(Vec<String>, Vec<u8>)> {
    let auto = field_value(original, "Auto-Submitted")
        .is_some_and(|v| !v.trim().eq_ignore_ascii_case("no"));
    if auto {
        return None;
    }
    let uri = n.method.strip_prefix("mailto:")?;
    let (to_part, query) = uri.split_once('?').unwrap_or((uri, ""));
    let mut to: Vec<String> = to_part
        .split(',')
        .map(percent_decode)
        .filter(|a| !a.trim().is_empty())
        .map(|a| a.trim().to_string())
        .collect();
    let mut subject = None;
    let mut body = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value);
        match name.to_ascii_lowercase().as_str() {
            "to" => to.extend(value.split(',').map(|a| a.trim().to_string())),
            "subject" => subject = Some(value),
            "body" => body = Some(value),
            // RFC 5436 §2.3: other header fields from the URI are not trusted.
            _ => {}
        }
    }
    to.retain(|a| a.contains('@'));
    let original_subject = field_value(original, "Subject").unwrap_or_default();
    let subject = n
        .message
        .clone()
        .or(subject)
        .unwrap_or_else(|| format!("[SIEVE] New mail: {original_subject}"));
    let body = body.unwrap_or_else(|| {
        format!(
            "New mail from {} to {}\nSubject: {original_subject}\n",
            if envelope.from.is_empty() {
                "<>"
            } else {
                &envelope.from
            },
            envelope.to
        )
    });
    let mut h = String::new();
    field(&mut h, "From", from);
    field(&mut h, "To", &to.join(", "));
    field(&mut h, "Subject", &encode_word(&subject));
    field(&mut h, "Date", date);
    field(&mut h, "Message-ID", message_id);
    // RFC 5436 §2.7.
    field(&mut h, "Auto-Submitted", "auto-notified");
    if n.importance == 1 {
        field(&mut h, "Importance", "high");
        field(&mut h, "X-Priority", "1 (Highest)");
    } else if n.importance == 3 {
        field(&mut h, "Importance", "low");
        field(&mut h, "X-Priority", "5 (Lowest)");
    }
    field(&mut h, "MIME-Version", "1.0");
    field(&mut h, "Content-Type", "text/plain; charset=utf-8");
    field(&mut h, "Content-Transfer-Encoding", "8bit");
    h.push_str("\r\n");
    h.push_str(&crlf(&body));
    if !h.ends_with("\r\n") {
        h.push_str("\r\n");
    }
    Some((to, h.into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_from_a_mailto_uri() {
        let n = Notify {
            method: "mailto:alice%40mobile.test?subject=New%20mail&x-evil=1".into(),
            from: None,
            importance: 1,
            options: Vec::new(),
            message: None,
        };
        let env = Envelope {
            from: "bob@x.test".into(),
            to: "alice@example.org".into(),
            ..Envelope::default()
        };
        let orig = b"Subject: hi\r\n\r\nbody\r\n";
        let (to, msg) = notification(&n, orig, &env, "alice@example.org", "d", "<m@h>").unwrap();
        assert_eq!(to, ["alice@mobile.test"]);
        let msg = String::from_utf8(msg).unwrap();
        assert!(msg.contains("Subject: New mail\r\n"));
        assert!(msg.contains("Auto-Submitted: auto-notified\r\n"));
        assert!(!msg.contains("x-evil"));
        let auto = b"Auto-Submitted: auto-replied\r\nSubject: hi\r\n\r\n";
        assert!(notification(&n, auto, &env, "a@b", "d", "<m@h>").is_none());
    }
}
