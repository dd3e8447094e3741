//! Delivery status notifications (RFC 3464): a `multipart/report` (RFC 6522) with a human part,
//! a `message/delivery-status` part, and the original message or its headers as RET asks.

use crate::{BodyType, Envelope, Notify, QueueEntry, Recipient, Ret};
use postern_mail::date::rfc5322 as rfc5322_date;
use postern_mail::{header, wire, EnhancedCode, Status};

/// Marks a delivery note when the next hop took over DSN duties (RFC 3461 §4.1): no success
/// notice is sent from here.
pub const NOTE_DSN_PASSED_ON: &str = "(DSN passed on)";
/// Marks a delivery note when the next hop does not support DSN: a success notice says "relayed"
/// (RFC 3461 §6.2.7.4).
pub const NOTE_RELAYED: &str = "(relayed to a host without DSN)";

/// Above this size a DSN returns only the headers even when RET=FULL was not given.
const FULL_RETURN_LIMIT: usize = 1024 * 1024;
/// Longest diagnostic text kept (the DSN's lines stay under RFC 5322's 998).
const MAX_DIAGNOSTIC: usize = 900;

/// RFC 3464 §2.3.3 Action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The message could not be delivered to the recipient (a bounce).
    Failed,
    /// Delivery has not succeeded yet and will be retried (a delay warning).
    Delayed,
    /// Delivered to the recipient's mailbox.
    Delivered,
    /// Handed to a host that does not support DSN: no further notice will come.
    Relayed,
    /// Delivered to an alias (a list) and passed on to its members.
    Expanded,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed",
            Action::Expanded => "expanded",
        }
    }
}

/// One recipient to report on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsnItem {
    /// Index into `entry.recipients`.
    pub index: usize,
    /// What the report says happened.
    pub action: Action,
    /// The reason or delivery note as the transport gave it.
    pub status: Status,
}

/// The RFC 3464 §2.3.4 Status for an item: its code when the class fits the action, else the
/// class's generic code (RFC 3463 5.4.7 for a failure whose cause was temporary).
fn status_for(item: &DsnItem) -> EnhancedCode {
    let code = item.status.code;
    match item.action {
        Action::Failed if code.is_permanent() => code,
        Action::Failed if code.is_temporary() => EnhancedCode::EXPIRED,
        Action::Failed => EnhancedCode::PERMANENT,
        Action::Delayed if code.is_temporary() => code,
        Action::Delayed => EnhancedCode::TEMPORARY,
        _ if code.is_success() => code,
        _ => EnhancedCode::SUCCESS,
    }
}

/// Keeps printable ASCII on one line, cut to a sane length.
fn clean(text: &str) -> String {
    let mut s: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if s.len() > MAX_DIAGNOSTIC {
        s.truncate(MAX_DIAGNOSTIC);
    }
    s
}

/// `text` with CRLF line ends and a final CRLF.
fn push_crlf(out: &mut Vec<u8>, text: &[u8]) {
    out.extend_from_slice(&wire::to_crlf(text));
    if !text.is_empty() && !text.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
}

/// What a DSN says in its Subject.
fn subject(items: &[DsnItem]) -> &'static str {
    if items.iter().any(|i| i.action == Action::Failed) {
        "Undelivered Mail Returned to Sender"
    } else if items.iter().any(|i| i.action == Action::Delayed) {
        "Delayed Mail (still being retried)"
    } else {
        "Successful Mail Delivery Report"
    }
}

