//! The `mailto:` notification method of `enotify` (RFC 5435, RFC 5436): reading the method's
//! URI (RFC 6068), its capabilities, and the notification message itself.

use super::headers;
use postern_mail::header::fields;

/// Pigeonhole sends at most this many header fields taken from a URI; the rest are dropped.
const MAX_URI_HEADERS: usize = 16;

/// Header fields a URI may not set (RFC 5436 §2.7: the notification's own trace, identity,
/// threading, loop protection and MIME structure are the implementation's), beside `to`,
/// `cc`, `bcc`, `subject` and `body`, which have their own meaning.
const RESERVED_HEADERS: [&str; 14] = [
    "auto-submitted",
    "received",
    "message-id",
    "date",
    "in-reply-to",
    "references",
    "from",
    "sender",
    "return-path",
    "mime-version",
    "precedence",
    "x-priority",
    "importance",
    "bcc",
];

/// A parsed `mailto:` URI (RFC 6068 §2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct MailtoUri {
    /// Recipients: the `to` part and `to` hfields.
    pub(crate) to: Vec<String>,
    /// `cc` hfields.
    pub(crate) cc: Vec<String>,
    /// The first `subject` hfield.
    pub(crate) subject: Option<String>,
    /// The `body` hfield.
    pub(crate) body: Option<String>,
    /// Other header fields the notification may carry (reserved ones already dropped).
    pub(crate) headers: Vec<(String, String)>,
}

/// RFC 5435 §3.3 / RFC 5436 §2.1: whether `uri` is a notification method this
/// implementation accepts (`mailto:` only); `Err` says why not.
pub(crate) fn valid_method(uri: &str) -> Result<(), String> {
    parse(uri).map(|_| ())
}

/// RFC 5435 §5 `notify_method_capability` for `mailto:` (RFC 5436 §2.2): `online` is
/// always "maybe" (mail cannot tell whether the recipient is reading). Unknown capabilities
/// and invalid URIs have no value.
pub(crate) fn capability(uri: &str, name: &str) -> Option<String> {
    parse(uri).ok()?;
    name.eq_ignore_ascii_case("online")
        .then(|| "maybe".to_string())
}

/// RFC 6068 §2: `mailto:` [to] [`?` hfield *(`&` hfield)], percent-decoded. Refuses what
/// Pigeonhole refuses: another scheme, a fragment, bad percent-encoding, an invalid address
/// or header name, an empty `to`/`cc`, and line breaks in a header value.
pub(crate) fn parse(uri: &str) -> Result<MailtoUri, String> {
    let rest = match uri.split_once(':') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("mailto") => rest,
        Some((scheme, _)) => return Err(format!("unsupported notification method '{scheme}'")),
        None => return Err("not a URI".into()),
    };
    if rest.contains('#') {
        return Err("a mailto URI has no fragment".into());
    }
    let (to_part, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut parsed = MailtoUri::default();
    if !to_part.is_empty() {
        parsed.to = address_list(to_part, "to")?;
    }
    for hfield in query.split('&').filter(|h| !h.is_empty()) {
        let (raw_name, raw_value) = hfield.split_once('=').unwrap_or((hfield, ""));
        let name = percent_decode(raw_name)?;
        let value = percent_decode(raw_value)?;
        if name.is_empty() {
            continue;
        }
        if !super::editheader::valid_name(&name) {
            return Err(format!("invalid header name '{name}'"));
        }
        let lower = name.to_ascii_lowercase();
        if lower != "body" && value.contains(['\r', '\n']) {
            return Err(format!("line break in header field '{name}'"));
        }
        match lower.as_str() {
            "to" => parsed.to.extend(address_list(raw_value, "to")?),
            "cc" => parsed.cc.extend(address_list(raw_value, "cc")?),
            "body" => parsed.body = Some(value),
            "subject" if parsed.subject.is_none() => parsed.subject = Some(value),
            "subject" => {}
            _ if RESERVED_HEADERS.contains(&lower.as_str())
                || lower.starts_with("resent-")
                || lower.starts_with("content-") => {}
            _ if parsed.headers.len() < MAX_URI_HEADERS => parsed.headers.push((name, value)),
            _ => {}
        }
    }
    Ok(parsed)
}

