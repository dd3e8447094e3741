//! The `vacation` action (RFC 5230): whether a reply may be sent at all (§4.5–§4.6 with RFC
//! 3834 §2), and the reply message itself (§5, RFC 3834 §3). The per-sender period is the
//! caller's business ([`crate::Host::vacation_replied`]).

use super::headers;
use mail_parser::parsers::MessageStream;
use mail_parser::HeaderValue;
use postern_mail::header::{fields, Field};

/// RFC 2369 and RFC 2919 list header fields: their presence marks list mail (the set
/// Pigeonhole checks).
const LIST_FIELDS: [&str; 7] = [
    "list-id",
    "list-owner",
    "list-subscribe",
    "list-post",
    "list-unsubscribe",
    "list-help",
    "list-archive",
];

/// RFC 5230 §4.5: the header fields that name the recipients a reply may go on behalf of.
const RECIPIENT_FIELDS: [&str; 6] = ["to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc"];

/// Whether a vacation reply may be sent for `message`: `Err(reason)` names the first rule
/// that forbids it. `my_addresses` are the user's addresses (`:addresses` and the account's);
/// the envelope recipient (final and original) counts as one of them. Addresses compare
/// case-insensitively (as Pigeonhole does), with a `+detail` ignored.
pub(crate) fn check(
    message: &[u8],
    envelope: &crate::Envelope,
    my_addresses: &[String],
) -> Result<(), String> {
    let sender = envelope.from.trim();
    // RFC 5230 §4.6 / RFC 3834 §2: never reply to the null sender (bounces).
    if sender.is_empty() || sender == "<>" {
        return Err("the envelope sender is null".into());
    }
    let mine: Vec<&str> = my_addresses
        .iter()
        .map(String::as_str)
        .chain(std::iter::once(envelope.to.as_str()))
        .chain(envelope.orig_to.as_deref())
        .filter(|a| !a.is_empty())
        .collect();
    // RFC 5230 §4.6: not to one's own address.
    if mine.iter().any(|m| same_address(m, sender)) {
        return Err(format!("the sender <{sender}> is the user's own address"));
    }
    // RFC 3834 §2: not to addresses that are mail systems or list software.
    if is_system_address(sender) {
        return Err(format!("the sender <{sender}> is a system address"));
    }
    for field in fields(message) {
        let value = field.value();
        // RFC 3834 §2 / RFC 5230 §4.6: no reply to auto-submitted mail. Pigeonhole accepts
        // only the exact value "no".
        if field.is("auto-submitted") && !value.eq_ignore_ascii_case("no") {
            return Err(format!("the message is auto-submitted ({value})"));
        }
        // RFC 3834 §2: the traditional Precedence values of bulk and list mail.
        if field.is("precedence")
            && ["bulk", "list", "junk"]
                .iter()
                .any(|p| value.eq_ignore_ascii_case(p))
        {
            return Err(format!("the message has precedence {value}"));
        }
        // RFC 3834 §2: mail from lists.
        if LIST_FIELDS.iter().any(|l| field.is(l)) {
            return Err("the message comes from a mailing list".into());
        }
        // Microsoft's request not to send out-of-office replies, which Pigeonhole honours.
        if field.is("x-auto-response-suppress")
            && value.split(',').any(|flag| {
                ["all", "oof"]
                    .iter()
                    .any(|f| flag.trim().eq_ignore_ascii_case(f))
            })
        {
            return Err(format!("X-Auto-Response-Suppress: {value}"));
        }
    }
    // RFC 5230 §4.5: only when one of the user's addresses is an explicit recipient.
    let addressed = fields(message)
        .filter(|f| RECIPIENT_FIELDS.iter().any(|r| f.is(r)))
        .flat_map(|f| addresses(&f))
        .any(|a| mine.iter().any(|m| same_address(m, &a)));
    if !addressed {
        return Err("none of the user's addresses is in To, Cc, Bcc or Resent-*".into());
    }
    Ok(())
}

/// RFC 3834 §2: the local parts that mean a mail system or list software (MAILER-DAEMON,
/// LISTSERV and majordomo in any case; `owner-…` and `…-request` as Pigeonhole matches
/// them, case-sensitively).
fn is_system_address(address: &str) -> bool {
    let local = address.rsplit_once('@').map_or(address, |(l, _)| l);
    ["mailer-daemon", "listserv", "majordomo"]
        .iter()
        .any(|s| local.eq_ignore_ascii_case(s))
        || local.starts_with("owner-")
        || local.ends_with("-request")
}