/// Composes the DSN for `items` of `entry`. `reporting_mta` is this host's name; `give_up_at` is
/// when the queue stops retrying (for Will-Retry-Until on delayed recipients).
pub fn compose(
    entry: &QueueEntry,
    message: &[u8],
    items: &[DsnItem],
    reporting_mta: &str,
    now: i64,
    give_up_at: i64,
) -> Vec<u8> {
    let boundary = format!("{}/{}", entry.id, reporting_mta);
    let sender = entry.envelope.sender.as_deref().unwrap_or("");
    let mut out = Vec::with_capacity(message.len().min(FULL_RETURN_LIMIT) + 2048);
    let line = |out: &mut Vec<u8>, s: &str| {
        out.extend_from_slice(s.as_bytes());
        out.extend_from_slice(b"\r\n");
    };
    line(
        &mut out,
        &format!("From: Mail Delivery System <MAILER-DAEMON@{reporting_mta}>"),
    );
    line(&mut out, &format!("To: <{sender}>"));
    line(&mut out, &format!("Subject: {}", subject(items)));
    line(&mut out, &format!("Date: {}", rfc5322_date(now)));
    line(
        &mut out,
        &format!("Message-ID: <{}.{now}.dsn@{reporting_mta}>", entry.id),
    );
    // RFC 3834 §5: automatically generated, never to be answered automatically.
    line(&mut out, "Auto-Submitted: auto-replied");
    line(&mut out, "MIME-Version: 1.0");
    line(
        &mut out,
        &format!("Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\""),
    );
    line(&mut out, "");
    line(&mut out, "This is a MIME-encapsulated message.");
    line(&mut out, "");

    // The human-readable part.
    line(&mut out, &format!("--{boundary}"));
    line(&mut out, "Content-Type: text/plain; charset=us-ascii");
    line(&mut out, "Content-Description: Notification");
    line(&mut out, "");
    line(
        &mut out,
        &format!("This is the mail system at host {reporting_mta}."),
    );
    line(&mut out, "");
    for item in items {
        let rcpt = &entry.recipients[item.index].recipient.address;
        let what = match item.action {
            Action::Failed => "could not be delivered to",
            Action::Delayed => "has not yet been delivered to",
            Action::Delivered => "was delivered to",
            Action::Relayed => "was relayed (with no further notice possible) to",
            Action::Expanded => "was expanded and delivered to the members of",
        };
        line(&mut out, &format!("Your message {what} <{}>:", clean(rcpt)));
        line(&mut out, &format!("    {}", clean(&item.status.text)));
        line(&mut out, "");
    }
    if items.iter().any(|i| i.action == Action::Delayed) {
        line(
            &mut out,
            &format!(
                "Delivery will be retried until {}. You need not resend the message.",
                rfc5322_date(give_up_at)
            ),
        );
        line(&mut out, "");
    }

    // RFC 3464 §2.2: per-message fields, then §2.3: per-recipient fields.
    line(&mut out, &format!("--{boundary}"));
    line(&mut out, "Content-Type: message/delivery-status");
    line(&mut out, "Content-Description: Delivery report");
    line(&mut out, "");
    if let Some(envid) = &entry.envelope.envid {
        line(&mut out, &format!("Original-Envelope-Id: {}", clean(envid)));
    }
    line(&mut out, &format!("Reporting-MTA: dns; {reporting_mta}"));
    line(&mut out, &format!("X-Postern-Queue-ID: {}", entry.id));
    if let Some(sender) = &entry.envelope.sender {
        line(
            &mut out,
            &format!("X-Postern-Sender: rfc822; {}", clean(sender)),
        );
    }
    line(
        &mut out,
        &format!("Arrival-Date: {}", rfc5322_date(entry.arrived)),
    );
    for item in items {
        let r = &entry.recipients[item.index];
        line(&mut out, "");
        if let Some(orcpt) = &r.recipient.orcpt {
            let (kind, addr) = orcpt.split_once(';').unwrap_or(("rfc822", orcpt));
            line(
                &mut out,
                &format!(
                    "Original-Recipient: {}; {}",
                    clean(kind.trim()),
                    clean(addr.trim())
                ),
            );
        }
        line(
            &mut out,
            &format!("Final-Recipient: rfc822; {}", clean(&r.recipient.address)),
        );
        line(&mut out, &format!("Action: {}", item.action.as_str()));
        line(&mut out, &format!("Status: {}", status_for(item)));
        let text = &item.status.text;
        let remote = text.split_once(" said: ").or_else(|| {
            let (host, rest) = text.split_once(" said after ")?;
            Some((host, rest.split_once(": ")?.1))
        });
        if let Some((host, said)) = remote {
            let host = host.split_whitespace().next().unwrap_or(host);
            line(&mut out, &format!("Remote-MTA: dns; {}", clean(host)));
            line(&mut out, &format!("Diagnostic-Code: smtp; {}", clean(said)));
        } else {
            line(
                &mut out,
                &format!("Diagnostic-Code: X-Postern; {}", clean(text)),
            );
        }
        line(
            &mut out,
            &format!("Last-Attempt-Date: {}", rfc5322_date(now)),
        );
        if item.action == Action::Delayed {
            line(
                &mut out,
                &format!("Will-Retry-Until: {}", rfc5322_date(give_up_at)),
            );
        }
    }
    line(&mut out, "");

    // The returned content (RFC 3462 text/rfc822-headers, or message/rfc822).
    line(&mut out, &format!("--{boundary}"));
    // RFC 8689 §5: a REQUIRETLS message comes back as if RET=HDRS was given (the bounce may
    // travel without the TLS the body was promised).
    let full = !entry.envelope.requiretls
        && match entry.envelope.ret {
            Some(Ret::Full) => true,
            Some(Ret::Headers) => false,
            None => {
                message.len() <= FULL_RETURN_LIMIT
                    && items.iter().all(|i| i.action == Action::Failed)
            }
        };
    if full {
        line(&mut out, "Content-Type: message/rfc822");
        if entry.envelope.body != BodyType::SevenBit || !message.is_ascii() {
            line(&mut out, "Content-Transfer-Encoding: 8bit");
        }
        line(&mut out, "Content-Description: Undelivered message");
        line(&mut out, "");
        push_crlf(&mut out, message);
    } else {
        line(&mut out, "Content-Type: text/rfc822-headers");
        line(&mut out, "Content-Description: Message headers");
        line(&mut out, "");
        push_crlf(&mut out, header::header_section(message));
    }
    line(&mut out, "");
    line(&mut out, &format!("--{boundary}--"));
    out
}