/// RFC 6068 §2 `to`: addresses separated by commas (written as they are or as `%2C`, which
/// Pigeonhole also accepts), each checked.
fn address_list(raw: &str, what: &str) -> Result<Vec<String>, String> {
    let decoded = percent_decode(raw)?;
    if decoded.trim().is_empty() {
        return Err(format!("empty '{what}' in mailto URI"));
    }
    split_addresses(&decoded)
        .into_iter()
        .map(|a| {
            let address = a.trim().to_string();
            if valid_address(&address) {
                Ok(address)
            } else {
                Err(format!("invalid address '{address}' in '{what}'"))
            }
        })
        .collect()
}

/// The comma-separated parts of a list, commas inside a quoted local part not counting.
fn split_addresses(list: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in list.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&list[start..]);
    parts
}

/// RFC 5322 §3.4.1 addr-spec without domain literals (RFC 6068 §2 allows them in principle;
/// Pigeonhole refuses them, and so do we): a dot-atom or quoted local part, `@`, a host name.
fn valid_address(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    let dot_atom = |s: &str, ok: &dyn Fn(char) -> bool| {
        !s.is_empty()
            && s.split('.')
                .all(|part| !part.is_empty() && part.chars().all(ok))
    };
    let local_ok = if local.len() >= 2 && local.starts_with('"') && local.ends_with('"') {
        !local[1..local.len() - 1].contains(['"', '\r', '\n'])
    } else {
        dot_atom(local, &atext)
    };
    let label = |c: char| c.is_ascii_alphanumeric() || c == '-' || !c.is_ascii();
    local_ok && dot_atom(domain, &label)
}