/// The addresses in an address-list field (groups flattened).
fn addresses(field: &Field<'_>) -> Vec<String> {
    let mut raw = postern_mail::header::unfold(&String::from_utf8_lossy(field.raw_value));
    raw.push('\n');
    match MessageStream::new(raw.as_bytes()).parse_address() {
        HeaderValue::Address(list) => list
            .iter()
            .filter_map(|a| a.address.as_deref().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// Two addresses are the same when they agree ignoring case and a `+detail` (RFC 5233).
fn same_address(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        let s = s.trim().trim_start_matches('<').trim_end_matches('>');
        let (local, domain) = s.rsplit_once('@').unwrap_or((s, ""));
        let user = local.split_once('+').map_or(local, |(u, _)| u);
        format!("{}@{}", user.to_lowercase(), domain.to_ascii_lowercase())
    };
    norm(a) == norm(b)
}

/// RFC 5230 §5 and RFC 3834 §3: the reply to `original`, with CRLF line ends. The From is
/// the script's `:from` when given, else `from` (the user's address); `date` and `message_id`
/// are the caller's (RFC 5322 §3.6.1, §3.6.4). Subject defaults to "Auto: " and the
/// original subject (§5.2.1 of RFC 3834 suggests it; RFC 5230 §4.3 requires a default).
pub(crate) fn compose(
    v: &crate::Vacation,
    original: &[u8],
    from: &str,
    date: &str,
    message_id: &str,
) -> Vec<u8> {
    const CRLF: &str = "\r\n";
    let original_subject = fields(original)
        .find(|f| f.is("subject"))
        .map(|f| headers::decode_value(f.raw_value))
        .unwrap_or_default();
    let subject = match &v.subject {
        Some(s) => s.clone(),
        // Pigeonhole's wording when the original has no subject.
        None if original_subject.is_empty() => "Automated reply".to_string(),
        None => format!("Auto: {original_subject}"),
    };
    let mut out = String::new();
    out.push_str(&headers::field("Message-ID", &angle(message_id), CRLF));
    out.push_str(&headers::field("Date", date, CRLF));
    out.push_str(&headers::field(
        "From",
        &mailbox(v.from.as_deref().unwrap_or(from)),
        CRLF,
    ));
    out.push_str(&headers::field(
        "To",
        &reply_to_display(original, &v.to),
        CRLF,
    ));
    out.push_str(&headers::field("Subject", &subject, CRLF));
    // RFC 3834 §3.1.3–3.1.4 / RFC 5230 §5.8: threading from the original's Message-ID.
    if let Some(id) = postern_mail::header::field_value(original, "message-id") {
        let references = match postern_mail::header::field_value(original, "references") {
            Some(r) if !r.is_empty() => format!("{r} {id}"),
            _ => id.clone(),
        };
        out.push_str(&headers::field("In-Reply-To", &id, CRLF));
        out.push_str(&headers::field("References", &references, CRLF));
    }
    // RFC 3834 §3.1.7 / RFC 5230 §5: mark the reply so that others do not answer it.
    out.push_str("Auto-Submitted: auto-replied (vacation)\r\n");
    out.push_str("Precedence: bulk\r\n");
    out.push_str("X-Auto-Response-Suppress: All\r\n");
    out.push_str("MIME-Version: 1.0\r\n");
    let reason = to_crlf(&v.reason);
    if v.mime {
        // RFC 5230 §4.7 :mime: the reason is a MIME entity, its own header fields included.
        out.push_str(&reason);
        if !reason.contains("\r\n\r\n") {
            out.push_str(CRLF);
        }
    } else {
        out.push_str("Content-Type: text/plain; charset=utf-8\r\n");
        let cte = if reason.is_ascii() { "7bit" } else { "8bit" };
        out.push_str(&format!("Content-Transfer-Encoding: {cte}\r\n\r\n"));
        out.push_str(&reason);
    }
    if !out.ends_with(CRLF) {
        out.push_str(CRLF);
    }
    out.into_bytes()
}

/// The original's From field when it names the reply's recipient (keeping its display
/// name, as Pigeonhole does), else the bare `<address>`.
fn reply_to_display(original: &[u8], to: &str) -> String {
    for field in fields(original).filter(|f| f.is("from")) {
        let value = field.value();
        if value.contains('<') && addresses(&field).iter().any(|a| a.eq_ignore_ascii_case(to)) {
            return value;
        }
    }
    angle(to)
}

/// An address for a From field: as given when it already has angle brackets or a display
/// name, else in angle brackets.
fn mailbox(address: &str) -> String {
    if address.contains('<') {
        address.to_string()
    } else {
        angle(address)
    }
}

fn angle(s: &str) -> String {
    let s = s.trim();
    if s.starts_with('<') {
        s.to_string()
    } else {
        format!("<{s}>")
    }
}

/// Text with every line end made CRLF (RFC 5322 §2.1).
fn to_crlf(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\n', "\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Envelope, Vacation};

    fn envelope(from: &str, to: &str) -> Envelope {
        Envelope {
            from: from.into(),
            to: to.into(),
            ..Envelope::default()
        }
    }

    fn message(extra: &str) -> Vec<u8> {
        format!(
            "From: Sender <sender@example.org>\r\nTo: user@example.net\r\nSubject: hi\r\n\
             Message-ID: <x1@example.org>\r\n{extra}\r\nbody\r\n"
        )
        .into_bytes()
    }

    fn ok(extra: &str, from: &str, to: &str) -> Result<(), String> {
        check(&message(extra), &envelope(from, to), &[])
    }

    #[test]
    fn an_ordinary_message_gets_a_reply() {
        assert_eq!(ok("", "sender@example.org", "user@example.net"), Ok(()));
        // Case and +detail do not matter for the recipient check.
        assert_eq!(ok("", "sender@example.org", "USER+tag@Example.NET"), Ok(()));
        assert_eq!(
            ok(
                "Auto-Submitted: No\r\n",
                "sender@example.org",
                "user@example.net"
            ),
            Ok(())
        );
        assert_eq!(
            ok(
                "Precedence: first-class\r\n",
                "sender@example.org",
                "user@example.net"
            ),
            Ok(())
        );
    }

    /// RFC 5230 §4.6 and RFC 3834 §2: senders that must not get a reply.
    #[test]
    fn refused_senders() {
        for from in [
            "",
            "<>",
            "MAILER-DAEMON@example.org",
            "mailer-daemon@example.org",
            "owner-list@example.org",
            "list-request@example.org",
            "LISTSERV@example.org",
            "Majordomo@example.org",
            "user@example.net",
            "User+x@EXAMPLE.net",
        ] {
            assert!(ok("", from, "user@example.net").is_err(), "{from}");
        }
        // Pigeonhole's owner-/-request checks are case-sensitive.
        assert!(ok("", "LIST-REQUEST@example.org", "user@example.net").is_ok());
    }

    /// RFC 3834 §2 and RFC 5230 §4.6: auto-submitted and list mail get no reply.
    #[test]
    fn refused_messages() {
        for header in [
            "Auto-Submitted: auto-replied\r\n",
            "Auto-Submitted: auto-generated\r\n",
            "Auto-Submitted: no; x=y\r\n",
            "Precedence: bulk\r\n",
            "Precedence: LIST\r\n",
            "Precedence: junk\r\n",
            "List-Id: <x.example.org>\r\n",
            "List-Unsubscribe: <mailto:x@example.org>\r\n",
            "X-Auto-Response-Suppress: DR, OOF\r\n",
            "X-Auto-Response-Suppress: All\r\n",
        ] {
            assert!(
                ok(header, "sender@example.org", "user@example.net").is_err(),
                "{header}"
            );
        }
        for header in ["List-Foo: x\r\n", "X-Auto-Response-Suppress: DR\r\n"] {
            assert!(
                ok(header, "sender@example.org", "user@example.net").is_ok(),
                "{header}"
            );
        }
    }

    /// RFC 5230 §4.5: the user must be an explicit recipient, in To, Cc, Bcc or Resent-*;
    /// `:addresses` adds addresses that count.
    #[test]
    fn recipient_must_be_named() {
        let m = b"From: s@example.org\r\nTo: list@example.com\r\nCc: \"U\" <alias@example.net>, x@y\r\n\r\nb";
        let env = envelope("s@example.org", "user@example.net");
        assert!(check(m, &env, &[]).is_err());
        assert_eq!(check(m, &env, &["Alias@example.net".into()]), Ok(()));
        let resent =
            b"From: s@example.org\r\nTo: a@b\r\nResent-To: group: user@example.net;\r\n\r\nb";
        assert_eq!(check(resent, &env, &[]), Ok(()));
        let orig = Envelope {
            orig_to: Some("alias@example.net".into()),
            ..env.clone()
        };
        assert_eq!(check(m, &orig, &[]), Ok(()));
    }

    fn vacation(subject: Option<&str>, reason: &str, mime: bool) -> Vacation {
        Vacation {
            to: "sender@example.org".into(),
            from: None,
            subject: subject.map(str::to_string),
            reason: reason.into(),
            mime,
            handle: "h".into(),
            period: 86_400,
        }
    }

    /// RFC 5230 §5 / RFC 3834 §3: the reply's header fields, as Pigeonhole writes them.
    #[test]
    fn compose_plain_reply() {
        let original = b"From: Sender <sender@example.org>\r\nTo: user@example.net\r\n\
Subject: =?UTF-8?Q?h=C3=A9llo?= there\r\nMessage-ID: <x1@example.org>\r\n\
References: <x0@example.org>\r\n\r\nbody\r\n";
        let reply = compose(
            &vacation(None, "I am away\nback Monday", false),
            original,
            "user@example.net",
            "Thu, 03 Dec 2026 09:13:32 +0000",
            "r1@example.net",
        );
        let text = String::from_utf8(reply).unwrap();
        let expected = "Message-ID: <r1@example.net>\r\n\
Date: Thu, 03 Dec 2026 09:13:32 +0000\r\n\
From: <user@example.net>\r\n\
To: Sender <sender@example.org>\r\n\
Subject: Auto: =?UTF-8?Q?h=C3=A9llo?= there\r\n\
In-Reply-To: <x1@example.org>\r\n\
References: <x0@example.org> <x1@example.org>\r\n\
Auto-Submitted: auto-replied (vacation)\r\n\
Precedence: bulk\r\n\
X-Auto-Response-Suppress: All\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 7bit\r\n\
\r\n\
I am away\r\nback Monday\r\n";
        assert_eq!(text, expected);
    }

    /// RFC 5230 §4.7 `:mime`, `:subject` and `:from`; non-ASCII subject encoded (RFC 2047).
    #[test]
    fn compose_mime_reply() {
        let mut v = vacation(
            Some("Absent: été"),
            "Content-Type: text/plain; charset=utf-8\n\nJe suis absent",
            true,
        );
        v.from = Some("Me <me@example.net>".into());
        let original = b"From: other@example.org\r\nSubject: x\r\n\r\nbody";
        let text =
            String::from_utf8(compose(&v, original, "u@example.net", "D", "<id@x>")).unwrap();
        assert!(text.contains("\r\nFrom: Me <me@example.net>\r\n"), "{text}");
        assert!(text.contains("\r\nTo: <sender@example.org>\r\n"), "{text}");
        assert!(
            text.contains("\r\nSubject: Absent: =?UTF-8?Q?=C3=A9t=C3=A9?=\r\n"),
            "{text}"
        );
        assert!(!text.contains("In-Reply-To"));
        assert!(text.ends_with(
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nJe suis absent\r\n"
        ));
        // No original subject: Pigeonhole's "Automated reply"; a bare From gets brackets.
        let bare = b"From: sender@example.org\r\n\r\nbody";
        let text =
            String::from_utf8(compose(&vacation(None, "x", false), bare, "u@x", "D", "i")).unwrap();
        assert!(
            text.contains("\r\nTo: <sender@example.org>\r\nSubject: Automated reply\r\n"),
            "{text}"
        );
        // A non-ASCII plain reason is 8bit UTF-8.
        let text = String::from_utf8(compose(
            &vacation(None, "Été", false),
            original,
            "u@x",
            "D",
            "i@x",
        ))
        .unwrap();
        assert!(
            text.contains("Content-Transfer-Encoding: 8bit\r\n\r\nÉté\r\n"),
            "{text}"
        );
        assert!(text.contains("Subject: Auto: x\r\n"));
    }
}