/// The envelope of a DSN: null sender (RFC 5321 §4.5.5, so it never causes another DSN), one
/// recipient that asks for no notification.
pub fn envelope_for(original: &Envelope, dsn_message: &[u8]) -> Option<Envelope> {
    let to = original.sender.clone()?;
    Some(Envelope {
        sender: None,
        recipients: vec![Recipient {
            address: to,
            notify: Notify::NEVER,
            orcpt: None,
        }],
        ret: None,
        envid: None,
        body: if dsn_message.is_ascii() {
            BodyType::SevenBit
        } else {
            BodyType::EightBitMime
        },
        smtputf8: original.sender.as_deref().is_some_and(|s| !s.is_ascii()),
        requiretls: false,
        authenticated: None,
        client_ip: None,
        helo: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{QueueId, RcptState, RcptStatus};
    use mail_parser::{MessageParser, MimeHeaders, PartType};

    fn entry(ret: Option<Ret>) -> QueueEntry {
        let mut r1 = Recipient::new("gone@remote.test");
        r1.orcpt = Some("rfc822;alias@local.test".into());
        let r2 = Recipient::new("slow@remote.test");
        let env = Envelope {
            sender: Some("alice@local.test".into()),
            recipients: vec![r1.clone(), r2.clone()],
            ret,
            envid: Some("ENV-1".into()),
            body: BodyType::SevenBit,
            smtputf8: false,
            requiretls: false,
            authenticated: Some("alice@local.test".into()),
            client_ip: None,
            helo: None,
        };
        let st = |r: Recipient, status| RcptState {
            recipient: r,
            status,
            attempts: 1,
            next_attempt: 0,
            last_error: None,
            expanded_from: None,
            reported: false,
            delay_reported: false,
            scheduled: None,
        };
        QueueEntry {
            id: QueueId::parse("0123ABCD").unwrap(),
            envelope: env,
            arrived: 1_700_000_000,
            size: 10,
            recipients: vec![
                st(
                    r1,
                    RcptStatus::Failed {
                        at: 0,
                        reason: Status::new(EnhancedCode::PERMANENT, "x"),
                    },
                ),
                st(r2, RcptStatus::Pending),
            ],
            delivered_accounts: Default::default(),
            held: false,
        }
    }

    const MSG: &[u8] =
        b"From: alice@local.test\r\nTo: gone@remote.test\r\nSubject: hello\r\n\r\nThe body.\r\n";

    #[test]
    fn failure_dsn_is_a_well_formed_rfc3464_report() {
        let e = entry(Some(Ret::Full));
        let items = [
            DsnItem {
                index: 0,
                action: Action::Failed,
                status: Status::with_text(
                    EnhancedCode::new(5, 1, 1),
                    "mx.remote.test [127.0.0.1] said: 550 5.1.1 no such user",
                ),
            },
            DsnItem {
                index: 1,
                action: Action::Delayed,
                status: Status::new(EnhancedCode::new(4, 4, 1), "connection refused"),
            },
        ];
        let dsn = compose(
            &e,
            MSG,
            &items,
            "mail.local.test",
            1_700_000_100,
            1_700_400_000,
        );
        let text = String::from_utf8(dsn.clone()).unwrap();
        assert!(text.lines().all(|l| l.len() < 998));
        let parsed = MessageParser::default().parse(&dsn).unwrap();
        let ct = parsed.content_type().unwrap();
        assert_eq!(ct.ctype(), "multipart");
        assert_eq!(ct.subtype(), Some("report"));
        assert_eq!(ct.attribute("report-type"), Some("delivery-status"));
        assert_eq!(
            parsed.subject(),
            Some("Undelivered Mail Returned to Sender")
        );
        assert_eq!(
            parsed.from().unwrap().first().unwrap().address(),
            Some("MAILER-DAEMON@mail.local.test")
        );
        // Three parts: notification, delivery-status, the returned message.
        let parts = &parsed.parts;
        let subtypes: Vec<String> = parts
            .iter()
            .skip(1)
            .filter_map(|p| {
                p.content_type()
                    .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")))
            })
            .collect();
        assert!(
            subtypes.starts_with(&[
                "text/plain".into(),
                "message/delivery-status".into(),
                "message/rfc822".into()
            ]),
            "{subtypes:?}"
        );
        assert!(text.contains("Original-Envelope-Id: ENV-1\r\n"));
        assert!(text.contains("Reporting-MTA: dns; mail.local.test\r\n"));
        assert!(text.contains("Original-Recipient: rfc822; alias@local.test\r\nFinal-Recipient: rfc822; gone@remote.test\r\nAction: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx.remote.test\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n"));
        assert!(text.contains(
            "Final-Recipient: rfc822; slow@remote.test\r\nAction: delayed\r\nStatus: 4.4.1\r\n"
        ));
        assert!(text.contains("Will-Retry-Until: "));
        let returned = parts.iter().find_map(|p| match &p.body {
            PartType::Message(m) => Some(m.subject().map(str::to_string)),
            _ => None,
        });
        assert_eq!(returned, Some(Some("hello".into())));
    }

    /// RFC 8689 §5: a bounce of a REQUIRETLS message has only the headers, even with RET=FULL.
    #[test]
    fn requiretls_messages_come_back_as_headers_only() {
        let mut e = entry(Some(Ret::Full));
        e.envelope.requiretls = true;
        let items = [DsnItem {
            index: 0,
            action: Action::Failed,
            status: Status::new(EnhancedCode::new(5, 7, 30), "REQUIRETLS support required"),
        }];
        let text = String::from_utf8(compose(&e, MSG, &items, "mail.local.test", 1, 0)).unwrap();
        assert!(
            text.contains("Content-Type: text/rfc822-headers\r\n"),
            "{text}"
        );
        assert!(text.contains("Status: 5.7.30\r\n"), "{text}");
        assert!(!text.contains("The body."), "{text}");
    }

    #[test]
    fn ret_hdrs_returns_only_headers_and_success_reports() {
        let e = entry(Some(Ret::Headers));
        let items = [DsnItem {
            index: 1,
            action: Action::Delivered,
            status: Status::with_text(EnhancedCode::SUCCESS, "delivered to INBOX"),
        }];
        let dsn = compose(&e, MSG, &items, "mail.local.test", 1_700_000_100, 0);
        let text = String::from_utf8(dsn.clone()).unwrap();
        assert!(text.contains("Content-Type: text/rfc822-headers\r\n"));
        assert!(text.contains("Subject: hello\r\n"));
        assert!(!text.contains("The body."));
        assert!(text.contains("Action: delivered\r\nStatus: 2.0.0\r\n"));
        let parsed = MessageParser::default().parse(&dsn).unwrap();
        assert_eq!(parsed.subject(), Some("Successful Mail Delivery Report"));
    }

    #[test]
    fn gave_up_is_a_permanent_status_and_null_sender_gets_nothing() {
        let item = DsnItem {
            index: 0,
            action: Action::Failed,
            status: Status::from_text(
                "gave up after 9 attempts: 4.4.1 connection refused",
                EnhancedCode::PERMANENT,
            ),
        };
        assert_eq!(status_for(&item).to_string(), "5.4.7");
        let mut env = entry(None).envelope;
        let dsn_env = envelope_for(&env, b"x").unwrap();
        assert_eq!(dsn_env.sender, None);
        assert_eq!(dsn_env.recipients[0].notify, Notify::NEVER);
        env.sender = None;
        assert!(envelope_for(&env, b"x").is_none());
    }

    #[test]
    fn dates_and_codes() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_709_210_096),
            "Thu, 29 Feb 2024 12:34:56 +0000"
        );
    }
}