/// RFC 3986 §2.1 percent-decoding to UTF-8 text (invalid UTF-8 replaced).
fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("invalid percent-encoding in '{s}'"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// RFC 5436 §2.3–§2.7: the notification for `original`: its recipients and the message
/// (CRLF line ends). `None` when nothing may or can be sent: an invalid URI, no recipient,
/// or an original that is itself auto-submitted (§2.7.1: no notification about automatic
/// mail, which keeps notifications from looping). `from` is the sender when the script
/// gave no `:from`; `date` and `message_id` are the caller's.
pub(crate) fn compose_notification(
    n: &crate::Notify,
    original: &[u8],
    envelope: &crate::Envelope,
    from: &str,
    date: &str,
    message_id: &str,
) -> Option<(Vec<String>, Vec<u8>)> {
    const CRLF: &str = "\r\n";
    let uri = parse(&n.method).ok()?;
    let auto_submitted = fields(original)
        .filter(|f| f.is("auto-submitted"))
        .any(|f| !f.value().eq_ignore_ascii_case("no"));
    if auto_submitted {
        return None;
    }
    let mut recipients: Vec<String> = Vec::new();
    for address in uri.to.iter().chain(&uri.cc) {
        if !recipients.iter().any(|r| r.eq_ignore_ascii_case(address)) {
            recipients.push(address.clone());
        }
    }
    if recipients.is_empty() {
        return None;
    }
    // RFC 5436 §2.6: :message is the subject; else the URI's; else a summary of the original.
    let subject = n.message.clone().or(uri.subject).unwrap_or_else(|| {
        let original_subject = fields(original)
            .find(|f| f.is("subject"))
            .map(|f| headers::decode_value(f.raw_value))
            .unwrap_or_default();
        format!("Notification: {original_subject}")
    });
    let body = uri
        .body
        .unwrap_or_else(|| "Notification of new message.".to_string());
    let mut out = String::new();
    let id = message_id.trim();
    let id = if id.starts_with('<') {
        id.to_string()
    } else {
        format!("<{id}>")
    };
    out.push_str(&headers::field("Message-ID", &id, CRLF));
    out.push_str(&headers::field("Date", date, CRLF));
    out.push_str(&headers::field("Subject", &subject, CRLF));
    // RFC 5436 §2.3: :from, else the implementation's address.
    out.push_str(&headers::field(
        "From",
        n.from.as_deref().unwrap_or(from),
        CRLF,
    ));
    out.push_str(&headers::field("To", &uri.to.join(", "), CRLF));
    if !uri.cc.is_empty() {
        out.push_str(&headers::field("Cc", &uri.cc.join(", "), CRLF));
    }
    // RFC 5436 §2.7.1: auto-notified, naming the owner of the script (RFC 3834 §5).
    out.push_str(&format!(
        "Auto-Submitted: auto-notified; owner-email=\"{}\"\r\n",
        envelope.to.replace(['"', '\\', '\r', '\n'], "")
    ));
    out.push_str("Precedence: bulk\r\n");
    // RFC 5436 §2.4: importance may be shown as a priority, as Pigeonhole does.
    let (priority, importance) = match n.importance {
        1 => ("1 (Highest)", "High"),
        3 => ("5 (Lowest)", "Low"),
        _ => ("3 (Normal)", "Normal"),
    };
    out.push_str(&format!(
        "X-Priority: {priority}\r\nImportance: {importance}\r\n"
    ));
    for (name, value) in &uri.headers {
        out.push_str(&headers::field(name, value, CRLF));
    }
    out.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n");
    let cte = if body.is_ascii() { "7bit" } else { "8bit" };
    out.push_str(&format!("Content-Transfer-Encoding: {cte}\r\n\r\n"));
    out.push_str(&body.replace("\r\n", "\n").replace('\n', CRLF));
    if !out.ends_with(CRLF) {
        out.push_str(CRLF);
    }
    Some((recipients, out.into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Envelope, Notify};

    /// RFC 6068 §2 syntax, checked against what Pigeonhole's `valid_notify_method` says.
    #[test]
    fn uri_validity() {
        for ok in [
            "mailto:alice@example.com",
            "MAILTO:alice@example.com",
            "mailto:alice@example.com,bob@example.com",
            "mailto:alice@example.com%2Cbob@example.com",
            "mailto:",
            "mailto:?to=alice@example.com",
            "mailto:alice@example.com?subject=a%20b&body=c",
            "mailto:alice@example.com?subject",
            "mailto:al%69ce@example.com",
            "mailto:alice@example.com?subject=a&subject=b",
            "mailto:alice@example.com?bcc=b@example.com",
            "mailto:alice@example.com?auto-submitted=no",
            "mailto:%22a%20b%22@example.com",
            "mailto:%22a,b%22@example.com",
            "mailto:alice@example.com?body=%C3%A9%0D%0Anext",
        ] {
            assert_eq!(valid_method(ok), Ok(()), "{ok}");
        }
        for bad in [
            "xmpp:alice@example.com",
            "alice@example.com",
            "mailto:alice",
            "mailto:alice@example.com?subject=a%2",
            "mailto:alice@example.com?subject=a%zz",
            "mailto:alice@example.com?X-Foo%20Bar=x",
            "mailto:alice@example.com?to=",
            "mailto:alice@example.com?cc=bad",
            "mailto:alice@example.com,",
            "mailto:alice@[192.0.2.1]",
            "mailto:alice@example.com#frag",
            "mailto:alice@example.com?subject=%0D%0Ax",
        ] {
            assert!(valid_method(bad).is_err(), "{bad}");
        }
    }

    /// RFC 6068 §2: recipients from the to part and the to/cc hfields; reserved header
    /// fields (RFC 5436 §2.7) dropped; the first subject wins.
    #[test]
    fn uri_parts() {
        let uri = parse(
            "mailto:a@example.com?to=b@example.com&cc=c@example.com&bcc=d@example.com&\
             X-Foo=bar&from=evil@example.com&received=x&Reply-To=r@example.com&subject=s1&\
             subject=s2&body=hello%20there&Content-Type=text/html&Resent-To=x@y",
        )
        .unwrap();
        assert_eq!(uri.to, vec!["a@example.com", "b@example.com"]);
        assert_eq!(uri.cc, vec!["c@example.com"]);
        assert_eq!(uri.subject.as_deref(), Some("s1"));
        assert_eq!(uri.body.as_deref(), Some("hello there"));
        assert_eq!(
            uri.headers,
            vec![
                ("X-Foo".to_string(), "bar".to_string()),
                ("Reply-To".to_string(), "r@example.com".to_string())
            ]
        );
    }

    /// RFC 5436 §2.2: online is "maybe"; nothing else is known.
    #[test]
    fn capabilities() {
        assert_eq!(
            capability("mailto:a@example.com", "online").as_deref(),
            Some("maybe")
        );
        assert_eq!(
            capability("mailto:a@example.com", "ONLINE").as_deref(),
            Some("maybe")
        );
        assert_eq!(capability("mailto:a@example.com", "foo"), None);
        assert_eq!(capability("xmpp:a@example.com", "online"), None);
    }

    fn notify(method: &str) -> Notify {
        Notify {
            method: method.into(),
            from: None,
            importance: 2,
            options: Vec::new(),
            message: None,
        }
    }

    const ORIGINAL: &[u8] =
        b"From: s@example.org\r\nTo: user@example.net\r\nSubject: Original subject\r\n\r\nbody\r\n";

    fn envelope() -> Envelope {
        Envelope {
            from: "s@example.org".into(),
            to: "user@example.net".into(),
            ..Envelope::default()
        }
    }

    /// RFC 5436 §2.3–§2.7: the message, as Pigeonhole writes it.
    #[test]
    fn default_notification() {
        let mut n = notify("mailto:alice@example.com?cc=carol@example.com&X-Foo=bar");
        n.importance = 1;
        let (to, msg) = compose_notification(
            &n,
            ORIGINAL,
            &envelope(),
            "Postmaster <postmaster@example.net>",
            "Thu, 03 Dec 2026 09:15:36 +0000",
            "n1@example.net",
        )
        .unwrap();
        assert_eq!(to, vec!["alice@example.com", "carol@example.com"]);
        let expected = "Message-ID: <n1@example.net>\r\n\
Date: Thu, 03 Dec 2026 09:15:36 +0000\r\n\
Subject: Notification: Original subject\r\n\
From: Postmaster <postmaster@example.net>\r\n\
To: alice@example.com\r\n\
Cc: carol@example.com\r\n\
Auto-Submitted: auto-notified; owner-email=\"user@example.net\"\r\n\
Precedence: bulk\r\n\
X-Priority: 1 (Highest)\r\n\
Importance: High\r\n\
X-Foo: bar\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 7bit\r\n\
\r\n\
Notification of new message.\r\n";
        assert_eq!(String::from_utf8(msg).unwrap(), expected);
    }

    /// RFC 5436 §2.6: :message beats the URI's subject; the URI's body is the body;
    /// :from is the sender; low importance.
    #[test]
    fn custom_notification() {
        let mut n = notify("mailto:zed@example.com?subject=URI%20subject&body=Caf%C3%A9%0Aok");
        n.message = Some("Nouveau: été".into());
        n.from = Some("me@example.net".into());
        n.importance = 3;
        let (_, msg) =
            compose_notification(&n, ORIGINAL, &envelope(), "x@y", "D", "<i@x>").unwrap();
        let text = String::from_utf8(msg).unwrap();
        assert!(
            text.contains("Subject: Nouveau: =?UTF-8?Q?=C3=A9t=C3=A9?=\r\n"),
            "{text}"
        );
        assert!(text.contains("From: me@example.net\r\n"));
        assert!(text.contains("X-Priority: 5 (Lowest)\r\nImportance: Low\r\n"));
        assert!(text.ends_with("8bit\r\n\r\nCafé\r\nok\r\n"), "{text}");
        let n = notify("mailto:zed@example.com?subject=URI%20subject");
        let (_, msg) = compose_notification(&n, ORIGINAL, &envelope(), "x@y", "D", "i").unwrap();
        assert!(String::from_utf8(msg)
            .unwrap()
            .contains("Subject: URI subject\r\n"));
    }

    /// RFC 5436 §2.7.1: no notification about auto-submitted mail; none without recipients.
    #[test]
    fn no_notification() {
        let n = notify("mailto:alice@example.com");
        let auto = b"From: s@example.org\r\nAuto-Submitted: auto-generated\r\n\r\nbody";
        assert!(compose_notification(&n, auto, &envelope(), "x@y", "D", "i").is_none());
        let human = b"From: s@example.org\r\nAuto-Submitted: no\r\n\r\nbody";
        assert!(compose_notification(&n, human, &envelope(), "x@y", "D", "i").is_some());
        let nobody = notify("mailto:?subject=x");
        assert!(compose_notification(&nobody, ORIGINAL, &envelope(), "x@y", "D", "i").is_none());
        let invalid = notify("mailto:alice");
        assert!(compose_notification(&invalid, ORIGINAL, &envelope(), "x@y", "D", "i").is_none());
    }
}
